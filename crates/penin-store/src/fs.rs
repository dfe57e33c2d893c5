//! The file-system calls that durability depends on, behind a trait so that tests can fail
//! each of them: [`RealFs`] makes the calls, [`FaultyFs`] makes them and fails a chosen one.

use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// The file-system calls of a durable replace.
///
/// Each method is one call whose failure the replace must survive; the replace makes no other
/// file-system call, so a test that fails each call in turn covers every step.
pub trait Fs {
    /// Creates `dir` and its missing parents; new directories get mode 0700 on unix.
    /// An existing directory is left as it is.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Reads the metadata of `path`, following symbolic links.
    fn metadata(&self, path: &Path) -> io::Result<Metadata>;
    /// Creates a new file for writing, failing with [`io::ErrorKind::AlreadyExists`] if
    /// `path` exists (`O_EXCL`). `mode` is its permission bits on unix.
    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File>;
    /// Sets the permissions of an open file.
    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()>;
    /// Writes some of `buf` to `file` and says how much, as [`Write::write`].
    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize>;
    /// Flushes the file's data and metadata to stable storage (`fsync`).
    fn sync(&self, file: &File) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Flushes the directory's entries to stable storage, so that a rename in it survives a
    /// crash. Does nothing where directories cannot be synced (outside unix).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
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
}

/// One call to an [`Fs`], as recorded by [`FaultyFs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Fs::create_dir_all`].
    CreateDirAll,
    /// [`Fs::metadata`].
    Metadata,
    /// [`Fs::create_new`].
    CreateNew,
    /// [`Fs::set_permissions`].
    SetPermissions,
    /// [`Fs::write`].
    Write,
    /// [`Fs::sync`].
    Sync,
    /// [`Fs::rename`].
    Rename,
    /// [`Fs::sync_dir`].
    SyncDir,
    /// [`Fs::remove`].
    Remove,
}

/// The error a [`FaultyFs`] injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// An operating-system error number, as [`io::Error::from_raw_os_error`].
    Os(i32),
    /// An error of this kind with no error number.
    Kind(io::ErrorKind),
}

impl Fault {
    /// No space left on device (`ENOSPC`, 28 on Linux and macOS).
    pub const ENOSPC: Self = Self::Os(28);
    /// Input/output error (`EIO`, 5).
    pub const EIO: Self = Self::Os(5);
    /// Permission denied (`EACCES`, 13).
    pub const EACCES: Self = Self::Os(13);

    fn to_io_error(self) -> io::Error {
        match self {
            Self::Os(code) => io::Error::from_raw_os_error(code),
            Self::Kind(kind) => io::Error::new(kind, "injected fault"),
        }
    }
}

/// A fault-injecting [`Fs`] for tests: it passes every call to [`RealFs`], records it, and
/// fails the `n`th call (counting from 1) with a chosen error, once or from then on.
///
/// It is public, with no cargo feature in the way, so that tests of crates built on this one
/// can break every step of a save too; it is a few dozen lines and costs nothing unused.
///
/// ```
/// use std::io::Write;
/// use penin_store::{Durability, Fault, FaultyFs, Op, Step};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json");
/// // The fourth call of a save of a new file is its first write: the disk is full.
/// let fs = FaultyFs::failing(4, Fault::ENOSPC);
/// let save = |w: &mut penin_store::AtomicWriter<'_>| w.write_all(b"{}");
/// let error = penin_store::write_atomic_in(&fs, &path, Durability::Full, save).unwrap_err();
/// assert_eq!(error.step(), Some(Step::Write));
/// assert_eq!(fs.ops()[3], Op::Write);
/// assert!(!path.exists());
///
/// // Space was freed: the next save succeeds.
/// fs.clear();
/// penin_store::write_atomic_in(&fs, &path, Durability::Full, save)?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FaultyFs {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ops: Vec<Op>,
    plan: Option<Plan>,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    call: usize,
    fault: Fault,
    forever: bool,
    short_write: bool,
}

