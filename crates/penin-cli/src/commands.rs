//! The one-shot commands.

use std::io::Write;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::path::Path;

use anyhow::{Context, Result};
use penin_orchestrator::memory::{self, Loaded};
use penin_orchestrator::{Change, Map, Number, NumericVectorArtifact, Value};

use crate::exit::{NotFound, Usage};
use crate::globals::Globals;
use crate::lifecycle;
use crate::progress;

/// Loads a state (snapshot, then journal) for a command that only looks and writes nothing:
/// a large `arrow` snapshot through a map of its file. What the load found and dealt with
/// goes to stderr. The state lasts until the process ends ([`UntilExit`]).
pub fn load(ctx: &Globals, path: &Path) -> Result<UntilExit<Loaded>> {
    load_with(ctx, path, true).map(UntilExit::new)
}

/// [`load`] for a command that reads every vector (a search): a mapped snapshot's pages
/// are all mapped at once ([`memory::Options::populate`]).
pub fn load_to_scan(ctx: &Globals, path: &Path) -> Result<UntilExit<Loaded>> {
    load_as(path, &scanning(ctx)).map(UntilExit::new)
}

/// The options of a load for a command that reads every vector: a large `arrow` snapshot
/// mapped, every page at once.
fn scanning(ctx: &Globals) -> memory::Options {
    ctx.options()
        .with_mapped_loads(true)
        .with_populated_maps(true)
}

/// A value left to the end of the process instead of freed: the state a command that only
/// looks has loaded, once it has printed what it found, the command ends with the process.
/// The system takes the memory (and the map of the file) back at once, where freeing
/// 100,000 artifacts one by one took about 7% of a `stats` (see docs/benchmarks.md).
///
/// Only for what owns nothing but memory and maps: no lock, no temporary file, no buffered
/// output (nothing whose drop does something another program could see).
pub struct UntilExit<T>(ManuallyDrop<T>);

impl<T> UntilExit<T> {
    pub fn new(value: T) -> Self {
        UntilExit(ManuallyDrop::new(value))
    }

    /// The part `f` takes of the value, kept in turn; the rest is freed now.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> UntilExit<U> {
        UntilExit::new(f(ManuallyDrop::into_inner(self.0)))
    }
}

impl<T> Deref for UntilExit<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// [`load`], reading the snapshot into memory of penin's own (`map`: false) for a command
/// that writes a file made from the state: a map shows what another program writes into
/// the file in place, after its checksum was checked.
pub fn load_with(ctx: &Globals, path: &Path, map: bool) -> Result<Loaded> {
    load_as(path, &ctx.options().with_mapped_loads(map))
}

/// Loads the state at `path` with `options`, saying what the load found and did.
fn load_as(path: &Path, options: &memory::Options) -> Result<Loaded> {
    let loaded = progress::slow("Loading", path, || memory::load_with(path, options))?;
    for notice in &loaded.notices {
        tracing::warn!("{notice}");
    }
    match &loaded.layout {
        Some(layout) => tracing::info!(
            "{}: a {layout} snapshot{}, then {} change(s) from the journal, up to change {}",
            path.display(),
            if loaded.mapped {
                " (read through a map of the file)"
            } else {
                ""
            },
            loaded.replayed,
            loaded.seq
        ),
        None => tracing::info!(
            "{}: no snapshot; {} change(s) from the journal",
            path.display(),
            loaded.replayed
        ),
    }
    Ok(loaded)
}

/// Loads a state that must exist, for a command that only looks (see [`load`]).
pub fn load_existing(ctx: &Globals, path: &Path) -> Result<UntilExit<Loaded>> {
    load_existing_with(ctx, path, true).map(UntilExit::new)
}

/// [`load_existing`] for a command that reads every vector (see [`load_to_scan`]).
pub fn load_existing_to_scan(ctx: &Globals, path: &Path) -> Result<UntilExit<Loaded>> {
    existing(load_as(path, &scanning(ctx))?, path).map(UntilExit::new)
}

/// [`load_existing`], mapping a large `arrow` snapshot or not (see [`load_with`]).
pub fn load_existing_with(ctx: &Globals, path: &Path, map: bool) -> Result<Loaded> {
    existing(load_with(ctx, path, map)?, path)
}

/// `loaded`, if the state at `path` exists.
fn existing(loaded: Loaded, path: &Path) -> Result<Loaded> {
    if !loaded.exists() {
        return Err(NotFound(path.to_owned()).into());
    }
    Ok(loaded)
}

