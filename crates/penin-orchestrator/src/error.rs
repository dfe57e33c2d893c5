use std::io;
use std::path::PathBuf;

/// An error saving or loading a state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file exists and was read, but it is not a valid state.
    #[error("{} is not a valid state", path.display())]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong, and where.
        #[source]
        source: penin_codec::Error,
    },
    /// Reading, writing or locking the file failed.
    #[error(transparent)]
    Store(#[from] penin_store::Error),
}

/// What kind of failure an [`Error`] is, for callers that act on it (the `penin` command
/// maps each to its own exit code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file may not be read or written by this user.
    PermissionDenied,
    /// The path is a directory, a pipe or another thing that is not a regular file.
    NotRegularFile,
    /// The file is empty, or holds only whitespace.
    Empty,
    /// The file ends in the middle of the document: cut short.
    Truncated,
    /// The file is not UTF-8.
    InvalidUtf8,
    /// The file is not JSON.
    InvalidJson,
    /// The file is JSON, but not a state: a value has the wrong shape.
    WrongShape,
    /// Another process holds the state's lock.
    Locked,
    /// Any other I/O failure.
    Io,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Corrupt { source, .. } => match source {
                penin_codec::Error::Empty => ErrorKind::Empty,
                penin_codec::Error::Truncated { .. } => ErrorKind::Truncated,
                penin_codec::Error::InvalidUtf8 { .. } => ErrorKind::InvalidUtf8,
                penin_codec::Error::Shape { .. } => ErrorKind::WrongShape,
                penin_codec::Error::Io(_) => ErrorKind::Io,
                _ => ErrorKind::InvalidJson,
            },
            Error::Store(e) => ErrorKind::of_store(e),
        }
    }
}

impl ErrorKind {
    /// The kind of a store error met outside a load or save (taking a lock, say).
    pub fn of_store(error: &penin_store::Error) -> ErrorKind {
        match error {
            penin_store::Error::Locked { .. } => ErrorKind::Locked,
            penin_store::Error::NotRegularFile { .. } => ErrorKind::NotRegularFile,
            e if e.io_error().map(io::Error::kind) == Some(io::ErrorKind::PermissionDenied) => {
                ErrorKind::PermissionDenied
            }
            _ => ErrorKind::Io,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
