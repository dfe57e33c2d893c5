//! Each file-system call of a save fails in turn: the save reports the step, the old file
//! keeps its bytes, no temporary is left, and the next save succeeds. The one exception is
//! the second handle for early flushes ([`Op::TryClone`]): only an optimisation, so the save
//! goes on without it.

use std::io::Write;
use std::path::{Path, PathBuf};

use penin_store::testing::{Fault, FaultyFs, Op};
use penin_store::{AtomicWriter, Durability, Step};

const OLD: &[u8] = b"{\n  \"old\": true\n}";

/// The bytes of a save: large enough to take several writes through the 256 KiB buffer.
fn new_bytes() -> Vec<u8> {
    (0..700_000_u32).map(|i| (i % 253) as u8).collect()
}

/// Writes `bytes` in pieces, as an encoder does.
fn save(fs: &FaultyFs, path: &Path, bytes: &[u8]) -> penin_store::Result<()> {
    penin_store::write_atomic_in(fs, path, Durability::Full, |w: &mut AtomicWriter<'_>| {
        for piece in bytes.chunks(100_000) {
            w.write_all(piece)?;
        }
        Ok(())
    })
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The step a save reports when this call fails.
fn step_of(op: Op) -> Step {
    match op {
        Op::CreateDirAll => Step::CreateDirectory,
        Op::Metadata | Op::SymlinkMetadata => Step::Metadata,
        Op::CreateNew => Step::CreateTemporary,
        Op::SetPermissions => Step::SetPermissions,
        Op::Write => Step::Write,
        Op::Sync | Op::SyncData => Step::Sync,
        Op::Rename => Step::Rename,
        Op::SyncDir => Step::SyncDirectory,
        other => panic!("a failed {other:?} fails no save"),
    }
}

