//! Checkpoints: immutable, checksummed copies of a whole state in `NAME.checkpoints/`, and
//! their retention.
//!
//! A checkpoint is two files named by its [ID](Timestamp::checkpoint_id), the UTC time to
//! the millisecond (`20261129T070540.123Z`):
//!
//! * `<ID>.json`: the state, in the seed's JSON format, as the caller writes it, so that the
//!   Python tool and `penin verify` read a checkpoint as they read a state file;
//! * `<ID>.meta`: one line of compact JSON, written once the data file is durable, that says
//!   what the checkpoint is and holds the data's size and BLAKE2b-256:
//!
//! ```text
//! {"penin_checkpoint":1,"id":"20261129T070540.123Z","time":"2026-11-29T07:05:40.123456Z",
//!  "tag":"weekly","journal":42,"ledger_seq":17,"ledger_head":"<64 hex digits>","size":5120,
//!  "blake2b":"<64 hex digits>","knowledge":3,"tasks":100,"scores":100}
//! ```
//!
//! (one line in the file, ending in a newline). Both files are written by
//! [`penin_store::write_atomic_in`] (temporary file, fsync, rename, fsync of the
//! directory), the meta file after the data file: a meta file on disk means its data file
//! was whole and synced. A data file without its meta file is an unfinished checkpoint that a
//! crash or a failure interrupted: [`list`] does not list it as a checkpoint but reports it,
//! and [`remove_unfinished`] removes it. [`remove`] removes the meta file first, so that a
//! crash in the middle leaves an unfinished checkpoint, never a listed one without data.
//!
//! A meta file is read with its version checked before anything else: a version newer than
//! [`VERSION`] is [`Error::NewerVersion`], naming both. A meta file that cannot be read as
//! one — not JSON, a field missing or of the wrong type, an ID that is not its file's name —
//! is an error naming the file ([`Error::MetaSyntax`], [`Error::BadMeta`]), not something
//! [`list`] passes over: it can only be damage, and the listing it would leave out is the one
//! that retention decides on. Extra fields are ignored, so that a later version 1 writer can
//! add some.
//!
//! Two checkpoints taken in the same millisecond get different IDs: the later one's ID is
//! moved on by a millisecond until both names are free. A checkpoint's [`Meta::time`] stays
//! the time it was given (to the microsecond, as the meta file writes it).
//!
//! Writing assumes that one process at a time writes the directory: the state's lock
//! ([`penin_store::Lock`]) held.
//!
//! # Retention
//!
//! [`plan_prune`] decides which checkpoints to keep, with restic's rules: `keep_last N` keeps
//! the `N` newest; `keep_within D` keeps those taken less than `D` before the newest
//! checkpoint (not before now: a state left alone for a month keeps its last checkpoints);
//! a tagged checkpoint is kept unless `tags_too`. A checkpoint is kept if any rule keeps it.
//! A prune needs at least one of `keep_last` and `keep_within`, and as in restic a rule of 0
//! counts as none: `keep_last 0` alone would remove every untagged checkpoint, which a
//! mistyped option should not do. The plan is a dry run; [`remove`] carries it out.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use penin_history::checkpoint::{self, Counts, NewCheckpoint, Selector};
//! use penin_history::time::Timestamp;
//! use penin_store::RealFs;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let dir = penin_history::checkpoints_dir(&root.path().join("state.json"));
//! let state = br#"{"knowledge_base": {}, "task_history": [], "score_history": [0.5]}"#;
//!
//! for (time, tag) in [("2026-11-27T10:00:00Z", Some("before-upgrade")),
//!                     ("2026-11-28T10:00:00Z", None),
//!                     ("2026-11-29T10:00:00Z", None)] {
//!     let new = NewCheckpoint {
//!         time: Timestamp::parse(time)?,
//!         tag,
//!         journal: 7,
//!         ledger_seq: 3,
//!         ledger_head: [0; 32],
//!         counts: Counts { knowledge: 0, tasks: 0, scores: 1 },
//!     };
//!     checkpoint::write(&RealFs, &dir, &new, |w| w.write_all(state))?;
//! }
//!
//! let listing = checkpoint::list(&dir)?;
//! let ids: Vec<&str> = listing.checkpoints.iter().map(|m| m.id.as_str()).collect();
//! assert_eq!(ids, ["20261127T100000.000Z", "20261128T100000.000Z", "20261129T100000.000Z"]);
//!
//! // The state as it was at noon on the 28th, checked before it is used.
//! let at = Selector::At(Timestamp::parse("2026-11-28T12:00:00Z")?);
//! let meta = checkpoint::select(&listing.checkpoints, &at)?;
//! checkpoint::verify(&dir, meta)?;
//! assert_eq!(std::fs::read(checkpoint::data_path(&dir, meta))?, state);
//!
//! // Keep the newest and the tagged one.
//! let plan = checkpoint::plan_prune(&listing.checkpoints, Some(1), None, false)?;
//! assert_eq!(plan.keep.len(), 2);
//! for meta in &plan.remove {
//!     checkpoint::remove(&RealFs, &dir, meta)?;
//! }
//! let left: Vec<String> = checkpoint::list(&dir)?.checkpoints.into_iter().map(|m| m.id).collect();
//! assert_eq!(left, ["20261127T100000.000Z", "20261129T100000.000Z"]);
//! # Ok(())
//! # }
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use blake2::Blake2b;
use blake2::Digest;
use blake2::digest::consts::U32;
use penin_codec::{Map, Number, Value};
use penin_store::{Durability, Fs};

