//! The durable atomic replace of a whole file, and the clean-up of its leftovers.
//!
//! A save of `dir/state.json`:
//!
//! 1. creates `dir` and its missing parents (mode 0700 on unix), and fsyncs the parent of each
//!    directory it created;
//! 2. reads the permissions of an existing `state.json` (a new one gets mode 0600);
//! 3. creates `dir/.state.json.penin-tmp.{pid}.{counter}` exclusively, mode 0600, and gives it
//!    the old file's permissions;
//! 4. writes every byte through a 256 KiB buffer, asking a second thread for an early flush
//!    (`fdatasync`) of what is written every 16 MiB;
//! 5. fsyncs the temporary file;
//! 6. renames it over `state.json`;
//! 7. fsyncs `dir`, so that the rename itself survives a power loss.
//!
//! Only then does the save return `Ok`. If a step before the rename fails, the temporary is
//! removed and `state.json` is untouched. A failed fsync is never retried: after a failure
//! the kernel may have dropped the dirty pages and a second fsync could report success for
//! data that never reached the disk, so the caller must start a new save, with a new file.
//!
//! Every file-system call of a save goes through the [`Fs`] trait, the early flushes too, so
//! that a test can fail each one and simulate a power loss after each one.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};

use crate::error::{Error, Result, Step};
use crate::fs::{Fs, RealFs};

/// The size of the write buffer between the caller and the temporary file.
const BUFFER_SIZE: usize = 256 * 1024;

/// The mode of a new state file, and of every temporary file, on unix.
const NEW_FILE_MODE: u32 = 0o600;

/// The part of a temporary file's name after the target's file name.
const TEMPORARY_MARK: &str = ".penin-tmp.";

/// How many names to try when a temporary of the same name is left over from a process that
/// had the same pid.
const NAME_ATTEMPTS: u32 = 64;

/// A durable save asks for an early flush each time this many more bytes are written.
/// (The unit tests pass a smaller figure to [`replace`], so as not to write 16 MiB a test.)
const WRITEBACK_EVERY: usize = 16 << 20;

/// Makes temporary names unique within the process; the pid makes them unique across
/// processes that run at the same time.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How hard a save works to survive a crash of the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Fsync the temporary file before the rename and the directory after it: once the save
    /// returns `Ok`, the new bytes survive a power loss.
    #[default]
    Full,
    /// Skip both fsyncs. The replace is still atomic for other processes and survives a crash
    /// of this process, but after a power loss or kernel crash the file may hold the old bytes
    /// or, on some file systems, none. Meant for benchmarks that compare the writing itself
    /// with writers that do not sync; never for real state.
    NoSync,
}

/// The buffered writer that a [`write_atomic_with`] closure writes the new bytes to.
///
/// Bytes are collected in a 256 KiB buffer and written to the temporary file when it fills,
/// so many small writes cost no system call each.
pub struct AtomicWriter<'a> {
    inner: BufWriter<FsFile<'a>>,
}

impl AtomicWriter<'_> {
    /// Drops the writer without the flush that dropping a `BufWriter` makes: after a failed
    /// write, that would be one more write to a file that is about to be removed.
    fn discard(self) {
        let (_file, _unwritten) = self.inner.into_parts();
    }
}

impl Write for AtomicWriter<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl fmt::Debug for AtomicWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicWriter")
            .field("buffered", &self.inner.buffer().len())
            .finish_non_exhaustive()
    }
}

/// The temporary file, written through the [`Fs`] so that tests can fail the writes.
struct FsFile<'a> {
    fs: &'a dyn Fs,
    file: &'a mut File,
    /// Asks the writeback thread, if any, to start flushing what was written so far.
    writeback: Option<mpsc::SyncSender<()>>,
    /// How many bytes to write between two such requests.
    writeback_every: usize,
    /// Bytes written since the last such request.
    unflushed: usize,
}

