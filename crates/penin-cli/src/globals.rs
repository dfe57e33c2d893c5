//! The global options, resolved once and passed to every command, so that a new option
//! never grows every command's signature.

use std::path::PathBuf;

use penin_orchestrator::memory::Options;
use penin_orchestrator::{Format, Keys};

/// What every command may need from the global options.
#[derive(Clone, Debug)]
pub struct Globals {
    /// The state file; a symbolic link stands for the file it points to.
    pub path: PathBuf,
    /// The bound of a new state's histories (`None`: unbounded); a loaded file keeps its own.
    pub maxlen: Option<usize>,
    /// Wait for another writer of the state instead of failing.
    pub wait: bool,
    /// The format of the snapshots written from now on, when `--format` gives one.
    pub format: Option<Format>,
    /// The identities loads decrypt with (`--identity`) and the recipients every file
    /// written is encrypted to (the identity's, and `--recipient`; none with `--plaintext`).
    pub keys: Keys,
}

impl Globals {
    /// What opening or loading the state needs: the history bound and the keys.
    ///
    /// Snapshots are read into memory of penin's own; the commands that only look map a large
    /// `arrow` snapshot instead ([`crate::commands::load`]).
    pub fn options(&self) -> Options {
        Options::new(self.maxlen)
            .with_keys(self.keys.clone())
            .with_format(self.format)
    }
}
