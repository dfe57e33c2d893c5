//! [`Format`]: which layout a state file has, recognised by its first bytes.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// How many first bytes [`Format::detect`] needs to tell every format apart.
pub const MAGIC_LEN: usize = 6;

/// The gzip magic number (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The magic number of a zstd frame (RFC 8878), little-endian `0xFD2FB528`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The magic number of an Arrow IPC file.
const ARROW_MAGIC: &[u8; 6] = crate::arrow::MAGIC;

/// A layout of a state file in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The seed JSON, unchanged: what the Python tool reads and writes.
    #[default]
    Json,
    /// The seed JSON, gzip-compressed.
    JsonGz,
    /// The seed JSON, zstd-compressed.
    JsonZst,
    /// An Arrow IPC file: the knowledge base as columns, the rest in its schema metadata
    /// (see [`crate::arrow`]).
    Arrow,
}

impl Format {
    /// Every format, in the order of their names in help texts.
    pub const ALL: [Format; 4] = [Format::Json, Format::JsonGz, Format::JsonZst, Format::Arrow];

    /// The format of a file that starts with `head` (its first [`MAGIC_LEN`] bytes, or the
    /// whole file when it is shorter): by its magic number, else JSON.
    pub fn detect(head: &[u8]) -> Format {
        if head.starts_with(&GZIP_MAGIC) {
            Format::JsonGz
        } else if head.starts_with(&ZSTD_MAGIC) {
            Format::JsonZst
        } else if head.starts_with(ARROW_MAGIC) {
            Format::Arrow
        } else {
            Format::Json
        }
    }

    /// Its name: `json`, `json.gz`, `json.zst` or `arrow`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JsonGz => "json.gz",
            Format::JsonZst => "json.zst",
            Format::Arrow => "arrow",
        }
    }

    /// The compression around the JSON (`gzip`, `zstd`), or `None` for plain JSON and for
    /// formats that are not JSON.
    pub fn compression(self) -> Option<&'static str> {
        match self {
            Format::Json | Format::Arrow => None,
            Format::JsonGz => Some("gzip"),
            Format::JsonZst => Some("zstd"),
        }
    }

    /// Whether the format is the seed JSON, plain or compressed ([`crate::Encoder`] and
    /// [`crate::decompress`] handle it).
    pub fn is_json(self) -> bool {
        matches!(self, Format::Json | Format::JsonGz | Format::JsonZst)
    }
}

/// How a state file is stored: its [`Format`], and the age envelope around it, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The format of the content (inside the envelope, when there is one).
    pub format: Format,
    /// For an encrypted file, the recipients it names (empty when another program
    /// encrypted it); `None` for a plaintext file.
    pub encrypted_to: Option<Vec<String>>,
}

impl Layout {
    /// A plaintext file in `format`.
    pub fn plain(format: Format) -> Self {
        Layout {
            format,
            encrypted_to: None,
        }
    }

    /// Whether the file is encrypted.
    pub fn encrypted(&self) -> bool {
        self.encrypted_to.is_some()
    }
}

impl fmt::Display for Layout {
    /// `json.zst`, or `json.zst, encrypted (age)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format.name())?;
        if self.encrypted() {
            f.write_str(", encrypted (age)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == text)
            .ok_or_else(|| Error::UnknownFormat(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic_number() {
        let rows: &[(&[u8], Format)] = &[
            (b"", Format::Json),
            (b"{", Format::Json),
            (b"\n  {", Format::Json),
            (b"\x1f", Format::Json),
            (b"\x1f\x8b", Format::JsonGz),
            (b"\x1f\x8b\x08\x00", Format::JsonGz),
            (b"\x28\xb5\x2f", Format::Json),
            (b"\x28\xb5\x2f\xfd", Format::JsonZst),
            (b"\x28\xb5\x2f\xfc", Format::Json),
            (b"\xef\xbb\xbf{", Format::Json),
            (b"ARROW1", Format::Arrow),
            (b"ARROW1\0\0\xff\xff", Format::Arrow),
            (b"ARROW", Format::Json),
            (b"ARROW2", Format::Json),
            (b"arrow1", Format::Json),
        ];
        for (head, expected) in rows {
            assert_eq!(Format::detect(head), *expected, "{head:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
        }
        assert_eq!("json.zst".parse::<Format>().unwrap(), Format::JsonZst);
        let error = "gz".parse::<Format>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"unknown format "gz": expected json, json.gz, json.zst or arrow"#
        );
    }
}
