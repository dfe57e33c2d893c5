//! `penin stats`: the seed's four figures, then what a person looking after the state wants
//! to know: the vector dimensions present, the files and their formats and sizes, the
//! journal, the ledger's head, and the last scores at a glance.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Result;
use penin_history::ledger;
use penin_orchestrator::memory::Loaded;
use penin_orchestrator::{Orchestrator, Statistics};
use serde::Serialize;

use crate::commands;
use crate::globals::Globals;

/// How many of the newest scores the sparkline draws.
pub const SPARK_SCORES: usize = 32;

/// Everything `stats --json` prints: the seed's four figures first, under their seed names.
#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub figures: Statistics,
    /// The state file.
    pub path: String,
    /// Vector lengths present, with how many artifacts have each, shortest first.
    pub dimensions: Vec<Dimension>,
    /// The snapshot file, `None` when there is none.
    pub snapshot: Option<Snapshot>,
    /// The journal of changes since the snapshot.
    pub journal: Journal,
    /// The ledger, `None` when there is none.
    pub ledger: Option<Ledger>,
    /// The newest scores, at most [`SPARK_SCORES`], oldest first (non-finite ones as
    /// `null`).
    pub last_scores: Vec<Option<f64>>,
    /// `last_scores` drawn with the eight block characters, lowest to highest (a space for
    /// a score that is not a finite number).
    pub sparkline: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Dimension {
    pub dimension: usize,
    pub count: usize,
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// `json`, `json.gz`, `json.zst` or `arrow`.
    pub format: String,
    /// The recipients an encrypted snapshot names (empty when another program encrypted
    /// it); `None` for a plaintext one.
    pub encrypted_to: Option<Vec<String>>,
    /// Its size in bytes.
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Journal {
    /// Its size in bytes (0 when there is none).
    pub bytes: u64,
    /// The changes it holds beyond the snapshot.
    pub changes: usize,
    /// The sequence number of the last change the state holds.
    pub seq: u64,
}

#[derive(Debug, Serialize)]
pub struct Ledger {
    /// Its size in bytes.
    pub bytes: u64,
    /// The last complete line's `seq`: the number of lines when the chain is sound (`penin
    /// verify` checks it); `None` when the ledger could not be read.
    pub lines: Option<u64>,
    /// The last line's hash, in hex.
    pub head: Option<String>,
    /// Why its chain could not be read (`penin verify` says more), when it could not.
    pub error: Option<String>,
}

/// `penin stats [--json]`; `remote`: the URL the state was downloaded from (`--from`),
/// which the report names instead of the private temporary file it was read in.
pub fn stats(ctx: &Globals, json: bool, remote: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let path = &ctx.path;
    let loaded = commands::load(ctx, path)?;
    if !loaded.exists() && !json && !crate::log::quiet() {
        eprintln!(
            "penin: no state at {} yet (first run): statistics of an empty state",
            path.display()
        );
    }
    let mut report = report(path, &loaded);
    if let Some(url) = remote {
        url.clone_into(&mut report.path);
    }
    if json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    let style = Style::for_stdout();
    print(&report, style, out)
}

/// Gathers the figures of the state `loaded` from `path`.
pub fn report(path: &Path, loaded: &Loaded) -> Report {
    let state = &loaded.state;
    let snapshot = loaded.layout.as_ref().map(|layout| Snapshot {
        format: layout.format.name().to_owned(),
        encrypted_to: layout.encrypted_to.clone(),
        bytes: size(path),
    });
    let ledger_path = penin_history::ledger_path(path);
    let ledger = ledger_path.symlink_metadata().is_ok().then(|| {
        let unreadable = |error: String| Ledger {
            bytes: size(&ledger_path),
            lines: None,
            head: None,
            error: Some(error),
        };
        // A link to nothing is there, and unreadable (not an empty ledger).
        if let Err(e) = std::fs::metadata(&ledger_path) {
            return unreadable(format!("{}: {e}", ledger_path.display()));
        }
        // The last line alone, checked against its own hash (`verify` checks the chain).
        match ledger::last(&ledger_path) {
            Ok((_, last)) => Ledger {
                bytes: size(&ledger_path),
                lines: Some(last.as_ref().map_or(0, |line| line.seq)),
                head: last.map(|line| ledger::hex(&line.hash)),
                error: None,
            },
            Err(e) => unreadable(e.to_string()),
        }
    });
    let last_scores = last_scores(state);
    Report {
        figures: state.statistics(),
        path: path.display().to_string(),
        dimensions: dimensions(state),
        snapshot,
        journal: Journal {
            bytes: loaded.journal_len,
            changes: loaded.replayed,
            seq: loaded.seq,
        },
        ledger,
        sparkline: sparkline(&last_scores),
        last_scores,
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The vector lengths present, shortest first, with their counts.
pub fn dimensions(state: &Orchestrator) -> Vec<Dimension> {
    let mut counts = BTreeMap::<usize, usize>::new();
    for artifact in state.knowledge_base().values() {
        *counts.entry(artifact.vector.len()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(dimension, count)| Dimension { dimension, count })
        .collect()
}

fn last_scores(state: &Orchestrator) -> Vec<Option<f64>> {
    let scores = state.score_history();
    let skip = scores.len().saturating_sub(SPARK_SCORES);
    scores
        .iter()
        .skip(skip)
        .map(|score| Some(score.to_f64()).filter(|f| f.is_finite()))
        .collect()
}

/// The eight block characters, from the lowest score to the highest; a space where there is
/// no finite score; the middle block when every score is the same.
pub fn sparkline(scores: &[Option<f64>]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite = scores.iter().flatten();
    let low = finite.clone().copied().fold(f64::INFINITY, f64::min);
    let high = finite.copied().fold(f64::NEG_INFINITY, f64::max);
    let span = high - low;
    scores
        .iter()
        .map(|score| match score {
            None => ' ',
            Some(_) if !(span > 0.0 && span.is_finite()) => BLOCKS[3],
            Some(score) => {
                let step = ((score - low) / span * 7.0).round();
                // The block whose number `step` (0 to 7) is.
                BLOCKS[(1..8_u8).filter(|&i| f64::from(i) <= step).count()]
            }
        })
        .collect()
}

/// ANSI styles, or none: colour only on a terminal that is not `TERM=dumb`, and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// Colour when stdout is a terminal (and not a `dumb` one) and `NO_COLOR` is unset or
    /// empty.
    pub fn for_stdout() -> Self {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
        Style {
            colour: std::io::stdout().is_terminal() && !no_colour && !dumb,
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A label, in bold.
    pub fn label(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// A quiet aside, dimmed.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A drawing, in cyan.
    pub fn drawing(self, text: &str) -> String {
        self.paint("36", text)
    }
}

fn print(report: &Report, style: Style, out: &mut dyn Write) -> Result<()> {
    let figures = &report.figures;
    // The seed's four lines, as the Python tool prints them.
    writeln!(
        out,
        "{} {} items",
        style.label("Knowledge base:"),
        figures.knowledge_base_size
    )?;
    writeln!(
        out,
        "{} {} entries",
        style.label("Task history:"),
        figures.task_history_size
    )?;
    writeln!(
        out,
        "{} {} entries",
        style.label("Score history:"),
        figures.score_history_size
    )?;
    writeln!(
        out,
        "{} {:?}",
        style.label("Average score:"),
        figures.average_score
    )?;
    if !report.dimensions.is_empty() {
        let dimensions: Vec<String> = report
            .dimensions
            .iter()
            .map(|d| {
                let items = if d.count == 1 { "item" } else { "items" };
                format!("{} ({} {items})", d.dimension, d.count)
            })
            .collect();
        writeln!(
            out,
            "{} {}",
            style.label("Vector dimensions:"),
            dimensions.join(", ")
        )?;
    }
    match &report.snapshot {
        Some(snapshot) => {
            let encrypted = match &snapshot.encrypted_to {
                None => String::new(),
                Some(to) if to.is_empty() => ", encrypted (age)".to_owned(),
                Some(to) => format!(", encrypted (age) to {}", to.join(", ")),
            };
            writeln!(
                out,
                "{} {}, {}{encrypted}, {}",
                style.label("Snapshot:"),
                report.path,
                snapshot.format,
                bytes(snapshot.bytes)
            )?;
        }
        None => writeln!(out, "{} none yet", style.label("Snapshot:"))?,
    }
    let journal = &report.journal;
    writeln!(
        out,
        "{} {}, {} change(s) since the snapshot, up to change {}",
        style.label("Journal:"),
        bytes(journal.bytes),
        journal.changes,
        journal.seq
    )?;
    match &report.ledger {
        None => writeln!(out, "{} none yet", style.label("Ledger:"))?,
        Some(Ledger {
            error: Some(error), ..
        }) => writeln!(
            out,
            "{} unreadable ({error}); `penin verify` says more",
            style.label("Ledger:")
        )?,
        Some(ledger) => writeln!(
            out,
            "{} {} line(s), {}, head {}",
            style.label("Ledger:"),
            ledger.lines.unwrap_or(0),
            bytes(ledger.bytes),
            ledger.head.as_deref().unwrap_or("(none)")
        )?,
    }
    if !report.last_scores.is_empty() {
        writeln!(
            out,
            "{} {} {}",
            style.label("Last scores:"),
            style.drawing(&report.sparkline),
            style.dim(&format!(
                "(the last {}, oldest first)",
                report.last_scores.len()
            ))
        )?;
    }
    Ok(())
}

/// `1234 bytes`, or `31.5 MB (31457280 bytes)` from a megabyte on.
fn bytes(n: u64) -> String {
    if n < 1_000_000 {
        format!("{n} bytes")
    } else {
        #[allow(clippy::cast_precision_loss)] // a size shown to one decimal
        let mb = n as f64 / 1e6;
        format!("{mb:.1} MB ({n} bytes)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_lowest_to_highest() {
        let scores = [Some(0.0), Some(0.5), Some(1.0), None, Some(0.25)];
        assert_eq!(sparkline(&scores), "▁▅█ ▃");
    }

    #[test]
    fn equal_scores_draw_the_middle_block() {
        assert_eq!(sparkline(&[Some(2.0), Some(2.0)]), "▄▄");
        assert_eq!(sparkline(&[None, None]), "  ");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn huge_spans_do_not_overflow() {
        let scores = [Some(f64::MIN), Some(f64::MAX), Some(0.0)];
        // MAX - MIN overflows to infinity: no span to scale by, so the middle block.
        assert_eq!(sparkline(&scores), "▄▄▄");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(bytes(999_999), "999999 bytes");
        assert_eq!(bytes(31_457_280), "31.5 MB (31457280 bytes)");
    }
}
