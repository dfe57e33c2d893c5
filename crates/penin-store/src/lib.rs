//! Durable bytes for penin: a whole file replaced atomically and durably, read back whole,
//! its leftovers cleaned up and, for a fresh start, set aside.
//!
//! This crate knows nothing of what the bytes mean; `penin-codec` makes them and
//! `penin-orchestrator` joins the two.
//!
//! * [`write_atomic`] and [`write_atomic_with`] replace a file so that readers and crashes see
//!   the old bytes or the new ones, never a mix, and report success only once the new bytes
//!   and the rename are on stable storage. The steps and what a failure of each leaves are
//!   listed in [`write_atomic_in`].
//! * [`read`] tells a first run (no file: `Ok(None)`) from a file that cannot be read (an
//!   error naming the path and the failed [`Step`]).
//! * [`remove_stale_temporaries`] removes what interrupted saves left behind, at start-up.
//! * [`Lock`] keeps one writer per state: an advisory lock on a file beside it.
//! * [`move_aside`] renames a file that cannot be loaded, without overwriting anything.
//! * [`Fs`] is the file-system calls a save makes, every one of them: [`RealFs`] makes them.
//!
//! # Test doubles
//!
//! With the cargo feature `testing`, the module `penin_store::testing` holds two doubles of
//! [`Fs`] for tests: `FaultyFs` fails the call you choose, so that a test can break every
//! step of a save, and `CrashFs` (unix) simulates a power loss after any call, listing the
//! durable images it could leave. They are not part of the API a program uses, so the feature
//! is off by default; this crate's own tests and doctests turn it on through a dev-dependency
//! on the crate itself, so `cargo test` needs no `--features`. A crate whose tests need them
//! does the same:
//!
//! ```toml
//! [dev-dependencies]
//! penin-store = { workspace = true, features = ["testing"] }
//! ```
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("memory/state.json");
//!
//! // A first run: nothing saved yet.
//! assert_eq!(penin_store::read(&path)?, None);
//!
//! // Save, creating `memory/` (mode 0700) and the file (mode 0600).
//! penin_store::write_atomic(&path, b"{}")?;
//! assert_eq!(penin_store::read(&path)?.as_deref(), Some(&b"{}"[..]));
//!
//! // Stream the bytes instead of building them in memory first.
//! penin_store::write_atomic_with(&path, |w| {
//!     for score in [0.85, 0.87] {
//!         writeln!(w, "{score}")?;
//!     }
//!     Ok(())
//! })?;
//! assert_eq!(penin_store::read(&path)?.as_deref(), Some(&b"0.85\n0.87\n"[..]));
//!
//! // At start-up, remove what an interrupted save left behind (here, nothing).
//! assert_eq!(penin_store::remove_stale_temporaries(&path)?, 0);
//!
//! // A fresh start keeps the old file under another name.
//! let kept = penin_store::move_aside(&path, "corrupt")?;
//! assert_eq!(kept, dir.path().join("memory/state.json.corrupt"));
//! assert_eq!(penin_store::read(&path)?, None);
//! # Ok(())
//! # }
//! ```

pub use crate::aside::move_aside;
pub use crate::atomic::{
    AtomicWriter, Durability, remove_stale_temporaries, write_atomic, write_atomic_in,
    write_atomic_staged_in, write_atomic_with,
};
pub use crate::error::{Error, Result, Step};
pub use crate::fs::{Fs, RealFs};
pub use crate::lock::{Lock, lock_path};
pub use crate::read::{open, read};

mod aside;
mod atomic;
mod error;
mod fs;
mod lock;
mod read;
#[cfg(all(test, unix))]
mod testutil;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
