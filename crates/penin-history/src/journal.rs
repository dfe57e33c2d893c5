//! `NAME.journal`: the changes made to a state since its snapshot `NAME`, one framed,
//! checksummed record each, appended (and synced, under the caller's policy) before a change
//! is acknowledged.
//!
//! # Layout (all integers little-endian)
//!
//! A header, then records back to back. A plaintext journal is version 1, its header 96
//! bytes; a sealed journal (see below) is version 2, its header the same 96 bytes (version,
//! length, flags and id aside) followed by a key block.
//!
//! ```text
//! header
//!   0  8  magic            89 50 45 4E 4A 4E 4C 0A  ("\x89PENJNL\n")
//!   8  2  version          1 plaintext, 2 sealed
//!  10  2  header length    H: 96 (version 1); 104 + K (version 2)
//!  12  4  flags            0 (version 1); 1, sealed (version 2); a reader refuses others
//!  16  8  base             sequence number of the last change the snapshot holds;
//!                          the first record is base + 1
//!  24  8  ledger sequence  the ledger line that records this journal's start (0: none)
//!  32  8  created          UTC nanoseconds since the Unix epoch (i64)
//!  40  8  snapshot size    bytes
//!  48  8  snapshot mtime   nanoseconds since the Unix epoch (i64)
//!  56  8  snapshot inode
//!  64 16  snapshot xxh3    XXH3-128 of the snapshot's bytes (u128)
//!  80 12  journal id       zeros (version 1); random, unique to the journal (version 2)
//!  92  4  header CRC       CRC-32C of bytes 0..92
//! version 2 only:
//!  96  4  K                key block length
//! 100  K  key block        an age file (age-encryption.org/v1, binary, X25519 recipients)
//!                          whose plaintext is the journal's 32-byte data key
//! 100+K 4 header CRC       CRC-32C of bytes 0..100+K (the whole header)
//!
//! record (29 + L bytes), at H, then each after the one before
//!   0  4  CRC              CRC-32C of bytes 4..29+L (everything after it)
//!   4  4  L                payload length
//!   8  8  sequence number  previous record's + 1
//!  16  8  time             UTC nanoseconds since the Unix epoch (i64)
//!  24  1  kind             what the change is (the caller's; 0 is never used)
//!  25  L  payload          version 1: the change, in the caller's encoding;
//!                          version 2: the change sealed, below (L = its length + 40)
//! 25+L 4  L again          so that the last record can be found from the end of the file
//!
//! sealed payload (version 2)
//!   0 24  nonce            random, drawn for this record alone
//!  24  n  ciphertext       XChaCha20-Poly1305 of the change under the data key
//! 24+n 16 tag              over the ciphertext and the associated data:
//!                          journal id (12) | sequence number (8) | time (8) | kind (1)
//! ```
//!
//! The header names the snapshot the journal extends: its size, modification time and inode
//! (cheap to compare) and the XXH3-128 of its bytes (compared only when the cheap fields
//! differ, as git compares its index). A snapshot that does not match is someone else's:
//! [`Identity::check`] says so and the journal is never replayed onto it.
//!
//! # Sealed journals
//!
//! With an age identity set, a journal is sealed: its header holds a random 256-bit data
//! key wrapped with age for the journal's recipients ([`Seal::generate`], the one age
//! operation a writer makes), and each record's payload is the change sealed under that key
//! with XChaCha20-Poly1305, so an append stays one AEAD pass over the change and the usual
//! framing. A record's nonce is random, never derived from its sequence number: a torn
//! record cut off and written again at the same sequence number gets a new one. Its
//! associated data binds it to its journal (the random id) and its place (sequence number,
//! time, kind): a record moved from another journal or another place, or one whose time or
//! kind was changed, does not open, under a valid CRC.
//!
//! Framing is unchanged and outside the seal, so everything that works on frames works
//! without a key: [`read_header`], [`scan`], [`salvage`], [`first_record_seq`],
//! [`last_valid_seq`], telling torn tails from damage, and a writer finding the last record
//! from the end. What someone without the key sees is therefore the header (the snapshot's
//! size, time, inode and hash, the base, the ledger sequence, when the journal started, the
//! journal id, and age's stanzas, which tell how many recipients there are but not who), and
//! for each record its length (the change's plus 40), sequence number, time and kind. The
//! times and kinds are what the ledger's lines say of each change; sizes could only be
//! hidden by padding every record.
//!
//! [`Seal::read`] unwraps a journal's key with an identity: a sealed journal read with no
//! identity is [`Error::Sealed`], with identities none of which unwraps the key
//! [`Error::WrongIdentity`]. Changes come out of [`replay_with`] or [`Record::open`]; a
//! record whose seal does not open is [`Error::Damaged`] at that record, never skipped and
//! never handed over. The functions without a seal ([`replay`], [`Writer::open_in`],
//! [`Writer::after_scan_in`]) refuse a sealed journal, so no plaintext record is ever
//! appended to one.
//!
//! # Torn tails and damage
//!
//! A crash during an append leaves a torn last record: [`read`] reports it as
//! [`Scan::torn`] and the records before it, and a writer cuts it off before appending. Only
//! a bad record that no valid record follows is torn; a bad record followed by a valid one is
//! damage ([`Error::Damaged`], naming the sequence number and byte offset), never skipped.
//!
//! # Example
//!
//! ```
//! use penin_history::journal::{self, Header, Identity, Writer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let snapshot = dir.path().join("state.json");
//! std::fs::write(&snapshot, "{}")?;
//! let path = penin_history::journal_path(&snapshot);
//!
//! // A journal extending the snapshot, from sequence number 1.
//! let identity = Identity::of_file(&snapshot)?;
//! let mut writer = Writer::create(&path, &Header::new(0, 0, 0, identity))?;
//! writer.push(0, 1, b"first change");
//! writer.push(0, 1, b"second change");
//! writer.write()?;
//! writer.sync()?;
//!
//! let scan = journal::read(&path)?.expect("the journal exists");
//! assert_eq!(scan.header.identity.check(&snapshot)?, journal::Match::Same);
//! let payloads: Vec<&[u8]> = scan.records.iter().map(|r| r.payload(&scan.bytes)).collect();
//! assert_eq!(payloads, [&b"first change"[..], &b"second change"[..]]);
//! assert_eq!(scan.records[1].seq, 2);
//! assert!(scan.torn.is_none());
//! # Ok(())
//! # }
//! ```
//!
//! A sealed journal, for an age identity:
//!
//! ```
//! use penin_history::journal::{self, Header, Identity, Seal, Writer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let snapshot = dir.path().join("state.json");
//! # std::fs::write(&snapshot, "{}")?;
//! # let path = penin_history::journal_path(&snapshot);
//! let key = age::x25519::Identity::generate();
//! let seal = Seal::generate(&[key.to_public()])?;
//! let header = Header::new(0, 0, 0, Identity::of_file(&snapshot)?);
//! let mut writer = Writer::create_with(&path, &header, Some(seal))?;
//! writer.push(0, 1, b"a secret change");
//! writer.write()?;
//! writer.sync()?;
//! assert!(!std::fs::read(&path)?.windows(6).any(|w| w == b"secret"));
//!
//! // The header and the framing read without a key; the changes need the identity.
//! assert!(journal::read_header(&path)?.expect("a journal").sealed.is_some());
//! let seal = Seal::read(&path, &[key])?.expect("a sealed journal");
//! let mut changes = Vec::new();
//! journal::replay_with(&path, Some(&seal), |record, change| {
//!     changes.push((record.seq, change.to_vec()));
//!     true
//! })?;
//! assert_eq!(changes, [(1, b"a secret change".to_vec())]);
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use penin_store::{Durability, Fs, RealFs};

mod seal;

pub use seal::{
    ID_LEN, KEY_BLOCK_AT, KEY_LEN, MAX_KEY_BLOCK, NONCE_LEN, SEAL_OVERHEAD, SEALED_HEADER_OVERHEAD,
    Seal, TAG_LEN,
};

/// The journal's magic number.
pub const MAGIC: [u8; 8] = *b"\x89PENJNL\n";

