//! `NAME.ledger`, the audit ledger: one JSON line per event, appended and never rewritten,
//! each line chained to the one before it by a BLAKE2b-256 hash, so that anyone can check
//! with Python's `hashlib` that no line was changed, removed, inserted or reordered.
//!
//! # Format
//!
//! UTF-8 text, one line per event, each ended by `\n`. Line `n` (counting from 1) is
//!
//! ```text
//! {"seq":n,"time":T,"event":E,F…,"digest":"D","prev":"P","hash":"H"}
//! ```
//!
//! * `seq`: `n`, the previous line's `seq` plus one, `1` on the first line;
//! * `time`: a string the caller formats (UTC, RFC 3339), which the ledger does not read;
//! * `event`: the kind of event, a string;
//! * `F…`: the event's own fields in the caller's order, none of them named `seq`, `time`,
//!   `event`, `digest`, `prev`, `hash`, `__type__` or `v`; the ledger does not interpret them;
//! * `digest`: lowercase hex of the BLAKE2b-256 of the bytes of the change the event records;
//! * `prev`: the previous line's `hash`; 64 zeros (`GENESIS`) on the first line;
//! * `hash`: lowercase hex of the BLAKE2b-256 (unkeyed, 32-byte digest) of the line's bytes
//!   from its `{` up to, not including, `,"hash":"`.
//!
//! Values are written as penin's compact encoding writes them (`penin_codec::to_vec_compact`,
//! which is Python's `json.dumps(v, separators=(",", ":"))`: no spaces, non-ASCII as
//! `\uXXXX`), so a line holds no raw newline. The hash is always the last 64 characters before
//! the closing `"}`: a reader finds the hashed bytes by position, never by re-encoding.
//!
//! # Version
//!
//! This layout is version 1 ([`VERSION`]), and a version-1 line carries its version by what
//! it lacks: it starts with `{"seq":`. A line of a later version starts with `{"v":N,` (`v`
//! is reserved, so no event field takes the name): every reader checks a line's first bytes
//! for it before anything else — parsing, hash, chain — and refuses a version above
//! [`VERSION`] as [`Error::NewerVersion`], naming both. Every ledger penin has written is
//! version 1, and stays readable as it is; a ledger whose later lines are of a newer version
//! (appended by a newer penin) is refused at its first such line.
//!
//! A crash during an append can leave a *torn* tail: bytes after the last `\n`. It was never
//! synced, so never acknowledged; [`Ledger::open`] cuts it off and says so, and [`verify`]
//! reports it apart from a broken chain. A complete line that is wrong is damage, never cut.
//!
//! # Example
//!
//! ```
//! use penin_codec::{Map, Value};
//! use penin_history::ledger::{self, Event, Ledger};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.json.ledger");
//! let (mut ledger, torn) = Ledger::open(&path)?;
//! assert_eq!(torn, None);
//!
//! let mut fields = Map::new();
//! fields.insert("journal", Value::from(17_i64));
//! fields.insert("key", Value::from("k"));
//! let change = ledger::digest(b"the bytes of the change");
//! let event = Event::new("2026-11-29T07:05:40.123456Z", "put", fields, change);
//! let lines = ledger.append(&[event.clone(), event])?;
//! ledger.sync()?;
//! assert_eq!((lines[0].seq, lines[1].seq), (1, 2));
//! assert_eq!(lines[1].prev, lines[0].hash);
//! assert_eq!(ledger.head(), lines[1].hash);
//!
//! let text = std::fs::read_to_string(&path)?;
//! assert!(text.starts_with(concat!(
//!     r#"{"seq":1,"time":"2026-11-29T07:05:40.123456Z","event":"put","journal":17,"key":"k","#,
//!     r#""digest":""#,
//! )));
//!
//! // Reopened, it continues the chain; the whole chain checks.
//! drop(ledger);
//! let (ledger, _) = Ledger::open(&path)?;
//! assert_eq!(ledger.next_seq(), 3);
//! let summary = ledger::verify(&path)?;
//! assert_eq!((summary.lines, summary.head), (2, ledger.head()));
//! assert_eq!(ledger::read(&path)?[1].fields["key"], Value::from("k"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use penin_artifacts::{Key, Map, Number, Value};
use penin_store::{Fs, RealFs};

/// The `prev` of the first line: 32 zero bytes, written as 64 zeros.
pub const GENESIS: [u8; 32] = [0; 32];

