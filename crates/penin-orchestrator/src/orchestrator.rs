use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use penin_artifacts::{Deque, KnowledgeBase, Map, Number, NumericVectorArtifact, Value};
use penin_codec::{DEFAULT_HISTORY_MAXLEN, Document, Source};
use penin_formats::{ENVELOPE_MAGIC_LEN, Encoder, Envelope, Format, Keys, Layout};

use crate::error::{Error, Result};
use crate::statistics::Statistics;

/// The smallest `arrow` snapshot [`Orchestrator::map_file_with`] maps (a smaller one is read:
/// a map costs more than reading a few pages).
const MAP_MIN: usize = 4 << 20;

/// The orchestrator's long-term memory: the seed's `OmegaMetaOrchestrator` state.
///
/// * `knowledge_base`: artifacts by key, in insertion order (re-adding a key replaces the
///   artifact in place, as a Python dict does);
/// * `task_history` and `score_history`: bounded histories (default `maxlen` 1000);
/// * top-level keys of a loaded file beyond those three, kept and saved back.
#[derive(Clone, Debug, PartialEq)]
pub struct Orchestrator {
    state: Document,
    history_maxlen: Option<usize>,
}

impl Orchestrator {
    /// An empty memory whose histories keep the seed's default of 1000 entries.
    #[must_use]
    pub fn new() -> Self {
        Self::with_history_maxlen(Some(DEFAULT_HISTORY_MAXLEN))
    }

    /// An empty memory whose histories keep at most `maxlen` entries (`None`: unbounded).
    ///
    /// A loaded file's own `maxlen` wins over this one, as in the seed; this bound applies to
    /// a fresh state and to histories written as plain lists.
    #[must_use]
    pub fn with_history_maxlen(maxlen: Option<usize>) -> Self {
        Orchestrator {
            state: Document::new(maxlen),
            history_maxlen: maxlen,
        }
    }

    /// The configured history bound.
    pub fn history_maxlen(&self) -> Option<usize> {
        self.history_maxlen
    }

    /// The knowledge base.
    pub fn knowledge_base(&self) -> &KnowledgeBase {
        &self.state.knowledge_base
    }

    /// The task history, oldest first.
    pub fn task_history(&self) -> &Deque<Value> {
        &self.state.task_history
    }

    /// The score history, oldest first.
    pub fn score_history(&self) -> &Deque<Number> {
        &self.state.score_history
    }

    /// Top-level keys of the loaded file beyond the seed's three.
    pub fn extra(&self) -> &Map {
        &self.state.extra
    }

    /// The whole state as the file format sees it.
    pub fn document(&self) -> &Document {
        &self.state
    }

    /// Stores `artifact` under `key`, replacing (in place) any artifact already there.
    pub fn add_knowledge(&mut self, key: impl Into<String>, artifact: NumericVectorArtifact) {
        self.state.knowledge_base.insert(key.into(), artifact);
    }

    /// Appends a task record; past the bound the oldest is dropped.
    pub fn add_task(&mut self, task: impl Into<Value>) {
        self.state.task_history.push_back(task.into());
    }

    /// Appends a score; past the bound the oldest is dropped.
    pub fn add_score(&mut self, score: impl Into<Number>) {
        self.state.score_history.push_back(score.into());
    }

    /// The seed's four figures.
    pub fn statistics(&self) -> Statistics {
        let scores = &self.state.score_history;
        let average_score = if scores.is_empty() {
            0.0
        } else {
            #[allow(clippy::cast_precision_loss)] // a count of at most a few million entries
            let count = scores.len() as f64;
            scores
                .iter()
                .map(Number::to_f64)
                .fold(0.0, |sum, x| sum + x)
                / count
        };
        Statistics {
            knowledge_base_size: self.state.knowledge_base.len(),
            task_history_size: self.state.task_history.len(),
            score_history_size: scores.len(),
            average_score,
        }
    }

