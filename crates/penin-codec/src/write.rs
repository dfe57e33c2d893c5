//! The writer: byte for byte what Python's `json.dump(state, f, cls=StateEncoder, indent=2)`
//! writes, or the same values on one line for the compact style.

use std::io;
use std::sync::mpsc;

use penin_artifacts::{
    ARTIFACT_TAG, DEQUE_TAG, Deque, KnowledgeBase, Number, NumericVectorArtifact, Value,
};

use crate::float::write_float;

/// Output is handed to the sink in chunks of about this size, so a large state is never
/// held twice in memory.
const CHUNK: usize = 256 * 1024;

/// Knowledge bases of at least this many artifacts are encoded on two threads.
const PARALLEL_MIN_ARTIFACTS: usize = 256;

/// Artifacts per chunk handed between the two threads.
const CHUNK_ARTIFACTS: usize = 64;

/// The stack of the helper thread: as the main thread's, so that deep metadata encodes on
/// either thread alike, whatever `RUST_MIN_STACK` says.
pub(crate) const HELPER_STACK: usize = 8 << 20;

/// The layout of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Style {
    /// Python's `indent=2`: a newline and two spaces per level, `,` and `: ` separators.
    #[default]
    Pretty,
    /// One line, `,` and `:` separators, no spaces.
    Compact,
}

/// Writes values in the seed format. Opaque: it is handed to [`Encode`] implementations.
pub struct Encoder<'w> {
    out: Vec<u8>,
    sink: Option<&'w mut dyn io::Write>,
    failed: Option<io::Error>,
    style: Style,
}

/// A value the writer knows how to encode.
///
/// Implemented for [`Value`], an object's [`Map`](penin_artifacts::Map),
/// [`NumericVectorArtifact`], [`Deque<Value>`] and the whole [`crate::Document`]; sealed.
pub trait Encode: sealed::Sealed {
    #[doc(hidden)]
    fn encode(&self, encoder: &mut Encoder<'_>, level: usize);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for penin_artifacts::Value {}
    impl Sealed for penin_artifacts::Map {}
    impl Sealed for penin_artifacts::NumericVectorArtifact {}
    impl Sealed for penin_artifacts::Deque<penin_artifacts::Value> {}
    impl Sealed for crate::Document {}
}

impl<'w> Encoder<'w> {
    pub(crate) fn to_vec(style: Style, capacity: usize) -> Encoder<'static> {
        Encoder {
            out: Vec::with_capacity(capacity),
            sink: None,
            failed: None,
            style,
        }
    }

    pub(crate) fn to_writer(style: Style, sink: &'w mut dyn io::Write) -> Encoder<'w> {
        Encoder {
            out: Vec::with_capacity(CHUNK + 4096),
            sink: Some(sink),
            failed: None,
            style,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.out
    }

    /// Hands what is left to the sink.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.flush();
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            if self.failed.is_none()
                && let Err(e) = sink.write_all(&self.out)
            {
                self.failed = Some(e);
            }
            // After a failure the rest is dropped: the caller gets the first error.
            self.out.clear();
        }
    }

    /// Appends a finished buffer: straight to the sink when there is one (after what is
    /// pending), without copying it into the output buffer first.
    fn append(&mut self, buffer: &[u8]) {
        match self.sink.as_mut() {
            Some(sink) => {
                if self.failed.is_none() {
                    let result = sink
                        .write_all(&self.out)
                        .and_then(|()| sink.write_all(buffer));
                    if let Err(e) = result {
                        self.failed = Some(e);
                    }
                }
                self.out.clear();
            }
            None => self.out.extend_from_slice(buffer),
        }
    }

