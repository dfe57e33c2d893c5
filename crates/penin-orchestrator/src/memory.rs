//! [`Memory`]: a state kept durable change by change. The snapshot `NAME` is the seed
//! format, plain or compressed ([`Memory::format`]: a loaded snapshot's format is kept by
//! every compaction), and encrypted when the [`Options`]' keys have recipients (then
//! checkpoints are too, and every journal started is sealed; the ledger is not); every
//! change since it is a record of `NAME.journal`, written (and
//! synced under the caller's policy) before the change is acknowledged; a compaction folds
//! the journal into a new snapshot.
//!
//! # Compaction, step by step
//!
//! 1. The new snapshot is written to a temporary file beside `NAME` and synced.
//! 2. Its identity (size, modification time, inode, XXH3-128) goes into the header of a new,
//!    empty journal, written atomically as `NAME.journal.next`.
//! 3. The temporary is renamed over `NAME`, and the directory synced.
//! 4. `NAME.journal.next` is renamed over `NAME.journal` (not synced: a restart after a power
//!    loss that took the rename back makes it again, as below).
//!
//! A crash before step 3 leaves the old snapshot and the old journal, which still match: the
//! prepared journal names a snapshot that is not there and is removed at the next start. A
//! crash after step 3 leaves the new snapshot, which the prepared journal names: the next
//! start finishes step 4. Either way every change is in the state once.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use penin_artifacts::{Map, Value};
use penin_formats::{Format, Keys, Layout};
use penin_history::journal::{
    self, HashingWriter, Header, Identity, Match, Seal, Summary, Torn, Writer,
};
use penin_history::ledger::{self, Event, Ledger};
use penin_history::time::Timestamp;
use penin_store::{Durability, Fs, RealFs};

pub use self::history::{
    Recovered, Recovery, Repaired, Restored, recover, recover_with, repair, repair_with,
};
pub use self::migrate::{MIGRATE_TAG, Migrated, Migration, plan_migration};
use crate::change::Change;
use crate::error::{Error, Result};
use crate::orchestrator::Orchestrator;

mod history;
mod migrate;

/// The journal is folded into a new snapshot once it is larger than the snapshot and than
/// this many bytes.
pub const COMPACT_AT_LEAST: u64 = 64 << 20;

/// What opening or loading a state needs beside its path: the history bound of a new state
/// and the keys its files are decrypted with and encrypted to.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// The bound of a new state's histories (`None`: unbounded); a loaded file keeps its own.
    pub history_maxlen: Option<usize>,
    /// The identities loads decrypt with, and the recipients every snapshot and checkpoint
    /// written is encrypted to (none: plaintext).
    pub keys: Keys,
    /// The format of the snapshots written from now on ([`Memory::set_format`]), when given:
    /// used by [`append_with`] (a new state's first snapshot, and a compaction the change
    /// calls for).
    pub format: Option<Format>,
    /// Read a large `arrow` snapshot through a read-only map of its file
    /// ([`Orchestrator::map_file_with`]): for a process that exits soon after the load, never
    /// for one that keeps the state while other programs may write the file. Off by default.
    pub map: bool,
    /// With [`Options::map`], every page of the map mapped at once
    /// ([`Orchestrator::map_file_populated_with`]): for a process that reads every vector (a
    /// search, a diff), which then takes less time to load and read them all; one that reads
    /// few loads faster without. Off by default.
    pub populate: bool,
}

impl Options {
    /// A history bound of `history_maxlen` and no keys: files are plaintext.
    pub fn new(history_maxlen: Option<usize>) -> Self {
        Options {
            history_maxlen,
            keys: Keys::new(),
            format: None,
            map: false,
            populate: false,
        }
    }

    /// These options, reading a large `arrow` snapshot through a map of its file or not
    /// ([`Options::map`]).
    #[must_use]
    pub fn with_mapped_loads(mut self, map: bool) -> Self {
        self.map = map;
        self
    }

    /// These options, mapping every page of a mapped snapshot at once or not
    /// ([`Options::populate`]).
    #[must_use]
    pub fn with_populated_maps(mut self, populate: bool) -> Self {
        self.populate = populate;
        self
    }

    /// These options with `format` as the format of the snapshots written from now on.
    #[must_use]
    pub fn with_format(mut self, format: Option<Format>) -> Self {
        self.format = format;
        self
    }

    /// These options with `keys`.
    #[must_use]
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }
}

/// `NAME.journal.next`: the journal a compaction prepares for the snapshot it writes.
pub fn next_journal_path(state: &Path) -> PathBuf {
    penin_history::beside(state, ".journal.next")
}

/// Something a load found and dealt with, for the caller to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The journal ended in a torn record (a crash during an append): it was cut off (by a
    /// writer) or left out (by a reader).
    TornJournal {
        /// The journal.
        journal: PathBuf,
        /// The torn record.
        torn: Torn,
        /// Whether it was cut off the file.
        cut: bool,
    },
    /// The snapshot was replaced by another program while the journal held no change: the
    /// snapshot is taken as it is, and a new journal extends it.
    SnapshotReplaced {
        /// The snapshot.
        snapshot: PathBuf,
        /// Whether it was removed rather than replaced (the state is then empty).
        removed: bool,
    },
    /// The ledger ended in a torn line (a crash during an append): it was cut off.
    TornLedger {
        /// The ledger.
        ledger: PathBuf,
        /// Where the torn line started, and its length.
        torn: ledger::Torn,
    },
    /// Lines a crash kept from the ledger were written from the journal (marked
    /// `"recovered":true`).
    LedgerCaughtUp {
        /// The ledger.
        ledger: PathBuf,
        /// How many lines.
        lines: usize,
    },
    /// The ledger named changes that a crash took from the journal before they were synced
    /// (so before they were acknowledged); a `lost` line now says so.
    LostChanges {
        /// The first sequence number lost.
        from: u64,
        /// The last.
        to: u64,
    },
    /// A compaction the journal's size called for failed; the changes are durable in the
    /// journal, and the next writer compacts.
    CompactionFailed {
        /// Why.
        error: String,
    },
    /// A compaction interrupted after its new snapshot was in place was finished.
    FinishedCompaction {
        /// The snapshot.
        snapshot: PathBuf,
    },
    /// A compaction interrupted before its new snapshot was in place was undone.
    AbandonedCompaction {
        /// The prepared journal, removed.
        journal: PathBuf,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::TornJournal { journal, torn, cut } => write!(
                f,
                "{} ends in a torn record (sequence number {}, {} bytes at byte offset {}, from a \
                 crash during an append, never acknowledged): {}",
                journal.display(),
                torn.seq,
                torn.len,
                torn.offset,
                if *cut { "cut off" } else { "left out" }
            ),
            Notice::SnapshotReplaced {
                snapshot,
                removed: false,
            } => write!(
                f,
                "{} was replaced by another program since penin last wrote it; the journal held \
                 no change, so the new file is taken as it is",
                snapshot.display()
            ),
            Notice::SnapshotReplaced {
                snapshot,
                removed: true,
            } => write!(
                f,
                "{} was removed since penin last wrote it; the journal held no change, so the \
                 state starts empty",
                snapshot.display()
            ),
            Notice::TornLedger { ledger, torn } => write!(
                f,
                "{} ends in a torn line ({} bytes at byte offset {}, from a crash during an \
                 append): cut off",
                ledger.display(),
                torn.bytes,
                torn.offset
            ),
            Notice::LedgerCaughtUp { ledger, lines } => write!(
                f,
                "{}: wrote {lines} line(s) that a crash kept from it, from the journal",
                ledger.display()
            ),
            Notice::LostChanges { from, to } => write!(
                f,
                "changes {from} to {to} were written but a crash took them before they were \
                 synced (none was acknowledged): the ledger now says so"
            ),
            Notice::CompactionFailed { error } => write!(
                f,
                "the journal outgrew the snapshot, but folding it in failed ({error}); the changes \
                 are safe in the journal"
            ),
            Notice::FinishedCompaction { snapshot } => write!(
                f,
                "finished a compaction of {} that a crash interrupted after its new snapshot was in place",
                snapshot.display()
            ),
            Notice::AbandonedCompaction { journal } => write!(
                f,
                "undid a compaction that a crash interrupted before its new snapshot was in place \
                 (removed {})",
                journal.display()
            ),
        }
    }
}

