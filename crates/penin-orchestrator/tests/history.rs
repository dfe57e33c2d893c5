//! A memory's past: checkpoints taken, restored and pruned; a replaced snapshot recovered; a
//! damaged journal repaired; and a power loss at every call of a restore. Every test ends
//! with the audit ledger's chain checked.
#![allow(clippy::cast_precision_loss)] // small counts as floats

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use penin_history::checkpoint::{self, Counts, Meta, NewCheckpoint, Reason, Selector};
use penin_history::journal;
use penin_history::ledger::{self, Line};
use penin_history::time::Timestamp;
use penin_orchestrator::memory::{self, Memory, Notice, Recovery};
use penin_orchestrator::{
    Change, ErrorKind, Map, Number, NumericVectorArtifact, Orchestrator, Value,
};

use common::{knowledge, score, state_in, task};

/// A state in the seed's format, as the snapshot and a checkpoint's data file hold it.
fn seed(state: &Orchestrator) -> Vec<u8> {
    penin_codec::to_vec(state.document())
}

/// [`seed`] as text, for messages that show it.
fn text(state: &Orchestrator) -> String {
    String::from_utf8(seed(state)).unwrap()
}

/// A state no penin wrote: what another program saves over the snapshot.
fn foreign_state() -> Orchestrator {
    let mut state = Orchestrator::new();
    state.add_knowledge(
        "foreign",
        NumericVectorArtifact::new(vec![9.0, 8.0, 7.0]).with_metadata(Map::new()),
    );
    state.add_score(1.0);
    state
}

/// `changes` applied to a copy of `state`.
fn applied(state: &Orchestrator, changes: impl IntoIterator<Item = Change>) -> Orchestrator {
    let mut state = state.clone();
    for change in changes {
        change.apply(&mut state);
    }
    state
}

/// Every file under the state's directory, with its bytes, in order.
fn disk(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(path.parent().unwrap(), &mut out);
    out.sort();
    out
}

fn ledger_lines(path: &Path) -> Vec<Line> {
    ledger::read(penin_history::ledger_path(path)).unwrap()
}

/// The ledger's whole chain checks, with no torn tail.
fn ledger_verifies(path: &Path) {
    let ledger = penin_history::ledger_path(path);
    let summary = ledger::verify(&ledger).unwrap();
    assert_eq!(summary.torn, None, "{}", ledger.display());
    assert_eq!(summary.lines, ledger_lines(path).len() as u64);
}

/// The only line of the ledger recording `event`.
fn only_line(path: &Path, event: &str) -> Line {
    let lines: Vec<Line> = ledger_lines(path)
        .into_iter()
        .filter(|line| line.event == event)
        .collect();
    assert_eq!(lines.len(), 1, "{event} lines: {lines:?}");
    lines.into_iter().next().unwrap()
}

fn int(value: &Value) -> u64 {
    match value {
        Value::Number(Number::Int(n)) => u64::try_from(*n).unwrap(),
        other => panic!("{other:?} is not an integer"),
    }
}

/// The greatest sequence number of the state any ledger line names.
fn greatest_logged_seq(path: &Path) -> u64 {
    ledger_lines(path)
        .iter()
        .filter_map(|line| line.fields.get("journal").map(int))
        .max()
        .unwrap_or(0)
}

fn checkpoints(path: &Path) -> Vec<Meta> {
    let listing = checkpoint::list(&penin_history::checkpoints_dir(path)).unwrap();
    assert!(listing.unfinished.is_empty(), "{listing:?}");
    assert!(listing.foreign.is_empty(), "{listing:?}");
    listing.checkpoints
}

fn checkpoint_data(path: &Path, meta: &Meta) -> Vec<u8> {
    let dir = penin_history::checkpoints_dir(path);
    checkpoint::verify(&dir, meta).unwrap();
    std::fs::read(checkpoint::data_path(&dir, meta)).unwrap()
}

/// The journal holds no change: the snapshot alone is the state.
fn journal_is_empty(path: &Path) {
    let journal = std::fs::read(penin_history::journal_path(path)).unwrap();
    assert_eq!(journal.len(), journal::HEADER_LEN);
}

/// Runs `tests/python/ledger_check.py` on the ledger: Python's `hashlib` checks the chain.
fn python_checks_the_ledger(test: &str, path: &Path) {
    if !penin_testkit::python3(test, "hashlib cannot check the ledger") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/ledger_check.py");
    let ledger = penin_history::ledger_path(path);
    let output = Command::new("python3")
        .arg(script)
        .arg(&ledger)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let lines = ledger_lines(path).len();
    assert_eq!(stdout, format!("ok {lines} lines\n"), "{stderr}");
}

