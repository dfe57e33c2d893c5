//! The writing half of an age file (`age-encryption.org/v1`), done by penin itself so that
//! the payload's chunks can be encrypted on more than one thread: the `age` crate's writer
//! seals them one after the other. What is written is exactly age v1 (C2SP `age`); the
//! `age` crate reads it back (see `envelope::decrypt`), as do the age command and `pyrage`.
//!
//! ```text
//! age-encryption.org/v1\n
//! -> TAG ARG ARG...\n        one stanza per recipient stanza given (X25519 ones from the
//! BODY\n                     age crate, penin's key-less ones): the body in base64 without
//!                            padding, in lines of 64 columns, the last one shorter (empty
//!                            when the body's base64 is a multiple of 64, an empty body too)
//! --- MAC\n                  HMAC-SHA-256 of every header byte up to and including `---`,
//!                            keyed with HKDF-SHA-256(ikm = file key, salt = "", info =
//!                            "header"), in base64
//! NONCE                      16 random bytes
//! CHUNK CHUNK ...            the plaintext in 64 KiB pieces, the last one shorter (never
//!                            empty, unless the whole plaintext is), each sealed with
//!                            ChaCha20-Poly1305 under HKDF-SHA-256(ikm = file key,
//!                            salt = NONCE, info = "payload"): nonce = the chunk's number as
//!                            an 11-byte big-endian counter from 0, then 0x01 for the last
//!                            chunk and 0x00 for the others; each followed by its 16-byte tag
//! ```
//!
//! The chunks are sealed with `aws-lc-rs` (AWS-LC's ChaCha20-Poly1305: assembly that does
//! the cipher and the MAC in one pass over the chunk, 1.4 to 1.7 times the speed of the
//! `chacha20poly1305` crate on the machine measured, see docs/benchmarks.md). It is the same
//! IETF ChaCha20-Poly1305 (RFC 8439), so the bytes are those any age writer would write with
//! the same key and nonce; the tests open them with the `chacha20poly1305` crate.
//!
//! Chunks are independent (each has its own nonce), so [`Sealer`] gathers 4 of them (a
//! segment of 256 KiB) at a time in a buffer laid out as the ciphertext will be (a 16-byte gap
//! after each 64 KiB), hands full segments to worker threads that seal them in place, and
//! writes the sealed segments to its writer in order, on the caller's thread. A segment is
//! handed over as "not the last" only once a byte beyond it has been written, so the last
//! chunk is always known when it is sealed. A plaintext of one segment or less is sealed on
//! the caller's thread, no thread started.
//!
//! There is one worker per core but one (at least one, at most [`MAX_WORKERS`]): the caller's
//! thread keeps a core for making the plaintext, which is what a save waits for. When the
//! workers fall behind ([`PENDING_LIMIT`] segments in their hands), the caller's thread seals
//! the next segment itself instead of queueing it, so a writer faster than the workers gets
//! the caller's core too, and memory stays bounded. Where the caller's thread would wait for
//! the workers (for a free buffer, or at the end), it takes back a queued segment none of
//! them has started and seals it itself instead (docs/benchmarks.md has what this gained).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use aws_lc_rs::aead::{
    Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN as AEAD_NONCE_LEN, Nonce, UnboundKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The first line of an age v1 file.
pub(crate) const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";

/// Plaintext bytes in one payload chunk (the last one may hold fewer).
pub(crate) const CHUNK: usize = 64 << 10;

/// The Poly1305 tag after each chunk's ciphertext.
pub(crate) const TAG: usize = 16;

/// A sealed chunk: the ciphertext (as long as the plaintext) and its tag.
pub(crate) const SEALED_CHUNK: usize = CHUNK + TAG;

/// Chunks in one segment, the unit handed to a worker thread. Small, so that the buffers a
/// save fills are few megabytes of new memory: in 1 MiB segments, the encryption of a
/// 10,000 × 384 arrow save faulted in 2.8 times as many pages beyond its plaintext save's,
/// and the save took about 10% longer (docs/benchmarks.md).
pub(crate) const SEGMENT_CHUNKS: usize = 4;

