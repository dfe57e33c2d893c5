//! Exports of the knowledge base for the data ecosystem: a Parquet file that pandas, polars
//! and `DuckDB` read.
//!
//! The Parquet file has the columns of the [arrow snapshot](crate::arrow) — `key`, `vector`
//! (`FixedSizeList<Float64, D>` when every vector has `D` floats, else `List<Float64>`),
//! `metadata` (the seed JSON of the artifact's metadata) and `extra` — one row per artifact
//! in the knowledge base's order, compressed with zstd at level 1 ([`PARQUET_ZSTD_LEVEL`]).
//! It is an export, not a snapshot: the histories are not in it, and penin does not load it.
//!
//! ```
//! use penin_codec::{Document, NumericVectorArtifact};
//!
//! let mut doc = Document::default();
//! doc.knowledge_base.insert("e1".to_owned(), NumericVectorArtifact::new(vec![0.5, -0.0]));
//! let bytes = penin_formats::export::parquet(&doc, Vec::new())?;
//! assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Write};

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::{Compression, ZstdLevel};
use ::parquet::file::properties::WriterProperties;
use penin_codec::Document;

use crate::arrow::{columns_of, for_each_batch};

/// The zstd level of a Parquet export: the fastest, as the issue asks.
pub const PARQUET_ZSTD_LEVEL: i32 = 1;

/// Writes `doc`'s knowledge base into `writer` as a Parquet file and returns the writer.
pub fn parquet<W: Write + Send>(doc: &Document, writer: W) -> io::Result<W> {
    let schema = columns_of(doc);
    let level = ZstdLevel::try_new(PARQUET_ZSTD_LEVEL).map_err(io::Error::other)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .build();
    let mut file =
        ArrowWriter::try_new(writer, schema.clone(), Some(properties)).map_err(io::Error::other)?;
    for_each_batch(doc, &schema, |batch| {
        file.write(batch).map_err(io::Error::other)
    })?;
    file.into_inner().map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use penin_codec::NumericVectorArtifact;

    fn doc(vectors: &[Vec<f64>]) -> Document {
        let mut doc = Document::default();
        for (i, v) in vectors.iter().enumerate() {
            doc.knowledge_base
                .insert(format!("k{i}"), NumericVectorArtifact::new(v.clone()));
        }
        doc
    }

    /// A file holding `bytes`, for the Parquet reader.
    fn file(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    /// The rows of a Parquet file: keys and vectors (as bits), in order.
    fn rows(bytes: &[u8]) -> Vec<(String, Vec<u64>)> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file(bytes))
            .unwrap()
            .build()
            .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let keys = batch.column(0).as_string::<i32>();
            let vectors = batch.column(1);
            for row in 0..batch.num_rows() {
                let vector = match vectors.data_type() {
                    arrow_schema::DataType::FixedSizeList(..) => {
                        vectors.as_fixed_size_list().value(row)
                    }
                    _ => vectors.as_list::<i32>().value(row),
                };
                let floats = vector.as_primitive::<Float64Type>();
                out.push((
                    keys.value(row).to_owned(),
                    floats.values().iter().map(|f| f.to_bits()).collect(),
                ));
            }
        }
        out
    }

    #[test]
    fn every_vector_comes_back_bit_for_bit() {
        for vectors in [
            vec![vec![0.5, -0.0, f64::NAN], vec![f64::INFINITY, 1e-310, -2.5]],
            vec![vec![1.0], vec![], vec![2.0, 3.0]],
            vec![],
        ] {
            let doc = doc(&vectors);
            let bytes = parquet(&doc, Vec::new()).unwrap();
            let expected: Vec<(String, Vec<u64>)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("k{i}"), v.iter().map(|f| f.to_bits()).collect()))
                .collect();
            assert_eq!(rows(&bytes), expected);
        }
    }

    #[test]
    fn columns_are_zstd_compressed() {
        let doc = doc(&vec![vec![0.25; 64]; 100]);
        let bytes = parquet(&doc, Vec::new()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file(&bytes)).unwrap();
        let metadata = reader.metadata();
        for column in metadata.row_group(0).columns() {
            assert!(
                matches!(column.compression(), Compression::ZSTD(_)),
                "{:?}",
                column.compression()
            );
        }
    }
}
