//! The kill loop: acknowledged means durable. A client streams operations into `penin run`
//! and records every id penin answered; penin is killed with SIGKILL at a random moment,
//! round after round, some rounds while it saves (compacts). After every kill, the state
//! penin would load holds every acknowledged operation exactly once, in the order it was
//! sent, holds no operation twice, acknowledged or not, and the ledger verifies.
//!
//! Nothing but the journal (with `--sync always`) can keep an operation that was answered
//! after the last save: the snapshot is rewritten only by compaction. A SIGKILL leaves the page cache to be written out, so
//! this test finds an answer given before the operation was written, not one given before it
//! was synced; the power-loss tests of `penin-store` find that.
//!
//! `PENIN_KILL_ROUNDS` sets the number of kills (default 100). The moments are drawn from a
//! seed, printed at the start, that `PENIN_KILL_SEED` sets to replay a run (by default it
//! comes from the clock; the scheduler still moves each kill a little).
#![cfg(unix)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{DEADLINE, Env, Rng};
use penin_orchestrator::{NumericVectorArtifact, Orchestrator};
use serde_json::{Value, json};

/// Artifacts in the state before the first round: 50 embeddings of 384 dimensions, about
/// 560 kB in the seed format, so that a save takes some milliseconds and kills land in it.
const BASE_ARTIFACTS: usize = 50;
const DIMENSIONS: usize = 384;

/// One round in this many streams `save` lines among its operations.
const SAVE_EVERY: usize = 10;

/// The kill comes this long at most after the session answered (or after its start).
const MAX_DELAY_MICROS: u64 = 50_000;

/// What an operation adds; its id says which it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `add_knowledge` of key `k<id>`, vector `[id, 0.5, -0.25]`, metadata `{"id": id}`.
    Knowledge,
    /// `add_task` of `{"n": id}`.
    Task,
    /// `add_score` of `id` as a float.
    Score,
}

