//! The age envelope: any [`Format`](crate::Format) inside an age file
//! (`age-encryption.org/v1`, X25519 recipients), which the age command and Python's `pyrage`
//! decrypt.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <ephemeral share>                 one stanza per recipient: the file key,
//! <wrapped file key>                          wrapped to that recipient
//! -> penin-recipient age1...                  one key-less stanza per recipient, naming it
//! <empty line>
//! --- <HMAC-SHA-256 of the header>
//! <16-byte nonce><payload: 64 KiB chunks, ChaCha20-Poly1305 each>
//! ```
//!
//! The payload is the file as the format lays it out (the seed JSON, or its gzip or zstd
//! stream): a save encodes, compresses, then encrypts; a load decrypts, then recognises
//! the inner format by its first bytes. The header's MAC covers every stanza (penin's
//! included), and each payload chunk is authenticated, the last one marked as last: any
//! change, cut or addition is refused, never read as other data.
//!
//! penin writes the file itself (the `stream` module), so that the payload's chunks are
//! sealed on several threads, and reads it itself when the keys open its header (the `unseal`
//! module), so that they are opened on several threads as they are read: a header that does
//! not check out (or an armored file) is read by the `age` crate, which says what is wrong; a
//! payload that does not is refused naming the chunk (in the source of [`Error::Tampered`]).
//!
//! An age header does not say whom an X25519 file is for (that is the point of its
//! anonymity). penin's `penin-recipient` stanzas name the recipients, so that a load with a
//! wrong identity, or none, can say which identity the file needs; the price is that the
//! recipients' public keys can be read from the file. Other age implementations skip a stanza
//! type they do not know, as the age specification requires.

use std::io::{self, BufReader, Read, Write};

use age::armor::ArmoredReader;

use crate::compress::Tracked;
use crate::error::{Error, Result};
use crate::keys::{Keys, RECIPIENT_STANZA};
use crate::stream::{Sealer, new_file_key};
use crate::unseal::{self, Unsealed};

/// The first bytes of a binary age file (any version: a newer one is refused by age).
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// The first bytes of an ASCII-armored age file.
pub const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// How many first bytes [`is_encrypted`] needs.
pub const ENVELOPE_MAGIC_LEN: usize = ARMOR_MAGIC.len();

/// How many first bytes of the (de-armored) file are kept to read the header's stanzas
/// from when a file cannot be decrypted.
const HEADER_KEPT: usize = 64 << 10;

/// Whether a file that starts with `head` (its first [`ENVELOPE_MAGIC_LEN`] bytes, or the
/// whole file when it is shorter) is an age file, binary or armored. (JSON starts with
/// whitespace or `{`, gzip and zstd with their magic numbers: none of them with these.)
pub fn is_encrypted(head: &[u8]) -> bool {
    head.starts_with(AGE_MAGIC) || head.starts_with(ARMOR_MAGIC)
}

/// A writer that encrypts what is written through it into `W` to the recipients of the
/// keys, or passes it through when there are none. [`Envelope::finish`] writes the last
/// chunk; dropping it without does not write a complete file.
///
/// Streaming: it holds at most 17 segments of 256 KiB, never the file. The payload's chunks
/// are encrypted on worker threads (one per core but one, up to four), and on the caller's
/// thread when the workers already hold 8 segments or it would otherwise wait for them, so
/// that the encryption overlaps with whatever produces the bytes (an encoder, a compressor)
/// and uses more than one core; the ciphertext is written to `W` in order on the caller's
/// thread, so `W` need not be sent anywhere. The file is age v1 (see the `stream` module for
/// how penin lays it out).
pub struct Envelope<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Plain(W),
    // Boxed: the plain variant is as small as its writer.
    Age(Box<Sealer<W>>),
}

impl<W: Write> Envelope<W> {
    /// An envelope around `writer`: the age header is written at once when `keys` has
    /// recipients.
    pub fn new(keys: &Keys, writer: W) -> io::Result<Self> {
        let inner = if keys.encrypts() {
            let file_key = new_file_key();
            let stanzas = keys.stanzas(&file_key)?;
            Inner::Age(Box::new(Sealer::new(&stanzas, &file_key, writer)?))
        } else {
            Inner::Plain(writer)
        };
        Ok(Envelope { inner })
    }

    /// Whether it encrypts.
    pub fn encrypts(&self) -> bool {
        matches!(self.inner, Inner::Age(_))
    }

    /// Writes the last chunk (when it encrypts) and returns the writer, not flushed further.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::Plain(writer) => Ok(writer),
            Inner::Age(sealer) => sealer.finish(),
        }
    }
}

impl<W: Write> Write for Envelope<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.write(buf),
            Inner::Age(writer) => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.write_all(buf),
            Inner::Age(writer) => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.flush(),
            Inner::Age(writer) => writer.flush(),
        }
    }
}

