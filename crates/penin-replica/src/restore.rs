//! Restoring: a manifest's objects downloaded and checked, then put in place of the local
//! state's files.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;

use penin_history::time::Timestamp;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::remote::{Piece, Remote};

/// Which restore point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pick {
    /// The latest manifest.
    Latest,
    /// The newest manifest holding no change after this sequence number.
    Seq(u64),
    /// The newest manifest written at or before this time.
    At(Timestamp),
}

/// Finds the manifest `pick` names.
pub fn find(remote: &Remote, pick: Pick) -> Result<Manifest> {
    let numbers = remote.manifest_numbers()?;
    let none = |why: String| Error::NoManifest {
        url: remote.url().to_owned(),
        why,
    };
    if numbers.is_empty() {
        return Err(none("no manifest: nothing was pushed there".to_owned()));
    }
    // Newest first: the first that fits is the one.
    for &number in numbers.iter().rev() {
        let manifest = match remote.manifest(number) {
            Ok(manifest) => manifest,
            // Listed, then deleted by a prune: not a restore point any more.
            Err(Error::NoManifest { .. }) => continue,
            Err(e) => return Err(e),
        };
        let fits = match pick {
            Pick::Latest => true,
            Pick::Seq(seq) => manifest.seq <= seq,
            Pick::At(at) => Timestamp::parse(&manifest.time).is_ok_and(|time| time <= at),
        };
        if fits {
            return Ok(manifest);
        }
    }
    Err(none(match pick {
        Pick::Latest => "no manifest".to_owned(),
        Pick::Seq(seq) => format!("no manifest holds only changes up to {seq}"),
        Pick::At(at) => format!("no manifest was written at or before {at}"),
    }))
}

/// How many downloaded chunks wait for the writer at most: the bytes in memory stay
/// bounded whatever the size of the objects.
const CHUNKS: usize = 64;

/// A manifest's files, downloaded into temporaries beside the state they are for, every
/// object's size and checksum verified, every temporary synced: what [`install`] renames
/// into place. Dropped without being installed, it removes its temporaries (and the
/// directory [`fetch`] created for them, if it is left empty).
#[derive(Debug)]
#[non_exhaustive]
pub struct Fetched {
    /// The manifest.
    pub manifest: Manifest,
    /// The state's path.
    path: PathBuf,
    /// Its directory.
    dir: PathBuf,
    /// Each file of the state (the snapshot, the journal, the ledger) and the temporary
    /// that holds it, `None` if the manifest names none of it.
    files: Vec<(PathBuf, Option<PathBuf>)>,
    /// Whether [`fetch`] created `dir`.
    created: bool,
}

