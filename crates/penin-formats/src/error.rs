use std::io;
use std::path::PathBuf;

use crate::format::Format;

/// An error reading or writing a compressed or encrypted state, or reading keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The compressed stream is corrupt or cut short: what it holds cannot be read back.
    #[error("the {} stream is damaged or truncated", format.compression().unwrap_or("json"))]
    Damaged {
        /// The format whose stream it is.
        format: Format,
        /// What the decompressor said.
        #[source]
        source: io::Error,
    },
    /// Reading the file's bytes failed, or no memory could be had for them (the file
    /// itself may be sound).
    #[error("reading the file failed")]
    Read(#[source] io::Error),
    /// The file is encrypted (age), and no identity was given to decrypt it.
    #[error("it is encrypted (age) to {}, and no identity was given", named(recipients, *stanzas))]
    NoIdentity {
        /// The recipients the file names (empty when it names none).
        recipients: Vec<String>,
        /// How many X25519 recipient stanzas it has.
        stanzas: usize,
    },
    /// The file is encrypted (age), and no identity given opens it.
    #[error(
        "it is encrypted (age) to {}, and no identity given is one of them (the identity given \
         is {})",
        named(recipients, *stanzas),
        identities.join(", ")
    )]
    WrongIdentity {
        /// The recipients the file names (empty when it names none).
        recipients: Vec<String>,
        /// How many X25519 recipient stanzas it has.
        stanzas: usize,
        /// The recipients of the identities given.
        identities: Vec<String>,
    },
    /// The age file's header, MAC or payload does not check out, or it is cut short or
    /// followed by anything: it was damaged or changed.
    #[error("its age envelope is damaged, truncated or was changed")]
    Tampered {
        /// What age said (for a payload chunk penin opened itself: which chunk, as an I/O
        /// error of kind `InvalidData`).
        #[source]
        source: age::DecryptError,
    },
    /// The file names the identity's recipient, but none of its stanzas opens with it: its
    /// header was damaged or changed.
    #[error(
        "its age envelope is damaged or was changed: it names {recipient}, the identity \
         given, but no stanza opens with it"
    )]
    StanzaDamaged {
        /// The identity's recipient.
        recipient: String,
    },
    /// Reading or writing an identity file failed.
    #[error("cannot {action} the identity file {}", path.display())]
    IdentityFile {
        /// `read` or `create`.
        action: &'static str,
        /// The identity file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// An identity file holds something that is not an X25519 identity, or none.
    #[error("{}{}: {what}", path.display(), if *line == 0 { String::new() } else { format!(", line {line}") })]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// The line (from 1; 0 for the whole file).
        line: usize,
        /// What is wrong (never the line itself, which may be a secret).
        what: String,
    },
    /// A recipient that is not an `age1…` X25519 recipient.
    #[error("{recipient:?} is not an age X25519 recipient (age1...): {what}")]
    BadRecipient {
        /// The text given.
        recipient: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A format name that is none of `json`, `json.gz`, `json.zst`, `arrow`.
    #[error("unknown format {0:?}: expected json, json.gz, json.zst or arrow")]
    UnknownFormat(String),
    /// The arrow snapshot is damaged: a checksum that does not match, a footer that is not
    /// the one its contents make, bytes missing, a column or value that is not a state's.
    #[error("the arrow snapshot is damaged: {what}")]
    Corrupt {
        /// What failed.
        what: String,
    },
    /// The arrow snapshot was written by a newer penin, in a version this one cannot read.
    #[error("the arrow snapshot is of version {found}; this penin reads up to version {supported}")]
    NewerVersion {
        /// The file's version.
        found: u64,
        /// The newest version this penin reads, [`crate::arrow::VERSION`].
        supported: u64,
    },
    /// A format that is not compressed JSON was given to the compressor or decompressor.
    #[error("{0} is not compressed JSON")]
    NotJson(Format),
}

/// The recipients a file names, or what it has when it names none.
fn named(recipients: &[String], stanzas: usize) -> String {
    if recipients.is_empty() {
        format!("{stanzas} X25519 recipient(s) that it does not name (penin did not write it)")
    } else {
        recipients.join(", ")
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