/// The names the ledger writes itself (and `__type__`, which would make the line a tagged
/// object to penin's reader, and `v`, the version key of later layouts): an event's fields
/// may not use them.
pub const RESERVED: [&str; 8] = [
    "seq", "time", "event", "digest", "prev", "hash", "__type__", "v",
];

/// The version of the lines this module writes, and the newest it reads (see the
/// [module documentation](self)).
pub const VERSION: u64 = 1;

/// How a line of a version after 1 starts: `{"v":` and the version's digits.
const VERSION_PREFIX: &[u8] = b"{\"v\":";

/// What comes between the hashed bytes and the hash.
const HASH_KEY: &[u8] = b",\"hash\":\"";

/// `,"hash":"` + 64 hex digits + `"}`: the end of every line, not hashed.
const SUFFIX_LEN: usize = HASH_KEY.len() + 64 + 2;

/// The bytes read at a time when looking for the end of the last line.
const CHUNK: usize = 8 * 1024;

/// A result whose error is this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error opening, appending to or reading a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: `open`, `write`, `sync`, …
        action: &'static str,
        /// The ledger, or for `sync directory` its directory.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// A complete line is wrong: it does not parse, its hash does not match its bytes, or it
    /// does not follow the line before it.
    #[error("{}: {} at byte {offset} is damaged", path.display(), Which(*seq))]
    Damaged {
        /// The ledger.
        path: PathBuf,
        /// The line's place in the chain: its line number when the file was read from the
        /// start ([`read`], [`verify`]), which a sound ledger has as its `seq`; its own `seq`
        /// when only the last line was read ([`Ledger::open`]), if it could be read.
        seq: Option<u64>,
        /// The byte offset of the line's first byte.
        offset: u64,
        /// What is wrong.
        #[source]
        fault: Box<Fault>,
    },
    /// A line was written by a newer penin, in a version this one cannot read: nothing
    /// after its first bytes was looked at.
    #[error(
        "{}: the line at byte {offset} is of ledger version {found}, newer than version \
         {supported} that this penin reads",
        path.display()
    )]
    NewerVersion {
        /// The ledger.
        path: PathBuf,
        /// The byte offset of the line's first byte.
        offset: u64,
        /// Its version.
        found: u64,
        /// The newest version this penin reads, [`VERSION`].
        supported: u64,
    },
    /// An event's field has a name the ledger writes itself ([`RESERVED`]).
    #[error("the event field {key:?} is reserved by the ledger")]
    Reserved {
        /// The field's name.
        key: String,
    },
    /// An earlier write or sync failed, so the file may end in part of a line that this
    /// handle does not know of: reopening cuts it off or takes it in.
    #[error("an earlier write or sync of {} failed: reopen the ledger", path.display())]
    Poisoned {
        /// The ledger.
        path: PathBuf,
    },
    /// The last line's `seq` is the largest a `u64` holds: no line can follow it.
    #[error("{} holds as many lines as a ledger can", path.display())]
    Full {
        /// The ledger.
        path: PathBuf,
    },
}

impl Error {
    /// The ledger (or directory) the error concerns, if it names one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. }
            | Self::Damaged { path, .. }
            | Self::NewerVersion { path, .. }
            | Self::Poisoned { path }
            | Self::Full { path } => Some(path),
            Self::Reserved { .. } => None,
        }
    }
}

/// What is wrong with a line ([`Error::Damaged`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The line is not JSON (or not UTF-8).
    #[error("the line is not JSON")]
    Json(#[source] penin_codec::Error),
    /// The line is JSON, but not a ledger line: what is wrong.
    #[error("{0}")]
    Shape(&'static str),
    /// The line's `hash` is not the hash of its bytes.
    #[error("its hash is {} but its bytes hash to {}", hex(.written), hex(.computed))]
    Hash {
        /// The hash the line holds.
        written: [u8; 32],
        /// The hash of its bytes.
        computed: [u8; 32],
    },
    /// The line's `prev` is not the previous line's `hash`.
    #[error("its prev is {} but the line before has hash {}", hex(.found), hex(.expected))]
    Prev {
        /// The `prev` the line holds.
        found: [u8; 32],
        /// The previous line's hash ([`GENESIS`] for the first line).
        expected: [u8; 32],
    },
    /// The line's `seq` is not one more than the previous line's.
    #[error("its seq is {found}, not {expected}")]
    Seq {
        /// The `seq` the line holds.
        found: u64,
        /// The `seq` it should hold: its line number.
        expected: u64,
    },
}

/// `seq 3`, or `the last line` when its `seq` cannot be read.
struct Which(Option<u64>);

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(seq) => write!(f, "seq {seq}"),
            None => f.write_str("the last line"),
        }
    }
}

