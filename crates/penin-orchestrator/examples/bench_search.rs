//! Times top-k search on a state loaded once: `cargo run --release -p penin-orchestrator
//! --example bench_search -- STATE [QUERIES] [K] [METRIC] [THREADS]`.
//!
//! The queries are pseudo-random vectors of the knowledge base's first dimension (the same
//! ones on every run). Prints one JSON line: the number of artifacts, the dimension, the
//! median and the quartiles of a query in milliseconds, and the time to build the index.

use std::time::Instant;

use penin_orchestrator::{Metric, Orchestrator, Search, SearchIndex};

/// The `penin` command's allocator, so that what is timed is what the command does.
#[global_allocator]
static ALLOCATOR: penin_alloc::Allocator = penin_alloc::Allocator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: bench_search STATE [QUERIES] [K] [METRIC] [THREADS]")?;
    let queries: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let k: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let metric: Metric = args.get(3).map_or(Ok(Metric::Cosine), |s| s.parse())?;
    let mut memory = Orchestrator::new();
    if !memory.load_state(path)? {
        return Err(format!("no state at {path}").into());
    }
    let kb = memory.knowledge_base();
    let dim = kb.values().next().map_or(0, |a| a.vector.len());
    let started = Instant::now();
    let index = SearchIndex::new(kb);
    let index_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut search = Search::new(k).metric(metric);
    if let Some(threads) = args.get(4) {
        search = search.threads(threads.parse()?);
    }
    let mut rng = penin_testkit::Xorshift::new(0x2545_F491_4F6C_DD1D);
    let mut times = Vec::with_capacity(queries);
    let mut checksum = 0.0;
    for _ in 0..queries {
        let query: Vec<f64> = (0..dim).map(|_| rng.next_symmetric()).collect();
        let started = Instant::now();
        let hits = index.search(kb, &query, &search)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        checksum += hits.results.first().map_or(0.0, |hit| hit.score);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: usize| times.get(times.len() * q / 4).copied().unwrap_or(f64::NAN);
    println!(
        "{{\"n\":{},\"dim\":{dim},\"queries\":{queries},\"k\":{k},\"metric\":\"{metric}\",\"median_ms\":{:.4},\"q1_ms\":{:.4},\"q3_ms\":{:.4},\"index_ms\":{index_ms:.3},\"checksum\":{checksum}}}",
        kb.len(),
        at(2),
        at(1),
        at(3),
    );
    Ok(())
}