impl Write for FsFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.fs.write(self.file, buf)?;
        if let Some(writeback) = &self.writeback {
            self.unflushed += written;
            if self.unflushed >= self.writeback_every {
                self.unflushed = 0;
                match writeback.try_send(()) {
                    // If a flush is still running, this one is skipped: the next one covers it.
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    // The writeback thread ends early only when an early flush failed: the
                    // save is lost, so stop writing. `fill` reports the flush's own error.
                    Err(TrySendError::Disconnected(())) => {
                        return Err(io::Error::other("an early flush failed"));
                    }
                }
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Replaces the file at `path` with `bytes`, durably and atomically.
///
/// Readers see the old file or the new one, never a mix; after `Ok` the new bytes survive a
/// crash. On error the old file is left as it was (but see [`Step::SyncDirectory`] in
/// [`write_atomic_in`]). Missing parent directories are created with mode 0700; a new file
/// gets mode 0600, a replaced one keeps its permissions.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |writer| writer.write_all(bytes))
}

/// Replaces the file at `path` with what `write` writes, durably and atomically, as
/// [`write_atomic`] does; the bytes are streamed through a buffer, never collected whole.
///
/// An error that `write` returns fails the save with [`Step::Write`]; it is the
/// [`source`](std::error::Error::source) of the returned error, so a caller can recover an
/// error of its own that it wrapped in an [`io::Error`].
pub fn write_atomic_with<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut AtomicWriter<'_>) -> io::Result<()>,
{
    write_atomic_in(&RealFs, path, Durability::Full, write)
}

/// Replaces the file at `path` with what `write` writes, through the file system `fs` and with
/// the given `durability`; [`write_atomic_with`] is this with [`RealFs`] and
/// [`Durability::Full`].
///
/// A failure before the rename leaves the old file untouched and removes the temporary. A
/// failure of the final directory sync ([`Step::SyncDirectory`]) comes after the rename:
/// the file then holds the new bytes, whole, but they may not survive a power loss, and the
/// save is reported as failed.
pub fn write_atomic_in<F>(
    fs: &impl Fs,
    path: impl AsRef<Path>,
    durability: Durability,
    write: F,
) -> Result<()>
where
    F: FnOnce(&mut AtomicWriter<'_>) -> io::Result<()>,
{
    replace(
        fs,
        path.as_ref(),
        durability,
        WRITEBACK_EVERY,
        write,
        |_| Ok(()),
    )
}

/// [`write_atomic_in`], with one more step: once the temporary is complete and synced, and
/// before it is renamed over `path`, `stage` is called with the temporary's path. A rename
/// keeps a file's inode, size and modification time, so `stage` can record what the new file
/// will be (another file naming it, say) before it becomes the file at `path`.
///
/// An error from `stage` fails the save with [`Step::Stage`]: the temporary is removed and
/// the old file is left as it was.
pub fn write_atomic_staged_in<F, S>(
    fs: &impl Fs,
    path: impl AsRef<Path>,
    durability: Durability,
    write: F,
    stage: S,
) -> Result<()>
where
    F: FnOnce(&mut AtomicWriter<'_>) -> io::Result<()>,
    S: FnOnce(&Path) -> io::Result<()>,
{
    replace(fs, path.as_ref(), durability, WRITEBACK_EVERY, write, stage)
}

/// [`write_atomic_in`], asking for an early flush every `writeback_every` bytes.
fn replace<F, S>(
    fs: &dyn Fs,
    path: &Path,
    durability: Durability,
    writeback_every: usize,
    write: F,
    stage: S,
) -> Result<()>
where
    F: FnOnce(&mut AtomicWriter<'_>) -> io::Result<()>,
    S: FnOnce(&Path) -> io::Result<()>,
{
    let name = file_name(path)?;
    let dir = parent_dir(path);
    let created = missing_directories(fs, dir)?;
    fs.create_dir_all(dir)
        .map_err(Error::io(Step::CreateDirectory, dir))?;
    if durability == Durability::Full {
        // From the topmost new directory down: each entry is synced once its parent exists.
        for new in created.iter().rev() {
            let parent = parent_dir(new);
            fs.sync_dir(parent)
                .map_err(Error::io(Step::SyncDirectory, parent))?;
        }
    }
    let permissions = match fs.metadata(path) {
        Ok(metadata) if metadata.is_file() => Some(metadata.permissions()),
        Ok(metadata) => return Err(Error::not_regular_file(path, &metadata)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(Error::io(Step::Metadata, path)(error)),
    };
    let (temporary, file) = create_temporary(fs, path, name)?;
    let mut temporary = Temporary {
        fs,
        path: temporary,
        renamed: false,
    };
    fill(
        fs,
        file,
        &temporary.path,
        permissions,
        durability,
        writeback_every,
        write,
    )?;
    stage(&temporary.path).map_err(Error::io(Step::Stage, path))?;
    fs.rename(&temporary.path, path)
        .map_err(Error::io(Step::Rename, path))?;
    temporary.renamed = true;
    if durability == Durability::Full {
        fs.sync_dir(dir)
            .map_err(Error::io(Step::SyncDirectory, dir))?;
    }
    Ok(())
}

/// `dir` and those of its ancestors that do not exist, deepest first: the directories a save
/// into `dir` creates. Their entries in their parents must be made durable too, or a power
/// loss could take a first save away with its directory.
///
/// A dangling symbolic link counts as an existing entry (the creation of `dir` then fails).
/// An error other than "not found" fails the save: without knowing which directories it
/// creates, a save cannot make them durable.
fn missing_directories<'p>(fs: &dyn Fs, dir: &'p Path) -> Result<Vec<&'p Path>> {
    let mut missing = Vec::new();
    for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        match fs.symlink_metadata(ancestor) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => missing.push(ancestor),
            Err(error) => return Err(Error::io(Step::Metadata, ancestor)(error)),
        }
    }
    Ok(missing)
}

/// A temporary file that is removed unless it was renamed, on error and on panic alike.
struct Temporary<'a> {
    fs: &'a dyn Fs,
    path: PathBuf,
    renamed: bool,
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: the error that brought us here is the one to report, and a
            // temporary left behind is removed by `remove_stale_temporaries`.
            let _ = self.fs.remove(&self.path);
        }
    }
}

