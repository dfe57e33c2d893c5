//! A state kept durable change by change: journal, replay, compaction, foreign snapshots,
//! torn tails and power loss at every step.
#![allow(clippy::cast_precision_loss)] // small counts as floats

mod common;

use std::path::Path;

use penin_orchestrator::memory::{self, Memory, Notice};
use penin_orchestrator::{Change, Error, ErrorKind, Number, Value};

use common::{knowledge, score, state_in, task};

/// The ids of the knowledge keys, tasks and scores a state holds, in order.
fn contents(state: &penin_orchestrator::Orchestrator) -> (Vec<String>, Vec<Value>, Vec<f64>) {
    (
        state.knowledge_base().keys().cloned().collect(),
        state.task_history().iter().cloned().collect(),
        state.score_history().iter().map(Number::to_f64).collect(),
    )
}

#[test]
fn changes_are_replayed_after_a_restart_and_sequence_numbers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, Some(1000)).unwrap();
    assert_eq!(memory.commit(vec![knowledge(1), task(1)]).unwrap(), [1, 2]);
    memory.sync().unwrap();
    assert_eq!(memory.commit(vec![score(1)]).unwrap(), [3]);
    memory.sync().unwrap();
    let expected = contents(memory.state());
    // Killed here: no compaction. The snapshot is the empty state the journal extends.
    drop(memory);
    let on_disk =
        penin_codec::from_slice::<penin_codec::Document>(&std::fs::read(&path).unwrap()).unwrap();
    assert!(on_disk.knowledge_base.is_empty());

    let mut memory = Memory::open(&path, Some(1000)).unwrap();
    assert_eq!(contents(memory.state()), expected);
    assert_eq!(memory.seq(), 3);
    assert_eq!(memory.commit(vec![knowledge(2)]).unwrap(), [4]);
    memory.sync().unwrap();
    let loaded = memory::load(&path, Some(1000)).unwrap();
    assert_eq!(loaded.replayed, 4);
    assert_eq!(contents(&loaded.state), contents(memory.state()));
}

#[test]
fn a_compaction_leaves_the_whole_state_in_the_snapshot_and_an_empty_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory
        .commit(
            (0..50)
                .flat_map(|n| [knowledge(n), task(n), score(n)])
                .collect(),
        )
        .unwrap();
    memory.compact().unwrap();
    assert!(memory.is_compact());
    assert_eq!(memory.seq(), 150);
    // The snapshot alone, read as the Python tool reads it, is the whole state.
    let alone = penin_codec::to_vec(memory.state().document());
    assert_eq!(std::fs::read(&path).unwrap(), alone);
    let journal = std::fs::read(penin_history::journal_path(&path)).unwrap();
    assert_eq!(journal.len(), penin_history::journal::HEADER_LEN);
    assert!(!memory::next_journal_path(&path).exists());
    // And sequence numbers go on after it.
    assert_eq!(memory.commit(vec![score(99)]).unwrap(), [151]);
    drop(memory);
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.seq(), 151);
    assert_eq!(memory.state().score_history().len(), 51);
}

