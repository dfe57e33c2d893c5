//! `penin verify [PATH] [--all] [--from s3://…] [--json]`: the remote copy (`--from`), the
//! state, its journal, its ledger's chain and (`--all`) its checkpoints, checked in that order.
//!
//! Each check gathers its figures into a part of one [`Report`]; the human output is a line
//! per part, written as soon as its check passed, and `--json` is the whole report, written
//! once every check passed. A failed check is an error (with its exit code): then `--json`
//! writes nothing.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use penin_history::{checkpoint, ledger};
use penin_replica::Manifest;
use serde::Serialize;

use crate::commands;
use crate::globals::Globals;

/// Everything `verify --json` prints; a part that was not checked is `null`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// With `--from`: the restore point downloaded and checked.
    pub remote: Option<Remote>,
    /// The state, as loaded from its snapshot and journal.
    pub state: State,
    /// The journal, when it holds changes beyond the snapshot.
    pub journal: Option<Journal>,
    /// The ledger, when there is one.
    pub ledger: Option<Ledger>,
    /// With `--all`: the checkpoints.
    pub checkpoints: Option<Checkpoints>,
}

/// The restore point `--from` read: every object's size and XXH3-128 matched its manifest.
#[derive(Debug, Serialize)]
pub struct Remote {
    pub url: String,
    /// The manifest's number.
    pub manifest: u64,
    /// When it was written (RFC 3339).
    pub time: String,
    /// The last change it holds.
    pub seq: u64,
    pub objects: usize,
    pub bytes: u64,
}

/// The loaded state.
#[derive(Debug, Serialize)]
pub struct State {
    /// The state file checked (with `--from`, the temporary copy, removed after).
    pub path: String,
    pub knowledge: usize,
    pub tasks: usize,
    /// The task history's bound, `null` when unbounded.
    pub task_maxlen: Option<usize>,
    pub scores: usize,
    /// The score history's bound, `null` when unbounded.
    pub score_maxlen: Option<usize>,
    /// How many top-level keys the state has besides its three collections.
    pub other_keys: usize,
}

/// The journal's changes beyond the snapshot.
#[derive(Debug, Serialize)]
pub struct Journal {
    pub path: String,
    /// How many changes it holds beyond the snapshot.
    pub changes: usize,
    /// The sequence number of its last change (the state's last).
    pub seq: u64,
}

/// The ledger: a sound chain from its first line to its last.
#[derive(Debug, Serialize)]
pub struct Ledger {
    pub path: String,
    /// How many complete lines.
    pub lines: u64,
    /// The last line's hash, in hex.
    pub head: String,
    /// The bytes of a torn last line (a crash's, which the next writer cuts off); `null`
    /// when there is none.
    pub torn_bytes: Option<u64>,
}

/// The checkpoints, every one's size and `BLAKE2b` checked.
#[derive(Debug, Serialize)]
pub struct Checkpoints {
    /// Their directory.
    pub dir: String,
    pub count: usize,
}

/// Runs `verify` on the state at `path`; `remote`: the URL and manifest it was downloaded
/// from and checked against (`--from`).
pub fn verify(
    ctx: &Globals,
    path: &Path,
    all: bool,
    remote: Option<(&str, &Manifest)>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    // Each line as soon as its check passed, so that a failure shows what held before it.
    let mut say = |line: Option<String>| -> Result<()> {
        if let (false, Some(line)) = (json, line) {
            writeln!(out, "{line}")?;
        }
        Ok(())
    };
    let remote = remote.map(|(url, manifest)| Remote::from_manifest(url, manifest));
    say(remote.as_ref().map(Remote::line))?;
    let loaded = commands::load_existing(ctx, path)?;
    let state = State::of(path, &loaded.state);
    say(Some(state.line()))?;
    let journal = (loaded.journal_len > 0).then(|| Journal {
        path: penin_history::journal_path(path).display().to_string(),
        changes: loaded.replayed,
        seq: loaded.seq,
    });
    say(journal.as_ref().map(Journal::line))?;
    let ledger = Ledger::check(path)?;
    say(ledger.as_ref().map(Ledger::line))?;
    let checkpoints = if all {
        Some(Checkpoints::check(path)?)
    } else {
        None
    };
    say(checkpoints.as_ref().map(Checkpoints::line))?;
    if json {
        let report = Report {
            remote,
            state,
            journal,
            ledger,
            checkpoints,
        };
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    }
    Ok(())
}

