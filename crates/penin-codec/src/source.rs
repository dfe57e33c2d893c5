//! Where the reader's bytes come from.
//!
//! The reader parses an [`Input`]: a window of bytes in memory and the means to move it on.
//! There are two, and the parser is the same code over both:
//!
//! * [`Whole`]: the whole input is already in memory (a slice); the window is all of it and
//!   never moves.
//! * [`Windowed`]: a [`Source`] read a window at a time (a file, read with `pread`, so two
//!   threads can read one handle). When the parser needs a byte past the window, the window
//!   drops what the parser no longer needs — everything before the start of the token being
//!   read — and reads the next chunk after what it holds. A token cut by the window's edge is
//!   thus completed from the next chunk, never accepted short, and no byte is parsed twice.
//!
//! Both can also be read at any offset ([`Input::read_at`]), which the error path uses to
//! find a line and column, and a second parser uses to start elsewhere ([`Input::fork`]):
//! every byte comes from the one handle the load opened.

use std::io;

/// A file, or anything else that can be read at an offset from several threads at once.
pub trait Source: Sync {
    /// Its size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reads into `buf` from `offset`; returns how many bytes were read, 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The whole source, when it is already in memory: the reader then parses it in place,
    /// as one window, instead of copying it a window at a time.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
}

impl Source for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(copy_at(self, buf, offset))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

#[cfg(unix)]
impl Source for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

#[cfg(windows)]
impl Source for std::fs::File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, offset)
    }
}

/// Fills `buf` from `offset` of `source` as far as the source goes, and says how much: fewer
/// bytes than `buf` holds only at the source's end. A short read is continued and a read
/// interrupted by a signal is made again.
pub fn read_full<S: Source + ?Sized>(source: &S, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match source.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// `len` zeroed values for bytes about to be read, `len` being a length a file (or a server)
/// gives before anything vouches for it; `None` when the system refuses that much memory.
///
/// The memory is first asked for without being used (a mapping the system grants or
/// refuses, no page touched) and given back, then allocated zeroed. A length the system will
/// not grant (a damaged or sparse file may claim terabytes) is thus a `None`, not the abort
/// of the process an infallible allocation makes; and a large buffer is fresh pages from the
/// system that nothing here writes to, zeroed by the kernel when whichever thread fills them
/// first touches them.
pub fn zeroed<T: Clone + Default>(len: usize) -> Option<Vec<T>> {
    Vec::<T>::new().try_reserve_exact(len).ok()?;
    Some(vec![T::default(); len])
}

/// [`zeroed`] bytes, memory refused being an [`io::ErrorKind::OutOfMemory`] error.
pub fn buffer(len: usize) -> io::Result<Vec<u8>> {
    zeroed(len).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("no memory for {len} bytes"),
        )
    })
}

/// Copies what `bytes` holds from `offset` into `buf`.
fn copy_at(bytes: &[u8], buf: &mut [u8], offset: u64) -> usize {
    let start = usize::try_from(offset).map_or(bytes.len(), |o| o.min(bytes.len()));
    let n = buf.len().min(bytes.len() - start);
    buf[..n].copy_from_slice(&bytes[start..start + n]);
    n
}

/// The parser's view of its bytes (see the module documentation).
pub(crate) trait Input: Send + Sized {
    /// The bytes in memory; the parser's cursor is an index into them.
    fn window(&self) -> &[u8];
    /// The source offset of `window()[0]`.
    fn base(&self) -> u64;
    /// Drops `window()[..keep]` and appends the next bytes of the source after the window
    /// (a window's [`base`](Input::base) moves by what it dropped). `Ok(false)`: the source
    /// has nothing more.
    fn refill(&mut self, keep: usize) -> io::Result<bool>;
    /// The same source, with a window that starts at source offset `at`.
    fn fork(&self, at: u64) -> Self;
    /// Reads the source at any offset, apart from the window, as [`read_full`] does.
    fn read_full(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The size of the source.
    fn size(&self) -> u64;
}

/// An input that is wholly in memory: one window that never moves.
#[derive(Clone, Copy)]
pub(crate) struct Whole<'a> {
    bytes: &'a [u8],
}

impl<'a> Whole<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Whole { bytes }
    }
}

impl Input for Whole<'_> {
    #[inline]
    fn window(&self) -> &[u8] {
        self.bytes
    }

    #[inline]
    fn base(&self) -> u64 {
        0
    }

    fn refill(&mut self, _keep: usize) -> io::Result<bool> {
        Ok(false)
    }

    fn fork(&self, _at: u64) -> Self {
        *self
    }

    fn read_full(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(copy_at(self.bytes, buf, offset))
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A window onto a [`Source`] that moves on as the parser asks for more.
pub(crate) struct Windowed<'s, S: Source + ?Sized> {
    source: &'s S,
    /// The window is `buf[..filled]`, from source offset `base`. The rest of `buf` is
    /// space kept for the next read, so that a refill does not zero it again.
    buf: Vec<u8>,
    filled: usize,
    base: u64,
    /// Where reading stops: the size of the source when reading began, or less if it was
    /// found to end sooner (a file truncated while it is read ends where it ends).
    end: u64,
    /// How many bytes a refill reads.
    chunk: usize,
    /// The largest the buffer has been, for the tests of what a window holds.
    #[cfg(test)]
    pub(crate) peak: usize,
}

