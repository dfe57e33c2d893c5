//! The arrow snapshot's writer: the bytes arrow-rs's `FileWriter` writes with its default
//! options (the tests compare them byte for byte), written by penin so that each vector's
//! floats go from the state straight into the writer. Through arrow-rs, a batch's floats
//! were first gathered into an array of their own, a copy of every float that an encrypted
//! save then made a second time into the cipher's buffers.
//!
//! Offsets and floats are written in the machine's byte order, as arrow-rs writes a body:
//! little-endian on every machine penin is built and tested for (the layout's "all integers
//! little-endian").

use std::io::{self, Write};

use arrow_buffer::ToByteSlice;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_ipc::{Block, FieldNode, MessageBuilder, MessageHeader, RecordBatchBuilder};
use arrow_schema::Schema;
use flatbuffers::FlatBufferBuilder;
use twox_hash::XxHash3_128;

use super::{CONTINUATION, EOS, HEADER_LEN, IPC_VERSION, MAGIC, Rows, Text, canonical_footer};

/// What every buffer of a body, and every message's metadata with its 8-byte prefix, is
/// padded to: arrow-rs's default alignment.
const ALIGNMENT: usize = 64;

const PADDING: [u8; ALIGNMENT] = [0; ALIGNMENT];

/// Writes an arrow snapshot of `schema` (the schema of the state written, with its
/// metadata): [`Writer::start`], [`Writer::batch`] for each batch's rows, [`Writer::finish`].
pub(super) struct Writer<'s, W> {
    sink: Sink<W>,
    schema: &'s Schema,
    /// Where each record batch is: the footer's blocks.
    blocks: Vec<Block>,
    /// Builds each batch's message, reused.
    fbb: FlatBufferBuilder<'static>,
}

/// The writer, and the hash and count of every byte written to it.
struct Sink<W> {
    out: W,
    hasher: XxHash3_128,
    written: usize,
}

/// A buffer of a batch's body: bytes, or the batch's floats.
enum Part<'r> {
    Bytes(&'r [u8]),
    Floats,
}

