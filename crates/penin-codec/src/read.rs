//! The reader: JSON as Python's `json` module reads it, with the seed's tags.
//!
//! One pass over the input, recursive descent, over an [`Input`]: the whole input in memory
//! or a window onto a file, with the same code (see `source.rs`). Objects tagged `NumericVectorArtifact` or
//! `deque` become [`Value::Artifact`] and [`Value::Deque`] wherever they are, as the seed's
//! `object_hook` does; every other object, unknown tags included, stays an object.

use std::io;

use penin_artifacts::{
    ARTIFACT_TAG, DEQUE_TAG, Deque, Key, Map, Number, NumericVectorArtifact, Value,
};

use crate::error::Error;
use crate::parallel::{self, Role, Stopped};
use crate::path::{self, Segment};
use crate::source::Input;

/// Deeper nesting is refused rather than risk the stack. Python's own limit is near 1000;
/// state files nest a handful of levels. The recursion's frames are kept small (see
/// `Parser::scalar`) so that this many levels fit in a 1 MiB thread stack, in debug builds too.
pub(crate) const MAX_DEPTH: usize = 512;

/// Arrays this deep or less are read on two threads when they are long: a history's items
/// are at depth 3 (the document, the deque, its items), a value under an extra key at 2.
const PARALLEL_MAX_DEPTH: usize = 3;

/// A float cut by the window's edge after more than this many bytes is left to the general
/// path rather than read again from its start (see [`Parser::plain_float`]).
const FAST_RETRY_MAX: usize = 64;

