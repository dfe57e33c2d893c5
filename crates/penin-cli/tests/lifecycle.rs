//! `penin run`, `penin` alone and `penin demo`: start-up lines, first run, reload, autosave,
//! leftover temporaries.

mod common;

use common::{
    DEFAULT_STATE, EMPTY_STATE, Env, JOURNAL, LEDGER, SYNC_ALWAYS, fixture_bytes, parse_state,
};
use serde_json::json;

#[test]
fn first_run_saves_an_empty_state() {
    let env = Env::new();
    let out = env.run(&["run"]);
    out.assert_ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr_lines(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "ℹ️  No previous state found (first run)",
            SYNC_ALWAYS,
            "📭 End of input, saving state...",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    assert_eq!(env.state_text(), EMPTY_STATE);
    assert_eq!(
        env.read(DEFAULT_STATE),
        fixture_bytes("empty.expected.json")
    );
    assert_eq!(
        env.tree(),
        [".penin_omega/", DEFAULT_STATE, JOURNAL, LEDGER]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[cfg(unix)]
#[test]
fn first_run_creates_a_private_file_and_directory() {
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    env.run(&["run"]).assert_ok();
    let mode = |rel: &str| {
        std::fs::metadata(env.path(rel))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(DEFAULT_STATE), 0o600);
    assert_eq!(mode(".penin_omega"), 0o700);
}

#[test]
fn second_run_loads_and_counts() {
    let env = Env::new();
    let input = concat!(
        r#"{"op":"add_knowledge","key":"a","vector":[1.5]}"#,
        "\n",
        r#"{"op":"add_task","task":{"task_id":1}}"#,
        "\n",
        r#"{"op":"add_task","task":{"task_id":2}}"#,
        "\n",
        r#"{"op":"add_score","score":0.1}"#,
        "\n",
        r#"{"op":"add_score","score":0.2}"#,
        "\n",
        r#"{"op":"add_score","score":0.3}"#,
        "\n",
    );
    env.run_with_input(&["run"], input).assert_ok();
    let saved = env.read(DEFAULT_STATE);

    let out = env.run(&["run"]);
    out.assert_ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr_lines(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "✅ State loaded from .penin_omega/state.json",
            "   Knowledge base: 1 items",
            "   Task history: 2 entries",
            "   Score history: 3 entries",
            SYNC_ALWAYS,
            "📭 End of input, saving state...",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    // Nothing changed in between: the re-save is the same file.
    assert_eq!(env.read(DEFAULT_STATE), saved);
}

#[test]
fn no_subcommand_runs_the_lifecycle() {
    let input = concat!(
        r#"{"op":"add_score","id":1,"score":0.5}"#,
        "\n",
        r#"{"op":"stats","id":2}"#,
        "\n",
    );
    let with_run = Env::new();
    let bare = Env::new();
    let expected = with_run.run_with_input(&["run"], input);
    expected.assert_ok();
    let got = bare.run_with_input(&[], input);
    got.assert_ok();
    assert_eq!(
        got.stdout_lines(),
        [
            r#"{"ok":true,"id":1}"#,
            r#"{"ok":true,"id":2,"stats":{"knowledge_base_size":0,"task_history_size":0,"score_history_size":1,"average_score":0.5}}"#,
        ]
    );
    assert_eq!(got.stdout, expected.stdout);
    assert_eq!(got.stderr, expected.stderr);
    assert_eq!(
        got.stderr_lines(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "ℹ️  No previous state found (first run)",
            SYNC_ALWAYS,
            "📭 End of input, saving state...",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    assert_eq!(bare.read(DEFAULT_STATE), with_run.read(DEFAULT_STATE));
    assert_eq!(
        parse_state(&bare.read(DEFAULT_STATE))["score_history"]["items"],
        json!([0.5])
    );
}

#[test]
fn demo_twice_matches_the_seed() {
    let env = Env::new();
    let first = env.run(&["demo"]);
    first.assert_ok();
    assert_eq!(
        first.stdout_lines(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "ℹ️  No previous state found (first run)",
            "📊 Statistics:",
            "   Knowledge base: 2 items",
            "   Task history: 2 entries",
            "   Score history: 3 entries",
            "   Average score: 0.8733",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    assert_eq!(first.stderr, "");
    // The state Python's `python -m penin` writes, byte for byte.
    assert_eq!(env.read(DEFAULT_STATE), fixture_bytes("seed_demo.json"));

    let second = env.run(&["demo"]);
    second.assert_ok();
    assert_eq!(
        second.stdout_lines(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "✅ State loaded from .penin_omega/state.json",
            "   Knowledge base: 2 items",
            "   Task history: 2 entries",
            "   Score history: 3 entries",
            "📊 Statistics:",
            "   Knowledge base: 2 items",
            "   Task history: 4 entries",
            "   Score history: 6 entries",
            "   Average score: 0.8733",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(
        state["score_history"]["items"],
        json!([0.85, 0.87, 0.9, 0.85, 0.87, 0.9])
    );
    assert_eq!(
        state["task_history"]["items"]
            .as_array()
            .expect("items")
            .len(),
        4
    );
}

#[test]
fn demo_loads_a_python_written_state() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
    let out = env.run(&["demo"]);
    out.assert_ok();
    assert_eq!(
        &out.stdout_lines()[..5],
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "✅ State loaded from .penin_omega/state.json",
            "   Knowledge base: 2 items",
            "   Task history: 2 entries",
            "   Score history: 3 entries",
        ]
    );
    let stats = env.stats_json();
    assert_eq!(stats["task_history_size"], json!(4));
    assert_eq!(stats["score_history_size"], json!(6));
}

#[test]
fn an_answered_change_is_on_disk_while_the_session_runs() {
    let env = Env::new();
    // `--autosave` is obsolete: accepted, said, and nothing waits for it.
    let mut session = env.spawn(&["run", "--autosave", "30"]);
    assert_eq!(
        session.ask(r#"{"op":"add_score","id":"a","score":0.75}"#),
        r#"{"ok":true,"id":"a"}"#
    );
    // Stdin stays open and nothing saves the snapshot: the journal holds the change, and a
    // reader (snapshot, then journal) sees it at once.
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"]["items"],
        json!([0.75])
    );
    let (_, rest, stderr) = session.kill_with_stderr();
    assert!(rest.is_empty(), "unexpected stdout: {rest:?}");
    assert!(
        stderr.contains("--autosave is no longer needed and is ignored"),
        "{stderr}"
    );
    // Killed without a save: the change survives in the journal.
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"]["items"],
        json!([0.75])
    );
    assert_eq!(env.stats_json()["score_history_size"], json!(1));
}

#[test]
fn leftover_temporaries_are_removed_at_start_and_never_loaded() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
    // Those of a snapshot, of a compaction's next journal and of a rebuilt journal.
    for name in [
        ".state.json.penin-tmp.4242.0",
        ".state.json.journal.next.penin-tmp.4242.1",
        ".state.json.journal.penin-tmp.4242.2",
    ] {
        env.write(&format!(".penin_omega/{name}"), b"{ half a save");
    }
    env.write(".penin_omega/notes.txt", b"mine");
    let out = env.run(&["run"]);
    out.assert_ok();
    assert_eq!(
        &out.stderr_lines()[..3],
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "🧹 Removed 3 temporary file(s) of an interrupted save",
            "✅ State loaded from .penin_omega/state.json",
        ]
    );
    assert_eq!(
        env.tree(),
        [".penin_omega/", ".penin_omega/notes.txt", DEFAULT_STATE]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert_eq!(env.read(DEFAULT_STATE), fixture_bytes("seed_demo.json"));
}