    /// The state in the seed format, as Python's `json.dump(..., indent=2)` writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        penin_codec::to_vec(&self.state)
    }

    /// Replaces the state with one read from `bytes`; on error nothing changes.
    pub fn load_bytes(&mut self, bytes: &[u8]) -> penin_codec::Result<()> {
        self.state = Document::decode(bytes, self.history_maxlen)?;
        Ok(())
    }

    /// Saves the state to `path` in the seed JSON: [`Orchestrator::save_state_as`] with
    /// [`Format::Json`].
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_state_as(path, Format::Json)
    }

    /// Saves the state to `path` in `format`, replacing the file atomically and durably:
    /// creates missing parent directories, writes a temporary file beside it, syncs it and
    /// renames it over the old file. Returns only once the new state is on disk; on error
    /// the old file is untouched.
    pub fn save_state_as(&self, path: impl AsRef<Path>, format: Format) -> Result<()> {
        self.save_state_with(path, format, &Keys::new())
    }

    /// [`Orchestrator::save_state_as`], encrypted to the recipients of `keys` (plaintext
    /// when it has none).
    pub fn save_state_with(
        &self,
        path: impl AsRef<Path>,
        format: Format,
        keys: &Keys,
    ) -> Result<()> {
        penin_store::write_atomic_with(path, |writer| {
            self.write_with(writer, format, keys).map(drop)
        })?;
        Ok(())
    }

    /// Writes the state to `writer` in `format` (compressed through [`Encoder`], the stream
    /// ended; an arrow snapshot through [`penin_formats::arrow::write`]) and returns the
    /// writer.
    pub fn write_as<W: Write>(&self, writer: W, format: Format) -> io::Result<W> {
        self.write_with(writer, format, &Keys::new())
    }

    /// Writes the state to `writer` in `format`, then encrypted to the recipients of `keys`
    /// (through an [`Envelope`]; plaintext when it has none), and returns the writer: encode,
    /// compress, encrypt, one stream, never a second copy of the state in memory.
    pub fn write_with<W: Write>(&self, writer: W, format: Format, keys: &Keys) -> io::Result<W> {
        // The encoder fails only through its writer.
        let io_error = |e| match e {
            penin_codec::Error::Io(io) => io,
            other => io::Error::other(other),
        };
        if format == Format::Arrow {
            let envelope = Envelope::new(keys, writer)?;
            let envelope = if envelope.encrypts() {
                // The cipher gathers the pieces into its own buffers: no buffer before it.
                penin_formats::arrow::write_unbuffered(&self.state, envelope)?
            } else {
                penin_formats::arrow::write(&self.state, envelope)?
            };
            return envelope.finish();
        }
        if format == Format::Json && !keys.encrypts() {
            // Straight into the writer, as the seed JSON always was.
            let mut writer = writer;
            penin_codec::to_writer(&mut writer, &self.state).map_err(io_error)?;
            return Ok(writer);
        }
        let envelope = Envelope::new(keys, writer)?;
        // The encoder's many small writes are gathered first, so the compressor (or the
        // cipher) sees chunks of a megabyte.
        let mut buffered = io::BufWriter::with_capacity(1 << 20, Encoder::new(format, envelope)?);
        penin_codec::to_writer(&mut buffered, &self.state).map_err(io_error)?;
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .finish()?
            .finish()
    }

    /// Loads the state saved at `path`, in any format.
    ///
    /// * `Ok(false)`: there is no file (a first run); nothing changes.
    /// * `Ok(true)`: the state is now the file's; the file's history bounds win.
    /// * `Err`: the file exists but cannot be read or is not a valid state; nothing changes.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<bool> {
        Ok(self.load_state_format(path)?.is_some())
    }

    /// [`Orchestrator::load_state`], saying in which format the file was: `None` when there
    /// is no file.
    pub fn load_state_format(&mut self, path: impl AsRef<Path>) -> Result<Option<Format>> {
        Ok(self
            .load_state_with(path, &Keys::new())?
            .map(|layout| layout.format))
    }

    /// [`Orchestrator::load_state`], decrypting with the identities of `keys`, and saying
    /// how the file was laid out: `None` when there is no file.
    pub fn load_state_with(
        &mut self,
        path: impl AsRef<Path>,
        keys: &Keys,
    ) -> Result<Option<Layout>> {
        let path = path.as_ref();
        let Some(file) = penin_store::open(path)? else {
            return Ok(None);
        };
        self.load_file_with(&file, path, keys).map(Some)
    }

    /// Replaces the state with the one read from `file`, open on the state file at `path`
    /// (named in errors), and returns the file's format, recognised by its first bytes; on
    /// error nothing changes.
    ///
    /// Plain JSON is read a window at a time, so memory holds the state, not the state and
    /// the file; the exact position of any error is read through the same handle. A
    /// compressed file is decompressed into memory and decoded there; the positions of its
    /// errors are in the decompressed JSON. An arrow snapshot is read whole into one aligned
    /// buffer, checked (version, checksum, footer) and decoded from it.
    pub fn load_file(&mut self, file: &File, path: &Path) -> Result<Format> {
        Ok(self.load_file_with(file, path, &Keys::new())?.format)
    }

    /// [`Orchestrator::load_file`], decrypting an encrypted file with the identities of
    /// `keys` first (into memory; the format inside is recognised by its first bytes), and
    /// saying how the file was laid out.
    pub fn load_file_with(&mut self, file: &File, path: &Path, keys: &Keys) -> Result<Layout> {
        self.load(file, path, keys, Via::Read)
            .map(|(layout, _)| layout)
    }

    /// [`Orchestrator::load_file_with`], reading a large `arrow` snapshot through a read-only
    /// map of the file rather than into memory of its own (see [`penin_formats::arrow::map`]):
    /// faster, but **only for a process that exits soon after**. While the state lives, the
    /// file must not be cut short in place by another program (penin never does): a page
    /// past its new end kills the process with `SIGBUS`. Any other file, and a file the
    /// system does not map, is read as [`Orchestrator::load_file_with`] reads it. Gives the
    /// layout, and whether the file was mapped.
    pub fn map_file_with(
        &mut self,
        file: &File,
        path: &Path,
        keys: &Keys,
    ) -> Result<(Layout, bool)> {
        self.load(file, path, keys, Via::Map)
    }

    /// [`Orchestrator::map_file_with`] for a process that will read every vector (a search
    /// over all of them): the map's pages are all mapped at once (see
    /// [`penin_formats::arrow::map_populated`]).
    pub fn map_file_populated_with(
        &mut self,
        file: &File,
        path: &Path,
        keys: &Keys,
    ) -> Result<(Layout, bool)> {
        self.load(file, path, keys, Via::MapPopulated)
    }

    fn load(&mut self, file: &File, path: &Path, keys: &Keys, via: Via) -> Result<(Layout, bool)> {
        let mut head = [0; ENVELOPE_MAGIC_LEN];
        let got = penin_codec::read_full(file, &mut head, 0)
            .map_err(|source| read_error(path, source))?;
        let head = &head[..got];
        if penin_formats::is_encrypted(head) {
            // The length of a regular file; what it claims is checked before it is trusted.
            let size = file
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len());
            let opened = penin_formats::decrypt_with_size_hint(keys, At { file, offset: 0 }, size)
                .map_err(|source| match source {
                    penin_formats::Error::Read(source) => read_error(path, source),
                    source => Error::Envelope {
                        path: path.to_owned(),
                        source,
                    },
                })?;
            let format = Format::detect(&opened.bytes);
            self.state = decode(format, opened.bytes, path, self.history_maxlen)?;
            return Ok((
                Layout {
                    format,
                    encrypted_to: Some(opened.recipients),
                },
                false,
            ));
        }
        let format = Format::detect(head);
        let mut mapped = false;
        let decoded = match format {
            Format::Json => {
                Document::read_from(file, self.history_maxlen).map_err(|source| match source {
                    penin_codec::Error::Io(source) => read_error(path, source),
                    source => Error::Corrupt {
                        path: path.to_owned(),
                        source,
                    },
                })?
            }
            Format::Arrow => {
                // The file's length, so that its buffer is allocated once; a file that grows
                // meanwhile is read to its end all the same.
                let len = file
                    .metadata()
                    .map_err(|source| read_error(path, source))?
                    .len();
                let size = usize::try_from(len).unwrap_or(usize::MAX);
                let read_mapped = match via {
                    _ if size < MAP_MIN => None,
                    Via::Read => None,
                    Via::Map => penin_formats::arrow::map(file, self.history_maxlen),
                    Via::MapPopulated => {
                        penin_formats::arrow::map_populated(file, self.history_maxlen)
                    }
                };
                mapped = read_mapped.is_some();
                read_mapped
                    .unwrap_or_else(|| {
                        // Its ends first: a file that cannot be a snapshot is not read whole.
                        penin_formats::arrow::check_frame(file, len)?;
                        penin_formats::arrow::read(
                            At { file, offset: 0 },
                            size,
                            self.history_maxlen,
                        )
                    })
                    .map_err(|source| match source {
                        penin_formats::Error::Read(source) => read_error(path, source),
                        source => arrow_error(path, source),
                    })?
            }
            _ => decompressed(format, At { file, offset: 0 }, path, self.history_maxlen)?,
        };
        self.state = decoded;
        Ok((Layout::plain(format), mapped))
    }
}

