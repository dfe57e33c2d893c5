//! [`Remote`]: a bucket and prefix in S3-compatible object storage, reached through
//! `object_store` on a small runtime of its own, so that its callers stay synchronous.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use crate::error::{Error, Result};
use crate::manifest::{self, MANIFESTS, Manifest};
use crate::seal;
use penin_formats::Keys;
use penin_history::time::Timestamp;

/// How long one request may take, from connecting to the end of its body, before it fails:
/// a stuck server never hangs penin.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request is retried (server errors, connections refused or reset) before its
/// error is reported; errors the server gives as answers (access denied, no such bucket) are
/// never retried.
pub const RETRY_FOR: Duration = Duration::from_secs(15);

/// How many objects [`Remote::fetch_into`] downloads at once.
pub(crate) const FETCHES: usize = 4;

/// An object to fetch, and where its contents go: a file (a number the caller chose) and
/// the offset of its first byte there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Piece<'a> {
    /// The object.
    pub object: &'a manifest::Object,
    /// The file.
    pub file: usize,
    /// Where in the file.
    pub offset: u64,
}

/// A bucket and prefix, and the client that reaches them.
#[derive(Clone)]
pub struct Remote {
    url: String,
    bucket: String,
    prefix: String,
    store: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    /// The identities that open sealed objects, and the recipients a push seals to (none:
    /// a push stores plaintext).
    keys: Keys,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .field("store", &self.store.to_string())
            .finish_non_exhaustive()
    }
}

/// The HTTP status of a failed request, if the server answered, and the most precise words
/// on the failure: the server's status and S3 error code and message, or the innermost
/// error (a refused connection, a timeout).
fn describe(error: &object_store::Error) -> (Option<u16>, String) {
    const STATUS: &str = "Server returned non-2xx status code: ";
    let mut innermost = error.to_string();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if let Some(rest) = text.strip_prefix(STATUS) {
            let status = rest.get(..3).and_then(|s| s.parse().ok());
            let (line, body) = rest.split_once(": ").unwrap_or((rest, ""));
            let code = between(body, "<Code>", "</Code>");
            let message = between(body, "<Message>", "</Message>");
            let reason = match (code, message) {
                (Some(code), Some(message)) => {
                    format!("the server answered {line}, {code}: {message}")
                }
                (Some(code), None) => format!("the server answered {line}, {code}"),
                _ => format!("the server answered {line}"),
            };
            return (status, reason);
        }
        innermost = text;
        current = e.source();
    }
    (None, innermost)
}

/// The text of `text` between `start` and `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let (_, rest) = text.split_once(start)?;
    rest.split_once(end).map(|(inside, _)| inside.trim())
}