impl<'s, W: Write> Writer<'s, W> {
    /// Writes the magic number and the schema message.
    pub(super) fn start(out: W, schema: &'s Schema) -> io::Result<Self> {
        let mut sink = Sink {
            out,
            hasher: XxHash3_128::new(),
            written: 0,
        };
        sink.put(MAGIC)?;
        sink.put(&PADDING[..HEADER_LEN - MAGIC.len()])?;
        let message = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut DictionaryTracker::new(true),
            &IpcWriteOptions::default(),
        );
        sink.message(&message.ipc_message)?;
        Ok(Writer {
            sink,
            schema,
            blocks: Vec::new(),
            fbb: FlatBufferBuilder::new(),
        })
    }

    /// Writes the record batch of `rows` (cut for this schema).
    pub(super) fn batch(&mut self, rows: &Rows<'_>) -> io::Result<()> {
        if let Some(width) = rows.width
            && usize::try_from(width)
                .ok()
                .and_then(|w| w.checked_mul(rows.len()))
                != Some(rows.floats)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a record batch of {} vectors of {width} floats holds {} floats",
                    rows.len(),
                    rows.floats
                ),
            ));
        }
        // The buffers, in arrow's order: a column's validity bitmap (empty when no value is
        // null), then its offsets and values; a list's items after the list's own buffers.
        let mut parts = Vec::with_capacity(13);
        parts.extend(text(&rows.keys));
        parts.push(Part::Bytes(&[]));
        if rows.width.is_none() {
            parts.push(Part::Bytes(rows.offsets.to_byte_slice()));
        }
        parts.extend([Part::Bytes(&[]), Part::Floats]);
        parts.extend(text(&rows.metadata));
        parts.extend(text(&rows.extra));

        let floats_len = rows.floats * size_of::<f64>();
        let len = |part: &Part<'_>| match part {
            Part::Bytes(bytes) => bytes.len(),
            Part::Floats => floats_len,
        };
        let mut buffers = Vec::with_capacity(parts.len());
        let mut body = 0;
        for part in &parts {
            buffers.push(arrow_ipc::Buffer::new(
                int(body, "record batch's body")?,
                int(len(part), "buffer")?,
            ));
            body += len(part).next_multiple_of(ALIGNMENT);
        }
        let rows_len = int(rows.len(), "row count")?;
        let nodes = [
            FieldNode::new(rows_len, 0),
            FieldNode::new(rows_len, 0),
            FieldNode::new(int(rows.floats, "float count")?, 0),
            FieldNode::new(rows_len, 0),
            FieldNode::new(rows_len, int(rows.extra.nulls, "null count")?),
        ];

        // The message, built as arrow-rs builds it (the same calls in the same order make
        // the same bytes).
        let fbb = &mut self.fbb;
        fbb.reset();
        let buffers = fbb.create_vector(&buffers);
        let nodes = fbb.create_vector(&nodes);
        let mut batch = RecordBatchBuilder::new(fbb);
        batch.add_length(rows_len);
        batch.add_nodes(nodes);
        batch.add_buffers(buffers);
        let batch = batch.finish();
        let mut message = MessageBuilder::new(fbb);
        message.add_version(IPC_VERSION);
        message.add_header_type(MessageHeader::RecordBatch);
        message.add_bodyLength(int(body, "record batch's body")?);
        message.add_header(batch.as_union_value());
        let message = message.finish();
        fbb.finish(message, None);

        let offset = self.sink.written;
        let header = self.sink.message(fbb.finished_data())?;
        for part in &parts {
            match part {
                Part::Bytes(bytes) => self.sink.put(bytes)?,
                Part::Floats => {
                    for vector in &rows.vectors {
                        self.sink.put(vector.to_byte_slice())?;
                    }
                }
            }
            self.sink.pad(len(part))?;
        }
        self.blocks.push(Block::new(
            int(offset, "record batch's offset")?,
            i32::try_from(header).map_err(|_| too_large("record batch's message", header))?,
            int(body, "record batch's body")?,
        ));
        Ok(())
    }

    /// Writes the end-of-stream marker and the footer with the checksum of every byte before
    /// it, flushes the writer and returns it.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.sink.put(&EOS)?;
        let footer = canonical_footer(self.schema, &self.blocks, self.sink.hasher.finish_128());
        let footer_len =
            i32::try_from(footer.len()).map_err(|_| too_large("footer", footer.len()))?;
        let mut out = self.sink.out;
        out.write_all(&footer)?;
        out.write_all(&footer_len.to_le_bytes())?;
        out.write_all(MAGIC)?;
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Sink<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.write(bytes);
        self.written += bytes.len();
        Ok(())
    }

    /// The zeros after `len` bytes that end them at the alignment.
    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.put(&PADDING[..len.next_multiple_of(ALIGNMENT) - len])
    }

    /// Writes a message's metadata: the continuation marker, the metadata's padded length,
    /// the metadata, and zeros to the alignment. Gives the bytes written.
    fn message(&mut self, metadata: &[u8]) -> io::Result<usize> {
        const PREFIX: usize = CONTINUATION.len() + size_of::<i32>();
        let padded = (PREFIX + metadata.len()).next_multiple_of(ALIGNMENT);
        let len =
            i32::try_from(padded - PREFIX).map_err(|_| too_large("message's metadata", padded))?;
        self.put(&CONTINUATION)?;
        self.put(&len.to_le_bytes())?;
        self.put(metadata)?;
        self.pad(PREFIX + metadata.len())?;
        Ok(padded)
    }
}

/// The buffers of a text column.
fn text(column: &Text) -> [Part<'_>; 3] {
    [
        Part::Bytes(column.bitmap()),
        Part::Bytes(column.offsets.to_byte_slice()),
        Part::Bytes(&column.bytes),
    ]
}

/// `n`, the length, count or offset `what`, as the `i64` arrow's messages hold.
fn int(n: usize, what: &str) -> io::Result<i64> {
    i64::try_from(n).map_err(|_| too_large(what, n))
}

/// The error for a length past what the format holds (the batch limits keep every length
/// far below it: never seen).
fn too_large(what: &str, n: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the {what}, {n} bytes or items, is more than an arrow snapshot holds"),
    )
}