// 1. Checkpoints.

#[test]
fn a_checkpoint_is_the_state_then_with_the_ledger_head_before_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory
        .commit(vec![knowledge(1), task(1), score(1)])
        .unwrap();
    memory.sync().unwrap();
    let ledger_before_first = ledger_lines(&path);
    let seed_first = seed(memory.state());
    let first = memory.checkpoint(Some("t")).unwrap();
    memory.commit(vec![knowledge(2), score(2)]).unwrap();
    memory.sync().unwrap();
    let ledger_before_second = ledger_lines(&path);
    let seed_second = seed(memory.state());
    let second = memory.checkpoint(None).unwrap();
    drop(memory);

    assert_eq!(checkpoints(&path), [first.clone(), second.clone()]);
    let expected = [
        (
            &first,
            Some("t"),
            3,
            (1, 1, 1),
            &ledger_before_first,
            &seed_first,
        ),
        (
            &second,
            None,
            5,
            (2, 1, 2),
            &ledger_before_second,
            &seed_second,
        ),
    ];
    for (meta, tag, seq, (knowledge, tasks, scores), before, data) in expected {
        assert_eq!(meta.tag.as_deref(), tag, "{meta:?}");
        assert_eq!(meta.journal, seq, "{meta:?}");
        let counts = Counts {
            knowledge,
            tasks,
            scores,
        };
        assert_eq!(meta.counts, counts, "{meta:?}");
        let head = before.last().unwrap();
        assert_eq!(
            (meta.ledger_seq, meta.ledger_head),
            (head.seq, head.hash),
            "{meta:?}"
        );
        assert_eq!(meta.size, data.len() as u64);
        // The data file is the state as it was, in the seed's format, and checks.
        assert_eq!(&checkpoint_data(&path, meta), data, "{}", meta.id);

        // Its ledger line comes right after the head it records, and names it.
        let lines = ledger_lines(&path);
        let line = &lines[usize::try_from(meta.ledger_seq).unwrap()];
        assert_eq!(line.seq, meta.ledger_seq + 1);
        assert_eq!(line.event, "checkpoint");
        assert_eq!(line.fields["id"], Value::from(meta.id.as_str()));
        assert_eq!(line.fields["tag"], tag.map_or(Value::Null, Value::from));
        assert_eq!(int(&line.fields["journal"]), seq);
        assert_eq!(int(&line.fields["bytes"]), meta.size);
        assert_eq!(line.digest, meta.blake2b);
        assert_eq!(line.prev, head.hash);
    }
    // The state reopens as it was: a checkpoint changes neither snapshot nor journal.
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(seed(memory.state()), seed_second);
    assert_eq!(memory.seq(), 5);
    ledger_verifies(&path);
    python_checks_the_ledger(
        "a_checkpoint_is_the_state_then_with_the_ledger_head_before_its_own_line",
        &path,
    );
}

// 2. Restore.

/// A memory with three checkpoints, `a` (tagged "a"), `b` and `c` (tagged "a" too), each
/// after one more change, and a fourth change after them; the seeds of their states.
fn three_checkpoints(path: &Path) -> (Memory, [(Meta, Vec<u8>); 3]) {
    let mut memory = Memory::open(path, None).unwrap();
    let mut taken = Vec::new();
    for (n, tag) in [(1, Some("a")), (2, None), (3, Some("a"))] {
        memory.commit(vec![knowledge(n)]).unwrap();
        memory.sync().unwrap();
        let state = seed(memory.state());
        taken.push((memory.checkpoint(tag).unwrap(), state));
    }
    memory.commit(vec![task(4)]).unwrap();
    memory.sync().unwrap();
    let times: Vec<Timestamp> = taken.iter().map(|(meta, _)| meta.time).collect();
    assert!(times.is_sorted() && times[0] < times[2], "{times:?}");
    (memory, taken.try_into().unwrap())
}