/// An event to record: the caller's part of a line.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When, as the line will hold it: UTC in RFC 3339, already formatted.
    pub time: String,
    /// The kind of event.
    pub event: String,
    /// The event's own fields, written in this order between `event` and `digest`; none may
    /// be named as one of [`RESERVED`].
    pub fields: Map,
    /// The BLAKE2b-256 of the bytes of the change ([`digest`]).
    pub digest: [u8; 32],
}

impl Event {
    /// An event of kind `event` at `time`, with `fields`, recording a change of hash `digest`.
    pub fn new(
        time: impl Into<String>,
        event: impl Into<String>,
        fields: Map,
        digest: [u8; 32],
    ) -> Self {
        Self {
            time: time.into(),
            event: event.into(),
            fields,
            digest,
        }
    }
}

/// A line of the ledger, as written or read.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// Its place in the chain, from 1.
    pub seq: u64,
    /// When, as the caller wrote it.
    pub time: String,
    /// The kind of event.
    pub event: String,
    /// The event's own fields, in order.
    pub fields: Map,
    /// The hash of the change's bytes.
    pub digest: [u8; 32],
    /// The previous line's hash ([`GENESIS`] on the first line).
    pub prev: [u8; 32],
    /// This line's hash.
    pub hash: [u8; 32],
    /// The byte offset of its first byte in the file.
    pub offset: u64,
}

/// A torn tail: bytes after the last newline, left by a crash during an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    /// Where the tail starts: the length of the complete lines before it.
    pub offset: u64,
    /// How many bytes it has.
    pub bytes: u64,
}

/// What [`verify`] found: a sound chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// How many complete lines.
    pub lines: u64,
    /// The last line's hash, [`GENESIS`] if there are none.
    pub head: [u8; 32],
    /// The bytes of the complete lines.
    pub len: u64,
    /// A torn tail after them, which is not part of the chain (and which [`Ledger::open`]
    /// cuts off).
    pub torn: Option<Torn>,
}

/// A ledger open for appending.
///
/// It knows the next `seq` and the last hash from the last line, which it reads when opened
/// without reading the rest. One process appends at a time (the state's lock sees to that).
#[derive(Debug)]
pub struct Ledger<F: Fs = RealFs> {
    fs: F,
    path: PathBuf,
    file: File,
    /// The length of the complete lines: where the next line starts.
    len: u64,
    next_seq: u64,
    head: [u8; 32],
    last: Option<Line>,
    /// A write or sync failed: the file's end is unknown to this handle.
    poisoned: bool,
    /// Whether lines were written since the last sync.
    unsynced: bool,
}

impl Ledger<RealFs> {
    /// [`Ledger::open_in`] on the real file system.
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, Option<Torn>)> {
        Self::open_in(RealFs, path)
    }
}

impl<F: Fs> Ledger<F> {
    /// Opens `path` for appending, creating it (mode 0600, then a sync of its directory) if
    /// it is missing.
    ///
    /// Reads only the end of the file: the last line gives the next `seq` and the head, and
    /// must parse and match its own hash, or the ledger is [`Error::Damaged`] and left as it
    /// is. A torn tail after it (bytes after the last newline: a crash during an append) is
    /// then cut off and the cut synced; it is returned.
    pub fn open_in(fs: F, path: impl AsRef<Path>) -> Result<(Self, Option<Torn>)> {
        let path = path.as_ref();
        let file = open_or_create(&fs, path)?;
        let size = file
            .metadata()
            .map_err(io_error("read metadata of", path))?
            .len();
        let (len, last) = tail(&file, size, path)?;
        let next_seq = match &last {
            None => 1,
            Some(line) => line.seq.checked_add(1).ok_or_else(|| Error::Full {
                path: path.to_path_buf(),
            })?,
        };
        let torn = (len < size).then(|| Torn {
            offset: len,
            bytes: size - len,
        });
        if torn.is_some() {
            fs.set_len(&file, len)
                .map_err(io_error("cut the torn tail of", path))?;
            fs.sync_data(&file).map_err(io_error("sync", path))?;
        }
        let ledger = Self {
            head: last.as_ref().map_or(GENESIS, |line| line.hash),
            fs,
            path: path.to_path_buf(),
            file,
            len,
            next_seq,
            last,
            poisoned: false,
            unsynced: false,
        };
        Ok((ledger, torn))
    }

