//! Reading a whole file, telling a first run (no file) from a file that cannot be read.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result, Step};

/// Opens the file at `path` for reading, or returns `Ok(None)` if there is none (a first
/// run), with the checks of [`read`]: a path that is not a regular file is
/// [`Error::NotRegularFile`], checked before opening (a named pipe does not block) and again
/// on the open file.
pub fn open(path: impl AsRef<Path>) -> Result<Option<File>> {
    Ok(open_checked(path.as_ref())?.map(|(file, _)| file))
}

/// [`open`], with the open file's metadata.
fn open_checked(path: &Path) -> Result<Option<(File, Metadata)>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io(Step::Metadata, path)(error)),
    };
    if !metadata.is_file() {
        return Err(Error::not_regular_file(path, &metadata));
    }
    let file = match File::open(path) {
        Ok(file) => file,
        // Removed since the metadata was read: as if it had never been there.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::io(Step::Open, path)(error)),
    };
    // The open file's own metadata: the path may have been replaced in between.
    let metadata = file.metadata().map_err(Error::io(Step::Metadata, path))?;
    if !metadata.is_file() {
        return Err(Error::not_regular_file(path, &metadata));
    }
    Ok(Some((file, metadata)))
}

/// Reads the whole file at `path`, or returns `Ok(None)` if there is none (a first run).
///
/// A path that exists but is not a regular file (a directory, a named pipe) is
/// [`Error::NotRegularFile`]; this is checked before the file is opened, so a named pipe
/// does not block the read. Any other failure, permission denied included, is [`Error::Io`]
/// naming the path. The bytes are read into one allocation of the file's size.
pub fn read(path: impl AsRef<Path>) -> Result<Option<Vec<u8>>> {
    let path = path.as_ref();
    let Some((mut file, metadata)) = open_checked(path)? else {
        return Ok(None);
    };
    // A length beyond the address space cannot be allocated anyway; start empty and let the
    // reservation below fail.
    let len = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|error| {
        Error::io(Step::Read, path)(io::Error::new(io::ErrorKind::OutOfMemory, error))
    })?;
    file.read_to_end(&mut bytes)
        .map_err(Error::io(Step::Read, path))?;
    Ok(Some(bytes))
}

// The tests check unix permission bits throughout.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::testutil::set_mode;
    use std::fs;

    #[test]
    fn a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path().join("state.json")).unwrap(), None);
        assert_eq!(
            read(dir.path().join("no/such/dir/state.json")).unwrap(),
            None
        );
    }

    #[test]
    fn reads_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        for contents in [Vec::new(), b"x".to_vec(), vec![0xff; 70_000]] {
            fs::write(&path, &contents).unwrap();
            let bytes = read(&path).unwrap().unwrap();
            assert_eq!(bytes, contents);
            assert_eq!(
                bytes.capacity(),
                contents.len(),
                "one allocation of the file's size"
            );
        }
    }

    #[test]
    fn a_directory_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let error = read(dir.path()).unwrap_err();
        assert!(matches!(
            error,
            Error::NotRegularFile {
                found: "a directory",
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            format!(
                "{} is a directory, not a regular file",
                dir.path().display()
            )
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&path).status();
        if !matches!(status, Ok(status) if status.success()) {
            let reason = match status {
                Ok(status) => format!("mkfifo failed ({status})"),
                Err(error) => format!("mkfifo cannot run: {error}"),
            };
            penin_testkit::skip(
                "read::tests::a_named_pipe_is_refused_without_blocking",
                &reason,
            );
            return;
        }
        let error = read(&path).unwrap_err();
        assert!(
            matches!(
                error,
                Error::NotRegularFile {
                    found: "a named pipe",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_path_through_a_file_is_an_error_not_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let error = read(file.join("state.json")).unwrap_err();
        assert_eq!(error.step(), Some(Step::Metadata));
        assert_eq!(error.path(), Some(file.join("state.json").as_path()));
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_the_path() {
        // As root, the check runs as nobody in a child process.
        if penin_testkit::rerun_unprivileged(
            "read::tests::an_unreadable_file_is_an_error_naming_the_path",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{}").unwrap();
        set_mode(&path, 0o000);
        let error = read(&path).unwrap_err();
        assert_eq!(error.step(), Some(Step::Open));
        assert_eq!(
            error.io_error().unwrap().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(error.to_string(), format!("cannot open {}", path.display()));
    }
}
