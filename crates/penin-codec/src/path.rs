//! JSON paths for error messages: `knowledge_base["k"].vector[3]`.
//!
//! A path is built only when an error unwinds, innermost segment first, so that decoding
//! a valid document never pays for it.

use std::fmt::Write as _;

/// One step into a document.
#[derive(Debug)]
pub(crate) enum Segment {
    /// A field the format defines (`knowledge_base`, `vector`, `items`): `.name`.
    Field(&'static str),
    /// A key of a free-form object (knowledge base keys, metadata, task records): `["key"]`.
    Key(String),
    /// An array index: `[3]`.
    Index(usize),
    /// A relative path already spelled out, from a lower layer's error: `vector[3]`.
    Spelled(String),
}

/// Formats segments given innermost first.
pub(crate) fn format(innermost_first: &[Segment]) -> String {
    let mut out = String::new();
    for segment in innermost_first.iter().rev() {
        match segment {
            Segment::Field(name) => dotted(&mut out, name),
            Segment::Spelled(text) if text.starts_with('[') => out.push_str(text),
            Segment::Spelled(text) => dotted(&mut out, text),
            Segment::Key(key) => {
                // Debug quoting escapes quotes, backslashes and control characters and keeps
                // other characters readable.
                let _ = write!(out, "[{key:?}]");
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

fn dotted(out: &mut String, name: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_accessors() {
        let rows: Vec<(Vec<Segment>, &str)> = vec![
            (vec![], ""),
            (vec![Segment::Field("knowledge_base")], "knowledge_base"),
            (
                vec![
                    Segment::Index(3),
                    Segment::Field("vector"),
                    Segment::Key("k".into()),
                    Segment::Field("knowledge_base"),
                ],
                "knowledge_base[\"k\"].vector[3]",
            ),
            (
                vec![
                    Segment::Spelled("items".into()),
                    Segment::Index(0),
                    Segment::Field("task_history"),
                ],
                "task_history[0].items",
            ),
            (
                vec![
                    Segment::Spelled("[2]".into()),
                    Segment::Key("a\"b\n".into()),
                ],
                "[\"a\\\"b\\n\"][2]",
            ),
        ];
        for (segments, expected) in rows {
            assert_eq!(format(&segments), expected);
        }
    }
}