/// The operation line of id `id`, with its newline.
fn operation(kind: Kind, id: u64) -> String {
    match kind {
        Kind::Knowledge => {
            format!(
                r#"{{"op":"add_knowledge","id":{id},"key":"k{id}","vector":[{id}.0,0.5,-0.25],"metadata":{{"id":{id}}}}}"#
            ) + "\n"
        }
        Kind::Task => format!(r#"{{"op":"add_task","id":{id},"task":{{"n":{id}}}}}"#) + "\n",
        Kind::Score => format!(r#"{{"op":"add_score","id":{id},"score":{id}.0}}"#) + "\n",
    }
}

/// What a round's writer sent: the kind of each id from the round's first id on (some
/// perhaps cut short by the kill), and how many `save` lines were written whole.
struct Sent {
    kinds: Vec<Kind>,
    saves: usize,
}

/// Streams operations into penin until `stop` is set or penin is gone: one line, then, once
/// `go` is dropped, one line at a time with short pauses and now and then a burst of many
/// lines in one write, so that penin reads several at once (its group commit). With
/// `saves`, `save` lines go in between.
fn stream(
    mut stdin: ChildStdin,
    mut rng: Rng,
    first_id: u64,
    saves: bool,
    go: &Receiver<()>,
    stop: &AtomicBool,
) -> Sent {
    let mut sent = Sent {
        kinds: Vec::new(),
        saves: 0,
    };
    let mut next_id = first_id;
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        let lines = if first {
            1
        } else if rng.next().is_multiple_of(8) {
            10 + rng.next() % 50
        } else {
            1
        };
        let mut chunk = String::new();
        for _ in 0..lines {
            let kind = [Kind::Knowledge, Kind::Task, Kind::Score][(rng.next() % 3) as usize];
            chunk.push_str(&operation(kind, next_id));
            sent.kinds.push(kind);
            next_id += 1;
        }
        let save = !first && saves && rng.next().is_multiple_of(3);
        if save {
            let _ = writeln!(chunk, r#"{{"op":"save","id":"save-{}"}}"#, sent.saves);
        }
        if stdin.write_all(chunk.as_bytes()).is_err() {
            // Penin is gone: the end of the round.
            break;
        }
        sent.saves += usize::from(save);
        if first {
            // The stream waits for its moment: until `go` is dropped.
            let _ = go.recv();
            first = false;
        }
        thread::sleep(Duration::from_micros(rng.next() % 1000));
    }
    sent
}

/// What the rounds saw, for the summary.
#[derive(Default)]
struct Totals {
    sent: usize,
    acknowledged: usize,
    save_rounds: usize,
    saves_acknowledged: usize,
    /// Kills while a `save` was written to penin and not yet answered.
    kills_with_a_save_pending: usize,
    /// Kills that left a save's temporary file: cut short while writing the snapshot.
    kills_mid_save: usize,
}

#[test]
fn every_acknowledged_operation_survives_sigkill() {
    let rounds: usize = env_number("PENIN_KILL_ROUNDS").unwrap_or(100);
    let seed: u64 = env_number("PENIN_KILL_SEED").unwrap_or_else(clock_seed);
    println!("kill loop: {rounds} rounds, seed {seed} (replay with PENIN_KILL_SEED={seed})");
    let mut rng = Rng(seed | 1);

    let env = Env::new();
    let state_path = env.path("state.json");
    let state = state_path.to_str().expect("a UTF-8 temporary path");
    base_state(&mut rng).save_state(&state_path).unwrap();
    let run_args = ["--state", state, "--unbounded", "run", "--sync", "always"];

    // `kinds[id]`: what operation `id` was; every id below `kinds.len()` was (perhaps) sent.
    let mut kinds: Vec<Kind> = Vec::new();
    let mut acknowledged = BTreeSet::new();
    let mut totals = Totals::default();
    for round in 0..rounds {
        let saves = round % SAVE_EVERY == 0;
        totals.save_rounds += usize::from(saves);
        let first_id = kinds.len() as u64;
        let mut session = env.spawn(&run_args);
        let stop = Arc::new(AtomicBool::new(false));
        let (go, wait) = mpsc::channel::<()>();
        let writer = {
            let stdin = session.take_stdin();
            let rng = Rng(rng.next() | 1);
            let stop = Arc::clone(&stop);
            thread::spawn(move || stream(stdin, rng, first_id, saves, &wait, &stop))
        };

        // Mostly the stream and the delay start at the first answer (the state is loaded);
        // one round in five at once, so kills land while penin loads, with lines waiting.
        let mut answers = Vec::new();
        if !rng.next().is_multiple_of(5) {
            answers.extend(session.recv_within(DEADLINE));
        }
        drop(go);
        thread::sleep(Duration::from_micros(rng.next() % (MAX_DELAY_MICROS + 1)));
        let pid = session.pid();
        let (status, rest, stderr) = session.kill_with_stderr();
        stop.store(true, Ordering::SeqCst);
        let sent = writer.join().expect("the writer thread");
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round} (seed {seed}): penin ended before the kill ({status}); stderr:\n{stderr}"
        );
        kinds.extend(&sent.kinds);
        totals.sent += sent.kinds.len();

        answers.extend(rest);
        let mut saves_answered = 0;
        for line in &answers {
            let answer: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("round {round}: answer {line:?} is not JSON: {e}"));
            assert_eq!(answer["ok"], true, "round {round}: answer {line}");
            match &answer["id"] {
                Value::String(id) if id.starts_with("save-") => saves_answered += 1,
                id => {
                    let id = id
                        .as_u64()
                        .filter(|id| (first_id..kinds.len() as u64).contains(id))
                        .unwrap_or_else(|| panic!("round {round}: answer {line} to no operation"));
                    assert!(
                        acknowledged.insert(id),
                        "round {round}: id {id} answered twice"
                    );
                    totals.acknowledged += 1;
                }
            }
        }
        totals.saves_acknowledged += saves_answered;
        totals.kills_with_a_save_pending += usize::from(sent.saves > saves_answered);
        totals.kills_mid_save += usize::from(has_temporary_of(pid, env.dir()));

        if let Err(problems) = check(&env, state, &kinds, &acknowledged) {
            panic!(
                "round {round} (seed {seed}), killed after {} answers, {}: {problems}",
                answers.len(),
                if saves {
                    format!("{saves_answered} of {} saves acknowledged", sent.saves)
                } else {
                    "no saves".to_owned()
                }
            );
        }
        ledger_verifies(&env, state, !acknowledged.is_empty());
    }
    println!(
        "kill loop: {rounds} SIGKILLs, {} operations sent, {} acknowledged, all of them found; \
         {} rounds with saves, {} saves acknowledged, {} kills with a save pending, {} kills \
         leaving a save's temporary",
        totals.sent,
        totals.acknowledged,
        totals.save_rounds,
        totals.saves_acknowledged,
        totals.kills_with_a_save_pending,
        totals.kills_mid_save,
    );
    assert!(
        totals.save_rounds < 5 || totals.kills_with_a_save_pending > 0,
        "no kill came while a save was pending: the loop did not kill during compaction"
    );
}