    /// Appends one line per event, chained, in one write (a loop of [`Fs::write`] calls),
    /// and returns them. Not synced: [`Ledger::sync`] makes them durable.
    ///
    /// Nothing is written if an event has a [`RESERVED`] field. If the write fails, the file
    /// may hold some of the lines, the last one perhaps torn: this ledger then refuses to
    /// append ([`Error::Poisoned`]) until it is reopened, which cuts a torn line off and
    /// continues after the complete ones.
    pub fn append(&mut self, events: &[Event]) -> Result<Vec<Line>> {
        self.check_poisoned()?;
        if let Some(key) = events
            .iter()
            .flat_map(|event| event.fields.keys())
            .find(|key| RESERVED.contains(&key.as_str()))
        {
            return Err(Error::Reserved {
                key: key.to_string(),
            });
        }
        let mut bytes = Vec::new();
        let mut lines = Vec::with_capacity(events.len());
        let (mut seq, mut prev) = (self.next_seq, self.head);
        for event in events {
            let start = bytes.len();
            encode_hashed(&mut bytes, seq, event, &prev);
            let hash = digest(&bytes[start..]);
            bytes.extend_from_slice(HASH_KEY);
            bytes.extend_from_slice(hex(&hash).as_bytes());
            bytes.extend_from_slice(b"\"}\n");
            lines.push(Line {
                seq,
                time: event.time.clone(),
                event: event.event.clone(),
                fields: event.fields.clone(),
                digest: event.digest,
                prev,
                hash,
                offset: self.len + start as u64,
            });
            prev = hash;
            seq = seq.checked_add(1).ok_or_else(|| Error::Full {
                path: self.path.clone(),
            })?;
        }
        if let Err(source) = write_all(&self.fs, &mut self.file, &bytes) {
            self.poisoned = true;
            return Err(io_error("write", &self.path)(source));
        }
        self.len += bytes.len() as u64;
        self.unsynced = true;
        self.next_seq = seq;
        self.head = prev;
        if let Some(line) = lines.last() {
            self.last = Some(line.clone());
        }
        Ok(lines)
    }

    /// Makes the lines appended so far durable ([`Fs::sync_data`]); nothing to do when every
    /// line is. A failure poisons the ledger as a failed write does: after a failed sync, what
    /// the disk holds is unknown.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if !self.unsynced {
            return Ok(());
        }
        self.fs.sync_data(&self.file).map_err(|source| {
            self.poisoned = true;
            io_error("sync", &self.path)(source)
        })?;
        self.unsynced = false;
        Ok(())
    }

    /// The `seq` the next line will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last line's hash, which the next line's `prev` will be; [`GENESIS`] if there is
    /// no line.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// The last line, if there is one.
    pub fn last(&self) -> Option<&Line> {
        self.last.as_ref()
    }

    /// The ledger's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of its complete lines in bytes: where the next line will start.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file system it goes through.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

/// Reads every complete line of the ledger at `path`, in order; a missing file has none, and
/// a torn tail is not a line. Each line must parse as a ledger line, or reading stops with
/// [`Error::Damaged`] naming it; hashes and links are [`verify`]'s to check.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    scan(path.as_ref(), |bytes, _, offset| {
        lines.push(parse_line(bytes, offset)?);
        Ok(())
    })?;
    Ok(lines)
}

/// Checks the whole chain of the ledger at `path`: every complete line parses, its hash is
/// the hash of its bytes, its `seq` is its line number and its `prev` the previous line's
/// hash ([`GENESIS`] for the first). The first line that fails is [`Error::Damaged`], with
/// its line number as `seq`. A missing file is a sound, empty ledger. A torn tail is not a
/// broken chain: it is reported in the [`Summary`].
pub fn verify(path: impl AsRef<Path>) -> Result<Summary> {
    let mut head = GENESIS;
    let (lines, len, torn) = scan(path.as_ref(), |bytes, seq, offset| {
        let line = parse_line(bytes, offset)?;
        check_hash(bytes, &line)?;
        if line.seq != seq {
            return Err(Fault::Seq {
                found: line.seq,
                expected: seq,
            });
        }
        if line.prev != head {
            return Err(Fault::Prev {
                found: line.prev,
                expected: head,
            });
        }
        head = line.hash;
        Ok(())
    })?;
    Ok(Summary {
        lines,
        head,
        len,
        torn,
    })
}