/// Plaintext bytes in one (full) segment.
pub(crate) const SEGMENT: usize = SEGMENT_CHUNKS * CHUNK;

/// The size of a segment's buffer: the sealed chunks, back to back.
const SEGMENT_BUFFER: usize = SEGMENT_CHUNKS * SEALED_CHUNK;

/// The most worker threads, whatever the machine has.
pub(crate) const MAX_WORKERS: usize = 4;

/// Segments the workers may hold (sealing or queued) before the caller's thread seals the
/// next one itself. Well above the number of workers: the caller's thread, which a save
/// waits for, seals only when the workers are well behind (with 1 or 2 it sealed too much
/// of a 10,000 × 384 arrow save, which took longer; 3 to 8 measured alike, see
/// docs/benchmarks.md), and takes back what is still queued at the end.
const PENDING_LIMIT: usize = 8;

/// How many segment buffers (of 256 KiB) may exist at once: the workers' segments, as many
/// sealed by the caller's thread while they are behind and waiting to be written after
/// theirs, and the one being filled.
const MAX_BUFFERS: usize = 2 * PENDING_LIMIT + 1;

/// The random nonce after the header, the payload key's salt.
pub(crate) const NONCE_LEN: usize = 16;

/// The width of a stanza body's base64 lines.
const BODY_COLUMNS: usize = 64;

/// HKDF-SHA-256 of `ikm` with `salt` and `info`, 32 bytes: age's key derivation.
pub(crate) fn hkdf(salt: &[u8], info: &[u8], ikm: &[u8]) -> io::Result<[u8; 32]> {
    let mut key = [0; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut key)
        .map_err(|_| io::Error::other("HKDF cannot give 32 bytes"))?;
    Ok(key)
}

/// The age header for `stanzas`, its MAC keyed from `file_key`: every byte before the nonce.
pub(crate) fn header(stanzas: &[Stanza], file_key: &FileKey) -> io::Result<Vec<u8>> {
    let mut header = VERSION_LINE.to_vec();
    for stanza in stanzas {
        header.extend_from_slice(b"-> ");
        header.extend_from_slice(stanza.tag.as_bytes());
        for arg in &stanza.args {
            header.push(b' ');
            header.extend_from_slice(arg.as_bytes());
        }
        header.push(b'\n');
        let body = STANDARD_NO_PAD.encode(&stanza.body);
        for line in body.as_bytes().chunks(BODY_COLUMNS) {
            header.extend_from_slice(line);
            header.push(b'\n');
        }
        // The last line is shorter than a full one: an empty one when needed.
        if body.len() % BODY_COLUMNS == 0 {
            header.push(b'\n');
        }
    }
    header.extend_from_slice(b"---");
    let key = hkdf(b"", b"header", file_key.expose_secret())?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .map_err(|_| io::Error::other("HMAC refused a 32-byte key"))?;
    mac.update(&header);
    header.push(b' ');
    header.extend_from_slice(
        STANDARD_NO_PAD
            .encode(mac.finalize().into_bytes())
            .as_bytes(),
    );
    header.push(b'\n');
    Ok(header)
}

/// A new random file key.
pub(crate) fn new_file_key() -> FileKey {
    FileKey::init_with_mut(|key| rand::thread_rng().fill_bytes(key))
}

