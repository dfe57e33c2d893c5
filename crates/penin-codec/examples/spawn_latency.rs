//! How late a helper thread starts while the thread that started it works: a thread
//! started by `std::thread::Builder::spawn_scoped` against one started by
//! `penin_codec::spawn_scoped_beside`, in alternate rounds.
//!
//! In each round the creator starts a helper and then works (spins) for 4 ms, as a load
//! does; the helper notes how long after the spawn it started. Between rounds both threads
//! sleep 5 ms, so that the cores idle as they do between two commands.
//!
//! ```text
//! cargo run --release -p penin-codec --example spawn_latency [ROUNDS]
//! ```

use std::thread::Builder;
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(200, |n| n.parse().expect("ROUNDS is a number"));
    let mut late = [Vec::new(), Vec::new()];
    for round in 0..rounds * 2 {
        let beside = round % 2 == 1;
        std::thread::sleep(Duration::from_millis(5));
        let started = std::thread::scope(|scope| {
            let spawned = Instant::now();
            let helper = move || spawned.elapsed();
            let handle = if beside {
                penin_codec::spawn_scoped_beside(Builder::new(), scope, helper)
            } else {
                Builder::new().spawn_scoped(scope, helper)
            }
            .expect("a thread");
            while spawned.elapsed() < Duration::from_millis(4) {
                std::hint::spin_loop();
            }
            handle.join().expect("the helper ends")
        });
        late[usize::from(beside)].push(started.as_secs_f64() * 1e3);
    }
    for (name, mut ms) in ["spawn_scoped", "spawn_scoped_beside"]
        .into_iter()
        .zip(late)
    {
        ms.sort_by(f64::total_cmp);
        // The value at `percent` percent of the way from the least to the greatest.
        let at = |percent: usize| ms[(ms.len() - 1) * percent / 100];
        let over = ms.iter().filter(|&&m| m >= 1.0).count();
        println!(
            "{name:20} started after: median {:.3} ms, 90th percentile {:.3} ms, max {:.3} ms; \
             1 ms or later in {over} of {} rounds",
            at(50),
            at(90),
            at(100),
            ms.len()
        );
    }
}
