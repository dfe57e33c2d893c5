/// An error building a value type from invalid parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not a decimal integer (`-?(0|[1-9][0-9]*)`).
    #[error("invalid integer {text:?}: expected decimal digits with an optional leading minus")]
    InvalidInteger {
        /// The rejected text, cut to its first 40 characters.
        text: String,
    },
    /// A tagged object's field does not have the shape its tag requires.
    #[error("{}expected {expected}, found {found}", path_prefix(.path))]
    Shape {
        /// Where, relative to the tagged object: `vector[3]`, `maxlen`; empty for the object.
        path: String,
        /// What the tag requires there.
        expected: &'static str,
        /// What was there.
        found: String,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
