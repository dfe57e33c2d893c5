//! The reading half of an age file (`age-encryption.org/v1`, laid out as in the `stream`
//! module), done by penin itself for the common case, so that the payload's chunks are
//! opened on more than one thread with the cipher the `stream` module seals them with: the
//! `age` crate's reader opens them one after the other.
//!
//! The `age` crate stays the authority. [`open`] reads a file only when every part of it
//! checks out: a binary (not armored) v1 header that age's own stanza parser reads, a file
//! key that one of the keys' identities unwraps (through the `age` crate), the header's MAC,
//! and every payload chunk, opened under the nonce of its place, the last one marked as last
//! and the only one that may be short (empty only when it is the only one), nothing after
//! it. For anything else it gives `None`, and the caller reads the file with the `age`
//! crate, whose error says what is wrong. So a file read here is one the `age` crate reads
//! to the same bytes, and the errors are the `age` crate's.

use age::secrecy::ExposeSecret;
use age_core::format::Stanza;
use age_core::format::read::legacy_age_stanza;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::Keys;
use crate::stream::{
    MAX_WORKERS, NONCE_LEN, SEALED_CHUNK, SEGMENT_CHUNKS, TAG, VERSION_LINE, chunk_nonce, hkdf,
    payload_cipher,
};

/// The MAC line's prefix, after the stanzas.
const MAC_PREFIX: &[u8] = b"--- ";

/// The header MAC's length in base64 (32 bytes, no padding).
const ENCODED_MAC: usize = 43;

/// The tag of a passphrase stanza, which age allows only alone.
const SCRYPT_TAG: &str = "scrypt";

/// Fewer chunks than this are opened on the caller's thread alone.
const PARALLEL_CHUNKS: usize = 2 * SEGMENT_CHUNKS;

/// The plaintext of the age file `file`, opened with the identities of `keys`, or `None`
/// when any part of it does not check out (see the module's overview).
pub(crate) fn open(keys: &Keys, file: &[u8]) -> Option<Vec<u8>> {
    let (header_len, stanzas, mac) = header(file)?;
    if stanzas.iter().any(|stanza| stanza.tag == SCRYPT_TAG) {
        return None;
    }
    let file_key = keys
        .identities()
        .find_map(|identity| identity.unwrap_stanzas(&stanzas))?
        .ok()?;
    let file_key = file_key.expose_secret();
    // The MAC covers the header up to and including `---`.
    let covered = header_len - (ENCODED_MAC + 2);
    let mac_key = hkdf(b"", b"header", file_key).ok()?;
    let mut expected = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).ok()?;
    expected.update(file.get(..covered)?);
    expected.verify_slice(&mac).ok()?;
    let (nonce, payload) = file.get(header_len..)?.split_at_checked(NONCE_LEN)?;
    let cipher = payload_cipher(&hkdf(nonce, b"payload", file_key).ok()?).ok()?;
    open_payload(&cipher, payload)
}

/// The length of the header at the start of `file` (through the MAC line's newline), its
/// stanzas and its MAC; `None` unless it is a v1 header as age reads it.
fn header(file: &[u8]) -> Option<(usize, Vec<Stanza>, Vec<u8>)> {
    let mut rest = file.strip_prefix(VERSION_LINE)?;
    let mut stanzas = Vec::new();
    while !rest.starts_with(MAC_PREFIX) {
        let (after, stanza) = legacy_age_stanza(rest).ok()?;
        stanzas.push(Stanza::from(stanza));
        rest = after;
    }
    if stanzas.is_empty() {
        return None;
    }
    let line = rest.get(MAC_PREFIX.len()..MAC_PREFIX.len() + ENCODED_MAC + 1)?;
    let (encoded, newline) = line.split_at(ENCODED_MAC);
    if newline != b"\n" {
        return None;
    }
    // Canonical base64 only (the engine refuses trailing bits), 32 bytes.
    let mac = STANDARD_NO_PAD.decode(encoded).ok()?;
    if mac.len() != 32 {
        return None;
    }
    let header_len = file.len() - rest.len() + MAC_PREFIX.len() + ENCODED_MAC + 1;
    Some((header_len, stanzas, mac))
}

