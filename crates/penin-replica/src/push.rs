//! Pushing: one round uploads what the remote lacks of a local state, then the next
//! manifest, created only if no other writer took its number first.

use std::path::{Path, PathBuf};

use penin_history::ledger;
use penin_history::time::Timestamp;
use penin_orchestrator::Memory;
use penin_store::Fs;

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, Object, VERSION};
use crate::remote::Remote;

/// The journal's magic number (`docs/format.md`, the journal).
const JOURNAL_MAGIC: &[u8; 8] = b"\x89PENJNL\n";

/// A state's files as they are at one moment: what a push round ships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    path: PathBuf,
    snapshot: Option<Vec<u8>>,
    /// The snapshot's XXH3-128, computed once when it is read.
    snapshot_xxh3: Option<u128>,
    journal: Vec<u8>,
    ledger: Vec<u8>,
    seq: u64,
    ledger_seq: u64,
    ledger_head: [u8; 32],
}

/// Reads a file whole; `Ok(None)` if there is none.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

impl Local {
    /// The files of the state `memory` holds, read now. The caller holds the state's lock and
    /// writes nothing meanwhile, so that the snapshot, the journal (whose torn tail opening
    /// cut off) and the ledger are those of one moment.
    pub fn capture<F: Fs + Clone>(memory: &Memory<F>) -> Result<Local> {
        let (ledger_seq, ledger_head) = memory.ledger_head();
        Local::read(memory.path(), memory.seq(), ledger_seq, ledger_head)
    }

    /// The files of the state at `path`, which holds changes up to `seq` and whose ledger ends
    /// at line `ledger_seq` of hash `ledger_head`.
    pub fn read(path: &Path, seq: u64, ledger_seq: u64, ledger_head: [u8; 32]) -> Result<Local> {
        let snapshot = read_file(path)?;
        let snapshot_xxh3 = snapshot.as_deref().map(xxhash_rust::xxh3::xxh3_128);
        let journal_path = penin_history::journal_path(path);
        let journal = read_file(&journal_path)?.unwrap_or_default();
        let ledger = read_file(&penin_history::ledger_path(path))?.unwrap_or_default();
        Local {
            path: path.to_owned(),
            snapshot,
            snapshot_xxh3,
            journal,
            ledger,
            seq,
            ledger_seq,
            ledger_head,
        }
        .checked()
    }

    /// The files of the state at `path` as they were at `durable`, a point a running writer
    /// published (it holds the state's lock and goes on writing meanwhile): the snapshot,
    /// the journal and the ledger cut at the lengths the point gives. The journal must be
    /// the one the point names (its header, read back from the file) and its header must name
    /// the snapshot read (its XXH3-128); a compaction between the point and the reads makes
    /// them differ, and [`Error::Moved`] says to read again at the writer's next point.
    pub fn read_durable(path: &Path, durable: &Durable) -> Result<Local> {
        let moved = |file: PathBuf, why: &str| Error::Moved {
            path: file,
            why: why.to_owned(),
        };
        let snapshot = read_file(path)?;
        let snapshot_xxh3 = snapshot.as_deref().map(xxhash_rust::xxh3::xxh3_128);
        let journal_path = penin_history::journal_path(path);
        let mut journal = read_file(&journal_path)?.unwrap_or_default();
        let ledger_path = penin_history::ledger_path(path);
        let mut ledger = read_file(&ledger_path)?.unwrap_or_default();
        match &durable.journal {
            None if !journal.is_empty() => {
                return Err(moved(journal_path, "a journal was started since"));
            }
            None => {}
            Some(expected) => {
                let found = penin_history::journal::Header::parse(&journal, &journal_path)
                    .map_err(|_| moved(journal_path.clone(), "its header is not yet in place"))?;
                if found != *expected {
                    return Err(moved(journal_path, "another journal replaced it"));
                }
                let xxh3 = snapshot_xxh3.unwrap_or_else(|| xxhash_rust::xxh3::xxh3_128(&[]));
                if xxh3 != found.identity.xxh3 {
                    return Err(moved(
                        path.to_owned(),
                        "it is not the snapshot the journal extends",
                    ));
                }
                let len = usize::try_from(durable.journal_len).unwrap_or(usize::MAX);
                if journal.len() < len {
                    return Err(moved(journal_path, "it is shorter than its durable length"));
                }
                journal.truncate(len);
            }
        }
        let len = usize::try_from(durable.ledger_len).unwrap_or(usize::MAX);
        if ledger.len() < len {
            return Err(moved(ledger_path, "it is shorter than its durable length"));
        }
        ledger.truncate(len);
        Local {
            path: path.to_owned(),
            snapshot,
            snapshot_xxh3,
            journal,
            ledger,
            seq: durable.seq,
            ledger_seq: durable.ledger_seq,
            ledger_head: durable.ledger_head,
        }
        .checked()
    }

