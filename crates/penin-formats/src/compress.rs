//! Compression around the seed JSON: an [`Encoder`] to write it, [`decompress`] to read it.
//!
//! gzip is `flate2` with the `zlib-rs` backend; a gzip file of several members (as Python's
//! `gzip` module writes when a file is appended to, or as `cat a.gz b.gz` makes) reads as
//! the concatenation of their contents. zstd is the reference library through the `zstd`
//! crate; several frames read as one stream too, and penin's frames carry the optional
//! content checksum (XXH64), so a flipped bit in the compressed data is refused.
//!
//! Both compress on every core: gzip as independent members of [`GZIP_MEMBER`] bytes of
//! input each, compressed on worker threads and written in order (a reader sees one
//! stream: Python's `gzip` module, `gunzip` and `zcat` read every member); zstd through the
//! library's own workers, which still write one frame (Python's `zstandard` reads only the
//! first frame of a stream unless told otherwise). A state smaller than one member is one
//! member, byte for byte what a one-thread encoder writes.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::error::{Error, Result};
use crate::format::Format;

/// The gzip level penin writes: zlib's and Python's `gzip.compress` default is 9, but 6
/// (zlib's own default) is several times faster for files a few percent larger.
pub const GZIP_LEVEL: u32 = 6;

/// The zstd level penin writes: the library's default, fast and smaller than gzip.
pub const ZSTD_LEVEL: i32 = 3;

/// The input bytes of one gzip member: large enough that the members' headers and the
/// dictionary each member starts without cost nothing measurable (deflate looks back 32 KiB),
/// small enough that two cores share a state of a few tens of megabytes evenly.
pub const GZIP_MEMBER: usize = 4 << 20;

/// The threads compression may use: the machine's cores.
fn threads() -> usize {
    thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// A writer that compresses what is written through it into `W` as the format says (plain
/// JSON passes through). [`Encoder::finish`] ends the stream; dropping it without does not
/// write a complete stream.
pub struct Encoder<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Plain(W),
    Gzip(Members<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// An encoder of `format` into `writer`, at [`GZIP_LEVEL`] or [`ZSTD_LEVEL`]; a format
    /// that is not JSON ([`Format::is_json`]) is an error of kind `InvalidInput`.
    pub fn new(format: Format, writer: W) -> io::Result<Self> {
        let inner = match format {
            Format::Arrow => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    Error::NotJson(format),
                ));
            }
            Format::JsonGz => Inner::Gzip(Members::new(writer, threads())),
            Format::JsonZst => {
                let mut encoder = zstd::Encoder::new(writer, ZSTD_LEVEL)?;
                encoder.include_checksum(true)?;
                let workers = threads();
                if workers > 1 {
                    encoder.multithread(u32::try_from(workers).unwrap_or(u32::MAX))?;
                }
                Inner::Zstd(encoder)
            }
            Format::Json => Inner::Plain(writer),
        };
        Ok(Encoder { inner })
    }

    /// Writes the end of the stream (gzip's trailer, zstd's last block and checksum) and
    /// returns the writer, not flushed further.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::Plain(writer) => Ok(writer),
            Inner::Gzip(encoder) => encoder.finish(),
            Inner::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.write(buf),
            Inner::Gzip(encoder) => encoder.write(buf),
            Inner::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.write_all(buf),
            Inner::Gzip(encoder) => encoder.write_all(buf),
            Inner::Zstd(encoder) => encoder.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(writer) => writer.flush(),
            Inner::Gzip(encoder) => encoder.flush(),
            Inner::Zstd(encoder) => encoder.flush(),
        }
    }
}

impl<W: Write> std::fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.inner {
            Inner::Plain(_) => Format::Json,
            Inner::Gzip(_) => Format::JsonGz,
            Inner::Zstd(_) => Format::JsonZst,
        };
        f.debug_struct("Encoder").field("format", &format).finish()
    }
}

/// A gzip stream written as members of [`GZIP_MEMBER`] input bytes, each compressed on a
/// thread of its own, at most `threads` at a time, and written to `writer` in order.
struct Members<W: Write> {
    writer: W,
    /// Input not yet handed to a thread.
    buffer: Vec<u8>,
    /// The members being compressed, oldest first.
    pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    threads: usize,
    /// Whether a member was started: an empty stream is still one (empty) member.
    started: bool,
}

impl<W: Write> Members<W> {
    fn new(writer: W, threads: usize) -> Self {
        Members {
            writer,
            buffer: Vec::new(),
            pending: VecDeque::new(),
            threads: threads.max(1),
            started: false,
        }
    }

