//! [`FaultyFs`]: the real file system, with the call of your choice failing.

use std::fs::{File, Metadata, Permissions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Op;
use crate::fs::{Fs, RealFs};

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
/// fails a chosen call with a chosen error, once or from then on.
///
/// The failing call is chosen by its number among all calls ([`FaultyFs::failing`]) or among
/// the calls of one method ([`FaultyFs::failing_op`]). The second is the one to use for
/// [`Fs::sync_data`]: a save makes those early flushes from a second thread, so their place
/// among the other calls depends on timing, while their own order does not.
///
/// ```
/// use std::io::Write;
/// use penin_store::{Durability, Step};
/// use penin_store::testing::{Fault, FaultyFs, Op};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json");
/// // The first write of the save finds the disk full.
/// let fs = FaultyFs::failing_op(Op::Write, 1, Fault::ENOSPC);
/// let save = |w: &mut penin_store::AtomicWriter<'_>| w.write_all(b"{}");
/// let error = penin_store::write_atomic_in(&fs, &path, Durability::Full, save).unwrap_err();
/// assert_eq!(error.step(), Some(Step::Write));
/// assert_eq!(error.io_error().and_then(std::io::Error::raw_os_error), Some(28));
/// assert!(fs.ops().contains(&Op::Write));
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
    target: Target,
    fault: Fault,
    forever: bool,
    short_write: bool,
    /// Whether the chosen call has come (and failed).
    reached: bool,
}

/// Which call fails first.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The `n`th call of any method, counting from 1.
    Call(usize),
    /// The `n`th call of this method, counting from 1.
    OfOp(Op, usize),
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
        Self::with_plan(Target::Call(call), fault)
    }

    /// A file system whose `nth` call (counting from 1) of the method `op` fails with
    /// `fault`, once.
    #[must_use]
    pub fn failing_op(op: Op, nth: usize, fault: Fault) -> Self {
        Self::with_plan(Target::OfOp(op, nth), fault)
    }

    fn with_plan(target: Target, fault: Fault) -> Self {
        let plan = Plan {
            target,
            fault,
            forever: false,
            short_write: false,
            reached: false,
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a log and a plan; a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call and returns the plan if this call is to fail.
    fn enter(&self, op: Op) -> Option<Plan> {
        let mut state = self.lock();
        state.ops.push(op);
        let number = state.ops.len();
        let of_op = state.ops.iter().filter(|&&o| o == op).count();
        let plan = state.plan.as_mut()?;
        let chosen = match plan.target {
            Target::Call(n) => number == n,
            Target::OfOp(target, n) => op == target && of_op == n,
        };
        let fails = chosen || (plan.forever && plan.reached);
        plan.reached |= chosen;
        fails.then_some(*plan)
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

    fn symlink_metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.call(Op::SymlinkMetadata, || RealFs.symlink_metadata(path))
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

    fn try_clone(&self, file: &File) -> io::Result<File> {
        self.call(Op::TryClone, || RealFs.try_clone(file))
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.call(Op::SyncData, || RealFs.sync_data(file))
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

    fn open_append(&self, path: &Path) -> io::Result<File> {
        self.call(Op::OpenAppend, || RealFs.open_append(path))
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.call(Op::SetLen, || RealFs.set_len(file, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_only_the_chosen_call_once() {
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
    fn fails_forever_from_the_chosen_call() {
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
    fn fails_the_nth_call_of_one_method() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::failing_op(Op::SymlinkMetadata, 2, Fault::EIO);
        // Calls of other methods do not count.
        for _ in 0..3 {
            fs.metadata(dir.path()).unwrap();
        }
        fs.symlink_metadata(dir.path()).unwrap();
        let error = fs.symlink_metadata(dir.path()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(5));
        fs.symlink_metadata(dir.path()).unwrap();
        fs.metadata(dir.path()).unwrap();

        // From then on, every call of any method fails.
        let fs = FaultyFs::failing_op(Op::SymlinkMetadata, 1, Fault::EIO).forever();
        fs.metadata(dir.path()).unwrap();
        fs.symlink_metadata(dir.path()).unwrap_err();
        fs.metadata(dir.path()).unwrap_err();
        assert_eq!(fs.ops(), [Op::Metadata, Op::SymlinkMetadata, Op::Metadata]);
    }

    #[test]
    fn short_write_puts_half_the_buffer_on_disk_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let fs = FaultyFs::failing(2, Fault::EIO).short_write();
        let mut file = fs.create_new(&path, 0o600).unwrap();
        let error = fs.write(&mut file, b"abcdef").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(5));
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }

    #[test]
    fn a_clone_shares_the_file_and_a_failed_one_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let fs = FaultyFs::failing_op(Op::TryClone, 2, Fault::EIO);
        let mut file = fs.create_new(&path, 0o600).unwrap();
        let mut clone = fs.try_clone(&file).unwrap();
        assert_eq!(fs.try_clone(&file).unwrap_err().raw_os_error(), Some(5));
        fs.write(&mut file, b"ab").unwrap();
        fs.write(&mut clone, b"cd").unwrap();
        fs.sync_data(&clone).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
        assert_eq!(
            fs.ops(),
            [
                Op::CreateNew,
                Op::TryClone,
                Op::TryClone,
                Op::Write,
                Op::Write,
                Op::SyncData
            ]
        );
    }
}