    /// The snapshot's bytes and their [`manifest::checksum`], hashed once when read.
    fn snapshot_parts(&self) -> Option<(&[u8], String)> {
        let bytes = self.snapshot.as_deref()?;
        let xxh3 = self
            .snapshot_xxh3
            .unwrap_or_else(|| xxhash_rust::xxh3::xxh3_128(bytes));
        Some((bytes, format!("{xxh3:032x}")))
    }

    /// This state, if it is one: a snapshot or a journal, whose base can be found.
    fn checked(self) -> Result<Local> {
        if self.snapshot.is_none() && self.journal.is_empty() {
            return Err(Error::NoState(self.path));
        }
        self.base()?;
        Ok(self)
    }

    /// The sequence number of the last change the snapshot holds: the journal's base.
    fn base(&self) -> Result<u64> {
        if self.journal.is_empty() {
            return Ok(self.seq);
        }
        let bad = |why: &str| Error::BadLocal {
            path: penin_history::journal_path(&self.path),
            why: why.to_owned(),
        };
        if self.journal.len() < 24 || &self.journal[..8] != JOURNAL_MAGIC {
            return Err(bad("not a penin journal (its magic number)"));
        }
        let mut base = [0; 8];
        base.copy_from_slice(&self.journal[16..24]);
        let base = u64::from_le_bytes(base);
        if base > self.seq {
            return Err(bad("its base is past the state's last change"));
        }
        Ok(base)
    }

    /// The sequence number of the last change the state holds.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// How far a running writer's state is durable: what `penin run` publishes to its
/// replication thread after each sync, so that the thread reads ([`Local::read_durable`])
/// only bytes that are on disk, of one moment, while the writer goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The last change durable.
    pub seq: u64,
    /// The header of the journal open for writing (`None`: no journal yet).
    pub journal: Option<penin_history::journal::Header>,
    /// The journal's durable length in bytes.
    pub journal_len: u64,
    /// The ledger's durable length in bytes.
    pub ledger_len: u64,
    /// The ledger's last line at that length.
    pub ledger_seq: u64,
    /// Its hash.
    pub ledger_head: [u8; 32],
}

impl Durable {
    /// The point `memory` is at: durable if the caller synced it (nothing unsynced).
    pub fn of<F: Fs + Clone>(memory: &Memory<F>) -> Durable {
        let (ledger_seq, ledger_head) = memory.ledger_head();
        Durable {
            seq: memory.seq(),
            journal: memory.journal_header(),
            journal_len: memory.journal_len(),
            ledger_len: memory.ledger_len(),
            ledger_seq,
            ledger_head,
        }
    }
}

/// One writer of a remote: the epoch it took with its first manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writer {
    epoch: Option<u64>,
    expect: Option<u64>,
}

impl Writer {
    /// A writer that has not written yet: its first manifest takes the next epoch.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// This writer, fenced unless manifest `number` is the latest when a round starts (0:
    /// no manifest yet): a compare-and-swap on the remote, so that of writers that all
    /// expect the same manifest exactly one goes on.
    #[must_use]
    pub fn expecting(mut self, number: u64) -> Writer {
        self.expect = Some(number);
        self
    }

    /// The epoch it took, once it wrote a manifest.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }
}

/// What a push round did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed {
    /// The manifest written; `None` when the remote already held the state.
    pub manifest: Option<Manifest>,
    /// The latest manifest when nothing was written.
    pub current: Option<Manifest>,
    /// The objects uploaded.
    pub uploaded: Vec<Object>,
}

