//! The key of a sealed journal: a random 256-bit data key, wrapped with age for the
//! journal's recipients in its header, that seals every record's payload with
//! XChaCha20-Poly1305. The layout is documented with the journal's, in the parent module.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Key, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::{Error, Header, Record, Result, damaged, end_frame, start_frame};

/// Bytes of a sealed journal's data key.
pub const KEY_LEN: usize = 32;

/// Bytes of a sealed record's nonce, drawn at random for every record.
pub const NONCE_LEN: usize = 24;

/// Bytes of a sealed record's authentication tag.
pub const TAG_LEN: usize = 16;

/// Bytes a sealed record's payload has besides the change: its nonce and its tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Bytes of a sealed journal's id, random and unique to the journal.
pub const ID_LEN: usize = 12;

/// Where a sealed journal's key block starts: after the fixed part of the header and the
/// block's length.
pub const KEY_BLOCK_AT: usize = super::HEADER_LEN + 4;

/// Bytes of a sealed journal's header besides its key block: the fixed part, the block's
/// length and the header's closing CRC.
pub const SEALED_HEADER_OVERHEAD: usize = KEY_BLOCK_AT + 4;

/// The largest key block: the whole header's length must fit its 16-bit field.
pub const MAX_KEY_BLOCK: usize = u16::MAX as usize - SEALED_HEADER_OVERHEAD;

/// Bytes of a record's associated data: journal id, sequence number, time, kind.
const AAD_LEN: usize = ID_LEN + 8 + 8 + 1;

/// The key of one sealed journal: its data key, its id and the age file that wraps the key
/// for the journal's recipients.
///
/// Made for a new journal by [`Seal::generate`] (the only age operation a writer makes), or
/// unwrapped from a journal's header by [`Seal::open`] or [`Seal::read`]. A seal belongs to
/// one journal: a new journal gets a new one.
#[derive(Clone)]
pub struct Seal {
    id: [u8; ID_LEN],
    key_block: Vec<u8>,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Seal")
            .field("id", &self.id)
            .field("key_block_len", &self.key_block.len())
            .finish_non_exhaustive()
    }
}

