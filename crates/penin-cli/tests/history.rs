//! The commands of a state's past, end to end: compact, checkpoint(s), restore, prune, log,
//! verify (ledger and checkpoints), recover after the Python tool replaced the snapshot, and
//! repair of a damaged journal, with their exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{DEFAULT_STATE, Env, JOURNAL, LEDGER, parse_state, wait_for};
use serde_json::json;

fn seed_ref() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/seed_ref.py")
}

fn python3_available(test: &str) -> bool {
    penin_testkit::python3(test, "the Python reference cannot save the state")
}

/// The one file whose name holds `part`.
fn only_file(env: &Env, part: &str) -> String {
    let found: Vec<String> = env
        .tree()
        .into_iter()
        .filter(|name| name.contains(part))
        .collect();
    assert_eq!(found.len(), 1, "{part}: {:?}", env.tree());
    found.into_iter().next().unwrap()
}

#[test]
fn compact_leaves_the_whole_state_in_the_snapshot() {
    let env = Env::new();
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["add-task", r#"{"n":1}"#]).assert_ok();
    assert!(env.read(JOURNAL).len() > 96, "the changes are journaled");
    let out = env.run(&["compact"]);
    out.assert_ok();
    assert!(
        out.stdout
            .starts_with("Compacted .penin_omega/state.json: the snapshot"),
        "{}",
        out.stdout
    );
    assert_eq!(env.read(JOURNAL).len(), 96, "the journal holds no change");
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(state["score_history"]["items"], json!([0.5]));
    assert_eq!(state["task_history"]["items"], json!([{"n": 1}]));
}

#[test]
fn checkpoints_are_listed_restored_and_pruned() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    let out = env.run(&["checkpoint", "--tag", "first"]);
    out.assert_ok();
    assert!(out.stdout.contains("(first)"), "{}", out.stdout);
    env.run(&["add-score", "2"]).assert_ok();
    env.run(&["checkpoint"]).assert_ok();
    env.run(&["add-score", "3"]).assert_ok();

    let out = env.run(&["checkpoints", "--json"]);
    out.assert_ok();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["tag"], json!("first"));
    assert_eq!(list[0]["scores"], json!(1));
    assert_eq!(list[1]["tag"], json!(null));
    assert_eq!(list[1]["scores"], json!(2));
    assert_eq!(list[1]["seq"], json!(2), "{list:?}");
    let human = env.run(&["checkpoints"]);
    human.assert_ok();
    assert_eq!(human.stdout_lines().len(), 3, "{}", human.stdout);

    // By tag: the state of then; the replaced state is checkpointed first.
    let out = env.run(&["restore", "first"]);
    out.assert_ok();
    assert!(
        out.stdout
            .starts_with("Restored .penin_omega/state.json from checkpoint")
    );
    assert_eq!(env.stats_json()["score_history_size"], json!(1));
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["checkpoints", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[2]["scores"], json!(3), "the replaced state");

    // --at: the newest checkpoint at or before the time.
    let second_time = list[1]["time"].as_str().unwrap().to_owned();
    env.run(&["restore", "--at", &second_time]).assert_ok();
    assert_eq!(env.stats_json()["score_history_size"], json!(2));
    let out = env.run(&["restore", "--at", "2000-01-01"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
    assert_eq!(
        env.stats_json()["score_history_size"],
        json!(2),
        "unchanged"
    );

    // Prune: a dry run removes nothing; the tagged checkpoint stays.
    let before = env.run(&["checkpoints", "--json"]).stdout;
    let out = env.run(&["prune", "--keep-last", "1", "--dry-run"]);
    out.assert_ok();
    assert!(out.stdout.contains("would remove"), "{}", out.stdout);
    assert_eq!(env.run(&["checkpoints", "--json"]).stdout, before);
    let out = env.run(&["prune", "--keep-last", "1"]);
    out.assert_ok();
    let after: serde_json::Value =
        serde_json::from_str(&env.run(&["checkpoints", "--json"]).stdout).unwrap();
    let tags: Vec<_> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tag"].clone())
        .collect();
    assert_eq!(tags.len(), 2, "{after}");
    assert!(
        tags.contains(&json!("first")),
        "the tagged one is kept: {after}"
    );
    let out = env.run(&["prune"]);
    assert_eq!(
        out.code,
        Some(2),
        "no rule is a usage error: {}",
        out.stderr
    );

    let out = env.run(&["verify", "--all"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("every checksum matches"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("a sound chain"), "{}", out.stdout);
    let events: Vec<String> = env
        .run(&["log", "--json"])
        .stdout_lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    for event in ["checkpoint", "restore", "prune", "add_score", "compact"] {
        assert!(
            events.contains(&format!("\"{event}\"")),
            "{event}: {events:?}"
        );
    }
}

#[test]
fn a_snapshot_the_python_tool_saved_over_a_journal_is_refused_then_recovered() {
    if !python3_available(
        "a_snapshot_the_python_tool_saved_over_a_journal_is_refused_then_recovered",
    ) {
        return;
    }
    let env = Env::new();
    env.run(&["add-score", "0.5"]).assert_ok();
    env.run(&["add-score", "0.25"]).assert_ok();
    // The Python tool saves its demo state over the snapshot while the journal holds changes.
    let status = Command::new("python3")
        .arg(seed_ref())
        .arg("write")
        .arg(env.state())
        .status()
        .unwrap();
    assert!(status.success());
    let snapshot = env.read(DEFAULT_STATE);
    let journal = env.read(JOURNAL);
    for args in [&["stats"][..], &["run"][..], &["add-score", "1"][..]] {
        let out = env.run(args);
        assert_eq!(out.code, Some(85), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(
                ".penin_omega/state.json is not the snapshot that the journal \
                 .penin_omega/state.json.journal extends"
            ),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("penin recover --keep-journal"),
            "{}",
            out.stderr
        );
        assert_eq!(env.read(DEFAULT_STATE), snapshot, "{args:?}");
        assert_eq!(env.read(JOURNAL), journal, "{args:?}");
    }
    let out = env.run(&["recover", "--keep-journal"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("applied the journal's 2 change(s)"),
        "{}",
        out.stdout
    );
    // The Python demo's scores, then the journal's.
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"]["items"],
        json!([0.85, 0.87, 0.9, 0.5, 0.25])
    );
    env.run(&["verify"]).assert_ok();
    let out = env.run(&["recover", "--keep-journal"]);
    out.assert_ok();
    assert!(
        out.stdout.starts_with("nothing to recover"),
        "{}",
        out.stdout
    );
}

/// A state of three scores whose journal is damaged in its second record: the state, the
/// damaged journal's bytes and the second record's offset.
fn journal_damaged_in_its_second_record() -> (Env, Vec<u8>, usize) {
    let env = Env::new();
    for score in ["1", "2", "3"] {
        env.run(&["add-score", score]).assert_ok();
    }
    let mut journal = env.read(JOURNAL);
    // Records: 96-byte header, then 29 + payload bytes each; the payload of score 1 is "1".
    let second = 96 + 29 + 1;
    journal[second + 25] ^= 0x01;
    env.write(JOURNAL, &journal);
    (env, journal, second)
}

#[test]
fn a_damaged_journal_is_refused_with_its_place_then_repaired() {
    let (env, journal, second) = journal_damaged_in_its_second_record();
    let out = env.run(&["stats"]);
    assert_eq!(out.code, Some(84), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "is damaged at byte offset {second} (record with sequence number 2)"
        )),
        "{}",
        out.stderr
    );
    let out = env.run(&["repair"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("kept 1 change(s) before the damage"),
        "{}",
        out.stdout
    );
    assert_eq!(env.stats_json()["score_history_size"], json!(1));
    assert_eq!(
        env.read(&only_file(&env, ".journal.damaged-")),
        journal,
        "the damaged journal is kept as it was"
    );
    env.run(&["verify", "--all"]).assert_ok();
}

#[test]
fn a_broken_ledger_a_damaged_checkpoint_and_a_newer_journal_have_their_exit_codes() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["checkpoint"]).assert_ok();
    env.run(&["add-score", "2"]).assert_ok();
    env.run(&["verify", "--all"]).assert_ok();

    // One byte of the ledger's second line.
    let ledger = env.read(LEDGER);
    let second = ledger.iter().position(|&b| b == b'\n').unwrap() + 20;
    let mut broken = ledger.clone();
    broken[second] ^= 0x01;
    env.write(LEDGER, &broken);
    let out = env.run(&["verify"]);
    assert_eq!(out.code, Some(86), "{}", out.stderr);
    assert!(
        out.stderr.contains("line 2") || out.stderr.contains("seq 2"),
        "{}",
        out.stderr
    );
    env.write(LEDGER, &ledger);

    // One byte of the checkpoint's data.
    let data = env
        .tree()
        .into_iter()
        .find(|name| {
            name.contains(".checkpoints/")
                && Path::new(name).extension().is_some_and(|e| e == "json")
        })
        .unwrap();
    let mut bytes = env.read(&data);
    bytes[10] ^= 0x01;
    env.write(&data, &bytes);
    let out = env.run(&["verify", "--all"]);
    assert_eq!(out.code, Some(87), "{}", out.stderr);

    // A journal of a newer format version.
    let mut journal = env.read(JOURNAL);
    journal[8] = 9;
    env.write(JOURNAL, &journal);
    let out = env.run(&["stats"]);
    assert_eq!(out.code, Some(69), "{}", out.stderr);
    assert!(out.stderr.contains("version 9"), "{}", out.stderr);
}

