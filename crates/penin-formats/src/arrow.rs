//! The arrow snapshot: a state as an Arrow IPC **file** (the "Feather v2" file format), which
//! pyarrow, polars and `DuckDB` open without penin, with the knowledge base as columns and
//! everything else kept bit for bit in the schema metadata.
//!
//! # Layout
//!
//! The file is what arrow-rs's `arrow_ipc::writer::FileWriter` writes with its default
//! options (metadata version V5, buffers aligned to 64 bytes, no compression, no
//! dictionaries). penin writes those bytes itself (the tests compare them with
//! `FileWriter`'s, byte for byte), so that each vector's floats go from the state straight
//! into the writer: through `FileWriter` they were first gathered into a batch's array.
//! All integers are little-endian. With `F` the offset of the footer and `N` its length:
//!
//! | offset | bytes | what |
//! |---|---|---|
//! | 0 | 6 | `ARROW1` |
//! | 6 | 58 | zero (the writer aligns what follows to 64 bytes) |
//! | 64 | | the schema message: `ff ff ff ff`, its flatbuffer's padded length (`i32`), the `Message` flatbuffer (a `Schema`, with the schema metadata below), zero padding; no body |
//! | | | one record-batch message per batch: `ff ff ff ff`, padded length (`i32`), the `Message` flatbuffer (a `RecordBatch`), padding, then the body: the batch's buffers, each padded to 64 bytes |
//! | `F - 8` | 8 | end of stream: `ff ff ff ff 00 00 00 00` |
//! | `F` | `N` | the footer, a `Footer` flatbuffer: version V5, the schema again, no dictionaries, one `Block` (offset, metadata length, body length) per record batch, and the custom metadata `penin.xxh3_128` |
//! | `F + N` | 4 | `N` (`i32`) |
//! | `F + N + 4` | 6 | `ARROW1` |
//!
//! ## Columns: the knowledge base
//!
//! One row per artifact, in the knowledge base's order, in batches of at most
//! [`ROWS_PER_BATCH`] rows and [`FLOATS_PER_BATCH`] floats (a single longer vector has a
//! batch of its own), and fewer when a batch's text would pass 1 GiB, so no 32-bit offset
//! overflows (a reader takes any number of batches, of any size):
//!
//! | column | type | what |
//! |---|---|---|
//! | `key` | `Utf8`, not null | the artifact's key |
//! | `vector` | `FixedSizeList<item: Float64 not null, D>`, not null, when every vector has the same length `D ≥ 1`; else (vectors of different lengths, all empty, or an empty knowledge base) `List<item: Float64 not null>` | the vector, every float bit for bit (NaN payloads, `-0.0`, infinities) |
//! | `metadata` | `Utf8`, not null | the artifact's metadata object in the seed JSON, compact (`penin_codec::to_vec_compact`: `{"source":"docs","n":1}`) |
//! | `extra` | `Utf8`, nullable | the artifact's keys beyond `__type__`, `vector` and `metadata` as one compact seed-JSON object; null when it has none |
//!
//! ## Schema metadata: the rest of the state, and the version
//!
//! | key | value |
//! |---|---|
//! | `penin.format` | `penin-state` |
//! | `penin.version` | `1` ([`VERSION`]), decimal |
//! | `penin.state` | the compact seed JSON of the state without its knowledge base: `{"knowledge_base":{},"task_history":{"__type__":"deque","items":[...],"maxlen":1000},"score_history":{...},...}`, the extra top-level keys after, in order. Histories, their bounds (`null`: unbounded), their extra keys and the extra top-level keys are read back from it exactly |
//!
//! ## Footer custom metadata: the checksum
//!
//! `penin.xxh3_128`: the XXH3-128 of every byte of the file before the footer (offsets
//! `0..F`, the end-of-stream marker included), as 32 lowercase hex digits (what Python's
//! `xxhash.xxh3_128_hexdigest` prints).
//!
//! # Reading
//!
//! In this order, each step refusing the file before the next:
//!
//! 1. `ARROW1` at the start; the schema message, whose `penin.version` is checked before
//!    anything else: a newer version is [`Error::NewerVersion`] (every later version keeps
//!    `penin.version` in the first message's schema metadata); then `penin.format`.
//! 2. `ARROW1` at the end, the footer length, the end-of-stream marker before the footer.
//! 3. The checksum of `0..F` against the footer's `penin.xxh3_128`.
//! 4. The messages of `0..F`, walked by their lengths, must be the schema, record batches
//!    and the end-of-stream marker, ending exactly at `F`; from them and the checksum the
//!    footer is rebuilt as the writer makes it and compared byte for byte with the file's.
//!    The checksum does not cover the footer; this does, so a changed bit anywhere in the
//!    file is refused ([`Error::Corrupt`]), never read as other data.
//! 5. The batches are decoded in place from one 8-byte-aligned buffer holding the file, and
//!    the vectors are views into it ([`penin_codec::Vector`]): no float is copied after the
//!    read. The checksum of step 3 is computed while the file is read, a chunk at a time
//!    while it is in the cache (of a mapped file: beside the decoding, over the map where
//!    its pages come a 2 MiB folio a fault, else read through the file). The artifacts are
//!    built a chunk of rows at a time by the decoding thread, which puts them into the
//!    knowledge base in order, helped by the thread that computes the checksum beside the
//!    decoding once it is done, and by a thread of their own where a core is free for one
//!    (or in the hashing thread's place when the hash was done first). Their metadata and
//!    extras are read by [`penin_codec::ObjectReader`], which reads the compact objects
//!    penin writes without the general JSON reader.
//!
//! [`map`], and penin's loads before they read a file, check its last bytes first
//! ([`check_frame`]; the first ones too, for step 1, only when the last ones fail): a
//! snapshot extended by zeros or a hole (a sparse file can claim a terabyte) is refused at
//! once, with the error the whole file gives, instead of read to its end or into memory it
//! does not fit. Memory sized by a length a file claims is asked for fallibly: a length the
//! system will not grant is not used (the buffer grows as the bytes come), and memory it
//! refuses as the buffer grows is an error ([`Error::Read`], out of memory), never an aborted
//! process.
//!
//! ```
//! use penin_codec::{Document, NumericVectorArtifact};
//!
//! let mut doc = Document::default();
//! doc.knowledge_base.insert("e1".to_owned(), NumericVectorArtifact::new(vec![0.5, -0.0]));
//! doc.score_history.push_back(0.85.into());
//! let bytes = penin_formats::arrow::write(&doc, Vec::new())?;
//! assert!(bytes.starts_with(b"ARROW1"));
//! let back = penin_formats::arrow::from_slice(&bytes, None)?;
//! assert_eq!(penin_codec::to_vec(&back), penin_codec::to_vec(&doc));
//!
//! let mut bad = bytes.clone();
//! bad[bytes.len() / 2] ^= 1;
//! assert!(penin_formats::arrow::from_slice(&bad, None).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, BufWriter, Read, Write};
use std::sync::{Arc, PoisonError};
use std::thread::Builder;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float64Array, ListArray, RecordBatch, StringArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_ipc::convert::{IpcSchemaEncoder, metadata_to_fb, try_fb_to_schema};
use arrow_ipc::reader::FileDecoder;
use arrow_ipc::writer::DictionaryTracker;
use arrow_ipc::{Block, FooterBuilder, MessageHeader, MetadataVersion};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Metadata, Schema, SchemaRef};
use penin_codec::{
    Document, KnowledgeBase, Map, NumericVectorArtifact, ObjectReader, Source, Vector,
};
use twox_hash::XxHash3_128;

use crate::error::{Error, Result};

mod artifacts;
mod writer;

use artifacts::Artifacts;
#[cfg(test)]
use artifacts::CHUNK_ROWS;

/// The magic number at both ends of an Arrow IPC file.
pub const MAGIC: &[u8; 6] = b"ARROW1";

/// The version of the arrow snapshot this penin writes, and the newest it reads.
pub const VERSION: u64 = 1;

/// The most rows in one record batch.
///
/// Small batches make a faster save: each batch's buffers are built in the memory the
/// previous one freed, where large ones each took fresh pages from the system, which cost
/// more to fault in than the floats cost to copy (a 10,000 × 384 save took about half the
/// time with batches of 1,024 rows as with 8,192, and its peak memory fell from 65 to
/// 43 MB; see docs/benchmarks.md).
pub const ROWS_PER_BATCH: usize = 1024;

/// The most floats in one record batch (4 MiB of them), unless one vector alone has more.
pub const FLOATS_PER_BATCH: usize = 1 << 19;

/// Schema metadata: what the file is.
const FORMAT_KEY: &str = "penin.format";
const FORMAT_TAG: &str = "penin-state";
/// Schema metadata: [`VERSION`].
const VERSION_KEY: &str = "penin.version";
/// Schema metadata: the state without its knowledge base.
const STATE_KEY: &str = "penin.state";
/// Footer custom metadata: the checksum of the bytes before the footer.
const CHECKSUM_KEY: &str = "penin.xxh3_128";

/// The end-of-stream marker: a continuation marker and a zero length.
const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
/// Where the schema message starts: after the magic number, padded to 64 bytes.
const HEADER_LEN: usize = 64;
/// The continuation marker before each message's length.
const CONTINUATION: [u8; 4] = [0xff; 4];
/// The metadata version arrow-rs writes by default.
const IPC_VERSION: MetadataVersion = MetadataVersion::V5;

/// A batch is cut before its text (keys, metadata, extras: each column apart) passes this
/// many bytes: 32-bit offsets never overflow.
const TEXT_LIMIT: usize = 1 << 30;
/// The most floats in one vector: a batch holds at most [`FLOATS_PER_BATCH`] floats or one
/// vector, so its 32-bit offsets never overflow.
const FLOAT_LIMIT: usize = 1 << 27;

/// Writes `doc` into `writer` as an arrow snapshot (through a buffer of its own), flushes it
/// and returns it.
pub fn write<W: Write>(doc: &Document, writer: W) -> io::Result<W> {
    let buffered = write_unbuffered(doc, BufWriter::with_capacity(1 << 20, writer))?;
    buffered
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
}

/// [`write()`] straight into `writer`, for a writer that gathers small writes itself (a
/// `Vec`, a `BufWriter`, an encrypting [`Envelope`](crate::Envelope)): the file is written
/// in many small writes (each vector apart, from where the state holds it, and every
/// length and padding apart).
pub fn write_unbuffered<W: Write>(doc: &Document, writer: W) -> io::Result<W> {
    let schema = schema_of(doc);
    let mut file = writer::Writer::start(writer, &schema)?;
    each_batch(doc, width_of(&schema), |rows| file.batch(rows))?;
    file.finish()
}

/// Builds the knowledge base's record batches of `schema` (the schema of `doc`, or the same
/// columns) and hands each to `write`, in order.
pub(crate) fn for_each_batch(
    doc: &Document,
    schema: &SchemaRef,
    mut write: impl FnMut(&RecordBatch) -> io::Result<()>,
) -> io::Result<()> {
    each_batch(doc, width_of(schema), |rows| write(&rows.batch(schema)?))
}

/// The columns of `doc`'s knowledge base, without the schema metadata that makes a snapshot
/// (what an export writes).
pub(crate) fn columns_of(doc: &Document) -> SchemaRef {
    Arc::new(Schema::new(schema_of(doc).fields().clone()))
}

/// Reads an arrow snapshot from `reader` to its end, into one aligned buffer (`size_hint`:
/// the file's length, if known, so that the buffer is allocated once), and decodes it. A
/// failure of `reader` is [`Error::Read`].
///
/// `history_maxlen` is [`Document::decode`]'s: penin's files carry their histories' bounds,
/// which win.
pub fn read<R: Read>(
    reader: R,
    size_hint: usize,
    history_maxlen: Option<usize>,
) -> Result<Document> {
    let (buffer, prefix) = read_aligned(reader, size_hint)?;
    decode(&buffer, Checksum::Read(Box::new(prefix)), history_maxlen)
}

/// [`read`] of a whole file through a read-only map of it: the snapshot's buffers are the
/// page cache's pages, neither copied nor zeroed, and mapped only as they are used (the
/// load uses those of the keys, the metadata and the messages' headers, and the caller
/// those of the vectors it reads; a kernel may map a whole folio of the page cache at a
/// time). The checksum is computed on a second thread while the batches are decoded: over
/// the map while its pages come a 2 MiB folio a fault, else over the file's bytes read
/// through `file` a piece at a time, as `cat` reads them (`hash_mapped`, which looks at the
/// page faults the map takes). `None` when the file cannot be mapped (the caller reads it
/// instead). A caller that will read every vector takes less time to load and read them
/// through [`map_populated`].
///
/// Reading the bytes for the checksum beats mapping them all first (`MAP_POPULATE`) where
/// the page cache holds the file in small folios, as penin's writes leave it: a 100,000 ×
/// 384 snapshot (313 MB) loaded in 42–48 ms instead of 59–64 when this was measured, before
/// penin's allocator (docs/benchmarks.md, "The page cache's folios"). Where it holds the
/// file in 2 MiB folios (most of a file read back from disk by readahead), hashing over the
/// map saves the copy a read makes.
///
/// **A map is only for a process that looks at the state, writes nothing made from it, and
/// exits soon after.** A map is shared with the file: while the process lives, another
/// program that writes into the file in place changes what the state holds after its
/// checksum was checked, and one that cuts the file short kills the process with `SIGBUS`
/// when it reads a page past the new end. The checksum may read the map too (`hash_mapped`):
/// a file cut short during the load, or a page the disk cannot read, then kills the command
/// with `SIGBUS` where a read of the file would refuse it with an error. penin's own writers
/// never change a snapshot in place (they write a new file and rename it, which leaves a
/// mapped file as it was); `penin run` and every command that writes read the snapshot
/// instead.
///
/// The file's two ends are checked first ([`check_frame`]), so that a file that cannot be a
/// snapshot is refused before its pages are faulted in.
pub fn map(file: &std::fs::File, history_maxlen: Option<usize>) -> Option<Result<Document>> {
    map_as(file, history_maxlen, false)
}

