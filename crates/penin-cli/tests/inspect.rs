//! Looking inside a state: `inspect`, `keys`, `tasks`, `scores`, on states made with
//! `add-knowledge`, `add-task` and `add-score` (so that the journal is read, not only the
//! snapshot), in any format, encrypted too.

mod common;

use common::{Env, Out};
use serde_json::json;

/// Runs `penin ARGS`, which must succeed.
fn ok(env: &Env, args: &[&str]) -> Out {
    let out = env.run(args);
    out.assert_ok();
    out
}

/// Three artifacts, three tasks, four scores, in the journal of the default state.
fn small_state(env: &Env) {
    ok(
        env,
        &[
            "add-knowledge",
            "embedding_1",
            "--vector",
            "3,-4",
            "--metadata",
            r#"{"source":"docs","n":1}"#,
        ],
    );
    ok(
        env,
        &["add-knowledge", "embedding_2", "--vector", "0.1,0.2,0.3"],
    );
    ok(env, &["add-knowledge", "other", "--vector", "1"]);
    for task in [
        r#"{"task_id":1,"type":"evolution"}"#,
        r#"{"task_id":2,"type":"validation"}"#,
        r#"{"task_id":3,"x":[1.5,-0.0]}"#,
    ] {
        ok(env, &["add-task", task]);
    }
    for score in ["0.85", "0.9", "1", "0.8"] {
        ok(env, &["add-score", score]);
    }
}

fn parse(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", out.stdout))
}

#[test]
fn inspect_shows_a_vector_and_its_metadata() {
    let env = Env::new();
    small_state(&env);
    let out = ok(&env, &["inspect", "embedding_1"]);
    assert_eq!(
        out.stdout,
        "Key: \"embedding_1\" in .penin_omega/state.json (position 1 of 3)\n\
         Dimension: 2\n\
         L2 norm: 5.0\n\
         Values: [3.0, -4.0]\n\
         Min: -4.0, max: 3.0\n\
         Metadata: {\"source\":\"docs\",\"n\":1}\n"
    );
    let out = ok(&env, &["inspect", "embedding_2", "--json"]);
    assert_eq!(
        parse(&out),
        json!({
            "key": "embedding_2", "index": 1, "dimension": 3,
            "norm": 0.374_165_738_677_394_17, "min": 0.1, "max": 0.3,
            "nan": 0, "infinite": 0, "vector": [0.1, 0.2, 0.3], "metadata": {}
        })
    );
}

#[test]
fn inspect_shows_the_first_values_and_counts_what_is_not_finite() {
    let env = Env::new();
    ok(
        &env,
        &["add-knowledge", "k", "--vector", "nan,-inf,1,2,3,4,5,6,7,8"],
    );
    let out = ok(&env, &["inspect", "k"]);
    assert_eq!(
        out.stdout_lines(),
        [
            "Key: \"k\" in .penin_omega/state.json (position 1 of 1)",
            "Dimension: 10",
            "L2 norm: NaN",
            "Values: [NaN, -Infinity, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0] (the first 8; --json gives all)",
            "Min: -Infinity, max: 8.0",
            "Not finite: 1 NaN, 1 infinite",
            "Metadata: {}",
        ]
    );
    // The whole vector in --json, in the state format's spelling of non-finite floats.
    let out = ok(&env, &["inspect", "k", "--json"]);
    assert_eq!(
        out.stdout,
        "{\"key\":\"k\",\"index\":0,\"dimension\":10,\"norm\":NaN,\"min\":-Infinity,\"max\":8.0,\
         \"nan\":1,\"infinite\":1,\"vector\":[NaN,-Infinity,1.0,2.0,3.0,4.0,5.0,6.0,7.0,8.0],\
         \"metadata\":{}}\n"
    );
}

