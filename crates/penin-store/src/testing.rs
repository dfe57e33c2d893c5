//! Test doubles of [`Fs`](crate::Fs), for tests of this crate and of crates built on it.
//!
//! Compiled only with the cargo feature `testing` (and for this crate's own unit tests): they
//! are not part of the API a program uses. A crate whose tests need them turns the feature on
//! in its dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! penin-store = { workspace = true, features = ["testing"] }
//! ```
//!
//! * [`FaultyFs`] makes every call on the real file system, records it as an [`Op`], and
//!   fails the one you choose with the error you choose ([`Fault`]), once or from then on:
//!   a test can break every step of a save.

pub use self::faulty::{Fault, FaultyFs};

mod faulty;

/// One call to an [`Fs`](crate::Fs), as the test doubles record it: each variant is the
/// method of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Fs::create_dir_all`](crate::Fs::create_dir_all).
    CreateDirAll,
    /// [`Fs::metadata`](crate::Fs::metadata).
    Metadata,
    /// [`Fs::symlink_metadata`](crate::Fs::symlink_metadata).
    SymlinkMetadata,
    /// [`Fs::create_new`](crate::Fs::create_new).
    CreateNew,
    /// [`Fs::set_permissions`](crate::Fs::set_permissions).
    SetPermissions,
    /// [`Fs::write`](crate::Fs::write).
    Write,
    /// [`Fs::sync`](crate::Fs::sync).
    Sync,
    /// [`Fs::try_clone`](crate::Fs::try_clone).
    TryClone,
    /// [`Fs::sync_data`](crate::Fs::sync_data).
    SyncData,
    /// [`Fs::rename`](crate::Fs::rename).
    Rename,
    /// [`Fs::sync_dir`](crate::Fs::sync_dir).
    SyncDir,
    /// [`Fs::remove`](crate::Fs::remove).
    Remove,
}
