//! The reader's options and its entry points: one decoder for every source.

use penin_artifacts::Value;

use crate::document::{DEFAULT_HISTORY_MAXLEN, Document, decode_top};
use crate::error::{Error, Result};
use crate::read::{Fault, Parser};
use crate::source::{Input, Source, Whole, Windowed};

/// The size of a window onto a source that is not in memory.
pub const DEFAULT_WINDOW: usize = 4 << 20;

/// Reads states and values from any [`Source`], with options.
///
/// A source in memory (a slice, a `Vec`) is parsed in place. Any other (a file) is read a
/// window at a time: memory holds what is decoded plus a window (two while a long list — a
/// large knowledge base, a long history — is read on two threads), every byte is parsed
/// once, and every byte comes from the one handle, error positions included. The window changes where the bytes come from, never
/// what is accepted: for the same bytes, every window size gives the same state or the same
/// error, with the same line, column and path.
///
/// ```
/// use penin_codec::{Document, Reader};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json");
/// std::fs::write(&path, r#"{"task_history": [{"task_id": 1}], "score_history": [0.5, 1]}"#)?;
///
/// let file = std::fs::File::open(&path)?;
/// let doc: Document = Reader::new().history_maxlen(Some(10)).window(16).read_document(&file)?;
/// assert_eq!(doc.task_history.maxlen(), Some(10));
/// assert_eq!(doc.score_history.len(), 2);
///
/// // A problem is placed exactly, whatever the window.
/// std::fs::write(&path, "{\"score_history\": [0.5,\n \"high\"]}")?;
/// let file = std::fs::File::open(&path)?;
/// let error = Reader::new().window(4).read_document(&file).unwrap_err();
/// assert_eq!(error.to_string(), "score_history[1]: expected a number, found a string (line 2, column 2)");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    history_maxlen: Option<usize>,
    window: usize,
}

impl Reader {
    /// The seed's bound for histories written as plain lists ([`DEFAULT_HISTORY_MAXLEN`])
    /// and windows of [`DEFAULT_WINDOW`] bytes.
    #[must_use]
    pub fn new() -> Self {
        Reader {
            history_maxlen: Some(DEFAULT_HISTORY_MAXLEN),
            window: DEFAULT_WINDOW,
        }
    }

    /// The bound of a history written as a plain list, or missing (`None`: unbounded). A
    /// tagged deque keeps the `maxlen` it was written with.
    #[must_use]
    pub fn history_maxlen(mut self, maxlen: Option<usize>) -> Self {
        self.history_maxlen = maxlen;
        self
    }

    /// How many bytes of a source that is not in memory are read at a time (at least 1).
    /// A token longer than the window (a very long number) grows it while it is read.
    #[must_use]
    pub fn window(mut self, bytes: usize) -> Self {
        self.window = bytes.max(1);
        self
    }

    /// Reads a state (see [`Document::decode`] for what it accepts).
    pub fn read_document<S: Source + ?Sized>(&self, source: &S) -> Result<Document> {
        self.read(
            source,
            &Top {
                history_maxlen: self.history_maxlen,
            },
        )
    }

    /// Reads any value, tags recognised anywhere.
    pub fn read_value<S: Source + ?Sized>(&self, source: &S) -> Result<Value> {
        self.read(source, &Any)
    }

    fn read<S: Source + ?Sized, P: Parse>(&self, source: &S, parse: &P) -> Result<P::Output> {
        if let Some(bytes) = source.as_slice() {
            return whole(&mut Parser::new(Whole::new(bytes)), parse);
        }
        let size = source.size().map_err(Error::Io)?;
        whole(
            &mut Parser::new(Windowed::new(source, 0, size, self.window)),
            parse,
        )
    }
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

/// What a read makes of the input: a parse generic over the input (which a closure cannot be).
pub(crate) trait Parse {
    type Output;
    fn parse<I: Input>(&self, p: &mut Parser<I>) -> Result<Self::Output, Fault>;
}

/// A state file.
struct Top {
    history_maxlen: Option<usize>,
}

impl Parse for Top {
    type Output = Document;

    fn parse<I: Input>(&self, p: &mut Parser<I>) -> Result<Document, Fault> {
        decode_top(p, self.history_maxlen)
    }
}

/// Any value.
struct Any;

impl Parse for Any {
    type Output = Value;

    fn parse<I: Input>(&self, p: &mut Parser<I>) -> Result<Value, Fault> {
        p.value()
    }
}

/// Parses the whole input as one value, then only whitespace.
pub(crate) fn whole<I: Input, P: Parse>(p: &mut Parser<I>, parse: &P) -> Result<P::Output> {
    if !p.has_content() {
        return Err(p.take_failure().map_or(Error::Empty, Error::Io));
    }
    match parse.parse(p).and_then(|v| p.finish().map(|()| v)) {
        // A read that failed after the document ended still failed.
        Ok(value) => p.take_failure().map_or(Ok(value), |e| Err(Error::Io(e))),
        Err(fault) => Err(p.error(fault)),
    }
}
