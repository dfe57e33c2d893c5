//! The window changes where the bytes come from, never what is read: through windows of any
//! size, and reads of any length, every input gives exactly what the whole input in memory
//! gives — the same state, or the same error at the same line, column and path.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use penin_codec::{Document, Error, Reader, Source, Value};

mod common;

use common::NotInMemory;

/// A source in memory read through windows, whose reads return at most `max_read` bytes
/// (short reads, as a pipe or a network file system gives), counting the bytes it returns
/// and failing every read that would return the byte at `fail_at`.
struct Trickle<'a> {
    bytes: &'a [u8],
    max_read: usize,
    fail_at: u64,
    read: AtomicU64,
}

impl<'a> Trickle<'a> {
    fn new(bytes: &'a [u8], max_read: usize) -> Self {
        Trickle {
            bytes,
            max_read,
            fail_at: u64::MAX,
            read: AtomicU64::new(0),
        }
    }
}

impl Source for Trickle<'_> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = buf.len().min(self.max_read);
        if offset + n as u64 > self.fail_at {
            return Err(io::Error::other("the device went away"));
        }
        let n = self.bytes.read_at(&mut buf[..n], offset)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What a read gives, comparable: the state as written (NaN is not equal to itself, its
/// text is), or the error with every field.
fn outcome<T: penin_codec::Encode>(result: Result<T, Error>) -> Result<String, String> {
    result
        .map(|value| String::from_utf8_lossy(&penin_codec::to_vec(&value)).into_owned())
        .map_err(|e| format!("{e:?} / {e}"))
}

/// Reads `input` whole, then through windows of every size from 1 to 64 bytes and of a few
/// larger ones, with reads of one byte and of any length: every outcome must be the whole
/// input's, for a document and for a value.
fn assert_windows_agree(name: &str, input: &[u8], rng: &mut Rng) {
    let doc = outcome(Document::decode(input, Some(1000)));
    let value = outcome(penin_codec::from_slice::<Value>(input));
    let mut windows: Vec<usize> = (1..=64).collect();
    windows.extend((0..8).map(|_| 1 + rng.below(4096)));
    windows.push(penin_codec::DEFAULT_WINDOW);
    for window in windows {
        let reader = Reader::new().window(window);
        let got = outcome(reader.read_document(&NotInMemory(input)));
        assert!(
            got == doc,
            "{name}, window {window}: {got:?}\nwhole: {doc:?}"
        );
        let max_read = if window % 2 == 0 {
            1
        } else {
            1 + rng.below(window)
        };
        let got = outcome(reader.read_value(&Trickle::new(input, max_read)));
        assert!(
            got == value,
            "{name}, window {window}, reads of {max_read}: {got:?}\nwhole: {value:?}"
        );
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 16, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(p).unwrap())
        })
        .collect()
}

#[test]
fn every_fixture_reads_the_same_through_any_window() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (name, bytes) in fixtures() {
        // The Python-written fixtures are valid: the comparison must be of states.
        assert!(Document::decode(&bytes, Some(1000)).is_ok(), "{name}");
        assert_windows_agree(&name, &bytes, &mut rng);
        let mut with_bom = b"\xef\xbb\xbf".to_vec();
        with_bom.extend_from_slice(&bytes);
        assert_windows_agree(
            &format!("{name} with a byte order mark"),
            &with_bom,
            &mut rng,
        );
    }
}

/// Every truncation and every bit flip of a fixture that holds every construct: each is
/// refused or read exactly as in memory, through windows that cut it everywhere.
#[test]
fn every_damaged_fixture_reads_the_same_through_any_window() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut rng = Rng(7);
    let (mut errors, mut states) = (0, 0);
    for name in ["nested_tags.json", "unicode.json"] {
        let bytes = fs::read(dir.join(name)).unwrap();
        let mut cases: Vec<Vec<u8>> = (0..bytes.len()).map(|cut| bytes[..cut].to_vec()).collect();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            cases.push(flipped);
        }
        for case in cases {
            let whole = outcome(Document::decode(&case, Some(1000)));
            if whole.is_ok() {
                states += 1;
            } else {
                errors += 1;
            }
            for window in [1, 2, 3, 5, 8, 13, 1 + rng.below(300)] {
                let got = outcome(
                    Reader::new()
                        .window(window)
                        .read_document(&NotInMemory(&case)),
                );
                assert!(
                    got == whole,
                    "{name} damaged, window {window}: {got:?}\nwhole: {whole:?}\n{:?}",
                    String::from_utf8_lossy(&case)
                );
            }
        }
    }
    // Both outcomes are exercised.
    assert!(
        errors > 1000 && states > 100,
        "{errors} errors, {states} states"
    );
}

