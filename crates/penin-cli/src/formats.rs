//! The commands of formats: `convert` (a state file to another file, in any format),
//! `migrate` (the state itself, in place) and `export` (the knowledge base as a file that
//! is not a state, such as NumPy's `.npy`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use penin_orchestrator::memory::{self, Memory, Migration};
use penin_orchestrator::{Format, KnowledgeBase, Layout, Value};
use penin_store::RealFs;

use crate::commands::load_existing_with;
use crate::exit::NotFound;
use crate::globals::Globals;
use crate::lifecycle;
use crate::progress;

/// What `penin export --to` writes: a file for other tools, never read back as a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum Export {
    /// NumPy's `.npy` (format 1.0): the knowledge base's vectors as one `float64` matrix of
    /// shape (keys, dimension), a row per key in the knowledge base's order.
    Npy,
    /// Apache Parquet (zstd level 1): the knowledge base's columns `key`, `vector`
    /// (float64 lists), `metadata` and `extra` (seed JSON), a row per key in order; vectors
    /// may have different dimensions.
    Parquet,
}

impl std::fmt::Display for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Export::Npy => "npy",
            Export::Parquet => "parquet",
        })
    }
}

/// `penin convert INPUT OUTPUT --to FORMAT`: any state file, written in `to`.
pub fn convert(
    ctx: &Globals,
    input: &Path,
    output: &Path,
    to: Format,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    // The output's lock first: when the input is the same state, nothing can change it
    // between this read and the write.
    let _lock = lifecycle::one_shot_writer(output, ctx.wait)?;
    // Read, not mapped: what is written must be what the checksum covered.
    let loaded = load_existing_with(ctx, input, false)?;
    let journaled = penin_history::journal_path(output)
        .symlink_metadata()
        .is_ok()
        || memory::next_journal_path(output).symlink_metadata().is_ok();
    if journaled {
        // The output is a state with a journal: replace the whole state (snapshot and
        // journal) by one compaction, so that its journal never meets a foreign snapshot.
        let seq = memory::load_with(output, &ctx.options()).map_or(0, |l| l.seq);
        progress::slow("Saving", output, || {
            Memory::adopt_with(RealFs, output, loaded.state, seq, to, &ctx.keys)
        })
        .with_context(|| format!("cannot save the state to {}", output.display()))?;
    } else {
        progress::slow("Saving", output, || {
            loaded.state.save_state_with(output, to, &ctx.keys)
        })
        .with_context(|| format!("cannot save the state to {}", output.display()))?;
    }
    let layout = Layout {
        format: to,
        encrypted_to: ctx.keys.encrypts().then(|| ctx.keys.recipients()),
    };
    if json {
        let value = serde_json::json!({
            "input": input.display().to_string(),
            "output": output.display().to_string(),
            "format": to.name(),
            "encrypted_to": layout.encrypted_to,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(
        out,
        "Converted {} to {} ({layout})",
        input.display(),
        output.display()
    )?;
    Ok(())
}

/// `penin migrate --to FORMAT [--dry-run] [--json]`: the state's snapshot rewritten in `to`,
/// in place, after a checkpoint; with `dry_run`, what would be done, and no file changed.
pub fn migrate(
    ctx: &Globals,
    to: Format,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let path = &ctx.path;
    if dry_run {
        // Read as `stats` reads: no lock, no file touched (not even a stale temporary).
        let plan = progress::slow("Loading", path, || {
            memory::plan_migration(path, &ctx.options(), to)
        })?;
        if plan.from.is_none() && plan.journal_bytes == 0 {
            return Err(NotFound(path.clone()).into());
        }
        if json {
            return migration_json(&plan, true, None, out);
        }
        describe(&plan, true, out)?;
        return Ok(());
    }
    let _lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let mut memory = progress::slow("Loading", path, || {
        Memory::open_with(RealFs, path, &ctx.options())
    })
    .with_context(|| format!("cannot open {}: it was left as it is", path.display()))?;
    for notice in memory.take_notices() {
        tracing::warn!("{notice}");
    }
    if !memory.found() {
        return Err(NotFound(path.clone()).into());
    }
    let migrated = progress::slow("Migrating", path, || memory.migrate(to))
        .with_context(|| format!("cannot migrate {} to {to}", path.display()))?;
    let plan = &migrated.migration;
    if json {
        let done = migrated
            .checkpoint
            .as_ref()
            .map(|checkpoint| (checkpoint.id.as_str(), migrated.snapshot_bytes));
        return migration_json(plan, false, done, out);
    }
    match &migrated.checkpoint {
        None => describe(plan, false, out)?,
        Some(checkpoint) => writeln!(
            out,
            "Migrated {} from {} ({} bytes) to {to} ({} bytes), up to change {}; checkpoint {} \
             ({}) in {} holds the state as it was",
            path.display(),
            plan.from.map_or("nothing", Format::name),
            plan.snapshot_bytes,
            migrated.snapshot_bytes,
            memory.seq(),
            checkpoint.id,
            plan.checkpoint_tag,
            plan.checkpoints_dir.display(),
        )?,
    }
    Ok(())
}

/// `migrate --json`: the plan, and with `done` the checkpoint written first and the new
/// snapshot's size.
fn migration_json(
    plan: &Migration,
    dry_run: bool,
    done: Option<(&str, u64)>,
    out: &mut dyn Write,
) -> Result<()> {
    let value = serde_json::json!({
        "path": plan.path.display().to_string(),
        "from": plan.from.map(Format::name),
        "to": plan.to.name(),
        "dry_run": dry_run,
        "noop": plan.is_noop(),
        "snapshot_bytes": plan.snapshot_bytes,
        "journal_bytes": plan.journal_bytes,
        "seq": plan.seq,
        "checkpoint_tag": plan.checkpoint_tag,
        "checkpoints_dir": plan.checkpoints_dir.display().to_string(),
        "checkpoint": done.map(|(id, _)| id),
        "migrated_bytes": done.map(|(_, bytes)| bytes),
    });
    writeln!(out, "{value}")?;
    Ok(())
}

/// What a migration would do (`dry_run`), or that there is nothing to do.
fn describe(plan: &Migration, dry_run: bool, out: &mut dyn Write) -> Result<()> {
    let path = plan.path.display();
    let to = plan.to;
    let suffix = if dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    if plan.is_noop() {
        writeln!(
            out,
            "{path} is {to} already ({} bytes): nothing to migrate{suffix}",
            plan.snapshot_bytes
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "Would migrate {path} from {} ({} bytes, and a journal of {} bytes) to {to}, up to \
         change {}: first a checkpoint tagged {} in {}, then the snapshot rewritten in {to} \
         in place{suffix}",
        plan.from.map_or("nothing", Format::name),
        plan.snapshot_bytes,
        plan.journal_bytes,
        plan.seq,
        plan.checkpoint_tag,
        plan.checkpoints_dir.display(),
    )?;
    Ok(())
}

/// `penin export --to FORMAT FILE [--keys KEYS]`: the knowledge base as `FILE`, written
/// atomically; for `npy`, its keys in row order as `KEYS` (default `FILE.keys.json`) too (a
/// Parquet file has its keys as a column).
pub fn export(
    ctx: &Globals,
    to: Export,
    file: &Path,
    keys: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if to == Export::Parquet && keys.is_some() {
        return Err(crate::exit::Usage(
            "--keys is for --to npy: a Parquet export has its keys as a column".to_owned(),
        )
        .into());
    }
    // Read, not mapped: what is written must be what the checksum covered.
    let loaded = load_existing_with(ctx, &ctx.path, false)?;
    let knowledge = loaded.state.knowledge_base();
    let keys = keys.map_or_else(|| keys_path(file), Path::to_owned);
    match to {
        Export::Npy => {
            let dimension = dimension(knowledge)?;
            write_keys(knowledge, &keys)?;
            let rows = knowledge.len() as u64;
            penin_store::write_atomic_with(file, |writer| {
                let vectors = knowledge.values().map(|artifact| &artifact.vector[..]);
                penin_formats::write_npy(std::io::BufWriter::new(writer), rows, dimension, vectors)?
                    .flush()
            })
            .with_context(|| format!("cannot write {}", file.display()))?;
            if json {
                let value = serde_json::json!({
                    "path": ctx.path.display().to_string(),
                    "file": file.display().to_string(),
                    "format": "npy",
                    "rows": rows,
                    "dimension": dimension,
                    "keys": keys.display().to_string(),
                });
                writeln!(out, "{value}")?;
                return Ok(());
            }
            writeln!(
                out,
                "Exported {} vectors of dimension {dimension} from {} to {} (npy, float64, \
                 shape ({rows}, {dimension})); their keys, in row order, to {}",
                rows,
                ctx.path.display(),
                file.display(),
                keys.display()
            )?;
        }
        Export::Parquet => {
            penin_store::write_atomic_with(file, |writer| {
                penin_formats::export::parquet(loaded.state.document(), writer).map(drop)
            })
            .with_context(|| format!("cannot write {}", file.display()))?;
            if json {
                let value = serde_json::json!({
                    "path": ctx.path.display().to_string(),
                    "file": file.display().to_string(),
                    "format": "parquet",
                    "rows": knowledge.len(),
                    "dimension": null,
                    "keys": null,
                });
                writeln!(out, "{value}")?;
                return Ok(());
            }
            writeln!(
                out,
                "Exported {} artifacts from {} to {} (parquet, zstd level {}: key, vector, \
                 metadata, extra)",
                knowledge.len(),
                ctx.path.display(),
                file.display(),
                penin_formats::export::PARQUET_ZSTD_LEVEL
            )?;
        }
    }
    Ok(())
}

/// `FILE.keys.json` beside `FILE`.
fn keys_path(file: &Path) -> PathBuf {
    penin_history::beside(file, ".keys.json")
}

/// The one dimension of every vector of the knowledge base (0 when it is empty: a matrix
/// of shape (0, 0)); a knowledge base of several is refused, naming two keys that differ.
fn dimension(knowledge: &KnowledgeBase) -> Result<u64> {
    let mut entries = knowledge.iter();
    let Some((first, artifact)) = entries.next() else {
        return Ok(0);
    };
    let dimension = artifact.vector.len();
    if let Some((other, odd)) = entries.find(|(_, a)| a.vector.len() != dimension) {
        bail!(
            "the knowledge base's vectors are not all of one dimension, as a matrix needs: \
             {first:?} has {dimension} values, {other:?} has {}",
            odd.vector.len()
        );
    }
    Ok(dimension as u64)
}

/// The keys of the knowledge base in its order, as a JSON array on one line (Python's
/// `json.load` reads it), written atomically to `path`.
fn write_keys(knowledge: &KnowledgeBase, path: &Path) -> Result<()> {
    let keys = Value::Array(
        knowledge
            .keys()
            .map(|key| Value::from(key.as_str()))
            .collect(),
    );
    let mut bytes = penin_codec::to_vec_compact(&keys);
    bytes.push(b'\n');
    penin_store::write_atomic(path, &bytes)
        .with_context(|| format!("cannot write the keys to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use penin_orchestrator::NumericVectorArtifact;

    fn knowledge(rows: &[(&str, usize)]) -> KnowledgeBase {
        rows.iter()
            .map(|(key, n)| ((*key).to_owned(), NumericVectorArtifact::new(vec![0.5; *n])))
            .collect()
    }

    #[test]
    fn one_dimension_or_a_message_naming_two_keys() {
        assert_eq!(dimension(&knowledge(&[])).unwrap(), 0);
        assert_eq!(dimension(&knowledge(&[("a", 3), ("b", 3)])).unwrap(), 3);
        assert_eq!(dimension(&knowledge(&[("a", 0), ("b", 0)])).unwrap(), 0);
        let error = dimension(&knowledge(&[("a", 3), ("b", 3), ("c", 2), ("d", 4)])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the knowledge base's vectors are not all of one dimension, as a matrix needs: \
             \"a\" has 3 values, \"c\" has 2"
        );
    }

    #[test]
    fn keys_go_beside_the_file() {
        assert_eq!(
            keys_path(Path::new("out/v.npy")),
            Path::new("out/v.npy.keys.json")
        );
    }
}
