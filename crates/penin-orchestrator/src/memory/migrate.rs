//! Migrating a state to another snapshot format in place: [`plan_migration`] says what a
//! migration would do without changing a file; [`Memory::migrate`] does it, after a
//! checkpoint of the state as it was.

use std::path::{Path, PathBuf};

use penin_artifacts::{Map, Value};
use penin_formats::Format;
use penin_history::checkpoint::Meta;
use penin_store::Fs;

use super::{Memory, Options, load_with};
use crate::error::Result;

/// The tag of the checkpoint [`Memory::migrate`] writes before it changes anything.
pub const MIGRATE_TAG: &str = "pre-migrate";

/// What a migration of a state to another format does (or, when done, did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The state's snapshot.
    pub path: PathBuf,
    /// The format of the snapshot on disk (`None` without a snapshot: a state held by its
    /// journal alone).
    pub from: Option<Format>,
    /// The format asked for.
    pub to: Format,
    /// The snapshot's size in bytes (0 without one).
    pub snapshot_bytes: u64,
    /// The journal's size in bytes (0 when there is none): its changes are folded into the
    /// new snapshot.
    pub journal_bytes: u64,
    /// Sequence number of the last change the state holds.
    pub seq: u64,
    /// The tag of the checkpoint written first, [`MIGRATE_TAG`].
    pub checkpoint_tag: &'static str,
    /// Where that checkpoint goes.
    pub checkpoints_dir: PathBuf,
}

impl Migration {
    /// Whether there is nothing to do: the snapshot is in the format asked for already.
    /// (Its journal, if any, stays as it is: a compaction folds it in, not a migration.)
    pub fn is_noop(&self) -> bool {
        self.from == Some(self.to)
    }
}

/// What [`Memory::migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The migration, as planned before it started.
    pub migration: Migration,
    /// The checkpoint of the state as it was (`None` when there was nothing to do).
    pub checkpoint: Option<Meta>,
    /// The size of the snapshot written, in bytes (the old one's when nothing was done).
    pub snapshot_bytes: u64,
}

/// What migrating the state at `path` to `to` would do, read without changing any file
/// (the state is read as [`load_with`] reads it: no lock needed, none taken).
pub fn plan_migration(path: impl AsRef<Path>, options: &Options, to: Format) -> Result<Migration> {
    let path = path.as_ref();
    let loaded = load_with(path, options)?;
    let snapshot_bytes = if loaded.snapshot {
        std::fs::metadata(path).map_or(0, |m| m.len())
    } else {
        0
    };
    Ok(Migration {
        path: path.to_owned(),
        from: loaded.format,
        to,
        snapshot_bytes,
        journal_bytes: loaded.journal_len,
        seq: loaded.seq,
        checkpoint_tag: MIGRATE_TAG,
        checkpoints_dir: penin_history::checkpoints_dir(path),
    })
}

impl<F: Fs + Clone> Memory<F> {
    /// What [`Memory::migrate`] to `to` would do, from the state as this memory holds it.
    pub fn migration(&self, to: Format) -> Migration {
        Migration {
            path: self.path.clone(),
            from: self.snapshot_format(),
            to,
            snapshot_bytes: self.snapshot_len,
            journal_bytes: self.journal_len(),
            seq: self.seq,
            checkpoint_tag: MIGRATE_TAG,
            checkpoints_dir: penin_history::checkpoints_dir(&self.path),
        }
    }

    /// Rewrites the snapshot in `to`, in place: a checkpoint of the state first (tag
    /// [`MIGRATE_TAG`]), then a compaction in the new format (atomic and crash-safe: see the
    /// module's documentation), then a `migrate` ledger line. A snapshot already in `to` is
    /// left as it is, and nothing is written. The caller holds the state's lock.
    ///
    /// If the compaction fails, the checkpoint stays and the state is the old one (or, if
    /// the new snapshot was already in place, the next start finishes the compaction).
    pub fn migrate(&mut self, to: Format) -> Result<Migrated> {
        let migration = self.migration(to);
        // Already in `to`, and encrypted (or not) as the keys ask.
        let encryption_kept =
            self.snapshot_layout().map(|l| &l.encrypted_to) == Some(&self.layout().encrypted_to);
        if migration.is_noop() && encryption_kept {
            return Ok(Migrated {
                snapshot_bytes: migration.snapshot_bytes,
                migration,
                checkpoint: None,
            });
        }
        let checkpoint = self.checkpoint(Some(MIGRATE_TAG))?;
        let kept = self.format();
        self.set_format(to);
        if let Err(error) = self.compact() {
            // The snapshot on disk keeps its format, so do the compactions to come.
            if !self.interrupted {
                self.set_format(kept);
            }
            return Err(error);
        }
        let mut fields = Map::new();
        fields.insert(
            "from",
            migration
                .from
                .map_or(Value::Null, |f| Value::from(f.name())),
        );
        fields.insert("to", Value::from(to.name()));
        fields.insert("checkpoint", Value::from(checkpoint.id.as_str()));
        self.record("migrate", fields, checkpoint.blake2b)?;
        Ok(Migrated {
            snapshot_bytes: self.snapshot_len,
            migration,
            checkpoint: Some(checkpoint),
        })
    }
}