/// The nonce of chunk `counter`: 11 bytes of big-endian counter, then the last-chunk flag.
pub(crate) fn chunk_nonce(counter: u64, last: bool) -> [u8; AEAD_NONCE_LEN] {
    let mut nonce = [0; AEAD_NONCE_LEN];
    nonce[3..11].copy_from_slice(&counter.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The payload's ChaCha20-Poly1305 key, shared by the caller's thread and the workers.
type Cipher = Arc<LessSafeKey>;

/// The cipher for the payload key `key`.
pub(crate) fn payload_cipher(key: &[u8; 32]) -> io::Result<Cipher> {
    let key = UnboundKey::new(&CHACHA20_POLY1305, key)
        .map_err(|_| io::Error::other("ChaCha20-Poly1305 refused a 32-byte key"))?;
    Ok(Arc::new(LessSafeKey::new(key)))
}

/// Seals, in place, the `plain` bytes laid out in `buffer` as a segment (chunk `i` at
/// `i * SEALED_CHUNK`, its tag written after it); `first` is the number of its first chunk
/// and `last` whether the segment ends the payload. Gives the sealed length: the sealed
/// chunks are then `buffer[..len]`, back to back.
///
/// `plain` is at most [`SEGMENT`], and is 0 only for the last segment of an empty payload
/// (one empty last chunk, as age writes it).
fn seal_segment(
    cipher: &LessSafeKey,
    buffer: &mut [u8],
    plain: usize,
    first: u64,
    last: bool,
) -> io::Result<usize> {
    let chunks = plain.div_ceil(CHUNK).max(1);
    for index in 0..chunks {
        let start = index * SEALED_CHUNK;
        let len = (plain - index * CHUNK).min(CHUNK);
        let counter = first + index as u64;
        let nonce = chunk_nonce(counter, last && index + 1 == chunks);
        let (text, after) = buffer[start..].split_at_mut(len);
        // Each nonce is used once under this key: the counter grows and the key is the
        // file's own (derived from a fresh file key and a fresh salt).
        let tag = cipher
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), text)
            .map_err(|_| io::Error::other(format!("chunk {counter} could not be sealed")))?;
        after[..TAG].copy_from_slice(tag.as_ref());
    }
    Ok(plain + chunks * TAG)
}

/// A segment for a worker: `sequence` orders the segments of the file.
struct Job {
    sequence: u64,
    buffer: Vec<u8>,
    plain: usize,
    first: u64,
    last: bool,
}

/// A worker's answer: the segment's sequence number, its buffer and sealed length.
type Done = (u64, io::Result<(Vec<u8>, usize)>);

/// The worker threads: they take jobs from one queue and answer on another.
struct Workers {
    jobs: Option<mpsc::Sender<Job>>,
    /// The queue the workers take jobs from: the caller's thread takes from it too when it
    /// would otherwise wait for them.
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    /// Buffers in existence: the one being filled, those with the workers, those sealed and
    /// waiting to be written, the free ones.
    buffers: usize,
    /// Segments handed to the workers and not answered yet.
    pending: usize,
    /// From this many pending segments on, the caller's thread seals the next one itself
    /// ([`PENDING_LIMIT`]; the tests lower it).
    pending_limit: usize,
    /// The most buffers in existence ([`MAX_BUFFERS`]; the tests lower it).
    buffer_limit: usize,
}

/// How many worker threads a sealer starts: one per core but one, at least one, at most
/// [`MAX_WORKERS`].
fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .saturating_sub(1)
        .clamp(1, MAX_WORKERS)
}

impl Workers {
    fn start(cipher: &Cipher, count: usize) -> io::Result<Workers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (answer, done) = mpsc::channel();
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let queue = Arc::clone(&queue);
            let answer = answer.clone();
            let cipher = cipher.clone();
            let thread = penin_codec::spawn_beside(
                std::thread::Builder::new().name(format!("penin-age-{index}")),
                move || work(&queue, &answer, &cipher),
            )?;
            threads.push(thread);
        }
        Ok(Workers {
            jobs: Some(jobs),
            queue,
            done,
            threads,
            buffers: 1,
            pending: 0,
            pending_limit: PENDING_LIMIT,
            buffer_limit: MAX_BUFFERS,
        })
    }

    /// A segment no worker has started, taken from the queue; `None` when there is none, or
    /// when a worker holds the queue's lock: one waiting for a job holds it while the queue
    /// is empty, and one just woken by a job may hold it a moment longer (a missed chance to
    /// help, not a wait: the caller then waits for an answer instead).
    fn steal(&mut self) -> Option<Job> {
        let job = self.queue.try_lock().ok()?.try_recv().ok()?;
        self.pending -= 1;
        Some(job)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // The queue closes: each worker finishes the segment it holds (a millisecond) and ends.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            // A worker does not panic (it catches the sealing's panics and answers them).
            let _ = thread.join();
        }
    }
}