/// The newest journal format version this crate reads (and writes, for a sealed journal).
pub const VERSION: u16 = VERSION_SEALED;

/// The format version of a plaintext journal.
pub const VERSION_PLAIN: u16 = 1;

/// The format version of a sealed journal.
pub const VERSION_SEALED: u16 = 2;

/// The header flag of a sealed journal (the only flag there is).
pub const FLAG_SEALED: u32 = 1;

/// Bytes of a plaintext journal's header, and of the fixed part that starts every header.
pub const HEADER_LEN: usize = 96;

/// Bytes of a record besides its payload.
pub const FRAME_OVERHEAD: usize = 29;

/// The largest sequence number a journal holds (2^62): far beyond any real count, and far
/// enough from `u64::MAX` that no arithmetic on it overflows. A header or record beyond it is
/// damage.
pub const MAX_SEQ: u64 = 1 << 62;

/// The largest payload a record holds (a length is a `u32`; 1 GiB keeps a damaged length
/// from asking for 4 GiB). A sealed record stores [`SEAL_OVERHEAD`] bytes more.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The largest payload a record's frame stores: a sealed record's, nonce and tag included.
const MAX_STORED: usize = MAX_PAYLOAD + SEAL_OVERHEAD;

/// What can go wrong with a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// Replacing the journal atomically failed.
    #[error(transparent)]
    Store(#[from] penin_store::Error),
    /// The file does not start with the journal's magic number.
    #[error("{} is not a penin journal (its first bytes are not the journal's magic number)", path.display())]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The journal was written by a newer penin.
    #[error(
        "{} is a journal of format version {found}, newer than this penin reads (version {supported}): use a newer penin",
        path.display()
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u16,
        /// The newest version this penin reads.
        supported: u16,
    },
    /// The header or a record before the last one is damaged: the file cannot be trusted
    /// past `offset`, and a valid record follows the damage, so it is not a torn append.
    #[error(
        "{} is damaged at byte offset {offset} (record with sequence number {seq}): {what}",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The sequence number the damaged record should have (0 for the header).
        seq: u64,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A payload larger than [`MAX_PAYLOAD`].
    #[error("a change of {len} bytes is larger than a journal record holds ({MAX_PAYLOAD} bytes)")]
    TooLarge {
        /// The payload's length.
        len: usize,
    },
    /// The journal is sealed, and no key was given to read its records or append to it.
    #[error(
        "{} is a sealed journal: reading its changes or appending to it needs an identity",
        path.display()
    )]
    Sealed {
        /// The file.
        path: PathBuf,
    },
    /// None of the identities given unwraps the key of a sealed journal.
    #[error("none of the identities given opens the sealed journal {}", path.display())]
    WrongIdentity {
        /// The file.
        path: PathBuf,
    },
    /// The key given is not the journal's: another journal's, or a key for a plaintext one.
    #[error(
        "the key given is not the one of journal {} (was the journal replaced since its key was read?)",
        path.display()
    )]
    SealMismatch {
        /// The file.
        path: PathBuf,
    },
    /// A new journal's key could not be wrapped for its recipients.
    #[error("cannot wrap the key of a new sealed journal for its recipients")]
    Wrap {
        /// What age reported.
        #[source]
        source: age::EncryptError,
    },
    /// So many recipients that the wrapped key does not fit a journal's header.
    #[error(
        "the key of a sealed journal wrapped for {recipients} recipients is larger than a journal's header holds"
    )]
    TooManyRecipients {
        /// How many recipients.
        recipients: usize,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Which snapshot a journal extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The snapshot's size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Its inode number (0 where there is none).
    pub inode: u64,
    /// XXH3-128 of its bytes.
    pub xxh3: u128,
}

/// How a snapshot compares with the one a journal names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// The same snapshot (same bytes).
    Same,
    /// Another file, or none: the journal must not be replayed onto it.
    Foreign,
    /// There is no snapshot.
    Missing,
}

impl Identity {
    /// The identity of the file at `path`: its metadata and the XXH3-128 of its bytes.
    pub fn of_file(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_error("open", path))?;
        let metadata = file
            .metadata()
            .map_err(io_error("read metadata of", path))?;
        let xxh3 = hash_file(&file, metadata.len(), path)?;
        Ok(Self::from_parts(&metadata, xxh3))
    }

    /// The identity of a file from its metadata and the XXH3-128 of its bytes.
    pub fn from_parts(metadata: &std::fs::Metadata, xxh3: u128) -> Self {
        let (mtime, inode) = stamp(metadata);
        Identity {
            size: metadata.len(),
            mtime,
            inode,
            xxh3,
        }
    }

    /// Whether the open `file` (at `path`, for messages) is this snapshot: the same size,
    /// modification time and inode (no byte read), else the same bytes (read through the
    /// handle and hashed). A reader that parsed the snapshot through `file` checks the very
    /// file it read, whatever was renamed over `path` since.
    pub fn check_file(&self, file: &File, path: &Path) -> Result<Match> {
        let metadata = file
            .metadata()
            .map_err(io_error("read metadata of", path))?;
        let (mtime, inode) = stamp(&metadata);
        if metadata.len() != self.size {
            return Ok(Match::Foreign);
        }
        if mtime == self.mtime && inode == self.inode {
            return Ok(Match::Same);
        }
        Ok(if hash_file(file, metadata.len(), path)? == self.xxh3 {
            Match::Same
        } else {
            Match::Foreign
        })
    }

    /// Whether the file at `path` is this snapshot, as [`Identity::check_file`] tells.
    pub fn check(&self, path: &Path) -> Result<Match> {
        match File::open(path) {
            Ok(file) => self.check_file(&file, path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Match::Missing),
            Err(error) => Err(io_error("open", path)(error)),
        }
    }
}

/// Modification time in nanoseconds and inode number.
fn stamp(metadata: &std::fs::Metadata) -> (i64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (
            metadata
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(metadata.mtime_nsec()),
            metadata.ino(),
        )
    }
    #[cfg(not(unix))]
    {
        let mtime = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        (mtime, 0)
    }
}

/// The XXH3-128 of the first `len` bytes of `file`, read with positioned reads (the
/// handle's own position is left alone).
fn hash_file(file: &File, len: u64, path: &Path) -> Result<u128> {
    let mut hasher = twox_hash::XxHash3_128::new();
    let mut buffer = vec![0; 1 << 20];
    let mut offset = 0;
    while offset < len {
        let want = buffer
            .len()
            .min(usize::try_from(len - offset).unwrap_or(usize::MAX));
        read_at(file, &mut buffer[..want], offset).map_err(io_error("read", path))?;
        hasher.write(&buffer[..want]);
        offset += want as u64;
    }
    Ok(hasher.finish_128())
}

/// A writer that hashes what it passes on, for the identity of a snapshot being written.
pub struct HashingWriter<W> {
    inner: W,
    hasher: twox_hash::XxHash3_128,
}

impl<W: io::Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: twox_hash::XxHash3_128::new(),
        }
    }

    /// The XXH3-128 of every byte written so far.
    pub fn digest(&self) -> u128 {
        self.hasher.finish_128()
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.write(&buf[..written]);
        Ok(written)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.hasher.write(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A journal's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sequence number of the last change the snapshot holds; the first record is `base + 1`.
    pub base: u64,
    /// The ledger line that records the start of this journal (0: none).
    pub ledger_seq: u64,
    /// When the journal was started, UTC nanoseconds since the Unix epoch.
    pub created: i64,
    /// The snapshot it extends.
    pub identity: Identity,
    /// For a sealed journal (version 2), what its header says of its seal; `None` for a
    /// plaintext journal (version 1).
    pub sealed: Option<Sealed>,
}

/// What a sealed journal's header says of its seal (the key block itself is in the file
/// and in the [`Seal`], not here, so that a header stays a small value to copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Random bytes unique to the journal, bound into every record's seal.
    pub id: [u8; ID_LEN],
    /// Bytes of its key block.
    pub key_len: u32,
}

impl Header {
    /// A plaintext journal's header; [`Header::with_seal`] makes it a sealed journal's.
    pub fn new(base: u64, ledger_seq: u64, created: i64, identity: Identity) -> Self {
        Header {
            base,
            ledger_seq,
            created,
            identity,
            sealed: None,
        }
    }

