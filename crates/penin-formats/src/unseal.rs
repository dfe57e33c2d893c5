//! The reading half of an age file (`age-encryption.org/v1`, laid out as in the `stream`
//! module), done by penin itself when the keys open it, so that the payload's chunks are
//! opened on more than one thread with the cipher the `stream` module seals them with (the
//! `age` crate's reader opens them one after the other), as they are read: the ciphertext
//! passes through a buffer of 2 MiB, never the whole file.
//!
//! The header is checked as age checks it, and with age's own pieces: a binary (not
//! armored) v1 header read by age's stanza parser, a file key that one of the keys'
//! identities unwraps (through the `age` crate), the header's MAC. A file whose header is
//! anything else — armored, another version, longer than 64 KiB, for other identities, a
//! stanza or a MAC that does not check out — is left to the `age` crate ([`Unsealed::ForAge`]),
//! which reads it, the bytes read here first, and says what is wrong. Past a header that
//! checks out, the payload is penin's to check: every chunk opens under the nonce of its
//! place, the last one marked as last and the only one that may be short (empty only when
//! it is the only one), nothing after it; otherwise [`Unsealed::Damaged`] says which chunk.

use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::Builder;

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
    MAX_WORKERS, NONCE_LEN, SEALED_CHUNK, TAG, VERSION_LINE, chunk_nonce, hkdf, payload_cipher,
};

/// The MAC line's prefix, after the stanzas.
const MAC_PREFIX: &[u8] = b"--- ";

/// The header MAC's length in base64 (32 bytes, no padding).
const ENCODED_MAC: usize = 43;

/// The tag of a passphrase stanza, which age allows only alone.
const SCRYPT_TAG: &str = "scrypt";

/// The most bytes read for the header (and the nonce) before the file is left to age.
pub(crate) const HEADER_READ: usize = 64 << 10;

/// Chunks read, then opened, at a time.
const PIECE_CHUNKS: usize = 32;

/// The sealed bytes of a piece.
const PIECE: usize = PIECE_CHUNKS * SEALED_CHUNK;

/// What [`open`] made of a file.
#[derive(Debug)]
pub(crate) enum Unsealed {
    /// The plaintext, and the file's first bytes (up to [`HEADER_READ`]).
    Opened { bytes: Vec<u8>, head: Vec<u8> },
    /// The header checks out, the payload does not: which chunk, or what of its layout.
    Damaged(io::Error),
    /// A file the `age` crate reads (see the module's overview): the bytes read so far,
    /// which come before the rest of the reader.
    ForAge(Vec<u8>),
}