/// Appends one change to the state's journal and syncs it, under the state's lock. A new
/// state's first snapshot is in `--format`.
fn append(ctx: &Globals, change: Change) -> Result<u64> {
    let path = &ctx.path;
    let _lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let appended = memory::append_with(path, &ctx.options(), change)
        .with_context(|| format!("cannot update {}: it was left as it is", path.display()))?;
    for notice in &appended.notices {
        tracing::warn!("{notice}");
    }
    tracing::info!(
        "change {} appended to the journal of {} and synced",
        appended.seq,
        path.display()
    );
    Ok(appended.seq)
}

/// What `add-knowledge`, `add-task` and `add-score` say: `human`, or with `json` one object
/// of the state's path, the change's sequence number and `fields`.
fn appended(
    ctx: &Globals,
    seq: u64,
    fields: Vec<(&str, Value)>,
    json: bool,
    human: &str,
    out: &mut dyn Write,
) -> Result<()> {
    if !json {
        writeln!(out, "{human}: change {seq}, on disk")?;
        return Ok(());
    }
    let mut map = Map::new();
    map.insert("path", Value::from(ctx.path.display().to_string()));
    for (name, value) in fields {
        map.insert(name, value);
    }
    map.insert("seq", Value::from(i64::try_from(seq).unwrap_or(i64::MAX)));
    out.write_all(&penin_codec::to_vec_compact(&Value::from(map)))?;
    writeln!(out)?;
    Ok(())
}

pub fn add_knowledge(
    ctx: &Globals,
    key: &str,
    vector: &str,
    metadata: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let vector = parse_vector(vector)?;
    let metadata = match metadata {
        None => Map::new(),
        Some(text) => match penin_codec::from_str::<Value>(text)
            .context(Usage("invalid --metadata".to_owned()))?
        {
            Value::Object(map) => *map,
            other => {
                return Err(Usage(format!(
                    "invalid --metadata: expected a JSON object, found {}",
                    other.kind()
                ))
                .into());
            }
        },
    };
    let dimensions = vector.len();
    let change = Change::AddKnowledge {
        key: key.to_owned(),
        artifact: NumericVectorArtifact::new(vector).with_metadata(metadata),
    };
    let seq = append(ctx, change)?;
    let fields = vec![
        ("key", Value::from(key)),
        ("dimensions", Value::Number(Number::from_usize(dimensions))),
    ];
    let human = format!(
        "Added {key:?} ({dimensions} dimensions) to {}",
        ctx.path.display()
    );
    appended(ctx, seq, fields, json, &human, out)
}

/// `0.1,0.2,-3e-5`: floats as Python's `float()` reads them (`nan`, `inf` too).
pub fn parse_vector(text: &str) -> Result<Vec<f64>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .enumerate()
        .map(|(i, item)| {
            item.trim().parse::<f64>().with_context(|| {
                Usage(format!(
                    "invalid --vector: element {i} {:?} is not a number",
                    item.trim()
                ))
            })
        })
        .collect()
}

pub fn add_task(ctx: &Globals, task: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let task: Value = penin_codec::from_str(task).context(Usage("invalid task JSON".to_owned()))?;
    let seq = append(ctx, Change::AddTask(task))?;
    let human = format!("Added a task to {}", ctx.path.display());
    appended(ctx, seq, Vec::new(), json, &human, out)
}

pub fn add_score(ctx: &Globals, score: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let score = match penin_codec::from_str::<Value>(score) {
        Ok(Value::Number(n)) => n,
        _ => Number::Float(
            score
                .trim()
                .parse()
                .with_context(|| Usage(format!("invalid score {score:?}: expected a number")))?,
        ),
    };
    let seq = append(ctx, Change::AddScore(score))?;
    let human = format!("Added a score to {}", ctx.path.display());
    appended(ctx, seq, Vec::new(), json, &human, out)
}

/// `penin keygen FILE`: a new identity in FILE (mode 0600, never over an existing file);
/// its recipient on stdout, as age-keygen prints it.
pub fn keygen(file: &Path, out: &mut dyn Write) -> Result<()> {
    let created = penin_history::time::Timestamp::now().rfc3339();
    let recipient = penin_formats::write_new_identity(file, &created)?;
    eprintln!("Public key: {recipient}");
    writeln!(out, "{recipient}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse() {
        assert_eq!(parse_vector("0.1, 0.2,-3e-5").unwrap(), [0.1, 0.2, -3e-5]);
        assert!(parse_vector("").unwrap().is_empty());
        assert_eq!(
            format!("{:#}", parse_vector("1,x").unwrap_err()),
            "invalid --vector: element 1 \"x\" is not a number: invalid float literal"
        );
    }
}
