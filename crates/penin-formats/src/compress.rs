//! Compression around the seed JSON: an [`Encoder`] to write it, [`decompress`] to read it.
//!
//! gzip is `flate2` with the `zlib-rs` backend; a gzip file of several members (as Python's
//! `gzip` module writes when a file is appended to, or as `cat a.gz b.gz` makes) reads as
//! the concatenation of their contents. zstd is the reference library through the `zstd`
//! crate; several frames read as one stream too, and penin's frames carry the optional
//! content checksum (XXH64), so a flipped bit in the compressed data is refused.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::error::{Error, Result};
use crate::format::Format;

/// The gzip level penin writes: zlib's and Python's `gzip.compress` default is 9, but 6
/// (zlib's own default) is several times faster for files a few percent larger.
pub const GZIP_LEVEL: u32 = 6;

/// The zstd level penin writes: the library's default, fast and smaller than gzip.
pub const ZSTD_LEVEL: i32 = 3;

/// A writer that compresses what is written through it into `W` as the format says (plain
/// JSON passes through). [`Encoder::finish`] ends the stream; dropping it without does not
/// write a complete stream.
pub struct Encoder<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Plain(W),
    Gzip(GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// An encoder of `format` into `writer`, at [`GZIP_LEVEL`] or [`ZSTD_LEVEL`].
    pub fn new(format: Format, writer: W) -> io::Result<Self> {
        let inner = match format {
            Format::JsonGz => {
                Inner::Gzip(GzEncoder::new(writer, flate2::Compression::new(GZIP_LEVEL)))
            }
            Format::JsonZst => {
                let mut encoder = zstd::Encoder::new(writer, ZSTD_LEVEL)?;
                encoder.include_checksum(true)?;
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

/// Reads the whole of `reader`, a stream of `format`, and returns what it holds: for
/// [`Format::Json`], the bytes as they are. A stream that is corrupt, cut short or
/// followed by anything but further members or frames is [`Error::Damaged`]; a failure of
/// `reader` itself is [`Error::Read`].
pub fn decompress<R: Read>(format: Format, reader: R) -> Result<Vec<u8>> {
    let mut source = Tracked::new(reader);
    let mut out = Vec::new();
    let result = match format {
        Format::Json => source.read_to_end(&mut out).map(drop),
        Format::JsonGz => MultiGzDecoder::new(&mut source)
            .read_to_end(&mut out)
            .map(drop),
        Format::JsonZst => {
            zstd::Decoder::new(&mut source).and_then(|mut d| d.read_to_end(&mut out).map(drop))
        }
    };
    match result {
        Ok(()) => Ok(out),
        Err(source_error) if source.failed => Err(Error::Read(source_error)),
        Err(error) => Err(Error::Damaged {
            format,
            source: error,
        }),
    }
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
        for format in Format::ALL {
            let bytes = encode(format, &data);
            assert_eq!(Format::detect(&bytes), format);
            if format != Format::Json {
                assert!(bytes.len() < data.len() / 4, "{format}: {}", bytes.len());
            }
            assert_eq!(decompress(format, &bytes[..]).unwrap(), data, "{format}");
        }
    }

    #[test]
    fn empty_content_round_trips() {
        for format in Format::ALL {
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
    fn a_failing_reader_is_a_read_error() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        for format in Format::ALL {
            assert!(
                matches!(decompress(format, Failing), Err(Error::Read(_))),
                "{format}"
            );
        }
    }
}
