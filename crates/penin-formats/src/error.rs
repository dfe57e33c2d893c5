use std::io;

use crate::format::Format;

/// An error reading or writing a compressed state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The compressed stream is corrupt or cut short: what it holds cannot be read back.
    #[error("the {} stream is damaged or truncated", format.compression().unwrap_or("json"))]
    Damaged {
        /// The format whose stream it is.
        format: Format,
        /// What the decompressor said.
        #[source]
        source: io::Error,
    },
    /// Reading the compressed bytes failed (the stream itself may be sound).
    #[error("reading the compressed bytes failed")]
    Read(#[source] io::Error),
    /// A format name that is none of `json`, `json.gz`, `json.zst`.
    #[error("unknown format {0:?}: expected json, json.gz or json.zst")]
    UnknownFormat(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