/// The last complete line of the ledger at `path`, checked as [`Ledger::open`] checks it
/// (its version, its shape, its own hash), and the bytes of the complete lines; `None` for
/// a missing or empty ledger. Reads only the end of the file, and changes nothing: a torn
/// tail is left as it is (and is not a line).
pub fn last(path: impl AsRef<Path>) -> Result<(u64, Option<Line>)> {
    let path = path.as_ref();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((0, None)),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    let size = file
        .metadata()
        .map_err(io_error("read metadata of", path))?
        .len();
    tail(&file, size, path)
}

/// The length of the complete lines among the first `size` bytes of `file`, and the last
/// of them, checked.
fn tail(file: &File, size: u64, path: &Path) -> Result<(u64, Option<Line>)> {
    let len = last_newline(file, size)
        .map_err(io_error("read", path))?
        .map_or(0, |newline| newline + 1);
    let Some(newline) = len.checked_sub(1) else {
        return Ok((len, None));
    };
    let start = last_newline(file, newline)
        .map_err(io_error("read", path))?
        .map_or(0, |previous| previous + 1);
    let bytes = read_range(file, start, newline).map_err(io_error("read", path))?;
    check_version(&bytes, path, start)?;
    let line = parse_line(&bytes, start).map_err(|fault| Error::Damaged {
        path: path.to_path_buf(),
        seq: None,
        offset: start,
        fault: Box::new(fault),
    })?;
    check_hash(&bytes, &line).map_err(|fault| Error::Damaged {
        path: path.to_path_buf(),
        seq: Some(line.seq),
        offset: start,
        fault: Box::new(fault),
    })?;
    Ok((len, Some(line)))
}

/// The BLAKE2b-256 (unkeyed, 32-byte digest) of `bytes`: a line's `hash`, and the `digest`
/// of a change.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(bytes).into()
}

/// `bytes` in lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The 32 bytes that 64 lowercase hex digits stand for.
fn unhex(text: &[u8]) -> Option<[u8; 32]> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(bytes)
}

/// The hashed part of a line (before `,"hash":"`) and the hash its end holds, if it ends as
/// a line must: `,"hash":"` + 64 lowercase hex digits + `"}`.
fn split_hash(line: &[u8]) -> Option<(&[u8], [u8; 32])> {
    let body = line.len().checked_sub(SUFFIX_LEN)?;
    let (hashed, suffix) = line.split_at(body);
    let hex = suffix.strip_prefix(HASH_KEY)?.strip_suffix(b"\"}")?;
    Some((hashed, unhex(hex)?))
}

/// Appends the hashed part of a line: from `{` to just before `,"hash":"`.
fn encode_hashed(out: &mut Vec<u8>, seq: u64, event: &Event, prev: &[u8; 32]) {
    let string = |text: &str| penin_codec::to_vec_compact(&Value::String(text.into()));
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"time\":");
    out.extend_from_slice(&string(&event.time));
    out.extend_from_slice(b",\"event\":");
    out.extend_from_slice(&string(&event.event));
    for (key, value) in &event.fields {
        out.push(b',');
        out.extend_from_slice(&string(key));
        out.push(b':');
        out.extend_from_slice(&penin_codec::to_vec_compact(value));
    }
    out.extend_from_slice(b",\"digest\":\"");
    out.extend_from_slice(hex(&event.digest).as_bytes());
    out.extend_from_slice(b"\",\"prev\":\"");
    out.extend_from_slice(hex(prev).as_bytes());
    out.push(b'"');
}