use crate::time::Timestamp;

/// The version of the meta file this module writes, and the newest it reads.
pub const VERSION: u64 = 1;

/// The key of the version, first in every meta file.
const VERSION_KEY: &str = "penin_checkpoint";

/// A meta file is a few hundred bytes; one larger than this is not one, and is not read
/// into memory whole.
const MAX_META_SIZE: u64 = 64 * 1024;

/// BLAKE2b-256: a 256-bit digest, as Python's `hashlib.blake2b(digest_size=32)`.
type Blake2b256 = Blake2b<U32>;

/// A result whose error is this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error writing, reading or choosing checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing a file of a checkpoint failed; the store's error names the file and the step.
    #[error(transparent)]
    Store(#[from] penin_store::Error),
    /// Another file-system call failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done, as a verb phrase: `read`, `list directory`.
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// A checkpoint's data file is missing or does not match its meta file.
    #[error("checkpoint {id} is damaged: {what}")]
    Damaged {
        /// The checkpoint's ID.
        id: String,
        /// What does not match.
        what: String,
    },
    /// A meta file is not JSON.
    #[error("{} is not a checkpoint meta file", path.display())]
    MetaSyntax {
        /// The meta file.
        path: PathBuf,
        /// Where its JSON goes wrong.
        #[source]
        source: penin_codec::Error,
    },
    /// A meta file is JSON, but not a meta file of the version it claims.
    #[error("{} is not a valid checkpoint meta file: {what}", path.display())]
    BadMeta {
        /// The meta file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A meta file was written by a newer penin, in a version this one cannot read.
    #[error(
        "{} is a checkpoint of version {found}, newer than version {supported} that this penin reads",
        path.display()
    )]
    NewerVersion {
        /// The meta file.
        path: PathBuf,
        /// Its version.
        found: u64,
        /// The newest version this penin reads, [`VERSION`].
        supported: u64,
    },
    /// No checkpoint matches a [`Selector`].
    #[error("no checkpoint {} ({available})", Wanted(.selector))]
    NotFound {
        /// What was asked for.
        selector: Selector,
        /// What there is instead.
        available: String,
    },
    /// [`plan_prune`] was given no rule: it would not know what to keep.
    #[error("no retention rule: give keep_last or keep_within (a rule of 0 counts as none)")]
    NoPolicy,
    /// A tag that cannot be written.
    #[error("invalid tag {tag:?}: {what}")]
    InvalidTag {
        /// The tag.
        tag: String,
        /// What is wrong with it.
        what: &'static str,
    },
}

impl Error {
    fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    fn bad_meta(path: &Path, what: impl Into<String>) -> Error {
        Error::BadMeta {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

/// How many entries a state held when it was checkpointed, so that a listing can say so
/// without reading the data file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries of the knowledge base.
    pub knowledge: u64,
    /// Items of the task history.
    pub tasks: u64,
    /// Items of the score history.
    pub scores: u64,
}

/// What [`write()`] needs to know of a checkpoint besides its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewCheckpoint<'a> {
    /// When the state was taken (usually [`Timestamp::now`]); it names the checkpoint.
    pub time: Timestamp,
    /// A name to find it by, such as `before-upgrade`; not empty.
    pub tag: Option<&'a str>,
    /// The sequence number of the last journal record the state includes.
    pub journal: u64,
    /// The sequence number of the ledger's last entry when the checkpoint was taken.
    pub ledger_seq: u64,
    /// The hash of that entry, the head of the ledger's chain.
    pub ledger_head: [u8; 32],
    /// How many entries the state holds.
    pub counts: Counts,
}

/// A checkpoint, as its meta file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Its name: the time to the millisecond, moved on if another checkpoint had it.
    pub id: String,
    /// When the state was taken, to the microsecond.
    pub time: Timestamp,
    /// Its tag, if it has one.
    pub tag: Option<String>,
    /// The sequence number of the last journal record the state includes.
    pub journal: u64,
    /// The sequence number of the ledger's last entry when it was taken.
    pub ledger_seq: u64,
    /// The hash of that ledger entry.
    pub ledger_head: [u8; 32],
    /// The size of the data file in bytes.
    pub size: u64,
    /// The BLAKE2b-256 of the data file.
    pub blake2b: [u8; 32],
    /// How many entries the state holds.
    pub counts: Counts,
}

/// What a checkpoint directory holds, as [`list`] finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// The checkpoints, oldest first (by time, then by ID).
    pub checkpoints: Vec<Meta>,
    /// Data files without their meta file, and temporary files of an interrupted write of
    /// either: what a crash or a failed [`write()`] left. A caller warns of them;
    /// [`remove_unfinished`] removes them.
    pub unfinished: Vec<PathBuf>,
    /// Everything else in the directory, left alone.
    pub foreign: Vec<PathBuf>,
}