/// A state read from its snapshot and journal, without taking the state over.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The state.
    pub state: Orchestrator,
    /// Whether there is a snapshot file.
    pub snapshot: bool,
    /// The snapshot's format (`None` without a snapshot).
    pub format: Option<Format>,
    /// The snapshot's format and envelope (`None` without a snapshot).
    pub layout: Option<Layout>,
    /// Whether the snapshot was read through a map of its file ([`Options::map`]).
    pub mapped: bool,
    /// Sequence number of the last change the state holds.
    pub seq: u64,
    /// Changes replayed from the journal.
    pub replayed: usize,
    /// The journal's size in bytes (0 when there is none).
    pub journal_len: u64,
    /// What the load found and dealt with.
    pub notices: Vec<Notice>,
}

impl Loaded {
    /// Whether there was anything to load: a snapshot, or a journal.
    pub fn exists(&self) -> bool {
        self.snapshot || self.journal_len > 0
    }
}

/// A state kept durable change by change. The caller holds the state's lock.
pub struct Memory<F: Fs + Clone = RealFs> {
    fs: F,
    path: PathBuf,
    journal_path: PathBuf,
    state: Orchestrator,
    journal: Option<Writer<F>>,
    /// Opened when the state's directory exists (at once if the ledger does).
    ledger: Option<Ledger<F>>,
    seq: u64,
    snapshot: bool,
    snapshot_len: u64,
    /// The format every compaction writes the snapshot in: the loaded snapshot's, until
    /// [`Memory::set_format`] changes it.
    format: Format,
    /// The format and envelope of the snapshot on disk (`None` without one).
    snapshot_layout: Option<Layout>,
    /// The identities loads decrypt with and the recipients snapshots and checkpoints are
    /// encrypted to.
    keys: Keys,
    notices: Vec<Notice>,
    /// A compaction failed after its new snapshot may have replaced the old one: the journal
    /// open for writing may no longer extend the snapshot on disk, and the next start
    /// finishes the compaction with the journal it prepared, so nothing more is written.
    interrupted: bool,
    /// The header of the journal open for writing: the snapshot it extends.
    extends: Option<Header>,
}

impl Memory<RealFs> {
    /// [`Memory::open_in`] on the real file system.
    pub fn open(path: impl AsRef<Path>, history_maxlen: Option<usize>) -> Result<Self> {
        Self::open_with(RealFs, path, &Options::new(history_maxlen))
    }
}

impl<F: Fs + Clone> Memory<F> {
    /// Loads the state at `path` (snapshot, then journal) for writing. The caller holds its
    /// lock. An interrupted compaction is finished or undone, a torn last record is cut off;
    /// a snapshot that is not the one the journal extends is refused ([`Error::Foreign`]).
    pub fn open_in(fs: F, path: impl AsRef<Path>, history_maxlen: Option<usize>) -> Result<Self> {
        Self::open_with(fs, path, &Options::new(history_maxlen))
    }

