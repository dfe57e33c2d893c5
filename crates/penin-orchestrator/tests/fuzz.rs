//! Arbitrary bytes and mutations of valid state files into the decoder, the windowed reader
//! and the loader: no panic, the two readers agree, and whatever decodes re-encodes to itself.
//!
//! `PENIN_FUZZ_ITERATIONS` sets the number of inputs (default 20,000, a few seconds in a
//! debug build); `PENIN_FUZZ_SEED` the seed. The documented long run:
//!
//! ```text
//! PENIN_FUZZ_ITERATIONS=1000000 cargo test --release -p penin-orchestrator --test fuzz -- --nocapture
//! ```

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use penin_codec::{Document, Value};
use penin_orchestrator::Orchestrator;

/// xorshift64*: small, fast and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

/// Tokens that reach the decoder's corners.
const TOKENS: &[&[u8]] = &[
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-0",
    b"-0.0",
    b"1e-400",
    b"99999999999999999999999",
    b"0.1",
    b"01",
    b"1.",
    b".5",
    b"\\u",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\x",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"\"__type__\"",
    b"\"deque\"",
    b"\"NumericVectorArtifact\"",
    b"\"vector\"",
    b"\"items\"",
    b"\"maxlen\"",
    b"\"metadata\"",
    b"\"knowledge_base\"",
    b"\"task_history\"",
    b"\"score_history\"",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b"\r\n",
    b"\t",
    b"[[[[[[[[[[[[[[[[",
    b"{\"a\":{\"a\":{\"a\":",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = input[at..end].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            5 => input.truncate(rng.below(len + 1)),
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(256)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
            7 if len > 0 => {
                let at = rng.below(len);
                let token = TOKENS[rng.below(TOKENS.len())];
                let end = (at + token.len()).min(len);
                input.splice(at..end, token.iter().copied());
            }
            _ => {
                let n = rng.below(32);
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
        }
    }
}

/// Runs every entry point on `input`; panics (caught by the caller) on a broken invariant.
fn check(input: &[u8]) -> bool {
    let mut decoded = false;
    if let Ok(value) = penin_codec::from_slice::<Value>(input) {
        let bytes = penin_codec::to_vec(&value);
        let again: Value = penin_codec::from_slice(&bytes).expect("what penin writes, penin reads");
        assert!(
            penin_codec::to_vec(&again) == bytes,
            "a value re-encodes to itself"
        );
        decoded = true;
    }
    let in_memory = penin_codec::from_slice::<Document>(input).ok();
    if let Some(doc) = &in_memory {
        let bytes = penin_codec::to_vec(doc);
        let again: Document =
            penin_codec::from_slice(&bytes).expect("what penin writes, penin reads");
        assert!(
            penin_codec::to_vec(&again) == bytes,
            "a document re-encodes to itself"
        );
    }
    // The windowed reader (what load_state uses) accepts exactly what memory accepts, and
    // reads the same state (compared as written: NaN is not equal to itself).
    let windowed = Document::read_from(input, Some(1000)).expect("reading bytes cannot fail");
    assert!(
        windowed.as_ref().map(penin_codec::to_vec) == in_memory.as_ref().map(penin_codec::to_vec),
        "the windowed reader and the in-memory decoder disagree"
    );
    let mut o = Orchestrator::with_history_maxlen(Some(3));
    if o.load_bytes(input).is_err() {
        assert_eq!(
            o,
            Orchestrator::with_history_maxlen(Some(3)),
            "a failed load changes nothing"
        );
    }
    decoded
}

#[test]
fn fuzz_decoder_and_loader() {
    let iterations: usize = std::env::var("PENIN_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("PENIN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_0000_0000_0001);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let corpus: Vec<Vec<u8>> = [
        "seed_demo",
        "empty",
        "unicode",
        "non_finite",
        "float_forms",
        "unbounded_deque",
        "nested_tags",
    ]
    .iter()
    .map(|name| fs::read(dir.join(format!("{name}.json"))).unwrap())
    .collect();

    // Panics are the finding: count them, print the input, and fail at the end.
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed | 1);
    let (mut panics, mut decoded) = (0_usize, 0_usize);
    let mut first_panic = None;
    for i in 0..iterations {
        let input = if i % 10 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &corpus, &mut input);
            input
        };
        match panic::catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Ok(ok) => decoded += usize::from(ok),
            Err(_) => {
                panics += 1;
                first_panic.get_or_insert(input);
            }
        }
    }
    let _ = panic::take_hook();
    println!(
        "fuzz: {iterations} inputs (seed {seed:#x}), {decoded} decoded as values, {panics} panics"
    );
    if let Some(input) = first_panic {
        panic!(
            "{panics} inputs panicked; the first: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
    assert!(
        decoded > iterations / 100,
        "the mutations must also produce valid documents ({decoded})"
    );
}