#[test]
fn log_shows_the_ledger_since_a_time() {
    let env = Env::new();
    env.run(&["add-knowledge", "k", "--vector", "1,2"])
        .assert_ok();
    let out = env.run(&["log"]);
    out.assert_ok();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].contains("compact"), "{}", lines[0]);
    assert!(lines[1].contains("add_knowledge"), "{}", lines[1]);
    assert!(lines[1].contains("key=\"k\" dimensions=2"), "{}", lines[1]);
    let out = env.run(&["log", "--since", "2200-01-01"]);
    out.assert_ok();
    assert_eq!(out.stdout, "");
    let out = env.run(&["log", "--since", "yesterday"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn run_writes_a_checkpoint_every_interval() {
    let env = Env::new();
    let mut session = env.spawn(&["run", "--checkpoint-every", "1s"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","id":1,"score":0.5}"#),
        r#"{"ok":true,"id":1}"#
    );
    let written = wait_for(|| {
        let out = env.run(&["checkpoints", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let first = list.as_array()?.first()?.clone();
        Some(first)
    });
    session.close_stdin();
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let first = written.expect("no checkpoint within the deadline");
    assert_eq!(first["scores"], json!(1), "{first}");
    assert!(stderr.contains("📸 A checkpoint every 1s"), "{stderr}");
    assert!(stderr.contains("📸 Checkpoint "), "{stderr}");
}

#[test]
fn a_broken_ledger_stops_writers_and_fresh_then_repair_starts_a_new_chain() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["add-score", "2"]).assert_ok();
    let mut ledger = env.read(LEDGER);
    let last = ledger.len() - 10;
    ledger[last] ^= 0x01;
    env.write(LEDGER, &ledger);
    let before = env.tree();
    for args in [
        &["add-score", "3"][..],
        &["run"][..],
        &["run", "--fresh"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(86), "{args:?}: {}", out.stderr);
        assert_eq!(
            env.tree(),
            before,
            "{args:?}: --fresh never moves a sound state aside"
        );
    }
    let out = env.run(&["run"]);
    assert!(out.stderr.contains("run `penin repair`"), "{}", out.stderr);

    let out = env.run(&["repair"]);
    out.assert_ok();
    assert!(
        out.stdout.contains("the ledger's chain was broken"),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.read(&only_file(&env, ".ledger.damaged-")),
        ledger,
        "the broken ledger is kept whole"
    );
    env.run(&["add-score", "3"]).assert_ok();
    assert_eq!(env.stats_json()["score_history_size"], json!(3));
    env.run(&["verify"]).assert_ok();
    let events: Vec<String> = env
        .run(&["log", "--json"])
        .stdout_lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events[0], "\"ledger_restart\"", "{events:?}");
}

#[test]
fn a_damaged_journal_header_is_rebuilt_by_repair_and_every_record_kept() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    for score in ["2", "3"] {
        env.run(&["add-score", score]).assert_ok();
    }
    let mut journal = env.read(JOURNAL);
    journal[20] ^= 0x01; // inside the base sequence number: the header's checksum fails
    env.write(JOURNAL, &journal);
    let out = env.run(&["stats"]);
    assert_eq!(out.code, Some(84), "{}", out.stderr);
    let out = env.run(&["repair"]);
    out.assert_ok();
    assert!(out.stdout.contains("kept 2 change(s)"), "{}", out.stdout);
    assert!(out.stdout.contains("header was rebuilt"), "{}", out.stdout);
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"]["items"],
        json!([1, 2, 3])
    );
    env.run(&["verify", "--all"]).assert_ok();
}

