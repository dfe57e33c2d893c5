//! [`skip`]: a test that cannot make its check says so, where it can be seen.

use std::env;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;

/// The environment variable naming the file every skip is appended to.
const SKIP_LOG: &str = "PENIN_SKIP_LOG";

/// The environment variable naming, separated by commas, the tests allowed to skip under CI.
const ALLOW_SKIP: &str = "PENIN_ALLOW_SKIP";

/// Records that `test` cannot make its real check here, because of `reason`; the caller then
/// returns without its check.
///
/// Writes `SKIPPED <test>: <reason>` to the process's standard error itself, which the test
/// harness does not capture (it captures `eprintln!`), so the line shows among the test lines
/// of a run even when the test passes; and appends the same line to the file named by
/// `PENIN_SKIP_LOG`, when set, which gathers the skips of a whole run in one place. Under CI — the `CI` environment
/// variable set to anything but empty, `0` or `false` — it then panics, failing the test,
/// unless `PENIN_ALLOW_SKIP` names `test` (names separated by commas, compared whole).
///
/// Name the test as `cargo test` prints it, without the crate (`read::tests::a_name` for a
/// unit test, `a_name` for an integration test), so that the name to allow is the one a
/// failing run shows.
///
/// # Panics
///
/// Under CI when `PENIN_ALLOW_SKIP` does not name `test`, and when `PENIN_SKIP_LOG` is set
/// but cannot be appended to (a skip that the log would miss).
#[track_caller]
pub fn skip(test: &str, reason: &str) {
    let settings = Settings::from_lookup(|name| env::var(name).ok());
    if let Err(message) = skip_with(&settings, test, reason, &mut io::stderr()) {
        panic!("{message}");
    }
}

/// Whether `python3` runs here. Without it, `test` is skipped (see [`skip`]: a failure under
/// CI unless allowed), with `what` — the check that cannot be made — in the reason.
///
/// # Panics
///
/// As [`skip`] does, when `python3` does not run.
#[track_caller]
pub fn python3(test: &str, what: &str) -> bool {
    program(test, "python3", what)
}

/// Whether `program --version` runs here and succeeds. Without it, `test` is skipped (see
/// [`skip`]: a failure under CI unless allowed), with `what` — the check that cannot be made —
/// in the reason.
///
/// # Panics
///
/// As [`skip`] does, when `program` does not run.
#[track_caller]
pub fn program(test: &str, program: &str, what: &str) -> bool {
    let why = match std::process::Command::new(program)
        .arg("--version")
        .output()
    {
        Ok(output) if output.status.success() => return true,
        Ok(output) => format!("{program} --version failed ({})", output.status),
        Err(error) => format!("{program} cannot run ({error})"),
    };
    skip(test, &format!("{why}: {what}"));
    false
}

/// Whether a Python helper script of the tests (`tests/python/*.py`) found a package it needs
/// missing: by their convention it then exits with code 3 and names the package on stderr.
/// Then `test` is skipped (see [`skip`]: a failure under CI unless allowed), with that
/// message, `.ci/run` named as what installs it, and `what` — the check that cannot be made.
///
/// # Panics
///
/// As [`skip`] does, when the package is missing.
#[track_caller]
pub fn python_package_missing(test: &str, output: &std::process::Output, what: &str) -> bool {
    if output.status.code() != Some(3) {
        return false;
    }
    skip(
        test,
        &format!(
            "{} (.ci/run installs it): {what}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    );
    true
}

/// What the environment says about skips.
#[derive(Debug, Default)]
struct Settings {
    /// Running under CI: a skip fails unless allowed.
    ci: bool,
    /// The tests allowed to skip under CI.
    allowed: Vec<String>,
    /// Where skips are appended.
    log: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings through `var`, which gives an environment variable's value.
    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let ci = var("CI").is_some_and(|value| {
            let value = value.trim().to_ascii_lowercase();
            !matches!(value.as_str(), "" | "0" | "false")
        });
        let allowed = var(ALLOW_SKIP)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        let log = var(SKIP_LOG)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from);
        Settings { ci, allowed, log }
    }
}

