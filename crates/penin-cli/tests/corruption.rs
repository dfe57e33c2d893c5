//! A state file that exists but cannot be loaded: nothing starts, nothing overwrites it,
//! unless `--fresh` moves it aside.

mod common;

use common::{DEFAULT_STATE, EMPTY_STATE, Env, JOURNAL, LEDGER, SYNC_ALWAYS, fixture_bytes};

/// A save cut short: valid up to where it stops.
const TRUNCATED: &[u8] = b"{\n  \"knowledge_base\": {";

/// Corrupt files, each with the problem the error must name and its exit code.
const CASES: &[(&str, &[u8], &str, i32)] = &[
    (
        "truncated",
        TRUNCATED,
        "unexpected end of input at line 2, column 22 in knowledge_base",
        81,
    ),
    ("empty", b"", "the document is empty", 80),
    (
        "wrong shape",
        b"{\"knowledge_base\": [1]}",
        "knowledge_base: expected an object of artifacts, found an array (line 1, column 20)",
        83,
    ),
    (
        "string in a vector",
        br#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1, "a"], "metadata": {}}}}"#,
        "knowledge_base[\"k\"].vector[1]: expected a number, found a string",
        83,
    ),
    ("not UTF-8", b"\xff\xfe", "invalid UTF-8 at line 1, column 1", 82),
    ("not JSON", b"{\"knowledge_base\": {}]", "expected ',' or '}', found ']' at line 1, column 22", 65),
];

fn corrupt_env(bytes: &[u8]) -> Env {
    let env = Env::new();
    env.write(DEFAULT_STATE, bytes);
    env
}

#[test]
fn run_refuses_to_start_and_leaves_the_file_alone() {
    for (name, bytes, problem, code) in CASES {
        let env = corrupt_env(bytes);
        let before = env.tree();
        let out = env.run(&["run"]);
        assert_eq!(out.code, Some(*code), "{name}: stderr:\n{}", out.stderr);
        assert_eq!(out.stdout, "", "{name}");
        let lines = out.stderr_lines();
        assert_eq!(lines[0], "🚀 Starting PENIN-Ω Orchestrator...", "{name}");
        let error = lines.last().expect("an error line");
        assert!(
            error.starts_with("penin: refusing to start: the state file .penin_omega/state.json"),
            "{name}: {error}"
        );
        assert!(
            error.contains("--fresh"),
            "{name}: the way out is not named: {error}"
        );
        assert!(error.contains(problem), "{name}: {error}");
        assert_eq!(env.read(DEFAULT_STATE), *bytes, "{name}: the file changed");
        assert_eq!(env.tree(), before, "{name}: files appeared or vanished");
    }
}

#[test]
fn bare_penin_and_demo_refuse_too() {
    for args in [&[][..], &["demo"][..]] {
        let env = corrupt_env(TRUNCATED);
        let before = env.tree();
        let out = env.run(args);
        assert_eq!(out.code, Some(81), "{args:?}: stderr:\n{}", out.stderr);
        assert!(out.stderr.contains("refusing to start"), "{args:?}");
        assert_eq!(env.read(DEFAULT_STATE), TRUNCATED, "{args:?}");
        assert_eq!(env.tree(), before, "{args:?}");
    }
}

