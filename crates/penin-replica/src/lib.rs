//! Off-machine copies of a penin state in S3-compatible object storage (AWS S3, `SeaweedFS`,
//! Ceph, R2, `MinIO`, GCS through its S3 API), as Litestream does it for `SQLite`: the local
//! state stays the primary, and a bucket holds immutable objects from which any machine can
//! restore any restore point.
//!
//! A [`Remote`] is `s3://BUCKET[/PREFIX]`, reached through `object_store` on a small runtime
//! the remote owns, so that its callers stay synchronous. Under the prefix:
//!
//! * `snapshots/…`: snapshot files `NAME`, byte for byte (whatever their format or
//!   encryption);
//! * `journal/…` and `ledger/…`: segments of `NAME.journal` and `NAME.ledger`, the bytes
//!   each round found past the segments already there;
//! * `manifests/NNNNNNNNNNNNNNNNNNNN.json`: one per restore point, naming its objects with
//!   their sizes and XXH3-128 checksums, the ledger's head, the writer's epoch and the last
//!   change it holds. Each is created only if its number is free (`PutMode::Create`, an
//!   `If-None-Match` put), so that of two writers one wins and the other is fenced
//!   ([`Error::Fenced`]); the highest is the current state.
//!
//! [`push_round`] uploads what the remote lacks, then the next manifest; [`restore`] finds a
//! manifest ([`Pick`]), downloads and checks every object it names, and only then puts the
//! files in place; [`prune`] deletes the restore points a [`Retention`] does not keep and the
//! objects only they named. With recipients ([`Remote::with_keys`]) every object and
//! manifest is stored as an age envelope, so the bucket never holds plaintext.
//! `docs/format.md` specifies the layout.
//!
//! # Example
//!
//! A state pushed and restored elsewhere (here the bucket is in memory; with a real one,
//! [`Remote::from_url`] reads the credentials and endpoint from the `AWS_*` environment):
//!
//! ```
//! use std::sync::Arc;
//! use penin_orchestrator::{Change, Memory, Number};
//! use penin_replica::{Local, Pick, Remote, Writer};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.json");
//! let mut memory = Memory::open(&path, Some(1000))?;
//! memory.commit(vec![Change::AddScore(Number::Float(0.85))])?;
//! memory.sync()?;
//!
//! let remote = Remote::with_store("s3://penin/agents", Arc::new(object_store::memory::InMemory::new()))?;
//! let pushed = penin_replica::push_round(&remote, &mut Writer::new(), &Local::capture(&memory)?)?;
//! assert_eq!(pushed.manifest.map(|m| (m.number, m.seq)), Some((1, 1)));
//!
//! let elsewhere = dir.path().join("elsewhere/state.json");
//! let restored = penin_replica::restore(&remote, &elsewhere, Pick::Latest, false)?;
//! assert_eq!(restored.seq, 1);
//! assert_eq!(std::fs::read(penin_history::journal_path(&elsewhere))?,
//!            std::fs::read(penin_history::journal_path(&path))?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a real server (`no_run`: it needs one):
//!
//! ```no_run
//! // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_ALLOW_HTTP
//! let remote = penin_replica::Remote::from_url("s3://penin/agents")?;
//! for manifest in remote.manifests()? {
//!     println!("{} {} change {}", manifest.number, manifest.time, manifest.seq);
//! }
//! # Ok::<(), penin_replica::Error>(())
//! ```

pub use crate::error::{Error, Result};
pub use crate::manifest::{Manifest, Object};
pub use crate::prune::{GRACE, Pruned, Retention, prune};
pub use crate::push::{Cache, Durable, Local, Prepared, Pushed, Writer, prepare, push_round};
pub use crate::remote::{CONNECT_TIMEOUT, REQUEST_TIMEOUT, RETRY_FOR, Remote};
pub use crate::restore::{
    Fetched, Pick, download, download_with, exists, fetch, find, install, restore,
};

mod error;
pub mod manifest;
mod prune;
mod push;
mod remote;
mod restore;
mod seal;
