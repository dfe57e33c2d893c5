//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use penin_history::time::Timestamp;
use penin_orchestrator::Format;

use clap::{Parser, Subcommand};

/// penin: the long-term memory of an agent orchestrator.
///
/// Keeps a knowledge base of embeddings, a task history and a score history in a state file
/// that the Python PENIN-Ω tool reads and writes too. Without a command, runs the lifecycle
/// (`penin run`).
#[derive(Debug, Parser)]
#[command(name = "penin", version, about, long_about = None, after_help = EXIT_CODES)]
#[allow(clippy::struct_excessive_bools)] // the command line's flags
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

    /// The format of the snapshot a new state, and the next compaction, writes: `json`,
    /// `json.gz`, `json.zst` or `arrow` [default: a loaded state's own, else `json`]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// An age identity file (as `penin keygen` or `age-keygen` writes it): encrypted files
    /// are decrypted with it, and every file penin writes is encrypted to it.
    #[arg(long, global = true, value_name = "FILE", env = "PENIN_IDENTITY")]
    pub identity: Option<PathBuf>,

    /// Also encrypt every file written to this age recipient (`age1...`); repeatable.
    #[arg(long = "recipient", global = true, value_name = "R", value_parser = recipient)]
    pub recipients: Vec<String>,

    /// Write files unencrypted, even with --identity (which still decrypts).
    #[arg(long, global = true, conflicts_with = "recipients")]
    pub plaintext: bool,

    /// Say on stderr what penin does: -v loads, saves, compactions and replication rounds,
    /// -vv and -vvv more detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr: no warnings, no progress indicator (the lifecycle's own
    /// messages, the seed's, are unchanged).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the lifecycle: load, answer JSON-line operations on stdin (each change journaled
    /// before its answer), compact on exit.
    Run(RunArgs),
    /// The seed's demo: load, add the demo knowledge, tasks and scores, save.
    Demo,
    /// Write a new age identity to FILE (mode 0600; never over an existing file) and print
    /// its recipient, as age-keygen does.
    Keygen {
        /// The identity file to create.
        file: PathBuf,
    },
    /// Print a completion script for SHELL to stdout (bash: `source <(penin completions
    /// bash)`; zsh: write it as `_penin` in a directory of `$fpath`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print penin's manual page (roff) to stdout (`penin man | man -l -`), or write one page
    /// per command into a directory.
    Man {
        /// Write `penin.1` and a `penin-COMMAND.1` for each command into DIR instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the state's statistics.
    Stats {
        /// As one JSON object.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// The k artifacts nearest to a vector: exact search over the whole knowledge base.
    ///
    /// Cosine similarity and the dot product rank the largest first, l2 (the Euclidean
    /// distance) the smallest; equal scores go by key. Vectors of another length, NaN
    /// scores and (under cosine) zero vectors are skipped and counted.
    Search {
        /// The query vector, comma-separated: 0.1,0.2,0.3
        #[arg(long, value_name = "FLOATS", allow_hyphen_values = true)]
        vector: String,
        /// How many results.
        #[arg(short = 'k', value_name = "K", default_value_t = 10)]
        k: usize,
        /// How vectors are compared.
        #[arg(long, value_name = "METRIC", default_value = "cosine",
              value_parser = ["cosine", "dot", "l2"])]
        metric: String,
        /// Only artifacts whose metadata has KEY equal to VALUE (VALUE read as JSON when it
        /// parses, else as a string); repeatable, every one must hold.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<String>,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
        /// Search the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// Add (or replace) a knowledge artifact: one journal record, synced.
    AddKnowledge {
        /// The artifact's key.
        key: String,
        /// The vector, comma-separated: 0.1,0.2,0.3
        #[arg(long, value_name = "FLOATS", allow_hyphen_values = true)]
        vector: String,
        /// The metadata, a JSON object.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// As one JSON object: `path`, `key`, `dimensions`, `seq` (the change's number).
        #[arg(long)]
        json: bool,
    },
    /// Append a task record (a JSON value, usually an object): one journal record, synced.
    AddTask {
        /// The task record.
        #[arg(value_name = "JSON")]
        task: String,
        /// As one JSON object: `path`, `seq` (the change's number).
        #[arg(long)]
        json: bool,
    },
    /// Append a score: one journal record, synced.
    AddScore {
        /// The score.
        #[arg(allow_hyphen_values = true)]
        score: String,
        /// As one JSON object: `path`, `seq` (the change's number).
        #[arg(long)]
        json: bool,
    },
    /// Load any state file (any format) and write it in FORMAT.
    Convert {
        /// The state file to read.
        input: PathBuf,
        /// Where to write it.
        output: PathBuf,
        /// The format to write: `json` (the seed format), `json.gz`, `json.zst` or `arrow`
        /// (an Arrow IPC file).
        #[arg(long, value_name = "FORMAT", default_value_t = Format::Json)]
        to: Format,
        /// As one JSON object: `input`, `output`, `format`, `encrypted_to` (the recipients
        /// the output is encrypted to; null when it is not).
        #[arg(long)]
        json: bool,
    },
    /// Rewrite the state's snapshot in FORMAT, in place and atomically, after a checkpoint
    /// (tagged `pre-migrate`) of the state as it is.
    Migrate {
        /// The format to migrate to: `json`, `json.gz` or `json.zst`.
        #[arg(long, value_name = "FORMAT")]
        to: Format,
        /// Only say what would be done (formats, sizes, the checkpoint); change no file.
        #[arg(long)]
        dry_run: bool,
        /// As one JSON object: `path`, `from` (null without a snapshot), `to`, `dry_run`,
        /// `noop` (the snapshot is in that format already), `snapshot_bytes` and
        /// `journal_bytes` (before), `seq`, `checkpoint_tag`, `checkpoints_dir`, and once
        /// migrated `checkpoint` (the ID of the checkpoint written first) and `migrated_bytes`
        /// (the new snapshot's size), else null.
        #[arg(long)]
        json: bool,
    },
    /// Write the knowledge base as a file for other tools (not a state): its vectors, and
    /// its keys in row order.
    Export {
        /// What to write: `npy` (NumPy, a float64 matrix of shape (keys, dimension); every
        /// vector must have the same dimension) or `parquet` (the knowledge base's columns,
        /// zstd level 1).
        #[arg(long, value_enum, value_name = "FORMAT")]
        to: crate::formats::Export,
        /// The file to write.
        file: PathBuf,
        /// npy: where the keys go, as a JSON array in row order [default: FILE.keys.json].
        #[arg(long, value_name = "PATH")]
        keys: Option<PathBuf>,
        /// As one JSON object: `path` (the state), `file`, `format`, `rows`, and for npy
        /// `dimension` and `keys` (the keys' file), else null.
        #[arg(long)]
        json: bool,
    },
    /// Check that a state loads (snapshot and journal) and that its ledger's chain is sound;
    /// print a summary.
    ///
    /// A line per check, as soon as it passed; a failed check exits with its code (see
    /// below) and prints nothing more.
    Verify {
        /// The state file to check [default: the state].
        path: Option<PathBuf>,
        /// Also check every checkpoint's checksum.
        #[arg(long)]
        all: bool,
        /// Check the latest restore point of `s3://BUCKET[/PREFIX]`: every object's size
        /// and checksum, then the state's own checks (downloaded into a private temporary
        /// directory, removed after).
        #[arg(long, value_name = "URL", conflicts_with_all = ["path", "all"])]
        from: Option<String>,
        /// As one JSON object, once every check passed (nothing when one fails): `remote`
        /// (--from: `url`, `manifest`, `time`, `seq`, `objects`, `bytes`), `state` (`path`,
        /// `knowledge`, `tasks`, `task_maxlen`, `scores`, `score_maxlen`, `other_keys`),
        /// `journal` (`path`, `changes`, `seq`), `ledger` (`path`, `lines`, `head`,
        /// `torn_bytes`), `checkpoints` (--all: `dir`, `count`); a part not checked, or
        /// absent, is null, as is an unbounded maxlen.
        #[arg(long)]
        json: bool,
    },
    /// Fold the journal into a new snapshot, so that the state file alone holds the state.
    Compact {
        /// As one JSON object: `path`, `format`, `bytes` (the new snapshot's), `seq` (the last
        /// change it holds), `journal_bytes` (the journal's size before).
        #[arg(long)]
        json: bool,
    },
    /// Write an immutable, checksummed copy of the whole state into `NAME.checkpoints/`.
    Checkpoint {
        /// A name to find it by (a tagged checkpoint is kept by `prune` unless --tags-too).
        #[arg(long, value_name = "NAME")]
        tag: Option<String>,
        /// The checkpoint as one JSON object, as `checkpoints --json` lists it.
        #[arg(long)]
        json: bool,
    },
    /// List the checkpoints: time, tag, sequence number, size and counts.
    Checkpoints {
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Make a checkpoint the current state, after checkpointing the current one.
    Restore {
        /// The checkpoint's ID or tag [default: the newest checkpoint].
        #[arg(value_name = "ID|TAG", conflicts_with = "at")]
        which: Option<String>,
        /// The newest checkpoint taken at or before TIME (RFC 3339, or a date).
        #[arg(long, value_name = "TIME", value_parser = timestamp)]
        at: Option<Timestamp>,
        /// As one JSON object: `path`, `restored` (the checkpoint that is now the state) and
        /// `saved` (the checkpoint of the state it replaced), each as `checkpoints --json`
        /// lists it.
        #[arg(long)]
        json: bool,
    },
    /// Remove the checkpoints no rule keeps (restic's rules).
    Prune {
        /// Keep the N newest checkpoints.
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
        /// Keep the checkpoints taken within DURATION of the newest one (`7d`, `12h`).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        keep_within: Option<Duration>,
        /// Tagged checkpoints follow the rules too (else they are always kept).
        #[arg(long)]
        tags_too: bool,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// As one JSON object: `dry_run`, `unfinished_removed` (files of unfinished
        /// checkpoints removed), `kept` (oldest first, each with `id`, `last`: its rank among
        /// the newest kept by --keep-last, the newest 1, or null, `within` and `tagged`) and
        /// `removed` (IDs, oldest first).
        #[arg(long)]
        json: bool,
    },
    /// Show the audit ledger.
    Log {
        /// Only lines at or after TIME (RFC 3339, or a date).
        #[arg(long, value_name = "TIME", value_parser = timestamp)]
        since: Option<Timestamp>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// After the state file was replaced by another program while the journal held changes:
    /// apply them to it, or set the journal aside.
    #[command(group(clap::ArgGroup::new("how").required(true).args(["keep_journal", "discard_journal"])))]
    Recover {
        /// Apply the journal's changes to the state file as it is now.
        #[arg(long)]
        keep_journal: bool,
        /// Move the journal aside and keep the state file as it is.
        #[arg(long)]
        discard_journal: bool,
        /// As one JSON object: `path`, `recovered` (false when there was nothing to
        /// recover), `reason` (why not, else null), `applied` (the journal's changes applied),
        /// `moved_to` (where the journal was set aside, else null), `seq` (the state's last
        /// change after it; null when not recovered).
        #[arg(long)]
        json: bool,
    },
    /// Off-machine copies in S3-compatible object storage (AWS S3, `SeaweedFS`, Ceph, R2,
    /// `MinIO`): push, list, restore, status. The credentials and endpoint come from the
    /// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Keep the valid changes of a journal damaged before its end (or in its header), and set
    /// a ledger with a broken chain aside for a new one, after writing a checkpoint; what is
    /// damaged is kept aside.
    Repair {
        /// As one JSON object: `path`, `repaired` (false when there was nothing to repair),
        /// `reason` (why not, else null), `kept` (the changes kept), `dropped_bytes`,
        /// `dropped` (the first and last change dropped, or null), `damage` (what was wrong
        /// with the journal, or null), `header_rebuilt`, `moved_to` (where the damaged journal
        /// is kept, or null), `ledger` (a broken ledger's `damage` and `moved_to`, or null),
        /// `checkpoint` (the ID of the checkpoint written first, or null).
        #[arg(long)]
        json: bool,
    },
    /// Show one artifact: its vector (dimension, L2 norm, first values, min and max, how many
    /// values are NaN or infinite) and its metadata.
    ///
    /// A missing key exits 66; the message names the keys that share most of its prefix.
    Inspect {
        /// The artifact's key.
        key: String,
        /// As one JSON object, with the whole vector.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// List the knowledge base's keys in its order, one a line.
    ///
    /// A key holding a control character (newline, tab, carriage return, escape, DEL…) or
    /// starting with a double quote is printed as a JSON string, quotes included (`"a\nb"`),
    /// so that every key stays on one line and none drives the terminal; every other key is
    /// printed as it is. `search` prints its keys so too.
    Keys {
        /// Only the keys that start with P.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// Show the task history, oldest first: each task as one line of compact JSON, after its
    /// number in the history (from 1).
    Tasks {
        /// Only the N newest tasks.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// Show the score history, oldest first, and a summary: count, mean (as `stats`), min,
    /// max and last (min and max leave NaN out).
    Scores {
        /// As one JSON object: every score and every figure.
        #[arg(long)]
        json: bool,
        /// Read the latest restore point of `s3://BUCKET[/PREFIX]` instead of the local
        /// state (downloaded into a private temporary directory, removed after).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
    },
    /// Compare two states (files of any format, or checkpoints): exit 0 when they are the
    /// same, 1 when they differ, as diff(1).
    ///
    /// Says which keys were added, removed and changed (for a changed vector: how many
    /// components, the largest absolute change and the L2 distance, or the change of
    /// dimension; for metadata: which of its keys), the key whose vector moved furthest, how
    /// the task and score histories changed (entries appended, dropped from the front,
    /// replaced; their bounds), and the other top-level keys. Any failure exits with its own
    /// code (66: a missing file or checkpoint; 87: a damaged checkpoint), 2 when it has none,
    /// never 0 or 1.
    ///
    /// Everything is compared bit for bit, as the files hold it: a NaN equals a NaN of the
    /// same bits, -0.0 and 0.0 differ, 1 and 1.0 differ, and objects (metadata) and the
    /// knowledge base are the same only with their keys in the same order.
    Diff {
        /// The first state: a state file (snapshot and journal, any format, encrypted with
        /// --identity), or `checkpoint:ID`, `checkpoint:TAG` or `checkpoint:` (the newest) of
        /// the state (--state), its checksum checked first. A file whose name starts with
        /// `checkpoint:` is `./checkpoint:...`.
        a: PathBuf,
        /// The second state, as the first.
        b: PathBuf,
        /// As one JSON object, every changed key in it (the human output shows 20 of each kind).
        #[arg(long)]
        json: bool,
    },
}

/// The commands of `penin backup`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// One round: upload what the bucket lacks of the state (a new snapshot, the journal's
    /// and the ledger's new bytes), then the next manifest. Another writer that took that
    /// manifest first fences this one (exit 75).
    Push {
        /// Where: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
        url: String,
        /// Push only if manifest N is the remote's latest (0: none yet); otherwise this
        /// writer is fenced (exit 75). Of several pushes expecting the same N, one goes on.
        #[arg(long, value_name = "N")]
        if_latest: Option<u64>,
        /// As one JSON object: `url`, `pushed` (false when the bucket was up to date),
        /// `manifest` (the one written, else the latest, as `backup list --json` gives it;
        /// null when there is none), `uploaded_objects`, `uploaded_bytes`.
        #[arg(long)]
        json: bool,
    },
    /// List the restore points (manifests), oldest first.
    List {
        /// Where: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
        url: String,
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Make a restore point the local state: every object is downloaded and its checksum
    /// verified before any local file is replaced.
    Restore {
        /// Where: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
        url: String,
        /// The newest restore point holding no change after N.
        #[arg(long, value_name = "N", conflicts_with = "at")]
        seq: Option<u64>,
        /// The newest restore point written at or before TIME (RFC 3339, or a date).
        #[arg(long, value_name = "TIME", value_parser = timestamp)]
        at: Option<Timestamp>,
        /// Replace the local state if there is one (its checkpoints are left as they are).
        #[arg(long)]
        force: bool,
        /// As one JSON object: `url`, `path` (the local state), `manifest` (the restore
        /// point, as `backup list --json` gives it).
        #[arg(long)]
        json: bool,
    },
    /// Delete the restore points no rule keeps, then the objects only they needed (the
    /// latest is always kept, and every object a kept one names).
    Prune {
        /// Where: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
        url: String,
        /// Keep the N latest restore points.
        #[arg(long, value_name = "N")]
        keep_last: Option<u64>,
        /// Keep the restore points written within DURATION of the latest (`7d`, `12h`).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        keep_within: Option<Duration>,
        /// Never delete an object younger than DURATION, so that a push under way keeps the
        /// objects it uploaded before its manifest [default: 1h].
        #[arg(long, value_name = "DURATION", value_parser = grace)]
        grace: Option<Duration>,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// As one JSON object: `url`, `dry_run`, `manifests` (the numbers deleted, or that
        /// would be), `objects` (each `name` and `bytes`), `bytes` (their total), `kept` (the
        /// numbers kept), `young` (unnamed objects left for being younger than the grace).
        #[arg(long)]
        json: bool,
    },
    /// How far behind the bucket is: the local state's last change against the latest
    /// manifest's.
    Status {
        /// Where: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
        url: String,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `penin run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// When an answered change is on disk: `always` (before its answer, with group commit),
    /// `periodic` (within about a second), `never` (when the OS writes it).
    #[arg(long, value_enum, default_value_t = SyncPolicy::Always)]
    pub sync: SyncPolicy,

    /// Write a checkpoint every DURATION while the session runs (`30m`, `1h`, `1d12h`).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub checkpoint_every: Option<Duration>,

    /// If the state cannot be loaded, move its files aside to timestamped names and start
    /// empty instead of refusing to start.
    #[arg(long)]
    pub fresh: bool,

    /// Replicate the state to `s3://BUCKET/PREFIX` while the session runs: a thread ships every
    /// durable change within --replicate-interval, and a new snapshot when the journal
    /// compacts. The session never waits on the network; if another writer takes the prefix
    /// (fenced), the session saves and exits with code 75.
    #[arg(long, value_name = "URL")]
    pub replicate: Option<String>,

    /// How often the replication thread ships what became durable (`1s`, `500ms`, `1m`).
    #[arg(long, value_name = "DURATION", value_parser = interval, default_value = "1s",
          requires = "replicate")]
    pub replicate_interval: Duration,

    /// No longer needed: every change is journaled before it is answered. Accepted and
    /// ignored, so that older scripts keep working.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, hide = true)]
    pub autosave: Option<f64>,
}

impl RunArgs {
    /// Whether the obsolete `--autosave` was given.
    pub fn autosave_given(&self) -> bool {
        self.autosave.is_some()
    }
}

/// When an answered change is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncPolicy {
    /// Synced before it is answered; the lines waiting together share one sync.
    Always,
    /// Synced within about a second (Redis's `appendfsync everysec`).
    Periodic,
    /// Synced when the operating system writes it, and at compaction.
    Never,
}

impl SyncPolicy {
    /// What the policy promises, in a sentence.
    pub fn promise(self) -> &'static str {
        match self {
            SyncPolicy::Always => {
                "every answered change is on disk before its answer (one sync for the lines waiting together)"
            }
            SyncPolicy::Periodic => {
                "answered changes reach the disk within about a second; a power loss may take the last second"
            }
            SyncPolicy::Never => {
                "the operating system decides when answered changes reach the disk; a power loss may take them"
            }
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncPolicy::Always => "always",
            SyncPolicy::Periodic => "periodic",
            SyncPolicy::Never => "never",
        })
    }
}

/// An `age1...` recipient, checked.
fn recipient(text: &str) -> Result<String, String> {
    penin_formats::parse_recipient(text)
        .map(|r| r.to_string())
        .map_err(|e| e.to_string())
}

/// A time as `Timestamp::parse` reads it.
fn timestamp(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).map_err(|e| e.to_string())
}