    /// This header, for the journal sealed by `seal`.
    #[must_use]
    pub fn with_seal(self, seal: &Seal) -> Self {
        Header {
            sealed: Some(Sealed {
                id: seal.id(),
                key_len: seal.key_block().len() as u32,
            }),
            ..self
        }
    }

    /// The header's length in the file: where the first record starts.
    pub fn encoded_len(&self) -> u64 {
        match self.sealed {
            None => HEADER_LEN as u64,
            Some(sealed) => SEALED_HEADER_OVERHEAD as u64 + u64::from(sealed.key_len),
        }
    }

    /// The header's first [`HEADER_LEN`] bytes: all of a plaintext journal's header; a
    /// sealed journal's goes on with its key block, as [`Header::to_vec`] writes it.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let (version, flags, id) = match self.sealed {
            None => (VERSION_PLAIN, 0, [0; ID_LEN]),
            Some(sealed) => (VERSION_SEALED, FLAG_SEALED, sealed.id),
        };
        let mut bytes = [0; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&version.to_le_bytes());
        bytes[10..12].copy_from_slice(&(self.encoded_len() as u16).to_le_bytes());
        bytes[12..16].copy_from_slice(&flags.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.base.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.ledger_seq.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.created.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.identity.size.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.identity.mtime.to_le_bytes());
        bytes[56..64].copy_from_slice(&self.identity.inode.to_le_bytes());
        bytes[64..80].copy_from_slice(&self.identity.xxh3.to_le_bytes());
        bytes[80..92].copy_from_slice(&id);
        let crc = crc32c::crc32c(&bytes[..92]);
        bytes[92..96].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// The whole header's bytes: with `seal`, the header of the journal it seals
    /// ([`Header::with_seal`]), its key block included; without, a plaintext journal's.
    pub fn to_vec(&self, seal: Option<&Seal>) -> Vec<u8> {
        let Some(seal) = seal else {
            let plain = Header {
                sealed: None,
                ..*self
            };
            return plain.to_bytes().to_vec();
        };
        let header = self.with_seal(seal);
        let mut bytes = Vec::with_capacity(header.encoded_len() as usize);
        bytes.extend_from_slice(&header.to_bytes());
        bytes.extend_from_slice(&(seal.key_block().len() as u32).to_le_bytes());
        bytes.extend_from_slice(seal.key_block());
        let crc = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads a header, checking magic and version before anything else.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        if bytes.len() < 10 || bytes[..8] != MAGIC {
            if bytes.len() < 8 && MAGIC.starts_with(bytes) {
                return Err(damaged(path, 0, 0, "the header is cut short"));
            }
            return Err(Error::NotAJournal {
                path: path.to_owned(),
            });
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version > VERSION {
            return Err(Error::NewerVersion {
                path: path.to_owned(),
                found: version,
                supported: VERSION,
            });
        }
        if version == 0 {
            return Err(damaged(path, 0, 8, "version 0 does not exist"));
        }
        if bytes.len() < HEADER_LEN {
            return Err(damaged(path, 0, 0, "the header is cut short"));
        }
        let crc = u32_at(bytes, 92);
        if crc32c::crc32c(&bytes[..92]) != crc {
            return Err(damaged(path, 0, 0, "the header's checksum does not match"));
        }
        let len = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
        let flags = u32_at(bytes, 12);
        let sealed = match version {
            VERSION_PLAIN if len == HEADER_LEN && flags == 0 => None,
            VERSION_SEALED if len > SEALED_HEADER_OVERHEAD && flags == FLAG_SEALED => {
                Some(Sealed {
                    id: array_at(bytes, 80),
                    key_len: (len - SEALED_HEADER_OVERHEAD) as u32,
                })
            }
            _ => {
                return Err(damaged(
                    path,
                    0,
                    10,
                    &format!("the header's length or flags are not version {version}'s"),
                ));
            }
        };
        if u64_at(bytes, 16) > MAX_SEQ {
            return Err(damaged(
                path,
                0,
                16,
                "the header's base sequence number is beyond any journal's",
            ));
        }
        if let Some(sealed) = sealed {
            // The key block: its length again, then the CRC of the whole header.
            if bytes.len() < len {
                return Err(damaged(path, 0, 0, "the header is cut short"));
            }
            if u32_at(bytes, HEADER_LEN) != sealed.key_len {
                return Err(damaged(
                    path,
                    0,
                    HEADER_LEN as u64,
                    "the key block's length is not the one the header's length implies",
                ));
            }
            if crc32c::crc32c(&bytes[..len - 4]) != u32_at(bytes, len - 4) {
                return Err(damaged(
                    path,
                    0,
                    HEADER_LEN as u64,
                    "the key block's checksum does not match",
                ));
            }
        }
        Ok(Header {
            base: u64_at(bytes, 16),
            ledger_seq: u64_at(bytes, 24),
            created: i64_at(bytes, 32),
            identity: Identity {
                size: u64_at(bytes, 40),
                mtime: i64_at(bytes, 48),
                inode: u64_at(bytes, 56),
                xxh3: u128::from_le_bytes(array_at(bytes, 64)),
            },
            sealed,
        })
    }
}

fn damaged(path: &Path, seq: u64, offset: u64, what: &str) -> Error {
    Error::Damaged {
        path: path.to_owned(),
        seq,
        offset,
        what: what.to_owned(),
    }
}

// Callers check the length first; a short slice reads as zeros rather than panicking.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array_at(bytes, at))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array_at(bytes, at))
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(array_at(bytes, at))
}

/// One record, as found in a journal's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number.
    pub seq: u64,
    /// When it was written, UTC nanoseconds since the Unix epoch.
    pub time: i64,
    /// What the change is.
    pub kind: u8,
    /// Where the record starts in the file.
    pub offset: u64,
    /// Its payload's length as stored (for a sealed record: nonce, sealed change and tag).
    pub len: u32,
    /// Whether its payload is sealed (it is in a sealed journal).
    pub sealed: bool,
}

impl Record {
    /// The record's payload as stored, in the bytes of the journal it was read from: for a
    /// sealed record, sealed bytes ([`Record::open`] opens them).
    pub fn payload<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let start = self.offset as usize + 25;
        bytes.get(start..start + self.len as usize).unwrap_or(&[])
    }

    /// The record's change, in the bytes of the journal at `path` it was read from: its
    /// payload, opened with `seal` for a sealed record (the journal's, from [`Seal::open`]).
    ///
    /// A sealed record without a seal is [`Error::Sealed`]; a seal for a plaintext record,
    /// [`Error::SealMismatch`]; a sealed payload whose tag does not match is
    /// [`Error::Damaged`] (its bytes were changed under a valid checksum, or it is another
    /// journal's or another place's record), never returned.
    pub fn open<'b>(
        &self,
        bytes: &'b [u8],
        seal: Option<&Seal>,
        path: &Path,
    ) -> Result<std::borrow::Cow<'b, [u8]>> {
        let stored = self.payload(bytes);
        match (self.sealed, seal) {
            (false, None) => Ok(std::borrow::Cow::Borrowed(stored)),
            (false, Some(_)) => Err(Error::SealMismatch {
                path: path.to_owned(),
            }),
            (true, None) => Err(Error::Sealed {
                path: path.to_owned(),
            }),
            (true, Some(seal)) => {
                let mut plain = Vec::new();
                if seal.open_into(self, stored, &mut plain) {
                    Ok(std::borrow::Cow::Owned(plain))
                } else {
                    Err(unopened(path, self))
                }
            }
        }
    }

    /// The record's frame (header, payload and trailer) in the journal's bytes.
    pub fn frame<'b>(&self, bytes: &'b [u8]) -> &'b [u8] {
        let start = self.offset as usize;
        bytes
            .get(start..start + FRAME_OVERHEAD + self.len as usize)
            .unwrap_or(&[])
    }

    /// Where the next record starts.
    pub fn end(&self) -> u64 {
        self.offset + FRAME_OVERHEAD as u64 + u64::from(self.len)
    }
}