#[test]
fn a_journal_too_damaged_to_read_can_still_be_discarded() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    let mut journal = env.read(JOURNAL);
    journal[30] ^= 0x01;
    env.write(JOURNAL, &journal);
    env.write(
        DEFAULT_STATE,
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [7]\n}",
    );
    let out = env.run(&["recover", "--keep-journal"]);
    assert_eq!(out.code, Some(84), "{}", out.stderr);
    let out = env.run(&["recover", "--discard-journal"]);
    out.assert_ok();
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"]["items"],
        json!([7])
    );
    env.run(&["verify"]).assert_ok();
}

#[test]
fn checkpoint_and_prune_print_json() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    let out = env.run(&["checkpoint", "--tag", "first", "--json"]);
    out.assert_ok();
    let first: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for _ in 0..3 {
        env.run(&["add-score", "2"]).assert_ok();
        env.run(&["checkpoint"]).assert_ok();
    }
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["checkpoints", "--json"]).stdout).unwrap();
    assert_eq!(
        list[0], first,
        "checkpoint --json is what checkpoints --json lists"
    );
    assert_eq!(first["tag"], json!("first"));
    assert_eq!(first["scores"], json!(1));
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);

    let out = env.run(&["prune", "--keep-last", "2", "--dry-run", "--json"]);
    out.assert_ok();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        plan,
        json!({
            "dry_run": true,
            "unfinished_removed": 0,
            "kept": [
                {"id": ids[0], "last": null, "within": false, "tagged": true},
                {"id": ids[2], "last": 2, "within": false, "tagged": false},
                {"id": ids[3], "last": 1, "within": false, "tagged": false},
            ],
            "removed": [ids[1]],
        })
    );
    // The human output says the same.
    let out = env.run(&["prune", "--keep-last", "2", "--dry-run"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        format!(
            "keep   {} (tagged)\nkeep   {} (newest #2)\nkeep   {} (newest #1)\n\
             would remove {}\n3 checkpoint(s) kept, 1 would remove\n",
            ids[0], ids[2], ids[3], ids[1]
        )
    );

    // All four were taken within the hour before the newest.
    let out = env.run(&[
        "prune",
        "--keep-last",
        "1",
        "--keep-within",
        "1h",
        "--dry-run",
        "--json",
    ]);
    out.assert_ok();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let within: Vec<_> = plan["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["within"].clone(), k["last"].clone()))
        .collect();
    assert_eq!(
        within,
        [
            (json!(true), json!(null)),
            (json!(true), json!(null)),
            (json!(true), json!(null)),
            (json!(true), json!(1)),
        ]
    );
    assert_eq!(plan["removed"], json!([]));

    // For real, with a crash's unfinished checkpoint (data without its meta file) to remove.
    env.write(
        ".penin_omega/state.json.checkpoints/20000101T000000.000Z.json",
        b"{}",
    );
    let out = env.run(&["prune", "--keep-last", "1", "--tags-too", "--json"]);
    out.assert_ok();
    let done: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        done,
        json!({
            "dry_run": false,
            "unfinished_removed": 1,
            "kept": [{"id": ids[3], "last": 1, "within": false, "tagged": false}],
            "removed": [ids[0], ids[1], ids[2]],
        })
    );
    let after: serde_json::Value =
        serde_json::from_str(&env.run(&["checkpoints", "--json"]).stdout).unwrap();
    assert_eq!(after, json!([list[3]]));
}

