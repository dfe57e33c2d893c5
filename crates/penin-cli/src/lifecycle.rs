//! `penin run` and `penin demo`: the seed's lifecycle.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use penin_orchestrator::{
    Change, ErrorKind, Map, Memory, Number, NumericVectorArtifact, SearchIndex, Statistics, Value,
};
use penin_replica::Durable;
use penin_store::Lock;

use crate::args::{RunArgs, SyncPolicy};
use crate::globals::Globals;
use crate::progress;
use crate::protocol::{self, Request};
use crate::replicate::{self, Last, Replicator};

/// How often the loop looks at the signal flag while stdin is quiet.
const TICK: Duration = Duration::from_millis(50);

/// Loads the state at start-up as the seed does, printing its lines to `out`: snapshot,
/// then the changes its journal holds since.
///
/// A missing state is a first run. A state that cannot be loaded stops the start, unless
/// `fresh`: then its files are moved aside (never deleted) and the state starts empty.
///
/// `--format`, when given, is the format the snapshot is written in from then on.
pub fn start(ctx: &Globals, fresh: bool, out: &mut dyn Write) -> Result<Memory> {
    let path = ctx.path.as_path();
    // `run` keeps the state for as long as it runs, while another program may write the
    // file: its snapshot is read into memory of its own, never mapped (as every command that
    // writes reads it; see `commands::load`).
    let options = ctx.options().with_mapped_loads(false);
    let open = || Memory::open_with(penin_store::RealFs, path, &options);
    let _ = writeln!(out, "🚀 Starting PENIN-Ω Orchestrator...");
    remove_temporaries(path, out)?;
    let mut memory = match progress::slow("Loading", path, open) {
        Ok(mut memory) => {
            for notice in memory.take_notices() {
                let _ = writeln!(out, "⚠️  {notice}");
            }
            if memory.found() {
                let stats = memory.state().statistics();
                let _ = writeln!(out, "✅ State loaded from {}", path.display());
                counts(out, &stats);
            } else {
                let _ = writeln!(out, "ℹ️  No previous state found (first run)");
            }
            memory
        }
        Err(error) if fresh && snapshot_unreadable(error.kind()) => {
            let stamp = penin_history::time::Timestamp::now().checkpoint_id();
            let mut moved = Vec::new();
            for file in [
                path.to_owned(),
                penin_history::journal_path(path),
                penin_orchestrator::memory::next_journal_path(path),
            ] {
                if file.symlink_metadata().is_ok() {
                    let aside = penin_store::move_aside(&file, &format!("unreadable-{stamp}"))
                        .with_context(|| {
                            format!("cannot move the unreadable {} aside", file.display())
                        })?;
                    moved.push(aside.display().to_string());
                }
            }
            let _ = writeln!(
                out,
                "⚠️  Could not load {}: {:#}",
                path.display(),
                anyhow::Error::from(error)
            );
            let _ = writeln!(
                out,
                "   Moved it to {} and starting with an empty state",
                moved.join(" and ")
            );
            open().with_context(|| format!("cannot start afresh at {}", path.display()))?
        }
        Err(error) => {
            let advice = match error.kind() {
                ErrorKind::JournalDamaged | ErrorKind::LedgerBroken => {
                    "run `penin repair` to keep what is sound and set the damage aside"
                }
                ErrorKind::ForeignSnapshot => "see `penin recover` below",
                ErrorKind::NewerVersion => "use the newer penin that wrote it",
                kind if snapshot_unreadable(kind) => {
                    "fix it, or run with --fresh to move it aside and start empty"
                }
                _ => "fix the cause and start again",
            };
            return Err(anyhow::Error::from(error)).context(format!(
                "refusing to start: the state file {} exists but cannot be loaded; it is left as it is \
                 ({advice})",
                path.display()
            ));
        }
    };
    if let Some(format) = ctx.format {
        memory.set_format(format);
    }
    Ok(memory)
}

/// Whether a load failed because the snapshot itself cannot be read as a state: what
/// `--fresh` sets aside. (A damaged journal or ledger, or a replaced snapshot, has its own
/// repair; `--fresh` never moves a sound snapshot aside for them.)
fn snapshot_unreadable(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Empty
            | ErrorKind::Truncated
            | ErrorKind::InvalidUtf8
            | ErrorKind::InvalidJson
            | ErrorKind::WrongShape
            | ErrorKind::CompressionDamaged
    )
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