#[cfg(test)]
thread_local! {
    /// How many times this thread's fast float path read a number again after a refill.
    static FAST_RETRIES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// An array near the top whose items go on past this many bytes is long: the rest of it
/// may be read on two threads. Below, no thread is started and no boundary looked for.
const LONG_LIST: usize = 1 << 20;

/// Python 3.11 refuses to read integers longer than this (`sys.get_int_max_str_digits`), so
/// a longer one could not be shared with the Python tool: refused here too.
pub(crate) const MAX_INTEGER_DIGITS: usize = 4300;

/// A decoding failure on its way out: where, what, and the path as it unwinds.
#[derive(Debug)]
pub(crate) struct Fault {
    offset: usize,
    kind: FaultKind,
    path: Vec<Segment>,
}

#[derive(Debug)]
enum FaultKind {
    Eof,
    Utf8,
    Syntax(String),
    Shape(String),
}

impl Fault {
    /// Adds the segment of the value the fault is inside.
    pub(crate) fn within(mut self, segment: Segment) -> Fault {
        self.path.push(segment);
        self
    }

    pub(crate) fn shape(offset: usize, message: String) -> Fault {
        Fault {
            offset,
            kind: FaultKind::Shape(message),
            path: Vec::new(),
        }
    }

    /// A value-type error from `penin-artifacts`, placed at `offset` (see
    /// [`Parser::artifacts_fault`], which finds the field it names).
    pub(crate) fn from_artifacts(offset: usize, error: &penin_artifacts::Error) -> Fault {
        let (message, spelled) = match error {
            penin_artifacts::Error::Shape {
                path,
                expected,
                found,
            } => (format!("expected {expected}, found {found}"), path.clone()),
            other => (other.to_string(), String::new()),
        };
        let mut fault = Fault::shape(offset, message);
        if !spelled.is_empty() {
            fault.path.push(Segment::Spelled(spelled));
        }
        fault
    }
}

/// The parser's state: its input, the cursor in the input's window, and the nesting depth.
///
/// The grammar outside strings takes ASCII only, and each string is checked to be UTF-8 as
/// it is read, so a window cut anywhere needs no validation of its own: whatever the parser
/// accepts is UTF-8. When it refuses something, [`Parser::error`] checks the whole input
/// first, so that the first invalid byte of a document is the one reported, wherever it is,
/// as Python (which decodes the whole file before parsing it) reports it.
pub(crate) struct Parser<I> {
    input: I,
    /// The cursor, an index into the window.
    pos: usize,
    /// The start of the token being read: a refill keeps the window from here on, so that a
    /// token cut by the window's edge is completed, never read short. At most `pos`.
    mark: usize,
    depth: usize,
    /// A read of the source that failed: the input ends there for the parser, and this is
    /// the error reported.
    failed: Option<io::Error>,
    /// The members of the objects being read, innermost last (see [`Parser::object`]).
    members: Vec<(Key, Value)>,
}

impl<I: Input> Parser<I> {
    /// A parser at the start of `input`, past a byte order mark if it has one (some writers
    /// add it).
    pub(crate) fn new(input: I) -> Self {
        let mut parser = Parser {
            input,
            pos: 0,
            mark: 0,
            depth: 0,
            failed: None,
            members: Vec::new(),
        };
        if parser.available(3) == 3 && bom_len(parser.rest()) == 3 {
            parser.pos = 3;
        }
        parser
    }

    /// A second parser over the same source, at source offset `offset` and this one's
    /// depth, with its own window: it may run on another thread.
    pub(crate) fn fork(&self, offset: usize) -> Parser<I> {
        let input = self.input.fork(offset as u64);
        let pos = offset - to_usize(input.base());
        Parser {
            input,
            pos,
            mark: pos,
            depth: self.depth,
            failed: None,
            members: Vec::new(),
        }
    }

    /// The input, for the tests of what its window holds.
    #[cfg(test)]
    pub(crate) fn input(&self) -> &I {
        &self.input
    }

    /// Continues from where `other`, a fork of this parser, stopped (keeping the members
    /// of the objects this one is inside).
    pub(crate) fn resume_from(&mut self, other: Parser<I>) {
        self.input = other.input;
        self.pos = other.pos;
        self.mark = other.mark;
        self.depth = other.depth;
        self.failed = other.failed;
    }

    /// The window from the cursor on.
    #[inline]
    fn rest(&self) -> &[u8] {
        &self.input.window()[self.pos..]
    }

    /// The cursor, as a source offset.
    pub(crate) fn offset(&self) -> usize {
        to_usize(self.input.base()) + self.pos
    }

    /// The size of the source.
    pub(crate) fn size(&self) -> usize {
        to_usize(self.input.size())
    }

    /// Fills `buf` from source offset `offset`, apart from the window, as far as the source
    /// goes, and says how much (see [`Input::read_full`]).
    pub(crate) fn read_full(&self, buf: &mut [u8], offset: usize) -> io::Result<usize> {
        self.input.read_full(buf, offset as u64)
    }

    /// Moves the window on: keeps it from `mark` and reads more after it. `false` at the end
    /// of the source, or when a read fails (which is remembered and reported).
    #[cold]
    #[inline(never)]
    fn more(&mut self) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let before = self.input.base();
        let read = self.input.refill(self.mark);
        let shift = to_usize(self.input.base() - before);
        self.pos -= shift;
        self.mark -= shift;
        match read {
            Ok(more) => more,
            Err(error) => {
                self.failed = Some(error);
                false
            }
        }
    }

    /// Makes `n` bytes from the cursor available in the window, as far as the source has
    /// them, and says how many are.
    fn available(&mut self, n: usize) -> usize {
        while self.rest().len() < n && self.more() {}
        self.rest().len().min(n)
    }

    /// A read of the source that failed, taken: a parse that ended early because of it,
    /// or that happened to end well anyway, must report it.
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// The byte at the cursor; `None` at the end of the input.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        match self.input.window().get(self.pos) {
            Some(&b) => Some(b),
            None => self.peek_more(),
        }
    }

    #[cold]
    fn peek_more(&mut self) -> Option<u8> {
        while self.rest().is_empty() {
            if !self.more() {
                return None;
            }
        }
        self.rest().first().copied()
    }

    /// The byte at source offset `offset`, anywhere in the input (error path).
    pub(crate) fn byte_at(&self, offset: usize) -> Option<u8> {
        let mut byte = [0];
        matches!(self.read_full(&mut byte, offset), Ok(1)).then_some(byte[0])
    }

    /// The public error for a fault: line and column from its offset, the path spelled out.
    ///
    /// A failed read is reported as such; otherwise the first byte of the input that is not
    /// UTF-8, if there is one, wins over any other fault, as the input is then no text at all.
    /// Both are found by reading the input again through the same source.
    pub(crate) fn error(&mut self, fault: Fault) -> Error {
        if let Some(error) = self.failed.take() {
            return Error::Io(error);
        }
        let invalid = match first_invalid_utf8(self) {
            Ok(invalid) => invalid,
            Err(error) => return Error::Io(error),
        };
        let offset = invalid.unwrap_or(fault.offset);
        let (line, column) = match line_column(self, offset) {
            Ok(position) => position,
            Err(error) => return Error::Io(error),
        };
        if invalid.is_some() {
            return Error::InvalidUtf8 {
                line,
                column,
                offset,
            };
        }
        let path = path::format(&fault.path);
        match fault.kind {
            FaultKind::Eof => Error::Truncated { line, column, path },
            FaultKind::Utf8 => Error::InvalidUtf8 {
                line,
                column,
                offset,
            },
            FaultKind::Syntax(message) => Error::Syntax {
                message,
                line,
                column,
                path,
            },
            FaultKind::Shape(message) => Error::Shape {
                message,
                line,
                column,
                path,
            },
        }
    }

    /// Skips whitespace and reports whether anything but whitespace is left.
    pub(crate) fn has_content(&mut self) -> bool {
        self.skip_ws();
        self.peek().is_some()
    }

    /// After the document: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<(), Fault> {
        self.skip_ws();
        if self.peek().is_some() {
            return Err(self.syntax("unexpected data after the document"));
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        loop {
            self.pos = skip_ws_in(self.input.window(), self.pos);
            // Whitespace ends any token: nothing before the cursor is needed any more.
            self.mark = self.pos;
            if self.pos < self.input.window().len() || !self.more() {
                return;
            }
        }
    }

    fn syntax(&self, message: impl Into<String>) -> Fault {
        self.fault_at(self.pos, FaultKind::Syntax(message.into()))
    }

    /// A fault at `pos`, an index into the window: at or past the window's end, which the
    /// callers only reach at the end of the input, it is an end-of-input fault.
    fn fault_at(&self, pos: usize, kind: FaultKind) -> Fault {
        let kind = if pos >= self.input.window().len() {
            FaultKind::Eof
        } else {
            kind
        };
        Fault {
            offset: to_usize(self.input.base()) + pos,
            kind,
            path: Vec::new(),
        }
    }

    /// An error for the character at the cursor, which is not what `expected` says.
    fn unexpected(&mut self, expected: &str) -> Fault {
        // The whole character, which may be cut by the window's edge.
        self.available(4);
        match char_at(self.rest()) {
            Some(Ok(c)) => self.syntax(format!("expected {expected}, found {}", describe(c))),
            Some(Err(())) => self.fault_at(self.pos, FaultKind::Utf8),
            None => self.fault_at(self.pos, FaultKind::Eof),
        }
    }

    /// Consumes `byte` after optional whitespace, or fails saying what was expected.
    pub(crate) fn expect(&mut self, byte: u8, expected: &str) -> Result<(), Fault> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    pub(crate) fn enter(&mut self) -> Result<(), Fault> {
        if self.depth >= MAX_DEPTH {
            return Err(self.syntax(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Starts an object or array whose opening byte is at the cursor. Returns `false` when
    /// the container is empty (and already closed).
    pub(crate) fn open(&mut self, close: u8) -> Result<bool, Fault> {
        self.enter()?;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.leave();
            return Ok(false);
        }
        Ok(true)
    }

    /// After an item: `,` means another follows (`true`); `close` ends the container.
    pub(crate) fn next_item(&mut self, close: u8) -> Result<bool, Fault> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                self.leave();
                Ok(false)
            }
            _ => Err(self.unexpected(if close == b'}' {
                "',' or '}'"
            } else {
                "',' or ']'"
            })),
        }
    }

    /// An object key and its colon; the cursor then sits before the value.
    pub(crate) fn key(&mut self) -> Result<Key, Fault> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string key"));
        }
        // Keys are short: most are kept inline, without an allocation.
        let key = self.string::<Key>()?;
        self.expect(b':', "':'")?;
        Ok(key)
    }

    /// Any value.
    pub(crate) fn value(&mut self) -> Result<Value, Fault> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            _ => self.scalar(),
        }
    }

    /// A value that is not a container, whose first byte is at the cursor.
    ///
    /// Apart from [`Parser::value`] to keep the frames of the recursion small: the nesting
    /// limit must be reached before a small thread stack (1 MiB) runs out, in debug builds too.
    fn scalar(&mut self) -> Result<Value, Fault> {
        match self.peek() {
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9' | b'N' | b'I') => self.number().map(Value::Number),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, Fault> {
        self.word(word)?;
        Ok(value)
    }

    fn word(&mut self, word: &str) -> Result<(), Fault> {
        self.mark = self.pos;
        let n = self.available(word.len());
        let found = &self.rest()[..n];
        if found == word.as_bytes() {
            self.pos += n;
            Ok(())
        } else if n < word.len() && word.as_bytes().starts_with(found) {
            Err(self.fault_at(self.pos + n, FaultKind::Eof))
        } else {
            Err(self.syntax(format!("invalid literal, expected {word}")))
        }
    }

    fn array(&mut self) -> Result<Value, Fault> {
        let open = self.offset() + 1;
        let mut items = Vec::new();
        if self.open(b']')? {
            if self.depth <= PARALLEL_MAX_DEPTH {
                self.top_items(&mut items, open)?;
            } else {
                self.items(&mut items, Role::Alone)?;
            }
        }
        Ok(Value::Array(items))
    }

    /// The items of an array near the top of the document (a history, a value under an
    /// extra key): read alone until they prove long, and then the rest on two threads when
    /// a boundary between items of the first one's kind is found (see `parallel.rs`). Apart
    /// from [`Parser::array`], whose frame is part of the recursion.
    #[inline(never)]
    fn top_items(&mut self, items: &mut Vec<Value>, open: usize) -> Result<(), Fault> {
        const DIGITS: &[u8] = b"0123456789";
        self.skip_ws();
        let first = self.offset();
        // What ends an item of this kind, and what starts one; items of another kind
        // (literals) have no boundary to look for.
        let pattern: (&[u8], &[u8]) = match self.peek() {
            Some(b'{') => (b"}", b"{"),
            Some(b'[') => (b"]", b"["),
            Some(b'"') => (b"\"", b"\""),
            Some(b'-' | b'0'..=b'9') => (DIGITS, b"-0123456789"),
            _ => {
                self.items(items, Role::Alone)?;
                return Ok(());
            }
        };
        if matches!(
            self.items(items, Role::Until(first + LONG_LIST))?,
            Stopped::AtEnd
        ) {
            return Ok(());
        }
        parallel::read_list(self, items, (open, first), pattern, &Items)
    }

    /// The items of an array whose `[` was read, as far as `role` says (to its `]` unless
    /// it is the first of two parsers).
    pub(crate) fn items(
        &mut self,
        items: &mut Vec<Value>,
        role: Role<'_>,
    ) -> Result<Stopped, Fault> {
        loop {
            self.float_items(items, role.limit());
            self.skip_ws();
            if let Some(stopped) = role.stops_at(self.offset()) {
                return Ok(stopped);
            }
            let item = self
                .value()
                .map_err(|f| f.within(Segment::Index(items.len())))?;
            items.push(item);
            if !self.next_item(b']')? {
                return Ok(Stopped::AtEnd);
            }
        }
    }

    /// Plain floats of an array, fast (see [`Parser::plain_floats`]); apart from
    /// [`Parser::items`], whose frame is part of the recursion.
    #[inline(never)]
    fn float_items(&mut self, items: &mut Vec<Value>, limit: usize) {
        self.plain_floats(items, |f| Value::Number(Number::Float(f)), limit);
    }

    /// A value at the top of the input: an object that is not tagged is given as its map,
    /// any other value as itself (a tagged object as what its tag makes).
    pub(crate) fn object_or_value(&mut self) -> Result<Result<Map, Value>, Fault> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return self.value().map(Err);
        }
        let start = self.offset();
        let map = self.object_map()?;
        if tag_of(&map).is_some() {
            return self.tagged(map, start).map(Err);
        }
        Ok(Ok(map))
    }

    /// Puts `members` (empty, with room) to use as this parser's stack of members.
    pub(crate) fn lend_members(&mut self, members: Vec<(Key, Value)>) {
        self.members = members;
    }

    /// The stack of members, emptied, to be lent to the next parser.
    pub(crate) fn take_members(&mut self) -> Vec<(Key, Value)> {
        let mut members = std::mem::take(&mut self.members);
        members.clear();
        members
    }

    fn object(&mut self) -> Result<Value, Fault> {
        let start = self.offset();
        let map = self.object_map()?;
        // The conversion lives in its own function so that its temporaries stay out of
        // the recursion's frames (see `scalar`).
        self.tagged(map, start)
    }

    /// The map of the object whose `{` is at the cursor, untagged. Inlined into its callers,
    /// as it was written in [`Parser::object`] before: its frame would add to the recursion's.
    #[allow(clippy::inline_always)] // so that the recursion's frames stay as they were
    #[inline(always)]
    fn object_map(&mut self) -> Result<Map, Fault> {
        // The members go on the parser's stack first (nested objects above them), so that
        // the map is built once, with its exact size.
        let base = self.members.len();
        let read = self.members_of_object(base);
        let members = self.members.drain(base..);
        read?;
        let mut map = Map::with_capacity(members.len());
        // As a dict is built: a repeated key keeps its first place and its last value.
        map.extend(members);
        Ok(map)
    }

    /// The members of the object whose `{` is at the cursor, pushed on the stack of members
    /// above `base`.
    fn members_of_object(&mut self, base: usize) -> Result<(), Fault> {
        if self.open(b'}')? {
            loop {
                let key = self.key()?;
                match self.value() {
                    Ok(value) => self.members.push((key, value)),
                    Err(fault) => return Err(within_object(fault, &self.members[base..], key)),
                }
                if !self.next_item(b'}')? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The seed's `object_hook` for the object read at `start`: a tagged object becomes an
    /// artifact or a deque; any other object, unknown tags included, stays an object.
    fn tagged(&self, map: Map, start: usize) -> Result<Value, Fault> {
        match tag_of(&map) {
            Some(Tag::Artifact) => NumericVectorArtifact::from_dict(map)
                .map(Value::from)
                .map_err(|e| self.artifacts_fault(start, &e)),
            Some(Tag::Deque) => Deque::<Value>::from_dict(map)
                .map(Value::from)
                .map_err(|e| self.artifacts_fault(start, &e)),
            None => Ok(Value::from(map)),
        }
    }

    /// A value-type error from `penin-artifacts` about the object read at `start`, placed at
    /// the field it names (`vector[3]`, `maxlen`) when the object has it, else at the object.
    pub(crate) fn artifacts_fault(&self, start: usize, error: &penin_artifacts::Error) -> Fault {
        let at = match error {
            penin_artifacts::Error::Shape { path, .. } => self.locate(start, path).unwrap_or(start),
            _ => start,
        };
        Fault::from_artifacts(at, error)
    }

    /// Error path only: the offset of the value at `path` (`items`, `vector[3]`, `[2]`,
    /// or empty for the value itself) inside the value read at `offset`, found by reading
    /// that part of the input again. Of duplicate keys the last counts, as in the reader.
    pub(crate) fn locate(&self, offset: usize, path: &str) -> Option<usize> {
        let (name, mut rest) = path.split_at(path.find('[').unwrap_or(path.len()));
        let mut at = offset;
        if !name.is_empty() {
            let members = self.members(at)?;
            at = members
                .iter()
                .rev()
                .find(|(key, _)| key.as_deref() == Some(name))?
                .1;
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let index: usize = inner[..end].parse().ok()?;
            let members = self.members(at)?;
            at = members.get(index).filter(|(key, _)| key.is_none())?.1;
            rest = &inner[end + 1..];
        }
        rest.is_empty().then_some(at)
    }

    /// Error path only: the number of items of the array read at `offset`.
    pub(crate) fn count_items(&self, offset: usize) -> Option<usize> {
        let members = self.members(offset)?;
        members
            .iter()
            .all(|(key, _)| key.is_none())
            .then_some(members.len())
    }

    /// Error path only: the keys (`None` in an array) and value offsets of the object or
    /// array read at `offset`, which the reader has already accepted.
    fn members(&self, offset: usize) -> Option<Vec<(Option<Key>, usize)>> {
        let mut p = self.fork(offset);
        p.depth = 0;
        let close = match p.peek()? {
            b'{' => b'}',
            b'[' => b']',
            _ => return None,
        };
        let mut members = Vec::new();
        if p.open(close).ok()? {
            loop {
                let key = if close == b'}' {
                    Some(p.key().ok()?)
                } else {
                    None
                };
                p.skip_ws();
                members.push((key, p.offset()));
                p.value().ok()?;
                if !p.next_item(close).ok()? {
                    break;
                }
            }
        }
        Some(members)
    }

    /// A string whose opening quote is at the cursor, made into a `T` straight from the
    /// window when it is there whole, without escapes (the usual case).
    fn string<T: for<'t> From<&'t str> + From<String>>(&mut self) -> Result<T, Fault> {
        self.pos += 1;
        // Fast path: the whole string is in the window, without escapes.
        let rest = self.rest();
        if let Some(end) = rest.iter().position(|&b| STRING_STOP[usize::from(b)])
            && rest[end] == b'"'
        {
            return match std::str::from_utf8(&rest[..end]) {
                Ok(text) => {
                    let text = T::from(text);
                    self.pos += end + 1;
                    Ok(text)
                }
                Err(e) => Err(self.fault_at(self.pos + e.valid_up_to(), FaultKind::Utf8)),
            };
        }
        self.string_in_pieces().map(T::from)
    }

    /// A string with escapes, or one that the window's edge cuts: read a run at a time into
    /// the result, so the window holds only what is not read yet, however long the string.
    fn string_in_pieces(&mut self) -> Result<String, Fault> {
        let mut out = String::new();
        loop {
            self.mark = self.pos;
            let rest = self.rest();
            let run = rest
                .iter()
                .position(|&b| STRING_STOP[usize::from(b)])
                .unwrap_or(rest.len());
            match std::str::from_utf8(&rest[..run]) {
                Ok(text) => {
                    out.push_str(text);
                    self.pos += run;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix up to `valid_up_to` is UTF-8, as the error says.
                    out.push_str(std::str::from_utf8(&rest[..valid]).unwrap_or_default());
                    let cut = e.error_len().is_none() && run == rest.len();
                    self.pos += valid;
                    // A character cut by the window's edge is completed from the next window.
                    if cut {
                        self.mark = self.pos;
                        if self.more() {
                            continue;
                        }
                    }
                    return Err(self.fault_at(self.pos, FaultKind::Utf8));
                }
            }
            // What is read is in `out`: the window need not keep it.
            self.mark = self.pos;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(b) if b < 0x20 => return Err(self.control_character(b)),
                // The window moved on: the string goes on in the next one.
                Some(_) => {}
                None => return Err(self.fault_at(self.pos, FaultKind::Eof)),
            }
        }
    }

    fn control_character(&self, b: u8) -> Fault {
        self.syntax(format!(
            "control character U+{b:04X} in a string (write it as \\u{b:04x})"
        ))
    }

    /// An escape whose backslash is at the cursor.
    fn escape(&mut self, out: &mut String) -> Result<(), Fault> {
        // The longest escape, a surrogate pair (`\ud83d\ude00`), in the window at once.
        self.mark = self.pos;
        self.available(12);
        let at = self.pos;
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(self.fault_at(self.pos, FaultKind::Eof));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                if (0xD800..0xDC00).contains(&high) {
                    if self.ends_inside_escape() {
                        return Err(self.fault_at(self.input.window().len(), FaultKind::Eof));
                    }
                    if self.rest().get(..2) == Some(b"\\u") {
                        self.pos += 2;
                        let low = self.hex4()?;
                        if (0xDC00..0xE000).contains(&low) {
                            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                            char::from_u32(code).ok_or_else(|| self.lone_surrogate(at, high))?
                        } else {
                            return Err(self.lone_surrogate(at, high));
                        }
                    } else {
                        return Err(self.lone_surrogate(at, high));
                    }
                } else {
                    char::from_u32(high).ok_or_else(|| self.lone_surrogate(at, high))?
                }
            }
            _ => {
                self.pos = at;
                // Name the character, not its first byte: the backslash is ASCII, so a
                // character starts right after it.
                let c = char_at(&self.rest()[1..])
                    .and_then(Result::ok)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(self.syntax(format!("invalid escape \\{}", describe(c))));
            }
        };
        out.push(c);
        Ok(())
    }

    /// Whether the input ends within what could be a `\\uXXXX` escape: the low half of a
    /// surrogate pair cut off is a truncation, not a lone surrogate. (The window holds the
    /// whole escape from its backslash on, if the input does.)
    fn ends_inside_escape(&self) -> bool {
        let rest = self.rest();
        rest.len() < 6
            && rest.iter().enumerate().all(|(i, &b)| match i {
                0 => b == b'\\',
                1 => b == b'u',
                _ => b.is_ascii_hexdigit(),
            })
    }

    fn lone_surrogate(&self, at: usize, code: u32) -> Fault {
        self.fault_at(
            at,
            FaultKind::Syntax(format!(
                "lone surrogate \\u{code:04x}: not a character, cannot be kept in UTF-8"
            )),
        )
    }

    fn hex4(&mut self) -> Result<u32, Fault> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                Some(_) => return Err(self.unexpected("a hexadecimal digit of a \\u escape")),
                None => return Err(self.fault_at(self.pos, FaultKind::Eof)),
            };
            code = code * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(code)
    }

    /// A number, or one of Python's `NaN`, `Infinity` and `-Infinity`.
    pub(crate) fn number(&mut self) -> Result<Number, Fault> {
        if let Some(float) = self.plain_float() {
            return Ok(Number::Float(float));
        }
        if let Some(int) = self.plain_int() {
            return Ok(Number::Int(int));
        }
        // Scanned first, then read from the window as text: the refills on the way keep the
        // window from `mark`, the number's start.
        self.mark = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'I') => {
                self.word("Infinity")?;
                return Ok(Number::Float(if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }));
            }
            Some(b'N') if !negative => {
                self.word("NaN")?;
                return Ok(Number::Float(f64::NAN));
            }
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.syntax("a number cannot have a leading zero"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        let int_len = self.pos - self.mark;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
            self.digits();
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
            float = true;
        }
        let start = self.mark;
        let int_end = start + int_len;
        let digits = int_len - usize::from(negative);
        let bytes = self.input.window();
        if !float && digits <= 18 {
            return Ok(Number::Int(int_value(&bytes[start..int_end])));
        }
        // Only ASCII digits, signs, points and exponents were scanned.
        let text = std::str::from_utf8(&bytes[start..self.pos]).unwrap_or_default();
        if float {
            // Rust's parser rounds correctly, as Python's does; beyond the range it gives
            // the infinities, as Python's `float()` does.
            return fast_float2::parse::<f64, _>(text)
                .map(Number::Float)
                .map_err(|_| {
                    self.fault_at(start, FaultKind::Syntax(format!("invalid number {text}")))
                });
        }
        if digits > MAX_INTEGER_DIGITS {
            return Err(self.fault_at(
                start,
                FaultKind::Syntax(format!(
                    "integer of {digits} digits: more than the {MAX_INTEGER_DIGITS} Python reads"
                )),
            ));
        }
        Number::parse_integer(text)
            .map_err(|e| self.fault_at(start, FaultKind::Syntax(e.to_string())))
    }

    /// The other common case, fast: an integer of at most 18 digits that the window holds
    /// whole, with no leading zero, followed by something that cannot continue a number.
    /// Anything else is left to the general path (`None`, nothing consumed).
    fn plain_int(&mut self) -> Option<i64> {
        let rest = self.rest();
        let sign = usize::from(rest.first() == Some(&b'-'));
        let digits = rest[sign.min(rest.len())..]
            .iter()
            .take(19)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = sign + digits;
        let ok = match (rest.get(sign), rest.get(end)) {
            // No digit, a leading zero, too long, or the window's edge: the general path.
            (None | Some(b'0'), _) if digits != 1 => false,
            (_, None | Some(b'.' | b'e' | b'E' | b'0'..=b'9')) => false,
            _ => digits > 0 && digits <= 18,
        };
        if !ok {
            return None;
        }
        let value = int_value(&rest[..end]);
        self.pos += end;
        Some(value)
    }

    /// The common case, fast: a float with one integer digit (`-0.24580338977940386`,
    /// `3.5e-07`), as embeddings are. fast-float reads it in one pass (Eisel-Lemire with a
    /// fallback: correctly rounded, as Python's `float()`); JSON's grammar is the same as
    /// fast-float's from the first digit on. Anything else — integers, other floats, Python's
    /// tokens, errors — is left to [`Parser::number`]'s general path (`None`, nothing consumed).
    /// A number that reaches the window's edge is read again once the window holds more.
    pub(crate) fn plain_float(&mut self) -> Option<f64> {
        loop {
            let rest = self.rest();
            // What was found, and whether the window's edge cut it.
            let (found, cut) = match starts_plain(rest) {
                Some(true) => {
                    let (value, len) = fast_float2::parse_partial::<f64, _>(rest).ok()?;
                    match rest.get(len) {
                        // A dangling exponent or point, or more digits, is the general
                        // path's to report.
                        Some(b'e' | b'E' | b'.' | b'0'..=b'9') => return None,
                        next => (Some((value, len)), next.is_none()),
                    }
                }
                Some(false) => return None,
                None => (None, true),
            };
            if cut {
                // The window's edge cuts the number: it runs to the edge. A short one is read
                // again once the window holds more; a long one is the general path's, which
                // reads on through refills in one pass (reading it again from its start
                // after every refill would be quadratic in its length).
                if self.rest().len() > FAST_RETRY_MAX {
                    return None;
                }
                #[cfg(test)]
                FAST_RETRIES.with(|n| n.set(n.get() + 1));
                if self.more_for_token() {
                    continue;
                }
            }
            let (value, len) = found?;
            self.pos += len;
            return Some(value);
        }
    }

    /// The hot loop of a knowledge base (and of any array of floats): reads elements of an
    /// array, each with the comma after it, while they are plain floats (see
    /// [`Parser::plain_float`]) held whole by the window, straight from the window, into
    /// `out` as `wrap` makes them. It stops before the first element that is
    /// anything else, is followed by anything but a comma, or reaches the window's edge,
    /// consuming nothing of it: the caller reads that one with every check, so what is
    /// accepted, and every error, is the careful path's.
    /// It also stops before an element that starts at or after the source offset `limit`.
    #[inline]
    pub(crate) fn plain_floats<T>(
        &mut self,
        out: &mut Vec<T>,
        wrap: impl Fn(f64) -> T,
        limit: usize,
    ) {
        let window = self.input.window();
        let base = to_usize(self.input.base());
        let mut pos = self.pos;
        loop {
            let at = skip_ws_in(window, pos);
            if base + at >= limit {
                break;
            }
            let rest = &window[at.min(window.len())..];
            if starts_plain(rest) != Some(true) {
                break;
            }
            let Ok((value, len)) = fast_float2::parse_partial::<f64, _>(rest) else {
                break;
            };
            let at = skip_ws_in(window, at + len);
            // A comma ends the element: no digit, point or exponent continues it, and
            // the window holds it whole.
            if window.get(at) != Some(&b',') {
                break;
            }
            out.push(wrap(value));
            pos = at + 1;
        }
        self.pos = pos;
    }

    /// Reads more, keeping the token that starts at the cursor; `false` at the end.
    #[cold]
    fn more_for_token(&mut self) -> bool {
        self.mark = self.pos;
        self.more()
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// Whether `rest` starts like a float of the form `-?D.D…` (see [`Parser::plain_float`]);
/// `None` when it is too short to tell.
#[inline]
fn starts_plain(rest: &[u8]) -> Option<bool> {
    let sign = usize::from(rest.first() == Some(&b'-'));
    rest.get(sign..sign + 3).map(|start| {
        matches!(start, [digit, b'.', fraction]
            if digit.is_ascii_digit() && fraction.is_ascii_digit())
    })
}

/// The bytes that end a run of a string's plain text: the closing quote, a backslash and
/// the control characters, which JSON forbids unescaped.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The index of the first byte at or after `at` in `window` that is not whitespace (or the
/// window's length).
#[inline]
fn skip_ws_in(window: &[u8], mut at: usize) -> usize {
    loop {
        // Python's layout indents with runs of spaces: take them eight at a time.
        if window.get(at..at + 8) == Some(b"        ") {
            at += 8;
            continue;
        }
        match window.get(at) {
            Some(b' ' | b'\n' | b'\r' | b'\t') => at += 1,
            _ => return at,
        }
    }
}

/// The value of `-?[0-9]{1,18}`, which an `i64` always holds.
pub(crate) fn int_value(text: &[u8]) -> i64 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, text),
    };
    let magnitude = digits
        .iter()
        .fold(0_i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    if negative { -magnitude } else { magnitude }
}

