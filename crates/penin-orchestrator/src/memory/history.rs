//! A memory's past: checkpoints (taken, restored, pruned) and the repairs of a journal that
//! cannot be replayed as it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use penin_artifacts::{Map, Value};
use penin_history::checkpoint::{self, Counts, Meta, NewCheckpoint, Plan, Selector};
use penin_history::journal::{self, Match};
use penin_history::ledger;
use penin_history::time::Timestamp;
use penin_store::{Fs, RealFs};

use super::{Memory, Notice, logged_seq, parent, seq_value, settle_compaction, store_io};
use crate::change::Change;
use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;

/// What [`Memory::restore`] did.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The checkpoint that is now the state.
    pub restored: Meta,
    /// The checkpoint of the state it replaced.
    pub saved: Meta,
}

/// What [`recover`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Changes of the journal applied to the snapshot (`--keep-journal`).
    pub applied: u64,
    /// Where the journal was moved (`--discard-journal`).
    pub moved_to: Option<PathBuf>,
    /// The state's sequence number after it.
    pub seq: u64,
}

/// What [`repair`] did.
#[derive(Clone, Debug)]
pub struct Repaired {
    /// Valid records kept (replayed, then folded into the new snapshot).
    pub kept: u64,
    /// Bytes of the journal from the damage on, dropped.
    pub dropped_bytes: u64,
    /// What was wrong.
    pub damage: String,
    /// Where the damaged journal was moved.
    pub moved_to: PathBuf,
    /// The checkpoint written first.
    pub checkpoint: Meta,
}

/// How [`recover`] deals with a journal whose snapshot was replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Apply the journal's changes to the snapshot as it is now.
    KeepJournal,
    /// Move the journal aside and keep the snapshot as it is.
    DiscardJournal,
}

impl<F: Fs + Clone> Memory<F> {
    /// Writes an immutable, checksummed copy of the whole state into `NAME.checkpoints/`,
    /// recording the ledger head it corresponds to, and a `checkpoint` ledger line.
    pub fn checkpoint(&mut self, tag: Option<&str>) -> Result<Meta> {
        let dir = penin_history::checkpoints_dir(&self.path);
        let (ledger_seq, ledger_head) = self.ledger_head();
        let counts = Counts {
            knowledge: self.state.knowledge_base().len() as u64,
            tasks: self.state.task_history().len() as u64,
            scores: self.state.score_history().len() as u64,
        };
        let new = NewCheckpoint {
            time: Timestamp::now(),
            tag,
            journal: self.seq,
            ledger_seq,
            ledger_head,
            counts,
        };
        let document = self.state.document();
        let meta = checkpoint::write(&self.fs, &dir, &new, |w| {
            penin_codec::to_writer(w, document).map_err(|e| match e {
                penin_codec::Error::Io(io) => io,
                other => std::io::Error::other(other),
            })
        })?;
        let mut fields = Map::new();
        fields.insert("id", Value::from(meta.id.as_str()));
        fields.insert("tag", meta.tag.as_deref().map_or(Value::Null, Value::from));
        fields.insert("bytes", seq_value(meta.size));
        self.record("checkpoint", fields, meta.blake2b)?;
        Ok(meta)
    }

    /// Makes the checkpoint `selector` picks the current state, atomically, after checking it
    /// and after checkpointing the current state. Sequence numbers go on.
    pub fn restore(&mut self, selector: &Selector) -> Result<Restored> {
        let dir = penin_history::checkpoints_dir(&self.path);
        let listing = checkpoint::list(&dir)?;
        let restored = checkpoint::select(&listing.checkpoints, selector)?.clone();
        checkpoint::verify(&dir, &restored)?;
        let data = checkpoint::data_path(&dir, &restored);
        let mut state = Orchestrator::with_history_maxlen(self.state.history_maxlen());
        state.load_state(&data)?;
        let saved = self.checkpoint(None)?;
        self.replace_state(state)?;
        let mut fields = Map::new();
        fields.insert("id", Value::from(restored.id.as_str()));
        fields.insert("saved", Value::from(saved.id.as_str()));
        self.record("restore", fields, restored.blake2b)?;
        Ok(Restored { restored, saved })
    }

