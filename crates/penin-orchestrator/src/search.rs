//! Exact nearest-neighbour search over a knowledge base: the `k` artifacts whose vectors are
//! nearest to a query vector, under cosine similarity, the dot product or the Euclidean
//! distance, optionally among the artifacts whose metadata match a filter.
//!
//! A [`SearchIndex`] keeps the norm of every artifact's vector, position by position in the
//! knowledge base, so that a cosine search costs one dot product per artifact. It is built
//! once from a knowledge base ([`SearchIndex::new`]) and told of each artifact added or
//! replaced afterwards ([`SearchIndex::update`]); [`SearchIndex::search`] then reads the
//! knowledge base and the norms, never writing either.
//!
//! # Semantics
//!
//! * Every artifact is scored (exact search, no approximation), on every core for a large
//!   knowledge base ([`Search::parallel_min`]); the answer does not depend on the split.
//! * `cosine` (the default) and `dot` rank the largest score first; `l2` reports the
//!   Euclidean distance and ranks the smallest first.
//! * Equal scores are ranked by key, in byte order: the answer is deterministic.
//! * Scores are the same bit for bit on every x86-64 CPU: the scan runs in the widest vector
//!   instructions the CPU has (AVX-512, AVX2, or SSE2; chosen at run time with `pulp`), but
//!   every copy adds the same products in the same order (eight lanes, folded in one fixed
//!   order, no fused multiply-add). They may differ from a plain left-to-right sum, as
//!   numpy's do, in the last bits.
//! * The filter keeps the artifacts whose metadata has every filter key with an equal value
//!   (JSON equality; numbers compare by value, as Python's `==` does: `1` matches `1.0`).
//!   The counts below are of the artifacts the filter keeps.
//! * An artifact whose vector has another length than the query is skipped and counted
//!   under `dimension`.
//! * Under `cosine`, an artifact whose vector has norm 0, or every artifact when the query
//!   has norm 0, is skipped and counted under `zero`: cosine similarity is undefined there.
//! * A score that is NaN (the vector or the query holds a NaN, or infinities cancel) is never
//!   ranked: the artifact is skipped and counted under `nan`. Infinite scores are ranked.
//!
//! # Example
//!
//! ```
//! use penin_orchestrator::search::{Metric, Search, SearchIndex};
//! use penin_orchestrator::{NumericVectorArtifact, Orchestrator};
//!
//! let mut memory = Orchestrator::new();
//! memory.add_knowledge("east", NumericVectorArtifact::new(vec![1.0, 0.0]));
//! memory.add_knowledge("north", NumericVectorArtifact::new(vec![0.0, 1.0]));
//! memory.add_knowledge("flat", NumericVectorArtifact::new(vec![0.0]));
//! let mut index = SearchIndex::new(memory.knowledge_base());
//!
//! let hits = index.search(memory.knowledge_base(), &[0.9, 0.1], &Search::new(1))?;
//! assert_eq!(hits.results[0].key, "east");
//! assert_eq!(hits.skipped.dimension, 1); // "flat" has one dimension, not two
//!
//! // Replaced in place: the index is told, and the next search sees the new vector.
//! memory.add_knowledge("east", NumericVectorArtifact::new(vec![-1.0, 0.0]));
//! index.update(memory.knowledge_base(), "east");
//! let hits = index.search(memory.knowledge_base(), &[0.9, 0.1], &Search::new(1).metric(Metric::L2))?;
//! assert_eq!(hits.results[0].key, "north");
//! # Ok::<(), penin_orchestrator::search::QueryError>(())
//! ```

// The scan and its kernels are inlined into the copy `pulp` compiles for each instruction set
// (AVX-512, AVX2 + FMA, plain x86-64): a call out of that copy would run the plain one.
#![allow(clippy::inline_always)]

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use penin_artifacts::{KnowledgeBase, Map, Number, NumericVectorArtifact, Value};
use pulp::{Arch, Simd, WithSimd};

/// How a vector is compared with the query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Metric {
    /// Cosine similarity, the dot product over the product of the norms: largest first.
    #[default]
    Cosine,
    /// The dot product: largest first.
    Dot,
    /// The Euclidean distance: smallest first.
    L2,
}

impl Metric {
    /// The metric's name: `cosine`, `dot` or `l2`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            "l2" => Ok(Metric::L2),
            other => Err(QueryError::Metric(other.to_owned())),
        }
    }
}

/// A query that cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// `k` is 0.
    #[error("k must be at least 1")]
    ZeroK,
    /// The query vector has no element.
    #[error("the query vector is empty")]
    EmptyVector,
    /// An unknown metric name.
    #[error("unknown metric {0:?}: expected cosine, dot or l2")]
    Metric(String),
}

/// What to search for, besides the query vector: how many results, the metric, the filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    k: usize,
    metric: Metric,
    filter: Vec<(String, Value)>,
    parallel_min: usize,
    threads: usize,
}

/// A parallel search cuts the knowledge base into this many pieces per thread.
const PIECES_PER_THREAD: usize = 8;

