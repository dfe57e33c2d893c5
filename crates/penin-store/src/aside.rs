//! Moving a file aside, so that a fresh start keeps what it replaces.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic::{file_name, parent_dir};
use crate::error::{Error, Result, Step};
use crate::fs::{Fs, RealFs};

/// How many numbered names to try before giving up.
const NAME_ATTEMPTS: u32 = 10_000;

/// Renames the file at `path` to `{path}.{suffix}` and returns the new path; if that name is
/// taken, to `{path}.{suffix}.1`, `{path}.{suffix}.2`, and so on. An existing file is never
/// overwritten.
///
/// Used by a fresh start to keep a file that cannot be loaded: `state.json` becomes
/// `state.json.corrupt`. The move is made durable (the directory is synced) before this
/// returns. The suffix must be non-empty and hold no path separator.
///
/// The new name is claimed with a hard link, which fails rather than replace a file, and the
/// old name is then removed; a crash in between leaves both names on the same file. Where
/// hard links are not available, the name is checked and then renamed to, which is safe while
/// no other process creates files of that name.
pub fn move_aside(path: impl AsRef<Path>, suffix: &str) -> Result<PathBuf> {
    let path = path.as_ref();
    if suffix.is_empty() || suffix.contains(std::path::is_separator) {
        return Err(Error::InvalidSuffix {
            suffix: suffix.to_owned(),
        });
    }
    file_name(path)?;
    let mut base = OsString::from(path.as_os_str());
    base.push(".");
    base.push(suffix);
    for number in 0..NAME_ATTEMPTS {
        let mut candidate = base.clone();
        if number > 0 {
            candidate.push(format!(".{number}"));
        }
        let candidate = PathBuf::from(candidate);
        if claim(path, &candidate)? {
            let dir = parent_dir(path);
            RealFs
                .sync_dir(dir)
                .map_err(Error::io(Step::SyncDirectory, dir))?;
            return Ok(candidate);
        }
    }
    Err(Error::io(Step::MoveAside, path)(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every numbered name is taken",
    )))
}

/// Moves `path` to `candidate` unless that exists; returns whether it did.
fn claim(path: &Path, candidate: &Path) -> Result<bool> {
    match std::fs::hard_link(path, candidate) {
        Ok(()) => {
            std::fs::remove_file(path).map_err(Error::io(Step::Remove, path))?;
            Ok(true)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            Err(Error::io(Step::MoveAside, path)(error))
        }
        // No hard links here (some file systems, or `path` is a directory).
        Err(_) => match std::fs::symlink_metadata(candidate) {
            Ok(_) => Ok(false),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                std::fs::rename(path, candidate).map_err(Error::io(Step::MoveAside, path))?;
                Ok(true)
            }
            Err(error) => Err(Error::io(Step::Metadata, candidate)(error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn moves_to_the_suffixed_name_then_numbered_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (round, expected) in [
            "state.json.corrupt",
            "state.json.corrupt.1",
            "state.json.corrupt.2",
        ]
        .into_iter()
        .enumerate()
        {
            fs::write(&path, format!("round {round}")).unwrap();
            let moved = move_aside(&path, "corrupt").unwrap();
            assert_eq!(moved, dir.path().join(expected));
            assert!(!path.exists());
        }
        for (round, name) in [
            "state.json.corrupt",
            "state.json.corrupt.1",
            "state.json.corrupt.2",
        ]
        .into_iter()
        .enumerate()
        {
            let contents = fs::read_to_string(dir.path().join(name)).unwrap();
            assert_eq!(contents, format!("round {round}"), "{name} was overwritten");
        }
    }

    #[test]
    fn never_overwrites_a_file_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, "current").unwrap();
        fs::write(dir.path().join("s.old"), "precious").unwrap();
        fs::create_dir(dir.path().join("s.old.1")).unwrap();
        let moved = move_aside(&path, "old").unwrap();
        assert_eq!(moved, dir.path().join("s.old.2"));
        assert_eq!(fs::read_to_string(&moved).unwrap(), "current");
        assert_eq!(
            fs::read_to_string(dir.path().join("s.old")).unwrap(),
            "precious"
        );
    }

    #[test]
    fn a_directory_is_moved_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::create_dir(&path).unwrap();
        let moved = move_aside(&path, "bad").unwrap();
        assert!(moved.is_dir());
        assert!(!path.exists());
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing");
        let error = move_aside(&path, "corrupt").unwrap_err();
        assert_eq!(error.step(), Some(Step::MoveAside));
        assert_eq!(
            error.to_string(),
            format!("cannot move aside {}", path.display())
        );
        for suffix in ["", "a/b"] {
            let error = move_aside(&path, suffix).unwrap_err();
            assert!(matches!(error, Error::InvalidSuffix { .. }), "{error}");
        }
        assert!(matches!(
            move_aside("/", "x"),
            Err(Error::NoFileName { .. })
        ));
    }
}