/// Which checkpoint [`select`] picks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// The one with this ID.
    Id(String),
    /// The newest one with this tag.
    Tag(String),
    /// The newest one taken at or before this time.
    At(Timestamp),
    /// The newest one.
    Latest,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "id {id}"),
            Selector::Tag(tag) => write!(f, "tag {tag:?}"),
            Selector::At(time) => write!(f, "at {time}"),
            Selector::Latest => f.write_str("latest"),
        }
    }
}

/// A selector as the predicate of "no checkpoint …".
struct Wanted<'a>(&'a Selector);

impl fmt::Display for Wanted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Selector::Id(id) => write!(f, "has the id {id}"),
            Selector::Tag(tag) => write!(f, "is tagged {tag:?}"),
            Selector::At(time) => write!(f, "was taken at or before {time}"),
            Selector::Latest => f.write_str("exists"),
        }
    }
}

/// Why [`plan_prune`] keeps a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// It is among the `keep_last` newest; its rank, the newest being 1.
    Last(usize),
    /// It was taken less than `keep_within` before the newest checkpoint.
    Within,
    /// It has a tag, and tagged checkpoints were not to be pruned.
    Tagged,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last(rank) => write!(f, "last #{rank}"),
            Reason::Within => f.write_str("within"),
            Reason::Tagged => f.write_str("tagged"),
        }
    }
}

/// What a prune would do: each checkpoint is in one of the two lists, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The checkpoints to keep, each with every reason to (at least one).
    pub keep: Vec<(Meta, Vec<Reason>)>,
    /// The checkpoints to remove.
    pub remove: Vec<Meta>,
}

/// Writes a checkpoint into `dir`, creating the directory (mode 0700) if need be: the data
/// file with what `body` writes, then the meta file. Returns its [`Meta`].
///
/// `body` writes the state's bytes; they are hashed and counted on their way to the file.
/// An error it returns fails the write (as [`Error::Store`], with the error as its source).
///
/// On error, a data file may be left without its meta file: an unfinished checkpoint,
/// which [`list`] reports and [`remove_unfinished`] removes. The checkpoint is listed only
/// once both files are durable, except after a failure of the very last step, the sync of the
/// directory after the meta file's rename: the checkpoint is then whole on disk, but may
/// not survive a power loss, and the write is reported as failed.
pub fn write<F: Fs>(
    fs: &F,
    dir: &Path,
    new: &NewCheckpoint<'_>,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<Meta> {
    if new.tag.is_some_and(str::is_empty) {
        return Err(Error::InvalidTag {
            tag: String::new(),
            what: "a tag cannot be empty",
        });
    }
    let id = free_id(fs, dir, new.time)?;
    let data = dir.join(format!("{id}.json"));
    let mut digest = None;
    penin_store::write_atomic_in(fs, &data, Durability::Full, |writer| {
        let mut hashing = HashingWriter {
            inner: writer,
            hasher: Blake2b256::new(),
            size: 0,
        };
        body(&mut hashing)?;
        digest = Some((hashing.size, hashing.hasher.finalize().into()));
        Ok(())
    })?;
    let Some((size, blake2b)) = digest else {
        // `write_atomic_in` calls the closure before it can succeed.
        unreachable!("the data file was written without its writer being called")
    };
    let meta = Meta {
        id,
        // The meta file holds the time to the microsecond: return what `list` reads back.
        time: new.time.floor(1_000),
        tag: new.tag.map(str::to_owned),
        journal: new.journal,
        ledger_seq: new.ledger_seq,
        ledger_head: new.ledger_head,
        size,
        blake2b,
        counts: new.counts,
    };
    let bytes = meta_bytes(&meta);
    penin_store::write_atomic_in(fs, meta_path(dir, &meta), Durability::Full, |writer| {
        writer.write_all(&bytes)
    })?;
    Ok(meta)
}

/// The ID for a checkpoint taken at `time`: its millisecond, or the first later one whose
/// data and meta names are both free in `dir`.
fn free_id<F: Fs>(fs: &F, dir: &Path, time: Timestamp) -> Result<String> {
    let mut candidate = time;
    loop {
        let id = candidate.checkpoint_id();
        let mut free = true;
        for extension in ["json", "meta"] {
            let path = dir.join(format!("{id}.{extension}"));
            match fs.symlink_metadata(&path) {
                Ok(_) => free = false,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(Error::io("read metadata of", &path)(error)),
            }
        }
        if free {
            return Ok(id);
        }
        // The directory holds finitely many names, so this ends well before the year 2262
        // unless `time` is within that many milliseconds of it.
        candidate = candidate
            .floor(1_000_000)
            .checked_add(Duration::from_millis(1))
            .ok_or_else(|| {
                Error::io("find a free checkpoint name in", dir)(io::Error::other(
                    "no millisecond is left before the end of the timestamp range",
                ))
            })?;
    }
}