/// The plaintext of `payload` (the chunks after the nonce), or `None` when a chunk does
/// not open or the chunks are not laid out as age writes them.
fn open_payload(cipher: &LessSafeKey, payload: &[u8]) -> Option<Vec<u8>> {
    let chunks = payload.len().div_ceil(SEALED_CHUNK);
    // Every chunk but the last is full; the last holds at least its tag, and only a lone
    // last chunk may be empty. (No chunk at all is a file cut short.)
    let last = payload
        .len()
        .checked_sub(chunks.checked_sub(1)? * SEALED_CHUNK)?;
    if last < TAG || (last == TAG && chunks > 1) {
        return None;
    }
    let mut plain = vec![0; payload.len() - chunks * TAG];
    let workers = if chunks < PARALLEL_CHUNKS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .clamp(1, MAX_WORKERS)
    };
    // Each worker opens a run of whole chunks into its own part of the plaintext.
    let per_worker = chunks.div_ceil(workers);
    let mut parts = Vec::with_capacity(workers);
    let (mut sealed, mut out) = (payload, &mut plain[..]);
    let mut first = 0;
    while first < chunks {
        let count = per_worker.min(chunks - first);
        let (run, sealed_rest) = sealed.split_at((count * SEALED_CHUNK).min(sealed.len()));
        let (part, out_rest) = std::mem::take(&mut out).split_at_mut(run.len() - count * TAG);
        parts.push((first as u64, run, part));
        (sealed, out) = (sealed_rest, out_rest);
        first += count;
    }
    let total = chunks as u64;
    let opened = std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        // The first run on this thread, the others on threads of their own.
        let mine = parts.next();
        let others: Vec<_> = parts
            .map(|(first, run, part)| {
                scope.spawn(move || open_run(cipher, first, total, run, part))
            })
            .collect();
        let mine_opened =
            mine.is_some_and(|(first, run, part)| open_run(cipher, first, total, run, part));
        // A worker that panicked opened nothing.
        others.into_iter().fold(mine_opened, |all, worker| {
            worker.join().unwrap_or(false) && all
        })
    });
    opened.then_some(plain)
}

