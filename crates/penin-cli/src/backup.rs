//! The commands of off-machine copies: `backup push`, `list`, `restore` and `status`, each
//! a thin layer over `penin_replica`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use penin_history::time::Timestamp;
use penin_orchestrator::memory;
use penin_replica::{Local, Manifest, Pick, Remote, Retention, Writer};
use serde_json::json;

use crate::args::BackupCommand;
use crate::exit::Usage;
use crate::globals::Globals;
use crate::history;
use crate::lifecycle;

/// Runs `penin backup COMMAND`.
pub fn dispatch(ctx: &Globals, command: BackupCommand, out: &mut dyn Write) -> Result<()> {
    match command {
        BackupCommand::Push {
            url,
            if_latest,
            json,
        } => push(ctx, &url, if_latest, json, out),
        BackupCommand::List { url, json } => list(ctx, &url, json, out),
        BackupCommand::Restore {
            url,
            seq,
            at,
            force,
            json,
        } => restore(ctx, &url, seq, at, force, json, out),
        BackupCommand::Status { url, json } => status(ctx, &url, json, out),
        BackupCommand::Prune {
            url,
            keep_last,
            keep_within,
            grace,
            dry_run,
            json,
        } => {
            let rules = Rules {
                keep_last,
                keep_within,
                grace,
            };
            prune(ctx, &url, &rules, dry_run, json, out)
        }
    }
}

/// The remote `url`, with the keys of the global options: a push seals every object to the
/// recipients (the identity's and `--recipient`s), and reading opens sealed ones.
fn remote(ctx: &Globals, url: &str) -> Result<Remote> {
    Ok(Remote::from_url(url)?.with_keys(ctx.keys.clone()))
}