/// [`map`] for a caller that will read every vector (a search over all of them): every
/// page of the map is mapped at once (`MAP_POPULATE`), and the checksum is computed over
/// the map. One call maps the pages faster than the reads of the vectors fault them in
/// (`penin search` of a 100,000 × 384 snapshot took 92.7 ms this way against 105.2 ms
/// through [`map`]); a caller that reads few vectors loads faster through [`map`].
pub fn map_populated(
    file: &std::fs::File,
    history_maxlen: Option<usize>,
) -> Option<Result<Document>> {
    map_as(file, history_maxlen, true)
}

fn map_as(
    file: &std::fs::File,
    history_maxlen: Option<usize>,
    populate: bool,
) -> Option<Result<Document>> {
    let checked = file
        .metadata()
        .map_err(Error::Read)
        .and_then(|metadata| check_frame(file, metadata.len()));
    if let Err(error) = checked {
        return Some(Err(error));
    }
    let map = map_file(file, populate)?;
    let buffer = Buffer::from(bytes::Bytes::from_owner(map));
    let checksum = if populate {
        Checksum::Aside
    } else {
        Checksum::Reread(file)
    };
    Some(decode(&buffer, checksum, history_maxlen))
}

/// Checks the frame of a snapshot of `len` bytes held by `source`, from its last bytes only:
/// the magic at the end, the footer's length, the end-of-stream marker before the footer.
/// Call it before reading or mapping a file whose length is not vouched for: a snapshot
/// extended by zeros or a hole (a sparse file can claim terabytes) is then refused at once,
/// instead of read to its end or into memory it does not fit. [`map`] calls it itself;
/// [`read`], which takes any reader, cannot.
///
/// A file that fails is refused with the error that reading the whole of it gives. The
/// version comes first: the file's first bytes are then read, as far as the end of the
/// schema message's metadata (at most 2 GiB, a length the file gives), so that a newer
/// penin's file is refused as newer. A file that passes is not checked yet: [`read`] and
/// [`map`] check all of it.
///
/// A failure of `source`, or a source shorter than `len`, is [`Error::Read`].
pub fn check_frame<S: Source + ?Sized>(source: &S, len: u64) -> Result<()> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let last = read_exactly(source, len.saturating_sub(10), len.min(10))?;
    // The schema message ends at byte 72 or later; a later end only makes the check
    // stricter, so this one refuses nothing that the whole file's reading accepts.
    if let Ok(start) = footer_start(len, &last, HEADER_LEN + 8)
        && end_of_stream(&read_exactly(source, start - EOS.len(), EOS.len())?).is_ok()
    {
        return Ok(());
    }
    // Refused: by the error the whole file gives, which the schema's comes before.
    let mut head = read_exactly(source, 0, len.min(HEADER_LEN + 8))?;
    if let Some(meta_len) = head
        .get(HEADER_LEN..)
        .filter(|prefix| prefix.len() == 8 && prefix[..4] == CONTINUATION)
        .and_then(|prefix| usize::try_from(i32::from_le_bytes(prefix[4..].try_into().ok()?)).ok())
    {
        let rest = read_exactly(source, head.len(), meta_len.min(len - head.len()))?;
        head.extend_from_slice(&rest);
    }
    let (_, schema_end) = schema_message(&head, len)?;
    let start = footer_start(len, &last, schema_end)?;
    end_of_stream(&read_exactly(source, start - EOS.len(), EOS.len())?)
}

/// `len` bytes of `source` from `offset`; memory for them is asked for fallibly (a length
/// read from the file is not checked yet).
fn read_exactly<S: Source + ?Sized>(source: &S, offset: usize, len: usize) -> Result<Vec<u8>> {
    let mut bytes = penin_codec::buffer(len).map_err(Error::Read)?;
    let got = penin_codec::read_full(source, &mut bytes, offset as u64).map_err(Error::Read)?;
    if got < len {
        return Err(ended_at(offset + got));
    }
    Ok(bytes)
}

/// The error for a file that ends at byte `end`, before the length it had when looked at.
fn ended_at(end: usize) -> Error {
    Error::Read(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ends at byte {end}, before its length"),
    ))
}

/// The error for memory the system refused, `what` being what it was for.
fn no_memory(what: &str) -> Error {
    Error::Read(io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("no memory {what}"),
    ))
}

/// A read-only map of the whole of `file`, its pages mapped at once if `populate`, else as
/// they are used; `None` if the system refuses it, or on a system where penin does not map
/// files.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File, populate: bool) -> Option<memmap2::Mmap> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    // SAFETY: `memmap2` calls a map of a file unsafe because the mapped memory is shared with
    // the file (`MAP_SHARED`): it changes if another program writes into the file, behind
    // Rust's back, and reading a page beyond a file that has been cut short raises SIGBUS.
    // penin writes every snapshot once, into a new file renamed into place, and never writes
    // into a snapshot again (a rename leaves the mapped file as it was); the map is read-only,
    // and what is read from it is checked (every record batch's layout before it is decoded,
    // then the checksum over every byte) before it is given out. What remains, another
    // program writing into or truncating the file in place while it is mapped, is documented
    // on `map`: penin maps only for commands that look and write nothing, never for `penin
    // run` or a command that writes a file made from the state.
    let mut options = memmap2::MmapOptions::new();
    if populate {
        options.populate();
    }
    let map = unsafe { options.map(file) }.ok()?;
    Some(map)
}

/// [`read`] from bytes in memory (copied once into an aligned buffer).
pub fn from_slice(bytes: &[u8], history_maxlen: Option<usize>) -> Result<Document> {
    read(bytes, bytes.len(), history_maxlen)
}

/// [`read`] from bytes in memory that the state may keep (a decrypted file's plaintext): the
/// snapshot's buffers are these bytes, not a copy of them, and the checksum over them is
/// computed on a second thread while the batches are decoded, as for a mapped file. Bytes
/// not aligned for the columns' types (8 bytes) are copied, as [`from_slice`] does.
pub fn from_vec(bytes: Vec<u8>, history_maxlen: Option<usize>) -> Result<Document> {
    let aligned = bytes.as_ptr().align_offset(8) == 0;
    decode_owned(bytes, aligned, history_maxlen)
}

/// [`from_vec`], told whether `bytes` are aligned (the tests take both ways).
fn decode_owned(bytes: Vec<u8>, aligned: bool, history_maxlen: Option<usize>) -> Result<Document> {
    if !aligned {
        return from_slice(&bytes, history_maxlen);
    }
    decode(&Buffer::from_vec(bytes), Checksum::Aside, history_maxlen)
}

/// The file's bytes in a buffer aligned for every type of the snapshot's columns (8 bytes),
/// and the hash of its first bytes, computed as they arrive: on a second thread for a large
/// file, while the first reads on.
fn read_aligned<R: Read>(mut reader: R, size_hint: usize) -> Result<(Buffer, Prefix)> {
    if size_hint >= PARALLEL_HASH_MIN
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && let Some(mut region) = fresh_region(size_hint.saturating_add(1))
    {
        let (filled, prefix, ended) = read_hashing_aside(&mut reader, &mut region)?;
        if ended {
            let bytes = bytes::Bytes::from_owner(region).slice(..filled);
            return Ok((Buffer::from(bytes), prefix));
        }
        // The file grew past its hint: on in growable memory.
        let words = penin_codec::zeroed::<u64>(filled.div_ceil(8))
            .ok_or_else(|| no_memory(&format!("to read more than {filled} bytes")))?;
        let mut buffer = MutableBuffer::from(words);
        buffer.truncate(filled);
        buffer.as_slice_mut().copy_from_slice(&region[..filled]);
        return read_rest(reader, buffer, filled, prefix);
    }
    // 64-bit words, so that the buffer is aligned for floats and offsets; zeroed by the
    // allocator's fresh pages (`calloc`) rather than by a pass over them. One byte more than
    // the hint, so that the end is seen without growing; a hint of more memory than the
    // system grants is not used.
    let words = penin_codec::zeroed::<u64>(size_hint.saturating_add(1).div_ceil(8));
    let buffer = MutableBuffer::from(words.unwrap_or_default());
    read_rest(reader, buffer, 0, Prefix::default())
}

/// Reads what `buffer` does not hold yet (past `filled`), growing it, to the end of
/// `reader`.
fn read_rest<R: Read>(
    mut reader: R,
    mut buffer: MutableBuffer,
    mut filled: usize,
    mut prefix: Prefix,
) -> Result<(Buffer, Prefix)> {
    loop {
        if filled == buffer.len() {
            let grow = buffer.len().max(1 << 16);
            buffer
                .try_resize(filled + grow, 0)
                .map_err(|_| no_memory(&format!("to read more than {filled} bytes")))?;
        }
        let end = buffer.len().min(filled + READ_CHUNK);
        let n = read_some(&mut reader, &mut buffer.as_slice_mut()[filled..end])?;
        if n == 0 {
            break;
        }
        prefix.update(&buffer.as_slice()[filled..filled + n]);
        filled += n;
    }
    buffer.truncate(filled);
    Ok((buffer.into(), prefix))
}

/// Fresh, zeroed, page-aligned memory of at least `len` bytes for a large file's bytes: an
/// anonymous map (no file behind it, so nothing another program does to the snapshot can
/// reach it), asked for in huge pages and faulted in by one call, where a heap buffer would
/// take a page fault every 4 KiB while the file is copied in: at 31 MB, most of the time a
/// read into fresh memory takes. `None` when the system refuses the map (the caller reads
/// into the heap). The advice is only advice: a kernel without it maps small pages.
fn fresh_region(len: usize) -> Option<memmap2::MmapMut> {
    const HUGE_PAGE: usize = 2 << 20;
    let rounded = len.checked_next_multiple_of(HUGE_PAGE)?;
    let region = memmap2::MmapMut::map_anon(rounded).ok()?;
    #[cfg(target_os = "linux")]
    {
        let _ = region.advise(memmap2::Advice::HugePage);
        let _ = region.advise(memmap2::Advice::PopulateWrite);
    }
    Some(region)
}

/// Reads `buffer` full (or to the end of `reader`) a chunk at a time, each chunk hashed on a
/// second thread while the next is read (on this one, after it is read, where the system
/// refuses a second). Gives the bytes read, their hash and whether the reader ended.
fn read_hashing_aside<R: Read>(reader: &mut R, buffer: &mut [u8]) -> Result<(usize, Prefix, bool)> {
    std::thread::scope(|scope| {
        let (chunks, received) = std::sync::mpsc::sync_channel::<&[u8]>(16);
        let hasher = penin_codec::spawn_scoped_beside(Builder::new(), scope, move || {
            let mut prefix = Prefix::default();
            for chunk in received {
                prefix.update(chunk);
            }
            prefix
        });
        let Ok(hasher) = hasher else {
            let mut prefix = Prefix::default();
            let (filled, ended) = read_chunks(reader, buffer, |chunk| {
                prefix.update(chunk);
                true
            })?;
            return Ok((filled, prefix, ended));
        };
        // The hashing thread only stops once this side has dropped its sender.
        let read = read_chunks(reader, buffer, |chunk| chunks.send(chunk).is_ok());
        drop(chunks);
        // A panic in the hashing thread is a bug of this module: pass it on.
        let prefix = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let (filled, ended) = read?;
        Ok((filled, prefix, ended))
    })
}

/// Reads `buffer` full (or to the end of `reader`) a chunk of [`READ_CHUNK`] bytes at a
/// time, handing each to `take` as it is read, until `take` says to stop. Gives the bytes
/// read and whether the reader ended.
fn read_chunks<'b, R: Read>(
    reader: &mut R,
    buffer: &'b mut [u8],
    mut take: impl FnMut(&'b [u8]) -> bool,
) -> Result<(usize, bool)> {
    let mut rest = buffer;
    let mut filled = 0;
    let mut ended = false;
    while !rest.is_empty() && !ended {
        let (chunk, tail) = rest.split_at_mut(rest.len().min(READ_CHUNK));
        let mut got = 0;
        while got < chunk.len() {
            let n = read_some(reader, &mut chunk[got..])?;
            if n == 0 {
                ended = true;
                break;
            }
            got += n;
        }
        filled += got;
        if !take(&chunk[..got]) {
            break;
        }
        rest = tail;
    }
    Ok((filled, ended))
}

/// One `read`, retried when interrupted.
fn read_some<R: Read>(reader: &mut R, into: &mut [u8]) -> Result<usize> {
    loop {
        match reader.read(into) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result.map_err(Error::Read),
        }
    }
}

/// Bytes read, and hashed, at a time.
const READ_CHUNK: usize = 1 << 18;

/// Files from this size on are hashed on a second thread while being read.
const PARALLEL_HASH_MIN: usize = 4 << 20;

/// How many of the last chunk boundaries a [`Prefix`] keeps its hash at: the checksum covers
/// the bytes before the footer, which is only found at the end; a footer shorter than this
/// many chunks costs no second pass.
const PREFIX_STATES: usize = 8;

/// How [`decode`] comes by the checksum of the bytes before the footer.
enum Checksum<'f> {
    /// Hashed as they were read.
    Read(Box<Prefix>),
    /// Not hashed yet (a decrypted file kept as it is, a map populated at once): hashed
    /// beside the decoding.
    Aside,
    /// In a file mapped as it is used: hashed beside the decoding, over the map while its
    /// pages come cheaply, else read from the file ([`hash_mapped`]).
    Reread(&'f std::fs::File),
}

/// The XXH3-128 of `bytes`, which may not be in the CPU's caches (a mapped file; a large
/// decrypted one, opened by other threads): each piece is hashed while the CPU is asked for
/// the next one, which one core's own reads of a run of 4 KiB pages do not ask for early
/// enough.
fn hash_ahead(bytes: &[u8]) -> u128 {
    const PIECE: usize = 16 << 10;
    const LINE: usize = 64;
    let mut hasher = XxHash3_128::new();
    #[cfg(target_arch = "x86_64")]
    let sse = pulp::core_arch::x86::Sse::try_new();
    let mut pieces = bytes.chunks(PIECE).peekable();
    while let Some(piece) = pieces.next() {
        #[cfg(target_arch = "x86_64")]
        if let (Some(sse), Some(next)) = (sse, pieces.peek()) {
            for line in next.chunks(LINE) {
                sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
            }
        }
        hasher.write(piece);
    }
    hasher.finish_128()
}

