//! `penin diff A B`: what differs between two states, exit 0 when they are the same and 1
//! when they differ, as diff(1); a failure exits with its own code, never 0 or 1.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use penin_history::checkpoint::{self, Selector};
use penin_orchestrator::diff::{Diff, Edit, HistoryDiff, KeyChange, MapDiff, VectorChange};
use penin_orchestrator::{Key, Map, Number, Orchestrator, Value};

use crate::commands;
use crate::exit::{self, CompareFailed};
use crate::globals::Globals;
use crate::inspect::repr;

/// The prefix of an operand that names a checkpoint of the state rather than a file.
pub const CHECKPOINT: &str = "checkpoint:";

/// How many keys of each list (added, removed, changed) the human output shows.
const SHOWN: usize = 20;

/// A state to compare, as it was given and found.
struct Side {
    /// What it is: the path, or the checkpoint with its file.
    label: String,
    state: commands::UntilExit<Orchestrator>,
}

/// `penin diff A B [--json]`: the exit code says whether they differ.
pub fn run(ctx: &Globals, a: &Path, b: &Path, json: bool, out: &mut dyn Write) -> Result<ExitCode> {
    let failed = || CompareFailed {
        a: a.display().to_string(),
        b: b.display().to_string(),
    };
    let a = side(ctx, a).with_context(failed)?;
    let b = side(ctx, b).with_context(failed)?;
    let diff = penin_orchestrator::diff(&a.state, &b.state);
    let mut text = Vec::new();
    if json {
        text = penin_codec::to_vec_compact(&to_value(&a, &b, &diff));
        text.push(b'\n');
    } else {
        write_human(&a, &b, &diff, &mut text)?;
    }
    // A reader that stops early (`| head`) does not change the answer the code gives.
    match out.write_all(&text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.with_context(failed)?,
    }
    Ok(exit::from(if diff.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    }))
}

/// Loads an operand: a state file (snapshot and journal, any format), or `checkpoint:ID`,
/// `checkpoint:TAG` or `checkpoint:` (the newest) of the state `--state` names, its
/// checksum checked first.
fn side(ctx: &Globals, operand: &Path) -> Result<Side> {
    let (path, label) = match operand.to_str().and_then(|s| s.strip_prefix(CHECKPOINT)) {
        Some(which) => {
            let dir = penin_history::checkpoints_dir(&ctx.path);
            let listing = checkpoint::list(&dir)?;
            let selector = if which.is_empty() {
                Selector::Latest
            } else if listing.checkpoints.iter().any(|m| m.id == which) {
                Selector::Id(which.to_owned())
            } else {
                Selector::Tag(which.to_owned())
            };
            let meta = checkpoint::select(&listing.checkpoints, &selector)
                .with_context(|| format!("in {}", dir.display()))?;
            checkpoint::verify(&dir, meta)?;
            let path = checkpoint::data_path(&dir, meta);
            let tag = meta
                .tag
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let label = format!("checkpoint {}{tag} of {}", meta.id, ctx.path.display());
            (path, label)
        }
        None => (PathBuf::from(operand), operand.display().to_string()),
    };
    // A diff compares every artifact present in both states, vectors included.
    let loaded = commands::load_existing_to_scan(ctx, &path)?;
    Ok(Side {
        label,
        state: loaded.map(|loaded| loaded.state),
    })
}

fn count(n: usize) -> Value {
    Value::Number(Number::from_usize(n))
}

fn keys(keys: &[impl AsRef<str>]) -> Value {
    Value::Array(keys.iter().map(|k| Value::from(k.as_ref())).collect())
}

fn map_value(diff: &MapDiff) -> Value {
    let mut map = Map::new();
    map.insert("added", keys(&diff.added));
    map.insert("removed", keys(&diff.removed));
    map.insert("changed", keys(&diff.changed));
    map.insert("order_changed", Value::Bool(diff.order_changed));
    Value::from(map)
}

fn change_value(change: &KeyChange) -> Value {
    let mut map = Map::new();
    map.insert("key", Value::from(change.key.as_str()));
    let vector = match &change.vector {
        Some(VectorChange::Dimension { from, to }) => {
            let mut v = Map::new();
            v.insert("dimension_a", count(*from));
            v.insert("dimension_b", count(*to));
            Value::from(v)
        }
        Some(VectorChange::Values(values)) => {
            let mut v = Map::new();
            v.insert("components", count(values.components));
            v.insert("max_abs", Value::from(values.max_abs));
            v.insert("max_index", count(values.max_index));
            v.insert("l2", Value::from(values.l2));
            Value::from(v)
        }
        _ => Value::Null,
    };
    map.insert("vector", vector);
    map.insert(
        "metadata",
        change.metadata.as_ref().map_or(Value::Null, map_value),
    );
    map.insert(
        "artifact_extra",
        change
            .artifact_extra
            .as_ref()
            .map_or(Value::Null, map_value),
    );
    Value::from(map)
}