#[test]
fn a_snapshot_replaced_by_someone_else_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![knowledge(1), knowledge(2)]).unwrap();
    memory.sync().unwrap();
    drop(memory);
    // Another program saves a state of its own over the snapshot.
    let foreign =
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [1.0]\n}";
    std::fs::write(&path, foreign).unwrap();
    let journal = std::fs::read(penin_history::journal_path(&path)).unwrap();

    for error in [
        Memory::open(&path, None).err().unwrap(),
        memory::load(&path, None).err().unwrap(),
        memory::append(&path, None, score(1)).err().unwrap(),
    ] {
        assert_eq!(error.kind(), ErrorKind::ForeignSnapshot, "{error}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("state.json.journal"), "{message}");
        assert!(message.contains("held 2 change(s)"), "{message}");
        assert!(message.contains("penin recover"), "{message}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), foreign);
    assert_eq!(
        std::fs::read(penin_history::journal_path(&path)).unwrap(),
        journal
    );

    // A removed snapshot is refused the same way.
    std::fs::remove_file(&path).unwrap();
    let error = Memory::open(&path, None).err().unwrap();
    assert!(matches!(error, Error::Foreign { .. }), "{error}");
    assert!(error.to_string().contains("removed"), "{error}");
}

#[test]
fn a_one_shot_append_reads_no_snapshot_and_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    // The first append starts the snapshot and journal.
    assert_eq!(memory::append(&path, None, knowledge(1)).unwrap().seq, 1);
    assert_eq!(memory::append(&path, None, task(1)).unwrap().seq, 2);
    assert_eq!(memory::append(&path, None, score(1)).unwrap().seq, 3);
    let loaded = memory::load(&path, None).unwrap();
    assert_eq!(
        contents(&loaded.state),
        (vec!["k1".to_owned()], vec![task_value(1)], vec![0.125])
    );
    assert_eq!(loaded.seq, 3);
    // Each append wrote its ledger line: the first one's compaction started the state.
    let lines = penin_history::ledger::read(penin_history::ledger_path(&path)).unwrap();
    let events: Vec<(&str, &Value)> = lines
        .iter()
        .map(|l| (l.event.as_str(), &l.fields["journal"]))
        .collect();
    assert_eq!(
        events,
        [
            ("compact", &Value::from(0_i64)),
            ("add_knowledge", &Value::from(1_i64)),
            ("add_task", &Value::from(2_i64)),
            ("add_score", &Value::from(3_i64))
        ]
    );
    assert_eq!(lines[1].fields["key"], Value::from("k1"));
    penin_history::ledger::verify(penin_history::ledger_path(&path)).unwrap();
}

fn task_value(n: usize) -> Value {
    let Change::AddTask(value) = task(n) else {
        unreachable!()
    };
    value
}

#[test]
fn a_torn_append_is_left_out_by_readers_and_cut_off_by_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![knowledge(1), knowledge(2)]).unwrap();
    memory.sync().unwrap();
    drop(memory);
    let journal_path = penin_history::journal_path(&path);
    let whole = std::fs::read(&journal_path).unwrap();
    let ledger_path = penin_history::ledger_path(&path);
    let ledger = std::fs::read(&ledger_path).unwrap();
    let mut last = Vec::new();
    let mut payload = Vec::new();
    knowledge(3).encode(&mut payload);
    penin_history::journal::encode_frame(&mut last, 3, 0, 1, &payload);
    for cut in 1..last.len() {
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&last[..cut]);
        std::fs::write(&journal_path, &bytes).unwrap();
        let loaded = memory::load(&path, None).unwrap();
        assert_eq!(loaded.state.knowledge_base().len(), 2, "cut {cut}");
        assert!(
            matches!(
                &loaded.notices[..],
                [Notice::TornJournal { cut: false, .. }]
            ),
            "cut {cut}: {:?}",
            loaded.notices
        );
        assert_eq!(
            std::fs::read(&journal_path).unwrap(),
            bytes,
            "a reader changes nothing"
        );
        let mut memory = Memory::open(&path, None).unwrap();
        let notices = memory.take_notices();
        assert!(
            matches!(&notices[..], [Notice::TornJournal { cut: true, .. }]),
            "cut {cut}: {notices:?}"
        );
        assert_eq!(std::fs::read(&journal_path).unwrap(), whole, "cut {cut}");
        assert_eq!(memory.commit(vec![knowledge(4)]).unwrap(), [3]);
        drop(memory);
        std::fs::write(&journal_path, &whole).unwrap();
        std::fs::write(&ledger_path, &ledger).unwrap();
    }
}

#[test]
fn damage_before_the_last_record_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    for n in 0..3 {
        memory.commit(vec![knowledge(n)]).unwrap();
    }
    drop(memory);
    let journal_path = penin_history::journal_path(&path);
    let mut bytes = std::fs::read(&journal_path).unwrap();
    let second = penin_history::journal::scan(bytes.clone(), &journal_path)
        .unwrap()
        .records[1];
    bytes[second.offset as usize + 30] ^= 0x10;
    std::fs::write(&journal_path, &bytes).unwrap();
    for error in [
        Memory::open(&path, None).err().unwrap(),
        memory::load(&path, None).err().unwrap(),
    ] {
        assert_eq!(error.kind(), ErrorKind::JournalDamaged, "{error}");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "damaged at byte offset {} (record with sequence number 2)",
                second.offset
            )),
            "{message}"
        );
    }
    assert_eq!(std::fs::read(&journal_path).unwrap(), bytes);
}

