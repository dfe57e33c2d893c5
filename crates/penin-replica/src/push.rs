//! Pushing: one round uploads what the remote lacks of a local state, then the next
//! manifest, created only if no other writer took its number first.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
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

/// The journal's first bytes that give its base: magic, version, length, flags, base.
const JOURNAL_HEAD: usize = 24;

/// Which file a path named when it was read: its device, inode, size, and modification and
/// change times. A file replaced (renamed over) or written since has another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A local snapshot: its size and XXH3-128, and its bytes, unless a [`Cache`] knew it
/// unchanged (then they are read only if a push needs them).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    id: FileId,
    len: u64,
    xxh3: u128,
    bytes: Option<Vec<u8>>,
}

/// A local journal or ledger as a round read it: its first `skipped` bytes, the contents of
/// `segments` that an earlier round shipped (known from a [`Cache`], not read again), then
/// `bytes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Part {
    /// The file's device and inode, if there is one.
    file: Option<(u64, u64)>,
    skipped: u64,
    segments: Vec<Object>,
    bytes: Vec<u8>,
}

impl Part {
    /// Its length in bytes.
    fn len(&self) -> u64 {
        self.skipped + self.bytes.len() as u64
    }
}

/// What a replication thread shipped already, so that its next round reads only what
/// changed ([`Local::read_durable_with`]): the identity of the snapshot it shipped
/// (device, inode, size, modification and change times) with its size and
/// checksum, so that an unchanged snapshot is neither read nor hashed again; and the file,
/// length and segments of the journal and ledger it shipped, which are append-only between
/// compactions, so that only their bytes past that length are read. A compaction (a new
/// snapshot, a new journal) or anything else that does not match is read whole again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cache {
    snapshot: Option<(FileId, u64, u128)>,
    journal: Option<Shipped>,
    ledger: Option<Shipped>,
}

/// A journal or ledger shipped: its file (device, inode), the length shipped, and the
/// segments holding those bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shipped {
    file: (u64, u64),
    len: u64,
    segments: Vec<Object>,
}

impl Shipped {
    /// What the remote holds of `part`, if `segments` hold all of it.
    fn of(part: &Part, segments: &[Object]) -> Option<Shipped> {
        let covered: u64 = segments.iter().map(Object::content_size).sum();
        Some(Shipped {
            file: part.file?,
            len: (covered == part.len()).then_some(covered)?,
            segments: segments.to_vec(),
        })
    }
}

impl Cache {
    /// An empty cache: the next read is whole.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Notes that the remote holds `local` as `manifest`: the manifest a round of `local`
    /// wrote, or the latest one, which already held it.
    pub fn shipped(&mut self, local: &Local, manifest: &Manifest) {
        self.snapshot = local
            .snapshot
            .as_ref()
            .map(|snapshot| (snapshot.id, snapshot.len, snapshot.xxh3));
        self.journal = Shipped::of(&local.journal, &manifest.journal);
        self.ledger = Shipped::of(&local.ledger, &manifest.ledger);
    }
}

/// A state's files as they are at one moment: what a push round ships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    path: PathBuf,
    snapshot: Option<Snapshot>,
    journal: Part,
    /// The journal's first bytes (its header, or as much of it as there is).
    journal_head: Vec<u8>,
    ledger: Part,
    seq: u64,
    ledger_seq: u64,
    ledger_head: [u8; 32],
    /// How many bytes were read from the files.
    read: u64,
}

/// The error of `what` on the file `path`.
fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { what, path, source }
}

