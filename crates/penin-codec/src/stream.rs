//! Reading a state file with only a window of it in memory.
//!
//! [`Document::read_from`] reads its source a few megabytes at a time, parses what the window
//! holds one step at a time (a key, a value, an artifact), and moves the window on: memory is
//! the state itself plus two windows, not the state plus the whole file. A step that runs off
//! the end of the window is read again once the window holds more. A large knowledge base is
//! read on two threads, each with its own window, as [`Document::decode`] does in memory.
//!
//! A window cannot say where an error is in the file, so anything that is not a valid state
//! is reported as `Ok(None)`; the caller then decodes the whole file with
//! [`Document::decode`] to learn what is wrong and where (line, column, JSON path).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use penin_artifacts::KnowledgeBase;

use crate::document::{Document, PARALLEL_MIN_BYTES, Role, Stopped, artifact, history, scores};
use crate::read::{Fault, Parser, bom_len};
use crate::write::HELPER_STACK;

/// A file, or anything else that can be read at an offset from several threads at once.
pub trait Source: Sync {
    /// Its size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reads into `buf` from `offset`; returns how many bytes were read, 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl Source for [u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
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

/// How much a window reads at a time.
const WINDOW: usize = 4 << 20;

/// How far past the middle a second parser's starting point is looked for.
const PROBE: usize = 1 << 20;

/// Why reading stopped early.
enum Stop {
    /// Not a valid state.
    Invalid,
    /// The source could not be read.
    Io(io::Error),
}

impl Document {
    /// Reads a state from `source` holding only a window of it in memory (see the module
    /// documentation). `Ok(None)`: it is not a valid state; decode the whole input with
    /// [`Document::decode`] for the error. `history_maxlen` is as for [`Document::decode`].
    pub fn read_from<S: Source + ?Sized>(
        source: &S,
        history_maxlen: Option<usize>,
    ) -> io::Result<Option<Document>> {
        read_with_window(source, history_maxlen, WINDOW)
    }
}

/// [`Document::read_from`] with a window of `window` bytes (tests use tiny ones).
pub(crate) fn read_with_window<S: Source + ?Sized>(
    source: &S,
    history_maxlen: Option<usize>,
    window: usize,
) -> io::Result<Option<Document>> {
    let size = source.size()?;
    let mut w = Window::new(source, 0, size, 0, window);
    w.refill()?;
    // A byte order mark, which some writers add, as `Document::decode` skips it.
    while w.filled < 3 && w.more() {
        w.refill()?;
    }
    w.start = bom_len(&w.buf[..w.filled]);
    match read_top(&mut w, history_maxlen) {
        Ok(doc) => Ok(Some(doc)),
        Err(Stop::Invalid) => Ok(None),
        Err(Stop::Io(e)) => Err(e),
    }
}

/// A window onto `[base, end)` of a source, and a parser's cursor and depth in it.
struct Window<'s, S: Source + ?Sized> {
    source: &'s S,
    buf: Vec<u8>,
    /// How much of `buf` holds bytes of the source.
    filled: usize,
    /// The cursor, in `buf`.
    start: usize,
    /// The source offset of `buf[0]`.
    base: u64,
    /// The source offset of the next byte to read.
    next: u64,
    /// Where reading stops.
    end: u64,
    depth: usize,
    chunk: usize,
}

impl<'s, S: Source + ?Sized> Window<'s, S> {
    fn new(source: &'s S, at: u64, end: u64, depth: usize, chunk: usize) -> Self {
        Window {
            source,
            buf: Vec::new(),
            filled: 0,
            start: 0,
            base: at,
            next: at,
            end,
            depth,
            chunk: chunk.max(1),
        }
    }

    /// The cursor, as a source offset.
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn more(&self) -> bool {
        self.next < self.end
    }