    /// [`Memory::open_in`] with `options`: an encrypted snapshot is decrypted with its keys,
    /// and every snapshot and checkpoint written is encrypted to their recipients. A sealed
    /// journal's key is unwrapped with their identities (none that opens it:
    /// [`journal::Error::Sealed`] or [`journal::Error::WrongIdentity`], naming the journal);
    /// the journal goes on as it is (sealed or plaintext) until the next compaction, which
    /// starts a sealed journal when the keys have recipients, a plaintext one otherwise.
    pub fn open_with(fs: F, path: impl AsRef<Path>, options: &Options) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let journal_path = penin_history::journal_path(&path);
        let mut notices = Vec::new();
        settle_compaction(Some(&fs), &path, &mut notices)?;
        let (loaded, scan) = load_parts(&path, &journal_path, options, &notices)?;
        let mut notices = loaded.notices;
        // A journal goes on as it is until the next compaction: a sealed one sealed (with the
        // key its header wraps), a plaintext one plaintext, whatever the keys encrypt to.
        let journal = match &scan {
            Some((scan, seal)) => {
                let writer =
                    Writer::after_scan_with_in(fs.clone(), &journal_path, scan, seal.clone())?;
                for notice in &mut notices {
                    if let Notice::TornJournal { cut, .. } = notice {
                        *cut = true;
                    }
                }
                Some(writer)
            }
            None => None,
        };
        let snapshot_len = if loaded.snapshot {
            fs.metadata(&path).map_or(0, |m| m.len())
        } else {
            0
        };
        let mut memory = Self::assemble(fs, path, loaded.state, loaded.seq, notices)?;
        memory.keys.clone_from(&options.keys);
        memory.journal = journal;
        memory.extends = scan.as_ref().map(|(scan, _)| scan.header);
        memory.snapshot = loaded.snapshot;
        memory.snapshot_len = snapshot_len;
        if let Some(layout) = loaded.layout {
            memory.snapshot_in(layout);
        }
        if let Some((scan, seal)) = &scan
            && memory.catch_up(scan, seal.as_ref())?
        {
            // The ledger names changes past the journal's end: a compaction starts a journal
            // whose numbers go on after them, so that none is given twice.
            memory.compact()?;
        }
        Ok(memory)
    }

    /// A memory of `state` at `path` with its ledger open (a torn line cut off) and no
    /// journal yet; sequence numbers go on from `seq` or from the ledger's, the larger.
    fn assemble(
        fs: F,
        path: PathBuf,
        state: Orchestrator,
        seq: u64,
        mut notices: Vec<Notice>,
    ) -> Result<Self> {
        let ledger_path = penin_history::ledger_path(&path);
        let ledger = if fs.symlink_metadata(&ledger_path).is_ok() {
            let (ledger, torn) = Ledger::open_in(fs.clone(), &ledger_path)?;
            if let Some(torn) = torn {
                notices.push(Notice::TornLedger {
                    ledger: ledger_path,
                    torn,
                });
            }
            Some(ledger)
        } else {
            None
        };
        let seq = seq.max(ledger.as_ref().map_or(0, logged_seq));
        Ok(Memory {
            fs,
            journal_path: penin_history::journal_path(&path),
            path,
            state,
            journal: None,
            ledger,
            seq,
            snapshot: false,
            snapshot_len: 0,
            format: Format::default(),
            snapshot_layout: None,
            keys: Keys::new(),
            notices,
            interrupted: false,
            extends: None,
        })
    }

    /// Brings the ledger in line with the journal after a crash: writes the lines a crash
    /// kept from it (the line of the compaction that started the journal, and those of its
    /// records after the last one the ledger names), or, when the ledger names changes the
    /// journal lost (written, never synced, so never acknowledged), a `lost` line saying so;
    /// then true: the state's sequence number is past the journal's end. `seal` opens the
    /// records of a sealed journal.
    pub(crate) fn catch_up(&mut self, scan: &Summary, seal: Option<&Seal>) -> Result<bool> {
        let mut events = Vec::new();
        let logged = self.ledger.as_ref().map_or(0, logged_seq);
        if logged > scan.last_seq {
            let mut fields = Map::new();
            fields.insert("journal", seq_value(logged));
            fields.insert("from", seq_value(scan.last_seq + 1));
            fields.insert("to", seq_value(logged));
            let event = Event::new(
                Timestamp::now().rfc3339(),
                "lost",
                fields,
                ledger::digest(b""),
            );
            let ledger = self.ledger()?;
            ledger.append(&[event])?;
            ledger.sync()?;
            self.notices.push(Notice::LostChanges {
                from: scan.last_seq + 1,
                to: logged,
            });
            return Ok(true);
        }
        let header = &scan.header;
        let next_line = self.ledger.as_ref().map_or(1, Ledger::next_seq);
        if header.ledger_seq > 0 && next_line <= header.ledger_seq {
            let mut event = compact_event(header);
            event.fields.insert("recovered", Value::Bool(true));
            events.push(event);
        }
        if scan.last_seq > logged {
            // Lines a crash kept from the ledger: their records, read again (a rare path).
            let bytes = std::fs::read(&self.journal_path)
                .map_err(store_io(penin_store::Step::Read, &self.journal_path))?;
            let (full, _) = journal::salvage(bytes, &self.journal_path)?;
            for record in full
                .records
                .iter()
                .filter(|r| r.seq > logged && r.seq <= scan.last_seq)
            {
                let payload = record.open(&full.bytes, seal, &self.journal_path)?;
                let change =
                    Change::decode(record.kind, &payload).map_err(|what| Error::Replay {
                        journal: self.journal_path.clone(),
                        seq: record.seq,
                        offset: record.offset,
                        what,
                    })?;
                let mut event = change_event(&change, record.seq, record.time, &payload);
                event.fields.insert("recovered", Value::Bool(true));
                events.push(event);
            }
        }
        if !events.is_empty() {
            let ledger = self.ledger()?;
            ledger.append(&events)?;
            ledger.sync()?;
            let ledger = ledger.path().to_owned();
            self.notices.push(Notice::LedgerCaughtUp {
                ledger,
                lines: events.len(),
            });
        }
        Ok(false)
    }

    /// Makes `state` the whole state at `path`, whatever was there (a journal that cannot be
    /// read or does not match included): a compaction writes it as the snapshot and starts an
    /// empty journal whose first change is `seq + 1`, the snapshot in `format`. The caller
    /// holds the state's lock.
    pub fn adopt_in(
        fs: F,
        path: impl AsRef<Path>,
        state: Orchestrator,
        seq: u64,
        format: Format,
    ) -> Result<Self> {
        Self::adopt_with(fs, path, state, seq, format, &Keys::new())
    }

    /// [`Memory::adopt_in`], the snapshot encrypted to the recipients of `keys`.
    pub fn adopt_with(
        fs: F,
        path: impl AsRef<Path>,
        state: Orchestrator,
        seq: u64,
        format: Format,
        keys: &Keys,
    ) -> Result<Self> {
        let mut memory = Self::assemble(fs, path.as_ref().to_owned(), state, seq, Vec::new())?;
        memory.keys.clone_from(keys);
        memory.format = format;
        memory.compact()?;
        Ok(memory)
    }

    /// Replaces the whole state with `state`, as one compaction: sequence numbers go on. If
    /// the compaction fails before the new snapshot is in place, the state stays the old
    /// one, which the files hold and the next changes are journaled against.
    pub fn replace_state(&mut self, state: Orchestrator) -> Result<()> {
        self.check_not_interrupted()?;
        let old = std::mem::replace(&mut self.state, state);
        let result = self.compact();
        if result.is_err() && !self.interrupted {
            self.state = old;
        }
        result
    }

    /// Whether there was a state to load (a snapshot, or a journal).
    pub fn found(&self) -> bool {
        self.snapshot || self.journal.is_some()
    }

    /// The state.
    pub fn state(&self) -> &Orchestrator {
        &self.state
    }

    /// The format compactions write the snapshot in: the loaded snapshot's (JSON for a new
    /// state) unless [`Memory::set_format`] changed it.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The format of the snapshot on disk, as loaded or last written (`None` without one).
    pub fn snapshot_format(&self) -> Option<Format> {
        self.snapshot_layout.as_ref().map(|layout| layout.format)
    }

    /// The format and envelope of the snapshot on disk, as loaded or last written (`None`
    /// without one): whether it is encrypted, and to whom.
    pub fn snapshot_layout(&self) -> Option<&Layout> {
        self.snapshot_layout.as_ref()
    }

    /// The keys: the identities loads decrypt with, the recipients every snapshot and
    /// checkpoint written is encrypted to.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The layout the next compaction writes: [`Memory::format`], encrypted to the keys'
    /// recipients if there are any.
    pub fn layout(&self) -> Layout {
        Layout {
            format: self.format,
            encrypted_to: self.keys.encrypts().then(|| self.keys.recipients()),
        }
    }

    /// Sets the format of the snapshots written from now on (by the next compaction: the
    /// snapshot in place keeps its format until then).
    pub fn set_format(&mut self, format: Format) {
        self.format = format;
    }

    /// The snapshot on disk is laid out as `layout`, and the next compaction writes it in
    /// that format too (encrypted or not as the keys say).
    fn snapshot_in(&mut self, layout: Layout) {
        self.format = layout.format;
        self.snapshot_layout = Some(layout);
    }

    /// The snapshot's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence number of the last change made.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// What loading found and dealt with, taken once.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The journal's size in bytes (0 when there is none).
    pub fn journal_len(&self) -> u64 {
        self.journal.as_ref().map_or(0, Writer::len)
    }

    /// Writes `changes` to the journal, one record each, with one write, and applies them to
    /// the state. Not synced: [`Memory::sync`] makes them durable. On error none of them is
    /// applied or left in the journal.
    pub fn commit(&mut self, changes: Vec<Change>) -> Result<Vec<u64>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        self.check_not_interrupted()?;
        let mut payloads = Vec::with_capacity(changes.len());
        for change in &changes {
            let mut payload = Vec::new();
            change.encode(&mut payload);
            journal::check_len(&payload)?;
            payloads.push(payload);
        }
        self.ensure_journal()?;
        let time = now();
        let journal = self.journal.as_mut().ok_or(Error::NoJournal)?;
        let mark = journal.mark();
        let seqs: Vec<u64> = changes
            .iter()
            .zip(&payloads)
            .map(|(change, payload)| journal.push(time, change.kind(), payload))
            .collect();
        journal.write()?;
        let events: Vec<Event> = changes
            .iter()
            .zip(&payloads)
            .zip(&seqs)
            .map(|((change, payload), &seq)| change_event(change, seq, time, payload))
            .collect();
        let appended = self.ledger().and_then(|ledger| Ok(ledger.append(&events)?));
        if let Err(error) = appended {
            // A change is in both files or in neither: take the records back.
            let journal = self.journal.as_mut().ok_or(Error::NoJournal)?;
            journal.cut_back(mark)?;
            return Err(error);
        }
        for change in changes {
            change.apply(&mut self.state);
        }
        self.seq = seqs.last().copied().unwrap_or(self.seq);
        Ok(seqs)
    }

    /// Makes every committed change durable: one `fdatasync` of the journal, then one of
    /// the ledger (a crash between the two is caught up at the next start).
    pub fn sync(&mut self) -> Result<()> {
        if let Some(journal) = &mut self.journal {
            journal.sync()?;
        }
        if let Some(ledger) = &mut self.ledger {
            ledger.sync()?;
        }
        Ok(())
    }

    /// Appends one line to the ledger and syncs it: an event of `kind` with `fields` after
    /// the state's sequence number (`"journal"`), recording bytes whose hash is `digest`.
    pub fn record(&mut self, kind: &str, fields: Map, digest: [u8; 32]) -> Result<ledger::Line> {
        let mut all = Map::with_capacity(fields.len() + 1);
        all.insert("journal", seq_value(self.seq));
        all.extend(fields);
        let event = Event::new(Timestamp::now().rfc3339(), kind, all, digest);
        // The journal first: the ledger never names a change a power loss could take back.
        if let Some(journal) = &mut self.journal {
            journal.sync()?;
        }
        let ledger = self.ledger()?;
        let mut lines = ledger.append(&[event])?;
        ledger.sync()?;
        lines.pop().ok_or(Error::NoJournal)
    }

    /// The ledger's last sequence number and hash (0 and zeros when it is empty).
    pub fn ledger_head(&self) -> (u64, [u8; 32]) {
        self.ledger.as_ref().map_or((0, ledger::GENESIS), |ledger| {
            (ledger.next_seq() - 1, ledger.head())
        })
    }

    /// The ledger's length in bytes: where its next line will start (0 when there is none).
    pub fn ledger_len(&self) -> u64 {
        self.ledger.as_ref().map_or(0, Ledger::len)
    }

    /// The header of the journal open for writing (`None` before the first change): the
    /// snapshot it extends, by size, time, inode and XXH3-128, and when it was started.
    pub fn journal_header(&self) -> Option<Header> {
        self.extends
    }

    /// The ledger, opened (and created) if it is not yet.
    fn ledger(&mut self) -> Result<&mut Ledger<F>> {
        if self.ledger.is_none() {
            let dir = parent(&self.path);
            self.fs
                .create_dir_all(dir)
                .map_err(store_io(penin_store::Step::CreateDirectory, dir))?;
            let path = penin_history::ledger_path(&self.path);
            let (ledger, _) = Ledger::open_in(self.fs.clone(), &path)?;
            self.ledger = Some(ledger);
        }
        self.ledger.as_mut().ok_or(Error::NoJournal)
    }

    /// The file system it writes through.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// Whether some committed change is not yet synced.
    pub fn has_unsynced(&self) -> bool {
        self.journal.as_ref().is_some_and(Writer::has_unsynced)
    }

    /// Whether the journal has grown enough to fold into a new snapshot: larger than the
    /// snapshot and than [`COMPACT_AT_LEAST`].
    pub fn should_compact(&self) -> bool {
        let records = self
            .journal
            .as_ref()
            .map_or(0, |j| j.len() - j.header_len());
        records > COMPACT_AT_LEAST.max(self.snapshot_len)
    }

    /// Whether the snapshot alone holds the whole state (no change in the journal).
    pub fn is_compact(&self) -> bool {
        self.snapshot && self.journal.as_ref().is_none_or(Writer::is_empty)
    }

    /// Writes the whole state as a new snapshot and starts an empty journal extending it,
    /// atomically (see the module's documentation). If it fails once the new snapshot is in
    /// place, the journal open for writing no longer extends the snapshot (the next start
    /// finishes the compaction with the journal it prepared): nothing more is committed or
    /// compacted ([`Error::Interrupted`]) until the state is opened again.
    pub fn compact(&mut self) -> Result<()> {
        self.check_not_interrupted()?;
        // A rename over the snapshot changes its size, modification time or inode. (A look
        // that changes nothing, so not through `self.fs`, as `Identity::check` looks.)
        let stamp = |path: &Path| {
            std::fs::metadata(path)
                .ok()
                .map(|metadata| Identity::from_parts(&metadata, 0))
        };
        let before = stamp(&self.path);
        let result = self.compact_steps();
        if result.is_err() && stamp(&self.path) == before {
            // The old snapshot is still in place: a prepared journal left behind would name
            // a snapshot that never was (or, with the same bytes, this one), never ours to
            // finish. Best effort: the next start removes it too, if the journal has moved on.
            let next = next_journal_path(&self.path);
            if self.fs.remove(&next).is_ok() {
                let _ = self.fs.sync_dir(parent(&self.path));
            }
        }
        if result.is_err() && stamp(&self.path) != before {
            self.interrupted = true;
        }
        result
    }

    /// [`Error::Interrupted`] once a compaction failed after its snapshot was in place.
    fn check_not_interrupted(&self) -> Result<()> {
        if self.interrupted {
            return Err(Error::Interrupted {
                snapshot: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The steps of [`Memory::compact`].
    fn compact_steps(&mut self) -> Result<()> {
        // Everything committed is durable before the journal that holds it is replaced: the
        // ledger then names no change the new snapshot lacks, whatever a power loss keeps.
        // (A journal writer that broke holds nothing the state has: the compaction is what
        // replaces it.)
        if let Some(journal) = &mut self.journal
            && !journal.is_broken()
        {
            journal.sync()?;
        }
        if let Some(ledger) = &mut self.ledger {
            ledger.sync()?;
        }
        if let Some(extends) = self.extends {
            let found = extends.identity.check(&self.path)?;
            if found != Match::Same {
                // Someone else replaced the snapshot while this journal extends it: writing
                // over it would lose their state without a word.
                let records = self
                    .journal
                    .as_ref()
                    .map_or(0, |j| j.next_seq() - 1 - extends.base);
                return Err(Error::Foreign {
                    snapshot: self.path.clone(),
                    journal: self.journal_path.clone(),
                    found,
                    changes: records,
                });
            }
        }
        let next = next_journal_path(&self.path);
        let (header, seal) = self.write_snapshot(&next)?;
        // Not synced: if a power loss takes this rename back, the next start finds the
        // prepared journal naming the snapshot in place and makes it again (and the appends
        // made to it meanwhile went to the same file).
        self.fs
            .rename(&next, &self.journal_path)
            .map_err(store_io(penin_store::Step::Rename, &self.journal_path))?;
        self.journal =
            Some(Writer::open_with_in(self.fs.clone(), &self.journal_path, seal)?.writer);
        self.extends = Some(header);
        self.snapshot = true;
        self.snapshot_len = header.identity.size;
        self.snapshot_layout = Some(self.layout());
        // Synced with the next change or event: the journal's header records the line, and a
        // start after a power loss writes it again if it is missing.
        let ledger = self.ledger()?;
        ledger.append(&[compact_event(&header)])?;
        Ok(())
    }

    /// Steps 1 to 3 of a compaction: the new snapshot in place, its journal prepared at
    /// `next`, sealed when the keys encrypt. Returns the prepared journal's header and seal.
    fn write_snapshot(&self, next: &Path) -> Result<(Header, Option<Seal>)> {
        let seal = new_seal(&self.keys)?;
        let digest = Cell::new(0_u128);
        let header = Cell::new(None);
        let base = self.seq;
        let ledger_seq = self.ledger.as_ref().map_or(1, Ledger::next_seq);
        penin_store::write_atomic_staged_in(
            &self.fs,
            &self.path,
            Durability::Full,
            |w| {
                // The snapshot's identity is the hash of its bytes on disk: the hashing writer
                // sits between the compressor (if any) and the file, behind a buffer, so that
                // the hash sees chunks of a megabyte rather than the encoder's small writes.
                let buffered = io::BufWriter::with_capacity(1 << 20, HashingWriter::new(w));
                let mut hashing = self
                    .state
                    .write_with(buffered, self.format, &self.keys)?
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                hashing.flush()?;
                digest.set(hashing.digest());
                Ok(())
            },
            |temporary| {
                let metadata = self.fs.metadata(temporary)?;
                let identity = Identity::from_parts(&metadata, digest.get());
                let mut prepared = Header::new(base, ledger_seq, now(), identity);
                if let Some(seal) = &seal {
                    prepared = prepared.with_seal(seal);
                }
                let bytes = prepared.to_vec(seal.as_ref());
                penin_store::write_atomic_in(&self.fs, next, Durability::Full, |w| {
                    w.write_all(&bytes)
                })
                .map_err(io::Error::other)?;
                header.set(Some(prepared));
                Ok(())
            },
        )?;
        Ok((header.get().ok_or(Error::NoJournal)?, seal))
    }

    /// Starts a journal if there is none: extending the snapshot if there is one, else after
    /// writing one (a journal always extends a snapshot).
    fn ensure_journal(&mut self) -> Result<()> {
        if self.journal.is_some() {
            return Ok(());
        }
        if !self.snapshot {
            return self.compact();
        }
        let identity = Identity::of_file(&self.path)?;
        let mut header = Header::new(self.seq, 0, now(), identity);
        let seal = new_seal(&self.keys)?;
        if let Some(seal) = &seal {
            header = header.with_seal(seal);
        }
        self.journal = Some(Writer::create_with_in(
            self.fs.clone(),
            &self.journal_path,
            &header,
            seal,
        )?);
        self.extends = Some(header);
        Ok(())
    }
}

/// Reads the state at `path` (snapshot, then journal) without changing any file: for
/// commands that only look. A torn last record is left out, an interrupted compaction is
/// read as it will be settled; `Ok` with [`Loaded::exists`] false when there is nothing.
///
/// A reader takes no lock: a compaction may move the snapshot and the journal while it
/// reads them (see the module's documentation), so that it reads a snapshot from one side
/// of the compaction and a journal from the other. Such a pair is read again, from the
/// start (the journal to read chosen again: between steps 3 and 4 the prepared journal is
/// the one that extends the snapshot in place), for as long as the files keep moving. A
/// mismatch counts only once the files stood still between two reads that found it (or after
/// [`READ_AGAIN_FOR`] of reads that kept finding it): the state read is always a whole one,
/// and never older than one read before.
pub fn load(path: impl AsRef<Path>, history_maxlen: Option<usize>) -> Result<Loaded> {
    load_with(path, &Options::new(history_maxlen))
}

/// [`load`] with `options`: an encrypted snapshot is decrypted with its keys.
pub fn load_with(path: impl AsRef<Path>, options: &Options) -> Result<Loaded> {
    load_between(path.as_ref(), options, &mut |_| {})
}

/// How long a reader goes on reading a snapshot and a journal that do not match while they
/// keep moving (compactions beside it) before the mismatch counts.
pub const READ_AGAIN_FOR: Duration = Duration::from_secs(10);

/// [`load`], calling `between` with the attempt's number (from 0) once each attempt has
/// chosen its journal, before it opens the snapshot: where a test moves files under it.
fn load_between(path: &Path, options: &Options, between: &mut dyn FnMut(u32)) -> Result<Loaded> {
    let started = Instant::now();
    let mut attempt = 0_u32;
    let mut before = None;
    loop {
        let mut notices = Vec::new();
        let prepared = settle_compaction(None::<&RealFs>, path, &mut notices)?;
        let journal_path = prepared
            .clone()
            .unwrap_or_else(|| penin_history::journal_path(path));
        between(attempt);
        let read = load_pair(path, &journal_path, options, notices);
        // A pair that may come from both sides of a compaction: a journal that does not
        // extend the snapshot read, or a prepared journal renamed into place meanwhile.
        let mixed = match &read {
            // (A sealed journal's key read before a compaction replaced the journal.)
            Err(Error::Foreign { .. } | Error::Journal(journal::Error::SealMismatch { .. }))
            | Ok((_, Pair::Replaced)) => true,
            Ok((_, Pair::Alone)) => prepared.is_some(),
            Ok((_, Pair::Journal(_))) | Err(_) => false,
        };
        if !mixed {
            return read.map(|(loaded, _)| loaded);
        }
        let now = Lineup::of(path);
        if before.as_ref() == Some(&now) || started.elapsed() >= READ_AGAIN_FOR {
            return read.map(|(loaded, _)| loaded);
        }
        before = Some(now);
        attempt += 1;
        std::thread::sleep(Duration::from_millis(1 << attempt.min(5)));
    }
}

/// Where the files of a state stand: the snapshot's size, modification time and inode, and
/// the headers of the journal and of the prepared journal. A compaction changes the headers
/// (each names its snapshot and the time it was made), so two equal lineups with a
/// compaction between them cannot be.
#[derive(PartialEq)]
struct Lineup {
    snapshot: Option<Identity>,
    journal: Option<Header>,
    prepared: Option<Header>,
}

impl Lineup {
    fn of(path: &Path) -> Self {
        let header = |path: &Path| journal::read_header(path).ok().flatten();
        Lineup {
            snapshot: std::fs::metadata(path)
                .ok()
                .map(|metadata| Identity::from_parts(&metadata, 0)),
            journal: header(&penin_history::journal_path(path)),
            prepared: header(&next_journal_path(path)),
        }
    }
}

/// What [`append`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The change's sequence number.
    pub seq: u64,
    /// What opening the journal found and dealt with.
    pub notices: Vec<Notice>,
}

/// Appends one change to the journal of the state at `path` without reading its snapshot:
/// the cost of the change, not of the state. The caller holds the state's lock. Returns once
/// the change is durable. A new state's first snapshot is JSON: [`append_as`] chooses.
pub fn append(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
    change: Change,
) -> Result<Appended> {
    append_as(path, history_maxlen, change, None)
}

/// [`append`], with `format` (when given) the format of the snapshots written from now on:
/// a new state's first snapshot, and that of a compaction the change calls for (as
/// [`Memory::set_format`]). An existing snapshot is not rewritten for it.
pub fn append_as(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
    change: Change,
    format: Option<Format>,
) -> Result<Appended> {
    append_with(
        path,
        &Options::new(history_maxlen).with_format(format),
        change,
    )
}

/// [`append`] with `options`: a compaction the change calls for decrypts and encrypts with
/// its keys. A sealed journal's key is unwrapped with their identities and the change is
/// sealed; a plaintext journal gets a plaintext record even when the keys encrypt (the next
/// compaction starts a sealed journal): a journal is never converted in place.
pub fn append_with(path: impl AsRef<Path>, options: &Options, change: Change) -> Result<Appended> {
    append_inner(path.as_ref(), options, change, COMPACT_AT_LEAST)
}

/// [`append`], compacting once the journal's records outgrow the snapshot and
/// `compact_at_least` bytes (rather than [`COMPACT_AT_LEAST`]).
pub fn append_compacting_at(
    path: impl AsRef<Path>,
    history_maxlen: Option<usize>,
    change: Change,
    compact_at_least: u64,
) -> Result<Appended> {
    append_inner(
        path.as_ref(),
        &Options::new(history_maxlen),
        change,
        compact_at_least,
    )
}

fn append_inner(
    path: &Path,
    options: &Options,
    change: Change,
    compact_at_least: u64,
) -> Result<Appended> {
    // A memory opened to write, in `options.format` from now on when one is given.
    let open = |fs: RealFs, path: &Path| {
        Memory::open_with(fs, path, options).map(|mut memory| {
            if let Some(format) = options.format {
                memory.set_format(format);
            }
            memory
        })
    };
    let fs = RealFs;
    let journal_path = penin_history::journal_path(path);
    let mut notices = Vec::new();
    settle_compaction(Some(&fs), path, &mut notices)?;
    // Without a journal yet (or with an empty one whose snapshot was replaced since), the
    // usual way: load, start a journal (and a snapshot, if there is none), commit.
    let the_usual_way = |mut notices: Vec<Notice>, change: Change| -> Result<Appended> {
        let mut memory = open(fs, path)?;
        notices.extend(memory.take_notices());
        let seq = memory.commit(vec![change])?[0];
        memory.sync()?;
        Ok(Appended { seq, notices })
    };
    // The snapshot is checked before anything changes: a journal whose snapshot is not the
    // one it names (refused, or taken as it is when the journal holds no change) is for the
    // usual way to judge, with the journal as it is.
    let header = match journal::read_header(&journal_path)? {
        Some(header) if header.identity.check(path)? == Match::Same => header,
        _ => return the_usual_way(notices, change),
    };
    // The change is journaled without reading the snapshot; an encrypted one is opened
    // first (its header only), so that a change is never taken without the identity.
    if let Some(file) = penin_store::open(path)? {
        check_opens(&file, path, &options.keys)?;
    }
    let mut payload = Vec::new();
    change.encode(&mut payload);
    journal::check_len(&payload)?;
    // A sealed journal's key, unwrapped with the identities (a second age operation when
    // the snapshot is encrypted too; the snapshot's, above, is the one whose error names the
    // recipients): its records are sealed. A plaintext journal stays plaintext until the next
    // compaction, even when the keys encrypt (the compaction starts a sealed one).
    let seal = match header.sealed {
        Some(_) => read_seal(&journal_path, &options.keys)?,
        None => None,
    };
    let opened = Writer::open_with_in(fs, &journal_path, seal)?;
    let mut writer = opened.writer;
    if let Some(torn) = opened.torn {
        notices.push(Notice::TornJournal {
            journal: journal_path.clone(),
            torn,
            cut: true,
        });
    }
    debug_assert_eq!(opened.header, header);
    // The ledger, from its last line only. If it is not exactly in line with the journal
    // (a crash between the two), the usual way catches it up.
    let ledger_path = penin_history::ledger_path(path);
    let (mut ledger, torn) = Ledger::open_in(fs, &ledger_path)?;
    if let Some(torn) = torn {
        notices.push(Notice::TornLedger {
            ledger: ledger_path,
            torn,
        });
    }
    let last = writer.next_seq() - 1;
    if logged_seq(&ledger) != last || ledger.next_seq() <= opened.header.ledger_seq {
        drop((writer, ledger));
        return the_usual_way(notices, change);
    }
    let time = now();
    let mark = writer.mark();
    let seq = writer.push(time, change.kind(), &payload);
    writer.write()?;
    if let Err(error) = ledger.append(&[change_event(&change, seq, time, &payload)]) {
        writer.cut_back(mark)?;
        return Err(error.into());
    }
    writer.sync()?;
    ledger.sync()?;
    // A state fed by one-shot commands alone compacts too, once its journal outgrows the
    // snapshot (a relative threshold: the cost stays in proportion to the changes).
    let snapshot_len = fs.metadata(path).map_or(0, |m| m.len());
    let records = writer.len() - writer.header_len();
    drop((writer, ledger));
    if records > compact_at_least.max(snapshot_len) {
        let compacted = open(fs, path).and_then(|mut memory| memory.compact());
        if let Err(error) = compacted {
            // The change is durable already; the next writer compacts.
            notices.push(Notice::CompactionFailed {
                error: error.to_string(),
            });
        }
    }
    Ok(Appended { seq, notices })
}

/// Settles a compaction a crash interrupted: `NAME.journal.next` is the new journal if the
/// snapshot is the one it names (step 3 was done), else it is stale. With `fs` (a writer
/// holding the lock) it is renamed into place or removed; without (a reader), the path of
/// the journal to read is returned when it is the new one.
fn settle_compaction<F: Fs>(
    fs: Option<&F>,
    path: &Path,
    notices: &mut Vec<Notice>,
) -> Result<Option<PathBuf>> {
    let next = next_journal_path(path);
    let Some(file) = penin_store::open(&next)? else {
        return Ok(None);
    };
    // A prepared journal is a header alone, whose length is a `u16`: only that much is read,
    // whatever length the file claims.
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(&file, u64::from(u16::MAX)), &mut bytes)
        .map_err(store_io(penin_store::Step::Read, &next))?;
    // A prepared journal is written atomically, so a bad one is not ours to interpret.
    let header = Header::parse(&bytes, &next)?;
    // It is the new journal if the snapshot is the one it names, and the journal in place
    // holds nothing past the changes that snapshot holds (a journal that went on after a
    // compaction failed before its rename is never set aside for a stale prepared one, even
    // when the snapshot's bytes happen to be the same).
    let current = header.identity.check(path)? == Match::Same && {
        let journal = penin_history::journal_path(path);
        match std::fs::read(&journal) {
            Ok(bytes) => journal::salvage(bytes, &journal)
                .map_or(true, |(scan, _)| scan.last_seq() <= header.base),
            Err(_) => true,
        }
    };
    let dir = parent(path);
    match fs {
        Some(fs) if current => {
            let journal = penin_history::journal_path(path);
            fs.rename(&next, &journal)
                .map_err(store_io(penin_store::Step::Rename, &journal))?;
            fs.sync_dir(dir)
                .map_err(store_io(penin_store::Step::SyncDirectory, dir))?;
            notices.push(Notice::FinishedCompaction {
                snapshot: path.to_owned(),
            });
            Ok(None)
        }
        Some(fs) => {
            fs.remove(&next)
                .map_err(store_io(penin_store::Step::Remove, &next))?;
            fs.sync_dir(dir)
                .map_err(store_io(penin_store::Step::SyncDirectory, dir))?;
            notices.push(Notice::AbandonedCompaction { journal: next });
            Ok(None)
        }
        None if current => Ok(Some(next)),
        None => Ok(None),
    }
}

/// Snapshot, then journal: the state, and the journal's scan, for a writer (which holds
/// the lock: no compaction runs beside it).
///
/// The journal is checked against the very snapshot file that was read (through its handle),
/// whatever was renamed over `path` since.
fn load_parts(
    path: &Path,
    journal_path: &Path,
    options: &Options,
    notices: &[Notice],
) -> Result<(Loaded, Option<Journaled>)> {
    let (loaded, pair) = load_pair(path, journal_path, options, notices.to_vec())?;
    let journaled = match pair {
        Pair::Journal(journaled) => Some(*journaled),
        Pair::Replaced | Pair::Alone => None,
    };
    Ok((loaded, journaled))
}

/// A journal's scan, and its seal if it is sealed.
type Journaled = (Summary, Option<Seal>);

/// What a snapshot was read with.
enum Pair {
    /// No journal.
    Alone,
    /// A journal holding no change, of a snapshot replaced since: the snapshot as it is.
    Replaced,
    /// Its journal, replayed, and its seal if it is sealed.
    Journal(Box<Journaled>),
}

/// Reads the snapshot `file` into `state`, through a map of the file if `options` say so:
/// its layout, and whether it was mapped.
fn load_snapshot(
    state: &mut Orchestrator,
    file: &std::fs::File,
    path: &Path,
    options: &Options,
) -> Result<(Layout, bool)> {
    if options.map && options.populate {
        Ok(state.map_file_populated_with(file, path, &options.keys)?)
    } else if options.map {
        Ok(state.map_file_with(file, path, &options.keys)?)
    } else {
        Ok((state.load_file_with(file, path, &options.keys)?, false))
    }
}

fn load_pair(
    path: &Path,
    journal_path: &Path,
    options: &Options,
    mut notices: Vec<Notice>,
) -> Result<(Loaded, Pair)> {
    let mut state = Orchestrator::with_history_maxlen(options.history_maxlen);
    let file = penin_store::open(path)?;
    let (layout, mapped) = match &file {
        Some(file) => {
            let (layout, mapped) = load_snapshot(&mut state, file, path, options)?;
            (Some(layout), mapped)
        }
        None => (None, false),
    };
    let format = layout.as_ref().map(|layout| layout.format);
    let snapshot = file.is_some();
    // Replayed a chunk at a time; checked against the snapshot read once the journal's header
    // is known (a journal that does not match gives an error before the state is used).
    // A sealed journal's key first, with the identities (none: the error names the journal).
    let seal = read_seal(journal_path, &options.keys)?;
    let mut failed = None;
    let replayed =
        journal::replay_with(
            journal_path,
            seal.as_ref(),
            |record, payload| match Change::decode(record.kind, payload) {
                Ok(change) => {
                    change.apply(&mut state);
                    true
                }
                Err(what) => {
                    failed = Some(Error::Replay {
                        journal: journal_path.to_owned(),
                        seq: record.seq,
                        offset: record.offset,
                        what,
                    });
                    false
                }
            },
        )?;
    let Some(summary) = replayed else {
        let loaded = Loaded {
            state,
            snapshot,
            format,
            layout,
            mapped,
            seq: 0,
            replayed: 0,
            journal_len: 0,
            notices,
        };
        return Ok((loaded, Pair::Alone));
    };
    let found = match &file {
        Some(file) => summary.header.identity.check_file(file, path)?,
        None => Match::Missing,
    };
    if found != Match::Same && summary.records == 0 {
        // The journal holds no change (at most a torn record, never acknowledged): nothing
        // is lost by taking the snapshot as it is (the Python tool saved it after penin
        // exited, say). A writer starts a new journal.
        notices.push(Notice::SnapshotReplaced {
            snapshot: path.to_owned(),
            removed: found == Match::Missing,
        });
        let loaded = Loaded {
            state,
            snapshot,
            format,
            layout,
            mapped,
            seq: summary.header.base,
            replayed: 0,
            journal_len: 0,
            notices,
        };
        return Ok((loaded, Pair::Replaced));
    }
    if found != Match::Same {
        return Err(Error::Foreign {
            snapshot: path.to_owned(),
            journal: journal_path.to_owned(),
            found,
            changes: summary.records,
        });
    }
    if let Some(error) = failed {
        return Err(error);
    }
    if let Some(torn) = summary.torn {
        notices.push(Notice::TornJournal {
            journal: journal_path.to_owned(),
            torn,
            cut: false,
        });
    }
    let loaded = Loaded {
        state,
        snapshot,
        format,
        layout,
        mapped,
        seq: summary.last_seq,
        replayed: usize::try_from(summary.records).unwrap_or(usize::MAX),
        journal_len: summary.len,
        notices,
    };
    Ok((loaded, Pair::Journal(Box::new((summary, seal)))))
}

/// [`Error::Envelope`] unless the snapshot open as `file` is plaintext or its envelope
/// opens with the identities of `keys` (its header only: the payload is not read).
fn check_opens(file: &std::fs::File, path: &Path, keys: &Keys) -> Result<()> {
    let mut head = [0; penin_formats::ENVELOPE_MAGIC_LEN];
    let got = penin_codec::read_full(file, &mut head, 0)
        .map_err(store_io(penin_store::Step::Read, path))?;
    if !penin_formats::is_encrypted(&head[..got]) {
        return Ok(());
    }
    let mut reader = std::io::BufReader::new(file);
    std::io::Seek::rewind(&mut reader).map_err(store_io(penin_store::Step::Read, path))?;
    penin_formats::check_opens(keys, reader).map_err(|source| match source {
        penin_formats::Error::Read(source) => store_io(penin_store::Step::Read, path)(source),
        source => Error::Envelope {
            path: path.to_owned(),
            source,
        },
    })
}

/// A new journal's seal when `keys` encrypt (a fresh data key wrapped for their
/// recipients); `None` when they do not: the journal is plaintext.
fn new_seal(keys: &Keys) -> Result<Option<Seal>> {
    if !keys.encrypts() {
        return Ok(None);
    }
    Ok(Some(Seal::generate(keys.x25519_recipients())?))
}

/// The seal of the journal at `path`, unwrapped with the identities of `keys`: `None` for a
/// plaintext journal or none; [`journal::Error::Sealed`] (no identity) or
/// [`journal::Error::WrongIdentity`] for a sealed one they do not open.
pub(crate) fn read_seal(path: &Path, keys: &Keys) -> Result<Option<Seal>> {
    Ok(Seal::read(path, keys.x25519_identities())?)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn store_io(step: penin_store::Step, path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| {
        Error::Store(penin_store::Error::Io {
            step,
            path: path.to_owned(),
            source,
        })
    }
}

/// The state's sequence number the ledger's last line names (0 when there is none).
fn logged_seq<F: Fs>(ledger: &Ledger<F>) -> u64 {
    match ledger.last().and_then(|line| line.fields.get("journal")) {
        Some(Value::Number(penin_artifacts::Number::Int(n))) => u64::try_from(*n).unwrap_or(0),
        Some(Value::Number(penin_artifacts::Number::Big(n))) => n.as_str().parse().unwrap_or(0),
        _ => 0,
    }
}

fn seq_value(seq: u64) -> Value {
    Value::Number(match i64::try_from(seq) {
        Ok(n) => penin_artifacts::Number::Int(n),
        Err(_) => penin_artifacts::Number::parse_integer(&seq.to_string())
            .unwrap_or(penin_artifacts::Number::Int(i64::MAX)),
    })
}

/// The ledger line of a change: its sequence number, what the change says of itself, and
/// the BLAKE2b-256 of its journal payload.
fn change_event(change: &Change, seq: u64, time: i64, payload: &[u8]) -> Event {
    let mut fields = Map::new();
    fields.insert("journal", seq_value(seq));
    change.ledger_fields(&mut fields);
    Event::new(
        Timestamp::from_unix_nanos(time).rfc3339(),
        change.name(),
        fields,
        ledger::digest(payload),
    )
}

/// The ledger line of a compaction: the sequence number the new snapshot holds, its size,
/// and the BLAKE2b-256 of the header of the journal that names it.
fn compact_event(header: &Header) -> Event {
    let mut fields = Map::new();
    fields.insert("journal", seq_value(header.base));
    fields.insert("snapshot_bytes", seq_value(header.identity.size));
    Event::new(
        Timestamp::from_unix_nanos(header.created).rfc3339(),
        "compact",
        fields,
        ledger::digest(&header.to_bytes()),
    )
}

/// UTC nanoseconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use penin_store::testing::{Fault, FaultyFs, Op};

    use super::*;

    fn score(n: u32) -> Change {
        Change::AddScore(penin_artifacts::Number::Float(f64::from(n)))
    }

    /// A state in `dir` whose snapshot holds change 1 and whose journal holds change 2.
    fn compacted_then_one_change(dir: &Path) -> PathBuf {
        let path = dir.join("state.json");
        let mut memory = Memory::open(&path, None).unwrap();
        memory.commit(vec![score(1)]).unwrap();
        memory.compact().unwrap();
        memory.commit(vec![score(2)]).unwrap();
        memory.sync().unwrap();
        path
    }

    /// The window between steps 3 and 4 of a compaction, with a reader in it: the reader chose
    /// the journal to read (the old one, which holds a change) before the new snapshot was
    /// renamed into place, and opened the snapshot after. The pair does not match; it reads
    /// again, choosing the journal again: the prepared one, which extends the new snapshot.
    /// (Reading the old journal again, as it once did, found the same mismatch for as long as
    /// the window lasted, and failed.)
    #[test]
    fn a_reader_that_chose_the_old_journal_before_step_3_reads_the_new_snapshot_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = compacted_then_one_change(dir.path());
        // The same state compacted beside it, up to step 3: the compaction's third rename
        // (step 4: the prepared journal into place) fails.
        let copy = tempfile::tempdir_in(dir.path()).unwrap();
        let copied = copy.path().join("state.json");
        for file in [
            path.clone(),
            penin_history::journal_path(&path),
            penin_history::ledger_path(&path),
        ] {
            std::fs::copy(&file, copy.path().join(file.file_name().unwrap())).unwrap();
        }
        let fs = FaultyFs::failing_op(Op::Rename, 3, Fault::EIO);
        let mut beside = Memory::open_in(&fs, &copied, None).unwrap();
        beside.compact().unwrap_err();
        drop(beside);
        assert!(next_journal_path(&copied).exists());

        let loaded = load_between(&path, &Options::new(None), &mut |attempt| {
            if attempt == 0 {
                // Steps 2 and 3, between the reader's choice of journal and its opening of
                // the snapshot.
                std::fs::rename(next_journal_path(&copied), next_journal_path(&path)).unwrap();
                std::fs::rename(&copied, &path).unwrap();
            }
        })
        .unwrap();
        assert_eq!(loaded.state.score_history().len(), 2);
        assert_eq!(loaded.seq, 2);
        assert_eq!(loaded.replayed, 0, "the snapshot holds both changes");
        // The old journal, holding change 2, is still in place: a reader that starts in the
        // window reads the prepared journal at once.
        let old = journal::read_header(&penin_history::journal_path(&path))
            .unwrap()
            .unwrap();
        assert_eq!(old.base, 1);
        let loaded = load(&path, None).unwrap();
        assert_eq!(loaded.state.score_history().len(), 2);
    }

    /// A snapshot that is not the one the journal extends, with nothing moving: the mismatch
    /// counts after one read again, not after the files stood still for long.
    #[test]
    fn a_reader_refuses_a_foreign_snapshot_that_stands_still_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = compacted_then_one_change(dir.path());
        std::fs::write(
            &path,
            b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [9]\n}",
        )
        .unwrap();
        let started = Instant::now();
        let mut attempts = 0;
        let error = load_between(&path, &Options::new(None), &mut |_| attempts += 1).unwrap_err();
        assert!(
            matches!(error, Error::Foreign { changes: 1, .. }),
            "{error}"
        );
        assert_eq!(attempts, 2);
        assert!(started.elapsed() < READ_AGAIN_FOR);
    }
}