/// Hashes bytes `from..to` of `file` into `hasher`, read through `chunk` (made
/// [`READ_CHUNK`] bytes long, or as long as they are, on first use): positioned reads (the
/// handle's position is not used) through one small buffer, as `cat` reads.
fn hash_read(
    file: &std::fs::File,
    hasher: &mut XxHash3_128,
    chunk: &mut Vec<u8>,
    from: usize,
    to: usize,
) -> Result<()> {
    if chunk.is_empty() {
        *chunk = penin_codec::buffer(READ_CHUNK.min(to - from)).map_err(Error::Read)?;
    }
    let mut at = from;
    while at < to {
        let want = chunk.len().min(to - at);
        let got =
            penin_codec::read_full(file, &mut chunk[..want], at as u64).map_err(Error::Read)?;
        if got < want {
            // Cut short while it was mapped.
            return Err(ended_at(at + got));
        }
        hasher.write(&chunk[..want]);
        at += want;
    }
    Ok(())
}

/// How much of a mapped file [`hash_mapped`] hashes at a time, over the map or read.
const MAP_WINDOW: usize = 16 << 20;

/// The most page faults a MiB of a map may take for [`hash_mapped`] to go on hashing over it.
/// The kernel maps a file that the page cache holds in 2 MiB folios one folio (2 MiB) a
/// fault, and one in smaller folios 64 KiB a fault (its fault-around): 16 a MiB.
const MAP_FAULTS_PER_MIB: u64 = 2;

/// The most windows [`hash_mapped`] reads without a probe after probes were refused.
const MAP_PROBE_GAP: usize = 8;

/// The XXH3-128 of the first `end` bytes of `file`, mapped as `map` (at least `end` bytes):
/// each [`MAP_WINDOW`] over the map where its pages come cheaply, else read through the file
/// ([`hash_read`]).
///
/// Where the page cache holds the file in 2 MiB folios, the map's pages come a folio a fault
/// and the hash reads the page cache's memory in place, without the copy a read makes: the
/// whole of a mapped load of 100,000 × 384 took 25.1 ms hashed over the map against 28.9 ms
/// read (31 rounds, `cat` 14.4 ms). In small folios each fault maps 64 KiB, and the same load
/// hashed over the map took 76.6 ms against 33.9 ms read (15 rounds). A file read back from
/// disk holds both: its first megabytes in small folios (readahead starts small), the rest
/// mostly in 2 MiB ones; a file penin has just written, small folios only.
///
/// So the page faults are counted (this thread's, minor and major, from
/// `/proc/thread-self/stat`). Before a window that follows one read (or the first), four
/// bytes 512 KiB apart in its first 2 MiB are touched in the map: if they took one fault at
/// most (a 2 MiB folio, or pages mapped already), the window is hashed over the map, else
/// read. A window hashed over the map that took more than [`MAP_FAULTS_PER_MIB`] makes the
/// next one probed again. After a refused probe the next window is read without a probe,
/// and after each further refusal twice as many (2, 4, up to [`MAP_PROBE_GAP`]) until a
/// probe is taken. Where the faults cannot be counted, every window is read.
fn hash_mapped(file: &std::fs::File, map: &[u8], end: usize) -> Result<u128> {
    let mut faults = ThreadFaults::new();
    hash_mapped_with(file, map, end, MAP_WINDOW, || faults.count())
}

/// [`hash_mapped`] with its window and its fault counter given.
fn hash_mapped_with(
    file: &std::fs::File,
    map: &[u8],
    end: usize,
    window: usize,
    mut faults: impl FnMut() -> Option<u64>,
) -> Result<u128> {
    debug_assert!(window > 0);
    let mut hasher = XxHash3_128::new();
    let mut chunk = Vec::new();
    // Whether the window is hashed over the map, and the faults counted before it if so.
    let mut over_map = None;
    // Windows to read before the next probe, and how many the next refusal sets.
    let (mut unprobed, mut gap) = (0, 1);
    let mut at = 0;
    while at < end {
        let to = end.min(at + window);
        if over_map.is_none() {
            if unprobed > 0 {
                unprobed -= 1;
            } else if let Some(before) = faults() {
                // Four bytes of the window's first 2 MiB, 512 KiB apart, touched in the map.
                for touched in (at..to).step_by(1 << 19).take(4) {
                    std::hint::black_box(map[touched]);
                }
                over_map = faults().filter(|after| after.saturating_sub(before) <= 1);
                if over_map.is_some() {
                    gap = 1;
                } else {
                    unprobed = gap;
                    gap = (gap * 2).min(MAP_PROBE_GAP);
                }
            }
        }
        if let Some(before) = over_map {
            hasher.write(&map[at..to]);
            let allowed = MAP_FAULTS_PER_MIB * ((to - at) as u64).div_ceil(1 << 20);
            over_map = faults().filter(|after| after.saturating_sub(before) <= allowed);
        } else {
            hash_read(file, &mut hasher, &mut chunk, at, to)?;
        }
        at = to;
    }
    Ok(hasher.finish_128())
}

/// This thread's page faults, as the system counts them (`/proc/thread-self/stat`), or none
/// where it does not say: the file opened once, read again for each count.
struct ThreadFaults {
    stat: Option<std::fs::File>,
}

impl ThreadFaults {
    fn new() -> Self {
        ThreadFaults {
            stat: std::fs::File::open("/proc/thread-self/stat").ok(),
        }
    }

    /// The page faults this thread has taken so far, minor (the page in memory already) and
    /// major (read from disk).
    fn count(&mut self) -> Option<u64> {
        let mut line = [0_u8; 1024];
        let len = std::os::unix::fs::FileExt::read_at(self.stat.as_ref()?, &mut line, 0).ok()?;
        let line = std::str::from_utf8(&line[..len]).ok()?;
        // After the command's name in parentheses (which may hold anything): the state, then
        // `ppid pgrp session tty_nr tpgid flags minflt cminflt majflt`.
        let (_, fields) = line.rsplit_once(')')?;
        let mut fields = fields.split_ascii_whitespace();
        let minor: u64 = fields.nth(7)?.parse().ok()?;
        let major: u64 = fields.nth(1)?.parse().ok()?;
        Some(minor + major)
    }
}

/// The XXH3-128 of the bytes of a file read so far, with the hash's state at each of the
/// last [`PREFIX_STATES`] chunk boundaries.
#[derive(Default)]
struct Prefix {
    hasher: XxHash3_128,
    len: usize,
    /// `(offset, state after the bytes before offset)`, oldest first.
    states: std::collections::VecDeque<(usize, XxHash3_128)>,
}

impl Prefix {
    /// Hashes the next bytes of the file.
    fn update(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if self.states.len() == PREFIX_STATES {
            self.states.pop_front();
        }
        self.states.push_back((self.len, self.hasher.clone()));
        self.hasher.write(chunk);
        self.len += chunk.len();
    }

    /// The XXH3-128 of `bytes[..end]`, `bytes` being the bytes hashed: from the last state
    /// kept at or before `end`, or from the start if none is (a footer longer than the
    /// states cover).
    fn digest(self, bytes: &[u8], end: usize) -> u128 {
        let from = std::iter::once((self.len, self.hasher))
            .chain(self.states.into_iter().rev())
            .find(|(offset, _)| *offset <= end);
        match from {
            Some((offset, mut hasher)) => {
                hasher.write(&bytes[offset..end]);
                hasher.finish_128()
            }
            None => XxHash3_128::oneshot(&bytes[..end]),
        }
    }
}

/// The schema of `doc`'s snapshot: the columns and the schema metadata.
fn schema_of(doc: &Document) -> Schema {
    let mut lengths = doc.knowledge_base.values().map(|a| a.vector.len());
    let width = lengths
        .next()
        .and_then(|d| i32::try_from(d).ok())
        .filter(|&d| d > 0);
    let vector = match width {
        Some(d) if lengths.all(|l| l == d.unsigned_abs() as usize) => {
            DataType::FixedSizeList(item(), d)
        }
        _ => DataType::List(item()),
    };
    let rest = Document {
        knowledge_base: KnowledgeBase::new(),
        task_history: doc.task_history.clone(),
        score_history: doc.score_history.clone(),
        extra: doc.extra.clone(),
    };
    let state = String::from_utf8(penin_codec::to_vec_compact(&rest))
        // The seed writer escapes every character beyond `~`: its output is ASCII.
        .unwrap_or_default();
    let mut metadata = Metadata::default();
    metadata.insert(FORMAT_KEY, FORMAT_TAG);
    metadata.insert(VERSION_KEY, VERSION.to_string());
    metadata.insert(STATE_KEY, state);
    Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("vector", vector, false),
        Field::new("metadata", DataType::Utf8, false),
        Field::new("extra", DataType::Utf8, true),
    ])
    .with_metadata(metadata)
}

/// The field of a vector's elements.
fn item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, false))
}

/// The rows of the batch being built: the text columns as arrow lays them out, and the
/// vectors where the state holds them (their floats are copied only when they are written).
struct Rows<'a> {
    /// `Some(D)` for `FixedSizeList<_, D>`.
    width: Option<i32>,
    keys: Text,
    metadata: Text,
    extra: Text,
    vectors: Vec<&'a [f64]>,
    /// The floats of `vectors`.
    floats: usize,
    /// Where each vector starts among the batch's floats, and where the last ends: the
    /// offsets of a `List` column.
    offsets: Vec<i32>,
}

/// A `Utf8` column of the batch being built, as arrow lays it out.
struct Text {
    /// The column's name, for errors.
    name: &'static str,
    /// Where each row's bytes start, and where the last ends.
    offsets: Vec<i32>,
    bytes: Vec<u8>,
    /// One bit a row, set when it is not null, from the first byte's lowest bit.
    validity: Vec<u8>,
    nulls: usize,
}

impl Text {
    fn new(name: &'static str) -> Self {
        Text {
            name,
            offsets: vec![0],
            bytes: Vec::new(),
            validity: Vec::new(),
            nulls: 0,
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Adds a row: `value`, or null. Fails, and adds nothing, when the batch's text would
    /// pass what a 32-bit offset holds (the batch limits keep it below: never seen).
    fn push(&mut self, value: Option<&[u8]>) -> io::Result<()> {
        let end = self.bytes.len() + value.map_or(0, <[u8]>::len);
        let offset = offset(end, self.name)?;
        let row = self.len();
        if row.is_multiple_of(8) {
            self.validity.push(0);
        }
        match value {
            Some(value) => {
                self.bytes.extend_from_slice(value);
                self.validity[row / 8] |= 1 << (row % 8);
            }
            None => self.nulls += 1,
        }
        self.offsets.push(offset);
        Ok(())
    }

    fn clear(&mut self) {
        self.offsets.truncate(1);
        self.bytes.clear();
        self.validity.clear();
        self.nulls = 0;
    }

    /// The validity bitmap as arrow writes it: none when no row is null.
    fn bitmap(&self) -> &[u8] {
        if self.nulls == 0 { &[] } else { &self.validity }
    }

    fn array(&self) -> io::Result<StringArray> {
        let nulls = (self.nulls > 0).then(|| {
            NullBuffer::new(BooleanBuffer::new(
                Buffer::from(self.validity.as_slice()),
                0,
                self.len(),
            ))
        });
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(self.offsets.clone())),
            Buffer::from(self.bytes.as_slice()),
            nulls,
        )
        .map_err(arrow_io)
    }
}

/// `n`, an offset into a batch's `what` (bytes of text, or floats), as the 32-bit offset
/// arrow holds.
fn offset(n: usize, what: &str) -> io::Result<i32> {
    i32::try_from(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a record batch's {what} would reach {n}, more than an arrow offset holds"),
        )
    })
}

/// The width of the vectors of `schema`'s knowledge base: `Some(D)` for
/// `FixedSizeList<_, D>`.
fn width_of(schema: &Schema) -> Option<i32> {
    match schema.field(1).data_type() {
        DataType::FixedSizeList(_, d) => Some(*d),
        _ => None,
    }
}

/// Cuts `doc`'s knowledge base into the rows of its record batches (the vectors' `width`:
/// [`width_of`]) and hands each batch's to `each`, in order.
fn each_batch<'a>(
    doc: &'a Document,
    width: Option<i32>,
    mut each: impl FnMut(&Rows<'a>) -> io::Result<()>,
) -> io::Result<()> {
    let mut rows = Rows::new(width);
    for (key, artifact) in &doc.knowledge_base {
        if rows.full_for(key, artifact) {
            each(&rows)?;
            rows.clear();
        }
        rows.push(key, artifact)?;
    }
    if rows.len() > 0 {
        each(&rows)?;
    }
    Ok(())
}

impl<'a> Rows<'a> {
    fn new(width: Option<i32>) -> Self {
        Rows {
            width,
            keys: Text::new("keys"),
            metadata: Text::new("metadata"),
            extra: Text::new("extra keys"),
            vectors: Vec::new(),
            floats: 0,
            offsets: vec![0],
        }
    }

    fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether `artifact` must start a new batch: this one has its rows, or would pass a
    /// limit with it (an empty batch takes any artifact, and [`Rows::push`] checks it alone).
    fn full_for(&self, key: &str, artifact: &NumericVectorArtifact) -> bool {
        let len = self.len();
        let (metadata, extra) = (self.metadata.bytes.len(), self.extra.bytes.len());
        len > 0
            && (len >= ROWS_PER_BATCH
                || self.floats + artifact.vector.len() > FLOATS_PER_BATCH
                || self.keys.bytes.len() + key.len() > TEXT_LIMIT
                // The metadata's JSON is at least as long as its keys; this is a guess that
                // errs on the side of cutting early. A batch that passes the limit by one
                // value stays below 2 GiB (each value is at most the limit), which
                // `Text::push` checks.
                || metadata + metadata / len * 2 > TEXT_LIMIT
                || extra + extra / len * 2 > TEXT_LIMIT)
    }