/// Restores what `selector` picks, which must be `expected`, and checks what a restore
/// promises: the state is the checkpoint's, the replaced state is checkpointed, sequence
/// numbers go on, the snapshot alone holds the state, the ledger says so.
fn restore_and_check(memory: &mut Memory, selector: &Selector, expected: &(Meta, Vec<u8>)) {
    let path = memory.path().to_owned();
    let before = seed(memory.state());
    let seq_before = memory.seq();
    let listed_before = checkpoints(&path);

    let restored = memory.restore(selector).unwrap();
    assert_eq!(restored.restored, expected.0, "{selector}");
    assert_eq!(seed(memory.state()), expected.1, "{selector}");
    // The replaced state is a new checkpoint, the only one.
    let mut listed = listed_before.clone();
    listed.push(restored.saved.clone());
    assert_eq!(checkpoints(&path), listed, "{selector}");
    assert_eq!(
        checkpoint_data(&path, &restored.saved),
        before,
        "{selector}"
    );
    assert_eq!(restored.saved.journal, seq_before);
    assert_eq!(restored.saved.tag, None);
    // The snapshot alone holds the restored state.
    assert!(memory.is_compact(), "{selector}");
    journal_is_empty(&path);
    assert_eq!(std::fs::read(&path).unwrap(), expected.1, "{selector}");
    assert!(memory.seq() >= seq_before);

    let last = ledger_lines(&path).pop().unwrap();
    assert_eq!(last.event, "restore");
    assert_eq!(last.fields["id"], Value::from(expected.0.id.as_str()));
    assert_eq!(
        last.fields["saved"],
        Value::from(restored.saved.id.as_str())
    );
    assert_eq!(last.digest, expected.0.blake2b);
    ledger_verifies(&path);

    // Read back, it is the restored state, from the snapshot alone; sequence numbers go on.
    let loaded = memory::load(&path, None).unwrap();
    assert_eq!(seed(&loaded.state), expected.1, "{selector}");
    assert_eq!(loaded.replayed, 0, "{selector}");
    assert!(loaded.seq >= seq_before, "{selector}");
    let logged = greatest_logged_seq(&path);
    let seq = memory.commit(vec![score(1)]).unwrap()[0];
    memory.sync().unwrap();
    assert!(seq > seq_before, "{seq} after {seq_before}");
    assert!(seq > logged, "{seq} after {logged} in the ledger");
}

#[test]
fn a_restore_by_id_by_tag_and_by_time_makes_the_checkpoint_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (mut memory, [a, b, c]) = three_checkpoints(&path);

    restore_and_check(&mut memory, &Selector::Id(a.0.id.clone()), &a);
    // The newest checkpoint with the tag.
    restore_and_check(&mut memory, &Selector::Tag("a".to_owned()), &c);
    // The newest checkpoint taken at or before the time: at its very time, and just before
    // the next one.
    restore_and_check(&mut memory, &Selector::At(b.0.time), &b);
    let just_before_c = c.0.time.checked_sub(Duration::from_micros(1)).unwrap();
    assert!(just_before_c > b.0.time, "{just_before_c} {}", b.0.time);
    restore_and_check(&mut memory, &Selector::At(just_before_c), &b);
    // Back to the newest state the memory had before the first restore: it was saved.
    let saved_first = checkpoints(&path)[3].clone();
    let data = checkpoint_data(&path, &saved_first);
    restore_and_check(
        &mut memory,
        &Selector::Id(saved_first.id.clone()),
        &(saved_first, data),
    );
    let last = seed(memory.state());
    drop(memory);
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(seed(memory.state()), last);
    let (keys, tasks) = (
        memory.state().knowledge_base().len(),
        memory.state().task_history().len(),
    );
    assert_eq!((keys, tasks), (3, 1));
    ledger_verifies(&path);
}

#[test]
fn a_restore_to_a_time_before_every_checkpoint_is_not_found_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (mut memory, [a, _, _]) = three_checkpoints(&path);
    let state = seed(memory.state());
    let files = disk(&path);
    let before_all = a.0.time.checked_sub(Duration::from_micros(1)).unwrap();

    let error = memory.restore(&Selector::At(before_all)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("was taken at or before {before_all}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("the oldest is {}", a.0.id)),
        "{message}"
    );
    assert_eq!(seed(memory.state()), state);
    assert_eq!(disk(&path), files);
    // Nor does an unknown id or tag.
    for selector in [
        Selector::Id("20200101T000000.000Z".to_owned()),
        Selector::Tag("nope".to_owned()),
    ] {
        let error = memory.restore(&selector).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    }
    assert_eq!(seed(memory.state()), state);
    assert_eq!(disk(&path), files);
    ledger_verifies(&path);
}

#[test]
fn a_damaged_checkpoint_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (mut memory, [_, b, _]) = three_checkpoints(&path);
    let data = checkpoint::data_path(&penin_history::checkpoints_dir(&path), &b.0);
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();
    let state = seed(memory.state());
    let seq = memory.seq();
    let files = disk(&path);

    let error = memory.restore(&Selector::Id(b.0.id.clone())).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CheckpointDamaged, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("checkpoint {} is damaged", b.0.id)),
        "{message}"
    );
    assert!(message.contains("BLAKE2b-256"), "{message}");
    assert_eq!(seed(memory.state()), state);
    assert_eq!(memory.seq(), seq);
    assert_eq!(
        disk(&path),
        files,
        "no checkpoint, snapshot or ledger line written"
    );
    drop(memory);
    let memory = Memory::open(&path, None).unwrap();
    assert_eq!(seed(memory.state()), state);
    ledger_verifies(&path);
}

