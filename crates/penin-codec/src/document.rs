//! The whole state file: the seed's three top-level keys and any others, in order.

use penin_artifacts::{
    ARTIFACT_TAG, Deque, KnowledgeBase, Map, Number, NumericVectorArtifact, Value,
};

use crate::error::Result;
use crate::parallel::{self, Role, Stopped};
use crate::path::Segment;
use crate::read::{Fault, Parser};
use crate::reader::Reader;
use crate::source::{Input, Source};
use crate::write::{Encode, Encoder};

/// The seed's default bound of both histories.
pub const DEFAULT_HISTORY_MAXLEN: usize = 1000;

/// A state file's contents.
///
/// Written as `knowledge_base`, `task_history`, `score_history`, then the [`extra`] keys in
/// their original order (the Python loader drops them; penin keeps them).
///
/// [`extra`]: Document::extra
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Artifacts by key, in insertion order.
    pub knowledge_base: KnowledgeBase,
    /// Task records, usually objects.
    pub task_history: Deque<Value>,
    /// Scores, integers or floats as they were added.
    pub score_history: Deque<Number>,
    /// Top-level keys beyond the seed's three.
    pub extra: Map,
}

impl Document {
    /// An empty state whose histories keep at most `history_maxlen` items.
    #[must_use]
    pub fn new(history_maxlen: Option<usize>) -> Self {
        Document {
            knowledge_base: KnowledgeBase::new(),
            task_history: Deque::with_bound(history_maxlen),
            score_history: Deque::with_bound(history_maxlen),
            extra: Map::new(),
        }
    }

    /// Reads a state file.
    ///
    /// A missing history, or one written as a plain list, gets `history_maxlen`; a tagged
    /// deque keeps the `maxlen` it was written with (the file wins, as in the seed). A
    /// missing knowledge base is empty. Every knowledge base entry must be an artifact and
    /// every score a number: anything else is an [`Error::Shape`](crate::Error::Shape) that names the path.
    pub fn decode(input: &[u8], history_maxlen: Option<usize>) -> Result<Self> {
        Reader::new()
            .history_maxlen(history_maxlen)
            .read_document(input)
    }

    /// Reads a state from `source`, a file for instance, holding only a window of it in
    /// memory at a time (see [`Reader`], which also sets the window's size): memory holds
    /// the state, not the state and the file. What it accepts, and every error with its
    /// position, is what [`Document::decode`] gives for the same bytes; a failed read of the
    /// source is [`Error::Io`](crate::Error::Io).
    pub fn read_from<S: Source + ?Sized>(
        source: &S,
        history_maxlen: Option<usize>,
    ) -> Result<Self> {
        Reader::new()
            .history_maxlen(history_maxlen)
            .read_document(source)
    }
}

impl Default for Document {
    /// An empty state with the seed's bound of 1000.
    fn default() -> Self {
        Document::new(Some(DEFAULT_HISTORY_MAXLEN))
    }
}

pub(crate) fn decode_top<I: Input>(
    p: &mut Parser<I>,
    history_maxlen: Option<usize>,
) -> Result<Document, Fault> {
    let start = p.offset();
    if p.peek() != Some(b'{') {
        let value = p.value()?;
        return Err(Fault::shape(
            start,
            format!("expected an object, found {}", value.kind()),
        ));
    }
    let mut doc = Document::new(history_maxlen);
    if !p.open(b'}')? {
        return Ok(doc);
    }
    loop {
        let key = p.key()?;
        p.skip_ws();
        let at = p.offset();
        match key.as_str() {
            "knowledge_base" => {
                doc.knowledge_base =
                    knowledge_base(p).map_err(|f| f.within(Segment::Field("knowledge_base")))?;
            }
            "task_history" => {
                let value = p
                    .value()
                    .map_err(|f| f.within(Segment::Field("task_history")))?;
                doc.task_history = history(value, history_maxlen, at)
                    .map_err(|f| f.within(Segment::Field("task_history")))?;
            }
            "score_history" => {
                let value = p
                    .value()
                    .map_err(|f| f.within(Segment::Field("score_history")))?;
                doc.score_history = history(value, history_maxlen, at)
                    .and_then(|h| scores(p, h, at))
                    .map_err(|f| f.within(Segment::Field("score_history")))?;
            }
            _ => match p.value() {
                Ok(value) => {
                    doc.extra.insert(key, value);
                }
                Err(fault) => return Err(fault.within(Segment::Key(key.into()))),
            },
        }
        if !p.next_item(b'}')? {
            return Ok(doc);
        }
    }
}

