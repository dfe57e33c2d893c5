//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// penin: the long-term memory of an agent orchestrator.
///
/// Keeps a knowledge base of embeddings, a task history and a score history in a state file
/// that the Python PENIN-Ω tool reads and writes too. Without a command, runs the lifecycle
/// (`penin run`).
#[derive(Debug, Parser)]
#[command(name = "penin", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Args {
    /// The state file [default: `$PENIN_STATE`, else `.penin_omega/state.json`]
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "user")]
    pub state: Option<PathBuf>,

    /// Keep the state in the per-user data directory (over `$PENIN_STATE`).
    #[arg(long, global = true)]
    pub user: bool,

    /// When another penin process is writing the state, wait for it instead of failing.
    #[arg(long, global = true)]
    pub wait: bool,

    /// Bound of the task and score histories of a new state (a loaded file keeps its own).
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(..=i64::MAX.unsigned_abs())
    )]
    pub history_maxlen: u64,

    /// Histories of a new state are unbounded.
    #[arg(long, global = true, conflicts_with = "history_maxlen")]
    pub unbounded: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the lifecycle: load, answer JSON-line operations on stdin, autosave, save on exit.
    Run(RunArgs),
    /// The seed's demo: load, add the demo knowledge, tasks and scores, save.
    Demo,
    /// Print the state's statistics.
    Stats {
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) a knowledge artifact and save.
    AddKnowledge {
        /// The artifact's key.
        key: String,
        /// The vector, comma-separated: 0.1,0.2,0.3
        #[arg(long, value_name = "FLOATS", allow_hyphen_values = true)]
        vector: String,
        /// The metadata, a JSON object.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
    },
    /// Append a task record (a JSON value, usually an object) and save.
    AddTask {
        /// The task record.
        #[arg(value_name = "JSON")]
        task: String,
    },
    /// Append a score and save.
    AddScore {
        /// The score.
        #[arg(allow_hyphen_values = true)]
        score: String,
    },
    /// Load any state file and write it in the seed format.
    Convert {
        /// The state file to read.
        input: PathBuf,
        /// Where to write it.
        output: PathBuf,
    },
    /// Check that a state file loads; print a summary.
    Verify {
        /// The state file to check.
        path: PathBuf,
    },
}

/// Options of `penin run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Save unsaved changes every SECONDS (0: only on exit and on request).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_AUTOSAVE, value_parser = seconds)]
    pub autosave: f64,

    /// If the state file cannot be loaded, move it aside to a timestamped name and start
    /// empty instead of refusing to start.
    #[arg(long)]
    pub fresh: bool,
}

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   any other failure
  2   usage error
  65  the state file is not JSON
  66  the file to read does not exist
  74  an I/O error
  75  the state is locked by another penin process (see --wait)
  77  permission denied
  78  the state path is not a regular file
  80  the state file is empty
  81  the state file is truncated
  82  the state file is not UTF-8
  83  the state file is JSON but not a state (wrong shape)";

/// Seconds between autosaves when `--autosave` is not given.
const DEFAULT_AUTOSAVE: f64 = 30.0;

impl Default for RunArgs {
    /// What `penin run` without options does (and `penin` alone).
    fn default() -> Self {
        RunArgs {
            autosave: DEFAULT_AUTOSAVE,
            fresh: false,
        }
    }
}

/// A number of seconds between 0 and a year.
fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (0.0..=31_536_000.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is not between 0 and 31536000 seconds"))
    }
}
