//! A power loss after each call of a save, simulated with `CrashFs`: every durable image it
//! could leave holds, at the target, the old bytes or the new ones, whole (never a mix,
//! never nothing where there was a file), and the new ones once the save has returned `Ok`.
//!
//! One save per case is enough: the images after call `k` depend only on calls 1 to `k`, and
//! a power loss after call `k` stops everything after it. The images are written out and
//! read back with `penin_store::read`, after `remove_stale_temporaries`, as a restart does.
#![cfg(unix)]

use std::io::Write;
use std::path::{Path, PathBuf};

use penin_store::Durability;
use penin_store::testing::{CrashFs, Op};

/// The bytes of the existing file.
fn old_bytes() -> Vec<u8> {
    (0..600_000_u32)
        .map(|i| b"old state "[i as usize % 10])
        .collect()
}

/// The bytes of the save: more than the 256 KiB write buffer, so several writes happen.
fn new_bytes() -> Vec<u8> {
    (0..700_000_u32).map(|i| (i % 251) as u8).collect()
}

/// What the images of one save held.
#[derive(Debug, Default)]
struct Report {
    /// The calls the save made.
    ops: Vec<Op>,
    /// How many images were checked, over all crash points.
    images: usize,
    /// How many held the old bytes, the new bytes, no file.
    old: usize,
    new: usize,
    missing: usize,
    /// Whether an image right after the rename held what was there before: the model drops
    /// an unsynced rename, so the test explores that case.
    rename_dropped: bool,
    /// Each image that breaks the guarantee: the crash point (the number of calls made),
    /// and a text naming the point, the image and what is wrong.
    violations: Vec<(usize, String)>,
}

/// Saves `new` at `path` (under `root`, holding `old` at `path` if given) through a
/// `CrashFs`, then checks every image of a power loss after every call of the save.
fn save_and_crash(
    root: &Path,
    path: &Path,
    old: Option<&[u8]>,
    new: &[u8],
    durability: Durability,
) -> Report {
    if let Some(old) = old {
        std::fs::write(path, old).unwrap();
    }
    let fs = CrashFs::at(root).unwrap();
    penin_store::write_atomic_in(&fs, path, durability, |w| {
        for piece in new.chunks(100_000) {
            w.write_all(piece)?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), new, "the save itself failed");

    let relative = path.strip_prefix(root).unwrap();
    let ops = fs.ops();
    let calls = ops.len();
    let rename = ops.iter().position(|op| *op == Op::Rename).unwrap() + 1;
    let mut report = Report {
        ops: ops.clone(),
        ..Report::default()
    };
    for call in 0..=calls {
        let point = match call {
            0 => "before the first call".to_owned(),
            n if n == calls => format!(
                "after call {n} ({:?}), the last: the save returned Ok",
                ops[n - 1]
            ),
            n => format!("after call {n} ({:?})", ops[n - 1]),
        };
        let images = fs.images_after(call).unwrap();
        for (i, image) in images.iter().enumerate() {
            report.images += 1;
            let scratch = tempfile::tempdir().unwrap();
            image.materialise(scratch.path()).unwrap();
            let target = scratch.path().join(relative);
            let mut problems = Vec::new();
            match penin_store::read(&target) {
                Ok(Some(bytes)) if bytes == new => report.new += 1,
                Ok(Some(bytes)) if Some(&bytes[..]) == old => {
                    report.old += 1;
                    report.rename_dropped |= call == rename;
                    if call == calls {
                        problems.push(
                            "the target holds the old bytes after the save returned Ok".to_owned(),
                        );
                    }
                }
                Ok(None) if old.is_none() => {
                    report.missing += 1;
                    report.rename_dropped |= call == rename;
                    if call == calls {
                        problems
                            .push("the target is missing after the save returned Ok".to_owned());
                    }
                }
                Ok(None) => {
                    problems.push("the target is missing, where the old file was".to_owned());
                }
                Ok(Some(bytes)) => problems.push(format!(
                    "the target holds {} bytes, neither the old nor the new ones{}",
                    bytes.len(),
                    if new.starts_with(&bytes) {
                        " (a prefix of the new ones)"
                    } else {
                        ""
                    }
                )),
                Err(error) => problems.push(format!("the target is unreadable: {error}")),
            }
            // A restart removes the leftover temporaries and finds the target alone.
            penin_store::remove_stale_temporaries(&target).unwrap();
            let dir = target.parent().unwrap();
            let left: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .filter(|name| *name != relative.file_name().unwrap().to_string_lossy())
                        .collect()
                })
                .unwrap_or_default();
            if !left.is_empty() {
                problems.push(format!("a restart leaves beside the target {left:?}"));
            }
            for problem in problems {
                report.violations.push((
                    call,
                    format!(
                        "crash {point}, image {} of {}: {problem}\n    image: {image}",
                        i + 1,
                        images.len()
                    ),
                ));
            }
        }
    }
    report
}

