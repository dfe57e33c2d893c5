//! A penin state's past, beside its snapshot `DIR/NAME`:
//!
//! * [`journal`]: `NAME.journal`, the changes made since the snapshot, one framed and
//!   checksummed record each, appended and synced before a change is acknowledged;
//! * [`ledger`]: `NAME.ledger`, the append-only audit trail, one JSON line per event chained
//!   with BLAKE2b-256 so that Python's `hashlib` can check it;
//! * [`checkpoint`]: `NAME.checkpoints/`, immutable checksummed copies of whole states, and
//!   their retention;
//! * [`time`]: UTC timestamps and durations as these files and the command line write them.
//!
//! This crate knows nothing of what a change does to a state: a journal record is a kind and
//! a payload that `penin-orchestrator` encodes and applies. `docs/format.md` specifies every
//! file byte for byte.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub mod checkpoint;
pub mod journal;
pub mod ledger;
pub mod time;

/// `NAME.journal` beside the snapshot `NAME`.
pub fn journal_path(state: &Path) -> PathBuf {
    beside(state, ".journal")
}

/// `NAME.ledger` beside the snapshot `NAME`.
pub fn ledger_path(state: &Path) -> PathBuf {
    beside(state, ".ledger")
}

/// `NAME.checkpoints/` beside the snapshot `NAME`.
pub fn checkpoints_dir(state: &Path) -> PathBuf {
    beside(state, ".checkpoints")
}

/// `NAME` followed by `suffix`, in the snapshot's directory.
pub fn beside(state: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(state.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_beside_the_snapshot() {
        let state = Path::new("dir/state.json");
        assert_eq!(journal_path(state), Path::new("dir/state.json.journal"));
        assert_eq!(ledger_path(state), Path::new("dir/state.json.ledger"));
        assert_eq!(
            checkpoints_dir(state),
            Path::new("dir/state.json.checkpoints")
        );
    }
}
