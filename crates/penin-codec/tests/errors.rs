//! Every error kind, with its exact message, its line and column, and its JSON path.
//!
//! Each row also names what the input holds at the reported position (`at`), so a row
//! checks that the position points at the culprit, not only that it is some number.

use penin_codec::{Document, Error, Value};

/// One expected error.
struct Row<'a> {
    input: String,
    message: String,
    position: (usize, usize),
    path: &'a str,
    /// What the input holds from the reported position on ("" for the end of the input).
    at: &'a str,
}

fn row<'a>(
    input: &str,
    message: &str,
    position: (usize, usize),
    path: &'a str,
    at: &'a str,
) -> Row<'a> {
    Row {
        input: input.to_owned(),
        message: message.to_owned(),
        position,
        path,
        at,
    }
}

/// The input from a 1-based line and column (in characters) on.
fn rest_at(input: &str, line: usize, column: usize) -> &str {
    let mut offset = 0;
    for _ in 1..line {
        offset += input[offset..].find('\n').expect("line beyond the input") + 1;
    }
    let skip: usize = input[offset..]
        .chars()
        .take(column - 1)
        .map(char::len_utf8)
        .sum();
    &input[offset + skip..]
}

/// What is wrong with `err` for `row`, if anything.
fn mismatch(row: &Row<'_>, err: &Error) -> Option<String> {
    let input = &row.input;
    let (line, column) = row.position;
    let found = (err.to_string(), err.position(), err.path());
    let expected = (row.message.clone(), Some(row.position), Some(row.path));
    if found != expected {
        return Some(format!(
            "{input:?}\n  found    {found:?}\n  expected {expected:?}"
        ));
    }
    let rest = rest_at(input, line, column);
    let points_right = if row.at.is_empty() {
        rest.trim().is_empty()
    } else {
        rest.starts_with(row.at)
    };
    (!points_right).then(|| {
        format!(
            "{input:?}: the position points at {rest:?}, not {:?}",
            row.at
        )
    })
}

fn assert_row(row: &Row<'_>, err: &Error) {
    if let Some(problem) = mismatch(row, err) {
        panic!("{problem}");
    }
}

