use std::fmt;
use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};

/// A result whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error storing or loading bytes.
///
/// Every variant names the path it concerns; an I/O failure also names the [`Step`] that
/// failed, so `cannot sync /data/.state.json.penin-tmp.41.0` tells apart a full disk while
/// writing from a failing device at fsync time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("cannot {step} {}", path.display())]
    Io {
        /// What was being done.
        step: Step,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the operating system (or the caller's writer) reported.
        #[source]
        source: io::Error,
    },
    /// The path names a directory, a named pipe or another thing that is not a regular file.
    #[error("{} is {found}, not a regular file", path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead, such as `a directory`.
        found: &'static str,
    },
    /// The path ends in `..` or is a root, so it names no file.
    #[error("{} does not name a file", path.display())]
    NoFileName {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the lock of this state: it is that process's to write.
    #[error("{} is locked by another penin process (lock file {})", path.display(), lock.display())]
    Locked {
        /// The state file.
        path: PathBuf,
        /// The lock file beside it.
        lock: PathBuf,
    },
    /// A suffix for [`move_aside`](crate::move_aside) is empty or holds a path separator.
    #[error("invalid suffix {suffix:?}: it must be non-empty and hold no path separator")]
    InvalidSuffix {
        /// The suffix given.
        suffix: String,
    },
}

impl Error {
    /// The path the error concerns, if it has one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::NotRegularFile { path, .. }
            | Self::NoFileName { path }
            | Self::Locked { path, .. } => Some(path),
            Self::InvalidSuffix { .. } => None,
        }
    }

    /// The step that failed, for an I/O error.
    #[must_use]
    pub fn step(&self) -> Option<Step> {
        match self {
            Self::Io { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// The underlying I/O error, if there is one.
    #[must_use]
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The error for `path`, which is not a regular file but what `metadata` says.
    pub(crate) fn not_regular_file(path: &Path, metadata: &Metadata) -> Self {
        let file_type = metadata.file_type();
        let found = if file_type.is_dir() {
            "a directory"
        } else {
            describe_special(file_type)
        };
        Self::NotRegularFile {
            path: path.to_path_buf(),
            found,
        }
    }

    /// A closure that wraps an [`io::Error`] with the step and path, for `map_err`.
    pub(crate) fn io(step: Step, path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(unix)]
fn describe_special(file_type: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn describe_special(_: FileType) -> &'static str {
    "a special file"
}

/// A step of storing or loading, named in [`Error::Io`].
///
/// Displayed as a verb phrase that reads before the path: `cannot {step} {path}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Creating the parent directories of a file.
    CreateDirectory,
    /// Reading a file's metadata (its kind, size and permissions).
    Metadata,
    /// Creating the temporary file beside the target.
    CreateTemporary,
    /// Giving the temporary file the target's permissions.
    SetPermissions,
    /// Writing the bytes to the temporary file.
    Write,
    /// Flushing the temporary file to stable storage (fsync).
    Sync,
    /// Renaming the temporary file over the target.
    Rename,
    /// Flushing the directory entry of the rename to stable storage (fsync of the directory).
    SyncDirectory,
    /// Opening a file for reading.
    Open,
    /// Reading a file.
    Read,
    /// Listing a directory.
    ListDirectory,
    /// Removing a file.
    Remove,
    /// Moving a file aside under a new name.
    MoveAside,
    /// Opening or locking the lock file beside a state.
    Lock,
    /// What the caller of [`write_atomic_staged_in`](crate::write_atomic_staged_in) does
    /// with the complete, synced temporary before it is renamed over the file.
    Stage,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateDirectory => "create directory",
            Self::Metadata => "read metadata of",
            Self::CreateTemporary => "create temporary file",
            Self::SetPermissions => "set permissions of",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rename => "rename temporary file over",
            Self::SyncDirectory => "sync directory",
            Self::Open => "open",
            Self::Read => "read",
            Self::ListDirectory => "list directory",
            Self::Remove => "remove",
            Self::MoveAside => "move aside",
            Self::Lock => "lock",
            Self::Stage => "prepare the replacement of",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_step_and_path_without_repeating_the_source() {
        let cases = [
            (
                Step::CreateDirectory,
                "/d/a",
                "cannot create directory /d/a",
            ),
            (
                Step::Sync,
                "/d/.s.penin-tmp.1.0",
                "cannot sync /d/.s.penin-tmp.1.0",
            ),
            (
                Step::Rename,
                "/d/s",
                "cannot rename temporary file over /d/s",
            ),
            (Step::SyncDirectory, "/d", "cannot sync directory /d"),
            (Step::Metadata, "/d/s", "cannot read metadata of /d/s"),
        ];
        for (step, path, expected) in cases {
            let error = Error::io(step, Path::new(path))(io::Error::from_raw_os_error(28));
            assert_eq!(error.to_string(), expected);
            assert_eq!(error.step(), Some(step));
            assert_eq!(error.path(), Some(Path::new(path)));
            assert_eq!(error.io_error().and_then(io::Error::raw_os_error), Some(28));
        }
    }

    #[test]
    fn other_messages() {
        let error = Error::NotRegularFile {
            path: PathBuf::from("/d"),
            found: "a directory",
        };
        assert_eq!(error.to_string(), "/d is a directory, not a regular file");
        assert_eq!(error.step(), None);
        let error = Error::NoFileName {
            path: PathBuf::from("/d/.."),
        };
        assert_eq!(error.to_string(), "/d/.. does not name a file");
        let error = Error::InvalidSuffix {
            suffix: "a/b".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "invalid suffix \"a/b\": it must be non-empty and hold no path separator"
        );
        assert_eq!(error.path(), None);
    }
}
