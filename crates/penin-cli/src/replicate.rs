//! `penin run --replicate`: a thread that owns the [`Remote`] and ships what became durable.
//!
//! The session never waits on the network. After each sync it only publishes its durable
//! point ([`Durable`]: the last change, the journal's header and durable length, the
//! ledger's); the thread wakes every interval, reads the files cut at the latest point
//! ([`Local::read_durable_with`], read again if a compaction moved them meanwhile) and pushes
//! one round. A [`Cache`] of what the remote holds keeps a round's reading to what changed:
//! an unchanged snapshot is neither read nor hashed again, and the journal and the ledger
//! are read past the length already shipped. A failing server makes it retry with a growing delay (one line on stderr when it
//! starts failing, one when it recovers) while the session goes on answering. Another writer
//! taking the prefix stops it for good: the session sees [`Replicator::fenced`] and stops.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use penin_replica::{Cache, Durable, Error, Local, Remote, Writer};

/// The longest delay between two attempts while the server fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How soon a round is tried again when the files moved while being read.
const MOVED_AGAIN: Duration = Duration::from_millis(20);

/// How long the last push at the session's end may take before `run` exits without it.
pub const FINAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the session and the thread share.
#[derive(Default)]
struct State {
    /// The latest durable point published.
    durable: Option<Durable>,
    /// The session ends: one last round, then the thread reports and stops.
    stop: bool,
    /// Another writer took the remote: replication stopped.
    fenced: Option<Error>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means the other side panicked while holding it; its data (plain
        // values, each written whole) is still sound.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How the last push went.
pub enum Last {
    /// The remote holds change `seq`.
    Shipped(u64),
    /// It failed: why.
    Failed(Error),
    /// It did not finish within [`FINAL_TIMEOUT`].
    TimedOut,
    /// Replication had stopped before (fenced).
    Stopped,
}

/// The replication thread, seen from the session.
pub struct Replicator {
    url: String,
    shared: Arc<Shared>,
    done: mpsc::Receiver<Last>,
}

impl Replicator {
    /// Starts replicating the state at `path` to `url`, every `interval`, from the point
    /// `durable`; with recipients in `keys`, every object goes up sealed to them (as with
    /// `backup push`). Fails only if the URL or the client's configuration is wrong.
    pub fn start(
        url: &str,
        keys: penin_formats::Keys,
        path: PathBuf,
        interval: Duration,
        durable: Durable,
    ) -> penin_replica::Result<Replicator> {
        let remote = Remote::from_url(url)?.with_keys(keys);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                durable: Some(durable),
                ..State::default()
            }),
            wake: Condvar::new(),
        });
        let (sender, done) = mpsc::channel();
        let thread = Thread {
            remote,
            writer: Writer::new(),
            path,
            interval,
            shared: Arc::clone(&shared),
            shipped: None,
            failing: false,
            cache: Cache::new(),
        };
        thread::Builder::new()
            .name("replicate".to_owned())
            .spawn(move || {
                let last = thread.run();
                let _ = sender.send(last);
            })
            .map_err(Error::Runtime)?;
        Ok(Replicator {
            url: url.to_owned(),
            shared,
            done,
        })
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Publishes a durable point: the thread ships up to it at its next round.
    pub fn publish(&self, durable: Durable) {
        self.shared.lock().durable = Some(durable);
    }

    /// Whether another writer took the remote (the error, taken once).
    pub fn fenced(&self) -> Option<Error> {
        self.shared.lock().fenced.take()
    }

    /// Publishes the session's last point, asks for one last round and waits for it at most
    /// [`FINAL_TIMEOUT`].
    pub fn finish(&self, durable: Durable) -> Last {
        {
            let mut state = self.shared.lock();
            state.durable = Some(durable);
            state.stop = true;
        }
        self.shared.wake.notify_all();
        self.done
            .recv_timeout(FINAL_TIMEOUT)
            .unwrap_or(Last::TimedOut)
    }
}

