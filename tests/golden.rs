//! Golden files: a file of each version of penin's own formats, written once and committed
//! (`golden/FORMAT-vN/`), loads as the state it was written from, forever. Tests only read
//! them; they are never regenerated.

use std::path::{Path, PathBuf};

use penin_orchestrator::{Format, Orchestrator};
use penin_tests::assert_same_document;

fn golden(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(dir)
}

/// Version 1 of the arrow snapshot: `state.arrow` loads as `state.json`, bit for bit, and
/// gives back that JSON byte for byte.
#[test]
fn arrow_v1_loads_as_its_json() {
    let dir = golden("arrow-v1");
    let mut arrow = Orchestrator::with_history_maxlen(Some(7));
    assert_eq!(
        arrow.load_state_format(dir.join("state.arrow")).unwrap(),
        Some(Format::Arrow)
    );
    let mut json = Orchestrator::new();
    assert_eq!(
        json.load_state_format(dir.join("state.json")).unwrap(),
        Some(Format::Json)
    );
    assert_same_document(arrow.document(), json.document());
    assert!(
        arrow.to_bytes() == std::fs::read(dir.join("state.json")).unwrap(),
        "the golden arrow file no longer loads as its JSON"
    );
    // What the file holds beyond the columns: the bounds, an extra key of an artifact, an
    // extra top-level key.
    assert_eq!(arrow.task_history().maxlen(), Some(1000));
    assert_eq!(arrow.score_history().maxlen(), Some(3));
    assert_eq!(arrow.knowledge_base()["e2 \u{1F600}"].extra().len(), 1);
    assert!(arrow.extra().contains_key("agent"));
    assert!(arrow.knowledge_base()["e1"].vector[3].is_nan());
}
