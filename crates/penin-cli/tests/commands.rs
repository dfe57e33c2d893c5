//! The one-shot commands: `add-knowledge`, `add-task`, `add-score`, `stats`, `verify`,
//! `convert`.

mod common;

use common::{DEFAULT_STATE, Env, fixture, fixture_bytes, minify, parse_state};
use serde_json::json;

#[test]
fn add_commands_update_and_save_the_state() {
    let env = Env::new();
    let out = env.run(&[
        "add-knowledge",
        "k",
        "--vector",
        "0.1,0.2",
        "--metadata",
        r#"{"s":"x"}"#,
    ]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "Added \"k\" (2 dimensions) to .penin_omega/state.json: change 1, on disk\n"
    );
    let out = env.run(&["add-task", r#"{"task_id":1}"#]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "Added a task to .penin_omega/state.json: change 2, on disk\n"
    );
    let out = env.run(&["add-score", "0.5"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "Added a score to .penin_omega/state.json: change 3, on disk\n"
    );
    // The changes are in the journal; the snapshot is the empty state the first one started.
    assert_eq!(
        env.read(DEFAULT_STATE),
        fixture_bytes("empty.expected.json")
    );

    assert_eq!(
        env.stats_json(),
        json!({
            "knowledge_base_size": 1,
            "task_history_size": 1,
            "score_history_size": 1,
            "average_score": 0.5
        })
    );
    env.run(&["compact"]).assert_ok();
    assert_eq!(
        parse_state(&env.read(DEFAULT_STATE)),
        json!({
            "knowledge_base": {
                "k": {"__type__": "NumericVectorArtifact", "vector": [0.1, 0.2], "metadata": {"s": "x"}}
            },
            "task_history": {"__type__": "deque", "items": [{"task_id": 1}], "maxlen": 1000},
            "score_history": {"__type__": "deque", "items": [0.5], "maxlen": 1000}
        })
    );
}

#[test]
fn add_commands_and_compact_print_json() {
    let env = Env::new();
    let run = |args: &[&str]| {
        let out = env.run(args);
        out.assert_ok();
        assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        run(&["add-knowledge", "k", "--vector", "1,2,3", "--json"]),
        json!({"path": DEFAULT_STATE, "key": "k", "dimensions": 3, "seq": 1})
    );
    assert_eq!(
        run(&["add-task", r#"{"n":1}"#, "--json"]),
        json!({"path": DEFAULT_STATE, "seq": 2})
    );
    assert_eq!(
        run(&["add-score", "-0.5", "--json"]),
        json!({"path": DEFAULT_STATE, "seq": 3})
    );
    assert_eq!(
        env.run(&["add-score", "1"]).stdout,
        "Added a score to .penin_omega/state.json: change 4, on disk\n"
    );
    let journal = env.read(".penin_omega/state.json.journal").len();
    let compacted = run(&["compact", "--json"]);
    assert_eq!(
        compacted,
        json!({
            "path": DEFAULT_STATE, "format": "json", "seq": 4,
            "bytes": env.read(DEFAULT_STATE).len(), "journal_bytes": journal,
        })
    );
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(state["score_history"]["items"], json!([-0.5, 1]));
}

#[test]
fn negative_numbers_are_values_not_options() {
    let env = Env::new();
    env.run(&["add-knowledge", "neg", "--vector", "-1.5,2e-3, -0.0"])
        .assert_ok();
    env.run(&["add-score", "-0.25"]).assert_ok();
    env.run(&["compact"]).assert_ok();
    let state = parse_state(&env.read(DEFAULT_STATE));
    assert_eq!(
        state["knowledge_base"]["neg"]["vector"],
        json!([-1.5, 0.002, -0.0])
    );
    assert_eq!(state["score_history"]["items"], json!([-0.25]));
    assert!(env.state_text().contains("\n        -0.0\n"));
}

#[test]
fn add_commands_keep_existing_content() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
    env.run(&["add-score", "1.0"]).assert_ok();
    // Appended to the journal: the Python-written snapshot is not rewritten.
    assert_eq!(env.read(DEFAULT_STATE), fixture_bytes("seed_demo.json"));
    let stats = env.stats_json();
    assert_eq!(stats["knowledge_base_size"], json!(2));
    assert_eq!(stats["task_history_size"], json!(2));
    assert_eq!(stats["score_history_size"], json!(4));
    env.run(&["compact"]).assert_ok();
    assert_eq!(
        parse_state(&env.read(DEFAULT_STATE))["score_history"]["items"],
        json!([0.85, 0.87, 0.9, 1.0])
    );
}

/// Bad command-line values: each is a usage error (exit 2) with its exact message, and
/// the state file, present or not, is left as it was.
#[test]
fn bad_values_are_usage_errors_and_change_nothing() {
    let rows: &[(&[&str], &str)] = &[
        (
            &["add-knowledge", "k", "--vector", "0.1,x"],
            "penin: invalid --vector: element 1 \"x\" is not a number: invalid float literal\n",
        ),
        (
            &["add-knowledge", "k", "--vector", "0.1,,0.2"],
            "penin: invalid --vector: element 1 \"\" is not a number: cannot parse float from empty string\n",
        ),
        (
            &[
                "add-knowledge",
                "k",
                "--vector",
                "0.1",
                "--metadata",
                "{bad",
            ],
            "penin: invalid --metadata: expected a string key, found 'b' at line 1, column 2\n",
        ),
        (
            &["add-knowledge", "k", "--vector", "0.1", "--metadata", "[1]"],
            "penin: invalid --metadata: expected a JSON object, found an array\n",
        ),
        (
            &["add-task", "{bad"],
            "penin: invalid task JSON: expected a string key, found 'b' at line 1, column 2\n",
        ),
        (
            &["add-score", "abc"],
            "penin: invalid score \"abc\": expected a number: invalid float literal\n",
        ),
    ];
    for (args, message) in rows {
        // No state yet: none is created.
        let env = Env::new();
        let out = env.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: stderr:\n{}", out.stderr);
        assert_eq!(out.stderr, *message, "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(env.tree().is_empty(), "{args:?}: {:?}", env.tree());

        // A state: left byte for byte.
        let env = Env::new();
        env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
        let out = env.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: stderr:\n{}", out.stderr);
        assert_eq!(
            env.read(DEFAULT_STATE),
            fixture_bytes("seed_demo.json"),
            "{args:?}"
        );
        assert_eq!(env.tree().len(), 2, "{args:?}: {:?}", env.tree());
    }
}

#[test]
fn stats_prints_exactly() {
    let env = Env::new();
    env.write(DEFAULT_STATE, &fixture_bytes("seed_demo.json"));
    let out = env.run(&["stats"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "Knowledge base: 2 items\n\
         Task history: 2 entries\n\
         Score history: 3 entries\n\
         Average score: 0.8733333333333334\n\
         Vector dimensions: 3 (2 items)\n\
         Snapshot: .penin_omega/state.json, json, 755 bytes\n\
         Journal: 0 bytes, 0 change(s) since the snapshot, up to change 0\n\
         Ledger: none yet\n\
         Last scores: ▁▄█ (the last 3, oldest first)\n"
    );
    assert_eq!(out.stderr, "");
    let out = env.run(&["stats", "--json"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "{\"knowledge_base_size\":2,\"task_history_size\":2,\"score_history_size\":3,\
         \"average_score\":0.8733333333333334,\"path\":\".penin_omega/state.json\",\
         \"dimensions\":[{\"dimension\":3,\"count\":2}],\
         \"snapshot\":{\"format\":\"json\",\"encrypted_to\":null,\"bytes\":755},\
         \"journal\":{\"bytes\":0,\"changes\":0,\"seq\":0},\"ledger\":null,\
         \"last_scores\":[0.85,0.87,0.9],\"sparkline\":\"▁▄█\"}\n"
    );
    assert_eq!(out.stderr, "");
    // Reading never writes.
    assert_eq!(env.read(DEFAULT_STATE), fixture_bytes("seed_demo.json"));
}

#[test]
fn stats_of_a_missing_state_is_empty_and_creates_nothing() {
    let env = Env::new();
    assert_eq!(
        env.stats_json(),
        json!({
            "knowledge_base_size": 0,
            "task_history_size": 0,
            "score_history_size": 0,
            "average_score": 0.0
        })
    );
    let out = env.run(&["stats"]);
    out.assert_ok();
    assert_eq!(
        &out.stdout_lines()[..3],
        [
            "Knowledge base: 0 items",
            "Task history: 0 entries",
            "Score history: 0 entries",
        ]
    );
    assert_eq!(
        out.stderr,
        "penin: no state at .penin_omega/state.json yet (first run): statistics of an empty state\n"
    );
    assert!(env.tree().is_empty(), "{:?}", env.tree());
}

#[test]
fn verify_summarises_a_good_file() {
    let env = Env::new();
    env.write("s.json", &fixture_bytes("seed_demo.json"));
    let out = env.run(&["verify", "s.json"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "s.json: ok: 2 knowledge items, 2 tasks (maxlen 1000), 3 scores (maxlen 1000), 0 other top-level keys\n"
    );
    assert_eq!(out.stderr, "");

    env.write("u.json", &fixture_bytes("unbounded_deque.json"));
    let out = env.run(&["verify", "u.json"]);
    out.assert_ok();
    assert!(out.stdout.starts_with("u.json: ok: "), "{}", out.stdout);
    assert!(out.stdout.contains("unbounded"), "{}", out.stdout);

    env.write(
        "x.json",
        br#"{"knowledge_base": {}, "task_history": [], "score_history": [1, 2], "version": 3, "owner": "me"}"#,
    );
    let out = env.run(&["verify", "x.json"]);
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "x.json: ok: 0 knowledge items, 0 tasks (maxlen 1000), 2 scores (maxlen 1000), 2 other top-level keys\n"
    );
    // Verifying never writes: no default state appeared either.
    assert_eq!(
        env.tree(),
        ["s.json", "u.json", "x.json"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[test]
fn verify_refuses_a_corrupt_file_and_a_missing_one() {
    let env = Env::new();
    env.write("bad.json", b"{\n  \"knowledge_base\": {");
    let out = env.run(&["verify", "bad.json"]);
    assert_eq!(out.code, Some(81), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "penin: bad.json is not a valid state: unexpected end of input at line 2, column 22 in knowledge_base\n"
    );
    assert_eq!(env.read("bad.json"), b"{\n  \"knowledge_base\": {");

    let out = env.run(&["verify", "missing.json"]);
    assert_eq!(out.code, Some(66), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "penin: missing.json does not exist\n");
    assert!(!env.path("missing.json").exists());
}

#[test]
fn convert_writes_the_seed_format_from_compact_and_crlf_files() {
    let seed = String::from_utf8(fixture_bytes("seed_demo.json")).expect("UTF-8");
    let compact = minify(&seed);
    assert!(!compact.contains('\n') && !compact.contains(' '));
    let crlf = seed.replace('\n', "\r\n");
    for (name, input) in [("compact.json", &compact), ("crlf.json", &crlf)] {
        let env = Env::new();
        env.write(name, input.as_bytes());
        let out = env.run(&["convert", name, "out/state.json"]);
        out.assert_ok();
        assert_eq!(
            out.stdout,
            format!("Converted {name} to out/state.json (json)\n"),
            "{name}"
        );
        assert_eq!(
            env.read("out/state.json"),
            seed.as_bytes(),
            "{name}: not the seed format"
        );
        // The input is left as it was.
        assert_eq!(env.read(name), input.as_bytes(), "{name}");
    }
}

#[test]
fn convert_reproduces_every_python_fixture() {
    let manifest = std::fs::read_to_string(fixture("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut count = 0;
    for row in manifest.lines().filter(|row| !row.trim().is_empty()) {
        let mut fields = row.split('\t');
        let name = fields.next().expect("a name");
        if fields.next() != Some("exact") {
            continue;
        }
        let expected = fixture_bytes(&format!("{name}.expected.json"));
        let original = String::from_utf8(fixture_bytes(&format!("{name}.json"))).expect("UTF-8");
        for (form, input) in [("pretty", original.clone()), ("compact", minify(&original))] {
            let env = Env::new();
            env.write("in.json", input.as_bytes());
            let out = env.run(&["convert", "in.json", "out.json"]);
            assert_eq!(out.code, Some(0), "{name} ({form}): {}", out.stderr);
            assert!(
                env.read("out.json") == expected,
                "{name} ({form}): the output differs from {name}.expected.json"
            );
        }
        count += 1;
    }
    assert!(count >= 8, "only {count} fixtures in MANIFEST.tsv");
}

#[test]
fn convert_refuses_missing_and_corrupt_inputs() {
    let env = Env::new();
    let out = env.run(&["convert", "missing.json", "out.json"]);
    assert_eq!(out.code, Some(66), "stderr:\n{}", out.stderr);
    assert_eq!(out.stderr, "penin: missing.json does not exist\n");
    assert!(!env.path("out.json").exists());

    env.write("bad.json", b"[1, 2");
    let out = env.run(&["convert", "bad.json", "out.json"]);
    assert_eq!(out.code, Some(81), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("penin: bad.json is not a valid state: "),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.tree(),
        ["bad.json"].map(String::from).into_iter().collect()
    );
}
