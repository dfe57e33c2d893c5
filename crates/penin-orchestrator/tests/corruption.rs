//! A state file cut at every byte, and with every single bit flipped: each load is a typed
//! error or a state, never a panic and never a guess; and a failed load leaves the state it
//! was given exactly as it was.

use std::fs;
use std::path::Path;

use penin_orchestrator::{ErrorKind, Map, NumericVectorArtifact, Orchestrator, Value};

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Small fixtures that together hold every construct: tags nested in tasks and metadata,
/// unicode escapes, non-finite floats, Python's float spellings, unbounded deques.
const CASES: &[&str] = &[
    "nested_tags.json",
    "unicode.json",
    "non_finite.json",
    "float_forms.json",
    "unbounded_deque.json",
];

/// The state every failed load starts from. Not a fresh one: a load that emptied or reset
/// the state before failing would leave a fresh state, and comparing it with a fresh one
/// would prove nothing. Loaded from `seed_demo.json`, then added to (a NaN and a -0.0
/// among the additions), under a history bound other than the default.
fn before() -> Orchestrator {
    let mut o = Orchestrator::with_history_maxlen(Some(7));
    o.load_bytes(&fixture("seed_demo.json")).unwrap();
    let mut metadata = Map::new();
    metadata.insert("source", Value::from("corruption test"));
    o.add_knowledge(
        "added",
        NumericVectorArtifact::new(vec![f64::NAN, -0.0, 1e300]).with_metadata(metadata),
    );
    let mut task = Map::new();
    task.insert("task_id", Value::from(3));
    o.add_task(task);
    o.add_score(f64::NAN);
    o.add_score(0.5);
    o
}

/// A state bit for bit: the bytes it saves (NaN != NaN, so `==` cannot compare it) and the
/// configured history bound, which the bytes do not hold.
fn fingerprint(o: &Orchestrator) -> (String, Option<usize>) {
    (
        String::from_utf8(o.to_bytes()).expect("a saved state is UTF-8"),
        o.history_maxlen(),
    )
}

/// Asserts that `o`, after a failed load, is still `expected` (a [`fingerprint`] of
/// [`before`]).
#[track_caller]
fn assert_unchanged(o: &Orchestrator, expected: &(String, Option<usize>), what: &str) {
    let got = fingerprint(o);
    assert!(
        got == *expected,
        "a failed load changed the state ({what})\n--- before (bound {:?})\n{}\n--- after (bound {:?})\n{}",
        expected.1,
        expected.0,
        got.1,
        got.0
    );
}

#[test]
fn the_state_failed_loads_start_from_is_not_a_fresh_one() {
    let (bytes, bound) = fingerprint(&before());
    assert_ne!(
        bytes,
        String::from_utf8(Orchestrator::new().to_bytes()).unwrap()
    );
    assert_ne!(bound, Orchestrator::new().history_maxlen());
    assert!(
        bytes.contains("\"embedding_2\"") && bytes.contains("NaN"),
        "{bytes}"
    );
}

#[test]
fn every_truncation_is_a_truncated_or_empty_error() {
    let start = before();
    let expected = fingerprint(&start);
    let mut loads = 0;
    for name in CASES {
        let full = fixture(name);
        for cut in 0..full.len() {
            let mut o = start.clone();
            let err = o
                .load_bytes(&full[..cut])
                .expect_err("a strict prefix of a state is not a state");
            let kind = penin_orchestrator::Error::Corrupt {
                path: name.into(),
                source: err,
            }
            .kind();
            let expected_kind = if full[..cut].iter().all(u8::is_ascii_whitespace) {
                ErrorKind::Empty
            } else {
                ErrorKind::Truncated
            };
            assert_eq!(kind, expected_kind, "{name} cut at byte {cut}");
            assert_unchanged(&o, &expected, &format!("{name} cut at byte {cut}"));
            loads += 1;
        }
        let mut o = Orchestrator::new();
        o.load_bytes(&full).unwrap();
    }
    println!("truncations: {loads} loads, each a Truncated or Empty error");
    assert!(loads > 2500, "{loads}");
}

#[test]
fn every_bit_flip_is_a_typed_error_or_a_state() {
    let start = before();
    let expected = fingerprint(&start);
    let (mut errors, mut states) = (0, 0);
    for name in CASES {
        let full = fixture(name);
        let mut original = Orchestrator::new();
        original.load_bytes(&full).unwrap();
        for bit in 0..full.len() * 8 {
            let mut bytes = full.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mut o = start.clone();
            match o.load_bytes(&bytes) {
                Err(_) => {
                    assert_unchanged(&o, &expected, &format!("{name} bit {bit}"));
                    errors += 1;
                }
                Ok(()) => {
                    // JSON carries no checksum: a flipped digit or letter can be another valid
                    // state. It must then be a state that saves and loads back as itself.
                    let saved = o.to_bytes();
                    let mut again = Orchestrator::new();
                    again.load_bytes(&saved).unwrap();
                    assert_eq!(again.to_bytes(), saved, "{name} bit {bit}");
                    states += 1;
                }
            }
        }
    }
    println!("bit flips: {errors} typed errors, {states} other valid states");
    assert!(errors > states, "most flips break the syntax");
}