/// Checks every row, reporting all mismatches at once.
fn assert_rows(rows: &[Row<'_>], decode: fn(&str) -> Error, kind: fn(&Error) -> bool) {
    let problems: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let err = decode(&row.input);
            if kind(&err) {
                mismatch(row, &err)
            } else {
                Some(format!("{:?}: wrong kind {err:?}", row.input))
            }
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn value_err(input: &str) -> Error {
    penin_codec::from_str::<Value>(input).expect_err(input)
}

fn document_err(input: &str) -> Error {
    penin_codec::from_str::<Document>(input).expect_err(input)
}

#[test]
fn empty_input() {
    let rows: &[&[u8]] = &[
        b"",
        b" ",
        b"\n",
        b"\r\n\t  \n",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF \n",
    ];
    for input in rows {
        for err in [
            penin_codec::from_slice::<Value>(input).unwrap_err(),
            penin_codec::from_slice::<Document>(input).unwrap_err(),
            Document::decode(input, None).unwrap_err(),
        ] {
            assert!(matches!(err, Error::Empty), "{input:?}: {err:?}");
            assert_eq!(err.to_string(), "the document is empty");
            assert_eq!(err.position(), None);
            assert_eq!(err.path(), None);
        }
    }
}

#[test]
fn invalid_utf8() {
    // (input, line, column, byte offset)
    let rows: Vec<(Vec<u8>, usize, usize, usize)> = vec![
        (b"\xff".to_vec(), 1, 1, 0),
        (b"{\"a\": \"\xc3\"}".to_vec(), 1, 8, 7),
        (b"[\n  \"\xe9\"]".to_vec(), 2, 4, 5),
        // Characters before the bad byte count once each in the column.
        (["[\"\u{e9}\", \"".as_bytes(), b"\xff\"]"].concat(), 1, 8, 8),
        (b"\"\xed\xa0\x80\"".to_vec(), 1, 2, 1),
        (b"\"ab\xe2\x82".to_vec(), 1, 4, 3),
        (
            b"{\r\n  \"k\": \"\xf0\x28\x8c\x28\"\r\n}".to_vec(),
            2,
            9,
            11,
        ),
    ];
    for (input, line, column, offset) in rows {
        for err in [
            penin_codec::from_slice::<Value>(&input).unwrap_err(),
            penin_codec::from_slice::<Document>(&input).unwrap_err(),
        ] {
            let Error::InvalidUtf8 {
                line: l,
                column: c,
                offset: o,
            } = err
            else {
                panic!("{input:?}: {err:?}")
            };
            assert_eq!((l, c, o), (line, column, offset), "{input:?}");
            assert_eq!(err.position(), Some((line, column)));
            assert_eq!(err.path(), None);
            assert_eq!(
                err.to_string(),
                format!("invalid UTF-8 at line {line}, column {column} (byte {offset})")
            );
        }
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one row per case
fn truncated_input() {
    let rows = vec![
        row(
            r#""abc"#,
            "unexpected end of input at line 1, column 5",
            (1, 5),
            "",
            "",
        ),
        row(
            r#"["ab\"#,
            "unexpected end of input at line 1, column 6 in [0]",
            (1, 6),
            "[0]",
            "",
        ),
        row(
            r#""\u12"#,
            "unexpected end of input at line 1, column 6",
            (1, 6),
            "",
            "",
        ),
        row(
            r#"{"a""#,
            "unexpected end of input at line 1, column 5",
            (1, 5),
            "",
            "",
        ),
        row(
            r#"{"a"   "#,
            "unexpected end of input at line 1, column 8",
            (1, 8),
            "",
            "",
        ),
        row(
            r#"{"a": "#,
            r#"unexpected end of input at line 1, column 7 in ["a"]"#,
            (1, 7),
            r#"["a"]"#,
            "",
        ),
        row(
            r#"{"a": 12"#,
            "unexpected end of input at line 1, column 9",
            (1, 9),
            "",
            "",
        ),
        row(
            "[1.",
            "unexpected end of input at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "",
        ),
        row(
            "1.",
            "unexpected end of input at line 1, column 3",
            (1, 3),
            "",
            "",
        ),
        row(
            "[1.5e+",
            "unexpected end of input at line 1, column 7 in [0]",
            (1, 7),
            "[0]",
            "",
        ),
        row(
            "[-",
            "unexpected end of input at line 1, column 3 in [0]",
            (1, 3),
            "[0]",
            "",
        ),
        row(
            "[Na",
            "unexpected end of input at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "",
        ),
        row(
            "[1, -Infin",
            "unexpected end of input at line 1, column 11 in [1]",
            (1, 11),
            "[1]",
            "",
        ),
        row(
            "Inf",
            "unexpected end of input at line 1, column 4",
            (1, 4),
            "",
            "",
        ),
        row(
            "[tr",
            "unexpected end of input at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "",
        ),
        row(
            "{",
            "unexpected end of input at line 1, column 2",
            (1, 2),
            "",
            "",
        ),
        row(
            "[",
            "unexpected end of input at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "",
        ),
        row(
            r#"{"a": 1,"#,
            "unexpected end of input at line 1, column 9",
            (1, 9),
            "",
            "",
        ),
        row(
            r#"{"a": {"b": [1, 2]"#,
            r#"unexpected end of input at line 1, column 19 in ["a"]"#,
            (1, 19),
            r#"["a"]"#,
            "",
        ),
        row(
            "[1, [2",
            "unexpected end of input at line 1, column 7 in [1]",
            (1, 7),
            "[1]",
            "",
        ),
        row(
            "{\n  \"a\": [\n    1,\n",
            r#"unexpected end of input at line 4, column 1 in ["a"][1]"#,
            (4, 1),
            r#"["a"][1]"#,
            "",
        ),
    ];
    for r in &rows {
        let err = value_err(&r.input);
        assert!(
            matches!(err, Error::Truncated { .. }),
            "{:?}: {err:?}",
            r.input
        );
        assert_row(r, &err);
    }
    // In a document, with the document's paths.
    let rows = vec![
        row(
            r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0, "#,
            r#"unexpected end of input at line 1, column 80 in knowledge_base["k"].vector[1]"#,
            (1, 80),
            r#"knowledge_base["k"].vector[1]"#,
            "",
        ),
        row(
            r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0], "metadata": {"s": "ab"#,
            r#"unexpected end of input at line 1, column 102 in knowledge_base["k"].metadata["s"]"#,
            (1, 102),
            r#"knowledge_base["k"].metadata["s"]"#,
            "",
        ),
        row(
            r#"{"task_history": [{"t": 1}, {"t"#,
            "unexpected end of input at line 1, column 32 in task_history[1]",
            (1, 32),
            "task_history[1]",
            "",
        ),
        row(
            r#"{"score_history": {"__type__": "deque", "items": [0.5, 1e"#,
            "unexpected end of input at line 1, column 58 in score_history.items[1]",
            (1, 58),
            "score_history.items[1]",
            "",
        ),
        row(
            r#"{"knowledge_base": {}, "#,
            "unexpected end of input at line 1, column 24",
            (1, 24),
            "",
            "",
        ),
    ];
    for r in &rows {
        let err = document_err(&r.input);
        assert!(
            matches!(err, Error::Truncated { .. }),
            "{:?}: {err:?}",
            r.input
        );
        assert_row(r, &err);
    }
}

#[test]
fn syntax_errors() {
    let rows = vec![
        // Trailing commas.
        row(
            r#"{"a": 1,}"#,
            "expected a string key, found '}' at line 1, column 9",
            (1, 9),
            "",
            "}",
        ),
        row(
            "[1, 2,]",
            "expected a value, found ']' at line 1, column 7 in [2]",
            (1, 7),
            "[2]",
            "]",
        ),
        // Single quotes.
        row(
            "{'a': 1}",
            "expected a string key, found ''' at line 1, column 2",
            (1, 2),
            "",
            "'a'",
        ),
        row(
            "['a']",
            "expected a value, found ''' at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "'a'",
        ),
        // Comments.
        row(
            "{\"a\": 1 // note\n}",
            "expected ',' or '}', found '/' at line 1, column 9",
            (1, 9),
            "",
            "//",
        ),
        row(
            "/* c */ {}",
            "expected a value, found '/' at line 1, column 1",
            (1, 1),
            "",
            "/*",
        ),
        // Numbers JSON does not allow.
        row(
            "01",
            "a number cannot have a leading zero at line 1, column 2",
            (1, 2),
            "",
            "1",
        ),
        row(
            "[-01]",
            "a number cannot have a leading zero at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "1]",
        ),
        row(
            "[1.]",
            "expected a digit after the decimal point, found ']' at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "]",
        ),
        row(
            "[1.e5]",
            "expected a digit after the decimal point, found 'e' at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "e5",
        ),
        row(
            "[1e]",
            "expected a digit in the exponent, found ']' at line 1, column 4 in [0]",
            (1, 4),
            "[0]",
            "]",
        ),
        row(
            ".5",
            "expected a value, found '.' at line 1, column 1",
            (1, 1),
            "",
            ".5",
        ),
        row(
            "[+1]",
            "expected a value, found '+' at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "+1",
        ),
        row(
            "-x",
            "expected a digit, found 'x' at line 1, column 2",
            (1, 2),
            "",
            "x",
        ),
        row(
            "[1 2]",
            "expected ',' or ']', found '2' at line 1, column 4",
            (1, 4),
            "",
            "2]",
        ),
        row(
            "0x10",
            "unexpected data after the document at line 1, column 2",
            (1, 2),
            "",
            "x10",
        ),
        // Escapes.
        row(
            r#""a\x""#,
            r"invalid escape \'x' at line 1, column 3",
            (1, 3),
            "",
            r"\x",
        ),
        row(
            r#"["\é"]"#,
            r"invalid escape \'é' at line 1, column 3 in [0]",
            (1, 3),
            "[0]",
            r"\é",
        ),
        row(
            r#""\u12G4""#,
            r"expected a hexadecimal digit of a \u escape, found 'G' at line 1, column 6",
            (1, 6),
            "",
            "G4",
        ),
        row(
            r#""\ud800""#,
            r"lone surrogate \ud800: not a character, cannot be kept in UTF-8 at line 1, column 2",
            (1, 2),
            "",
            r"\ud800",
        ),
        row(
            r#""\udc00""#,
            r"lone surrogate \udc00: not a character, cannot be kept in UTF-8 at line 1, column 2",
            (1, 2),
            "",
            r"\udc00",
        ),
        row(
            r#"["ok", "x\uDBFF\u0041"]"#,
            r"lone surrogate \udbff: not a character, cannot be kept in UTF-8 at line 1, column 10 in [1]",
            (1, 10),
            "[1]",
            r"\uDBFF",
        ),
        row(
            r#"{"\ud83dx": 1}"#,
            r"lone surrogate \ud83d: not a character, cannot be kept in UTF-8 at line 1, column 3",
            (1, 3),
            "",
            r"\ud83d",
        ),
        // Raw control characters.
        row(
            "\"a\nb\"",
            r"control character U+000A in a string (write it as \u000a) at line 1, column 3",
            (1, 3),
            "",
            "\nb",
        ),
        row(
            "{\"k\": \"\t\"}",
            r#"control character U+0009 in a string (write it as \u0009) at line 1, column 8 in ["k"]"#,
            (1, 8),
            r#"["k"]"#,
            "\t",
        ),
        row(
            "[\"a\\n\u{1}\"]",
            r"control character U+0001 in a string (write it as \u0001) at line 1, column 6 in [0]",
            (1, 6),
            "[0]",
            "\u{1}",
        ),
        // Trailing data.
        row(
            "{} x",
            "unexpected data after the document at line 1, column 4",
            (1, 4),
            "",
            "x",
        ),
        row(
            "[1]\n[2]",
            "unexpected data after the document at line 2, column 1",
            (2, 1),
            "",
            "[2]",
        ),
        row(
            "1 2",
            "unexpected data after the document at line 1, column 3",
            (1, 3),
            "",
            "2",
        ),
        row(
            "\"a\"\"b\"",
            "unexpected data after the document at line 1, column 4",
            (1, 4),
            "",
            "\"b\"",
        ),
        // Lower-case non-finite names, and other spellings Python refuses.
        row(
            "nan",
            "invalid literal, expected null at line 1, column 1",
            (1, 1),
            "",
            "nan",
        ),
        row(
            "[inf]",
            "expected a value, found 'i' at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "inf",
        ),
        row(
            "-inf",
            "expected a digit, found 'i' at line 1, column 2",
            (1, 2),
            "",
            "inf",
        ),
        row(
            "NAN",
            "invalid literal, expected NaN at line 1, column 1",
            (1, 1),
            "",
            "NAN",
        ),
        row(
            "[Inf]",
            "invalid literal, expected Infinity at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "Inf]",
        ),
        row(
            "-NaN",
            "expected a digit, found 'N' at line 1, column 2",
            (1, 2),
            "",
            "NaN",
        ),
        row(
            "True",
            "expected a value, found 'T' at line 1, column 1",
            (1, 1),
            "",
            "True",
        ),
        row(
            "[nulL]",
            "invalid literal, expected null at line 1, column 2 in [0]",
            (1, 2),
            "[0]",
            "nulL",
        ),
        // Object punctuation.
        row(
            r#"{"a" 1}"#,
            "expected ':', found '1' at line 1, column 6",
            (1, 6),
            "",
            "1}",
        ),
        row(
            r#"{"a": 1 "b": 2}"#,
            r#"expected ',' or '}', found '"' at line 1, column 9"#,
            (1, 9),
            "",
            r#""b""#,
        ),
        row(
            "{1: 2}",
            "expected a string key, found '1' at line 1, column 2",
            (1, 2),
            "",
            "1:",
        ),
        row(
            "]",
            "expected a value, found ']' at line 1, column 1",
            (1, 1),
            "",
            "]",
        ),
        row(
            "{\"a\":\u{a0}1}",
            "expected a value, found U+00A0 at line 1, column 6 in [\"a\"]",
            (1, 6),
            "[\"a\"]",
            "\u{a0}",
        ),
        // Positions count lines, and characters rather than bytes.
        row(
            r#"["é☕", x]"#,
            "expected a value, found 'x' at line 1, column 8 in [1]",
            (1, 8),
            "[1]",
            "x]",
        ),
        row(
            "{\n  \"a\": [\n    1,\n    x\n  ]\n}",
            r#"expected a value, found 'x' at line 4, column 5 in ["a"][1]"#,
            (4, 5),
            r#"["a"][1]"#,
            "x",
        ),
        row(
            "{\r\n  \"a\": x\r\n}",
            r#"expected a value, found 'x' at line 2, column 8 in ["a"]"#,
            (2, 8),
            r#"["a"]"#,
            "x",
        ),
        row(
            "{\"outer\": {\"in\\\"ner\": [true, {\"k\": [1, ?]}]}}",
            r#"expected a value, found '?' at line 1, column 40 in ["outer"]["in\"ner"][1]["k"][1]"#,
            (1, 40),
            r#"["outer"]["in\"ner"][1]["k"][1]"#,
            "?",
        ),
    ];
    for r in &rows {
        let err = value_err(&r.input);
        assert!(
            matches!(err, Error::Syntax { .. }),
            "{:?}: {err:?}",
            r.input
        );
        assert_row(r, &err);
    }
    // The same faults inside a document carry the document's paths.
    let rows = vec![
        row(
            r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0, nan]}}}"#,
            r#"invalid literal, expected null at line 1, column 80 in knowledge_base["k"].vector[1]"#,
            (1, 80),
            r#"knowledge_base["k"].vector[1]"#,
            "nan",
        ),
        row(
            r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0,]}}}"#,
            r#"expected a value, found ']' at line 1, column 79 in knowledge_base["k"].vector[1]"#,
            (1, 79),
            r#"knowledge_base["k"].vector[1]"#,
            "]",
        ),
        row(
            r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [], "metadata": {"a": 01}}}}"#,
            r#"a number cannot have a leading zero at line 1, column 97 in knowledge_base["k"].metadata["a"]"#,
            (1, 97),
            r#"knowledge_base["k"].metadata["a"]"#,
            "1}",
        ),
        row(
            r#"{"task_history": [{"t": 1}, {"t": 'x'}]}"#,
            r#"expected a value, found ''' at line 1, column 35 in task_history[1]["t"]"#,
            (1, 35),
            r#"task_history[1]["t"]"#,
            "'x'",
        ),
        row(
            r#"{"score_history": [0.5, +1]}"#,
            "expected a value, found '+' at line 1, column 25 in score_history[1]",
            (1, 25),
            "score_history[1]",
            "+1",
        ),
        row(
            r#"{"extra": [1, }"#,
            r#"expected a value, found '}' at line 1, column 15 in ["extra"][1]"#,
            (1, 15),
            r#"["extra"][1]"#,
            "}",
        ),
        row(
            r#"{"knowledge_base": {}} {}"#,
            "unexpected data after the document at line 1, column 24",
            (1, 24),
            "",
            "{}",
        ),
        row(
            r#"{"knowledge_base": {}, }"#,
            "expected a string key, found '}' at line 1, column 24",
            (1, 24),
            "",
            "}",
        ),
    ];
    for r in &rows {
        let err = document_err(&r.input);
        assert!(
            matches!(err, Error::Syntax { .. }),
            "{:?}: {err:?}",
            r.input
        );
        assert_row(r, &err);
    }
}

