//! One S3 root's store: every request bounded in time and size (every
//! response body capped, see [`crate::capped`]), every key
//! beneath the root's prefix, all IO on a runtime lab-s3 owns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpClient, HttpConnector};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt,
    RetryConfig,
};

use crate::capped::CappedClient;
use crate::config::{Resolved, Settings};
use crate::error::{Error, classify};
use crate::url::{S3Url, check_rel};

/// Connecting gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole data request (head, a ranged GET, one list page) gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The probe gives up after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream gives up when no byte arrives for this long.
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest chunk a stream yields.
pub const STREAM_CHUNK: usize = 256 * 1024;
/// The most chunks a stream holds in flight.
pub const STREAM_DEPTH: usize = 4;
/// The most keys one list request asks for (S3's own cap).
const PAGE: usize = 1000;
/// Most requests (HEAD, ranged reads, listings) one store has in flight at
/// once: one beyond them waits for one to end, within its own timeout.
pub const MAX_IN_FLIGHT: usize = 16;
/// Most streams (artifacts being served) one store has open at once, a
/// pool of their own: streams held open by slow readers never keep a
/// listing or a reader's request from the store.
pub const MAX_STREAMS: usize = 32;

/// The runtime every store's IO runs on, made on first use: two workers,
/// shared by all stores, so a caller with no runtime (the CLI) or another
/// runtime (lab-http's) never drives lab-s3's sockets.
fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("lab-s3")
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Other(format!("cannot start the S3 runtime: {e}")))
}

/// Runs `fut` on the store runtime and waits for it on this thread with a
/// std channel, at most `timeout` (plus a grace for the runtime to answer).
/// Never `block_on`: safe from a blocking thread and from a thread with no
/// runtime.
fn wait<T: Send + 'static>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = rt.spawn(async move {
        let result = tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or(Err(Error::TimedOut));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout + Duration::from_secs(2)) {
        Ok(result) => result,
        Err(_) => {
            task.abort();
            Err(Error::TimedOut)
        }
    }
}

/// Builds lab-s3's own reqwest client: no proxy from the environment (or
/// anywhere), no redirects, https only unless the endpoint was checked as
/// loopback http, every request timed, and every response body capped
/// ([`crate::capped`]).
#[derive(Debug)]
struct Connector {
    allow_http: bool,
    /// The whole-request limit (`None` for streams, bounded by idle time).
    total: Option<Duration>,
}

impl HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .https_only(!self.allow_http)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(STREAM_IDLE_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("lab-s3/", env!("CARGO_PKG_VERSION")));
        if let Some(total) = self.total {
            builder = builder.timeout(total);
        }
        let client = builder.build().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })?;
        Ok(HttpClient::new(CappedClient(client)))
    }
}

/// The builder for one root, from explicit fields only (never `from_env`):
/// static credentials always (so no instance-metadata, container or web
/// identity provider is ever made), path-style requests, two retries.
pub(crate) fn builder(
    url: &S3Url,
    resolved: &Resolved,
    total: Option<Duration>,
) -> AmazonS3Builder {
    let credentials = &resolved.credentials;
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(url.bucket())
        .with_region(resolved.region())
        .with_endpoint(resolved.endpoint())
        .with_access_key_id(&credentials.access_key_id)
        .with_secret_access_key(&credentials.secret_access_key)
        .with_virtual_hosted_style_request(false)
        .with_allow_http(resolved.is_http())
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        })
        .with_http_connector(Connector {
            allow_http: resolved.is_http(),
            total,
        });
    if let Some(token) = &credentials.session_token {
        builder = builder.with_token(token);
    }
    builder
}

/// One object beneath a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The key relative to the root's prefix.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag as the store gave it (quotes included).
    pub etag: Option<String>,
    /// When it was last written, in Unix seconds.
    pub last_modified: Option<u64>,
}

/// Every object beneath a root, up to a cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The objects, keys relative to the prefix.
    pub objects: Vec<Object>,
    /// Whether more objects lie beyond the cap.
    pub truncated: bool,
}

/// One level of a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirListing {
    /// The objects directly at this level (keys relative to the root).
    pub files: Vec<Object>,
    /// The names (one segment) of the levels beneath.
    pub dirs: Vec<String>,
    /// Whether more entries lie beyond the cap.
    pub truncated: bool,
}

