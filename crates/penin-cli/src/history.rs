//! The commands of a state's past: compact, checkpoint, checkpoints, restore, prune, log,
//! recover, repair.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use penin_history::checkpoint::{self, Meta, Reason, Selector};
use penin_history::ledger;
use penin_history::time::Timestamp;
use penin_orchestrator::memory::{self, Memory, Recovery, Repaired};
use penin_orchestrator::{Map, Value};
use serde::Serialize;

use crate::args::Command;
use crate::exit::Usage;
use crate::globals::Globals;
use crate::lifecycle;
use crate::progress;

/// Runs `compact`, `checkpoint`, `checkpoints`, `restore`, `prune`, `log`, `recover` or
/// `repair`; any other command is not this module's and does nothing.
pub fn dispatch(ctx: &Globals, command: Command, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Compact { json } => compact(ctx, json, out),
        Command::Checkpoint { tag, json } => checkpoint(ctx, tag.as_deref(), json, out),
        Command::Checkpoints { json } => list(ctx, json, out),
        Command::Restore { which, at, json } => restore(ctx, which.as_deref(), at, json, out),
        Command::Prune {
            keep_last,
            keep_within,
            tags_too,
            dry_run,
            json,
        } => prune(ctx, keep_last, keep_within, tags_too, dry_run, json, out),
        Command::Log { since, json, from } => {
            crate::backup::from(ctx, from.as_deref(), |ctx, _| log(ctx, since, json, out))
        }
        Command::Recover {
            keep_journal, json, ..
        } => {
            let how = if keep_journal {
                Recovery::KeepJournal
            } else {
                Recovery::DiscardJournal
            };
            recover(ctx, how, json, out)
        }
        Command::Repair { json } => repair(ctx, json, out),
        _ => Ok(()),
    }
}

/// Opens the state for writing, under its lock, saying what the load dealt with. `--format`,
/// when given, is the format of the snapshots written from then on.
pub(crate) fn open(ctx: &Globals) -> Result<(penin_store::Lock, Memory)> {
    let path = &ctx.path;
    let lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let options = ctx.options();
    let mut memory = progress::slow("Loading", path, || {
        Memory::open_with(penin_store::RealFs, path, &options)
    })
    .with_context(|| format!("cannot open {}: it was left as it is", path.display()))?;
    if let Some(format) = ctx.format {
        memory.set_format(format);
    }
    for notice in memory.take_notices() {
        tracing::warn!("{notice}");
    }
    Ok((lock, memory))
}

/// `penin compact [--json]`: folds the journal into a new snapshot.
pub fn compact(ctx: &Globals, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let (_lock, mut memory) = open(ctx)?;
    let changes = memory.journal_len();
    progress::slow("Saving", path, || memory.compact())
        .with_context(|| format!("cannot compact {}", path.display()))?;
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    if json {
        let mut map = Map::new();
        map.insert("path", Value::from(path.display().to_string()));
        map.insert("format", Value::from(memory.layout().format.name()));
        map.insert("bytes", number(bytes));
        map.insert("seq", number(memory.seq()));
        map.insert("journal_bytes", number(changes));
        out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Compacted {}: the snapshot ({}, {bytes} bytes) holds every change up to change {}; \
         the journal ({changes} bytes before) is empty",
        path.display(),
        memory.layout(),
        memory.seq()
    )?;
    Ok(())
}

/// `penin checkpoint [--tag NAME] [--json]`.
pub fn checkpoint(ctx: &Globals, tag: Option<&str>, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let (_lock, mut memory) = open(ctx)?;
    let meta = memory
        .checkpoint(tag)
        .with_context(|| format!("cannot write a checkpoint of {}", path.display()))?;
    if json {
        out.write_all(&penin_codec::to_vec_compact(&meta_value(&meta)))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Checkpoint {}{} of {}: change {}, {} bytes, in {}",
        meta.id,
        meta.tag
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default(),
        path.display(),
        meta.journal,
        meta.size,
        penin_history::checkpoints_dir(path).display()
    )?;
    Ok(())
}

/// A checkpoint as a JSON object.
fn meta_value(meta: &Meta) -> Value {
    let mut map = Map::new();
    map.insert("id", Value::from(meta.id.as_str()));
    map.insert("time", Value::from(meta.time.rfc3339()));
    map.insert("tag", meta.tag.as_deref().map_or(Value::Null, Value::from));
    map.insert("seq", number(meta.journal));
    map.insert("ledger_seq", number(meta.ledger_seq));
    map.insert("ledger_head", Value::from(ledger::hex(&meta.ledger_head)));
    map.insert("size", number(meta.size));
    map.insert("blake2b", Value::from(ledger::hex(&meta.blake2b)));
    map.insert("knowledge", number(meta.counts.knowledge));
    map.insert("tasks", number(meta.counts.tasks));
    map.insert("scores", number(meta.counts.scores));
    Value::from(map)
}

