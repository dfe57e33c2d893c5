//! The command line itself: help, usage errors.

mod common;

use common::Env;

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let env = Env::new();
    let out = env.run(&["--help"]);
    out.assert_ok();
    for command in [
        "run",
        "demo",
        "stats",
        "add-knowledge",
        "add-task",
        "add-score",
        "convert",
        "verify",
        "keygen",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{command} is not listed:\n{}",
            out.stdout
        );
    }
    let (_, codes) = out
        .stdout
        .split_once("Exit codes:\n")
        .unwrap_or_else(|| panic!("no exit codes:\n{}", out.stdout));
    for (code, meaning) in [
        ("0", "success"),
        ("2", "usage error"),
        ("65", "not JSON"),
        ("66", "does not exist"),
        ("74", "I/O error"),
        ("75", "locked by another penin process"),
        ("77", "permission denied"),
        ("78", "not a regular file"),
        ("80", "empty"),
        ("81", "truncated"),
        ("82", "not UTF-8"),
        ("83", "wrong shape"),
        ("88", "compressed (json.gz, json.zst) or encrypted (age)"),
        ("89", "encrypted (age), and no identity"),
        ("1", "any other failure"),
    ] {
        assert!(
            codes.lines().any(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some(code) && line.contains(meaning)
            }),
            "exit code {code} ({meaning}) is not listed:\n{codes}"
        );
    }
    assert!(env.tree().is_empty(), "help wrote {:?}", env.tree());
}

#[test]
fn usage_errors_exit_2_and_touch_nothing() {
    let rows: &[&[&str]] = &[
        &["bogus"],
        &["--state"],
        &["run", "--autosave", "soon"],
        &["add-knowledge", "k"],
        &["add-score"],
        &["convert", "only-one.json"],
        &["--history-maxlen", "-1", "run"],
        &["--state", "x.json", "--user", "stats"],
    ];
    for args in rows {
        let env = Env::new();
        let out = env.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: stderr:\n{}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(env.tree().is_empty(), "{args:?} wrote {:?}", env.tree());
    }
}

#[test]
fn unknown_subcommand_is_named() {
    let out = Env::new().run(&["bogus"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr_lines()[0],
        "error: unrecognized subcommand 'bogus'"
    );
}

#[test]
fn autosave_takes_only_sensible_intervals() {
    let env = Env::new();
    for value in ["inf", "-1", "NaN", "1e12", "soon"] {
        let out = env.run(&["run", &format!("--autosave={value}")]);
        assert_eq!(out.code, Some(2), "{value}: {}", out.stderr);
        assert!(out.stderr.contains("--autosave"), "{value}: {}", out.stderr);
    }
    assert!(env.tree().is_empty(), "{:?}", env.tree());
}