    /// Hands the buffered input to a thread as one member, first writing out the oldest
    /// member when every thread is busy.
    fn spawn(&mut self) -> io::Result<()> {
        if self.pending.len() >= self.threads {
            self.write_oldest()?;
        }
        let input = std::mem::take(&mut self.buffer);
        let (sender, receiver) = mpsc::sync_channel(1);
        // A plain spawn, not `penin_codec::spawn_beside`: the thread that hands out members
        // mostly waits for them (deflate is far slower than making its input), so members
        // run on every core, its own too.
        thread::Builder::new()
            .name("penin-gzip".to_owned())
            .spawn(move || {
                let _ = sender.send(member(&input));
            })?;
        self.pending.push_back(receiver);
        self.started = true;
        Ok(())
    }

    /// Waits for the oldest member and writes it.
    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(receiver) = self.pending.pop_front() {
            // The thread sends once unless it panicked, which only a bug would make it do.
            let bytes = receiver
                .recv()
                .map_err(|_| io::Error::other("a gzip compression thread failed"))??;
            self.writer.write_all(&bytes)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        if !self.buffer.is_empty() || !self.started {
            self.spawn()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.writer)
    }
}

/// One gzip member holding `input`.
fn member(input: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(input.len() / 3),
        flate2::Compression::new(GZIP_LEVEL),
    );
    encoder.write_all(input)?;
    encoder.finish()
}

impl<W: Write> Write for Members<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_MEMBER - self.buffer.len();
        let n = buf.len().min(room);
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(GZIP_MEMBER);
        }
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == GZIP_MEMBER {
            self.spawn()?;
        }
        Ok(n)
    }

    /// Members are written whole, when their thread is done: there is nothing to flush
    /// before [`Encoder::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Reads the whole of `reader`, a stream of `format`, and returns what it holds: for
/// [`Format::Json`], the bytes as they are. A stream that is corrupt, cut short or
/// followed by anything but further members or frames is [`Error::Damaged`]; a failure of
/// `reader` itself, or memory refused for what it holds, is [`Error::Read`].
///
/// A format that is not JSON ([`Format::is_json`]) is [`Error::NotJson`].
pub fn decompress<R: Read>(format: Format, reader: R) -> Result<Vec<u8>> {
    decompress_probed(format, reader, usize::MAX, |_| false).map(|(content, _)| content)
}

/// [`decompress`], which shows the content's first `probe` bytes to `refuse` as soon as they
/// are out, and stops there if it refuses them: a stream whose content is not what it should
/// be from its start (50 KB of zstd can expand to gigabytes of zeros) is then given up
/// without being decompressed whole. Gives the content and whether it is whole: `false`
/// when `refuse` refused its first `probe` bytes, which are then all it holds. A content
/// shorter than `probe` bytes is not shown to `refuse`.
pub fn decompress_probed<R: Read>(
    format: Format,
    reader: R,
    probe: usize,
    refuse: impl FnOnce(&[u8]) -> bool,
) -> Result<(Vec<u8>, bool)> {
    if !format.is_json() {
        return Err(Error::NotJson(format));
    }
    let mut source = Tracked::new(reader);
    let mut out = Vec::new();
    let result = match format {
        Format::Json => read_probed(&mut source, &mut out, probe, refuse),
        Format::JsonGz => read_probed(MultiGzDecoder::new(&mut source), &mut out, probe, refuse),
        Format::JsonZst => zstd::Decoder::new(&mut source)
            .and_then(|decoder| read_probed(decoder, &mut out, probe, refuse)),
        // Refused above.
        Format::Arrow => Ok(true),
    };
    match result {
        Ok(whole) => Ok((out, whole)),
        Err(source_error) if source.failed => Err(Error::Read(source_error)),
        Err(error) if out_of_memory(format, &error) => Err(Error::Read(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "no memory to decompress the content past its first {} bytes",
                out.len()
            ),
        ))),
        Err(error) => Err(Error::Damaged {
            format,
            source: error,
        }),
    }
}

/// Whether `error`, from decompressing a stream of `format`, is memory refused: by
/// `read_to_end`, which asks for its memory fallibly, or by zstd itself (a frame's window
/// can ask for 128 MiB at once), which names its failure only in its message.
fn out_of_memory(format: Format, error: &io::Error) -> bool {
    use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
    if error.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    // zstd's functions return an error as the code's negation.
    let code = 0_usize.wrapping_sub(ZSTD_ErrorCode::ZSTD_error_memory_allocation as usize);
    format == Format::JsonZst && error.to_string() == zstd::zstd_safe::get_error_name(code)
}