/// `{"key": artifact, ...}`, reading each vector straight into `f64`s; a large knowledge
/// base on two threads (see `parallel.rs`).
fn knowledge_base<I: Input>(p: &mut Parser<I>) -> Result<KnowledgeBase, Fault> {
    let start = p.offset();
    if p.peek() != Some(b'{') {
        let value = p.value()?;
        return Err(Fault::shape(
            start,
            format!("expected an object of artifacts, found {}", value.kind()),
        ));
    }
    let mut kb = KnowledgeBase::new();
    if p.open(b'}')? {
        // An entry ends with its artifact's `}`; the next starts with its key's `"`.
        let indent = (start + 1, p.offset());
        parallel::read_list(p, &mut kb, indent, (b"}", b"\""), &Entries)?;
    }
    Ok(kb)
}

/// The entries of a knowledge base.
struct Entries;

impl<I: Input> parallel::Read<I, KnowledgeBase> for Entries {
    fn read(
        &self,
        p: &mut Parser<I>,
        kb: &mut KnowledgeBase,
        role: Role<'_>,
    ) -> Result<Stopped, Fault> {
        let mut dimensions = 0;
        loop {
            p.skip_ws();
            if let Some(stopped) = role.stops_at(p.offset()) {
                return Ok(stopped);
            }
            let key = p.key()?;
            match artifact(p, dimensions) {
                Ok(artifact) => {
                    dimensions = artifact.vector.len();
                    kb.insert(key.into(), artifact);
                }
                Err(fault) => return Err(fault.within(Segment::Key(key.into()))),
            }
            if !p.next_item(b'}')? {
                return Ok(Stopped::AtEnd);
            }
        }
    }
}

/// An artifact; `dimensions` is a guess of its vector's length (the previous one's), so the
/// vector is allocated once.
fn artifact<I: Input>(
    p: &mut Parser<I>,
    dimensions: usize,
) -> Result<NumericVectorArtifact, Fault> {
    p.skip_ws();
    let start = p.offset();
    if p.peek() != Some(b'{') {
        let value = p.value()?;
        return Err(Fault::shape(
            start,
            format!("expected a NumericVectorArtifact, found {}", value.kind()),
        ));
    }
    let mut vector = None;
    let mut rest = Map::new();
    if p.open(b'}')? {
        loop {
            let key = p.key()?;
            if key == "vector" {
                // A duplicate `vector` keeps the last, as a Python dict does.
                vector =
                    Some(floats(p, dimensions).map_err(|f| f.within(Segment::Field("vector")))?);
            } else {
                match p.value() {
                    Ok(value) => {
                        rest.insert(key, value);
                    }
                    Err(fault) => return Err(fault.within(Segment::Spelled(key.into()))),
                }
            }
            if !p.next_item(b'}')? {
                break;
            }
        }
    }
    match rest.get("__type__") {
        Some(Value::String(tag)) if tag == ARTIFACT_TAG => {}
        Some(Value::String(tag)) => {
            return Err(Fault::shape(
                start,
                format!("expected a NumericVectorArtifact, found an object tagged {tag:?}"),
            ));
        }
        _ => {
            return Err(Fault::shape(
                start,
                "expected a NumericVectorArtifact, found an object without \"__type__\": \"NumericVectorArtifact\"".to_owned(),
            ));
        }
    }
    let Some(vector) = vector else {
        return Err(Fault::shape(
            start,
            "expected a NumericVectorArtifact, found one without \"vector\"".to_owned(),
        ));
    };
    NumericVectorArtifact::from_parts(vector, rest).map_err(|e| p.artifacts_fault(start, &e))
}

