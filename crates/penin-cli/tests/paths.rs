//! Which state file: `--state`, else `PENIN_STATE`, else the default; and the history
//! bound of a new state.

mod common;

use common::{DEFAULT_STATE, Env, fixture_bytes, output};
use serde_json::json;

const ONE_SCORE: &str = "{\"op\":\"add_score\",\"score\":0.5}\n";

#[test]
fn state_option_chooses_the_file() {
    let env = Env::new();
    let out = env.run_with_input(&["--state", "a/s.json", "run"], ONE_SCORE);
    out.assert_ok();
    assert!(
        out.stderr.ends_with("✅ State saved to a/s.json\n"),
        "{}",
        out.stderr
    );
    // After the command too (the option is global).
    let out = env.run(&["add-score", "--state", "a/s.json", "0.25"]);
    out.assert_ok();
    assert_eq!(
        env.loaded("a/s.json")["score_history"]["items"],
        json!([0.5, 0.25])
    );
    assert!(!env.state().exists(), "the default state was written");
}

#[test]
fn penin_state_chooses_the_file() {
    let env = Env::new();
    let out = output(
        env.command(&["add-score", "0.5"])
            .env("PENIN_STATE", "env/s.json"),
    );
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "Added a score to env/s.json: change 1, on disk\n"
    );
    assert_eq!(
        env.loaded("env/s.json")["score_history"]["items"],
        json!([0.5])
    );
    assert!(!env.state().exists(), "the default state was written");
}

#[test]
fn state_option_wins_over_penin_state() {
    let env = Env::new();
    let out = output(
        env.command(&["--state", "opt.json", "add-score", "0.5"])
            .env("PENIN_STATE", "env.json"),
    );
    out.assert_ok();
    assert_eq!(
        env.loaded("opt.json")["score_history"]["items"],
        json!([0.5])
    );
    assert!(!env.path("env.json").exists());
    assert!(!env.state().exists());
}

#[test]
fn penin_state_is_read_by_run_and_stats() {
    let env = Env::new();
    env.write("mine.json", &fixture_bytes("seed_demo.json"));
    let out = output(
        env.command(&["stats", "--json"])
            .env("PENIN_STATE", "mine.json"),
    );
    out.assert_ok();
    assert!(
        out.stdout.starts_with(
            "{\"knowledge_base_size\":2,\"task_history_size\":2,\"score_history_size\":3,\
             \"average_score\":0.8733333333333334,\"path\":\"mine.json\","
        ),
        "{}",
        out.stdout
    );
    let out = output(env.command(&["run"]).env("PENIN_STATE", "mine.json"));
    out.assert_ok();
    assert_eq!(out.stderr_lines()[1], "✅ State loaded from mine.json");
}

#[test]
fn history_maxlen_bounds_a_new_state() {
    let env = Env::new();
    let input = concat!(
        "{\"op\":\"add_score\",\"score\":1}\n",
        "{\"op\":\"add_score\",\"score\":2}\n",
        "{\"op\":\"add_score\",\"score\":3}\n",
        "{\"op\":\"add_task\",\"task\":\"a\"}\n",
        "{\"op\":\"add_task\",\"task\":\"b\"}\n",
        "{\"op\":\"add_task\",\"task\":\"c\"}\n",
    );
    env.run_with_input(&["--history-maxlen", "2", "run"], input)
        .assert_ok();
    assert_eq!(
        env.state_text(),
        r#"{
  "knowledge_base": {},
  "task_history": {
    "__type__": "deque",
    "items": [
      "b",
      "c"
    ],
    "maxlen": 2
  },
  "score_history": {
    "__type__": "deque",
    "items": [
      2,
      3
    ],
    "maxlen": 2
  }
}"#
    );
    // The file's bound wins afterwards, whatever the option says.
    env.run(&["add-score", "4"]).assert_ok();
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"],
        json!({"__type__": "deque", "items": [3, 4], "maxlen": 2})
    );
}

#[test]
fn unbounded_makes_a_new_state_without_a_bound() {
    let env = Env::new();
    env.run(&["--unbounded", "add-score", "1"]).assert_ok();
    assert_eq!(
        env.loaded(DEFAULT_STATE)["score_history"],
        json!({"__type__": "deque", "items": [1], "maxlen": null})
    );
}
