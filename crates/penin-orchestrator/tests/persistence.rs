//! The seed's orchestrator tests (`tests/core/test_persistence.py`), and what the seed
//! leaves implicit: errors change nothing, unknown keys survive, the file's bound wins.

use std::fs;
use std::path::Path;

use penin_orchestrator::{Error, Map, Number, NumericVectorArtifact, Orchestrator, Value};

fn task(id: i64, kind: &str) -> Value {
    let mut map = Map::new();
    map.insert("task_id", Value::from(id));
    map.insert("type", Value::from(kind));
    map.insert("status", Value::from("completed"));
    Value::from(map)
}

/// The seed's demo state.
fn demo() -> Orchestrator {
    let mut o = Orchestrator::new();
    o.add_knowledge(
        "embedding_1",
        NumericVectorArtifact::new(vec![0.1, 0.2, 0.3]),
    );
    o.add_knowledge(
        "embedding_2",
        NumericVectorArtifact::new(vec![0.4, 0.5, 0.6]),
    );
    o.add_task(task(1, "evolution"));
    o.add_task(task(2, "evaluation"));
    for s in [0.85, 0.87, 0.9] {
        o.add_score(s);
    }
    o
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn orchestrator_initialization() {
    let o = Orchestrator::new();
    assert!(o.knowledge_base().is_empty());
    assert!(o.task_history().is_empty());
    assert!(o.score_history().is_empty());
    assert_eq!(o.task_history().maxlen(), Some(1000));
    assert_eq!(o.score_history().maxlen(), Some(1000));
    let custom = Orchestrator::with_history_maxlen(Some(500));
    assert_eq!(custom.task_history().maxlen(), Some(500));
    assert_eq!(custom.score_history().maxlen(), Some(500));
}

#[test]
fn add_knowledge() {
    let mut o = Orchestrator::new();
    o.add_knowledge("b", NumericVectorArtifact::new(vec![1.0]));
    o.add_knowledge("a", NumericVectorArtifact::new(vec![2.0]));
    o.add_knowledge("b", NumericVectorArtifact::new(vec![3.0]));
    let entries: Vec<_> = o
        .knowledge_base()
        .iter()
        .map(|(k, a)| (k.as_str(), a.vector[0]))
        .collect();
    assert_eq!(
        entries,
        [("b", 3.0), ("a", 2.0)],
        "a replaced key keeps its place"
    );
}

#[test]
fn add_task() {
    let mut o = Orchestrator::new();
    o.add_task(task(1, "evolution"));
    assert_eq!(o.task_history().len(), 1);
    assert_eq!(o.task_history().back(), Some(&task(1, "evolution")));
}

#[test]
fn add_score() {
    let mut o = Orchestrator::new();
    o.add_score(0.85);
    o.add_score(1_i64);
    let scores: Vec<_> = o.score_history().iter().cloned().collect();
    assert_eq!(scores, [Number::Float(0.85), Number::Int(1)]);
}

#[test]
fn save_state_writes_the_seed_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    demo().save_state(&path).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        fixture("seed_demo.json"),
        "byte for byte what Python writes"
    );
}

#[test]
fn load_state_of_a_missing_file_is_a_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = demo();
    assert!(!o.load_state(dir.path().join("nope.json")).unwrap());
    assert_eq!(o, demo(), "nothing changed");
}

#[test]
fn save_load_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let saved = demo();
    saved.save_state(&path).unwrap();
    let mut loaded = Orchestrator::new();
    assert!(loaded.load_state(&path).unwrap());
    assert_eq!(loaded, saved);
    assert_eq!(loaded.statistics(), saved.statistics());
}

#[test]
fn history_maxlen_is_enforced() {
    let mut o = Orchestrator::with_history_maxlen(Some(3));
    for i in 0..10 {
        o.add_task(task(i, "evolution"));
        #[allow(clippy::cast_precision_loss)]
        o.add_score(i as f64);
    }
    assert_eq!(o.task_history().len(), 3);
    assert_eq!(o.task_history().front(), Some(&task(7, "evolution")));
    let scores: Vec<f64> = o.score_history().iter().map(Number::to_f64).collect();
    assert_eq!(scores, [7.0, 8.0, 9.0]);
}