/// Removes the temporary files an interrupted save left beside the state: of its snapshot,
/// of a compaction's next journal and of a rebuilt journal or ledger. The caller holds the
/// state's lock, so no save of another process is under way.
pub fn remove_temporaries(path: &Path, out: &mut dyn Write) -> Result<()> {
    let mut removed = 0;
    for file in [
        path.to_owned(),
        penin_orchestrator::memory::next_journal_path(path),
        penin_history::journal_path(path),
        penin_history::ledger_path(path),
    ] {
        removed += penin_store::remove_stale_temporaries(&file).with_context(|| {
            format!("cannot clean up temporary files beside {}", path.display())
        })?;
    }
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

/// Compacts (unless the snapshot alone already holds the whole state) and prints the
/// seed's line: after it, `NAME` alone is the state, for the Python tool too.
pub fn save(memory: &mut Memory, out: &mut dyn Write) -> Result<()> {
    let path = memory.path().to_owned();
    // A snapshot in another format or envelope than the one asked for (encrypted or not, to
    // other recipients) is written again, changed or not.
    if !memory.is_compact() || memory.snapshot_layout() != Some(&memory.layout()) {
        progress::slow("Saving", &path, || memory.compact())
            .with_context(|| format!("cannot save the state to {}", path.display()))?;
    }
    let _ = writeln!(out, "✅ State saved to {}", path.display());
    Ok(())
}

/// A line read and parsed, or the error that answers it (with the id, when readable).
type Parsed = Result<protocol::Line, (Option<Value>, String)>;

/// What the stdin reader thread sends: a line (parsed there, on the second core, while the
/// main thread commits the lines before it), or the end of input. Blank lines are not sent.
enum Input {
    Line(Parsed),
    End,
    /// Reading stdin failed: treated as its end, and said.
    Failed(io::Error),
}

/// At most this many lines are answered in one group commit.
const GROUP_LINES: usize = 4096;

/// `penin run`.
pub fn run(ctx: &Globals, args: &RunArgs) -> Result<()> {
    let stderr = &mut io::stderr();
    let signalled = Arc::new(AtomicBool::new(false));
    {
        let signalled = Arc::clone(&signalled);
        // The handler only sets a flag; the loop saves at a safe point. A second signal
        // during that save sets it again and changes nothing.
        ctrlc::set_handler(move || signalled.store(true, Ordering::SeqCst))
            .context("cannot install the SIGINT/SIGTERM handler")?;
    }
    let mut memory = start(ctx, args.fresh, stderr)?;
    let policy = args.sync;
    let _ = writeln!(stderr, "🔒 Sync policy: {policy}: {}", policy.promise());
    if args.autosave_given() {
        let _ = writeln!(
            stderr,
            "ℹ️  --autosave is no longer needed and is ignored: every change is journaled before \
             it is answered"
        );
    }
    let checkpoint_every = args.checkpoint_every;
    if let Some(every) = checkpoint_every {
        let _ = writeln!(
            stderr,
            "📸 A checkpoint every {}",
            penin_history::time::format_duration(every)
        );
    }

    let replicator = start_replication(ctx, args, &memory, stderr)?;
    let mut fenced = None;

    // Bounded: a writer faster than the commits waits on the pipe instead of filling memory.
    let (sender, receiver) = mpsc::sync_channel(GROUP_LINES);
    thread::spawn(move || read_lines(&sender));

    let mut session = Session {
        memory: &mut memory,
        policy,
        last_sync: Instant::now(),
        stdout: io::stdout().lock(),
        failed: None,
        index: None,
    };
    let mut last_checkpoint = Instant::now();
    let reason = loop {
        if signalled.load(Ordering::SeqCst) {
            refuse_waiting(
                &mut session,
                &receiver,
                "not applied: penin is shutting down",
            );
            break "🛑 Received a termination signal (SIGINT or SIGTERM), saving state..."
                .to_owned();
        }
        if let Some(why) = session.failed.take() {
            break format!("⚠️  {why}: stopping, saving state...");
        }
        if let Some(error) = replicator.as_ref().and_then(Replicator::fenced) {
            // Changes answered from now on would never leave the machine.
            let why = "not applied: replication was fenced by another writer; penin is stopping";
            refuse_waiting(&mut session, &receiver, why);
            fenced = Some(error);
            break "⛔ Replication fenced: stopping, saving state...".to_owned();
        }
        session.tick(stderr);
        session.publish(replicator.as_ref());
        if let Some(every) = checkpoint_every
            && last_checkpoint.elapsed() >= every
        {
            last_checkpoint = Instant::now();
            session.checkpoint(stderr);
        }
        let first = match receiver.recv_timeout(TICK) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => {
                break "📭 End of input, saving state...".to_owned();
            }
            Ok(Input::Failed(e)) => {
                break format!(
                    "⚠️  Cannot read stdin ({e}): treating it as the end of input, saving state..."
                );
            }
            Err(RecvTimeoutError::Timeout) => continue,
        };
        // Group commit: every line already waiting is applied, written and synced once, then
        // all their answers go out.
        let (lines, end) = waiting(first, &receiver);
        session.answer(lines, stderr);
        session.compact_if_due(replicator.is_some(), stderr);
        session.publish(replicator.as_ref());
        match end {
            Some(Input::End) => break "📭 End of input, saving state...".to_owned(),
            Some(Input::Failed(e)) => {
                break format!(
                    "⚠️  Cannot read stdin ({e}): treating it as the end of input, saving state..."
                );
            }
            _ => {}
        }
    };
    let _ = writeln!(stderr, "{reason}");
    save(&mut memory, stderr)?;
    match replicator {
        Some(replicator) => finish_replication(&replicator, fenced, &mut memory, stderr),
        None => Ok(()),
    }
}

