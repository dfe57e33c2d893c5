//! A durable save large enough to start early flushes on a second thread writes exactly the
//! bytes given, as a small one does.

use std::io::Write;

#[test]
fn a_large_durable_save_with_early_flushes_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // 40 MiB: two early flushes at 16 MiB each, written in pieces as an encoder does.
    let bytes: Vec<u8> = (0..40_u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    penin_store::write_atomic_with(&path, |w| {
        for piece in bytes.chunks(300_000) {
            w.write_all(piece)?;
        }
        Ok(())
    })
    .unwrap();
    assert!(std::fs::read(&path).unwrap() == bytes);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"]);
}