/// Reads the age file `reader` and opens it with the identities of `keys`. An error is the
/// reader's own; what the file holds is in [`Unsealed`]. `size_hint`, the file's length if
/// known, sizes the plaintext's buffer at once (see [`plain_buffer`]).
pub(crate) fn open<R: Read>(
    keys: &Keys,
    reader: &mut R,
    size_hint: Option<u64>,
) -> io::Result<Unsealed> {
    let mut head = Vec::with_capacity(HEADER_READ);
    reader
        .by_ref()
        .take(HEADER_READ as u64)
        .read_to_end(&mut head)?;
    let Some((payload_start, cipher)) = unwrap(keys, &head) else {
        return Ok(Unsealed::ForAge(head));
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .clamp(1, MAX_WORKERS);
    let mut pending = Vec::with_capacity(PIECE + 1);
    pending.extend_from_slice(&head[payload_start..]);
    let mut plain = plain_buffer(size_hint, payload_start);
    // The bytes of `plain` opened so far; the rest is room for the next ones.
    let mut opened = 0;
    let mut first = 0;
    loop {
        // A whole piece and a byte beyond it (so none of its chunks is the last), or the end.
        let want = (PIECE + 1).saturating_sub(pending.len());
        reader
            .by_ref()
            .take(want as u64)
            .read_to_end(&mut pending)?;
        if pending.len() <= PIECE {
            break;
        }
        if let Err(damage) = open_piece(
            &cipher,
            workers,
            &pending[..PIECE],
            first,
            None,
            &mut plain,
            &mut opened,
        ) {
            return Ok(Unsealed::Damaged(damage));
        }
        first += PIECE_CHUNKS as u64;
        pending.drain(..PIECE);
    }
    // The last chunks: every one full but the last, which holds at least its tag, and is
    // empty only when it is the only chunk of the file.
    let chunks = pending.len().div_ceil(SEALED_CHUNK);
    let last = pending.len() - chunks.saturating_sub(1) * SEALED_CHUNK;
    let damage = if chunks == 0 {
        Some("the payload ends before its first chunk: the file was cut short".to_owned())
    } else if last < TAG {
        Some(format!(
            "chunk {} is shorter than its tag: the file was cut short",
            first + chunks as u64 - 1
        ))
    } else if last == TAG && (first > 0 || chunks > 1) {
        Some(format!(
            "chunk {} is an empty last chunk after full ones",
            first + chunks as u64 - 1
        ))
    } else {
        None
    };
    if let Some(damage) = damage {
        return Ok(Unsealed::Damaged(io::Error::new(
            io::ErrorKind::InvalidData,
            damage,
        )));
    }
    let total = first + chunks as u64;
    let last = open_piece(
        &cipher,
        workers,
        &pending,
        first,
        Some(total),
        &mut plain,
        &mut opened,
    );
    if let Err(damage) = last {
        return Ok(Unsealed::Damaged(damage));
    }
    plain.truncate(opened);
    Ok(Unsealed::Opened { bytes: plain, head })
}

/// The buffer for the plaintext of a file of `size_hint` bytes whose payload starts at
/// `payload_start`: as long as that plaintext, zeroed by the allocator (for a large buffer
/// usually fresh pages from the system, so that nothing is written to it here: the threads
/// that open the chunks into it fault its pages in, each its own part). Empty without a
/// hint, or when the system would refuse that much memory: the length is the file's as the
/// system reports it, which no chunk has vouched for yet (a damaged or sparse file may claim
/// terabytes), and a refused allocation would abort the process. A wrong hint otherwise
/// only means the buffer grows, or is cut to the bytes opened.
fn plain_buffer(size_hint: Option<u64>, payload_start: usize) -> Vec<u8> {
    let Some(payload) = size_hint
        .and_then(|len| usize::try_from(len).ok())
        .and_then(|len| len.checked_sub(payload_start))
    else {
        return Vec::new();
    };
    // A payload shorter than a tag is damaged; `open` says so.
    let len = payload.saturating_sub(payload.div_ceil(SEALED_CHUNK) * TAG);
    penin_codec::zeroed(len).unwrap_or_default()
}

/// Where the payload's chunks start in `head` (after the header and the nonce) and their
/// cipher, when `head` starts with a header that checks out for `keys`.
fn unwrap(keys: &Keys, head: &[u8]) -> Option<(usize, Arc<LessSafeKey>)> {
    let (header_len, stanzas, mac) = header(head)?;
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
    expected.update(head.get(..covered)?);
    expected.verify_slice(&mac).ok()?;
    let nonce = head.get(header_len..header_len + NONCE_LEN)?;
    let cipher = payload_cipher(&hkdf(nonce, b"payload", file_key).ok()?).ok()?;
    Some((header_len + NONCE_LEN, cipher))
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

/// A run of sealed chunks, the first numbered `.0`, and the part of the plaintext it opens
/// into, until a thread takes them.
type Slot<'a> = (u64, Mutex<Option<(&'a [u8], &'a mut [u8])>>);

/// Opens the whole chunks of `sealed`, the first numbered `first`, into `plain` after its
/// first `opened` bytes (growing it if it is too short), on up to `workers` threads, and
/// counts them in `opened`; `total` is the number of chunks of the file when the last one
/// is among them. The error names the first chunk that does not open.
fn open_piece(
    cipher: &LessSafeKey,
    workers: usize,
    sealed: &[u8],
    first: u64,
    total: Option<u64>,
    plain: &mut Vec<u8>,
    opened: &mut usize,
) -> io::Result<()> {
    let chunks = sealed.len().div_ceil(SEALED_CHUNK);
    let start = *opened;
    // Every chunk holds at least its tag (the caller checked the last one).
    let end = start + sealed.len() - chunks * TAG;
    if plain.len() < end {
        plain.resize(end, 0);
    }
    // Each worker opens a run of whole chunks into its own part of the plaintext.
    let per_worker = chunks.div_ceil(workers.min(chunks).max(1)).max(1);
    let mut runs = Vec::with_capacity(workers);
    let (mut rest, mut out) = (sealed, &mut plain[start..end]);
    let mut counter = first;
    loop {
        let count = per_worker.min(rest.len().div_ceil(SEALED_CHUNK));
        let (run, sealed_rest) = rest.split_at((count * SEALED_CHUNK).min(rest.len()));
        let (part, out_rest) = std::mem::take(&mut out).split_at_mut(run.len() - count * TAG);
        runs.push((counter, run, part));
        (rest, out) = (sealed_rest, out_rest);
        counter += count as u64;
        if rest.is_empty() {
            break;
        }
    }
    // Each run waits in a slot for the thread that takes it first: the first run this
    // thread's, the others a worker's each, or this thread's once its own is open (a worker
    // the system refused, or one that has not started yet). Gives the chunk that does not
    // open, if any.
    let slots: Vec<_> = runs
        .into_iter()
        .map(|(first, run, part)| (first, Mutex::new(Some((run, part)))))
        .collect();
    let open = |(first, slot): &Slot<'_>| {
        let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        taken.and_then(|(run, part)| open_run(cipher, *first, total, run, part).err())
    };
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = slots[1..]
            .iter()
            .filter_map(|slot| {
                let worker = penin_codec::spawn_scoped_beside(Builder::new(), scope, || open(slot));
                worker.ok().map(|worker| (slot.0, worker))
            })
            .collect();
        let mut failed = slots.iter().filter_map(open).min();
        for (first, worker) in workers {
            // A worker that panicked opened nothing: its first chunk is the one named.
            if let Some(chunk) = worker.join().unwrap_or(Some(first)) {
                failed = Some(failed.map_or(chunk, |f: u64| f.min(chunk)));
            }
        }
        failed
    });
    match failed {
        None => {
            *opened = end;
            Ok(())
        }
        Some(chunk) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "chunk {chunk} does not open: the file was damaged, changed, cut short or \
                 extended"
            ),
        )),
    }
}