/// `--replicate`: the replication thread, started from the state as loaded.
fn start_replication(
    ctx: &Globals,
    args: &RunArgs,
    memory: &Memory,
    stderr: &mut dyn Write,
) -> Result<Option<Replicator>> {
    let Some(url) = &args.replicate else {
        return Ok(None);
    };
    let replicator = Replicator::start(
        url,
        ctx.keys.clone(),
        memory.path().to_owned(),
        args.replicate_interval,
        Durable::of(memory),
    )
    .with_context(|| format!("cannot replicate to {url}"))?;
    let _ = writeln!(
        stderr,
        "☁️  Replicating to {url}: what is durable is shipped every {:?}",
        args.replicate_interval
    );
    Ok(Some(replicator))
}

/// The end of a replicated session, once the state is saved: the fencing error (exit 75),
/// or one last push bounded by [`replicate::FINAL_TIMEOUT`].
fn finish_replication(
    replicator: &Replicator,
    fenced: Option<penin_replica::Error>,
    memory: &mut Memory,
    stderr: &mut dyn Write,
) -> Result<()> {
    let path = memory.path().to_owned();
    let stopped = |error: penin_replica::Error| {
        Err(anyhow::Error::from(error)).context(format!(
            "replication to {} stopped: every answered change is durable in {}, but changes \
             acknowledged from now on would never leave this machine",
            replicator.url(),
            path.display()
        ))
    };
    // Fenced while the session ended, before the loop saw it: the same exit.
    if let Some(error) = fenced.or_else(|| replicator.fenced()) {
        return stopped(error);
    }
    // The compaction's ledger line too, before the last round ships it.
    memory
        .sync()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    let url = replicator.url().to_owned();
    match replicator.finish(Durable::of(memory)) {
        Last::Shipped(seq) => {
            let _ = writeln!(stderr, "☁️  {url} holds change {seq}");
        }
        Last::Failed(e @ penin_replica::Error::Fenced { .. }) => return stopped(e),
        Last::Stopped => {
            if let Some(error) = replicator.fenced() {
                return stopped(error);
            }
        }
        Last::Failed(e) => {
            let _ = writeln!(
                stderr,
                "⚠️  The last push to {url} failed ({:#}): the changes since its last manifest \
                 are only local; `penin backup push` ships them",
                anyhow::Error::from(e)
            );
        }
        Last::TimedOut => {
            let _ = writeln!(
                stderr,
                "⚠️  The last push to {url} did not finish within {:?}: the changes since its \
                 last manifest may be only local; `penin backup push` ships them",
                replicate::FINAL_TIMEOUT
            );
        }
    }
    Ok(())
}

/// Lines already read but not applied get an answer saying `why`.
fn refuse_waiting(session: &mut Session, receiver: &mpsc::Receiver<Input>, why: &str) {
    while let Ok(Input::Line(line)) = receiver.try_recv() {
        let id = line.map_or_else(|(id, _)| id, |line| line.id);
        session.send(&protocol::error(id, why));
    }
}

/// `first` and every line already waiting after it (at most [`GROUP_LINES`]), and the end of
/// input if it came among them.
fn waiting(first: Parsed, receiver: &mpsc::Receiver<Input>) -> (Vec<Parsed>, Option<Input>) {
    let mut lines = vec![first];
    while lines.len() < GROUP_LINES {
        match receiver.try_recv() {
            Ok(Input::Line(line)) => lines.push(line),
            Ok(other) => return (lines, Some(other)),
            Err(_) => break,
        }
    }
    (lines, None)
}

