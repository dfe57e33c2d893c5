//! Write, read back, compare by bits, write again: the bytes must not move.

use penin_codec::{Document, Style, Value};
use penin_orchestrator::Orchestrator;
use penin_tests::{any_document, any_value, assert_same_document, assert_same_value};
use proptest::prelude::*;

/// Writes `doc` in `style`, reads it back, and checks the state and the bytes survive.
fn document_round_trip(doc: &Document, style: Style) -> Document {
    let bytes = penin_codec::to_vec_styled(doc, style);
    let back: Document = penin_codec::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "cannot read back what was written: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_same_document(&back, doc);
    assert_eq!(
        String::from_utf8_lossy(&penin_codec::to_vec_styled(&back, style)),
        String::from_utf8_lossy(&bytes),
        "a re-save changed the bytes"
    );
    back
}

fn value_round_trip(value: &Value, style: Style) {
    let bytes = penin_codec::to_vec_styled(value, style);
    let back: Value = penin_codec::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "cannot read back what was written: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_same_value(&back, value);
    assert_eq!(
        String::from_utf8_lossy(&penin_codec::to_vec_styled(&back, style)),
        String::from_utf8_lossy(&bytes),
        "a re-save changed the bytes"
    );
}

proptest! {
    #![proptest_config(penin_tests::config(192, regressions!("roundtrip")))]

    /// Python's `indent=2` layout: read back the same, written again the same.
    #[test]
    fn document_round_trips_pretty(doc in any_document()) {
        document_round_trip(&doc, Style::Pretty);
        // Written in chunks to a writer, the bytes are those of `to_vec`.
        let mut streamed = Vec::new();
        penin_codec::to_writer(&mut streamed, &doc).unwrap();
        prop_assert_eq!(streamed, penin_codec::to_vec(&doc));
    }

    /// One line: read back the same, and the pretty form of what was read is the original's.
    #[test]
    fn document_round_trips_compact(doc in any_document()) {
        let back = document_round_trip(&doc, Style::Compact);
        prop_assert_eq!(penin_codec::to_vec(&back), penin_codec::to_vec(&doc));
        prop_assert_eq!(penin_codec::to_vec_compact(&doc), penin_codec::to_vec_compact(&back));
    }

    /// Any value at the top, tags recognised wherever they are.
    #[test]
    fn value_round_trips(value in any_value()) {
        value_round_trip(&value, Style::Pretty);
        value_round_trip(&value, Style::Compact);
    }
}

proptest! {
    // Each case syncs a file and a directory: fewer cases.
    #![proptest_config(penin_tests::config(64, regressions!("roundtrip")))]

    /// Through the orchestrator's durable save and its load: the same state, and the file
    /// holds exactly the codec's bytes.
    #[test]
    fn orchestrator_save_then_load_round_trips(doc in any_document()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".penin_omega/state.json");
        Orchestrator::from(doc.clone()).save_state(&path).unwrap();
        let on_disk = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        let written = String::from_utf8(penin_codec::to_vec(&doc)).unwrap();
        prop_assert_eq!(on_disk, written);
        // A configured bound other than the file's: the file's wins.
        let mut restored = Orchestrator::with_history_maxlen(Some(7));
        prop_assert!(restored.load_state(&path).unwrap());
        assert_same_document(restored.document(), &doc);
    }
}

/// Found while probing bounds beyond those the strategies make: with a history bound above
/// `i64::MAX` (`penin --history-maxlen 18446744073709551615 add-score 0.5` on a new state),
/// the save wrote `"maxlen": 18446744073709551615`, which the reader then refused: a
/// successful command left a state that no later run could load. Python refuses such a
/// bound too (`OverflowError`), but what penin saves, penin must load: the save succeeds,
/// the file holds the bound, and the state loads back with it.
#[test]
fn history_maxlen_beyond_i64_saves_a_state_that_loads() {
    for maxlen in [penin_tests::MAX_MAXLEN + 1, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut orchestrator = Orchestrator::with_history_maxlen(Some(maxlen));
        orchestrator.add_score(0.5);
        if let Err(e) = orchestrator.save_state(&path) {
            panic!(
                "maxlen {maxlen}: the save fails: {e}: {}",
                std::error::Error::source(&e).map_or(String::new(), ToString::to_string)
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches(&format!("\"maxlen\": {maxlen}\n")).count(),
            2,
            "both histories keep the bound: {text}"
        );
        let mut restored = Orchestrator::new();
        match restored.load_state(&path) {
            Ok(loaded) => assert!(loaded, "maxlen {maxlen}: the saved file is not found"),
            Err(e) => panic!(
                "maxlen {maxlen}: saved, then cannot be loaded: {e}: {}",
                std::error::Error::source(&e).map_or(String::new(), ToString::to_string)
            ),
        }
        assert_same_document(restored.document(), orchestrator.document());
        assert_eq!(restored.task_history().maxlen(), Some(maxlen));
        assert_eq!(restored.score_history().maxlen(), Some(maxlen));
    }
}

/// The largest bound Python takes round-trips, through the orchestrator too.
#[test]
fn history_maxlen_of_i64_max_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut orchestrator = Orchestrator::with_history_maxlen(Some(penin_tests::MAX_MAXLEN));
    orchestrator.add_score(0.5);
    orchestrator.save_state(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"maxlen\": 9223372036854775807"), "{text}");
    let mut restored = Orchestrator::new();
    assert!(restored.load_state(&path).unwrap());
    assert_same_document(restored.document(), orchestrator.document());
    assert_eq!(
        restored.score_history().maxlen(),
        Some(penin_tests::MAX_MAXLEN)
    );
}