/// The state held by `bytes` (a decrypted file's plaintext), laid out in `format` (`path`
/// names the file in errors). An arrow snapshot keeps `bytes` as its buffer: its vectors
/// stay where they were opened.
fn decode(format: Format, bytes: Vec<u8>, path: &Path, maxlen: Option<usize>) -> Result<Document> {
    if format == Format::Arrow {
        return penin_formats::arrow::from_vec(bytes, maxlen)
            .map_err(|source| arrow_error(path, source));
    }
    if format == Format::Json {
        return Document::decode(&bytes, maxlen).map_err(|source| Error::Corrupt {
            path: path.to_owned(),
            source,
        });
    }
    decompressed(format, &bytes[..], path, maxlen)
}

/// How [`Orchestrator::load`] reads a large `arrow` snapshot.
#[derive(Clone, Copy)]
enum Via {
    /// Into memory of its own.
    Read,
    /// Through a map, its pages mapped as they are used.
    Map,
    /// Through a map, its pages all mapped at once.
    MapPopulated,
}

/// How many bytes of a compressed state's content are parsed before the rest is
/// decompressed: a content that is not a state from its start is refused there.
const PROBE: usize = 64 << 10;

/// The state in `reader`, a compressed state file (`path` in errors). The first [`PROBE`]
/// bytes of the content are parsed as soon as they are out, and a content that fails there
/// is refused before the rest is decompressed (50 KB of zstd can hold gigabytes of zeros);
/// see [`probe`] for how its error compares with the whole content's.
fn decompressed<R: Read>(
    format: Format,
    reader: R,
    path: &Path,
    maxlen: Option<usize>,
) -> Result<Document> {
    let corrupt = |source| Error::CorruptDecompressed {
        path: path.to_owned(),
        format,
        source,
    };
    let mut early = None;
    let (json, _) = penin_formats::decompress_probed(format, reader, PROBE, |prefix| {
        early = probe(prefix, maxlen);
        early.is_some()
    })
    .map_err(|source| match source {
        penin_formats::Error::Read(source) => read_error(path, source),
        source => Error::Compressed {
            path: path.to_owned(),
            source,
        },
    })?;
    if let Some(error) = early {
        return Err(corrupt(error));
    }
    Document::decode(&json, maxlen).map_err(corrupt)
}