/// A writer that hashes and counts what it passes on.
struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: Blake2b256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The meta file's bytes: one line of compact JSON, the version first.
fn meta_bytes(meta: &Meta) -> Vec<u8> {
    let tag = match &meta.tag {
        // The codec escapes the tag as Python's `json` does.
        Some(tag) => {
            String::from_utf8_lossy(&penin_codec::to_vec_compact(&Value::from(tag.as_str())))
                .into_owned()
        }
        None => "null".to_owned(),
    };
    format!(
        "{{\"{VERSION_KEY}\":{VERSION},\"id\":\"{}\",\"time\":\"{}\",\"tag\":{tag},\"journal\":{},\
         \"ledger_seq\":{},\"ledger_head\":\"{}\",\"size\":{},\"blake2b\":\"{}\",\
         \"knowledge\":{},\"tasks\":{},\"scores\":{}}}\n",
        meta.id,
        meta.time.rfc3339(),
        meta.journal,
        meta.ledger_seq,
        hex(&meta.ledger_head),
        meta.size,
        hex(&meta.blake2b),
        meta.counts.knowledge,
        meta.counts.tasks,
        meta.counts.scores,
    )
    .into_bytes()
}

/// Lowercase hexadecimal.
fn hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    text
}

/// 64 hexadecimal digits (either case) to 32 bytes.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |d: u8| char::from(d).to_digit(16);
        // Each digit is below 16, so the pair fits a byte.
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(bytes)
}

/// The data file of a checkpoint: `<ID>.json` in `dir`.
pub fn data_path(dir: &Path, meta: &Meta) -> PathBuf {
    dir.join(format!("{}.json", meta.id))
}

/// The meta file of a checkpoint: `<ID>.meta` in `dir`.
pub fn meta_path(dir: &Path, meta: &Meta) -> PathBuf {
    dir.join(format!("{}.meta", meta.id))
}

/// What a name in a checkpoint directory is.
enum Entry<'a> {
    /// `<ID>.json`
    Data(&'a str),
    /// `<ID>.meta`
    Meta(&'a str),
    /// `.<ID>.json.penin-tmp.…` or `.<ID>.meta.penin-tmp.…`: a write that did not finish.
    Temporary,
    /// Anything else.
    Foreign,
}

fn classify(name: &str) -> Entry<'_> {
    let is_id = |id: &str| Timestamp::from_checkpoint_id(id).is_some();
    if let Some(id) = name.strip_suffix(".json").filter(|id| is_id(id)) {
        return Entry::Data(id);
    }
    if let Some(id) = name.strip_suffix(".meta").filter(|id| is_id(id)) {
        return Entry::Meta(id);
    }
    let target = name
        .strip_prefix('.')
        .and_then(|rest| rest.split_once(".penin-tmp."))
        .map(|(target, _)| target);
    match target.map(classify) {
        Some(Entry::Data(_) | Entry::Meta(_)) => Entry::Temporary,
        _ => Entry::Foreign,
    }
}

/// Lists the checkpoints in `dir`, oldest first, with the unfinished ones and any other
/// files apart. A missing directory holds none.
///
/// Every meta file is read; one that cannot be read is an error naming it (see the
/// [module documentation](self)). Data files are not read: [`verify`] reads one.
pub fn list(dir: &Path) -> Result<Listing> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(error) => return Err(Error::io("list directory", dir)(error)),
    };
    let mut listing = Listing::default();
    let mut data = Vec::new();
    let mut metas = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io("list directory", dir))?;
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(Error::io("read metadata of", &path))?
            .is_dir();
        let name = entry.file_name();
        match name.to_str().map(classify) {
            Some(_) if is_dir => listing.foreign.push(path),
            Some(Entry::Data(id)) => data.push((id.to_owned(), path)),
            Some(Entry::Meta(id)) => metas.push((id.to_owned(), path)),
            Some(Entry::Temporary) => listing.unfinished.push(path),
            Some(Entry::Foreign) | None => listing.foreign.push(path),
        }
    }
    for (id, path) in &metas {
        let meta = read_meta(path)?;
        if meta.id != *id {
            let what = format!("its id {} is not its file's name", meta.id);
            return Err(Error::bad_meta(path, what));
        }
        listing.checkpoints.push(meta);
    }
    for (id, path) in data {
        if !metas.iter().any(|(meta, _)| *meta == id) {
            listing.unfinished.push(path);
        }
    }
    listing.checkpoints.sort_by(order);
    listing.unfinished.sort();
    listing.foreign.sort();
    Ok(listing)
}

/// Oldest first: by time, then by ID.
fn order(a: &Meta, b: &Meta) -> Ordering {
    a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id))
}

/// Reads and checks one meta file.
fn read_meta(path: &Path) -> Result<Meta> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_META_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io("read", path))?;
    if bytes.len() as u64 > MAX_META_SIZE {
        let what = format!("it is larger than {MAX_META_SIZE} bytes");
        return Err(Error::bad_meta(path, what));
    }
    parse_meta(path, &bytes)
}