    /// Drops what the cursor has passed and reads the next chunk. The buffer is reused:
    /// only growth is zeroed, never the bytes a read is about to overwrite.
    fn refill(&mut self) -> io::Result<()> {
        let kept = self.filled - self.start;
        self.buf.copy_within(self.start..self.filled, 0);
        self.base += self.start as u64;
        self.start = 0;
        self.filled = kept;
        let want =
            usize::try_from(self.end - self.next).map_or(self.chunk, |left| left.min(self.chunk));
        if self.buf.len() < kept + want {
            self.buf.resize(kept + want, 0);
        }
        let mut got = 0;
        while got < want {
            match self.source.read_at(
                &mut self.buf[kept + got..kept + want],
                self.next + got as u64,
            ) {
                // The source shrank: what is here is all there is.
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.filled = kept + got;
        self.next += got as u64;
        if got < want {
            self.end = self.next;
        }
        Ok(())
    }

    /// Moves the cursor to `offset`, where another window stopped, at `depth`.
    fn jump(&mut self, offset: u64, depth: usize) {
        self.filled = 0;
        self.start = 0;
        self.base = offset;
        self.next = offset;
        self.depth = depth;
    }

    /// Runs one step of parsing at the cursor; a step that runs off the window's end is run
    /// again once the window holds more.
    fn step<T>(
        &mut self,
        mut f: impl FnMut(&mut Parser<'_>) -> Result<T, Fault>,
    ) -> Result<T, Stop> {
        loop {
            let mut p = Parser::window(&self.buf[..self.filled], self.start, self.depth);
            let result = f(&mut p);
            let (pos, depth) = (p.offset(), p.depth());
            match result {
                Ok(value) => {
                    self.start = pos;
                    self.depth = depth;
                    return Ok(value);
                }
                Err(fault) if fault.is_eof() && self.more() => self.refill().map_err(Stop::Io)?,
                Err(_) => return Err(Stop::Invalid),
            }
        }
    }

    /// Skips whitespace, across windows; `true` at the end of the source.
    fn at_end(&mut self) -> Result<bool, Stop> {
        loop {
            let mut p = Parser::window(&self.buf[..self.filled], self.start, self.depth);
            p.skip_ws();
            self.start = p.offset();
            if self.start < self.filled {
                return Ok(false);
            }
            if !self.more() {
                return Ok(true);
            }
            self.refill().map_err(Stop::Io)?;
        }
    }
}

// `|p| p.key()` cannot be `Parser::key`: the method's lifetime is fixed, the step's is not.
#[allow(clippy::redundant_closure_for_method_calls)]
fn read_top<S: Source + ?Sized>(
    w: &mut Window<'_, S>,
    history_maxlen: Option<usize>,
) -> Result<Document, Stop> {
    if w.at_end()? {
        return Err(Stop::Invalid);
    }
    let open = w.step(|p| {
        if p.need_byte()? != b'{' {
            return Err(Fault::shape(p.offset(), String::new()));
        }
        let open = p.open(b'}')?;
        if open {
            // At the window's end `open` cannot tell an empty object: look at the next byte.
            p.need_byte()?;
        }
        Ok(open)
    })?;
    let mut doc = Document::new(history_maxlen);
    if open {
        loop {
            let key = w.step(|p| p.key())?;
            match key.as_str() {
                "knowledge_base" => doc.knowledge_base = read_knowledge_base(w)?,
                "task_history" => {
                    doc.task_history = w.step(|p| {
                        p.skip_ws();
                        let at = p.offset();
                        history(p.value()?, history_maxlen, at)
                    })?;
                }
                "score_history" => {
                    doc.score_history = w.step(|p| {
                        p.skip_ws();
                        let at = p.offset();
                        let read = history(p.value()?, history_maxlen, at)?;
                        scores(p, read, at)
                    })?;
                }
                _ => {
                    let value = w.step(|p| p.value())?;
                    doc.extra.insert(key, value);
                }
            }
            if !w.step(|p| p.next_item(b'}'))? {
                break;
            }
        }
    }
    if w.at_end()? {
        Ok(doc)
    } else {
        Err(Stop::Invalid)
    }
}

/// The knowledge base, on two threads when it is large (see `document::knowledge_base`).
fn read_knowledge_base<S: Source + ?Sized>(w: &mut Window<'_, S>) -> Result<KnowledgeBase, Stop> {
    let (open, brace) = w.step(|p| {
        p.skip_ws();
        let brace = p.offset();
        if p.need_byte()? != b'{' {
            return Err(Fault::shape(brace, String::new()));
        }
        let open = p.open(b'}')?;
        if open {
            // At the window's end `open` cannot tell an empty object: look at the next byte.
            p.need_byte()?;
        }
        Ok((open, brace))
    })?;
    let mut kb = KnowledgeBase::new();
    if !open {
        return Ok(kb);
    }
    // `open` skipped the whitespace before the first key; the step left it in the window.
    let indent = w.buf[brace + 1..w.start].to_vec();
    let Some(split) = split_point(w, &indent).map_err(Stop::Io)? else {
        entries(w, &mut kb, Role::Alone)?;
        return Ok(kb);
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let (source, end, depth, chunk) = (w.source, w.end, w.depth, w.chunk);
        let spawned = std::thread::Builder::new()
            .stack_size(HELPER_STACK)
            .spawn_scoped(scope, move || {
                let mut second = Window::new(source, split, end, depth, chunk);
                let mut kb = KnowledgeBase::new();
                let ended = entries(&mut second, &mut kb, Role::Second { stop });
                let done = matches!(ended, Ok(Stopped::AtEnd));
                (done.then_some(kb), second.offset(), second.depth)
            });
        let Ok(helper) = spawned else {
            entries(w, &mut kb, Role::Alone)?;
            return Ok(kb);
        };
        let split_usize = usize::try_from(split).unwrap_or(usize::MAX);
        let first = entries(
            w,
            &mut kb,
            Role::First {
                split: split_usize,
                stop,
            },
        );
        if !matches!(first, Ok(Stopped::AtSplit)) {
            stop.store(true, Ordering::Relaxed);
        }
        let (second_kb, offset, depth) = helper.join().unwrap_or((None, 0, 0));
        match (first?, second_kb) {
            (Stopped::AtSplit, Some(second_kb)) => {
                kb.extend(second_kb);
                w.jump(offset, depth);
            }
            (Stopped::AtSplit, None) => {
                entries(w, &mut kb, Role::Alone)?;
            }
            (Stopped::AtEnd | Stopped::GaveUp, _) => {}
        }
        Ok(kb)
    })
}

/// Where a second window could start (see `document::split_point`): the first `},`, then
/// `indent`, then `"` at or after the middle of what is left, looked for in a probe read.
fn split_point<S: Source + ?Sized>(w: &Window<'_, S>, indent: &[u8]) -> io::Result<Option<u64>> {
    let here = w.offset();
    let left = w.end.saturating_sub(here);
    if left < PARALLEL_MIN_BYTES as u64
        || !std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    {
        return Ok(None);
    }
    let middle = here + left / 2;
    let mut probe = vec![0; PROBE];
    let mut filled = 0;
    while filled < PROBE {
        match w
            .source
            .read_at(&mut probe[filled..], middle + filled as u64)?
        {
            0 => break,
            n => filled += n,
        }
    }
    probe.truncate(filled);
    let pattern_len = 2 + indent.len() + 1;
    Ok(probe
        .windows(pattern_len)
        .position(|candidate| {
            candidate.starts_with(b"},")
                && &candidate[2..2 + indent.len()] == indent
                && candidate[pattern_len - 1] == b'"'
        })
        .map(|i| middle + (i + 2 + indent.len()) as u64))
}

/// Reads entries into `kb`, as far as its role says (see `document::entries`). Offsets in
/// the role are source offsets.
fn entries<S: Source + ?Sized>(
    w: &mut Window<'_, S>,
    kb: &mut KnowledgeBase,
    role: Role<'_>,
) -> Result<Stopped, Stop> {
    let mut dimensions = 0;
    loop {
        if w.at_end()? {
            return Err(Stop::Invalid);
        }
        match role {
            Role::First { split, stop } => {
                let here = usize::try_from(w.offset()).unwrap_or(usize::MAX);
                if here == split {
                    return Ok(Stopped::AtSplit);
                }
                if here > split {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Role::Second { stop } if stop.load(Ordering::Relaxed) => return Ok(Stopped::GaveUp),
            _ => {}
        }
        let (key, artifact) = w.step(|p| {
            let key = p.key()?;
            let artifact = artifact(p, dimensions)?;
            Ok((key, artifact))
        })?;
        dimensions = artifact.vector.len();
        kb.insert(key, artifact);
        if !w.step(|p| p.next_item(b'}'))? {
            return Ok(Stopped::AtEnd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture reads the same through windows of any size, down to one byte (a refill
    /// at every step), as it decodes in memory.
    #[test]
    fn windows_of_any_size_read_what_memory_decodes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        for name in [
            "seed_demo",
            "empty",
            "unicode",
            "non_finite",
            "float_forms",
            "unbounded_deque",
            "nested_tags",
            "random_200x32",
        ] {
            let bytes = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
            // Compared as written: NaN is not equal to itself, its text is.
            let expected = crate::to_vec(&Document::decode(&bytes, Some(1000)).unwrap());
            for window in [1, 2, 3, 7, 64, 4096, WINDOW] {
                let got = read_with_window(&bytes[..], Some(1000), window)
                    .unwrap()
                    .map(|d| crate::to_vec(&d));
                assert!(got.as_ref() == Some(&expected), "{name}, window {window}");
            }
            // With a byte order mark.
            let mut with_bom = b"\xef\xbb\xbf".to_vec();
            with_bom.extend_from_slice(&bytes);
            let got = read_with_window(&with_bom[..], Some(1000), 5)
                .unwrap()
                .map(|d| crate::to_vec(&d));
            assert!(
                got.as_ref() == Some(&expected),
                "{name}, with a byte order mark"
            );
        }
    }

    /// The windowed two-thread read must actually find where to split (the equality tests
    /// pass just as well on one thread): from the knowledge base's first key, as
    /// `read_knowledge_base` looks for it.
    #[test]
    // `Parser::key` has a fixed lifetime; the step's is not (as in `read_top`).
    #[allow(clippy::redundant_closure_for_method_calls)]
    fn a_large_knowledge_base_has_a_split_point_in_the_file() {
        let two_threads = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let mut doc = Document::default();
        for i in 0..3000_i32 {
            let vector = (0..100).map(|j| f64::from(i * 100 + j) / 7.0).collect();
            doc.knowledge_base.insert(
                format!("k{i}"),
                penin_artifacts::NumericVectorArtifact::new(vector),
            );
        }
        for style in [crate::Style::Pretty, crate::Style::Compact] {
            let bytes = crate::to_vec_styled(&doc, style);
            let mut w = Window::new(&bytes[..], 0, bytes.len() as u64, 0, 4096);
            w.refill().unwrap();
            assert!(matches!(w.step(|p| p.open(b'}')), Ok(true)));
            assert!(matches!(
                w.step(|p| p.key()).as_deref(),
                Ok("knowledge_base")
            ));
            let Ok(brace) = w.step(|p| {
                p.skip_ws();
                let brace = p.offset();
                p.open(b'}')?;
                p.need_byte()?;
                Ok(brace)
            }) else {
                panic!("{style:?}: no knowledge base");
            };
            let indent = w.buf[brace + 1..w.start].to_vec();
            let split = split_point(&w, &indent).unwrap();
            if !two_threads {
                assert_eq!(split, None);
                continue;
            }
            let split =
                usize::try_from(split.unwrap_or_else(|| panic!("{style:?}: no split point")))
                    .unwrap();
            assert!(split > bytes.len() / 2, "{style:?}");
            assert!(bytes[split..].starts_with(b"\"k"), "{style:?}");
            assert!(
                std::str::from_utf8(&bytes[..split])
                    .unwrap()
                    .trim_end()
                    .ends_with("},"),
                "{style:?}"
            );
        }
    }

    /// Whatever memory refuses, windows refuse: every truncation and bit flip of a fixture.
    #[test]
    fn windows_refuse_what_memory_refuses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let bytes = std::fs::read(dir.join("nested_tags.json")).unwrap();
        let mut cases: Vec<Vec<u8>> = (0..bytes.len()).map(|cut| bytes[..cut].to_vec()).collect();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            cases.push(flipped);
        }
        cases.push(b"{\"knowledge_base\": {}} x".to_vec());
        cases.push(b"{}".to_vec());
        cases.push(b" { } ".to_vec());
        cases.push(b"[]".to_vec());
        for case in cases {
            let memory = Document::decode(&case, Some(1000))
                .ok()
                .map(|d| crate::to_vec(&d));
            for window in [1, 16, 4096] {
                let windowed = read_with_window(&case[..], Some(1000), window)
                    .unwrap()
                    .map(|d| crate::to_vec(&d));
                assert!(
                    windowed == memory,
                    "{:?}, window {window}",
                    String::from_utf8_lossy(&case)
                );
            }
        }
    }
}