/// A source offset in memory's terms. Offsets past the address space cannot be reached: a
/// window holding them could not be allocated.
fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// Error path only: the offset of the first byte of the input that is not UTF-8, read in
/// pieces through the parser's source.
fn first_invalid_utf8<I: Input>(p: &Parser<I>) -> io::Result<Option<usize>> {
    let size = p.size();
    let mut buf = vec![0; SCAN_CHUNK.min(size)];
    // `carried` bytes at the start of `buf` are an unfinished character from the last piece.
    let (mut at, mut carried) = (0, 0);
    while at < size {
        let n = p.read_full(&mut buf[carried..], at)?;
        if n == 0 {
            break;
        }
        let piece = &buf[..carried + n];
        let start = at - carried;
        at += n;
        match std::str::from_utf8(piece) {
            Ok(_) => carried = 0,
            Err(e) if e.error_len().is_none() && at < size => {
                let valid = e.valid_up_to();
                carried = piece.len() - valid;
                buf.copy_within(valid..valid + carried, 0);
            }
            Err(e) => return Ok(Some(start + e.valid_up_to())),
        }
    }
    Ok((carried > 0).then_some(at - carried))
}

/// How much of the input the error path reads at a time.
const SCAN_CHUNK: usize = 64 << 10;

/// Error path only: the 1-based line and column (in characters) of source offset `offset`,
/// read in pieces through the parser's source.
pub(crate) fn line_column<I: Input>(p: &Parser<I>, offset: usize) -> io::Result<(usize, usize)> {
    let offset = offset.min(p.size());
    let mut buf = vec![0; SCAN_CHUNK.min(offset)];
    let (mut line, mut column, mut at) = (1, 1, 0);
    while at < offset {
        let want = buf.len().min(offset - at);
        let n = p.read_full(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Every byte but UTF-8 continuation bytes starts a character.
                column += 1;
            }
        }
        at += n;
    }
    // A byte order mark is no character a reader sees: the first line's columns start after it.
    let mut head = [0; 3];
    if line == 1 && offset >= 3 && p.read_full(&mut head, 0)? == 3 && bom_len(&head) == 3 {
        column -= 1;
    }
    Ok((line, column))
}

