//! Manifests: what one restore point of a remote is made of.
//!
//! A manifest is the object `PREFIX/manifests/NNNNNNNNNNNNNNNNNNNN.json` (its number, 20
//! decimal digits, so that names sort as numbers), created only if it does not exist. It is
//! one compact JSON object and a newline:
//!
//! ```text
//! {"penin_manifest":1,"number":N,"epoch":E,"time":"…Z","seq":S,"ledger_seq":L,
//!  "ledger_head":"<64 hex>","snapshot":{object}|null,"journal":[{object}…],"ledger":[{object}…]}
//! ```
//!
//! and each object `{"key":"snapshots/…","size":B,"xxh3":"<32 hex>","first":F,"last":T}`,
//! its key relative to the prefix; a sealed object (an age envelope) adds
//! `"plain_size":P,"plain_xxh3":"<32 hex>"`, its plaintext's, while `size` and `xxh3` are the
//! stored envelope's. The layout is specified in `docs/format.md`.

use serde::{Deserialize, Serialize};

/// The version of the manifests this penin writes, and the newest it reads.
pub const VERSION: u64 = 1;

/// The folder of the manifests, under the prefix.
pub const MANIFESTS: &str = "manifests";

/// One immutable object a manifest names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Object {
    /// Its key, relative to the remote's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// The XXH3-128 of its bytes, 32 lowercase hex digits.
    pub xxh3: String,
    /// A snapshot: the last change it holds. A journal segment: its first record's sequence
    /// number (the first segment of a journal also holds the journal's header). A ledger
    /// segment: its first line's `seq`.
    pub first: u64,
    /// A snapshot: the last change it holds. A journal segment: its last record's sequence
    /// number (`first - 1` for a segment of the header alone). A ledger segment: its last
    /// line's `seq`.
    pub last: u64,
    /// A sealed object (an age envelope, `docs/format.md`): the size of its plaintext;
    /// absent for a plaintext object, whose `size` it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_size: Option<u64>,
    /// A sealed object: the XXH3-128 of its plaintext; absent for a plaintext object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_xxh3: Option<String>,
}

impl Object {
    /// The object holding `bytes` at `key`, covering `first..=last`.
    pub fn new(key: String, bytes: &[u8], first: u64, last: u64) -> Object {
        Object::with_checksum(key, bytes.len(), checksum(bytes), first, last)
    }

    /// [`Object::new`] for bytes whose [`checksum`] is already known.
    pub fn with_checksum(key: String, size: usize, xxh3: String, first: u64, last: u64) -> Object {
        Object {
            key,
            size: size as u64,
            xxh3,
            first,
            last,
            plain_size: None,
            plain_xxh3: None,
        }
    }

    /// Whether it is stored as an age envelope of its contents.
    pub fn is_sealed(&self) -> bool {
        self.plain_xxh3.is_some()
    }

    /// The size of its contents (the plaintext's, for a sealed object).
    pub fn content_size(&self) -> u64 {
        self.plain_size.unwrap_or(self.size)
    }

    /// Whether its contents are `size` bytes of XXH3-128 `xxh3`.
    pub fn holds(&self, size: usize, xxh3: &str) -> bool {
        self.content_size() == size as u64 && self.content_xxh3() == xxh3
    }

    /// The XXH3-128 of its contents (the plaintext's, for a sealed object).
    pub fn content_xxh3(&self) -> &str {
        self.plain_xxh3.as_deref().unwrap_or(&self.xxh3)
    }
}

/// One restore point: the objects that make a whole state, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The manifest's version, [`VERSION`].
    #[serde(rename = "penin_manifest")]
    pub version: u64,
    /// Its number: one more than the manifest before it.
    pub number: u64,
    /// The writer's epoch: a writer takes the next one with its first manifest, and keeps it
    /// while no other writer takes a manifest.
    pub epoch: u64,
    /// When it was written, RFC 3339 in UTC.
    pub time: String,
    /// The sequence number of the last change the state holds.
    pub seq: u64,
    /// The `seq` of the ledger's last line (0: no ledger).
    pub ledger_seq: u64,
    /// That line's hash, 64 lowercase hex digits (zeros without a ledger).
    pub ledger_head: String,
    /// The snapshot file `NAME`, byte for byte (whatever its format or encryption); `None`
    /// when the state has none yet (its changes are all in the journal).
    pub snapshot: Option<Object>,
    /// `NAME.journal`: its bytes are these segments' bytes, in order.
    pub journal: Vec<Object>,
    /// `NAME.ledger`: its bytes are these segments' bytes, in order.
    pub ledger: Vec<Object>,
    /// Whether the manifest was stored as an age envelope (not part of its JSON).
    #[serde(skip)]
    pub sealed: bool,
}

impl Manifest {
    /// Every object it names: the snapshot, the journal's segments, the ledger's.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.snapshot
            .iter()
            .chain(&self.journal)
            .chain(&self.ledger)
    }

    /// The bytes of the state it names, the sum of its objects' sizes.
    pub fn bytes(&self) -> u64 {
        self.objects().map(|o| o.size).sum()
    }
}

/// The manifest's name under the prefix.
pub fn name(number: u64) -> String {
    format!("{MANIFESTS}/{number:020}.json")
}

