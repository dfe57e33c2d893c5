//! Helpers shared by the unit tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process is held to file permissions: root (or a process with
/// `CAP_DAC_OVERRIDE`) can open a file of mode 0000, and permission tests mean nothing then.
pub fn permissions_are_enforced() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked");
    fs::write(&path, "x").unwrap();
    set_mode(&path, 0o000);
    fs::File::open(&path).is_err()
}