#[test]
fn a_journal_of_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    memory::append(&path, None, score(1)).unwrap();
    let journal_path = penin_history::journal_path(&path);
    let mut bytes = std::fs::read(&journal_path).unwrap();
    bytes[8] = 7;
    std::fs::write(&journal_path, &bytes).unwrap();
    let error = memory::load(&path, None).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::NewerVersion, "{error}");
    assert!(error.to_string().contains("version 7"), "{error}");
}

/// What a power loss can leave, after each call of a compaction and of the appends around
/// it: every synced change is in the state once, and nothing else is.
#[cfg(unix)]
#[test]
fn a_power_loss_at_any_call_of_appends_and_compaction_loses_no_synced_change() {
    use penin_store::testing::CrashFs;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let path = root.join("state.json");
    // A state with a snapshot and three journaled changes, all durable, to start from.
    {
        let mut memory = Memory::open(&path, None).unwrap();
        memory.commit(vec![knowledge(0), task(0)]).unwrap();
        memory.sync().unwrap();
        memory.commit(vec![score(0)]).unwrap();
        memory.sync().unwrap();
    }
    let fs = CrashFs::at(&root).unwrap();
    let mut memory = Memory::open_in(&fs, &path, None).unwrap();
    // Which changes each call's images must hold at least (synced) and at most (written).
    let mut synced_after: Vec<(usize, u64, u64)> = Vec::new();
    let mark = |fs: &CrashFs, memory: &Memory<&CrashFs>, synced: u64| {
        (fs.ops().len(), synced, memory.seq())
    };
    synced_after.push(mark(&fs, &memory, 3));
    memory.commit(vec![knowledge(1), task(1)]).unwrap();
    synced_after.push(mark(&fs, &memory, 3));
    memory.sync().unwrap();
    synced_after.push(mark(&fs, &memory, 5));
    memory.commit(vec![score(1)]).unwrap();
    synced_after.push(mark(&fs, &memory, 5));
    memory.compact().unwrap();
    synced_after.push(mark(&fs, &memory, 6));
    memory.commit(vec![knowledge(2)]).unwrap();
    synced_after.push(mark(&fs, &memory, 6));
    memory.sync().unwrap();
    synced_after.push(mark(&fs, &memory, 7));
    let expected = contents(memory.state());
    drop(memory);

    let restart = tempfile::tempdir().unwrap();
    let calls = fs.ops().len();
    let mut images = 0;
    for call in 0..=calls {
        // At least what was synced at the last mark at or before this call (before the
        // first one, while opening, the three changes made before); at most what was
        // written by the first mark at or after it (a call inside an operation may have
        // written its changes already).
        let least = synced_after
            .iter()
            .rev()
            .find(|(at, _, _)| *at <= call)
            .map_or(3, |mark| mark.1);
        let most = synced_after
            .iter()
            .find(|(at, _, _)| *at >= call)
            .map_or(7, |mark| mark.2);
        for image in fs.images_after(call).unwrap() {
            images += 1;
            let here = restart.path().join(format!("{call}-{images}"));
            image.materialise(&here).unwrap();
            let path = here.join("state.json");
            let memory =
                Memory::open(&path, None).unwrap_or_else(|e| panic!("call {call}, {image}: {e}"));
            let (keys, tasks, scores) = contents(memory.state());
            let seq = (keys.len() + tasks.len() + scores.len()) as u64;
            assert!(
                (least..=most).contains(&seq),
                "call {call}, {image}: {seq} changes, expected {least}..={most}"
            );
            // Sequence numbers never go back, even past changes the crash took.
            assert!(memory.seq() >= seq, "call {call}, {image}");
            // Exactly the first `seq` changes, each once.
            let (all_keys, all_tasks, all_scores) = &expected;
            let prefix = |n: u64| -> (usize, usize, usize) {
                // Changes in order: k0 t0 s0 | k1 t1 s1 | k2.
                let order = ["k", "t", "s", "k", "t", "s", "k"];
                let done = &order[..n as usize];
                let count = |c: &str| done.iter().filter(|x| **x == c).count();
                (count("k"), count("t"), count("s"))
            };
            let (k, t, s) = prefix(seq);
            assert_eq!(keys, all_keys[..k], "call {call}, {image}");
            assert_eq!(tasks, all_tasks[..t], "call {call}, {image}");
            assert_eq!(scores, all_scores[..s], "call {call}, {image}");
            assert!(
                !memory::next_journal_path(&path).exists(),
                "call {call}, {image}"
            );
        }
    }
    assert!(images > calls, "{images} images for {calls} calls");
    println!(
        "power loss of appends and a compaction: {calls} calls, {images} images, each opened whole"
    );
}

