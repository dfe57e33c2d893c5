//! The seed's state format: JSON with `__type__`-tagged artifacts and deques, read as
//! Python's `json` reads it and written byte for byte as Python's
//! `json.dump(state, f, cls=StateEncoder, indent=2)` writes it.
//!
//! * [`from_slice`], [`from_str`] and [`from_reader`] read a [`Value`] (tags recognised
//!   anywhere) or a whole [`Document`] (the three histories and knowledge base, shape-checked).
//! * [`Reader`] reads either from any [`Source`] (a file is read a window at a time, so
//!   memory holds the state, not the state and the file) with a history bound and a window
//!   size; [`Document::read_from`] is its shortcut. The window never changes what is read.
//! * [`ObjectReader`] reads a column of small objects (an arrow snapshot's metadata), one
//!   after another, as [`from_str`] reads each, faster.
//! * [`to_vec`] and [`to_writer`] write either in Python's layout; [`to_vec_compact`] writes
//!   one line.
//!
//! Errors say where: line, column and the JSON path (`knowledge_base["k"].vector[3]`).
//! `docs/format.md` in the repository specifies the format.
//!
//! # Example
//!
//! ```
//! use penin_codec::{Document, Value};
//!
//! let input = br#"{"knowledge_base": {"e1": {"__type__": "NumericVectorArtifact",
//!     "vector": [0.1, 1e-05, NaN], "metadata": {}}},
//!     "task_history": [{"task_id": 1}], "score_history": [0.85]}"#;
//! let doc: Document = penin_codec::from_slice(input)?;
//! assert_eq!(doc.knowledge_base["e1"].vector[1], 1e-05);
//! assert_eq!(doc.task_history.maxlen(), Some(1000));
//!
//! let text = String::from_utf8(penin_codec::to_vec(&doc)).unwrap();
//! assert!(text.starts_with("{\n  \"knowledge_base\": {\n    \"e1\": {\n      \"__type__\""));
//! assert!(text.contains("        1e-05,\n        NaN\n"));
//!
//! // Errors name the line, the column and the path.
//! let err = penin_codec::from_slice::<Document>(br#"{"knowledge_base": {"k": {"__type__":
//!     "NumericVectorArtifact", "vector": [1, "x"]}}}"#).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"knowledge_base["k"].vector[1]: expected a number, found a string (line 2, column 44)"#
//! );
//!
//! // Any value, with tags recognised anywhere.
//! let value: Value = penin_codec::from_str(r#"{"w": {"__type__": "deque", "items": [1, 2, 3], "maxlen": 2}}"#)?;
//! assert_eq!(String::from_utf8(penin_codec::to_vec_compact(&value)).unwrap(),
//!            r#"{"w":{"__type__":"deque","items":[2,3],"maxlen":2}}"#);
//! # Ok::<(), penin_codec::Error>(())
//! ```

pub use crate::document::{DEFAULT_HISTORY_MAXLEN, Document};
pub use crate::error::{Error, Result};
pub use crate::objects::ObjectReader;
#[cfg(any(test, feature = "testing"))]
pub use crate::placement::refusing_helpers;
pub use crate::placement::{spawn_beside, spawn_scoped_beside};
pub use crate::reader::{DEFAULT_WINDOW, Reader};
pub use crate::source::{Source, buffer, read_full, zeroed};
pub use crate::write::{Encode, Encoder, Style};
pub use penin_artifacts::{
    Deque, Key, KnowledgeBase, Map, Number, NumericVectorArtifact, Text, Value, Vector,
};

mod document;
mod error;
mod float;
mod objects;
mod parallel;
mod path;
mod placement;
mod read;
mod reader;
mod source;
mod write;

use std::io;

/// A type the reader can produce: [`Value`] or [`Document`].
pub trait Decode: Sized {
    /// Reads one from the whole input.
    fn decode(input: &[u8]) -> Result<Self>;
}

impl Decode for Value {
    fn decode(input: &[u8]) -> Result<Self> {
        Reader::new().read_value(input)
    }
}

impl Decode for Document {
    /// With the seed's default bound ([`DEFAULT_HISTORY_MAXLEN`]) for histories written as
    /// plain lists; [`Document::decode`] takes another.
    fn decode(input: &[u8]) -> Result<Self> {
        Document::decode(input, Some(DEFAULT_HISTORY_MAXLEN))
    }
}

/// Reads a value or document from bytes.
pub fn from_slice<T: Decode>(input: &[u8]) -> Result<T> {
    T::decode(input)
}

/// Reads a value or document from a string.
pub fn from_str<T: Decode>(input: &str) -> Result<T> {
    T::decode(input.as_bytes())
}

/// Reads a value or document from a reader, to its end.
pub fn from_reader<T: Decode, R: io::Read>(mut reader: R) -> Result<T> {
    let mut input = Vec::new();
    reader.read_to_end(&mut input).map_err(Error::Io)?;
    T::decode(&input)
}

/// Writes in Python's `indent=2` layout.
#[must_use]
pub fn to_vec<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    to_vec_styled(value, Style::Pretty)
}

/// Writes on one line, with `,` and `:` separators.
#[must_use]
pub fn to_vec_compact<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    to_vec_styled(value, Style::Compact)
}

/// Writes in the given style.
#[must_use]
pub fn to_vec_styled<T: Encode + ?Sized>(value: &T, style: Style) -> Vec<u8> {
    let mut encoder = Encoder::to_vec(style, 4096);
    value.encode(&mut encoder, 0);
    encoder.into_vec()
}

/// Writes in Python's `indent=2` layout to a writer, in chunks: the whole output is never
/// held in memory. The writer is not flushed.
pub fn to_writer<W: io::Write, T: Encode + ?Sized>(writer: W, value: &T) -> Result<()> {
    to_writer_styled(writer, value, Style::Pretty)
}

/// Writes in the given style to a writer, in chunks.
pub fn to_writer_styled<W: io::Write, T: Encode + ?Sized>(
    mut writer: W,
    value: &T,
    style: Style,
) -> Result<()> {
    let mut encoder = Encoder::to_writer(style, &mut writer);
    value.encode(&mut encoder, 0);
    encoder.finish().map_err(Error::Io)
}
