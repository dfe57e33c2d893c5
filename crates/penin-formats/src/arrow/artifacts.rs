//! The knowledge base of a snapshot's decoded batches: its artifacts built a chunk of rows at
//! a time by any threads that have time for it, and put into the knowledge base in order by
//! one.
//!
//! A load of a large snapshot runs two jobs side by side: the checksum of the whole file
//! (one thread: XXH3 is a serial hash) and the artifacts. How long the checksum takes
//! depends on where the file's bytes are (how the page cache holds them, or a decryption
//! still under way), so a fixed share of the rows for the hashing thread would leave one
//! core idle while the other works. Instead the rows are cut into chunks that threads take
//! in turn, from the first: the thread that builds the knowledge base ([`Artifacts::build`])
//! takes chunks, and so do its helpers ([`Artifacts::help`]): the hashing thread once it is
//! done, and a thread of their own where a core would be idle otherwise.
//! Chunks are built into vectors that are used again once their rows are in the knowledge
//! base: a load takes fresh memory for the knowledge base itself, not for rows on their way.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use arrow_array::Array;
use penin_codec::{KnowledgeBase, NumericVectorArtifact, ObjectReader};

use super::{Batch, corrupt};
use crate::error::{Error, Result};

/// The rows in a chunk: few enough that the chunks being built and waiting stay in the CPU's
/// caches (a built row takes 88 bytes), many enough that taking one is rare.
pub(super) const CHUNK_ROWS: usize = 2048;

/// An artifact and its key.
type Row = (String, NumericVectorArtifact);

/// The rows of a chunk before its first refused row, and the refusal if there is one: the
/// rows before it go into the knowledge base first, where a key seen twice among them is the
/// earlier error.
type Built = (Vec<Row>, Option<Error>);

/// The rows of a snapshot's batches, shared by the threads that build their artifacts.
pub(super) struct Artifacts {
    batches: Vec<Batch>,
    /// The row each batch starts at, counted across the batches.
    starts: Vec<usize>,
    rows: usize,
    chunks: usize,
    /// The first chunk no thread has taken.
    next: AtomicUsize,
    /// Set when the build ends, finished or not (a row refused, a panic): no more chunks
    /// are taken.
    stop: AtomicBool,
    shared: Mutex<Shared>,
    /// Told when a chunk is built.
    built: Condvar,
}

#[derive(Default)]
struct Shared {
    /// Chunks built by one thread and not yet put into the knowledge base, by index.
    built: Vec<Option<Chunk>>,
    /// Emptied chunk vectors, to build into again.
    spare: Vec<Vec<Row>>,
}

/// A built chunk: its rows as far as the first refused one, and that refusal.
enum Chunk {
    Rows(Built),
    /// The thread building it panicked (a bug of this module): the panic is passed on when
    /// that thread is joined.
    Abandoned,
}

impl Artifacts {
    /// The rows of `batches`, none built yet.
    pub(super) fn new(batches: Vec<Batch>) -> Artifacts {
        let mut rows = 0;
        let starts = batches
            .iter()
            .map(|batch| {
                let start = rows;
                rows += batch.keys.len();
                start
            })
            .collect();
        let chunks = rows.div_ceil(CHUNK_ROWS);
        Artifacts {
            batches,
            starts,
            rows,
            chunks,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            shared: Mutex::new(Shared {
                built: (0..chunks).map(|_| None).collect(),
                spare: Vec::new(),
            }),
            built: Condvar::new(),
        }
    }