#[test]
fn load_of_nothing_is_an_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = memory::load(state_in(&dir), Some(3)).unwrap();
    assert!(!loaded.exists());
    assert_eq!(loaded.state.task_history().maxlen(), Some(3));
    assert!(!Path::new(&state_in(&dir)).exists());
}

#[test]
fn a_snapshot_replaced_after_a_compaction_is_taken_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![knowledge(1)]).unwrap();
    memory.compact().unwrap();
    drop(memory);
    // penin exited cleanly; the Python tool saves the state it loaded, plus a score.
    let python =
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [0.5]\n}";
    std::fs::write(&path, python).unwrap();
    let loaded = memory::load(&path, None).unwrap();
    assert_eq!(loaded.state.score_history().len(), 1);
    assert!(matches!(
        &loaded.notices[..],
        [Notice::SnapshotReplaced { .. }]
    ));
    let appended = memory::append(&path, None, score(2)).unwrap();
    assert_eq!(appended.seq, 2, "sequence numbers go on");
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.state().score_history().len(), 2);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        python,
        "the snapshot is left as it is"
    );
}

/// A compaction that failed before its snapshot was in place may leave a prepared journal
/// naming a snapshot with the same bytes as the one in place (a save with nothing to fold).
/// Changes made after it are never set aside for it.
#[test]
fn a_stale_prepared_journal_never_takes_the_place_of_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![score(1)]).unwrap();
    memory.compact().unwrap();
    // What a compaction that failed at its rename leaves: a prepared journal naming a file
    // with the snapshot's bytes, at the state's sequence number.
    let journal_path = penin_history::journal_path(&path);
    std::fs::copy(&journal_path, memory::next_journal_path(&path)).unwrap();
    memory.commit(vec![score(2), score(3)]).unwrap();
    memory.sync().unwrap();
    drop(memory);
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.state().score_history().len(), 3);
    assert!(!memory::next_journal_path(&path).exists());
}

/// The ledger names changes a power loss took from the journal: after the `lost` line,
/// sequence numbers go on past them, and no second `lost` line follows.
#[test]
fn sequence_numbers_go_on_past_changes_a_power_loss_took() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![score(1), score(2), score(3)]).unwrap();
    memory.sync().unwrap();
    drop(memory);
    // The last record never reached the disk; its ledger line did.
    let journal_path = penin_history::journal_path(&path);
    let bytes = std::fs::read(&journal_path).unwrap();
    let scan = penin_history::journal::scan(bytes.clone(), &journal_path).unwrap();
    std::fs::write(&journal_path, &bytes[..scan.records[2].offset as usize]).unwrap();

    let mut memory = Memory::open(&path, None).unwrap();
    let notices = memory.take_notices();
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, Notice::LostChanges { from: 3, to: 3 })),
        "{notices:?}"
    );
    assert_eq!(memory.state().score_history().len(), 2);
    assert_eq!(memory.commit(vec![score(4)]).unwrap(), [4]);
    drop(memory);
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(memory.seq(), 4);
    drop(memory);
    let ledger_path = penin_history::ledger_path(&path);
    let lines = penin_history::ledger::read(&ledger_path).unwrap();
    let lost = lines.iter().filter(|l| l.event == "lost").count();
    assert_eq!(lost, 1, "{lines:?}");
    let numbers: Vec<&Value> = lines
        .iter()
        .filter(|l| l.event == "add_score")
        .map(|l| &l.fields["journal"])
        .collect();
    assert_eq!(
        numbers,
        [1_i64, 2, 3, 4].map(Value::from).iter().collect::<Vec<_>>(),
        "no number given twice"
    );
    penin_history::ledger::verify(&ledger_path).unwrap();
}

