//! [`CrashFs`]: the real file system, and a model of what a power loss would leave of it.
//! The model is stated in the documentation of the `testing` module.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, Metadata, Permissions};
use std::io::{self, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Op;
use super::image::Image;
use super::model::{Change, Dir, FileData, Model, Node, NodeId, ROOT};
use crate::fs::{Fs, RealFs};

/// A simulated power loss: the real file system under a root directory, and a model of what
/// a power loss after each call would leave of it, as [the crash model] states.
///
/// Every call is made on the real file system, so the code under test runs as usual; the
/// model keeps apart what was synced from what was only done. [`CrashFs::images_after`]
/// lists the durable images of a power loss after any call, each of which can be written out
/// into a fresh directory ([`Image::materialise`]) and read back as after a restart.
///
/// [the crash model]: crate::testing#the-crash-model
///
/// ```
/// use std::io::Write;
/// use penin_store::Durability;
/// use penin_store::testing::CrashFs;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json");
/// std::fs::write(&path, "old")?;
/// let fs = CrashFs::at(dir.path())?;
/// penin_store::write_atomic_in(&fs, &path, Durability::Full, |w| w.write_all(b"new"))?;
///
/// // A power loss after any call leaves the old bytes or the new ones, never a mix;
/// // after the last call, before the save returned, the new ones.
/// let calls = fs.ops().len();
/// for call in 0..=calls {
///     for image in fs.images_after(call).unwrap() {
///         let bytes = image.file("state.json");
///         assert!(bytes == Some(b"old") || bytes == Some(b"new"), "call {call}: {image}");
///         if call == calls {
///             assert_eq!(bytes, Some(&b"new"[..]), "{image}");
///         }
///     }
/// }
///
/// // An image can be written out, to be read back as after a restart.
/// let restart = tempfile::tempdir()?;
/// fs.images_after(calls).unwrap()[0].materialise(restart.path())?;
/// assert_eq!(penin_store::read(restart.path().join("state.json"))?.unwrap(), b"new");
/// # Ok(())
/// # }
/// ```
pub struct CrashFs {
    root: PathBuf,
    recorder: Mutex<Recorder>,
}

/// What a [`CrashFs`] knows.
struct Recorder {
    /// The model now.
    model: Model,
    /// The model's file for each real file, by device and inode number.
    files: HashMap<(u64, u64), NodeId>,
    /// The calls made, in order.
    ops: Vec<Op>,
    /// The model after each call: `after[0]` before the first one.
    after: Vec<Model>,
}

impl CrashFs {
    /// Up to this many unsynced directory operations, every subset of them makes an image.
    pub const MAX_EXHAUSTIVE_OPS: usize = 10;

    /// At most this many prefixes of a file's unsynced writes are tried.
    pub const MAX_CUTS: usize = 33;

    /// Up to this many combinations of the files' prefixes, all are tried.
    pub const MAX_DATA_COMBINATIONS: usize = 1024;

    /// A simulated file system over the directory `root`, which must exist. Everything under
    /// it now is taken as durable; it must hold only regular files and directories.
    pub fn at(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref().to_path_buf();
        let mut model = Model {
            nodes: vec![Node::Dir(Dir::default())],
        };
        let mut files = HashMap::new();
        scan(&mut model, &mut files, &root, ROOT)?;
        let recorder = Recorder {
            after: vec![model.clone()],
            model,
            files,
            ops: Vec::new(),
        };
        Ok(Self {
            root,
            recorder: Mutex::new(recorder),
        })
    }

    /// The directory it simulates; [`Image`] paths are relative to it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The calls made so far, in order, failed ones included.
    #[must_use]
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// The distinct durable images a power loss right after the `call`th call (counting from
    /// 1; 0 is before the first) could leave, or `None` if fewer calls were made. The first
    /// image keeps everything unsynced.
    #[must_use]
    pub fn images_after(&self, call: usize) -> Option<Vec<Image>> {
        let model = self.lock().after.get(call)?.clone();
        Some(model.images())
    }

    fn lock(&self) -> MutexGuard<'_, Recorder> {
        // The recorder is changed only after the real call succeeded, by code that does not
        // panic on any path the model allows; a poisoned lock still holds a usable model.
        self.recorder.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The names from the root down to `path`, or an error if `path` is not under the root.
    fn names<'p>(&self, path: &'p Path) -> io::Result<Vec<&'p OsStr>> {
        let outside = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is outside the simulated directory {}",
                    path.display(),
                    self.root.display()
                ),
            )
        };
        let rest = path.strip_prefix(&self.root).map_err(|_| outside())?;
        let mut names = Vec::new();
        for component in rest.components() {
            match component {
                Component::Normal(name) => names.push(name),
                Component::CurDir => {}
                _ => return Err(outside()),
            }
        }
        Ok(names)
    }

    /// Makes a call: the real one, then on success the model's change (`None` if the model
    /// cannot follow, which fails the call); records it either way.
    fn call<T>(
        &self,
        op: Op,
        real: impl FnOnce() -> io::Result<T>,
        change: impl FnOnce(&mut Recorder, &T) -> Option<()>,
    ) -> io::Result<T> {
        let mut recorder = self.lock();
        let result = real().and_then(|value| match change(&mut recorder, &value) {
            Some(()) => Ok(value),
            None => Err(io::Error::other(format!(
                "the simulated file system cannot follow this {op:?}: was {} changed behind its back?",
                self.root.display()
            ))),
        });
        recorder.ops.push(op);
        let snapshot = recorder.model.clone();
        recorder.after.push(snapshot);
        result
    }

    /// A call that changes nothing the model holds.
    fn plain<T>(&self, op: Op, real: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        self.call(op, real, |_, _| Some(()))
    }

    /// A sync of a file's data.
    fn sync_file(
        &self,
        op: Op,
        file: &File,
        real: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        let key = file_key(file);
        self.call(op, real, |recorder, ()| {
            let node = *recorder.files.get(key.as_ref().ok()?)?;
            recorder.model.file_mut(node)?.sync();
            Some(())
        })
    }
}