fn number(n: u64) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `penin checkpoints [--json]`: every checkpoint, oldest first.
pub fn list(ctx: &Globals, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let dir = penin_history::checkpoints_dir(path);
    let listing = checkpoint::list(&dir)?;
    for unfinished in &listing.unfinished {
        tracing::warn!(
            "{} is an unfinished checkpoint (a crash during its write); `penin prune` removes it",
            unfinished.display()
        );
    }
    if json {
        let all: Vec<Value> = listing.checkpoints.iter().map(meta_value).collect();
        out.write_all(&penin_codec::to_vec_compact(&Value::Array(all)))?;
        writeln!(out)?;
        return Ok(());
    }
    if listing.checkpoints.is_empty() {
        writeln!(out, "No checkpoint of {} yet", path.display())?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<21} {:<27} {:<16} {:>8} {:>12} {:>9} {:>7} {:>7}",
        "ID", "TIME", "TAG", "SEQ", "BYTES", "KNOWLEDGE", "TASKS", "SCORES"
    )?;
    for meta in &listing.checkpoints {
        writeln!(
            out,
            "{:<21} {:<27} {:<16} {:>8} {:>12} {:>9} {:>7} {:>7}",
            meta.id,
            meta.time.rfc3339(),
            meta.tag.as_deref().unwrap_or("-"),
            meta.journal,
            meta.size,
            meta.counts.knowledge,
            meta.counts.tasks,
            meta.counts.scores
        )?;
    }
    Ok(())
}

/// `penin restore ID|TAG|--at TIME [--json]`.
pub fn restore(
    ctx: &Globals,
    which: Option<&str>,
    at: Option<Timestamp>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let path = &ctx.path;
    let dir = penin_history::checkpoints_dir(path);
    let selector = match (which, at) {
        (_, Some(at)) => Selector::At(at),
        (Some(which), None) => {
            // An ID if one has it, else a tag.
            let listing = checkpoint::list(&dir)?;
            if listing.checkpoints.iter().any(|m| m.id == which) {
                Selector::Id(which.to_owned())
            } else {
                Selector::Tag(which.to_owned())
            }
        }
        (None, None) => Selector::Latest,
    };
    let (_lock, mut memory) = open(ctx)?;
    let restored = memory
        .restore(&selector)
        .with_context(|| format!("cannot restore {}: it was left as it is", path.display()))?;
    if json {
        let mut map = Map::new();
        map.insert("path", Value::from(path.display().to_string()));
        map.insert("restored", meta_value(&restored.restored));
        map.insert("saved", meta_value(&restored.saved));
        out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Restored {} from checkpoint {} (taken {}); the state it replaced is checkpoint {}",
        path.display(),
        restored.restored.id,
        restored.restored.time,
        restored.saved.id
    )?;
    Ok(())
}

