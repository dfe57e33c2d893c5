//! Exit codes, from the kind of error.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use penin_orchestrator::ErrorKind;

/// A file that must exist does not.
#[derive(Debug, thiserror::Error)]
#[error("{} does not exist", .0.display())]
pub struct NotFound(pub PathBuf);

/// Something asked for by name that the state lacks (a key of `penin inspect`): the message
/// says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Absent(pub String);

/// A failure of `penin diff`, whose exit code 1 means "the states differ": a failure with no
/// code of its own exits [`TROUBLE`] instead, as diff(1) does.
#[derive(Debug, thiserror::Error)]
#[error("cannot compare {a} with {b}")]
pub struct CompareFailed {
    /// The first state, as given.
    pub a: String,
    /// The second state, as given.
    pub b: String,
}

/// A command-line value the command cannot use (`--vector 1,x`, `--metadata {`): a usage
/// error, like the ones clap reports itself. The message is this layer's own text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

pub const OK: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
/// `penin diff`'s failures without a code of their own (diff(1)'s "trouble").
pub const TROUBLE: u8 = 2;
pub const INVALID_JSON: u8 = 65;
pub const NOT_FOUND: u8 = 66;
pub const IO_ERROR: u8 = 74;
pub const LOCKED: u8 = 75;
pub const PERMISSION_DENIED: u8 = 77;
pub const NOT_REGULAR_FILE: u8 = 78;
pub const EMPTY: u8 = 80;
pub const TRUNCATED: u8 = 81;
pub const INVALID_UTF8: u8 = 82;
pub const WRONG_SHAPE: u8 = 83;
pub const NEWER_VERSION: u8 = 69;
pub const JOURNAL_DAMAGED: u8 = 84;
pub const FOREIGN_SNAPSHOT: u8 = 85;
pub const LEDGER_BROKEN: u8 = 86;
pub const CHECKPOINT_DAMAGED: u8 = 87;
pub const COMPRESSION_DAMAGED: u8 = 88;
pub const WRONG_IDENTITY: u8 = 89;
pub const REMOTE_DAMAGED: u8 = 90;

/// The documented exit code for an error: the first kind found along its chain decides. A
/// failure of `penin diff` never exits 0 or 1, which say "the same" and "different".
pub fn code(error: &anyhow::Error) -> u8 {
    let code = kind_code(error);
    if matches!(code, OK | FAILURE) && error.downcast_ref::<CompareFailed>().is_some() {
        return TROUBLE;
    }
    code
}

fn kind_code(error: &anyhow::Error) -> u8 {
    // A usage error wraps the parser's error (a codec error for `--metadata`), which must
    // not make a bad argument look like a corrupt state.
    if error.downcast_ref::<Usage>().is_some() {
        return USAGE;
    }
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<penin_replica::Error>() {
            return for_replica(e);
        }
        if cause.is::<NotFound>() || cause.is::<Absent>() {
            return NOT_FOUND;
        }
        if let Some(e) = cause.downcast_ref::<penin_orchestrator::Error>() {
            return for_kind(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<penin_store::Error>() {
            return for_kind(ErrorKind::of_store(e));
        }
        if let Some(e) = cause.downcast_ref::<penin_formats::Error>() {
            return match e {
                penin_formats::Error::IdentityFile { source, .. } => match source.kind() {
                    io::ErrorKind::NotFound => NOT_FOUND,
                    io::ErrorKind::PermissionDenied => PERMISSION_DENIED,
                    _ => IO_ERROR,
                },
                _ => WRONG_IDENTITY,
            };
        }
        if cause.is::<io::Error>() {
            return IO_ERROR;
        }
        if cause.is::<penin_codec::Error>() {
            return INVALID_JSON;
        }
        if let Some(e) = cause.downcast_ref::<penin_history::ledger::Error>() {
            return match e {
                penin_history::ledger::Error::Damaged { .. } => LEDGER_BROKEN,
                penin_history::ledger::Error::NewerVersion { .. } => NEWER_VERSION,
                _ => IO_ERROR,
            };
        }
        if let Some(e) = cause.downcast_ref::<penin_history::checkpoint::Error>() {
            return match e {
                penin_history::checkpoint::Error::NewerVersion { .. } => NEWER_VERSION,
                penin_history::checkpoint::Error::NotFound { .. } => NOT_FOUND,
                penin_history::checkpoint::Error::NoPolicy => USAGE,
                penin_history::checkpoint::Error::Damaged { .. }
                | penin_history::checkpoint::Error::MetaSyntax { .. }
                | penin_history::checkpoint::Error::BadMeta { .. } => CHECKPOINT_DAMAGED,
                _ => IO_ERROR,
            };
        }
    }
    FAILURE
}

/// The exit code of a replication error.
fn for_replica(error: &penin_replica::Error) -> u8 {
    use penin_replica::Error;
    match error {
        // A push that would mix sealed and plaintext manifests is a matter of options.
        Error::BadUrl { .. } | Error::Config { .. } | Error::Mixed { .. } => USAGE,
        Error::Denied { .. } => PERMISSION_DENIED,
        Error::NoBucket { .. } | Error::NoManifest { .. } | Error::NoState(_) => NOT_FOUND,
        Error::NewerVersion { .. } => NEWER_VERSION,
        Error::Damaged { .. } => REMOTE_DAMAGED,
        // Another writer holds the remote, as another process holds a locked state.
        Error::Fenced { .. } => LOCKED,
        Error::Exists(_) | Error::BadLocal { .. } => FAILURE,
        // A sealed object no identity given opens; a damaged envelope is a damaged object.
        Error::Sealed { source, .. } => match source {
            penin_formats::Error::Tampered { .. } | penin_formats::Error::StanzaDamaged { .. } => {
                REMOTE_DAMAGED
            }
            _ => WRONG_IDENTITY,
        },
        _ => IO_ERROR,
    }
}

fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::PermissionDenied => PERMISSION_DENIED,
        ErrorKind::NotRegularFile => NOT_REGULAR_FILE,
        ErrorKind::Empty => EMPTY,
        ErrorKind::Truncated => TRUNCATED,
        ErrorKind::InvalidUtf8 => INVALID_UTF8,
        // A damaged arrow snapshot is an invalid state, as a file that is not JSON is.
        ErrorKind::InvalidJson | ErrorKind::SnapshotDamaged => INVALID_JSON,
        ErrorKind::WrongShape => WRONG_SHAPE,
        ErrorKind::Locked => LOCKED,
        ErrorKind::NewerVersion => NEWER_VERSION,
        ErrorKind::JournalDamaged => JOURNAL_DAMAGED,
        ErrorKind::ForeignSnapshot => FOREIGN_SNAPSHOT,
        ErrorKind::LedgerBroken => LEDGER_BROKEN,
        ErrorKind::CheckpointDamaged => CHECKPOINT_DAMAGED,
        ErrorKind::CompressionDamaged | ErrorKind::EnvelopeDamaged => COMPRESSION_DAMAGED,
        ErrorKind::WrongIdentity => WRONG_IDENTITY,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::NothingToDo => OK,
        _ => IO_ERROR,
    }
}

/// Whether the error is only a closed stdout (`penin stats | head`): not a failure.
/// A broken pipe inside a failed save or load (a file system may return any error) is a
/// real failure, never this.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    let from_state = error
        .chain()
        .any(|cause| cause.is::<penin_store::Error>() || cause.is::<penin_orchestrator::Error>());
    !from_state
        && error
            .chain()
            .filter_map(|cause| cause.downcast_ref::<io::Error>())
            .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

pub fn from(code: u8) -> ExitCode {
    ExitCode::from(code)
}