/// A worker's loop: seal the segments of the queue until it closes or nobody listens.
fn work(queue: &Mutex<mpsc::Receiver<Job>>, answer: &mpsc::Sender<Done>, cipher: &LessSafeKey) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        let sealed = catch_unwind(AssertUnwindSafe(|| {
            seal_segment(cipher, &mut job.buffer, job.plain, job.first, job.last)
        }))
        .unwrap_or_else(|_| Err(io::Error::other("the sealing of a segment panicked")));
        let result = sealed.map(|len| (job.buffer, len));
        if answer.send((job.sequence, result)).is_err() {
            return;
        }
    }
}

/// Writes an age file to `W`: the header at once, then the payload's chunks, sealed on
/// worker threads and written here in order. [`Sealer::finish`] seals the last chunk; a
/// sealer dropped before does not leave a complete file.
pub(crate) struct Sealer<W: Write> {
    writer: W,
    cipher: Cipher,
    /// The segment being filled: chunk `i` at `i * SEALED_CHUNK`.
    current: Vec<u8>,
    /// Plaintext bytes in `current`.
    plain: usize,
    /// The number of `current`'s first chunk.
    first_chunk: u64,
    /// The sequence number of `current`.
    sequence: u64,
    /// The sequence number of the next segment to write.
    next_to_write: u64,
    /// Segments sealed out of order, waiting for those before them.
    sealed: BTreeMap<u64, (Vec<u8>, usize)>,
    /// Buffers written out, to be filled again.
    free: Vec<Vec<u8>>,
    /// Started when the first full segment is handed over.
    workers: Option<Workers>,
    /// How many worker threads to start ([`worker_count`]; the tests set it).
    threads: usize,
    /// An earlier call failed: the file is incomplete, every later call fails too (the
    /// segment being written when it failed is gone, so nothing could be waited for).
    failed: bool,
    /// Segments before the last sealed on the caller's thread because the workers were behind.
    #[cfg(test)]
    sealed_here: usize,
    /// Segments taken back from the workers' queue and sealed on the caller's thread.
    #[cfg(test)]
    stolen: usize,
}