impl Seal {
    /// A fresh seal for a new journal: a random data key and journal id (from the thread's
    /// CSPRNG, seeded by the operating system), the key wrapped with age for `recipients`.
    pub fn generate(recipients: &[age::x25519::Recipient]) -> Result<Seal> {
        let mut rng = rand::thread_rng();
        let mut key = [0; KEY_LEN];
        rng.fill_bytes(&mut key);
        let mut id = [0; ID_LEN];
        rng.fill_bytes(&mut id);
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|source| Error::Wrap { source })?;
        let mut key_block = Vec::new();
        let wrapped = encryptor
            .wrap_output(&mut key_block)
            .and_then(|mut w| w.write_all(&key).and_then(|()| w.finish()));
        if let Err(error) = wrapped {
            return Err(Error::Wrap {
                source: age::EncryptError::Io(error),
            });
        }
        if key_block.len() > MAX_KEY_BLOCK {
            return Err(Error::TooManyRecipients {
                recipients: recipients.len(),
            });
        }
        let seal = Seal {
            id,
            key_block,
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        };
        key.fill(0);
        Ok(seal)
    }

    /// The seal of the journal whose bytes start with `bytes` (its header, at least),
    /// unwrapped with the first of `identities` that can: `Ok(None)` for a plaintext journal.
    ///
    /// A sealed journal and no identity is [`Error::Sealed`]; identities none of which
    /// unwraps its key, [`Error::WrongIdentity`]; a key block that is not an age file
    /// wrapping a 32-byte key (under a valid checksum), [`Error::Damaged`].
    pub fn open(
        bytes: &[u8],
        path: &Path,
        identities: &[age::x25519::Identity],
    ) -> Result<Option<Seal>> {
        let header = Header::parse(bytes, path)?;
        let Some(sealed) = header.sealed else {
            return Ok(None);
        };
        if identities.is_empty() {
            return Err(Error::Sealed {
                path: path.to_owned(),
            });
        }
        // `parse` checked that the whole key block is there.
        let key_block = bytes
            .get(KEY_BLOCK_AT..KEY_BLOCK_AT + sealed.key_len as usize)
            .unwrap_or(&[]);
        let bad_block = |error: &dyn fmt::Display| {
            damaged(
                path,
                0,
                KEY_BLOCK_AT as u64,
                &format!(
                    "its key block is not an age file wrapping a {KEY_LEN}-byte key ({error})"
                ),
            )
        };
        let decryptor = age::Decryptor::new_buffered(key_block).map_err(|e| bad_block(&e))?;
        let mut reader = decryptor
            .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
            .map_err(|error| match error {
                age::DecryptError::NoMatchingKeys => Error::WrongIdentity {
                    path: path.to_owned(),
                },
                other => bad_block(&other),
            })?;
        let mut key = Vec::with_capacity(KEY_LEN + 1);
        (&mut reader)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut key)
            .map_err(|e| bad_block(&e))?;
        if key.len() != KEY_LEN {
            let len = key.len();
            key.fill(0);
            return Err(bad_block(&format_args!("it holds {len} bytes")));
        }
        let seal = Seal {
            id: sealed.id,
            key_block: key_block.to_vec(),
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        };
        key.fill(0);
        Ok(Some(seal))
    }

    /// [`Seal::open`] for the journal at `path`, reading only its header: `Ok(None)` if there
    /// is no journal or it is a plaintext one.
    pub fn read(path: &Path, identities: &[age::x25519::Identity]) -> Result<Option<Seal>> {
        match super::read_head(path)? {
            Some(bytes) => Seal::open(&bytes, path, identities),
            None => Ok(None),
        }
    }

    /// The journal's id, bound into every record's seal.
    pub fn id(&self) -> [u8; ID_LEN] {
        self.id
    }

    /// The age file (binary) that wraps the data key, as the header holds it.
    pub fn key_block(&self) -> &[u8] {
        &self.key_block
    }

    /// Whether `header` is the header of this seal's journal.
    pub fn fits(&self, header: &Header) -> bool {
        header.sealed.is_some_and(|sealed| {
            sealed.id == self.id && sealed.key_len as usize == self.key_block.len()
        })
    }

    /// Appends one sealed record's frame to `out`: the frame of a plaintext record whose
    /// payload is a fresh random nonce, the change sealed under it, and the tag.
    ///
    /// One AEAD pass over the payload; no age operation.
    ///
    /// # Panics
    ///
    /// If `payload` is beyond XChaCha20-Poly1305's limit (256 GiB), far beyond the
    /// [`MAX_PAYLOAD`](super::MAX_PAYLOAD) a record holds: check with
    /// [`check_len`](super::check_len) first.
    pub fn encode_frame(&self, out: &mut Vec<u8>, seq: u64, time: i64, kind: u8, payload: &[u8]) {
        let len = (payload.len() + SEAL_OVERHEAD) as u32;
        let start = start_frame(out, len, seq, time, kind);
        let nonce_at = out.len();
        out.resize(nonce_at + NONCE_LEN, 0);
        rand::thread_rng().fill_bytes(&mut out[nonce_at..]);
        out.extend_from_slice(payload);
        let (nonce, body) = out[nonce_at..].split_at_mut(NONCE_LEN);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(nonce), &self.aad(seq, time, kind), body)
            // XChaCha20-Poly1305 refuses only messages beyond 256 GiB; a payload is at most
            // MAX_PAYLOAD (1 GiB), as `Writer::push` asserts.
            .expect("a payload within MAX_PAYLOAD is within XChaCha20-Poly1305's limit");
        out.extend_from_slice(&tag);
        end_frame(out, start, len);
    }

    /// Opens `stored`, the sealed payload of `record`, into `plain` (replacing what it held):
    /// false if its tag does not match (changed bytes, or a record of another journal or
    /// another place), and then `plain` is empty.
    pub(super) fn open_into(&self, record: &Record, stored: &[u8], plain: &mut Vec<u8>) -> bool {
        plain.clear();
        if stored.len() < SEAL_OVERHEAD {
            return false;
        }
        let (nonce, rest) = stored.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        plain.extend_from_slice(body);
        let opened = self.cipher.decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &self.aad(record.seq, record.time, record.kind),
            plain,
            Tag::from_slice(tag),
        );
        if opened.is_err() {
            plain.clear();
        }
        opened.is_ok()
    }

    /// A record's associated data: what binds its sealed payload to this journal and to its
    /// place in it.
    fn aad(&self, seq: u64, time: i64, kind: u8) -> [u8; AAD_LEN] {
        let mut aad = [0; AAD_LEN];
        aad[..ID_LEN].copy_from_slice(&self.id);
        aad[ID_LEN..ID_LEN + 8].copy_from_slice(&seq.to_le_bytes());
        aad[ID_LEN + 8..ID_LEN + 16].copy_from_slice(&time.to_le_bytes());
        aad[ID_LEN + 16] = kind;
        aad
    }
}