/// A torn last record, cut off or to be cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    /// Where it starts: the journal's valid length.
    pub offset: u64,
    /// How many bytes it has.
    pub len: u64,
    /// The sequence number it would have had.
    pub seq: u64,
}

/// A journal, read and checked.
#[derive(Clone, Debug)]
pub struct Scan {
    /// Its header.
    pub header: Header,
    /// Its valid records, in order.
    pub records: Vec<Record>,
    /// A torn last record after them, if any.
    pub torn: Option<Torn>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl Scan {
    /// The sequence number of the last valid record (the header's base if there is none).
    pub fn last_seq(&self) -> u64 {
        self.records.last().map_or(self.header.base, |r| r.seq)
    }

    /// The length of the valid part: header and valid records.
    pub fn valid_len(&self) -> u64 {
        self.records
            .last()
            .map_or(self.header.encoded_len(), Record::end)
    }
}

/// The damage of a sealed record whose tag does not match.
fn unopened(path: &Path, record: &Record) -> Error {
    damaged(
        path,
        record.seq,
        record.offset,
        "the record's seal does not open: its bytes were changed under a valid checksum, \
         or it was moved from another journal or another place",
    )
}

/// The sequence number of the record right after the header, if it is a valid record: what a
/// damaged header's base was (that number minus one). The header's end is where a plaintext
/// header ends, else where a sealed header's length fields (either) say.
pub fn first_record_seq(bytes: &[u8]) -> Option<u64> {
    let sealed_ends = [
        usize::from(u16::from_le_bytes(array_at(bytes, 10))),
        SEALED_HEADER_OVERHEAD.saturating_add(u32_at(bytes, HEADER_LEN) as usize),
    ];
    [HEADER_LEN].into_iter().chain(sealed_ends).find_map(|at| {
        let seq = bytes
            .get(at.checked_add(8)?..at.checked_add(16)?)
            .map(|_| u64_at(bytes, at + 8))?;
        frame_at(bytes, at, seq).ok().map(|record| record.seq)
    })
}

/// The highest sequence number of any valid record in a journal's bytes, found anywhere
/// after the header (past damage too); 0 if there is none. What a repair drops runs to it.
pub fn last_valid_seq(bytes: &[u8]) -> u64 {
    let mut highest = 0;
    let mut at = HEADER_LEN;
    while at + FRAME_OVERHEAD <= bytes.len() {
        let seq = u64_at(bytes, at + 8);
        match frame_at(bytes, at, seq) {
            Ok(record) => {
                highest = highest.max(seq);
                at = record.end() as usize;
            }
            Err(_) => at += 1,
        }
    }
    highest
}

/// Reads and checks only the header of the journal at `path` (a sealed journal's too, with
/// no key); `Ok(None)` if there is none.
pub fn read_header(path: &Path) -> Result<Option<Header>> {
    match read_head(path)? {
        Some(bytes) => Header::parse(&bytes, path).map(Some),
        None => Ok(None),
    }
}

/// The bytes of the header of the journal at `path`, unchecked; `Ok(None)` if there is none.
fn read_head(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    fill(&mut file, &mut bytes, HEADER_LEN, path)?;
    let want = header_len(&bytes);
    fill(&mut file, &mut bytes, want, path)?;
    Ok(Some(bytes))
}

/// How long the header starting `bytes` (its fixed part, at least) says it is: a sealed
/// header's length field once its fixed part is checked, else the fixed part's.
fn header_len(bytes: &[u8]) -> usize {
    let sealed = bytes.len() >= HEADER_LEN
        && bytes[..8] == MAGIC
        && u16::from_le_bytes(array_at(bytes, 8)) == VERSION_SEALED
        && crc32c::crc32c(&bytes[..92]) == u32_at(bytes, 92);
    if sealed {
        usize::from(u16::from_le_bytes(array_at(bytes, 10))).max(HEADER_LEN)
    } else {
        HEADER_LEN
    }
}

/// What [`replay`] found: a journal's header and the extent of its valid records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Its header.
    pub header: Header,
    /// How many valid records.
    pub records: u64,
    /// The sequence number of the last valid record (the header's base if there is none).
    pub last_seq: u64,
    /// The length of the valid part: header and valid records.
    pub valid_len: u64,
    /// A torn last record after them, if any.
    pub torn: Option<Torn>,
    /// The file's length.
    pub len: u64,
}

impl Scan {
    /// The scan's [`Summary`].
    pub fn summary(&self) -> Summary {
        Summary {
            header: self.header,
            records: self.records.len() as u64,
            last_seq: self.last_seq(),
            valid_len: self.valid_len(),
            torn: self.torn,
            len: self.bytes.len() as u64,
        }
    }
}

/// Bytes read at a time by [`replay`].
const REPLAY_CHUNK: usize = 4 << 20;

/// Reads the journal at `path` a chunk at a time, checking each record as [`read`] does and
/// handing each valid one, with its payload, to `visit` in order; `Ok(None)` if there is no
/// journal. Memory holds a chunk (or one record, if larger), not the journal. `visit`
/// returns false to stop; the summary then covers the records visited.
///
/// A bad record is a torn tail if no valid record follows it (then the rest of the file,
/// shorter than any record that could follow, is read to tell), else damage, as in [`read`].
///
/// A sealed journal is [`Error::Sealed`]: [`replay_with`] reads it.
pub fn replay(path: &Path, visit: impl FnMut(&Record, &[u8]) -> bool) -> Result<Option<Summary>> {
    replay_in_chunks(path, REPLAY_CHUNK, None, visit)
}

/// [`replay`] for a journal sealed with `seal` (from [`Seal::read`]; `None` for a plaintext
/// journal): `visit` is handed each record's change, opened. A record whose seal does not
/// open is [`Error::Damaged`], at the record, never visited and never a torn tail (its
/// checksum matched). A seal that is not the journal's is [`Error::SealMismatch`].
pub fn replay_with(
    path: &Path,
    seal: Option<&Seal>,
    visit: impl FnMut(&Record, &[u8]) -> bool,
) -> Result<Option<Summary>> {
    replay_in_chunks(path, REPLAY_CHUNK, seal, visit)
}

/// Fails unless `seal` is the one the journal of `header` needs: none for a plaintext
/// journal, its own for a sealed one.
fn check_seal(header: &Header, seal: Option<&Seal>, path: &Path) -> Result<()> {
    match (header.sealed, seal) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Error::Sealed {
            path: path.to_owned(),
        }),
        (_, Some(seal)) if seal.fits(header) => Ok(()),
        (_, Some(_)) => Err(Error::SealMismatch {
            path: path.to_owned(),
        }),
    }
}

