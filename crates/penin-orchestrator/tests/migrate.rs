//! Migrating a state to another snapshot format in place, and one-shot appends that create
//! a state in the format asked for.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{knowledge, score, state_in, task};
use penin_history::checkpoint::{self, Selector};
use penin_history::ledger;
use penin_orchestrator::memory::{self, MIGRATE_TAG, Memory};
use penin_orchestrator::{Format, Orchestrator, Value};

/// Every file under `dir` with its bytes and modification time.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path, (bytes, metadata.modified().unwrap()));
            }
        }
    }
    files
}

/// A state at `path` in `format`, with a snapshot and three changes in its journal.
fn state(path: &Path, format: Format) -> Orchestrator {
    let mut memory = Memory::open(path, None).unwrap();
    memory.set_format(format);
    memory.commit(vec![knowledge(1), task(1)]).unwrap();
    memory.compact().unwrap();
    memory
        .commit(vec![knowledge(2), score(1), score(2)])
        .unwrap();
    memory.sync().unwrap();
    memory.state().clone()
}

fn json(state: &Orchestrator) -> Vec<u8> {
    state.to_bytes()
}

/// The seed JSON a file in `format` holds (an arrow file is not JSON: the state it holds).
fn seed_json(format: Format, bytes: &[u8]) -> Vec<u8> {
    if format == Format::Arrow {
        penin_codec::to_vec(&penin_formats::arrow::from_slice(bytes, None).unwrap())
    } else {
        penin_formats::decompress(format, bytes).unwrap()
    }
}

#[test]
fn every_format_migrates_to_every_other_after_a_checkpoint() {
    for from in Format::ALL {
        for to in Format::ALL.into_iter().filter(|&to| to != from) {
            let dir = tempfile::tempdir().unwrap();
            let path = state_in(&dir);
            let before = state(&path, from);

            let mut memory = Memory::open(&path, None).unwrap();
            let migrated = memory.migrate(to).unwrap();
            assert_eq!(migrated.migration.from, Some(from));
            assert_eq!(migrated.migration.to, to);
            assert!(migrated.migration.journal_bytes > 0, "{from} -> {to}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(Format::detect(&bytes), to, "{from} -> {to}");
            assert_eq!(migrated.snapshot_bytes, bytes.len() as u64);
            assert!(
                memory.is_compact(),
                "{from} -> {to}: the journal was folded in"
            );
            assert_eq!(memory.format(), to);
            assert_eq!(memory.snapshot_format(), Some(to));
            drop(memory);

            // The same state, in the new format.
            let loaded = memory::load(&path, None).unwrap();
            assert_eq!(loaded.format, Some(to));
            assert!(json(&loaded.state) == json(&before), "{from} -> {to}");

            // The checkpoint holds the state as it was, and is tagged.
            let dir = penin_history::checkpoints_dir(&path);
            let listing = checkpoint::list(&dir).unwrap();
            let meta = checkpoint::select(&listing.checkpoints, &Selector::Tag(MIGRATE_TAG.into()))
                .unwrap();
            assert_eq!(Some(meta), migrated.checkpoint.as_ref());
            checkpoint::verify(&dir, meta).unwrap();
            let data = std::fs::read(checkpoint::data_path(&dir, meta)).unwrap();
            assert!(
                seed_json(Format::detect(&data), &data) == json(&before),
                "{from} -> {to}"
            );

            // The ledger says what was done, after the checkpoint and the compaction.
            let lines = ledger::read(penin_history::ledger_path(&path)).unwrap();
            let events: Vec<&str> = lines.iter().map(|l| l.event.as_str()).collect();
            assert_eq!(
                events[events.len() - 3..],
                ["checkpoint", "compact", "migrate"]
            );
            let last = lines.last().unwrap();
            assert_eq!(last.fields["from"], Value::from(from.name()));
            assert_eq!(last.fields["to"], Value::from(to.name()));
            assert_eq!(last.fields["checkpoint"], Value::from(meta.id.as_str()));
            ledger::verify(penin_history::ledger_path(&path)).unwrap();

            // Later compactions keep the new format.
            let mut memory = Memory::open(&path, None).unwrap();
            memory.commit(vec![score(3)]).unwrap();
            memory.compact().unwrap();
            assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), to);
        }
    }
}

#[test]
fn migrating_to_the_format_it_has_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    state(&path, Format::JsonGz);
    let before = tree(dir.path());
    let mut memory = Memory::open(&path, None).unwrap();
    let migrated = memory.migrate(Format::JsonGz).unwrap();
    assert!(migrated.migration.is_noop());
    assert_eq!(migrated.checkpoint, None);
    drop(memory);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn a_plan_changes_no_file_and_says_what_a_migration_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    state(&path, Format::Json);
    let before = tree(dir.path());
    let plan = memory::plan_migration(&path, &memory::Options::new(None), Format::JsonZst).unwrap();
    assert_eq!(tree(dir.path()), before, "a plan changed a file");
    assert_eq!(plan.from, Some(Format::Json));
    assert_eq!(plan.to, Format::JsonZst);
    assert_eq!(plan.seq, 5);
    assert_eq!(plan.snapshot_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(
        plan.journal_bytes,
        std::fs::metadata(penin_history::journal_path(&path))
            .unwrap()
            .len()
    );
    assert_eq!(plan.checkpoint_tag, "pre-migrate");
    assert!(!plan.is_noop());
    // What the memory that would do it says is the same.
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.migration(Format::JsonZst), plan);
}

#[test]
fn a_one_shot_append_creates_a_state_in_the_format_asked_for() {
    for format in Format::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = state_in(&dir);
        let appended = memory::append_as(&path, None, knowledge(1), Some(format)).unwrap();
        assert_eq!(appended.seq, 1);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(Format::detect(&bytes), format, "the first snapshot");
        let empty = seed_json(format, &bytes);
        assert!(
            empty == Orchestrator::with_history_maxlen(None).to_bytes(),
            "{format}"
        );
        // Later appends to it, without a format, keep it and land in its journal.
        memory::append(&path, None, score(1)).unwrap();
        let loaded = memory::load(&path, None).unwrap();
        assert_eq!((loaded.format, loaded.seq), (Some(format), 2));
        assert_eq!(loaded.state.knowledge_base().len(), 1);
    }
    // Without a format, JSON.
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    memory::append(&path, None, knowledge(1)).unwrap();
    assert_eq!(Format::detect(&std::fs::read(&path).unwrap()), Format::Json);
}

#[test]
fn a_one_shot_append_to_an_existing_state_does_not_rewrite_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    memory::append(&path, None, knowledge(1)).unwrap();
    let snapshot = std::fs::read(&path).unwrap();
    memory::append_as(&path, None, knowledge(2), Some(Format::JsonZst)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), snapshot);
}
