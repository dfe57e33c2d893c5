//! [`ObjectReader`]: many small JSON objects read one after another, as a column of them is
//! (an arrow snapshot's metadata: one object per artifact).

use penin_artifacts::{Key, Map, Number, Value};

use crate::error::Result;
use crate::read::{Fault, Parser, int_value};
use crate::reader::{Parse, whole};
use crate::source::{Input, Whole};

/// Reads one JSON text after another, each exactly as [`crate::from_str`] reads a
/// [`Value`], and gives an object as its [`Map`]. It is made for a column of small objects:
/// it keeps its working memory from one to the next, and reads a flat object in the form
/// penin writes (`{"source":"docs","n":1}`: no whitespace, strings without escapes, integers,
/// `true`, `false`, `null`) without the general reader, which takes every other text.
///
/// ```
/// use penin_codec::{ObjectReader, Value};
///
/// let mut reader = ObjectReader::new();
/// let map = reader.read(r#"{"source":"docs","n":1}"#)?.unwrap();
/// assert_eq!(map["n"], Value::from(1_i64));
/// let map = reader.read(r#"{ "score": 0.5, "tags": ["a"] }"#)?.unwrap();
/// assert_eq!(map["score"], Value::from(0.5));
/// // Any other value is given as itself; what is not JSON is refused.
/// assert_eq!(reader.read("[1]")?.unwrap_err().kind(), "an array");
/// assert_eq!(
///     reader.read(r#"{"a":}"#).unwrap_err().to_string(),
///     r#"expected a value, found '}' at line 1, column 6 in ["a"]"#
/// );
/// # Ok::<(), penin_codec::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ObjectReader {
    /// The general reader's stack of members, lent from one text to the next.
    members: Vec<(Key, Value)>,
}

impl ObjectReader {
    /// A reader.
    #[must_use]
    pub fn new() -> Self {
        ObjectReader::default()
    }

    /// The value `text` holds: `Ok(Ok(map))` for an object, `Ok(Err(value))` for any other
    /// value (a tagged object too, as what its tag makes of it), and the error
    /// [`crate::from_str`] gives for a text that is not one JSON value.
    pub fn read(&mut self, text: &str) -> Result<std::result::Result<Map, Value>> {
        if let Some(map) = flat_object(text) {
            return Ok(Ok(map));
        }
        let mut parser = Parser::new(Whole::new(text.as_bytes()));
        parser.lend_members(std::mem::take(&mut self.members));
        let read = whole(&mut parser, &ObjectOrValue);
        self.members = parser.take_members();
        read
    }
}

/// An object as its map, any other value as itself.
struct ObjectOrValue;

impl Parse for ObjectOrValue {
    type Output = std::result::Result<Map, Value>;

    fn parse<I: Input>(&self, p: &mut Parser<I>) -> std::result::Result<Self::Output, Fault> {
        p.object_or_value()
    }
}

/// The most members [`flat_object`] takes.
const FLAT_MAX: usize = 8;

/// A member of a flat object: where its key and value lie in the text, and what the value is.
#[derive(Clone, Copy, Default)]
struct Member {
    key: (usize, usize),
    value: (usize, usize),
    kind: Kind,
}

#[derive(Clone, Copy, Default)]
enum Kind {
    #[default]
    Null,
    String,
    Integer,
    True,
    False,
}

/// The map of `text` when it is a flat object in penin's compact form: `{}`, or at most
/// [`FLAT_MAX`] members `"key":value` between commas, without whitespace, each key and
/// string a run of bytes without a quote, a backslash or a control character, each value a
/// string, an integer of at most 18 digits (no leading zero), `true`, `false` or `null`,
/// and no key `__type__` (a tag). `None` for any other text, which the general reader
/// takes: what this gives, for the texts it takes, is what that reader gives.
///
/// Every part is cut next to an ASCII byte (a quote, a digit), so every part of the `&str`
/// is one too: its bytes are not checked again.
fn flat_object(whole: &str) -> Option<Map> {
    let text = whole.as_bytes();
    let mut members = [Member::default(); FLAT_MAX];
    let mut n = 0;
    let mut at = 1;
    if text.first() != Some(&b'{') {
        return None;
    }
    if text.len() != 2 || text[1] != b'}' {
        loop {
            let member = members.get_mut(n)?;
            member.key = string_at(text, at)?;
            if text.get(member.key.1 + 1) != Some(&b':') {
                return None;
            }
            let start = member.key.1 + 2;
            (member.value, member.kind) = match text.get(start)? {
                b'"' => (string_at(text, start)?, Kind::String),
                b'-' | b'0'..=b'9' => (integer_at(text, start)?, Kind::Integer),
                b't' => (word_at(text, start, b"true")?, Kind::True),
                b'f' => (word_at(text, start, b"false")?, Kind::False),
                b'n' => (word_at(text, start, b"null")?, Kind::Null),
                _ => return None,
            };
            n += 1;
            let end = member.value.1 + usize::from(matches!(member.kind, Kind::String));
            match text.get(end)? {
                b',' => at = end + 1,
                b'}' if end + 1 == text.len() => break,
                _ => return None,
            }
        }
    }
    let part = |(start, end): (usize, usize)| whole.get(start..end);
    let mut map = Map::with_capacity(n);
    for member in &members[..n] {
        let key = part(member.key)?;
        if key == "__type__" {
            return None;
        }
        let value = match member.kind {
            Kind::String => Value::String(part(member.value)?.into()),
            Kind::Integer => Value::Number(Number::Int(int_value(
                &text[member.value.0..member.value.1],
            ))),
            Kind::True => Value::Bool(true),
            Kind::False => Value::Bool(false),
            Kind::Null => Value::Null,
        };
        // As the general reader builds an object: a repeated key keeps its first place and
        // its last value.
        map.insert(key, value);
    }
    Some(map)
}