    fn push(&mut self, key: &str, artifact: &'a NumericVectorArtifact) -> io::Result<()> {
        let metadata = penin_codec::to_vec_compact(&artifact.metadata);
        let extra =
            (!artifact.extra().is_empty()).then(|| penin_codec::to_vec_compact(artifact.extra()));
        let extra_len = extra.as_ref().map_or(0, Vec::len);
        let too_long = |what: &str, len: usize| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the artifact {key:?} is too large for an arrow snapshot: its {what} has {len} elements"
                ),
            )
        };
        for (what, len, limit) in [
            ("key", key.len(), TEXT_LIMIT),
            ("metadata", metadata.len(), TEXT_LIMIT),
            ("extra keys", extra_len, TEXT_LIMIT),
            ("vector", artifact.vector.len(), FLOAT_LIMIT),
        ] {
            if len > limit {
                return Err(too_long(what, len));
            }
        }
        let floats = offset(self.floats + artifact.vector.len(), "floats")?;
        self.keys.push(Some(key.as_bytes()))?;
        self.metadata.push(Some(&metadata))?;
        self.extra.push(extra.as_deref())?;
        self.vectors.push(artifact.vector.as_slice());
        self.floats += artifact.vector.len();
        self.offsets.push(floats);
        Ok(())
    }

    /// Empty again, for the next batch.
    fn clear(&mut self) {
        self.keys.clear();
        self.metadata.clear();
        self.extra.clear();
        self.vectors.clear();
        self.floats = 0;
        self.offsets.truncate(1);
    }

    /// The rows as a record batch of `schema` (the schema they were cut for, or the same
    /// columns), their floats copied into it.
    fn batch(&self, schema: &SchemaRef) -> io::Result<RecordBatch> {
        let mut floats = Vec::with_capacity(self.floats);
        for vector in &self.vectors {
            floats.extend_from_slice(vector);
        }
        let values = Arc::new(Float64Array::from(floats));
        let vectors: ArrayRef = match self.width {
            Some(width) => Arc::new(
                FixedSizeListArray::try_new(item(), width, values, None).map_err(arrow_io)?,
            ),
            None => Arc::new(
                ListArray::try_new(
                    item(),
                    OffsetBuffer::new(ScalarBuffer::from(self.offsets.clone())),
                    values,
                    None,
                )
                .map_err(arrow_io)?,
            ),
        };
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(self.keys.array()?),
                vectors,
                Arc::new(self.metadata.array()?),
                Arc::new(self.extra.array()?),
            ],
        )
        .map_err(arrow_io)
    }
}

/// An arrow error while writing, as the I/O error it wraps or one that says it.
fn arrow_io(error: ArrowError) -> io::Error {
    match error {
        ArrowError::IoError(_, error) => error,
        other => io::Error::other(other),
    }
}

/// A damaged file: what failed.
fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt { what: what.into() }
}

/// Checks the whole file in `buffer` (see the module's overview, "Reading") and decodes it.
fn decode(
    buffer: &Buffer,
    checksum: Checksum<'_>,
    history_maxlen: Option<usize>,
) -> Result<Document> {
    let bytes = buffer.as_slice();
    // 1. The schema message, and the version in it.
    let (schema, schema_end) = schema_message(bytes, bytes.len())?;

    // 2. The end of the file: magic, footer length, end-of-stream marker.
    let len = bytes.len();
    let footer_start = footer_start(len, &bytes[len.saturating_sub(10)..], schema_end)?;
    end_of_stream(&bytes[footer_start - EOS.len()..footer_start])?;
    let footer = &bytes[footer_start..len - 10];

    // 3. The checksum of everything before the footer: checked now if its bytes were hashed
    // as they were read; else hashed on a second thread while the contents are decoded, and
    // checked before they are given out. (The checksum is no defence against a file made to
    // harm: the decoding must refuse any bytes with an error, checksum or not, and does.)
    let expected = written_checksum(footer)?;
    let walk = |found: u128| {
        // 4. The messages, walked; the footer they make, compared.
        check_columns(&schema)?;
        let blocks = record_batches(bytes, &schema, schema_end, footer_start - EOS.len())?;
        if canonical_footer(&schema, &blocks, found) != footer {
            return Err(corrupt(
                "the footer is not the one the file's contents make",
            ));
        }
        contents(buffer, &schema, &blocks, history_maxlen)
    };
    let mismatch = |found: u128| {
        corrupt(format!(
            "checksum mismatch: expected {expected:032x}, found {found:032x}"
        ))
    };
    // 5. The artifacts, built by this thread and helped by others (see `artifacts`).
    // Whether a core is free beside `busy` threads at work.
    let core_free =
        |busy: usize| std::thread::available_parallelism().is_ok_and(|n| n.get() > busy);
    match checksum {
        Checksum::Read(prefix) => {
            let found = prefix.digest(bytes, footer_start);
            if expected != found {
                return Err(mismatch(found));
            }
            let (mut doc, artifacts) = walk(found)?;
            // A helper where a second core is free.
            doc.knowledge_base = std::thread::scope(|scope| {
                artifacts.build_helped(scope, usize::from(core_free(1)))
            })?;
            Ok(doc)
        }
        Checksum::Aside | Checksum::Reread(_) => {
            // The hashing thread helps build the artifacts once its hash is done, if they are
            // there to build by then; if not, it says so, and a helper takes its place. The
            // lock makes the two exclusive: it helps, or a helper is started. Where the
            // system refuses the hashing thread, this one hashes after the build.
            let shared = std::sync::OnceLock::<Artifacts>::new();
            let hasher_idle = std::sync::Mutex::new(false);
            let hash = || match checksum {
                Checksum::Reread(file) => hash_mapped(file, bytes, footer_start),
                _ => Ok(hash_ahead(&bytes[..footer_start])),
            };
            std::thread::scope(|scope| {
                let hasher = penin_codec::spawn_scoped_beside(Builder::new(), scope, || {
                    let found = hash();
                    let mut idle = hasher_idle.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(artifacts) = shared.get() {
                        drop(idle);
                        artifacts.help();
                    } else {
                        *idle = true;
                    }
                    found
                });
                let decoded = walk(expected).and_then(|(mut doc, artifacts)| {
                    let (artifacts, idle) = {
                        let idle = hasher_idle.lock().unwrap_or_else(PoisonError::into_inner);
                        (shared.get_or_init(|| artifacts), *idle)
                    };
                    // A helper in the hashing thread's place, and one where a third core is
                    // free.
                    let helpers = usize::from(idle) + usize::from(core_free(2));
                    doc.knowledge_base = artifacts.build_helped(scope, helpers)?;
                    Ok(doc)
                });
                // A panic in the hashing thread is a bug of this module: pass it on. Where
                // the system refused that thread, this one hashes now.
                let found = match hasher {
                    Ok(hasher) => hasher
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                    Err(_) => hash()?,
                };
                // A file whose checksum does not match (or cannot be read) is refused as
                // such, whatever its contents gave.
                if expected != found {
                    return Err(mismatch(found));
                }
                decoded
            })
        }
    }
}

/// Step 1 of [`decode`]: the schema message at the start of a file of `len` bytes, of which
/// `bytes` are the first (at least as far as the end of that message's metadata), after the
/// version in it is checked. Gives the schema and where the message ends.
fn schema_message(bytes: &[u8], len: usize) -> Result<(Schema, usize)> {
    if !bytes.starts_with(MAGIC) {
        return Err(corrupt("the file does not start with ARROW1"));
    }
    let (schema_end, message) = message_at(bytes, HEADER_LEN, len)?
        .ok_or_else(|| corrupt("the stream ends before its schema"))?;
    let schema = message
        .header_as_schema()
        .ok_or_else(|| corrupt("the first message is not a schema"))
        .and_then(|fb| {
            try_fb_to_schema(fb).map_err(|e| corrupt(format!("the schema cannot be read: {e}")))
        })?;
    check_version(&schema)?;
    if message.version() != IPC_VERSION {
        return Err(corrupt(format!(
            "the schema message is of IPC metadata version {:?}, not V5",
            message.version()
        )));
    }
    Ok((schema, schema_end))
}

/// Step 2 of [`decode`], first half: where the footer of a file of `len` bytes starts,
/// from `last`, its last 10 bytes (the footer's length and the magic), the schema message
/// ending at `schema_end`.
fn footer_start(len: usize, last: &[u8], schema_end: usize) -> Result<usize> {
    if len < schema_end + EOS.len() + 10 || last.len() != 10 {
        return Err(corrupt(format!("the file is truncated ({len} bytes)")));
    }
    if &last[4..] != MAGIC {
        return Err(corrupt(
            "the file does not end with ARROW1 (is it cut short?)",
        ));
    }
    let footer_len = i32::from_le_bytes(last[..4].try_into().unwrap_or_default());
    usize::try_from(footer_len)
        .ok()
        .and_then(|n| (len - 10).checked_sub(n))
        .filter(|&start| start >= schema_end + EOS.len())
        .ok_or_else(|| {
            corrupt(format!(
                "the footer length {footer_len} does not fit the file"
            ))
        })
}

/// Step 2 of [`decode`], second half: `marker`, the 8 bytes before the footer, must be the
/// end-of-stream marker.
fn end_of_stream(marker: &[u8]) -> Result<()> {
    if marker != EOS {
        return Err(corrupt("no end-of-stream marker before the footer"));
    }
    Ok(())
}

/// Step 5 of [`decode`]: the state without its knowledge base, from the schema's metadata,
/// and the knowledge base's rows, from the record batches (whose columns and headers step 4
/// checked), decoded and not yet built.
fn contents(
    buffer: &Buffer,
    schema: &Schema,
    blocks: &[Block],
    history_maxlen: Option<usize>,
) -> Result<(Document, Artifacts)> {
    // 5. The state.
    let state = schema
        .metadata()
        .get(STATE_KEY)
        .ok_or_else(|| corrupt(format!("the schema metadata has no {STATE_KEY}")))?;
    let doc = Document::decode(state.as_bytes(), history_maxlen)
        .map_err(|e| corrupt(format!("{STATE_KEY}: {e}")))?;
    if !doc.knowledge_base.is_empty() {
        return Err(corrupt(format!("{STATE_KEY} holds a knowledge base")));
    }
    let decoder = FileDecoder::new(Arc::new(schema.clone()), IPC_VERSION);
    let mut batches = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let at = |what: String| corrupt(format!("record batch {index}: {what}"));
        // The walk checked that every block lies within the file.
        let data = buffer.slice_with_length(
            usize::try_from(block.offset()).unwrap_or(0),
            block_len(block),
        );
        let batch = decoder
            .read_record_batch(block, &data)
            .map_err(|e| at(e.to_string()))?
            .ok_or_else(|| at("no batch".to_owned()))?;
        batches.push(Batch::of(&batch).map_err(at)?);
    }
    Ok((doc, Artifacts::new(batches)))
}

/// Refuses a file that is not a penin state of a version this penin reads.
fn check_version(schema: &Schema) -> Result<()> {
    let metadata = schema.metadata();
    let Some(version) = metadata.get(VERSION_KEY) else {
        return Err(corrupt(format!(
            "not a penin snapshot: the schema metadata has no {VERSION_KEY}"
        )));
    };
    let found = version
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0 && !version.starts_with(['0', '+']))
        .ok_or_else(|| corrupt(format!("{VERSION_KEY} is {version:?}, not a version")))?;
    if found > VERSION {
        return Err(Error::NewerVersion {
            found,
            supported: VERSION,
        });
    }
    match metadata.get(FORMAT_KEY) {
        Some(tag) if tag == FORMAT_TAG => Ok(()),
        Some(tag) => Err(corrupt(format!(
            "not a penin snapshot: {FORMAT_KEY} is {tag:?}, not {FORMAT_TAG:?}"
        ))),
        None => Err(corrupt(format!(
            "not a penin snapshot: the schema metadata has no {FORMAT_KEY}"
        ))),
    }
}

/// The message at `offset` of `bytes`, the first bytes of a file (or of a part of one) of
/// `len` bytes: where the next one starts and the message, or `None` for the end-of-stream
/// marker. Its metadata must lie within `bytes`, its body within the `len` bytes.
fn message_at(
    bytes: &[u8],
    offset: usize,
    len: usize,
) -> Result<Option<(usize, arrow_ipc::Message<'_>)>> {
    let at = |what: &str| corrupt(format!("the message at byte {offset}: {what}"));
    let head = bytes
        .get(offset..offset + 8)
        .ok_or_else(|| at("cut short"))?;
    if head[..4] != CONTINUATION {
        return Err(at("no continuation marker"));
    }
    let meta_len = i32::from_le_bytes(head[4..].try_into().unwrap_or_default());
    if meta_len == 0 {
        return Ok(None);
    }
    let meta_len = usize::try_from(meta_len).map_err(|_| at("a negative length"))?;
    let flatbuffer = bytes
        .get(offset + 8..)
        .and_then(|rest| rest.get(..meta_len))
        .ok_or_else(|| at("its metadata runs past the end"))?;
    let message =
        arrow_ipc::root_as_message(flatbuffer).map_err(|e| at(&format!("not a message: {e}")))?;
    let body = usize::try_from(message.bodyLength()).map_err(|_| at("a negative body length"))?;
    let end = (offset + 8 + meta_len)
        .checked_add(body)
        .filter(|&end| end <= len)
        .ok_or_else(|| at("its body runs past the end"))?;
    Ok(Some((end, message)))
}

/// The blocks of the record batches from `start` to the end-of-stream marker at `end`.
fn record_batches(bytes: &[u8], schema: &Schema, start: usize, end: usize) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut offset = start;
    loop {
        let message = message_at(&bytes[..end + EOS.len()], offset, end + EOS.len())?;
        let Some((next, message)) = message else {
            if offset != end {
                return Err(corrupt(format!(
                    "the stream ends at byte {offset}, not before the footer at {}",
                    end + EOS.len()
                )));
            }
            return Ok(blocks);
        };
        if message.header_type() != MessageHeader::RecordBatch {
            return Err(corrupt(format!(
                "the message at byte {offset} is a {:?}, not a record batch",
                message.header_type()
            )));
        }
        check_batch(&message, schema, offset)?;
        let body = message.bodyLength();
        // The buffers' alignment is counted from the body's start (the file's is 8-aligned).
        let body_start = i64::try_from(next).unwrap_or(i64::MAX).saturating_sub(body);
        if body_start % 8 != 0 {
            return Err(corrupt(format!(
                "the record batch at byte {offset}: its body starts at byte {body_start}, not \
                 aligned to 8 bytes"
            )));
        }
        let meta = i32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap_or_default());
        // `message_at` bounded both by the file's length, which the offsets of an `i64` hold.
        blocks.push(Block::new(
            i64::try_from(offset).unwrap_or(i64::MAX),
            meta.saturating_add(8),
            body,
        ));
        offset = next;
    }
}