    /// Removes the checkpoints that no rule keeps (restic's `forget` rules: see
    /// [`checkpoint::plan_prune`]); with `dry_run`, only says which. A `prune` ledger line
    /// names those removed, also when removing one of them failed (the error is returned).
    pub fn prune(
        &mut self,
        keep_last: Option<usize>,
        keep_within: Option<Duration>,
        tags_too: bool,
        dry_run: bool,
    ) -> Result<Plan> {
        let dir = penin_history::checkpoints_dir(&self.path);
        let listing = checkpoint::list(&dir)?;
        let plan = checkpoint::plan_prune(&listing.checkpoints, keep_last, keep_within, tags_too)?;
        if dry_run || plan.remove.is_empty() {
            return Ok(plan);
        }
        let mut removed = Vec::new();
        let mut failure = None;
        for meta in &plan.remove {
            if let Err(error) = checkpoint::remove(&self.fs, &dir, meta) {
                // Without its meta file (removed first) it is no longer a checkpoint.
                let meta_file = checkpoint::meta_path(&dir, meta);
                let gone = self
                    .fs
                    .symlink_metadata(&meta_file)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
                if gone {
                    removed.push(Value::from(meta.id.as_str()));
                }
                failure = Some(error);
                break;
            }
            removed.push(Value::from(meta.id.as_str()));
        }
        // The line names every checkpoint removed, a failure to remove the next one or not.
        let recorded = if removed.is_empty() {
            Ok(())
        } else {
            let ids = penin_codec::to_vec_compact(&Value::Array(removed.clone()));
            let mut fields = Map::new();
            fields.insert("removed", Value::Array(removed));
            self.record("prune", fields, ledger::digest(&ids)).map(drop)
        };
        if let Some(error) = failure {
            return Err(error.into());
        }
        recorded?;
        Ok(plan)
    }
}

/// Deals with a journal whose snapshot was replaced by another program
/// ([`Error::Foreign`]): applies its changes to the snapshot as it is now, or moves it aside.
/// Either way a compaction then writes the state as a new snapshot with an empty journal,
/// and a `recover` ledger line says what was done. The caller holds the state's lock.
pub fn recover(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
    how: Recovery,
) -> Result<(Recovered, Vec<Notice>)> {
    let path = path.as_ref();
    let fs = RealFs;
    let mut notices = Vec::new();
    settle_compaction(Some(&fs), path, &mut notices)?;
    let journal_path = penin_history::journal_path(path);
    let Some(bytes) = read_if_exists(&journal_path)? else {
        return Err(Error::NothingToRecover {
            journal: journal_path,
            why: "there is no journal",
        });
    };
    let scan = journal::scan(bytes, &journal_path)?;
    if scan.header.identity.check(path)? == Match::Same {
        return Err(Error::NothingToRecover {
            journal: journal_path,
            why: "it extends the snapshot as it is",
        });
    }
    let mut state = Orchestrator::with_history_maxlen(history_maxlen);
    state.load_state(path)?;
    let (applied, moved_to) = match how {
        Recovery::KeepJournal => {
            for record in &scan.records {
                replay(&journal_path, record, &scan.bytes, &mut state)?;
            }
            (scan.records.len() as u64, None)
        }
        Recovery::DiscardJournal => {
            let aside = set_aside(&fs, &journal_path, "discarded")?;
            (0, Some(aside))
        }
    };
    let mut memory = Memory::adopt_in(fs, path, state, scan.last_seq())?;
    notices.extend(memory.take_notices());
    let mut fields = Map::new();
    fields.insert(
        "action",
        Value::from(match how {
            Recovery::KeepJournal => "keep_journal",
            Recovery::DiscardJournal => "discard_journal",
        }),
    );
    fields.insert("changes", seq_value(scan.records.len() as u64));
    if let Some(aside) = &moved_to {
        fields.insert("moved_to", Value::from(aside.display().to_string()));
    }
    memory.record("recover", fields, ledger::digest(&scan.bytes))?;
    let recovered = Recovered {
        applied,
        moved_to,
        seq: memory.seq(),
    };
    Ok((recovered, notices))
}

