//! `penin run` and `penin demo`: the seed's lifecycle.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use penin_orchestrator::{Map, NumericVectorArtifact, Orchestrator, Statistics, Value};
use penin_store::Lock;

use crate::args::RunArgs;
use crate::progress;
use crate::protocol::{self, Request};

/// How often the loop looks at the signal flag while stdin is quiet.
const TICK: Duration = Duration::from_millis(50);

/// Loads the state at start-up as the seed does, printing its lines to `out`.
///
/// A missing file is a first run. A file that cannot be loaded stops the start, unless
/// `fresh`: then it is moved aside (never deleted) and the state starts empty.
pub fn start(
    path: &Path,
    maxlen: Option<usize>,
    fresh: bool,
    out: &mut dyn Write,
) -> Result<Orchestrator> {
    let _ = writeln!(out, "🚀 Starting PENIN-Ω Orchestrator...");
    remove_temporaries(path, out)?;
    let mut orchestrator = Orchestrator::with_history_maxlen(maxlen);
    match progress::slow("Loading", path, || orchestrator.load_state(path)) {
        Ok(true) => {
            let stats = orchestrator.statistics();
            let _ = writeln!(out, "✅ State loaded from {}", path.display());
            counts(out, &stats);
        }
        Ok(false) => {
            let _ = writeln!(out, "ℹ️  No previous state found (first run)");
        }
        Err(error) if fresh => {
            let aside = penin_store::move_aside(path, &format!("unreadable-{}", timestamp()))
                .with_context(|| {
                    format!("cannot move the unreadable state {} aside", path.display())
                })?;
            let _ = writeln!(
                out,
                "⚠️  Could not load {}: {:#}",
                path.display(),
                anyhow::Error::from(error)
            );
            let _ = writeln!(
                out,
                "   Moved it to {} and starting with an empty state",
                aside.display()
            );
        }
        Err(error) => {
            return Err(anyhow::Error::from(error)).context(format!(
                "refusing to start: the state file {} exists but cannot be loaded; it is left as it is \
                 (fix it, or run with --fresh to move it aside and start empty)",
                path.display()
            ));
        }
    }
    Ok(orchestrator)
}

/// Takes the lock of a state this process is about to write: one writer at a time. Fails at
/// once when another process holds it, or waits with `--wait`.
pub fn writer(path: &Path, wait: bool) -> Result<Lock> {
    let lock = if wait {
        Lock::acquire(path)
    } else {
        Lock::try_acquire(path)
    };
    Ok(lock?)
}

/// [`writer`] for a one-shot command, then what an interrupted save left beside the state is
/// removed (safe under the lock: no other save is under way). `run` and `demo` do this in
/// their start-up instead, after the seed's first line.
pub fn one_shot_writer(path: &Path, wait: bool) -> Result<Lock> {
    let lock = writer(path, wait)?;
    remove_temporaries(path, &mut io::stderr())?;
    Ok(lock)
}

/// Removes the temporary files an interrupted save left beside the state; the caller holds
/// the state's lock, so no save of another process is under way.
pub fn remove_temporaries(path: &Path, out: &mut dyn Write) -> Result<()> {
    let removed = penin_store::remove_stale_temporaries(path)
        .with_context(|| format!("cannot clean up temporary files beside {}", path.display()))?;
    if removed > 0 {
        let _ = writeln!(
            out,
            "🧹 Removed {removed} temporary file(s) of an interrupted save"
        );
    }
    Ok(())
}

/// The seed's three count lines.
fn counts(out: &mut dyn Write, stats: &Statistics) {
    let _ = writeln!(
        out,
        "   Knowledge base: {} items",
        stats.knowledge_base_size
    );
    let _ = writeln!(out, "   Task history: {} entries", stats.task_history_size);
    let _ = writeln!(
        out,
        "   Score history: {} entries",
        stats.score_history_size
    );
}

/// Saves and prints the seed's line.
pub fn save(orchestrator: &Orchestrator, path: &Path, out: &mut dyn Write) -> Result<()> {
    progress::slow("Saving", path, || orchestrator.save_state(path))
        .with_context(|| format!("cannot save the state to {}", path.display()))?;
    let _ = writeln!(out, "✅ State saved to {}", path.display());
    Ok(())
}

/// What a stdin reader thread sends: a line, or the end of input.
enum Input {
    Line(Vec<u8>),
    End,
    /// Reading stdin failed: treated as its end, and said.
    Failed(io::Error),
}