/// `penin backup push s3://… [--json]`: one round: what the bucket lacks, then the next
/// manifest.
pub fn push(
    ctx: &Globals,
    url: &str,
    if_latest: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let remote = remote(ctx, url)?;
    let mut writer = Writer::new();
    if let Some(number) = if_latest {
        writer = writer.expecting(number);
    }
    let path = &ctx.path;
    // Under the lock, once opening settled the files (a torn journal record cut off, an
    // interrupted compaction finished or undone): they are those of one moment.
    let (_lock, memory) = history::open(ctx)?;
    let local = Local::capture(&memory)?;
    let pushed = penin_replica::push_round(&remote, &mut writer, &local)
        .with_context(|| format!("cannot push {}", path.display()))?;
    let bytes: u64 = pushed.uploaded.iter().map(|o| o.size).sum();
    if json {
        let value = json!({
            "url": url,
            "pushed": pushed.manifest.is_some(),
            "manifest": pushed.manifest.as_ref().or(pushed.current.as_ref()).map(manifest_json),
            "uploaded_objects": pushed.uploaded.len(),
            "uploaded_bytes": bytes,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    match (&pushed.manifest, &pushed.current) {
        (Some(manifest), _) => {
            writeln!(
                out,
                "Pushed {} to {url}: manifest {} (epoch {}) holds change {}; uploaded {} \
                 object(s), {bytes} bytes",
                path.display(),
                manifest.number,
                manifest.epoch,
                manifest.seq,
                pushed.uploaded.len()
            )?;
        }
        (None, Some(current)) => writeln!(
            out,
            "{url} is up to date: manifest {} holds change {} of {}",
            current.number,
            current.seq,
            path.display()
        )?,
        (None, None) => writeln!(out, "{url} is up to date")?,
    }
    Ok(())
}

/// A manifest as a JSON object.
fn manifest_json(manifest: &Manifest) -> serde_json::Value {
    json!({
        "number": manifest.number,
        "epoch": manifest.epoch,
        "time": manifest.time,
        "seq": manifest.seq,
        "ledger_seq": manifest.ledger_seq,
        "ledger_head": manifest.ledger_head,
        "objects": manifest.objects().count(),
        "bytes": manifest.bytes(),
    })
}

/// `penin backup list s3://… [--json]`: every restore point, oldest first.
pub fn list(ctx: &Globals, url: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let remote = remote(ctx, url)?;
    let manifests = remote.manifests()?;
    if json {
        let all: Vec<_> = manifests.iter().map(manifest_json).collect();
        writeln!(out, "{}", serde_json::Value::Array(all))?;
        return Ok(());
    }
    if manifests.is_empty() {
        writeln!(out, "No manifest in {url} yet")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>8} {:>6} {:<27} {:>8} {:>8} {:>7} {:>12}",
        "MANIFEST", "EPOCH", "TIME", "SEQ", "LEDGER", "OBJECTS", "BYTES"
    )?;
    for manifest in &manifests {
        writeln!(
            out,
            "{:>8} {:>6} {:<27} {:>8} {:>8} {:>7} {:>12}",
            manifest.number,
            manifest.epoch,
            manifest.time,
            manifest.seq,
            manifest.ledger_seq,
            manifest.objects().count(),
            manifest.bytes()
        )?;
    }
    Ok(())
}

/// `penin backup restore s3://… [--seq N | --at TIME] [--force] [--json]`.
pub fn restore(
    ctx: &Globals,
    url: &str,
    seq: Option<u64>,
    at: Option<Timestamp>,
    force: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let remote = remote(ctx, url)?;
    let path = &ctx.path;
    let pick = match (seq, at) {
        (Some(seq), _) => Pick::Seq(seq),
        (None, Some(at)) => Pick::At(at),
        (None, None) => Pick::Latest,
    };
    let _lock = lifecycle::one_shot_writer(path, ctx.wait)?;
    let manifest = penin_replica::restore(&remote, path, pick, force)
        .with_context(|| format!("cannot restore {}: it was left as it is", path.display()))?;
    if json {
        let value = json!({
            "url": url,
            "path": path.display().to_string(),
            "manifest": manifest_json(&manifest),
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(
        out,
        "Restored {} from {url}: manifest {} (written {}), change {}, {} object(s), {} bytes, \
         every checksum verified",
        path.display(),
        manifest.number,
        manifest.time,
        manifest.seq,
        manifest.objects().count(),
        manifest.bytes()
    )?;
    Ok(())
}

/// `penin backup status s3://… [--json]`: how far behind the bucket is.
pub fn status(ctx: &Globals, url: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let remote = remote(ctx, url)?;
    let path = &ctx.path;
    let loaded = memory::load_with(path, &ctx.options())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let local = loaded.exists().then_some(loaded.seq);
    let latest = remote.latest()?;
    let remote_seq = latest.as_ref().map(|m| m.seq);
    let behind = local.map(|l| l.saturating_sub(remote_seq.unwrap_or(0)));
    if json {
        let value = json!({
            "local_seq": local,
            "remote_seq": remote_seq,
            "manifest": latest.as_ref().map(|m| m.number),
            "time": latest.as_ref().map(|m| m.time.clone()),
            "behind": behind,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let local_text = match local {
        Some(seq) => format!("{} holds change {seq}", path.display()),
        None => format!("{} does not exist", path.display()),
    };
    let remote_text = match &latest {
        Some(m) => format!(
            "{url} holds change {} (manifest {}, written {})",
            m.seq, m.number, m.time
        ),
        None => format!("{url} holds no manifest yet"),
    };
    let verdict = match (behind, &latest) {
        (_, None) => "nothing pushed yet".to_owned(),
        (Some(0), Some(_)) => "up to date".to_owned(),
        (Some(n), Some(_)) => format!("{n} change(s) behind"),
        (None, Some(_)) => "nothing local to compare".to_owned(),
    };
    writeln!(out, "{local_text}; {remote_text}: {verdict}")?;
    Ok(())
}

/// The rules of `backup prune`.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub keep_last: Option<u64>,
    pub keep_within: Option<Duration>,
    pub grace: Option<Duration>,
}

/// `penin backup prune s3://… --keep-last N --keep-within DURATION [--grace DURATION]
/// [--dry-run] [--json]`.
pub fn prune(
    ctx: &Globals,
    url: &str,
    rules: &Rules,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let &Rules {
        keep_last,
        keep_within,
        grace,
    } = rules;
    if keep_last.unwrap_or(0) == 0 && keep_within.is_none() {
        return Err(Usage(
            "backup prune needs a rule: --keep-last N (N > 0) or --keep-within DURATION".to_owned(),
        )
        .into());
    }
    let remote = remote(ctx, url)?;
    let mut retention = Retention::new().keep_last(keep_last.unwrap_or(1));
    if let Some(within) = keep_within {
        retention = retention.keep_within(within);
    }
    if let Some(grace) = grace {
        retention = retention.grace(grace);
    }
    let pruned = penin_replica::prune(&remote, &retention, Timestamp::now(), dry_run)
        .with_context(|| format!("cannot prune {url}"))?;
    let bytes: u64 = pruned.objects.iter().map(|(_, size)| size).sum();
    if json {
        let objects: Vec<_> = pruned
            .objects
            .iter()
            .map(|(name, size)| json!({"name": name, "bytes": size}))
            .collect();
        let value = json!({
            "url": url,
            "dry_run": dry_run,
            "manifests": pruned.manifests,
            "objects": objects,
            "bytes": bytes,
            "kept": pruned.kept.iter().map(|m| m.number).collect::<Vec<_>>(),
            "young": pruned.young,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for number in &pruned.manifests {
        writeln!(out, "{verb} manifest {number}")?;
    }
    for (name, size) in &pruned.objects {
        writeln!(out, "{verb} {name} ({size} bytes)")?;
    }
    let kept: Vec<String> = pruned.kept.iter().map(|m| m.number.to_string()).collect();
    writeln!(
        out,
        "{url}: {} {} manifest(s) and {} object(s), {bytes} bytes; kept manifest(s) {}{}",
        if dry_run { "would delete" } else { "deleted" },
        pruned.manifests.len(),
        pruned.objects.len(),
        if kept.is_empty() {
            "none".to_owned()
        } else {
            kept.join(", ")
        },
        if pruned.young > 0 {
            format!(
                "; {} unnamed object(s) younger than the grace period left for a later prune",
                pruned.young
            )
        } else {
            String::new()
        }
    )?;
    Ok(())
}

/// Runs `command` on the local state, or with `from` (`--from s3://…`) on the latest restore
/// point of that remote: every object downloaded and its size and checksum verified, the
/// files put in a private temporary directory (0700), which is removed after. `command` gets
/// the context naming that state, and the URL and manifest it came from.
pub fn from(
    ctx: &Globals,
    from: Option<&str>,
    command: impl FnOnce(&Globals, Option<(&str, &Manifest)>) -> Result<()>,
) -> Result<()> {
    let Some(url) = from else {
        return command(ctx, None);
    };
    let remote = remote(ctx, url)?;
    let dir = tempfile::Builder::new()
        .prefix("penin-from-")
        .tempdir()
        .context("cannot create a temporary directory for the downloaded state")?;
    let name = ctx
        .path
        .file_name()
        .map_or_else(|| "state.json".into(), std::ffi::OsStr::to_os_string);
    let path = dir.path().join(name);
    let fetched = penin_replica::download(&remote, Pick::Latest, &path)
        .with_context(|| format!("cannot read the latest restore point of {url}"))?;
    let manifest = penin_replica::install(fetched, false)
        .with_context(|| format!("cannot put the state of {url} in {}", dir.path().display()))?;
    let here = Globals {
        path,
        ..ctx.clone()
    };
    let result = command(&here, Some((url, &manifest)));
    dir.close()
        .with_context(|| "cannot remove the temporary directory of the downloaded state")?;
    result
}