/// How many file-system calls opening the memory that `setup` makes takes: the failures
/// injected after them are the operation's.
fn opening_calls(setup: impl FnOnce(&Path)) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    setup(&path);
    let fs = penin_store::testing::FaultyFs::new();
    drop(Memory::open_in(&fs, &path, None).unwrap());
    fs.ops().len()
}

// 3. Prune.

/// Writes a checkpoint of `state` taken `hours` after 2020-03-01T00:00:00Z, straight into
/// the directory: a time no clock gives.
fn checkpoint_at(path: &Path, state: &[u8], hours: u64, tag: Option<&str>) -> Meta {
    let start = Timestamp::parse("2020-03-01T00:00:00Z").unwrap();
    let new = NewCheckpoint {
        time: start
            .checked_add(Duration::from_secs(hours * 3600))
            .unwrap(),
        tag,
        journal: hours,
        ledger_seq: 0,
        ledger_head: ledger::GENESIS,
        counts: Counts::default(),
    };
    let dir = penin_history::checkpoints_dir(path);
    checkpoint::write(&penin_store::RealFs, &dir, &new, |w| w.write_all(state)).unwrap()
}

fn ids(metas: &[Meta]) -> Vec<&str> {
    metas.iter().map(|meta| meta.id.as_str()).collect()
}

#[test]
fn a_prune_removes_what_no_rule_keeps_and_a_dry_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![knowledge(1)]).unwrap();
    memory.sync().unwrap();
    let state = seed(memory.state());
    // Hours 0 to 5; 1 and 3 tagged.
    let all: Vec<Meta> = (0..6)
        .map(|h| checkpoint_at(&path, &state, h, [1, 3].contains(&h).then_some("keep")))
        .collect();
    assert_eq!(checkpoints(&path), all);
    let files = disk(&path);

    // The dry run: the plan, and nothing removed or written.
    let plan = memory.prune(Some(2), None, false, true).unwrap();
    assert_eq!(plan.remove, [all[0].clone(), all[2].clone()]);
    let keep: Vec<(&str, &[Reason])> = plan
        .keep
        .iter()
        .map(|(meta, reasons)| (meta.id.as_str(), reasons.as_slice()))
        .collect();
    assert_eq!(
        keep,
        [
            (all[1].id.as_str(), &[Reason::Tagged][..]),
            (all[3].id.as_str(), &[Reason::Tagged][..]),
            (all[4].id.as_str(), &[Reason::Last(2)][..]),
            (all[5].id.as_str(), &[Reason::Last(1)][..]),
        ]
    );
    assert_eq!(disk(&path), files);

    // The real run removes exactly the plan's, both files of each, and says so.
    let done = memory.prune(Some(2), None, false, false).unwrap();
    assert_eq!(done, plan);
    let left = [&all[1], &all[3], &all[4], &all[5]].map(Clone::clone);
    assert_eq!(checkpoints(&path), left);
    let checkpoints_dir = penin_history::checkpoints_dir(&path);
    for meta in &plan.remove {
        assert!(!checkpoint::data_path(&checkpoints_dir, meta).exists());
        assert!(!checkpoint::meta_path(&checkpoints_dir, meta).exists());
    }
    let line = only_line(&path, "prune");
    let removed = Value::Array(vec![
        Value::from(all[0].id.as_str()),
        Value::from(all[2].id.as_str()),
    ]);
    assert_eq!(line.fields["removed"], removed);
    assert_eq!(
        line.digest,
        ledger::digest(&penin_codec::to_vec_compact(&removed))
    );
    assert_eq!(int(&line.fields["journal"]), memory.seq());

    // Nothing left to remove: no ledger line.
    let ledger = std::fs::read(penin_history::ledger_path(&path)).unwrap();
    let plan = memory.prune(Some(2), None, false, false).unwrap();
    assert!(plan.remove.is_empty(), "{plan:?}");
    assert_eq!(
        std::fs::read(penin_history::ledger_path(&path)).unwrap(),
        ledger
    );
    ledger_verifies(&path);
}

