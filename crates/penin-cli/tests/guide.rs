//! `docs/guide.md` is tested: every command it shows is run, in order, in one fresh
//! directory, and its output must match what the guide shows.
//!
//! In the guide, a ```` ```console ```` block holds commands, each on a line starting with
//! `$ `, each followed by the output it prints (stdout and stderr together, as a terminal
//! shows them). In the output shown, a line `...` stands for any number of lines, and
//! `[..]` for any text within a line (times, hashes, sizes that vary). Each command runs
//! with `sh -c` and must exit 0 (the guide shows `; echo "exit $?"` where a command fails on
//! purpose), within five minutes. A block opened with ```` ```console s3 ```` needs an S3
//! server (`tests/s3/seaweedfs.sh`); its `s3://penin/guide` is replaced by a prefix of its
//! own under `$PENIN_TEST_S3`. A block opened with ```` ```console python ```` needs
//! Python with pyarrow. Without what a block needs, its commands are skipped and the test
//! says so (a failure under CI). Blocks of other languages (`sh`, `json`) are not run.

mod common;

use std::path::Path;
use std::process::Command;

use common::output;

const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/guide.md");

/// A command of the guide and the output it shows.
#[derive(Debug)]
struct Step {
    /// Its line in the guide, from 1.
    line: usize,
    command: String,
    expected: Vec<String>,
    /// What the block needs: `s3`, `python`, or nothing.
    needs: Option<String>,
}

/// The steps of every `console` block of `text`, in order.
fn steps(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut block: Option<Option<String>> = None;
    for (i, line) in text.lines().enumerate() {
        match &block {
            None => {
                if let Some(info) = line.strip_prefix("```console") {
                    block = Some(info.split_whitespace().next().map(str::to_owned));
                }
            }
            Some(_) if line.starts_with("```") => block = None,
            Some(needs) => {
                if let Some(command) = line.strip_prefix("$ ") {
                    steps.push(Step {
                        line: i + 1,
                        command: command.to_owned(),
                        expected: Vec::new(),
                        needs: needs.clone(),
                    });
                } else {
                    let step = steps.last_mut().unwrap_or_else(|| {
                        panic!("docs/guide.md:{}: output before any command", i + 1)
                    });
                    step.expected.push(line.to_owned());
                }
            }
        }
    }
    assert!(
        block.is_none(),
        "docs/guide.md: a console block is not closed"
    );
    steps
}

/// Whether `actual` is `expected` with its `[..]` standing for any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let mut pieces = expected.split("[..]");
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether the lines `actual` are those `expected` shows, `...` standing for any lines.
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((any, rest)) if any == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((line, rest)) => actual
            .split_first()
            .is_some_and(|(first, others)| line_matches(line, first) && lines_match(rest, others)),
    }
}

#[test]
fn the_matcher_reads_the_guide_s_wildcards() {
    assert!(line_matches("a [..] c", "a b b c"));
    assert!(line_matches("[..]", ""));
    assert!(line_matches("x[..]", "xyz"));
    assert!(!line_matches("x[..]z", "xy"));
    assert!(!line_matches("abc", "abcd"));
    let expected: Vec<String> = ["one", "...", "four"].map(str::to_owned).to_vec();
    assert!(lines_match(&expected, &["one", "two", "three", "four"]));
    assert!(lines_match(&expected, &["one", "four"]));
    assert!(!lines_match(&expected, &["one", "four", "five"]));
    assert!(!lines_match(&expected, &["two", "four"]));
}

/// Runs `step` in `dir` with penin on the `PATH`.
fn run(step: &Step, dir: &Path, s3_prefix: Option<&str>) -> (Option<i32>, String) {
    let penin = Path::new(env!("CARGO_BIN_EXE_penin"));
    let bin = penin.parent().expect("the binary's directory");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_owned()];
    paths.extend(std::env::split_paths(&path));
    let mut command_line = step.command.clone();
    if let Some(prefix) = s3_prefix {
        command_line = command_line.replace("s3://penin/guide", prefix);
    }
    // coreutils' timeout: a step that hangs fails instead of holding the test.
    let mut command = Command::new("timeout");
    command
        .args(["300", "sh", "-c"])
        .arg(format!("exec 2>&1; {command_line}"))
        .current_dir(dir)
        .env("PATH", std::env::join_paths(paths).expect("a PATH"))
        .env("HOME", dir)
        .env("TZ", "UTC")
        .env_remove("PENIN_STATE")
        .env_remove("PENIN_IDENTITY")
        .env_remove("NO_COLOR");
    let out = output(&mut command);
    let mut text = out.stdout;
    if let Some(prefix) = s3_prefix {
        text = text.replace(prefix, "s3://penin/guide");
    }
    (out.code, text)
}

#[test]
fn every_command_of_the_guide_prints_what_it_shows() {
    let text = std::fs::read_to_string(GUIDE).expect("docs/guide.md is readable");
    let steps = steps(&text);
    assert!(steps.len() > 20, "the guide shows {} commands", steps.len());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let s3 = std::env::var("PENIN_TEST_S3").ok().map(|url| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{url}/guide-{}-{nanos}", std::process::id())
    });
    let python = Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|out| out.status.success());
    let mut skipped = Vec::new();
    for step in &steps {
        let missing = match step.needs.as_deref() {
            Some("s3") if s3.is_none() => Some("an S3 server (run under tests/s3/seaweedfs.sh)"),
            Some("python") if !python => Some("python3 with pyarrow"),
            Some("s3" | "python") | None => None,
            Some(other) => panic!("docs/guide.md:{}: unknown block tag {other:?}", step.line),
        };
        if let Some(missing) = missing {
            skipped.push(format!("line {} needs {missing}", step.line));
            continue;
        }
        let (code, actual) = run(step, dir.path(), s3.as_deref());
        let lines: Vec<&str> = actual.lines().collect();
        assert!(
            code == Some(0) && lines_match(&step.expected, &lines),
            "docs/guide.md:{}: `{}` exited {code:?} and printed:\n{actual}\nwhere the guide \
             shows:\n{}",
            step.line,
            step.command,
            step.expected.join("\n")
        );
    }
    if !skipped.is_empty() {
        penin_testkit::skip(
            "every_command_of_the_guide_prints_what_it_shows",
            &format!(
                "{} command(s) of the guide not run: {}",
                skipped.len(),
                skipped.join("; ")
            ),
        );
    }
}
