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
    /// The file is compressed (`json.gz`, `json.zst`), and the JSON inside is not a valid
    /// state. Line and column are in the decompressed JSON.
    #[error(
        "{} is not a valid state (in the decompressed {} content)",
        path.display(),
        format.compression().unwrap_or("json")
    )]
    CorruptDecompressed {
        /// The state file.
        path: PathBuf,
        /// Its format.
        format: penin_formats::Format,
        /// What is wrong, and where in the decompressed JSON.
        #[source]
        source: penin_codec::Error,
    },
    /// The file is compressed, and its compressed stream is damaged or cut short.
    #[error("{} cannot be decompressed", path.display())]
    Compressed {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: penin_formats::Error,
    },
    /// The file is an arrow snapshot that is damaged (a checksum or footer that does not
    /// match, bytes missing) or of a newer version than this penin reads.
    #[error("{} cannot be loaded", path.display())]
    Arrow {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: penin_formats::Error,
    },
    /// The file is encrypted (age), and it cannot be decrypted: no identity, a wrong one,
    /// or an envelope that was damaged or changed.
    #[error("{} cannot be decrypted", path.display())]
    Envelope {
        /// The state file.
        path: PathBuf,
        /// Why.
        #[source]
        source: penin_formats::Error,
    },
    /// Reading, writing or locking the file failed.
    #[error(transparent)]
    Store(#[from] penin_store::Error),
    /// The journal cannot be read, written or trusted.
    #[error(transparent)]
    Journal(#[from] penin_history::journal::Error),
    /// The snapshot is not the one the journal extends: someone else replaced (or removed)
    /// it while the journal held changes. Nothing is replayed onto it.
    #[error(
        "{} is not the snapshot that the journal {} extends: it was {} by another program while \
         the journal held {changes} change(s); nothing was changed. Run `penin recover \
         --keep-journal` to apply the journal to the snapshot as it is now, or `penin recover \
         --discard-journal` to set the journal aside and keep the snapshot as it is",
        snapshot.display(),
        journal.display(),
        if *found == penin_history::journal::Match::Missing { "removed" } else { "replaced" }
    )]
    Foreign {
        /// The snapshot.
        snapshot: PathBuf,
        /// The journal.
        journal: PathBuf,
        /// How the snapshot differs.
        found: penin_history::journal::Match,
        /// How many changes the journal holds.
        changes: u64,
    },
    /// A journal record is whole and its checksum matches, but its change cannot be read.
    #[error(
        "{}: the record with sequence number {seq} at byte offset {offset} cannot be replayed: {what}",
        journal.display()
    )]
    Replay {
        /// The journal.
        journal: PathBuf,
        /// The record's sequence number.
        seq: u64,
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The ledger cannot be read, written or trusted.
    #[error(transparent)]
    Ledger(#[from] penin_history::ledger::Error),
    /// A checkpoint cannot be read, written or trusted.
    #[error(transparent)]
    Checkpoint(#[from] penin_history::checkpoint::Error),
    /// `recover` found no journal to recover, or one that extends the snapshot as it is.
    #[error("nothing to recover in {}: {why}", journal.display())]
    NothingToRecover {
        /// The journal.
        journal: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// `repair` found no journal, or one that is not damaged.
    #[error("nothing to repair in {}: {why}", journal.display())]
    NothingToRepair {
        /// The journal.
        journal: PathBuf,
        /// Why.
        why: String,
    },
    /// A compaction failed after its new snapshot was in place: the journal open for writing
    /// no longer extends it, so nothing more is written until the state is opened again,
    /// which finishes the compaction.
    #[error(
        "a compaction of {} failed after its new snapshot was in place: nothing more is \
         written until it is opened again, which finishes the compaction",
        snapshot.display()
    )]
    Interrupted {
        /// The snapshot.
        snapshot: PathBuf,
    },
    /// A journal was expected and is not there (an invariant of this crate broke).
    #[error("the journal is missing where one was just started")]
    NoJournal,
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
    /// The file is compressed, and its compressed stream is damaged or cut short.
    CompressionDamaged,
    /// The file is an arrow snapshot, and it is damaged: its checksum or footer does not
    /// match its contents, or it is cut short.
    SnapshotDamaged,
    /// The file is encrypted, and no identity was given or none given opens it.
    WrongIdentity,
    /// The file is encrypted, and its envelope was damaged, cut short or changed.
    EnvelopeDamaged,
    /// Another process holds the state's lock.
    Locked,
    /// A file written by a newer penin (a newer format version).
    NewerVersion,
    /// The journal is damaged before its last record.
    JournalDamaged,
    /// The snapshot was replaced by another program while a journal extends it.
    ForeignSnapshot,
    /// The ledger's chain is broken.
    LedgerBroken,
    /// A checkpoint is damaged (its checksum or its meta file).
    CheckpointDamaged,
    /// What was asked for does not exist (a checkpoint).
    NotFound,
    /// A repair or recovery found nothing to do.
    NothingToDo,
    /// Any other I/O failure.
    Io,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Compressed { .. } => ErrorKind::CompressionDamaged,
            Error::Arrow { source, .. } => match source {
                penin_formats::Error::NewerVersion { .. } => ErrorKind::NewerVersion,
                penin_formats::Error::Read(_) => ErrorKind::Io,
                _ => ErrorKind::SnapshotDamaged,
            },
            Error::Envelope { source, .. } => match source {
                penin_formats::Error::NoIdentity { .. }
                | penin_formats::Error::WrongIdentity { .. } => ErrorKind::WrongIdentity,
                penin_formats::Error::Read(_) => ErrorKind::Io,
                _ => ErrorKind::EnvelopeDamaged,
            },
            Error::Corrupt { source, .. } | Error::CorruptDecompressed { source, .. } => {
                match source {
                    penin_codec::Error::Empty => ErrorKind::Empty,
                    penin_codec::Error::Truncated { .. } => ErrorKind::Truncated,
                    penin_codec::Error::InvalidUtf8 { .. } => ErrorKind::InvalidUtf8,
                    penin_codec::Error::Shape { .. } => ErrorKind::WrongShape,
                    penin_codec::Error::Io(_) => ErrorKind::Io,
                    _ => ErrorKind::InvalidJson,
                }
            }
            Error::Store(e) => ErrorKind::of_store(e),
            Error::Journal(e) => match e {
                penin_history::journal::Error::NewerVersion { .. } => ErrorKind::NewerVersion,
                penin_history::journal::Error::Damaged { .. }
                | penin_history::journal::Error::NotAJournal { .. } => ErrorKind::JournalDamaged,
                // A sealed journal read with no identity, or with none that opens it.
                penin_history::journal::Error::Sealed { .. }
                | penin_history::journal::Error::WrongIdentity { .. } => ErrorKind::WrongIdentity,
                penin_history::journal::Error::Store(e) => ErrorKind::of_store(e),
                penin_history::journal::Error::Io { source, .. }
                    if source.kind() == io::ErrorKind::PermissionDenied =>
                {
                    ErrorKind::PermissionDenied
                }
                _ => ErrorKind::Io,
            },
            Error::Replay { .. } => ErrorKind::JournalDamaged,
            Error::Foreign { .. } => ErrorKind::ForeignSnapshot,
            Error::Ledger(e) => match e {
                penin_history::ledger::Error::Damaged { .. } => ErrorKind::LedgerBroken,
                penin_history::ledger::Error::NewerVersion { .. } => ErrorKind::NewerVersion,
                _ => ErrorKind::Io,
            },
            Error::Checkpoint(e) => match e {
                penin_history::checkpoint::Error::NewerVersion { .. } => ErrorKind::NewerVersion,
                penin_history::checkpoint::Error::Damaged { .. }
                | penin_history::checkpoint::Error::MetaSyntax { .. }
                | penin_history::checkpoint::Error::BadMeta { .. } => ErrorKind::CheckpointDamaged,
                penin_history::checkpoint::Error::NotFound { .. } => ErrorKind::NotFound,
                penin_history::checkpoint::Error::Store(e) => ErrorKind::of_store(e),
                _ => ErrorKind::Io,
            },
            Error::NothingToRecover { .. } | Error::NothingToRepair { .. } => {
                ErrorKind::NothingToDo
            }
            Error::Interrupted { .. } | Error::NoJournal => ErrorKind::Io,
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
