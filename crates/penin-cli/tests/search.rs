//! `penin search` and the line protocol's `search`: the k nearest artifacts, their table and
//! JSON, usage errors, and a `run` session whose searches see the changes before them.

mod common;

use common::Env;
use serde_json::json;

/// A state of five artifacts: three of two dimensions, a zero vector and one of three.
fn state() -> Env {
    let env = Env::new();
    for (key, vector, metadata) in [
        ("a", "1,0", r#"{"lang":"en","n":1}"#),
        ("b", "0,2", r#"{"lang":"fr"}"#),
        ("c", "3,4", r#"{"lang":"en","n":1.0}"#),
        ("z", "0,0", "{}"),
        ("w", "1,2,3", "{}"),
    ] {
        env.run(&[
            "add-knowledge",
            key,
            "--vector",
            vector,
            "--metadata",
            metadata,
        ])
        .assert_ok();
    }
    env
}

#[test]
fn the_table_ranks_best_first_and_says_what_was_skipped() {
    let env = state();
    let out = env.run(&["search", "--vector", "1,0"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "rank  score  key  metadata\n\
         \x20  1  1.0    a    {\"lang\":\"en\",\"n\":1}\n\
         \x20  2  0.6    c    {\"lang\":\"en\",\"n\":1.0}\n\
         \x20  3  0.0    b    {\"lang\":\"fr\"}\n\
         skipped: 1 of another dimension, 0 with a NaN score, 1 of norm 0 (cosine)\n"
    );
    let out = env.run(&["search", "--vector", "1,0", "-k", "1", "--metric", "l2"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "rank  distance  key  metadata\n\
         \x20  1  0.0       a    {\"lang\":\"en\",\"n\":1}\n\
         skipped: 1 of another dimension, 0 with a NaN score, 0 of norm 0 (cosine)\n"
    );
    let out = env.run(&["search", "--vector", "1,0", "--filter", "lang=de"]);
    out.assert_ok();
    assert_eq!(out.stdout, "no results (cosine)\n");
}

#[test]
fn json_has_every_result_and_the_counts() {
    let env = state();
    let out = env.run(&["search", "--vector", "1,0", "--json", "-k", "2"]);
    out.assert_ok();
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        answer,
        json!({
            "metric": "cosine",
            "k": 2,
            "results": [
                {"key": "a", "score": 1.0, "metadata": {"lang": "en", "n": 1}},
                {"key": "c", "score": 0.6, "metadata": {"lang": "en", "n": 1.0}},
            ],
            "skipped": {"dimension": 1, "nan": 0, "zero": 1},
        })
    );
    // dot: the largest product first, the zero vector ranked; filters AND, numbers by value.
    let out = env.run(&[
        "search", "--vector", "1,1", "--metric", "dot", "--json", "--filter", "lang=en",
        "--filter", "n=1",
    ]);
    out.assert_ok();
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(answer["metric"], "dot");
    assert_eq!(
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].as_str().unwrap(), r["score"].as_f64().unwrap()))
            .collect::<Vec<_>>(),
        [("c", 7.0), ("a", 1.0)]
    );
    assert_eq!(
        answer["skipped"],
        json!({"dimension": 0, "nan": 0, "zero": 0})
    );
    // A string filter value that reads as JSON is JSON: "fr" quoted is the string fr.
    let out = env.run(&[
        "search",
        "--vector",
        "0,1",
        "--json",
        "--filter",
        r#"lang="fr""#,
    ]);
    let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(answer["results"][0]["key"], "b");
    // A missing state is an empty one.
    let empty = Env::new();
    let out = empty.run(&["search", "--vector", "1", "--json"]);
    out.assert_ok();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["results"],
        json!([])
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let env = state();
    let rows: &[(&[&str], &str)] = &[
        (
            &["search", "--vector", "1,x"],
            "penin: invalid --vector: element 1 \"x\" is not a number: invalid float literal\n",
        ),
        (
            &["search", "--vector", ""],
            "penin: invalid --vector: it has no number\n",
        ),
        (
            &["search", "--vector", "1,0", "-k", "0"],
            "penin: invalid -k 0: k must be at least 1\n",
        ),
        (
            &["search", "--vector", "1,0", "--filter", "lang"],
            "penin: invalid --filter \"lang\": expected KEY=VALUE\n",
        ),
        (
            &["search", "--vector", "1,0", "--filter", "=en"],
            "penin: invalid --filter \"=en\": the key is empty\n",
        ),
    ];
    for (args, stderr) in rows {
        let out = env.run(args);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (Some(2), *stderr),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = env.run(&["search", "--vector", "1,0", "--metric", "cos"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("invalid value 'cos' for '--metric <METRIC>'"),
        "{}",
        out.stderr
    );
    let out = env.run(&["search", "-k", "3"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--vector <FLOATS>"), "{}", out.stderr);
}

fn answer(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn keys(answer: &serde_json::Value) -> Vec<&str> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {answer}"))
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect()
}

#[test]
fn run_searches_see_every_change_before_them() {
    let env = state();
    let mut session = env.spawn(&["run"]);
    let first = answer(&session.ask(r#"{"op":"search","id":1,"vector":[1,0],"k":2}"#));
    assert_eq!(
        first,
        json!({
            "ok": true,
            "id": 1,
            "results": [
                {"key": "a", "score": 1.0, "metadata": {"lang": "en", "n": 1}},
                {"key": "c", "score": 0.6, "metadata": {"lang": "en", "n": 1.0}},
            ],
            "skipped": {"dimension": 1, "nan": 0, "zero": 1},
        })
    );
    // A replacement: "c" now points along the query, 10 times longer (its new norm is used:
    // with the old norm 5 its cosine would be 6). The index built by the first search takes
    // it in.
    session.ask(r#"{"op":"add_knowledge","key":"c","vector":[30,0]}"#);
    let second = answer(&session.ask(r#"{"op":"search","vector":[1,0],"k":2}"#));
    assert_eq!(
        second["results"],
        json!([
            {"key": "a", "score": 1.0, "metadata": {"lang": "en", "n": 1}},
            {"key": "c", "score": 1.0, "metadata": {}},
        ])
    );
    // A new artifact.
    session.ask(r#"{"op":"add_knowledge","key":"new","vector":[2,0.0000001],"metadata":{"t":1}}"#);
    let third = answer(&session.ask(r#"{"op":"search","vector":[1,0],"k":3}"#));
    assert_eq!(keys(&third), ["a", "c", "new"]);
    // The zero vector replaced by a real one: no longer skipped.
    session.ask(r#"{"op":"add_knowledge","key":"z","vector":[-1,0]}"#);
    let fourth = answer(
        &session.ask(r#"{"op":"search","vector":[1,0],"k":10,"metric":"cosine","filter":{}}"#),
    );
    assert_eq!(keys(&fourth), ["a", "c", "new", "b", "z"]);
    assert_eq!(
        fourth["skipped"],
        json!({"dimension": 1, "nan": 0, "zero": 0})
    );
    // In one group: a change and the search after it, written together.
    session.send(r#"{"op":"add_knowledge","key":"nan","vector":[NaN,1],"metadata":{"lang":"en"}}"#);
    session.send(
        r#"{"op":"search","vector":[1,0],"metric":"l2","filter":{"lang":"en","n":1.0},"k":5}"#,
    );
    session.recv();
    let fifth = answer(&session.recv());
    assert_eq!(keys(&fifth), ["a"]);
    let sixth = answer(&session.ask(r#"{"op":"search","vector":[1,0],"filter":{"lang":"en"}}"#));
    // ("c" lost its metadata when it was replaced.)
    assert_eq!(keys(&sixth), ["a"]);
    assert_eq!(
        sixth["skipped"],
        json!({"dimension": 0, "nan": 1, "zero": 0})
    );
    session.close_stdin();
    let (status, rest, _) = session.finish();
    assert!(status.success());
    assert!(rest.is_empty());
}

#[test]
fn bad_search_lines_are_answered_with_errors() {
    let env = state();
    let rows = [
        (
            r#"{"op":"search","id":1}"#,
            r#"{"ok":false,"id":1,"error":"search needs a \"vector\""}"#,
        ),
        (
            r#"{"op":"search","vector":[]}"#,
            r#"{"ok":false,"error":"search needs a non-empty \"vector\""}"#,
        ),
        (
            r#"{"op":"search","vector":"1,2"}"#,
            r#"{"ok":false,"error":"\"vector\" must be an array of numbers, found a string"}"#,
        ),
        (
            r#"{"op":"search","vector":[1,null]}"#,
            r#"{"ok":false,"error":"vector[1]: expected a number, found null"}"#,
        ),
        (
            r#"{"op":"search","vector":[1],"k":0}"#,
            r#"{"ok":false,"error":"\"k\" must be an integer of at least 1, found 0"}"#,
        ),
        (
            r#"{"op":"search","vector":[1],"k":2.5}"#,
            r#"{"ok":false,"error":"\"k\" must be an integer of at least 1, found a float"}"#,
        ),
        (
            r#"{"op":"search","vector":[1],"metric":"cos"}"#,
            r#"{"ok":false,"error":"unknown metric \"cos\": expected cosine, dot or l2"}"#,
        ),
        (
            r#"{"op":"search","vector":[1],"filter":["lang","en"]}"#,
            r#"{"ok":false,"error":"\"filter\" must be an object, found an array"}"#,
        ),
        (
            r#"{"op":"search","vector":[1],"top":3}"#,
            r#"{"ok":false,"error":"unexpected key \"top\" for op \"search\""}"#,
        ),
        (
            r#"{"op":"search","id":"ok","vector":[0,1],"k":1}"#,
            r#"{"ok":true,"id":"ok","results":[{"key":"b","score":1.0,"metadata":{"lang":"fr"}}],"skipped":{"dimension":1,"nan":0,"zero":1}}"#,
        ),
    ];
    let input: String = rows.iter().flat_map(|(line, _)| [*line, "\n"]).collect();
    let out = env.run_with_input(&["run"], &input);
    out.assert_ok();
    let expected: Vec<&str> = rows.iter().map(|(_, answer)| *answer).collect();
    assert_eq!(out.stdout_lines(), expected);
}

/// `--from s3://…` searches a bucket's latest restore point, as `stats --from` reads it: the
/// answer is the local one. Needs the test S3 server (`tests/s3/seaweedfs.sh`, as `.ci/run`
/// runs the tests); without it the test skips, which fails it under CI.
#[test]
fn search_from_a_bucket_answers_as_the_local_state() {
    let test = "search_from_a_bucket_answers_as_the_local_state";
    let bucket = match std::env::var("PENIN_TEST_S3") {
        Ok(bucket) if !bucket.is_empty() => bucket,
        _ => {
            penin_testkit::skip(
                test,
                "no S3 server: PENIN_TEST_S3 is not set (run the tests under tests/s3/seaweedfs.sh, as .ci/run does)",
            );
            return;
        }
    };
    let url = format!(
        "{}/{test}-{}",
        bucket.trim_end_matches('/'),
        std::process::id()
    );
    let env = state();
    env.run(&["backup", "push", &url]).assert_ok();
    let args = ["search", "--vector", "1,0", "--json", "--filter", "lang=en"];
    let local = env.run(&args);
    local.assert_ok();
    let elsewhere = Env::new();
    let remote = elsewhere.run(&[&args[..], &["--from", &url]].concat());
    remote.assert_ok();
    assert_eq!(remote.stdout, local.stdout);
    assert_eq!(keys(&answer(remote.stdout.trim())), ["a", "c"]);
    assert!(!elsewhere.state().exists(), "nothing written locally");
}
