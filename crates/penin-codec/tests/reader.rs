//! The reader, rule by rule (DESIGN.md, "Reader rules"): JSON as Python's `json` reads it,
//! tags recognised anywhere, and what a `Document` makes of a state file.

use std::fs;
use std::path::PathBuf;

use penin_codec::{Deque, Document, Number, NumericVectorArtifact, Reader, Value};

mod common;

use common::{NotInMemory, arr, big, float, int, map, obj, s};

fn artifact(vector: Vec<f64>, metadata: Vec<(&str, Value)>) -> Value {
    Value::from(NumericVectorArtifact::new(vector).with_metadata(map(metadata)))
}

fn deque(items: Vec<Value>, maxlen: Option<usize>) -> Value {
    Value::from(Deque::from_items(items, maxlen))
}

fn value(input: &str) -> Value {
    penin_codec::from_str(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn document(input: &str) -> Document {
    penin_codec::from_str(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn pretty<T: penin_codec::Encode + ?Sized>(value: &T) -> String {
    String::from_utf8(penin_codec::to_vec(value)).unwrap()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The fixture names of `MANIFEST.tsv`.
fn fixture_names() -> Vec<String> {
    let manifest = fs::read_to_string(fixtures().join("MANIFEST.tsv")).unwrap();
    let names: Vec<String> = manifest
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    names
}

/// Removes every whitespace byte outside strings: the compact one-line form of a file,
/// made without the codec's own writer.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// Indentation by tabs and CRLF line ends, and blanks around every separator.
fn loosen(text: &str) -> String {
    let mut out = String::new();
    for line in text.split('\n') {
        let body = line.trim_start_matches(' ');
        let depth = (line.len() - body.len()) / 2;
        out.push_str(&"\t".repeat(depth));
        // Strings in the fixtures hold no `": "` of their own but may hold `,`: only the
        // key separator and the line-ending comma are touched.
        let body = body.replacen("\": ", "\" \t:\r\n ", 1);
        let body = match body.strip_suffix(',') {
            Some(rest) => format!("{rest} \t,"),
            None => body,
        };
        out.push_str(&body);
        out.push_str("\r\n");
    }
    format!(" \r\n\t{out}\n\n ")
}

#[test]
fn any_json_whitespace_reads_the_same() {
    let pretty_form = "{\n  \"a\": [\n    1,\n    2.5\n  ],\n  \"b\": {\n    \"c\": null\n  }\n}";
    let expected = obj(vec![
        ("a", arr(vec![int(1), float(2.5)])),
        ("b", obj(vec![("c", Value::Null)])),
    ]);
    let rows: &[&str] = &[
        pretty_form,
        r#"{"a":[1,2.5],"b":{"c":null}}"#,
        "{\r\n  \"a\": [\r\n    1,\r\n    2.5\r\n  ],\r\n  \"b\": {\r\n    \"c\": null\r\n  }\r\n}\r\n",
        "{\n\t\"a\": [\n\t\t1,\n\t\t2.5\n\t],\n\t\"b\": {\n\t\t\"c\": null\n\t}\n}",
        " \t\r\n{ \"a\" : [ 1 , 2.5 ] , \"b\" : { \"c\" : null } } \n\n",
    ];
    for input in rows {
        assert_eq!(value(input), expected, "{input:?}");
        assert_eq!(pretty(&value(input)), pretty_form, "{input:?}");
    }
}

#[test]
fn every_fixture_reads_the_same_compact_or_loosened() {
    for name in fixture_names() {
        let text = fs::read_to_string(fixtures().join(format!("{name}.expected.json"))).unwrap();
        let reference = Document::decode(text.as_bytes(), Some(1000)).unwrap();
        for (form, variant) in [
            ("compact", minify(&text)),
            ("crlf", text.replace('\n', "\r\n")),
            ("loosened", loosen(&text)),
        ] {
            assert_ne!(variant, text, "{name} {form}: the variant is the same text");
            let doc: Document =
                penin_codec::from_str(&variant).unwrap_or_else(|e| panic!("{name} {form}: {e}"));
            // Bytes rather than `==`, so that NaN compares equal to itself.
            assert_eq!(pretty(&doc), text, "{name} {form}");
            if name != "non_finite" {
                assert_eq!(doc, reference, "{name} {form}");
            }
            let as_value: Value = penin_codec::from_str(&variant).unwrap();
            assert_eq!(pretty(&as_value), text, "{name} {form} as a value");
        }
        assert!(!minify(&text).contains('\n'));
    }
}

#[test]
fn byte_order_mark_is_skipped() {
    let rows: &[(&[u8], Value)] = &[
        (b"\xEF\xBB\xBF{\"a\": 1}", obj(vec![("a", int(1))])),
        (b"\xEF\xBB\xBF[]", arr(vec![])),
        (b"\xEF\xBB\xBF \n 7", int(7)),
    ];
    for (input, expected) in rows {
        assert_eq!(&penin_codec::from_slice::<Value>(input).unwrap(), expected);
    }
    let doc: Document = penin_codec::from_slice(b"\xEF\xBB\xBF{\"score_history\": [0.5]}").unwrap();
    assert_eq!(doc.score_history.front(), Some(&Number::Float(0.5)));
}

#[test]
fn python_non_finite_tokens() {
    let parsed = value("[NaN, Infinity, -Infinity, 1.0]");
    let Value::Array(items) = parsed else {
        panic!("not an array")
    };
    let floats: Vec<f64> = items.iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(floats[0].is_nan());
    assert_eq!(floats[1], f64::INFINITY);
    assert_eq!(floats[2], f64::NEG_INFINITY);
    assert!(matches!(items[0], Value::Number(Number::Float(_))));
    assert_eq!(
        pretty(&Value::Array(items)),
        "[\n  NaN,\n  Infinity,\n  -Infinity,\n  1.0\n]"
    );
    let doc = document(
        r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [NaN, -Infinity]}}, "score_history": [Infinity]}"#,
    );
    let v = &doc.knowledge_base["k"].vector;
    assert!(v[0].is_nan() && v[1] == f64::NEG_INFINITY);
    assert_eq!(
        doc.score_history.front(),
        Some(&Number::Float(f64::INFINITY))
    );
}

#[test]
fn numbers_read_as_python_reads_them() {
    let rows: Vec<(&str, Value, &str)> = vec![
        ("0", int(0), "0"),
        ("-0", int(0), "0"),
        ("-0.0", float(-0.0), "-0.0"),
        ("1", int(1), "1"),
        ("1.0", float(1.0), "1.0"),
        ("1E2", float(100.0), "100.0"),
        ("1e-5", float(1e-05), "1e-05"),
        ("2.5E+3", float(2500.0), "2500.0"),
        ("1e400", float(f64::INFINITY), "Infinity"),
        ("-1e400", float(f64::NEG_INFINITY), "-Infinity"),
        ("1e-400", float(0.0), "0.0"),
        ("0.1000000000000000055511151231257827", float(0.1), "0.1"),
        ("9223372036854775807", int(i64::MAX), "9223372036854775807"),
        (
            "-9223372036854775808",
            int(i64::MIN),
            "-9223372036854775808",
        ),
        (
            "9223372036854775808",
            big("9223372036854775808"),
            "9223372036854775808",
        ),
        (
            "-9223372036854775809",
            big("-9223372036854775809"),
            "-9223372036854775809",
        ),
        (
            "123456789012345678901234567890",
            big("123456789012345678901234567890"),
            "123456789012345678901234567890",
        ),
    ];
    for (input, expected, written) in rows {
        let read = value(input);
        match (&read, &expected) {
            (Value::Number(Number::Float(a)), Value::Number(Number::Float(b))) => {
                assert_eq!(a.to_bits(), b.to_bits(), "{input}");
            }
            _ => assert_eq!(read, expected, "{input}"),
        }
        assert_eq!(pretty(&read), written, "{input}");
    }
}

#[test]
fn big_integers_are_kept_exactly() {
    let input = r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [
      {
        "id": 123456789012345678901234567890,
        "low": -9223372036854775809,
        "max": 9223372036854775807
      }
    ],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [
      123456789012345678901234567890,
      -9223372036854775809,
      1
    ],
    "maxlen": 1000
  }
}"#;
    let doc = document(input);
    let scores: Vec<Number> = doc.score_history.iter().cloned().collect();
    assert_eq!(
        scores,
        [
            Number::parse_integer("123456789012345678901234567890").unwrap(),
            Number::parse_integer("-9223372036854775809").unwrap(),
            Number::Int(1),
        ]
    );
    assert_eq!(pretty(&doc), input);
    assert_eq!(pretty(&value(input)), input);

    // Python's limit is 4300 digits: that many are read and re-written exactly.
    for digits in [
        "7".repeat(4300),
        format!("-{}", "1".repeat(4300)),
        format!("1{}", "0".repeat(999)),
    ] {
        let read = value(&digits);
        assert_eq!(read, big(&digits));
        assert_eq!(pretty(&read), digits);
    }
}

