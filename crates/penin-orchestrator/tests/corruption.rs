//! A state file cut at every byte, and with every single bit flipped: each load is a typed
//! error or a state, never a panic and never a guess.

use std::fs;
use std::path::Path;

use penin_orchestrator::{ErrorKind, Orchestrator};

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

#[test]
fn every_truncation_is_a_truncated_or_empty_error() {
    let mut loads = 0;
    for name in CASES {
        let full = fixture(name);
        for cut in 0..full.len() {
            let mut o = Orchestrator::new();
            let err = o
                .load_bytes(&full[..cut])
                .expect_err("a strict prefix of a state is not a state");
            let kind = penin_orchestrator::Error::Corrupt {
                path: name.into(),
                source: err,
            }
            .kind();
            let expected = if full[..cut].iter().all(u8::is_ascii_whitespace) {
                ErrorKind::Empty
            } else {
                ErrorKind::Truncated
            };
            assert_eq!(kind, expected, "{name} cut at byte {cut}");
            assert_eq!(o, Orchestrator::new(), "a failed load changes nothing");
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
    let (mut errors, mut states) = (0, 0);
    for name in CASES {
        let full = fixture(name);
        let mut original = Orchestrator::new();
        original.load_bytes(&full).unwrap();
        for bit in 0..full.len() * 8 {
            let mut bytes = full.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mut o = Orchestrator::new();
            match o.load_bytes(&bytes) {
                Err(_) => {
                    assert_eq!(o, Orchestrator::new(), "a failed load changes nothing");
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