#[test]
fn keep_within_counts_from_the_newest_checkpoint_and_tags_too_prunes_tagged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let mut memory = Memory::open(&path, None).unwrap();
    memory.commit(vec![knowledge(1)]).unwrap();
    let state = seed(memory.state());
    let h0 = checkpoint_at(&path, &state, 0, None);
    let h1 = checkpoint_at(&path, &state, 1, Some("keep"));
    let h3 = checkpoint_at(&path, &state, 3, Some("keep"));
    let h4 = checkpoint_at(&path, &state, 4, None);
    let h5 = checkpoint_at(&path, &state, 5, None);
    let two_hours = Duration::from_secs(2 * 3600);

    // Years before now, and yet the newest ones are kept: within two hours of the newest
    // (hour 3 is exactly two hours before it, so not within). Tags keep theirs.
    let plan = memory.prune(None, Some(two_hours), false, false).unwrap();
    assert_eq!(plan.remove, std::slice::from_ref(&h0));
    assert_eq!(
        checkpoints(&path),
        [h1.clone(), h3.clone(), h4.clone(), h5.clone()]
    );
    // With tags too, the tagged ones go.
    let plan = memory.prune(None, Some(two_hours), true, false).unwrap();
    assert_eq!(plan.remove, [h1.clone(), h3.clone()]);
    let within = vec![Reason::Within];
    assert_eq!(
        plan.keep,
        [(h4.clone(), within.clone()), (h5.clone(), within)]
    );
    assert_eq!(checkpoints(&path), [h4.clone(), h5.clone()]);
    let removed: Vec<Value> = ledger_lines(&path)
        .into_iter()
        .filter(|line| line.event == "prune")
        .map(|line| line.fields["removed"].clone())
        .collect();
    assert_eq!(
        removed,
        [
            Value::Array(vec![Value::from(h0.id.as_str())]),
            Value::Array(vec![
                Value::from(h1.id.as_str()),
                Value::from(h3.id.as_str())
            ]),
        ]
    );
    // No rule is no prune.
    let error = memory.prune(None, None, false, false).unwrap_err();
    assert!(error.to_string().contains("no retention rule"), "{error}");
    assert_eq!(ids(&checkpoints(&path)), [h4.id.as_str(), h5.id.as_str()]);
    ledger_verifies(&path);
}

/// A prune that fails at any call leaves no checkpoint gone that no `prune` line names
/// (unless what failed was writing that line).
#[test]
fn a_prune_that_fails_at_any_call_names_every_checkpoint_it_removed() {
    use penin_store::testing::{Fault, FaultyFs};

    let four_checkpoints = |path: &Path| -> Vec<Meta> {
        let mut memory = Memory::open(path, None).unwrap();
        memory.commit(vec![knowledge(1)]).unwrap();
        memory.sync().unwrap();
        let state = seed(memory.state());
        (0..4)
            .map(|h| checkpoint_at(path, &state, h, None))
            .collect()
    };
    let mut failed = 0;
    let opening = opening_calls(|path| drop(four_checkpoints(path)));
    for call in opening + 1.. {
        let dir = tempfile::tempdir().unwrap();
        let path = state_in(&dir);
        let all = four_checkpoints(&path);
        let fs = FaultyFs::failing(call, Fault::EIO);
        let mut memory = Memory::open_in(&fs, &path, None).unwrap();
        let error = match memory.prune(Some(1), None, false, false) {
            Ok(_) if fs.ops().len() < call => break,
            Ok(_) => continue,
            Err(error) => error,
        };
        failed += 1;
        let listed = checkpoint::list(&penin_history::checkpoints_dir(&path))
            .unwrap()
            .checkpoints;
        let gone: Vec<&str> = all
            .iter()
            .filter(|meta| !listed.contains(meta))
            .map(|meta| meta.id.as_str())
            .collect();
        let named: Vec<String> = ledger_lines(&path)
            .iter()
            .filter(|line| line.event == "prune")
            .flat_map(|line| match &line.fields["removed"] {
                Value::Array(ids) => ids
                    .iter()
                    .map(|id| id.as_str().unwrap().to_owned())
                    .collect::<Vec<String>>(),
                other => panic!("{other:?}"),
            })
            .collect();
        if matches!(error, penin_orchestrator::Error::Ledger(_)) {
            continue;
        }
        assert_eq!(gone, named, "call {call}: {error}");
        drop(memory);
        drop(Memory::open(&path, None).unwrap());
        ledger_verifies(&path);
    }
    assert!(failed > 3, "{failed}");
}

// 4. Recover.

/// A state whose journal holds three changes over an empty snapshot, which another program
/// then replaces; the journal's bytes and the changes.
fn replaced_snapshot(path: &Path) -> (Vec<u8>, Vec<Change>) {
    let changes = vec![knowledge(1), task(1), score(1)];
    let mut memory = Memory::open(path, None).unwrap();
    memory.commit(changes.clone()).unwrap();
    memory.sync().unwrap();
    drop(memory);
    std::fs::write(path, seed(&foreign_state())).unwrap();
    let error = Memory::open(path, None).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::ForeignSnapshot, "{error}");
    let message = error.to_string();
    for advice in [
        "held 3 change(s)",
        "`penin recover --keep-journal`",
        "`penin recover --discard-journal`",
    ] {
        assert!(message.contains(advice), "{advice}: {message}");
    }
    let journal = std::fs::read(penin_history::journal_path(path)).unwrap();
    (journal, changes)
}

