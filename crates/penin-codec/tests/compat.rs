//! Python-written state files re-save byte for byte (`../shared/fixtures`, copied into the
//! repository's `tests/fixtures`).

use std::fs;
use std::path::PathBuf;

use penin_codec::{Document, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Every case of `MANIFEST.tsv`, so that a fixture added there cannot be skipped here.
fn cases() -> Vec<String> {
    let manifest = fs::read_to_string(fixtures().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let names: Vec<String> = manifest
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    assert!(
        names.len() >= 8,
        "expected the eight seed fixtures, found {names:?}"
    );
    names
}

#[test]
fn every_fixture_resaves_byte_for_byte_as_a_document() {
    for name in cases() {
        let input = fs::read(fixtures().join(format!("{name}.json"))).unwrap();
        let expected = fs::read(fixtures().join(format!("{name}.expected.json"))).unwrap();
        let doc: Document =
            penin_codec::from_slice(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = penin_codec::to_vec(&doc);
        assert!(
            out == expected,
            "{name}: re-save differs from {name}.expected.json"
        );
    }
}

#[test]
fn every_fixture_resaves_byte_for_byte_as_a_value() {
    for name in cases() {
        let input = fs::read(fixtures().join(format!("{name}.json"))).unwrap();
        let expected = fs::read(fixtures().join(format!("{name}.expected.json"))).unwrap();
        let value: Value =
            penin_codec::from_slice(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            penin_codec::to_vec(&value) == expected,
            "{name}: value re-save differs"
        );
        // And through a writer, in chunks.
        let mut streamed = Vec::new();
        penin_codec::to_writer(&mut streamed, &value).unwrap();
        assert!(streamed == expected, "{name}: streamed re-save differs");
    }
}

#[test]
fn fixtures_decode_to_what_they_say() {
    let doc: Document =
        penin_codec::from_slice(&fs::read(fixtures().join("seed_demo.json")).unwrap()).unwrap();
    let keys: Vec<_> = doc.knowledge_base.keys().cloned().collect();
    assert_eq!(keys, ["embedding_1", "embedding_2"]);
    assert_eq!(doc.knowledge_base["embedding_2"].vector, [0.4, 0.5, 0.6]);
    assert_eq!(doc.task_history.len(), 2);
    assert_eq!(doc.score_history.maxlen(), Some(1000));
    let scores: Vec<f64> = doc
        .score_history
        .iter()
        .map(penin_codec::Number::to_f64)
        .collect();
    assert_eq!(scores, [0.85, 0.87, 0.9]);

    let doc: Document =
        penin_codec::from_slice(&fs::read(fixtures().join("nested_tags.json")).unwrap()).unwrap();
    let Some(Value::Artifact(child)) = doc.knowledge_base["outer"].metadata.get("child") else {
        panic!("metadata.child is not an artifact");
    };
    assert_eq!(child.vector, [2.0]);
    let Some(Value::Object(task)) = doc.task_history.front() else {
        panic!("task is not an object")
    };
    let Some(Value::Deque(window)) = task.get("window") else {
        panic!("window is not a deque")
    };
    assert_eq!(window.maxlen(), Some(3));
    assert!(matches!(task.get("best"), Some(Value::Artifact(_))));

    let doc: Document =
        penin_codec::from_slice(&fs::read(fixtures().join("unbounded_deque.json")).unwrap())
            .unwrap();
    assert_eq!(doc.task_history.maxlen(), None);
    assert_eq!(doc.score_history.maxlen(), None);

    let doc: Document =
        penin_codec::from_slice(&fs::read(fixtures().join("unicode.json")).unwrap()).unwrap();
    let artifact = &doc.knowledge_base["café ☕"];
    assert_eq!(artifact.metadata["note"], Value::from("ação 🚀"));
    assert_eq!(artifact.metadata["tab\there"], Value::from("q\"uote\\"));
}
