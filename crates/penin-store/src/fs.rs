//! The file-system calls that durability depends on, behind a trait so that tests can fail
//! each of them and simulate a power loss after each of them: [`RealFs`] makes the calls; the
//! test doubles are in the `testing` module (cargo feature `testing`).

use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Write};
use std::path::Path;

/// The file-system calls of a durable replace.
///
/// Each method is one call whose failure the replace must survive; the replace makes no other
/// file-system call, so a test that fails each call in turn covers every step, and a test
/// that simulates a power loss after each call covers every moment of a save.
///
/// `Sync` because a save may make its early flushes ([`Fs::sync_data`]) from a second thread.
pub trait Fs: Sync {
    /// Creates `dir` and its missing parents; new directories get mode 0700 on unix.
    /// An existing directory is left as it is.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Reads the metadata of `path`, following symbolic links.
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Reads the metadata of `path` itself, not following a symbolic link: whether there is
    /// an entry of that name at all.
    fn symlink_metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Creates a new file for writing, failing with [`io::ErrorKind::AlreadyExists`] if
    /// `path` exists (`O_EXCL`). `mode` is its permission bits on unix.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File>;
    /// Sets the permissions of an open file.
    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()>;
    /// Writes some of `buf` to `file` and says how much, as [`Write::write`].
    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize>;
    /// Flushes the file's data and metadata to stable storage (`fsync`).
    fn sync(&self, file: &File) -> io::Result<()>;
    /// Opens a second handle to the same open file, sharing its cursor (`dup`).
    fn try_clone(&self, file: &File) -> io::Result<File>;
    /// Flushes the file's data, and the metadata needed to read it back such as its size, to
    /// stable storage (`fdatasync`).
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Flushes the directory's entries to stable storage, so that a rename in it survives a
    /// crash. Does nothing where directories cannot be synced (outside unix).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Opens an existing file for reading and appending (`O_APPEND`): every write goes to its
    /// end. Fails with [`io::ErrorKind::NotFound`] if there is no such file.
    fn open_append(&self, path: &Path) -> io::Result<File>;
    /// Cuts an open file to `len` bytes (`ftruncate`), as when a torn last record is cut off.
    /// Durable only after a [`Fs::sync`] or [`Fs::sync_data`] of the file.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()>;
}

/// A reference to a file system is one too, so that a caller can lend its double.
impl<T: Fs + ?Sized> Fs for &T {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        (**self).create_dir_all(dir)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        (**self).metadata(path)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<Metadata> {
        (**self).symlink_metadata(path)
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        (**self).create_new(path, mode)
    }

    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()> {
        (**self).set_permissions(file, permissions)
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize> {
        (**self).write(file, buf)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        (**self).sync(file)
    }

    fn try_clone(&self, file: &File) -> io::Result<File> {
        (**self).try_clone(file)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        (**self).sync_data(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (**self).rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        (**self).sync_dir(dir)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        (**self).remove(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        (**self).open_append(path)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        (**self).set_len(file, len)
    }
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealFs;

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        fs::metadata(path)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<Metadata> {
        fs::symlink_metadata(path)
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        options.open(path)
    }

    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()> {
        file.set_permissions(permissions)
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize> {
        file.write(buf)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn try_clone(&self, file: &File) -> io::Result<File> {
        file.try_clone()
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        return File::open(dir)?.sync_all();
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        fs::OpenOptions::new().read(true).append(true).open(path)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn real_fs_creates_with_the_given_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        RealFs.create_dir_all(&nested).unwrap();
        for d in [dir.path().join("a"), nested.clone()] {
            assert_eq!(
                fs::metadata(d).unwrap().permissions().mode() & 0o7777,
                0o700
            );
        }
        let file = nested.join("f");
        RealFs.create_new(&file, 0o600).unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        let error = RealFs.create_new(&file, 0o600).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        RealFs.sync_dir(&nested).unwrap();
    }
}
