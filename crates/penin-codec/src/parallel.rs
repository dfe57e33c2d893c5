//! Reading a long list on two threads: the entries of a large knowledge base, the items of
//! a long history or of a large array.
//!
//! A second parser, with its own window onto the same source, starts at a boundary guessed
//! near the middle of what is left of the input and reads to the end of the list, while the
//! first reads from the start. The guess is a pattern in the bytes (the end of an element, a
//! comma, the whitespace that came before the first element, the start of an element of the
//! same kind), so it can be wrong: inside a nested value, or past the end of the list. It is
//! checked, not trusted: only when the first parser, reading every element in turn, arrives
//! exactly at the guessed offset at the start of an element, did the second parser read
//! precisely what the first would have, and its elements are taken. Otherwise (a wrong guess,
//! or an error in the second half, which the first parser then meets and reports itself) its
//! work is dropped. The result, errors included, is always the one-thread result.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::read::{Fault, Parser};
use crate::source::Input;
use crate::write::HELPER_STACK;

/// Lists with at least this many bytes left to read after their start are read on two threads.
pub(crate) const PARALLEL_MIN_BYTES: usize = 4 << 20;

#[cfg(test)]
thread_local! {
    /// How many times this thread took a second parser's work: the tests must see that the
    /// two-thread path runs, since its results are the one-thread results by design.
    static TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The longest whitespace between a list's bracket and its first element that is looked for
/// again between elements.
const MAX_INDENT: usize = 256;

/// How far past the middle a second parser's starting point is looked for.
const PROBE: usize = 1 << 20;

/// How [`Read`] ended without an error.
pub(crate) enum Stopped {
    /// At the list's closing bracket.
    AtEnd,
    /// At the element where the second parser started.
    AtSplit,
    /// The second parser, told that its start was no element boundary.
    GaveUp,
}

/// Which part of a list a parser reads.
#[derive(Clone, Copy)]
pub(crate) enum Role<'s> {
    /// All of it.
    Alone,
    /// From the start to `split` (a source offset); tells the second parser to give up if
    /// it passes `split` inside an element.
    First { split: usize, stop: &'s AtomicBool },
    /// From the guessed boundary to the end, unless told to give up.
    Second { stop: &'s AtomicBool },
    /// All of it, unless an element starts at or after this source offset first: then
    /// the list is long, and the rest may be read on two threads.
    Until(usize),
}

impl Role<'_> {
    /// Where the parser is, at the start of an element (after its whitespace): whether
    /// to stop there.
    pub(crate) fn stops_at(self, offset: usize) -> Option<Stopped> {
        match self {
            Role::First { split, stop } => {
                if offset == split {
                    return Some(Stopped::AtSplit);
                }
                if offset > split {
                    stop.store(true, Ordering::Relaxed);
                }
                None
            }
            Role::Second { stop } if stop.load(Ordering::Relaxed) => Some(Stopped::GaveUp),
            Role::Until(limit) if offset >= limit => Some(Stopped::AtSplit),
            _ => None,
        }
    }

    /// The offset that fast paths must not read past without stopping.
    pub(crate) fn limit(self) -> usize {
        match self {
            Role::First { split, .. } => split,
            Role::Until(limit) => limit,
            _ => usize::MAX,
        }
    }
}

/// Reads the elements of a list into a collection, as far as a role says; the cursor is at
/// the first element, and at the end after the closing bracket.
pub(crate) trait Read<I: Input, C>: Sync {
    fn read(&self, p: &mut Parser<I>, into: &mut C, role: Role<'_>) -> Result<Stopped, Fault>;
}

/// Reads the rest of a list from the element at the cursor, on two threads when what is
/// left is long and a boundary to start a second parser at is found. `indent` is the
/// source range between the list's opening bracket and its first element; `before` and
/// `after` say what ends an element (before the comma) and what starts one.
pub(crate) fn read_list<I: Input, C: Default + Send + Extend<E> + IntoIterator<Item = E>, E>(
    p: &mut Parser<I>,
    into: &mut C,
    indent: (usize, usize),
    (before, after): (&[u8], &[u8]),
    reader: &impl Read<I, C>,
) -> Result<(), Fault> {
    let Some(split) = split_point(p, indent, before, after) else {
        reader.read(p, into, Role::Alone)?;
        return Ok(());
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut second = p.fork(split);
        let stop = &stop;
        let spawned = crate::spawn_scoped_beside(
            std::thread::Builder::new().stack_size(HELPER_STACK),
            scope,
            move || {
                let mut read = C::default();
                let ended = reader.read(&mut second, &mut read, Role::Second { stop });
                matches!(ended, Ok(Stopped::AtEnd)).then_some((read, second))
            },
        );
        let Ok(helper) = spawned else {
            // The system refused a second thread: one reads it all.
            reader.read(p, into, Role::Alone)?;
            return Ok(());
        };
        let first = reader.read(p, into, Role::First { split, stop });
        if !matches!(first, Ok(Stopped::AtSplit)) {
            // An error, or the end came first: the second parser's work is not needed.
            stop.store(true, Ordering::Relaxed);
        }
        // A panic of the helper would be a bug; the one-thread path below still holds.
        let second = helper.join().ok().flatten();
        match (first?, second) {
            (Stopped::AtSplit, Some((read, second))) => {
                into.extend(read);
                p.resume_from(second);
                #[cfg(test)]
                TAKEN.with(|taken| taken.set(taken.get() + 1));
            }
            (Stopped::AtSplit, None) => {
                reader.read(p, into, Role::Alone)?;
            }
            (Stopped::AtEnd | Stopped::GaveUp, _) => {}
        }
        Ok(())
    })
}

/// Where a second parser could start: after a byte of `before`, a comma, the whitespace
/// that came between the opening bracket and the first element (the source range
/// `indent`: so in Python's layout, only an element of this list, never one nested
/// deeper), and a byte of `after`; looked for in the first mebibyte from the middle of what
/// is left. `None` when what is left is short, when there is one CPU, or when nothing
/// matches.
pub(crate) fn split_point<I: Input>(
    p: &Parser<I>,
    (open, first): (usize, usize),
    before: &[u8],
    after: &[u8],
) -> Option<usize> {
    let here = p.offset();
    let left = p.size().saturating_sub(here);
    if left < PARALLEL_MIN_BYTES || !std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    {
        return None;
    }
    // Python's layout indents by a few bytes; a longer run is no layout to look for (and
    // reading it would hold it in memory, past the window).
    if first - open > MAX_INDENT {
        return None;
    }
    let mut indent = vec![0; first - open];
    read_exact_at(p, &mut indent, open)?;
    let middle = here + left / 2;
    let mut probe = vec![0; PROBE.min(p.size() - middle)];
    read_exact_at(p, &mut probe, middle)?;
    let pattern_len = 2 + indent.len() + 1;
    probe
        .windows(pattern_len)
        .position(|candidate| {
            before.contains(&candidate[0])
                && candidate[1] == b','
                && candidate[2..2 + indent.len()] == indent[..]
                && after.contains(&candidate[pattern_len - 1])
        })
        .map(|i| middle + i + 2 + indent.len())
}

/// Fills `buf` from source offset `offset`; `None` if the source cannot (a failed or short
/// read: then there is simply no second thread, and the first parser meets the problem).
fn read_exact_at<I: Input>(p: &Parser<I>, buf: &mut [u8], offset: usize) -> Option<()> {
    (p.read_full(buf, offset).ok()? == buf.len()).then_some(())
}

/// Whether this machine reads long lists on two threads; if not, the test named `test`
/// cannot check that it does, and says so (failing under CI unless allowed).
#[cfg(test)]
pub(crate) fn two_cpus(test: &str) -> bool {
    let two = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    if !two {
        penin_testkit::skip(test, "one CPU: lists are read on one thread here");
    }
    two
}

#[cfg(test)]
mod tests {
    use penin_artifacts::{Map, Value};

    use super::*;
    use crate::document::Document;

    /// Where the top arrays are found long (`read::LONG_LIST`).
    const LONG: usize = 1 << 20;
    use crate::reader::Reader;
    use crate::source::NotInMemory;

    /// Reads `bytes` in memory and through windows; both must give `expected`, and the
    /// second parser's work must have been taken `taken` times in each (when it says).
    fn assert_reads(bytes: &[u8], expected: &Document, taken: Option<usize>, what: &str) {
        for windowed in [false, true] {
            let before = TAKEN.with(std::cell::Cell::get);
            let reader = Reader::new().history_maxlen(None);
            let doc = if windowed {
                reader.read_document(&NotInMemory(bytes))
            } else {
                reader.read_document(bytes)
            }
            .unwrap_or_else(|e| panic!("{what}, windowed {windowed}: {e}"));
            assert!(
                crate::to_vec(&doc) == crate::to_vec(expected),
                "{what}, windowed {windowed}"
            );
            let after = TAKEN.with(std::cell::Cell::get);
            if let Some(taken) = taken {
                assert_eq!(after - before, taken, "{what}, windowed {windowed}");
            }
        }
    }

    fn record(i: i64) -> Value {
        let mut params = Map::new();
        params.insert("gen", Value::from(i % 500));
        params.insert(
            "names",
            Value::Array(vec![Value::from("a"), Value::from("b")]),
        );
        let mut task = Map::new();
        task.insert("task_id", Value::from(i));
        task.insert("status", Value::from("completed"));
        task.insert("params", Value::from(params));
        task.insert("duration_s", Value::from(f64::from(i as i32) / 7.0));
        Value::from(task)
    }

    /// Long lists of every kind — objects, floats, integers, strings, arrays — under a
    /// history and under extra keys, in Python's layout and on one line: the two-thread
    /// read gives the state, and its second half is really the second parser's.
    #[test]
    fn long_lists_of_every_kind_are_read_on_two_threads() {
        if !two_cpus("parallel::tests::long_lists_of_every_kind_are_read_on_two_threads") {
            return;
        }
        let mut tasks = Document::new(None);
        for i in 0..80_000 {
            tasks.task_history.push_back(record(i));
        }
        let long = |f: &dyn Fn(i32) -> Value| Value::Array((0..800_000).map(f).collect());
        let kinds = [
            ("floats", long(&|i| Value::from(f64::from(i) / 3.0))),
            ("ints", long(&|i| Value::from(i64::from(i) * 1001))),
            ("strings", long(&|i| Value::from(format!("s{i}")))),
            (
                "pairs",
                long(&|i| Value::Array(vec![Value::from(i64::from(i)), Value::Null])),
            ),
        ];
        let mut all = Document::new(None);
        for style in [crate::Style::Pretty, crate::Style::Compact] {
            let bytes = crate::to_vec_styled(&tasks, style);
            assert!(bytes.len() > PARALLEL_MIN_BYTES + LONG, "{}", bytes.len());
            assert_reads(&bytes, &tasks, Some(1), &format!("tasks {style:?}"));
            // Where the system refuses the second thread, this one reads it all.
            crate::refusing_helpers(|| {
                assert_reads(
                    &bytes,
                    &tasks,
                    Some(0),
                    &format!("tasks {style:?}, refused"),
                );
            });
            for (name, value) in &kinds {
                let mut doc = Document::new(None);
                doc.extra.insert(*name, value.clone());
                all.extra.insert(*name, value.clone());
                let bytes = crate::to_vec_styled(&doc, style);
                assert!(bytes.len() > PARALLEL_MIN_BYTES + LONG, "{name}");
                assert_reads(&bytes, &doc, Some(1), &format!("{name} {style:?}"));
            }
            // One after another: the guesses for the first lists fall in later ones, where
            // the second parser reads another list to its end. Dropped: the state is whole.
            let bytes = crate::to_vec_styled(&all, style);
            let doc = Reader::new().read_document(&bytes[..]).unwrap();
            assert!(crate::to_vec(&doc) == crate::to_vec(&all), "all {style:?}");
        }
    }

    /// On one line, `},{` also occurs inside the records (their lists of objects), where
    /// a guess can land: whatever is guessed, the state read is the state written.
    #[test]
    fn a_guess_inside_an_item_changes_nothing() {
        if !two_cpus("parallel::tests::a_guess_inside_an_item_changes_nothing") {
            return;
        }
        let mut doc = Document::new(None);
        // Long lists of steps, so that `},{` inside a record is the common case.
        for i in 0..6_000 {
            let inner: Vec<Value> = (0..100)
                .map(|j| {
                    let mut m = Map::new();
                    m.insert("j", Value::from(j));
                    Value::from(m)
                })
                .collect();
            let mut task = Map::new();
            task.insert("task_id", Value::from(i));
            task.insert("steps", Value::Array(inner));
            doc.task_history.push_back(Value::from(task));
        }
        let bytes = crate::to_vec_styled(&doc, crate::Style::Compact);
        assert!(bytes.len() > PARALLEL_MIN_BYTES + LONG);
        // Where `Parser::top_items` looks, at the first record a mebibyte into the list:
        // the guess lands inside a record, in its steps.
        let text = std::str::from_utf8(&bytes).unwrap();
        let first = text.find("\"items\":[").unwrap() + 9;
        let at = first + LONG + text[first + LONG..].find("{\"task_id\"").unwrap();
        let p = Parser::new(crate::source::Whole::new(&bytes)).fork(at);
        let split = split_point(&p, (first, first), b"}", b"{").unwrap();
        assert!(
            text[split..].starts_with("{\"j\":"),
            "{}",
            &text[split..split + 20]
        );
        // So the first parser passes it, the second's work is dropped, and the state whole.
        assert_reads(&bytes, &doc, Some(0), "nested objects on one line");
    }

    /// Whitespace of any length may come before the first element; past a layout's few
    /// bytes it is not looked for (nor read into memory), and the list reads as one thread.
    #[test]
    fn a_long_indent_is_no_pattern() {
        if !two_cpus("parallel::tests::a_long_indent_is_no_pattern") {
            return;
        }
        for spaces in [4, MAX_INDENT, MAX_INDENT + 1] {
            // Items separated by the indent that came before the first: 6 MB of them.
            let indent = " ".repeat(spaces);
            let n = (6 << 20) / (spaces + 2);
            let items: Vec<String> = (0..n).map(|i| (i % 10).to_string()).collect();
            let text = format!("{{\"a\": [{indent}{}]}}", items.join(&format!(",{indent}")));
            let bytes = text.as_bytes();
            let open = text.find('[').unwrap() + 1;
            let first = open + spaces;
            // At an item a mebibyte into the list, as `Parser::top_items` looks.
            let at = first + (1 << 20) / (spaces + 2) * (spaces + 2);
            let p = Parser::new(crate::source::Whole::new(bytes)).fork(at);
            let split = split_point(&p, (open, first), b"0123456789", b"-0123456789");
            assert_eq!(split.is_some(), spaces <= MAX_INDENT, "{spaces} spaces");
            let doc = Reader::new().read_document(bytes).unwrap();
            assert!(
                matches!(&doc.extra["a"], Value::Array(items) if items.len() == n),
                "{spaces} spaces"
            );
        }
    }

    /// An error in the second half is reported as the one-thread read reports it: the
    /// item's index counted from the start, its line and its column.
    #[test]
    fn an_error_in_the_second_half_is_the_one_thread_error() {
        let mut doc = Document::new(None);
        for i in 0..40_000 {
            doc.task_history.push_back(record(i));
        }
        let text = String::from_utf8(crate::to_vec(&doc)).unwrap();
        let at = text.rfind("\"status\": \"completed\"").unwrap();
        let broken = format!("{}\"status\": completed{}", &text[..at], &text[at + 22..]);
        let line = broken[..at].matches('\n').count() + 1;
        // The value's `c`, 10 bytes after the key's quote; columns count from 1.
        let column = at + 10 - broken[..at].rfind('\n').unwrap();
        for windowed in [false, true] {
            let reader = Reader::new().history_maxlen(None);
            let error = if windowed {
                reader.read_document(&NotInMemory(broken.as_bytes()))
            } else {
                reader.read_document(broken.as_bytes())
            }
            .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "expected a value, found 'c' at line {line}, column {column} in \
                     task_history.items[39999][\"status\"]"
                ),
                "windowed {windowed}"
            );
        }
    }
}
