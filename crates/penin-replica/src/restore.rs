//! Restoring: a manifest's objects downloaded and checked, then put in place of the local
//! state's files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use penin_history::time::Timestamp;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::remote::Remote;

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

/// A manifest's files, downloaded and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fetched {
    /// The manifest.
    pub manifest: Manifest,
    /// The snapshot's bytes, if it names one.
    pub snapshot: Option<Vec<u8>>,
    /// The journal's bytes (its segments joined).
    pub journal: Vec<u8>,
    /// The ledger's bytes (its segments joined).
    pub ledger: Vec<u8>,
}

/// Downloads every object `manifest` names and checks each one's size and checksum: a
/// missing or damaged object is [`Error::Damaged`], naming it.
pub fn fetch(remote: &Remote, manifest: &Manifest) -> Result<Fetched> {
    let snapshot = match &manifest.snapshot {
        Some(object) => Some(remote.get_checked(object)?),
        None => None,
    };
    let mut journal = Vec::new();
    for object in &manifest.journal {
        journal.extend(remote.get_checked(object)?);
    }
    let mut ledger = Vec::new();
    for object in &manifest.ledger {
        ledger.extend(remote.get_checked(object)?);
    }
    Ok(Fetched {
        manifest: manifest.clone(),
        snapshot,
        journal,
        ledger,
    })
}

/// Whether a state is at `path`: a snapshot or a journal.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok() || penin_history::journal_path(path).symlink_metadata().is_ok()
}

/// A temporary beside `path` holding `bytes`, synced.
fn temporary(path: &Path, bytes: &[u8], n: usize) -> Result<PathBuf> {
    let name = path.file_name().map_or_else(
        || "state".into(),
        |name| name.to_string_lossy().into_owned(),
    );
    let temp = path.with_file_name(format!(".{name}.penin-tmp.{}.{n}", std::process::id()));
    let io = |what| {
        let temp = temp.clone();
        move |source| Error::Io {
            what,
            path: temp,
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io("create"))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io("write")(source));
    }
    Ok(temp)
}

/// Puts `fetched` in place of the state at `path`: the snapshot `NAME`, `NAME.journal` and
/// `NAME.ledger` (a file the manifest does not name is removed), its checkpoints left as they
/// are. Every file is first written whole to a synced temporary beside its target; only then
/// are they renamed into place and the directory synced. A state already at `path` is
/// refused ([`Error::Exists`]) unless `replace`. The caller holds the state's lock.
pub fn install(path: &Path, fetched: &Fetched, replace: bool) -> Result<()> {
    if !replace && exists(path) {
        return Err(Error::Exists(path.to_owned()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| Error::Io {
            what: "create",
            path: dir.clone(),
            source,
        })?;
    let files: [(PathBuf, Option<&[u8]>); 3] = [
        (path.to_owned(), fetched.snapshot.as_deref()),
        (
            penin_history::journal_path(path),
            (!fetched.manifest.journal.is_empty()).then_some(fetched.journal.as_slice()),
        ),
        (
            penin_history::ledger_path(path),
            (!fetched.manifest.ledger.is_empty()).then_some(fetched.ledger.as_slice()),
        ),
    ];
    let mut temps = Vec::new();
    for (n, (target, bytes)) in files.iter().enumerate() {
        if let Some(bytes) = bytes {
            match temporary(target, bytes, n) {
                Ok(temp) => temps.push((temp, target.clone())),
                Err(e) => {
                    for (temp, _) in &temps {
                        let _ = fs::remove_file(temp);
                    }
                    return Err(e);
                }
            }
        }
    }
    // Every byte is on disk: now the names. A journal a compaction prepared belongs to the
    // state being replaced.
    let mut remove = vec![penin_orchestrator::memory::next_journal_path(path)];
    for (target, bytes) in &files {
        if bytes.is_none() {
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
    for (temp, target) in &temps {
        fs::rename(temp, target).map_err(|source| Error::Io {
            what: "rename into place",
            path: target.clone(),
            source,
        })?;
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            what: "sync",
            path: dir.clone(),
            source,
        })
}

/// [`find`], [`fetch`] and [`install`]: restores the state at `path` from `remote` as of
/// `pick`, and returns the manifest restored.
pub fn restore(remote: &Remote, path: &Path, pick: Pick, replace: bool) -> Result<Manifest> {
    if !replace && exists(path) {
        return Err(Error::Exists(path.to_owned()));
    }
    let fetched = download(remote, pick)?;
    install(path, &fetched, replace)?;
    Ok(fetched.manifest)
}

/// How many times [`download`] picks again after a prune deleted the manifest it picked.
const PICKS: usize = 8;

/// [`find`] and [`fetch`]: the files of the restore point `pick` names, downloaded and
/// checked. A manifest a prune deleted meanwhile (an object missing, and the manifest gone
/// too) is picked again, so that a restore beside a prune succeeds: the latest manifest is
/// never pruned, and a kept one never loses an object.
pub fn download(remote: &Remote, pick: Pick) -> Result<Fetched> {
    download_with(remote, pick, &mut |_| {})
}

/// [`download`], calling `between` after each pick and before its fetch: for tests, which
/// prune there.
#[doc(hidden)]
pub fn download_with(
    remote: &Remote,
    pick: Pick,
    between: &mut dyn FnMut(&Manifest),
) -> Result<Fetched> {
    let mut picks = 1;
    loop {
        let manifest = find(remote, pick)?;
        between(&manifest);
        match fetch(remote, &manifest) {
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
        let fetched = download_with(&remote, Pick::Latest, &mut |picked| {
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
        assert_eq!(
            fetched.snapshot.as_deref(),
            Some(&b"the second snapshot"[..])
        );
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
        assert!(matches!(fetch(&remote, &stale), Err(Error::Damaged { .. })));
    }
}