/// Reads a ledger line (without its newline) that starts at byte `offset` of its file:
/// its shape, not its hash ([`check_hash`]).
fn parse_line(bytes: &[u8], offset: u64) -> Result<Line, Fault> {
    const KEYS: Fault = Fault::Shape(
        "its keys are not seq, time, event, the event's fields, digest, prev and hash, in this order",
    );
    let value: Value = penin_codec::from_slice(bytes).map_err(Fault::Json)?;
    let Value::Object(map) = value else {
        return Err(Fault::Shape("the line is not a JSON object"));
    };
    let mut entries: Vec<(Key, Value)> = map.into_iter().collect();
    let n = entries.len();
    let named = |i: usize, name: &str| entries.get(i).is_some_and(|(key, _)| key == name);
    if n < 6
        || !(named(0, "seq") && named(1, "time") && named(2, "event"))
        || !(named(n - 3, "digest") && named(n - 2, "prev") && named(n - 1, "hash"))
    {
        return Err(KEYS);
    }
    let mut framing = entries.split_off(n - 3).into_iter().map(|(_, value)| value);
    let fields: Map = entries.split_off(3).into_iter().collect();
    let mut head = entries.into_iter().map(|(_, value)| value);
    let (Some(seq), Some(time), Some(event)) = (head.next(), head.next(), head.next()) else {
        return Err(KEYS);
    };
    let (Some(digest), Some(prev), Some(hash)) = (framing.next(), framing.next(), framing.next())
    else {
        return Err(KEYS);
    };
    let seq = match seq {
        Value::Number(Number::Int(seq)) => u64::try_from(seq).ok().filter(|&seq| seq >= 1),
        Value::Number(Number::Big(seq)) => seq.as_str().parse().ok(),
        _ => None,
    }
    .ok_or(Fault::Shape("its seq is not a positive integer"))?;
    let text = |value: Value, fault: &'static str| match value {
        Value::String(text) => Ok(text.into_string()),
        _ => Err(Fault::Shape(fault)),
    };
    let time = text(time, "its time is not a string")?;
    let event = text(event, "its event is not a string")?;
    let hex32 = |value: &Value, fault: &'static str| {
        value
            .as_str()
            .and_then(|text| unhex(text.as_bytes()))
            .ok_or(Fault::Shape(fault))
    };
    let digest = hex32(&digest, "its digest is not 64 lowercase hex digits")?;
    let prev = hex32(&prev, "its prev is not 64 lowercase hex digits")?;
    let hash = hex32(&hash, "its hash is not 64 lowercase hex digits")?;
    match split_hash(bytes) {
        Some((_, written)) if written == hash => {}
        _ => {
            return Err(Fault::Shape(
                "it does not end with its hash: ,\"hash\":\"<64 hex digits>\"}",
            ));
        }
    }
    Ok(Line {
        seq,
        time,
        event,
        fields,
        digest,
        prev,
        hash,
        offset,
    })
}

/// The version a line of a later layout starts with (`{"v":N`), read from its first bytes
/// alone; `None` for a version-1 line (or anything else, which parsing then judges). A
/// version too large for a `u64` is `u64::MAX`: newer than any.
fn leading_version(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(VERSION_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let number = rest[..digits].iter().try_fold(0_u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(number.unwrap_or(u64::MAX))
}

/// [`Error::NewerVersion`] if the line starting at byte `offset` of `path` is of a version
/// newer than [`VERSION`]. Checked before anything else about the line.
fn check_version(line: &[u8], path: &Path, offset: u64) -> Result<()> {
    match leading_version(line) {
        Some(found) if found > VERSION => Err(Error::NewerVersion {
            path: path.to_path_buf(),
            offset,
            found,
            supported: VERSION,
        }),
        _ => Ok(()),
    }
}

/// Checks that the line's hash is the hash of its bytes before `,"hash":"`.
fn check_hash(bytes: &[u8], line: &Line) -> Result<(), Fault> {
    let Some((hashed, _)) = split_hash(bytes) else {
        return Err(Fault::Shape("it does not end with its hash"));
    };
    let computed = digest(hashed);
    if computed != line.hash {
        return Err(Fault::Hash {
            written: line.hash,
            computed,
        });
    }
    Ok(())
}

/// Calls `each` with every complete line of `path` (without its newline), its line number
/// from 1 and its offset, until it fails; returns how many lines, their length, and the torn
/// tail after them. A missing file has no lines.
fn scan(
    path: &Path,
    mut each: impl FnMut(&[u8], u64, u64) -> Result<(), Fault>,
) -> Result<(u64, u64, Option<Torn>)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((0, 0, None)),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    let mut reader = BufReader::new(file);
    let mut bytes = Vec::new();
    let (mut lines, mut offset) = (0_u64, 0_u64);
    loop {
        bytes.clear();
        let read = read_line(&mut reader, &mut bytes).map_err(io_error("read", path))?;
        let Some(line) = bytes.strip_suffix(b"\n") else {
            let torn = (read > 0).then_some(Torn {
                offset,
                bytes: read as u64,
            });
            return Ok((lines, offset, torn));
        };
        lines += 1;
        check_version(line, path, offset)?;
        each(line, lines, offset).map_err(|fault| Error::Damaged {
            path: path.to_path_buf(),
            seq: Some(lines),
            offset,
            fault: Box::new(fault),
        })?;
        offset += read as u64;
    }
}

/// `BufRead::read_until(b'\n')` into `line`, its growth asked for fallibly: a line longer
/// than the memory the system grants (a torn tail that is a hole is as long as the file
/// says) is an out-of-memory error, not the abort of the process.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let (ended, used) = match available.iter().position(|&byte| byte == b'\n') {
            Some(newline) => (true, newline + 1),
            None => (false, available.len()),
        };
        line.try_reserve(used).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("no memory for a line of more than {} bytes", line.len()),
            )
        })?;
        line.extend_from_slice(&available[..used]);
        reader.consume(used);
        read += used;
        if ended || used == 0 {
            return Ok(read);
        }
    }
}