/// The segments of `previous` that the local file still starts with, and where they end;
/// `None` if the file is not their continuation (a new journal after a compaction, a new
/// ledger after a repair), so that it starts again from its first byte.
fn kept_segments(previous: &[Object], bytes: &[u8]) -> Option<(Vec<Object>, usize)> {
    let mut offset = 0_usize;
    for segment in previous {
        let size = usize::try_from(segment.content_size()).ok()?;
        let end = offset.checked_add(size)?;
        let part = bytes.get(offset..end)?;
        if manifest::checksum(part) != segment.content_xxh3() {
            return None;
        }
        offset = end;
    }
    Some((previous.to_vec(), offset))
}

/// The segments of a file as it is now: those of the latest manifest it continues, and a new
/// one for its bytes after them, named `DIR/FIRST-LAST-XXH3`.
fn segments<'a>(
    dir: &str,
    previous: Option<&[Object]>,
    bytes: &'a [u8],
    first_of_all: u64,
    last: u64,
    new: &mut Vec<(Object, &'a [u8])>,
) -> Vec<Object> {
    let (mut kept, offset) = previous
        .and_then(|previous| kept_segments(previous, bytes))
        .unwrap_or_default();
    if offset < bytes.len() {
        let first = kept.last().map_or(first_of_all, |s| s.last + 1);
        let part = &bytes[offset..];
        let key = format!("{dir}/{first:020}-{last:020}-{}", manifest::checksum(part));
        let object = Object::new(key, part, first, last);
        new.push((object.clone(), part));
        kept.push(object);
    }
    kept
}

/// One round of pushing `local` to `remote` as `writer`: [`prepare`], then
/// [`Prepared::commit`]. Uploads the objects the latest manifest lacks (a snapshot not yet
/// there, the journal's and the ledger's bytes past the segments already there), then
/// creates the next manifest. Nothing is written when the latest manifest already holds the
/// state.
///
/// A writer that wrote before is fenced ([`Error::Fenced`]) when the latest manifest is of
/// another epoch; any writer is fenced when another created the manifest number it was
/// creating. Objects go up before the manifest that names them, so that no manifest ever
/// names a missing object; objects of a round that fails are left for a later round (their
/// names are their contents').
pub fn push_round(remote: &Remote, writer: &mut Writer, local: &Local) -> Result<Pushed> {
    prepare(remote, writer, local)?.commit(remote, writer)
}

/// A round whose objects are uploaded and whose manifest is not yet written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The manifest to create; `None` when the remote already holds the state.
    manifest: Option<Manifest>,
    /// The latest manifest the round started from.
    latest: Option<Manifest>,
    uploaded: Vec<Object>,
}

impl Prepared {
    /// The manifest the round will create, if any.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Creates the round's manifest, unless its number was taken meanwhile: then `writer` is
    /// fenced ([`Error::Fenced`]).
    pub fn commit(self, remote: &Remote, writer: &mut Writer) -> Result<Pushed> {
        let Some(manifest) = self.manifest else {
            return Ok(Pushed {
                manifest: None,
                current: self.latest,
                uploaded: self.uploaded,
            });
        };
        if !remote.put_new(
            &manifest::name(manifest.number),
            remote.manifest_bytes(&manifest)?,
        )? {
            return Err(Error::Fenced {
                url: remote.url().to_owned(),
                how: format!("created manifest {} first", manifest.number),
            });
        }
        writer.epoch = Some(manifest.epoch);
        Ok(Pushed {
            manifest: Some(manifest),
            current: None,
            uploaded: self.uploaded,
        })
    }
}

