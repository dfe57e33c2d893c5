//! A save into a really full disk: a small tmpfs, mounted for the test when the test may
//! mount one (root, as in CI); otherwise the test is skipped through `penin_testkit::skip`
//! (a failure under CI unless allowed).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a fresh directory, unmounted when dropped (also on a failed assert).
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("small");
        fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".penin-tmp."))
        .collect()
}

#[test]
fn a_save_into_a_full_disk_fails_cleanly_and_keeps_the_old_file() {
    let tmpfs = match Tmpfs::mount("256k") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            penin_testkit::skip(
                "a_save_into_a_full_disk_fails_cleanly_and_keeps_the_old_file",
                &format!(
                    "cannot mount a small tmpfs to fill for real ({why}); the injected ENOSPC faults in tests/faults.rs still run"
                ),
            );
            return;
        }
    };
    let path = tmpfs.dir.join("state.json");
    let old: Vec<u8> = (0..100 * 1024)
        .map(|i| b"0123456789abcdef"[i % 16])
        .collect();
    penin_store::write_atomic(&path, &old).unwrap();

    // The new state and the old one do not both fit: the temporary runs out of space.
    let new = vec![b'x'; 200 * 1024];
    let err = penin_store::write_atomic(&path, &new).unwrap_err();
    let io = err.io_error().expect("an I/O error");
    assert_eq!(io.kind(), ErrorKind::StorageFull, "{err}");
    assert!(
        matches!(
            err.step(),
            Some(penin_store::Step::Write | penin_store::Step::Sync)
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(".state.json.penin-tmp."),
        "the error names the temporary: {err}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        old,
        "the old state is byte-identical"
    );
    assert_eq!(
        temporaries(&tmpfs.dir),
        Vec::<String>::new(),
        "no temporary remains"
    );

    // Once there is room again the save succeeds.
    let smaller = vec![b'y'; 50 * 1024];
    penin_store::write_atomic(&path, &smaller).unwrap();
    assert_eq!(fs::read(&path).unwrap(), smaller);
}
