//! The commands that look inside a state: `inspect`, `keys`, `tasks`, `scores`. Each loads the
//! state read-only (snapshot, then journal; any format, encrypted too), as `stats` does.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;
use penin_orchestrator::{Map, Number, NumericVectorArtifact, Value};

use crate::args::Command;
use crate::backup;
use crate::commands;
use crate::exit::Absent;
use crate::globals::Globals;

/// How many of a vector's first values `inspect` prints without `--json`.
const FIRST_VALUES: usize = 8;

/// How many similar keys a missing key's error suggests.
const SUGGESTIONS: usize = 5;

/// A value in Python's spelling, on one line (`0.1`, `1e-05`, `NaN`, `{"a":1}`).
pub(crate) fn repr(value: &Value) -> String {
    String::from_utf8_lossy(&penin_codec::to_vec_compact(value)).into_owned()
}

fn float(x: f64) -> String {
    repr(&Value::from(x))
}

/// A count as a JSON integer.
fn count(n: usize) -> Value {
    Value::Number(Number::from_usize(n))
}

/// `None` as `null`.
fn or_null(x: Option<f64>) -> Value {
    x.map_or(Value::Null, Value::from)
}

/// Writes a JSON value on one line.
fn write_json(out: &mut dyn Write, value: &Value) -> Result<()> {
    out.write_all(&penin_codec::to_vec_compact(value))?;
    writeln!(out)?;
    Ok(())
}

/// Runs `inspect`, `keys`, `tasks` or `scores` on the state, or with `--from` on the latest
/// restore point of a bucket; any other command is not this module's and does nothing.
pub fn dispatch(ctx: &Globals, command: Command, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Inspect { key, json, from } => {
            backup::from(ctx, from.as_deref(), |ctx, _| inspect(ctx, &key, json, out))
        }
        Command::Keys { prefix, json, from } => backup::from(ctx, from.as_deref(), |ctx, _| {
            keys(ctx, prefix.as_deref(), json, out)
        }),
        Command::Tasks { last, json, from } => {
            backup::from(ctx, from.as_deref(), |ctx, _| tasks(ctx, last, json, out))
        }
        Command::Scores { json, from } => {
            backup::from(ctx, from.as_deref(), |ctx, _| scores(ctx, json, out))
        }
        _ => Ok(()),
    }
}

/// Loads the state, saying on stderr when there is none yet (an empty state's figures follow).
fn load(ctx: &Globals) -> Result<commands::UntilExit<penin_orchestrator::Orchestrator>> {
    let loaded = commands::load(ctx, &ctx.path)?;
    if !loaded.exists() {
        eprintln!(
            "penin: no state at {} yet (first run): an empty state",
            ctx.path.display()
        );
    }
    Ok(loaded.map(|loaded| loaded.state))
}

/// What `inspect` says of a vector.
#[derive(Debug, PartialEq)]
struct Figures {
    norm: f64,
    min: Option<f64>,
    max: Option<f64>,
    nan: usize,
    infinite: usize,
}

impl Figures {
    /// The L2 norm (`sqrt(sum(x^2))`, `NaN` if a value is), the least and greatest values
    /// that are not `NaN`, and how many values are `NaN` or infinite.
    fn of(vector: &[f64]) -> Self {
        let mut figures = Figures {
            norm: 0.0,
            min: None,
            max: None,
            nan: 0,
            infinite: 0,
        };
        let mut squares = 0.0;
        for &x in vector {
            squares += x * x;
            if x.is_nan() {
                figures.nan += 1;
                continue;
            }
            if x.is_infinite() {
                figures.infinite += 1;
            }
            figures.min = Some(figures.min.map_or(x, |m| m.min(x)));
            figures.max = Some(figures.max.map_or(x, |m| m.max(x)));
        }
        figures.norm = f64::sqrt(squares);
        figures
    }
}

/// `penin inspect KEY [--json]`.
pub fn inspect(ctx: &Globals, key: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let loaded = commands::load_existing(ctx, &ctx.path)?;
    let base = loaded.state.knowledge_base();
    let Some((position, _, artifact)) = base.get_full(key) else {
        return Err(missing_key(ctx, key, base.keys().map(String::as_str), base.len()).into());
    };
    let vector: &[f64] = &artifact.vector;
    let figures = Figures::of(vector);
    if json {
        let mut map = Map::new();
        map.insert("key", Value::from(key));
        map.insert("index", count(position));
        map.insert("dimension", count(vector.len()));
        map.insert("norm", Value::from(figures.norm));
        map.insert("min", or_null(figures.min));
        map.insert("max", or_null(figures.max));
        map.insert("nan", count(figures.nan));
        map.insert("infinite", count(figures.infinite));
        map.insert(
            "vector",
            Value::Array(vector.iter().map(|&x| Value::from(x)).collect()),
        );
        map.insert("metadata", Value::from(artifact.metadata.clone()));
        if !artifact.extra().is_empty() {
            map.insert("extra", Value::from(artifact.extra().clone()));
        }
        return write_json(out, &Value::from(map));
    }
    write_human(ctx, key, position, base.len(), artifact, &figures, out)
}