/// Opens the ledger for appending, creating it if it is missing (mode 0600; the new entry
/// made durable by a sync of its directory).
fn open_or_create<F: Fs>(fs: &F, path: &Path) -> Result<File> {
    match fs.open_append(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        opened => return opened.map_err(io_error("open", path)),
    }
    match fs.create_new(path, 0o600) {
        Ok(created) => {
            // Appends go through an `O_APPEND` handle that can also read the tail.
            drop(created);
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            fs.sync_dir(dir).map_err(io_error("sync directory", dir))?;
        }
        // Created by another process in between: it is theirs to sync.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io_error("create", path)(error)),
    }
    fs.open_append(path).map_err(io_error("open", path))
}

/// The offset of the last `\n` among the first `end` bytes of `file`, reading backwards a
/// chunk at a time.
fn last_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0; CHUNK];
    let mut high = end;
    while high > 0 {
        let low = high.saturating_sub(CHUNK as u64);
        // At most CHUNK bytes.
        let window = &mut chunk[..(high - low) as usize];
        read_at(file, low, window)?;
        if let Some(i) = window.iter().rposition(|&byte| byte == b'\n') {
            return Ok(Some(low + i as u64));
        }
        high = low;
    }
    Ok(None)
}

/// The bytes of `file` from `start` up to `end`.
fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(end - start)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "the last line is too long"))?;
    let mut bytes = penin_codec::buffer(len)?;
    read_at(file, start, &mut bytes)?;
    Ok(bytes)
}