#[test]
fn integers_beyond_python_limit_are_refused() {
    let rows: Vec<(String, &str)> = vec![
        (
            "1".repeat(4301),
            "integer of 4301 digits: more than the 4300 Python reads at line 1, column 1",
        ),
        (
            format!("[-{}]", "9".repeat(5000)),
            "integer of 5000 digits: more than the 4300 Python reads at line 1, column 2 in [0]",
        ),
    ];
    for (input, message) in rows {
        let err = penin_codec::from_str::<Value>(&input).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert!(matches!(err, penin_codec::Error::Syntax { .. }));
    }
    let err = penin_codec::from_str::<Document>(&format!(
        "{{\"score_history\": [{}]}}",
        "5".repeat(4301)
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "integer of 4301 digits: more than the 4300 Python reads at line 1, column 20 in score_history[0]"
    );
}

#[test]
fn duplicate_key_keeps_last_value_in_first_place() {
    let rows: Vec<(&str, Value)> = vec![
        (
            r#"{"a": 1, "b": 2, "a": 3}"#,
            obj(vec![("a", int(3)), ("b", int(2))]),
        ),
        (
            r#"{"x": [1], "y": null, "x": {"z": true}, "x": "last"}"#,
            obj(vec![("x", s("last")), ("y", Value::Null)]),
        ),
        // The tag is looked up after the last duplicate, as Python's hook sees the dict.
        (
            r#"{"__type__": "deque", "items": [1], "__type__": "other"}"#,
            obj(vec![("__type__", s("other")), ("items", arr(vec![int(1)]))]),
        ),
        (
            r#"{"__type__": "other", "items": [1, 2], "__type__": "deque", "maxlen": 1}"#,
            deque(vec![int(2)], Some(1)),
        ),
        (
            r#"{"__type__": "NumericVectorArtifact", "vector": [1.0], "vector": [2.0, 3.0]}"#,
            artifact(vec![2.0, 3.0], vec![]),
        ),
    ];
    for (input, expected) in rows {
        let read = value(input);
        assert_eq!(read, expected, "{input}");
    }
    assert_eq!(
        pretty(&value(r#"{"a": 1, "b": 2, "a": 3}"#)),
        "{\n  \"a\": 3,\n  \"b\": 2\n}"
    );

    let doc = document(
        r#"{"z": 1, "knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0]}, "j": {"__type__": "NumericVectorArtifact", "vector": []}, "k": {"__type__": "NumericVectorArtifact", "vector": [2.0]}}, "y": 2, "z": 3, "score_history": [1], "score_history": [2]}"#,
    );
    let keys: Vec<&str> = doc.knowledge_base.keys().map(String::as_str).collect();
    assert_eq!(keys, ["k", "j"]);
    assert_eq!(doc.knowledge_base["k"].vector, [2.0]);
    assert_eq!(doc.extra, map(vec![("z", int(3)), ("y", int(2))]));
    assert_eq!(doc.score_history.front(), Some(&Number::Int(2)));
    assert_eq!(doc.score_history.len(), 1);
}

#[test]
fn string_escapes_decode() {
    let rows: &[(&str, &str)] = &[
        (r#""""#, ""),
        (r#""plain""#, "plain"),
        (r#""\"\\\/""#, "\"\\/"),
        (r#""\b\f\n\r\t""#, "\u{8}\u{c}\n\r\t"),
        (r#""\u0000\u001f\u007f""#, "\u{0}\u{1f}\u{7f}"),
        (r#""\u00e9\u00E9\u00c9""#, "ééÉ"),
        (r#""\uABCD\uabcd""#, "\u{abcd}\u{abcd}"),
        (r#""\u2028""#, "\u{2028}"),
        (r#""\ud83d\ude00""#, "😀"),
        (r#""\uD83D\uDE00""#, "😀"),
        (r#""\ud800\udc00\udbff\udfff""#, "\u{10000}\u{10ffff}"),
        (r#""a\/b""#, "a/b"),
        ("\"raw é ☕ 😀 \u{7f}\"", "raw é ☕ 😀 \u{7f}"),
        (r#""x\u0041y""#, "xAy"),
    ];
    for &(input, expected) in rows {
        assert_eq!(value(input), s(expected), "{input}");
    }
    // Keys too, and re-written as Python writes them.
    let read = value(r#"{"caf\u00E9 \/ \uD83D\uDE80": "\u00e9"}"#);
    assert_eq!(read, obj(vec![("café / 🚀", s("é"))]));
    assert_eq!(
        pretty(&read),
        "{\n  \"caf\\u00e9 / \\ud83d\\ude80\": \"\\u00e9\"\n}"
    );
}

#[test]
fn deque_with_more_items_than_maxlen_keeps_newest() {
    let rows: Vec<(&str, Value)> = vec![
        (
            r#"{"__type__": "deque", "items": [1, 2, 3, 4], "maxlen": 2}"#,
            deque(vec![int(3), int(4)], Some(2)),
        ),
        (
            r#"{"__type__": "deque", "items": [1, 2, 3], "maxlen": 0}"#,
            deque(vec![], Some(0)),
        ),
        (
            r#"{"__type__": "deque", "items": [1, 2], "maxlen": 5}"#,
            deque(vec![int(1), int(2)], Some(5)),
        ),
        (
            r#"{"__type__": "deque", "items": [1, 2]}"#,
            deque(vec![int(1), int(2)], None),
        ),
        (
            r#"{"maxlen": 1, "items": ["a", "b"], "__type__": "deque"}"#,
            deque(vec![s("b")], Some(1)),
        ),
    ];
    for (input, expected) in rows {
        let read = value(input);
        assert_eq!(read, expected, "{input}");
        let Value::Deque(d) = &read else {
            panic!("{input}: not a deque")
        };
        if let Some(max) = d.maxlen() {
            assert!(d.len() <= max);
        }
    }
    assert_eq!(
        pretty(&value(
            r#"{"__type__": "deque", "items": [1, 2, 3, 4], "maxlen": 2}"#
        )),
        "{\n  \"__type__\": \"deque\",\n  \"items\": [\n    3,\n    4\n  ],\n  \"maxlen\": 2\n}"
    );
    let doc = document(
        r#"{"task_history": {"__type__": "deque", "items": [{"t": 1}, {"t": 2}, {"t": 3}], "maxlen": 2}}"#,
    );
    let tasks: Vec<Value> = doc.task_history.iter().cloned().collect();
    assert_eq!(tasks, [obj(vec![("t", int(2))]), obj(vec![("t", int(3))])]);
    assert_eq!(doc.task_history.maxlen(), Some(2));
}

#[test]
fn tags_are_recognised_anywhere() {
    let a = r#"{"__type__": "NumericVectorArtifact", "vector": [1.5], "metadata": {}}"#;
    let d = r#"{"__type__": "deque", "items": [1], "maxlen": 3}"#;
    let rows: Vec<(String, Value)> = vec![
        (a.to_owned(), artifact(vec![1.5], vec![])),
        (d.to_owned(), deque(vec![int(1)], Some(3))),
        (
            format!("[{a}, {d}]"),
            arr(vec![
                artifact(vec![1.5], vec![]),
                deque(vec![int(1)], Some(3)),
            ]),
        ),
        (
            format!(r#"{{"task_id": 1, "best": {a}}}"#),
            obj(vec![
                ("task_id", int(1)),
                ("best", artifact(vec![1.5], vec![])),
            ]),
        ),
        (
            format!(
                r#"{{"__type__": "NumericVectorArtifact", "vector": [], "metadata": {{"window": {d}}}}}"#
            ),
            artifact(vec![], vec![("window", deque(vec![int(1)], Some(3)))]),
        ),
        (
            format!(r#"{{"__type__": "deque", "items": [{a}, [{d}]], "maxlen": null}}"#),
            deque(
                vec![
                    artifact(vec![1.5], vec![]),
                    arr(vec![deque(vec![int(1)], Some(3))]),
                ],
                None,
            ),
        ),
        (
            format!(r#"{{"l1": [{{"l2": {{"l3": [[{{"l4": {d}}}]]}}}}]}}"#),
            obj(vec![(
                "l1",
                arr(vec![obj(vec![(
                    "l2",
                    obj(vec![(
                        "l3",
                        arr(vec![arr(vec![obj(vec![(
                            "l4",
                            deque(vec![int(1)], Some(3)),
                        )])])]),
                    )]),
                )])]),
            )]),
        ),
        (
            // An artifact whose metadata holds an artifact whose metadata holds a deque of artifacts.
            format!(
                r#"{{"__type__": "NumericVectorArtifact", "vector": [0.0], "metadata": {{"child": {{"__type__": "NumericVectorArtifact", "vector": [2.0], "metadata": {{"w": {{"__type__": "deque", "items": [{a}], "maxlen": 1}}}}}}}}}}"#
            ),
            artifact(
                vec![0.0],
                vec![(
                    "child",
                    artifact(
                        vec![2.0],
                        vec![("w", deque(vec![artifact(vec![1.5], vec![])], Some(1)))],
                    ),
                )],
            ),
        ),
    ];
    for (input, expected) in rows {
        assert_eq!(value(&input), expected, "{input}");
    }
    // In a document: inside task records and inside knowledge base metadata.
    let doc = document(&format!(
        r#"{{"knowledge_base": {{"k": {{"__type__": "NumericVectorArtifact", "vector": [], "metadata": {{"m": {d}}}}}}}, "task_history": [{{"best": {a}}}]}}"#
    ));
    assert_eq!(
        doc.knowledge_base["k"].metadata["m"],
        deque(vec![int(1)], Some(3))
    );
    assert_eq!(
        doc.task_history.front(),
        Some(&obj(vec![("best", artifact(vec![1.5], vec![]))]))
    );
}

#[test]
fn unknown_tags_stay_plain_objects() {
    let rows: &[&str] = &[
        r#"{"__type__": "Other", "vector": [1], "metadata": {}}"#,
        r#"{"__type__": "numericvectorartifact", "vector": [1]}"#,
        r#"{"__type__": "Deque", "items": "not a list"}"#,
        r#"{"__type__": 5, "items": [1], "maxlen": -1}"#,
        r#"{"__type__": null}"#,
        r#"{"__type__": ["deque"], "items": {}}"#,
    ];
    for input in rows {
        let read = value(input);
        assert!(matches!(read, Value::Object(_)), "{input}: {read:?}");
        // Re-saved unchanged: the pretty form of the same object, keys and all.
        let compact = String::from_utf8(penin_codec::to_vec_compact(&read)).unwrap();
        assert_eq!(
            compact,
            input.replace(": ", ":").replace(", ", ","),
            "{input}"
        );
    }
    let input = r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [
      {
        "x": {
          "__type__": "Matrix",
          "rows": [
            [
              1,
              2
            ]
          ]
        }
      }
    ],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  }
}"#;
    assert_eq!(pretty(&document(input)), input);
    assert_eq!(pretty(&value(input)), input);
}

#[test]
fn unknown_top_level_keys_survive_in_order() {
    let input = r#"{"version": 2, "knowledge_base": {}, "zeta": [1], "task_history": [], "alpha": null, "score_history": [], "meta": {"__type__": "deque", "items": [], "maxlen": 1}}"#;
    let doc = document(input);
    let keys: Vec<&str> = doc.extra.keys().map(penin_codec::Key::as_str).collect();
    assert_eq!(keys, ["version", "zeta", "alpha", "meta"]);
    assert_eq!(doc.extra["meta"], deque(vec![], Some(1)));
    assert_eq!(
        pretty(&doc),
        r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  },
  "version": 2,
  "zeta": [
    1
  ],
  "alpha": null,
  "meta": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1
  }
}"#
    );
}

#[test]
fn plain_list_histories_get_the_configured_bound() {
    let input = r#"{"task_history": [{"t": 1}, {"t": 2}, {"t": 3}, {"t": 4}, {"t": 5}, {"t": 6}, {"t": 7}], "score_history": [1, 2.5, 3, 4, 5, 6, 7]}"#;
    let rows: Vec<(Option<usize>, Option<usize>, usize, Number)> = vec![
        (Some(1000), Some(1000), 7, Number::Int(1)),
        (Some(5), Some(5), 5, Number::Int(3)),
        (Some(1), Some(1), 1, Number::Int(7)),
        (None, None, 7, Number::Int(1)),
    ];
    for (configured, maxlen, len, first_score) in rows {
        let doc = Document::decode(input.as_bytes(), configured).unwrap();
        assert_eq!(doc.task_history.maxlen(), maxlen);
        assert_eq!(doc.score_history.maxlen(), maxlen);
        assert_eq!(doc.task_history.len(), len);
        assert_eq!(doc.score_history.len(), len);
        assert_eq!(doc.score_history.front(), Some(&first_score));
        assert_eq!(doc.task_history.back(), Some(&obj(vec![("t", int(7))])));
    }
    // `from_slice` is the seed's default, 1000.
    let doc: Document = penin_codec::from_str(input).unwrap();
    assert_eq!(doc.task_history.maxlen(), Some(1000));
    let scores: Vec<Number> = doc.score_history.iter().cloned().collect();
    assert_eq!(scores[1], Number::Float(2.5));
    assert_eq!(scores[2], Number::Int(3));
}

#[test]
fn missing_top_level_keys_give_empty_defaults() {
    let rows: Vec<(&str, Option<usize>)> = vec![
        ("{}", Some(1000)),
        (" { } ", Some(7)),
        (r#"{"other": 1}"#, None),
    ];
    for (input, configured) in rows {
        let doc = Document::decode(input.as_bytes(), configured).unwrap();
        assert!(doc.knowledge_base.is_empty(), "{input}");
        assert!(doc.task_history.is_empty(), "{input}");
        assert!(doc.score_history.is_empty(), "{input}");
        assert_eq!(doc.task_history.maxlen(), configured, "{input}");
        assert_eq!(doc.score_history.maxlen(), configured, "{input}");
    }
    assert_eq!(document("{}"), Document::default());
    let only_kb = document(
        r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0]}}}"#,
    );
    assert_eq!(only_kb.knowledge_base.len(), 1);
    assert_eq!(only_kb.task_history.maxlen(), Some(1000));
    assert!(only_kb.score_history.is_empty());
}

#[test]
fn the_files_maxlen_wins() {
    let input = r#"{"task_history": {"__type__": "deque", "items": [1, 2, 3], "maxlen": 7}, "score_history": {"__type__": "deque", "items": [0.5], "maxlen": null}}"#;
    for configured in [Some(1), Some(5), Some(1000), None] {
        let doc = Document::decode(input.as_bytes(), configured).unwrap();
        assert_eq!(doc.task_history.maxlen(), Some(7));
        assert_eq!(doc.task_history.len(), 3);
        assert_eq!(doc.score_history.maxlen(), None);
    }
}

#[test]
fn tagged_objects_keep_extra_keys_after_the_known_ones() {
    let rows: &[(&str, &str)] = &[
        (
            r#"{"id": "e1", "__type__": "NumericVectorArtifact", "metadata": {"m": 1}, "vector": [1.5], "z": [true]}"#,
            r#"{"__type__":"NumericVectorArtifact","vector":[1.5],"metadata":{"m":1},"id":"e1","z":[true]}"#,
        ),
        (
            r#"{"__type__": "NumericVectorArtifact", "vector": [], "metadata": null, "x": null}"#,
            r#"{"__type__":"NumericVectorArtifact","vector":[],"metadata":{},"x":null}"#,
        ),
        (
            r#"{"note": "kept", "__type__": "deque", "maxlen": 2, "items": [1, 2, 3], "more": {}}"#,
            r#"{"__type__":"deque","items":[2,3],"maxlen":2,"note":"kept","more":{}}"#,
        ),
    ];
    for &(input, expected) in rows {
        let read = value(input);
        assert_eq!(
            String::from_utf8(penin_codec::to_vec_compact(&read)).unwrap(),
            expected,
            "{input}"
        );
    }
    let Value::Artifact(a) = value(rows[0].0) else {
        panic!("not an artifact")
    };
    assert_eq!(
        a.extra(),
        &map(vec![("id", s("e1")), ("z", arr(vec![Value::Bool(true)]))])
    );

    // The same in a document's knowledge base and histories.
    let input = r#"{
  "knowledge_base": {
    "k": {
      "__type__": "NumericVectorArtifact",
      "vector": [
        1.0
      ],
      "metadata": {},
      "id": "e1"
    }
  },
  "task_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000,
    "note": "t"
  },
  "score_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000,
    "note": "s"
  }
}"#;
    let doc = document(input);
    assert_eq!(doc.knowledge_base["k"].extra(), &map(vec![("id", s("e1"))]));
    assert_eq!(doc.task_history.extra(), &map(vec![("note", s("t"))]));
    assert_eq!(doc.score_history.extra(), &map(vec![("note", s("s"))]));
    assert_eq!(pretty(&doc), input);
    let shuffled = r#"{"knowledge_base": {"k": {"id": "e1", "vector": [1], "__type__": "NumericVectorArtifact"}}, "task_history": {"note": "t", "items": [], "__type__": "deque", "maxlen": 1000}, "score_history": {"maxlen": 1000, "__type__": "deque", "note": "s", "items": []}}"#;
    assert_eq!(pretty(&document(shuffled)), input);
}

#[test]
fn reading_from_a_reader_is_reading_the_bytes() {
    let input = br#"{"score_history": [0.5, 1]}"#;
    let from_reader: Document = penin_codec::from_reader(&input[..]).unwrap();
    let from_slice: Document = penin_codec::from_slice(input).unwrap();
    assert_eq!(from_reader, from_slice);
    assert_eq!(from_reader.score_history.len(), 2);
}

// The seed's own decoder tests, by name.

#[test]
fn decoder_artifact() {
    let read = value(
        r#"{"__type__": "NumericVectorArtifact", "vector": [0.1, 0.2, 0.3], "metadata": {"source": "test"}}"#,
    );
    let Value::Artifact(a) = &read else {
        panic!("not an artifact: {read:?}")
    };
    assert_eq!(a.vector, [0.1, 0.2, 0.3]);
    assert_eq!(a.metadata, map(vec![("source", s("test"))]));
    assert!(a.extra().is_empty());
    // Metadata missing is empty, as `d.get("metadata", {})`.
    let read = value(r#"{"__type__": "NumericVectorArtifact", "vector": [1, 2.5]}"#);
    assert_eq!(read, artifact(vec![1.0, 2.5], vec![]));
}

#[test]
fn decoder_deque() {
    let read = value(r#"{"__type__": "deque", "items": [1, 2, 3], "maxlen": 5}"#);
    let Value::Deque(d) = &read else {
        panic!("not a deque: {read:?}")
    };
    assert_eq!(
        d.iter().cloned().collect::<Vec<_>>(),
        [int(1), int(2), int(3)]
    );
    assert_eq!(d.maxlen(), Some(5));
    let read = value(r#"{"__type__": "deque", "items": [1, 2, 3], "maxlen": null}"#);
    let Value::Deque(d) = &read else {
        panic!("not a deque: {read:?}")
    };
    assert_eq!(d.len(), 3);
    assert_eq!(d.maxlen(), None);
}

#[test]
fn decoder_plain_dict() {
    let read = value(r#"{"key": "value", "number": 42, "nested": {"a": [1, 2.0]}}"#);
    assert_eq!(
        read,
        obj(vec![
            ("key", s("value")),
            ("number", int(42)),
            ("nested", obj(vec![("a", arr(vec![int(1), float(2.0)]))])),
        ])
    );
}

#[test]
fn decoder_full_document() {
    let input = fs::read(fixtures().join("seed_demo.json")).unwrap();
    let doc: Document = penin_codec::from_slice(&input).unwrap();
    let keys: Vec<&str> = doc.knowledge_base.keys().map(String::as_str).collect();
    assert_eq!(keys, ["embedding_1", "embedding_2"]);
    assert_eq!(doc.knowledge_base["embedding_1"].vector, [0.1, 0.2, 0.3]);
    assert_eq!(doc.knowledge_base["embedding_2"].vector, [0.4, 0.5, 0.6]);
    assert_eq!(doc.task_history.maxlen(), Some(1000));
    assert_eq!(doc.task_history.len(), 2);
    let Some(Value::Object(first)) = doc.task_history.front() else {
        panic!("first task is not an object")
    };
    assert_eq!(first.get("task_id"), Some(&int(1)));
    assert_eq!(doc.score_history.maxlen(), Some(1000));
    let scores: Vec<Number> = doc.score_history.iter().cloned().collect();
    assert_eq!(
        scores,
        [Number::Float(0.85), Number::Float(0.87), Number::Float(0.9)]
    );
    assert!(doc.extra.is_empty());

    let inline = document(
        r#"{"knowledge_base": {"key1": {"__type__": "NumericVectorArtifact", "vector": [0.1, 0.2, 0.3], "metadata": {}}}, "task_history": {"__type__": "deque", "items": [{"task_id": 1, "type": "evolution"}], "maxlen": 1000}, "score_history": {"__type__": "deque", "items": [0.85, 0.90], "maxlen": 1000}}"#,
    );
    assert_eq!(inline.knowledge_base["key1"].vector, [0.1, 0.2, 0.3]);
    assert_eq!(
        inline.task_history.front(),
        Some(&obj(vec![("task_id", int(1)), ("type", s("evolution"))]))
    );
    assert_eq!(inline.score_history.back(), Some(&Number::Float(0.9)));
}

#[test]
fn every_fixture_round_trips_to_a_fixed_point() {
    for name in fixture_names() {
        for file in [format!("{name}.json"), format!("{name}.expected.json")] {
            let input = fs::read(fixtures().join(&file)).unwrap();
            let once: Document = penin_codec::from_slice(&input).unwrap();
            let first = penin_codec::to_vec(&once);
            let twice: Document = penin_codec::from_slice(&first).unwrap();
            let second = penin_codec::to_vec(&twice);
            assert!(
                first == second,
                "{file}: the second save differs from the first"
            );

            let once: Value = penin_codec::from_slice(&input).unwrap();
            let first_value = penin_codec::to_vec(&once);
            let twice: Value = penin_codec::from_slice(&first_value).unwrap();
            assert!(
                penin_codec::to_vec(&twice) == first_value,
                "{file}: value round trip differs"
            );
            assert!(
                first_value == first,
                "{file}: value and document saves differ"
            );

            let compact = penin_codec::to_vec_compact(&once);
            let back: Value = penin_codec::from_slice(&compact).unwrap();
            assert!(
                penin_codec::to_vec(&back) == first,
                "{file}: compact round trip differs"
            );
        }
    }
}

/// A knowledge base over 4 MiB is read on two threads. Whatever the layout, and wherever
/// the guessed boundary falls (in compact files `},"` also occurs inside metadata), the
/// result is the one-thread result: same entries, same order, duplicate keys resolved as a
/// Python dict does, and an error in the second half reported as itself.
#[test]
fn large_knowledge_bases_read_the_same_on_two_threads() {
    use penin_codec::{Document, Map, NumericVectorArtifact, Style};
    let mut doc = Document::default();
    for i in 0..4000_i32 {
        let mut inner = Map::new();
        inner.insert("b", Value::from(i64::from(i)));
        let mut metadata = Map::new();
        metadata.insert("a", Value::from(inner));
        metadata.insert("c", Value::from("},\"k\": {"));
        let vector: Vec<f64> = (0..100).map(|j| f64::from(i * 100 + j) / 3.0).collect();
        // "dup" comes back near the end: it keeps its first place and takes the last value.
        let key = if i == 1 || i == 3900 {
            "dup".to_owned()
        } else {
            format!("k{i}")
        };
        doc.knowledge_base.insert(
            key,
            NumericVectorArtifact::new(vector).with_metadata(metadata),
        );
    }
    for style in [Style::Pretty, Style::Compact] {
        let bytes = penin_codec::to_vec_styled(&doc, style);
        assert!(bytes.len() > 5 << 20, "{} bytes", bytes.len());
        let back = Document::decode(&bytes, Some(1000)).unwrap();
        assert_eq!(back, doc, "{style:?}");
        // Through windows too, each thread with its own.
        let windowed = Reader::new().read_document(&NotInMemory(&bytes)).unwrap();
        assert_eq!(windowed, doc, "{style:?}, windowed");
        assert_eq!(back.knowledge_base.get_index_of("dup"), Some(1));

        // Break an artifact near the end: the error is the one a single parser reports.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let at = text.rfind("NumericVectorArtifact").unwrap();
        let mut broken = text.clone();
        broken.replace_range(at..at + 21, "NumericVectorArtefact");
        let err = Document::decode(broken.as_bytes(), Some(1000)).unwrap_err();
        let windowed = Reader::new()
            .read_document(&NotInMemory(broken.as_bytes()))
            .unwrap_err();
        assert_eq!(windowed.to_string(), err.to_string(), "{style:?}");
        assert_eq!(
            err.path(),
            Some("knowledge_base[\"k3999\"]"),
            "{style:?}: {err}"
        );
        let (line, column) = err.position().unwrap();
        let start = broken.rfind("\"k3999\"").unwrap();
        let object = start + broken[start..].find('{').unwrap();
        let before = &broken[..object];
        assert_eq!(line, before.matches('\n').count() + 1, "{style:?}");
        assert_eq!(
            column,
            object - before.rfind('\n').map_or(0, |n| n + 1) + 1,
            "{style:?}"
        );
    }
}