fn write_human(
    ctx: &Globals,
    key: &str,
    position: usize,
    keys: usize,
    artifact: &NumericVectorArtifact,
    figures: &Figures,
    out: &mut dyn Write,
) -> Result<()> {
    let vector: &[f64] = &artifact.vector;
    writeln!(
        out,
        "Key: {key:?} in {} (position {} of {keys})",
        ctx.path.display(),
        position + 1
    )?;
    writeln!(out, "Dimension: {}", vector.len())?;
    writeln!(out, "L2 norm: {}", float(figures.norm))?;
    let first: Vec<String> = vector
        .iter()
        .take(FIRST_VALUES)
        .map(|&x| float(x))
        .collect();
    let shown = if vector.len() > FIRST_VALUES {
        format!(" (the first {FIRST_VALUES}; --json gives all)")
    } else {
        String::new()
    };
    writeln!(out, "Values: [{}]{shown}", first.join(", "))?;
    if let (Some(min), Some(max)) = (figures.min, figures.max) {
        writeln!(out, "Min: {}, max: {}", float(min), float(max))?;
    }
    if figures.nan > 0 || figures.infinite > 0 {
        writeln!(
            out,
            "Not finite: {} NaN, {} infinite",
            figures.nan, figures.infinite
        )?;
    }
    writeln!(
        out,
        "Metadata: {}",
        repr(&Value::from(artifact.metadata.clone()))
    )?;
    if !artifact.extra().is_empty() {
        writeln!(
            out,
            "Other keys: {}",
            repr(&Value::from(artifact.extra().clone()))
        )?;
    }
    Ok(())
}

/// The error for a key the knowledge base lacks: it names the key and the state, and the
/// keys that share the longest prefix with it (at least half of it), or start with it.
fn missing_key<'a>(
    ctx: &Globals,
    key: &str,
    keys: impl Iterator<Item = &'a str>,
    len: usize,
) -> Absent {
    let mut message = format!(
        "no key {key:?} in the knowledge base of {} ({len} keys)",
        ctx.path.display()
    );
    let near = near_keys(key, keys);
    if !near.is_empty() {
        let total = near.len();
        let shown: Vec<String> = near
            .iter()
            .take(SUGGESTIONS)
            .map(|k| format!("{k:?}"))
            .collect();
        let _ = write!(message, "; keys alike: {}", shown.join(", "));
        if total > SUGGESTIONS {
            let _ = write!(message, " and {} more", total - SUGGESTIONS);
        }
    }
    Absent(message)
}

/// The keys that share the longest common prefix with `key`, when that prefix is at least
/// half of `key` (in characters); keys that start with `key` share all of it.
fn near_keys<'a>(key: &str, keys: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = key.chars().count();
    let mut best = wanted.div_ceil(2).max(1);
    let mut near = Vec::new();
    for candidate in keys {
        let common = key
            .chars()
            .zip(candidate.chars())
            .take_while(|(a, b)| a == b)
            .count();
        if common > best {
            best = common;
            near.clear();
        }
        if common == best {
            near.push(candidate);
        }
    }
    near
}

/// `penin keys [--prefix P] [--json]`.
pub fn keys(ctx: &Globals, prefix: Option<&str>, json: bool, out: &mut dyn Write) -> Result<()> {
    let state = load(ctx)?;
    let keys = state
        .knowledge_base()
        .keys()
        .filter(|key| prefix.is_none_or(|p| key.starts_with(p)));
    if json {
        let all: Vec<Value> = keys.map(|key| Value::from(key.as_str())).collect();
        return write_json(out, &Value::Array(all));
    }
    for key in keys {
        writeln!(out, "{}", one_line(key))?;
    }
    Ok(())
}

/// A key as the human outputs print it: as it is, unless it holds a control character
/// (newline, tab, carriage return, escape, DEL, the C1 controls…) or starts with a double
/// quote; then as a JSON string, quotes included, every control character escaped (`\n`,
/// `\t`, `\r`, `\u001b`, `\u007f`). So every key stays on one line, none drives the
/// terminal, and a line that starts with `"` is always a JSON string that reads back as the
/// key.
pub(crate) fn one_line(key: &str) -> Cow<'_, str> {
    if !key.starts_with('"') && !key.chars().any(char::is_control) {
        return Cow::Borrowed(key);
    }
    let mut quoted = String::with_capacity(key.len() + 2);
    quoted.push('"');
    for c in key.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => {
                // Every control character is in the Basic Multilingual Plane.
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Cow::Owned(quoted)
}