impl<W: Write> std::fmt::Debug for Envelope<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("encrypts", &self.encrypts())
            .finish()
    }
}

/// What [`decrypt`] read.
#[derive(Clone, Debug, PartialEq)]
pub struct Decrypted {
    /// The content: the file as its format lays it out.
    pub bytes: Vec<u8>,
    /// The recipients the file names (penin's `penin-recipient` stanzas), as `age1…`
    /// strings; empty for a file another program encrypted.
    pub recipients: Vec<String>,
}

/// Decrypts the whole of `reader`, an age file (binary or armored), with the identities of
/// `keys`.
///
/// * no identity, or none that opens it: [`Error::NoIdentity`], [`Error::WrongIdentity`],
///   naming the recipients the file names;
/// * a header, a MAC or a chunk that does not check out, a file cut short or followed by
///   anything: [`Error::Tampered`] (or [`Error::StanzaDamaged`], when the file names the
///   identity's recipient but no stanza opens with it); for a chunk, its source names it;
/// * a failure of `reader` itself: [`Error::Read`].
pub fn decrypt<R: Read>(keys: &Keys, reader: R) -> Result<Decrypted> {
    decrypt_with_size_hint(keys, reader, None)
}

/// [`decrypt`], `size_hint` being the length of the file if known: the plaintext's buffer
/// is then allocated at once, as fresh memory that the threads opening the chunks fill
/// (instead of growing it as the chunks are opened, each piece zeroed first on one thread).
/// A wrong hint costs time, never correctness; a hint of more memory than the system grants
/// is not used.
pub fn decrypt_with_size_hint<R: Read>(
    keys: &Keys,
    reader: R,
    size_hint: Option<u64>,
) -> Result<Decrypted> {
    open(keys, reader, true, size_hint)
}

/// Whether the identities of `keys` open the age file `reader` (binary or armored): its
/// header is read and its MAC checked, the payload is not. Errors as [`decrypt`]'s, but for
/// damage in the payload, which this does not see.
pub fn check_opens<R: Read>(keys: &Keys, reader: R) -> Result<()> {
    open(keys, reader, false, None).map(drop)
}

fn open<R: Read>(
    keys: &Keys,
    mut reader: R,
    payload: bool,
    size_hint: Option<u64>,
) -> Result<Decrypted> {
    if !payload {
        return open_with_age(keys, reader, false);
    }
    // penin opens the file itself when the keys open its header; otherwise the age crate
    // reads it (what was read first, then the rest) and says what is wrong.
    match unseal::open(keys, &mut reader, size_hint).map_err(Error::Read)? {
        Unsealed::Opened { bytes, head } => Ok(Decrypted {
            bytes,
            recipients: Names::parse(&head).recipients,
        }),
        Unsealed::Damaged(error) => Err(Error::Tampered {
            source: age::DecryptError::Io(error),
        }),
        Unsealed::ForAge(read) => open_with_age(keys, io::Cursor::new(read).chain(reader), true),
    }
}

/// [`open`] through the age crate.
fn open_with_age<R: Read>(keys: &Keys, reader: R, payload: bool) -> Result<Decrypted> {
    let mut source = Tracked::new(reader);
    let mut head = Vec::new();
    let result = read_all(keys, &mut source, &mut head, payload);
    let names = Names::parse(&head);
    match result {
        Ok(bytes) => Ok(Decrypted {
            bytes,
            recipients: names.recipients,
        }),
        Err(error) if source.failed => Err(Error::Read(match error {
            age::DecryptError::Io(error) => error,
            other => io::Error::other(other.to_string()),
        })),
        Err(age::DecryptError::NoMatchingKeys) => Err(names.no_match(keys)),
        Err(source) => Err(Error::Tampered { source }),
    }
}

fn read_all<R: Read>(
    keys: &Keys,
    source: &mut Tracked<R>,
    head: &mut Vec<u8>,
    payload: bool,
) -> Result<Vec<u8>, age::DecryptError> {
    let kept = Keeping {
        inner: ArmoredReader::new(source),
        head,
    };
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 16, kept))?;
    let mut reader = decryptor.decrypt(keys.identities())?;
    let mut bytes = Vec::new();
    if !payload {
        return Ok(bytes);
    }
    reader
        .read_to_end(&mut bytes)
        .map_err(age::DecryptError::Io)?;
    Ok(bytes)
}

/// A reader that keeps the first [`HEADER_KEPT`] bytes it reads.
struct Keeping<'a, R> {
    inner: R,
    head: &'a mut Vec<u8>,
}

impl<R: Read> Read for Keeping<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = HEADER_KEPT.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