fn read_at(mut file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    // The handle appends (`O_APPEND`), so moving its cursor to read does not move writes.
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Writes all of `bytes` through `fs`, retrying interrupted and short writes.
fn write_all<F: Fs>(fs: &F, file: &mut File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match fs.write(file, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A closure that wraps an [`io::Error`] with what was being done and the path, for `map_err`.
fn io_error<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_read_until_reads_them_across_buffer_refills() {
        let text: &[u8] = b"{\"seq\":1}\n\n{\"seq\":2, \"long\": \"abcdefghij\"}\ntorn";
        for capacity in [1, 3, 7, 64] {
            let mut ours = BufReader::with_capacity(capacity, text);
            let mut theirs = BufReader::with_capacity(capacity, text);
            loop {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let n = read_line(&mut ours, &mut a).unwrap();
                assert_eq!(n, theirs.read_until(b'\n', &mut b).unwrap(), "{capacity}");
                assert_eq!(a, b, "{capacity}");
                if n == 0 {
                    break;
                }
            }
        }
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_lowercase_hex() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = hex(&bytes);
        assert_eq!(&text[..8], "00254a6f");
        assert_eq!(unhex(text.as_bytes()), Some(bytes));
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
        // (input, accepted)
        let rows: [(&[u8], bool); 5] = [
            (&[b'0'; 64], true),
            (&[b'f'; 64], true),
            (&[b'F'; 64], false),
            (&[b'g'; 64], false),
            (&[b'0'; 63], false),
        ];
        for (input, accepted) in rows {
            assert_eq!(unhex(input).is_some(), accepted, "{input:?}");
        }
    }

    #[test]
    fn blake2b_256_of_the_empty_input() {
        // RFC 7693's BLAKE2b with a 32-byte digest, as `hashlib.blake2b(b"", digest_size=32)`.
        assert_eq!(
            hex(&digest(b"")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }

    #[test]
    fn shapes_that_are_not_lines() {
        let good = format!(
            "{{\"seq\":1,\"time\":\"t\",\"event\":\"e\",\"digest\":\"{z}\",\"prev\":\"{z}\",\"hash\":\"{z}\"}}",
            z = hex(&GENESIS)
        );
        assert_eq!(parse_line(good.as_bytes(), 0).unwrap().seq, 1);
        // (line, expected message)
        let rows = [
            ("[1]".to_owned(), "the line is not a JSON object"),
            ("{".to_owned(), "the line is not JSON"),
            (
                good.replace("\"seq\":1", "\"seq\":0"),
                "its seq is not a positive integer",
            ),
            (
                good.replace("\"seq\":1", "\"seq\":1.0"),
                "its seq is not a positive integer",
            ),
            (
                good.replace("\"time\":\"t\"", "\"time\":1"),
                "its time is not a string",
            ),
            (
                good.replace("\"event\":\"e\"", "\"event\":null"),
                "its event is not a string",
            ),
            (good.replacen("\"digest\"", "\"digest2\"", 1), KEYS_MESSAGE),
            (good.replacen("\"seq\":1,", "", 1), KEYS_MESSAGE),
            (
                good.replacen(&hex(&GENESIS), &"A".repeat(64), 1),
                "its digest is not 64 lowercase hex digits",
            ),
            (
                good.replace("\"hash\":", "\"hash\": "),
                "it does not end with its hash: ,\"hash\":\"<64 hex digits>\"}",
            ),
        ];
        for (line, expected) in rows {
            let fault = parse_line(line.as_bytes(), 0).unwrap_err();
            assert_eq!(fault.to_string(), expected, "{line}");
        }
    }

    #[test]
    fn the_version_comes_first() {
        // (line, version found): what follows the version is never looked at.
        let rows: [(&[u8], Option<u64>); 7] = [
            (b"{\"v\":2,\"seq\":1}", Some(2)),
            (b"{\"v\":2} not json at all", Some(2)),
            (b"{\"v\":99999999999999999999999,", Some(u64::MAX)),
            (b"{\"v\":1,", Some(1)),
            (b"{\"v\": 2,", None),
            (b"{\"seq\":1,\"v\":2", None),
            (b"{\"v\":", None),
        ];
        for (line, found) in rows {
            assert_eq!(leading_version(line), found, "{line:?}");
        }
        let error = check_version(b"{\"v\":2,garbage", Path::new("d/s.ledger"), 75).unwrap_err();
        assert!(
            matches!(
                error,
                Error::NewerVersion {
                    offset: 75,
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "d/s.ledger: the line at byte 75 is of ledger version 2, newer than version 1 that \
             this penin reads"
        );
        check_version(b"{\"v\":1,\"seq\":1}", Path::new("s"), 0).unwrap();
        // A version-1 line written as version 1 lines are: no `v`, so not a line of a
        // later layout; and `{"v":1,` is no version-1 line either (its first key is not seq).
        assert_eq!(
            parse_line(b"{\"v\":1,\"seq\":1}", 0)
                .unwrap_err()
                .to_string(),
            KEYS_MESSAGE
        );
    }

    const KEYS_MESSAGE: &str = "its keys are not seq, time, event, the event's fields, digest, prev and hash, in this order";

    #[test]
    fn error_messages() {
        let damaged = Error::Damaged {
            path: PathBuf::from("/d/s.ledger"),
            seq: Some(3),
            offset: 345,
            fault: Box::new(Fault::Seq {
                found: 4,
                expected: 3,
            }),
        };
        assert_eq!(
            damaged.to_string(),
            "/d/s.ledger: seq 3 at byte 345 is damaged"
        );
        let source = std::error::Error::source(&damaged).unwrap().to_string();
        assert_eq!(source, "its seq is 4, not 3");
        let unknown = Error::Damaged {
            path: PathBuf::from("s.ledger"),
            seq: None,
            offset: 0,
            fault: Box::new(Fault::Shape("x")),
        };
        assert_eq!(
            unknown.to_string(),
            "s.ledger: the last line at byte 0 is damaged"
        );
        let io = io_error("sync", Path::new("/d/s.ledger"))(io::Error::from_raw_os_error(5));
        assert_eq!(io.to_string(), "cannot sync /d/s.ledger");
        assert_eq!(io.path(), Some(Path::new("/d/s.ledger")));
        let reserved = Error::Reserved {
            key: "hash".to_owned(),
        };
        assert_eq!(
            reserved.to_string(),
            "the event field \"hash\" is reserved by the ledger"
        );
        let hash = Fault::Hash {
            written: GENESIS,
            computed: [0xff; 32],
        };
        assert_eq!(
            hash.to_string(),
            format!(
                "its hash is {} but its bytes hash to {}",
                "0".repeat(64),
                "f".repeat(64)
            )
        );
    }
}