/// Below this many floats to read (artifacts times dimension), one thread searches alone:
/// starting a second one costs more than it saves.
pub const PARALLEL_MIN: usize = 1 << 18;

impl Search {
    /// The `k` best artifacts under cosine similarity, with no filter.
    pub fn new(k: usize) -> Self {
        Search {
            k,
            metric: Metric::Cosine,
            filter: Vec::new(),
            parallel_min: PARALLEL_MIN,
            threads: available_parallelism(),
        }
    }

    /// Under `metric`.
    #[must_use]
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Only among the artifacts whose metadata has `key` equal to `value` (repeatable: every
    /// condition must hold).
    #[must_use]
    pub fn filter(mut self, key: impl Into<String>, value: Value) -> Self {
        self.filter.push((key.into(), value));
        self
    }

    /// Splits the work between threads only when it reads at least `floats` floats
    /// (default [`PARALLEL_MIN`]); 0 always splits.
    #[must_use]
    pub fn parallel_min(mut self, floats: usize) -> Self {
        self.parallel_min = floats;
        self
    }

    /// Uses at most `threads` threads (default: the available parallelism; 0 counts as 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The number of results asked for.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The metric.
    pub fn metric_used(&self) -> Metric {
        self.metric
    }
}

/// The cores this process may use, asked once: the answer reads files under `/proc` and
/// `/sys` on Linux, which would cost more than a small search.
fn available_parallelism() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// One result: an artifact and its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit<'a> {
    /// The artifact's key.
    pub key: &'a str,
    /// Its position in the knowledge base.
    pub position: usize,
    /// The artifact.
    pub artifact: &'a NumericVectorArtifact,
    /// Its score: the cosine similarity, the dot product or the Euclidean distance.
    pub score: f64,
}

/// How many artifacts the filter kept but the search could not score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Vectors of another length than the query's.
    pub dimension: usize,
    /// Scores that are NaN.
    pub nan: usize,
    /// Under cosine, vectors of norm 0 (every vector, when the query's norm is 0).
    pub zero: usize,
}

impl Skipped {
    fn add(&mut self, other: Skipped) {
        self.dimension += other.dimension;
        self.nan += other.nan;
        self.zero += other.zero;
    }
}

/// The answer to a search: at most `k` results, best first, and what was skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct Hits<'a> {
    /// Best first.
    pub results: Vec<Hit<'a>>,
    /// What was skipped.
    pub skipped: Skipped,
}

/// The norms of a knowledge base's vectors, position by position: what makes a cosine
/// search one dot product per artifact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchIndex {
    norms: Vec<f64>,
}

impl SearchIndex {
    /// The index of `knowledge_base`: every vector's norm.
    pub fn new(knowledge_base: &KnowledgeBase) -> Self {
        SearchIndex {
            norms: knowledge_base
                .values()
                .map(|artifact| norm(&artifact.vector))
                .collect(),
        }
    }

    /// The number of artifacts indexed.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// Whether no artifact is indexed.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Takes in the artifact `key` of `knowledge_base`, just added or replaced. A knowledge
    /// base only grows at its end and replaces in place, so this costs the norms of the
    /// artifacts appended since the index last looked (all of a commit's additions at the
    /// first of its keys) and one for a replacement; a knowledge base shorter than the index
    /// (another one) is indexed again.
    pub fn update(&mut self, knowledge_base: &KnowledgeBase, key: &str) {
        let Some((position, _, artifact)) = knowledge_base.get_full(key) else {
            return;
        };
        let known = self.norms.len();
        if knowledge_base.len() < known {
            *self = SearchIndex::new(knowledge_base);
            return;
        }
        if let Some(appended) = knowledge_base.get_range(known..) {
            self.norms
                .extend(appended.values().map(|artifact| norm(&artifact.vector)));
        }
        if position < known {
            self.norms[position] = norm(&artifact.vector);
        }
    }