/// After a recover: the memory opens as `expected` with an empty journal, its next change
/// goes past every sequence number the ledger names, and there is nothing left to recover.
fn recovered_opens_as(path: &Path, expected: &[u8]) {
    let mut memory = Memory::open(path, None).unwrap();
    assert_eq!(seed(memory.state()), expected);
    assert!(memory.is_compact());
    journal_is_empty(path);
    assert_eq!(std::fs::read(path).unwrap(), expected);
    let logged = greatest_logged_seq(path);
    let seq = memory.commit(vec![score(7)]).unwrap()[0];
    memory.sync().unwrap();
    assert!(seq > logged, "{seq} after {logged}");
    drop(memory);

    let error = memory::recover(path, None, Recovery::KeepJournal).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NothingToDo, "{error}");
    assert!(error.to_string().contains("nothing to recover"), "{error}");
    ledger_verifies(path);
}

#[test]
fn recover_keep_journal_applies_the_journal_to_the_replaced_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (journal, changes) = replaced_snapshot(&path);
    let expected = seed(&applied(&foreign_state(), changes));

    let (recovered, _) = memory::recover(&path, None, Recovery::KeepJournal).unwrap();
    assert_eq!(recovered.applied, 3);
    assert_eq!(recovered.moved_to, None);
    assert!(recovered.seq >= 3, "{recovered:?}");

    let line = only_line(&path, "recover");
    assert_eq!(line.fields["action"], Value::from("keep_journal"));
    assert_eq!(int(&line.fields["changes"]), 3);
    assert_eq!(line.digest, ledger::digest(&journal));
    assert!(line.fields.get("moved_to").is_none(), "{line:?}");
    recovered_opens_as(&path, &expected);
}

#[test]
fn recover_discard_journal_keeps_the_replaced_snapshot_and_the_journal_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (journal, _) = replaced_snapshot(&path);

    let (recovered, _) = memory::recover(&path, None, Recovery::DiscardJournal).unwrap();
    assert_eq!(recovered.applied, 0);
    let moved_to = recovered.moved_to.clone().unwrap();
    assert_eq!(std::fs::read(&moved_to).unwrap(), journal, "byte for byte");
    assert_eq!(moved_to.parent(), path.parent());
    assert!(
        recovered.seq >= 3,
        "sequence numbers never go back: {recovered:?}"
    );

    let line = only_line(&path, "recover");
    assert_eq!(line.fields["action"], Value::from("discard_journal"));
    assert_eq!(int(&line.fields["changes"]), 3);
    assert_eq!(
        line.fields["moved_to"],
        Value::from(moved_to.display().to_string())
    );
    recovered_opens_as(&path, &seed(&foreign_state()));
    assert_eq!(std::fs::read(&moved_to).unwrap(), journal);
}

// 5. Repair.

/// A state saved by another program, then five changes journaled one record each; the
/// snapshot's state and the changes.
fn five_records(path: &Path) -> (Orchestrator, Vec<Change>) {
    let snapshot = foreign_state();
    snapshot.save_state(path).unwrap();
    let changes = vec![knowledge(1), task(2), score(3), knowledge(4), score(5)];
    let mut memory = Memory::open(path, None).unwrap();
    for change in &changes {
        memory.commit(vec![change.clone()]).unwrap();
    }
    memory.sync().unwrap();
    assert_eq!(memory.seq(), 5);
    (snapshot, changes)
}

