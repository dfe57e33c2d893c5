//! Sealing: with recipients, every object goes up as an age envelope of its bytes
//! (`age-encryption.org/v1`, as `age -d` opens), so that the bucket never holds plaintext.
//!
//! A sealed data object is named and checked by its *stored* bytes: its key ends with the
//! XXH3-128 of the envelope, and the manifest's `size` and `xxh3` are the envelope's, so a
//! restore checks every download before decrypting it. The manifest also records the
//! plaintext's size and checksum (`plain_size`, `plain_xxh3`), with which a push compares the
//! local files and a restore checks what it decrypted. A manifest is sealed whole; its name
//! stays `manifests/N.json`, so that the conditional put that fences writers is unchanged.

use penin_formats::{Envelope, Keys};

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, Object};
use crate::remote::Remote;

/// `bytes` as an age envelope to the recipients of `keys`.
pub(crate) fn seal(keys: &Keys, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut envelope = Envelope::new(keys, Vec::with_capacity(bytes.len() + 512))?;
    envelope.write_all(bytes)?;
    envelope.finish()
}

/// Whether stored bytes are an age envelope.
pub(crate) fn is_sealed(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(penin_formats::ENVELOPE_MAGIC_LEN)];
    penin_formats::is_encrypted(head)
}

/// The object `plain` (its bytes `bytes`) sealed: the envelope, and the object naming it by
/// the envelope's size and checksum (the key's last part is the envelope's checksum).
pub(crate) fn seal_object(
    keys: &Keys,
    url: &str,
    plain: &Object,
    bytes: &[u8],
) -> Result<(Object, Vec<u8>)> {
    let sealed = seal(keys, bytes).map_err(|source| Error::Seal {
        url: url.to_owned(),
        key: plain.key.clone(),
        source,
    })?;
    let stem = plain
        .key
        .rsplit_once('-')
        .map_or(plain.key.as_str(), |(stem, _)| stem);
    let xxh3 = manifest::checksum(&sealed);
    let object = Object {
        key: format!("{stem}-{xxh3}"),
        size: sealed.len() as u64,
        xxh3,
        first: plain.first,
        last: plain.last,
        plain_size: Some(plain.size),
        plain_xxh3: Some(plain.xxh3.clone()),
    };
    Ok((object, sealed))
}

/// The new objects of a push round as they are stored, and the manifest's lists of objects
/// (the snapshot's, the journal's, the ledger's) naming them so: sealed when `remote` seals,
/// unchanged otherwise.
#[allow(clippy::type_complexity)] // Three lists of objects, as `prepare` holds them.
pub(crate) fn seal_new(
    remote: &Remote,
    new: Vec<(Object, &[u8])>,
    mut lists: [Vec<Object>; 3],
) -> Result<(Vec<(Object, Vec<u8>)>, [Vec<Object>; 3])> {
    if !remote.seals() {
        let new = new.into_iter().map(|(o, b)| (o, b.to_vec())).collect();
        return Ok((new, lists));
    }
    let mut stored = Vec::with_capacity(new.len());
    for (plain, bytes) in new {
        let (object, sealed) = seal_object(remote.keys(), remote.url(), &plain, bytes)?;
        for listed in lists.iter_mut().flatten() {
            if listed.key == plain.key {
                *listed = object.clone();
            }
        }
        stored.push((object, sealed));
    }
    Ok((stored, lists))
}

/// Refuses a push that would put encrypted and plaintext restore points under one prefix:
/// the latest manifest's kind must be the push's.
pub(crate) fn check_mixing(remote: &Remote, latest: Option<&Manifest>) -> Result<()> {
    let Some(latest) = latest else {
        return Ok(());
    };
    if latest.sealed == remote.seals() {
        return Ok(());
    }
    let (there, here, how) = if latest.sealed {
        (
            "encrypted",
            "plaintext",
            "give the identity (--identity or PENIN_IDENTITY) or --recipient",
        )
    } else {
        (
            "plaintext",
            "encrypted",
            "push without an identity or recipient (--plaintext)",
        )
    };
    Err(Error::Mixed {
        url: remote.url().to_owned(),
        key: manifest::name(latest.number),
        there,
        here,
        how,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_object_is_named_by_its_envelope() {
        let (identity, _) = penin_formats::new_identity("now");
        let keys = Keys::from_identities(
            penin_formats::ExposeSecret::expose_secret(&identity),
            std::path::Path::new("key"),
        )
        .unwrap();
        let bytes = b"journal bytes";
        let plain = Object::new(
            format!(
                "journal/00000000000000000001-00000000000000000002-{}",
                manifest::checksum(bytes)
            ),
            bytes,
            1,
            2,
        );
        let (object, sealed) = seal_object(&keys, "s3://b", &plain, bytes).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(bytes.len()).any(|w| w == bytes));
        assert_eq!(object.size, sealed.len() as u64);
        assert_eq!(object.xxh3, manifest::checksum(&sealed));
        assert_eq!(
            object.key,
            format!(
                "journal/00000000000000000001-00000000000000000002-{}",
                object.xxh3
            )
        );
        assert_eq!(object.content_size(), plain.size);
        assert_eq!(object.content_xxh3(), plain.xxh3);
        let opened = penin_formats::decrypt(&keys, sealed.as_slice()).unwrap();
        assert_eq!(opened.bytes, bytes);
    }
}