    /// The `search.k()` artifacts of `knowledge_base` nearest to `query`, best first (see
    /// the [module documentation](self) for the rules).
    ///
    /// `knowledge_base` must be the one this index was built from and told of; an index of
    /// another length is not used (the norms are computed afresh for this search).
    pub fn search<'a>(
        &self,
        knowledge_base: &'a KnowledgeBase,
        query: &[f64],
        search: &Search,
    ) -> Result<Hits<'a>, QueryError> {
        if search.k == 0 {
            return Err(QueryError::ZeroK);
        }
        if query.is_empty() {
            return Err(QueryError::EmptyVector);
        }
        let fresh;
        let norms = if self.norms.len() == knowledge_base.len() {
            &self.norms
        } else {
            fresh = SearchIndex::new(knowledge_base);
            &fresh.norms
        };
        let n = knowledge_base.len();
        let threads = search.threads.max(1).min(n.max(1));
        let work = n.saturating_mul(query.len());
        let scan = Scan {
            knowledge_base,
            norms,
            query,
            query_norm: norm(query),
            search,
        };
        let (heap, skipped) = if threads > 1 && work >= search.parallel_min {
            // Many more pieces than threads, taken in turn: a thread slowed down by another
            // process on its core takes fewer of them instead of holding the answer back.
            let per = n.div_ceil(threads * PIECES_PER_THREAD).max(1);
            let next = AtomicUsize::new(0);
            let worker = || {
                // `k` comes from the caller (a request's `k` may be any count): no more
                // room than the knowledge base can fill.
                let mut heap = BinaryHeap::with_capacity(search.k.min(n) + 1);
                let mut skipped = Skipped::default();
                loop {
                    let start = next
                        .fetch_add(1, AtomicOrdering::Relaxed)
                        .saturating_mul(per);
                    if start >= n {
                        return (heap, skipped);
                    }
                    scan.run(start, (start + per).min(n), &mut heap, &mut skipped);
                }
            };
            std::thread::scope(|scope| {
                let worker = &worker;
                // A thread the system refuses is one fewer: the others take its pieces.
                let others: Vec<_> = (1..threads)
                    .filter_map(|_| {
                        penin_codec::spawn_scoped_beside(std::thread::Builder::new(), scope, worker)
                            .ok()
                    })
                    .collect();
                // One worker on this thread, the others beside it.
                let (mut heap, mut skipped) = worker();
                for other in others {
                    let (other, counts) = match other.join() {
                        Ok(part) => part,
                        Err(panic) => std::panic::resume_unwind(panic),
                    };
                    skipped.add(counts);
                    for candidate in other {
                        offer(&mut heap, search.k, candidate);
                    }
                }
                (heap, skipped)
            })
        } else {
            let mut heap = BinaryHeap::with_capacity(search.k.min(n) + 1);
            let mut skipped = Skipped::default();
            scan.run(0, n, &mut heap, &mut skipped);
            (heap, skipped)
        };
        let results = heap
            .into_sorted_vec()
            .into_iter()
            .filter_map(|candidate| {
                let (key, artifact) = knowledge_base.get_index(candidate.position)?;
                Some(Hit {
                    key: key.as_str(),
                    position: candidate.position,
                    artifact,
                    score: if search.metric == Metric::L2 {
                        -candidate.rank
                    } else {
                        candidate.rank
                    },
                })
            })
            .collect();
        Ok(Hits { results, skipped })
    }
}

/// One search over a range of positions.
struct Scan<'a> {
    knowledge_base: &'a KnowledgeBase,
    norms: &'a [f64],
    query: &'a [f64],
    query_norm: f64,
    search: &'a Search,
}

impl<'a> Scan<'a> {
    /// Offers the positions `start..end` to `heap` (the best `k` so far) and counts what
    /// is skipped among them, in the widest vector instructions this CPU has (chosen at run
    /// time: the loop below is compiled once per instruction set).
    fn run(
        &self,
        start: usize,
        end: usize,
        heap: &mut BinaryHeap<Candidate<'a>>,
        skipped: &mut Skipped,
    ) {
        Arch::new().dispatch(Piece {
            scan: self,
            start,
            end,
            heap,
            skipped,
        });
    }

    /// What [`Scan::run`] does, inlined into each instruction set's copy.
    #[inline(always)]
    fn scan<S: Simd>(
        &self,
        simd: S,
        start: usize,
        end: usize,
        heap: &mut BinaryHeap<Candidate<'a>>,
        skipped: &mut Skipped,
    ) {
        let Some(slice) = self.knowledge_base.get_range(start..end) else {
            return;
        };
        let metric = self.search.metric;
        let filter = &self.search.filter;
        let query = self.query;
        let prefetch = Prefetch::new();
        for (offset, (key, artifact)) in slice.iter().enumerate() {
            let position = start + offset;
            if let Some((_, ahead)) = slice.get_index(offset + PREFETCH_AHEAD) {
                prefetch.vector(&ahead.vector);
            }
            if !filter.is_empty() && !matches(&artifact.metadata, filter) {
                continue;
            }
            let vector: &[f64] = &artifact.vector;
            if vector.len() != query.len() {
                skipped.dimension += 1;
                continue;
            }
            let rank = match metric {
                Metric::Cosine => {
                    let norm = self.norms.get(position).copied().unwrap_or(f64::NAN);
                    if norm == 0.0 || self.query_norm == 0.0 {
                        skipped.zero += 1;
                        continue;
                    }
                    lanes(simd, vector, query, Kernel::Dot) / (norm * self.query_norm)
                }
                Metric::Dot => lanes(simd, vector, query, Kernel::Dot),
                // Ranked by the negated distance, so that larger is better for every metric.
                Metric::L2 => -lanes(simd, vector, query, Kernel::SquaredDistance).sqrt(),
            };
            if rank.is_nan() {
                skipped.nan += 1;
                continue;
            }
            offer(
                heap,
                self.search.k,
                Candidate {
                    rank,
                    key,
                    position,
                },
            );
        }
    }
}

/// How many artifacts ahead of the one scored the scan asks for a vector's memory (1, 2
/// and 4 measured alike; 8 slower).
const PREFETCH_AHEAD: usize = 1;

