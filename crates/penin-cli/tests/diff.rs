//! `penin diff A B`: states of any format and checkpoints compared bit for bit; exit 0 when
//! the same, 1 when different, a failure its own code (never 0 or 1).

mod common;

use common::{Env, Out};
use serde_json::json;

fn ok(env: &Env, args: &[&str]) -> Out {
    let out = env.run(args);
    out.assert_ok();
    out
}

/// `penin --state STATE ARGS`, which must succeed.
fn on(env: &Env, state: &str, args: &[&str]) {
    let mut all = vec!["--state", state];
    all.extend(args);
    ok(env, &all);
}

/// `penin diff ARGS`, expecting exit `code`.
fn diff(env: &Env, args: &[&str], code: i32) -> Out {
    let mut all = vec!["diff"];
    all.extend(args);
    let out = env.run(&all);
    assert_eq!(
        out.code,
        Some(code),
        "diff {args:?}: {}{}",
        out.stdout,
        out.stderr
    );
    out
}

fn parse(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", out.stdout))
}

/// Two artifacts, two tasks, two scores in `state` (its journal).
fn base(env: &Env, state: &str) {
    on(
        env,
        state,
        &[
            "add-knowledge",
            "a",
            "--vector",
            "1,2,3",
            "--metadata",
            r#"{"s":"x"}"#,
        ],
    );
    on(
        env,
        state,
        &["add-knowledge", "b", "--vector", "0.5,nan,-0.0"],
    );
    on(env, state, &["add-task", r#"{"task_id":1}"#]);
    on(env, state, &["add-task", r#"{"task_id":2}"#]);
    on(env, state, &["add-score", "0.5"]);
    on(env, state, &["add-score", "0.75"]);
}

#[test]
fn the_same_state_in_any_format_is_the_same() {
    let env = Env::new();
    base(&env, "a.json");
    // NaN (the same bits) and -0.0 survive every format.
    for format in ["arrow", "json.gz", "json.zst", "json"] {
        let name = format!("a-copy.{format}");
        ok(&env, &["convert", "a.json", &name, "--to", format]);
        let out = diff(&env, &["a.json", &name], 0);
        assert_eq!(
            out.stdout,
            format!("A: a.json\nB: {name}\nThe same: 2 keys, 2 tasks, 2 scores\n")
        );
        let out = diff(&env, &[&name, "a.json", "--json"], 0);
        let d = parse_lenient(&out);
        assert_eq!(d["same"], json!(true));
        assert_eq!(d["knowledge_base"]["changed"], json!([]));
    }
    // A state against itself; a compacted state against its journal form.
    diff(&env, &["a.json", "a.json"], 0);
    ok(&env, &["convert", "a.json", "b.json"]);
    on(&env, "b.json", &["compact"]);
    diff(&env, &["a.json", "b.json"], 0);
}

/// The JSON output, with the state format's `NaN` and `Infinity` tokens made strings.
fn parse_lenient(out: &Out) -> serde_json::Value {
    let text = out
        .stdout
        .replace("-Infinity", "\"-Infinity\"")
        .replace("Infinity", "\"Infinity\"")
        .replace("NaN", "\"NaN\"");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[test]
fn keys_added_removed_and_changed() {
    let env = Env::new();
    base(&env, "a.json");
    ok(&env, &["convert", "a.json", "b.arrow", "--to", "arrow"]);
    on(&env, "b.arrow", &["add-knowledge", "c", "--vector", "7"]);
    // Changed: a component of `a` (3 -> 5), and the dimension of `b`.
    on(
        &env,
        "b.arrow",
        &[
            "add-knowledge",
            "a",
            "--vector",
            "1,2,5",
            "--metadata",
            r#"{"s":"x"}"#,
        ],
    );
    on(&env, "b.arrow", &["add-knowledge", "b", "--vector", "1"]);
    let out = diff(&env, &["a.json", "b.arrow"], 1);
    assert_eq!(
        out.stdout,
        "A: a.json\n\
         B: b.arrow\n\
         Knowledge base: 1 added, 0 removed, 2 changed (2 keys -> 3 keys)\n  \
         + \"c\"\n  \
         ~ \"a\": 1 component of the vector changed, largest |change| 2.0 at [2], L2 distance 2.0\n  \
         ~ \"b\": dimension 3 -> 1\n\
         Largest vector change: \"a\" (L2 distance 2.0)\n\
         Task history: the same (2 tasks)\n\
         Score history: the same (2 scores)\n"
    );
    // The other way round: removed.
    let out = diff(&env, &["b.arrow", "a.json", "--json"], 1);
    let d = parse(&out);
    assert_eq!(d["same"], json!(false));
    assert_eq!(d["knowledge_base"]["removed"], json!(["c"]));
    assert_eq!(d["knowledge_base"]["added"], json!([]));
    assert_eq!(
        d["knowledge_base"]["changed"],
        json!([
            {"key": "a", "vector": {"components": 1, "max_abs": 2.0, "max_index": 2, "l2": 2.0},
             "metadata": null, "artifact_extra": null},
            {"key": "b", "vector": {"dimension_a": 1, "dimension_b": 3},
             "metadata": null, "artifact_extra": null}
        ])
    );
    assert_eq!(
        d["knowledge_base"]["largest_vector_change"],
        json!({"key": "a", "l2": 2.0})
    );
}

#[test]
fn metadata_alone_changed() {
    let env = Env::new();
    base(&env, "a.json");
    ok(&env, &["convert", "a.json", "b.json"]);
    on(
        &env,
        "b.json",
        &[
            "add-knowledge",
            "a",
            "--vector",
            "1,2,3",
            "--metadata",
            r#"{"s":"y","t":1}"#,
        ],
    );
    let out = diff(&env, &["a.json", "b.json"], 1);
    assert!(
        out.stdout
            .contains("\n  ~ \"a\": metadata: added \"t\"; changed \"s\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("Largest vector change"),
        "{}",
        out.stdout
    );
    let d = parse_lenient(&diff(&env, &["a.json", "b.json", "--json"], 1));
    assert_eq!(
        d["knowledge_base"]["changed"],
        json!([{"key": "a", "vector": null, "artifact_extra": null,
                "metadata": {"added": ["t"], "removed": [], "changed": ["s"], "order_changed": false}}])
    );
    assert_eq!(d["knowledge_base"]["largest_vector_change"], json!(null));
}

#[test]
fn histories_appended_and_past_their_bound() {
    let env = Env::new();
    base(&env, "a.json");
    ok(&env, &["convert", "a.json", "b.json"]);
    for task in [3, 4, 5] {
        on(
            &env,
            "b.json",
            &["add-task", &format!(r#"{{"task_id":{task}}}"#)],
        );
    }
    let out = diff(&env, &["a.json", "b.json"], 1);
    assert!(
        out.stdout.ends_with(
            "Task history: 3 tasks appended (2 -> 5)\nScore history: the same (2 scores)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Knowledge base: 0 added, 0 removed, 0 changed")
    );
    let d = parse_lenient(&diff(&env, &["a.json", "b.json", "--json"], 1));
    assert_eq!(
        d["task_history"],
        json!({"same": false, "len_a": 2, "len_b": 5, "maxlen_a": 1000, "maxlen_b": 1000,
               "common_prefix": 2, "common_suffix": 0, "overlap": 2,
               "edit": {"kind": "shifted", "dropped": 0, "appended": 3}, "extra_changed": false})
    );
    assert_eq!(d["knowledge_base"]["changed"], json!([]));

    // A history bounded at 2 keeps the newest: one score dropped from the front, one appended.
    on(
        &env,
        "c.json",
        &["--history-maxlen", "2", "add-score", "0.5"],
    );
    on(&env, "c.json", &["add-score", "0.75"]);
    ok(&env, &["convert", "c.json", "d.json"]);
    on(&env, "d.json", &["add-score", "0.25"]);
    let out = diff(&env, &["c.json", "d.json"], 1);
    assert!(
        out.stdout.contains(
            "Score history: 1 oldest dropped from the front, 1 score appended (2 -> 2)\n"
        ),
        "{}",
        out.stdout
    );
    // Another bound, the same entries.
    on(
        &env,
        "e.json",
        &["--history-maxlen", "3", "add-score", "0.5"],
    );
    on(&env, "e.json", &["add-score", "0.75"]);
    let out = diff(&env, &["c.json", "e.json"], 1);
    assert!(
        out.stdout
            .contains("Score history: the same (2 scores); maxlen 2 -> 3\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn floats_compare_bit_for_bit() {
    let env = Env::new();
    on(
        &env,
        "zero.json",
        &["add-knowledge", "k", "--vector", "0.0,nan"],
    );
    on(
        &env,
        "minus.json",
        &["add-knowledge", "k", "--vector", "-0.0,nan"],
    );
    on(
        &env,
        "nan.json",
        &["add-knowledge", "k", "--vector", "0.0,nan"],
    );
    // NaN with the same bits is the same; -0.0 is not 0.0.
    diff(&env, &["zero.json", "nan.json"], 0);
    ok(&env, &["convert", "nan.json", "nan.arrow", "--to", "arrow"]);
    diff(&env, &["zero.json", "nan.arrow"], 0);
    let out = diff(&env, &["zero.json", "minus.json"], 1);
    assert!(
        out.stdout.contains(
            "~ \"k\": 1 component of the vector changed, largest |change| 0.0 at [0], \
             L2 distance 0.0 (bits only: the sign of a zero, or a NaN's payload)\n"
        ),
        "{}",
        out.stdout
    );
    // Scores too, and an integer is not the float of the same value.
    on(&env, "s1.json", &["add-score", "0.0"]);
    on(&env, "s2.json", &["add-score", "-0.0"]);
    on(&env, "s3.json", &["add-score", "1"]);
    on(&env, "s4.json", &["add-score", "1.0"]);
    diff(&env, &["s1.json", "s2.json"], 1);
    diff(&env, &["s3.json", "s4.json"], 1);
}

#[test]
fn checkpoints_by_tag_id_and_the_newest() {
    let env = Env::new();
    base(&env, ".penin_omega/state.json");
    ok(&env, &["checkpoint", "--tag", "before"]);
    ok(&env, &["add-score", "0.9"]);
    let out = ok(&env, &["checkpoints", "--json"]);
    let id = parse(&out)[0]["id"].as_str().unwrap().to_owned();

    let out = diff(&env, &["checkpoint:before", ".penin_omega/state.json"], 1);
    assert!(
        out.stdout.starts_with(&format!(
            "A: checkpoint {id} (before) of .penin_omega/state.json\nB: .penin_omega/state.json\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Score history: 1 score appended (2 -> 3)\n")
    );
    diff(&env, &[&format!("checkpoint:{id}"), "checkpoint:before"], 0);
    diff(&env, &["checkpoint:", "checkpoint:before"], 0);
    // Of another state, through --state.
    on(&env, "other.json", &["add-score", "1"]);
    on(&env, "other.json", &["checkpoint", "--tag", "t"]);
    diff(
        &env,
        &["--state", "other.json", "checkpoint:t", "other.json"],
        0,
    );

    // No such checkpoint: 66, not 1.
    let out = diff(&env, &["checkpoint:nope", ".penin_omega/state.json"], 66);
    assert!(
        out.stderr
            .contains("no checkpoint is tagged \"nope\" (the tags are \"before\")"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    // A damaged checkpoint: 87, found by its checksum before it is read.
    let data = env.path(&format!(".penin_omega/state.json.checkpoints/{id}.json"));
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let out = diff(
        &env,
        &[&format!("checkpoint:{id}"), ".penin_omega/state.json"],
        87,
    );
    assert!(out.stderr.contains(&id), "{}", out.stderr);
}

#[test]
fn failures_exit_with_their_own_codes_not_1() {
    let env = Env::new();
    base(&env, "a.json");
    let out = diff(&env, &["a.json", "missing.json"], 66);
    assert_eq!(
        out.stderr,
        "penin: cannot compare a.json with missing.json: missing.json does not exist\n"
    );
    assert_eq!(out.stdout, "");
    diff(&env, &["missing.json", "a.json", "--json"], 66);
    env.write("bad.json", b"{not json");
    diff(&env, &["a.json", "bad.json"], 65);
    std::fs::create_dir(env.path("dir.json")).unwrap();
    diff(&env, &["dir.json", "a.json"], 78);
    // An encrypted state without its identity.
    ok(&env, &["keygen", "key.txt"]);
    ok(
        &env,
        &["--identity", "key.txt", "convert", "a.json", "sealed.json"],
    );
    diff(&env, &["a.json", "sealed.json"], 89);
    diff(&env, &["--identity", "key.txt", "a.json", "sealed.json"], 0);
    // A usage error is 2, as clap says.
    diff(&env, &["a.json"], 2);
}

#[test]
fn human_output_shows_20_keys_of_a_kind_and_json_all() {
    let env = Env::new();
    on(&env, "a.json", &["add-score", "1"]);
    ok(&env, &["convert", "a.json", "b.json"]);
    for i in 0..25 {
        on(
            &env,
            "b.json",
            &["add-knowledge", &format!("k{i:02}"), "--vector", "1"],
        );
    }
    let out = diff(&env, &["a.json", "b.json"], 1);
    let added: Vec<&str> = out
        .stdout_lines()
        .into_iter()
        .filter(|line| line.starts_with("  + "))
        .collect();
    assert_eq!(added.len(), 20);
    assert_eq!(added[19], "  + \"k19\"");
    assert!(
        out.stdout.contains("\n  … and 5 more added\n"),
        "{}",
        out.stdout
    );
    let d = parse(&diff(&env, &["a.json", "b.json", "--json"], 1));
    assert_eq!(d["knowledge_base"]["added"].as_array().unwrap().len(), 25);
}