fn history_value(history: &HistoryDiff) -> Value {
    let maxlen = |m: Option<usize>| m.map_or(Value::Null, count);
    let mut map = Map::new();
    map.insert("same", Value::Bool(history.is_same()));
    map.insert("len_a", count(history.len_a));
    map.insert("len_b", count(history.len_b));
    map.insert("maxlen_a", maxlen(history.maxlen_a));
    map.insert("maxlen_b", maxlen(history.maxlen_b));
    map.insert("common_prefix", count(history.common_prefix));
    map.insert("common_suffix", count(history.common_suffix));
    map.insert("overlap", count(history.overlap));
    let mut edit = Map::new();
    match history.edit() {
        Edit::Shifted { dropped, appended } => {
            edit.insert("kind", Value::from("shifted"));
            edit.insert("dropped", count(dropped));
            edit.insert("appended", count(appended));
        }
        Edit::Replaced {
            prefix,
            suffix,
            removed,
            inserted,
        } => {
            edit.insert("kind", Value::from("replaced"));
            edit.insert("prefix", count(prefix));
            edit.insert("suffix", count(suffix));
            edit.insert("removed", count(removed));
            edit.insert("inserted", count(inserted));
        }
        Edit::Same => {
            edit.insert("kind", Value::from("same"));
        }
        _ => {
            edit.insert("kind", Value::from("other"));
        }
    }
    map.insert("edit", Value::from(edit));
    map.insert("extra_changed", Value::Bool(history.extra_changed));
    Value::from(map)
}