/// Tokens that the window's edge can cut: numbers (the integer of the report, whose digits
/// were once read short), floats with exponents, Python's tokens, escapes and surrogate
/// pairs, multi-byte characters, literals; valid and not.
#[test]
fn tokens_cut_by_the_window_edge_are_completed() {
    let rows: &[&str] = &[
        r#"{"knowledge_base": {}, "v": 123456789}"#,
        r#"{"v": 123456789012345678901234567890, "w": -0.000123e-45}"#,
        r#"{"score_history": [1e+16, -Infinity, NaN, Infinity, 0.5, 1.5e-7, -0]}"#,
        r#"{"s": "\ud83d\ude00 caf\u00e9 \" \\ \/ \b\f\n\r\t", "t": "😀é€"}"#,
        r#"{"s": "\ud83d", "t": 1}"#,
        r#"{"s": "\ud83d\u0041"}"#,
        r#"{"s": "\x"}"#,
        r#"{"a": [true, false, null, tru]}"#,
        r#"{"a": 1.5e}"#,
        r#"{"a": 01}"#,
        r#"{"a": -}"#,
        r#"{"a": 1.}"#,
        r#"{"a": NaN, "b": Infinit}"#,
        "{\"a\": \"\u{7f}\t\"}",
        "{\"a\": \"line\nbreak\"}",
        "{\"k\": \"é\"} \u{e9}",
        r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [0.25, 1, -3.5e+300, 123456789012345678901234567890]}}}"#,
        r#"{"knowledge_base": {"k": {"__type__": "NumericVectorArtifact", "vector": [0.1, 0.2], "metadata": {"n": 12345678901234567890}}}}"#,
        r#"{"task_history": {"__type__": "deque", "items": [1, 2, 3], "maxlen": 2}, "score_history": [0.5, "x"]}"#,
    ];
    let mut rng = Rng(3);
    for row in rows {
        assert_windows_agree(row, row.as_bytes(), &mut rng);
    }
    // Errors on the first line after a byte order mark, whose column does not count it
    // (the fuzzer found short reads of the mark's bytes counting it).
    for row in [
        "\u{feff} \"knowledge_base\"",
        "\u{feff}{\"a\": x}",
        "\u{feff}  [1, 2]",
    ] {
        assert_windows_agree(row, row.as_bytes(), &mut rng);
    }
    // Invalid UTF-8 cut anywhere, before and after other errors.
    for row in [
        &b"{\"a\": \"\xc3\"}"[..],
        b"{\"a\": 1x, \"b\": \"\xff\"}",
        b"{\"a\": \"\xe2\x82",
    ] {
        assert_windows_agree(&String::from_utf8_lossy(row), row, &mut rng);
    }
}

/// Every byte of the source is read once: no part of a state is read twice, whatever its
/// shape (knowledge bases large enough for two threads read a little more: a probe for
/// where the second starts).
#[test]
fn every_byte_is_read_once() {
    let mut doc = Document::new(None);
    for i in 0..20_000_i64 {
        let mut task = penin_codec::Map::new();
        task.insert("task_id", Value::from(i));
        task.insert("note", Value::from("a\"quoted\" note, é"));
        doc.task_history.push_back(Value::from(task));
        doc.score_history
            .push_back(penin_codec::Number::Float(0.125));
    }
    doc.extra.insert(
        "big",
        Value::Array(
            (0..20_000)
                .map(|i| Value::from(f64::from(i) / 3.0))
                .collect(),
        ),
    );
    let bytes = penin_codec::to_vec(&doc);
    for window in [1, 100, 4096, 1 << 20] {
        let source = Trickle::new(&bytes, usize::MAX);
        let back = Reader::new()
            .history_maxlen(None)
            .window(window)
            .read_document(&source)
            .unwrap();
        assert_eq!(penin_codec::to_vec(&back), bytes, "window {window}");
        assert_eq!(
            source.read.load(Ordering::Relaxed),
            bytes.len() as u64,
            "window {window}"
        );
    }
}

/// A read that fails is an I/O error with its source, at any point of the input; never a
/// state made of what was read before it, never a syntax error.
#[test]
fn a_failed_read_is_an_io_error() {
    let bytes = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nested_tags.json"),
    )
    .unwrap();
    for fail_at in 0..bytes.len() as u64 {
        let mut source = Trickle::new(&bytes, 7);
        source.fail_at = fail_at;
        let error = Reader::new().window(16).read_document(&source).unwrap_err();
        let Error::Io(io) = &error else {
            panic!("failing at {fail_at}: {error:?}");
        };
        assert_eq!(io.to_string(), "the device went away");
    }
}