/// A meta file's contents to a [`Meta`]; `path` is for errors.
fn parse_meta(path: &Path, bytes: &[u8]) -> Result<Meta> {
    // The version, first of all: a later version may change what follows it, even so much
    // that it is no longer JSON this reader takes.
    if let Some(found) = leading_version(bytes) {
        check_version(path, found)?;
    }
    let value: Value = penin_codec::from_slice(bytes).map_err(|source| Error::MetaSyntax {
        path: path.to_path_buf(),
        source,
    })?;
    let Value::Object(map) = value else {
        let what = format!("expected an object, found {}", value.kind());
        return Err(Error::bad_meta(path, what));
    };
    let fields = Fields { path, map: &map };
    check_version(path, fields.integer(VERSION_KEY)?)?;
    let id = fields.string("id")?;
    if Timestamp::from_checkpoint_id(id).is_none() {
        return Err(fields.invalid("id", "a checkpoint id such as 20261129T070540.123Z"));
    }
    let time = Timestamp::parse(fields.string("time")?)
        .map_err(|error| fields.invalid("time", &format!("a time ({error})")))?;
    let tag = match fields.get("tag")? {
        Value::Null => None,
        Value::String(tag) if !tag.is_empty() => Some(tag.to_string()),
        _ => return Err(fields.invalid("tag", "null or a non-empty string")),
    };
    Ok(Meta {
        id: id.to_owned(),
        time,
        tag,
        journal: fields.integer("journal")?,
        ledger_seq: fields.integer("ledger_seq")?,
        ledger_head: fields.hash("ledger_head")?,
        size: fields.integer("size")?,
        blake2b: fields.hash("blake2b")?,
        counts: Counts {
            knowledge: fields.integer("knowledge")?,
            tasks: fields.integer("tasks")?,
            scores: fields.integer("scores")?,
        },
    })
}

/// The version of a meta file that starts as this module writes one,
/// `{"penin_checkpoint":N`, read without parsing the rest. A version too large for a `u64`
/// is `u64::MAX`: newer than any.
fn leading_version(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.strip_prefix(format!("{{\"{VERSION_KEY}\":").as_bytes())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].iter().try_fold(0_u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(number.unwrap_or(u64::MAX))
}

fn check_version(path: &Path, found: u64) -> Result<()> {
    match found.cmp(&VERSION) {
        Ordering::Equal => Ok(()),
        Ordering::Greater => Err(Error::NewerVersion {
            path: path.to_path_buf(),
            found,
            supported: VERSION,
        }),
        Ordering::Less => Err(Error::bad_meta(path, format!("unknown version {found}"))),
    }
}

/// The fields of a meta file, read with errors naming the file and the field.
struct Fields<'a> {
    path: &'a Path,
    map: &'a Map,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.map
            .get(key)
            .ok_or_else(|| Error::bad_meta(self.path, format!("field {key:?} is missing")))
    }

    fn invalid(&self, key: &str, expected: &str) -> Error {
        Error::bad_meta(self.path, format!("field {key:?} is not {expected}"))
    }

    fn integer(&self, key: &str) -> Result<u64> {
        let value = match self.get(key)? {
            Value::Number(Number::Int(n)) => u64::try_from(*n).ok(),
            Value::Number(Number::Big(n)) => n.as_str().parse().ok(),
            _ => None,
        };
        value.ok_or_else(|| self.invalid(key, "an integer from 0 to 2^64-1"))
    }

    fn string(&self, key: &str) -> Result<&str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| self.invalid(key, "a string"))
    }

    fn hash(&self, key: &str) -> Result<[u8; 32]> {
        unhex(self.string(key)?).ok_or_else(|| self.invalid(key, "64 hexadecimal digits"))
    }
}

/// Picks a checkpoint: the one with an ID, the newest with a tag, the newest at or before a
/// time, or the newest. `checkpoints` may be in any order; among checkpoints of the same
/// time, the one with the greatest ID is the newest.
///
/// If none matches, [`Error::NotFound`] says what there is instead.
pub fn select<'a>(checkpoints: &'a [Meta], selector: &Selector) -> Result<&'a Meta> {
    let newest = |keep: &dyn Fn(&Meta) -> bool| {
        checkpoints
            .iter()
            .filter(|meta| keep(meta))
            .max_by(|a, b| order(a, b))
    };
    let found = match selector {
        Selector::Id(id) => checkpoints.iter().find(|meta| meta.id == *id),
        Selector::Tag(tag) => newest(&|meta| meta.tag.as_deref() == Some(tag)),
        Selector::At(at) => newest(&|meta| meta.time <= *at),
        Selector::Latest => newest(&|_| true),
    };
    found.ok_or_else(|| Error::NotFound {
        selector: selector.clone(),
        available: available(checkpoints, selector),
    })
}

