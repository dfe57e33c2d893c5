//! The golden files of `golden/`: files of each released version of penin's formats, read
//! as they were written (never regenerated here), so that every older version stays
//! readable; and today's writers, given the same inputs, write the same bytes where that
//! is deterministic.

use std::path::{Path, PathBuf};

use penin_history::checkpoint::{self, Counts};
use penin_history::ledger::{self, Event, Ledger};
use penin_orchestrator::{Format, Orchestrator, Value};
use penin_tests::assert_same_document;

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(golden(rel)).unwrap()
}

fn unhex(text: &str) -> [u8; 32] {
    std::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
}

const LEDGER: &str = "ledger-v1/state.json.ledger";
const LEDGER_HEAD: &str = "fb2f93a7d5c36791b4d3b28af673bd5cdaed2346eb2bbdcf61306be66aff9977";
const CHECKPOINT_ID: &str = "20261129T103317.980Z";

#[test]
fn the_version_1_ledger_reads_and_its_chain_is_sound() {
    let path = golden(LEDGER);
    let summary = ledger::verify(&path).unwrap();
    assert_eq!(summary.lines, 7);
    assert_eq!(summary.head, unhex(LEDGER_HEAD));
    assert_eq!(summary.torn, None);
    let lines = ledger::read(&path).unwrap();
    let events: Vec<&str> = lines.iter().map(|l| l.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "compact",
            "add_knowledge",
            "add_task",
            "add_score",
            "compact",
            "checkpoint",
            "add_score"
        ]
    );
    let put = &lines[1];
    assert_eq!(put.time, "2026-11-29T10:33:17.892989Z");
    assert_eq!(put.fields["journal"], Value::from(1_i64));
    assert_eq!(put.fields["key"], Value::from("emb é"));
    assert_eq!(put.fields["dimensions"], Value::from(3_i64));
    assert_eq!(lines[5].fields["tag"], Value::from("golden"));
    assert_eq!(lines[5].fields["id"], Value::from(CHECKPOINT_ID));
    // Opened for appending, it goes on after its last line.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("state.json.ledger");
    std::fs::copy(&path, &copy).unwrap();
    let (ledger, torn) = Ledger::open(&copy).unwrap();
    assert_eq!(
        (ledger.next_seq(), ledger.head(), torn),
        (8, unhex(LEDGER_HEAD), None)
    );
}

#[test]
fn todays_ledger_writer_writes_the_version_1_bytes_again() {
    let lines = ledger::read(golden(LEDGER)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json.ledger");
    let (mut ledger, _) = Ledger::open(&path).unwrap();
    for line in &lines {
        let event = Event::new(
            line.time.clone(),
            line.event.clone(),
            line.fields.clone(),
            line.digest,
        );
        let written = ledger.append(&[event]).unwrap();
        assert_eq!(written[0].hash, line.hash, "seq {}", line.seq);
    }
    ledger.sync().unwrap();
    assert!(
        std::fs::read(&path).unwrap() == read(LEDGER),
        "the same events are written as other bytes"
    );
}

#[test]
fn the_version_1_checkpoint_lists_verifies_and_loads() {
    let dir = golden("checkpoint-v1");
    let listing = checkpoint::list(&dir).unwrap();
    assert!(listing.unfinished.is_empty(), "{:?}", listing.unfinished);
    let [meta] = &listing.checkpoints[..] else {
        panic!("{:?}", listing.checkpoints);
    };
    assert_eq!(meta.id, CHECKPOINT_ID);
    assert_eq!(meta.time.to_string(), "2026-11-29T10:33:17.980215Z");
    assert_eq!(meta.tag.as_deref(), Some("golden"));
    assert_eq!((meta.journal, meta.ledger_seq, meta.size), (3, 5, 482));
    assert_eq!(
        meta.ledger_head,
        unhex("f6e6b33585401a047e55f35e05ca4dbf8e7cfe5709f58d97be4a517dedf740cc")
    );
    assert_eq!(
        meta.blake2b,
        unhex("73ab327513343874185d53f27f3cf0c2996a1c72bbc103e02a23c86bd7f2b319")
    );
    assert_eq!(
        meta.counts,
        Counts {
            knowledge: 1,
            tasks: 1,
            scores: 1
        }
    );
    checkpoint::verify(&dir, meta).unwrap();
    let mut state = Orchestrator::new();
    assert!(state.load_state(checkpoint::data_path(&dir, meta)).unwrap());
    check_state(&state);
    assert!(state.to_bytes() == read(&format!("checkpoint-v1/{CHECKPOINT_ID}.json")));
}

/// The state of the golden files, value by value.
fn check_state(state: &Orchestrator) {
    let artifact = &state.knowledge_base()["emb é"];
    let bits: Vec<u64> = artifact.vector.iter().map(|f| f.to_bits()).collect();
    assert_eq!(
        bits,
        [0.1_f64.to_bits(), (-0.0_f64).to_bits(), 1e300_f64.to_bits()]
    );
    assert_eq!(artifact.metadata["source"], Value::from("golden"));
    assert_eq!(state.task_history().len(), 1);
    assert_eq!(
        state
            .score_history()
            .iter()
            .map(|n| n.to_f64().to_bits())
            .collect::<Vec<_>>(),
        [0.85_f64.to_bits()]
    );
    assert_eq!(state.task_history().maxlen(), Some(1000));
}

#[test]
fn the_compressed_snapshots_read_as_the_state_they_hold() {
    for (rel, format) in [
        ("json-gz/state.json.gz", Format::JsonGz),
        ("json-zst/state.json.zst", Format::JsonZst),
    ] {
        let dir = rel.split('/').next().unwrap();
        let expected = read(&format!("{dir}/expected.json"));
        let bytes = read(rel);
        assert_eq!(Format::detect(&bytes), format, "{rel}");
        assert!(
            penin_formats::decompress(format, &bytes[..]).unwrap() == expected,
            "{rel}: the JSON inside is not expected.json"
        );
        let mut state = Orchestrator::new();
        assert_eq!(
            state.load_state_format(golden(rel)).unwrap(),
            Some(format),
            "{rel}"
        );
        check_state(&state);
        assert!(state.to_bytes() == expected, "{rel}");
    }
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