/// Whether an environment variable's value means yes, as `object_store` reads its own.
fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// The bucket and prefix of `s3://BUCKET[/PREFIX]`; the prefix without its outer slashes.
fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::BadUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|part| part.is_empty() && !prefix.is_empty())
    {
        return Err(bad("an empty part in the prefix"));
    }
    if prefix.split('/').any(|part| part == "." || part == "..") {
        return Err(bad("`.` or `..` in the prefix"));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

impl Remote {
    /// The remote `s3://BUCKET[/PREFIX]`, configured from the standard environment:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (both required: penin never asks an
    /// instance-metadata service), `AWS_REGION`, `AWS_ENDPOINT_URL` (another S3-compatible
    /// service), `AWS_ALLOW_HTTP` (`true` for an endpoint without TLS) and `object_store`'s
    /// other `AWS_*` settings. Requests time out after [`REQUEST_TIMEOUT`] (or
    /// `PENIN_S3_TIMEOUT`, a duration such as `10s`) and are retried for at most
    /// [`RETRY_FOR`]. Nothing is sent until a request is made.
    pub fn from_url(url: &str) -> Result<Remote> {
        let (bucket, _) = parse_url(url)?;
        let config = |source| Error::Config {
            url: url.to_owned(),
            source: Box::new(source),
        };
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            if std::env::var_os(name).is_none_or(|v| v.is_empty()) {
                return Err(config(object_store::Error::Generic {
                    store: "S3",
                    source: format!("{name} is not set").into(),
                }));
            }
        }
        let timeout = match std::env::var("PENIN_S3_TIMEOUT") {
            Ok(text) if !text.is_empty() => penin_history::time::parse_duration(&text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    config(object_store::Error::Generic {
                        store: "S3",
                        source: format!(
                            "PENIN_S3_TIMEOUT={text:?} is not a duration such as 30s or 2m"
                        )
                        .into(),
                    })
                })?,
            _ => REQUEST_TIMEOUT,
        };
        // The client options replace those the environment set (AWS_ALLOW_HTTP among them),
        // so that setting is read again here.
        let mut client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(CONNECT_TIMEOUT.min(timeout));
        if std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| truthy(&v)) {
            client = client.with_allow_http(true);
        }
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: RETRY_FOR,
        };
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(config)?;
        Remote::with_store(url, Arc::new(store))
    }

    /// The remote `url` (`s3://BUCKET[/PREFIX]`, which gives the prefix) held by `store`:
    /// for tests, with `object_store::memory::InMemory`.
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>) -> Result<Remote> {
        let (bucket, prefix) = parse_url(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(Remote {
            url: url.to_owned(),
            bucket,
            prefix,
            store,
            runtime: Arc::new(runtime),
            keys: Keys::new(),
        })
    }

    /// This remote with `keys`: a push seals every object and manifest to their recipients
    /// (none: plaintext), and reading opens sealed ones with their identities.
    #[must_use]
    pub fn with_keys(mut self, keys: Keys) -> Remote {
        self.keys = keys;
        self
    }

    /// Whether a push seals what it stores.
    pub fn seals(&self) -> bool {
        self.keys.encrypts()
    }

    /// The keys it seals and opens with.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The bytes of manifest `manifest` as stored: sealed when this remote seals.
    pub(crate) fn manifest_bytes(&self, manifest: &Manifest) -> Result<Vec<u8>> {
        let bytes = manifest::to_vec(manifest);
        if !self.seals() {
            return Ok(bytes);
        }
        seal::seal(&self.keys, &bytes).map_err(|source| Error::Seal {
            url: self.url.clone(),
            key: self.shown(&manifest::name(manifest.number)),
            source,
        })
    }

    /// The contents of the stored bytes of `name`, an age envelope.
    fn open(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
        penin_formats::decrypt(&self.keys, bytes)
            .map(|opened| opened.bytes)
            .map_err(|source| Error::Sealed {
                url: self.url.clone(),
                key: self.shown(name),
                source,
            })
    }

    /// The URL it was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object `name` (relative to the prefix) as a full key.
    fn key(&self, name: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }

    /// `name` as the URL names it, for messages.
    fn shown(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}/{name}", self.bucket)
        } else {
            format!("s3://{}/{}/{name}", self.bucket, self.prefix)
        }
    }

    /// The error of a request about `name`.
    fn error(&self, what: &'static str, name: &str, source: &object_store::Error) -> Error {
        let (status, reason) = describe(source);
        let denied = matches!(
            source,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || matches!(status, Some(401 | 403));
        let missing = matches!(source, object_store::Error::NotFound { .. }) || status == Some(404);
        if denied {
            Error::Denied {
                url: self.url.clone(),
                key: self.shown(name),
                reason,
            }
        } else if missing && what == "list" {
            Error::NoBucket {
                url: self.url.clone(),
                bucket: self.bucket.clone(),
            }
        } else {
            Error::Request {
                url: self.url.clone(),
                what,
                key: self.shown(name),
                reason,
            }
        }
    }

    /// The names (relative to `dir`) of the objects directly under `dir`.
    pub(crate) fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let key = self.key(dir);
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&key)))
            .map_err(|e| self.error("list", &format!("{dir}/"), &e))?;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                meta.location
                    .filename()
                    .map(|name| (name.to_owned(), meta.size))
            })
            .collect())
    }

    /// The object `name`'s bytes; `Ok(None)` if there is none.
    ///
    /// They are gathered as they come, their memory asked for fallibly, rather than into a
    /// buffer of the length the server announces (as `GetResult::bytes` does), which no byte
    /// has vouched for: a server that announces a terabyte is [`Error::NoMemory`], not the
    /// abort of the process.
    pub(crate) fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        use futures::TryStreamExt;
        let key = self.key(name);
        let read = self.runtime.block_on(async {
            let got = self.store.get(&key).await?;
            let announced = got.meta.size;
            let mut bytes = Vec::new();
            let mut chunks = got.into_stream();
            while let Some(chunk) = chunks.try_next().await? {
                if bytes.try_reserve(chunk.len()).is_err() {
                    return Ok(Err(announced));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Ok(bytes))
        });
        match read {
            Ok(Ok(bytes)) => Ok(Some(bytes)),
            Ok(Err(len)) => Err(Error::NoMemory {
                url: self.url.clone(),
                key: self.shown(name),
                len,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read", name, &e)),
        }
    }

    /// Writes the object `name` unless it exists: `Ok(false)` if it did (the conditional
    /// put lost), `Ok(true)` once written.
    pub(crate) fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<bool> {
        let key = self.key(name);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let put =
            self.runtime
                .block_on(self.store.put_opts(&key, PutPayload::from(bytes), options));
        match put {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.error("write", name, &e)),
        }
    }

    /// Every object under the prefix, recursively: its name relative to the prefix, and its
    /// size; sorted by name.
    pub fn objects(&self) -> Result<Vec<(String, u64)>> {
        Ok(self
            .listing()?
            .into_iter()
            .map(|(name, size, _)| (name, size))
            .collect())
    }

    /// Every object under the prefix, recursively, with its size and when the server says it
    /// was last modified; sorted by name.
    pub(crate) fn listing(&self) -> Result<Vec<(String, u64, Timestamp)>> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let listed = self
            .runtime
            .block_on(async {
                use futures::TryStreamExt;
                self.store
                    .list(prefix.as_ref())
                    .try_collect::<Vec<_>>()
                    .await
            })
            .map_err(|e| self.error("list", "", &e))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut objects: Vec<(String, u64, Timestamp)> = listed
            .into_iter()
            .filter_map(|meta| {
                let key = meta.location.to_string();
                let modified = meta
                    .last_modified
                    .timestamp_nanos_opt()
                    .map_or(Timestamp::MAX, Timestamp::from_unix_nanos);
                key.strip_prefix(&strip)
                    .map(|name| (name.to_owned(), meta.size, modified))
            })
            .collect();
        objects.sort();
        Ok(objects)
    }

    /// The stored bytes of the object `name` (sealed ones as they are), `Ok(None)` if there
    /// is none: for tests and for checks that look at what the bucket holds.
    pub fn stored(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get(name)
    }

    /// Deletes the object `name`; one already gone is no error.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        match self.runtime.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", name, &e)),
        }
    }

    /// Overwrites the object `name`: for tests that damage a copy.
    #[doc(hidden)]
    pub fn overwrite(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(name);
        self.runtime
            .block_on(self.store.put(&key, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.error("write", name, &e))
    }

    /// The numbers of the manifests, in increasing order.
    pub fn manifest_numbers(&self) -> Result<Vec<u64>> {
        let mut numbers: Vec<u64> = self
            .list(MANIFESTS)?
            .into_iter()
            .filter_map(|(name, _)| manifest::number_of(&name))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// The manifest numbered `number`; a missing one is [`Error::NoManifest`].
    pub fn manifest(&self, number: u64) -> Result<Manifest> {
        let name = manifest::name(number);
        let bytes = self.get(&name)?.ok_or_else(|| Error::NoManifest {
            url: self.url.clone(),
            why: format!("{} is gone", self.shown(&name)),
        })?;
        let sealed = seal::is_sealed(&bytes);
        let bytes = if sealed {
            self.open(&name, &bytes)?
        } else {
            bytes
        };
        let mut manifest = manifest::from_slice(&bytes, number).map_err(|e| match e {
            manifest::Invalid::Newer(found) => Error::NewerVersion {
                url: self.url.clone(),
                key: self.shown(&name),
                found,
                supported: manifest::VERSION,
            },
            manifest::Invalid::Bad(why) => Error::Damaged {
                url: self.url.clone(),
                key: self.shown(&name),
                why,
            },
        })?;
        manifest.sealed = sealed;
        Ok(manifest)
    }

    /// The current state of the remote: its highest manifest, if any.
    pub fn latest(&self) -> Result<Option<Manifest>> {
        match self.manifest_numbers()?.last() {
            Some(&number) => self.manifest(number).map(Some),
            None => Ok(None),
        }
    }

    /// Every manifest, oldest first. One listed, then deleted by a prune before it was read,
    /// is left out.
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        let mut manifests = Vec::new();
        for number in self.manifest_numbers()? {
            match self.manifest(number) {
                Ok(manifest) => manifests.push(manifest),
                Err(Error::NoManifest { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(manifests)
    }

    /// Downloads the objects of `pieces`, [`FETCHES`] at a time, and hands each one's
    /// contents to `sink` as they arrive: `(file, offset, bytes)`, where `file` and the
    /// object's first offset are the piece's. A plaintext object is streamed, hashed on the
    /// way; a sealed one is gathered, checked, decrypted and handed over whole. What `sink`
    /// got is checked only when this returns `Ok`: a missing or damaged object (its size or
    /// XXH3-128, stored or decrypted, not the manifest's) is [`Error::Damaged`], naming it,
    /// and the other downloads are dropped.
    pub(crate) fn fetch_into(
        &self,
        pieces: &[Piece<'_>],
        sink: &dyn Fn(usize, u64, Bytes) -> Result<()>,
    ) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        self.runtime.block_on(
            futures::stream::iter(pieces)
                .map(|piece| self.fetch_one(piece, sink))
                .buffer_unordered(FETCHES)
                .try_for_each(|()| std::future::ready(Ok(()))),
        )
    }

    /// One piece of [`Remote::fetch_into`].
    async fn fetch_one(
        &self,
        piece: &Piece<'_>,
        sink: &dyn Fn(usize, u64, Bytes) -> Result<()>,
    ) -> Result<()> {
        use futures::TryStreamExt;
        let object = piece.object;
        let damaged = |why: String| Error::Damaged {
            url: self.url.clone(),
            key: self.shown(&object.key),
            why,
        };
        let wrong_size = |size: u64| {
            damaged(format!(
                "{size} bytes, where the manifest says {}",
                object.size
            ))
        };
        let got = match self.store.get(&self.key(&object.key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(damaged("it is missing".to_owned()));
            }
            Err(e) => return Err(self.error("read", &object.key, &e)),
        };
        if got.meta.size != object.size {
            return Err(wrong_size(got.meta.size));
        }
        let sealed = object.is_sealed();
        let mut gathered = Vec::new();
        if sealed {
            // The manifest's size, not yet vouched for by the bytes: memory refused is an
            // error, not an abort.
            gathered
                .try_reserve_exact(usize::try_from(object.size).unwrap_or(usize::MAX))
                .map_err(|_| Error::NoMemory {
                    url: self.url.clone(),
                    key: self.shown(&object.key),
                    len: object.size,
                })?;
        }
        let mut hasher = twox_hash::XxHash3_128::new();
        let mut read = 0_u64;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks
            .try_next()
            .await
            .map_err(|e| self.error("read", &object.key, &e))?
        {
            let at = read;
            read += chunk.len() as u64;
            if read > object.size {
                // The body outgrew what its header announced: nothing past the size is kept.
                return Err(damaged(format!(
                    "more than the {} bytes the manifest says",
                    object.size
                )));
            }
            hasher.write(&chunk);
            if sealed {
                gathered.extend_from_slice(&chunk);
            } else {
                sink(piece.file, piece.offset + at, chunk)?;
            }
        }
        if read != object.size {
            return Err(wrong_size(read));
        }
        let found = format!("{:032x}", hasher.finish_128());
        if found != object.xxh3 {
            return Err(damaged(format!(
                "checksum mismatch: expected XXH3-128 {}, found {found}",
                object.xxh3
            )));
        }
        if sealed {
            let plain = self.open(&object.key, &gathered)?;
            if plain.len() as u64 != object.content_size()
                || manifest::checksum(&plain) != object.content_xxh3()
            {
                return Err(damaged(
                    "its decrypted contents do not match the manifest's size and checksum"
                        .to_owned(),
                ));
            }
            sink(piece.file, piece.offset, Bytes::from(plain))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that announces `size` bytes for every object it holds, whatever it holds (as
    /// a server's `Content-Length` may), and sends each in two pieces.
    #[derive(Debug)]
    struct Announcing {
        inner: object_store::memory::InMemory,
        size: u64,
    }

    impl std::fmt::Display for Announcing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a store announcing {} bytes", self.size)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Announcing {
        async fn put_opts(
            &self,
            location: &Key,
            payload: object_store::PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Key,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Key,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            use futures::StreamExt;
            let bytes = self.inner.get(location).await?.bytes().await?;
            let mut got = self.inner.get_opts(location, options).await?;
            got.meta.size = self.size;
            got.range = 0..self.size;
            // In two pieces: a body of one piece is kept as it is, whatever its announced
            // length; two are gathered into a buffer of that length.
            let half = bytes.len() / 2;
            let pieces = [Ok(bytes.slice(..half)), Ok(bytes.slice(half..))];
            got.payload =
                object_store::GetResultPayload::Stream(futures::stream::iter(pieces).boxed());
            Ok(got)
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Key>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Key>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Key>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Key>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Key,
            to: &Key,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn an_object_is_read_as_its_bytes_come_not_as_long_as_the_server_announces() {
        let store = Announcing {
            inner: object_store::memory::InMemory::new(),
            size: 1 << 50,
        };
        let remote = Remote::with_store("s3://penin/agents", Arc::new(store)).unwrap();
        assert!(remote.put_new("manifest", b"{}".to_vec()).unwrap());
        // A pebibyte announced, two bytes sent: the two bytes, and no buffer of a pebibyte
        // asked for (which aborts the process).
        assert_eq!(remote.get("manifest").unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(remote.get("missing").unwrap(), None);
    }

    /// An error whose text is the given one, under `object_store`'s `Generic`.
    #[derive(Debug)]
    struct Text(&'static str);

    impl std::fmt::Display for Text {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Text {}

    #[test]
    fn server_answers_are_described_by_status_and_code() {
        let rows = [
            (
                "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n\
                 <Error><Code>SignatureDoesNotMatch</Code><Message>The request signature \
                 does not match.</Message></Error>",
                Some(403),
                "the server answered 403 Forbidden, SignatureDoesNotMatch: The request \
                 signature does not match.",
            ),
            (
                "Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>",
                Some(404),
                "the server answered 404 Not Found, NoSuchBucket",
            ),
            (
                "Server returned non-2xx status code: 500 Internal Server Error: ",
                Some(500),
                "the server answered 500 Internal Server Error",
            ),
            (
                "Connection refused (os error 111)",
                None,
                "Connection refused (os error 111)",
            ),
        ];
        for (text, status, reason) in rows {
            let error = object_store::Error::Generic {
                store: "S3",
                source: Box::new(Text(text)),
            };
            assert_eq!(describe(&error), (status, reason.to_owned()), "{text}");
        }
    }

    #[test]
    fn urls() {
        let ok = [
            ("s3://b", ("b", "")),
            ("s3://b/", ("b", "")),
            ("s3://b/p", ("b", "p")),
            ("s3://b/p/q/", ("b", "p/q")),
        ];
        for (url, (bucket, prefix)) in ok {
            assert_eq!(
                parse_url(url).unwrap(),
                (bucket.to_owned(), prefix.to_owned()),
                "{url}"
            );
        }
        let bad = [
            ("b/p", "it does not start with s3://"),
            ("s3://", "no bucket"),
            ("s3:///p", "no bucket"),
            ("s3://b/p//q", "an empty part in the prefix"),
            ("s3://b/../q", "`.` or `..` in the prefix"),
        ];
        for (url, why) in bad {
            let error = parse_url(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
    }
}