/// Opens the sealed chunks in `run`, the first numbered `first` of `total`, into `out`
/// (as long as their plaintext); whether every one opened.
fn open_run(cipher: &LessSafeKey, first: u64, total: u64, run: &[u8], out: &mut [u8]) -> bool {
    let mut at = 0;
    for (counter, chunk) in (first..).zip(run.chunks(SEALED_CHUNK)) {
        let Some((text, tag)) = chunk.len().checked_sub(TAG).map(|len| chunk.split_at(len)) else {
            return false;
        };
        let Some(into) = out.get_mut(at..at + text.len()) else {
            return false;
        };
        let nonce = Nonce::assume_unique_for_key(chunk_nonce(counter, counter + 1 == total));
        if cipher
            .open_separate_gather(nonce, Aad::empty(), text, tag, into)
            .is_err()
        {
            return false;
        }
        at += text.len();
    }
    at == out.len()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::path::Path;

    use super::*;
    use crate::envelope::Envelope;
    use crate::keys::new_identity;
    use crate::stream::{CHUNK, SEGMENT, header as age_header, new_file_key};

    fn keys() -> Keys {
        let (text, _) = new_identity("now");
        Keys::from_identities(text.expose_secret(), Path::new("k")).unwrap()
    }

    fn seal(keys: &Keys, data: &[u8]) -> Vec<u8> {
        let mut envelope = Envelope::new(keys, Vec::new()).unwrap();
        envelope.write_all(data).unwrap();
        envelope.finish().unwrap()
    }

    /// What the age crate reads from `file`, or `None` when it refuses it.
    fn by_age(keys: &Keys, file: &[u8]) -> Option<Vec<u8>> {
        let decryptor = age::Decryptor::new_buffered(file).ok()?;
        let mut reader = decryptor.decrypt(keys.identities()).ok()?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).ok()?;
        Some(plain)
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn it_reads_what_age_reads_at_every_chunk_edge_on_one_thread_or_several() {
        let keys = keys();
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            SEGMENT,
            // From here the chunks are opened on several threads (runs of unequal lengths).
            PARALLEL_CHUNKS * CHUNK,
            PARALLEL_CHUNKS * CHUNK + 1,
            5 * SEGMENT + 3 * CHUNK + 17,
        ] {
            let data = data(len);
            let file = seal(&keys, &data);
            let opened = open(&keys, &file);
            assert!(opened.as_deref() == Some(&data[..]), "{len} bytes");
            assert!(
                by_age(&keys, &file) == opened,
                "{len} bytes: age reads otherwise"
            );
        }
    }

    /// A file for `keys` whose payload is `chunks` (plaintext, last flag), sealed as given.
    fn laid_out(keys: &Keys, chunks: &[(&[u8], bool)]) -> Vec<u8> {
        let file_key = new_file_key();
        let mut file = age_header(&keys.stanzas(&file_key).unwrap(), &file_key).unwrap();
        let nonce = [9; NONCE_LEN];
        file.extend_from_slice(&nonce);
        let cipher =
            payload_cipher(&hkdf(&nonce, b"payload", file_key.expose_secret()).unwrap()).unwrap();
        for (counter, (plain, last)) in (0..).zip(chunks) {
            let mut text = plain.to_vec();
            let tag = cipher
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(chunk_nonce(counter, *last)),
                    Aad::empty(),
                    &mut text,
                )
                .unwrap();
            file.extend_from_slice(&text);
            file.extend_from_slice(tag.as_ref());
        }
        file
    }

    #[test]
    fn anything_that_does_not_check_out_is_left_to_age() {
        let keys = keys();
        let data = data(PARALLEL_CHUNKS * CHUNK + 40_000);
        let file = seal(&keys, &data);
        let header_len = header(&file).unwrap().0;
        let payload = header_len + NONCE_LEN;
        let chunks = (file.len() - payload).div_ceil(SEALED_CHUNK);
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        // A flipped bit in the header, in its MAC, in the nonce, in the first chunk, in a
        // chunk of the second run, in the last tag.
        for (what, at) in [
            ("a stanza", VERSION_LINE.len() + 10),
            ("the MAC", header_len - 5),
            ("the nonce", header_len + 3),
            ("the first chunk", payload + 100),
            (
                "a chunk of the second run",
                payload + (chunks - 2) * SEALED_CHUNK + 7,
            ),
            ("the last tag", file.len() - 1),
        ] {
            let mut bad = file.clone();
            bad[at] ^= 0x10;
            cases.push((format!("a flipped bit in {what}"), bad));
        }
        // Cut at the last chunk's edge (the one before is not marked last), within it, and
        // followed by a byte, or by a whole chunk.
        let last_start = payload + (chunks - 1) * SEALED_CHUNK;
        cases.push(("cut at a chunk's edge".into(), file[..last_start].to_vec()));
        cases.push((
            "cut in its last chunk".into(),
            file[..file.len() - 3].to_vec(),
        ));
        cases.push(("cut after its header".into(), file[..payload].to_vec()));
        cases.push(("cut in its nonce".into(), file[..payload - 1].to_vec()));
        let mut longer = file.clone();
        longer.push(0);
        cases.push(("a byte after its end".into(), longer));
        let mut longer = file.clone();
        longer.extend_from_slice(&file[last_start..]);
        cases.push(("a chunk after its end".into(), longer));
        // Chunks that open but are not laid out as age lays them out.
        let full = &data[..CHUNK];
        cases.push((
            "an empty last chunk after a full one".into(),
            laid_out(&keys, &[(full, false), (b"", true)]),
        ));
        cases.push((
            "a short chunk before the last".into(),
            laid_out(&keys, &[(&full[1..], false), (b"x", true)]),
        ));
        cases.push((
            "no chunk marked last".into(),
            laid_out(&keys, &[(full, false), (b"x", false)]),
        ));
        // Another age file, the armored form, another header version.
        cases.push(("for another identity".into(), seal(&self::keys(), &data)));
        let mut armored =
            age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
                .unwrap();
        armored.write_all(&file).unwrap();
        cases.push(("armored".into(), armored.finish().unwrap()));
        let mut other_version = file.clone();
        other_version[VERSION_LINE.len() - 2] = b'2';
        cases.push(("of version v2".into(), other_version));
        for (what, bad) in &cases {
            assert!(open(&keys, bad).is_none(), "{what}: opened");
            // Each is one the age crate refuses too (but armored, which it reads itself).
            if what != "armored" {
                assert!(by_age(&keys, bad).is_none(), "{what}: age reads it");
            }
        }
        // The laid-out files are otherwise right: as age lays them out, they open.
        let right = laid_out(&keys, &[(full, false), (b"x", true)]);
        let mut expected = full.to_vec();
        expected.push(b'x');
        assert_eq!(open(&keys, &right), Some(expected));
    }
}