/// The failure of a state's content within its first bytes, `prefix`, when it is sure to be
/// the failure of the whole content; `None` when the prefix says nothing yet.
///
/// What the end of the prefix cuts says nothing: a character (its first bytes), and a
/// number, which may go on past the cut (`115292150460684697` of `1152921504606846976`, not
/// held exactly by a float where `2^60` is; the integer part of a long float), are cut off
/// before the prefix is parsed, and a prefix that then ends too soon says nothing. The
/// number cut off is the run of a number's characters at the end, when the run is the start
/// of one number; any other run (`0000…`, `1.2.3`, the `e` of `true`) is not one a sound
/// content can end its prefix with outside a string, and inside one, cut or not, the prefix
/// ends too soon. Any other failure of the prefix is one of the whole content, at the same
/// place, with the same message, except that the whole content's reader names invalid UTF-8
/// first, wherever it is: invalid UTF-8 past the prefix, or in a character the prefix's last
/// bytes start, is not looked for. (A content of a number alone is cut off whole, and read
/// whole.)
fn probe(prefix: &[u8], maxlen: Option<usize>) -> Option<penin_codec::Error> {
    let mut end = prefix.len();
    if let Err(e) = std::str::from_utf8(prefix)
        && e.error_len().is_none()
    {
        end = e.valid_up_to();
    }
    let run = prefix[..end]
        .iter()
        .rev()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E'))
        .count();
    if starts_a_number(&prefix[end - run..end]) {
        end -= run;
    }
    Document::decode(&prefix[..end], maxlen)
        .err()
        .filter(|error| {
            !matches!(
                error,
                penin_codec::Error::Truncated { .. } | penin_codec::Error::Empty
            )
        })
}