/// `penin prune --keep-last N --keep-within DURATION [--tags-too] [--dry-run] [--json]`.
#[allow(clippy::fn_params_excessive_bools)] // the command's flags
pub fn prune(
    ctx: &Globals,
    keep_last: Option<usize>,
    keep_within: Option<Duration>,
    tags_too: bool,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if keep_last.unwrap_or(0) == 0 && keep_within.is_none_or(|d| d.is_zero()) {
        return Err(Usage(
            "prune needs a rule: --keep-last N (N > 0) or --keep-within DURATION, as restic's \
             forget does"
                .to_owned(),
        )
        .into());
    }
    let path = &ctx.path;
    let (_lock, mut memory) = open(ctx)?;
    let plan = memory.prune(keep_last, keep_within, tags_too, dry_run)?;
    let dir = penin_history::checkpoints_dir(path);
    let mut unfinished_removed = 0;
    if !dry_run {
        let listing = checkpoint::list(&dir)?;
        unfinished_removed = checkpoint::remove_unfinished(memory.fs(), &dir, &listing)?;
    }
    let pruned = Pruned {
        dry_run,
        unfinished_removed,
        kept: plan
            .keep
            .iter()
            .map(|(meta, why)| Kept::new(meta, why))
            .collect(),
        removed: plan.remove.iter().map(|meta| meta.id.clone()).collect(),
    };
    if json {
        serde_json::to_writer(&mut *out, &pruned)?;
        writeln!(out)?;
        return Ok(());
    }
    if pruned.unfinished_removed > 0 {
        writeln!(
            out,
            "removed {} unfinished checkpoint file(s)",
            pruned.unfinished_removed
        )?;
    }
    for kept in &pruned.kept {
        let mut why = Vec::new();
        if let Some(rank) = kept.last {
            why.push(format!("newest #{rank}"));
        }
        if kept.within {
            why.push("within the time kept".to_owned());
        }
        if kept.tagged {
            why.push("tagged".to_owned());
        }
        writeln!(out, "keep   {} ({})", kept.id, why.join(", "))?;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for id in &pruned.removed {
        writeln!(out, "{verb} {id}")?;
    }
    writeln!(
        out,
        "{} checkpoint(s) kept, {} {verb}",
        pruned.kept.len(),
        pruned.removed.len()
    )?;
    Ok(())
}

/// What `prune` did (or, with `--dry-run`, would do); `prune --json` prints it.
#[derive(Debug, Serialize)]
struct Pruned {
    dry_run: bool,
    /// Files of unfinished checkpoints (a crash's) removed; 0 with `--dry-run`.
    unfinished_removed: usize,
    /// The checkpoints kept, oldest first, each with why.
    kept: Vec<Kept>,
    /// The IDs of the checkpoints removed (or that would be), oldest first.
    removed: Vec<String>,
}

/// A checkpoint `prune` keeps, and why (at least one of the three).
#[derive(Debug, Serialize)]
struct Kept {
    id: String,
    /// Among the `--keep-last` newest: its rank, the newest being 1.
    last: Option<usize>,
    /// Taken within `--keep-within` of the newest.
    within: bool,
    /// Tagged, and tagged checkpoints are kept (no `--tags-too`).
    tagged: bool,
}

impl Kept {
    fn new(meta: &Meta, reasons: &[Reason]) -> Kept {
        let mut kept = Kept {
            id: meta.id.clone(),
            last: None,
            within: false,
            tagged: false,
        };
        for reason in reasons {
            match reason {
                Reason::Last(rank) => kept.last = Some(*rank),
                Reason::Within => kept.within = true,
                Reason::Tagged => kept.tagged = true,
                // A reason of a newer penin-history: the checkpoint is kept all the same.
                _ => {}
            }
        }
        kept
    }
}

/// `penin log [--since TIME] [--json]`.
pub fn log(ctx: &Globals, since: Option<Timestamp>, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let ledger_path = penin_history::ledger_path(path);
    if ledger_path.symlink_metadata().is_err() {
        if !json {
            writeln!(out, "No ledger at {} yet", ledger_path.display())?;
        }
        return Ok(());
    }
    let lines = ledger::read(&ledger_path)?;
    for line in lines {
        if let Some(since) = since {
            match Timestamp::parse(&line.time) {
                Ok(time) if time < since => continue,
                _ => {}
            }
        }
        if json {
            let mut map = Map::new();
            map.insert("seq", number(line.seq));
            map.insert("time", Value::from(line.time.as_str()));
            map.insert("event", Value::from(line.event.as_str()));
            map.extend(line.fields.clone());
            map.insert("digest", Value::from(ledger::hex(&line.digest)));
            map.insert("hash", Value::from(ledger::hex(&line.hash)));
            out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
            writeln!(out)?;
        } else {
            let fields: Vec<String> = line
                .fields
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        String::from_utf8_lossy(&penin_codec::to_vec_compact(v))
                    )
                })
                .collect();
            writeln!(
                out,
                "{:>6} {} {:<14} {}",
                line.seq,
                line.time,
                line.event,
                fields.join(" ")
            )?;
        }
    }
    Ok(())
}

/// Writes `fields` as one JSON object, after the state's `path`.
fn write_object(path: &Path, fields: Vec<(&str, Value)>, out: &mut dyn Write) -> Result<()> {
    let mut map = Map::new();
    map.insert("path", Value::from(path.display().to_string()));
    for (name, value) in fields {
        map.insert(name, value);
    }
    out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
    writeln!(out)?;
    Ok(())
}

/// A path as a JSON string, `None` as `null`.
fn path_value(path: Option<&Path>) -> Value {
    path.map_or(Value::Null, |p| Value::from(p.display().to_string()))
}