/// Asks the CPU to start loading a vector's memory into its caches before it is read: the
/// scan of a large base waits on memory, and one core's own requests keep too few loads in
/// flight to use the memory's bandwidth (a prefetch has no effect on what is computed).
#[derive(Clone, Copy)]
struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetch {
    #[inline(always)]
    fn new() -> Self {
        Prefetch {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::core_arch::x86::Sse::try_new(),
        }
    }

    /// Every cache line of `vector`.
    #[inline(always)]
    fn vector(self, vector: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(sse) = self.sse {
            for line in vector.chunks(LANES) {
                sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = vector;
    }
}

/// One [`Scan::run`], handed to the instruction set chosen at run time.
struct Piece<'s, 'a, 'h> {
    scan: &'s Scan<'a>,
    start: usize,
    end: usize,
    heap: &'h mut BinaryHeap<Candidate<'a>>,
    skipped: &'h mut Skipped,
}

impl WithSimd for Piece<'_, '_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> Self::Output {
        self.scan
            .scan(simd, self.start, self.end, self.heap, self.skipped);
    }
}

/// Keeps `candidate` if it is among the best `k` so far. O(log k).
fn offer<'a>(heap: &mut BinaryHeap<Candidate<'a>>, k: usize, candidate: Candidate<'a>) {
    if heap.len() < k {
        heap.push(candidate);
    } else if let Some(mut worst) = heap.peek_mut()
        && candidate < *worst
    {
        *worst = candidate;
    }
}

/// A scored artifact. Ordered worst last: a max-heap of candidates has the worst kept one on
/// top, and a sorted list has the best first.
#[derive(Clone, Copy, Debug, Default)]
struct Candidate<'a> {
    /// Larger is better; never NaN.
    rank: f64,
    key: &'a str,
    position: usize,
}

impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .partial_cmp(&self.rank)
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.key.cmp(other.key))
    }
}

impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate<'_> {}

/// Whether `metadata` has every key of `filter` with an equal value.
fn matches(metadata: &Map, filter: &[(String, Value)]) -> bool {
    filter
        .iter()
        .all(|(key, value)| metadata.get(key).is_some_and(|found| equal(found, value)))
}

/// JSON equality, numbers by value (`1 == 1.0`, as in Python).
fn equal(found: &Value, wanted: &Value) -> bool {
    match (found, wanted) {
        (Value::Number(left), Value::Number(right)) => match (left, right) {
            (Number::Float(float), other) | (other, Number::Float(float)) => {
                other.to_f64_exact() == Some(*float)
            }
            _ => left == right,
        },
        _ => found == wanted,
    }
}

/// Independent partial sums per lane (a single accumulator would chain every addition on the
/// one before). Lane `i` sums the products at positions `i`, `i + LANES`, `i + 2 * LANES`…,
/// and the lanes are folded in one fixed order, whatever instructions compute them: eight
/// scalars, two AVX2 registers of four, or one AVX-512 register of eight give the same sum, bit
/// for bit (a multiplication, then an addition, each rounded: no fused multiply-add).
const LANES: usize = 8;

/// The dot product of two vectors of the same length (the shorter one's, if not).
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    Arch::new().dispatch(Pair {
        a,
        b,
        kernel: Kernel::Dot,
    })
}

/// The Euclidean distance between two vectors of the same length (the shorter one's, if not).
pub fn distance(a: &[f64], b: &[f64]) -> f64 {
    Arch::new()
        .dispatch(Pair {
            a,
            b,
            kernel: Kernel::SquaredDistance,
        })
        .sqrt()
}

/// The Euclidean norm of a vector.
pub fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

/// What [`lanes`] sums.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    /// `a[i] * b[i]`.
    Dot,
    /// `(a[i] - b[i])²`.
    SquaredDistance,
}

/// One [`lanes`] call, handed to the instruction set chosen at run time.
struct Pair<'v> {
    a: &'v [f64],
    b: &'v [f64],
    kernel: Kernel,
}

impl WithSimd for Pair<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        lanes(simd, self.a, self.b, self.kernel)
    }
}

