use std::fmt;
use std::io;

/// An error reading or writing the state format.
///
/// Every decoding error says where: the line and column (1-based, columns in characters)
/// and, once inside the document, the JSON path of the value, such as
/// `knowledge_base["k"].vector[3]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input holds nothing but whitespace.
    #[error("the document is empty")]
    Empty,
    /// The input is not UTF-8.
    #[error("invalid UTF-8 at line {line}, column {column} (byte {offset})")]
    InvalidUtf8 {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The input ends in the middle of the document.
    #[error("unexpected end of input at line {line}, column {column}{}", Within(.path))]
    Truncated {
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Where in the document, empty at the top.
        path: String,
    },
    /// The input is not JSON (with Python's `NaN` and `Infinity` tokens).
    #[error("{message} at line {line}, column {column}{}", Within(.path))]
    Syntax {
        /// What is wrong.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Where in the document, empty at the top.
        path: String,
    },
    /// The input is JSON, but a value does not have the shape the format requires.
    #[error("{}: {message} (line {line}, column {column})", Named(.path))]
    Shape {
        /// What is wrong: `expected a number, found a string`.
        message: String,
        /// 1-based line of the value.
        line: usize,
        /// 1-based column of the value, in characters.
        column: usize,
        /// Where in the document, empty for the document itself.
        path: String,
    },
    /// Reading or writing the underlying stream failed.
    #[error("cannot read or write the stream")]
    Io(#[source] io::Error),
}

impl Error {
    /// The JSON path of the problem, when the error has one.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Truncated { path, .. }
            | Error::Syntax { path, .. }
            | Error::Shape { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The 1-based line and column of the problem, when the error has them.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Error::InvalidUtf8 { line, column, .. }
            | Error::Truncated { line, column, .. }
            | Error::Syntax { line, column, .. }
            | Error::Shape { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ` in knowledge_base["k"]`, or nothing at the top.
struct Within<'a>(&'a str);

impl fmt::Display for Within<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " in {}", self.0)
        }
    }
}

/// The path, or `the document` at the top.
struct Named<'a>(&'a str);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the document")
        } else {
            f.write_str(self.0)
        }
    }
}