    fn maybe_flush(&mut self) {
        if self.sink.is_some() && self.out.len() >= CHUNK {
            self.flush();
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Before the first item of a container (`first`) or between items.
    fn item(&mut self, first: bool, level: usize) {
        if !first {
            self.out.push(b',');
        }
        if self.style == Style::Pretty {
            self.newline(level + 1);
        }
        self.maybe_flush();
    }

    fn newline(&mut self, level: usize) {
        const SPACES: &[u8; 64] = &[b' '; 64];
        self.out.push(b'\n');
        let mut indent = 2 * level;
        while indent > 0 {
            let n = indent.min(SPACES.len());
            self.out.extend_from_slice(&SPACES[..n]);
            indent -= n;
        }
    }

    /// Closes a container that had items.
    fn close(&mut self, bracket: u8, level: usize) {
        if self.style == Style::Pretty {
            self.newline(level);
        }
        self.out.push(bracket);
    }

    fn key(&mut self, first: bool, level: usize, key: &str) {
        self.item(first, level);
        self.string(key);
        self.raw(if self.style == Style::Pretty {
            b": "
        } else {
            b":"
        });
    }

    pub(crate) fn number(&mut self, n: &Number) {
        match n {
            Number::Int(i) => {
                let mut buffer = itoa::Buffer::new();
                self.raw(buffer.format(*i).as_bytes());
            }
            Number::Big(b) => self.raw(b.as_str().as_bytes()),
            Number::Float(f) => write_float(&mut self.out, *f),
        }
    }

    /// A string as `ensure_ascii` writes it: `"` `\` and the five named controls escaped by
    /// name, everything else outside space..`~` as `\uXXXX` (lowercase), surrogate pairs
    /// beyond U+FFFF.
    pub(crate) fn string(&mut self, text: &str) {
        let bytes = text.as_bytes();
        self.out.push(b'"');
        let mut run = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                i += 1;
                continue;
            }
            self.out.extend_from_slice(&bytes[run..i]);
            if b < 0x80 {
                match b {
                    b'"' => self.raw(b"\\\""),
                    b'\\' => self.raw(b"\\\\"),
                    b'\n' => self.raw(b"\\n"),
                    b'\r' => self.raw(b"\\r"),
                    b'\t' => self.raw(b"\\t"),
                    0x08 => self.raw(b"\\b"),
                    0x0c => self.raw(b"\\f"),
                    _ => self.unicode_escape(u32::from(b)),
                }
                i += 1;
            } else {
                // `i` is at the first byte of a multi-byte character: a char boundary.
                let c = text[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                let code = u32::from(c);
                if code > 0xFFFF {
                    let v = code - 0x10000;
                    self.unicode_escape(0xD800 | (v >> 10));
                    self.unicode_escape(0xDC00 | (v & 0x3FF));
                } else {
                    self.unicode_escape(code);
                }
                i += c.len_utf8();
            }
            run = i;
        }
        self.out.extend_from_slice(&bytes[run..]);
        self.out.push(b'"');
    }

    fn unicode_escape(&mut self, code: u32) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.extend_from_slice(&[
            b'\\',
            b'u',
            HEX[(code >> 12 & 0xF) as usize],
            HEX[(code >> 8 & 0xF) as usize],
            HEX[(code >> 4 & 0xF) as usize],
            HEX[(code & 0xF) as usize],
        ]);
    }

    pub(crate) fn value(&mut self, value: &Value, level: usize) {
        match value {
            Value::Null => self.raw(b"null"),
            Value::Bool(true) => self.raw(b"true"),
            Value::Bool(false) => self.raw(b"false"),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.string(s),
            Value::Array(items) => self.array(items, level, Encoder::value),
            Value::Object(map) => self.object(map.iter(), level),
            Value::Artifact(artifact) => self.artifact(artifact, level),
            Value::Deque(deque) => self.deque(deque, level, Encoder::value),
        }
    }