/// [`skip`] under `settings`, saying so on `stderr`: `Err` holds the message to fail the
/// test with.
fn skip_with(
    settings: &Settings,
    test: &str,
    reason: &str,
    stderr: &mut dyn Write,
) -> Result<(), String> {
    // One line per skip, whatever the reason holds, so that the log reads line by line.
    let line = format!("SKIPPED {test}: {reason}").replace(['\n', '\r'], " ");
    // Not `eprintln!`, which the test harness captures and shows for failing tests only. Like
    // `eprintln!`, a closed stderr is no reason to fail.
    let _ = writeln!(stderr, "{line}");
    if let Some(log) = &settings.log {
        // One `write_all` of a short line to a file opened for appending: lines of tests
        // running at the same time do not interleave.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()))
            .map_err(|error| {
                format!(
                    "{line}\n(and it cannot be logged to {SKIP_LOG}={}: {error})",
                    log.display()
                )
            })?;
    }
    if settings.ci && !settings.allowed.iter().any(|name| name == test) {
        return Err(format!(
            "{line}\nCI is set, so a test may not skip its check: make the check possible on \
             this machine, or allow this skip with {ALLOW_SKIP}={test}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn ci_and_the_allow_list_decide_whether_a_skip_fails() {
        // (environment, test skipping, whether the skip fails the test)
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let rows: &[(Vars, &str, bool)] = &[
            (&[], "t", false),
            (&[("CI", "")], "t", false),
            (&[("CI", "0")], "t", false),
            (&[("CI", "false")], "t", false),
            (&[("CI", "FALSE")], "t", false),
            (&[("CI", "true")], "t", true),
            (&[("CI", "1")], "t", true),
            (&[("CI", "yes")], "t", true),
            (&[("CI", "true"), (ALLOW_SKIP, "t")], "t", false),
            (&[("CI", "true"), (ALLOW_SKIP, "a, t ,b")], "t", false),
            (&[("CI", "true"), (ALLOW_SKIP, "a,b")], "t", true),
            // Names are compared whole: a prefix or a longer name does not allow.
            (&[("CI", "true"), (ALLOW_SKIP, "mod::t")], "t", true),
            (&[("CI", "true"), (ALLOW_SKIP, "t")], "mod::t", true),
            (&[("CI", "true"), (ALLOW_SKIP, "")], "t", true),
            (&[("CI", "true"), (ALLOW_SKIP, ",")], "t", true),
            (&[(ALLOW_SKIP, "a")], "t", false),
        ];
        for (vars, test, fails) in rows {
            let mut stderr = Vec::new();
            let result = skip_with(&settings(vars), test, "no reason", &mut stderr);
            assert_eq!(result.is_err(), *fails, "{vars:?} {test}: {result:?}");
            assert_eq!(
                String::from_utf8(stderr).unwrap(),
                format!("SKIPPED {test}: no reason\n"),
                "every skip is said, allowed or not"
            );
            if let Err(message) = result {
                assert!(
                    message.starts_with(&format!("SKIPPED {test}: no reason\n")),
                    "{message}"
                );
                assert!(
                    message.contains(&format!("PENIN_ALLOW_SKIP={test}")),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn every_skip_is_appended_to_the_log_allowed_or_not() {
        let dir = std::env::temp_dir().join(format!("penin-testkit-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips.log");
        let _ = std::fs::remove_file(&log);
        let path = log.to_str().unwrap();
        let mut stderr = Vec::new();
        skip_with(
            &settings(&[(SKIP_LOG, path)]),
            "a",
            "no python3",
            &mut stderr,
        )
        .unwrap();
        skip_with(
            &settings(&[(SKIP_LOG, path), ("CI", "true"), (ALLOW_SKIP, "b")]),
            "b",
            "two\nlines",
            &mut stderr,
        )
        .unwrap();
        skip_with(
            &settings(&[(SKIP_LOG, path), ("CI", "true")]),
            "c",
            "one CPU",
            &mut stderr,
        )
        .unwrap_err();
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines = "SKIPPED a: no python3\nSKIPPED b: two lines\nSKIPPED c: one CPU\n";
        assert_eq!(text, lines);
        assert_eq!(String::from_utf8(stderr).unwrap(), lines);
    }

    #[test]
    fn a_log_that_cannot_be_written_fails_the_skip() {
        let message = skip_with(
            &settings(&[(SKIP_LOG, "/nonexistent/directory/skips.log")]),
            "t",
            "r",
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(message.starts_with("SKIPPED t: r\n"), "{message}");
        assert!(
            message.contains("cannot be logged to PENIN_SKIP_LOG"),
            "{message}"
        );
    }
}