/// Creates the temporary beside `path`, trying further names while one is taken.
fn create_temporary(fs: &dyn Fs, path: &Path, name: &OsStr) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0;
    loop {
        let number = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temporary_name = temporary_prefix(name);
        temporary_name.push(format!("{pid}.{number}"));
        let temporary = path.with_file_name(temporary_name);
        match fs.create_new(&temporary, NEW_FILE_MODE) {
            Ok(file) => return Ok((temporary, file)),
            Err(error)
                if error.kind() == io::ErrorKind::AlreadyExists && attempt < NAME_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(error) => return Err(Error::io(Step::CreateTemporary, &temporary)(error)),
        }
    }
}

/// Sets the permissions, writes and syncs the temporary, and closes it (by taking `file` by
/// value) before the caller renames or removes it.
fn fill<F>(
    fs: &dyn Fs,
    mut file: File,
    temporary: &Path,
    permissions: Option<Permissions>,
    durability: Durability,
    writeback_every: usize,
    write: F,
) -> Result<()>
where
    F: FnOnce(&mut AtomicWriter<'_>) -> io::Result<()>,
{
    if let Some(permissions) = permissions {
        fs.set_permissions(&file, permissions)
            .map_err(Error::io(Step::SetPermissions, temporary))?;
    }
    // While a large durable save is written, a second thread asks the kernel to flush what
    // is already written (`fdatasync` on a second handle), so the device works while the
    // bytes are still being made and the final fsync has little left to do. Those flushes
    // are only a head start: the final fsync below is what makes the save durable. So a
    // failure to make the second handle is no failure of the save, which goes on without
    // early flushes. If an early flush fails, the save stops writing and fails at its sync
    // step, and the file is not synced again.
    let early = if durability == Durability::Full {
        fs.try_clone(&file).ok()
    } else {
        None
    };
    let (written, early_error) = std::thread::scope(|scope| {
        let (requests, pending) = mpsc::sync_channel::<()>(1);
        let flusher = early.and_then(|clone| {
            std::thread::Builder::new()
                .spawn_scoped(scope, move || {
                    for () in pending {
                        fs.sync_data(&clone)?;
                    }
                    Ok::<(), io::Error>(())
                })
                .ok()
        });
        let mut writer = AtomicWriter {
            inner: BufWriter::with_capacity(
                BUFFER_SIZE,
                FsFile {
                    fs,
                    file: &mut file,
                    writeback: flusher.is_some().then_some(requests),
                    writeback_every,
                    unflushed: 0,
                },
            ),
        };
        let written = write(&mut writer).and_then(|()| writer.inner.flush());
        // Dropping the writer drops the request sender, which ends the flusher's loop.
        writer.discard();
        let early_error = flusher.and_then(|f| {
            f.join()
                .unwrap_or_else(|_| Err(io::Error::other("the writeback thread failed")))
                .err()
        });
        (written, early_error)
    });
    // A failed early flush first: it is why the writes stopped, if they did.
    if let Some(error) = early_error {
        return Err(Error::io(Step::Sync, temporary)(error));
    }
    written.map_err(Error::io(Step::Write, temporary))?;
    if durability == Durability::Full {
        fs.sync(&file).map_err(Error::io(Step::Sync, temporary))?;
    }
    Ok(())
}

/// Removes the temporary files that saves of `path` left behind when they were interrupted
/// (`.{file name}.penin-tmp.{pid}.{counter}` beside it), and returns how many it removed.
///
/// No other file is touched, not even one whose name merely starts the same way. Call it
/// at start-up, while no save of `path` is running: it cannot tell a leftover from the
/// temporary of a save in progress.
pub fn remove_stale_temporaries(path: impl AsRef<Path>) -> Result<usize> {
    let path = path.as_ref();
    let prefix = temporary_prefix(file_name(path)?);
    let dir = parent_dir(path);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(Error::io(Step::ListDirectory, dir)(error)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(Error::io(Step::ListDirectory, dir))?;
        if !is_temporary(&entry.file_name(), &prefix) {
            continue;
        }
        let entry_path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(Error::io(Step::Metadata, &entry_path))?;
        if !file_type.is_file() {
            continue;
        }
        match std::fs::remove_file(&entry_path) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io(Step::Remove, &entry_path)(error)),
        }
    }
    Ok(removed)
}