/// The width of the items of a record batch's buffers, in their order, when the vectors are
/// of one dimension: bitmaps and text bytes 1, offsets 4, floats 8 (a typed buffer must hold
/// whole items).
const FIXED_WIDTHS: [i64; 12] = [1, 4, 1, 1, 1, 8, 1, 4, 1, 1, 4, 1];

/// [`FIXED_WIDTHS`] when the vectors are lists of any length (with their offsets).
const LIST_WIDTHS: [i64; 13] = [1, 4, 1, 1, 4, 1, 8, 1, 4, 1, 1, 4, 1];

/// Refuses a record batch message whose header does not fit the schema (which
/// [`check_columns`] checked) and its own body: what arrow-ipc's decoder takes on trust — it
/// panics on a buffer that lies outside the body. Checked before any batch is decoded, so
/// that no bytes, damaged or made to harm, reach the decoder unchecked (the checksum of a
/// mapped file is compared after the decoding; see [`decode`]).
fn check_batch(message: &arrow_ipc::Message<'_>, schema: &Schema, at: usize) -> Result<()> {
    let bad = |what: String| corrupt(format!("the record batch at byte {at}: {what}"));
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| bad("no record batch header".to_owned()))?;
    let rows = batch.length();
    if rows < 0 {
        return Err(bad(format!("{rows} rows")));
    }
    if batch.compression().is_some() {
        return Err(bad("compressed buffers (penin writes none)".to_owned()));
    }
    if batch
        .variadicBufferCounts()
        .is_some_and(|counts| !counts.is_empty())
    {
        return Err(bad("variadic buffers (penin writes none)".to_owned()));
    }
    // The nodes, depth first: key, vector, the vector's floats, metadata, extra. The buffers:
    // three for each text column, and for the vectors a validity bitmap (and offsets for
    // lists of any length), then the floats' validity bitmap and values.
    let (floats, widths): (_, &[i64]) = match schema.fields().get(1).map(|f| f.data_type()) {
        Some(DataType::FixedSizeList(_, dimension)) => {
            let floats = rows
                .checked_mul(i64::from(*dimension))
                .ok_or_else(|| bad(format!("{rows} rows of {dimension} floats")))?;
            (Some(floats), &FIXED_WIDTHS)
        }
        _ => (None, &LIST_WIDTHS),
    };
    let nodes = batch.nodes().ok_or_else(|| bad("no nodes".to_owned()))?;
    if nodes.len() != 5 {
        return Err(bad(format!("{} nodes, not 5", nodes.len())));
    }
    for (index, node) in nodes.iter().enumerate() {
        let (length, nulls) = (node.length(), node.null_count());
        let wanted = if index == 2 { floats } else { Some(rows) };
        if length < 0 || nulls < 0 || nulls > length || wanted.is_some_and(|w| w != length) {
            return Err(bad(format!(
                "node {index}: {length} values, {nulls} nulls, in a batch of {rows} rows"
            )));
        }
    }
    let buffers = batch
        .buffers()
        .ok_or_else(|| bad("no buffers".to_owned()))?;
    if buffers.len() != widths.len() {
        return Err(bad(format!(
            "{} buffers, not {}",
            buffers.len(),
            widths.len()
        )));
    }
    let body = message.bodyLength();
    for (index, (buffer, width)) in buffers.iter().zip(widths).enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        if offset < 0 || length < 0 || offset.checked_add(length).is_none_or(|end| end > body) {
            return Err(bad(format!(
                "buffer {index} at {offset}, {length} bytes, outside the body of {body} bytes"
            )));
        }
        if offset % 8 != 0 || length % width != 0 {
            return Err(bad(format!(
                "buffer {index} at {offset}, {length} bytes: not aligned to 8 bytes, or not \
                 whole items of {width} bytes"
            )));
        }
    }
    Ok(())
}

/// A block's length in bytes: its metadata and body, both checked by the walk.
fn block_len(block: &Block) -> usize {
    usize::try_from(i64::from(block.metaDataLength()) + block.bodyLength()).unwrap_or(0)
}

/// The checksum the footer's custom metadata holds.
fn written_checksum(footer: &[u8]) -> Result<u128> {
    let footer = arrow_ipc::root_as_footer(footer)
        .map_err(|e| corrupt(format!("the footer cannot be read: {e}")))?;
    let hex = footer
        .custom_metadata()
        .into_iter()
        .flatten()
        .find(|kv| kv.key() == Some(CHECKSUM_KEY))
        .and_then(|kv| kv.value())
        .ok_or_else(|| corrupt(format!("the footer has no {CHECKSUM_KEY}")))?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(corrupt(format!("the footer's {CHECKSUM_KEY} is {hex:?}")));
    }
    u128::from_str_radix(hex, 16)
        .map_err(|_| corrupt(format!("the footer's {CHECKSUM_KEY} is {hex:?}")))
}

/// The footer arrow-rs's `FileWriter::finish` writes for `schema`, `blocks` and the
/// checksum, built the same way.
fn canonical_footer(schema: &Schema, blocks: &[Block], checksum: u128) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let dictionaries = fbb.create_vector::<Block>(&[]);
    let record_batches = fbb.create_vector(blocks);
    let mut tracker = DictionaryTracker::new(true);
    let fb_schema = IpcSchemaEncoder::new()
        .with_dictionary_tracker(&mut tracker)
        .schema_to_fb_offset(&mut fbb, schema);
    let mut custom = Metadata::default();
    custom.insert(CHECKSUM_KEY, format!("{checksum:032x}"));
    let custom = metadata_to_fb(&mut fbb, &custom);
    let mut footer = FooterBuilder::new(&mut fbb);
    footer.add_version(IPC_VERSION);
    footer.add_schema(fb_schema);
    footer.add_dictionaries(dictionaries);
    footer.add_recordBatches(record_batches);
    footer.add_custom_metadata(custom);
    let root = footer.finish();
    fbb.finish(root, None);
    fbb.finished_data().to_vec()
}

/// One batch's columns, typed.
struct Batch {
    keys: arrow_array::StringArray,
    vectors: Vectors,
    /// The vector column's floats, from its first: the vectors are views into them.
    floats: ScalarBuffer<f64>,
    metadata: arrow_array::StringArray,
    extra: arrow_array::StringArray,
}

/// The vector column: a fixed width, or offsets.
enum Vectors {
    Fixed(FixedSizeListArray),
    Variable(ListArray),
}

/// Checks that the schema's columns are a penin knowledge base's.
fn check_columns(schema: &Schema) -> Result<()> {
    let utf8 = |i: usize, name: &str, nullable: bool| {
        let field = schema.fields().get(i);
        field.is_some_and(|f| {
            f.name() == name && *f.data_type() == DataType::Utf8 && f.is_nullable() == nullable
        })
    };
    let floats = |item: &FieldRef| *item.data_type() == DataType::Float64 && !item.is_nullable();
    let vector = schema.fields().get(1).is_some_and(|f| {
        f.name() == "vector"
            && !f.is_nullable()
            && match f.data_type() {
                DataType::FixedSizeList(item, d) => *d > 0 && floats(item),
                DataType::List(item) => floats(item),
                _ => false,
            }
    });
    if schema.fields().len() == 4
        && utf8(0, "key", false)
        && vector
        && utf8(2, "metadata", false)
        && utf8(3, "extra", true)
    {
        Ok(())
    } else {
        Err(corrupt(format!(
            "the columns are not a penin knowledge base: {:?}",
            schema.fields()
        )))
    }
}

impl Batch {
    /// A decoded batch's columns (whose types the schema fixed), with nulls only where allowed.
    fn of(batch: &RecordBatch) -> Result<Batch, String> {
        let strings = |i: usize| batch.column(i).as_string_opt::<i32>().cloned();
        let (Some(keys), Some(metadata), Some(extra)) = (strings(0), strings(2), strings(3)) else {
            return Err("a text column is not text".to_owned());
        };
        let column = batch.column(1);
        let vectors = match (column.as_fixed_size_list_opt(), column.as_list_opt::<i32>()) {
            (Some(fixed), _) => Vectors::Fixed(fixed.clone()),
            (None, Some(list)) => Vectors::Variable(list.clone()),
            (None, None) => return Err("the vector column is not a list".to_owned()),
        };
        let values = match &vectors {
            Vectors::Fixed(a) => a.values(),
            Vectors::Variable(a) => a.values(),
        };
        if keys.null_count() > 0
            || metadata.null_count() > 0
            || batch.column(1).null_count() > 0
            || values.null_count() > 0
        {
            return Err("a null where the layout has none".to_owned());
        }
        let floats = values
            .as_primitive_opt::<Float64Type>()
            .ok_or("the vectors' elements are not 64-bit floats")?
            .values()
            .clone();
        Ok(Batch {
            keys,
            vectors,
            floats,
            metadata,
            extra,
        })
    }

    /// The artifact of row `i`, and its key; `objects` reads its metadata and extras.
    fn row(
        &self,
        i: usize,
        objects: &mut ObjectReader,
    ) -> Result<(String, NumericVectorArtifact), String> {
        let key = self.keys.value(i);
        let at = |what: String| format!("the artifact {key:?}: {what}");
        let range = match &self.vectors {
            Vectors::Fixed(a) => {
                let width = usize::try_from(a.value_length()).unwrap_or(0);
                let start = a.value_offset_at(i);
                start..start.saturating_add(width)
            }
            Vectors::Variable(a) => {
                let offsets = a.value_offsets();
                let bound = |j: usize| usize::try_from(offsets[j]).unwrap_or(usize::MAX);
                bound(i)..bound(i + 1)
            }
        };
        // A view into the buffer the file was read into: no float is copied.
        let vector = Vector::view(&self.floats, range.start, range.len())
            .ok_or_else(|| at("its vector lies outside the floats".to_owned()))?;
        let metadata =
            object(objects, self.metadata.value(i)).map_err(|e| at(format!("metadata: {e}")))?;
        let mut artifact = NumericVectorArtifact::new(vector).with_metadata(metadata);
        if self.extra.is_valid(i) {
            let extra =
                object(objects, self.extra.value(i)).map_err(|e| at(format!("extra: {e}")))?;
            if let Some(reserved) = ["__type__", "vector", "metadata"]
                .into_iter()
                .find(|k| extra.contains_key(k))
            {
                return Err(at(format!(
                    "extra: the key {reserved:?} is not an extra key"
                )));
            }
            *artifact.extra_mut() = extra;
        }
        Ok((key.to_owned(), artifact))
    }
}