    pub(crate) fn array<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        level: usize,
        mut write: impl FnMut(&mut Self, T, usize),
    ) {
        self.raw(b"[");
        let mut first = true;
        for item in items {
            self.item(first, level);
            write(self, item, level + 1);
            first = false;
        }
        if first {
            self.raw(b"]");
        } else {
            self.close(b']', level);
        }
    }

    pub(crate) fn object<'v, K: AsRef<str> + 'v>(
        &mut self,
        entries: impl IntoIterator<Item = (&'v K, &'v Value)>,
        level: usize,
    ) {
        self.map(entries, level, Encoder::value);
    }

    /// An object of any values, each written by `write`.
    pub(crate) fn map<'v, K: AsRef<str> + 'v, T: 'v>(
        &mut self,
        entries: impl IntoIterator<Item = (&'v K, &'v T)>,
        level: usize,
        mut write: impl FnMut(&mut Self, &T, usize),
    ) {
        self.raw(b"{");
        let mut first = true;
        for (key, value) in entries {
            self.key(first, level, key.as_ref());
            write(self, value, level + 1);
            first = false;
        }
        if first {
            self.raw(b"}");
        } else {
            self.close(b'}', level);
        }
    }

    /// The knowledge base. A large one is encoded on two threads: the other thread encodes
    /// every second chunk of 64 artifacts into a buffer of its own while this one encodes and
    /// writes the rest, in order. At most three chunk buffers exist at a time (one being
    /// filled, one waiting, one being written: about 1.5 MB at 384 dimensions, 6 MB at 1536),
    /// so memory stays flat whatever the size. Without a second thread (the system refused
    /// one, or it failed) this thread encodes every chunk itself: the output is the same.
    pub(crate) fn knowledge_base(&mut self, kb: &KnowledgeBase, level: usize) {
        let parallel = kb.len() >= PARALLEL_MIN_ARTIFACTS
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        if !parallel {
            self.map(kb, level, Encoder::artifact);
            return;
        }
        let entries: Vec<(&String, &NumericVectorArtifact)> = kb.iter().collect();
        let style = self.style;
        self.raw(b"{");
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(1);
            let odd_chunks = entries.chunks(CHUNK_ARTIFACTS).skip(1).step_by(2);
            let spawned = crate::spawn_scoped_beside(
                std::thread::Builder::new().stack_size(HELPER_STACK),
                scope,
                move || {
                    for chunk in odd_chunks {
                        let mut encoder = Encoder::to_vec(style, CHUNK_ARTIFACTS * 9 * 1024);
                        encoder.artifacts(chunk, false, level);
                        if sender.send(encoder.into_vec()).is_err() {
                            return;
                        }
                    }
                },
            );
            let mut helped = spawned.is_ok();
            for (i, chunk) in entries.chunks(CHUNK_ARTIFACTS).enumerate() {
                if self.failed.is_some() {
                    // The sink failed: the rest would be thrown away. Dropping the receiver
                    // stops the other thread at its next chunk.
                    break;
                }
                if i % 2 == 0 || !helped {
                    self.artifacts(chunk, i == 0, level);
                } else if let Ok(buffer) = receiver.recv() {
                    self.append(&buffer);
                } else {
                    // The other thread is gone before its time: carry on alone.
                    helped = false;
                    self.artifacts(chunk, false, level);
                }
            }
            drop(receiver);
        });
        self.close(b'}', level);
    }

    /// Entries of the knowledge base, each `"key": {artifact}` with its separator.
    fn artifacts(
        &mut self,
        chunk: &[(&String, &NumericVectorArtifact)],
        first: bool,
        level: usize,
    ) {
        for (i, (key, artifact)) in chunk.iter().enumerate() {
            self.key(first && i == 0, level, key);
            self.artifact(artifact, level + 1);
        }
    }

    /// Opens an object whose first key is `__type__`, the way the encoder's `to_dict` does.
    fn tagged(&mut self, tag: &str, level: usize) {
        self.raw(b"{");
        self.key(true, level, "__type__");
        self.string(tag);
    }

    pub(crate) fn artifact(&mut self, artifact: &NumericVectorArtifact, level: usize) {
        self.tagged(ARTIFACT_TAG, level);
        self.key(false, level, "vector");
        self.array(&artifact.vector, level + 1, |e, f, _| {
            write_float(&mut e.out, *f);
        });
        self.key(false, level, "metadata");
        self.object(&artifact.metadata, level + 1);
        self.extra(artifact.extra(), level);
        self.close(b'}', level);
    }

    pub(crate) fn deque<T>(
        &mut self,
        deque: &Deque<T>,
        level: usize,
        write: impl FnMut(&mut Self, &T, usize),
    ) {
        self.tagged(DEQUE_TAG, level);
        self.key(false, level, "items");
        self.array(deque, level + 1, write);
        self.key(false, level, "maxlen");
        match deque.maxlen() {
            Some(n) => {
                let mut buffer = itoa::Buffer::new();
                self.raw(buffer.format(n).as_bytes());
            }
            None => self.raw(b"null"),
        }
        self.extra(deque.extra(), level);
        self.close(b'}', level);
    }

    fn extra(&mut self, extra: &penin_artifacts::Map, level: usize) {
        for (key, value) in extra {
            self.key(false, level, key);
            self.value(value, level + 1);
        }
    }

    pub(crate) fn top_key(&mut self, first: bool, key: &str) {
        self.key(first, 0, key);
    }

    pub(crate) fn top_close(&mut self, empty: bool) {
        if empty {
            self.raw(b"}");
        } else {
            self.close(b'}', 0);
        }
    }

    pub(crate) fn top_open(&mut self) {
        self.raw(b"{");
    }
}

impl Encode for Value {
    fn encode(&self, encoder: &mut Encoder<'_>, level: usize) {
        encoder.value(self, level);
    }
}

impl Encode for penin_artifacts::Map {
    /// As the object it is: what [`Value::Object`] of it writes, without building the value.
    fn encode(&self, encoder: &mut Encoder<'_>, level: usize) {
        encoder.object(self.iter(), level);
    }
}

impl Encode for NumericVectorArtifact {
    fn encode(&self, encoder: &mut Encoder<'_>, level: usize) {
        encoder.artifact(self, level);
    }
}

impl Encode for Deque<Value> {
    fn encode(&self, encoder: &mut Encoder<'_>, level: usize) {
        encoder.deque(self, level, Encoder::value);
    }
}
