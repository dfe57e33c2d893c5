//! One writer per state: an advisory lock on a file beside it.
//!
//! The lock file is `.{name}.lock` in the state's directory (`.penin_omega/.state.json.lock`).
//! It is created once (mode 0600) and never removed: removing a lock file lets two processes
//! lock two different files of the same name. The lock is `flock`-style (the standard
//! library's [`File::try_lock`]): the operating system releases it when the process ends,
//! however it ends, so a crash never leaves a state locked. Readers take no lock: a save
//! replaces the file atomically, so they always read one whole state.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, Step};
use crate::fs::{Fs, RealFs};

/// A held lock on a state file; released when dropped.
#[derive(Debug)]
pub struct Lock {
    // Held open for the lock's lifetime: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock of the state at `path`, or fails at once with [`Error::Locked`] when
    /// another process (or another `Lock` in this one) holds it.
    pub fn try_acquire(path: impl AsRef<Path>) -> Result<Lock> {
        let path = path.as_ref();
        let (file, lock) = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Lock {
                _file: file,
                path: lock,
            }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_owned(),
                lock,
            }),
            Err(TryLockError::Error(source)) => Err(Error::Io {
                step: Step::Lock,
                path: lock,
                source,
            }),
        }
    }

    /// Takes the lock of the state at `path`, waiting for whoever holds it.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Lock> {
        let (file, lock) = open(path.as_ref())?;
        file.lock().map_err(|source| Error::Io {
            step: Step::Lock,
            path: lock.clone(),
            source,
        })?;
        Ok(Lock {
            _file: file,
            path: lock,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of the state at `path`.
pub fn lock_path(path: impl AsRef<Path>) -> Result<PathBuf> {
    let path = path.as_ref();
    let name = path.file_name().ok_or_else(|| Error::NoFileName {
        path: path.to_owned(),
    })?;
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    Ok(path.with_file_name(lock_name))
}

fn open(path: &Path) -> Result<(File, PathBuf)> {
    let lock = lock_path(path)?;
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        RealFs.create_dir_all(dir).map_err(|source| Error::Io {
            step: Step::CreateDirectory,
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock).map_err(|source| Error::Io {
        step: Step::Lock,
        path: lock.clone(),
        source,
    })?;
    Ok((file, lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_beside_the_state() {
        assert_eq!(
            lock_path("a/b/state.json").unwrap(),
            Path::new("a/b/.state.json.lock")
        );
        assert_eq!(
            lock_path("state.json").unwrap(),
            Path::new(".state.json.lock")
        );
        assert!(matches!(lock_path("/"), Err(Error::NoFileName { .. })));
    }

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("new/state.json");
        let first = Lock::try_acquire(&state).unwrap();
        assert_eq!(first.path(), dir.path().join("new/.state.json.lock"));
        let err = Lock::try_acquire(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is locked by another penin process (lock file {})",
                state.display(),
                first.path().display()
            )
        );
        drop(first);
        let second = Lock::try_acquire(&state).unwrap();
        assert!(second.path().is_file(), "the lock file stays");
        assert!(!state.exists(), "locking creates no state");
    }

    #[test]
    fn acquire_waits_for_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let held = Lock::try_acquire(&state).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter = {
            let state = state.clone();
            std::thread::spawn(move || {
                let lock = Lock::acquire(&state).unwrap();
                sender.send(()).unwrap();
                drop(lock);
            })
        };
        // The waiter cannot get the lock while it is held...
        assert!(
            receiver
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(held);
        // ...and gets it once released.
        receiver
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap();
        waiter.join().unwrap();
    }
}