/// Opens the file `path` and gives its metadata; `Ok(None)` if there is none.
fn open(path: &Path) -> Result<Option<(File, std::fs::Metadata)>> {
    match File::open(path) {
        Ok(file) => {
            let meta = file.metadata().map_err(io("read", path))?;
            Ok(Some((file, meta)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            what: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// `len` bytes of `file` (at `path`) from `offset`.
fn read_at(file: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| Error::BadLocal {
        path: path.to_owned(),
        why: format!("{len} bytes do not fit in memory"),
    })?;
    let mut bytes = penin_codec::buffer(len).map_err(io("read", path))?;
    file.read_exact_at(&mut bytes, offset)
        .map_err(io("read", path))?;
    Ok(bytes)
}

/// The snapshot at `path`, read and hashed unless `cached` names it.
fn read_snapshot(path: &Path, cached: Option<(FileId, u64, u128)>) -> Result<Option<Snapshot>> {
    let Some((file, meta)) = open(path)? else {
        return Ok(None);
    };
    let id = FileId::of(&meta);
    if let Some((known, len, xxh3)) = cached
        && known == id
    {
        return Ok(Some(Snapshot {
            id,
            len,
            xxh3,
            bytes: None,
        }));
    }
    let bytes = read_at(&file, path, 0, meta.size())?;
    Ok(Some(Snapshot {
        id,
        len: bytes.len() as u64,
        xxh3: twox_hash::XxHash3_128::oneshot(&bytes),
        bytes: Some(bytes),
    }))
}

/// The first `len` bytes of the journal or ledger `file` (at `path`, of metadata `meta`):
/// past the length `cached` shipped, if it is of this file and not longer.
fn read_part(
    file: &File,
    meta: &std::fs::Metadata,
    path: &Path,
    len: u64,
    cached: Option<&Shipped>,
) -> Result<Part> {
    let here = (meta.dev(), meta.ino());
    let (skipped, segments) = match cached {
        Some(shipped) if shipped.file == here && shipped.len <= len => {
            (shipped.len, shipped.segments.clone())
        }
        _ => (0, Vec::new()),
    };
    Ok(Part {
        file: Some(here),
        skipped,
        segments,
        bytes: read_at(file, path, skipped, len - skipped)?,
    })
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
        let snapshot = read_snapshot(path, None)?;
        let whole = |path: &Path| -> Result<Part> {
            match open(path)? {
                Some((file, meta)) => read_part(&file, &meta, path, meta.size(), None),
                None => Ok(Part::default()),
            }
        };
        let journal = whole(&penin_history::journal_path(path))?;
        let ledger = whole(&penin_history::ledger_path(path))?;
        let read = snapshot.as_ref().map_or(0, |s| s.len) + journal.len() + ledger.len();
        Local {
            path: path.to_owned(),
            snapshot,
            journal_head: journal.bytes.iter().take(JOURNAL_HEAD).copied().collect(),
            journal,
            ledger,
            seq,
            ledger_seq,
            ledger_head,
            read,
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
        Local::read_durable_with(path, durable, &Cache::new())
    }

    /// [`Local::read_durable`], reading only what changed since what `cache` says was
    /// shipped: an unchanged snapshot is neither read nor hashed, and the journal and the
    /// ledger are read from the length shipped (the journal's header is read again, to
    /// check it is the one the point names).
    pub fn read_durable_with(path: &Path, durable: &Durable, cache: &Cache) -> Result<Local> {
        let moved = |file: PathBuf, why: &str| Error::Moved {
            path: file,
            why: why.to_owned(),
        };
        let mut read = 0;
        let snapshot = read_snapshot(path, cache.snapshot)?;
        read += snapshot
            .as_ref()
            .and_then(|s| s.bytes.as_ref())
            .map_or(0, |b| b.len() as u64);
        let journal_path = penin_history::journal_path(path);
        let opened = open(&journal_path)?;
        let (journal, journal_head) = match &durable.journal {
            None if opened.as_ref().is_some_and(|(_, meta)| meta.size() > 0) => {
                return Err(moved(journal_path, "a journal was started since"));
            }
            None => (Part::default(), Vec::new()),
            Some(expected) => {
                let not_yet = || moved(journal_path.clone(), "its header is not yet in place");
                let (file, meta) = opened.ok_or_else(not_yet)?;
                // The header: its first bytes give its length.
                let short = read_at(&file, &journal_path, 0, meta.size().min(12))?;
                let len = match short.get(10..12) {
                    Some(len) => u64::from(u16::from_le_bytes([len[0], len[1]])),
                    None => return Err(not_yet()),
                };
                let head = read_at(&file, &journal_path, 0, meta.size().min(len))?;
                read += (short.len() + head.len()) as u64;
                let found = penin_history::journal::Header::parse(&head, &journal_path)
                    .map_err(|_| not_yet())?;
                if found != *expected {
                    return Err(moved(journal_path, "another journal replaced it"));
                }
                let xxh3 = snapshot
                    .as_ref()
                    .map_or_else(|| twox_hash::XxHash3_128::oneshot(&[]), |s| s.xxh3);
                if xxh3 != found.identity.xxh3 {
                    return Err(moved(
                        path.to_owned(),
                        "it is not the snapshot the journal extends",
                    ));
                }
                if meta.size() < durable.journal_len {
                    return Err(moved(journal_path, "it is shorter than its durable length"));
                }
                let part = read_part(
                    &file,
                    &meta,
                    &journal_path,
                    durable.journal_len,
                    cache.journal.as_ref(),
                )?;
                read += part.bytes.len() as u64;
                (part, head)
            }
        };
        let ledger_path = penin_history::ledger_path(path);
        let ledger = match open(&ledger_path)? {
            Some((file, meta)) if meta.size() >= durable.ledger_len => read_part(
                &file,
                &meta,
                &ledger_path,
                durable.ledger_len,
                cache.ledger.as_ref(),
            )?,
            None if durable.ledger_len == 0 => Part::default(),
            _ => return Err(moved(ledger_path, "it is shorter than its durable length")),
        };
        read += ledger.bytes.len() as u64;
        Local {
            path: path.to_owned(),
            snapshot,
            journal,
            journal_head,
            ledger,
            seq: durable.seq,
            ledger_seq: durable.ledger_seq,
            ledger_head: durable.ledger_head,
            read,
        }
        .checked()
    }

    /// Whether `there`, the remote's snapshot, holds the local one.
    fn snapshot_held(&self, there: Option<&Object>) -> bool {
        match (&self.snapshot, there) {
            (Some(snapshot), Some(there)) => usize::try_from(snapshot.len)
                .is_ok_and(|len| there.holds(len, &format!("{:032x}", snapshot.xxh3))),
            _ => false,
        }
    }

    /// The snapshot's bytes and their [`manifest::checksum`]: those read, or, if a cache
    /// said it was unchanged, read now and checked to be those it knew (else
    /// [`Error::Moved`]).
    fn snapshot_bytes(&self) -> Result<Option<(std::borrow::Cow<'_, [u8]>, String)>> {
        let Some(snapshot) = &self.snapshot else {
            return Ok(None);
        };
        let xxh3 = format!("{:032x}", snapshot.xxh3);
        if let Some(bytes) = &snapshot.bytes {
            return Ok(Some((bytes.as_slice().into(), xxh3)));
        }
        let moved = || Error::Moved {
            path: self.path.clone(),
            why: "it changed since it was read".to_owned(),
        };
        let (file, meta) = open(&self.path)?.ok_or_else(moved)?;
        if FileId::of(&meta) != snapshot.id {
            return Err(moved());
        }
        let bytes = read_at(&file, &self.path, 0, snapshot.len)?;
        if twox_hash::XxHash3_128::oneshot(&bytes) != snapshot.xxh3 {
            return Err(moved());
        }
        Ok(Some((bytes.into(), xxh3)))
    }

    /// This state, if it is one: a snapshot or a journal, whose base can be found.
    fn checked(self) -> Result<Local> {
        if self.snapshot.is_none() && self.journal.len() == 0 {
            return Err(Error::NoState(self.path));
        }
        self.base()?;
        Ok(self)
    }

    /// The sequence number of the last change the snapshot holds: the journal's base.
    fn base(&self) -> Result<u64> {
        if self.journal.len() == 0 {
            return Ok(self.seq);
        }
        let bad = |why: &str| Error::BadLocal {
            path: penin_history::journal_path(&self.path),
            why: why.to_owned(),
        };
        let head = &self.journal_head;
        if head.len() < JOURNAL_HEAD || &head[..8] != JOURNAL_MAGIC {
            return Err(bad("not a penin journal (its magic number)"));
        }
        let mut base = [0; 8];
        base.copy_from_slice(&head[16..24]);
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

    /// How many bytes were read from the files to make it: with a [`Cache`], those of what
    /// changed since.
    pub fn bytes_read(&self) -> u64 {
        self.read
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

/// The segments of a file as it is now (`part`, of the file at `path`): those of the latest
/// manifest it continues, and a new one for its bytes after them, named
/// `DIR/FIRST-LAST-XXH3`. A part read past segments a cache knew must continue the latest
/// manifest's segments; if it does not (the remote moved on in a way this writer did not
/// ship), [`Error::Moved`] says to read it whole again.
fn segments<'a>(
    dir: &str,
    path: &Path,
    previous: Option<&[Object]>,
    part: &'a Part,
    first_of_all: u64,
    last: u64,
    new: &mut Vec<(Object, &'a [u8])>,
) -> Result<Vec<Object>> {
    let bytes = part.bytes.as_slice();
    let (mut kept, offset) = if part.skipped == 0 {
        previous
            .and_then(|previous| kept_segments(previous, bytes))
            .unwrap_or_default()
    } else {
        let continued = previous.and_then(|previous| {
            let rest = previous.strip_prefix(part.segments.as_slice())?;
            let (more, offset) = kept_segments(rest, bytes)?;
            Some(([part.segments.as_slice(), &more].concat(), offset))
        });
        continued.ok_or_else(|| Error::Moved {
            path: path.to_owned(),
            why: "the latest manifest does not hold what this writer shipped of it".to_owned(),
        })?
    };
    if offset < bytes.len() {
        let first = kept.last().map_or(first_of_all, |s| s.last + 1);
        let part = &bytes[offset..];
        let key = format!("{dir}/{first:020}-{last:020}-{}", manifest::checksum(part));
        let object = Object::new(key, part, first, last);
        new.push((object.clone(), part));
        kept.push(object);
    }
    Ok(kept)
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

/// Fences `writer` ([`Error::Fenced`]) if the latest manifest is another epoch's than the
/// one it took, or not the one it expects.
fn fence(remote: &Remote, writer: &Writer, latest: Option<&Manifest>) -> Result<()> {
    if let (Some(mine), Some(latest)) = (writer.epoch, latest)
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
        let found = latest.map_or(0, |m| m.number);
        if found != expected {
            return Err(Error::Fenced {
                url: remote.url().to_owned(),
                how: format!(
                    "wrote manifest {found} where manifest {expected} was expected to be the latest"
                ),
            });
        }
    }
    Ok(())
}

/// The first half of [`push_round`]: reads the latest manifest, fences `writer` if another
/// took over, uploads the objects it lacks and makes the next manifest, without writing it.
pub fn prepare(remote: &Remote, writer: &Writer, local: &Local) -> Result<Prepared> {
    let latest = remote.latest()?;
    fence(remote, writer, latest.as_ref())?;
    crate::seal::check_mixing(remote, latest.as_ref())?;
    let base = local.base()?;
    let there = latest.as_ref().and_then(|m| m.snapshot.as_ref());
    // The snapshot's bytes only if the remote lacks it: a cached one is read again then.
    let snapshot_bytes = if local.snapshot_held(there) {
        None
    } else {
        local.snapshot_bytes()?
    };
    let mut new: Vec<(Object, &[u8])> = Vec::new();
    let snapshot = match (there, &snapshot_bytes) {
        (_, Some((bytes, xxh3))) => {
            let key = format!("snapshots/{base:020}-{xxh3}");
            let object = Object::with_checksum(key, bytes.len(), xxh3.clone(), base, base);
            new.push((object.clone(), bytes));
            Some(object)
        }
        (Some(there), None) if local.snapshot.is_some() => Some(there.clone()),
        _ => None,
    };
    let journal = segments(
        "journal",
        &penin_history::journal_path(&local.path),
        latest.as_ref().map(|m| m.journal.as_slice()),
        &local.journal,
        base + 1,
        local.seq,
        &mut new,
    )?;
    let ledger_segments = segments(
        "ledger",
        &penin_history::ledger_path(&local.path),
        latest.as_ref().map(|m| m.ledger.as_slice()),
        &local.ledger,
        1,
        local.ledger_seq,
        &mut new,
    )?;
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

    #[test]
    fn a_length_past_memory_is_a_read_error_not_an_abort() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"abc").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(read_at(&file, &path, 1, 2).unwrap(), b"bc");
        // A pebibyte, as a file's metadata may claim: refused, not aborted.
        let error = read_at(&file, &path, 0, 1 << 50).unwrap_err();
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("no memory for 1125899906842624 bytes"),
            "{error}"
        );
    }

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

    /// A remote in memory.
    fn remote() -> Remote {
        Remote::with_store(
            "s3://b/p",
            std::sync::Arc::new(object_store::memory::InMemory::new()),
        )
        .unwrap()
    }

    /// One replication round at `memory`'s point, reading through `cache` and noting what
    /// was shipped in it.
    fn round(
        remote: &Remote,
        writer: &mut Writer,
        cache: &mut Cache,
        memory: &Memory,
    ) -> (Local, Manifest) {
        let local = Local::read_durable_with(memory.path(), &Durable::of(memory), cache).unwrap();
        let pushed = push_round(remote, writer, &local).unwrap();
        let manifest = pushed.manifest.or(pushed.current).unwrap();
        cache.shipped(&local, &manifest);
        (local, manifest)
    }

    /// The size of a file.
    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// Restores the latest manifest of `remote` beside `memory`'s state and checks that its
    /// files are those of the state, bit for bit.
    fn restores_bit_for_bit(remote: &Remote, memory: &Memory) {
        let dir = memory.path().parent().unwrap().join("restored");
        let _ = std::fs::remove_dir_all(&dir);
        let target = dir.join("state.json");
        crate::restore(remote, &target, crate::Pick::Latest, false).unwrap();
        for (from, to) in [
            (memory.path().to_owned(), target.clone()),
            (
                penin_history::journal_path(memory.path()),
                penin_history::journal_path(&target),
            ),
            (
                penin_history::ledger_path(memory.path()),
                penin_history::ledger_path(&target),
            ),
        ] {
            assert_eq!(
                std::fs::read(&from).unwrap(),
                std::fs::read(&to).unwrap(),
                "{}",
                from.display()
            );
        }
    }

    #[test]
    fn a_cached_round_reads_and_ships_only_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut memory = Memory::open(&path, Some(1000)).unwrap();
        for x in 0..100 {
            memory.commit(score(f64::from(x) / 128.0)).unwrap();
        }
        memory.compact().unwrap();
        memory.commit(score(0.5)).unwrap();
        memory.sync().unwrap();
        let (remote, mut writer, mut cache) = (remote(), Writer::new(), Cache::new());
        let journal = penin_history::journal_path(&path);
        let ledger = penin_history::ledger_path(&path);

        // The first round reads everything.
        let (first, manifest) = round(&remote, &mut writer, &mut cache, &memory);
        let snapshot = size(&path);
        let (journal_then, ledger_then) = (size(&journal), size(&ledger));
        assert!(snapshot > 0 && ledger_then > 0);
        // The journal's header is read first, to check it: 12 bytes for its length, then it.
        let header = 12
            + penin_history::journal::Header::parse(&std::fs::read(&journal).unwrap(), &journal)
                .unwrap()
                .encoded_len();
        assert_eq!(
            first.bytes_read(),
            header + snapshot + journal_then + ledger_then
        );
        assert_eq!((manifest.seq, manifest.journal.len()), (101, 1));

        // After an append, only the journal's header and the appended bytes are read, and
        // the new records go up as a second segment.
        memory.commit(score(0.625)).unwrap();
        memory.commit(score(0.75)).unwrap();
        memory.sync().unwrap();
        let (second, manifest) = round(&remote, &mut writer, &mut cache, &memory);
        assert_eq!(
            second.bytes_read(),
            header + (size(&journal) - journal_then) + (size(&ledger) - ledger_then)
        );
        assert!(second.bytes_read() < snapshot);
        assert_eq!((manifest.seq, manifest.journal.len()), (103, 2));
        assert_eq!(manifest.journal[1].first, 102);
        restores_bit_for_bit(&remote, &memory);

        // Nothing new: nothing but the header read, nothing written.
        let local = Local::read_durable_with(&path, &Durable::of(&memory), &cache).unwrap();
        assert_eq!(local.bytes_read(), header);
        let pushed = push_round(&remote, &mut writer, &local).unwrap();
        assert!(pushed.manifest.is_none() && pushed.uploaded.is_empty());
    }

    #[test]
    fn after_a_compaction_a_cached_round_ships_the_new_snapshot_and_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut memory = Memory::open(&path, Some(1000)).unwrap();
        memory.commit(score(0.125)).unwrap();
        memory.compact().unwrap();
        memory.commit(score(0.25)).unwrap();
        memory.sync().unwrap();
        let (remote, mut writer, mut cache) = (remote(), Writer::new(), Cache::new());
        let (_, before) = round(&remote, &mut writer, &mut cache, &memory);

        memory.commit(score(0.375)).unwrap();
        memory.compact().unwrap();
        memory.commit(score(0.5)).unwrap();
        memory.sync().unwrap();
        let (local, after) = round(&remote, &mut writer, &mut cache, &memory);
        // The new snapshot and the new journal are read whole.
        assert!(local.bytes_read() >= size(&path) + size(&penin_history::journal_path(&path)));
        let (old, new) = (before.snapshot.unwrap(), after.snapshot.unwrap());
        assert_ne!(old.key, new.key);
        assert_eq!((new.first, after.seq), (3, 4));
        assert_eq!(after.journal.len(), 1);
        assert_eq!(after.journal[0].first, 4);
        restores_bit_for_bit(&remote, &memory);
    }

    #[test]
    fn a_cache_the_remote_does_not_continue_is_refused_and_a_whole_read_ships() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut memory = Memory::open(&path, Some(1000)).unwrap();
        memory.commit(score(0.125)).unwrap();
        memory.sync().unwrap();
        let mut cache = Cache::new();
        round(&remote(), &mut Writer::new(), &mut cache, &memory);
        memory.commit(score(0.25)).unwrap();
        memory.sync().unwrap();
        // Another remote holds nothing of what the cache says was shipped.
        let other = remote();
        let local = Local::read_durable_with(&path, &Durable::of(&memory), &cache).unwrap();
        let error = push_round(&other, &mut Writer::new(), &local).unwrap_err();
        assert!(matches!(error, Error::Moved { .. }), "{error}");
        let (_, manifest) = round(&other, &mut Writer::new(), &mut Cache::new(), &memory);
        assert_eq!(manifest.seq, 2);
        restores_bit_for_bit(&other, &memory);
    }
}
