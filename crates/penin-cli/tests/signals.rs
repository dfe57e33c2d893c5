//! SIGTERM and SIGINT during `penin run`: the state is saved and the exit is clean.
#![cfg(unix)]

mod common;

use common::{DEFAULT_STATE, Env, parse_state, signal};
use serde_json::json;

/// Applies some operations (their answers prove it), signals, and checks the saved state.
fn saves_on(name: &str) {
    let env = Env::new();
    // Autosave off: only the signal path can write the file.
    let mut session = env.spawn(&["run", "--autosave", "0"]);
    assert_eq!(
        session.ask(
            r#"{"op":"add_knowledge","id":1,"key":"k","vector":[0.5,-1.0],"metadata":{"s":"x"}}"#
        ),
        r#"{"ok":true,"id":1,"key":"k"}"#
    );
    assert_eq!(
        session.ask(r#"{"op":"add_task","id":2,"task":{"task_id":3}}"#),
        r#"{"ok":true,"id":2}"#
    );
    assert_eq!(
        session.ask(r#"{"op":"add_score","id":3,"score":0.25}"#),
        r#"{"ok":true,"id":3}"#
    );
    assert!(!env.state().exists(), "saved before the signal");
    signal(session.pid(), name);
    let (status, rest, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{name}: stderr:\n{stderr}");
    assert!(rest.is_empty(), "unexpected stdout: {rest:?}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "🚀 Starting PENIN-Ω Orchestrator...",
            "ℹ️  No previous state found (first run)",
            "🛑 Received a termination signal (SIGINT or SIGTERM), saving state...",
            "✅ State saved to .penin_omega/state.json",
        ]
    );
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(
        state,
        json!({
            "knowledge_base": {
                "k": {"__type__": "NumericVectorArtifact", "vector": [0.5, -1.0], "metadata": {"s": "x"}}
            },
            "task_history": {"__type__": "deque", "items": [{"task_id": 3}], "maxlen": 1000},
            "score_history": {"__type__": "deque", "items": [0.25], "maxlen": 1000}
        })
    );
}

#[test]
fn sigterm_saves_and_exits_zero() {
    saves_on("TERM");
}

#[test]
fn sigint_saves_and_exits_zero() {
    saves_on("INT");
}

#[test]
fn a_signal_without_changes_exits_zero_and_keeps_the_state() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &common::fixture_bytes("seed_demo.json"));
    let mut session = env.spawn(&["run"]);
    // An answer proves the session (and its signal handler) is up.
    assert_eq!(
        session.ask(r#"{"op":"stats","id":0}"#),
        r#"{"ok":true,"id":0,"stats":{"knowledge_base_size":2,"task_history_size":2,"score_history_size":3,"average_score":0.8733333333333334}}"#
    );
    signal(session.pid(), "TERM");
    let (status, rest, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(rest.is_empty(), "unexpected stdout: {rest:?}");
    assert!(
        stderr.contains("🛑 Received a termination signal (SIGINT or SIGTERM), saving state...\n"),
        "stderr:\n{stderr}"
    );
    assert_eq!(
        env.read(DEFAULT_STATE),
        common::fixture_bytes("seed_demo.json")
    );
}

#[test]
fn a_signal_on_a_fresh_session_saves_an_empty_state() {
    let env = Env::new();
    let mut session = env.spawn(&["run"]);
    assert_eq!(
        session.ask(r#"{"op":"stats"}"#),
        r#"{"ok":true,"stats":{"knowledge_base_size":0,"task_history_size":0,"score_history_size":0,"average_score":0.0}}"#
    );
    signal(session.pid(), "INT");
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert_eq!(env.state_text(), common::EMPTY_STATE);
}

/// A second signal while the first one's save is under way changes nothing: the save
/// completes, the exit is clean and the file holds the whole state.
#[test]
fn a_second_signal_during_the_save_does_not_corrupt_it() {
    let env = Env::new();
    let mut session = env.spawn(&["run", "--autosave", "0"]);
    // A state large enough that its save takes a while.
    let vector: Vec<String> = (0..384)
        .map(|i| format!("{}", f64::from(i) * 0.001_234_567))
        .collect();
    for i in 0..300 {
        let line = format!(
            r#"{{"op":"add_knowledge","key":"k{i}","vector":[{}]}}"#,
            vector.join(",")
        );
        assert!(session.ask(&line).starts_with(r#"{"ok":true"#));
    }
    signal(session.pid(), "TERM");
    signal(session.pid(), "TERM");
    signal(session.pid(), "INT");
    let (status, _, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let state = parse_state(&std::fs::read(env.state()).unwrap());
    assert_eq!(state["knowledge_base"].as_object().unwrap().len(), 300);
    assert!(!env.tree().iter().any(|name| name.contains(".penin-tmp.")));
}