/// The contents of the string whose opening quote is at `at`, as `(start, end)`: the bytes
/// between the quotes, when none is a backslash or a control character.
fn string_at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    if text.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let len = text
        .get(start..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (text[start + len] == b'"').then_some((start, start + len))
}

/// The integer at `at`, as `(start, end)`: an optional minus, then `0` or a digit from 1 to 9
/// and at most 17 more. (What follows it, a fraction or an exponent, is the caller's to
/// refuse: only a comma or the closing brace may.)
fn integer_at(text: &[u8], at: usize) -> Option<(usize, usize)> {
    let sign = usize::from(text.get(at) == Some(&b'-'));
    let digits = text.get(at + sign..)?;
    let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let plain = (1..=18).contains(&count) && (digits[0] != b'0' || count == 1);
    plain.then_some((at, at + sign + count))
}

/// `word` at `at`, as `(start, end)`.
fn word_at(text: &[u8], at: usize, word: &[u8]) -> Option<(usize, usize)> {
    text.get(at..)?
        .starts_with(word)
        .then_some((at, at + word.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general reader gives for `text`, in `ObjectReader::read`'s terms.
    fn general(text: &str) -> std::result::Result<std::result::Result<Map, Value>, String> {
        match crate::from_str::<Value>(text) {
            Ok(Value::Object(map)) if crate::read::tag_of(&map).is_none() => Ok(Ok(*map)),
            Ok(other) => Ok(Err(other)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Both readers agree on `text`, compared by what they write (NaN is not equal to
    /// itself) and by the kinds of their numbers (an integer and a float write apart).
    fn agree(text: &str) {
        let ours = ObjectReader::new().read(text).map_err(|e| e.to_string());
        let theirs = general(text);
        let shown = |r: &std::result::Result<std::result::Result<Map, Value>, String>| match r {
            Ok(Ok(map)) => format!(
                "map {}",
                String::from_utf8(crate::to_vec_compact(map)).unwrap()
            ),
            Ok(Err(value)) => format!(
                "value {}",
                String::from_utf8(crate::to_vec_compact(value)).unwrap()
            ),
            Err(e) => format!("error {e}"),
        };
        assert_eq!(shown(&ours), shown(&theirs), "{text:?}");
    }

    #[test]
    fn flat_objects_are_read_without_the_general_reader_as_it_reads_them() {
        let texts = [
            "{}",
            r#"{"source":"bench","index":0}"#,
            r#"{"a":-0,"b":-12,"c":999999999999999999,"d":-999999999999999999}"#,
            r#"{"t":true,"f":false,"n":null,"s":"","é":"ü😀"}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8}"#,
        ];
        for text in texts {
            assert!(flat_object(text).is_some(), "{text}");
            agree(text);
        }
        let map = ObjectReader::new().read(texts[4]).unwrap().unwrap();
        let keys: Vec<&str> = map.keys().map(penin_artifacts::Key::as_str).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(map["a"], Value::from(3_i64));
    }

    #[test]
    fn every_other_text_is_left_to_the_general_reader_and_read_as_it_reads_it() {
        let texts = [
            // Not flat, or not in penin's compact form: read by the general reader.
            r#"{"a": 1}"#,
            r#" {"a":1}"#,
            r#"{"a":1} "#,
            r#"{"a":1.5}"#,
            r#"{"a":1e5}"#,
            r#"{"a":NaN}"#,
            r#"{"a":-Infinity}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":"\n"}"#,
            r#"{"a\"b":1}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9}"#,
            r#"{"__type__":"deque","items":[1],"maxlen":null}"#,
            r#"{"__type__":"other","a":1}"#,
            r#"{"__type__":"NumericVectorArtifact","vector":[1]}"#,
            r#"{"__type__":"NumericVectorArtifact","vector":["x"]}"#,
            "[1]",
            "1",
            r#""a""#,
            "null",
            // Not JSON: refused as the general reader refuses it.
            "",
            "{",
            r#"{"a""#,
            r#"{"a":"#,
            r#"{"a":}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}}"#,
            r#"{"a":1}x"#,
            r#"{"a":1"#,
            r#"{"a":"b}"#,
            "{\"a\":\"\u{1}\"}",
            "{\"a\":1}\u{0}",
            "{a:1}",
            r#"{"a"1}"#,
        ];
        for text in texts {
            agree(text);
        }
        for text in &texts[..18] {
            assert!(flat_object(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_reader_reads_on_after_a_refused_text() {
        let mut reader = ObjectReader::new();
        assert!(reader.read(r#"{"a":{"b":[1,"#).is_err());
        let map = reader.read(r#"{"a":{"b":[1]}, "c": 2}"#).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(crate::to_vec_compact(&map)).unwrap(),
            r#"{"a":{"b":[1]},"c":2}"#
        );
    }

    mod properties {
        use super::agree;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        /// Keys and strings: mostly plain, sometimes with what the fast path leaves alone.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[a-z_]{0,6}",
                1 => "[a-z\"\\\\é😀\u{1}\n]{0,4}",
                1 => Just("__type__".to_owned()),
            ]
        }

        fn quoted(s: &str) -> String {
            // Not escaped: a quote, a backslash or a control character in `s` makes a text
            // that ends early, escapes or is refused.
            let mut out = String::from("\"");
            out.push_str(s);
            out.push('"');
            out
        }

        /// A value's text: valid or not, as penin writes it or not.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                text().prop_map(|s| quoted(&s)),
                any::<i64>().prop_map(|n| n.to_string()),
                (-99_i64..100).prop_map(|n| n.to_string()),
                "-?0[0-9]{1,3}",
                "[0-9]{17,21}",
                any::<f64>().prop_map(|f| format!("{f:?}")),
                Just("true".to_owned()),
                Just("false".to_owned()),
                Just("null".to_owned()),
                Just("NaN".to_owned()),
                Just("[1,{\"b\":null}]".to_owned()),
                Just("{\"x\":1}".to_owned()),
                Just("tru".to_owned()),
                Just(String::new()),
            ]
        }

        /// An object's text: members, separators with or without spaces, and an end that
        /// may be cut or followed by more.
        fn object() -> impl Strategy<Value = String> {
            (
                prop::collection::vec((text(), value()), 0..11),
                prop_oneof![4 => Just(""), 1 => Just(" ")],
                prop_oneof![8 => Just("}"), 1 => Just(""), 1 => Just("} "), 1 => Just("},"), 1 => Just("}x")],
            )
                .prop_map(|(members, space, end)| {
                    let body: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("{}:{space}{v}", quoted(k)))
                        .collect();
                    format!("{{{}{end}", body.join(&format!(",{space}")))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn both_readers_agree_on_any_object(text in object()) {
                agree(&text);
            }
        }

        /// Objects in penin's compact form, most of which the fast path takes, with the
        /// values next to its edges: tags, the longest integers, leading zeros, cut words.
        fn compact() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                24 => "[a-c]{1,2}",
                1 => Just("__type__".to_owned()),
                1 => Just("é😀\u{7f}".to_owned()),
                1 => Just("a\u{1f}".to_owned()),
            ];
            let value = prop_oneof![
                12 => "-?[1-9][0-9]{0,18}",
                1 => Just("-0".to_owned()),
                1 => Just("0".to_owned()),
                1 => "-?0[0-9]",
                1 => Just("1.0".to_owned()),
                1 => Just("1e2".to_owned()),
                8 => "\"[a-z]{0,3}\"",
                1 => Just("\"deque\"".to_owned()),
                1 => Just("\"NumericVectorArtifact\"".to_owned()),
                1 => Just("true".to_owned()),
                1 => Just("false".to_owned()),
                1 => Just("null".to_owned()),
                1 => Just("nul".to_owned()),
            ];
            (
                prop::collection::vec((key, value), 0..10),
                prop_oneof![12 => Just("}"), 1 => Just("} "), 1 => Just("}}")],
            )
                .prop_map(|(members, end)| {
                    let body: Vec<String> = members
                        .iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}{end}", body.join(","))
                })
        }

        /// Both readers agree on compact objects, and the fast path took a fair share of
        /// them (else this would test the general reader against itself).
        #[test]
        fn both_readers_agree_on_compact_objects_most_read_by_the_fast_path() {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let (mut cases, mut flat, mut members) = (0, 0, 0);
            for _ in 0..6000 {
                let text = compact().new_tree(&mut runner).unwrap().current();
                agree(&text);
                cases += 1;
                if let Some(map) = super::flat_object(&text) {
                    flat += 1;
                    members = members.max(map.len());
                }
            }
            assert!(flat * 5 >= cases, "{flat} of {cases} read by the fast path");
            assert_eq!(members, super::FLAT_MAX);
        }
    }
}