/// The sum of `kernel` over the first `min(a.len(), b.len())` positions, in [`LANES`] lanes
/// of `simd`'s registers (`LANES / S::F64_LANES` of them: one is eight lanes under AVX-512).
#[inline(always)]
fn lanes<S: Simd>(simd: S, a: &[f64], b: &[f64], kernel: Kernel) -> f64 {
    /// The most registers a chunk of `LANES` floats takes (scalar code: one float each).
    const MOST: usize = LANES;
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let registers = (LANES / S::F64_LANES).clamp(1, MOST);
    let zero = simd.splat_f64s(0.0);
    let mut sums = [zero; MOST];
    let (xs, ys) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(x, y)| term(kernel, *x, *y))
        .sum();
    if LANES.is_multiple_of(S::F64_LANES) {
        for (x, y) in xs.zip(ys) {
            let (x, _) = S::as_simd_f64s(x);
            let (y, _) = S::as_simd_f64s(y);
            for ((sum, x), y) in sums[..registers].iter_mut().zip(x).zip(y) {
                let product = match kernel {
                    Kernel::Dot => simd.mul_f64s(*x, *y),
                    Kernel::SquaredDistance => {
                        let difference = simd.sub_f64s(*x, *y);
                        simd.mul_f64s(difference, difference)
                    }
                };
                *sum = simd.add_f64s(*sum, product);
            }
        }
    }
    let lanes: &[f64] = pulp::bytemuck::cast_slice(&sums[..registers]);
    let mut folded = [0.0; LANES];
    if lanes.len() == LANES {
        folded.copy_from_slice(lanes);
    } else {
        // Registers wider than LANES floats (none on x86): the same sums, one float at a time.
        for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            for lane in 0..LANES {
                folded[lane] += term(kernel, x[lane], y[lane]);
            }
        }
    }
    fold(folded) + tail
}

/// One position's term of `kernel`.
#[inline(always)]
fn term(kernel: Kernel, x: f64, y: f64) -> f64 {
    match kernel {
        Kernel::Dot => x * y,
        Kernel::SquaredDistance => (x - y) * (x - y),
    }
}