/// What an age header says of its recipients.
#[derive(Debug, Default)]
struct Names {
    /// The recipients penin's stanzas name.
    recipients: Vec<String>,
    /// How many stanzas are X25519.
    x25519: usize,
}

impl Names {
    /// The stanzas' first lines, up to the MAC line (`---`).
    fn parse(head: &[u8]) -> Names {
        let mut names = Names::default();
        for line in head.split(|&b| b == b'\n').skip(1) {
            if line.starts_with(b"---") {
                break;
            }
            let Some(stanza) = line.strip_prefix(b"-> ") else {
                continue;
            };
            let mut words = stanza.split(|&b| b == b' ');
            match words.next() {
                Some(b"X25519") => names.x25519 += 1,
                Some(tag) if tag == RECIPIENT_STANZA.as_bytes() => {
                    if let Some(Ok(recipient)) = words.next().map(std::str::from_utf8) {
                        names.recipients.push(recipient.to_owned());
                    }
                }
                _ => {}
            }
        }
        names
    }

    /// The error when no identity of `keys` opens the file.
    fn no_match(self, keys: &Keys) -> Error {
        let ours = keys.identity_recipients();
        if let Some(recipient) = ours.iter().find(|r| self.recipients.contains(r)) {
            return Error::StanzaDamaged {
                recipient: recipient.clone(),
            };
        }
        let Names { recipients, x25519 } = self;
        if ours.is_empty() {
            Error::NoIdentity {
                recipients,
                stanzas: x25519,
            }
        } else {
            Error::WrongIdentity {
                recipients,
                stanzas: x25519,
                identities: ours,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use age::secrecy::ExposeSecret;

    use super::*;
    use crate::keys::new_identity;
    use crate::stream::SEGMENT;

    fn identity() -> (Keys, String) {
        let (text, recipient) = new_identity("now");
        let keys = Keys::from_identities(text.expose_secret(), Path::new("k")).unwrap();
        (keys, recipient)
    }

    fn seal(keys: &Keys, data: &[u8]) -> Vec<u8> {
        let mut envelope = Envelope::new(keys, Vec::new()).unwrap();
        envelope.write_all(data).unwrap();
        envelope.finish().unwrap()
    }

    fn decrypt_slice(keys: &Keys, bytes: &[u8]) -> Result<Decrypted> {
        decrypt(keys, bytes)
    }

    fn sample() -> Vec<u8> {
        (0..40_000u32).flat_map(u32::to_le_bytes).collect()
    }

    /// A writer that takes `room` bytes, then fails.
    struct Full {
        room: usize,
        taken: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn many_chunks_encrypted_aside_round_trip_in_any_pieces() {
        let (keys, _) = identity();
        // Five chunks and an odd tail, written in pieces that straddle the chunk edges.
        let data: Vec<u8> = (0..5 * SEGMENT + 12_345)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect();
        let mut envelope = Envelope::new(&keys, Vec::new()).unwrap();
        for piece in data.chunks(333_333) {
            envelope.write_all(piece).unwrap();
            envelope.flush().unwrap();
        }
        let sealed = envelope.finish().unwrap();
        assert!(sealed.starts_with(AGE_MAGIC));
        assert_eq!(decrypt_slice(&keys, &sealed).unwrap().bytes, data);
        // An exact number of chunks, and nothing at all.
        assert_eq!(
            decrypt_slice(&keys, &seal(&keys, &data[..2 * SEGMENT]))
                .unwrap()
                .bytes,
            &data[..2 * SEGMENT]
        );
        assert_eq!(decrypt_slice(&keys, &seal(&keys, &[])).unwrap().bytes, b"");
    }

    /// A writer whose call number `failing` (from 1) fails, and no other.
    struct Flaky {
        calls: usize,
        failing: usize,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls == self.failing {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_once_fails_the_envelope_even_if_the_next_ones_succeed() {
        let (keys, _) = identity();
        let data = vec![7_u8; 4 * SEGMENT + 99];
        // The header, a segment sealed by a worker, the last one.
        for failing in [1, 2, 3, 5] {
            let flaky = Flaky { calls: 0, failing };
            let result = Envelope::new(&keys, flaky).and_then(|mut envelope| {
                envelope.write_all(&data)?;
                envelope.finish()
            });
            let err = result.err().expect("a failed write must fail the envelope");
            assert_eq!(
                err.kind(),
                io::ErrorKind::StorageFull,
                "call {failing}: {err}"
            );
        }
        // A caller that goes on after the error: every later call fails, none waits.
        let mut envelope = Envelope::new(
            &keys,
            Flaky {
                calls: 0,
                failing: 2,
            },
        )
        .unwrap();
        // The failing write comes when a sealed segment is written: at the latest once every
        // buffer is in use, which a few writes of 4 MiB reach.
        let failed = (0..20).find(|_| envelope.write_all(&data).is_err());
        assert!(failed.is_some(), "the failing write was never reported");
        assert!(envelope.write_all(&data).is_err());
        assert!(envelope.flush().is_err());
        assert!(envelope.finish().is_err());
    }

    #[test]
    fn a_failing_writer_fails_the_envelope_without_hanging() {
        let (keys, _) = identity();
        let data = vec![7_u8; 3 * SEGMENT];
        for room in [0, 100, SEGMENT + 5] {
            let full = Full {
                room,
                taken: Vec::new(),
            };
            let result = Envelope::new(&keys, full).and_then(|mut envelope| {
                envelope.write_all(&data)?;
                envelope.finish()
            });
            let err = result.err().expect("a full disk must fail the envelope");
            assert_eq!(err.kind(), io::ErrorKind::StorageFull, "room {room}: {err}");
        }
        // Dropped half-way: the thread ends, nothing waits for it.
        let mut dropped = Envelope::new(&keys, Vec::new()).unwrap();
        dropped.write_all(&data).unwrap();
        drop(dropped);
    }

    #[test]
    fn round_trips_and_names_its_recipients() {
        let (keys, recipient) = identity();
        let (_, other) = identity();
        let keys = keys.with_recipient(&other).unwrap();
        let data = sample();
        let sealed = seal(&keys, &data);
        assert!(is_encrypted(&sealed));
        let text = String::from_utf8_lossy(&sealed[..400]).into_owned();
        assert!(
            text.contains(&format!("-> penin-recipient {recipient}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("-> penin-recipient {other}\n")),
            "{text}"
        );
        let back = decrypt_slice(&keys, &sealed).unwrap();
        assert_eq!(back.bytes, data);
        assert_eq!(back.recipients, [recipient, other]);
    }

    #[test]
    fn without_recipients_it_passes_through() {
        let envelope = Envelope::new(&Keys::new(), Vec::new()).unwrap();
        assert!(!envelope.encrypts());
        assert_eq!(seal(&identity().0.plaintext(), b"{}"), b"{}");
    }

    #[test]
    fn detection_by_first_bytes() {
        let rows: &[(&[u8], bool)] = &[
            (b"", false),
            (b"{", false),
            (b"age-encryption.org/v1\n", true),
            (b"age-encryption.org/v2\n", true),
            (b"age-encryption.org", false),
            (b"-----BEGIN AGE ENCRYPTED FILE-----\n", true),
            (b" -----BEGIN AGE ENCRYPTED FILE-----", false),
            (b"\x1f\x8b", false),
        ];
        for (head, expected) in rows {
            assert_eq!(is_encrypted(head), *expected, "{head:?}");
        }
    }

    #[test]
    fn a_wrong_or_missing_identity_names_the_recipients() {
        let (keys, recipient) = identity();
        let (wrong, wrong_recipient) = identity();
        let sealed = seal(&keys, b"{}");
        let error = decrypt_slice(&wrong, &sealed).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "it is encrypted (age) to {recipient}, and no identity given is one of them \
                 (the identity given is {wrong_recipient})"
            )
        );
        let error = decrypt_slice(&Keys::new(), &sealed).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("it is encrypted (age) to {recipient}, and no identity was given")
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let (keys, _) = identity();
        let sealed = seal(&keys, b"{\"knowledge_base\": {}}");
        for at in 0..sealed.len() {
            for bit in [0x01, 0x80] {
                let mut bad = sealed.clone();
                bad[at] ^= bit;
                match decrypt_slice(&keys, &bad) {
                    Ok(_) => panic!("a flip of {bit:#x} at byte {at} was not detected"),
                    Err(Error::Tampered { .. } | Error::StanzaDamaged { .. }) => {}
                    Err(other) => panic!("byte {at}: {other:?}"),
                }
            }
        }
        for cut in [0, 10, sealed.len() / 2, sealed.len() - 1] {
            assert!(
                matches!(
                    decrypt_slice(&keys, &sealed[..cut]),
                    Err(Error::Tampered { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut longer = sealed.clone();
        longer.push(b'\n');
        assert!(matches!(
            decrypt_slice(&keys, &longer),
            Err(Error::Tampered { .. })
        ));
    }

    #[test]
    fn armored_files_are_read() {
        let (keys, _) = identity();
        let mut armored =
            age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
                .unwrap();
        armored.write_all(&seal(&keys, b"{}")).unwrap();
        let armored = armored.finish().unwrap();
        assert!(is_encrypted(&armored));
        assert_eq!(decrypt_slice(&keys, &armored).unwrap().bytes, b"{}");
    }

    #[test]
    fn a_failing_reader_is_a_read_error() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        assert!(matches!(
            decrypt(&identity().0, Failing),
            Err(Error::Read(_))
        ));
    }
}