impl<W: Write> Sealer<W> {
    /// Writes the header for `stanzas` (which wrap `file_key`) and the nonce to `writer`.
    pub(crate) fn new(stanzas: &[Stanza], file_key: &FileKey, mut writer: W) -> io::Result<Self> {
        let mut nonce = [0; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut start = header(stanzas, file_key)?;
        start.extend_from_slice(&nonce);
        writer.write_all(&start)?;
        let key = hkdf(&nonce, b"payload", file_key.expose_secret())?;
        Ok(Sealer {
            writer,
            cipher: payload_cipher(&key)?,
            current: vec![0; SEGMENT_BUFFER],
            plain: 0,
            first_chunk: 0,
            sequence: 0,
            next_to_write: 0,
            sealed: BTreeMap::new(),
            free: Vec::new(),
            workers: None,
            threads: worker_count(),
            failed: false,
            #[cfg(test)]
            sealed_here: 0,
            #[cfg(test)]
            stolen: 0,
        })
    }

    /// Hands the full segment to the workers (it is not the last: more bytes follow) and
    /// takes a buffer for the next one.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.workers.is_none() {
            self.workers = Some(Workers::start(&self.cipher, self.threads)?);
        }
        let next = self.free_buffer()?;
        let job = Job {
            sequence: self.sequence,
            buffer: std::mem::replace(&mut self.current, next),
            plain: self.plain,
            first: self.first_chunk,
            last: false,
        };
        self.sequence += 1;
        self.first_chunk += SEGMENT_CHUNKS as u64;
        self.plain = 0;
        // The workers' answers so far, so that `pending` is not behind them.
        self.collect(false)?;
        let Some(workers) = self.workers.as_mut() else {
            return Err(stopped());
        };
        if workers.pending >= workers.pending_limit {
            // The workers are behind: seal this one here, to be written after theirs.
            self.seal_here(job)?;
            #[cfg(test)]
            {
                self.sealed_here += 1;
            }
        } else {
            let sent = workers.jobs.as_ref().map(|jobs| jobs.send(job));
            if !matches!(sent, Some(Ok(()))) {
                return Err(stopped());
            }
            workers.pending += 1;
        }
        self.collect(false)
    }

    /// A buffer for the next segment: a free one, a new one while there may be more, or
    /// the first one the writing of sealed segments frees.
    fn free_buffer(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(buffer) = self.free.pop() {
                return Ok(buffer);
            }
            let Some(workers) = self.workers.as_mut() else {
                return Err(stopped());
            };
            if workers.buffers < workers.buffer_limit {
                workers.buffers += 1;
                return Ok(vec![0; SEGMENT_BUFFER]);
            }
            self.help_or_wait()?;
        }
    }

    /// Seals `job` on this thread, to be written in its turn.
    fn seal_here(&mut self, mut job: Job) -> io::Result<()> {
        let len = seal_segment(
            &self.cipher,
            &mut job.buffer,
            job.plain,
            job.first,
            job.last,
        )?;
        self.sealed.insert(job.sequence, (job.buffer, len));
        Ok(())
    }

    /// Seals here a segment the workers have not started, if one is queued, rather than
    /// wait for them; else waits for their next answer. Then writes what is next in order.
    fn help_or_wait(&mut self) -> io::Result<()> {
        let Some(job) = self.workers.as_mut().and_then(Workers::steal) else {
            return self.collect(true);
        };
        self.seal_here(job)?;
        #[cfg(test)]
        {
            self.stolen += 1;
        }
        self.collect(false)
    }

    /// Takes the workers' answers (waiting for one when `wait`) and writes every sealed
    /// segment that is next in order.
    fn collect(&mut self, wait: bool) -> io::Result<()> {
        let Some(workers) = self.workers.as_mut() else {
            return Ok(());
        };
        let mut first = if wait {
            Some(workers.done.recv().map_err(|_| stopped())?)
        } else {
            None
        };
        while let Some((sequence, result)) = first.take().or_else(|| workers.done.try_recv().ok()) {
            workers.pending -= 1;
            self.sealed.insert(sequence, result?);
        }
        while let Some((buffer, len)) = self.sealed.remove(&self.next_to_write) {
            self.writer.write_all(&buffer[..len])?;
            self.next_to_write += 1;
            self.free.push(buffer);
        }
        Ok(())
    }

    /// Fails when an earlier call did; otherwise runs `step`, remembering its failure.
    fn guarded<T>(&mut self, step: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write of the encrypted file failed",
            ));
        }
        let result = step(self);
        self.failed = result.is_err();
        result
    }

    /// Seals the last segment, writes everything and returns the writer, not flushed.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.guarded(Self::finish_segments)?;
        Ok(self.writer)
    }

    fn finish_segments(&mut self) -> io::Result<()> {
        let len = seal_segment(
            &self.cipher,
            &mut self.current,
            self.plain,
            self.first_chunk,
            true,
        )?;
        // The segments before it, then it.
        while self.next_to_write < self.sequence {
            self.help_or_wait()?;
        }
        self.writer.write_all(&self.current[..len])
    }

    /// Writes the segments already sealed, and flushes the writer. The chunks still being
    /// filled cannot go out before the end: age seals whole chunks.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.guarded(|sealer| {
            sealer.collect(false)?;
            sealer.writer.flush()
        })
    }
}