/// The whole difference as one JSON object.
fn to_value(a: &Side, b: &Side, diff: &Diff) -> Value {
    let mut base = Map::new();
    base.insert("len_a", count(a.state.knowledge_base().len()));
    base.insert("len_b", count(b.state.knowledge_base().len()));
    base.insert("added", keys(&diff.added));
    base.insert("removed", keys(&diff.removed));
    base.insert(
        "changed",
        Value::Array(diff.changed.iter().map(change_value).collect()),
    );
    base.insert("order_changed", Value::Bool(diff.order_changed));
    let largest = diff.largest_vector_change().map_or(Value::Null, |change| {
        let mut m = Map::new();
        m.insert("key", Value::from(change.key.as_str()));
        m.insert(
            "l2",
            Value::from(change.values().map_or(f64::NAN, |v| v.l2)),
        );
        Value::from(m)
    });
    base.insert("largest_vector_change", largest);
    let mut map = Map::new();
    map.insert("a", Value::from(a.label.as_str()));
    map.insert("b", Value::from(b.label.as_str()));
    map.insert("same", Value::Bool(diff.is_empty()));
    map.insert("knowledge_base", Value::from(base));
    map.insert("task_history", history_value(&diff.tasks));
    map.insert("score_history", history_value(&diff.scores));
    map.insert("extra", map_value(&diff.extra));
    Value::from(map)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn quoted(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| format!("{:?}", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A map's difference in a phrase: `added "a"; changed "b"; order changed`.
fn map_phrase(diff: &MapDiff) -> String {
    let mut parts = Vec::new();
    for (what, keys) in [
        ("added", &diff.added),
        ("removed", &diff.removed),
        ("changed", &diff.changed),
    ] {
        if !keys.is_empty() {
            parts.push(format!("{what} {}", quoted(keys)));
        }
    }
    if diff.order_changed {
        parts.push("keys in another order".to_owned());
    }
    parts.join("; ")
}

/// One changed key in a phrase.
fn change_phrase(change: &KeyChange) -> String {
    let mut parts = Vec::new();
    match &change.vector {
        Some(VectorChange::Dimension { from, to }) => {
            parts.push(format!("dimension {from} -> {to}"));
        }
        Some(VectorChange::Values(v)) => {
            let mut phrase = format!(
                "{} of the vector changed, largest |change| {} at [{}], L2 distance {}",
                plural(v.components, "component", "components"),
                repr(&Value::from(v.max_abs)),
                v.max_index,
                repr(&Value::from(v.l2))
            );
            if v.max_abs == 0.0 {
                phrase.push_str(" (bits only: the sign of a zero, or a NaN's payload)");
            }
            parts.push(phrase);
        }
        _ => {}
    }
    if let Some(metadata) = &change.metadata {
        parts.push(format!("metadata: {}", map_phrase(metadata)));
    }
    if let Some(extra) = &change.artifact_extra {
        parts.push(format!("other keys: {}", map_phrase(extra)));
    }
    parts.join("; ")
}

/// A history's difference in a phrase: `3 appended (5 -> 8)`.
fn history_phrase(history: &HistoryDiff, noun: &str, nouns: &str) -> String {
    let lengths = format!("{} -> {}", history.len_a, history.len_b);
    let mut phrase = match history.edit() {
        Edit::Same => format!("the same ({})", plural(history.len_a, noun, nouns)),
        Edit::Shifted {
            dropped: 0,
            appended,
        } => format!("{} appended ({lengths})", plural(appended, noun, nouns)),
        Edit::Shifted {
            dropped,
            appended: 0,
        } => format!(
            "{} dropped from the front ({lengths})",
            plural(dropped, "oldest", "oldest")
        ),
        Edit::Shifted { dropped, appended } => format!(
            "{} dropped from the front, {} appended ({lengths})",
            plural(dropped, "oldest", "oldest"),
            plural(appended, noun, nouns)
        ),
        Edit::Replaced {
            prefix,
            suffix,
            removed,
            inserted,
        } => format!(
            "after the first {prefix} and before the last {suffix} in common, {removed} replaced \
             by {inserted} ({lengths})"
        ),
        _ => format!("different ({lengths})"),
    };
    if history.maxlen_a != history.maxlen_b {
        let bound = |m: Option<usize>| m.map_or_else(|| "unbounded".to_owned(), |n| n.to_string());
        let _ = write!(
            phrase,
            "; maxlen {} -> {}",
            bound(history.maxlen_a),
            bound(history.maxlen_b)
        );
    }
    if history.extra_changed {
        phrase.push_str("; the deque's other keys changed");
    }
    phrase
}

/// Up to [`SHOWN`] lines of a list, then how many more.
fn list<T>(
    out: &mut dyn Write,
    items: &[T],
    line: impl Fn(&T) -> String,
    more: &str,
) -> io::Result<()> {
    for item in items.iter().take(SHOWN) {
        writeln!(out, "  {}", line(item))?;
    }
    if items.len() > SHOWN {
        writeln!(out, "  … and {} more {more}", items.len() - SHOWN)?;
    }
    Ok(())
}

fn write_human(a: &Side, b: &Side, diff: &Diff, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "A: {}", a.label)?;
    writeln!(out, "B: {}", b.label)?;
    let (ka, kb) = (a.state.knowledge_base(), b.state.knowledge_base());
    if diff.is_empty() {
        writeln!(
            out,
            "The same: {}, {}, {}",
            plural(ka.len(), "key", "keys"),
            plural(a.state.task_history().len(), "task", "tasks"),
            plural(a.state.score_history().len(), "score", "scores")
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "Knowledge base: {} added, {} removed, {} changed ({} -> {})",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len(),
        plural(ka.len(), "key", "keys"),
        plural(kb.len(), "key", "keys"),
    )?;
    list(out, &diff.added, |k| format!("+ {k:?}"), "added")?;
    list(out, &diff.removed, |k| format!("- {k:?}"), "removed")?;
    list(
        out,
        &diff.changed,
        |c| format!("~ {:?}: {}", c.key, change_phrase(c)),
        "changed",
    )?;
    if diff.order_changed {
        writeln!(out, "  the keys both have come in another order in B")?;
    }
    if let Some(largest) = diff.largest_vector_change() {
        let l2 = largest.values().map_or(f64::NAN, |v| v.l2);
        writeln!(
            out,
            "Largest vector change: {:?} (L2 distance {})",
            largest.key,
            repr(&Value::from(l2))
        )?;
    }
    writeln!(
        out,
        "Task history: {}",
        history_phrase(&diff.tasks, "task", "tasks")
    )?;
    writeln!(
        out,
        "Score history: {}",
        history_phrase(&diff.scores, "score", "scores")
    )?;
    if !diff.extra.is_empty() {
        writeln!(out, "Other top-level keys: {}", map_phrase(&diff.extra))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_never_exit_as_same_or_different() {
        let failed = anyhow::anyhow!("anything").context(CompareFailed {
            a: "a".to_owned(),
            b: "b".to_owned(),
        });
        assert_eq!(exit::code(&failed), exit::TROUBLE);
        let missing =
            anyhow::Error::new(exit::NotFound(PathBuf::from("x"))).context(CompareFailed {
                a: "x".to_owned(),
                b: "y".to_owned(),
            });
        assert_eq!(exit::code(&missing), exit::NOT_FOUND);
        // Elsewhere, a generic failure is 1.
        assert_eq!(exit::code(&anyhow::anyhow!("anything")), exit::FAILURE);
    }
}