/// A duration as `parse_duration` reads it, or a number of milliseconds (`500ms`).
fn interval(text: &str) -> Result<Duration, String> {
    match text.strip_suffix("ms") {
        Some(ms) if !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()) => {
            let ms: u64 = ms
                .parse()
                .map_err(|_| format!("{text:?}: too many milliseconds"))?;
            if ms == 0 {
                return Err("a duration of zero".to_owned());
            }
            Ok(Duration::from_millis(ms))
        }
        _ => duration(text),
    }
}

/// A duration as `parse_duration` reads it.
/// A duration as `parse_duration` reads it, zero allowed.
fn grace(text: &str) -> Result<Duration, String> {
    penin_history::time::parse_duration(text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<Duration, String> {
    let duration = penin_history::time::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("a duration of zero".to_owned());
    }
    Ok(duration)
}

const EXIT_CODES: &str = "\
Exit codes:
  0   success (diff: the states are the same)
  1   any other failure (diff: the states differ)
  2   usage error (diff: also any failure without a code of its own, as diff(1))
  65  the state file is not JSON, or is a damaged arrow snapshot (checksum, footer)
  66  the file to read (or the checkpoint asked for) does not exist; inspect: no such key
  69  a file written by a newer penin (a newer format version)
  74  an I/O error
  75  the state is locked by another penin process (see --wait)
  77  permission denied
  78  the state path is not a regular file
  80  the state file is empty
  81  the state file is truncated
  82  the state file is not UTF-8
  83  the state file is JSON but not a state (wrong shape)
  84  the journal is damaged before its last record (see `penin repair`)
  85  the state file was replaced by another program while the journal held changes
      (see `penin recover`)
  86  the audit ledger's chain is broken
  87  a checkpoint is damaged
  88  the state file is compressed (json.gz, json.zst) or encrypted (age), and its stream
      is damaged, truncated or was changed
  89  the state file is encrypted (age), and no identity was given (--identity,
      PENIN_IDENTITY) or none given opens it; the message names its recipients
  90  a remote copy is damaged: an object is missing, or its size or checksum does not
      match its manifest (backup restore)

  backup, run --replicate: 75 also when another writer took the remote's next manifest
  (fenced; run saves locally first), 77 when
  the server refuses the credentials, 66 when the bucket or a restore point does not
  exist, 69 for a manifest of a newer version, 74 when the server cannot be reached, 89
  when the remote's objects are encrypted and no identity given opens them, 2 when a push
  would mix encrypted and plaintext restore points under one prefix";

impl Default for RunArgs {
    /// What `penin run` without options does (and `penin` alone).
    fn default() -> Self {
        RunArgs {
            sync: SyncPolicy::Always,
            checkpoint_every: None,
            fresh: false,
            replicate: None,
            replicate_interval: Duration::from_secs(1),
            autosave: None,
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
