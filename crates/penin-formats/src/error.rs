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
    /// A format name that is none of `json`, `json.gz`, `json.zst`, `arrow`.
    #[error("unknown format {0:?}: expected json, json.gz, json.zst or arrow")]
    UnknownFormat(String),
    /// The arrow snapshot is damaged: a checksum that does not match, a footer that is not
    /// the one its contents make, bytes missing, a column or value that is not a state's.
    #[error("the arrow snapshot is damaged: {what}")]
    Corrupt {
        /// What failed.
        what: String,
    },
    /// The arrow snapshot was written by a newer penin, in a version this one cannot read.
    #[error("the arrow snapshot is of version {found}; this penin reads up to version {supported}")]
    NewerVersion {
        /// The file's version.
        found: u64,
        /// The newest version this penin reads, [`crate::arrow::VERSION`].
        supported: u64,
    },
    /// A format that is not compressed JSON was given to the compressor or decompressor.
    #[error("{0} is not compressed JSON")]
    NotJson(Format),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
