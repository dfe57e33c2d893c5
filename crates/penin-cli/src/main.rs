//! `penin`: the command-line lifecycle of an orchestrator's long-term memory.
//!
//! See `penin --help`, and the repository's README for the line protocol and exit codes.

mod args;
mod backup;
mod commands;
mod diff;
mod exit;
mod formats;
mod globals;
mod history;
mod inspect;
mod lifecycle;
mod log;
mod manual;
mod progress;
mod protocol;
mod replicate;
mod search;
mod stats;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::args::{Args, Command, RunArgs};
use crate::globals::Globals;

/// The seed's default state file, shared with the Python tool.
const DEFAULT_STATE: &str = ".penin_omega/state.json";

/// mimalloc for small blocks, the system's allocator for large ones (see `penin_alloc`).
#[global_allocator]
static ALLOCATOR: penin_alloc::Allocator = penin_alloc::Allocator;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) if exit::is_broken_pipe(&error) => exit::from(exit::OK),
        Err(error) => {
            let _ = writeln!(io::stderr(), "penin: {error:#}");
            exit::from(exit::code(&error))
        }
    }
}

fn run() -> Result<ExitCode> {
    let args = Args::parse();
    let out = &mut io::stdout().lock();
    log::init(log::level(args.verbose, args.quiet));
    // These two describe the command line: they need no state and no keys.
    match &args.command {
        Some(Command::Completions { shell }) => manual::completions(*shell, out)?,
        Some(Command::Man { dir }) => manual::man(dir.as_deref(), out)?,
        _ => return command(args, out),
    }
    out.flush()?;
    Ok(exit::from(exit::OK))
}

/// Runs a command on the state.
fn command(args: Args, out: &mut dyn Write) -> Result<ExitCode> {
    let ctx = &globals(&args)?;
    match args.command {
        None => {
            let _lock = lifecycle::writer(&ctx.path, ctx.wait)?;
            lifecycle::run(ctx, &RunArgs::default())?;
        }
        Some(Command::Run(run)) => {
            let _lock = lifecycle::writer(&ctx.path, ctx.wait)?;
            lifecycle::run(ctx, &run)?;
        }
        Some(Command::Demo) => {
            let _lock = lifecycle::writer(&ctx.path, ctx.wait)?;
            lifecycle::demo(ctx)?;
        }
        Some(Command::Keygen { file }) => commands::keygen(&file, out)?,
        Some(Command::Stats { json, from }) => {
            backup::from(ctx, from.as_deref(), |ctx, fetched| {
                stats::stats(ctx, json, fetched.map(|(url, _)| url), out)
            })?;
        }
        Some(Command::Search {
            vector,
            k,
            metric,
            filters,
            json,
            from,
        }) => {
            let query = search::Query::parse(&vector, k, &metric, &filters)?;
            backup::from(ctx, from.as_deref(), |ctx, _| {
                search::search(ctx, &query, json, out)
            })?;
        }
        Some(Command::AddKnowledge {
            key,
            vector,
            metadata,
            json,
        }) => commands::add_knowledge(ctx, &key, &vector, metadata.as_deref(), json, out)?,
        Some(Command::AddTask { task, json }) => commands::add_task(ctx, &task, json, out)?,
        Some(Command::AddScore { score, json }) => commands::add_score(ctx, &score, json, out)?,
        Some(Command::Convert {
            input,
            output,
            to,
            json,
        }) => {
            formats::convert(ctx, &input, &resolve_link(output), to, json, out)?;
        }
        Some(Command::Migrate { to, dry_run, json }) => {
            formats::migrate(ctx, to, dry_run, json, out)?;
        }
        Some(Command::Export {
            to,
            file,
            keys,
            json,
        }) => {
            formats::export(ctx, to, &file, keys.as_deref(), json, out)?;
        }
        Some(Command::Verify {
            path,
            all,
            from,
            json,
        }) => {
            backup::from(ctx, from.as_deref(), |ctx, fetched| {
                let path = path.as_deref().unwrap_or(&ctx.path);
                verify::verify(ctx, path, all, fetched, json, out)
            })?;
        }
        Some(
            command @ (Command::Compact { .. }
            | Command::Checkpoint { .. }
            | Command::Checkpoints { .. }
            | Command::Restore { .. }
            | Command::Prune { .. }
            | Command::Log { .. }
            | Command::Recover { .. }
            | Command::Repair { .. }),
        ) => history::dispatch(ctx, command, out)?,
        Some(Command::Backup { command }) => backup::dispatch(ctx, command, out)?,
        Some(
            command @ (Command::Inspect { .. }
            | Command::Keys { .. }
            | Command::Tasks { .. }
            | Command::Scores { .. }),
        ) => inspect::dispatch(ctx, command, out)?,
        // Its exit code says whether the states differ.
        Some(Command::Diff { a, b, json }) => return diff::run(ctx, &a, &b, json, out),
        Some(Command::Completions { .. } | Command::Man { .. }) => {}
    }
    out.flush()?;
    Ok(exit::from(exit::OK))
}

/// The global options, resolved.
fn globals(args: &Args) -> Result<Globals> {
    let keygen = matches!(args.command, Some(Command::Keygen { .. }));
    Ok(Globals {
        // keygen makes an identity: it reads none.
        keys: if keygen {
            penin_orchestrator::Keys::new()
        } else {
            keys(args)?
        },
        path: resolve_link(state_path(args)?),
        // At most i64::MAX (clap checks), the largest bound Python reads.
        maxlen: (!args.unbounded)
            .then(|| usize::try_from(args.history_maxlen).unwrap_or(usize::MAX)),
        wait: args.wait,
        format: args.format,
    })
}

/// `--identity`'s identities and recipients, then `--recipient`'s, none with `--plaintext`.
fn keys(args: &Args) -> Result<penin_orchestrator::Keys> {
    let mut keys = match &args.identity {
        Some(path) if !path.as_os_str().is_empty() => {
            penin_orchestrator::Keys::from_identity_file(path)?
        }
        _ => penin_orchestrator::Keys::new(),
    };
    for recipient in &args.recipients {
        keys = keys.with_recipient(recipient)?;
    }
    Ok(if args.plaintext {
        keys.plaintext()
    } else {
        keys
    })
}

/// `--state`, else `--user`'s data directory, else `$PENIN_STATE`, else the seed's default in
/// the current directory.
fn state_path(args: &Args) -> Result<PathBuf> {
    if let Some(path) = &args.state {
        return Ok(path.clone());
    }
    if args.user {
        let dirs = directories::ProjectDirs::from("", "", "penin")
            .context("cannot find the per-user data directory (no home directory)")?;
        return Ok(dirs.data_dir().join("state.json"));
    }
    match std::env::var_os("PENIN_STATE") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Ok(PathBuf::from(DEFAULT_STATE)),
    }
}

/// A state path that is a symbolic link stands for the file it points to: that file is
/// locked and replaced, so the link stays a link and every name of the state shares one lock.
fn resolve_link(path: PathBuf) -> PathBuf {
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            std::fs::canonicalize(&path).unwrap_or(path)
        }
        _ => path,
    }
}
