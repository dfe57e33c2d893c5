//! What penin says about a state and about itself: `stats`' full report, `-v` and `-q`,
//! colour only on a terminal, `completions` and `man`.

mod common;

use std::process::Command;

use common::{Env, JOURNAL, LEDGER, output};
use serde_json::{Value, json};

/// A state of two dimensions' vectors, three scores and a task, in its journal.
fn small_state() -> Env {
    let env = Env::new();
    env.run(&["add-knowledge", "a", "--vector", "1,2,3"])
        .assert_ok();
    env.run(&["add-knowledge", "b", "--vector", "1,2"])
        .assert_ok();
    env.run(&["add-knowledge", "c", "--vector", "4,5,6"])
        .assert_ok();
    for score in ["0.1", "0.9", "0.5"] {
        env.run(&["add-score", score]).assert_ok();
    }
    env.run(&["add-task", r#"{"task_id":1}"#]).assert_ok();
    env
}

fn stats(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["stats", "--json"]);
    let out = env.run(&all);
    out.assert_ok();
    serde_json::from_str(&out.stdout).expect("stats --json prints JSON")
}

/// The `hash` of the ledger's last line, read from the file itself.
fn ledger_head(env: &Env) -> String {
    let text = String::from_utf8(env.read(LEDGER)).expect("the ledger is UTF-8");
    let last: Value =
        serde_json::from_str(text.lines().last().expect("a line")).expect("a ledger line is JSON");
    last["hash"].as_str().expect("a hash").to_owned()
}

#[test]
fn stats_reports_dimensions_files_journal_ledger_and_scores() {
    let env = small_state();
    let report = stats(&env, &[]);
    assert_eq!(
        report["dimensions"],
        json!([{"dimension": 2, "count": 1}, {"dimension": 3, "count": 2}])
    );
    let journal_bytes = env.read(JOURNAL).len();
    assert_eq!(
        report["journal"],
        json!({"bytes": journal_bytes, "changes": 7, "seq": 7})
    );
    assert_eq!(report["snapshot"]["format"], "json");
    assert_eq!(report["ledger"]["head"], ledger_head(&env));
    assert_eq!(report["ledger"]["bytes"], env.read(LEDGER).len());
    assert_eq!(report["last_scores"], json!([0.1, 0.9, 0.5]));
    assert_eq!(report["sparkline"], "▁█▅");

    let out = env.run(&["stats"]);
    out.assert_ok();
    let lines = out.stdout_lines();
    assert_eq!(lines[4], "Vector dimensions: 2 (1 item), 3 (2 items)");
    assert_eq!(
        lines[6],
        format!("Journal: {journal_bytes} bytes, 7 change(s) since the snapshot, up to change 7")
    );
    assert!(
        lines[7].ends_with(&format!("head {}", ledger_head(&env))),
        "{}",
        lines[7]
    );
    assert_eq!(lines[8], "Last scores: ▁█▅ (the last 3, oldest first)");

    // After a compaction into arrow, the snapshot says so, and the journal is empty.
    env.run(&["--format", "arrow", "compact"]).assert_ok();
    let report = stats(&env, &[]);
    assert_eq!(report["snapshot"]["format"], "arrow");
    assert_eq!(report["snapshot"]["encrypted_to"], Value::Null);
    assert_eq!(report["journal"]["changes"], 0);
    assert_eq!(report["ledger"]["head"], ledger_head(&env));
}

#[test]
fn stats_names_the_recipients_of_an_encrypted_snapshot() {
    let env = small_state();
    let key = env.path("key.txt");
    let key = key.to_str().expect("a UTF-8 path");
    let out = env.run(&["keygen", key]);
    out.assert_ok();
    let recipient = out.stdout.trim().to_owned();
    env.run(&["--identity", key, "compact"]).assert_ok();
    let report = stats(&env, &["--identity", key]);
    assert_eq!(report["snapshot"]["encrypted_to"], json!([recipient]));
    let out = env.run(&["--identity", key, "stats"]);
    assert!(
        out.stdout
            .contains(&format!(", json, encrypted (age) to {recipient}, ")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_damaged_ledger_head_is_reported_not_fatal() {
    let env = small_state();
    let mut ledger = env.read(LEDGER);
    let at = ledger.len() - 5;
    ledger[at] ^= 1;
    env.write(LEDGER, &ledger);
    let report = stats(&env, &[]);
    assert_eq!(report["ledger"]["head"], Value::Null);
    assert!(
        report["ledger"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("state.json.ledger")),
        "{report}"
    );
}

#[test]
fn quiet_silences_warnings_and_verbose_says_what_penin_does() {
    let env = small_state();
    // A torn record at the journal's end: a warning on every load.
    let mut journal = env.read(JOURNAL);
    journal.extend_from_slice(b"xx");
    env.write(JOURNAL, &journal);

    let out = env.run(&["stats"]);
    out.assert_ok();
    assert!(
        out.stderr.starts_with("penin: warning: ") && out.stderr.contains("ends in a torn record"),
        "{}",
        out.stderr
    );
    let out = env.run(&["-q", "stats"]);
    out.assert_ok();
    assert_eq!(out.stderr, "");

    let out = env.run(&["-v", "stats"]);
    out.assert_ok();
    assert!(out.stderr.contains("penin: warning: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "penin: info: .penin_omega/state.json: a json snapshot, then 7 change(s) from the \
             journal, up to change 7"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("penin: debug: "), "{}", out.stderr);

    let out = env.run(&["-v", "add-score", "1"]);
    out.assert_ok();
    assert!(
        out.stderr.contains(
            "penin: info: change 8 appended to the journal of .penin_omega/state.json and synced"
        ),
        "{}",
        out.stderr
    );
    let out = env.run(&["-q", "-v", "stats"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

/// `penin ARGS` on a pseudo-terminal (util-linux `script`), with `NO_COLOR` and `TERM` as
/// given: its output, which must succeed.
fn on_a_terminal(env: &Env, args: &str, no_color: Option<&str>, term: &str) -> String {
    let penin = env!("CARGO_BIN_EXE_penin");
    let mut command = Command::new("script");
    command
        .args(["-qec", &format!("'{penin}' {args}"), "/dev/null"])
        .current_dir(env.dir())
        .env("TERM", term)
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let out = output(&mut command);
    assert_eq!(
        out.code,
        Some(0),
        "penin {args} on a terminal: {}",
        out.stderr
    );
    out.stdout
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let env = small_state();
    if !penin_testkit::program(
        "colour_only_on_a_terminal_and_never_with_no_color",
        "script",
        "stats on a pseudo-terminal (util-linux `script`)",
    ) {
        return;
    }
    let coloured = on_a_terminal(&env, "stats", None, "xterm");
    assert!(
        coloured.contains("\x1b[1mKnowledge base:\x1b[0m 3 items"),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[36m▁█▅\x1b[0m"), "{coloured:?}");

    let plain = on_a_terminal(&env, "stats", Some("1"), "xterm");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("Knowledge base: 3 items"), "{plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let empty = on_a_terminal(&env, "stats", Some(""), "xterm");
    assert!(empty.contains('\x1b'), "{empty:?}");
    // A terminal that says it cannot show colour.
    let dumb = on_a_terminal(&env, "stats", None, "dumb");
    assert!(!dumb.contains('\x1b'), "{dumb:?}");
    // Not a terminal: no colour.
    let piped = env.run(&["stats"]);
    assert!(!piped.stdout.contains('\x1b'), "{:?}", piped.stdout);
}

/// Every command `penin --help` lists.
fn commands() -> Vec<String> {
    let env = Env::new();
    let out = env.run(&["--help"]);
    out.assert_ok();
    let listing = out
        .stdout
        .split("Commands:\n")
        .nth(1)
        .expect("--help lists commands")
        .split("\n\n")
        .next()
        .expect("the list");
    let names: Vec<String> = listing
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(names.len() > 20, "{names:?}");
    names
}

#[test]
fn completions_name_every_command_and_bash_reads_them() {
    let env = Env::new();
    let commands = commands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.run(&["completions", shell]);
        out.assert_ok();
        // Whole words: `man` inside `manual` does not count.
        let words: std::collections::BTreeSet<&str> = out
            .stdout
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .collect();
        for command in &commands {
            assert!(words.contains(command.as_str()), "{shell} lacks {command}");
        }
    }
    let script = env.write(
        "penin.bash",
        env.run(&["completions", "bash"]).stdout.as_bytes(),
    );
    let checked = output(Command::new("bash").arg("-n").arg(&script));
    match checked.code {
        Some(0) => {}
        Some(127) | None => penin_testkit::skip(
            "completions_name_every_command_and_bash_reads_them",
            "bash does not run here",
        ),
        Some(_) => panic!("bash -n refuses the script: {}", checked.stderr),
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn man_pages_cover_every_command() {
    let env = Env::new();
    let out = env.run(&["man"]);
    out.assert_ok();
    assert!(out.stdout.contains(".TH penin 1"), "{}", &out.stdout[..200]);
    let commands = commands();
    for command in &commands {
        let roff_name = command.replace('-', "\\-");
        assert!(out.stdout.contains(&roff_name), "the page lacks {command}");
    }
    let out = env.run(&["man", "--dir", "pages"]);
    out.assert_ok();
    for command in commands.iter().filter(|c| *c != "help") {
        let page = String::from_utf8(env.read(&format!("pages/penin-{command}.1")))
            .expect("a page is UTF-8");
        assert!(page.contains(&format!(".TH penin-{command} 1")), "{page}");
    }
    let page = String::from_utf8(env.read("pages/penin-backup-restore.1")).expect("UTF-8");
    assert!(page.contains("\\-\\-seq"), "{page}");
}

fn verify_json(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["verify"];
    all.extend(args);
    all.push("--json");
    let out = env.run(&all);
    out.assert_ok();
    assert_eq!(out.stdout.lines().count(), 1, "one line: {}", out.stdout);
    serde_json::from_str(&out.stdout).expect("verify --json prints JSON")
}

#[test]
fn verify_json_gives_every_figure_of_the_state_its_journal_ledger_and_checkpoints() {
    let env = small_state();
    env.run(&["compact"]).assert_ok();
    env.run(&["checkpoint", "--tag", "one"]).assert_ok();
    // Two changes beyond the snapshot, a third top-level key, a second checkpoint.
    env.run(&["add-score", "0.7"]).assert_ok();
    env.run(&["add-knowledge", "d", "--vector", "7"])
        .assert_ok();
    env.run(&["checkpoint"]).assert_ok();
    let stats = stats(&env, &[]);
    let ledger_lines = String::from_utf8(env.read(LEDGER)).unwrap().lines().count();
    let checkpoints = env.run(&["checkpoints", "--json"]);
    let checkpoints: Value = serde_json::from_str(&checkpoints.stdout).unwrap();
    assert_eq!(checkpoints.as_array().unwrap().len(), 2);

    let report = verify_json(&env, &["--all"]);
    assert_eq!(
        report,
        json!({
            "remote": null,
            "state": {
                "path": ".penin_omega/state.json",
                "knowledge": 4, "tasks": 1, "task_maxlen": 1000,
                "scores": 4, "score_maxlen": 1000, "other_keys": 0,
            },
            "journal": {"path": JOURNAL, "changes": 2, "seq": stats["journal"]["seq"]},
            "ledger": {
                "path": LEDGER, "lines": ledger_lines, "head": ledger_head(&env),
                "torn_bytes": null,
            },
            "checkpoints": {"dir": ".penin_omega/state.json.checkpoints", "count": 2},
        })
    );
    // The same figures as stats gives, and as the human output.
    assert_eq!(report["state"]["knowledge"], stats["knowledge_base_size"]);
    assert_eq!(report["state"]["scores"], stats["score_history_size"]);
    assert_eq!(report["journal"]["changes"], stats["journal"]["changes"]);
    assert_eq!(report["ledger"]["lines"], stats["ledger"]["lines"]);
    let human = env.run(&["verify", "--all"]);
    human.assert_ok();
    assert_eq!(
        human.stdout,
        format!(
            ".penin_omega/state.json: ok: 4 knowledge items, 1 tasks (maxlen 1000), 4 scores \
             (maxlen 1000), 0 other top-level keys\n\
             {JOURNAL}: ok: 2 change(s) since the snapshot, up to change {}\n\
             {LEDGER}: ok: {ledger_lines} line(s), a sound chain, head {}\n\
             .penin_omega/state.json.checkpoints: ok: 2 checkpoint(s), every checksum matches\n",
            stats["journal"]["seq"],
            ledger_head(&env)
        )
    );

    // Without --all the checkpoints are not checked; a torn ledger line is counted.
    let mut ledger = env.read(LEDGER);
    ledger.extend_from_slice(b"{\"seq\":99,\"ti");
    env.write(LEDGER, &ledger);
    let report = verify_json(&env, &[]);
    assert_eq!(report["checkpoints"], Value::Null);
    assert_eq!(report["ledger"]["torn_bytes"], 13);
    assert_eq!(report["ledger"]["lines"], ledger_lines);
}

#[test]
fn verify_json_of_a_snapshot_alone_with_an_unbounded_history_and_no_ledger() {
    let env = Env::new();
    env.write(
        "s.json",
        br#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [1.0]}},
            "task_history": {"__type__": "deque", "items": [], "maxlen": null},
            "score_history": {"__type__": "deque", "items": [0.5, 1], "maxlen": 5}, "x": 1}"#,
    );
    let report = verify_json(&env, &["s.json"]);
    assert_eq!(
        report,
        json!({
            "remote": null,
            "state": {
                "path": "s.json", "knowledge": 1, "tasks": 0, "task_maxlen": null,
                "scores": 2, "score_maxlen": 5, "other_keys": 1,
            },
            "journal": null, "ledger": null, "checkpoints": null,
        })
    );
}

#[test]
fn a_failing_verify_keeps_its_exit_code_and_prints_no_json() {
    let env = small_state();
    env.run(&["checkpoint"]).assert_ok();
    let ledger = env.read(LEDGER);
    let mut broken = ledger.clone();
    let second = ledger.iter().position(|&b| b == b'\n').unwrap() + 20;
    broken[second] ^= 0x01;
    env.write(LEDGER, &broken);
    let out = env.run(&["verify", "--json"]);
    assert_eq!(out.code, Some(86), "{}", out.stderr);
    assert_eq!(out.stdout, "", "no JSON after a failed check");
    // The human output still says what held before the failure, as each check passes.
    let out = env.run(&["verify"]);
    assert_eq!(out.code, Some(86), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(".penin_omega/state.json: ok: 3 knowledge items")
            && !out.stdout.contains(LEDGER),
        "{}",
        out.stdout
    );
    env.write(LEDGER, &ledger);
    verify_json(&env, &["--all"]);

    // A damaged checkpoint: 87, found last, after every other check passed.
    let data = env
        .tree()
        .into_iter()
        .find(|name| {
            name.contains(".checkpoints/")
                && std::path::Path::new(name)
                    .extension()
                    .is_some_and(|e| e == "json")
        })
        .unwrap();
    let mut bytes = env.read(&data);
    bytes[10] ^= 0x01;
    env.write(&data, &bytes);
    let out = env.run(&["verify", "--all", "--json"]);
    assert_eq!(out.code, Some(87), "{}", out.stderr);
    assert_eq!(out.stdout, "", "no JSON after a failed check");
    verify_json(&env, &[]);

    let out = env.run(&["verify", "missing.json", "--json"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn every_command_that_prints_data_has_json() {
    // What prints no data of its own: the lifecycle (its line protocol is JSON already), the
    // seed's demo, keygen (the recipient alone, as age-keygen prints it), and what describes
    // the command line.
    let without = [
        "run",
        "demo",
        "keygen",
        "completions",
        "man",
        "help",
        "backup",
    ];
    let env = Env::new();
    let mut commands: Vec<Vec<String>> = commands().into_iter().map(|c| vec![c]).collect();
    let backup = env.run(&["backup", "--help"]);
    backup.assert_ok();
    let subcommands = backup
        .stdout
        .split("Commands:\n")
        .nth(1)
        .expect("backup --help lists commands")
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help");
    for name in subcommands {
        commands.push(vec!["backup".to_owned(), name.to_owned()]);
    }
    assert!(commands.len() > 25, "{commands:?}");
    for command in commands {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        if command.len() == 1 && without.contains(&args[0]) {
            continue;
        }
        args.push("--help");
        let out = env.run(&args);
        out.assert_ok();
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with("--json")),
            "{command:?} has no --json:\n{}",
            out.stdout
        );
    }
}