/// `penin run`.
pub fn run(path: &Path, maxlen: Option<usize>, args: &RunArgs) -> Result<()> {
    let stderr = &mut io::stderr();
    let signalled = Arc::new(AtomicBool::new(false));
    {
        let signalled = Arc::clone(&signalled);
        // The handler only sets a flag; the loop saves at a safe point. A second signal
        // during that save sets it again and changes nothing.
        ctrlc::set_handler(move || signalled.store(true, Ordering::SeqCst))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let mut orchestrator = start(path, maxlen, args.fresh, stderr)?;

    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || read_lines(&sender));

    let autosave = (args.autosave > 0.0).then(|| Duration::from_secs_f64(args.autosave));
    let mut last_save = Instant::now();
    let mut dirty = false;
    let mut stdout = io::stdout().lock();
    let reason = loop {
        if signalled.load(Ordering::SeqCst) {
            // Lines already read but not applied get an answer saying so.
            while let Ok(Input::Line(line)) = receiver.try_recv() {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    let id = protocol::parse(&line).map_or_else(|(id, _)| id, |line| line.id);
                    let answer = protocol::error(id, "not applied: penin is shutting down");
                    let _ = stdout.write_all(&answer).and_then(|()| stdout.flush());
                }
            }
            break "🛑 Received a termination signal (SIGINT or SIGTERM), saving state..."
                .to_owned();
        }
        if dirty && autosave.is_some_and(|every| last_save.elapsed() >= every) {
            match orchestrator.save_state(path) {
                Ok(()) => dirty = false,
                Err(e) => {
                    let _ = writeln!(
                        stderr,
                        "⚠️  Autosave to {} failed: {:#}",
                        path.display(),
                        anyhow::Error::from(e)
                    );
                }
            }
            last_save = Instant::now();
        }
        match receiver.recv_timeout(TICK) {
            Ok(Input::Line(line)) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let (answer, effect) = handle(&mut orchestrator, &line, path);
                match effect {
                    Effect::Changed => dirty = true,
                    Effect::Saved => {
                        dirty = false;
                        last_save = Instant::now();
                    }
                    Effect::None => {}
                }
                // A reader that went away does not stop the session: the state still saves.
                let _ = stdout.write_all(&answer).and_then(|()| stdout.flush());
            }
            Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => {
                break "📭 End of input, saving state...".to_owned();
            }
            Ok(Input::Failed(e)) => {
                break format!(
                    "⚠️  Cannot read stdin ({e}): treating it as the end of input, saving state..."
                );
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    };
    let _ = writeln!(stderr, "{reason}");
    save(&orchestrator, path, stderr)
}

fn read_lines(sender: &mpsc::Sender<Input>) {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    loop {
        let mut line = Vec::new();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Err(e) => {
                let _ = sender.send(Input::Failed(e));
                return;
            }
            Ok(_) => {
                if sender.send(Input::Line(line)).is_err() {
                    return;
                }
            }
        }
    }
    let _ = sender.send(Input::End);
}

/// What answering a line did to the state.
enum Effect {
    None,
    Changed,
    Saved,
}

/// Answers one line.
fn handle(orchestrator: &mut Orchestrator, line: &[u8], path: &Path) -> (Vec<u8>, Effect) {
    let line = match protocol::parse(line) {
        Ok(line) => line,
        Err((id, message)) => return (protocol::error(id, &message), Effect::None),
    };
    match line.request {
        Request::Save => match orchestrator.save_state(path) {
            Ok(()) => {
                let mut fields = Map::new();
                fields.insert("saved", Value::from(path.display().to_string()));
                (protocol::answer(true, line.id, fields), Effect::Saved)
            }
            Err(e) => (
                protocol::error(line.id, &format!("{:#}", anyhow::Error::from(e))),
                Effect::None,
            ),
        },
        request => {
            let effect = if matches!(request, Request::Stats) {
                Effect::None
            } else {
                Effect::Changed
            };
            let fields = protocol::apply(orchestrator, request);
            (protocol::answer(true, line.id, fields), effect)
        }
    }
}

/// `penin demo`: the seed's `python -m penin`.
pub fn demo(path: &Path, maxlen: Option<usize>) -> Result<()> {
    let out = &mut io::stdout();
    let mut orchestrator = start(path, maxlen, false, out)?;
    orchestrator.add_knowledge(
        "embedding_1",
        NumericVectorArtifact::new(vec![0.1, 0.2, 0.3]),
    );
    orchestrator.add_knowledge(
        "embedding_2",
        NumericVectorArtifact::new(vec![0.4, 0.5, 0.6]),
    );
    for (id, kind) in [(1, "evolution"), (2, "evaluation")] {
        let mut task = Map::new();
        task.insert("task_id", Value::from(id));
        task.insert("type", Value::from(kind));
        task.insert("status", Value::from("completed"));
        orchestrator.add_task(task);
    }
    for score in [0.85, 0.87, 0.9] {
        orchestrator.add_score(score);
    }
    let stats = orchestrator.statistics();
    let _ = writeln!(out, "📊 Statistics:");
    counts(out, &stats);
    let _ = writeln!(out, "   Average score: {:.4}", stats.average_score);
    save(&orchestrator, path, out)
}

/// UTC `YYYYMMDDTHHMMSSZ`, for names of files moved aside.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_722), (2023, 12, 31));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