#[test]
fn restore_prints_json() {
    let env = Env::new();
    env.run(&["add-score", "1"]).assert_ok();
    env.run(&["checkpoint"]).assert_ok();
    env.run(&["add-score", "2"]).assert_ok();
    // The checkpoint restored, and the one of the state it replaced.
    let out = env.run(&["restore", "--json"]);
    out.assert_ok();
    let restored: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&env.run(&["checkpoints", "--json"]).stdout).unwrap();
    assert_eq!(
        restored,
        json!({"path": DEFAULT_STATE, "restored": list[0], "saved": list[1]})
    );
    assert_eq!(restored["saved"]["scores"], json!(2));
    assert_eq!(env.stats_json()["score_history_size"], json!(1));
}

fn json_of(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.run(args);
    out.assert_ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn recover_and_repair_print_json() {
    // Another program saved its own state over the snapshot while the journal held changes.
    let foreign =
        b"{\n  \"knowledge_base\": {},\n  \"task_history\": [],\n  \"score_history\": [7]\n}";
    for (how, applied, scores) in [
        ("--keep-journal", 2, json!([7, 1, 2])),
        ("--discard-journal", 0, json!([7])),
    ] {
        let env = Env::new();
        env.run(&["add-score", "1"]).assert_ok();
        env.run(&["add-score", "2"]).assert_ok();
        env.write(DEFAULT_STATE, foreign);
        let recovered = json_of(&env, &["recover", how, "--json"]);
        let moved_to = if applied == 0 {
            json!(only_file(&env, ".journal.discarded-"))
        } else {
            json!(null)
        };
        assert_eq!(
            recovered,
            json!({
                "path": DEFAULT_STATE, "recovered": true, "reason": null, "applied": applied,
                "moved_to": moved_to, "seq": 2,
            }),
            "{how}"
        );
        assert_eq!(env.loaded(DEFAULT_STATE)["score_history"]["items"], scores);
        let nothing = json_of(&env, &["recover", how, "--json"]);
        assert_eq!(nothing["recovered"], json!(false));
        assert!(
            nothing["reason"]
                .as_str()
                .unwrap()
                .starts_with("nothing to recover"),
            "{nothing}"
        );
    }

    // A journal damaged in its second record: the first is kept, the rest set aside.
    let (env, journal, second) = journal_damaged_in_its_second_record();
    let repaired = json_of(&env, &["repair", "--json"]);
    let checkpoints = json_of(&env, &["checkpoints", "--json"]);
    assert_eq!(
        repaired,
        json!({
            "path": DEFAULT_STATE, "repaired": true, "reason": null, "kept": 1,
            "dropped_bytes": journal.len() - second, "dropped": repaired["dropped"],
            "damage": repaired["damage"], "header_rebuilt": false,
            "moved_to": only_file(&env, ".journal.damaged-"), "ledger": null,
            "checkpoint": checkpoints[0]["id"],
        })
    );
    assert!(repaired["damage"].is_string(), "{repaired}");
    assert_eq!(repaired["dropped"], json!([2, 3]), "{repaired}");
    let nothing = json_of(&env, &["repair", "--json"]);
    assert_eq!(
        (
            &nothing["repaired"],
            &nothing["checkpoint"],
            &nothing["kept"]
        ),
        (&json!(false), &json!(null), &json!(0))
    );
    assert!(nothing["reason"].is_string(), "{nothing}");
}