impl Remote {
    fn from_manifest(url: &str, manifest: &Manifest) -> Remote {
        Remote {
            url: url.to_owned(),
            manifest: manifest.number,
            time: manifest.time.clone(),
            seq: manifest.seq,
            objects: manifest.objects().count(),
            bytes: manifest.bytes(),
        }
    }

    fn line(&self) -> String {
        format!(
            "{}: ok: manifest {} (written {}) holds change {}; {} object(s), {} bytes, each \
             one's size and XXH3-128 verified",
            self.url, self.manifest, self.time, self.seq, self.objects, self.bytes
        )
    }
}

impl State {
    fn of(path: &Path, state: &penin_orchestrator::Orchestrator) -> State {
        let figures = state.statistics();
        State {
            path: path.display().to_string(),
            knowledge: figures.knowledge_base_size,
            tasks: figures.task_history_size,
            task_maxlen: state.task_history().maxlen(),
            scores: figures.score_history_size,
            score_maxlen: state.score_history().maxlen(),
            other_keys: state.extra().len(),
        }
    }

    fn line(&self) -> String {
        let bound =
            |m: Option<usize>| m.map_or_else(|| "unbounded".to_owned(), |n| format!("maxlen {n}"));
        format!(
            "{}: ok: {} knowledge items, {} tasks ({}), {} scores ({}), {} other top-level keys",
            self.path,
            self.knowledge,
            self.tasks,
            bound(self.task_maxlen),
            self.scores,
            bound(self.score_maxlen),
            self.other_keys,
        )
    }
}

impl Journal {
    fn line(&self) -> String {
        format!(
            "{}: ok: {} change(s) since the snapshot, up to change {}",
            self.path, self.changes, self.seq
        )
    }
}

impl Ledger {
    /// The ledger's chain, from the first line to the last; `None` without a ledger.
    fn check(path: &Path) -> Result<Option<Ledger>> {
        let ledger_path = penin_history::ledger_path(path);
        if ledger_path.symlink_metadata().is_err() {
            return Ok(None);
        }
        let summary = ledger::verify(&ledger_path)?;
        Ok(Some(Ledger {
            path: ledger_path.display().to_string(),
            lines: summary.lines,
            head: ledger::hex(&summary.head),
            torn_bytes: summary.torn.map(|torn| torn.bytes),
        }))
    }

    fn line(&self) -> String {
        let torn = self.torn_bytes.map_or_else(String::new, |bytes| {
            format!(
                " (then a torn line of {bytes} bytes, from a crash, that the next writer cuts off)"
            )
        });
        format!(
            "{}: ok: {} line(s), a sound chain, head {}{torn}",
            self.path, self.lines, self.head
        )
    }
}

impl Checkpoints {
    /// Every checkpoint's size and `BLAKE2b`.
    fn check(path: &Path) -> Result<Checkpoints> {
        let dir = penin_history::checkpoints_dir(path);
        let listing = checkpoint::list(&dir)?;
        for meta in &listing.checkpoints {
            checkpoint::verify(&dir, meta)?;
        }
        Ok(Checkpoints {
            dir: dir.display().to_string(),
            count: listing.checkpoints.len(),
        })
    }

    fn line(&self) -> String {
        format!(
            "{}: ok: {} checkpoint(s), every checksum matches",
            self.dir, self.count
        )
    }
}