fn read_lines(sender: &mpsc::SyncSender<Input>) {
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
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if sender.send(Input::Line(protocol::parse(&line))).is_err() {
                    return;
                }
            }
        }
    }
    let _ = sender.send(Input::End);
}

/// A `run` session: the memory, its sync policy and the answers' way out.
struct Session<'m> {
    memory: &'m mut Memory,
    policy: SyncPolicy,
    last_sync: Instant,
    stdout: io::StdoutLock<'static>,
    /// Why the session must stop (a sync failed: what is durable is no longer known).
    failed: Option<String>,
    /// The norms of the knowledge base's vectors, for `search`: built at the first search,
    /// then told of every artifact a commit adds or replaces.
    index: Option<SearchIndex>,
}

/// An answer, once the changes before it are durable.
enum Answer {
    Ready(Vec<u8>),
    /// The answer of a change of the pending group, with its id and fields.
    Change(Option<Value>, Map),
}

impl Session<'_> {
    fn send(&mut self, answer: &[u8]) {
        // A reader that went away does not stop the session: the state still saves.
        let _ = self.stdout.write_all(answer);
    }

    /// Compacts when the journal has grown enough. When `replicating`, the compaction's
    /// ledger line is synced at once, so that the new snapshot is shipped with it.
    fn compact_if_due(&mut self, replicating: bool, stderr: &mut dyn Write) {
        if !self.memory.should_compact() || self.failed.is_some() {
            return;
        }
        match self.memory.compact() {
            Err(e) => {
                let _ = writeln!(
                    stderr,
                    "⚠️  Compaction of {} failed: {:#}",
                    self.memory.path().display(),
                    anyhow::Error::from(e)
                );
            }
            Ok(()) => {
                tracing::info!(
                    "compacted {}: the snapshot holds change {}",
                    self.memory.path().display(),
                    self.memory.seq()
                );
                if replicating {
                    self.sync(stderr);
                }
            }
        }
    }

    /// Publishes the durable point to the replication thread, if any: when nothing is left
    /// unsynced (with `--sync never`, what is written: the operating system decides the rest).
    fn publish(&self, replicator: Option<&Replicator>) {
        if let Some(replicator) = replicator
            && self.failed.is_none()
            && (self.policy == SyncPolicy::Never || !self.memory.has_unsynced())
        {
            replicator.publish(Durable::of(self.memory));
        }
    }

    /// The periodic policy's fsync, at least every second while changes wait for one.
    fn tick(&mut self, stderr: &mut dyn Write) {
        if self.policy == SyncPolicy::Periodic
            && self.memory.has_unsynced()
            && self.last_sync.elapsed() >= PERIODIC
        {
            self.sync(stderr);
        }
    }

    /// `--checkpoint-every`: a checkpoint now, or a warning.
    fn checkpoint(&mut self, stderr: &mut dyn Write) {
        match self.memory.checkpoint(None) {
            Ok(meta) => {
                let _ = writeln!(stderr, "📸 Checkpoint {} written", meta.id);
            }
            Err(e) => {
                let _ = writeln!(
                    stderr,
                    "⚠️  Checkpoint failed: {:#}",
                    anyhow::Error::from(e)
                );
            }
        }
    }

    fn sync(&mut self, stderr: &mut dyn Write) -> bool {
        self.last_sync = Instant::now();
        match self.memory.sync() {
            Ok(()) => true,
            Err(e) => {
                let why = format!("syncing the journal failed: {:#}", anyhow::Error::from(e));
                let _ = writeln!(stderr, "⚠️  {why}");
                self.failed = Some(why);
                false
            }
        }
    }

    /// Answers a group of lines: changes are committed together (one write, one sync under
    /// the policy `always`), and every answer goes out in order once its change is durable.
    fn answer(&mut self, lines: Vec<Parsed>, stderr: &mut dyn Write) {
        let mut answers = Vec::with_capacity(lines.len());
        let mut pending = Vec::new();
        for line in lines {
            let line = match line {
                Ok(line) => line,
                Err((id, message)) => {
                    answers.push(Answer::Ready(protocol::error(id, &message)));
                    continue;
                }
            };
            match protocol::change(line.request) {
                Ok((change, fields)) => {
                    answers.push(Answer::Change(line.id, fields));
                    pending.push(change);
                }
                Err(request) => {
                    // Stats and save see every change before them.
                    self.commit(&mut pending, &mut answers, stderr);
                    let answer = self.query(&request, line.id);
                    answers.push(Answer::Ready(answer));
                }
            }
        }
        self.commit(&mut pending, &mut answers, stderr);
        for answer in answers {
            if let Answer::Ready(bytes) = answer {
                self.send(&bytes);
            }
        }
        let _ = self.stdout.flush();
    }

    /// Commits the pending changes and turns their answers ready.
    fn commit(
        &mut self,
        pending: &mut Vec<Change>,
        answers: &mut [Answer],
        stderr: &mut dyn Write,
    ) {
        if pending.is_empty() {
            return;
        }
        // The keys of the artifacts this commit adds or replaces, for the search index.
        let added: Vec<String> = if self.index.is_some() {
            pending
                .iter()
                .filter_map(|change| match change {
                    Change::AddKnowledge { key, .. } => Some(key.clone()),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let result = match &self.failed {
            Some(why) => Err(format!("not applied: {why}")),
            None => match self.memory.commit(std::mem::take(pending)) {
                Ok(_) => {
                    if let Some(index) = &mut self.index {
                        let knowledge_base = self.memory.state().knowledge_base();
                        for key in &added {
                            index.update(knowledge_base, key);
                        }
                    }
                    if self.policy == SyncPolicy::Always && !self.sync(stderr) {
                        Err(format!(
                            "not known to be durable: {}; penin is stopping, and the change \
                             may or may not be in the state when it restarts",
                            self.failed.clone().unwrap_or_default()
                        ))
                    } else {
                        Ok(())
                    }
                }
                Err(e) => Err(format!("not applied: {:#}", anyhow::Error::from(e))),
            },
        };
        pending.clear();
        for answer in answers.iter_mut() {
            if let Answer::Change(id, fields) = answer {
                let id = id.take();
                *answer = Answer::Ready(match &result {
                    Ok(()) => protocol::answer(true, id, std::mem::take(fields)),
                    Err(message) => protocol::error(id, message),
                });
            }
        }
    }

    /// Answers a request that changes nothing in the state: `stats`, `save`, `search`.
    fn query(&mut self, request: &Request, id: Option<Value>) -> Vec<u8> {
        match request {
            Request::Save => match self.memory.compact() {
                Ok(()) => {
                    let mut fields = Map::new();
                    let path = self.memory.path().display().to_string();
                    fields.insert("saved", Value::from(path));
                    protocol::answer(true, id, fields)
                }
                Err(e) => protocol::error(id, &format!("{:#}", anyhow::Error::from(e))),
            },
            Request::Stats => {
                let mut fields = Map::new();
                fields.insert(
                    "stats",
                    protocol::statistics_value(&self.memory.state().statistics()),
                );
                protocol::answer(true, id, fields)
            }
            Request::Search { vector, search } => {
                let knowledge_base = self.memory.state().knowledge_base();
                let index = self
                    .index
                    .get_or_insert_with(|| SearchIndex::new(knowledge_base));
                match index.search(knowledge_base, vector, search) {
                    Ok(hits) => {
                        let mut fields = Map::new();
                        crate::search::answer_fields(&hits, &mut fields);
                        protocol::answer(true, id, fields)
                    }
                    Err(e) => protocol::error(id, &e.to_string()),
                }
            }
            // Changes are committed by the caller.
            _ => protocol::error(id, "not a query"),
        }
    }
}

/// The periodic policy syncs at least this often.
const PERIODIC: Duration = Duration::from_secs(1);

/// `penin demo`: the seed's `python -m penin`.
pub fn demo(ctx: &Globals) -> Result<()> {
    let out = &mut io::stdout();
    let path = ctx.path.as_path();
    let mut memory = start(ctx, false, out)?;
    let mut changes = Vec::new();
    for (key, vector) in [
        ("embedding_1", vec![0.1, 0.2, 0.3]),
        ("embedding_2", vec![0.4, 0.5, 0.6]),
    ] {
        changes.push(Change::AddKnowledge {
            key: key.to_owned(),
            artifact: NumericVectorArtifact::new(vector),
        });
    }
    for (id, kind) in [(1, "evolution"), (2, "evaluation")] {
        let mut task = Map::new();
        task.insert("task_id", Value::from(id));
        task.insert("type", Value::from(kind));
        task.insert("status", Value::from("completed"));
        changes.push(Change::AddTask(Value::from(task)));
    }
    for score in [0.85, 0.87, 0.9] {
        changes.push(Change::AddScore(Number::Float(score)));
    }
    memory
        .commit(changes)
        .and_then(|_| memory.sync())
        .with_context(|| format!("cannot update {}", path.display()))?;
    let stats = memory.state().statistics();
    let _ = writeln!(out, "📊 Statistics:");
    counts(out, &stats);
    let _ = writeln!(out, "   Average score: {:.4}", stats.average_score);
    save(&mut memory, out)
}
