//! Every format gives back the same state, bit for bit: the Python-written fixtures and
//! generated states, through every ordered pair of formats of `Format::ALL` (saved in A,
//! loaded, saved in B, loaded, saved in A again, loaded), so a format added to `ALL` joins
//! these tests without a change here.

use std::path::{Path, PathBuf};

use penin_codec::Document;
use penin_orchestrator::{Format, Orchestrator};
use penin_tests::{any_document, assert_same_document};
use proptest::prelude::*;

/// The repository's Python-written fixtures (the same files as `../shared/fixtures`).
pub(crate) fn fixtures() -> Vec<(String, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let names: Vec<_> = manifest
        .lines()
        .filter_map(|row| row.split('\t').next())
        .filter(|name| !name.trim().is_empty())
        .map(|name| (name.to_owned(), dir.join(format!("{name}.json"))))
        .collect();
    assert!(names.len() >= 8, "only {} fixtures", names.len());
    names
}

/// Saves `state` at `path` in `format` (durably, as penin saves) and loads it back.
fn through(state: &Orchestrator, path: &Path, format: Format) -> Orchestrator {
    state.save_state_as(path, format).unwrap();
    assert_eq!(Format::detect(&std::fs::read(path).unwrap()), format);
    let mut back = Orchestrator::with_history_maxlen(Some(5));
    assert_eq!(back.load_state_format(path).unwrap(), Some(format));
    back
}

/// Through every ordered pair of formats, A -> B -> A; each load is the same state as the
/// original (floats by their bits), the seed JSON of each is the same bytes, and the file
/// written in A at the end is the very file written in A at the start.
fn every_pair(doc: &Document, dir: &Path) {
    let state = Orchestrator::from(doc.clone());
    let json = state.to_bytes();
    for from in Format::ALL {
        let a = dir.join(format!("a.{from}"));
        let first = through(&state, &a, from);
        assert_same_document(first.document(), doc);
        let a_bytes = std::fs::read(&a).unwrap();
        for to in Format::ALL {
            let second = through(&first, &dir.join(format!("b.{to}")), to);
            assert_same_document(second.document(), doc);
            assert!(second.to_bytes() == json, "{from} -> {to}: the JSON moved");
            let back_path = dir.join(format!("c.{from}"));
            let back = through(&second, &back_path, from);
            assert_same_document(back.document(), doc);
            assert!(
                back.to_bytes() == json,
                "{from} -> {to} -> {from}: the JSON moved"
            );
            assert!(
                std::fs::read(&back_path).unwrap() == a_bytes,
                "{from} -> {to} -> {from}: another {from} file than the first"
            );
        }
    }
}

#[test]
fn every_fixture_round_trips_through_every_pair_of_formats() {
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in fixtures() {
        let mut original = Orchestrator::new();
        assert!(original.load_state(&path).unwrap(), "{name}");
        every_pair(original.document(), dir.path());
    }
}

proptest! {
    // Each case writes and syncs twenty-one files (three formats: 3 + 9 + 9).
    #![proptest_config(penin_tests::config(24, regressions!("formats")))]

    #[test]
    fn generated_states_round_trip_through_every_pair_of_formats(doc in any_document()) {
        let dir = tempfile::tempdir().unwrap();
        every_pair(&doc, dir.path());
    }
}