impl Fetched {
    /// The state's path, where [`install`] puts the files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Each file the manifest names (the snapshot, the journal, the ledger: those it has),
    /// and the temporary holding its contents until [`install`].
    pub fn files(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.files
            .iter()
            .filter_map(|(target, temp)| temp.as_deref().map(|temp| (target.as_path(), temp)))
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        // Installed files were renamed away: their temporaries are gone already.
        for (_, temp) in &self.files {
            if let Some(temp) = temp {
                let _ = fs::remove_file(temp);
            }
        }
        if self.created {
            // Only if empty: a state installed there, or anything else, stays.
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// A temporary beside `path`, named apart from any other this process makes: two fetches
/// for the same state may be alive at once.
fn temporary(path: &Path) -> PathBuf {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map_or_else(
        || "state".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.penin-tmp.{}.{n}", std::process::id()))
}

/// The directory of the state at `path`.
fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Downloads every object `manifest` names into temporaries beside the state at `path`
/// (created with its directory, mode 0700, if missing), checking each one's size and
/// checksum: a missing or damaged object is [`Error::Damaged`], naming it, and leaves
/// nothing behind. Nothing of the state at `path` is touched: [`install`] does that.
///
/// The objects are downloaded [several at a time](crate::Remote), and a plaintext object
/// streams into its file as it arrives (hashed on the way), written at its offset by a
/// second thread; the files are synced once all is checked.
pub fn fetch(remote: &Remote, manifest: &Manifest, path: &Path) -> Result<Fetched> {
    let dir = directory(path);
    let created = !dir.exists();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
    let names: [(PathBuf, &[crate::Object]); 3] = [
        (path.to_owned(), manifest.snapshot.as_slice()),
        (penin_history::journal_path(path), &manifest.journal),
        (penin_history::ledger_path(path), &manifest.ledger),
    ];
    let mut fetched = Fetched {
        manifest: manifest.clone(),
        path: path.to_owned(),
        dir,
        files: Vec::new(),
        created,
    };
    // Each file the manifest names gets a temporary (its number: its index in `open`), and
    // each of its objects the offset where its contents go.
    let mut open: Vec<(File, PathBuf)> = Vec::new();
    let mut pieces = Vec::new();
    for (target, objects) in &names {
        if objects.is_empty() {
            fetched.files.push((target.clone(), None));
            continue;
        }
        let temp = temporary(target);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|source| Error::Io {
                what: "create",
                path: temp.clone(),
                source,
            })?;
        fetched.files.push((target.clone(), Some(temp.clone())));
        let mut offset = 0;
        for object in *objects {
            pieces.push(Piece {
                object,
                file: open.len(),
                offset,
            });
            offset += object.content_size();
        }
        open.push((file, temp));
    }
    download_into(remote, &pieces, &open)?;
    for (file, temp) in &open {
        file.sync_all().map_err(|source| Error::Io {
            what: "sync",
            path: temp.clone(),
            source,
        })?;
    }
    Ok(fetched)
}

/// Downloads `pieces` into the `open` files (each with its path): the chunks go through a
/// bounded channel to a second thread that writes each at its offset, so that the
/// download, the hashing and the writes overlap.
fn download_into(remote: &Remote, pieces: &[Piece<'_>], open: &[(File, PathBuf)]) -> Result<()> {
    let (chunks, received) = mpsc::sync_channel::<(usize, u64, Bytes)>(CHUNKS);
    let writer_gone = Cell::new(false);
    let (downloaded, written) = std::thread::scope(|scope| {
        let files = open;
        let writer = scope.spawn(move || -> Result<()> {
            for (n, offset, bytes) in received {
                let (file, temp) = &files[n];
                file.write_all_at(&bytes, offset)
                    .map_err(|source| Error::Io {
                        what: "write",
                        path: temp.clone(),
                        source,
                    })?;
            }
            Ok(())
        });
        let downloaded = remote.fetch_into(pieces, &|n, offset, bytes| {
            chunks.send((n, offset, bytes)).map_err(|_| {
                writer_gone.set(true);
                Error::Io {
                    what: "write",
                    path: open[n].1.clone(),
                    source: std::io::Error::other("the writer stopped"),
                }
            })
        });
        drop(chunks);
        let written = writer.join().unwrap_or_else(|_| {
            Err(Error::Io {
                what: "write",
                path: open
                    .first()
                    .map(|(_, temp)| temp.clone())
                    .unwrap_or_default(),
                source: std::io::Error::other("the writer thread panicked"),
            })
        });
        (downloaded, written)
    });
    match (downloaded, written) {
        // The writer's error is the cause of the download's.
        (Err(_), Err(e)) if writer_gone.get() => Err(e),
        (Err(e), _) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Whether a state is at `path`: a snapshot or a journal.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok() || penin_history::journal_path(path).symlink_metadata().is_ok()
}

/// Puts `fetched` in place of the state it was fetched for: the snapshot `NAME`,
/// `NAME.journal` and `NAME.ledger` (a file the manifest does not name is removed), its
/// checkpoints left as they are. Every file is already whole in a synced temporary beside
/// its target ([`fetch`]); they are renamed into place and the directory synced. A state
/// already there is refused ([`Error::Exists`]) unless `replace`. The caller holds the
/// state's lock. Returns the manifest installed.
pub fn install(mut fetched: Fetched, replace: bool) -> Result<Manifest> {
    let path = fetched.path.clone();
    if !replace && exists(&path) {
        return Err(Error::Exists(path));
    }
    // Every byte is on disk: now the names. A journal a compaction prepared belongs to the
    // state being replaced.
    let mut remove = vec![penin_orchestrator::memory::next_journal_path(&path)];
    for (target, temp) in &fetched.files {
        if temp.is_none() {
            remove.push(target.clone());
        }
    }
    for old in remove {
        match fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "remove",
                    path: old,
                    source,
                });
            }
        }
    }
    for (target, temp) in &mut fetched.files {
        if let Some(from) = temp.take() {
            let renamed = fs::rename(&from, &*target);
            if let Err(source) = renamed {
                // Left for the drop to remove.
                *temp = Some(from);
                return Err(Error::Io {
                    what: "rename into place",
                    path: target.clone(),
                    source,
                });
            }
        }
    }
    File::open(&fetched.dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            what: "sync",
            path: fetched.dir.clone(),
            source,
        })?;
    // The directory holds the state now: the drop leaves it.
    fetched.created = false;
    Ok(fetched.manifest.clone())
}

