//! Workspace-level property tests of penin, one module per concern:
//!
//! * `roundtrip`: documents and values survive the writer and the reader bit for bit, in
//!   both styles and through the orchestrator's save and load;
//! * `formats`: the same state through every pair of formats (`json`, `json.gz`,
//!   `json.zst`, `arrow`), for the fixtures and generated states;
//! * `golden`: the committed files of each released version (`golden/`) still read as they
//!   were written, and today's writers write the same bytes where that is deterministic;
//! * `deque`: the bounded deque behaves as Python's `collections.deque`;
//! * `fuzz`: mutated and random bytes into every reader and the loader;
//! * `python`: Python's own loader and `json.dump` re-save penin's files byte for byte;
//!   pyarrow reads penin's arrow snapshots.
//!
//! The strategies live in the `penin-tests` library (`src/lib.rs`). Failures proptest finds
//! are kept in `proptest-regressions/MODULE.txt` (commit them), and each shrunk failure
//! becomes a named test in its module.

/// The regressions file of a module: `tests/proptest-regressions/NAME.txt`, as an absolute
/// path fixed at build time.
macro_rules! regressions {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/",
            $name,
            ".txt"
        )
    };
}

mod deque;
mod formats;
mod fuzz;
mod golden;
mod python;
mod roundtrip;