#[test]
fn fresh_moves_the_file_aside_and_starts_empty() {
    let env = corrupt_env(TRUNCATED);
    let out = env.run(&["run", "--fresh"]);
    out.assert_ok();
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 6, "stderr:\n{}", out.stderr);
    assert_eq!(lines[0], "🚀 Starting PENIN-Ω Orchestrator...");
    assert_eq!(
        lines[1],
        "⚠️  Could not load .penin_omega/state.json: .penin_omega/state.json is not a valid state: \
         unexpected end of input at line 2, column 22 in knowledge_base"
    );
    let moved = lines[2]
        .strip_prefix("   Moved it to ")
        .and_then(|rest| rest.strip_suffix(" and starting with an empty state"))
        .unwrap_or_else(|| panic!("no move line: {}", lines[2]));
    assert!(
        moved.starts_with(".penin_omega/state.json.unreadable-"),
        "{moved}"
    );
    assert_eq!(
        &lines[3..],
        [
            SYNC_ALWAYS,
            "📭 End of input, saving state...",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    // The original bytes are kept under the name reported, and nothing else appeared.
    assert_eq!(env.read(moved), TRUNCATED);
    assert_eq!(
        env.tree(),
        [".penin_omega/", DEFAULT_STATE, JOURNAL, LEDGER, moved]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert_eq!(env.state_text(), EMPTY_STATE);
}

#[test]
fn fresh_on_a_good_file_loads_it() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
    let out = env.run(&["run", "--fresh"]);
    out.assert_ok();
    assert_eq!(
        out.stderr_lines()[1],
        "✅ State loaded from .penin_omega/state.json"
    );
    assert_eq!(env.read(DEFAULT_STATE), fixture_bytes("seed_demo.json"));
    assert_eq!(env.tree().len(), 2, "{:?}", env.tree());
}

#[test]
fn one_shot_commands_refuse_a_corrupt_state() {
    let commands: &[&[&str]] = &[
        &["add-knowledge", "k", "--vector", "0.1,0.2"],
        &["add-task", r#"{"task_id":1}"#],
        &["add-score", "0.5"],
        &["stats"],
        &["stats", "--json"],
    ];
    for args in commands {
        let env = corrupt_env(TRUNCATED);
        let before = env.tree();
        let out = env.run(args);
        assert_eq!(out.code, Some(81), "{args:?}: stderr:\n{}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(
            out.stderr
                .contains("unexpected end of input at line 2, column 22"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(env.read(DEFAULT_STATE), TRUNCATED, "{args:?}");
        assert_eq!(env.tree(), before, "{args:?}");
    }
}

/// A ledger whose last line claims a gigabyte and a half (a hole before its last newline, as
/// a sparse file has) makes a change fail with what it could not do, the state left as it
/// is, in a gigabyte of address space (the line's buffer is asked for fallibly; an
/// infallible one aborts the process), and `stats` says the ledger is unreadable.
#[test]
fn a_ledger_line_of_more_than_memory_is_an_error_not_an_abort() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    let (state, journal) = (env.read(DEFAULT_STATE), env.read(JOURNAL));
    let hole = 3_u64 << 29;
    env.extend_by_hole(LEDGER, hole, b"\n");
    let out = env.run_within(1 << 20, &["add-score", "0.5"]);
    assert_eq!(out.code, Some(74), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot read {LEDGER}: no memory for {hole} bytes")),
        "{}",
        out.stderr
    );
    assert_eq!(env.read(DEFAULT_STATE), state);
    assert_eq!(env.read(JOURNAL), journal);
    let out = env.run_within(1 << 20, &["stats"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("Ledger: unreadable (cannot read {LEDGER})")),
        "{}",
        out.stdout
    );
}

/// A journal whose last 4 bytes claim a record of a gigabyte (after a hole, as a sparse file
/// has) makes a change fail with what it could not read, the state left as it is, in 900 MiB
/// of address space (the record's buffer is asked for fallibly; an infallible one aborts the
/// process).
#[test]
fn a_journal_record_of_more_than_memory_is_an_error_not_an_abort() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    let state = env.read(DEFAULT_STATE);
    env.extend_by_hole(JOURNAL, 1100 << 20, &[0, 0, 0, 0x40]);
    let out = env.run_within(900 << 10, &["add-score", "0.5"]);
    assert_eq!(out.code, Some(74), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot read {JOURNAL}: out of memory")),
        "{}",
        out.stderr
    );
    assert_eq!(env.read(DEFAULT_STATE), state);
}

/// A ledger whose torn tail (no newline after it) is a hole of a gigabyte and a half:
/// `verify` and `log`, which read it line by line, fail saying so in a gigabyte of address
/// space (the line's buffer grows fallibly; an infallible one aborts the process).
#[test]
fn a_torn_ledger_tail_of_more_than_memory_is_an_error_not_an_abort() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    env.extend_by_hole(LEDGER, 3 << 29, b"");
    for command in ["verify", "log"] {
        let out = env.run_within(1 << 20, &[command]);
        assert_eq!(out.code, Some(74), "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "cannot read {LEDGER}: no memory for a line of more than "
            )),
            "{command}: {}",
            out.stderr
        );
    }
}

/// A prepared journal (`NAME.journal.next`, a header alone) that is a hole of a terabyte:
/// refused as not a journal, from its first bytes, by a reader and a writer alike, in a
/// gigabyte of address space (reading the whole file would ask for a terabyte).
#[test]
fn a_prepared_journal_of_a_terabyte_is_refused_from_its_first_bytes() {
    let env = Env::new();
    env.run(&["demo"]).assert_ok();
    let state = env.read(DEFAULT_STATE);
    let next = format!("{JOURNAL}.next");
    env.write(&next, b"");
    env.extend_by_hole(&next, 1 << 40, b"");
    for args in [&["stats"][..], &["add-score", "0.5"][..]] {
        let out = env.run_within(1 << 20, args);
        assert_eq!(out.code, Some(84), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{next} is not a penin journal (its first bytes are not the journal's magic number)"
            )),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(env.read(DEFAULT_STATE), state);
}