#[inline(always)]
fn fold(sums: [f64; LANES]) -> f64 {
    ((sums[0] + sums[4]) + (sums[1] + sums[5])) + ((sums[2] + sums[6]) + (sums[3] + sums[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kb(rows: &[(&str, &[f64])]) -> KnowledgeBase {
        let mut kb = KnowledgeBase::new();
        for (key, vector) in rows {
            kb.insert(
                (*key).to_owned(),
                NumericVectorArtifact::new(vector.to_vec()),
            );
        }
        kb
    }

    fn keys(hits: &Hits<'_>) -> Vec<String> {
        hits.results.iter().map(|h| h.key.to_owned()).collect()
    }

    fn scores(hits: &Hits<'_>) -> Vec<f64> {
        hits.results.iter().map(|h| h.score).collect()
    }

    fn run(kb: &KnowledgeBase, query: &[f64], search: &Search) -> Hits<'static> {
        // Leaked so that the hits outlive the helper: tests only.
        let kb: &'static KnowledgeBase = Box::leak(Box::new(kb.clone()));
        SearchIndex::new(kb).search(kb, query, search).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn kernels_match_the_plain_loops() {
        for n in [0, 1, 7, 8, 9, 16, 383, 384, 385] {
            let a: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.37 - 3.0).collect();
            let b: Vec<f64> = (0..n).map(|i| 1.0 / (f64::from(i) + 1.5)).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let plain_distance: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt();
            assert!(close(dot(&a, &b), plain), "dot, n = {n}");
            assert!(close(distance(&a, &b), plain_distance), "distance, n = {n}");
            assert!(close(norm(&a), a.iter().map(|x| x * x).sum::<f64>().sqrt()));
        }
    }

    /// The sums of [`lanes`] written out one float at a time, as the documentation of
    /// [`LANES`] says: lane `i` takes positions `i`, `i + 8`…, then the fixed fold, then the
    /// tail.
    fn eight_lanes(a: &[f64], b: &[f64], kernel: Kernel) -> f64 {
        let n = a.len().min(b.len());
        let whole = n - n % LANES;
        let mut sums = [0.0; LANES];
        for i in 0..whole {
            sums[i % LANES] += term(kernel, a[i], b[i]);
        }
        let tail: f64 = (whole..n).map(|i| term(kernel, a[i], b[i])).sum();
        fold(sums) + tail
    }

    #[test]
    fn every_instruction_set_gives_the_same_sums_bit_for_bit() {
        let mut rng = penin_testkit::Xorshift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = move || {
            let seed = rng.next_u64();
            // Mantissas of every kind and exponents over 2^±8: sums whose rounding depends on
            // the order of additions and on a fused multiply-add.
            let high = u32::try_from(seed >> 32).expect("32 bits");
            let unit = f64::from(high) / 4_294_967_296.0 - 0.5;
            unit * f64::from(1_u32 << ((seed >> 3) % 16)) / 256.0
        };
        let mut sets = vec!["scalar"];
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V3::try_new().is_some() {
                sets.push("AVX2");
            }
            if pulp::x86::V4::try_new().is_some() {
                sets.push("AVX-512");
            }
        }
        if sets.len() == 1 {
            penin_testkit::skip(
                "every_instruction_set_gives_the_same_sums_bit_for_bit",
                "no AVX2 or AVX-512 here: only the scalar lanes were compared",
            );
        }
        for n in [0, 1, 5, 8, 13, 64, 383, 384, 385, 1000] {
            let a: Vec<f64> = (0..n).map(|_| next()).collect();
            let b: Vec<f64> = (0..n + 3).map(|_| next()).collect();
            for kernel in [Kernel::Dot, Kernel::SquaredDistance] {
                let want = eight_lanes(&a, &b, kernel).to_bits();
                let mut got = vec![("scalar", lanes(pulp::Scalar::new(), &a, &b, kernel))];
                #[cfg(target_arch = "x86_64")]
                {
                    if let Some(simd) = pulp::x86::V3::try_new() {
                        got.push(("AVX2", lanes(simd, &a, &b, kernel)));
                    }
                    if let Some(simd) = pulp::x86::V4::try_new() {
                        got.push(("AVX-512", lanes(simd, &a, &b, kernel)));
                    }
                }
                got.push((
                    "dispatched",
                    Arch::new().dispatch(Pair {
                        a: &a,
                        b: &b,
                        kernel,
                    }),
                ));
                for (set, sum) in got {
                    assert_eq!(sum.to_bits(), want, "{set}, n = {n}, {kernel:?}");
                }
            }
        }
    }

    #[test]
    fn each_metric_ranks_its_way() {
        let kb = kb(&[
            ("a", &[1.0, 0.0]),
            ("b", &[10.0, 10.0]),
            ("c", &[0.0, 2.0]),
            ("d", &[-1.0, -1.0]),
        ]);
        let q = [1.0, 0.5];
        let cosine = run(&kb, &q, &Search::new(4));
        assert_eq!(keys(&cosine), ["b", "a", "c", "d"]);
        let expected = [
            15.0 / (200f64.sqrt() * 1.25f64.sqrt()),
            1.0 / 1.25f64.sqrt(),
            1.0 / (2.0 * 1.25f64.sqrt()),
            -1.5 / (2f64.sqrt() * 1.25f64.sqrt()),
        ];
        for (got, want) in scores(&cosine).iter().zip(expected) {
            assert!(close(*got, want), "{got} != {want}");
        }
        let dot = run(&kb, &q, &Search::new(4).metric(Metric::Dot));
        assert_eq!(keys(&dot), ["b", "a", "c", "d"]);
        assert_eq!(scores(&dot), [15.0, 1.0, 1.0, -1.5]);
        let l2 = run(&kb, &q, &Search::new(2).metric(Metric::L2));
        assert_eq!(keys(&l2), ["a", "c"]);
        assert!(close(l2.results[0].score, 0.5));
        assert!(close(l2.results[1].score, (1.0f64 + 2.25).sqrt()));
        assert_eq!(dot.skipped, Skipped::default());
    }

    #[test]
    fn ties_go_by_key_order() {
        // Inserted out of key order; the same score for all but one.
        let kb = kb(&[
            ("m", &[1.0, 0.0]),
            ("b", &[2.0, 0.0]),
            ("z", &[3.0, 0.0]),
            ("a", &[0.5, 0.0]),
            ("x", &[0.0, 1.0]),
        ]);
        let hits = run(&kb, &[1.0, 0.0], &Search::new(3));
        assert_eq!(scores(&hits), [1.0, 1.0, 1.0]);
        assert_eq!(keys(&hits), ["a", "b", "m"]);
        let all = run(&kb, &[1.0, 0.0], &Search::new(10));
        assert_eq!(keys(&all), ["a", "b", "m", "z", "x"]);
        // Under l2, equal distances too.
        let kb2 = kb_from_tie();
        let hits = run(&kb2, &[0.0, 0.0], &Search::new(2).metric(Metric::L2));
        assert_eq!(keys(&hits), ["p", "q"]);
    }

    fn kb_from_tie() -> KnowledgeBase {
        kb(&[("r", &[0.0, 1.0]), ("q", &[1.0, 0.0]), ("p", &[0.0, -1.0])])
    }

    #[test]
    fn nan_is_never_ranked_and_is_counted() {
        let kb = kb(&[
            ("nan", &[f64::NAN, 1.0]),
            ("low", &[-1.0, 0.0]),
            ("high", &[1.0, 0.0]),
        ]);
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let hits = run(&kb, &[1.0, 0.0], &Search::new(3).metric(metric));
            assert_eq!(keys(&hits), ["high", "low"], "{metric}");
            assert_eq!(hits.skipped.nan, 1, "{metric}");
            // A NaN query scores nothing.
            let none = run(&kb, &[f64::NAN, 0.0], &Search::new(3).metric(metric));
            assert!(none.results.is_empty(), "{metric}");
            assert_eq!(none.skipped.nan, 3, "{metric}");
        }
        // Infinities that cancel give NaN too; an infinite score is ranked.
        let kb = kb_inf();
        let hits = run(&kb, &[1.0, 1.0], &Search::new(3).metric(Metric::Dot));
        assert_eq!(keys(&hits), ["big", "one"]);
        assert_eq!(hits.results[0].score, f64::INFINITY);
        assert_eq!(hits.skipped.nan, 1);
    }

    fn kb_inf() -> KnowledgeBase {
        kb(&[
            ("cancel", &[f64::INFINITY, f64::NEG_INFINITY]),
            ("one", &[1.0, 0.0]),
            ("big", &[f64::INFINITY, 0.0]),
        ])
    }

    #[test]
    fn zero_vectors_are_skipped_under_cosine_only() {
        let kb = kb(&[("zero", &[0.0, 0.0]), ("one", &[1.0, 0.0])]);
        let cosine = run(&kb, &[1.0, 1.0], &Search::new(5));
        assert_eq!(keys(&cosine), ["one"]);
        assert_eq!(cosine.skipped.zero, 1);
        let zero_query = run(&kb, &[0.0, -0.0], &Search::new(5));
        assert!(zero_query.results.is_empty());
        assert_eq!(zero_query.skipped.zero, 2);
        let dot = run(&kb, &[1.0, 1.0], &Search::new(5).metric(Metric::Dot));
        assert_eq!(keys(&dot), ["one", "zero"]);
        assert_eq!(dot.skipped, Skipped::default());
        let l2 = run(&kb, &[0.0, 0.0], &Search::new(5).metric(Metric::L2));
        assert_eq!(keys(&l2), ["zero", "one"]);
        assert_eq!(scores(&l2), [0.0, 1.0]);
    }

    #[test]
    fn other_dimensions_are_skipped_and_counted() {
        let kb = kb(&[
            ("short", &[1.0]),
            ("fit", &[1.0, 0.0]),
            ("long", &[1.0, 0.0, 0.0]),
            ("empty", &[]),
        ]);
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let hits = run(&kb, &[1.0, 0.0], &Search::new(10).metric(metric));
            assert_eq!(keys(&hits), ["fit"]);
            assert_eq!(
                hits.skipped,
                Skipped {
                    dimension: 3,
                    ..Skipped::default()
                }
            );
        }
    }

    #[test]
    fn filters_match_metadata_values() {
        let mut kb = KnowledgeBase::new();
        let rows: [(&str, &[(&str, Value)]); 4] = [
            (
                "a",
                &[("lang", Value::from("en")), ("n", Value::from(1_i64))],
            ),
            ("b", &[("lang", Value::from("fr")), ("n", Value::from(1.0))]),
            (
                "c",
                &[("lang", Value::from("en")), ("n", Value::from(2_i64))],
            ),
            ("d", &[]),
        ];
        for (key, fields) in rows {
            let mut metadata = Map::new();
            for (k, v) in fields {
                metadata.insert(*k, v.clone());
            }
            kb.insert(
                key.to_owned(),
                NumericVectorArtifact::new(vec![1.0]).with_metadata(metadata),
            );
        }
        let q = [1.0];
        let en = run(&kb, &q, &Search::new(10).filter("lang", Value::from("en")));
        assert_eq!(keys(&en), ["a", "c"]);
        // Numbers by value: 1 matches 1.0.
        let one = run(&kb, &q, &Search::new(10).filter("n", Value::from(1_i64)));
        assert_eq!(keys(&one), ["a", "b"]);
        let one = run(&kb, &q, &Search::new(10).filter("n", Value::from(1.0)));
        assert_eq!(keys(&one), ["a", "b"]);
        // Every condition must hold.
        let both = run(
            &kb,
            &q,
            &Search::new(10)
                .filter("lang", Value::from("en"))
                .filter("n", Value::from(1_i64)),
        );
        assert_eq!(keys(&both), ["a"]);
        let string_one = run(&kb, &q, &Search::new(10).filter("n", Value::from("1")));
        assert!(string_one.results.is_empty());
        // The counts are of the artifacts the filter keeps.
        let mut kb = kb;
        kb.insert("e".to_owned(), NumericVectorArtifact::new(vec![1.0, 2.0]));
        let en = run(&kb, &q, &Search::new(10).filter("lang", Value::from("en")));
        assert_eq!(en.skipped.dimension, 0);
    }

    #[test]
    fn k_beyond_the_knowledge_base_and_an_empty_one() {
        let kb = kb(&[("a", &[1.0]), ("b", &[2.0])]);
        assert_eq!(keys(&run(&kb, &[1.0], &Search::new(100))), ["a", "b"]);
        // The largest k a request gives, and the largest there is, on one thread and split
        // over two: every artifact, no room asked for beyond them.
        for k in [usize::try_from(i64::MAX).unwrap(), usize::MAX] {
            for threads in [1, 2] {
                let search = Search::new(k).threads(threads).parallel_min(0);
                assert_eq!(
                    keys(&run(&kb, &[1.0], &search)),
                    ["a", "b"],
                    "{k}, {threads}"
                );
            }
        }
        let empty = KnowledgeBase::new();
        let hits = SearchIndex::new(&empty)
            .search(&empty, &[1.0], &Search::new(3))
            .unwrap();
        assert!(hits.results.is_empty());
        assert_eq!(hits.skipped, Skipped::default());
    }

    #[test]
    fn bad_queries_are_refused() {
        let kb = kb(&[("a", &[1.0])]);
        let index = SearchIndex::new(&kb);
        assert_eq!(
            index.search(&kb, &[1.0], &Search::new(0)).unwrap_err(),
            QueryError::ZeroK
        );
        assert_eq!(
            index.search(&kb, &[], &Search::new(1)).unwrap_err(),
            QueryError::EmptyVector
        );
        assert_eq!(
            "cos".parse::<Metric>().unwrap_err().to_string(),
            "unknown metric \"cos\": expected cosine, dot or l2"
        );
        assert_eq!("l2".parse::<Metric>().unwrap(), Metric::L2);
    }

    /// A deterministic pseudo-random knowledge base with ties, zeros, NaNs and odd lengths.
    fn random_kb(n: usize, dim: usize) -> KnowledgeBase {
        let mut rng = penin_testkit::Xorshift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next_symmetric();
        let mut kb = KnowledgeBase::new();
        for i in 0..n {
            let len = if i % 97 == 5 { dim + 1 } else { dim };
            let mut v: Vec<f64> = (0..len).map(|_| next()).collect();
            if i % 89 == 3 {
                v.fill(0.0);
            }
            if i % 83 == 7 {
                v[0] = f64::NAN;
            }
            kb.insert(format!("k{i:05}"), NumericVectorArtifact::new(v.clone()));
            if i % 50 == 9 {
                // An exact duplicate of the vector: a tie.
                kb.insert(format!("dup{i:05}"), NumericVectorArtifact::new(v));
            }
        }
        kb
    }

    #[test]
    fn a_split_search_gives_the_answer_of_one_thread() {
        let kb = random_kb(2000, 19);
        let index = SearchIndex::new(&kb);
        let query: Vec<f64> = (0..19).map(|i| f64::from(i).sin()).collect();
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            for k in [1, 10, 3000] {
                let one = index
                    .search(&kb, &query, &Search::new(k).metric(metric).threads(1))
                    .unwrap();
                for threads in [2, 3] {
                    let split = index
                        .search(
                            &kb,
                            &query,
                            &Search::new(k)
                                .metric(metric)
                                .threads(threads)
                                .parallel_min(0),
                        )
                        .unwrap();
                    assert_eq!(split, one, "{metric}, k = {k}, {threads} threads");
                    // Where the system refuses the other threads, this one scans it all.
                    let alone = penin_codec::refusing_helpers(|| {
                        let search = Search::new(k).metric(metric).threads(threads);
                        index.search(&kb, &query, &search.parallel_min(0)).unwrap()
                    });
                    assert_eq!(alone, one, "{metric}, k = {k}, {threads} threads refused");
                }
                assert!(one.skipped.dimension > 0 && one.skipped.nan > 0);
                // Against a full sort of every score.
                let mut all: Vec<(f64, &str)> = kb
                    .iter()
                    .filter(|(_, a)| a.vector.len() == query.len())
                    .filter_map(|(key, a)| {
                        let score = match metric {
                            Metric::Cosine => {
                                let (na, nq) = (norm(&a.vector), norm(&query));
                                if na == 0.0 {
                                    return None;
                                }
                                dot(&a.vector, &query) / (na * nq)
                            }
                            Metric::Dot => dot(&a.vector, &query),
                            Metric::L2 => -distance(&a.vector, &query),
                        };
                        (!score.is_nan()).then_some((score, key.as_str()))
                    })
                    .collect();
                all.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(b.1)));
                all.truncate(k);
                let want: Vec<&str> = all.iter().map(|(_, key)| *key).collect();
                assert_eq!(keys(&one), want, "{metric}, k = {k}");
            }
        }
    }

    #[test]
    fn the_index_follows_additions_and_replacements() {
        let mut kb = kb(&[("a", &[1.0, 0.0]), ("b", &[0.0, 1.0])]);
        let mut index = SearchIndex::new(&kb);
        // Replaced by a longer vector in the same direction: cosine must use the new norm.
        kb.insert("a".to_owned(), NumericVectorArtifact::new(vec![3.0, 0.0]));
        index.update(&kb, "a");
        assert_eq!(index, SearchIndex::new(&kb));
        let hits = index.search(&kb, &[1.0, 0.0], &Search::new(1)).unwrap();
        assert_eq!((hits.results[0].key, hits.results[0].score), ("a", 1.0));
        kb.insert("c".to_owned(), NumericVectorArtifact::new(vec![0.0, 0.0]));
        index.update(&kb, "c");
        assert_eq!(index, SearchIndex::new(&kb));
        assert_eq!(index.len(), 3);
        // One commit's changes (two added, one replaced) applied before the index is told
        // of them, in any order.
        kb.insert("d".to_owned(), NumericVectorArtifact::new(vec![1.0, 1.0]));
        kb.insert("b".to_owned(), NumericVectorArtifact::new(vec![0.0, 5.0]));
        kb.insert("e".to_owned(), NumericVectorArtifact::new(vec![2.0, 2.0]));
        for key in ["e", "b", "d"] {
            index.update(&kb, key);
        }
        assert_eq!(index, SearchIndex::new(&kb));
        // Another, shorter knowledge base: indexed again.
        let small = super::tests::kb(&[("z", &[4.0, 3.0])]);
        index.update(&small, "z");
        assert_eq!(index, SearchIndex::new(&small));
    }
}
