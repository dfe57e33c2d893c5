//! A memory's past: checkpoints (taken, restored, pruned) and the repairs of a journal that
//! cannot be replayed as it is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use penin_artifacts::{Map, Value};
use penin_formats::Layout;
use penin_history::checkpoint::{self, Counts, Meta, NewCheckpoint, Plan, Selector};
use penin_history::journal::{self, Match};
use penin_history::ledger;
use penin_history::time::Timestamp;
use penin_store::{Fs, RealFs};

use super::{Memory, Notice, Options, parent, seq_value, settle_compaction, store_io};
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
    /// The sequence numbers dropped with them, first and last, as far as the ledger and
    /// the records after the damage tell.
    pub dropped: Option<(u64, u64)>,
    /// What was wrong with the journal, if anything.
    pub damage: Option<String>,
    /// Whether the journal's header was damaged and rebuilt (its base from its first
    /// record, the snapshot as it is now taken as the one it extends).
    pub header_rebuilt: bool,
    /// Where the damaged journal was copied.
    pub moved_to: Option<PathBuf>,
    /// What was wrong with the ledger, and where the damaged ledger was moved.
    pub ledger: Option<(String, PathBuf)>,
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
        // In the snapshot's format, encrypted as the snapshot is: the checksum covers the
        // bytes stored.
        let (state, format, keys) = (&self.state, self.format, &self.keys);
        let meta = checkpoint::write(&self.fs, &dir, &new, |w| {
            state.write_with(w, format, keys).map(drop)
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
        state.load_state_with(&data, &self.keys)?;
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
    recover_with(path, &Options::new(history_maxlen), how)
}

/// [`recover`] with `options`: the snapshot is decrypted with its keys, and the new one
/// encrypted to their recipients.
pub fn recover_with(
    path: impl AsRef<Path>,
    options: &Options,
    how: Recovery,
) -> Result<(Recovered, Vec<Notice>)> {
    let path = path.as_ref();
    let fs = RealFs;
    let mut notices = Vec::new();
    settle_compaction(Some(&fs), path, &mut notices)?;
    let journal_path = penin_history::journal_path(path);
    let Some(bytes) = penin_store::read(&journal_path)? else {
        return Err(Error::NothingToRecover {
            journal: journal_path,
            why: "there is no journal",
        });
    };
    // Setting the journal aside needs nothing from it: a journal too damaged to read can be
    // discarded too (its last valid record then says where the sequence stands). Applying it
    // needs every record. The bytes go to the scan, not a copy of them: a journal is as
    // large as its file says.
    let valid_seq =
        matches!(how, Recovery::DiscardJournal).then(|| journal::last_valid_seq(&bytes));
    let digest = ledger::digest(&bytes);
    let parsed = journal::scan(bytes, &journal_path);
    if let Ok(scan) = &parsed
        && scan.header.identity.check(path)? == Match::Same
    {
        return Err(Error::NothingToRecover {
            journal: journal_path,
            why: "it extends the snapshot as it is",
        });
    }
    let mut state = Orchestrator::with_history_maxlen(options.history_maxlen);
    // The state keeps the format of the snapshot it was read from.
    let format = state
        .load_state_with(path, &options.keys)?
        .map(|layout| layout.format)
        .unwrap_or_default();
    let (applied, moved_to, changes, seq, kept) = match how {
        Recovery::KeepJournal => {
            let scan = parsed?;
            // A sealed journal's changes need its key, unwrapped with the identities.
            let seal =
                journal::Seal::open(&scan.bytes, &journal_path, options.keys.x25519_identities())?;
            for record in &scan.records {
                replay(
                    &journal_path,
                    record,
                    &scan.bytes,
                    seal.as_ref(),
                    &mut state,
                )?;
            }
            let n = scan.records.len() as u64;
            let seq = scan.last_seq();
            (n, None, n, seq, Some((scan, seal)))
        }
        Recovery::DiscardJournal => {
            let aside = set_aside(&fs, &journal_path, "discarded")?;
            let (changes, seq) = match &parsed {
                Ok(scan) => (scan.records.len() as u64, scan.last_seq()),
                // Always computed above for a discard.
                Err(_) => (0, valid_seq.unwrap_or_default()),
            };
            (0, Some(aside), changes, seq, None)
        }
    };
    let mut memory = Memory::assemble(fs, path.to_owned(), state, seq, Vec::new())?;
    memory.keys.clone_from(&options.keys);
    memory.format = format;
    if let Some((scan, seal)) = &kept {
        // The changes applied get their ledger lines if a crash kept any from it.
        memory.catch_up(&scan.summary(), seal.as_ref())?;
    }
    memory.compact()?;
    notices.extend(memory.take_notices());
    let mut fields = Map::new();
    fields.insert(
        "action",
        Value::from(match how {
            Recovery::KeepJournal => "keep_journal",
            Recovery::DiscardJournal => "discard_journal",
        }),
    );
    fields.insert("changes", seq_value(changes));
    if let Some(aside) = &moved_to {
        fields.insert("moved_to", Value::from(aside.display().to_string()));
    }
    memory.record("recover", fields, digest)?;
    let recovered = Recovered {
        applied,
        moved_to,
        seq: memory.seq(),
    };
    Ok((recovered, notices))
}

/// Repairs what penin refuses to load: a journal damaged before its last record (or in its
/// header), and a ledger whose chain is broken.
///
/// The journal, as `redis-check-aof --fix` does: keeps the valid records before the damage,
/// writes a checkpoint (tag `before-repair`) of the state they make, copies the damaged
/// journal aside, and folds the kept records into a new snapshot. A damaged header is
/// rebuilt first (its base from the first record; the snapshot as it is now taken as the one
/// it extends). The ledger, which is never rewritten: moved aside whole, and a new chain
/// starts with a `ledger_restart` line naming it. A `repair` ledger line says what was kept
/// and dropped. The caller holds the state's lock.
pub fn repair(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
) -> Result<(Repaired, Vec<Notice>)> {
    repair_with(path, &Options::new(history_maxlen))
}

/// [`repair`] with `options`: the snapshot is decrypted with its keys, and the checkpoint
/// and new snapshot encrypted to their recipients.
pub fn repair_with(path: impl AsRef<Path>, options: &Options) -> Result<(Repaired, Vec<Notice>)> {
    let path = path.as_ref();
    let fs = RealFs;
    let mut notices = Vec::new();
    settle_compaction(Some(&fs), path, &mut notices)?;

    let ledger_restart = set_broken_ledger_aside(fs, path)?;
    let journal_path = penin_history::journal_path(path);
    let (salvaged, header_rebuilt) = salvage_journal(path, &journal_path)?;
    let journal_damaged = header_rebuilt
        || salvaged
            .as_ref()
            .is_some_and(|((_, damage), _)| damage.is_some());
    if !journal_damaged && ledger_restart.is_none() {
        let torn = salvaged.as_ref().and_then(|((scan, _), _)| scan.torn);
        let why = match torn {
            Some(torn) => format!(
                "it is sound but for a torn last record ({} bytes), which the next start cuts off",
                torn.len
            ),
            None if salvaged.is_none() => "there is no journal".to_owned(),
            None => "it is sound, and so is the ledger".to_owned(),
        };
        return Err(Error::NothingToRepair {
            journal: journal_path,
            why,
        });
    }
    if let Some(((scan, _), _)) = &salvaged
        && !header_rebuilt
    {
        let found = scan.header.identity.check(path)?;
        if found != Match::Same {
            return Err(Error::Foreign {
                snapshot: path.to_owned(),
                journal: journal_path,
                found,
                changes: scan.records.len() as u64,
            });
        }
    }

    // The state the valid records make, as it is before anything moves.
    let scan = salvaged.as_ref().map(|((scan, _), _)| scan);
    let (state, layout, kept, last_valid, seal) = replayed(path, &journal_path, options, scan)?;
    let mut memory = Memory::assemble(fs, path.to_owned(), state, last_valid, notices)?;
    (memory.keys, memory.snapshot) = (options.keys.clone(), true);
    memory.snapshot_in(layout);
    let named = memory.seq;
    if let Some((why, moved, digest)) = &ledger_restart {
        let mut fields = Map::new();
        fields.insert("moved_to", Value::from(moved.display().to_string()));
        fields.insert("damage", Value::from(why.as_str()));
        memory.seq = last_valid;
        memory.record("ledger_restart", fields, *digest)?;
    } else if let Some(((scan, _), _)) = salvaged.as_ref().filter(|_| !header_rebuilt) {
        // Ledger lines a crash kept from it, for the records kept (not behind a rebuilt
        // header, which the journal on disk lacks: the `repair` line says what was kept).
        memory.catch_up(&scan.summary(), seal.as_ref())?;
    }
    // The checkpoint is labelled with the last change the state holds.
    memory.seq = last_valid;
    let checkpoint = memory.checkpoint(Some("before-repair"))?;

    let mut repaired = Repaired {
        kept,
        dropped_bytes: 0,
        dropped: None,
        damage: None,
        header_rebuilt,
        moved_to: None,
        ledger: ledger_restart.map(|(why, moved, _)| (why, moved)),
        checkpoint,
    };
    let mut fields = Map::new();
    fields.insert("kept", seq_value(kept));
    if let Some(((scan, damage), total)) = &salvaged
        && journal_damaged
    {
        repaired.dropped_bytes = total - scan.valid_len();
        repaired.damage = damage.as_ref().map(ToString::to_string);
        let last_seen = journal::last_valid_seq(&scan.bytes).max(named);
        if last_seen > last_valid {
            repaired.dropped = Some((last_valid + 1, last_seen));
        }
        // A copy first: the compaction then replaces the damaged journal atomically, so a
        // crash at any point leaves either the damaged journal in place (repair again) or the
        // new state. Numbers go on after every one the journal or the ledger gave.
        repaired.moved_to = Some(copy_aside(&fs, &journal_path, &scan.bytes, "damaged")?);
        memory.seq = last_valid.max(last_seen);
        memory.compact()?;
        fields.insert("dropped_bytes", seq_value(repaired.dropped_bytes));
        if let Some((from, to)) = repaired.dropped {
            fields.insert("dropped_from", seq_value(from));
            fields.insert("dropped_to", seq_value(to));
        }
        if let Some(moved) = &repaired.moved_to {
            fields.insert("moved_to", Value::from(moved.display().to_string()));
        }
        fields.insert("header_rebuilt", Value::Bool(header_rebuilt));
    } else {
        memory.seq = last_valid.max(named);
    }
    fields.insert("checkpoint", Value::from(repaired.checkpoint.id.as_str()));
    let digest = salvaged.as_ref().map_or_else(
        || ledger::digest(b""),
        |((scan, _), _)| ledger::digest(&scan.bytes),
    );
    memory.record("repair", fields, digest)?;
    let notices = memory.take_notices();
    Ok((repaired, notices))
}

/// The snapshot with the valid records of `scan` replayed: the state, the snapshot's layout,
/// how many records, the last one's sequence number, and the journal's seal (a sealed
/// journal's records are opened with the key its header wraps, unwrapped with the keys'
/// identities).
fn replayed(
    path: &Path,
    journal_path: &Path,
    options: &Options,
    scan: Option<&journal::Scan>,
) -> Result<(Orchestrator, Layout, u64, u64, Option<journal::Seal>)> {
    let mut state = Orchestrator::with_history_maxlen(options.history_maxlen);
    let format = state
        .load_state_with(path, &options.keys)?
        .unwrap_or_default();
    let Some(scan) = scan else {
        return Ok((state, format, 0, 0, None));
    };
    let seal = journal::Seal::open(&scan.bytes, journal_path, options.keys.x25519_identities())?;
    for record in &scan.records {
        replay(journal_path, record, &scan.bytes, seal.as_ref(), &mut state)?;
    }
    let (kept, last) = (scan.records.len() as u64, scan.last_seq());
    Ok((state, format, kept, last, seal))
}

/// The ledger, if its chain is broken: moved aside whole. Returns what was wrong, where it
/// went and the hash of its bytes.
fn set_broken_ledger_aside(fs: RealFs, path: &Path) -> Result<Option<(String, PathBuf, [u8; 32])>> {
    let ledger_path = penin_history::ledger_path(path);
    if let Some(bytes) = penin_store::read(&ledger_path)?
        && let Err(error @ ledger::Error::Damaged { .. }) = ledger::verify(&ledger_path)
    {
        let moved = set_aside(&fs, &ledger_path, "damaged")?;
        return Ok(Some((error.to_string(), moved, ledger::digest(&bytes))));
    }
    Ok(None)
}

/// A salvaged journal and its length (none if there is no journal), and whether its header
/// had to be rebuilt.
type Salvaged = (Option<((journal::Scan, Option<journal::Error>), u64)>, bool);

/// The journal's valid records before any damage, its header rebuilt if it is damaged.
fn salvage_journal(path: &Path, journal_path: &Path) -> Result<Salvaged> {
    let Some(bytes) = penin_store::read(journal_path)? else {
        return Ok((None, false));
    };
    let mut rebuilt = false;
    let bytes = match journal::Header::parse(&bytes, journal_path) {
        Ok(_) => bytes,
        Err(journal::Error::Damaged { .. } | journal::Error::NotAJournal { .. })
            if looks_sealed(&bytes) =>
        {
            // The data key is wrapped in the header: with the header, it is gone, and no
            // record can be opened again. Rebuilding a plaintext header in front of sealed
            // records would only make garbage of them.
            return Err(journal::Error::Damaged {
                path: journal_path.to_owned(),
                seq: 0,
                offset: 0,
                what: "the header of this sealed journal is damaged, and the key that opens \
                       its records went with it: no repair can read them; `penin recover \
                       --discard-journal` sets the journal aside"
                    .to_owned(),
            }
            .into());
        }
        Err(journal::Error::Damaged { .. } | journal::Error::NotAJournal { .. }) => {
            rebuilt = true;
            rebuild_header(path, &bytes)?
        }
        Err(other) => return Err(other.into()),
    };
    let total = bytes.len() as u64;
    Ok((
        Some((journal::salvage(bytes, journal_path)?, total)),
        rebuilt,
    ))
}

/// Whether a journal whose header does not parse was a sealed one: its version or its flags
/// still say so.
fn looks_sealed(bytes: &[u8]) -> bool {
    let version = bytes.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let flags = bytes
        .get(12..16)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    version == Some(journal::VERSION_SEALED) || flags == Some(journal::FLAG_SEALED)
}

/// A journal's bytes with a new header: its base from the first record (else 0), naming the
/// snapshot as it is now.
fn rebuild_header(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let base = journal::first_record_seq(bytes).map_or(0, |seq| seq - 1);
    let identity = journal::Identity::of_file(path)?;
    let header = journal::Header::new(base, 0, super::now(), identity);
    let mut rebuilt = header.to_bytes().to_vec();
    rebuilt.extend_from_slice(bytes.get(journal::HEADER_LEN..).unwrap_or(&[]));
    Ok(rebuilt)
}

fn replay(
    journal_path: &Path,
    record: &journal::Record,
    bytes: &[u8],
    seal: Option<&journal::Seal>,
    state: &mut Orchestrator,
) -> Result<()> {
    let payload = record.open(bytes, seal, journal_path)?;
    let change = Change::decode(record.kind, &payload).map_err(|what| Error::Replay {
        journal: journal_path.to_owned(),
        seq: record.seq,
        offset: record.offset,
        what,
    })?;
    change.apply(state);
    Ok(())
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