/// A JSON object in the seed format, read by `objects`.
fn object(objects: &mut ObjectReader, json: &str) -> Result<Map, String> {
    match objects.read(json) {
        Ok(Ok(map)) => Ok(map),
        Ok(Err(other)) => Err(format!("expected an object, found {}", other.kind())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_ipc::writer::FileWriter;
    use penin_codec::{Deque, Number, Value};

    /// A small state with every kind of thing the layout keeps.
    fn sample(vectors: &[Vec<f64>]) -> Document {
        let json = br#"{"knowledge_base": {}, "task_history": {"__type__": "deque",
            "items": [{"task_id": 1, "big": 123456789012345678901234567890}], "maxlen": 7,
            "note": "kept"}, "score_history": {"__type__": "deque", "items": [1, 0.5, NaN],
            "maxlen": null}, "zeta": {"w": [1.0, -0.0]}, "alpha": null}"#;
        let mut doc = Document::decode(json, Some(3)).unwrap();
        for (i, vector) in vectors.iter().enumerate() {
            let mut metadata = Map::new();
            metadata.insert("i", Value::from(i64::try_from(i).unwrap()));
            metadata.insert("text", Value::from("é\u{1F600}\"q\""));
            let mut artifact = NumericVectorArtifact::new(vector.clone()).with_metadata(metadata);
            if i % 2 == 1 {
                artifact.extra_mut().insert("extra_key", Value::from(true));
            }
            doc.knowledge_base.insert(format!("k{i}"), artifact);
        }
        doc
    }

    fn same(a: &Document, b: &Document) {
        assert!(penin_codec::to_vec(a) == penin_codec::to_vec(b));
        assert_eq!(a.knowledge_base.len(), b.knowledge_base.len());
        for ((ka, va), (kb, vb)) in a.knowledge_base.iter().zip(&b.knowledge_base) {
            assert_eq!(ka, kb);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&va.vector), bits(&vb.vector), "{ka}");
            assert_eq!(va.extra(), vb.extra());
        }
        assert_eq!(a.task_history.maxlen(), b.task_history.maxlen());
        assert_eq!(a.score_history.maxlen(), b.score_history.maxlen());
        assert_eq!(a.task_history.extra(), b.task_history.extra());
    }

    #[test]
    fn round_trips_fixed_variable_and_empty_knowledge_bases() {
        let odd = [
            f64::NAN,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff8_0000_dead_beef),
            5e-324,
        ];
        let rows: Vec<(Vec<Vec<f64>>, &str)> = vec![
            (vec![], "List"),
            (
                vec![vec![1.0, 2.0], odd[..2].to_vec(), odd[2..4].to_vec()],
                "FixedSizeList",
            ),
            (vec![odd.to_vec(), vec![], vec![0.25]], "List"),
            (vec![vec![], vec![]], "List"),
        ];
        for (vectors, kind) in rows {
            let doc = sample(&vectors);
            let bytes = write(&doc, Vec::new()).unwrap();
            let back = from_slice(&bytes, Some(1000)).unwrap();
            same(&back, &doc);
            same(&from_vec(bytes.clone(), Some(1000)).unwrap(), &doc);
            let schema = schema_of(&doc);
            assert!(
                format!("{:?}", schema.field(1).data_type()).starts_with(kind),
                "{vectors:?}: {:?}",
                schema.field(1).data_type()
            );
            // Written twice, the same bytes.
            assert_eq!(write(&back, Vec::new()).unwrap(), bytes);
        }
    }

    #[test]
    fn many_rows_make_several_batches_and_chunks() {
        let n = ROWS_PER_BATCH * 2 + 5;
        assert!(n > CHUNK_ROWS, "too few rows for two chunks");
        let vectors: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![f64::from(u32::try_from(i).unwrap()); 3])
            .collect();
        let doc = sample(&vectors);
        let bytes = write(&doc, Vec::new()).unwrap();
        let (buffer, prefix) = read_aligned(&bytes[..], bytes.len()).unwrap();
        let schema_end = message_at(&bytes, HEADER_LEN, bytes.len())
            .unwrap()
            .unwrap()
            .0;
        let footer_len = usize::try_from(i32::from_le_bytes(
            bytes[bytes.len() - 10..bytes.len() - 6].try_into().unwrap(),
        ))
        .unwrap();
        let blocks = record_batches(
            &bytes,
            &schema_of(&doc),
            schema_end,
            bytes.len() - 10 - footer_len - 8,
        )
        .unwrap();
        assert_eq!(blocks.len(), 3);
        same(
            &decode(&buffer, Checksum::Read(Box::new(prefix)), None).unwrap(),
            &doc,
        );
    }

    /// The rows of each batch penin cuts `doc`'s knowledge base into.
    fn cuts(doc: &Document) -> Vec<usize> {
        let mut rows = Vec::new();
        each_batch(doc, width_of(&schema_of(doc)), |batch| {
            rows.push(batch.len());
            Ok(())
        })
        .unwrap();
        rows
    }

    /// [`cuts`] of the sample state with `vectors`.
    fn batch_rows(vectors: &[Vec<f64>]) -> Vec<usize> {
        cuts(&sample(vectors))
    }

    #[test]
    fn batches_are_cut_at_the_rows_and_floats_limits() {
        let short = vec![0.5; 3];
        let n = ROWS_PER_BATCH * 2 + 5;
        assert_eq!(
            batch_rows(&vec![short.clone(); n]),
            [ROWS_PER_BATCH, ROWS_PER_BATCH, 5]
        );
        assert_eq!(batch_rows(&vec![short; ROWS_PER_BATCH]), [ROWS_PER_BATCH]);
        // Two half-limit vectors fill a batch exactly; a third starts the next.
        let half = vec![1.0; FLOATS_PER_BATCH / 2];
        assert_eq!(batch_rows(&vec![half.clone(); 3]), [2, 1]);
        // Vectors of different lengths (a `List` column) are cut by their floats too, and
        // one longer than the limit has a batch of its own.
        let long = vec![2.0; FLOATS_PER_BATCH + 1];
        assert_eq!(
            batch_rows(&[vec![1.0], long.clone(), vec![1.0], half.clone(), half]),
            [1, 1, 2, 1]
        );
        // Whatever the cut, the file reads back as the state written.
        let doc = sample(&[vec![1.0], long, vec![-0.0]]);
        same(
            &from_slice(&write(&doc, Vec::new()).unwrap(), None).unwrap(),
            &doc,
        );
    }

    /// `doc` written by arrow-rs's own `FileWriter` from the record batches penin cuts.
    ///
    /// The batches hold the rows penin cuts them at, but are built with arrow-rs's own
    /// builders, not penin's `Rows`.
    fn by_arrow_rs(doc: &Document) -> Vec<u8> {
        use arrow_array::builder::{
            FixedSizeListBuilder, Float64Builder, ListBuilder, StringBuilder,
        };
        let schema = Arc::new(schema_of(doc));
        let mut file = FileWriter::try_new(Vec::new(), &schema).unwrap();
        let mut artifacts = doc.knowledge_base.iter();
        for rows in cuts(doc) {
            let (mut keys, mut metadata, mut extra) = (
                StringBuilder::new(),
                StringBuilder::new(),
                StringBuilder::new(),
            );
            let mut fixed = width_of(&schema).map(|width| {
                FixedSizeListBuilder::new(Float64Builder::new(), width).with_field(item())
            });
            let mut list = ListBuilder::new(Float64Builder::new()).with_field(item());
            for (key, artifact) in artifacts.by_ref().take(rows) {
                keys.append_value(key);
                let json = penin_codec::to_vec_compact(&artifact.metadata);
                metadata.append_value(std::str::from_utf8(&json).unwrap());
                if artifact.extra().is_empty() {
                    extra.append_null();
                } else {
                    let json = penin_codec::to_vec_compact(artifact.extra());
                    extra.append_value(std::str::from_utf8(&json).unwrap());
                }
                match &mut fixed {
                    Some(fixed) => {
                        fixed.values().append_slice(&artifact.vector);
                        fixed.append(true);
                    }
                    None => {
                        list.values().append_slice(&artifact.vector);
                        list.append(true);
                    }
                }
            }
            let vectors: ArrayRef = match &mut fixed {
                Some(fixed) => Arc::new(fixed.finish()),
                None => Arc::new(list.finish()),
            };
            let columns: Vec<ArrayRef> = vec![
                Arc::new(keys.finish()),
                vectors,
                Arc::new(metadata.finish()),
                Arc::new(extra.finish()),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
            file.write(&batch).unwrap();
        }
        with_checksum(file)
    }

    #[test]
    fn a_file_is_hashed_as_read_across_its_chunks_and_a_short_one_is_an_error() {
        let bytes: Vec<u8> = (0..2 * READ_CHUNK + 77).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let hash_file = |end| {
            let mut hasher = XxHash3_128::new();
            hash_read(&file, &mut hasher, &mut Vec::new(), 0, end).map(|()| hasher.finish_128())
        };
        for end in [0, 1, READ_CHUNK, READ_CHUNK + 1, bytes.len()] {
            assert_eq!(
                hash_file(end).unwrap(),
                XxHash3_128::oneshot(&bytes[..end]),
                "{end}"
            );
        }
        let error = hash_file(bytes.len() + 1).unwrap_err();
        assert!(
            matches!(&error, Error::Read(e) if e.kind() == io::ErrorKind::UnexpectedEof
                && e.to_string() == format!("the file ends at byte {}, before its length", bytes.len())),
            "{error:?}"
        );
    }

    #[test]
    fn a_mapped_file_is_hashed_over_the_map_where_its_faults_are_few_else_read() {
        // The file and the "map" differ in every byte, so the hash says which bytes came from
        // where (`expected` takes the ranges `(from, to)` hashed over the map). Windows of
        // 1,000 bytes: a probe may take 1 fault, a window over the map 2.
        let file_bytes: Vec<u8> = (0..3 * READ_CHUNK + 77).map(|i| (i % 251) as u8).collect();
        let map: Vec<u8> = file_bytes.iter().map(|b| !b).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&file_bytes).unwrap();
        let end = file_bytes.len() - 5;
        // The hash of the map's bytes in the ranges `mapped`, the file's elsewhere.
        let expected = |mapped: &[(usize, usize)]| {
            let mut hasher = XxHash3_128::new();
            let mut at = 0;
            for &(from, to) in mapped {
                hasher.write(&file_bytes[at..from]);
                hasher.write(&map[from..to]);
                at = to;
            }
            hasher.write(&file_bytes[at..end]);
            hasher.finish_128()
        };
        // Counts of faults given in turn, then `None`.
        let hashed = |counts: Vec<Option<u64>>| {
            let mut counts = counts.into_iter();
            hash_mapped_with(&file, &map, end, 1000, move || counts.next().flatten()).unwrap()
        };
        // Few faults all along: the map throughout.
        let mut few = 0;
        let rising = move || {
            few += 1;
            Some(few)
        };
        let over_map = hash_mapped_with(&file, &map, end, 1000, rising).unwrap();
        assert_eq!(over_map, expected(&[(0, end)]));
        // No count at all: read throughout.
        assert_eq!(hashed(vec![]), expected(&[]));
        // The first window's probe takes two faults: read, and the second without a probe.
        // The third's takes one: over the map, where it takes too many (7): the fourth
        // probed, refused, read, and the fifth without a probe; the sixth probed (no
        // fault), over the map; then no count: read.
        let counts = [0, 2, 2, 3, 10, 10, 12, 12, 12].map(Some).to_vec();
        assert_eq!(hashed(counts), expected(&[(2000, 3000), (5000, 6000)]));
        // As many as allowed in two windows, then too many: the rest probed, refused, read.
        let counts = [0, 1, 3, 5, 8, 8, 10, 10, 12].map(Some).to_vec();
        assert_eq!(hashed(counts), expected(&[(0, 3000)]));
        // A count that stops after the second window (over the map, as the first allowed):
        // the rest read.
        assert_eq!(
            hashed(vec![Some(0), Some(0), Some(0)]),
            expected(&[(0, 2000)])
        );
        // Every probe refused: read throughout, probed ever more rarely (after 1, 2, 4, then
        // every 8 windows read without one), not before every window.
        let mut calls = 0;
        let refusing = || {
            calls += 1;
            Some(2 * calls)
        };
        let read = hash_mapped_with(&file, &map, end, 1000, refusing).unwrap();
        assert_eq!(read, expected(&[]));
        let windows = end.div_ceil(1000) as u64;
        let probes = 4 + (windows - 19).div_ceil(9);
        assert_eq!(calls, 2 * probes, "{windows} windows");
        // A window over the map may take 2 faults a MiB it spans: 6 for a window of 3 MiB.
        let big_file: Vec<u8> = (0..(5_usize << 20) + 100)
            .map(|i| (i % 253) as u8)
            .collect();
        let big_map: Vec<u8> = big_file.iter().map(|b| !b).collect();
        let mut big = tempfile::tempfile().unwrap();
        big.write_all(&big_file).unwrap();
        let mut counts = [0, 0, 6, 13, 13, 15].map(Some).into_iter();
        let window = (2 << 20) + 1;
        let found = hash_mapped_with(&big, &big_map, big_file.len(), window, move || {
            counts.next().flatten()
        })
        .unwrap();
        let mut two_mapped = XxHash3_128::new();
        two_mapped.write(&big_map[..2 * window]);
        two_mapped.write(&big_file[2 * window..]);
        assert_eq!(found, two_mapped.finish_128());
        // Every `end`, over the map and read alike.
        for end in [0, 1, 999, 1000, 1001, READ_CHUNK + 1, map.len()] {
            let read = hash_mapped_with(&file, &map, end, 1000, || None).unwrap();
            assert_eq!(read, XxHash3_128::oneshot(&file_bytes[..end]), "{end}");
            let over = hash_mapped_with(&file, &map, end, 1000, || Some(0)).unwrap();
            assert_eq!(over, XxHash3_128::oneshot(&map[..end]), "{end}");
        }
        // A file cut short before `end` while mapped: an error where it is read.
        let error = hash_mapped_with(&file, &map, map.len() + 1, 1000, || None).unwrap_err();
        assert!(matches!(&error, Error::Read(e) if e.kind() == io::ErrorKind::UnexpectedEof));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_threads_page_faults_are_counted() {
        let mut faults = ThreadFaults::new();
        let before = faults
            .count()
            .expect("/proc/thread-self/stat gives the faults");
        // 64 MiB of fresh memory, each page written: one fault a page, or one a 2 MiB huge
        // page where the system gives them.
        let mut fresh = vec![0_u8; 64 << 20];
        for page in fresh.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&fresh);
        let after = faults.count().unwrap();
        assert!(after >= before + 32, "{before} -> {after}");
        // Another thread's faults are its own.
        let other = std::thread::spawn(|| {
            let mut fresh = vec![0_u8; 64 << 20];
            for page in fresh.chunks_mut(4096) {
                page[0] = 1;
            }
            std::hint::black_box(&fresh);
        });
        other.join().unwrap();
        let later = faults.count().unwrap();
        assert!(later < after + 32, "{after} -> {later}");
    }

    #[test]
    fn the_writer_writes_the_bytes_of_arrow_rss_file_writer() {
        let odd = vec![f64::NAN, -0.0, f64::INFINITY, 5e-324];
        let mut cases: Vec<(&str, Document)> = vec![
            ("empty", sample(&[])),
            ("one row", sample(&[vec![1.5]])),
            ("fixed, extras on odd rows", sample(&vec![odd.clone(); 13])),
            (
                "ragged",
                sample(&[odd.clone(), vec![], vec![0.25], odd.clone()]),
            ),
            ("only empty vectors", sample(&[vec![], vec![], vec![]])),
            (
                "three batches",
                sample(&vec![vec![0.5; 3]; ROWS_PER_BATCH * 2 + 7]),
            ),
            (
                "a vector alone in its batch",
                sample(&[vec![1.0], vec![2.0; FLOATS_PER_BATCH + 1], vec![3.0]]),
            ),
        ];
        // Extra keys on every row (no validity bitmap) and on none (a bitmap of zeros).
        let mut all = sample(&vec![vec![1.0, 2.0]; 9]);
        let mut none = all.clone();
        for artifact in all.knowledge_base.values_mut() {
            artifact.extra_mut().insert("e", Value::from(1));
        }
        for artifact in none.knowledge_base.values_mut() {
            *artifact = NumericVectorArtifact::new(artifact.vector.to_vec())
                .with_metadata(artifact.metadata.clone());
        }
        cases.extend([("extras on every row", all), ("no extras", none)]);
        for (name, doc) in cases {
            let ours = write(&doc, Vec::new()).unwrap();
            assert!(ours == by_arrow_rs(&doc), "{name}: not arrow-rs's bytes");
            assert!(
                write_unbuffered(&doc, Vec::new()).unwrap() == ours,
                "{name}: unbuffered"
            );
            same(&from_slice(&ours, None).unwrap(), &doc);
        }
    }

    /// A reader that hands out at most `chunk` bytes a call, as a pipe may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_fresh_region_is_zeroed_page_aligned_and_whole_huge_pages() {
        let region = fresh_region((5 << 20) + 1).unwrap();
        assert_eq!(region.len(), 6 << 20);
        // Page-aligned, so aligned for every column type (8 bytes).
        assert_eq!(region.as_ptr().align_offset(4096), 0);
        assert!(region.iter().all(|&byte| byte == 0));
    }

    /// A state of 8,192 artifacts × 128 (`i / divisor` each) and its snapshot: about 8 MiB,
    /// hashed beside the read where a second thread is there to do it; 4 chunks of rows.
    fn eight_mib(divisor: f64) -> (Document, Vec<u8>) {
        let vectors: Vec<Vec<f64>> = (0..8192)
            .map(|i| vec![f64::from(u32::try_from(i).unwrap()) / divisor; 128])
            .collect();
        let doc = sample(&vectors);
        let bytes = write(&doc, Vec::new()).unwrap();
        (doc, bytes)
    }

    #[test]
    fn the_checksum_computed_while_reading_catches_a_flip_anywhere() {
        let (doc, bytes) = eight_mib(3.0);
        assert!(bytes.len() > PARALLEL_HASH_MIN + PREFIX_STATES * READ_CHUNK);
        // Whole, with a size hint that is right, none, too small (the rest is read and
        // hashed after the second thread's part), too large, and in odd pieces.
        same(&from_slice(&bytes, None).unwrap(), &doc);
        for hint in [0, PARALLEL_HASH_MIN + 12_345, 2 * bytes.len()] {
            same(&read(&bytes[..], hint, None).unwrap(), &doc);
        }
        let trickle = Trickle {
            bytes: &bytes,
            chunk: 99_991,
        };
        let loaded = read(trickle, bytes.len(), None).unwrap();
        same(&loaded, &doc);
        // The vectors are views into the buffer the file was read into, not copies.
        assert!(loaded.knowledge_base.values().all(|a| a.vector.is_shared()));
        // A flip in the part hashed early, and one in the part hashed at the end.
        for at in [
            HEADER_LEN + 4096,
            bytes.len() / 2,
            bytes.len() - READ_CHUNK / 2,
        ] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let err = from_slice(&flipped, None).unwrap_err().to_string();
            assert!(err.contains("checksum mismatch"), "byte {at}: {err}");
        }
    }

    #[test]
    fn every_load_without_helper_threads_gives_the_state_and_refuses_a_flip() {
        let (doc, bytes) = eight_mib(7.0);
        assert!(bytes.len() > PARALLEL_HASH_MIN && doc.knowledge_base.len() > 3 * CHUNK_ROWS);
        if std::thread::available_parallelism().map_or(1, std::num::NonZero::get) < 2 {
            // The maps and the kept buffer still start their hashing thread; reads do not.
            penin_testkit::skip(
                "arrow::tests::every_load_without_helper_threads_gives_the_state_and_refuses_a_flip",
                "one CPU: a read is hashed on the reading thread, no helper to refuse",
            );
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x04;
        let loads = |bytes: &[u8]| {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(bytes).unwrap();
            penin_codec::refusing_helpers(|| {
                [
                    ("slice", from_slice(bytes, None)),
                    ("kept", from_vec(bytes.to_vec(), None)),
                    ("read", read(bytes, bytes.len(), None)),
                    ("mapped", map(&file, None).unwrap()),
                    ("mapped populated", map_populated(&file, None).unwrap()),
                ]
            })
        };
        for (how, loaded) in loads(&bytes) {
            same(&loaded.unwrap_or_else(|e| panic!("{how}: {e}")), &doc);
        }
        for (how, loaded) in loads(&flipped) {
            let err = loaded.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("checksum mismatch"), "{how}: {err}");
        }
    }

    #[test]
    fn a_footer_longer_than_the_kept_hash_states_is_checked_from_the_start() {
        // A task history of about 3 MiB: the schema, and so the footer, repeats it.
        let mut doc = sample(&[vec![1.0; 4]]);
        let mut tasks = Vec::new();
        for i in 0..30_000_i64 {
            let mut task = Map::new();
            task.insert("task_id", Value::from(i));
            task.insert("notes", Value::from("x".repeat(90)));
            tasks.push(Value::from(task));
        }
        doc.task_history = penin_codec::Deque::from_items(tasks, None);
        let bytes = write(&doc, Vec::new()).unwrap();
        let footer_len = usize::try_from(i32::from_le_bytes(
            bytes[bytes.len() - 10..bytes.len() - 6].try_into().unwrap(),
        ))
        .unwrap();
        assert!(
            footer_len > PREFIX_STATES * READ_CHUNK,
            "footer of {footer_len} bytes"
        );
        same(&from_slice(&bytes, None).unwrap(), &doc);
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 100] ^= 1;
        assert!(from_slice(&flipped, None).is_err());
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let doc = sample(&[vec![0.5, -1.5], vec![f64::NAN, 2.0]]);
        let bytes = write(&doc, Vec::new()).unwrap();
        let mut newer = 0;
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                match from_slice(&bad, None) {
                    Ok(_) => panic!(
                        "a flip of bit {bit} of byte {at} of {} was not detected",
                        bytes.len()
                    ),
                    Err(Error::Corrupt { .. }) => {}
                    // The version's digit itself, read before any checksum.
                    Err(Error::NewerVersion { .. }) => newer += 1,
                    Err(other) => panic!("byte {at} bit {bit}: {other:?}"),
                }
            }
        }
        assert!(newer <= 4, "{newer} flips read as a newer version");
    }

    #[test]
    fn a_kept_buffer_is_decoded_in_place_and_an_unaligned_one_is_copied() {
        let doc = sample(&[vec![0.5, -1.5], vec![f64::NAN, 2.0], vec![4.0, 8.0]]);
        let bytes = write(&doc, Vec::new()).unwrap();
        for aligned in [true, false] {
            let kept = bytes.clone();
            let range = kept.as_ptr_range();
            let range = range.start as usize..range.end as usize;
            let back = decode_owned(kept, aligned, None).unwrap();
            same(&back, &doc);
            // In place, every vector is a view into the bytes given; copied, none is.
            for (key, artifact) in &back.knowledge_base {
                let at = artifact.vector.as_ptr() as usize;
                assert_eq!(range.contains(&at), aligned, "{key}, aligned: {aligned}");
            }
        }
    }

    /// A mapped file, or a decrypted one kept as the state's buffer, is decoded before its
    /// checksum is compared: every flipped bit must still be an error (the checksum's, or the
    /// decoder's), never a panic and never a state.
    #[test]
    fn every_flipped_bit_is_refused_when_decoded_before_the_checksum() {
        let fixed = sample(&[vec![0.5, -1.5], vec![f64::NAN, 2.0]]);
        let lists = sample(&[vec![0.5], vec![f64::NAN, 2.0, 3.0], vec![]]);
        for doc in [fixed, lists] {
            let bytes = write(&doc, Vec::new()).unwrap();
            let (buffer, _) = read_aligned(&bytes[..], bytes.len()).unwrap();
            same(&decode(&buffer, Checksum::Aside, None).unwrap(), &doc);
            for at in 0..bytes.len() {
                for bit in 0..8 {
                    let mut bad = bytes.clone();
                    bad[at] ^= 1 << bit;
                    let (buffer, _) = read_aligned(&bad[..], bad.len()).unwrap();
                    let kept = from_vec(bad, None);
                    for decoded in [decode(&buffer, Checksum::Aside, None), kept] {
                        match decoded {
                            Ok(_) => panic!("bit {bit} of byte {at} of {}: a state", bytes.len()),
                            Err(Error::Corrupt { .. } | Error::NewerVersion { .. }) => {}
                            Err(other) => panic!("byte {at} bit {bit}: {other:?}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let doc = sample(&[vec![0.5, -1.5], vec![f64::NAN, 2.0]]);
        let bytes = write(&doc, Vec::new()).unwrap();
        for len in 0..bytes.len() {
            assert!(
                matches!(from_slice(&bytes[..len], None), Err(Error::Corrupt { .. })),
                "cut at {len} of {}",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(from_slice(&longer, None).is_err());
    }

    /// The file with its schema metadata's `penin.version` spelled `version`, with a valid
    /// checksum and footer: what a newer penin would write.
    fn with_version(version: &str) -> Vec<u8> {
        let doc = sample(&[vec![1.0]]);
        let artifact = &doc.knowledge_base["k0"];
        let schema = schema_of(&doc);
        let mut metadata = schema.metadata().clone();
        metadata.insert(VERSION_KEY, version);
        handmade(&schema.with_metadata(metadata), &[&[("k0", artifact)]])
    }

    /// Rows of a hand-made batch: key and artifact.
    type HandRows<'a> = &'a [(&'a str, &'a NumericVectorArtifact)];

    /// A file of `schema` with the given batches of rows (which penin's writer, writing a
    /// knowledge base, could not make: a key twice, say), its checksum and footer valid.
    fn handmade(schema: &Schema, batches: &[HandRows<'_>]) -> Vec<u8> {
        let schema = Arc::new(schema.clone());
        let mut file = FileWriter::try_new(Vec::new(), &schema).unwrap();
        for batch in batches {
            let mut rows = Rows::new(width_of(&schema));
            for (key, artifact) in *batch {
                rows.push(key, artifact).unwrap();
            }
            file.write(&rows.batch(&schema).unwrap()).unwrap();
        }
        with_checksum(file)
    }

    /// The file `file` has written so far, finished with the checksum penin writes.
    fn with_checksum(mut file: FileWriter<Vec<u8>>) -> Vec<u8> {
        let mut prefix = XxHash3_128::new();
        prefix.write(file.get_ref());
        prefix.write(&EOS);
        file.write_metadata(CHECKSUM_KEY, format!("{:032x}", prefix.finish_128()));
        file.into_inner().unwrap()
    }

    #[test]
    fn a_key_twice_is_refused_within_a_batch_across_batches_and_across_chunks() {
        let doc = sample(&[vec![1.0, 2.0]]);
        let artifact = &doc.knowledge_base["k0"];
        let schema = schema_of(&doc);
        let names: Vec<String> = (0..CHUNK_ROWS * 2 + 10).map(|i| format!("n{i}")).collect();
        let many: Vec<(&str, &NumericVectorArtifact)> =
            names.iter().map(|name| (name.as_str(), artifact)).collect();
        let (first, second) = many.split_at(CHUNK_ROWS * 2 - 1);
        let twice = [("a", artifact), ("b", artifact), ("a", artifact)];
        let again = [("n3", artifact)];
        let cases: [(&str, &str, Vec<HandRows<'_>>); 3] = [
            ("one batch", "a", vec![&twice]),
            ("two batches", "a", vec![&twice[..2], &twice[2..]]),
            // The key's first copy is in the first chunk, its second ends the second.
            ("three chunks", "n3", vec![first, &again, second]),
        ];
        for (case, key, batches) in cases {
            let bytes = handmade(&schema, &batches);
            let error = from_slice(&bytes, None).unwrap_err();
            assert!(matches!(error, Error::Corrupt { .. }), "{case}: {error}");
            let text = error.to_string();
            assert!(text.contains("appears twice"), "{case}: {text}");
            assert!(text.contains(&format!("{key:?}")), "{case}: {text}");
        }
        // The same rows without the second copy read.
        assert!(from_slice(&handmade(&schema, &[&twice[..2]]), None).is_ok());
    }

    /// The rows of the snapshot `bytes`, decoded and not built.
    fn artifacts_of(bytes: &[u8]) -> Artifacts {
        let (buffer, _) = read_aligned(bytes, bytes.len()).unwrap();
        let (schema, schema_end) = schema_message(bytes, bytes.len()).unwrap();
        let end = footer_start(bytes.len(), &bytes[bytes.len() - 10..], schema_end).unwrap();
        let blocks = record_batches(bytes, &schema, schema_end, end - EOS.len()).unwrap();
        contents(&buffer, &schema, &blocks, None).unwrap().1
    }

    /// The rows of a snapshot of `n` artifacts, decoded and not built.
    pub(super) fn sample_artifacts(n: usize) -> Artifacts {
        let vectors = vec![vec![0.25]; n];
        artifacts_of(&write(&sample(&vectors), Vec::new()).unwrap())
    }

    /// The knowledge base of `bytes`' rows, built with `helpers` threads helping.
    fn built_with(bytes: &[u8], helpers: usize) -> Result<KnowledgeBase> {
        let artifacts = artifacts_of(bytes);
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(|| artifacts.help());
            }
            artifacts.build()
        })
    }

    /// The knowledge base of `bytes`, loaded every way there is: built with 0, 1 and 3 helping
    /// threads (five times each), read (`Checksum::Read`), kept (`Checksum::Aside`), mapped
    /// bare (`Checksum::Reread`) and mapped populated.
    fn every_load(bytes: &[u8]) -> Vec<(String, Result<KnowledgeBase>)> {
        let mut loads = Vec::new();
        for helpers in [0, 1, 3] {
            for round in 0..5 {
                let built = built_with(bytes, helpers);
                loads.push((format!("{helpers} helpers, round {round}"), built));
            }
        }
        let kb = |doc: Result<Document>| doc.map(|doc| doc.knowledge_base);
        loads.push(("read".to_owned(), kb(from_slice(bytes, None))));
        loads.push(("kept".to_owned(), kb(from_vec(bytes.to_vec(), None))));
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        loads.push(("mapped".to_owned(), kb(map(&file, None).unwrap())));
        let populated = map_populated(&file, None).unwrap();
        loads.push(("mapped populated".to_owned(), kb(populated)));
        loads
    }

    #[test]
    fn artifacts_built_by_any_number_of_threads_come_in_the_files_order() {
        let n = CHUNK_ROWS * 5 + 7;
        let vectors: Vec<Vec<f64>> = (0..n)
            .map(|i| vec![f64::from(u32::try_from(i).unwrap()), -0.5])
            .collect();
        let doc = sample(&vectors);
        // 2,500 batches of one row, then batches of 1,000 rows, and empty ones: chunks of
        // 2,048 start among the one-row batches and inside a larger one.
        let rows: Vec<(&str, &NumericVectorArtifact)> = doc
            .knowledge_base
            .iter()
            .map(|(k, a)| (k.as_str(), a))
            .collect();
        let (ones, rest) = rows.split_at(2500);
        let mut batches: Vec<HandRows<'_>> = ones.chunks(1).collect();
        batches.extend(rest.chunks(1000));
        batches.insert(2048, &[]);
        batches.insert(3, &[]);
        let bytes = handmade(&schema_of(&doc), &batches);
        for (how, kb) in every_load(&bytes) {
            let mut back = sample(&[]);
            back.knowledge_base = kb.unwrap_or_else(|e| panic!("{how}: {e}"));
            same(&back, &doc);
            for (a, b) in back
                .knowledge_base
                .values()
                .zip(doc.knowledge_base.values())
            {
                assert_eq!(a.metadata, b.metadata, "{how}");
            }
        }
    }

    #[test]
    fn every_loaded_vector_is_a_view_of_the_files_buffer_until_compacted() {
        let many: Vec<Vec<f64>> = (0..CHUNK_ROWS + 3)
            .map(|i| vec![0.5, -1.0, 2.0 + f64::from(u32::try_from(i).unwrap())])
            .collect();
        // A vector alone in its batch, and one with all of its batch's floats beside empty ones.
        let states = [
            sample(&[vec![1.0, 2.0]]),
            sample(&[vec![0.25; FLOATS_PER_BATCH + 1], vec![1.0]]),
            sample(&[vec![], vec![1.0, 2.0], vec![]]),
            sample(&many),
        ];
        for (case, doc) in states.iter().enumerate() {
            let bytes = write(doc, Vec::new()).unwrap();
            for (how, kb) in every_load(&bytes) {
                let kb = kb.unwrap();
                assert_eq!(kb.len(), doc.knowledge_base.len());
                for (key, artifact) in kb {
                    let mut vector = artifact.vector;
                    assert!(vector.is_shared(), "state {case}, {how}: {key}");
                    // Compacted, a vector has floats of its own, the same.
                    let floats = vector.to_vec();
                    vector.compact();
                    assert!(!vector.is_shared(), "state {case}, {how}: {key}");
                    assert_eq!(vector, floats);
                }
            }
        }
    }

    #[test]
    fn the_first_refusal_in_the_files_order_is_the_error_whatever_the_threads() {
        let doc = sample(&[vec![1.0, 2.0]]);
        let artifact = &doc.knowledge_base["k0"];
        let mut bad = artifact.clone();
        bad.extra_mut().insert("vector", Value::from(1));
        let schema = schema_of(&doc);
        let names: Vec<String> = (0..CHUNK_ROWS * 5).map(|i| format!("n{i}")).collect();
        let twice = "the key \"n0\" appears twice".to_owned();
        let bad_row = |i: usize| {
            format!(
                "record batch {}, row {}: the artifact \"n{i}\": extra: the key \"vector\"",
                i / ROWS_PER_BATCH,
                i % ROWS_PER_BATCH
            )
        };
        let (chunk_1, chunk_3) = (CHUNK_ROWS + 5, CHUNK_ROWS * 3 + 5);
        // (the row that repeats the key "n0", the row refused, the error): in chunks 1 and
        // 3, both ways round, and one after the other in the first chunk, both ways round.
        let cases = [
            (chunk_1, chunk_3, twice.clone()),
            (chunk_3, chunk_1, bad_row(chunk_1)),
            (5, 6, twice.clone()),
            (6, 5, bad_row(5)),
        ];
        for (twice_at, bad_at, expected) in cases {
            let rows: Vec<(&str, &NumericVectorArtifact)> = (0..names.len())
                .map(|i| match i {
                    _ if i == twice_at => ("n0", artifact),
                    _ if i == bad_at => (names[i].as_str(), &bad),
                    _ => (names[i].as_str(), artifact),
                })
                .collect();
            let batches: Vec<HandRows<'_>> = rows.chunks(ROWS_PER_BATCH).collect();
            let bytes = handmade(&schema, &batches);
            for (how, kb) in every_load(&bytes) {
                let error = kb.unwrap_err().to_string();
                assert!(error.contains(&expected), "{how}: {error}");
            }
        }
    }

    #[test]
    fn versions_are_checked_first() {
        assert!(from_slice(&with_version("1"), None).is_ok());
        let error = from_slice(&with_version("2"), None).unwrap_err();
        assert!(matches!(
            error,
            Error::NewerVersion {
                found: 2,
                supported: 1
            }
        ));
        assert_eq!(
            error.to_string(),
            "the arrow snapshot is of version 2; this penin reads up to version 1"
        );
        // Before the checksum: a newer file is refused as newer, whatever else it holds.
        let mut newer = with_version("17");
        let last = newer.len() - 20;
        newer[last] ^= 0xff;
        assert!(matches!(
            from_slice(&newer, None),
            Err(Error::NewerVersion { found: 17, .. })
        ));
        for bad in ["0", "01", "+1", "x", ""] {
            let error = from_slice(&with_version(bad), None).unwrap_err();
            assert!(matches!(error, Error::Corrupt { .. }), "{bad:?}: {error}");
        }
    }

    /// `check_frame` of `bytes` agrees with the whole file's reading: it refuses only what
    /// `from_slice` refuses, with the same error; gives whether it refused.
    fn frame_agrees(bytes: &[u8], case: &str) -> bool {
        match check_frame(bytes, bytes.len() as u64) {
            Ok(()) => false,
            Err(error) => {
                let whole = from_slice(bytes, None).expect_err(case);
                assert_eq!(error.to_string(), whole.to_string(), "{case}");
                true
            }
        }
    }

    #[test]
    fn a_frame_is_checked_from_its_ends_with_the_error_of_the_whole_file() {
        let bytes = write(&sample(&[vec![1.0, 2.0], vec![3.0, 4.0]]), Vec::new()).unwrap();
        assert!(!frame_agrees(&bytes, "the whole file"));
        // Cut short anywhere: refused as the whole file is, whenever its last bytes are
        // not a footer's length and the magic (a cut inside the leading magic cannot end
        // with it).
        let mut refused = 0;
        for cut in 0..bytes.len() {
            refused += usize::from(frame_agrees(&bytes[..cut], &format!("cut at {cut}")));
        }
        assert_eq!(refused, bytes.len());
        // Extended by zeros, as a file given a hole at its end reads.
        for zeros in [1, 10, 4096, 1 << 20] {
            let mut longer = bytes.clone();
            longer.resize(bytes.len() + zeros, 0);
            assert!(frame_agrees(&longer, &format!("{zeros} zeros more")));
            assert!(
                check_frame(&longer[..], longer.len() as u64)
                    .unwrap_err()
                    .to_string()
                    .contains("does not end with ARROW1")
            );
        }
        // Every bit of the file flipped: refused by the frame when the flip is in the
        // marker, the footer's length or the magic at the end; never a file the whole
        // reading accepts.
        let footer_start = footer_start(bytes.len(), &bytes[bytes.len() - 10..], 0).unwrap();
        let framing = (footer_start - EOS.len()..footer_start).chain(bytes.len() - 10..bytes.len());
        let framing: Vec<usize> = framing.collect();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                let refused = frame_agrees(&flipped, &format!("bit {bit} of byte {at}"));
                if framing.contains(&at) {
                    assert!(refused, "bit {bit} of byte {at}");
                }
                if !framing.contains(&at) && at < footer_start - EOS.len() {
                    assert!(!refused, "bit {bit} of byte {at}: the middle is not read");
                }
            }
        }
        // The version first: a newer file that does not end as this penin's do is refused
        // as newer, even with its middle a hole.
        let mut newer = with_version("17");
        newer.resize(newer.len() + 4096, 0);
        assert!(frame_agrees(&newer, "a newer file extended"));
        assert!(matches!(
            check_frame(&newer[..], newer.len() as u64),
            Err(Error::NewerVersion { found: 17, .. })
        ));
    }

    /// A file of `len` bytes: `bytes`, then zeros (a hole); it counts the bytes read from it,
    /// and fails the reads that touch `failing`.
    struct Holed {
        bytes: Vec<u8>,
        len: u64,
        read: std::sync::atomic::AtomicU64,
        failing: std::ops::Range<u64>,
    }

    impl Holed {
        fn new(bytes: Vec<u8>, len: u64) -> Holed {
            Holed {
                bytes,
                len,
                read: 0.into(),
                failing: 0..0,
            }
        }

        fn read(&self) -> u64 {
            self.read.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl Source for Holed {
        fn size(&self) -> io::Result<u64> {
            Ok(self.len)
        }

        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let n = buf
                .len()
                .min(usize::try_from(self.len.saturating_sub(offset)).unwrap());
            let end = offset + n as u64;
            if n > 0 && offset < self.failing.end && self.failing.start < end {
                return Err(io::Error::other("a bad sector"));
            }
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                let at = usize::try_from(offset).unwrap() + i;
                *byte = self.bytes.get(at).copied().unwrap_or(0);
            }
            self.read
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
    }

    #[test]
    fn a_frame_is_checked_by_reading_a_few_bytes_whatever_length_the_file_claims() {
        let bytes = write(&sample(&[vec![1.0, 2.0]]), Vec::new()).unwrap();
        let schema_meta =
            i32::from_le_bytes(bytes[HEADER_LEN + 4..HEADER_LEN + 8].try_into().unwrap());
        let schema_meta = u64::try_from(schema_meta).unwrap();
        // Sound: its last 10 bytes and the marker before the footer.
        let sound = Holed::new(bytes.clone(), bytes.len() as u64);
        check_frame(&sound, sound.len).unwrap();
        assert_eq!(sound.read(), 18);
        // A terabyte, the snapshot then a hole: its last 10 bytes, then its first ones as
        // far as the schema's metadata, for the error the whole file gives.
        let holed = Holed::new(bytes.clone(), 1 << 40);
        let error = check_frame(&holed, holed.len).unwrap_err();
        assert!(
            error.to_string().contains("does not end with ARROW1"),
            "{error}"
        );
        assert_eq!(holed.read(), 10 + (HEADER_LEN as u64 + 8) + schema_meta);
        // A read that fails, at the end, at the marker or in the schema: a read error.
        let footer_start = footer_start(bytes.len(), &bytes[bytes.len() - 10..], 0).unwrap();
        let len = bytes.len() as u64;
        let marker = footer_start as u64 - 8;
        for (failing, claimed) in [
            (len - 1..len, len),
            (marker..marker + 1, len),
            (HEADER_LEN as u64 + 20..HEADER_LEN as u64 + 21, 1 << 40),
        ] {
            let mut source = Holed::new(bytes.clone(), claimed);
            source.failing = failing.clone();
            let error = check_frame(&source, claimed).unwrap_err();
            assert!(matches!(error, Error::Read(_)), "{failing:?}: {error}");
        }
        // A source that holds fewer bytes than the length it is checked against.
        let error = check_frame(&bytes[..], len + 100).unwrap_err();
        assert!(matches!(error, Error::Read(_)), "{error}");
    }

    /// A file whose schema message, of `version`, claims a body of `body` bytes (arrow's
    /// schema messages have none), followed by `body` zeros and a damaged end.
    fn schema_with_body(version: &str, body: usize) -> Vec<u8> {
        let doc = sample(&[vec![1.0]]);
        let schema = schema_of(&doc);
        let mut metadata = schema.metadata().clone();
        metadata.insert(VERSION_KEY.to_owned(), version.to_owned());
        let schema = schema.with_metadata(metadata);
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let mut tracker = DictionaryTracker::new(true);
        let fb_schema = IpcSchemaEncoder::new()
            .with_dictionary_tracker(&mut tracker)
            .schema_to_fb_offset(&mut fbb, &schema);
        let mut message = arrow_ipc::MessageBuilder::new(&mut fbb);
        message.add_version(IPC_VERSION);
        message.add_header_type(MessageHeader::Schema);
        message.add_bodyLength(i64::try_from(body).unwrap());
        message.add_header(fb_schema.as_union_value());
        let message = message.finish();
        fbb.finish(message, None);
        let meta = fbb.finished_data();
        let padded = (meta.len() + 8).next_multiple_of(8) - 8;
        let mut bytes = MAGIC.to_vec();
        bytes.resize(HEADER_LEN, 0);
        bytes.extend_from_slice(&CONTINUATION);
        bytes.extend_from_slice(&i32::try_from(padded).unwrap().to_le_bytes());
        bytes.extend_from_slice(meta);
        bytes.resize(HEADER_LEN + 8 + padded + body + 100, 0);
        bytes
    }

    #[test]
    fn a_schema_message_with_a_body_is_framed_as_the_whole_file_frames_it() {
        for body in [0, 64, 1 << 16] {
            let newer = schema_with_body("17", body);
            assert!(frame_agrees(&newer, &format!("version 17, body {body}")));
            assert!(matches!(
                check_frame(&newer[..], newer.len() as u64),
                Err(Error::NewerVersion { found: 17, .. })
            ));
            let current = schema_with_body("1", body);
            assert!(frame_agrees(&current, &format!("version 1, body {body}")));
            let error = check_frame(&current[..], current.len() as u64).unwrap_err();
            assert!(
                error.to_string().contains("does not end with ARROW1"),
                "{error}"
            );
        }
    }

    #[test]
    fn errors_say_what_failed() {
        let doc = sample(&[vec![1.0]]);
        let bytes = write(&doc, Vec::new()).unwrap();
        let mut bad = bytes.clone();
        let mid = bytes.len() / 3;
        bad[mid] ^= 4;
        let message = from_slice(&bad, None).unwrap_err().to_string();
        assert!(
            message.starts_with("the arrow snapshot is damaged: checksum mismatch: expected "),
            "{message}"
        );
        let rows: &[(&[u8], &str)] = &[
            (b"", "the file does not start with ARROW1"),
            (b"ARROW1\0\0", "the message at byte 64: cut short"),
        ];
        for (input, expected) in rows {
            assert_eq!(
                from_slice(input, None).unwrap_err().to_string(),
                format!("the arrow snapshot is damaged: {expected}")
            );
        }
    }

    #[test]
    fn a_deque_of_numbers_keeps_its_kinds() {
        let mut doc = Document::new(None);
        doc.score_history = Deque::from_items([Number::Int(1), Number::Float(1.0)], Some(2));
        let back = from_slice(&write(&doc, Vec::new()).unwrap(), Some(9)).unwrap();
        assert_eq!(back.score_history, doc.score_history);
    }
}