impl fmt::Debug for CrashFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashFs")
            .field("root", &self.root)
            .field("calls", &self.lock().ops.len())
            .finish_non_exhaustive()
    }
}

impl Fs for CrashFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let names = self.names(dir);
        self.call(
            Op::CreateDirAll,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.create_dir_all(dir)
            },
            |recorder, ()| recorder.model.create_dirs(names.as_ref().ok()?),
        )
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.plain(Op::Metadata, || RealFs.metadata(path))
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.plain(Op::SymlinkMetadata, || RealFs.symlink_metadata(path))
    }

    fn create_new(&self, path: &Path, mode: u32) -> io::Result<File> {
        let names = self.names(path);
        self.call(
            Op::CreateNew,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.create_new(path, mode)
            },
            |recorder, file| {
                let key = file_key(file).ok()?;
                let node = recorder.model.create_file(names.as_ref().ok()?)?;
                recorder.files.insert(key, node);
                Some(())
            },
        )
    }

    fn set_permissions(&self, file: &File, permissions: Permissions) -> io::Result<()> {
        self.plain(Op::SetPermissions, || {
            RealFs.set_permissions(file, permissions)
        })
    }

    fn write(&self, file: &mut File, buf: &[u8]) -> io::Result<usize> {
        let key = file_key(file);
        let mut recorder = self.lock();
        let result = RealFs.write(file, buf).and_then(|written| {
            // Where the write went: the cursor is now just past it.
            let end = file.stream_position()?;
            let offset = end.checked_sub(written as u64).ok_or_else(|| {
                io::Error::other("the simulated file system lost track of a write's offset")
            })?;
            let change = Change::Write {
                offset,
                bytes: Arc::from(&buf[..written]),
            };
            let node = key.ok().and_then(|key| recorder.files.get(&key).copied());
            match node.and_then(|node| recorder.model.file_mut(node)) {
                Some(data) => {
                    data.unsynced.push(change);
                    Ok(written)
                }
                None => Err(io::Error::other(
                    "the simulated file system cannot follow this Write: the file is not one it holds",
                )),
            }
        });
        recorder.ops.push(Op::Write);
        let snapshot = recorder.model.clone();
        recorder.after.push(snapshot);
        result
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        self.sync_file(Op::Sync, file, || RealFs.sync(file))
    }

    fn try_clone(&self, file: &File) -> io::Result<File> {
        self.plain(Op::TryClone, || RealFs.try_clone(file))
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.sync_file(Op::SyncData, file, || RealFs.sync_data(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let names = self.names(from).and_then(|from_names| {
            let to_names = self.names(to)?;
            match (from_names.split_last(), to_names.split_last()) {
                (Some((from, from_dir)), Some((to, to_dir))) if from_dir == to_dir => {
                    Ok((from_dir.to_vec(), *from, *to))
                }
                _ => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the simulated file system renames only within one directory",
                )),
            }
        });
        self.call(
            Op::Rename,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.rename(from, to)
            },
            |recorder, ()| {
                let (dir, from, to) = names.as_ref().ok()?;
                recorder.model.rename(dir, from, to)
            },
        )
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let names = self.names(dir);
        self.call(
            Op::SyncDir,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.sync_dir(dir)
            },
            |recorder, ()| {
                let node = recorder.model.lookup(names.as_ref().ok()?)?;
                let dir = recorder.model.dir_mut(node)?;
                dir.durable.clone_from(&dir.current);
                dir.pending.clear();
                Some(())
            },
        )
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let names = self.names(path);
        self.call(
            Op::Remove,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.remove(path)
            },
            |recorder, ()| recorder.model.remove(names.as_ref().ok()?),
        )
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        // Opening changes nothing durable; the writes through the handle are followed by the
        // file's device and inode, as any other write. The check only makes sure they can be.
        let names = self.names(path);
        self.call(
            Op::OpenAppend,
            || {
                names.as_ref().map_err(clone_error)?;
                RealFs.open_append(path)
            },
            |recorder, file| {
                let node = *recorder.files.get(&file_key(file).ok()?)?;
                let at_path = recorder.model.lookup(names.as_ref().ok()?)?;
                (node == at_path).then_some(())
            },
        )
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        let key = file_key(file);
        self.call(
            Op::SetLen,
            || RealFs.set_len(file, len),
            |recorder, ()| {
                let node = *recorder.files.get(key.as_ref().ok()?)?;
                let data = recorder.model.file_mut(node)?;
                data.unsynced.push(Change::SetLen { len });
                Some(())
            },
        )
    }
}