/// `penin recover --keep-journal | --discard-journal [--json]`.
pub fn recover(ctx: &Globals, how: Recovery, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let _lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let (recovered, notices) = match memory::recover_with(path, &ctx.options(), how) {
        Err(e @ penin_orchestrator::Error::NothingToRecover { .. }) => {
            if json {
                let fields = vec![
                    ("recovered", Value::from(false)),
                    ("reason", Value::from(e.to_string())),
                    ("applied", number(0)),
                    ("moved_to", Value::Null),
                    ("seq", Value::Null),
                ];
                return write_object(path, fields, out);
            }
            writeln!(out, "{e}")?;
            return Ok(());
        }
        other => other.with_context(|| format!("cannot recover {}", path.display()))?,
    };
    for notice in notices {
        tracing::warn!("{notice}");
    }
    if json {
        let fields = vec![
            ("recovered", Value::from(true)),
            ("reason", Value::Null),
            ("applied", number(recovered.applied)),
            ("moved_to", path_value(recovered.moved_to.as_deref())),
            ("seq", number(recovered.seq)),
        ];
        return write_object(path, fields, out);
    }
    match &recovered.moved_to {
        Some(aside) => writeln!(
            out,
            "Recovered {}: kept the snapshot as it is; the journal is set aside as {}",
            path.display(),
            aside.display()
        )?,
        None => writeln!(
            out,
            "Recovered {}: applied the journal's {} change(s) to the snapshot as it is",
            path.display(),
            recovered.applied
        )?,
    }
    Ok(())
}

/// The fields of `repair --json`: what `repaired` did, or with `None` the `reason` there was
/// nothing to repair.
fn repair_fields(repaired: Option<&Repaired>, reason: Option<&str>) -> Vec<(&'static str, Value)> {
    let ledger = repaired
        .and_then(|r| r.ledger.as_ref())
        .map_or(Value::Null, |(why, moved)| {
            let mut map = Map::new();
            map.insert("damage", Value::from(why.as_str()));
            map.insert("moved_to", path_value(Some(moved)));
            Value::from(map)
        });
    let dropped = repaired
        .and_then(|r| r.dropped)
        .map_or(Value::Null, |(from, to)| {
            Value::Array(vec![number(from), number(to)])
        });
    vec![
        ("repaired", Value::from(repaired.is_some())),
        ("reason", reason.map_or(Value::Null, Value::from)),
        ("kept", number(repaired.map_or(0, |r| r.kept))),
        (
            "dropped_bytes",
            number(repaired.map_or(0, |r| r.dropped_bytes)),
        ),
        ("dropped", dropped),
        (
            "damage",
            repaired
                .and_then(|r| r.damage.as_deref())
                .map_or(Value::Null, Value::from),
        ),
        (
            "header_rebuilt",
            Value::from(repaired.is_some_and(|r| r.header_rebuilt)),
        ),
        (
            "moved_to",
            path_value(repaired.and_then(|r| r.moved_to.as_deref())),
        ),
        ("ledger", ledger),
        (
            "checkpoint",
            repaired.map_or(Value::Null, |r| Value::from(r.checkpoint.id.as_str())),
        ),
    ]
}

/// `penin repair [--json]`.
pub fn repair(ctx: &Globals, json: bool, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let _lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let (repaired, notices) = match memory::repair_with(path, &ctx.options()) {
        Err(e @ penin_orchestrator::Error::NothingToRepair { .. }) => {
            if json {
                return write_object(path, repair_fields(None, Some(&e.to_string())), out);
            }
            writeln!(out, "{e}")?;
            return Ok(());
        }
        other => other.with_context(|| format!("cannot repair {}", path.display()))?,
    };
    for notice in notices {
        tracing::warn!("{notice}");
    }
    if json {
        return write_object(path, repair_fields(Some(&repaired), None), out);
    }
    if let Some((why, moved)) = &repaired.ledger {
        writeln!(
            out,
            "Repaired {}: the ledger's chain was broken ({why}); it is kept whole as {}, and a \
             new chain starts with a ledger_restart line naming it",
            path.display(),
            moved.display()
        )?;
    }
    if let Some(moved) = &repaired.moved_to {
        let dropped = repaired
            .dropped
            .map(|(from, to)| format!(": changes {from} to {to}"))
            .unwrap_or_default();
        writeln!(
            out,
            "Repaired {}: kept {} change(s) before the damage, dropped {} byte(s){dropped}{}{}; \
             the damaged journal is kept as {}",
            path.display(),
            repaired.kept,
            repaired.dropped_bytes,
            repaired
                .damage
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            if repaired.header_rebuilt {
                "; its damaged header was rebuilt, taking the snapshot as it is"
            } else {
                ""
            },
            moved.display()
        )?;
    }
    writeln!(
        out,
        "Checkpoint {} holds the state as it was before the repair moved anything",
        repaired.checkpoint.id
    )?;
    Ok(())
}
