//! Every way a load can fail is its own kind of error that names the path and the problem,
//! and changes nothing.

use std::fs;
use std::path::Path;

use penin_orchestrator::{ErrorKind, NumericVectorArtifact, Orchestrator};

fn before() -> Orchestrator {
    let mut o = Orchestrator::new();
    o.add_knowledge("kept", NumericVectorArtifact::new(vec![1.0]));
    o.add_score(0.5);
    o
}

/// Loads `bytes` written at a fresh path; returns the error's kind and full message chain.
fn load_error(bytes: &[u8]) -> (ErrorKind, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, bytes).unwrap();
    load_error_at(&path)
}

fn load_error_at(path: &Path) -> (ErrorKind, String) {
    let mut o = before();
    let err = o.load_state(path).expect_err("the load must fail");
    assert_eq!(o, before(), "a failed load changes nothing");
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    (
        err.kind(),
        message.replace(&path.display().to_string(), "PATH"),
    )
}

#[test]
fn not_found_is_a_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = before();
    assert!(!o.load_state(dir.path().join("state.json")).unwrap());
    assert!(
        !o.load_state(dir.path().join("no/such/dir/state.json"))
            .unwrap()
    );
    assert_eq!(o, before());
}

#[test]
fn each_corruption_is_its_own_kind() {
    let rows: &[(&[u8], ErrorKind, &str)] = &[
        (b"", ErrorKind::Empty, "PATH is not a valid state: the document is empty"),
        (b" \r\n\t", ErrorKind::Empty, "PATH is not a valid state: the document is empty"),
        (
            b"{\n  \"knowledge_base\": {\n    \"k\": {",
            ErrorKind::Truncated,
            "PATH is not a valid state: unexpected end of input at line 3, column 11 in knowledge_base[\"k\"]",
        ),
        (
            b"{\"knowledge_base\": {\"caf\xe9\": 1}}",
            ErrorKind::InvalidUtf8,
            "PATH is not a valid state: invalid UTF-8 at line 1, column 25 (byte 24)",
        ),
        (
            b"{\"knowledge_base\": {},}",
            ErrorKind::InvalidJson,
            "PATH is not a valid state: expected a string key, found '}' at line 1, column 23",
        ),
        (
            b"{\"knowledge_base\": {\"k\": {\"__type__\": \"NumericVectorArtifact\", \"vector\": [1, 2, 3, \"x\"]}}}",
            ErrorKind::WrongShape,
            "PATH is not a valid state: knowledge_base[\"k\"].vector[3]: expected a number, found a string (line 1, column 84)",
        ),
        (
            b"[1, 2]",
            ErrorKind::WrongShape,
            "PATH is not a valid state: the document: expected an object, found an array (line 1, column 1)",
        ),
    ];
    for (bytes, kind, message) in rows {
        assert_eq!(
            load_error(bytes),
            (*kind, (*message).to_owned()),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_directory_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::create_dir(&path).unwrap();
    assert_eq!(
        load_error_at(&path),
        (
            ErrorKind::NotRegularFile,
            "PATH is a directory, not a regular file".to_owned()
        )
    );
}

/// Root (as in CI) reads any file: there the test runs again as nobody in a child process.
#[cfg(unix)]
#[test]
fn an_unreadable_file_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    if penin_testkit::rerun_unprivileged("an_unreadable_file_is_permission_denied") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, b"{}").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let (kind, message) = load_error_at(&path);
    assert_eq!(kind, ErrorKind::PermissionDenied);
    assert!(message.starts_with("cannot open PATH: "), "{message}");
}

#[test]
fn leftover_temporaries_are_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    before().save_state(&path).unwrap();
    // What an interrupted save of another state leaves: a temporary of ours beside the file.
    let leftover = dir.path().join(".state.json.penin-tmp.4242.0");
    fs::write(&leftover, b"{\"knowledge_base\": {}}").unwrap();
    let mut o = Orchestrator::new();
    assert!(o.load_state(&path).unwrap());
    assert_eq!(o, before(), "the saved state, not the temporary");
    assert_eq!(penin_store::remove_stale_temporaries(&path).unwrap(), 1);
    assert!(!leftover.exists());
}