#[test]
fn statistics() {
    let stats = demo().statistics();
    assert_eq!(stats.knowledge_base_size, 2);
    assert_eq!(stats.task_history_size, 2);
    assert_eq!(stats.score_history_size, 3);
    // Python: sum([0.85, 0.87, 0.9]) / 3
    assert_eq!(stats.average_score, 0.873_333_333_333_333_4);
}

#[test]
fn empty_statistics() {
    let stats = Orchestrator::new().statistics();
    assert_eq!(
        (
            stats.knowledge_base_size,
            stats.task_history_size,
            stats.score_history_size
        ),
        (0, 0, 0)
    );
    assert_eq!(stats.average_score, 0.0);
}

#[test]
fn multiple_save_load_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut o = Orchestrator::new();
    for round in 0..5_i32 {
        o.add_knowledge(
            format!("k{round}"),
            NumericVectorArtifact::new(vec![f64::from(round)]),
        );
        o.add_task(task(i64::from(round), "evolution"));
        o.add_score(f64::from(round) / 10.0);
        o.save_state(&path).unwrap();
        let mut next = Orchestrator::new();
        assert!(next.load_state(&path).unwrap());
        assert_eq!(next, o, "round {round}");
        o = next;
    }
    assert_eq!(o.statistics().knowledge_base_size, 5);
    assert_eq!(o.statistics().task_history_size, 5);
}

#[test]
fn save_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/.penin_omega/state.json");
    demo().save_state(&path).unwrap();
    assert!(path.is_file());
}

#[test]
fn a_corrupt_file_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut good = fixture("seed_demo.json");
    good.truncate(good.len() / 2);
    fs::write(&path, &good).unwrap();
    let mut o = demo();
    let err = o.load_state(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} is not a valid state", path.display())
    );
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.starts_with("unexpected end of input at line "),
        "{source}"
    );
    assert_eq!(o, demo(), "nothing changed");
    assert_eq!(fs::read(&path).unwrap(), good, "the file is untouched");
}

#[test]
fn the_files_maxlen_wins_and_plain_lists_take_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut small = Orchestrator::with_history_maxlen(Some(2));
    small.add_score(1.0);
    small.save_state(&path).unwrap();
    let mut o = Orchestrator::with_history_maxlen(Some(50));
    o.load_state(&path).unwrap();
    assert_eq!(o.score_history().maxlen(), Some(2));

    fs::write(
        &path,
        br#"{"knowledge_base": {}, "task_history": [{"a": 1}], "score_history": [0.5, 1]}"#,
    )
    .unwrap();
    o.load_state(&path).unwrap();
    assert_eq!(o.task_history().maxlen(), Some(50));
    assert_eq!(o.score_history().len(), 2);
}

#[test]
fn unknown_top_level_keys_survive_load_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let input = "{\n  \"version\": 2,\n  \"knowledge_base\": {},\n  \"ledger\": {\n    \"head\": \"abc\"\n  }\n}";
    fs::write(&path, input).unwrap();
    let mut o = Orchestrator::new();
    o.load_state(&path).unwrap();
    o.save_state(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.ends_with("\"maxlen\": 1000\n  },\n  \"version\": 2,\n  \"ledger\": {\n    \"head\": \"abc\"\n  }\n}"),
        "{text}"
    );
}

#[test]
fn every_fixture_resaves_byte_for_byte_through_the_orchestrator() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "seed_demo",
        "empty",
        "random_200x32",
        "unicode",
        "non_finite",
        "float_forms",
        "unbounded_deque",
        "nested_tags",
    ] {
        let path = dir.path().join(format!("{name}.json"));
        fs::write(&path, fixture(&format!("{name}.json"))).unwrap();
        let mut o = Orchestrator::new();
        assert!(o.load_state(&path).unwrap());
        o.save_state(&path).unwrap();
        assert!(
            fs::read(&path).unwrap() == fixture(&format!("{name}.expected.json")),
            "{name}"
        );
    }
}