/// The error when the workers are gone before the end.
fn stopped() -> io::Error {
    io::Error::other("the encrypting threads stopped before the end")
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            if self.plain == SEGMENT {
                self.guarded(Self::hand_over)?;
            }
            let offset = self.plain % CHUNK;
            let at = (self.plain / CHUNK) * SEALED_CHUNK + offset;
            let n = buf.len().min(CHUNK - offset);
            self.current[at..at + n].copy_from_slice(&buf[..n]);
            self.plain += n;
            buf = &buf[n..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Sealer::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};

    use super::*;

    /// A file key of known bytes.
    fn file_key() -> FileKey {
        FileKey::new(Box::new(*b"0123456789abcdef"))
    }

    /// The file `Sealer` writes for `data` (in pieces of `piece`) with `stanzas`.
    fn sealed(stanzas: &[Stanza], data: &[u8], piece: usize) -> Vec<u8> {
        let mut sealer = Sealer::new(stanzas, &file_key(), Vec::new()).unwrap();
        for part in data.chunks(piece) {
            sealer.write_all(part).unwrap();
        }
        sealer.finish().unwrap()
    }

    fn stanza(tag: &str, args: &[&str], body: usize) -> Stanza {
        Stanza {
            tag: tag.to_owned(),
            args: args.iter().map(|&a| a.to_owned()).collect(),
            body: vec![0xfb; body],
        }
    }

    #[test]
    fn the_header_is_age_v1_with_bodies_in_64_columns_and_its_mac() {
        // Bodies of 0, 47 (63 columns), 48 (64 columns: an empty line after) and 49 bytes.
        let stanzas = [
            stanza("a", &[], 0),
            stanza("b", &["x", "y"], 47),
            stanza("c", &["z"], 48),
            stanza("d", &[], 49),
        ];
        let header = header(&stanzas, &file_key()).unwrap();
        let text = String::from_utf8(header.clone()).unwrap();
        let b63 = format!("{}+/s", "+/v7".repeat(15));
        let b64 = "+/v7".repeat(16);
        let (head, mac) = text.split_once("---").unwrap();
        assert_eq!(
            head,
            format!(
                "age-encryption.org/v1\n-> a\n\n-> b x y\n{b63}\n-> c z\n{b64}\n\n-> d\n{b64}\n+w\n"
            )
        );
        // The MAC: HMAC-SHA-256 of everything up to `---`, under HKDF(file key, "", "header").
        let key = hkdf(b"", b"header", file_key().expose_secret()).unwrap();
        let mut expected = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        expected.update(&header[..head.len() + 3]);
        let expected = STANDARD_NO_PAD.encode(expected.finalize().into_bytes());
        assert_eq!(mac, format!(" {expected}\n"));
    }

    /// Opens `file` (written with no stanza) by the specification, chunk by chunk: each
    /// chunk must open with the nonce of its place, the last flag on the last one only.
    fn open_by_the_spec(file: &[u8]) -> Vec<u8> {
        let header = header(&[], &file_key()).unwrap();
        assert!(file.starts_with(&header));
        let (nonce, payload) = file[header.len()..].split_at(NONCE_LEN);
        let key = hkdf(nonce, b"payload", file_key().expose_secret()).unwrap();
        let cipher = ChaCha20Poly1305::new(&key.into());
        let chunks: Vec<&[u8]> = payload.chunks(SEALED_CHUNK).collect();
        let mut plain = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            let last = index + 1 == chunks.len();
            let nonce = chunk_nonce(index as u64, last);
            assert_eq!(nonce[..3], [0, 0, 0]);
            assert_eq!(nonce[11], u8::from(last));
            assert!(chunk.len() >= TAG, "chunk {index} has no tag");
            let (text, tag) = chunk.split_at(chunk.len() - TAG);
            let mut opened = text.to_vec();
            cipher
                .decrypt_in_place_detached(&nonce.into(), b"", &mut opened, tag.into())
                .unwrap_or_else(|_| panic!("chunk {index} of {} does not open", chunks.len()));
            // Only the last chunk may be short, and empty only when it is the only one.
            assert!(last || opened.len() == CHUNK, "chunk {index} is short");
            assert!(
                !opened.is_empty() || chunks.len() == 1,
                "an empty last chunk"
            );
            plain.extend_from_slice(&opened);
        }
        plain
    }

    #[test]
    fn chunks_are_numbered_in_order_and_only_the_last_is_marked() {
        for len in [
            0,
            1,
            CHUNK,
            CHUNK + 1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            2 * SEGMENT,
            3 * SEGMENT + 5 * CHUNK + 3,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            for piece in [1 << 20, 40_000] {
                let file = sealed(&[], &data, piece);
                assert!(open_by_the_spec(&file) == data, "{len} bytes in {piece}");
                let chunks = len.div_ceil(CHUNK).max(1);
                assert_eq!(
                    file.len(),
                    header(&[], &file_key()).unwrap().len() + NONCE_LEN + len + TAG * chunks
                );
            }
        }
    }

    #[test]
    fn segments_sealed_by_the_caller_while_the_workers_are_behind_go_out_in_order() {
        let data: Vec<u8> = (0..20 * SEGMENT + 3).map(|i| (i % 251) as u8).collect();
        // Every segment handed over with the workers holding `pending` or more is sealed on
        // this thread: with 0 all of them, with 1 a mix that depends on the workers' pace,
        // with 100 none. With 3 buffers at most, a new segment waits for a written one.
        for (pending, buffers) in [(0, MAX_BUFFERS), (1, MAX_BUFFERS), (0, 3), (100, 3)] {
            let case = format!("pending limit {pending}, buffer limit {buffers}");
            let mut sealer = Sealer::new(&[], &file_key(), Vec::new()).unwrap();
            // The first full segment starts the workers; the limits apply from the next.
            sealer.write_all(&data[..=SEGMENT]).unwrap();
            let workers = sealer.workers.as_mut().unwrap();
            workers.pending_limit = pending;
            workers.buffer_limit = buffers;
            for part in data[SEGMENT + 1..].chunks(300_000) {
                sealer.write_all(part).unwrap();
            }
            // Every segment handed over is answered and written: none is still counted as
            // pending, and no more buffers were made than allowed.
            while sealer.next_to_write < sealer.sequence {
                sealer.collect(true).unwrap();
            }
            let workers = sealer.workers.as_ref().unwrap();
            assert_eq!(workers.pending, 0, "{case}");
            assert!(workers.buffers <= buffers, "{case}: {}", workers.buffers);
            let here = sealer.sealed_here;
            let file = sealer.finish().unwrap();
            assert!(open_by_the_spec(&file) == data, "{case}");
            match pending {
                // Segments 1 to 19; segment 0 went to a worker, the last one is always here.
                0 => assert_eq!(here, 19, "{case}"),
                100 => assert_eq!(here, 0, "{case}"),
                _ => {}
            }
        }
    }

    #[test]
    fn segments_the_workers_have_not_started_are_sealed_by_the_caller_rather_than_waited_for() {
        let data: Vec<u8> = (0..20 * SEGMENT + 3).map(|i| (i % 249) as u8).collect();
        // No worker thread at all: every segment handed over stays queued until the
        // caller's thread takes it back, when it needs a buffer or at the end.
        let mut sealer = Sealer::new(&[], &file_key(), Vec::new()).unwrap();
        sealer.threads = 0;
        for part in data.chunks(300_000) {
            sealer.write_all(part).unwrap();
        }
        let workers = sealer.workers.as_ref().unwrap();
        assert!(workers.buffers <= MAX_BUFFERS, "{}", workers.buffers);
        let during = sealer.stolen;
        sealer.finish_segments().unwrap();
        assert!(open_by_the_spec(&sealer.writer) == data);
        // Segments 0 to 19 all sealed here (the last, 20, always is): as they came once
        // PENDING_LIMIT were queued, taken back from the queue for a buffer while the
        // buffers were all in use, and at the end.
        assert_eq!(sealer.sealed_here + sealer.stolen, 20);
        assert!(during > 0, "none taken back for a buffer");
        assert!(sealer.stolen > during, "none taken back at the end");
        assert_eq!(sealer.workers.as_ref().unwrap().pending, 0);
    }

    #[test]
    fn nonces_are_the_counter_then_the_flag() {
        let nonce = chunk_nonce(0x0102_0304_0506_0708, true);
        assert_eq!(nonce[..], [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]);
        assert_eq!(chunk_nonce(0, false)[..], [0; 12]);
    }
}
