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
    /// Reading or writing the file failed.
    #[error(transparent)]
    Store(#[from] penin_store::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