/// The thread's side.
struct Thread {
    remote: Remote,
    writer: Writer,
    path: PathBuf,
    interval: Duration,
    shared: Arc<Shared>,
    /// The last point the remote holds.
    shipped: Option<Durable>,
    /// Whether the last round failed (and that was said).
    failing: bool,
    /// What the remote holds of the files, so that a round reads only what changed.
    cache: Cache,
}

/// What one round did.
enum Round {
    /// The remote holds the point (now or already).
    Shipped,
    /// The files moved on while read: again soon.
    Moved,
    /// The server failed.
    Failed(Error),
    /// Another writer took the remote.
    Fenced(Error),
}

impl Thread {
    fn run(mut self) -> Last {
        let mut backoff = self.interval;
        let mut next = Instant::now();
        loop {
            let (durable, stop) = {
                let mut state = self.shared.lock();
                while !state.stop {
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    state = self
                        .shared
                        .wake
                        .wait_timeout(state, next - now)
                        .map_or_else(|e| e.into_inner().0, |(state, _)| state);
                }
                (state.durable, state.stop)
            };
            if stop {
                return self.last(durable);
            }
            let started = Instant::now();
            let Some(durable) = durable else {
                next = started + self.interval;
                continue;
            };
            match self.round(durable) {
                Round::Shipped => {
                    if self.failing {
                        self.failing = false;
                        say(&format!(
                            "☁️  Replication to {} recovered: the remote holds change {}",
                            self.remote.url(),
                            durable.seq
                        ));
                    }
                    backoff = self.interval;
                    next = started + self.interval;
                }
                Round::Moved => next = Instant::now() + MOVED_AGAIN,
                Round::Failed(error) => {
                    if !self.failing {
                        self.failing = true;
                        say(&format!(
                            "⚠️  Replication to {} is failing ({:#}): retrying with backoff; \
                             changes stay durable locally and are shipped once it answers",
                            self.remote.url(),
                            anyhow::Error::from(error)
                        ));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF).max(self.interval);
                    next = Instant::now() + backoff;
                }
                Round::Fenced(error) => {
                    say(&format!("⛔ Replication stopped: {error}"));
                    self.shared.lock().fenced = Some(error);
                    // The session stops at its next look; its last round reports nothing more.
                    return Last::Stopped;
                }
            }
        }
    }

    /// The last round, at the session's end (retried while the files settle).
    fn last(&mut self, durable: Option<Durable>) -> Last {
        let Some(durable) = durable else {
            return Last::Shipped(0);
        };
        for _ in 0..50 {
            match self.round(durable) {
                Round::Shipped => return Last::Shipped(durable.seq),
                Round::Moved => thread::sleep(MOVED_AGAIN),
                Round::Failed(error) | Round::Fenced(error) => return Last::Failed(error),
            }
        }
        Last::Failed(Error::Moved {
            path: self.path.clone(),
            why: "the files kept moving".to_owned(),
        })
    }

    fn round(&mut self, durable: Durable) -> Round {
        if self.shipped == Some(durable) {
            return Round::Shipped;
        }
        let local = match Local::read_durable_with(&self.path, &durable, &self.cache) {
            Ok(local) => local,
            Err(Error::Moved { .. }) => {
                self.cache = Cache::new();
                return Round::Moved;
            }
            // Nothing written yet: nothing to ship.
            Err(Error::NoState(_)) => {
                self.shipped = Some(durable);
                return Round::Shipped;
            }
            Err(error) => return Round::Failed(error),
        };
        match penin_replica::push_round(&self.remote, &mut self.writer, &local) {
            Ok(pushed) => {
                match pushed.manifest.as_ref().or(pushed.current.as_ref()) {
                    Some(manifest) => self.cache.shipped(&local, manifest),
                    None => self.cache = Cache::new(),
                }
                self.shipped = Some(durable);
                Round::Shipped
            }
            // The remote does not continue what the cache says was shipped: read it whole.
            Err(Error::Moved { .. }) => {
                self.cache = Cache::new();
                Round::Moved
            }
            Err(error @ Error::Fenced { .. }) => Round::Fenced(error),
            Err(error) => Round::Failed(error),
        }
    }
}

/// One line on stderr.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