/// A fault inside the value of `key`: a field of a tagged object (`.items`) or a key of a
/// free-form one (`["k"]`).
fn within_object(fault: Fault, members: &[(Key, Value)], key: Key) -> Fault {
    // The object's tag so far, as the dict would hold it: the last `__type__` counts.
    let tag = members
        .iter()
        .rev()
        .find(|(k, _)| k == "__type__")
        .and_then(|(_, v)| tag_named(v.as_str()?));
    let segment = if tag.is_some() {
        Segment::Spelled(key.into())
    } else {
        Segment::Key(key.into())
    };
    fault.within(segment)
}

/// The length of a UTF-8 byte order mark at the start of `bytes`: 3, or 0 without one.
fn bom_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    }
}

/// The character `rest` starts with: `None` if it is empty, `Err` where the bytes are not
/// UTF-8.
fn char_at(rest: &[u8]) -> Option<Result<char, ()>> {
    let first = *rest.first()?;
    let len = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return Some(Err(())),
    };
    Some(
        rest.get(..len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.chars().next())
            .ok_or(()),
    )
}

/// Which known tag an object carries, as the seed's hook sees it: `d.get("__type__")`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Artifact,
    Deque,
}

pub(crate) fn tag_of(map: &Map) -> Option<Tag> {
    tag_named(map.get("__type__")?.as_str()?)
}