    /// The knowledge base of every row ([`Artifacts::build`]), with up to `helpers` more
    /// threads of `scope` helping ([`Artifacts::help`]) when there is more than one chunk.
    /// A helper's panic (a bug of this module) is passed on.
    pub(super) fn build_helped<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        helpers: usize,
    ) -> Result<KnowledgeBase> {
        let helpers = if self.chunks > 1 { helpers } else { 0 };
        // A helper the system refuses is one fewer: the chunks are taken by those there are.
        let helpers: Vec<_> = (0..helpers)
            .filter_map(|_| {
                penin_codec::spawn_scoped_beside(std::thread::Builder::new(), scope, || {
                    self.help();
                })
                .ok()
            })
            .collect();
        let built = self.build();
        for helper in helpers {
            helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        built
    }

    /// The knowledge base of every row, in order: chunks taken and built in turn, and those
    /// other threads ([`Artifacts::help`]) built put in as they come. The first refused row
    /// in the file's order (a row that is not an artifact, a key seen before) is the error,
    /// whichever thread built it.
    pub(super) fn build(&self) -> Result<KnowledgeBase> {
        // However the build ends (an error, a panic), no more chunks are taken.
        let _stop = Stop(&self.stop);
        let mut kb = KnowledgeBase::with_capacity(self.rows);
        let mut objects = ObjectReader::new();
        // The next chunk to put into the knowledge base.
        let mut at = 0;
        while at < self.chunks {
            let ready = self.lock().built[at].take();
            let (rows, refused) = match ready {
                Some(Chunk::Rows(built)) => built,
                Some(Chunk::Abandoned) => {
                    return Err(corrupt("a thread building artifacts failed"));
                }
                None => match self.take() {
                    Some(chunk) if chunk == at => self.chunk(chunk, &mut objects),
                    Some(chunk) => {
                        // Taken ahead of `at`, which another thread holds: kept for later.
                        let built = self.chunk(chunk, &mut objects);
                        self.lock().built[chunk] = Some(Chunk::Rows(built));
                        continue;
                    }
                    None => {
                        self.wait_for(at);
                        continue;
                    }
                },
            };
            let spare = insert(&mut kb, rows)?;
            if let Some(refused) = refused {
                return Err(refused);
            }
            self.lock().spare.push(spare);
            at += 1;
        }
        Ok(kb)
    }

    /// Builds chunks until none is left to take: for a thread with time on its hands while
    /// another [builds](Artifacts::build) the knowledge base.
    pub(super) fn help(&self) {
        let mut objects = ObjectReader::new();
        while let Some(chunk) = self.take() {
            let mut guard = Abandon {
                artifacts: self,
                chunk,
                armed: true,
            };
            let rows = self.chunk(chunk, &mut objects);
            guard.armed = false;
            self.lock().built[chunk] = Some(Chunk::Rows(rows));
            self.built.notify_all();
        }
    }

    /// The next chunk no thread has taken, unless there is none or the build stopped.
    fn take(&self) -> Option<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let chunk = self.next.fetch_add(1, Ordering::Relaxed);
        (chunk < self.chunks).then_some(chunk)
    }

    /// Waits until chunk `at`, which another thread took, is built.
    fn wait_for(&self, at: usize) {
        let shared = self.lock();
        drop(
            self.built
                .wait_while(shared, |shared| shared.built[at].is_none())
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing a panicking holder could leave half done: a slot is set or not.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The artifacts of chunk `chunk`, built into a spare vector as far as the first refused
    /// row; `objects` reads their metadata and extras.
    fn chunk(&self, chunk: usize, objects: &mut ObjectReader) -> Built {
        let spare = self.lock().spare.pop();
        let mut out = spare.unwrap_or_else(|| Vec::with_capacity(CHUNK_ROWS));
        let start = chunk * CHUNK_ROWS;
        let end = (start + CHUNK_ROWS).min(self.rows);
        // From the last batch that starts at or before `start` (empty ones before it hold
        // no row of this chunk).
        let from_batch = self.starts.partition_point(|&first| first <= start) - 1;
        for (index, (batch, &first)) in self
            .batches
            .iter()
            .zip(&self.starts)
            .enumerate()
            .skip(from_batch)
        {
            if first >= end {
                break;
            }
            let (from, to) = (start.max(first), end.min(first + batch.keys.len()));
            for row in from..to {
                match batch.row(row - first, objects) {
                    Ok(built) => out.push(built),
                    Err(what) => {
                        let at = row - first;
                        let refused = corrupt(format!("record batch {index}, row {at}: {what}"));
                        return (out, Some(refused));
                    }
                }
            }
        }
        (out, None)
    }
}

/// Sets the flag that stops the helpers, when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Marks a helper's chunk abandoned if the helper unwinds while building it, so that
/// [`Artifacts::build`] does not wait for it forever.
struct Abandon<'a> {
    artifacts: &'a Artifacts,
    chunk: usize,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.artifacts.lock().built[self.chunk] = Some(Chunk::Abandoned);
            self.artifacts.built.notify_all();
        }
    }
}

/// Appends `rows` to `kb`, refusing a key it already holds; gives back their emptied vector.
fn insert(kb: &mut KnowledgeBase, mut rows: Vec<Row>) -> Result<Vec<Row>> {
    for (key, artifact) in rows.drain(..) {
        match kb.entry(key) {
            indexmap::map::Entry::Vacant(entry) => {
                entry.insert(artifact);
            }
            indexmap::map::Entry::Occupied(entry) => {
                return Err(corrupt(format!("the key {:?} appears twice", entry.key())));
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_abandoned_by_a_panicking_helper_ends_the_build_with_an_error() {
        let artifacts = super::super::tests::sample_artifacts(CHUNK_ROWS * 3);
        let (taken, told) = std::sync::mpsc::channel();
        let built = std::thread::scope(|scope| {
            let helper = scope.spawn(|| {
                let chunk = artifacts.take().unwrap();
                let _guard = Abandon {
                    artifacts: &artifacts,
                    chunk,
                    armed: true,
                };
                taken.send(()).unwrap();
                // Most likely while the build waits for this chunk, the others built.
                std::thread::sleep(std::time::Duration::from_millis(50));
                panic!("a bug while building a chunk (this test's own panic)");
            });
            told.recv().unwrap();
            let built = artifacts.build();
            assert!(helper.join().is_err());
            built
        });
        let error = built.unwrap_err().to_string();
        assert!(
            error.contains("a thread building artifacts failed"),
            "{error}"
        );
    }
}
