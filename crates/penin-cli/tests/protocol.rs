//! The line protocol of `penin run`: one answer line per operation, in order, ids echoed;
//! bad lines are answered with an error and change nothing; `save` writes mid-session.

mod common;

use common::{DEFAULT_STATE, Env, SYNC_ALWAYS, parse_state, wait_for};
use serde_json::json;

/// Bad lines, each with its exact answer. None of them may change the state.
const BAD: &[(&str, &str)] = &[
    (
        "not json",
        r#"{"ok":false,"error":"invalid JSON: invalid literal, expected null at line 1, column 1"}"#,
    ),
    (
        "[1]",
        r#"{"ok":false,"error":"expected an object with an \"op\", found an array"}"#,
    ),
    (
        r#""op""#,
        r#"{"ok":false,"error":"expected an object with an \"op\", found a string"}"#,
    ),
    (
        r#"{"id":9}"#,
        r#"{"ok":false,"id":9,"error":"missing \"op\""}"#,
    ),
    (
        r#"{"op":"fly","id":1}"#,
        r#"{"ok":false,"id":1,"error":"unknown op \"fly\": expected add_knowledge, add_task, add_score, save, stats or search"}"#,
    ),
    (
        r#"{"op":"add_knowledge","id":"no-key","vector":[1]}"#,
        r#"{"ok":false,"id":"no-key","error":"add_knowledge needs a \"key\""}"#,
    ),
    (
        r#"{"op":"add_knowledge","id":"no-vector","key":"k"}"#,
        r#"{"ok":false,"id":"no-vector","error":"add_knowledge needs a \"vector\" array of numbers, found null"}"#,
    ),
    (
        r#"{"op":"add_knowledge","id":"str","key":"k","vector":[1,"a"]}"#,
        r#"{"ok":false,"id":"str","error":"vector[1]: expected a number, found a string"}"#,
    ),
    (
        r#"{"op":"add_knowledge","id":"meta","key":"k","vector":[1],"metadata":3}"#,
        r#"{"ok":false,"id":"meta","error":"metadata: expected an object, found an integer"}"#,
    ),
    (
        r#"{"op":"add_knowledge","id":"key-type","key":7,"vector":[1]}"#,
        r#"{"ok":false,"id":"key-type","error":"\"key\" must be a string, found an integer"}"#,
    ),
    (
        r#"{"op":"add_task","id":"t"}"#,
        r#"{"ok":false,"id":"t","error":"add_task needs a \"task\""}"#,
    ),
    (
        r#"{"op":"add_score","id":"s"}"#,
        r#"{"ok":false,"id":"s","error":"add_score needs a \"score\""}"#,
    ),
    (
        r#"{"op":"add_score","id":"s2","score":"0.5"}"#,
        r#"{"ok":false,"id":"s2","error":"\"score\" must be a number, found a string"}"#,
    ),
    (
        r#"{"op":"add_score","id":"extra","score":0.5,"weight":2}"#,
        r#"{"ok":false,"id":"extra","error":"unexpected key \"weight\" for op \"add_score\""}"#,
    ),
    (
        r#"{"op":7}"#,
        r#"{"ok":false,"error":"\"op\" must be a string, found an integer"}"#,
    ),
];

/// Good lines, each with its exact answer.
const GOOD: &[(&str, &str)] = &[
    (
        r#"{"op":"add_knowledge","id":1,"key":"emb","vector":[0.1,2],"metadata":{"source":"x","tags":["a","b"]}}"#,
        r#"{"ok":true,"id":1,"key":"emb"}"#,
    ),
    (
        r#"{"op":"add_task","id":2,"task":{"task_id":1,"type":"evolution"}}"#,
        r#"{"ok":true,"id":2}"#,
    ),
    (
        r#"{"op":"add_score","id":3,"score":0.5}"#,
        r#"{"ok":true,"id":3}"#,
    ),
    (
        r#"{"op":"add_score","id":{"nested":[true]},"score":1}"#,
        r#"{"ok":true,"id":{"nested":[true]}}"#,
    ),
    (
        r#"{"op":"stats","id":5}"#,
        r#"{"ok":true,"id":5,"stats":{"knowledge_base_size":1,"task_history_size":1,"score_history_size":2,"average_score":0.75}}"#,
    ),
    (
        r#"{"op":"save","id":6}"#,
        r#"{"ok":true,"id":6,"saved":".penin_omega/state.json"}"#,
    ),
    // No id: none is echoed.
    (
        r#"{"op":"stats"}"#,
        r#"{"ok":true,"stats":{"knowledge_base_size":1,"task_history_size":1,"score_history_size":2,"average_score":0.75}}"#,
    ),
];

/// Exactly what the good lines add, in the seed format.
const EXPECTED_STATE: &str = r#"{
  "knowledge_base": {
    "emb": {
      "__type__": "NumericVectorArtifact",
      "vector": [
        0.1,
        2.0
      ],
      "metadata": {
        "source": "x",
        "tags": [
          "a",
          "b"
        ]
      }
    }
  },
  "task_history": {
    "__type__": "deque",
    "items": [
      {
        "task_id": 1,
        "type": "evolution"
      }
    ],
    "maxlen": 1000
  },
  "score_history": {
    "__type__": "deque",
    "items": [
      0.5,
      1
    ],
    "maxlen": 1000
  }
}"#;

