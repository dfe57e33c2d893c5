//! File-permission checks where they cannot be bypassed: as `nobody`, when the tests run as
//! root.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crate::skip::skip;

/// The user and group id of `nobody`, which owns nothing.
pub const NOBODY: u32 = 65534;

/// Set in the child process of [`rerun_unprivileged`] to the name of the test it runs.
const CHILD: &str = "PENIN_TESTKIT_UNPRIVILEGED";

/// Whether this process is held to file permissions. Root (or any process with
/// `CAP_DAC_OVERRIDE`) opens a file of mode 0000, and a test of permissions proves nothing
/// there.
///
/// # Panics
///
/// When no file can be made in the temporary directory to try.
pub fn permissions_are_enforced() -> bool {
    let dir = ScratchDir::new("probe").unwrap_or_else(|e| {
        panic!(
            "cannot make a directory in {}: {e}",
            env::temp_dir().display()
        )
    });
    let path = dir.path().join("mode-0000");
    fs::write(&path, "x")
        .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o000)))
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", path.display()));
    fs::File::open(&path).is_err()
}

/// Makes a test of file permissions run where they hold.
///
/// Call it first in the test, with the test's name as for [`skip`]; when it returns `true`,
/// return:
///
/// * where this process is held to file permissions, it returns `false` and the test goes on;
/// * where it is not (root), it runs this very test again in a child process of the test
///   binary as `nobody` (through `setpriv`, from a copy of the binary that `nobody` can
///   execute, with `TMPDIR` a directory `nobody` can write) and returns `true` once the test
///   has passed there; the child's failure fails the test, with the child's output;
/// * where the child cannot be started as `nobody` (no `setpriv`, say), it calls [`skip`] and
///   returns `true`.
///
/// So the check runs, as root too. The test must not depend on files only root can reach
/// (make them in the test, under the temporary directory).
///
/// # Panics
///
/// When the test fails as `nobody`; when the child, run as `nobody`, still bypasses file
/// permissions; when not called from a test's own thread (its name is the filter that runs
/// the test again); and as [`skip`] does.
///
/// ```
/// // A `#[test]`:
/// fn an_unreadable_file_cannot_be_read() {
///     if penin_testkit::rerun_unprivileged("an_unreadable_file_cannot_be_read") {
///         return;
///     }
///     // ... make a file of mode 0000 and check that reading it is refused
/// }
/// ```
#[track_caller]
pub fn rerun_unprivileged(test: &str) -> bool {
    if env::var_os(CHILD).is_some_and(|name| name == test) {
        assert!(
            permissions_are_enforced(),
            "{test}: the child process runs as nobody but still bypasses file permissions"
        );
        return false;
    }
    if permissions_are_enforced() {
        return false;
    }
    // libtest runs each test on a thread named after it: the exact filter of the test.
    let current = thread::current();
    let Some(name) = current.name().filter(|name| *name != "main") else {
        panic!(
            "{test}: rerun_unprivileged is called outside a test's own thread, so the test \
             cannot be named to run it again"
        )
    };
    let output = env::current_exe()
        .and_then(AsNobody::new)
        .and_then(|nobody| {
            nobody
                .command()
                .args([name, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, test)
                .output()
                .map_err(|e| io::Error::new(e.kind(), format!("cannot run setpriv: {e}")))
        });
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            skip(
                test,
                &format!(
                    "this user bypasses file permissions, and the test cannot run again as nobody: {error}"
                ),
            );
            return true;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.contains("running 1 test") {
        // The test binary did not start as nobody: setpriv refused, or could not execute it.
        skip(
            test,
            &format!(
                "this user bypasses file permissions, and the test cannot run again as nobody: {}",
                describe(&output)
            ),
        );
        return true;
    }
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} failed when run again as nobody (uid {NOBODY}):\n{}",
        describe(&output)
    );
    eprintln!("{test}: passed as nobody (uid {NOBODY}) in a child process");
    true
}

