//! The ways a penin state is laid out in bytes, beside the seed JSON itself.
//!
//! A state file is recognised by its first bytes, never by its name:
//!
//! | format | first bytes | what it is |
//! |---|---|---|
//! | [`Format::JsonGz`] | `1f 8b` (gzip) | the seed JSON, gzip-compressed (one member or several) |
//! | [`Format::JsonZst`] | `28 b5 2f fd` (a zstd frame) | the seed JSON, zstd-compressed (one frame or several) |
//! | [`Format::Arrow`] | `ARROW1` | an Arrow IPC file: the knowledge base as columns, the rest of the state in its schema metadata, checksummed ([`arrow`]) |
//! | [`Format::Json`] | anything else | the seed JSON, as Python's `json.dump` writes it |
//!
//! (A JSON document starts with whitespace or `{`, never with any of these magic numbers, so
//! the formats cannot be confused.)
//!
//! [`Encoder`] compresses what is written through it; [`decompress`] reads a whole
//! compressed stream back. Both are plain byte streams: the JSON inside is `penin_codec`'s.
//! [`arrow::write`] and [`arrow::read`] write and read a whole state as an arrow snapshot.
//!
//! Exports, which are not states (nothing reads them back as one): [`write_npy`] writes a
//! matrix of `f64` as a NumPy `.npy` file ([`npy_header`] gives its header).
//!
//! Any format may be encrypted: an age file (`age-encryption.org/v1`, recognised by
//! [`is_encrypted`]) around it, which the age command and Python's `pyrage` decrypt. A save
//! encodes, compresses, then encrypts through an [`Envelope`] to the recipients of its
//! [`Keys`]; a load [`decrypt`]s first, then recognises the format inside. See the
//! `envelope` module's documentation for the layout, and [`RECIPIENT_STANZA`] for how a file
//! names its recipients.
//!
//! ```
//! use std::io::Write;
//! use penin_formats::{Encoder, Format};
//!
//! let json = br#"{"knowledge_base": {}}"#;
//! for format in Format::ALL.into_iter().filter(|f| f.is_json()) {
//!     let mut encoder = Encoder::new(format, Vec::new())?;
//!     encoder.write_all(json)?;
//!     let bytes = encoder.finish()?;
//!     assert_eq!(Format::detect(&bytes), format);
//!     assert_eq!(penin_formats::decompress(format, &bytes[..])?, json);
//! }
//! assert_eq!("json.gz".parse::<Format>()?, Format::JsonGz);
//!
//! // A 2 × 3 matrix as NumPy's `.npy`: a 128-byte header, then 48 bytes of values.
//! let npy = penin_formats::write_npy(Vec::new(), 2, 3, [&[1.0, 2.0, 3.0][..], &[4.0, 5.0, 6.0]])?;
//! assert_eq!((&npy[..6], npy.len()), (&b"\x93NUMPY"[..], 128 + 48));
//!
//! // Encrypted: compressed first, then sealed to the identity's recipient.
//! let (identity_file, recipient) = penin_formats::new_identity("2026-11-29T10:00:00Z");
//! let keys = penin_formats::Keys::from_identities(
//!     penin_formats::ExposeSecret::expose_secret(&identity_file),
//!     std::path::Path::new("key.txt"),
//! )?;
//! let mut sealed = penin_formats::Envelope::new(&keys, Vec::new())?;
//! let mut encoder = Encoder::new(Format::JsonZst, &mut sealed)?;
//! encoder.write_all(json)?;
//! encoder.finish()?;
//! let bytes = sealed.finish()?;
//! assert!(penin_formats::is_encrypted(&bytes));
//! let opened = penin_formats::decrypt(&keys, &bytes[..])?;
//! assert_eq!(opened.recipients, [recipient.clone()]);
//! assert_eq!(Format::detect(&opened.bytes), Format::JsonZst);
//! assert_eq!(penin_formats::decompress(Format::JsonZst, &opened.bytes[..])?, json);
//!
//! // Without the identity, the error names the recipient the file needs.
//! let error = penin_formats::decrypt(&penin_formats::Keys::new(), &bytes[..]).unwrap_err();
//! assert!(error.to_string().contains(&recipient));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::compress::{Encoder, GZIP_LEVEL, ZSTD_LEVEL, decompress, decompress_probed};
pub use crate::envelope::{
    AGE_MAGIC, ARMOR_MAGIC, Decrypted, ENVELOPE_MAGIC_LEN, Envelope, check_opens, decrypt,
    decrypt_with_size_hint, is_encrypted,
};
pub use crate::error::{Error, Result};
pub use crate::format::{Format, Layout, MAGIC_LEN};
pub use crate::keys::{Keys, RECIPIENT_STANZA, new_identity, parse_recipient, write_new_identity};
pub use crate::npy::{NPY_MAGIC, npy_header, write_npy};
pub use age::secrecy::{ExposeSecret, SecretString};
pub use age::x25519::Recipient;

pub mod arrow;
mod compress;
mod envelope;
mod error;
pub mod export;
mod format;
mod keys;
mod npy;
mod stream;
mod unseal;