/// `penin tasks [--last N] [--json]`.
pub fn tasks(ctx: &Globals, last: Option<usize>, json: bool, out: &mut dyn Write) -> Result<()> {
    let state = load(ctx)?;
    let history = state.task_history();
    let skip = last.map_or(0, |n| history.len().saturating_sub(n));
    let tasks = history.iter().enumerate().skip(skip);
    if json {
        let all: Vec<Value> = tasks.map(|(_, task)| task.clone()).collect();
        return write_json(out, &Value::Array(all));
    }
    let width = history.len().to_string().len();
    for (i, task) in tasks {
        writeln!(out, "{:>width$}  {}", i + 1, repr(task))?;
    }
    Ok(())
}

/// What `scores` says of the score history.
#[derive(Debug, PartialEq)]
struct Summary<'a> {
    count: usize,
    mean: Option<f64>,
    min: Option<&'a Number>,
    max: Option<&'a Number>,
    last: Option<&'a Number>,
    nan: usize,
}

impl<'a> Summary<'a> {
    /// The mean is the seed's `sum(scores) / len(scores)` (`NaN` if a score is); the least
    /// and greatest scores are of those that are not `NaN` (the first, among equals).
    fn of(scores: &'a penin_orchestrator::Deque<Number>, mean: f64) -> Self {
        let mut summary = Summary {
            count: scores.len(),
            mean: (!scores.is_empty()).then_some(mean),
            min: None,
            max: None,
            last: scores.back(),
            nan: 0,
        };
        for score in scores {
            let x = score.to_f64();
            if x.is_nan() {
                summary.nan += 1;
                continue;
            }
            if summary.min.is_none_or(|m| x < m.to_f64()) {
                summary.min = Some(score);
            }
            if summary.max.is_none_or(|m| x > m.to_f64()) {
                summary.max = Some(score);
            }
        }
        summary
    }
}

/// `penin scores [--json]`.
pub fn scores(ctx: &Globals, json: bool, out: &mut dyn Write) -> Result<()> {
    let state = load(ctx)?;
    let history = state.score_history();
    let summary = Summary::of(history, state.statistics().average_score);
    let number = |n: Option<&Number>| n.map_or(Value::Null, |n| Value::Number(n.clone()));
    if json {
        let mut map = Map::new();
        map.insert(
            "scores",
            Value::Array(history.iter().cloned().map(Value::Number).collect()),
        );
        map.insert("count", count(summary.count));
        map.insert("maxlen", history.maxlen().map_or(Value::Null, count));
        map.insert("mean", or_null(summary.mean));
        map.insert("min", number(summary.min));
        map.insert("max", number(summary.max));
        map.insert("last", number(summary.last));
        map.insert("nan", count(summary.nan));
        return write_json(out, &Value::from(map));
    }
    let width = history.len().to_string().len();
    for (i, score) in history.iter().enumerate() {
        writeln!(
            out,
            "{:>width$}  {}",
            i + 1,
            repr(&Value::Number(score.clone()))
        )?;
    }
    let text = |n: Option<&Number>| n.map_or_else(|| "-".to_owned(), |n| repr(&number(Some(n))));
    let bound = history
        .maxlen()
        .map_or_else(|| "unbounded".to_owned(), |n| format!("maxlen {n}"));
    writeln!(out, "Count: {} ({bound})", summary.count)?;
    writeln!(
        out,
        "Mean: {}",
        summary.mean.map_or_else(|| "-".to_owned(), float)
    )?;
    writeln!(out, "Min: {}", text(summary.min))?;
    writeln!(out, "Max: {}", text(summary.max))?;
    writeln!(out, "Last: {}", text(summary.last))?;
    if summary.nan > 0 {
        writeln!(out, "NaN: {}", summary.nan)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_vector() {
        let f = Figures::of(&[3.0, -4.0, 0.0]);
        assert_eq!(
            f,
            Figures {
                norm: 5.0,
                min: Some(-4.0),
                max: Some(3.0),
                nan: 0,
                infinite: 0
            }
        );
        let f = Figures::of(&[f64::NAN, f64::NEG_INFINITY, 1.0]);
        assert!(f.norm.is_nan());
        assert_eq!(
            (f.min, f.max, f.nan, f.infinite),
            (Some(f64::NEG_INFINITY), Some(1.0), 1, 1)
        );
        let f = Figures::of(&[]);
        assert_eq!((f.norm, f.min, f.max), (0.0, None, None));
    }

    #[test]
    fn near_keys_share_the_longest_prefix() {
        let keys = ["embedding_1", "embedding_2", "emb", "other", "embedding_10"];
        assert_eq!(
            near_keys("embedding_7", keys.iter().copied()),
            ["embedding_1", "embedding_2", "embedding_10"]
        );
        assert_eq!(
            near_keys("embedding_1x", keys.iter().copied()),
            ["embedding_1", "embedding_10"]
        );
        assert_eq!(near_keys("embed", keys.iter().copied()).len(), 3);
        assert!(near_keys("zzz", keys.iter().copied()).is_empty());
        // Less than half the key in common is no suggestion.
        assert!(near_keys("ozzzzz", keys.iter().copied()).is_empty());
    }
}