const ARTIFACT: &str = r#""__type__": "NumericVectorArtifact""#;

#[test]
#[allow(clippy::too_many_lines)] // one row per case
fn document_shape_errors() {
    let kb = |entry: &str| format!(r#"{{"knowledge_base": {{"k": {entry}}}}}"#);
    let rows = vec![
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "vector": [1, 2.5, NaN, "x"]}}"#)),
            r#"knowledge_base["k"].vector[3]: expected a number, found a string (line 1, column 88)"#,
            (1, 88),
            r#"knowledge_base["k"].vector[3]"#,
            r#""x""#,
        ),
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "vector": [true]}}"#)),
            r#"knowledge_base["k"].vector[0]: expected a number, found a boolean (line 1, column 75)"#,
            (1, 75),
            r#"knowledge_base["k"].vector[0]"#,
            "true",
        ),
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "vector": [0.5, null]}}"#)),
            r#"knowledge_base["k"].vector[1]: expected a number, found null (line 1, column 80)"#,
            (1, 80),
            r#"knowledge_base["k"].vector[1]"#,
            "null",
        ),
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "vector": [[1.0]]}}"#)),
            r#"knowledge_base["k"].vector[0]: expected a number, found an array (line 1, column 75)"#,
            (1, 75),
            r#"knowledge_base["k"].vector[0]"#,
            "[1.0]",
        ),
        row(
            &kb(&format!(
                r#"{{{ARTIFACT}, "vector": [1, 9007199254740993]}}"#
            )),
            r#"knowledge_base["k"].vector[1]: expected a number that a 64-bit float holds exactly, found the integer 9007199254740993 (line 1, column 78)"#,
            (1, 78),
            r#"knowledge_base["k"].vector[1]"#,
            "9007199254740993",
        ),
        row(
            &kb(&format!(
                r#"{{{ARTIFACT}, "vector": [-1000000000000000000000000000001]}}"#
            )),
            r#"knowledge_base["k"].vector[0]: expected a number that a 64-bit float holds exactly, found the integer -1000000000000000000000000000001 (line 1, column 75)"#,
            (1, 75),
            r#"knowledge_base["k"].vector[0]"#,
            "-1000",
        ),
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "vector": "0.5"}}"#)),
            r#"knowledge_base["k"].vector: expected an array of numbers, found a string (line 1, column 74)"#,
            (1, 74),
            r#"knowledge_base["k"].vector"#,
            r#""0.5""#,
        ),
        row(
            r#"{"knowledge_base": [1]}"#,
            "knowledge_base: expected an object of artifacts, found an array (line 1, column 20)",
            (1, 20),
            "knowledge_base",
            "[1]",
        ),
        row(
            r#"{"knowledge_base": null}"#,
            "knowledge_base: expected an object of artifacts, found null (line 1, column 20)",
            (1, 20),
            "knowledge_base",
            "null",
        ),
        row(
            &kb(r#"{"vector": [1.0], "metadata": {}}"#),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found an object without "__type__": "NumericVectorArtifact" (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            r#"{"vector""#,
        ),
        row(
            &kb(r#"{"__type__": 1, "vector": [1.0]}"#),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found an object without "__type__": "NumericVectorArtifact" (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            r#"{"__type__""#,
        ),
        row(
            &kb("[0.1, 0.2]"),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found an array (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            "[0.1",
        ),
        row(
            &kb(r#"{"__type__": "deque", "items": [], "maxlen": 3}"#),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found an object tagged "deque" (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            r#"{"__type__": "deque""#,
        ),
        row(
            &kb(r#"{"__type__": "Other", "vector": [1.0]}"#),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found an object tagged "Other" (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            r#"{"__type__": "Other""#,
        ),
        row(
            &kb(&format!(r#"{{{ARTIFACT}, "metadata": {{}}}}"#)),
            r#"knowledge_base["k"]: expected a NumericVectorArtifact, found one without "vector" (line 1, column 26)"#,
            (1, 26),
            r#"knowledge_base["k"]"#,
            r#"{"__type__""#,
        ),
        row(
            &kb(&format!(
                r#"{{{ARTIFACT}, "vector": [1.0], "metadata": [1]}}"#
            )),
            r#"knowledge_base["k"].metadata: expected an object, found an array (line 1, column 93)"#,
            (1, 93),
            r#"knowledge_base["k"].metadata"#,
            "[1]",
        ),
        row(
            &kb(&format!(
                r#"{{"metadata": "notes", {ARTIFACT}, "vector": []}}"#
            )),
            r#"knowledge_base["k"].metadata: expected an object, found a string (line 1, column 39)"#,
            (1, 39),
            r#"knowledge_base["k"].metadata"#,
            r#""notes""#,
        ),
        row(
            r#"{"task_history": "x"}"#,
            "task_history: expected a deque or an array, found a string (line 1, column 18)",
            (1, 18),
            "task_history",
            r#""x""#,
        ),
        row(
            r#"{"task_history": {"a": 1}}"#,
            "task_history: expected a deque or an array, found an object (line 1, column 18)",
            (1, 18),
            "task_history",
            r#"{"a""#,
        ),
        row(
            &format!(r#"{{"task_history": {{{ARTIFACT}, "vector": []}}}}"#),
            "task_history: expected a deque or an array, found a NumericVectorArtifact (line 1, column 18)",
            (1, 18),
            "task_history",
            "{",
        ),
        row(
            r#"{"score_history": null}"#,
            "score_history: expected a deque or an array, found null (line 1, column 19)",
            (1, 19),
            "score_history",
            "null",
        ),
        row(
            r#"{"task_history": {"__type__": "deque", "items": {}, "maxlen": 3}}"#,
            "task_history.items: expected an array, found an object (line 1, column 49)",
            (1, 49),
            "task_history.items",
            "{}",
        ),
        row(
            r#"{"task_history": {"__type__": "deque", "maxlen": 3}}"#,
            "task_history.items: expected an array, found nothing (the key is missing) (line 1, column 18)",
            (1, 18),
            "task_history.items",
            r#"{"__type__""#,
        ),
        row(
            r#"{"task_history": {"__type__": "deque", "items": [], "maxlen": -1}}"#,
            "task_history.maxlen: expected null or a non-negative integer, found -1 (line 1, column 63)",
            (1, 63),
            "task_history.maxlen",
            "-1",
        ),
        row(
            r#"{"score_history": {"__type__": "deque", "items": [], "maxlen": 2.0}}"#,
            "score_history.maxlen: expected null or a non-negative integer, found a float (line 1, column 64)",
            (1, 64),
            "score_history.maxlen",
            "2.0",
        ),
        row(
            r#"{"score_history": {"__type__": "deque", "items": [0.5, "x"], "maxlen": 10}}"#,
            "score_history.items[1]: expected a number, found a string (line 1, column 56)",
            (1, 56),
            "score_history.items[1]",
            r#""x""#,
        ),
        row(
            "{\n  \"score_history\": {\n    \"__type__\": \"deque\",\n    \"items\": [\n      0.5,\n      true\n    ],\n    \"maxlen\": 1000\n  }\n}",
            "score_history.items[1]: expected a number, found a boolean (line 6, column 7)",
            (6, 7),
            "score_history.items[1]",
            "true",
        ),
        row(
            r#"{"score_history": [0.5, null]}"#,
            "score_history[1]: expected a number, found null (line 1, column 25)",
            (1, 25),
            "score_history[1]",
            "null",
        ),
        row(
            r#"{"score_history": [{"__type__": "deque", "items": []}]}"#,
            "score_history[0]: expected a number, found a deque (line 1, column 20)",
            (1, 20),
            "score_history[0]",
            "{",
        ),
        // The index is the item's in the file, counting the items the bound dropped.
        row(
            r#"{"score_history": {"__type__": "deque", "items": [1, 2, "x"], "maxlen": 2}}"#,
            "score_history.items[2]: expected a number, found a string (line 1, column 57)",
            (1, 57),
            "score_history.items[2]",
            r#""x""#,
        ),
        row(
            r#"{"score_history": {"__type__": "deque", "items": [1, [], 3], "items": [4, 5, {}], "maxlen": 2}}"#,
            "score_history.items[2]: expected a number, found an object (line 1, column 78)",
            (1, 78),
            "score_history.items[2]",
            "{}",
        ),
        row(
            r#"{"score_history": "0.5"}"#,
            "score_history: expected a deque or an array, found a string (line 1, column 19)",
            (1, 19),
            "score_history",
            r#""0.5""#,
        ),
        row(
            "[1]",
            "the document: expected an object, found an array (line 1, column 1)",
            (1, 1),
            "",
            "[1]",
        ),
        row(
            "\n  null",
            "the document: expected an object, found null (line 2, column 3)",
            (2, 3),
            "",
            "null",
        ),
        row(
            r#""state""#,
            "the document: expected an object, found a string (line 1, column 1)",
            (1, 1),
            "",
            r#""state""#,
        ),
    ];
    assert_rows(&rows, document_err, |e| matches!(e, Error::Shape { .. }));
}

#[test]
fn byte_order_mark_is_not_a_column() {
    // The mark is invisible in an editor: the first line's columns start after it.
    let rows: Vec<(&[u8], &str, (usize, usize))> = vec![
        (
            b"\xEF\xBB\xBF{\"a\": x}",
            r#"expected a value, found 'x' at line 1, column 7 in ["a"]"#,
            (1, 7),
        ),
        (
            b"\xEF\xBB\xBF[1,",
            "unexpected end of input at line 1, column 4 in [1]",
            (1, 4),
        ),
        (
            b"\xEF\xBB\xBF{\"score_history\": [true]}",
            "score_history[0]: expected a number, found a boolean (line 1, column 20)",
            (1, 20),
        ),
        (
            b"\xEF\xBB\xBF[\n1,\n\"\xff\"]",
            "invalid UTF-8 at line 3, column 2 (byte 9)",
            (3, 2),
        ),
        (
            b"\xEF\xBB\xBF\xff",
            "invalid UTF-8 at line 1, column 1 (byte 3)",
            (1, 1),
        ),
    ];
    for (input, message, position) in rows {
        let err = penin_codec::from_slice::<Document>(input).unwrap_err();
        assert_eq!(err.to_string(), message, "{input:?}");
        assert_eq!(err.position(), Some(position), "{input:?}");
    }
}

#[test]
fn score_errors_count_from_the_files_first_item() {
    let input = r#"{"score_history": [1, 2, "x"]}"#;
    for (bound, index) in [(Some(2), 2), (Some(1), 2), (None, 2)] {
        let err = Document::decode(input.as_bytes(), bound).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "score_history[{index}]: expected a number, found a string (line 1, column 26)"
            )
        );
        assert_eq!(err.path(), Some(format!("score_history[{index}]").as_str()));
    }
    // A bad item the bound drops is dropped, as `deque(items, maxlen)` drops it.
    let doc = Document::decode(br#"{"score_history": ["x", 1, 2]}"#, Some(2)).unwrap();
    assert_eq!(doc.score_history.len(), 2);
    let doc: Document = penin_codec::from_str(
        r#"{"score_history": {"__type__": "deque", "items": [null, 1], "maxlen": 1}}"#,
    )
    .unwrap();
    assert_eq!(
        doc.score_history.front(),
        Some(&penin_codec::Number::Int(1))
    );
}

#[test]
fn tagged_value_shape_errors() {
    // Tags anywhere are checked as the seed's hook would build them; the error names the
    // field inside the tagged object.
    let rows = vec![
        row(
            &format!(r#"[{{{ARTIFACT}, "vector": [1, "x"]}}]"#),
            "[0].vector[1]: expected a number, found a string (line 1, column 54)",
            (1, 54),
            "[0].vector[1]",
            r#""x""#,
        ),
        row(
            &format!(r#"{{"m": {{{ARTIFACT}}}}}"#),
            r#"["m"].vector: expected an array of numbers, found nothing (the key is missing) (line 1, column 7)"#,
            (1, 7),
            r#"["m"].vector"#,
            "{",
        ),
        row(
            &format!(r#"{{"m": {{{ARTIFACT}, "vector": [], "metadata": 5}}}}"#),
            r#"["m"].metadata: expected an object, found an integer (line 1, column 71)"#,
            (1, 71),
            r#"["m"].metadata"#,
            "5}",
        ),
        row(
            r#"{"w": {"__type__": "deque", "items": "abc"}}"#,
            r#"["w"].items: expected an array, found a string (line 1, column 38)"#,
            (1, 38),
            r#"["w"].items"#,
            r#""abc""#,
        ),
        row(
            r#"[{"maxlen": -5, "__type__": "deque", "items": []}]"#,
            "[0].maxlen: expected null or a non-negative integer, found -5 (line 1, column 13)",
            (1, 13),
            "[0].maxlen",
            "-5",
        ),
    ];
    assert_rows(&rows, value_err, |e| matches!(e, Error::Shape { .. }));
    // Nested in a document's task record.
    let input = format!(
        "{{\"task_history\": [\n  {{\"best\": {{{ARTIFACT},\n    \"vector\": [0.5, \"x\"]}}}}\n]}}"
    );
    let r = row(
        &input,
        r#"task_history[0]["best"].vector[1]: expected a number, found a string (line 3, column 21)"#,
        (3, 21),
        r#"task_history[0]["best"].vector[1]"#,
        r#""x""#,
    );
    assert_row(&r, &document_err(&input));
}

/// `depth` arrays, one inside the other.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `depth` objects, one inside the other.
fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

#[test]
fn nesting_limit_is_an_error_not_a_stack_overflow() {
    // A small stack proves the limit holds before the stack does.
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            // 512 levels still decode, and write back the same.
            let deepest = nested_arrays(512);
            let v: Value = penin_codec::from_str(&deepest).unwrap();
            assert_eq!(
                String::from_utf8(penin_codec::to_vec_compact(&v)).unwrap(),
                deepest
            );
            let deepest_objects = nested_objects(512);
            let v: Value = penin_codec::from_str(&deepest_objects).unwrap();
            assert_eq!(
                String::from_utf8(penin_codec::to_vec_compact(&v)).unwrap(),
                deepest_objects
            );
            drop(v);
            // In a document the top-level object is the first level.
            let in_document = format!(r#"{{"task_history": [{}]}}"#, nested_arrays(510));
            let doc: Document = penin_codec::from_str(&in_document).unwrap();
            assert_eq!(doc.task_history.len(), 1);

            // 513 levels are refused, at the 513th opening bracket.
            let err = value_err(&nested_arrays(513));
            let path = "[0]".repeat(512);
            assert_eq!(
                err.to_string(),
                format!("nesting deeper than 512 levels at line 1, column 513 in {path}")
            );
            assert_eq!(err.position(), Some((1, 513)));
            assert_eq!(err.path(), Some(path.as_str()));

            let err = value_err(&nested_objects(513));
            let path = "[\"a\"]".repeat(512);
            assert_eq!(
                err.to_string(),
                format!(
                    "nesting deeper than 512 levels at line 1, column {} in {path}",
                    512 * 5 + 1
                )
            );
            assert_eq!(err.position(), Some((1, 512 * 5 + 1)));

            let too_deep_document = format!(r#"{{"task_history": [{}]}}"#, nested_arrays(511));
            let err = document_err(&too_deep_document);
            let path = format!("task_history{}", "[0]".repeat(511));
            assert_eq!(
                err.to_string(),
                format!("nesting deeper than 512 levels at line 1, column 529 in {path}")
            );

            // Far deeper input, as an attacker would send, is refused just the same.
            let err = value_err(&nested_arrays(100_000));
            assert!(matches!(err, Error::Syntax { .. }), "{err:?}");
            assert_eq!(err.position(), Some((1, 513)));
            let err = document_err(&format!(
                r#"{{"knowledge_base": {{"k": {{"metadata": {}}}}}}}"#,
                nested_objects(100_000)
            ));
            assert!(
                err.to_string()
                    .starts_with("nesting deeper than 512 levels"),
                "{err}"
            );
        })
        .unwrap();
    handle.join().expect("the decoder overflowed a 1 MiB stack");
}

#[test]
fn io_errors_carry_their_source() {
    struct Refusing;
    impl std::io::Write for Refusing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("no space"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = penin_codec::from_reader::<Value, _>(Failing).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(err.to_string(), "cannot read or write the stream");
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("disk on fire".to_owned())
    );
    assert_eq!(err.position(), None);
    assert_eq!(err.path(), None);

    let err = penin_codec::to_writer(Refusing, &Value::from(1_i64)).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(
        std::error::Error::source(&err).map(ToString::to_string),
        Some("no space".to_owned())
    );
}
