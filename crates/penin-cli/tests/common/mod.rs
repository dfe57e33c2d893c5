//! Shared helpers: each test runs the real `penin` binary in its own temporary directory,
//! with that directory as the working directory and `PENIN_STATE` removed, so the default
//! state `.penin_omega/state.json` lands there.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use penin_orchestrator::{Map, NumericVectorArtifact, Orchestrator, Value};
use tempfile::TempDir;

/// How long anything asynchronous may take before a test gives up. Generous: a loaded
/// machine must not fail a test; a broken feature still fails it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The default state file, relative to the working directory.
pub const DEFAULT_STATE: &str = ".penin_omega/state.json";

/// The journal beside the default state.
#[allow(dead_code)]
pub const JOURNAL: &str = ".penin_omega/state.json.journal";

/// The audit ledger beside the default state.
#[allow(dead_code)]
pub const LEDGER: &str = ".penin_omega/state.json.ledger";

/// The start-up line of `penin run` under the default sync policy.
#[allow(dead_code)]
pub const SYNC_ALWAYS: &str = "🔒 Sync policy: always: every answered change is on disk before its answer (one sync for the lines waiting together)";

/// The state a fresh orchestrator saves (also `tests/fixtures/empty.expected.json`).
pub const EMPTY_STATE: &str = r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [],
    "maxlen": 1000
  }
}"#;

