//! One timed operation on a state file, for `bench/compare.py`: run it in a fresh process
//! per measurement, so that its peak memory is its own.
//!
//! ```text
//! cargo run --release -p penin-orchestrator --example bench_io -- OP FILE [FORMAT]
//! ```
//!
//! `FILE` may be in any format; the saves write `FORMAT` (`json` unless given: `json.gz`,
//! `json.zst`, `arrow`). With `PENIN_IDENTITY` set to an identity file, an encrypted `FILE`
//! is decrypted with it and the saves are encrypted to its recipient.
//!
//! `OP` is `load` (read and decode), `save` (load, then encode and write to `FILE.out`
//! without fsync, like Python's `json.dump` to a file), `save-durable` (load, then
//! `save_state` to `FILE.out`: temporary, fsync, rename, directory fsync) or `raw` (load,
//! encode, then time writing and fsyncing those bytes to `FILE.out` with plain `std::fs`,
//! the floor a durable save is compared to). It prints `seconds=S` for the timed part,
//! `maxrss_kb=K`, the process's peak resident memory, and what the load found —
//! `artifacts=A tasks=T scores=S extra_keys=K extra_items=I` (the top-level keys beyond the
//! seed's three, and the items of those that are arrays) — so that the caller can check the
//! whole state was read. A missing file is an error here, not a first run.
//!
//! `load` loads as penin's commands that only look (`stats`, `verify`, `inspect`…) do: a
//! large `arrow` snapshot through a map of its file, its pages mapped as they are used (not
//! as `search` and `diff`, which map them all at once), and the state left to the process's
//! exit instead of freed; with `PENIN_BENCH_COPY=1`, into memory of its own instead, and
//! freed, as `penin run` and every command that writes do. The other operations always load
//! the second way, as the commands that save do.

use std::io::Write;
use std::time::Instant;

use penin_artifacts::Value;
use penin_formats::Keys;
use penin_orchestrator::{Format, Orchestrator};

/// The `penin` command's allocator, so that what is timed is what the command does.
#[global_allocator]
static ALLOCATOR: penin_alloc::Allocator = penin_alloc::Allocator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (op, file, format) = match args.as_slice() {
        [_, op, file] => (op, file, Format::Json),
        [_, op, file, format] => (op, file, format.parse()?),
        _ => return Err("usage: bench_io load|save|save-durable|raw FILE [FORMAT]".into()),
    };
    let out = format!("{file}.out");
    let keys = match std::env::var_os("PENIN_IDENTITY") {
        Some(identity) => Keys::from_identity_file(identity)?,
        None => Keys::new(),
    };
    let start = Instant::now();
    let mut orchestrator = Orchestrator::new();
    let handle = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let looks = op == "load" && std::env::var_os("PENIN_BENCH_COPY").is_none_or(|v| v != "1");
    if looks {
        orchestrator.map_file_with(&handle, std::path::Path::new(file), &keys)?;
    } else {
        orchestrator.load_file_with(&handle, std::path::Path::new(file), &keys)?;
    }
    let loaded = start.elapsed();
    let seconds = match op.as_str() {
        "load" => loaded.as_secs_f64(),
        "save" => {
            let start = Instant::now();
            penin_store::write_atomic_in(
                &penin_store::RealFs,
                &out,
                penin_store::Durability::NoSync,
                |w| orchestrator.write_with(w, format, &keys).map(drop),
            )?;
            start.elapsed().as_secs_f64()
        }
        "save-durable" => {
            let start = Instant::now();
            orchestrator.save_state_with(&out, format, &keys)?;
            start.elapsed().as_secs_f64()
        }
        "raw" => {
            let bytes = orchestrator.to_bytes();
            let start = Instant::now();
            let mut f = std::fs::File::create(&out)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            start.elapsed().as_secs_f64()
        }
        other => return Err(format!("unknown op {other}").into()),
    };
    let extra = orchestrator.extra();
    let extra_items: usize = extra
        .values()
        .map(|v| match v {
            Value::Array(items) => items.len(),
            _ => 0,
        })
        .sum();
    println!(
        "seconds={seconds:.4} maxrss_kb={} artifacts={} tasks={} scores={} extra_keys={} extra_items={extra_items}",
        maxrss_kb(),
        orchestrator.knowledge_base().len(),
        orchestrator.task_history().len(),
        orchestrator.score_history().len(),
        extra.len(),
    );
    if looks {
        // As `penin_cli::commands::UntilExit` does.
        std::mem::forget(orchestrator);
    }
    Ok(())
}

/// Peak resident set size of this process, from `/proc/self/status` (`VmHWM`).
fn maxrss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