/// What there is, for a [`Error::NotFound`].
fn available(checkpoints: &[Meta], selector: &Selector) -> String {
    let oldest = checkpoints.iter().min_by(|a, b| order(a, b));
    let newest = checkpoints.iter().max_by(|a, b| order(a, b));
    let (Some(oldest), Some(newest)) = (oldest, newest) else {
        return "there are none".to_owned();
    };
    match selector {
        Selector::Tag(_) => {
            let mut tags: Vec<&str> = checkpoints
                .iter()
                .filter_map(|m| m.tag.as_deref())
                .collect();
            tags.sort_unstable();
            tags.dedup();
            if tags.is_empty() {
                "none of the checkpoints has a tag".to_owned()
            } else {
                let tags: Vec<String> = tags.iter().map(|tag| format!("{tag:?}")).collect();
                format!("the tags are {}", tags.join(", "))
            }
        }
        Selector::At(_) => format!("the oldest is {}, taken at {}", oldest.id, oldest.time),
        Selector::Id(_) | Selector::Latest if checkpoints.len() <= 10 => {
            let mut ids: Vec<&str> = checkpoints.iter().map(|m| m.id.as_str()).collect();
            ids.sort_unstable();
            format!("the ids are {}", ids.join(", "))
        }
        Selector::Id(_) | Selector::Latest => format!(
            "there are {} from {} to {}",
            checkpoints.len(),
            oldest.id,
            newest.id
        ),
    }
}

/// Reads a checkpoint's data file back and checks its size and BLAKE2b-256 against its
/// meta file: [`Error::Damaged`] if the file is missing or does not match.
pub fn verify(dir: &Path, meta: &Meta) -> Result<()> {
    let path = data_path(dir, meta);
    let damaged = |what: String| Error::Damaged {
        id: meta.id.clone(),
        what,
    };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(damaged(format!(
                "its data file {} is missing",
                path.display()
            )));
        }
        Err(error) => return Err(Error::io("open", &path)(error)),
    };
    // The size first: a file longer than the meta says (extended, or a sparse hole of a
    // terabyte) is refused without being read; the bytes read are counted too, for a file
    // that changes while it is read.
    let claimed = file.metadata().map_err(Error::io("read", &path))?.len();
    if claimed != meta.size {
        return Err(damaged(format!(
            "its data file holds {claimed} bytes, not {}",
            meta.size
        )));
    }
    let mut hasher = Blake2b256::new();
    let mut size: u64 = 0;
    let mut buffer = vec![0; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Error::io("read", &path)(error)),
        }
    }
    if size != meta.size {
        return Err(damaged(format!(
            "its data file holds {size} bytes, not {}",
            meta.size
        )));
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != meta.blake2b {
        return Err(damaged(format!(
            "the BLAKE2b-256 of its data is {}, not {}",
            hex(&digest),
            hex(&meta.blake2b)
        )));
    }
    Ok(())
}

/// Decides which checkpoints a prune keeps and which it removes (see the
/// [module documentation](self)): `keep_last` newest, those taken less than `keep_within`
/// before the newest, and the tagged ones unless `tags_too`. Nothing is removed: the plan
/// is a dry run, and [`remove`] carries it out.
///
/// [`Error::NoPolicy`] if neither `keep_last` nor `keep_within` is given and above 0.
pub fn plan_prune(
    checkpoints: &[Meta],
    keep_last: Option<usize>,
    keep_within: Option<Duration>,
    tags_too: bool,
) -> Result<Plan> {
    let keep_last = keep_last.filter(|&n| n > 0);
    let keep_within = keep_within.filter(|d| !d.is_zero());
    if keep_last.is_none() && keep_within.is_none() {
        return Err(Error::NoPolicy);
    }
    let mut sorted: Vec<&Meta> = checkpoints.iter().collect();
    sorted.sort_by(|a, b| order(a, b));
    let newest = sorted.last().map(|meta| meta.time);
    let count = sorted.len();
    let mut plan = Plan::default();
    for (index, meta) in sorted.into_iter().enumerate() {
        let rank = count - index;
        let mut reasons = Vec::new();
        if keep_last.is_some_and(|n| rank <= n) {
            reasons.push(Reason::Last(rank));
        }
        if let (Some(within), Some(newest)) = (keep_within, newest) {
            // The newest is the latest time of all, so the difference is not negative.
            let before_newest =
                i128::from(newest.unix_nanos()) - i128::from(meta.time.unix_nanos());
            // `as_nanos` of a `Duration` is below 2^94, so it fits an `i128`.
            if before_newest < i128::try_from(within.as_nanos()).unwrap_or(i128::MAX) {
                reasons.push(Reason::Within);
            }
        }
        if meta.tag.is_some() && !tags_too {
            reasons.push(Reason::Tagged);
        }
        if reasons.is_empty() {
            plan.remove.push(meta.clone());
        } else {
            plan.keep.push((meta.clone(), reasons));
        }
    }
    Ok(plan)
}

/// Removes a checkpoint: its meta file first, so that a crash in the middle leaves an
/// unfinished checkpoint rather than a listed one without data, then its data file (already
/// gone is fine: a damaged checkpoint can be removed), then syncs the directory.
pub fn remove<F: Fs>(fs: &F, dir: &Path, meta: &Meta) -> Result<()> {
    let meta_file = meta_path(dir, meta);
    fs.remove(&meta_file)
        .map_err(Error::io("remove", &meta_file))?;
    let data = data_path(dir, meta);
    match fs.remove(&data) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(Error::io("remove", &data)(error)),
    }
    fs.sync_dir(dir).map_err(Error::io("sync directory", dir))
}