/// A copy of an error the model made before the real call, to return in its place.
fn clone_error(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

/// The device and inode number of an open file: who it is, whatever its name.
fn file_key(file: &File) -> io::Result<(u64, u64)> {
    let metadata = file.metadata()?;
    Ok((metadata.dev(), metadata.ino()))
}

/// Adds what is in the real directory `path` to the model's directory `dir`, as durable.
fn scan(
    model: &mut Model,
    files: &mut HashMap<(u64, u64), NodeId>,
    path: &Path,
    dir: NodeId,
) -> io::Result<()> {
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let entry_path = entry.path();
        let metadata = std::fs::symlink_metadata(&entry_path)?;
        let node = if metadata.is_dir() {
            let node = model.add(Node::Dir(Dir::default()));
            scan(model, files, &entry_path, node)?;
            node
        } else if metadata.is_file() {
            let key = (metadata.dev(), metadata.ino());
            if let Some(&node) = files.get(&key) {
                node
            } else {
                let data = FileData {
                    durable: std::fs::read(&entry_path)?.into(),
                    unsynced: Vec::new(),
                };
                let node = model.add(Node::File(data));
                files.insert(key, node);
                node
            }
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{}: the simulated file system holds only regular files and directories",
                    entry_path.display()
                ),
            ));
        };
        if let Some(parent) = model.dir_mut(dir) {
            parent.current.insert(entry.file_name(), node);
            parent.durable.insert(entry.file_name(), node);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(image: &Image) -> Vec<String> {
        image.paths().map(|p| p.display().to_string()).collect()
    }

    /// The files at `path` in the images, in order (`None` where there is none).
    fn contents<'a>(images: &'a [Image], path: &str) -> Vec<Option<&'a [u8]>> {
        images.iter().map(|image| image.file(path)).collect()
    }

    #[test]
    fn the_start_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "old").unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let images = fs.images_after(0).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(names(&images[0]), ["d", "d/f"]);
        assert_eq!(images[0].file("d/f"), Some(&b"old"[..]));
        assert_eq!(images[0].to_string(), "everything was synced");
        assert!(fs.images_after(1).is_none());
    }

    #[test]
    fn an_unsynced_file_may_be_missing_or_hold_any_prefix_of_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let path = dir.path().join("f");
        let mut file = fs.create_new(&path, 0o600).unwrap();
        fs.write(&mut file, b"abcd").unwrap();
        fs.write(&mut file, b"ef").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"abcdef",
            "calls reach the disk"
        );

        // After the creation: the entry may be lost.
        assert_eq!(
            contents(&fs.images_after(1).unwrap(), "f"),
            [Some(&b""[..]), None]
        );
        // After both writes: every prefix, write by write, or no file at all.
        let images = fs.images_after(3).unwrap();
        let expected: [Option<&[u8]>; 6] = [
            Some(b"abcdef"),
            Some(b"abcde"),
            Some(b"abcd"),
            Some(b"ab"),
            Some(b""),
            None,
        ];
        assert_eq!(contents(&images, "f"), expected);
        assert_eq!(
            images[1].to_string(),
            "unsynced entries kept: create \"f\" in \".\"; dropped: none; \
             data of \"f\": 1 of 2 unsynced writes and half the next kept (5 of 6 bytes)"
        );

        // A sync makes the data durable, not the entry.
        fs.sync(&file).unwrap();
        assert_eq!(
            contents(&fs.images_after(4).unwrap(), "f"),
            [Some(&b"abcdef"[..]), None]
        );
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(
            contents(&fs.images_after(5).unwrap(), "f"),
            [Some(&b"abcdef"[..])]
        );
        assert_eq!(
            fs.ops(),
            [Op::CreateNew, Op::Write, Op::Write, Op::Sync, Op::SyncDir]
        );
    }

    #[test]
    fn sync_data_through_a_clone_makes_the_data_durable() {
        let dir = tempfile::tempdir().unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let mut file = fs.create_new(&dir.path().join("f"), 0o600).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        fs.write(&mut file, b"xy").unwrap();
        let clone = fs.try_clone(&file).unwrap();
        fs.sync_data(&clone).unwrap();
        fs.write(&mut file, b"z").unwrap();
        assert_eq!(
            contents(&fs.images_after(6).unwrap(), "f"),
            [Some(&b"xyz"[..]), Some(&b"xy"[..])]
        );
    }

    #[test]
    fn appends_to_a_file_from_the_start_may_keep_any_prefix_until_synced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, "head").unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let mut file = fs.open_append(&path).unwrap();
        fs.write(&mut file, b"abcd").unwrap();
        fs.write(&mut file, b"ef").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"headabcdef");

        // The file's entry is durable from the start; its data, write by write.
        let expected: [Option<&[u8]>; 5] = [
            Some(b"headabcdef"),
            Some(b"headabcde"),
            Some(b"headabcd"),
            Some(b"headab"),
            Some(b"head"),
        ];
        assert_eq!(contents(&fs.images_after(3).unwrap(), "journal"), expected);
        assert_eq!(
            contents(&fs.images_after(1).unwrap(), "journal"),
            [Some(&b"head"[..])]
        );
        fs.sync_data(&file).unwrap();
        assert_eq!(
            contents(&fs.images_after(4).unwrap(), "journal"),
            [Some(&b"headabcdef"[..])]
        );
        assert_eq!(
            fs.ops(),
            [Op::OpenAppend, Op::Write, Op::Write, Op::SyncData]
        );
    }

    #[test]
    fn set_len_then_an_append_is_ordered_and_durable_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, "0123torn").unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let mut file = fs.open_append(&path).unwrap();
        fs.set_len(&file, 4).unwrap();
        fs.write(&mut file, b"ab").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"0123ab",
            "calls reach the disk"
        );

        // The append lands after the cut, never after the torn tail, and never without the cut.
        let images = fs.images_after(3).unwrap();
        let expected: [Option<&[u8]>; 4] = [
            Some(b"0123ab"),
            Some(b"0123a"),
            Some(b"0123"),
            Some(b"0123torn"),
        ];
        assert_eq!(contents(&images, "journal"), expected);
        assert_eq!(
            images[1].to_string(),
            "data of \"journal\": 1 of 2 unsynced changes and half the next kept \
             (1 of 2 bytes written, 1 of 1 set_len)"
        );
        fs.sync(&file).unwrap();
        assert_eq!(
            contents(&fs.images_after(4).unwrap(), "journal"),
            [Some(&b"0123ab"[..])]
        );
        assert_eq!(fs.ops(), [Op::OpenAppend, Op::SetLen, Op::Write, Op::Sync]);
    }

    #[test]
    fn an_unsynced_set_len_may_be_lost_but_not_reordered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "0123456789").unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let mut file = fs.open_append(&path).unwrap();
        fs.set_len(&file, 4).unwrap();
        // Without a sync, both lengths are possible.
        let expected: [Option<&[u8]>; 2] = [Some(b"0123"), Some(b"0123456789")];
        assert_eq!(contents(&fs.images_after(2).unwrap(), "f"), expected);

        // A write before a cut never outlives the cut; a longer length is zero-filled.
        fs.write(&mut file, b"xy").unwrap();
        fs.set_len(&file, 3).unwrap();
        fs.set_len(&file, 5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"012\0\0");
        let expected: [Option<&[u8]>; 6] = [
            Some(b"012\0\0"),
            Some(b"012"),
            Some(b"0123xy"),
            Some(b"0123x"),
            Some(b"0123"),
            Some(b"0123456789"),
        ];
        assert_eq!(contents(&fs.images_after(5).unwrap(), "f"), expected);
        fs.sync_data(&file).unwrap();
        assert_eq!(
            contents(&fs.images_after(6).unwrap(), "f"),
            [Some(&b"012\0\0"[..])]
        );
    }

    #[test]
    fn open_append_refuses_what_it_cannot_follow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("outside"), "").unwrap();
        let fs = CrashFs::at(&root).unwrap();
        let error = fs.open_append(&dir.path().join("outside")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let error = fs.open_append(&root.join("missing")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        // Made behind its back: the model does not hold it.
        std::fs::write(root.join("sneaked"), "").unwrap();
        let error = fs.open_append(&root.join("sneaked")).unwrap_err();
        assert!(
            error.to_string().contains("cannot follow this OpenAppend"),
            "{error}"
        );
        assert_eq!(fs.ops(), [Op::OpenAppend; 3]);
    }

    #[test]
    fn each_unsynced_rename_and_removal_may_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "A").unwrap();
        std::fs::write(dir.path().join("b"), "B").unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        fs.rename(&dir.path().join("a"), &dir.path().join("c"))
            .unwrap();
        fs.remove(&dir.path().join("b")).unwrap();
        let mut seen: Vec<Vec<String>> = fs.images_after(2).unwrap().iter().map(names).collect();
        seen.sort();
        assert_eq!(seen, [vec!["a"], vec!["a", "b"], vec!["b", "c"], vec!["c"]]);
        fs.sync_dir(dir.path()).unwrap();
        let images = fs.images_after(3).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(names(&images[0]), ["c"]);
        assert_eq!(images[0].file("c"), Some(&b"A"[..]));
    }

    #[test]
    fn a_new_directory_needs_a_sync_of_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        let nested = dir.path().join("a/b");
        fs.create_dir_all(&nested).unwrap();
        let mut file = fs.create_new(&nested.join("f"), 0o600).unwrap();
        fs.write(&mut file, b"1").unwrap();
        fs.sync(&file).unwrap();
        // The file and its directory synced, but not the entries of `a` and `b`.
        fs.sync_dir(&nested).unwrap();
        let mut seen: Vec<Vec<String>> = fs.images_after(5).unwrap().iter().map(names).collect();
        seen.sort();
        assert_eq!(seen, [vec![], vec!["a"], vec!["a", "a/b", "a/b/f"]]);
        fs.sync_dir(dir.path()).unwrap();
        fs.sync_dir(&dir.path().join("a")).unwrap();
        let images = fs.images_after(7).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].file("a/b/f"), Some(&b"1"[..]));
    }

    #[test]
    fn an_image_is_written_out_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fs = CrashFs::at(dir.path()).unwrap();
        fs.create_dir_all(&dir.path().join("a/b")).unwrap();
        let mut file = fs.create_new(&dir.path().join("a/b/f"), 0o600).unwrap();
        fs.write(&mut file, b"bytes").unwrap();
        let image = &fs.images_after(3).unwrap()[0];
        let out = tempfile::tempdir().unwrap();
        image.materialise(out.path().join("image")).unwrap();
        assert_eq!(
            std::fs::read(out.path().join("image/a/b/f")).unwrap(),
            b"bytes"
        );
        assert_eq!(format!("{image:?}").lines().count(), 1);
    }

    #[test]
    fn calls_outside_the_root_or_across_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("f"), "").unwrap();
        let fs = CrashFs::at(&root).unwrap();
        let error = fs.create_new(&dir.path().join("x"), 0o600).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().join("x").exists());
        let error = fs.rename(&root.join("f"), &root.join("d/f")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(root.join("f").exists());
        assert_eq!(fs.ops(), [Op::CreateNew, Op::Rename]);
    }
}