#[test]
fn a_missing_key_exits_66_naming_the_key_the_state_and_keys_alike() {
    let env = Env::new();
    small_state(&env);
    let out = env.run(&["inspect", "embedding_7"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "penin: no key \"embedding_7\" in the knowledge base of .penin_omega/state.json (3 keys); \
         keys alike: \"embedding_1\", \"embedding_2\"\n"
    );
    let out = env.run(&["inspect", "zzz", "--json"]);
    assert_eq!(out.code, Some(66));
    assert_eq!(
        out.stderr,
        "penin: no key \"zzz\" in the knowledge base of .penin_omega/state.json (3 keys)\n"
    );
    // No state at all: the state is what is missing.
    let empty = Env::new();
    let out = empty.run(&["inspect", "k"]);
    assert_eq!(out.code, Some(66));
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn keys_in_order_with_a_prefix() {
    let env = Env::new();
    small_state(&env);
    // Replacing a key keeps its place, as a Python dict does.
    ok(&env, &["add-knowledge", "embedding_1", "--vector", "1"]);
    let out = ok(&env, &["keys"]);
    assert_eq!(out.stdout, "embedding_1\nembedding_2\nother\n");
    let out = ok(&env, &["keys", "--prefix", "emb"]);
    assert_eq!(out.stdout, "embedding_1\nembedding_2\n");
    let out = ok(&env, &["keys", "--json"]);
    assert_eq!(parse(&out), json!(["embedding_1", "embedding_2", "other"]));
    let out = ok(&env, &["keys", "--prefix", "oth", "--json"]);
    assert_eq!(parse(&out), json!(["other"]));
    let out = ok(&env, &["keys", "--prefix", "none", "--json"]);
    assert_eq!(parse(&out), json!([]));
    // An empty state has no keys; stderr says there is no state yet.
    let empty = Env::new();
    let out = ok(&empty, &["keys"]);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no state at"), "{}", out.stderr);
}

#[test]
fn keys_with_control_characters_stay_on_one_line_as_json_strings() {
    let env = Env::new();
    // (the key, how `keys` prints it)
    let rows = [
        ("plain key, é ✓", "plain key, é ✓"),
        ("back\\slash \"quoted\"", r#"back\slash "quoted""#),
        ("two\nlines", r#""two\nlines""#),
        ("a\ttab", r#""a\ttab""#),
        ("cr\rhere", r#""cr\rhere""#),
        ("\u{1b}[31mred\u{1b}[0m", r#""\u001b[31mred\u001b[0m""#),
        ("del\u{7f} csi\u{9b}", r#""del\u007f csi\u009b""#),
        ("\"starts with a quote", r#""\"starts with a quote""#),
    ];
    for (key, _) in rows {
        ok(&env, &["add-knowledge", key, "--vector", "1"]);
    }
    let out = ok(&env, &["keys"]);
    let lines = out.stdout_lines();
    let printed: Vec<&str> = rows.iter().map(|(_, printed)| *printed).collect();
    assert_eq!(lines, printed);
    // Every quoted line reads back, as JSON, as its key.
    for (line, (key, _)) in lines.iter().zip(rows) {
        if line.starts_with('"') {
            assert_eq!(serde_json::from_str::<String>(line).unwrap(), key);
        }
    }
    // --json is unchanged: the keys as they are.
    let out = ok(&env, &["keys", "--json"]);
    let keys: Vec<&str> = rows.iter().map(|(key, _)| *key).collect();
    assert_eq!(parse(&out), json!(keys));
    // search's table prints them so too, one row each.
    let out = ok(&env, &["search", "--vector", "1", "-k", "20"]);
    assert_eq!(out.stdout_lines().len(), 1 + rows.len(), "{}", out.stdout);
    assert!(out.stdout.contains(r#""two\nlines""#), "{}", out.stdout);
    assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
}

#[test]
fn tasks_oldest_first_numbered_and_the_last_n() {
    let env = Env::new();
    small_state(&env);
    let out = ok(&env, &["tasks"]);
    assert_eq!(
        out.stdout,
        "1  {\"task_id\":1,\"type\":\"evolution\"}\n\
         2  {\"task_id\":2,\"type\":\"validation\"}\n\
         3  {\"task_id\":3,\"x\":[1.5,-0.0]}\n"
    );
    let out = ok(&env, &["tasks", "--last", "2"]);
    assert_eq!(
        out.stdout,
        "2  {\"task_id\":2,\"type\":\"validation\"}\n\
         3  {\"task_id\":3,\"x\":[1.5,-0.0]}\n"
    );
    let out = ok(&env, &["tasks", "--last", "1", "--json"]);
    assert_eq!(parse(&out), json!([{"task_id": 3, "x": [1.5, -0.0]}]));
    let out = ok(&env, &["tasks", "--json"]);
    assert_eq!(parse(&out).as_array().unwrap().len(), 3);
    let out = ok(&env, &["tasks", "--last", "10", "--json"]);
    assert_eq!(parse(&out).as_array().unwrap().len(), 3);
    let out = ok(&env, &["tasks", "--last", "0"]);
    assert_eq!(out.stdout, "");
}

#[test]
fn scores_and_their_summary() {
    let env = Env::new();
    small_state(&env);
    let out = ok(&env, &["scores"]);
    assert_eq!(
        out.stdout,
        "1  0.85\n2  0.9\n3  1\n4  0.8\n\
         Count: 4 (maxlen 1000)\n\
         Mean: 0.8875\n\
         Min: 0.8\n\
         Max: 1\n\
         Last: 0.8\n"
    );
    let out = ok(&env, &["scores", "--json"]);
    assert_eq!(
        parse(&out),
        json!({
            "scores": [0.85, 0.9, 1, 0.8], "count": 4, "maxlen": 1000,
            "mean": 0.8875, "min": 0.8, "max": 1, "last": 0.8, "nan": 0
        })
    );
    // The mean is the one `stats` gives.
    assert_eq!(env.stats_json()["average_score"], json!(0.8875));

    let empty = Env::new();
    let out = ok(&empty, &["scores", "--json"]);
    assert_eq!(
        parse(&out),
        json!({
            "scores": [], "count": 0, "maxlen": 1000,
            "mean": null, "min": null, "max": null, "last": null, "nan": 0
        })
    );
}

#[test]
fn every_format_and_an_encrypted_state_read_the_same() {
    let env = Env::new();
    small_state(&env);
    let expected: Vec<String> = ["keys", "tasks", "scores"]
        .iter()
        .map(|command| ok(&env, &[command, "--json"]).stdout)
        .chain([ok(&env, &["inspect", "embedding_1", "--json"]).stdout])
        .collect();
    let key = env.run(&["keygen", "key.txt"]);
    key.assert_ok();
    for (format, encrypt) in [
        ("arrow", false),
        ("json.zst", false),
        ("json.gz", true),
        ("arrow", true),
    ] {
        let name = format!("{format}-{encrypt}.state");
        let mut convert = vec![
            "convert",
            ".penin_omega/state.json",
            name.as_str(),
            "--to",
            format,
        ];
        if encrypt {
            convert.splice(0..0, ["--identity", "key.txt"]);
        }
        ok(&env, &convert);
        let read = |command: &[&str]| {
            let mut args = vec!["--state", name.as_str()];
            if encrypt {
                args.extend(["--identity", "key.txt"]);
            }
            args.extend(command);
            ok(&env, &args).stdout
        };
        let got: Vec<String> = ["keys", "tasks", "scores"]
            .iter()
            .map(|command| read(&[command, "--json"]))
            .chain([read(&["inspect", "embedding_1", "--json"])])
            .collect();
        assert_eq!(got, expected, "{format}, encrypted: {encrypt}");
        if encrypt {
            // Without the identity the state cannot be read.
            let out = env.run(&["--state", name.as_str(), "keys"]);
            assert_eq!(out.code, Some(89), "{}", out.stderr);
        }
    }
}