/// [`find`], [`fetch`] and [`install`]: restores the state at `path` from `remote` as of
/// `pick`, and returns the manifest restored.
pub fn restore(remote: &Remote, path: &Path, pick: Pick, replace: bool) -> Result<Manifest> {
    if !replace && exists(path) {
        return Err(Error::Exists(path.to_owned()));
    }
    install(download(remote, pick, path)?, replace)
}

/// How many times [`download`] picks again after a prune deleted the manifest it picked.
const PICKS: usize = 8;

/// [`find`] and [`fetch`]: the files of the restore point `pick` names, downloaded and
/// checked into temporaries beside the state at `path`. A manifest a prune deleted meanwhile (an object missing, and the manifest gone
/// too) is picked again, so that a restore beside a prune succeeds: the latest manifest is
/// never pruned, and a kept one never loses an object.
pub fn download(remote: &Remote, pick: Pick, path: &Path) -> Result<Fetched> {
    download_with(remote, pick, path, &mut |_| {})
}

/// [`download`], calling `between` after each pick and before its fetch: for tests, which
/// prune there.
#[doc(hidden)]
pub fn download_with(
    remote: &Remote,
    pick: Pick,
    path: &Path,
    between: &mut dyn FnMut(&Manifest),
) -> Result<Fetched> {
    let mut picks = 1;
    loop {
        let manifest = find(remote, pick)?;
        between(&manifest);
        match fetch(remote, &manifest, path) {
            Err(Error::Damaged { .. })
                if picks < PICKS && !remote.manifest_numbers()?.contains(&manifest.number) =>
            {
                picks += 1;
            }
            fetched => return fetched,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Local, Retention, Writer};

    /// A restore that picked a manifest a prune then deleted with its objects picks again.
    #[test]
    fn a_pick_pruned_before_its_fetch_is_picked_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Arc::new(object_store::memory::InMemory::new());
        let remote = Remote::with_store("s3://b/p", store).unwrap();
        let mut writer = Writer::new();
        let push = |writer: &mut Writer, bytes: &[u8], seq| {
            fs::write(&path, bytes).unwrap();
            let local = Local::read(&path, seq, 0, [0; 32]).unwrap();
            crate::push_round(&remote, writer, &local).unwrap();
        };
        push(&mut writer, b"the first snapshot", 1);
        let mut pruned = 0;
        let target = dir.path().join("restored/state.json");
        let fetched = download_with(&remote, Pick::Latest, &target, &mut |picked| {
            if pruned == 0 {
                assert_eq!(picked.number, 1);
                push(&mut writer, b"the second snapshot", 2);
                let retention = Retention::new().grace(std::time::Duration::ZERO);
                let done = crate::prune(&remote, &retention, Timestamp::now(), false).unwrap();
                assert_eq!((done.manifests.len(), done.objects.len()), (1, 1));
            }
            pruned += 1;
        })
        .unwrap();
        assert_eq!(pruned, 2, "picked twice");
        assert_eq!(fetched.manifest.number, 2);
        let files: Vec<_> = fetched.files().collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, target);
        assert_eq!(fs::read(files[0].1).unwrap(), b"the second snapshot");
        // Without picking again, the first pick's fetch fails: its object is gone.
        let mut stale = fetched.manifest.clone();
        stale.number = 1;
        stale.snapshot = Some(crate::Object::new(
            format!(
                "snapshots/{:020}-{}",
                1,
                crate::manifest::checksum(b"the first snapshot")
            ),
            b"the first snapshot",
            1,
            1,
        ));
        assert!(matches!(
            fetch(&remote, &stale, &target),
            Err(Error::Damaged { .. })
        ));
        // The failed fetch left nothing behind; the good one's temporary is there until
        // installed.
        let temp = files[0].1.to_owned();
        assert_eq!(fs::read_dir(target.parent().unwrap()).unwrap().count(), 1);
        assert_eq!(install(fetched, false).unwrap().number, 2);
        assert!(!temp.exists());
        assert_eq!(fs::read(&target).unwrap(), b"the second snapshot");
    }
}