fn tag_named(tag: &str) -> Option<Tag> {
    match tag {
        ARTIFACT_TAG => Some(Tag::Artifact),
        DEQUE_TAG => Some(Tag::Deque),
        _ => None,
    }
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("'{c}'")
    }
}

/// The items of an array, for [`parallel::read_list`].
struct Items;

impl<I: Input> parallel::Read<I, Vec<Value>> for Items {
    fn read(
        &self,
        p: &mut Parser<I>,
        items: &mut Vec<Value>,
        role: Role<'_>,
    ) -> Result<Stopped, Fault> {
        p.items(items, role)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use crate::source::Whole;

    /// The fast path for floats reads exactly what Rust's own (correctly rounded) parser
    /// reads, on forms it takes and forms it leaves to the general path: long mantissas
    /// (past fast-float's 19-digit fast case), exponents, halfway cases, signs.
    /// A float longer than the window is read once, not again from its start after every
    /// refill (the second read of the change found 4 MiB of digits took 3.7 s through 4 KiB
    /// windows, against 13 ms in memory): the fast path tries again at most once, and the
    /// result is the whole input's.
    #[test]
    fn a_float_longer_than_the_window_is_read_once() {
        use crate::source::Windowed;
        for (digits, windows) in [
            (10, &[1, 7, 64, 4096][..]),
            (100, &[1, 7, 64, 4096][..]),
            (1 << 20, &[4096][..]),
        ] {
            let mut input = b"[1.".to_vec();
            input.extend(std::iter::repeat_n(b'0', digits));
            input.extend_from_slice(b"1e-3, 2.5]");
            let whole = Parser::new(Whole::new(&input)).value().unwrap();
            for &window in windows {
                let before = FAST_RETRIES.with(std::cell::Cell::get);
                let source = Windowed::new(&input[..], 0, input.len() as u64, window);
                let got = Parser::new(source).value().unwrap();
                let retries = FAST_RETRIES.with(std::cell::Cell::get) - before;
                assert_eq!(got, whole, "{digits} digits, window {window}");
                // Once the window holds more than a short float, each float is read again
                // at most once: two here.
                if window == 4096 {
                    assert!(retries <= 2, "{digits} digits, window {window}: {retries}");
                }
            }
        }
    }

    #[test]
    fn fast_floats_read_as_the_correctly_rounded_parser_reads() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let mut text = String::new();
            if next() % 2 == 0 {
                text.push('-');
            }
            text.push(char::from(b'0' + (next() % 10) as u8));
            text.push('.');
            for _ in 0..=(next() % 28) {
                text.push(char::from(b'0' + (next() % 10) as u8));
            }
            match next() % 4 {
                0 => write!(text, "e-{}", next() % 330).unwrap(),
                1 => write!(text, "E+{}", next() % 320).unwrap(),
                _ => {}
            }
            let input = format!("{text},");
            let mut parser = Parser::new(Whole::new(input.as_bytes()));
            let Number::Float(got) = parser.number().unwrap() else {
                panic!("{text} is a float");
            };
            let expected: f64 = text.parse().unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
            assert_eq!(parser.offset(), text.len(), "{text}");
        }
    }

    #[test]
    fn malformed_floats_take_the_general_path_and_its_errors() {
        let rows: &[(&str, &str)] = &[
            (
                "1.e5",
                "expected a digit after the decimal point, found 'e' at line 1, column 3",
            ),
            ("1.5e", "unexpected end of input at line 1, column 5"),
            (
                "1.5e+x",
                "expected a digit in the exponent, found 'x' at line 1, column 6",
            ),
            ("-.5", "expected a digit, found '.' at line 1, column 2"),
            (
                "01.5",
                "a number cannot have a leading zero at line 1, column 2",
            ),
        ];
        for (input, message) in rows {
            let mut parser = Parser::new(Whole::new(input.as_bytes()));
            let fault = parser.number().unwrap_err();
            assert_eq!(parser.error(fault).to_string(), *message, "{input}");
        }
    }
}