/// The first half of [`push_round`]: reads the latest manifest, fences `writer` if another
/// took over, uploads the objects it lacks and makes the next manifest, without writing it.
pub fn prepare(remote: &Remote, writer: &Writer, local: &Local) -> Result<Prepared> {
    let latest = remote.latest()?;
    if let (Some(mine), Some(latest)) = (writer.epoch, &latest)
        && latest.epoch != mine
    {
        return Err(Error::Fenced {
            url: remote.url().to_owned(),
            how: format!(
                "took epoch {} with manifest {} (this writer's epoch is {mine})",
                latest.epoch, latest.number
            ),
        });
    }
    if let Some(expected) = writer.expect {
        let found = latest.as_ref().map_or(0, |m| m.number);
        if found != expected {
            return Err(Error::Fenced {
                url: remote.url().to_owned(),
                how: format!(
                    "wrote manifest {found} where manifest {expected} was expected to be the latest"
                ),
            });
        }
    }
    crate::seal::check_mixing(remote, latest.as_ref())?;
    let base = local.base()?;
    let mut new: Vec<(Object, &[u8])> = Vec::new();
    let snapshot = local.snapshot_parts().map(|(bytes, xxh3)| {
        match latest.as_ref().and_then(|m| m.snapshot.as_ref()) {
            Some(there) if there.holds(bytes.len(), &xxh3) => there.clone(),
            _ => {
                let key = format!("snapshots/{base:020}-{xxh3}");
                let object = Object::with_checksum(key, bytes.len(), xxh3, base, base);
                new.push((object.clone(), bytes));
                object
            }
        }
    });
    let journal = segments(
        "journal",
        latest.as_ref().map(|m| m.journal.as_slice()),
        &local.journal,
        base + 1,
        local.seq,
        &mut new,
    );
    let ledger_segments = segments(
        "ledger",
        latest.as_ref().map(|m| m.ledger.as_slice()),
        &local.ledger,
        1,
        local.ledger_seq,
        &mut new,
    );
    let unchanged = latest.as_ref().is_some_and(|m| {
        m.snapshot == snapshot
            && m.journal == journal
            && m.ledger == ledger_segments
            && m.seq == local.seq
    });
    if unchanged {
        return Ok(Prepared {
            manifest: None,
            latest,
            uploaded: Vec::new(),
        });
    }
    // With recipients, each new object goes up sealed, named by its envelope's checksum.
    let (new, [snapshot, journal, ledger_segments]) = crate::seal::seal_new(
        remote,
        new,
        [snapshot.into_iter().collect(), journal, ledger_segments],
    )?;
    let snapshot = snapshot.into_iter().next();
    for (object, bytes) in &new {
        // A name taken already holds these bytes (a name is its contents' checksum): an
        // earlier round uploaded it and failed before its manifest.
        remote.put_new(&object.key, bytes.clone())?;
    }
    let number = latest.as_ref().map_or(1, |m| m.number + 1);
    let epoch = writer
        .epoch
        .unwrap_or_else(|| latest.as_ref().map_or(1, |m| m.epoch + 1));
    let manifest = Manifest {
        version: VERSION,
        number,
        epoch,
        time: Timestamp::now().rfc3339(),
        seq: local.seq,
        ledger_seq: local.ledger_seq,
        ledger_head: ledger::hex(&local.ledger_head),
        snapshot,
        journal,
        ledger: ledger_segments,
        sealed: remote.seals(),
    };
    Ok(Prepared {
        manifest: Some(manifest),
        latest,
        uploaded: new.into_iter().map(|(object, _)| object).collect(),
    })
}

#[cfg(test)]
mod tests {
    use penin_orchestrator::{Change, Memory, Number};

    use super::*;

    fn score(x: f64) -> Vec<Change> {
        vec![Change::AddScore(Number::Float(x))]
    }

    #[test]
    fn read_durable_cuts_at_the_point_and_refuses_moved_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut memory = Memory::open(&path, Some(1000)).unwrap();
        memory.commit(score(0.5)).unwrap();
        memory.sync().unwrap();
        let point = Durable::of(&memory);
        // Written after the point: not read.
        memory.commit(score(0.75)).unwrap();
        let local = Local::read_durable(&path, &point).unwrap();
        assert_eq!(local.seq(), point.seq);
        assert_eq!(local.journal.len() as u64, point.journal_len);
        assert_eq!(local.ledger.len() as u64, point.ledger_len);
        assert!(memory.journal_len() > point.journal_len);

        // A compaction replaces the journal the point names: read again at the next point.
        memory.compact().unwrap();
        let moved = Local::read_durable(&path, &point).unwrap_err();
        assert!(matches!(moved, Error::Moved { .. }), "{moved}");
        assert!(
            moved.to_string().ends_with("another journal replaced it"),
            "{moved}"
        );
        memory.sync().unwrap();
        let local = Local::read_durable(&path, &Durable::of(&memory)).unwrap();
        assert_eq!((local.seq(), local.base().unwrap()), (2, 2));
    }
}