/// A process's exit status and output, for a message; the output indented, so that none of
/// its lines (`test result: ...`) reads as this run's own.
fn describe(output: &Output) -> String {
    let indent = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|line| format!("  | {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        indent(&output.stdout),
        indent(&output.stderr)
    )
}

/// A program that runs as `nobody` (user and group [`NOBODY`], no supplementary groups).
///
/// The program is copied into a fresh directory under the temporary directory that `nobody`
/// can reach, since the original may lie under a directory only root can enter (a clone
/// under `/root`). The copy, and the scratch directory beside it, are removed on drop.
/// Running it needs `setpriv` (util-linux) and the privilege to change user (root).
///
/// Not `Clone`: it owns the directory it removes.
#[derive(Debug)]
pub struct AsNobody {
    dir: ScratchDir,
    program: PathBuf,
    scratch: PathBuf,
}

impl AsNobody {
    /// Copies `program` to a directory `nobody` can reach and execute it from, beside a
    /// scratch directory `nobody` can write.
    pub fn new(program: impl AsRef<Path>) -> io::Result<Self> {
        let program = program.as_ref();
        let dir = ScratchDir::new("nobody")?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let name = program.file_name().unwrap_or(OsStr::new("program"));
        let copy = dir.path().join(name);
        // Copied by cp(1), in a process of its own: a descriptor open for writing in this
        // process could leak into a child forked meanwhile by another test's thread, and
        // executing the copy would then fail with ETXTBSY ("text file busy").
        let status = Command::new("cp")
            .arg("--")
            .arg(program)
            .arg(&copy)
            .status()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run cp: {e}")))?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "cp {} {} failed: {status}",
                program.display(),
                copy.display()
            )));
        }
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
        let scratch = dir.path().join("tmp");
        fs::create_dir(&scratch)?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o1777))?;
        Ok(AsNobody {
            dir,
            program: copy,
            scratch,
        })
    }

    /// `setpriv --reuid=65534 --regid=65534 --clear-groups COPY`, with `TMPDIR` set to
    /// [`scratch`](Self::scratch) and the copy's directory as the working directory; add the
    /// program's arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(&self.program)
            .env("TMPDIR", &self.scratch)
            .current_dir(self.dir.path());
        command
    }

    /// A directory `nobody` can write (mode 1777), removed on drop.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }
}

/// A fresh directory under the temporary directory, removed with all it holds on drop.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(what: &str) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                env::temp_dir().join(format!("penin-testkit-{what}-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(ScratchDir(path)),
                // Left by an earlier process of the same id: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machinery itself, as root too: the body runs where a file of mode 0000 cannot be
    /// opened, and as nobody when the tests run as root.
    #[test]
    fn a_rerun_runs_where_permissions_hold() {
        if rerun_unprivileged("nobody::tests::a_rerun_runs_where_permissions_hold") {
            return;
        }
        assert!(permissions_are_enforced());
        let dir = ScratchDir::new("check").unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        assert_eq!(
            fs::read(&path).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
    }

    /// A test that fails as nobody fails the test that ran it again, with the child's output.
    #[test]
    fn a_failure_as_nobody_fails_the_test() {
        const NAME: &str = "nobody::tests::a_failure_as_nobody_fails_the_test";
        if env::var_os(CHILD).is_some() {
            assert!(
                !rerun_unprivileged(NAME),
                "the child makes the check itself"
            );
            panic!("the failure the parent must see");
        }
        if permissions_are_enforced() {
            skip(
                NAME,
                "this user is held to file permissions, so no test runs again as nobody",
            );
            return;
        }
        let failure = std::panic::catch_unwind(|| rerun_unprivileged(NAME))
            .expect_err("the child's failure fails the test");
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(
            message.contains("failed when run again as nobody (uid 65534)")
                && message.contains("the failure the parent must see"),
            "{message}"
        );
    }
}
