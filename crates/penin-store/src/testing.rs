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
//! * [`CrashFs`] (unix) makes every call on the real file system too, and keeps apart what
//!   was synced from what was only done: after any call it lists the durable images a
//!   power loss at that moment could leave ([`Image`]), each of which can be written out
//!   into a fresh directory. The crash model it follows is below.
//!
//! # The crash model
//!
//! Killing a process leaves the kernel's page cache to be written out, so a kill test cannot
//! tell a save that syncs from one that does not. A power loss (or a kernel crash) loses the
//! page cache: what survives is what the disk held. [`CrashFs`] models that as the
//! crash-consistency checkers ALICE and `CrashMonkey` do, with a shadow model of the
//! directory tree under its root beside the real one. Its calls are serialised (one lock), so
//! calls from two threads, such as a save's early flushes, have one order.
//!
//! * **The start.** Everything under the root when the [`CrashFs`] is made is durable. The
//!   root itself is durable and stays. While the [`CrashFs`] is in use, the root is changed
//!   only through it.
//! * **File data.** Each file has durable bytes and a list of the changes made to it since
//!   its last sync: writes ([`Fs::write`](crate::Fs::write), through a handle from
//!   [`Fs::create_new`](crate::Fs::create_new) or [`Fs::open_append`](crate::Fs::open_append))
//!   and changes of length ([`Fs::set_len`](crate::Fs::set_len): a cut, or an extension with
//!   zeros). [`Fs::sync`](crate::Fs::sync) (`fsync`) and
//!   [`Fs::sync_data`](crate::Fs::sync_data) (`fdatasync`) of any handle to it make all its
//!   changes durable. After a power loss, a file holds its durable bytes with a *prefix* of
//!   its unsynced changes applied, in the order they were made: none of them, the first `j`
//!   whole, or the first `j` whole and the first half of the next if that is a write. A
//!   change of length is never torn: kept, the file has the new length at that point of the
//!   sequence; dropped, so is every change after it. Changes are not reordered: a write made
//!   after a cut never survives without the cut, nor a cut without the writes made before
//!   it; no garbage or zeros appear beyond what was written or extended (as ext4 in
//!   its default `data=ordered` mode and XFS guarantee).
//! * **Directory entries.** Each directory has durable entries and a list of the entry
//!   operations made in it since its last sync: a file or directory created
//!   ([`Fs::create_new`](crate::Fs::create_new), [`Fs::create_dir_all`](crate::Fs::create_dir_all)),
//!   a rename within it ([`Fs::rename`](crate::Fs::rename)), a removal
//!   ([`Fs::remove`](crate::Fs::remove)). [`Fs::sync_dir`](crate::Fs::sync_dir) of the
//!   directory makes all of them durable. After a power loss, *each* unsynced operation, in
//!   every directory, is kept or dropped independently of the others; those kept apply in the
//!   order they were made. Syncing a file does not make its entry durable, and syncing a
//!   directory does not make the directory's own entry in its parent durable: a directory a
//!   save creates needs a sync of its parent. A directory whose entry is dropped takes
//!   everything in it along.
//! * **A rename is atomic in itself**: kept, it moves the entry (replacing what the new name
//!   held); dropped, it never happened. POSIX and every journaling file system make it so;
//!   the model cannot find a bug that needs a torn rename.
//! * **Not modelled.** Permissions, ownership and times (every image file is plain), hard
//!   links made after the start, symbolic links, renames between two directories (refused
//!   with [`std::io::ErrorKind::Unsupported`]) and paths outside the root (refused with
//!   [`std::io::ErrorKind::InvalidInput`]). Metadata reads, permission changes,
//!   [`Fs::try_clone`](crate::Fs::try_clone) and [`Fs::open_append`](crate::Fs::open_append)
//!   change nothing in the model (the file opened must be one the model holds).
//!
//! # The images
//!
//! [`CrashFs::images_after`] lists, for a power loss right after a given call (or before the
//! first), the distinct durable images of the model at that moment. It takes every
//! combination of the unsynced directory operations kept or dropped — all `2^n` of them up to
//! [`CrashFs::MAX_EXHAUSTIVE_OPS`] operations; beyond, all kept, all dropped, and each one
//! alone dropped or alone kept — times every combination of the data prefixes of the files
//! with unsynced changes: none, each change boundary and the middle of each write, at most
//! [`CrashFs::MAX_CUTS`] prefixes a file (spread evenly), all combinations up to
//! [`CrashFs::MAX_DATA_COMBINATIONS`], beyond that one file varied at a time. Images that hold
//! the same entries, with the same prefix of each file's changes, are listed once. Each says
//! which choices made it (its `Display`).

pub use self::faulty::{Fault, FaultyFs};

#[cfg(unix)]
pub use self::{crash::CrashFs, image::Image};

mod faulty;

#[cfg(unix)]
mod crash;
#[cfg(unix)]
mod image;
#[cfg(unix)]
mod model;

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
    /// [`Fs::open_append`](crate::Fs::open_append).
    OpenAppend,
    /// [`Fs::set_len`](crate::Fs::set_len).
    SetLen,
}