/// A temporary working directory for one test.
pub struct Env {
    dir: TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `dir/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The default state file.
    pub fn state(&self) -> PathBuf {
        self.path(DEFAULT_STATE)
    }

    /// `penin ARGS` in the directory, `PENIN_STATE` removed, stdin closed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_penin"));
        command.args(args);
        self.within(command)
    }

    /// `command` run in the directory, `PENIN_STATE` removed, stdin closed.
    fn within(&self, mut command: Command) -> Command {
        command
            .current_dir(self.dir.path())
            .env_remove("PENIN_STATE")
            .stdin(Stdio::null());
        command
    }

    /// Runs `penin ARGS` to the end with stdin closed.
    pub fn run(&self, args: &[&str]) -> Out {
        output(&mut self.command(args))
    }

    /// Runs `penin ARGS` to the end with stdin closed, in at most `kib` KiB of address space
    /// (`ulimit -v`): memory asked for beyond it is refused, as on a machine without it.
    pub fn run_within(&self, kib: u64, args: &[&str]) -> Out {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_penin"))
            .args(args);
        output(&mut self.within(command))
    }

    /// Extends the file at `rel` by a hole of `hole` bytes (zeros no disk block holds, as in
    /// a sparse file), then `tail`.
    pub fn extend_by_hole(&self, rel: &str, hole: u64, tail: &[u8]) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path(rel))
            .unwrap();
        let end = file.metadata().unwrap().len() + hole;
        file.set_len(end).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, tail, end).unwrap();
    }

    /// Runs `penin ARGS` to the end with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Out {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn penin");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_owned();
        // Written from a thread so a large input cannot deadlock against unread output.
        let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().expect("wait for penin");
        writer
            .join()
            .expect("stdin writer thread")
            .expect("write stdin");
        Out::from(output)
    }

    /// Starts `penin ARGS` with stdin, stdout and stderr piped, for a session kept open.
    pub fn spawn(&self, args: &[&str]) -> Session {
        Session::spawn(self.command(args))
    }

    /// Writes `bytes` to `dir/rel`, creating parent directories.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, bytes).expect("write a file");
        path
    }

    /// The bytes of `dir/rel`.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// The bytes of the default state file, as text.
    pub fn state_text(&self) -> String {
        String::from_utf8(self.read(DEFAULT_STATE)).expect("the state is UTF-8")
    }

    /// Every file under the directory, as relative paths (directories end with `/`).
    ///
    /// Lock files (`.NAME.lock`), which every writer creates beside its state and never
    /// removes, are left out; `lock_files` lists them.
    pub fn tree(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        collect(self.dir.path(), self.dir.path(), &mut names);
        names.retain(|name| !is_lock_file(name));
        names
    }

    /// The lock files in the directory.
    pub fn lock_files(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        collect(self.dir.path(), self.dir.path(), &mut names);
        names.retain(|name| is_lock_file(name));
        names
    }

    /// `penin stats --json` on the default state, parsed.
    /// The state at `rel` as penin loads it (its snapshot, then the changes its journal
    /// holds since), in the seed format.
    #[allow(dead_code)]
    pub fn loaded(&self, rel: &str) -> serde_json::Value {
        let loaded = penin_orchestrator::memory::load(self.path(rel), Some(1000))
            .unwrap_or_else(|e| panic!("{rel} does not load: {e}"));
        parse_state(&penin_codec::to_vec(loaded.state.document()))
    }

    pub fn stats_json(&self) -> serde_json::Value {
        let out = self.run(&["stats", "--json"]);
        assert_eq!(out.code, Some(0), "stats --json failed: {}", out.stderr);
        seed_figures(&serde_json::from_str(&out.stdout).expect("stats --json prints JSON"))
    }
}

/// The seed's four figures of a `stats --json` object (which has more), in their order.
pub fn seed_figures(stats: &serde_json::Value) -> serde_json::Value {
    let mut figures = serde_json::Map::new();
    for key in [
        "knowledge_base_size",
        "task_history_size",
        "score_history_size",
        "average_score",
    ] {
        let figure = stats
            .get(key)
            .unwrap_or_else(|| panic!("stats --json lacks {key}"));
        figures.insert(key.to_owned(), figure.clone());
    }
    serde_json::Value::Object(figures)
}

fn is_lock_file(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.starts_with('.')
        && std::path::Path::new(file)
            .extension()
            .is_some_and(|ext| ext == "lock")
}

fn collect(root: &Path, dir: &Path, names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("list a directory") {
        let path = entry.expect("a directory entry").path();
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            names.insert(format!("{rel}/"));
            collect(root, &path, names);
        } else {
            names.insert(rel);
        }
    }
}

/// Runs a command made by [`Env::command`] (perhaps with more settings) to the end.
pub fn output(command: &mut Command) -> Out {
    Out::from(command.output().expect("run penin"))
}

/// A finished process: exit code, stdout and stderr as text.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

impl Out {
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Asserts exit code 0, showing stderr otherwise.
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "penin failed; stderr:\n{}", self.stderr);
        self
    }
}

/// A running `penin` whose stdin is kept open. Stdout lines arrive through a channel;
/// stderr is collected to the end. The child is killed if the test fails before it ends.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Session {
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn penin");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one line (a newline is added).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write a line to penin");
    }

    /// The next stdout line, waiting up to the deadline.
    pub fn recv(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("an answer line within the deadline")
    }

    /// Sends a line and returns its answer.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.recv()
    }

    /// Closes stdin: the end of input.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits (up to the deadline) for the process to end; returns its status, the stdout
    /// lines not yet received, and the whole stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let status = wait_for(|| self.child.try_wait().expect("poll penin"))
            .expect("penin exits within the deadline");
        self.stdin.take();
        let rest = self.lines.iter().collect();
        let stderr = self
            .stderr
            .take()
            .expect("stderr not yet taken")
            .join()
            .expect("stderr reader thread");
        (status, rest, stderr)
    }
}

impl Session {
    /// Kills the process at once (SIGKILL on unix: no handler runs, no save completes) and
    /// reaps it. Returns its status and every stdout line not yet received: all that it
    /// answered before it died (what was in the pipe is still read after the kill).
    pub fn kill(self) -> (ExitStatus, Vec<String>) {
        let (status, rest, _) = self.kill_with_stderr();
        (status, rest)
    }

    /// [`Session::kill`], and the whole stderr too.
    pub fn kill_with_stderr(mut self) -> (ExitStatus, Vec<String>, String) {
        let _ = self.child.kill();
        let status = self.child.wait().expect("reap the killed penin");
        // The reader threads end at the end of the pipes, which the kill closed.
        let rest = self.lines.iter().collect();
        let stderr = self
            .stderr
            .take()
            .expect("stderr not yet taken")
            .join()
            .expect("stderr reader thread");
        (status, rest, stderr)
    }

    /// Takes stdin, for a writer of its own (a thread); [`Session::send`] no longer works.
    /// Dropping it is the end of input.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin is still open")
    }

    /// The next stdout line, or `None` if none came within `timeout` or stdout has ended.
    pub fn recv_within(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("poll penin").is_none()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `probe` every few milliseconds until it gives a value or the deadline passes.
pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if start.elapsed() > DEADLINE {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The repository's fixture `tests/fixtures/NAME`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The bytes of the repository's fixture `tests/fixtures/NAME`.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A state file's bytes parsed as JSON (for files without NaN or infinities).
pub fn parse_state(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("the state file is JSON")
}

/// JSON text with every whitespace outside strings removed: a compact one-line form.
pub fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Sends a signal to a process with `kill(1)` (the workspace forbids `unsafe`, so no libc).
#[cfg(unix)]
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A small xorshift generator: the same states from the same seed, with no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1), with all 53 bits of precision (so the text is long, as real
    /// embeddings are).
    #[allow(clippy::cast_precision_loss)]
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
    }
}

/// A state of `artifacts` random embeddings of 384 dimensions (about 8.4 kB each in the seed
/// format), each with its index as metadata.
pub fn big_state(rng: &mut Rng, artifacts: usize) -> Orchestrator {
    let mut o = Orchestrator::new();
    for i in 0..artifacts {
        let mut metadata = Map::new();
        metadata.insert("index", Value::from(i64::try_from(i).unwrap()));
        let vector: Vec<f64> = (0..384).map(|_| rng.unit()).collect();
        o.add_knowledge(
            format!("embedding_{i}"),
            NumericVectorArtifact::new(vector).with_metadata(metadata),
        );
    }
    o
}