/// `[number, ...]` as `f64`s; integers only where a float holds them exactly.
fn floats<I: Input>(p: &mut Parser<I>, capacity: usize) -> Result<Vec<f64>, Fault> {
    p.skip_ws();
    let start = p.offset();
    if p.peek() != Some(b'[') {
        let value = p.value()?;
        return Err(Fault::shape(
            start,
            format!("expected an array of numbers, found {}", value.kind()),
        ));
    }
    let mut out = Vec::with_capacity(capacity);
    if p.open(b']')? {
        loop {
            // Most elements, fast; then one with every check (the last, one cut by the
            // window's edge, one of another form, or an error).
            p.plain_floats(&mut out, |f| f, usize::MAX);
            p.skip_ws();
            let at = p.offset();
            let element = if let Some(float) = p.plain_float() {
                Ok(float)
            } else if let Some(b'-' | b'0'..=b'9' | b'N' | b'I') = p.peek() {
                let n = p
                    .number()
                    .map_err(|f| f.within(Segment::Index(out.len())))?;
                n.to_f64_exact().ok_or_else(|| {
                    Fault::shape(at, format!("expected a number that a 64-bit float holds exactly, found the integer {n}"))
                })
            } else {
                let value = p.value().map_err(|f| f.within(Segment::Index(out.len())))?;
                Err(Fault::shape(
                    at,
                    format!("expected a number, found {}", value.kind()),
                ))
            };
            out.push(element.map_err(|f| f.within(Segment::Index(out.len())))?);
            if !p.next_item(b']')? {
                break;
            }
        }
    }
    Ok(out)
}

/// A history: a tagged deque as it was written, or a plain list with the configured bound.
fn history(value: Value, history_maxlen: Option<usize>, at: usize) -> Result<Deque<Value>, Fault> {
    match value {
        Value::Deque(deque) => Ok(*deque),
        Value::Array(items) => Ok(Deque::from_vec(items, history_maxlen)),
        other => Err(Fault::shape(
            at,
            format!("expected a deque or an array, found {}", other.kind()),
        )),
    }
}

/// The scores of a history read at `at`, which must all be numbers.
fn scores<I: Input>(
    p: &Parser<I>,
    history: Deque<Value>,
    at: usize,
) -> Result<Deque<Number>, Fault> {
    let kept = history.len();
    let mut out = Deque::with_bound(history.maxlen());
    out.extra_mut().clone_from(history.extra());
    for (i, item) in history.into_iter().enumerate() {
        match item {
            Value::Number(n) => {
                out.push_back(n);
            }
            other => {
                return Err(not_a_score(p, at, i, kept, other.kind()));
            }
        }
    }
    Ok(out)
}

/// The error for item `i` of the `kept` items of the history read at `at`: placed at the
/// item in the file, whose index counts the items the bound dropped, under `.items` for a
/// tagged deque and directly for a plain list.
fn not_a_score<I: Input>(p: &Parser<I>, at: usize, i: usize, kept: usize, found: &str) -> Fault {
    let field = if p.byte_at(at) == Some(b'{') {
        "items"
    } else {
        ""
    };
    let index = p
        .locate(at, field)
        .and_then(|items| p.count_items(items))
        .map_or(i, |written| written.saturating_sub(kept) + i);
    let item_at = p.locate(at, &format!("{field}[{index}]")).unwrap_or(at);
    let fault = Fault::shape(item_at, format!("expected a number, found {found}"))
        .within(Segment::Index(index));
    if field.is_empty() {
        fault
    } else {
        fault.within(Segment::Field("items"))
    }
}