/// [`replay_with`], reading `chunk` bytes at a time.
fn replay_in_chunks(
    path: &Path,
    chunk: usize,
    seal: Option<&Seal>,
    mut visit: impl FnMut(&Record, &[u8]) -> bool,
) -> Result<Option<Summary>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    let len = file
        .metadata()
        .map_err(io_error("read metadata of", path))?
        .len();
    let mut buffer = Vec::with_capacity(chunk.min(usize::try_from(len).unwrap_or(chunk)));
    // `buffer[at..]` holds the file from `offset` on.
    let mut offset = 0_u64;
    let mut at = 0;
    fill(&mut file, &mut buffer, HEADER_LEN, path)?;
    let want = header_len(&buffer);
    fill(&mut file, &mut buffer, want, path)?;
    let header = Header::parse(&buffer, path)?;
    check_seal(&header, seal, path)?;
    let header_len = header.encoded_len();
    // A header is at most 64 KiB.
    at += header_len as usize;
    offset += header_len;
    let mut summary = Summary {
        header,
        records: 0,
        last_seq: header.base,
        valid_len: header_len,
        torn: None,
        len,
    };
    let mut plain = Vec::new();
    loop {
        if buffer.len() - at < FRAME_OVERHEAD || buffer.len() - at < frame_len(&buffer[at..]) {
            // Keep what is left of the chunk and read on, at least the next whole record.
            buffer.drain(..at);
            at = 0;
            // First the frame's header (which says its length), then the whole frame.
            fill(&mut file, &mut buffer, FRAME_OVERHEAD.max(chunk), path)?;
            let whole = frame_len(&buffer).max(chunk);
            fill(&mut file, &mut buffer, whole, path)?;
            if buffer.is_empty() {
                return Ok(Some(summary));
            }
        }
        let expected = summary.last_seq + 1;
        match frame_at(&buffer, at, expected) {
            Ok(mut record) => {
                record.offset = offset;
                record.sealed = header.sealed.is_some();
                let start = at + 25;
                let mut payload = &buffer[start..start + record.len as usize];
                if let Some(seal) = seal {
                    if !seal.open_into(&record, payload, &mut plain) {
                        return Err(unopened(path, &record));
                    }
                    payload = &plain;
                }
                if !visit(&record, payload) {
                    return Ok(Some(summary));
                }
                let frame = FRAME_OVERHEAD + record.len as usize;
                at += frame;
                offset += frame as u64;
                summary.records += 1;
                summary.last_seq = record.seq;
                summary.valid_len = offset;
            }
            Err(what) => {
                // The rest of the file decides: a valid record after it is damage.
                buffer.drain(..at);
                file.read_to_end(&mut buffer)
                    .map_err(io_error("read", path))?;
                if let Some(next) = valid_frame_after(&buffer, 0, expected) {
                    return Err(damaged(
                        path,
                        expected,
                        offset,
                        &format!(
                            "{what}, and a valid record follows at byte offset {}",
                            offset + next as u64
                        ),
                    ));
                }
                summary.torn = Some(Torn {
                    offset,
                    len: buffer.len() as u64,
                    seq: expected,
                });
                return Ok(Some(summary));
            }
        }
    }
}

/// The length a record's frame says it has (its overhead when too little is there to tell),
/// bounded so that a damaged length never asks for more than a record holds.
fn frame_len(bytes: &[u8]) -> usize {
    if bytes.len() < 8 {
        return FRAME_OVERHEAD;
    }
    FRAME_OVERHEAD + (u32_at(bytes, 4) as usize).min(MAX_STORED)
}

/// Reads from `file` onto the end of `buffer` until it holds `want` bytes or the file ends.
fn fill(file: &mut File, buffer: &mut Vec<u8>, want: usize, path: &Path) -> Result<()> {
    if buffer.len() >= want {
        return Ok(());
    }
    let more = (want - buffer.len()) as u64;
    file.take(more)
        .read_to_end(buffer)
        .map_err(io_error("read", path))?;
    Ok(())
}

/// Reads and checks the journal at `path`; `Ok(None)` if there is none.
pub fn read(path: &Path) -> Result<Option<Scan>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("read", path)(error)),
    };
    scan(bytes, path).map(Some)
}

/// Checks a journal's bytes: header, then each record in turn.
pub fn scan(bytes: Vec<u8>, path: &Path) -> Result<Scan> {
    match salvage(bytes, path)? {
        (scan, None) => Ok(scan),
        (_, Some(damage)) => Err(damage),
    }
}

/// [`scan`], keeping what comes before damage: the valid records up to it, and the
/// [`Error::Damaged`] it would be. A damaged header is still an error.
pub fn salvage(bytes: Vec<u8>, path: &Path) -> Result<(Scan, Option<Error>)> {
    let header = Header::parse(&bytes, path)?;
    let mut records = Vec::new();
    // `parse` checked that the whole header is there; it is at most 64 KiB.
    let mut offset = header.encoded_len() as usize;
    let mut expected = header.base.wrapping_add(1);
    let mut torn = None;
    while offset < bytes.len() {
        match frame_at(&bytes, offset, expected) {
            Ok(mut record) => {
                record.sealed = header.sealed.is_some();
                offset = record.end() as usize;
                expected = expected.wrapping_add(1);
                records.push(record);
            }
            Err(what) => {
                if let Some(next) = valid_frame_after(&bytes, offset, expected) {
                    let damage = damaged(
                        path,
                        expected,
                        offset as u64,
                        &format!("{what}, and a valid record follows at byte offset {next}"),
                    );
                    let scan = Scan {
                        header,
                        records,
                        torn: None,
                        bytes,
                    };
                    return Ok((scan, Some(damage)));
                }
                torn = Some(Torn {
                    offset: offset as u64,
                    len: (bytes.len() - offset) as u64,
                    seq: expected,
                });
                break;
            }
        }
    }
    Ok((
        Scan {
            header,
            records,
            torn,
            bytes,
        },
        None,
    ))
}

/// The record at `offset`, which must have sequence number `seq`, or what is wrong with it.
fn frame_at(bytes: &[u8], offset: usize, seq: u64) -> Result<Record, String> {
    let rest = &bytes[offset..];
    if rest.len() < FRAME_OVERHEAD {
        return Err(format!(
            "{} bytes remain, fewer than a record's {FRAME_OVERHEAD}",
            rest.len()
        ));
    }
    let len = u32_at(rest, 4);
    let end = FRAME_OVERHEAD + len as usize;
    if len as usize > MAX_STORED || end > rest.len() {
        return Err(format!(
            "the record's length ({len} bytes) runs past the end of the file"
        ));
    }
    if crc32c::crc32c(&rest[4..end]) != u32_at(rest, 0) {
        return Err("the record's checksum does not match".to_owned());
    }
    if u32_at(rest, end - 4) != len {
        return Err("the record's two lengths differ".to_owned());
    }
    let found = u64_at(rest, 8);
    if found != seq || found > MAX_SEQ {
        return Err(format!("the record's sequence number is {found}"));
    }
    Ok(Record {
        seq,
        time: i64_at(rest, 16),
        kind: rest[24],
        offset: offset as u64,
        len,
        sealed: false,
    })
}