/// Repairs a journal damaged before its last record, as `redis-check-aof --fix` does: keeps
/// the valid records before the damage, writes a checkpoint of the state they make, moves
/// the damaged journal aside, and folds the kept records into a new snapshot. A `repair`
/// ledger line says what was dropped. The caller holds the state's lock.
pub fn repair(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
) -> Result<(Repaired, Vec<Notice>)> {
    let path = path.as_ref();
    let fs = RealFs;
    let mut notices = Vec::new();
    settle_compaction(Some(&fs), path, &mut notices)?;
    let journal_path = penin_history::journal_path(path);
    let Some(bytes) = read_if_exists(&journal_path)? else {
        return Err(Error::NothingToRepair {
            journal: journal_path,
            why: "there is no journal".to_owned(),
        });
    };
    let total = bytes.len() as u64;
    let (scan, damage) = journal::salvage(bytes, &journal_path)?;
    let Some(damage) = damage else {
        let why = match scan.torn {
            Some(torn) => format!(
                "it is sound but for a torn last record ({} bytes), which the next start cuts off",
                torn.len
            ),
            None => "it is sound".to_owned(),
        };
        return Err(Error::NothingToRepair {
            journal: journal_path,
            why,
        });
    };
    let found = scan.header.identity.check(path)?;
    if found != Match::Same {
        return Err(Error::Foreign {
            snapshot: path.to_owned(),
            journal: journal_path,
            found,
            changes: scan.records.len() as u64,
        });
    }
    let mut state = Orchestrator::with_history_maxlen(history_maxlen);
    state.load_state(path)?;
    for record in &scan.records {
        replay(&journal_path, record, &scan.bytes, &mut state)?;
    }
    // The state the valid records make, as it is before anything moves.
    let mut memory = Memory::assemble(fs, path.to_owned(), state, scan.last_seq(), notices)?;
    memory.snapshot = true;
    memory.catch_up_records(&scan)?;
    let checkpoint = memory.checkpoint(Some("before-repair"))?;
    // A copy first: the compaction then replaces the damaged journal atomically, so a crash
    // at any point leaves either the damaged journal in place (repair again) or the new state.
    let moved_to = copy_aside(&fs, &journal_path, &scan.bytes, "damaged")?;
    memory.compact()?;
    let dropped_bytes = total - scan.valid_len();
    let mut fields = Map::new();
    fields.insert("kept", seq_value(scan.records.len() as u64));
    fields.insert("dropped_bytes", seq_value(dropped_bytes));
    fields.insert("moved_to", Value::from(moved_to.display().to_string()));
    fields.insert("checkpoint", Value::from(checkpoint.id.as_str()));
    memory.record("repair", fields, ledger::digest(&scan.bytes))?;
    let notices = memory.take_notices();
    let repaired = Repaired {
        kept: scan.records.len() as u64,
        dropped_bytes,
        damage: damage.to_string(),
        moved_to,
        checkpoint,
    };
    Ok((repaired, notices))
}

impl<F: Fs + Clone> Memory<F> {
    /// [`Memory::catch_up`] for the valid records of a salvaged journal, keeping the
    /// sequence numbers above those the ledger already names.
    fn catch_up_records(&mut self, scan: &journal::Scan) -> Result<()> {
        let logged = self.ledger.as_ref().map_or(0, logged_seq);
        if logged <= scan.last_seq() {
            self.catch_up(scan)?;
        }
        self.seq = self.seq.max(logged);
        Ok(())
    }
}

fn replay(
    journal_path: &Path,
    record: &journal::Record,
    bytes: &[u8],
    state: &mut Orchestrator,
) -> Result<()> {
    let change =
        Change::decode(record.kind, record.payload(bytes)).map_err(|what| Error::Replay {
            journal: journal_path.to_owned(),
            seq: record.seq,
            offset: record.offset,
            what,
        })?;
    change.apply(state);
    Ok(())
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(store_io(penin_store::Step::Read, path)(error)),
    }
}

/// Writes `bytes` (the file at `path`) to `path.<why>-<UTC time>`, durably.
fn copy_aside<F: Fs>(fs: &F, path: &Path, bytes: &[u8], why: &str) -> Result<PathBuf> {
    let aside = penin_history::beside(
        path,
        &format!(".{why}-{}", Timestamp::now().checkpoint_id()),
    );
    if fs.symlink_metadata(&aside).is_ok() {
        return Err(Error::Store(penin_store::Error::Io {
            step: penin_store::Step::MoveAside,
            path: aside,
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        }));
    }
    penin_store::write_atomic_in(fs, &aside, penin_store::Durability::Full, |w| {
        std::io::Write::write_all(w, bytes)
    })?;
    Ok(aside)
}

/// Renames `path` to `path.<why>-<UTC time>` (never over an existing file) and syncs the
/// directory.
fn set_aside<F: Fs>(fs: &F, path: &Path, why: &str) -> Result<PathBuf> {
    let aside =
        penin_store::move_aside(path, &format!("{why}-{}", Timestamp::now().checkpoint_id()))?;
    let dir = parent(path);
    fs.sync_dir(dir)
        .map_err(store_io(penin_store::Step::SyncDirectory, dir))?;
    Ok(aside)
}
