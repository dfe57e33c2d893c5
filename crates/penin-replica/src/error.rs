//! The errors of replication.

use std::path::PathBuf;

/// What went wrong with a remote copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `s3://BUCKET[/PREFIX]`.
    #[error("{url:?} is not an S3 URL ({why}): give s3://BUCKET or s3://BUCKET/PREFIX")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The client cannot be made from the URL and the environment.
    #[error("cannot configure the S3 client for {url}")]
    Config {
        /// The URL.
        url: String,
        /// `object_store`'s reason.
        #[source]
        source: Box<object_store::Error>,
    },
    /// The runtime that drives the client cannot be started.
    #[error("cannot start the replication runtime")]
    Runtime(#[source] std::io::Error),
    /// The server refused the credentials, or they may not do this.
    #[error(
        "{url}: the server refused access to {key} ({reason}): check AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, and what they may do"
    )]
    Denied {
        /// The remote's URL.
        url: String,
        /// The object or listing refused.
        key: String,
        /// The server's answer.
        reason: String,
    },
    /// The bucket does not exist.
    #[error("{url}: the bucket {bucket} does not exist")]
    NoBucket {
        /// The remote's URL.
        url: String,
        /// The bucket.
        bucket: String,
    },
    /// Any other failure of a request (the server down, a timeout, an error answer).
    #[error("{url}: cannot {what} {key}: {reason}")]
    Request {
        /// The remote's URL.
        url: String,
        /// What was asked: `list`, `read`, `write`.
        what: &'static str,
        /// The object or prefix.
        key: String,
        /// The server's answer, or why there was none (`object_store`'s errors repeat their
        /// sources in their own text, so the most precise one is kept, not the chain).
        reason: String,
    },
    /// The remote holds no manifest (nothing was pushed), or none matches what was asked.
    #[error("{url}: {why}")]
    NoManifest {
        /// The remote's URL.
        url: String,
        /// What was looked for.
        why: String,
    },
    /// A manifest of a newer version than this penin reads.
    #[error(
        "{url}: {key} is a manifest of version {found}; this penin reads up to version {supported}"
    )]
    NewerVersion {
        /// The remote's URL.
        url: String,
        /// The manifest.
        key: String,
        /// Its version.
        found: u64,
        /// The newest version this penin reads.
        supported: u64,
    },
    /// An object is missing, of the wrong size, or its checksum does not match: the copy
    /// is damaged, and nothing local was replaced.
    #[error("{url}: {key} is damaged: {why}")]
    Damaged {
        /// The remote's URL.
        url: String,
        /// The object.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// Another writer took the next manifest: this one is fenced and stops.
    #[error(
        "{url}: fenced: another writer {how}; this writer stops so as never to interleave \
         its objects with the other's"
    )]
    Fenced {
        /// The remote's URL.
        url: String,
        /// What the other writer did.
        how: String,
    },
    /// An object is larger than the memory this machine grants for it (the copy may be
    /// sound).
    #[error("{url}: {key} is {len} bytes: no memory for them here")]
    NoMemory {
        /// The remote's URL.
        url: String,
        /// The object.
        key: String,
        /// Its size, as announced (by the server, and for an object a manifest lists, by
        /// the manifest too).
        len: u64,
    },
    /// There is no local state to push.
    #[error("{} does not exist: there is no state to push", .0.display())]
    NoState(PathBuf),
    /// A local file of the state is not what penin writes.
    #[error("{}: {why}", path.display())]
    BadLocal {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An object is sealed (an age envelope) and cannot be opened: no identity, a wrong
    /// one (the message names the recipients it is sealed to), or a damaged envelope.
    #[error("{url}: cannot decrypt {key}")]
    Sealed {
        /// The remote's URL.
        url: String,
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: penin_formats::Error,
    },
    /// An object cannot be sealed.
    #[error("{url}: cannot encrypt {key}")]
    Seal {
        /// The remote's URL.
        url: String,
        /// The object.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A push would mix encrypted and plaintext restore points under one prefix.
    #[error(
        "{url}: its latest manifest ({key}) is {there}, and this push would be {here}: penin \
         never mixes the two under one prefix; push to another prefix, or {how}"
    )]
    Mixed {
        /// The remote's URL.
        url: String,
        /// The latest manifest.
        key: String,
        /// `encrypted` or `plaintext`.
        there: &'static str,
        /// The other.
        here: &'static str,
        /// What would make the push match.
        how: &'static str,
    },
    /// The local files moved on while a running writer's durable point was being read (a
    /// compaction replaced the snapshot and the journal): read again at its next point.
    #[error("{}: {why}", path.display())]
    Moved {
        /// The file that was not as the durable point says.
        path: PathBuf,
        /// How it differs.
        why: String,
    },
    /// A local file cannot be read or written.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// What was being done: `read`, `write`, `rename`, `sync`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A restore would replace a local state that exists.
    #[error(
        "{} exists: a restore replaces the whole state, so it asks for --force to do so",
        .0.display()
    )]
    Exists(PathBuf),
}

/// The result of replication.
pub type Result<T, E = Error> = std::result::Result<T, E>;