impl FaultyFs {
    /// A file system that fails nothing and records every call.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A file system whose `call`th call (counting from 1) fails with `fault`, once.
    #[must_use]
    pub fn failing(call: usize, fault: Fault) -> Self {
        let plan = Plan {
            call,
            fault,
            forever: false,
            short_write: false,
        };
        Self {
            state: Mutex::new(State {
                ops: Vec::new(),
                plan: Some(plan),
            }),
        }
    }

    /// Fails every call from the chosen one on, not just that one.
    #[must_use]
    pub fn forever(self) -> Self {
        self.modify_plan(|plan| plan.forever = true)
    }

    /// When a failing call is a write, writes the first half of the buffer to the file
    /// before failing, as a disk that fills in the middle of a write.
    #[must_use]
    pub fn short_write(self) -> Self {
        self.modify_plan(|plan| plan.short_write = true)
    }

    /// The calls made so far, in order, failed ones included.
    #[must_use]
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// Stops failing calls (the disk was freed, the device came back) and forgets the calls
    /// made so far.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    fn modify_plan(self, change: impl FnOnce(&mut Plan)) -> Self {
        if let Some(plan) = self.lock().plan.as_mut() {
            change(plan);
        }
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a log and a plan; a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call and returns the plan if this call is to fail.
    fn enter(&self, op: Op) -> Option<Plan> {
        let mut state = self.lock();
        state.ops.push(op);
        let number = state.ops.len();
        state
            .plan
            .filter(|plan| number == plan.call || (plan.forever && number > plan.call))
    }

    fn call<T>(&self, op: Op, real: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        match self.enter(op) {
            Some(plan) => Err(plan.fault.to_io_error()),
            None => real(),
        }
    }
}

impl Fs for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.call(Op::CreateDirAll, || RealFs.create_dir_all(dir))
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.call(Op::Metadata, || RealFs.metadata(path))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        self.call(Op::CreateNew, || RealFs.create_new(path, mode))
    }

    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()> {
        self.call(Op::SetPermissions, || {
            RealFs.set_permissions(file, permissions)
        })
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize> {
        match self.enter(Op::Write) {
            Some(plan) => {
                if plan.short_write {
                    // Best effort: the injected error is what the caller must see.
                    let _ = file.write_all(&buf[..buf.len() / 2]);
                }
                Err(plan.fault.to_io_error())
            }
            None => RealFs.write(file, buf),
        }
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        self.call(Op::Sync, || RealFs.sync(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.call(Op::Rename, || RealFs.rename(from, to))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.call(Op::SyncDir, || RealFs.sync_dir(dir))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.call(Op::Remove, || RealFs.remove(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulty_fs_fails_only_the_chosen_call_once() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::failing(2, Fault::ENOSPC);
        fs.create_dir_all(&dir.path().join("a")).unwrap();
        let error = fs.create_dir_all(&dir.path().join("b")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28));
        assert!(
            !dir.path().join("b").exists(),
            "a failed call must not reach the disk"
        );
        fs.create_dir_all(&dir.path().join("c")).unwrap();
        assert_eq!(fs.ops(), [Op::CreateDirAll; 3]);
    }

    #[test]
    fn faulty_fs_fails_forever_from_the_chosen_call() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::failing(1, Fault::Kind(io::ErrorKind::PermissionDenied)).forever();
        for _ in 0..3 {
            let error = fs.metadata(dir.path()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        }
        fs.clear();
        assert!(fs.metadata(dir.path()).unwrap().is_dir());
        assert_eq!(fs.ops(), [Op::Metadata]);
    }

    #[test]
    fn short_write_puts_half_the_buffer_on_disk_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let fs = FaultyFs::failing(2, Fault::EIO).short_write();
        let mut file = fs.create_new(&path, 0o600).unwrap();
        let error = fs.write(&mut file, b"abcdef").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(5));
        assert_eq!(fs::read(&path).unwrap(), b"abc");
    }

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