/// `.{name}.penin-tmp.`, to which a temporary's name adds `{pid}.{counter}`.
fn temporary_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(TEMPORARY_MARK);
    prefix
}

/// Whether `name` is the prefix followed by `{digits}.{digits}`.
fn is_temporary(name: &OsStr, prefix: &OsStr) -> bool {
    let Some(rest) = name
        .as_encoded_bytes()
        .strip_prefix(prefix.as_encoded_bytes())
    else {
        return false;
    };
    let digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    match rest.iter().position(|&byte| byte == b'.') {
        Some(dot) => digits(&rest[..dot]) && digits(&rest[dot + 1..]),
        None => false,
    }
}

/// The file name of `path`, or an error if it has none (`/`, `a/..`).
pub(crate) fn file_name(path: &Path) -> Result<&OsStr> {
    path.file_name().ok_or_else(|| Error::NoFileName {
        path: path.to_path_buf(),
    })
}

/// The directory that holds `path`: its parent, or `.` for a bare file name.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

// The tests check unix permission bits throughout.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::testing::{Fault, FaultyFs, Op};
    use crate::testutil::{mode, set_mode};
    use std::fs;

    #[test]
    fn writes_exact_bytes_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        write_atomic(&path, b"{\n  \"k\": 1\n}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\n  \"k\": 1\n}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);
    }

    #[test]
    fn existing_directories_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("shared");
        fs::create_dir(&parent).unwrap();
        set_mode(&parent, 0o755);
        write_atomic(parent.join("s"), b"x").unwrap();
        assert_eq!(mode(&parent), 0o755);
    }

    #[test]
    fn overwrite_replaces_the_whole_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, vec![b'o'; 100_000]).unwrap();
        set_mode(&path, 0o644);
        write_atomic(&path, b"short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        assert_eq!(mode(&path), 0o644);
        set_mode(&path, 0o440);
        write_atomic(&path, b"read-only for all, still replaceable").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"read-only for all, still replaceable"
        );
        assert_eq!(mode(&path), 0o440);
    }

    #[test]
    fn empty_and_large_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        // Larger than the buffer, in pieces that straddle its boundary.
        let big: Vec<u8> = (0..3 * BUFFER_SIZE + 17).map(|i| (i % 251) as u8).collect();
        write_atomic_with(&path, |w| {
            for piece in big.chunks(10_007) {
                w.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), big);
    }

    #[test]
    fn parent_directory_and_file_name() {
        assert_eq!(parent_dir(Path::new("state.json")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/state.json")), Path::new("d"));
        let error = write_atomic("/tmp/..", b"x").unwrap_err();
        assert!(matches!(error, Error::NoFileName { .. }), "{error}");
    }

    #[test]
    fn a_directory_in_place_of_the_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::create_dir(&path).unwrap();
        let error = write_atomic(&path, b"x").unwrap_err();
        assert!(
            matches!(
                error,
                Error::NotRegularFile {
                    found: "a directory",
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_returns_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        let error = write_atomic_with(&path, |w| {
            w.write_all(b"half of the new")?;
            Err(io::Error::other("encoder gave up"))
        })
        .unwrap_err();
        assert_eq!(error.step(), Some(Step::Write));
        assert_eq!(error.io_error().unwrap().to_string(), "encoder gave up");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_panicking_writer_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        let outcome =
            std::panic::catch_unwind(|| write_atomic_with(&path, |_| panic!("bug in the caller")));
        assert!(outcome.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_calls_of_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let fs = FaultyFs::new();
        let write = |w: &mut AtomicWriter<'_>| w.write_all(b"new");
        write_atomic_in(&fs, &path, Durability::Full, write).unwrap();
        let new_file = [
            Op::SymlinkMetadata,
            Op::CreateDirAll,
            Op::Metadata,
            Op::CreateNew,
            Op::TryClone,
            Op::Write,
            Op::Sync,
            Op::Rename,
            Op::SyncDir,
        ];
        assert_eq!(fs.ops(), new_file);
        fs.clear();
        write_atomic_in(&fs, &path, Durability::Full, write).unwrap();
        let mut existing = new_file.to_vec();
        existing.insert(4, Op::SetPermissions);
        assert_eq!(fs.ops(), existing);
        fs.clear();
        write_atomic_in(&fs, &path, Durability::NoSync, write).unwrap();
        existing.retain(|op| !matches!(op, Op::TryClone | Op::Sync | Op::SyncDir));
        assert_eq!(fs.ops(), existing);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_failed_sync_is_not_retried_and_the_temporary_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        let fs = FaultyFs::failing_op(Op::Sync, 1, Fault::EIO);
        let error =
            write_atomic_in(&fs, &path, Durability::Full, |w| w.write_all(b"new")).unwrap_err();
        assert_eq!(error.step(), Some(Step::Sync));
        let ops = fs.ops();
        assert_eq!(ops.iter().filter(|op| **op == Op::Sync).count(), 1);
        assert_eq!(ops.last(), Some(&Op::Remove));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Bytes for a save that takes several writes through the buffer.
    fn several_buffers() -> Vec<u8> {
        (0..3 * BUFFER_SIZE + 1000)
            .map(|i| (i % 241) as u8)
            .collect()
    }

    /// A durable save of `bytes` through `fs` that asks for an early flush after every write.
    fn save_flushing_early(fs: &FaultyFs, path: &Path, bytes: &[u8]) -> Result<()> {
        replace(
            fs,
            path,
            Durability::Full,
            1,
            |w| {
                for piece in bytes.chunks(100_000) {
                    w.write_all(piece)?;
                }
                Ok(())
            },
            |_| Ok(()),
        )
    }

    #[test]
    fn early_flushes_go_through_the_fs_and_only_for_large_saves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let bytes = several_buffers();
        let fs = FaultyFs::new();
        save_flushing_early(&fs, &path, &bytes).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        let ops = fs.ops();
        assert!(ops.contains(&Op::SyncData), "{ops:?}");
        // The final fsync comes after every early flush, then the rename.
        let sync = ops.iter().position(|op| *op == Op::Sync).unwrap();
        assert_eq!(ops[sync..], [Op::Sync, Op::Rename, Op::SyncDir]);

        // The production interval: a save of under 16 MiB makes no early flush.
        fs.clear();
        write_atomic_in(&fs, &path, Durability::Full, |w| w.write_all(&bytes)).unwrap();
        assert!(!fs.ops().contains(&Op::SyncData), "{:?}", fs.ops());
        assert_eq!(WRITEBACK_EVERY, 16 << 20);
    }

    #[test]
    fn a_failed_early_flush_fails_the_save_at_sync_and_nothing_is_synced_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        for fault in [Fault::EIO, Fault::ENOSPC] {
            let fs = FaultyFs::failing_op(Op::SyncData, 1, fault);
            let error = save_flushing_early(&fs, &path, &several_buffers()).unwrap_err();
            assert_eq!(error.step(), Some(Step::Sync), "{error}");
            let Fault::Os(errno) = fault else {
                unreachable!()
            };
            assert_eq!(error.io_error().unwrap().raw_os_error(), Some(errno));
            let name = error.path().unwrap().file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(".state.json.penin-tmp."), "{error}");
            assert_eq!(fs::read(&path).unwrap(), b"old");
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                1,
                "a temporary is left"
            );
            let ops = fs.ops();
            let failed = ops.iter().position(|op| *op == Op::SyncData).unwrap();
            assert!(
                !ops[failed + 1..]
                    .iter()
                    .any(|op| matches!(op, Op::Sync | Op::SyncData | Op::Rename)),
                "synced or renamed after the failed early flush: {ops:?}"
            );
            assert_eq!(ops.last(), Some(&Op::Remove), "{ops:?}");
        }
    }

    #[test]
    fn a_failed_clone_means_no_early_flushes_and_the_save_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"old").unwrap();
        let bytes = several_buffers();
        let fs = FaultyFs::failing_op(Op::TryClone, 1, Fault::Os(24));
        save_flushing_early(&fs, &path, &bytes).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let ops = fs.ops();
        assert!(!ops.contains(&Op::SyncData), "{ops:?}");
        // Durable all the same: the file is synced before the rename, the directory after.
        let syncs: Vec<Op> = ops
            .iter()
            .copied()
            .filter(|op| matches!(op, Op::Sync | Op::Rename | Op::SyncDir))
            .collect();
        assert_eq!(syncs, [Op::Sync, Op::Rename, Op::SyncDir]);
    }

    #[test]
    fn a_leftover_with_the_same_name_is_stepped_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let fs = FaultyFs::failing_op(Op::CreateNew, 1, Fault::Kind(io::ErrorKind::AlreadyExists));
        write_atomic_in(&fs, &path, Durability::Full, |w| w.write_all(b"x")).unwrap();
        assert_eq!(fs.ops()[3..5], [Op::CreateNew, Op::CreateNew]);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn temporary_names() {
        let prefix = temporary_prefix(OsStr::new("state.json"));
        assert_eq!(prefix, ".state.json.penin-tmp.");
        let cases = [
            (".state.json.penin-tmp.12.0", true),
            (".state.json.penin-tmp.1.99", true),
            (".state.json.penin-tmp.12", false),
            (".state.json.penin-tmp.12.", false),
            (".state.json.penin-tmp..3", false),
            (".state.json.penin-tmp.12.3.4", false),
            (".state.json.penin-tmp.x.3", false),
            (".state.json.penin-tmp.12.0~", false),
            (".other.json.penin-tmp.12.0", false),
            ("state.json", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_temporary(OsStr::new(name), &prefix), expected, "{name}");
        }
    }

    #[test]
    fn remove_stale_temporaries_removes_only_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let ours = [".state.json.penin-tmp.7.0", ".state.json.penin-tmp.123.45"];
        let others = [
            "state.json",
            ".state.json.penin-tmp.7",
            ".state.json.penin-tmp.notes",
            ".other.json.penin-tmp.7.0",
            "state.json.penin-tmp.7.0",
            ".state.json.swp",
        ];
        for name in ours.iter().chain(&others) {
            fs::write(dir.path().join(name), name).unwrap();
        }
        fs::create_dir(dir.path().join(".state.json.penin-tmp.8.0")).unwrap();
        assert_eq!(remove_stale_temporaries(&path).unwrap(), 2);
        for name in ours {
            assert!(!dir.path().join(name).exists(), "{name} is left");
        }
        for name in others {
            assert_eq!(fs::read_to_string(dir.path().join(name)).unwrap(), name);
        }
        assert!(dir.path().join(".state.json.penin-tmp.8.0").is_dir());
        assert_eq!(remove_stale_temporaries(&path).unwrap(), 0);
    }

    #[test]
    fn remove_stale_temporaries_in_a_missing_directory_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/state.json");
        assert_eq!(remove_stale_temporaries(path).unwrap(), 0);
    }
}