struct Inner {
    url: S3Url,
    endpoint: String,
    /// Head, ranged GETs and lists: 30 s a request.
    data: AmazonS3,
    /// Streams: no whole-request limit, 30 s without a byte.
    streams: AmazonS3,
    /// [`MAX_IN_FLIGHT`] permits, one held by each request in flight.
    permits: Arc<tokio::sync::Semaphore>,
    /// [`MAX_STREAMS`] permits, one held by each open stream.
    stream_permits: Arc<tokio::sync::Semaphore>,
}

/// One S3 root's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.url.to_string())
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

fn object_of(url: &S3Url, meta: ObjectMeta) -> Option<Object> {
    let rel = url.relative(meta.location.as_ref())?;
    check_rel(rel).ok()?;
    Some(Object {
        key: rel.to_owned(),
        size: meta.size,
        etag: meta.e_tag,
        last_modified: u64::try_from(meta.last_modified.timestamp()).ok(),
    })
}

/// The path of a checked relative key.
fn path_of(url: &S3Url, rel: &str) -> Result<StorePath, Error> {
    check_rel(rel).map_err(Error::InvalidKey)?;
    StorePath::parse(url.full_key(rel))
        .map_err(|_| Error::InvalidKey("a key the store client cannot send"))
}

impl Store {
    /// The store of `url`, reached as `resolved` says. Sends nothing.
    pub fn new(url: &S3Url, resolved: &Resolved, settings: &Settings) -> Result<Store, Error> {
        let _ = settings;
        let build = |total| {
            builder(url, resolved, total).build().map_err(|e| {
                Error::Other(format!("cannot configure the S3 client: {}", classify(&e)))
            })
        };
        Ok(Store {
            inner: Arc::new(Inner {
                url: url.clone(),
                endpoint: resolved.endpoint().to_owned(),
                data: build(Some(REQUEST_TIMEOUT))?,
                streams: build(None)?,
                permits: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
                stream_permits: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            }),
        })
    }

