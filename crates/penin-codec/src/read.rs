//! The reader: JSON as Python's `json` module reads it, with the seed's tags.
//!
//! One pass over the input, recursive descent. Objects tagged `NumericVectorArtifact` or
//! `deque` become [`Value::Artifact`] and [`Value::Deque`] wherever they are, as the seed's
//! `object_hook` does; every other object, unknown tags included, stays an object.

use penin_artifacts::{ARTIFACT_TAG, DEQUE_TAG, Deque, Map, Number, NumericVectorArtifact, Value};

use crate::error::Error;
use crate::path::{self, Segment};

/// Deeper nesting is refused rather than risk the stack. Python's own limit is near 1000;
/// state files nest a handful of levels. The recursion's frames are kept small (see
/// `Parser::scalar`) so that this many levels fit in a 1 MiB thread stack, in debug builds too.
pub(crate) const MAX_DEPTH: usize = 512;

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
    /// Whether the input ended before the value did: with more input, it might read.
    pub(crate) fn is_eof(&self) -> bool {
        matches!(self.kind, FaultKind::Eof)
    }

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

/// The parser's state: the input (the whole document, or a window of it) and the cursor.
///
/// Outside strings the grammar takes ASCII only; each string is checked to be UTF-8 as it
/// is read, so a window cut anywhere needs no validation of its own. [`Parser::new`] still
/// checks the whole input first, so that the first invalid byte of a document is the one
/// reported, wherever it is.
pub(crate) struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    /// Checks the input is UTF-8 and skips a byte order mark, which some writers add.
    pub(crate) fn new(input: &'a [u8]) -> Result<Parser<'a>, Error> {
        std::str::from_utf8(input).map_err(|e| {
            let offset = e.valid_up_to();
            let (line, column) = line_column(input, offset);
            Error::InvalidUtf8 {
                line,
                column,
                offset,
            }
        })?;
        Ok(Parser::window(input, bom_len(input), 0))
    }

    /// A parser over `bytes`, a window of a document whose UTF-8 is checked string by
    /// string, at `pos` and nesting `depth`.
    pub(crate) fn window(bytes: &'a [u8], pos: usize, depth: usize) -> Parser<'a> {
        Parser { bytes, pos, depth }
    }

    /// The nesting depth at the cursor.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Skips whitespace and reports whether anything but whitespace is left.
    pub(crate) fn has_content(&mut self) -> bool {
        self.skip_ws();
        self.pos < self.bytes.len()
    }

    /// A second parser over the same input, at `offset` and at this one's depth: it may run
    /// on another thread (the input is shared, not copied).
    pub(crate) fn fork(&self, offset: usize) -> Parser<'a> {
        Parser {
            bytes: self.bytes,
            pos: offset,
            depth: self.depth,
        }
    }

    /// Continues from where `other`, a fork of this parser, stopped.
    pub(crate) fn resume_from(&mut self, other: &Parser<'a>) {
        self.pos = other.pos;
        self.depth = other.depth;
    }

    /// The whole input.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The byte at the cursor, or an end-of-input fault.
    pub(crate) fn need_byte(&self) -> Result<u8, Fault> {
        self.peek()
            .ok_or_else(|| self.fault_at(self.pos, FaultKind::Eof))
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The byte at `offset`, anywhere in the input.
    pub(crate) fn byte_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(offset).copied()
    }

    /// The public error for a fault: line and column from its offset, the path spelled out.
    pub(crate) fn error(&self, fault: Fault) -> Error {
        let (line, column) = line_column(self.bytes, fault.offset);
        let path = path::format(&fault.path);
        match fault.kind {
            FaultKind::Eof => Error::Truncated { line, column, path },
            FaultKind::Utf8 => Error::InvalidUtf8 {
                line,
                column,
                offset: fault.offset,
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

    /// After the document: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<(), Fault> {
        self.skip_ws();
        if self.pos < self.bytes.len() {
            return Err(self.syntax("unexpected data after the document"));
        }
        Ok(())
    }

    pub(crate) fn skip_ws(&mut self) {
        loop {
            // Python's layout indents with runs of spaces: take them eight at a time.
            if self.bytes.get(self.pos..self.pos + 8) == Some(b"        ") {
                self.pos += 8;
                continue;
            }
            match self.peek() {
                Some(b' ' | b'\n' | b'\r' | b'\t') => self.pos += 1,
                _ => return,
            }
        }
    }

    fn syntax(&self, message: impl Into<String>) -> Fault {
        self.fault_at(self.pos, FaultKind::Syntax(message.into()))
    }

    fn fault_at(&self, offset: usize, kind: FaultKind) -> Fault {
        let kind = if offset >= self.bytes.len() {
            FaultKind::Eof
        } else {
            kind
        };
        Fault {
            offset,
            kind,
            path: Vec::new(),
        }
    }

    /// An error for the byte at the cursor, which is not what `expected` says.
    fn unexpected(&self, expected: &str) -> Fault {
        match char_at(self.bytes, self.pos) {
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
    pub(crate) fn key(&mut self) -> Result<String, Fault> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string key"));
        }
        let key = self.string()?;
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
        let end = self.pos + word.len();
        match self.bytes.get(self.pos..end) {
            Some(found) if found == word.as_bytes() => {
                self.pos = end;
                Ok(())
            }
            None if word.as_bytes().starts_with(&self.bytes[self.pos..]) => {
                Err(self.fault_at(self.bytes.len(), FaultKind::Eof))
            }
            _ => Err(self.syntax(format!("invalid literal, expected {word}"))),
        }
    }

    fn array(&mut self) -> Result<Value, Fault> {
        let mut items = Vec::new();
        if self.open(b']')? {
            loop {
                let item = self
                    .value()
                    .map_err(|f| f.within(Segment::Index(items.len())))?;
                items.push(item);
                if !self.next_item(b']')? {
                    break;
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Value, Fault> {
        let start = self.pos;
        let mut map = Map::new();
        if self.open(b'}')? {
            loop {
                let key = self.key()?;
                match self.value() {
                    Ok(value) => {
                        map.insert(key, value);
                    }
                    Err(fault) => return Err(within_object(fault, &map, key)),
                }
                if !self.next_item(b'}')? {
                    break;
                }
            }
        }
        // The conversion lives in its own function so that its temporaries stay out of
        // the recursion's frames (see `scalar`).
        self.tagged(map, start)
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
    fn members(&self, offset: usize) -> Option<Vec<(Option<String>, usize)>> {
        let mut p = Parser::window(self.bytes, offset, 0);
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
                members.push((key, p.pos));
                p.value().ok()?;
                if !p.next_item(close).ok()? {
                    break;
                }
            }
        }
        Some(members)
    }

    /// A string whose opening quote is at the cursor.
    pub(crate) fn string(&mut self) -> Result<String, Fault> {
        self.pos += 1;
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                Some(b'"') => {
                    let s = self.utf8(start)?.to_owned();
                    self.pos += 1;
                    return Ok(s);
                }
                Some(b'\\') => break,
                Some(b) if b < 0x20 => return Err(self.control_character(b)),
                Some(_) => self.pos += 1,
                None => return Err(self.fault_at(self.pos, FaultKind::Eof)),
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(self.utf8(start)?);
        loop {
            let run = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.utf8(run)?);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(b) => return Err(self.control_character(b)),
                None => return Err(self.fault_at(self.pos, FaultKind::Eof)),
            }
        }
    }

    /// The text from `start` to the cursor, inside a string: UTF-8, or an error at its
    /// first invalid byte.
    fn utf8(&self, start: usize) -> Result<&'a str, Fault> {
        std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|e| self.fault_at(start + e.valid_up_to(), FaultKind::Utf8))
    }

    fn control_character(&self, b: u8) -> Fault {
        self.syntax(format!(
            "control character U+{b:04X} in a string (write it as \\u{b:04x})"
        ))
    }

    /// An escape whose backslash is at the cursor.
    fn escape(&mut self, out: &mut String) -> Result<(), Fault> {
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
                        return Err(self.fault_at(self.bytes.len(), FaultKind::Eof));
                    }
                    if self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u") {
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
                let c = char_at(self.bytes, at + 1)
                    .and_then(Result::ok)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(self.syntax(format!("invalid escape \\{}", describe(c))));
            }
        };
        out.push(c);
        Ok(())
    }

    /// Whether the input ends within what could be a `\\uXXXX` escape: the low half of a
    /// surrogate pair cut off is a truncation, not a lone surrogate.
    fn ends_inside_escape(&self) -> bool {
        let rest = &self.bytes[self.pos..];
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
        let start = self.pos;
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
        let int_end = self.pos;
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
        // Only ASCII digits, signs, points and exponents were scanned.
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        if float {
            // Rust's parser rounds correctly, as Python's does; beyond the range it gives
            // the infinities, as Python's `float()` does.
            return fast_float2::parse::<f64, _>(text)
                .map(Number::Float)
                .map_err(|_| {
                    self.fault_at(start, FaultKind::Syntax(format!("invalid number {text}")))
                });
        }
        let digits = int_end - start - usize::from(negative);
        if digits <= 18 {
            let magnitude = self.bytes[start + usize::from(negative)..int_end]
                .iter()
                .fold(0_i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
            return Ok(Number::Int(if negative { -magnitude } else { magnitude }));
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

    /// The common case, fast: a float with one integer digit (`-0.24580338977940386`,
    /// `3.5e-07`), as embeddings are. fast-float reads it in one pass (Eisel-Lemire with a
    /// fallback: correctly rounded, as Python's `float()`); JSON's grammar is the same as
    /// fast-float's from the first digit on. Anything else — integers, other floats, Python's
    /// tokens, errors — is left to [`Parser::number`]'s general path (`None`, nothing consumed).
    pub(crate) fn plain_float(&mut self) -> Option<f64> {
        let rest = &self.bytes[self.pos..];
        let sign = usize::from(rest.first() == Some(&b'-'));
        match rest.get(sign..sign + 3) {
            Some([digit, b'.', fraction])
                if digit.is_ascii_digit() && fraction.is_ascii_digit() => {}
            _ => return None,
        }
        let (value, len) = fast_float2::parse_partial::<f64, _>(rest).ok()?;
        // A dangling exponent or point, or more digits, is the general path's to report.
        if matches!(rest.get(len), Some(b'e' | b'E' | b'.' | b'0'..=b'9')) {
            return None;
        }
        self.pos += len;
        Some(value)
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

/// A fault inside the value of `key`: a field of a tagged object (`.items`) or a key of a
/// free-form one (`["k"]`).
fn within_object(fault: Fault, map: &Map, key: String) -> Fault {
    let segment = if tag_of(map).is_some() {
        Segment::Spelled(key)
    } else {
        Segment::Key(key)
    };
    fault.within(segment)
}

/// The length of a UTF-8 byte order mark at the start of `bytes`: 3, or 0 without one.
pub(crate) fn bom_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    }
}

/// The character at `offset`: `None` at the end, `Err` where the bytes are not UTF-8.
fn char_at(bytes: &[u8], offset: usize) -> Option<Result<char, ()>> {
    let rest = bytes.get(offset..)?;
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
    match map.get("__type__")?.as_str()? {
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

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(bytes.len());
    let before = &bytes[..offset];
    // A byte order mark is no character a reader sees: the first line's columns start after it.
    let first_line_start = if before.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(first_line_start, |i| i + 1);
    // Only on the error path: a plain count is fast enough.
    #[allow(clippy::naive_bytecount)]
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Count characters, not bytes: every byte but UTF-8 continuation bytes starts one.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// The fast path for floats reads exactly what Rust's own (correctly rounded) parser
    /// reads, on forms it takes and forms it leaves to the general path: long mantissas
    /// (past fast-float's 19-digit fast case), exponents, halfway cases, signs.
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
            let mut parser = Parser::new(input.as_bytes()).unwrap();
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
            let mut parser = Parser::new(input.as_bytes()).unwrap();
            let fault = parser.number().unwrap_err();
            assert_eq!(parser.error(fault).to_string(), *message, "{input}");
        }
    }
}