/// Opens the sealed chunks in `run`, the first numbered `first`, into `out` (as long as
/// their plaintext); the chunk numbered `total - 1` is the file's last. The error is the
/// number of the first chunk that does not open.
fn open_run(
    cipher: &LessSafeKey,
    first: u64,
    total: Option<u64>,
    run: &[u8],
    out: &mut [u8],
) -> Result<(), u64> {
    let mut at = 0;
    for (counter, chunk) in (first..).zip(run.chunks(SEALED_CHUNK)) {
        let text_len = chunk.len().checked_sub(TAG).ok_or(counter)?;
        let (text, tag) = chunk.split_at(text_len);
        let into = out.get_mut(at..at + text_len).ok_or(counter)?;
        let last = total == Some(counter + 1);
        let nonce = Nonce::assume_unique_for_key(chunk_nonce(counter, last));
        cipher
            .open_separate_gather(nonce, Aad::empty(), text, tag, into)
            .map_err(|_| counter)?;
        at += text_len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::envelope::{Envelope, decrypt};
    use crate::error::Error;
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

    /// `file` opened as the orchestrator opens a file: its length given.
    fn unsealed(keys: &Keys, file: &[u8]) -> Unsealed {
        open(keys, &mut &file[..], Some(file.len() as u64)).unwrap()
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
    fn it_reads_what_age_reads_at_every_chunk_and_piece_edge() {
        let keys = keys();
        let piece = PIECE_CHUNKS * CHUNK;
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            SEGMENT,
            piece - 1,
            piece,
            piece + 1,
            2 * piece,
            2 * piece + CHUNK,
            5 * SEGMENT + 3 * CHUNK + 17,
        ] {
            let data = data(len);
            let file = seal(&keys, &data);
            // The file's length, none, and wrong ones: shorter, longer, far longer, more than
            // any system grants (which must not abort the process).
            let size = file.len() as u64;
            for hint in [
                Some(size),
                None,
                Some(0),
                Some(size / 2),
                Some(size + 99),
                Some(size * 3),
                Some(1 << 62),
                Some(u64::MAX),
            ] {
                let Unsealed::Opened { bytes, head } = open(&keys, &mut &file[..], hint).unwrap()
                else {
                    panic!("{len} bytes, hint {hint:?}: not opened");
                };
                assert!(bytes == data, "{len} bytes, hint {hint:?}");
                assert_eq!(head, file[..file.len().min(HEADER_READ)]);
            }
            let Unsealed::Opened { bytes, .. } = unsealed(&keys, &file) else {
                panic!("{len} bytes: not opened");
            };
            assert!(
                by_age(&keys, &file) == Some(bytes),
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

    /// Where a bad file goes: to the age crate, or refused here, naming this chunk.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fate {
        Age,
        Damaged(&'static str),
    }

    /// Damaged versions of `file` (a seal of `data` for `keys`, 65 chunks), what each is and
    /// where it must go.
    /// `file` cut to 1, 15 and 16 bytes after its nonce (`file` ends 16 bytes after it): a
    /// first chunk shorter than a tag (which the file's length alone says), then a tag alone.
    fn cut_within_a_tag(file: &[u8]) -> Vec<(&'static str, Vec<u8>, Fate)> {
        let payload = file.len() - TAG;
        let short = Fate::Damaged("chunk 0 is shorter than its tag");
        vec![
            (
                "cut a byte after its nonce",
                file[..=payload].to_vec(),
                short,
            ),
            (
                "cut 15 bytes after its nonce",
                file[..payload + TAG - 1].to_vec(),
                short,
            ),
            (
                "cut a tag after its nonce",
                file.to_vec(),
                Fate::Damaged("chunk 0 does not open"),
            ),
        ]
    }

    fn bad_files(keys: &Keys, data: &[u8], file: &[u8]) -> Vec<(&'static str, Vec<u8>, Fate)> {
        let header_len = header(file).unwrap().0;
        let payload = header_len + NONCE_LEN;
        // 65 chunks: two pieces of 32, then a short last one (chunk 64).
        let chunks = (file.len() - payload).div_ceil(SEALED_CHUNK);
        assert_eq!(chunks, 2 * PIECE_CHUNKS + 1);
        let mut cases: Vec<(&str, Vec<u8>, Fate)> = Vec::new();
        let flipped = |at: usize| {
            let mut bad = file.to_vec();
            bad[at] ^= 0x10;
            bad
        };
        cases.push((
            "a flipped bit in a stanza",
            flipped(VERSION_LINE.len() + 10),
            Fate::Age,
        ));
        cases.push((
            "a flipped bit in the MAC",
            flipped(header_len - 5),
            Fate::Age,
        ));
        cases.push((
            "a flipped bit in the nonce",
            flipped(header_len + 3),
            Fate::Damaged("chunk 0 "),
        ));
        cases.push((
            "a flipped bit in chunk 0",
            flipped(payload + 100),
            Fate::Damaged("chunk 0 "),
        ));
        // Chunk 29 is in the second run of the first piece when two threads open it.
        cases.push((
            "a flipped bit in chunk 29",
            flipped(payload + 29 * SEALED_CHUNK + 7),
            Fate::Damaged("chunk 29 "),
        ));
        cases.push((
            "a flipped bit in the last tag",
            flipped(file.len() - 1),
            Fate::Damaged("chunk 64 "),
        ));
        // Cut at the last chunk's edge (chunk 63 is not marked last), within it, just after
        // the nonce or in it; followed by a byte, or by a chunk.
        let last_start = payload + (chunks - 1) * SEALED_CHUNK;
        cases.push((
            "cut at a chunk's edge",
            file[..last_start].to_vec(),
            Fate::Damaged("chunk 63 "),
        ));
        cases.push((
            "cut 5 bytes into its last chunk",
            file[..last_start + 5].to_vec(),
            Fate::Damaged("chunk 64 is shorter than its tag"),
        ));
        cases.push((
            "cut in its last chunk",
            file[..file.len() - 3].to_vec(),
            Fate::Damaged("chunk 64 "),
        ));
        cases.push((
            "cut after its nonce",
            file[..payload].to_vec(),
            Fate::Damaged("before its first chunk"),
        ));
        cases.extend(cut_within_a_tag(&file[..payload + TAG]));
        cases.push(("cut in its nonce", file[..payload - 1].to_vec(), Fate::Age));
        let mut longer = file.to_vec();
        longer.extend_from_slice(&file[..=SEALED_CHUNK]);
        cases.push((
            "a chunk and a byte after its end",
            longer,
            Fate::Damaged("chunk 64 "),
        ));
        let mut longer = file.to_vec();
        longer.push(0);
        cases.push(("a byte after its end", longer, Fate::Damaged("chunk 64 ")));
        // Chunks that open but are not laid out as age lays them out.
        let full = &data[..CHUNK];
        cases.push((
            "an empty last chunk after a full one",
            laid_out(keys, &[(full, false), (b"", true)]),
            Fate::Damaged("chunk 1 is an empty last chunk"),
        ));
        cases.push((
            "a short chunk before the last (read as a full one, then an empty one)",
            laid_out(keys, &[(&full[1..], false), (b"x", true)]),
            Fate::Damaged("chunk 1 is an empty last chunk"),
        ));
        cases.push((
            "no chunk marked last",
            laid_out(keys, &[(full, false), (b"x", false)]),
            Fate::Damaged("chunk 1 "),
        ));
        // Another identity's file, the armored form, another header version.
        cases.push(("for another identity", seal(&self::keys(), data), Fate::Age));
        let mut other_version = file.to_vec();
        other_version[VERSION_LINE.len() - 2] = b'2';
        cases.push(("of version v2", other_version, Fate::Age));
        cases
    }

    #[test]
    fn a_bad_header_is_left_to_age_and_a_bad_payload_names_its_chunk() {
        let keys = keys();
        let data = data(2 * PIECE_CHUNKS * CHUNK + 40_000);
        let file = seal(&keys, &data);
        let cases = bad_files(&keys, &data, &file);
        let mut armored =
            age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
                .unwrap();
        armored.write_all(&file).unwrap();
        let armored = armored.finish().unwrap();
        for (what, bad, fate) in &cases {
            match (unsealed(&keys, bad), fate) {
                // The age crate reads the bytes read here, then the rest.
                (Unsealed::ForAge(read), Fate::Age) => {
                    assert_eq!(read, bad[..bad.len().min(HEADER_READ)], "{what}");
                }
                (Unsealed::Damaged(error), Fate::Damaged(chunk)) => {
                    assert!(error.to_string().contains(chunk), "{what}: {error}");
                }
                (Unsealed::Opened { .. }, _) => panic!("{what}: opened, not {fate:?}"),
                (Unsealed::Damaged(error), _) => panic!("{what}: {error}, not {fate:?}"),
                (Unsealed::ForAge(_), _) => panic!("{what}: left to age, not {fate:?}"),
            }
            // Refused through `decrypt`, and by the age crate.
            assert!(decrypt(&keys, &bad[..]).is_err(), "{what}: decrypted");
            assert!(by_age(&keys, bad).is_none(), "{what}: age reads it");
        }
        // The armored file: left to age, which reads it.
        assert!(matches!(unsealed(&keys, &armored), Unsealed::ForAge(_)));
        assert_eq!(decrypt(&keys, &armored[..]).unwrap().bytes, data);
        // A damaged payload is `Tampered`, the chunk in its source.
        let error = decrypt(&keys, &cases[3].1[..]).unwrap_err();
        assert!(matches!(error, Error::Tampered { .. }), "{error}");
        // The laid-out files are otherwise right: as age lays them out, they open.
        let full = &data[..CHUNK];
        let right = laid_out(&keys, &[(full, false), (b"x", true)]);
        let mut expected = full.to_vec();
        expected.push(b'x');
        assert_eq!(by_age(&keys, &right), Some(expected.clone()));
        assert!(
            matches!(unsealed(&keys, &right), Unsealed::Opened { bytes, .. } if bytes == expected)
        );
    }

    #[test]
    fn without_helper_threads_a_file_opens_and_damage_names_its_chunk() {
        let test = "unseal::tests::without_helper_threads_a_file_opens_and_damage_names_its_chunk";
        if std::thread::available_parallelism().map_or(1, std::num::NonZero::get) < 2 {
            // One core: the chunks are opened by one thread, helpers or not.
            penin_testkit::skip(test, "one CPU: no helper to refuse");
            return;
        }
        let keys = keys();
        let data = data(2 * PIECE_CHUNKS * CHUNK + 40_000);
        let file = seal(&keys, &data);
        // Chunks 3 and 29 flipped: in two runs of the first piece when two threads open it.
        // The first in the file's order is named, whichever thread opened it.
        let payload = header(&file).unwrap().0 + NONCE_LEN;
        let mut twice = file.clone();
        twice[payload + 3 * SEALED_CHUNK + 11] ^= 0x01;
        twice[payload + 29 * SEALED_CHUNK + 11] ^= 0x01;
        let mut cases = bad_files(&keys, &data, &file);
        cases.push((
            "flipped bits in chunks 3 and 29",
            twice,
            Fate::Damaged("chunk 3 "),
        ));
        let Unsealed::Damaged(error) = unsealed(&keys, &cases.last().unwrap().1) else {
            panic!("chunks 3 and 29 flipped: not refused as damaged");
        };
        assert!(error.to_string().contains("chunk 3 "), "{error}");
        let damaged: Vec<_> = cases
            .iter()
            .filter_map(|(what, bad, fate)| match fate {
                Fate::Damaged(chunk) => Some((what, bad, chunk)),
                Fate::Age => None,
            })
            .collect();
        assert!(damaged.len() >= 3, "{} damaged cases", damaged.len());
        penin_codec::refusing_helpers(|| {
            let opened = unsealed(&keys, &file);
            assert!(matches!(opened, Unsealed::Opened { bytes, .. } if bytes == data));
            for (what, bad, chunk) in damaged {
                match unsealed(&keys, bad) {
                    Unsealed::Damaged(error) => {
                        assert!(error.to_string().contains(chunk), "{what}: {error}");
                    }
                    _ => panic!("{what}: not refused as damaged"),
                }
            }
        });
    }

    /// A reader of `file` that fails after `good` bytes.
    struct Failing<'a> {
        file: &'a [u8],
        good: usize,
    }

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::other("the disk went away"));
            }
            let n = buf.len().min(self.good).min(self.file.len());
            buf[..n].copy_from_slice(&self.file[..n]);
            self.file = &self.file[n..];
            self.good -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_reader_that_fails_in_the_header_or_the_payload_is_a_read_error() {
        let keys = keys();
        let file = seal(&keys, &data(3 * PIECE_CHUNKS * CHUNK));
        for good in [0, 10, HEADER_READ + 1, PIECE + 5, file.len() - 1] {
            let failing = Failing { file: &file, good };
            let size = Some(file.len() as u64);
            assert!(
                open(&keys, &mut { failing }, size).is_err(),
                "after {good} bytes"
            );
            let error = decrypt(&keys, Failing { file: &file, good }).unwrap_err();
            assert!(
                matches!(error, Error::Read(_)),
                "after {good} bytes: {error}"
            );
        }
    }
}