/// The number of a manifest named `file` (under `manifests/`), if it is one.
pub fn number_of(file: &str) -> Option<u64> {
    let digits = file.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The XXH3-128 of `bytes`, 32 lowercase hex digits.
pub fn checksum(bytes: &[u8]) -> String {
    format!("{:032x}", twox_hash::XxHash3_128::oneshot(bytes))
}

/// The bytes of a manifest.
pub fn to_vec(manifest: &Manifest) -> Vec<u8> {
    // Serialising a struct of strings and integers into memory cannot fail.
    let mut bytes = serde_json::to_vec(manifest).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Why a manifest's bytes are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A newer version than [`VERSION`].
    Newer(u64),
    /// Not a manifest, or not one this penin wrote: why.
    Bad(String),
}

/// Reads the manifest numbered `number` from its bytes. The version is checked first, before
/// the rest is read, so that a newer version is refused as such whatever else it holds.
pub fn from_slice(bytes: &[u8], number: u64) -> Result<Manifest, Invalid> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Invalid::Bad(format!("not JSON: {e}")))?;
    let version = value
        .get("penin_manifest")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Invalid::Bad("no \"penin_manifest\" version".to_owned()))?;
    if version > VERSION {
        return Err(Invalid::Newer(version));
    }
    if version == 0 {
        return Err(Invalid::Bad("version 0".to_owned()));
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| Invalid::Bad(format!("not a manifest: {e}")))?;
    if manifest.number != number {
        return Err(Invalid::Bad(format!(
            "it says it is manifest {}, not {number}",
            manifest.number
        )));
    }
    for object in manifest.objects() {
        if !valid_key(&object.key) {
            return Err(Invalid::Bad(format!(
                "{:?} is not the key of an object of penin's",
                object.key
            )));
        }
        let hex = |x: &str| x.len() == 32 && x.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&object.xxh3) || !object.plain_xxh3.as_deref().is_none_or(hex) {
            return Err(Invalid::Bad(format!(
                "{}: {:?} is not an XXH3-128",
                object.key, object.xxh3
            )));
        }
    }
    Ok(manifest)
}

/// Whether `key` is one of penin's data objects: `snapshots/`, `journal/` or `ledger/`
/// and a file name of letters, digits, `-` and `.`, never a path out of the prefix.
fn valid_key(key: &str) -> bool {
    let Some((dir, file)) = key.split_once('/') else {
        return false;
    };
    matches!(dir, "snapshots" | "journal" | "ledger")
        && !file.is_empty()
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            version: VERSION,
            number: 7,
            epoch: 2,
            time: "2026-11-29T07:05:40.123456Z".to_owned(),
            seq: 42,
            ledger_seq: 44,
            ledger_head: "ab".repeat(32),
            snapshot: Some(Object::new(
                "snapshots/00000000000000000040-x".to_owned(),
                b"{}",
                40,
                40,
            )),
            journal: vec![Object::new("journal/a".to_owned(), b"jj", 41, 42)],
            ledger: vec![],
            sealed: false,
        }
    }

    #[test]
    fn round_trip() {
        let manifest = sample();
        let bytes = to_vec(&manifest);
        assert!(bytes.starts_with(b"{\"penin_manifest\":1,\"number\":7,"));
        assert!(bytes.ends_with(b"}\n"));
        assert_eq!(from_slice(&bytes, 7), Ok(manifest.clone()));
        assert_eq!(manifest.bytes(), 4);
    }

    #[test]
    fn names() {
        assert_eq!(name(7), "manifests/00000000000000000007.json");
        let rows = [
            ("00000000000000000007.json", Some(7)),
            ("18446744073709551615.json", Some(u64::MAX)),
            ("99999999999999999999.json", None),
            ("0000000000000000007.json", None),
            ("00000000000000000007.tmp", None),
            ("0000000000000000000x.json", None),
        ];
        for (file, number) in rows {
            assert_eq!(number_of(file), number, "{file}");
        }
    }

    #[test]
    fn refusals() {
        let good = String::from_utf8(to_vec(&sample())).unwrap();
        let rows: Vec<(String, Invalid)> = vec![
            (
                good.replace("\"penin_manifest\":1", "\"penin_manifest\":2"),
                Invalid::Newer(2),
            ),
            // The version is read before anything else is checked.
            (
                "{\"penin_manifest\":3,\"what\":0}".to_owned(),
                Invalid::Newer(3),
            ),
            (
                good.replace("\"number\":7", "\"number\":8"),
                Invalid::Bad("it says it is manifest 8, not 7".to_owned()),
            ),
            (
                good.replace("journal/a", "../a"),
                Invalid::Bad("\"../a\" is not the key of an object of penin's".to_owned()),
            ),
            (
                "{}".to_owned(),
                Invalid::Bad("no \"penin_manifest\" version".to_owned()),
            ),
        ];
        for (text, expected) in rows {
            assert_eq!(from_slice(text.as_bytes(), 7), Err(expected), "{text}");
        }
        assert!(
            matches!(from_slice(b"{", 7), Err(Invalid::Bad(why)) if why.starts_with("not JSON"))
        );
    }
}