impl<'s, S: Source + ?Sized> Windowed<'s, S> {
    /// An empty window at source offset `at`; `end` is the size of the source.
    pub(crate) fn new(source: &'s S, at: u64, end: u64, chunk: usize) -> Self {
        Windowed {
            source,
            buf: Vec::new(),
            filled: 0,
            base: at,
            end,
            chunk: chunk.max(1),
            #[cfg(test)]
            peak: 0,
        }
    }
}

impl<S: Source + ?Sized> Input for Windowed<'_, S> {
    #[inline]
    fn window(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    #[inline]
    fn base(&self) -> u64 {
        self.base
    }

    fn refill(&mut self, keep: usize) -> io::Result<bool> {
        let next = self.base + self.filled as u64;
        if next >= self.end {
            return Ok(false);
        }
        // What is dropped is moved out of the way first: only the few bytes kept move, never
        // the chunk about to be read.
        let keep = keep.min(self.filled);
        self.buf.copy_within(keep..self.filled, 0);
        self.filled -= keep;
        self.base += keep as u64;
        let want = usize::try_from(self.end - next).map_or(self.chunk, |left| left.min(self.chunk));
        let held = self.filled;
        if self.buf.len() < held + want {
            self.buf.resize(held + want, 0);
        }
        #[cfg(test)]
        {
            self.peak = self.peak.max(self.buf.len());
        }
        let got = read_full(self.source, &mut self.buf[held..held + want], next)?;
        self.filled = held + got;
        if got < want {
            // The source shrank: what is here is all there is.
            self.end = next + got as u64;
        }
        Ok(got > 0)
    }

    fn fork(&self, at: u64) -> Self {
        Windowed::new(self.source, at, self.end, self.chunk)
    }

    fn read_full(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        read_full(self.source, buf, offset)
    }

    fn size(&self) -> u64 {
        self.end
    }
}

/// Bytes in memory that do not say so: a reader goes through them a window at a time, as
/// through a file (for the crate's tests).
#[cfg(test)]
pub(crate) struct NotInMemory<'a>(pub(crate) &'a [u8]);

#[cfg(test)]
impl Source for NotInMemory<'_> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_the_system_refuses_is_none_or_an_error_not_an_abort() {
        let words = zeroed::<u64>(1 << 20).unwrap();
        assert_eq!(words.len(), 1 << 20);
        assert!(words.iter().all(|&w| w == 0));
        assert_eq!(buffer(5).unwrap(), [0; 5]);
        // A pebibyte, more than a 47-bit address space holds, and more than a length can
        // say: refused, not aborted.
        assert!(zeroed::<u8>(1 << 50).is_none());
        assert!(zeroed::<u64>(usize::MAX / 4).is_none());
        let error = buffer(1 << 50).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(
            error.to_string(),
            format!("no memory for {} bytes", 1_u64 << 50)
        );
    }

    /// A source that reads at most three bytes a call and fails at a chosen offset.
    struct Trickle {
        bytes: Vec<u8>,
        fail_at: u64,
    }

    impl Source for Trickle {
        fn size(&self) -> io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }

        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            if offset >= self.fail_at {
                return Err(io::Error::other("the disk went away"));
            }
            let n = buf.len().min(3);
            Ok(copy_at(&self.bytes, &mut buf[..n], offset))
        }
    }

    #[test]
    fn a_window_moves_on_keeping_what_it_is_told_to() {
        let source = Trickle {
            bytes: b"0123456789".to_vec(),
            fail_at: u64::MAX,
        };
        let mut w = Windowed::new(&source, 0, 10, 4);
        assert!(w.refill(0).unwrap());
        assert_eq!((w.window(), w.base()), (&b"0123"[..], 0));
        // Keep from index 2: "23" stays, "4567" follows.
        assert!(w.refill(2).unwrap());
        assert_eq!((w.window(), w.base()), (&b"234567"[..], 2));
        assert!(w.refill(6).unwrap());
        assert_eq!((w.window(), w.base()), (&b"89"[..], 8));
        assert!(!w.refill(0).unwrap());
        assert_eq!((w.window(), w.base()), (&b"89"[..], 8));
        let fork = w.fork(5);
        assert_eq!((fork.window(), fork.base(), fork.size()), (&b""[..], 5, 10));
    }

    #[test]
    fn a_failed_read_is_the_error() {
        let source = Trickle {
            bytes: b"0123456789".to_vec(),
            fail_at: 4,
        };
        let mut w = Windowed::new(&source, 0, 10, 4);
        assert!(w.refill(0).unwrap());
        let error = w.refill(2).unwrap_err();
        assert_eq!(error.to_string(), "the disk went away");
        assert_eq!((w.window(), w.base()), (&b"23"[..], 2));
    }

    #[test]
    fn a_source_that_shrank_ends_where_it_ends() {
        let source = b"0123".to_vec();
        // Told the size is 10, as a file truncated after its size was read.
        let mut w = Windowed::new(&source[..], 0, 10, 3);
        assert!(w.refill(0).unwrap());
        assert!(w.refill(0).unwrap());
        assert_eq!(w.window(), b"0123");
        assert!(!w.refill(0).unwrap());
        assert_eq!(w.size(), 4);
    }
}
