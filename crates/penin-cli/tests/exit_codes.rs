//! Every way a state can fail to load has its own exit code, for `verify` (a reader) and
//! for `run` (a writer, which then refuses to start and leaves the file alone).

mod common;

use std::path::Path;
use std::process::Command;

use common::Env;

/// (file name, contents, exit code, words the message must hold)
const CASES: &[(&str, &[u8], i32, &str)] = &[
    (
        "json.json",
        b"{\"knowledge_base\": {}]",
        65,
        "expected ',' or '}'",
    ),
    ("empty.json", b"", 80, "the document is empty"),
    (
        "truncated.json",
        b"{\"knowledge_base\": {\"k\": {\"vec",
        81,
        "unexpected end of input",
    ),
    (
        "utf8.json",
        b"{\"knowledge_base\": {\"\xc3\x28\": 1}}",
        82,
        "invalid UTF-8 at line 1, column 22",
    ),
    (
        "shape.json",
        b"{\"score_history\": [0.5, \"x\"]}",
        83,
        "score_history[1]: expected a number, found a string",
    ),
];

#[test]
fn each_kind_of_bad_state_has_its_code() {
    let env = Env::new();
    for (name, bytes, code, words) in CASES {
        env.write(name, bytes);
        for args in [&["verify", name][..], &["--state", name, "run"]] {
            let out = env.run(args);
            assert_eq!(out.code, Some(*code), "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(words), "{args:?}: {}", out.stderr);
            assert_eq!(env.read(name), *bytes, "{args:?}: the file changed");
        }
    }
    let out = env.run(&["verify", "missing.json"]);
    assert_eq!(out.code, Some(66), "{}", out.stderr);
}

#[test]
fn a_directory_is_not_a_regular_file() {
    let env = Env::new();
    std::fs::create_dir(env.path("dir.json")).unwrap();
    for args in [
        &["verify", "dir.json"][..],
        &["--state", "dir.json", "run"],
        &["--state", "dir.json", "add-score", "1"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(78), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("dir.json is a directory, not a regular file"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// Root (as in CI) reads any file, so there penin runs as `nobody`, to whom the root-owned
/// state of mode 0600 is unreadable; elsewhere a state of mode 0000 does it.
#[cfg(unix)]
#[test]
fn an_unreadable_state_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    const TEST: &str = "an_unreadable_state_is_permission_denied";
    let env = Env::new();
    let state = env.write("state.json", b"{}");
    let bin = Path::new(env!("CARGO_BIN_EXE_penin"));
    // Holds the copy of the binary that `nobody` runs, while it runs.
    let nobody;
    let mut command = if penin_testkit::permissions_are_enforced() {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o000)).unwrap();
        Command::new(bin)
    } else {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The test directory itself must be reachable for the other user.
        std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        nobody = match penin_testkit::AsNobody::new(bin) {
            Ok(nobody) => nobody,
            Err(error) => {
                penin_testkit::skip(
                    TEST,
                    &format!(
                        "running as root, and penin cannot be copied for nobody to run: {error}"
                    ),
                );
                return;
            }
        };
        let why = match nobody.command().arg("--version").output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(error) => Some(error.to_string()),
        };
        if let Some(why) = why {
            penin_testkit::skip(
                TEST,
                &format!("running as root, and penin cannot run as nobody through setpriv: {why}"),
            );
            return;
        }
        nobody.command()
    };
    let out = command
        .arg("verify")
        .arg(&state)
        .current_dir(env.dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert!(
        stderr.contains("cannot open") && stderr.contains("state.json"),
        "{stderr}"
    );
}