impl Encode for Document {
    fn encode(&self, e: &mut Encoder<'_>, _level: usize) {
        e.top_open();
        e.top_key(true, "knowledge_base");
        e.knowledge_base(&self.knowledge_base, 1);
        e.top_key(false, "task_history");
        e.deque(&self.task_history, 1, super::write::Encoder::value);
        e.top_key(false, "score_history");
        e.deque(&self.score_history, 1, |e, n, _| e.number(n));
        for (key, value) in &self.extra {
            e.top_key(false, key);
            e.value(value, 1);
        }
        e.top_close(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Whole, Windowed};

    /// A state large enough for two threads, in both layouts.
    fn large(style: crate::Style) -> Vec<u8> {
        let mut doc = Document::default();
        for i in 0..3000_i32 {
            let vector: Vec<f64> = (0..100).map(|j| f64::from(i * 100 + j) / 7.0).collect();
            doc.knowledge_base
                .insert(format!("k{i}"), NumericVectorArtifact::new(vector));
        }
        crate::to_vec_styled(&doc, style)
    }

    /// From the knowledge base's first key, where `knowledge_base` looks for it: the split
    /// point is past the middle, at the start of an entry's key, after `},`.
    fn assert_split_found<I: Input>(mut p: Parser<I>, bytes: &[u8], what: &str) {
        assert!(p.open(b'}').unwrap());
        assert_eq!(p.key().unwrap(), "knowledge_base");
        p.skip_ws();
        let brace = p.offset();
        assert!(p.open(b'}').unwrap());
        let split = parallel::split_point(&p, (brace + 1, p.offset()), b"}", b"\"")
            .unwrap_or_else(|| panic!("{what}: no split"));
        assert!(split > bytes.len() / 2, "{what}: past the middle");
        assert!(bytes[split..].starts_with(b"\"k"), "{what}");
        let before = std::str::from_utf8(&bytes[..split]).unwrap().trim_end();
        assert!(before.ends_with("},"), "{what}");
    }

    /// The two-thread read must actually find where to split: the equality tests elsewhere
    /// pass just as well on one thread, so they cannot tell if the split was never found.
    #[test]
    fn a_large_knowledge_base_has_a_split_point_at_an_entry() {
        if !parallel::two_cpus(
            "document::tests::a_large_knowledge_base_has_a_split_point_at_an_entry",
        ) {
            return;
        }
        for style in [crate::Style::Pretty, crate::Style::Compact] {
            let bytes = large(style);
            assert!(bytes.len() > parallel::PARALLEL_MIN_BYTES, "{style:?}");
            assert_split_found(Parser::new(Whole::new(&bytes)), &bytes, "in memory");
            let windowed = Windowed::new(&bytes[..], 0, bytes.len() as u64, 4096);
            assert_split_found(Parser::new(windowed), &bytes, "through windows");
        }
    }

    /// Whatever the shape of the state — a long history of records, a long list of scores,
    /// a large extra value, a long string, metadata of many keys — the window holds a chunk
    /// and what is left of the token being read, never a whole part of the state.
    #[test]
    fn a_window_holds_a_chunk_whatever_the_shape() {
        let mut doc = Document::new(None);
        for i in 0..20_000_i64 {
            let mut task = Map::new();
            task.insert("task_id", Value::from(i));
            task.insert("note", Value::from("an \"escaped\" note, é"));
            doc.task_history.push_back(Value::from(task));
            doc.score_history.push_back(Number::Int(i));
        }
        let mut metadata = Map::new();
        for i in 0..5000 {
            metadata.insert(format!("key {i}"), Value::from(f64::from(i) / 3.0));
        }
        doc.knowledge_base.insert(
            "k".into(),
            NumericVectorArtifact::new(vec![0.5; 5000]).with_metadata(metadata),
        );
        doc.extra
            .insert("long", Value::from("é\u{1F600}\\".repeat(100_000)));
        doc.extra.insert(
            "floats",
            Value::Array(
                (0..50_000)
                    .map(|i| Value::from(f64::from(i) / 7.0))
                    .collect(),
            ),
        );
        let bytes = crate::to_vec(&doc);
        assert!(bytes.len() > 2_000_000, "{}", bytes.len());
        for chunk in [1, 64, 4096] {
            let input = Windowed::new(&bytes[..], 0, bytes.len() as u64, chunk);
            let mut p = Parser::new(input);
            let back = decode_top(&mut p, None).unwrap();
            assert_eq!(crate::to_vec(&back), bytes, "chunk {chunk}");
            // The longest token here is a float of 20 bytes.
            assert!(
                p.input().peak <= chunk + 32,
                "chunk {chunk}: {}",
                p.input().peak
            );
        }
    }
}