#[test]
fn repair_keeps_the_records_before_the_damage_and_checkpoints_them_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    let (snapshot, changes) = five_records(&path);
    let journal_path = penin_history::journal_path(&path);
    let mut bytes = std::fs::read(&journal_path).unwrap();
    let records = journal::scan(bytes.clone(), &journal_path).unwrap().records;
    // Records start after the 96-byte header; a frame is 29 bytes and its payload.
    let first_len = 29 + u64::from(records[0].len);
    assert_eq!((records[1].seq, records[1].offset), (2, 96 + first_len));
    let payload = usize::try_from(records[1].offset).unwrap() + 25;
    bytes[payload + records[1].len as usize / 2] ^= 0x20;
    std::fs::write(&journal_path, &bytes).unwrap();

    let error = Memory::open(&path, None).err().unwrap();
    assert_eq!(error.kind(), ErrorKind::JournalDamaged, "{error}");
    let place = format!(
        "damaged at byte offset {} (record with sequence number 2)",
        96 + first_len
    );
    assert!(error.to_string().contains(&place), "{error}");

    let (repaired, _) = memory::repair(&path, None).unwrap();
    let expected = seed(&applied(&snapshot, [changes[0].clone()]));
    assert_eq!(repaired.kept, 1);
    assert_eq!(repaired.dropped_bytes, bytes.len() as u64 - 96 - first_len);
    let damage = repaired.damage.clone().unwrap();
    assert!(damage.contains(&place), "{damage}");
    assert_eq!(
        repaired.dropped,
        Some((2, 5)),
        "the changes dropped, by number"
    );
    assert_eq!(
        std::fs::read(repaired.moved_to.as_ref().unwrap()).unwrap(),
        bytes,
        "byte for byte"
    );
    // The checkpoint taken first holds the repaired state, labelled with its last change.
    assert_eq!(repaired.checkpoint.tag.as_deref(), Some("before-repair"));
    assert_eq!(repaired.checkpoint.journal, 1);
    assert_eq!(
        checkpoints(&path),
        std::slice::from_ref(&repaired.checkpoint)
    );
    assert_eq!(checkpoint_data(&path, &repaired.checkpoint), expected);

    let line = only_line(&path, "repair");
    assert_eq!(int(&line.fields["kept"]), 1);
    assert_eq!(int(&line.fields["dropped_from"]), 2);
    assert_eq!(int(&line.fields["dropped_to"]), 5);
    assert_eq!(int(&line.fields["dropped_bytes"]), repaired.dropped_bytes);
    assert_eq!(
        line.fields["checkpoint"],
        Value::from(repaired.checkpoint.id.as_str())
    );
    assert_eq!(line.digest, ledger::digest(&bytes));

    let mut memory = Memory::open(&path, None).unwrap();
    assert_eq!(seed(memory.state()), expected);
    assert!(memory.is_compact());
    journal_is_empty(&path);
    let logged = greatest_logged_seq(&path);
    assert!(logged >= 5, "{logged}");
    assert!(memory.commit(vec![task(6)]).unwrap()[0] > logged);
    memory.sync().unwrap();
    drop(memory);

    // Now the journal is sound: nothing to repair.
    let journal = std::fs::read(&journal_path).unwrap();
    let error = memory::repair(&path, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NothingToDo, "{error}");
    assert!(
        error
            .to_string()
            .ends_with(": it is sound, and so is the ledger"),
        "{error}"
    );
    assert_eq!(std::fs::read(&journal_path).unwrap(), journal);
    ledger_verifies(&path);
}

#[test]
fn repair_of_a_journal_with_only_a_torn_tail_leaves_it_to_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_in(&dir);
    five_records(&path);
    let journal_path = penin_history::journal_path(&path);
    let whole = std::fs::read(&journal_path).unwrap();
    let mut payload = Vec::new();
    knowledge(6).encode(&mut payload);
    let mut frame = Vec::new();
    journal::encode_frame(&mut frame, 6, 0, 1, &payload);
    let mut torn = whole.clone();
    torn.extend_from_slice(&frame[..frame.len() - 3]);
    std::fs::write(&journal_path, &torn).unwrap();
    let files = disk(&path);

    let error = memory::repair(&path, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NothingToDo, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "torn last record ({} bytes), which the next start cuts off",
            frame.len() - 3
        )),
        "{message}"
    );
    assert_eq!(disk(&path), files);

    // The next start cuts it off.
    let mut memory = Memory::open(&path, None).unwrap();
    let notices = memory.take_notices();
    assert!(
        matches!(&notices[..], [Notice::TornJournal { cut: true, .. }]),
        "{notices:?}"
    );
    assert_eq!(std::fs::read(&journal_path).unwrap(), whole);
    assert_eq!(memory.seq(), 5);
    ledger_verifies(&path);
}

// 6. A restore that fails, or that a power loss interrupts.

/// A state with a checkpoint tagged "x" and two changes after it, all durable: the seeds of
/// the state and of the checkpoint's.
fn to_restore(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut memory = Memory::open(path, None).unwrap();
    memory.commit(vec![knowledge(0), task(0)]).unwrap();
    memory.sync().unwrap();
    let restored = seed(memory.state());
    memory.checkpoint(Some("x")).unwrap();
    memory.commit(vec![knowledge(1), score(1)]).unwrap();
    memory.sync().unwrap();
    let before = seed(memory.state());
    assert_ne!(restored, before);
    (before, restored)
}

