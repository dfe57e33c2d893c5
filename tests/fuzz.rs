//! Arbitrary bytes and mutations of valid state files into the decoder, the reader through
//! windows of every size (as `load_state` reads a file) and the loader: no panic, the whole
//! input and every window give the same state or the same error (line, column and path
//! included), a failed load leaves the state it started from as it was, and whatever decodes
//! re-encodes to itself.
//!
//! `PENIN_FUZZ_ITERATIONS` sets the number of inputs (default 20,000, a few seconds in a
//! debug build); `PENIN_FUZZ_SEED` the seed. The documented long run:
//!
//! ```text
//! PENIN_FUZZ_ITERATIONS=1000000 cargo test --release -p penin-tests fuzz -- --nocapture
//! ```

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use penin_codec::{Document, Reader, Value};
use penin_orchestrator::Orchestrator;
use penin_tests::{Windowed, outcome};

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
/// `windows` are the window sizes the input is also read through; `base` is the state a
/// load starts from.
fn check(input: &[u8], windows: &[usize], base: &Orchestrator) -> bool {
    let mut decoded = false;
    let value = outcome(penin_codec::from_slice::<Value>(input));
    if let Ok(value) = penin_codec::from_slice::<Value>(input) {
        let bytes = penin_codec::to_vec(&value);
        let again: Value = penin_codec::from_slice(&bytes).expect("what penin writes, penin reads");
        assert!(
            penin_codec::to_vec(&again) == bytes,
            "a value re-encodes to itself"
        );
        decoded = true;
    }
    let in_memory = penin_codec::from_slice::<Document>(input);
    if let Ok(doc) = &in_memory {
        let bytes = penin_codec::to_vec(doc);
        let again: Document =
            penin_codec::from_slice(&bytes).expect("what penin writes, penin reads");
        assert!(
            penin_codec::to_vec(&again) == bytes,
            "a document re-encodes to itself"
        );
    }
    // Through windows (as load_state reads a file), exactly what memory gives: the same
    // state, or the same error at the same line, column and path.
    let document = outcome(in_memory);
    for (i, &window) in windows.iter().enumerate() {
        let source = Windowed {
            bytes: input,
            max_read: if i % 2 == 0 {
                usize::MAX
            } else {
                1 + window / 3
            },
        };
        let reader = Reader::new().window(window);
        assert_eq!(
            outcome(reader.read_document(&source)),
            document,
            "window {window}: the windowed reader and the in-memory decoder disagree"
        );
        assert_eq!(
            outcome(reader.read_value(&source)),
            value,
            "window {window}: values disagree"
        );
    }
    // A failed load leaves the state it started from exactly as it was.
    let mut o = base.clone();
    if o.load_bytes(input).is_err() {
        assert!(
            o.to_bytes() == base.to_bytes(),
            "a failed load changed the state"
        );
        assert_eq!(o.history_maxlen(), base.history_maxlen());
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
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
    // Loads start from a state that is not empty, with its own bound, a NaN and an extra key.
    let mut base = Orchestrator::with_history_maxlen(Some(3));
    base.load_bytes(&corpus[0]).unwrap();
    base.add_score(f64::NAN);
    base.add_task(Value::from("a task"));
    assert!(base.knowledge_base().len() == 2 && base.score_history().len() == 4);

    // Panics are the finding: count them, print the input, and fail at the end. Only this
    // thread's panics are silenced: the other tests of this binary run beside it.
    let fuzz_thread = std::thread::current().id();
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != fuzz_thread {
            default_hook(info);
        }
    }));
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
        // Every window size from 1 to 64 in turn, one more of those at random, and a
        // random larger one.
        let windows = [1 + i % 64, 1 + rng.below(64), 65 + rng.below(4096)];
        match panic::catch_unwind(AssertUnwindSafe(|| check(&input, &windows, &base))) {
            Ok(ok) => decoded += usize::from(ok),
            Err(cause) => {
                panics += 1;
                let message = cause
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| cause.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                first_panic.get_or_insert((input, message));
            }
        }
    }
    // Panics of this thread are reported again, the verdict below included.
    drop(panic::take_hook());
    println!(
        "fuzz: {iterations} inputs (seed {seed:#x}), {decoded} decoded as values, {panics} panics"
    );
    if let Some((input, message)) = first_panic {
        panic!(
            "{panics} inputs panicked; the first: {:?}: {message}",
            String::from_utf8_lossy(&input)
        );
    }
    assert!(
        decoded > iterations / 100,
        "the mutations must also produce valid documents ({decoded})"
    );
}
