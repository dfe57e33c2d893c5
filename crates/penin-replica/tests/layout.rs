//! The layout of a remote, round after round, on an in-memory object store (the tests
//! against a real server are `penin-cli`'s `backup` tests).

use std::path::Path;
use std::sync::Arc;

use object_store::memory::InMemory;
use penin_orchestrator::{Change, Memory, Number};
use penin_replica::{Error, Local, Pick, Remote, Writer, manifest, push_round};

fn remote() -> Remote {
    Remote::with_store("s3://penin/a/b", Arc::new(InMemory::new())).unwrap()
}

fn add_scores(memory: &mut Memory, scores: &[f64]) {
    let changes = scores
        .iter()
        .map(|&s| Change::AddScore(Number::Float(s)))
        .collect();
    memory.commit(changes).unwrap();
    memory.sync().unwrap();
}

fn push(remote: &Remote, writer: &mut Writer, memory: &Memory) -> Option<manifest::Manifest> {
    push_round(remote, writer, &Local::capture(memory).unwrap())
        .unwrap()
        .manifest
}

fn files(path: &Path) -> [Option<Vec<u8>>; 3] {
    [
        std::fs::read(path).ok(),
        std::fs::read(penin_history::journal_path(path)).ok(),
        std::fs::read(penin_history::ledger_path(path)).ok(),
    ]
}

#[test]
fn rounds_upload_only_what_the_remote_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut memory = Memory::open(&path, Some(1000)).unwrap();
    add_scores(&mut memory, &[0.1, 0.2]);
    let remote = remote();
    let mut writer = Writer::new();

    let first = push(&remote, &mut writer, &memory).unwrap();
    assert_eq!((first.number, first.epoch, first.seq), (1, 1, 2));
    // A new state's first change writes an empty snapshot, which the journal extends.
    let empty = first.snapshot.clone().unwrap();
    assert_eq!((empty.first, empty.last), (0, 0));
    assert_eq!(first.journal.len(), 1);
    assert_eq!((first.journal[0].first, first.journal[0].last), (1, 2));
    assert!(first.ledger_seq >= 2);
    assert_eq!(
        (first.ledger_seq, first.ledger.len()),
        (memory.ledger_head().0, 1)
    );
    assert_eq!(
        first.ledger_head,
        penin_history::ledger::hex(&memory.ledger_head().1)
    );

    // Nothing new: no manifest.
    assert_eq!(push(&remote, &mut writer, &memory), None);

    add_scores(&mut memory, &[0.3]);
    let second = push(&remote, &mut writer, &memory).unwrap();
    assert_eq!((second.number, second.epoch, second.seq), (2, 1, 3));
    assert_eq!(
        second.snapshot, first.snapshot,
        "the snapshot is there already"
    );
    assert_eq!(
        second.journal[0], first.journal[0],
        "the first segment is kept"
    );
    assert_eq!(second.journal.len(), 2);
    assert_eq!((second.journal[1].first, second.journal[1].last), (3, 3));
    assert_eq!(second.ledger.len(), 2);

    // A compaction: a snapshot, and a new journal from its first byte.
    memory.compact().unwrap();
    let third = push(&remote, &mut writer, &memory).unwrap();
    let snapshot = third.snapshot.clone().unwrap();
    assert_eq!((snapshot.first, snapshot.last), (3, 3));
    assert!(snapshot.key.starts_with("snapshots/00000000000000000003-"));
    assert_eq!(third.journal.len(), 1);
    assert_eq!((third.journal[0].first, third.journal[0].last), (4, 3));
    assert_eq!(
        third.journal[0].size,
        std::fs::metadata(penin_history::journal_path(&path))
            .unwrap()
            .len()
    );

    // Every point restores to the files as they were, bit for bit.
    let latest = dir.path().join("latest/state.json");
    penin_replica::restore(&remote, &latest, Pick::Latest, false).unwrap();
    assert_eq!(files(&latest), files(&path));
    let loaded = penin_orchestrator::memory::load(&latest, Some(1000)).unwrap();
    assert_eq!(loaded.seq, 3);
    assert_eq!(&loaded.state, memory.state());

    let earlier = dir.path().join("earlier/state.json");
    let restored = penin_replica::restore(&remote, &earlier, Pick::Seq(2), false).unwrap();
    assert_eq!(restored.number, 1);
    let loaded = penin_orchestrator::memory::load(&earlier, Some(1000)).unwrap();
    assert_eq!(loaded.seq, 2);
    assert_eq!(loaded.state.statistics().score_history_size, 2);

    // A restore never replaces a state unless asked to.
    let error = penin_replica::restore(&remote, &earlier, Pick::Latest, false).unwrap_err();
    assert!(matches!(error, Error::Exists(_)), "{error}");
    let error = penin_replica::restore(&remote, &earlier, Pick::Seq(1), true).unwrap_err();
    assert_eq!(
        error.to_string(),
        "s3://penin/a/b: no manifest holds only changes up to 1"
    );
}

