//! What penin says on stderr besides its answers: warnings by default, errors only with
//! `-q`, and with `-v`, `-vv`, `-vvv` what it does (loads, saves, compactions, replication
//! rounds) in more and more detail. Every line is `penin: LEVEL: message`, the format the
//! warnings always had, so a warning reads the same with or without `-v`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static QUIET: AtomicBool = AtomicBool::new(false);

/// The level `-v` given `verbose` times, or `-q`, lets through.
pub fn level(verbose: u8, quiet: bool) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    }
}

/// Sends events at `level` and above to stderr, for the whole process.
pub fn init(level: LevelFilter) {
    QUIET.store(level < LevelFilter::WARN, Ordering::Relaxed);
    // Fails only when a subscriber is already set: then that one keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Line)
        .try_init();
}

/// Whether `-q` was given: nothing but errors on stderr (no progress indicator either).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `penin: warning: message key=value …`.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "penin: {level}: ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flag_lets_through_its_level() {
        assert_eq!(level(0, false), LevelFilter::WARN);
        assert_eq!(level(1, false), LevelFilter::INFO);
        assert_eq!(level(2, false), LevelFilter::DEBUG);
        assert_eq!(level(9, false), LevelFilter::TRACE);
        assert_eq!(level(0, true), LevelFilter::ERROR);
    }
}