/// A restore that fails at any call holds, in memory, the state the files hold: the old one
/// if it failed before the new snapshot was in place (a full disk), and then the changes
/// made after it are the ones a restart finds.
#[test]
fn a_restore_that_fails_at_any_call_leaves_the_memory_as_the_files_are() {
    use penin_store::testing::{Fault, FaultyFs};

    let mut failed_before_the_snapshot = 0;
    let opening = opening_calls(|path| drop(to_restore(path)));
    for call in opening + 1.. {
        let dir = tempfile::tempdir().unwrap();
        let path = state_in(&dir);
        let (before, restored) = to_restore(&path);
        let fs = FaultyFs::failing(call, Fault::EIO);
        let mut memory = Memory::open_in(&fs, &path, None).unwrap();
        let error = match memory.restore(&Selector::Tag("x".to_owned())) {
            Ok(_) if fs.ops().len() < call => break,
            // A failed call that the restore could do without.
            Ok(_) => {
                let loaded = memory::load(&path, None).unwrap();
                assert_eq!(text(&loaded.state), text(memory.state()), "call {call}");
                continue;
            }
            Err(error) => error,
        };
        let on_disk = text(&memory::load(&path, None).unwrap().state);
        let held = text(memory.state());
        let (before, restored) = (
            String::from_utf8(before).unwrap(),
            String::from_utf8(restored).unwrap(),
        );
        if on_disk == restored {
            assert_eq!(held, restored, "call {call}: {error}");
            // A change now is refused, or a restart finds it.
            let mut expected = memory.state().clone();
            if memory
                .commit(vec![score(9)])
                .and_then(|_| memory.sync())
                .is_ok()
            {
                score(9).apply(&mut expected);
                drop(memory);
                let reopened = Memory::open(&path, None).unwrap();
                assert_eq!(
                    text(reopened.state()),
                    text(&expected),
                    "call {call}: {error}"
                );
            }
            continue;
        }
        assert_eq!(on_disk, before, "call {call}: {error}: neither state");
        assert_eq!(
            held, before,
            "call {call}: {error}: the files hold the old state"
        );
        failed_before_the_snapshot += 1;
        // The memory goes on from there, and a restart finds what it made.
        if memory
            .commit(vec![score(9)])
            .and_then(|_| memory.sync())
            .is_ok()
        {
            let loaded = memory::load(&path, None).unwrap();
            assert_eq!(text(&loaded.state), text(memory.state()), "call {call}");
        }
        drop(memory);
        drop(Memory::open(&path, None).unwrap());
        ledger_verifies(&path);
    }
    assert!(failed_before_the_snapshot > 0);
}

/// What a power loss can leave after each call of a restore: a state that opens, and is
/// either the one before or the restored one, never a mix.
#[cfg(unix)]
#[test]
fn a_power_loss_at_any_call_of_a_restore_leaves_the_old_state_or_the_restored_one() {
    use penin_store::testing::CrashFs;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let path = root.join("state.json");
    let (before, restored) = to_restore(&path);

    let fs = CrashFs::at(&root).unwrap();
    let mut memory = Memory::open_in(&fs, &path, None).unwrap();
    memory.restore(&Selector::Tag("x".to_owned())).unwrap();
    assert_eq!(seed(memory.state()), restored);
    drop(memory);

    let restart = tempfile::tempdir().unwrap();
    let calls = fs.ops().len();
    let (mut images, mut old, mut new) = (0, 0, 0);
    for call in 0..=calls {
        for image in fs.images_after(call).unwrap() {
            images += 1;
            let here = restart.path().join(format!("{call}-{images}"));
            image.materialise(&here).unwrap();
            let path = here.join("state.json");
            let memory =
                Memory::open(&path, None).unwrap_or_else(|e| panic!("call {call}, {image}: {e}"));
            let state = seed(memory.state());
            if state == before {
                old += 1;
            } else if state == restored {
                new += 1;
            } else {
                panic!("call {call}, {image}: neither state");
            }
            if call == calls {
                assert_eq!(
                    state, restored,
                    "call {call}, {image}: the restore returned"
                );
            }
            ledger::verify(penin_history::ledger_path(&path))
                .unwrap_or_else(|e| panic!("call {call}, {image}: {e}"));
            checkpoint::list(&penin_history::checkpoints_dir(&path))
                .unwrap_or_else(|e| panic!("call {call}, {image}: {e}"));
            std::fs::remove_dir_all(&here).unwrap();
        }
    }
    assert!(images > calls, "{images} images for {calls} calls");
    assert!(old > 0 && new > 0, "{old} old, {new} restored of {images}");
    println!(
        "power loss during a restore: {calls} calls, {images} images ({old} the state before, {new} the restored one)"
    );
}