/// Removes the unfinished checkpoints a [`list`] of `dir` found (files already gone are
/// fine), then syncs the directory. Returns how many files it removed.
pub fn remove_unfinished<F: Fs>(fs: &F, dir: &Path, listing: &Listing) -> Result<usize> {
    let mut removed = 0;
    for path in &listing.unfinished {
        match fs.remove(path) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io("remove", path)(error)),
        }
    }
    if removed > 0 {
        fs.sync_dir(dir).map_err(Error::io("sync directory", dir))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, time: &str, tag: Option<&str>) -> Meta {
        Meta {
            id: id.to_owned(),
            time: Timestamp::parse(time).unwrap(),
            tag: tag.map(str::to_owned),
            journal: 1,
            ledger_seq: 2,
            ledger_head: [0xab; 32],
            size: 3,
            blake2b: [0x01; 32],
            counts: Counts {
                knowledge: 4,
                tasks: 5,
                scores: 6,
            },
        }
    }

    #[test]
    fn the_meta_file_layout() {
        let mut m = meta(
            "20261129T070540.123Z",
            "2026-11-29T07:05:40.123456Z",
            Some("a\"é"),
        );
        m.journal = u64::MAX;
        let text = String::from_utf8(meta_bytes(&m)).unwrap();
        let expected = format!(
            "{{\"penin_checkpoint\":1,\"id\":\"20261129T070540.123Z\",\
             \"time\":\"2026-11-29T07:05:40.123456Z\",\"tag\":\"a\\\"\\u00e9\",\
             \"journal\":18446744073709551615,\"ledger_seq\":2,\"ledger_head\":\"{}\",\
             \"size\":3,\"blake2b\":\"{}\",\"knowledge\":4,\"tasks\":5,\"scores\":6}}\n",
            "ab".repeat(32),
            "01".repeat(32)
        );
        assert_eq!(text, expected);
        assert_eq!(parse_meta(Path::new("m"), text.as_bytes()).unwrap(), m);
        m.tag = None;
        let text = String::from_utf8(meta_bytes(&m)).unwrap();
        assert!(text.contains(",\"tag\":null,"), "{text}");
        assert_eq!(parse_meta(Path::new("m"), text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn meta_errors_name_the_file_and_the_field() {
        let good = String::from_utf8(meta_bytes(&meta(
            "20261129T070540.123Z",
            "2026-11-29T07:05:40Z",
            None,
        )))
        .unwrap();
        let cases = [
            (
                good.replace("\"size\":3,", ""),
                "m is not a valid checkpoint meta file: field \"size\" is missing",
            ),
            (
                good.replace("\"size\":3", "\"size\":-3"),
                "m is not a valid checkpoint meta file: field \"size\" is not an integer from 0 to 2^64-1",
            ),
            (
                good.replace("\"size\":3", "\"size\":18446744073709551616"),
                "m is not a valid checkpoint meta file: field \"size\" is not an integer from 0 to 2^64-1",
            ),
            (
                good.replace("\"size\":3", "\"size\":3.0"),
                "m is not a valid checkpoint meta file: field \"size\" is not an integer from 0 to 2^64-1",
            ),
            (
                good.replace("\"tag\":null", "\"tag\":\"\""),
                "m is not a valid checkpoint meta file: field \"tag\" is not null or a non-empty string",
            ),
            (
                good.replace("\"tag\":null", "\"tag\":1"),
                "m is not a valid checkpoint meta file: field \"tag\" is not null or a non-empty string",
            ),
            (
                good.replace("\"ledger_head\":\"ab", "\"ledger_head\":\"zz"),
                "m is not a valid checkpoint meta file: field \"ledger_head\" is not 64 hexadecimal digits",
            ),
            (
                good.replace("\"ledger_head\":\"ab", "\"ledger_head\":\""),
                "m is not a valid checkpoint meta file: field \"ledger_head\" is not 64 hexadecimal digits",
            ),
            (
                good.replace("\"id\":\"20261129T070540.123Z\"", "\"id\":\"../x\""),
                "m is not a valid checkpoint meta file: field \"id\" is not a checkpoint id such as 20261129T070540.123Z",
            ),
            (
                good.replace("2026-11-29T07:05:40.000000Z", "yesterday"),
                "m is not a valid checkpoint meta file: field \"time\" is not a time (invalid time \"yesterday\" at character 1: expected a four-digit year, found 'y')",
            ),
            (
                good.replace("\"penin_checkpoint\":1", "\"penin_checkpoint\":0"),
                "m is not a valid checkpoint meta file: unknown version 0",
            ),
            (
                good.replace("\"penin_checkpoint\":1,", ""),
                "m is not a valid checkpoint meta file: field \"penin_checkpoint\" is missing",
            ),
            (
                "[1]".to_owned(),
                "m is not a valid checkpoint meta file: expected an object, found an array",
            ),
        ];
        for (text, message) in cases {
            let error = parse_meta(Path::new("m"), text.as_bytes()).unwrap_err();
            assert!(matches!(error, Error::BadMeta { .. }), "{error:?}");
            assert_eq!(error.to_string(), message);
        }
        let error = parse_meta(Path::new("m"), b"{\"penin").unwrap_err();
        assert!(matches!(error, Error::MetaSyntax { .. }), "{error:?}");
        assert_eq!(error.to_string(), "m is not a checkpoint meta file");
    }

    #[test]
    fn the_version_comes_first() {
        let cases: [(&[u8], u64); 4] = [
            (b"{\"penin_checkpoint\":2,\"whatever\":", 2),
            (b"{\"penin_checkpoint\":2} not json at all", 2),
            (b"{\"penin_checkpoint\":99999999999999999999999,", u64::MAX),
            (b"{\"id\":\"x\",\"penin_checkpoint\":3}", 3),
        ];
        for (bytes, found) in cases {
            let error = parse_meta(Path::new("m"), bytes).unwrap_err();
            assert!(
                matches!(error, Error::NewerVersion { found: f, supported: 1, .. } if f == found),
                "{error:?}"
            );
        }
        let error = parse_meta(Path::new("d/x.meta"), b"{\"penin_checkpoint\":2}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "d/x.meta is a checkpoint of version 2, newer than version 1 that this penin reads"
        );
        assert_eq!(leading_version(b"{\"penin_checkpoint\":1,"), Some(1));
        assert_eq!(leading_version(b"{\"penin_checkpoint\": 1,"), None);
        assert_eq!(leading_version(b"{\"penin_checkpoint\":"), None);
    }

    #[test]
    fn names() {
        let cases = [
            ("20261129T070540.123Z.json", "data"),
            ("20261129T070540.123Z.meta", "meta"),
            (".20261129T070540.123Z.json.penin-tmp.12.0", "temporary"),
            (".20261129T070540.123Z.meta.penin-tmp.12.0", "temporary"),
            (".20261129T070540.123Z.penin-tmp.12.0", "foreign"),
            ("20261129T070540.123Z.json.bak", "foreign"),
            ("20261329T070540.123Z.json", "foreign"),
            ("20261129T070540.123Z", "foreign"),
            ("notes.txt", "foreign"),
            (".json", "foreign"),
        ];
        for (name, kind) in cases {
            let found = match classify(name) {
                Entry::Data(_) => "data",
                Entry::Meta(_) => "meta",
                Entry::Temporary => "temporary",
                Entry::Foreign => "foreign",
            };
            assert_eq!(found, kind, "{name}");
        }
    }

    #[test]
    fn hex_both_ways() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = hex(&bytes);
        assert_eq!(&text[..8], "00254a6f");
        assert_eq!(unhex(&text), Some(bytes));
        assert_eq!(unhex(&text.to_uppercase()), Some(bytes));
        assert_eq!(unhex(&text[1..]), None);
        assert_eq!(unhex(&format!("{}g", &text[1..])), None);
        assert_eq!(unhex(&format!("{}é", &text[2..])), None);
    }

    #[test]
    fn not_found_messages() {
        let none: [Meta; 0] = [];
        let error = select(&none, &Selector::Latest).unwrap_err();
        assert_eq!(error.to_string(), "no checkpoint exists (there are none)");
        let all = [
            meta("20261128T000000.000Z", "2026-11-28T00:00:00Z", Some("b")),
            meta("20261129T000000.000Z", "2026-11-29T00:00:00Z", Some("a")),
        ];
        let cases = [
            (
                Selector::Id("x".to_owned()),
                "no checkpoint has the id x (the ids are 20261128T000000.000Z, 20261129T000000.000Z)",
            ),
            (
                Selector::Tag("c".to_owned()),
                "no checkpoint is tagged \"c\" (the tags are \"a\", \"b\")",
            ),
            (
                Selector::At(Timestamp::parse("2026-11-27").unwrap()),
                "no checkpoint was taken at or before 2026-11-27T00:00:00.000000Z \
                 (the oldest is 20261128T000000.000Z, taken at 2026-11-28T00:00:00.000000Z)",
            ),
        ];
        for (selector, message) in cases {
            assert_eq!(select(&all, &selector).unwrap_err().to_string(), message);
        }
        let untagged = [meta("20261128T000000.000Z", "2026-11-28T00:00:00Z", None)];
        assert_eq!(
            select(&untagged, &Selector::Tag("a".to_owned()))
                .unwrap_err()
                .to_string(),
            "no checkpoint is tagged \"a\" (none of the checkpoints has a tag)"
        );
        let many: Vec<Meta> = (10..22)
            .map(|day| {
                meta(
                    &format!("202611{day}T000000.000Z"),
                    &format!("2026-11-{day}"),
                    None,
                )
            })
            .collect();
        assert_eq!(
            select(&many, &Selector::Id("x".to_owned()))
                .unwrap_err()
                .to_string(),
            "no checkpoint has the id x (there are 12 from 20261110T000000.000Z to 20261121T000000.000Z)"
        );
    }
}