    /// A request's place among the [`MAX_IN_FLIGHT`]: waited for.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Other("the store is closed".to_owned()))
    }

    /// A stream's place among the [`MAX_STREAMS`]: waited for.
    async fn stream_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        Arc::clone(&self.inner.stream_permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Other("the store is closed".to_owned()))
    }

    /// The root.
    pub fn url(&self) -> &S3Url {
        &self.inner.url
    }

    /// The endpoint (for messages).
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// The prefix to list beneath `rel` ("" = the root), with its `/`.
    fn list_prefix(&self, rel: &str) -> Result<Option<String>, Error> {
        if !rel.is_empty() {
            check_rel(rel).map_err(Error::InvalidKey)?;
        }
        let prefix = self.inner.url.prefix();
        Ok(match (prefix.is_empty(), rel.is_empty()) {
            (true, true) => None,
            (false, true) => Some(format!("{prefix}/")),
            _ => Some(format!("{}/", self.inner.url.full_key(rel))),
        })
    }

    /// One List with max-keys 1 under the prefix, 10 s at most. The error
    /// says what a person can do about it.
    pub fn probe(&self) -> Result<(), Error> {
        let store = self.clone();
        let prefix = self.list_prefix("")?;
        wait(PROBE_TIMEOUT, async move {
            let _permit = store.permit().await?;
            let opts = PaginatedListOptions {
                max_keys: Some(1),
                ..Default::default()
            };
            store
                .inner
                .data
                .list_paginated(prefix.as_deref(), opts)
                .await
                .map(|_| ())
                .map_err(|e| classify(&e))
        })
    }

    /// Every object beneath the root (paginated), at most `max_keys`; keys
    /// relative to the prefix. Keys outside it, or with bad segments, are
    /// dropped.
    pub fn list_all(&self, max_keys: usize) -> Result<Listing, Error> {
        let prefix = self.list_prefix("")?;
        self.paginate(prefix, None, max_keys)
            .map(|(objects, _, truncated)| Listing { objects, truncated })
    }

    /// One level beneath `rel_prefix` ("" = the root): its objects and the
    /// names of the levels below, at most `max` entries in all.
    pub fn list_dir(&self, rel_prefix: &str, max: usize) -> Result<DirListing, Error> {
        let prefix = self.list_prefix(rel_prefix)?;
        self.paginate(prefix, Some("/"), max)
            .map(|(files, dirs, truncated)| DirListing {
                files,
                dirs,
                truncated,
            })
    }

    fn paginate(
        &self,
        prefix: Option<String>,
        delimiter: Option<&'static str>,
        max: usize,
    ) -> Result<(Vec<Object>, Vec<String>, bool), Error> {
        let store = self.clone();
        // Each page is held to 30 s by the client; the whole to 30 s a page.
        let pages = u32::try_from(max / PAGE + 1).unwrap_or(u32::MAX).min(1000);
        wait(REQUEST_TIMEOUT * pages, async move {
            let _permit = store.permit().await?;
            let url = &store.inner.url;
            let mut objects = Vec::new();
            let mut dirs = Vec::new();
            let mut token = None;
            loop {
                let taken = objects.len() + dirs.len();
                let opts = PaginatedListOptions {
                    delimiter: delimiter.map(Into::into),
                    max_keys: Some((max - taken + 1).min(PAGE)),
                    page_token: token.take(),
                    ..Default::default()
                };
                let page = store
                    .inner
                    .data
                    .list_paginated(prefix.as_deref(), opts)
                    .await
                    .map_err(|e| classify(&e))?;
                for meta in page.result.objects {
                    if let Some(object) = object_of(url, meta) {
                        if delimiter.is_some()
                            && object.key.rsplit_once('/').map(|(d, _)| d)
                                != prefix_rel(url, prefix.as_deref())
                        {
                            continue;
                        }
                        if objects.len() + dirs.len() == max {
                            return Ok((objects, dirs, true));
                        }
                        objects.push(object);
                    }
                }
                for common in page.result.common_prefixes {
                    let Some(rel) = url.relative(common.as_ref()) else {
                        continue;
                    };
                    let name = match prefix_rel(url, prefix.as_deref()) {
                        Some(parent) => rel.strip_prefix(parent).and_then(|r| r.strip_prefix('/')),
                        None => Some(rel),
                    };
                    let Some(name) = name.filter(|n| !n.contains('/') && check_rel(n).is_ok())
                    else {
                        continue;
                    };
                    if objects.len() + dirs.len() == max {
                        return Ok((objects, dirs, true));
                    }
                    dirs.push(name.to_owned());
                }
                match page.page_token {
                    Some(next) if !next.is_empty() => token = Some(next),
                    _ => return Ok((objects, dirs, false)),
                }
            }
        })
    }

    /// The object at `rel`.
    pub fn head(&self, rel: &str) -> Result<Object, Error> {
        let path = path_of(&self.inner.url, rel)?;
        let store = self.clone();
        wait(REQUEST_TIMEOUT, async move {
            let _permit = store.permit().await?;
            let meta = store
                .inner
                .data
                .head(&path)
                .await
                .map_err(|e| classify(&e))?;
            object_of(&store.inner.url, meta).ok_or(Error::Other(
                "the store answered for another key".to_owned(),
            ))
        })
    }

    /// Bytes `[offset, offset+len)` of `rel` (fewer at the end, none past
    /// it). With `etag`, the request carries `If-Match` and the answer's
    /// ETag must be the same, else [`Error::Changed`]. At most `len` bytes
    /// are ever held.
    pub fn get_range(
        &self,
        rel: &str,
        offset: u64,
        len: usize,
        etag: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let path = path_of(&self.inner.url, rel)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let end = offset.saturating_add(len as u64);
        let etag = etag.map(str::to_owned);
        let store = self.clone();
        wait(REQUEST_TIMEOUT, async move {
            let _permit = store.permit().await?;
            let opts = GetOptions {
                if_match: etag.clone(),
                range: Some(GetRange::Bounded(offset..end)),
                ..Default::default()
            };
            let result = match store.inner.data.get_opts(&path, opts).await {
                Ok(result) => result,
                Err(e) => {
                    // Matched on the status line, not a bare "416" (an
                    // elapsed time in the message could hold those digits).
                    let text = e.to_string().to_ascii_lowercase();
                    if text.contains("416 range not satisfiable") {
                        // Past the end (or an empty object): no bytes.
                        return Ok(Vec::new());
                    }
                    return Err(classify(&e));
                }
            };
            if let Some(etag) = &etag
                && result.meta.e_tag.as_deref() != Some(etag.as_str())
            {
                return Err(Error::Changed);
            }
            let mut out = Vec::with_capacity(len.min(1 << 20));
            let mut body = result.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| classify(&e))?;
                let room = len - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if out.len() == len {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Bytes `[start, end)` of `rel` pinned to `etag`, as a stream of chunks
    /// of at most 256 KiB, at most 4 in flight. The IO runs on lab-s3's own
    /// runtime, so any runtime (or none) may poll it; dropping it cancels
    /// the request. A changed ETag yields [`Error::Changed`] and ends it.
    pub fn stream(&self, rel: &str, start: u64, end: u64, etag: &str) -> ByteStream {
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        let path = match path_of(&self.inner.url, rel) {
            Ok(path) => path,
            Err(e) => return ByteStream::failed(tx, rx, e),
        };
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => return ByteStream::failed(tx, rx, e),
        };
        if start >= end {
            return ByteStream { rx, task: None };
        }
        let store = self.clone();
        let etag = etag.to_owned();
        let task = rt.spawn(async move {
            if let Err(e) = pump(&store, &path, start, end, etag, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        ByteStream {
            rx,
            task: Some(task.abort_handle()),
        }
    }
}

/// The root-relative level a list prefix names (`None` for the root).
fn prefix_rel<'p>(url: &S3Url, prefix: Option<&'p str>) -> Option<&'p str> {
    let prefix = prefix?.strip_suffix('/')?;
    url.relative(prefix)
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, Error>>;

async fn pump(
    store: &Store,
    path: &StorePath,
    start: u64,
    end: u64,
    etag: String,
    tx: &Sender,
) -> Result<(), Error> {
    let opts = GetOptions {
        if_match: Some(etag.clone()),
        range: Some(GetRange::Bounded(start..end)),
        ..Default::default()
    };
    let _permit = tokio::time::timeout(REQUEST_TIMEOUT, store.stream_permit())
        .await
        .map_err(|_| Error::TimedOut)??;
    let result = tokio::time::timeout(REQUEST_TIMEOUT, store.inner.streams.get_opts(path, opts))
        .await
        .map_err(|_| Error::TimedOut)?
        .map_err(|e| classify(&e))?;
    if result.meta.e_tag.as_deref() != Some(etag.as_str()) {
        return Err(Error::Changed);
    }
    let expected = result.range.end.min(end).saturating_sub(result.range.start);
    let mut remaining = expected;
    let mut body = result.into_stream();
    // What arrived and is not sent yet: sent as soon as nothing more is
    // ready (the first bytes go out at once), else in chunks of
    // STREAM_CHUNK — one hop through the channel per chunk, not per read
    // of the socket.
    let mut held = bytes::BytesMut::new();
    while remaining > 0 {
        let next = match futures_util::FutureExt::now_or_never(body.next()) {
            Some(next) => next,
            None => {
                if !held.is_empty() && tx.send(Ok(held.split().freeze())).await.is_err() {
                    // The reader is gone: dropping the body cancels the request.
                    return Ok(());
                }
                body.next().await
            }
        };
        let Some(chunk) = next else {
            return Err(Error::Unreachable(
                "the store ended the body early".to_owned(),
            ));
        };
        let mut chunk = chunk.map_err(|e| classify(&e))?;
        chunk.truncate(
            usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(chunk.len()),
        );
        remaining -= chunk.len() as u64;
        while !chunk.is_empty() {
            let room = STREAM_CHUNK - held.len();
            held.extend_from_slice(&chunk.split_to(chunk.len().min(room)));
            if held.len() == STREAM_CHUNK && tx.send(Ok(held.split().freeze())).await.is_err() {
                return Ok(());
            }
        }
    }
    if !held.is_empty() {
        let _ = tx.send(Ok(held.freeze())).await;
    }
    Ok(())
}

/// The bytes of [`Store::stream`]: `Stream<Item = Result<Bytes, Error>>`,
/// fed by a task on lab-s3's runtime through a channel of 4 chunks.
/// Dropping it aborts that task and with it the request.
pub struct ByteStream {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, Error>>,
    task: Option<tokio::task::AbortHandle>,
}

impl ByteStream {
    fn failed(
        tx: Sender,
        rx: tokio::sync::mpsc::Receiver<Result<Bytes, Error>>,
        error: Error,
    ) -> ByteStream {
        // NOTE: the channel is new and has room for one; try_send cannot fail.
        let _ = tx.try_send(Err(error));
        ByteStream { rx, task: None }
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteStream").finish_non_exhaustive()
    }
}

impl futures_core::Stream for ByteStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for ByteStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