/// The Python tool saves the snapshot while penin runs: penin's compaction (at its clean
/// end, say) refuses to write over it, and nothing is lost.
#[test]
fn a_compaction_never_writes_over_a_snapshot_someone_else_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![score(1)]).unwrap();
    memory.compact().unwrap();
    memory.commit(vec![score(2)]).unwrap();
    let python =
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [9.5]\n}";
    std::fs::write(&path, python).unwrap();
    let error = memory.compact().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ForeignSnapshot, "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), python);
    drop(memory);
    let error = Memory::open(&path, None).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::ForeignSnapshot, "{error}");
}

/// A reader beside a writer that compacts again and again reads a state from one side of
/// each compaction or the other: never an error, never fewer changes than it read before.
#[test]
fn readers_beside_compactions_see_whole_states_that_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![score(0)]).unwrap();
    memory.compact().unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 1..=150 {
                memory.commit(vec![score(n)]).unwrap();
                memory.sync().unwrap();
                memory.compact().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut seen = 0;
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
            let loaded = memory::load(&path, None)
                .unwrap_or_else(|e| panic!("read {reads}, after {seen} scores: {e}"));
            let now = loaded.state.score_history().len();
            assert!(now >= seen, "read {reads}: {now} scores after {seen}");
            seen = now;
            reads += 1;
        }
        assert!(reads > 1);
    });
}

/// A state fed by one-shot appends alone compacts once its journal outgrows the snapshot.
#[test]
fn one_shot_appends_compact_once_the_journal_outgrows_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let journal_path = penin_history::journal_path(&path);
    let mut compactions = 0;
    for n in 0..40 {
        let before = std::fs::metadata(&journal_path).map_or(0, |m| m.len());
        memory::append_compacting_at(&path, None, knowledge(n), 0).unwrap();
        let after = std::fs::metadata(&journal_path).unwrap().len();
        if after < before {
            compactions += 1;
            assert_eq!(after, 96, "a compaction leaves an empty journal");
        }
        // Never much more journal than snapshot.
        let snapshot = std::fs::metadata(&path).unwrap().len();
        assert!(
            after <= snapshot + 200,
            "{after} bytes of journal over {snapshot}"
        );
    }
    assert!(compactions >= 2, "{compactions} compactions");
    let loaded = memory::load(&path, None).unwrap();
    assert_eq!(loaded.state.knowledge_base().len(), 40);
    penin_history::ledger::verify(penin_history::ledger_path(&path)).unwrap();
}

/// `recover --keep-journal` applies changes whose ledger lines a crash kept from the ledger:
/// they get their lines, marked recovered.
#[test]
fn recover_keeping_the_journal_writes_the_ledger_lines_a_crash_kept_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![score(1), score(2)]).unwrap();
    memory.sync().unwrap();
    drop(memory);
    // The last ledger line never reached the disk.
    let ledger_path = penin_history::ledger_path(&path);
    let ledger = std::fs::read(&ledger_path).unwrap();
    let cut = ledger[..ledger.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&ledger_path, &ledger[..cut]).unwrap();
    // And another program saved the snapshot.
    std::fs::write(
        &path,
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [9]\n}",
    )
    .unwrap();
    memory::recover(&path, None, memory::Recovery::KeepJournal).unwrap();
    let lines = penin_history::ledger::read(&ledger_path).unwrap();
    let second = lines
        .iter()
        .find(|l| l.event == "add_score" && l.fields["journal"] == Value::from(2_i64))
        .unwrap_or_else(|| panic!("no line for change 2: {lines:?}"));
    assert_eq!(second.fields["recovered"], Value::Bool(true));
    penin_history::ledger::verify(&ledger_path).unwrap();
    let loaded = memory::load(&path, None).unwrap();
    assert_eq!(loaded.state.score_history().len(), 3);
}
