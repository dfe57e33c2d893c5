//! Helpers shared by the tests of a state kept durable change by change.
#![allow(dead_code, clippy::cast_precision_loss)] // each test binary uses some; small counts as floats

use std::path::PathBuf;

use penin_orchestrator::{Change, Map, Number, NumericVectorArtifact, Value};

/// The `n`th artifact: key `k<n>`, a small vector, metadata `{"n": n}`.
pub fn knowledge(n: usize) -> Change {
    let mut metadata = Map::new();
    metadata.insert("n", Value::from(i64::try_from(n).unwrap()));
    Change::AddKnowledge {
        key: format!("k{n}"),
        artifact: NumericVectorArtifact::new(vec![n as f64, 0.5, -1.25]).with_metadata(metadata),
    }
}

/// The `n`th task record: `{"n": n}`.
pub fn task(n: usize) -> Change {
    let mut task = Map::new();
    task.insert("n", Value::from(i64::try_from(n).unwrap()));
    Change::AddTask(Value::from(task))
}

/// The `n`th score: `n / 8`.
pub fn score(n: usize) -> Change {
    Change::AddScore(Number::Float(n as f64 / 8.0))
}

/// A state in a directory that does not exist yet.
pub fn state_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("memory").join("state.json")
}