/// The arrow snapshot at `path` does not decode.
fn arrow_error(path: &Path, source: penin_formats::Error) -> Error {
    Error::Arrow {
        path: path.to_owned(),
        source,
    }
}

/// An I/O error reading the state file at `path`.
fn read_error(path: &Path, source: io::Error) -> Error {
    Error::Store(penin_store::Error::Io {
        step: penin_store::Step::Read,
        path: path.to_owned(),
        source,
    })
}

/// A file read from an offset on, with positioned reads: the handle's own position (which
/// other readers of the same handle may share) is never used.
struct At<'a> {
    file: &'a File,
    offset: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = Source::read_at(self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl Default for Orchestrator {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Document> for Orchestrator {
    /// Wraps a state read elsewhere; its history bound becomes the configured one.
    fn from(state: Document) -> Self {
        let history_maxlen = state.task_history.maxlen();
        Orchestrator {
            state,
            history_maxlen,
        }
    }
}

/// Whether `text` is the start of one JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
/// cut anywhere after its first character.
fn starts_a_number(text: &[u8]) -> bool {
    let digits = |at: usize| {
        text[at.min(text.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(text.first() == Some(&b'-'));
    match text.get(at) {
        None => return at > 0,
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at += digits(at),
        Some(_) => return false,
    }
    if text.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 && at + 1 < text.len() {
            return false;
        }
        at += 1 + fraction;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 && at < text.len() {
            return false;
        }
        at += exponent;
    }
    at >= text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starts_of_numbers_are_told_from_other_runs() {
        for start in [
            "-",
            "0",
            "7",
            "-0",
            "12",
            "1.",
            "1.5",
            "-0.25",
            "1e",
            "1E+",
            "1e-",
            "2.5e10",
            "0e0",
            "1152921504606846976",
        ] {
            assert!(starts_a_number(start.as_bytes()), "{start}");
        }
        for other in [
            "", "00", "01", "-01", "+1", ".5", "e", "ee", "1..", "1.2.3", "1.e5", "1e5e", "1e+-",
            "1-", "--", "0000", "e5",
        ] {
            assert!(!starts_a_number(other.as_bytes()), "{other}");
        }
    }

    /// A sound state with a bit of everything the reader takes, cut anywhere: the probe
    /// says nothing at any cut.
    #[test]
    fn a_probe_says_nothing_of_any_prefix_of_a_sound_state() {
        let long_float = format!("{}.5", "1".repeat(5000));
        let state = format!(
            "\u{feff}{{\"knowledge_base\": {{\"k\": {{\"__type__\": \"NumericVectorArtifact\", \
             \"vector\": [1152921504606846976, 1.5, -0, 1e5, -2.5E-3, NaN, Infinity, -Infinity], \
             \"metadata\": {{\"s\": \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00 é😀\", \"n\": 123456789012345678901, \
             \"t\": [true, false, null]}}}},\r\n \"k\": {{\"vector\": [2], \"__type__\": \"NumericVectorArtifact\"}}}},\r\n\t\
             \"task_history\": {{\"__type__\": \"deque\", \"items\": [{{\"a\": 1}}, \"s\", 2], \"maxlen\": 2}},\n\
             \"score_history\": [0.5, 1, {long_float}, 1e400, 9007199254740993],\n\
             \"score_history\": [1], \"extra\": {{\"__type__\": \"other\"}}, \"extra\": -0.0}}  \r\n"
        );
        let bytes = state.as_bytes();
        Document::decode(bytes, Some(1000)).unwrap();
        for cut in 0..=bytes.len() {
            if let Some(error) = probe(&bytes[..cut], Some(1000)) {
                panic!("cut at {cut}: {error}");
            }
        }
    }

    /// Contents that fail within their first bytes: the probe gives the whole content's
    /// failure, before the rest is read.
    #[test]
    fn a_probe_gives_the_failure_of_the_whole_content() {
        let fill = |head: &[u8], fill: &[u8]| {
            let mut content = head.to_vec();
            while content.len() < PROBE + 1000 {
                content.extend_from_slice(fill);
            }
            content
        };
        let mut vectors = b"{\"knowledge_base\": {\"k\": {\"__type__\": \"NumericVectorArtifact\", \"vector\": [\"x\", ".to_vec();
        vectors.extend(std::iter::repeat_n(b"0.5, ", PROBE / 5).flatten());
        let contents = [
            fill(b"", b"\0"),
            fill(b"", b"\xff"),
            fill(b"x", "é".as_bytes()),
            fill(b"", b"a"),
            fill(b"{\"score_history\": [0.5, 1}", b" "),
            fill(b"{\"a\": 01", b" "),
            fill(b"{\"a\": ", b"0"),
            fill(b"[", b"1.2."),
            fill(b"", b"e"),
            fill(b"{\"a\": ", b"-"),
            vectors,
        ];
        for content in contents {
            let whole = Document::decode(&content, Some(1000)).unwrap_err();
            let early = probe(&content[..PROBE], Some(1000));
            assert_eq!(
                early.map(|e| e.to_string()),
                Some(whole.to_string()),
                "{:?}",
                String::from_utf8_lossy(&content[..20])
            );
        }
    }

    /// What a cut may leave unfinished says nothing; what is before a number the cut
    /// leaves, however long, is read.
    #[test]
    fn a_probe_says_nothing_of_what_the_cut_leaves_unfinished() {
        let digits = format!("{{\"score_history\": [{}", "7".repeat(PROBE));
        let cut_char = "{\"a\": \"é".as_bytes();
        for prefix in [
            digits.as_bytes(),
            &cut_char[..cut_char.len() - 1],
            b"{\"a\": tru",
            b"{\"a\": -Infin",
            b"{\"a\": 1e",
            b"",
            b"  \r\n",
        ] {
            assert!(
                probe(prefix, Some(1000)).is_none(),
                "{:?}",
                String::from_utf8_lossy(prefix)
            );
        }
        let refused = format!("{{\"a\": 01, {}", "7".repeat(PROBE));
        assert_eq!(
            probe(refused.as_bytes(), Some(1000)).map(|e| e.to_string()),
            Some(r#"a number cannot have a leading zero at line 1, column 8 in ["a"]"#.to_owned())
        );
    }
}