#[test]
fn a_writer_is_fenced_once_another_took_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut memory = Memory::open(&path, Some(1000)).unwrap();
    add_scores(&mut memory, &[0.1]);
    let remote = remote();
    let (mut one, mut two) = (Writer::new(), Writer::new());
    assert_eq!(push(&remote, &mut one, &memory).unwrap().epoch, 1);
    add_scores(&mut memory, &[0.2]);
    assert_eq!(push(&remote, &mut two, &memory).unwrap().epoch, 2);
    add_scores(&mut memory, &[0.3]);
    let error = push_round(&remote, &mut one, &Local::capture(&memory).unwrap()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "s3://penin/a/b: fenced: another writer took epoch 2 with manifest 2 (this writer's \
         epoch is 1); this writer stops so as never to interleave its objects with the other's"
    );
    // The writer that holds the latest epoch goes on.
    assert_eq!(push(&remote, &mut two, &memory).unwrap().number, 3);
}

#[test]
fn a_damaged_or_missing_object_fails_the_restore_before_anything_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut memory = Memory::open(&path, Some(1000)).unwrap();
    add_scores(&mut memory, &[0.1, 0.2]);
    memory.compact().unwrap();
    add_scores(&mut memory, &[0.3]);
    let remote = remote();
    let pushed = push(&remote, &mut Writer::new(), &memory).unwrap();
    let target = dir.path().join("target/state.json");
    penin_replica::restore(&remote, &target, Pick::Latest, false).unwrap();
    let before = files(&target);
    // What the directory holds: a failed restore leaves no temporary behind.
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let listed = names();

    let journal = &pushed.journal[0];
    let mut bytes = std::fs::read(penin_history::journal_path(&path)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    remote.overwrite(&journal.key, bytes).unwrap();
    let error = penin_replica::restore(&remote, &target, Pick::Latest, true).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "s3://penin/a/b: s3://penin/a/b/{} is damaged: checksum mismatch: expected XXH3-128 {}, found {}",
            journal.key,
            journal.xxh3,
            manifest::checksum(
                &std::fs::read(penin_history::journal_path(&path))
                    .map(|mut b| {
                        let last = b.len() - 1;
                        b[last] ^= 1;
                        b
                    })
                    .unwrap()
            )
        )
    );
    assert_eq!(files(&target), before);
    assert_eq!(names(), listed);

    let snapshot = pushed.snapshot.unwrap();
    remote.overwrite(&snapshot.key, b"{}".to_vec()).unwrap();
    let error = penin_replica::restore(&remote, &target, Pick::Latest, true).unwrap_err();
    assert!(
        error.to_string().ends_with(&format!(
            "{} is damaged: 2 bytes, where the manifest says {}",
            snapshot.key, snapshot.size
        )),
        "{error}"
    );
    assert_eq!(files(&target), before);
    assert_eq!(names(), listed);
    // Into a directory that did not exist: none is left.
    let fresh = dir.path().join("fresh/state.json");
    penin_replica::restore(&remote, &fresh, Pick::Latest, false).unwrap_err();
    assert!(!dir.path().join("fresh").exists());
}

#[test]
fn a_newer_manifest_is_refused() {
    let remote = remote();
    remote
        .overwrite(
            &manifest::name(1),
            b"{\"penin_manifest\":2,\"whatever\":true}\n".to_vec(),
        )
        .unwrap();
    let error = remote.latest().unwrap_err();
    assert!(
        matches!(error, Error::NewerVersion { found: 2, .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "s3://penin/a/b: s3://penin/a/b/manifests/00000000000000000001.json is a manifest of \
         version 2; this penin reads up to version 1"
    );
}
