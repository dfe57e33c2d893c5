//! A NumPy `.npy` file of a matrix of `f64`: what `numpy.load` reads as an array of shape
//! `(rows, columns)` and dtype `float64`.
//!
//! # Layout (format version 1.0)
//!
//! | bytes | what |
//! |---|---|
//! | 6 | the magic string `\x93NUMPY` |
//! | 2 | the format version, major then minor: `01 00` |
//! | 2 | `HEADER_LEN`, little-endian `u16`: the length of the header that follows |
//! | `HEADER_LEN` | an ASCII Python dict literal, `{'descr': '<f8', 'fortran_order': False, 'shape': (R, C), }`, padded with spaces and ended by `\n` so that `10 + HEADER_LEN` is a multiple of 64 |
//! | `8 × R × C` | the values, row after row (C order), each a little-endian IEEE 754 binary64 |
//!
//! The values are written as their bits: NaN payloads, infinities and `-0.0` are kept.

use std::io::{self, Write};

/// The first bytes of every `.npy` file.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The header of a `.npy` file (version 1.0) of a `rows × columns` matrix of little-endian
/// `f64` in C order: magic, version, header length and the padded dict, `10 + len` bytes,
/// a multiple of 64.
pub fn npy_header(rows: u64, columns: u64) -> Vec<u8> {
    let dict =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
    // Magic (6), version (2), length (2), the dict, at least one space-or-newline.
    let unpadded = NPY_MAGIC.len() + 4 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let header_len = total - NPY_MAGIC.len() - 4;
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(NPY_MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    // Two u64 of at most 20 digits each: the dict is below 128 bytes, the header below 192.
    let len = u16::try_from(header_len).unwrap_or(u16::MAX);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(total - 1, b' ');
    bytes.push(b'\n');
    bytes
}

/// Writes a `.npy` file (version 1.0) of the matrix whose rows `rows` yields, each of
/// `columns` values, to `writer`: [`npy_header`], then the values. The caller gives the
/// number of rows up front (the header holds it); a row of another length, or a count of
/// rows other than `count`, is an [`io::ErrorKind::InvalidInput`] error (the writer then
/// holds a partial file).
pub fn write_npy<'a, W: Write>(
    mut writer: W,
    count: u64,
    columns: u64,
    rows: impl IntoIterator<Item = &'a [f64]>,
) -> io::Result<W> {
    writer.write_all(&npy_header(count, columns))?;
    let mut written = 0_u64;
    let mut buffer = Vec::new();
    for row in rows {
        if row.len() as u64 != columns {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "row {written} has {} values, not {columns} as the header says",
                    row.len()
                ),
            ));
        }
        buffer.clear();
        for value in row {
            buffer.extend_from_slice(&value.to_bits().to_le_bytes());
        }
        writer.write_all(&buffer)?;
        written += 1;
    }
    if written != count {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{written} rows were given, not {count} as the header says"),
        ));
    }
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_padded_to_64_bytes() {
        // (rows, columns, the dict as NumPy 1.x and 2.x write it, total header bytes)
        let rows: [(u64, u64, &str, usize); 4] = [
            (
                0,
                0,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 0), }",
                128,
            ),
            (
                2,
                3,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                128,
            ),
            (
                200,
                32,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (200, 32), }",
                128,
            ),
            (
                u64::MAX,
                u64::MAX,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 18446744073709551615), }",
                128,
            ),
        ];
        for (r, c, dict, total) in rows {
            let header = npy_header(r, c);
            assert_eq!(header.len(), total, "{r}x{c}");
            assert_eq!(header.len() % 64, 0);
            assert_eq!(&header[..8], b"\x93NUMPY\x01\x00");
            let len = usize::from(u16::from_le_bytes([header[8], header[9]]));
            assert_eq!(10 + len, header.len());
            let text = std::str::from_utf8(&header[10..]).unwrap();
            assert!(text.starts_with(dict), "{text:?}");
            assert!(text.ends_with('\n'));
            assert!(text[dict.len()..text.len() - 1].bytes().all(|b| b == b' '));
        }
    }

    #[test]
    fn the_bytes_of_a_small_matrix() {
        let rows: [&[f64]; 2] = [&[1.0, -0.0], &[f64::NAN, f64::INFINITY]];
        let bytes = write_npy(Vec::new(), 2, 2, rows).unwrap();
        let mut expected = npy_header(2, 2);
        for bits in [
            0x3ff0_0000_0000_0000_u64,
            0x8000_0000_0000_0000,
            f64::NAN.to_bits(),
            0x7ff0_0000_0000_0000,
        ] {
            expected.extend_from_slice(&bits.to_le_bytes());
        }
        assert_eq!(bytes, expected);
        assert_eq!(&bytes[128..136], &[0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
    }

    #[test]
    fn a_nan_payload_is_kept() {
        let odd = f64::from_bits(0x7ff8_0000_dead_beef);
        let bytes = write_npy(Vec::new(), 1, 1, [&[odd][..]]).unwrap();
        assert_eq!(bytes[128..], 0x7ff8_0000_dead_beef_u64.to_le_bytes());
    }

    #[test]
    fn rows_that_do_not_match_the_header_are_refused() {
        let error = write_npy(Vec::new(), 2, 2, [&[1.0, 2.0][..], &[3.0][..]]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "row 1 has 1 values, not 2 as the header says"
        );
        let error = write_npy(Vec::new(), 3, 1, [&[1.0][..]]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "1 rows were given, not 3 as the header says"
        );
    }
}