/// Fails with the first violation at each crash point that has any, if there are any.
fn assert_no_violations(report: &Report) {
    let mut shown: Vec<&str> = Vec::new();
    let mut last_point = None;
    for (point, text) in &report.violations {
        if last_point != Some(point) {
            shown.push(text);
            last_point = Some(point);
        }
    }
    assert!(
        report.violations.is_empty(),
        "{} of {} images break the guarantee; the first at each crash point:\n{}\ncalls of the save: {:?}",
        report.violations.len(),
        report.images,
        shown.join("\n"),
        report.ops
    );
}

#[test]
fn a_power_loss_during_a_save_over_an_old_file_leaves_the_old_or_the_new_bytes() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("state.json");
    let (old, new) = (old_bytes(), new_bytes());
    let report = save_and_crash(root.path(), &path, Some(&old), &new, Durability::Full);
    println!(
        "{} calls, {} images: {} old, {} new, {} violations",
        report.ops.len(),
        report.images,
        report.old,
        report.new,
        report.violations.len()
    );
    assert_no_violations(&report);
    let writes = report.ops.iter().filter(|op| **op == Op::Write).count();
    assert!(writes >= 3, "{:?}", report.ops);
    assert!(report.old > 0 && report.new > 0, "{report:?}");
    assert!(
        report.rename_dropped,
        "no image dropped the unsynced rename: the model explores too little"
    );
}

#[test]
fn a_power_loss_during_a_first_save_into_new_directories_leaves_nothing_or_the_new_bytes() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("memory/penin/state.json");
    let new = new_bytes();
    let report = save_and_crash(root.path(), &path, None, &new, Durability::Full);
    println!(
        "{} calls, {} images: {} missing, {} new, {} violations",
        report.ops.len(),
        report.images,
        report.missing,
        report.new,
        report.violations.len()
    );
    assert_no_violations(&report);
    assert_eq!(
        report.ops.iter().filter(|op| **op == Op::SyncDir).count(),
        3,
        "{:?}",
        report.ops
    );
    assert!(report.missing > 0 && report.new > 0, "{report:?}");
    assert!(
        report.rename_dropped,
        "no image dropped the unsynced rename: the model explores too little"
    );
}

/// The same check catches a save that does not sync: the test above can fail.
#[test]
fn a_save_without_fsyncs_is_caught() {
    for old in [Some(old_bytes()), None] {
        let root = tempfile::tempdir().unwrap();
        let path: PathBuf = root.path().join("new/state.json");
        if old.is_some() {
            std::fs::create_dir(root.path().join("new")).unwrap();
        }
        let new = new_bytes();
        let report = save_and_crash(root.path(), &path, old.as_deref(), &new, Durability::NoSync);
        assert!(
            report
                .violations
                .iter()
                .any(|(_, v)| v.contains(" after the save returned Ok")),
            "old file {}: {report:?}",
            old.is_some()
        );
        if old.is_some() {
            assert!(
                report
                    .violations
                    .iter()
                    .any(|(_, v)| v.contains("neither the old nor the new ones (a prefix")),
                "{report:?}"
            );
        }
    }
}
