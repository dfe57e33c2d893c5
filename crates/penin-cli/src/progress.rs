//! A progress indicator for loads and saves that take longer than about a second: on a
//! terminal only, so nothing reaches pipes, logs or CI.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How long an operation runs before the indicator appears.
const DELAY: Duration = Duration::from_secs(1);

/// Runs `op`, which loads or saves the state at `path` (`doing` is "Loading" or "Saving").
/// When stderr is a terminal and `op` is still running after a second, a spinner on stderr
/// says what, on which file (with its size), and for how long; it is cleared at the end.
pub fn slow<T>(doing: &str, path: &Path, op: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = indicate(doing, path, op);
    tracing::info!("{doing} {} took {:.1?}", path.display(), started.elapsed());
    result
}

fn indicate<T>(doing: &str, path: &Path, op: impl FnOnce() -> T) -> T {
    if crate::log::quiet() || !std::io::stderr().is_terminal() {
        return op();
    }
    let size = std::fs::metadata(path).map(|m| m.len()).ok();
    let message = match size {
        Some(bytes) => format!(
            "{doing} {} ({})",
            path.display(),
            indicatif::HumanBytes(bytes)
        ),
        None => format!("{doing} {}", path.display()),
    };
    thread::scope(|scope| {
        let (done, finished) = mpsc::channel::<()>();
        scope.spawn(move || {
            if finished.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let spinner = ProgressBar::new_spinner()
                .with_message(message)
                .with_elapsed(DELAY);
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                spinner.set_style(style);
            }
            spinner.enable_steady_tick(Duration::from_millis(100));
            let _ = finished.recv();
            spinner.finish_and_clear();
        });
        let result = op();
        drop(done);
        result
    })
}