/// A directory holding the target, with `old` in it if given.
fn setup(old: Option<&[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    if let Some(old) = old {
        std::fs::write(&path, old).unwrap();
    }
    (dir, path)
}

/// The calls a successful save makes in this situation.
fn calls_of_a_save(old: Option<&[u8]>) -> Vec<Op> {
    let (_dir, path) = setup(old);
    let fs = FaultyFs::new();
    save(&fs, &path, &new_bytes()).unwrap();
    fs.ops()
}

/// The errors a disk gives: full, failing, forbidding.
const FAULTS: [(Fault, i32); 3] = [(Fault::ENOSPC, 28), (Fault::EIO, 5), (Fault::EACCES, 13)];

#[test]
fn every_call_of_a_save_can_fail_once() {
    let new = new_bytes();
    let mut injected = 0;
    for (fault, errno) in FAULTS {
        for old in [Some(OLD), None] {
            let ops = calls_of_a_save(old);
            assert!(
                ops.iter().filter(|op| **op == Op::Write).count() >= 3,
                "{ops:?}"
            );
            for (n, &op) in (1..).zip(&ops) {
                let context = format!(
                    "{fault:?}, old file {}, call {n} ({op:?}) fails",
                    old.is_some()
                );
                let (dir, path) = setup(old);
                let fs = FaultyFs::failing(n, fault);
                if op == Op::TryClone {
                    // No second handle: no early flushes, and the save is made all the same.
                    save(&fs, &path, &new).unwrap_or_else(|e| panic!("{context}: {e}"));
                    injected += 1;
                    assert_eq!(std::fs::read(&path).unwrap(), new, "{context}");
                    assert_eq!(names(dir.path()), ["state.json"], "{context}");
                    let mut expected = ops.clone();
                    expected.retain(|o| *o != Op::SyncData);
                    assert_eq!(fs.ops(), expected, "{context}");
                    continue;
                }
                let error = save(&fs, &path, &new).expect_err(&context);
                injected += 1;
                assert_eq!(error.step(), Some(step_of(op)), "{context}: {error}");
                let source = error.io_error().expect(&context);
                assert_eq!(source.raw_os_error(), Some(errno), "{context}");
                let named = error.path().expect(&context);
                let expected_name = match op {
                    Op::SymlinkMetadata | Op::CreateDirAll | Op::SyncDir => {
                        dir.path().to_path_buf()
                    }
                    Op::Metadata | Op::Rename => path.clone(),
                    _ => {
                        let name = named.file_name().unwrap().to_str().unwrap();
                        assert!(
                            name.starts_with(".state.json.penin-tmp."),
                            "{context}: {name}"
                        );
                        dir.path().join(name)
                    }
                };
                assert_eq!(named, expected_name, "{context}");
                assert!(
                    error.to_string().starts_with("cannot "),
                    "{context}: {error}"
                );

                let contents = std::fs::read(&path).ok();
                if op == Op::SyncDir {
                    // The rename is done; only its durability is in doubt.
                    assert_eq!(contents.as_deref(), Some(&new[..]), "{context}");
                } else {
                    assert_eq!(contents.as_deref(), old, "{context}: the old file changed");
                }
                let expected_names: &[&str] = if old.is_some() || op == Op::SyncDir {
                    &["state.json"]
                } else {
                    &[]
                };
                assert_eq!(
                    names(dir.path()),
                    expected_names,
                    "{context}: a temporary is left"
                );
                let failed_syncs = fs.ops().iter().skip(n - 1).filter(|o| **o == op).count();
                assert_eq!(failed_syncs, 1, "{context}: the failed call was retried");

                fs.clear();
                save(&fs, &path, &new).unwrap_or_else(|error| panic!("{context}, then: {error}"));
                assert_eq!(std::fs::read(&path).unwrap(), new, "{context}");
                assert_eq!(names(dir.path()), ["state.json"], "{context}");
            }
        }
    }
    println!("faults injected once: {injected}");
}

#[test]
fn a_short_write_leaves_the_old_file() {
    let ops = calls_of_a_save(Some(OLD));
    for (n, _) in (1..).zip(&ops).filter(|(_, op)| **op == Op::Write) {
        let (dir, path) = setup(Some(OLD));
        let fs = FaultyFs::failing(n, Fault::ENOSPC).short_write();
        println!("short write injected at call {n}");
        let error = save(&fs, &path, &new_bytes()).unwrap_err();
        assert_eq!(error.step(), Some(Step::Write));
        assert_eq!(std::fs::read(&path).unwrap(), OLD);
        assert_eq!(names(dir.path()), ["state.json"]);
    }
}

#[test]
fn a_lasting_fault_may_leave_a_temporary_that_the_next_start_removes() {
    let new = new_bytes();
    let mut injected = 0;
    for (fault, errno) in FAULTS {
        for old in [Some(OLD), None] {
            let ops = calls_of_a_save(old);
            for (n, &op) in (1..).zip(&ops) {
                let context = format!(
                    "{fault:?} from call {n} ({op:?}) on, old file {}",
                    old.is_some()
                );
                let (dir, path) = setup(old);
                // From call n on everything fails, the removal of the temporary included.
                let fs = FaultyFs::failing(n, fault).forever();
                let error = save(&fs, &path, &new).expect_err(&context);
                injected += 1;
                // A failed second handle fails nothing; the save fails at its next call.
                let op = if op == Op::TryClone { ops[n] } else { op };
                assert_eq!(error.step(), Some(step_of(op)), "{context}: {error}");
                assert_eq!(
                    error.io_error().and_then(std::io::Error::raw_os_error),
                    Some(errno),
                    "{context}"
                );
                let contents = std::fs::read(&path).ok();
                if op == Op::SyncDir {
                    assert_eq!(contents.as_deref(), Some(&new[..]), "{context}");
                } else {
                    assert_eq!(contents.as_deref(), old, "{context}: the old file changed");
                }
                // The next start removes what the failed cleanup left.
                let present = usize::from(contents.is_some());
                let left = names(dir.path()).len() - present;
                assert_eq!(
                    penin_store::remove_stale_temporaries(&path).unwrap(),
                    left,
                    "{context}"
                );
                assert_eq!(
                    names(dir.path()).len(),
                    present,
                    "{context}: a temporary remains"
                );
                // The fault clears: the next save succeeds.
                fs.clear();
                save(&fs, &path, &new).unwrap_or_else(|error| panic!("{context}, then: {error}"));
                assert_eq!(std::fs::read(&path).unwrap(), new, "{context}");
            }
        }
    }
    println!("lasting faults injected: {injected}");
}

#[test]
fn new_directories_are_synced_into_their_parents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.json");
    let fs = FaultyFs::new();
    save(&fs, &path, b"{}").unwrap();
    let ops = fs.ops();
    // `a/b`, `a` and the temporary directory are looked at (through the `Fs`) to find which
    // directories the save creates; then `a` is synced into the temporary directory, `b`
    // into `a`, and the state's rename into `b`.
    assert_eq!(
        ops[..6],
        [
            Op::SymlinkMetadata,
            Op::SymlinkMetadata,
            Op::SymlinkMetadata,
            Op::CreateDirAll,
            Op::SyncDir,
            Op::SyncDir
        ],
        "the new directories are synced before the temporary exists: {ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|op| **op == Op::SyncDir).count(),
        3,
        "{ops:?}"
    );

    // A failure to sync them fails the save before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.json");
    let fs = FaultyFs::failing_op(Op::SyncDir, 1, Fault::EIO);
    let error = save(&fs, &path, b"{}").unwrap_err();
    assert_eq!(error.step(), Some(Step::SyncDirectory));
    assert_eq!(error.path(), Some(dir.path()));
    assert!(!path.exists());
    assert_eq!(names(&dir.path().join("a/b")), Vec::<String>::new());
}

#[test]
fn a_failed_look_for_missing_directories_fails_the_save_before_it_creates_any() {
    // The second look is at `a`, after `a/b` was not found.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.json");
    let fs = FaultyFs::failing_op(Op::SymlinkMetadata, 2, Fault::EIO);
    let error = save(&fs, &path, b"{}").unwrap_err();
    assert_eq!(error.step(), Some(Step::Metadata));
    assert_eq!(error.path(), Some(dir.path().join("a").as_path()));
    assert_eq!(error.io_error().unwrap().raw_os_error(), Some(5));
    assert_eq!(names(dir.path()), Vec::<String>::new());
    assert_eq!(fs.ops(), [Op::SymlinkMetadata, Op::SymlinkMetadata]);
}