#[test]
fn bad_lines_are_answered_and_the_session_goes_on() {
    let env = Env::new();
    let mut input = String::new();
    let mut expected = Vec::new();
    for (line, answer) in BAD {
        input.push_str(line);
        input.push('\n');
        expected.push(*answer);
        // Blank lines between operations are ignored: no answer.
        input.push_str("\n   \t\n");
    }
    for (line, answer) in GOOD {
        input.push_str(line);
        input.push('\n');
        expected.push(*answer);
    }
    let out = env.run_with_input(&["run"], &input);
    out.assert_ok();
    assert_eq!(out.stdout_lines(), expected);
    // Stdout carries answer lines only: each one a JSON object with a boolean "ok".
    for line in out.stdout_lines() {
        let answer: serde_json::Value = serde_json::from_str(line).expect("an answer is JSON");
        assert!(answer["ok"].is_boolean(), "no \"ok\" in {line}");
    }
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
    assert_eq!(env.state_text(), EXPECTED_STATE);
}

#[test]
fn only_bad_lines_leave_an_empty_state() {
    let env = Env::new();
    let input: String = BAD.iter().flat_map(|(line, _)| [*line, "\n"]).collect();
    let out = env.run_with_input(&["run"], &input);
    out.assert_ok();
    let answers: Vec<&str> = BAD.iter().map(|(_, answer)| *answer).collect();
    assert_eq!(out.stdout_lines(), answers);
    assert_eq!(env.state_text(), common::EMPTY_STATE);
}

#[test]
fn crlf_lines_and_a_last_line_without_newline_are_read() {
    let env = Env::new();
    let input = concat!(
        "{\"op\":\"add_score\",\"id\":1,\"score\":0.25}\r\n",
        "\r\n",
        "{\"op\":\"add_score\",\"id\":2,\"score\":0.5}",
    );
    let out = env.run_with_input(&["run"], input);
    out.assert_ok();
    assert_eq!(
        out.stdout_lines(),
        [r#"{"ok":true,"id":1}"#, r#"{"ok":true,"id":2}"#]
    );
    assert_eq!(
        parse_state(&env.read(DEFAULT_STATE))["score_history"]["items"],
        json!([0.25, 0.5])
    );
}

#[test]
fn answers_come_one_per_line_as_operations_arrive() {
    let env = Env::new();
    let mut session = env.spawn(&["run", "--autosave", "0"]);
    for (line, answer) in GOOD.iter().take(3).chain(BAD.iter().take(2)) {
        assert_eq!(session.ask(line), *answer, "answer to {line}");
    }
    session.close_stdin();
    let (status, rest, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(rest.is_empty(), "unexpected stdout: {rest:?}");
}

#[test]
fn save_writes_the_file_while_the_session_runs() {
    let env = Env::new();
    // Only the save operation (a compaction) may rewrite the snapshot before the end of
    // input: the change is in the journal, and the snapshot is the empty state it extends.
    let mut session = env.spawn(&["run"]);
    assert_eq!(
        session.ask(r#"{"op":"add_task","id":"t","task":{"task_id":7}}"#),
        r#"{"ok":true,"id":"t"}"#
    );
    assert_eq!(
        parse_state(&env.read(DEFAULT_STATE))["task_history"]["items"],
        json!([]),
        "saved before being asked to"
    );
    assert_eq!(
        env.loaded(DEFAULT_STATE)["task_history"]["items"],
        json!([{"task_id": 7}])
    );
    assert_eq!(
        session.ask(r#"{"op":"save","id":"s"}"#),
        r#"{"ok":true,"id":"s","saved":".penin_omega/state.json"}"#
    );
    let saved = wait_for(|| {
        let bytes = std::fs::read(env.state()).ok()?;
        (parse_state(&bytes)["task_history"]["items"] == json!([{"task_id": 7}])).then_some(())
    });
    assert!(saved.is_some(), "the save operation did not write the task");

    // Later changes reach the file at the end of input.
    assert_eq!(
        session.ask(r#"{"op":"add_score","id":"x","score":0.5}"#),
        r#"{"ok":true,"id":"x"}"#
    );
    session.close_stdin();
    let (status, rest, stderr) = session.finish();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(rest.is_empty(), "unexpected stdout: {rest:?}");
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(state["task_history"]["items"], json!([{"task_id": 7}]));
    assert_eq!(state["score_history"]["items"], json!([0.5]));
}

#[test]
fn replacing_a_key_keeps_one_artifact() {
    let env = Env::new();
    let input = concat!(
        r#"{"op":"add_knowledge","key":"k","vector":[1.0],"metadata":{"v":1}}"#,
        "\n",
        r#"{"op":"add_knowledge","key":"k","vector":[2.0,3.0]}"#,
        "\n",
    );
    env.run_with_input(&["run"], input).assert_ok();
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(
        state["knowledge_base"],
        json!({"k": {"__type__": "NumericVectorArtifact", "vector": [2.0, 3.0], "metadata": {}}})
    );
}