/// Checks the state penin would load from `state_file` after a kill: `stats` and `convert`
/// read it; every acknowledged id is there exactly once; nothing is there twice, out of
/// order, never sent, or changed. `Err` says what is wrong.
fn check(
    env: &Env,
    state_file: &str,
    kinds: &[Kind],
    acknowledged: &BTreeSet<u64>,
) -> Result<(), String> {
    let (figures, loaded) = load(env, state_file)?;
    let mut problems = Vec::new();
    let mut present = BTreeSet::new();
    let knowledge = loaded["knowledge_base"]
        .as_object()
        .ok_or("no knowledge base")?;
    check_knowledge(knowledge, kinds, &mut present, &mut problems);
    let tasks = history(&loaded, "task_history")?;
    let task_ids = tasks.iter().map(|task| match task.as_object() {
        Some(fields) if fields.len() == 1 => task["n"].as_u64(),
        _ => None,
    });
    sequence(
        "task_history",
        Kind::Task,
        tasks,
        task_ids,
        kinds,
        &mut present,
        &mut problems,
    );
    let scores = history(&loaded, "score_history")?;
    let score_ids = scores.iter().map(|score| score.as_f64().and_then(id_of));
    sequence(
        "score_history",
        Kind::Score,
        scores,
        score_ids,
        kinds,
        &mut present,
        &mut problems,
    );

    let missing: Vec<u64> = acknowledged.difference(&present).copied().collect();
    if !missing.is_empty() {
        let count = |kind| {
            missing
                .iter()
                .filter(|&&id| kind_of(kinds, id) == Some(kind))
                .count()
        };
        problems.push(format!(
            "{} of {} acknowledged operations missing ({} add_knowledge, {} add_task, {} \
             add_score), ids {:?}{}",
            missing.len(),
            acknowledged.len(),
            count(Kind::Knowledge),
            count(Kind::Task),
            count(Kind::Score),
            &missing[..missing.len().min(10)],
            if missing.len() > 10 { " …" } else { "" },
        ));
    }
    let counts = [
        ("knowledge_base_size", knowledge.len()),
        ("task_history_size", tasks.len()),
        ("score_history_size", scores.len()),
    ];
    for (name, count) in counts {
        if figures[name].as_u64() != Some(count as u64) {
            problems.push(format!(
                "stats says {name} {}, convert wrote {count}",
                figures[name]
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What penin loads from `state_file`: `stats --json` (it must succeed), and the state as
/// `convert` writes it in the seed format.
fn load(env: &Env, state_file: &str) -> Result<(Value, Value), String> {
    let out = env.run(&["--state", state_file, "--unbounded", "stats", "--json"]);
    if out.code != Some(0) {
        return Err(format!("stats failed: {}", out.stderr));
    }
    let figures =
        common::seed_figures(&serde_json::from_str(&out.stdout).expect("stats --json prints JSON"));
    let converted = env.path("converted.json");
    let out = env.run(&[
        "--state",
        state_file,
        "--unbounded",
        "convert",
        state_file,
        converted.to_str().expect("a UTF-8 temporary path"),
    ]);
    if out.code != Some(0) {
        return Err(format!("convert failed: {}", out.stderr));
    }
    let loaded = serde_json::from_slice(&env.read("converted.json"))
        .expect("convert writes a state without NaN as JSON");
    Ok((figures, loaded))
}

/// Checks the knowledge base: the base artifacts all there, and every other artifact the one
/// its operation added. Adds each operation's id to `present`.
fn check_knowledge(
    knowledge: &serde_json::Map<String, Value>,
    kinds: &[Kind],
    present: &mut BTreeSet<u64>,
    problems: &mut Vec<String>,
) {
    let mut base = 0;
    for (key, artifact) in knowledge {
        if let Some(i) = key.strip_prefix("base") {
            base += 1;
            if artifact["vector"].as_array().map(Vec::len) != Some(DIMENSIONS) {
                problems.push(format!("base artifact {i} changed"));
            }
            continue;
        }
        let Some(id) = key.strip_prefix('k').and_then(|id| id.parse().ok()) else {
            problems.push(format!("a key no operation added: {key:?}"));
            continue;
        };
        let expected = json!({
            "__type__": "NumericVectorArtifact",
            "vector": [float(id), 0.5, -0.25],
            "metadata": {"id": id},
        });
        if kind_of(kinds, id) != Some(Kind::Knowledge) || *artifact != expected {
            problems.push(format!("{key} holds {artifact}, not what id {id} added"));
        }
        present.insert(id);
    }
    if base != BASE_ARTIFACTS {
        problems.push(format!("{base} base artifacts, not {BASE_ARTIFACTS}"));
    }
}

/// The items of the history `name` of a loaded state.
fn history<'a>(loaded: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    loaded[name]["items"]
        .as_array()
        .ok_or_else(|| format!("no {name} items in {}", loaded[name]))
}

/// Checks a history whose items are operations of `kind` (`ids`, `None` for an item no
/// operation added): strictly increasing ids, so none twice and in the order sent. Adds
/// each id to `present`.
fn sequence(
    name: &str,
    kind: Kind,
    items: &[Value],
    ids: impl Iterator<Item = Option<u64>>,
    kinds: &[Kind],
    present: &mut BTreeSet<u64>,
    problems: &mut Vec<String>,
) {
    let mut last: Option<u64> = None;
    for (item, id) in items.iter().zip(ids) {
        match id {
            Some(id) if kind_of(kinds, id) == Some(kind) => {
                if last.is_some_and(|last| id <= last) {
                    problems.push(format!(
                        "{name}: id {id} after id {}: twice or out of order",
                        last.unwrap_or_default()
                    ));
                }
                last = Some(id);
                present.insert(id);
            }
            _ => problems.push(format!("{name}: {item} was added by no operation")),
        }
    }
}

/// Checks that the ledger of `state` verifies: `penin verify` checks its whole chain (and
/// fails with exit 86 at the first bad line). A change is in the journal and the ledger
/// before its answer, so once one was `acknowledged` the ledger exists; before that (a kill
/// before the first change of the loop) there may be none to check.
fn ledger_verifies(env: &Env, state: &str, acknowledged: bool) {
    let out = env.run(&["--state", state, "verify"]);
    out.assert_ok();
    let ledger = std::path::PathBuf::from(format!("{state}.ledger"));
    if acknowledged || ledger.exists() {
        assert!(
            out.stdout.contains("a sound chain"),
            "verify did not check the ledger: {}",
            out.stdout
        );
    }
}

/// The state before the first round: `BASE_ARTIFACTS` random embeddings, with unbounded
/// histories so that no acknowledged task or score is ever pushed out.
fn base_state(rng: &mut Rng) -> Orchestrator {
    let mut o = Orchestrator::with_history_maxlen(None);
    for i in 0..BASE_ARTIFACTS {
        let vector: Vec<f64> = (0..DIMENSIONS).map(|_| rng.unit()).collect();
        o.add_knowledge(format!("base{i}"), NumericVectorArtifact::new(vector));
    }
    o
}

/// What operation `id` was, if it was sent.
fn kind_of(kinds: &[Kind], id: u64) -> Option<Kind> {
    kinds.get(usize::try_from(id).ok()?).copied()
}

/// `id` as the float the operations send.
fn float(id: u64) -> f64 {
    f64::from(u32::try_from(id).expect("ids stay below 2^32"))
}

/// The id whose float is `x`, if there is one.
fn id_of(x: f64) -> Option<u64> {
    let id = u32::try_from(x as i64).ok()?;
    (f64::from(id) == x).then_some(u64::from(id))
}

/// Whether a save of process `pid` left its temporary file in `dir`.
fn has_temporary_of(pid: u32, dir: &Path) -> bool {
    let mark = format!(".penin-tmp.{pid}.");
    std::fs::read_dir(dir)
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains(&mark))
}

/// The number in the environment variable `name`, if set.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
    )
}

/// A seed from the clock, for a run that explores new moments.
fn clock_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    (now.as_secs() << 30) ^ u64::from(now.subsec_nanos())
}