/// The offset of a valid record somewhere after a bad one at `offset`: one whose sequence
/// number is `expected` or later, no further than the bytes left could hold.
fn valid_frame_after(bytes: &[u8], offset: usize, expected: u64) -> Option<usize> {
    let mut at = offset + 1;
    while at + FRAME_OVERHEAD <= bytes.len() {
        let seq = u64_at(bytes, at + 8);
        let most = ((bytes.len() - at) / FRAME_OVERHEAD) as u64;
        // A cheap filter before the checksum: a plausible sequence number.
        if seq >= expected && seq - expected <= most && frame_at(bytes, at, seq).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Appends records to a journal.
///
/// [`Writer::push`] encodes a record into a buffer, [`Writer::write`] writes every pushed
/// record with one write, [`Writer::sync`] makes them durable (`fdatasync`). A group commit
/// is pushes, one write and one sync.
pub struct Writer<F: Fs = RealFs> {
    fs: F,
    path: PathBuf,
    file: File,
    /// Seals every record, for a sealed journal.
    seal: Option<Seal>,
    header_len: u64,
    next_seq: u64,
    len: u64,
    pending: Vec<u8>,
    /// The sequence number after the last written record.
    written_seq: u64,
    unsynced: bool,
    /// Why the writer refuses to go on, after a failure it could not undo.
    broken: Option<String>,
}

fn broken(path: &Path, why: &str) -> Error {
    Error::Io {
        what: "append to",
        path: path.to_owned(),
        source: io::Error::other(why.to_owned()),
    }
}

impl Writer<RealFs> {
    /// [`Writer::create_in`] on the real file system.
    pub fn create(path: &Path, header: &Header) -> Result<Self> {
        Self::create_in(RealFs, path, header)
    }

    /// [`Writer::open_in`] on the real file system.
    pub fn open(path: &Path) -> Result<Opened<RealFs>> {
        Self::open_in(RealFs, path)
    }

    /// [`Writer::create_with_in`] on the real file system.
    pub fn create_with(path: &Path, header: &Header, seal: Option<Seal>) -> Result<Self> {
        Self::create_with_in(RealFs, path, header, seal)
    }

    /// [`Writer::open_with_in`] on the real file system.
    pub fn open_with(path: &Path, seal: Option<Seal>) -> Result<Opened<RealFs>> {
        Self::open_with_in(RealFs, path, seal)
    }
}

/// A journal opened for appending.
pub struct Opened<F: Fs = RealFs> {
    /// The writer, at the end of the valid records.
    pub writer: Writer<F>,
    /// Its header.
    pub header: Header,
    /// A torn last record that was cut off.
    pub torn: Option<Torn>,
}

impl<F: Fs> Writer<F> {
    /// Starts a plaintext journal at `path` holding only `header`, replacing any journal
    /// there atomically and durably.
    pub fn create_in(fs: F, path: &Path, header: &Header) -> Result<Self> {
        Self::create_with_in(fs, path, header, None)
    }

    /// [`Writer::create_in`], for a journal sealed with `seal` (a new one, from
    /// [`Seal::generate`]): its header is `header` [with the seal](Header::with_seal), and
    /// every record pushed is sealed. Without a seal, a plaintext journal.
    pub fn create_with_in(fs: F, path: &Path, header: &Header, seal: Option<Seal>) -> Result<Self> {
        let bytes = header.to_vec(seal.as_ref());
        penin_store::write_atomic_in(&fs, path, Durability::Full, |w| {
            io::Write::write_all(w, &bytes)
        })?;
        let file = fs.open_append(path).map_err(io_error("open", path))?;
        let len = bytes.len() as u64;
        Ok(Self::at(fs, path, file, seal, len, header.base + 1, len))
    }

    /// Opens the plaintext journal at `path` for appending after its last valid record; a
    /// sealed journal is [`Error::Sealed`] ([`Writer::open_with_in`] opens it).
    ///
    /// The last record is found from the end of the file and checked; only when it is not
    /// valid (or the memory for it, as long as the file's last bytes say, is refused) is the
    /// whole journal read, and then a torn last record is cut off (and reported) and damage
    /// before it is an error.
    pub fn open_in(fs: F, path: &Path) -> Result<Opened<F>> {
        Self::open_with_in(fs, path, None)
    }

    /// [`Writer::open_in`] for a journal sealed with `seal` (from [`Seal::read`]; `None` for
    /// a plaintext journal): every record pushed is sealed with it. A seal that is not the
    /// journal's is [`Error::SealMismatch`]. No record is opened: only their frames are
    /// checked.
    pub fn open_with_in(fs: F, path: &Path, seal: Option<Seal>) -> Result<Opened<F>> {
        let file = fs.open_append(path).map_err(io_error("open", path))?;
        if let Some((header, next_seq, len)) = tail(&file, path)? {
            check_seal(&header, seal.as_ref(), path)?;
            let header_len = header.encoded_len();
            return Ok(Opened {
                writer: Self::at(fs, path, file, seal, header_len, next_seq, len),
                header,
                torn: None,
            });
        }
        drop(file);
        let scan = read(path)?
            .ok_or_else(|| io_error("open", path)(io::Error::from(io::ErrorKind::NotFound)))?;
        let writer = Self::after_scan_with_in(fs, path, &scan.summary(), seal)?;
        Ok(Opened {
            writer,
            header: scan.header,
            torn: scan.torn,
        })
    }

    /// Opens the plaintext journal read as `scan` for appending, cutting off its torn last
    /// record if it has one (durably, before any append). A sealed journal is
    /// [`Error::Sealed`] ([`Writer::after_scan_with_in`] opens it).
    pub fn after_scan_in(fs: F, path: &Path, scan: &Summary) -> Result<Self> {
        Self::after_scan_with_in(fs, path, scan, None)
    }

    /// [`Writer::after_scan_in`] for a journal sealed with `seal` (`None` for a plaintext
    /// journal); a seal that is not the journal's is [`Error::SealMismatch`].
    pub fn after_scan_with_in(
        fs: F,
        path: &Path,
        scan: &Summary,
        seal: Option<Seal>,
    ) -> Result<Self> {
        check_seal(&scan.header, seal.as_ref(), path)?;
        let file = fs.open_append(path).map_err(io_error("open", path))?;
        let header_len = scan.header.encoded_len();
        let writer = Self::at(
            fs,
            path,
            file,
            seal,
            header_len,
            scan.last_seq + 1,
            scan.valid_len,
        );
        if scan.torn.is_some() {
            writer
                .fs
                .set_len(&writer.file, writer.len)
                .map_err(io_error("cut the torn last record of", path))?;
            writer
                .fs
                .sync_data(&writer.file)
                .map_err(io_error("sync", path))?;
        }
        Ok(writer)
    }

    /// A writer appending to `file`, `len` bytes long (a header of `header_len` and
    /// records), whose next record is `next_seq`, sealing records with `seal`.
    fn at(
        fs: F,
        path: &Path,
        file: File,
        seal: Option<Seal>,
        header_len: u64,
        next_seq: u64,
        len: u64,
    ) -> Self {
        Writer {
            fs,
            path: path.to_owned(),
            file,
            seal,
            header_len,
            next_seq,
            len,
            pending: Vec::new(),
            written_seq: next_seq,
            unsynced: false,
            broken: None,
        }
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The journal's length once what is pushed is written.
    pub fn len(&self) -> u64 {
        self.len + self.pending.len() as u64
    }

    /// Whether the journal holds no record (and none is pushed).
    pub fn is_empty(&self) -> bool {
        self.len() == self.header_len
    }

    /// The length of the journal's header ([`HEADER_LEN`] for a plaintext journal): what
    /// [`Writer::len`] counts besides records.
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The seal every record is sealed with, for a sealed journal.
    pub fn seal(&self) -> Option<&Seal> {
        self.seal.as_ref()
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a record to the next write; returns its sequence number. In a sealed journal
    /// the payload is sealed (one AEAD pass; no age operation).
    ///
    /// # Panics
    ///
    /// If the payload is larger than [`MAX_PAYLOAD`]: check with [`check_len`] first.
    pub fn push(&mut self, time: i64, kind: u8, payload: &[u8]) -> u64 {
        assert!(payload.len() <= MAX_PAYLOAD, "payload checked by check_len");
        let seq = self.next_seq;
        self.next_seq += 1;
        match &self.seal {
            Some(seal) => seal.encode_frame(&mut self.pending, seq, time, kind, payload),
            None => encode_frame(&mut self.pending, seq, time, kind, payload),
        }
        seq
    }

    /// Writes every pushed record, with one write call when the file system takes it whole.
    ///
    /// On error none of them counts: the journal is cut back to its length before the write
    /// (and synced), so that no part of a change that was refused can be replayed later. If
    /// even that fails, the error says so and the writer refuses every later call: the
    /// caller must reopen the journal, which cuts a torn part off.
    pub fn write(&mut self) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(broken(&self.path, why));
        }
        let mut written = 0;
        let mut failure = None;
        while written < self.pending.len() {
            match self.fs.write(&mut self.file, &self.pending[written..]) {
                Ok(0) => {
                    failure = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let pending = self.pending.len();
        self.pending.clear();
        if let Some(error) = failure {
            self.next_seq = self.written_seq;
            if written > 0 {
                let cut = self
                    .fs
                    .set_len(&self.file, self.len)
                    .and_then(|()| self.fs.sync_data(&self.file));
                if let Err(cut) = cut {
                    let why = format!(
                        "appending failed ({error}) and cutting the partial append off failed too ({cut})"
                    );
                    self.broken = Some(why.clone());
                    return Err(broken(&self.path, &why));
                }
            }
            return Err(io_error("append to", &self.path)(error));
        }
        self.len += pending as u64;
        self.written_seq = self.next_seq;
        self.unsynced |= pending > 0;
        Ok(())
    }

    /// Makes every written record durable (`fdatasync`); nothing to do if all are.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(broken(&self.path, why));
        }
        if self.unsynced {
            if let Err(error) = self.fs.sync_data(&self.file) {
                // After a failed fsync the kernel may have dropped the pages: whether the
                // records are on disk is unknown, and retrying cannot tell.
                self.broken = Some(format!("syncing failed ({error})"));
                return Err(io_error("sync", &self.path)(error));
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Where the journal ends now: its length and the next sequence number, for
    /// [`Writer::cut_back`].
    pub fn mark(&self) -> (u64, u64) {
        (self.len, self.written_seq)
    }

    /// Takes back every record written since `mark`: the file is cut to the marked length and
    /// synced, and sequence numbers restart from there. For a change whose records were
    /// written but that cannot be completed. If the cut fails, the writer refuses every later
    /// call, as after a failed write.
    pub fn cut_back(&mut self, mark: (u64, u64)) -> Result<()> {
        let (len, next_seq) = mark;
        self.pending.clear();
        let cut = self
            .fs
            .set_len(&self.file, len)
            .and_then(|()| self.fs.sync_data(&self.file));
        if let Err(error) = cut {
            let why = format!("taking back records failed ({error})");
            self.broken = Some(why.clone());
            return Err(broken(&self.path, &why));
        }
        self.len = len;
        self.next_seq = next_seq;
        self.written_seq = next_seq;
        Ok(())
    }

    /// Whether the writer refuses every call, after a failure it could not undo.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Whether some written record is not yet synced.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }
}

/// Fails for a payload larger than a record holds.
pub fn check_len(payload: &[u8]) -> Result<()> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::TooLarge { len: payload.len() });
    }
    Ok(())
}

/// Appends one plaintext record's frame to `out` ([`Seal::encode_frame`] a sealed one's).
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, time: i64, kind: u8, payload: &[u8]) {
    let len = payload.len() as u32;
    let start = start_frame(out, len, seq, time, kind);
    out.extend_from_slice(payload);
    end_frame(out, start, len);
}

/// Appends a frame's first 25 bytes, its CRC left zero, to `out`; returns where it starts.
fn start_frame(out: &mut Vec<u8>, len: u32, seq: u64, time: i64, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time.to_le_bytes());
    out.push(kind);
    start
}

/// Ends the frame started at `start`, whose `len` bytes of payload follow its start: the
/// trailing length, then the CRC.
fn end_frame(out: &mut Vec<u8>, start: usize, len: u32) {
    out.extend_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The header, next sequence number and length of a journal whose last record (found from
/// the end) is valid; `None` when it is not, when the file is too short to tell, or when
/// the system refuses memory for the record its last bytes claim.
fn tail(file: &File, path: &Path) -> Result<Option<(Header, u64, u64)>> {
    let len = file
        .metadata()
        .map_err(io_error("read metadata of", path))?
        .len();
    let mut head = vec![0; HEADER_LEN];
    if len < HEADER_LEN as u64 || read_at(file, &mut head, 0).is_err() {
        return Ok(None);
    }
    head.resize(header_len(&head), 0);
    if len < head.len() as u64 || read_at(file, &mut head[HEADER_LEN..], HEADER_LEN as u64).is_err()
    {
        return Ok(None);
    }
    let header = Header::parse(&head, path)?;
    let header_len = header.encoded_len();
    if len == header_len {
        return Ok(Some((header, header.base + 1, len)));
    }
    if len < header_len + FRAME_OVERHEAD as u64 {
        return Ok(None);
    }
    let mut trailer = [0; 4];
    if read_at(file, &mut trailer, len - 4).is_err() {
        return Ok(None);
    }
    let payload = u64::from(u32::from_le_bytes(trailer));
    let frame = FRAME_OVERHEAD as u64 + payload;
    if payload > MAX_STORED as u64 || frame > len - header_len {
        return Ok(None);
    }
    let start = len - frame;
    // Up to a gigabyte, on the trailer's word: memory refused is a tail not read here.
    let Ok(mut bytes) = penin_codec::buffer(frame as usize) else {
        return Ok(None);
    };
    if read_at(file, &mut bytes, start).is_err() {
        return Ok(None);
    }
    let seq = u64_at(&bytes, 8);
    if seq <= header.base || frame_at(&bytes, 0, seq).is_err() {
        return Ok(None);
    }
    // The number of records between header and this one is not checked here: a reader
    // checks every record, and a writer only needs where to append and what comes next.
    Ok(Some((header, seq + 1, len)))
}

/// Fills `buf` from `offset` of `file`; the file ending first is an error.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if penin_codec::read_full(file, buf, offset)? == buf.len() {
        Ok(())
    } else {
        Err(io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            size: 2,
            mtime: 3,
            inode: 4,
            xxh3: 5,
        }
    }

    fn journal(records: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Header::new(10, 7, 1, identity()).to_bytes().to_vec();
        for (i, payload) in records.iter().enumerate() {
            encode_frame(
                &mut bytes,
                11 + i as u64,
                100 + i64::try_from(i).unwrap(),
                1,
                payload,
            );
        }
        bytes
    }

    /// A writer that takes at most 1,000 bytes a call.
    struct Trickle(Vec<u8>);

    impl io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(1000);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A snapshot is named by the XXH3-128 of its bytes, whoever computes it: the values are
    /// Python `xxhash.xxh3_128_intdigest`'s, of nothing and of more than one read's bytes.
    #[test]
    fn a_snapshot_is_named_by_the_xxh3_128_python_computes() {
        let data: Vec<u8> = (0..(3_usize << 20) + 5)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let known = [
            (0, 0x99aa_06d3_0147_98d8_6001_c324_468d_497f_u128),
            (data.len(), 0xbe70_234d_015a_ea3c_62f0_de2e_cd70_2f9b_u128),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (len, xxh3) in known {
            let bytes = &data[..len];
            let path = dir.path().join(format!("snapshot-{len}"));
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(
                Identity::of_file(&path).unwrap().xxh3,
                xxh3,
                "{len} bytes, read"
            );
            let mut whole = HashingWriter::new(Vec::new());
            io::Write::write_all(&mut whole, bytes).unwrap();
            assert_eq!(whole.digest(), xxh3, "{len} bytes, written whole");
            // Each call hashes what the writer took, not what it was offered.
            let mut trickled = HashingWriter::new(Trickle(Vec::new()));
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = io::Write::write(&mut trickled, rest).unwrap();
                rest = &rest[n..];
            }
            assert_eq!(trickled.digest(), xxh3, "{len} bytes, 1,000 at a time");
        }
    }

    #[test]
    fn headers_round_trip() {
        let header = Header::new(MAX_SEQ, 9, -5, identity());
        let bytes = header.to_bytes();
        assert_eq!(Header::parse(&bytes, Path::new("j")).unwrap(), header);
        assert_eq!(&bytes[..8], b"\x89PENJNL\n");
        assert_eq!(bytes.len(), 96);
        // A base no journal reaches (with a good checksum: a CRC is no seal) is damage, so
        // that no sequence number after it can overflow.
        let beyond = Header::new(u64::MAX, 9, -5, identity()).to_bytes();
        let error = Header::parse(&beyond, Path::new("j")).unwrap_err();
        assert!(
            matches!(error, Error::Damaged { offset: 16, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_newer_version_is_refused_before_the_checksum() {
        let mut bytes = Header::new(0, 0, 0, identity()).to_bytes();
        bytes[8] = 3;
        bytes[40] ^= 1; // the checksum no longer matches either: the version is checked first
        let error = Header::parse(&bytes, Path::new("j")).unwrap_err();
        assert!(
            matches!(
                error,
                Error::NewerVersion {
                    found: 3,
                    supported: 2,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn records_are_framed() {
        let bytes = journal(&[b"a", b"", b"ccc"]);
        let scan = scan(bytes, Path::new("j")).unwrap();
        let got: Vec<_> = scan
            .records
            .iter()
            .map(|r| (r.seq, r.time, r.payload(&scan.bytes).to_vec()))
            .collect();
        assert_eq!(
            got,
            [
                (11, 100, b"a".to_vec()),
                (12, 101, Vec::new()),
                (13, 102, b"ccc".to_vec())
            ]
        );
        assert_eq!(scan.last_seq(), 13);
        assert!(scan.torn.is_none());
        assert_eq!(scan.valid_len(), scan.bytes.len() as u64);
    }

    #[test]
    fn a_torn_tail_at_every_offset_is_cut_never_an_error() {
        let whole = journal(&[b"first", b"second record", b"third and last record"]);
        let last = scan(whole.clone(), Path::new("j")).unwrap().records[2];
        for cut in last.offset as usize..whole.len() {
            let scan = scan(whole[..cut].to_vec(), Path::new("j")).unwrap();
            assert_eq!(scan.records.len(), 2, "cut at {cut}");
            let torn = scan.torn;
            if cut == last.offset as usize {
                assert_eq!(torn, None);
            } else {
                assert_eq!(
                    torn,
                    Some(Torn {
                        offset: last.offset,
                        len: (cut - last.offset as usize) as u64,
                        seq: 13
                    }),
                    "cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_reported_never_misread() {
        let whole = journal(&[b"first", b"second record", b"third and last record"]);
        let good = scan(whole.clone(), Path::new("j")).unwrap();
        let last = good.records[2];
        for byte in 0..whole.len() {
            for bit in 0..8 {
                let mut bytes = whole.clone();
                bytes[byte] ^= 1 << bit;
                match scan(bytes, Path::new("j")) {
                    // Only damage inside the last record can read as a torn tail.
                    Ok(scan) => {
                        assert!(byte >= last.offset as usize, "byte {byte} bit {bit}");
                        assert_eq!(scan.records, good.records[..2], "byte {byte} bit {bit}");
                        assert_eq!(scan.torn.map(|t| t.offset), Some(last.offset));
                    }
                    Err(Error::Damaged { seq, offset, .. }) => {
                        let record = good.records.iter().find(|r| r.end() > byte as u64);
                        match record {
                            Some(record) if byte >= HEADER_LEN => {
                                assert_eq!((seq, offset), (record.seq, record.offset));
                            }
                            _ => assert_eq!(seq, 0, "byte {byte} bit {bit}"),
                        }
                    }
                    Err(Error::NotAJournal { .. } | Error::NewerVersion { .. }) => {
                        assert!(byte < 10, "byte {byte} bit {bit}");
                    }
                    Err(other) => panic!("byte {byte} bit {bit}: {other}"),
                }
            }
        }
    }

    /// What `replay` in chunks of `chunk` bytes makes of `bytes`, in `scan`'s terms.
    /// Records as (sequence number, payload).
    type Seen = Vec<(u64, Vec<u8>)>;

    fn replayed(bytes: &[u8], chunk: usize, seal: Option<&Seal>) -> Result<(Seen, Summary)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, bytes).unwrap();
        let mut seen = Vec::new();
        let summary = replay_in_chunks(&path, chunk, seal, |record: &Record, payload: &[u8]| {
            seen.push((record.seq, payload.to_vec()));
            true
        })?
        .unwrap();
        Ok((seen, summary))
    }

    /// `replay`, in chunks of any size, finds what `scan` finds: the same records, the same
    /// torn tail, the same damage at the same place.
    #[test]
    fn replay_in_chunks_agrees_with_scan() {
        let whole = journal(&[b"first", b"", b"second record", b"third and last record"]);
        let mut inputs = Vec::new();
        for cut in HEADER_LEN..=whole.len() {
            inputs.push(whole[..cut].to_vec());
        }
        for byte in HEADER_LEN..whole.len() {
            let mut flipped = whole.clone();
            flipped[byte] ^= 0x10;
            inputs.push(flipped);
        }
        for (n, input) in inputs.iter().enumerate() {
            let expected = scan(input.clone(), Path::new("j"));
            for chunk in [1, 7, 29, 64, 4096] {
                match (&expected, replayed(input, chunk, None)) {
                    (Ok(scan), Ok((seen, summary))) => {
                        let records: Vec<(u64, Vec<u8>)> = scan
                            .records
                            .iter()
                            .map(|r| (r.seq, r.payload(&scan.bytes).to_vec()))
                            .collect();
                        assert_eq!(seen, records, "input {n}, chunk {chunk}");
                        assert_eq!(summary, scan.summary(), "input {n}, chunk {chunk}");
                    }
                    (
                        Err(Error::Damaged { seq, offset, .. }),
                        Err(Error::Damaged {
                            seq: got_seq,
                            offset: got_offset,
                            ..
                        }),
                    ) => assert_eq!((got_seq, got_offset), (*seq, *offset), "input {n}"),
                    (expected, got) => panic!("input {n}, chunk {chunk}: {expected:?} vs {got:?}"),
                }
            }
        }
    }

    /// Sealed: `replay_with`, in chunks of any size (a header longer than a chunk too),
    /// finds what `scan` and `Record::open` find, cut anywhere and with a bit flipped
    /// anywhere after the header.
    #[test]
    fn a_sealed_replay_in_chunks_agrees_with_scan_and_open() {
        let key = age::x25519::Identity::generate();
        let seal = Seal::generate(&[key.to_public()]).unwrap();
        let mut whole = Header::new(10, 7, 1, identity()).to_vec(Some(&seal));
        let header_len = whole.len();
        for (i, payload) in [&b"first"[..], b"", b"second record"].iter().enumerate() {
            seal.encode_frame(&mut whole, 11 + i as u64, 100, 1, payload);
        }
        let mut inputs = Vec::new();
        for cut in header_len..=whole.len() {
            inputs.push(whole[..cut].to_vec());
        }
        for byte in header_len..whole.len() {
            let mut flipped = whole.clone();
            flipped[byte] ^= 0x10;
            inputs.push(flipped);
        }
        let path = Path::new("j");
        for (n, input) in inputs.iter().enumerate() {
            let expected = scan(input.clone(), path);
            for chunk in [1, 7, 29, 64, 4096] {
                match (&expected, replayed(input, chunk, Some(&seal))) {
                    (Ok(scan), Ok((seen, summary))) => {
                        let records: Vec<(u64, Vec<u8>)> = scan
                            .records
                            .iter()
                            .map(|r| {
                                (
                                    r.seq,
                                    r.open(&scan.bytes, Some(&seal), path).unwrap().to_vec(),
                                )
                            })
                            .collect();
                        assert_eq!(seen, records, "input {n}, chunk {chunk}");
                        assert_eq!(summary, scan.summary(), "input {n}, chunk {chunk}");
                    }
                    (
                        Err(Error::Damaged { seq, offset, .. }),
                        Err(Error::Damaged {
                            seq: got_seq,
                            offset: got_offset,
                            ..
                        }),
                    ) => assert_eq!((got_seq, got_offset), (*seq, *offset), "input {n}"),
                    (expected, got) => panic!("input {n}, chunk {chunk}: {expected:?} vs {got:?}"),
                }
            }
        }
    }

    #[test]
    fn a_writer_appends_after_the_last_valid_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.journal");
        let header = Header::new(41, 0, 0, identity());
        let mut writer = Writer::create(&path, &header).unwrap();
        assert_eq!(writer.push(1, 2, b"x"), 42);
        writer.write().unwrap();
        writer.sync().unwrap();
        drop(writer);

        // The fast path: the last record, found from the end.
        let opened = Writer::open(&path).unwrap();
        assert_eq!(opened.header, header);
        assert_eq!(opened.writer.next_seq(), 43);
        assert!(opened.torn.is_none());
        drop(opened);

        // A torn append: cut off on open, then appends continue after the valid record.
        let valid = std::fs::metadata(&path).unwrap().len();
        let mut torn = Vec::new();
        encode_frame(&mut torn, 43, 0, 1, b"lost");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        std::fs::write(&path, &bytes).unwrap();
        let mut opened = Writer::open(&path).unwrap();
        assert_eq!(
            opened.torn,
            Some(Torn {
                offset: valid,
                len: torn.len() as u64 - 3,
                seq: 43
            })
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), valid);
        assert_eq!(opened.writer.push(5, 1, b"kept"), 43);
        opened.writer.write().unwrap();
        let scan = read(&path).unwrap().unwrap();
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.records[1].payload(&scan.bytes), b"kept");
    }

    #[test]
    fn a_snapshot_is_recognised_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"a\": 1}").unwrap();
        let identity = Identity::of_file(&path).unwrap();
        assert_eq!(identity.check(&path).unwrap(), Match::Same);
        // Copied away and back: another inode, the same bytes.
        let copy = dir.path().join("copy");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert_eq!(identity.check(&path).unwrap(), Match::Same);
        // Rewritten in place with other bytes of the same length.
        std::fs::write(&path, "{\"a\": 2}").unwrap();
        assert_eq!(identity.check(&path).unwrap(), Match::Foreign);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(identity.check(&path).unwrap(), Match::Missing);
    }
}