/// Reads `reader` to its end into `out`, showing `refuse` the first `probe` bytes on the
/// way; `Ok(false)` when it refused them.
fn read_probed<R: Read>(
    mut reader: R,
    out: &mut Vec<u8>,
    probe: usize,
    refuse: impl FnOnce(&[u8]) -> bool,
) -> io::Result<bool> {
    let limit = u64::try_from(probe).unwrap_or(u64::MAX);
    (&mut reader).take(limit).read_to_end(out)?;
    if out.len() == probe && refuse(out) {
        return Ok(false);
    }
    reader.read_to_end(out)?;
    Ok(true)
}

/// A reader that remembers whether it failed, so that the decompressor's own errors (a
/// damaged stream) are told apart from the file's (an I/O error).
pub(crate) struct Tracked<R> {
    inner: R,
    /// Whether a read of the inner reader failed.
    pub(crate) failed: bool,
}

impl<R> Tracked<R> {
    pub(crate) fn new(inner: R) -> Self {
        Tracked {
            inner,
            failed: false,
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_is_not_compressed_json() {
        let error = Encoder::new(Format::Arrow, Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(error.to_string(), "arrow is not compressed JSON");
        assert!(matches!(
            decompress(Format::Arrow, &b"ARROW1"[..]),
            Err(Error::NotJson(Format::Arrow))
        ));
    }

    fn encode(format: Format, data: &[u8]) -> Vec<u8> {
        let mut encoder = Encoder::new(format, Vec::new()).unwrap();
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..5000 {
            data.extend_from_slice(format!("{{\"x\": {i}.5, \"key\": \"k{i}\"}}\n").as_bytes());
        }
        data
    }

    #[test]
    fn round_trips_every_format() {
        let data = sample();
        for format in Format::ALL.into_iter().filter(|f| f.is_json()) {
            let bytes = encode(format, &data);
            assert_eq!(Format::detect(&bytes), format);
            if format != Format::Json {
                assert!(bytes.len() < data.len() / 4, "{format}: {}", bytes.len());
            }
            assert_eq!(decompress(format, &bytes[..]).unwrap(), data, "{format}");
        }
    }

    /// Input of several gzip members, not all alike, so that each compresses differently.
    fn large() -> Vec<u8> {
        let mut data = Vec::with_capacity(2 * GZIP_MEMBER + 1000);
        let mut i = 0u64;
        while data.len() < 2 * GZIP_MEMBER + 1000 {
            i += 1;
            data.extend_from_slice(
                format!("{{\"x\": {}, \"n\": {i}}}\n", i * 7919 % 100_003).as_bytes(),
            );
        }
        data
    }

    /// The starts of the gzip members of `bytes`, found by decoding one member at a time.
    fn member_count(bytes: &[u8]) -> usize {
        let mut rest = bytes;
        let mut count = 0;
        while !rest.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            io::copy(&mut decoder, &mut io::sink()).unwrap();
            let consumed = rest.len() - decoder.into_inner().len();
            rest = &rest[consumed..];
            count += 1;
        }
        count
    }

    #[test]
    fn gzip_of_several_members_round_trips_whatever_the_threads() {
        let data = large();
        let mut outputs = Vec::new();
        for threads in [1, 2, 5] {
            let mut members = Members::new(Vec::new(), threads);
            // Odd-sized writes, so that members are cut inside a write.
            for chunk in data.chunks(1_000_003) {
                members.write_all(chunk).unwrap();
            }
            let bytes = members.finish().unwrap();
            assert_eq!(member_count(&bytes), 3, "{threads} thread(s)");
            assert_eq!(decompress(Format::JsonGz, &bytes[..]).unwrap(), data);
            outputs.push(bytes);
        }
        // The members are in order, so the bytes do not depend on the threads.
        assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn a_small_gzip_stream_is_one_member_as_a_plain_encoder_writes() {
        let data = sample();
        let mut plain = GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
        plain.write_all(&data).unwrap();
        assert_eq!(encode(Format::JsonGz, &data), plain.finish().unwrap());
        assert_eq!(member_count(&encode(Format::JsonGz, b"")), 1);
    }

    #[test]
    fn zstd_on_several_threads_is_one_frame() {
        let data = large();
        let bytes = encode(Format::JsonZst, &data);
        let mut decoder = zstd::stream::read::Decoder::new(&bytes[..])
            .unwrap()
            .single_frame();
        let mut first = Vec::new();
        decoder.read_to_end(&mut first).unwrap();
        assert_eq!(first, data, "the first frame holds everything");
    }

    #[test]
    fn empty_content_round_trips() {
        for format in Format::ALL.into_iter().filter(|f| f.is_json()) {
            let bytes = encode(format, b"");
            assert_eq!(decompress(format, &bytes[..]).unwrap(), b"");
        }
    }

    #[test]
    fn several_members_or_frames_read_as_one() {
        let data = sample();
        let (a, b) = data.split_at(12_345);
        for format in [Format::JsonGz, Format::JsonZst] {
            let mut bytes = encode(format, a);
            bytes.extend_from_slice(&encode(format, b));
            assert_eq!(decompress(format, &bytes[..]).unwrap(), data, "{format}");
        }
    }

    #[test]
    fn truncated_streams_are_damaged() {
        let data = sample();
        for format in [Format::JsonGz, Format::JsonZst] {
            let bytes = encode(format, &data);
            for cut in [3, 10, bytes.len() / 2, bytes.len() - 1] {
                let error = decompress(format, &bytes[..cut]).unwrap_err();
                assert!(
                    matches!(error, Error::Damaged { format: f, .. } if f == format),
                    "{format} cut at {cut}: {error:?}"
                );
            }
        }
        let error = decompress(Format::JsonGz, &encode(Format::JsonGz, &data)[..100]).unwrap_err();
        assert_eq!(error.to_string(), "the gzip stream is damaged or truncated");
    }

    #[test]
    fn flipped_bits_are_refused() {
        let data = sample();
        for format in [Format::JsonGz, Format::JsonZst] {
            let bytes = encode(format, &data);
            // Past the headers: in the compressed blocks and the trailer's checksum.
            for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 2] {
                let mut bad = bytes.clone();
                bad[at] ^= 0x10;
                assert!(
                    decompress(format, &bad[..]).is_err(),
                    "{format}: a flip at byte {at} was not detected"
                );
            }
        }
    }

    #[test]
    fn garbage_after_a_stream_is_damaged() {
        for format in [Format::JsonGz, Format::JsonZst] {
            let mut bytes = encode(format, b"{}");
            bytes.extend_from_slice(b"trailing");
            assert!(
                matches!(decompress(format, &bytes[..]), Err(Error::Damaged { .. })),
                "{format}"
            );
        }
    }

    #[test]
    fn a_probe_refused_stops_the_decompression_and_one_accepted_does_not() {
        let zeros = vec![0_u8; 3 << 20];
        for format in [Format::Json, Format::JsonGz, Format::JsonZst] {
            let bytes = encode(format, &zeros);
            let mut shown = Vec::new();
            let (content, whole) = decompress_probed(format, &bytes[..], 1 << 20, |prefix| {
                shown = prefix.to_vec();
                true
            })
            .unwrap();
            assert!(!whole, "{format}");
            assert_eq!(content, vec![0; 1 << 20], "{format}");
            assert_eq!(shown, content, "{format}");
            let (content, whole) =
                decompress_probed(format, &bytes[..], 1 << 20, |prefix| prefix[0] != 0).unwrap();
            assert!(whole, "{format}");
            assert_eq!(content, zeros, "{format}");
            // A content of the probe's length is shown; a shorter one is not.
            let (_, whole) = decompress_probed(format, &bytes[..], 3 << 20, |_| true).unwrap();
            assert!(!whole, "{format}");
            let (content, whole) =
                decompress_probed(format, &bytes[..], (3 << 20) + 1, |_| panic!("shown")).unwrap();
            assert!(whole, "{format}");
            assert_eq!(content.len(), 3 << 20, "{format}");
        }
        // A damaged stream is damaged, before its probe or after it.
        let bytes = encode(Format::JsonZst, &zeros);
        let cut = &bytes[..bytes.len() - 2];
        for probe in [16, usize::MAX] {
            assert!(matches!(
                decompress_probed(Format::JsonZst, cut, probe, |_| false),
                Err(Error::Damaged { .. })
            ));
        }
    }

    #[test]
    fn memory_refused_is_told_apart_from_a_damaged_stream() {
        let refused = io::Error::new(io::ErrorKind::OutOfMemory, "refused");
        let zstd = io::Error::other("Allocation error : not enough memory");
        let damaged = io::Error::other("Data corruption detected");
        assert!(out_of_memory(Format::JsonGz, &refused));
        assert!(out_of_memory(Format::JsonZst, &zstd));
        assert!(!out_of_memory(Format::JsonGz, &zstd));
        assert!(!out_of_memory(Format::JsonZst, &damaged));
    }

    #[test]
    fn a_failing_reader_is_a_read_error() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        for format in Format::ALL.into_iter().filter(|f| f.is_json()) {
            assert!(
                matches!(decompress(format, Failing), Err(Error::Read(_))),
                "{format}"
            );
        }
    }
}
