//! lab-http is the Lab's server: an embeddable library on raw hyper 1.x.
//!
//! Every request passes the guard of SPEC §5 before routing (Host allowlist,
//! `Sec-Fetch-Site`, a credential — the access key as Bearer, or the session
//! cookie it bought — but on the login shell, the token header on cookie
//! mutations, same Origin, JSON bodies of at most 1 MiB on mutations), and every response — errors and 404s included — leaves with
//! the security headers and without any `Access-Control-*` header. Runs,
//! files and jobs come from a [`lab_core::Lab`]; files are streamed by
//! lab-stream.
//!
//! Three ways in, with the same rules inside the library: [`Builder`] (binds
//! TCP or a Unix socket, refusing what `lab serve` refuses, writes the
//! optional key file), [`serve`] (a listener you made; a non-loopback one
//! is refused unless [`Config::allow_external`]), and [`LabService`] (a
//! `tower_service::Service` to mount under a prefix in a host application;
//! see `examples/mount.rs`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let registry = lab_registry::Registry::open("/tmp/lab-data".as_ref(), &[])
//!     .map_err(std::io::Error::other)?;
//! // The caller prints the key in its login link (`…/#key=KEY`).
//! let key = lab_http::AccessKey::generate()?;
//! let config = lab_http::Config::new(Arc::new(registry), lab_fs::Allowlist::default(), key);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! lab_http::serve(config, listener, shutdown).await
//! # }
//! ```
#![forbid(unsafe_code)]

mod artifacts;
mod auth;
mod decode;
mod errors;
mod exports;
#[doc(hidden)]
pub mod fuzz;
mod guard;
mod histograms;
mod io;
mod jobs;
mod listen;
mod metrics;
mod mount;
mod query;
mod remote_body;
mod request;
mod response;
mod route;
mod routes;
mod runs;
mod server;
mod session;
mod signed;
mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lab_core::Lab;
use lab_fs::Allowlist;
use lab_registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::AccessKey;
pub use guard::{HostAllowlist, MAX_BODY, TOKEN_HEADER};
pub use lab_core::discovery::log_safe;
pub use lab_core::{RunnerStatus, content_type};
pub use listen::{Bind, ListenError, prepare_unix_socket};
pub use mount::LabService;
pub use response::{Body, SANDBOX_CSP, UI_CSP};
pub use server::{Bound, Builder};

/// Limits that keep hostile clients from exhausting the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections held at once. When full, a new connection sheds the
    /// oldest one that has not yet sent a complete request head; only when
    /// every connection is in a request does a new one wait.
    pub max_connections: usize,
    /// Time allowed to receive a request head. hyper starts this clock when
    /// it begins waiting for a head, so it also closes idle keep-alive
    /// connections and slowloris clients.
    pub header_read_timeout: Duration,
    /// Time allowed to receive a request body.
    pub body_read_timeout: Duration,
    /// Largest request head, in bytes (hyper's read buffer).
    pub max_header_bytes: usize,
    /// How long shutdown waits for open responses to finish.
    pub shutdown_grace: Duration,
    /// A client that lets a response stall this long (no byte written) is
    /// disconnected.
    pub write_stall_timeout: Duration,
    /// A session ends this long after its page last used it; the URLs it
    /// signs expire within it (SPEC §4: 12 h by default, so a long video
    /// can still seek).
    pub session_lifetime: Duration,
    /// Failed credentials (answers 401 or 429) one connection may collect;
    /// the answer to the last is sent with `Connection: close`.
    pub max_failures_per_connection: u32,
    /// Failed credentials the whole server takes in one second; over this,
    /// every request that needs a credential and carries no full one (the
    /// key, or the cookie with its binding) is answered 429 for a second.
    pub max_failures_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            write_stall_timeout: Duration::from_secs(60),
            session_lifetime: Duration::from_secs(12 * 3600),
            max_failures_per_connection: 10,
            max_failures_per_second: 100,
        }
    }
}

/// Everything the server needs.
#[derive(Debug)]
pub struct Config {
    /// The run registry.
    pub registry: Arc<Registry>,
    /// Which artifact names are served.
    pub allowlist: Allowlist,
    /// Extra Host header values to accept (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Serve a TCP listener that is not loopback. Off by default: such a
    /// listener is refused (SPEC §3); only an explicit choice turns this
    /// on (the binary: `--allow-external`).
    pub allow_external: bool,
    /// Runner switches, for `/api/status`.
    pub runner: RunnerStatus,
    /// Resource limits.
    pub limits: Limits,
    /// Where bundles are written (`DATA_DIR/exports`); `None` turns the
    /// export routes off.
    pub exports_dir: Option<std::path::PathBuf>,
    /// The job table when the runner is enabled; `None` refuses every job.
    pub jobs: Option<Arc<lab_core::runner::jobs::JobManager>>,
    /// `DATA_DIR/runs` (canonical): a run directly in it is a job's run,
    /// whose params, metrics and media are what the job wrote in its
    /// `job/` (SPEC §5); `None`: no run is read so.
    pub job_runs: Option<std::path::PathBuf>,
    /// The access key every request must prove (SPEC §5): the caller prints
    /// it in the login link.
    pub access_key: AccessKey,
    /// The values of the Lab's own secret-looking environment variables
    /// (`lab_redact::secret_values`), redacted from every bundle; the
    /// caller reads its environment, the server never does.
    pub lab_secrets: Vec<Vec<u8>>,
    /// How often the allowed roots are walked for new runs while serving,
    /// the first walk starting as the server does (after the caller has
    /// printed its listening line; lists wait for that walk up to 5 s);
    /// `None`: never (the caller walks them once at start).
    pub discover_every: Option<Duration>,
    /// What the caller's walk at start could not read (shown in
    /// `/api/status` until the next walk).
    pub discovery_warnings: Vec<String>,
    /// The format readers' and the walk's bounds (`[formats]`).
    pub formats: lab_core::formats::Limits,
    /// Points the cached readers hold together at most (`[formats]
    /// cached_points`).
    pub cached_points: usize,
    /// The object-storage roots (`s3://BUCKET/PREFIX`), made and probed
    /// by the caller; listed with the walks.
    pub s3: Arc<lab_core::remote::S3Roots>,
}

impl Config {
    /// A configuration with default limits, no extra hosts and the runner
    /// off, admitting whoever holds `access_key`.
    pub fn new(registry: Arc<Registry>, allowlist: Allowlist, access_key: AccessKey) -> Self {
        Self {
            access_key,
            lab_secrets: Vec::new(),
            registry,
            allowlist,
            allowed_hosts: Vec::new(),
            allow_external: false,
            runner: RunnerStatus::default(),
            limits: Limits::default(),
            exports_dir: None,
            jobs: None,
            job_runs: None,
            discover_every: None,
            discovery_warnings: Vec::new(),
            formats: lab_core::formats::Limits::default(),
            cached_points: lab_core::READER_BUDGET,
            s3: Arc::default(),
        }
    }
}

/// Shared per-server state.
pub(crate) struct State {
    /// The application: runs, formats, jobs.
    pub(crate) lab: Arc<Lab>,
    pub(crate) hosts: HostAllowlist,
    /// 256 bits from the OS RNG, hex; new for every `serve`, never stored.
    pub(crate) token: String,
    /// The access key, and the sessions it bought.
    pub(crate) key: AccessKey,
    pub(crate) sessions: auth::Sessions,
    /// Failed credentials, server-wide.
    pub(crate) failures: Failures,
    pub(crate) limits: Limits,
    /// What `/api/status` shows as the address (`127.0.0.1:PORT`, `unix:PATH`).
    pub(crate) address: String,
    /// Where the host mounted the Lab (`""`: at the root of its own
    /// origin): before every URL the Lab hands out, and the cookie's path.
    pub(crate) prefix: String,
}

/// Where the server listens: TCP (loopback, unless the caller allowed
/// more) or a Unix socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket listener, and its path (for the status page).
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl From<TcpListener> for Listener {
    fn from(listener: TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

/// The connections held: how many, and which have not yet sent a complete
/// request head with a credential (oldest first), so a full server sheds
/// those first.
#[derive(Default)]
struct Conns {
    inner: std::sync::Mutex<ConnsInner>,
    freed: tokio::sync::Notify,
}

#[derive(Default)]
struct ConnsInner {
    next: u64,
    open: usize,
    shedding: usize,
    waiting: std::collections::BTreeMap<u64, Arc<Slot>>,
}

#[derive(Default)]
struct Slot {
    head_seen: std::sync::atomic::AtomicBool,
    shed: std::sync::atomic::AtomicBool,
    kill: tokio::sync::Notify,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for one more connection: `true` at once when there is
    /// room or a connection without a complete head could be shed.
    fn try_admit(&self, max: usize) -> Option<(u64, Arc<Slot>)> {
        let mut inner = self.lock();
        if inner.open - inner.shedding >= max {
            let (_, oldest) = inner.waiting.pop_first()?;
            oldest.shed.store(true, std::sync::atomic::Ordering::SeqCst);
            oldest.kill.notify_one();
            inner.shedding += 1;
        }
        inner.next += 1;
        inner.open += 1;
        let id = inner.next;
        let slot = Arc::new(Slot::default());
        inner.waiting.insert(id, Arc::clone(&slot));
        Some((id, slot))
    }

    fn head_seen(&self, id: u64, slot: &Slot) {
        if !slot
            .head_seen
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.lock().waiting.remove(&id);
        }
    }

    fn done(&self, id: u64, slot: &Slot) {
        let mut inner = self.lock();
        inner.open -= 1;
        if slot.shed.load(std::sync::atomic::Ordering::SeqCst) {
            inner.shedding -= 1;
        } else {
            inner.waiting.remove(&id);
        }
        drop(inner);
        self.freed.notify_waiters();
    }

    fn open(&self) -> usize {
        self.lock().open
    }
}

/// Failed credentials across the server (SPEC §5): more than the limit
/// within one second locks out for the next second.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    inner: std::sync::Mutex<FailureWindow>,
}

#[derive(Debug, Default)]
struct FailureWindow {
    /// When the current one-second window began, and its count.
    start: Option<std::time::Instant>,
    count: u32,
    locked_until: Option<std::time::Instant>,
}

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, FailureWindow> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one failure; over `per_second` in this second locks for the
    /// next one.
    pub(crate) fn record(&self, per_second: u32) {
        let now = std::time::Instant::now();
        let mut window = self.lock();
        if window
            .start
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1))
        {
            window.start = Some(now);
            window.count = 0;
        }
        window.count = window.count.saturating_add(1);
        if window.count > per_second {
            window.locked_until = Some(now + Duration::from_secs(1));
        }
    }

    /// Whether failures are over the rate now.
    pub(crate) fn locked(&self) -> bool {
        self.lock()
            .locked_until
            .is_some_and(|until| std::time::Instant::now() < until)
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, asks open connections to finish, and waits up to
/// [`Limits::shutdown_grace`] for them.
pub async fn serve(
    config: Config,
    listener: impl Into<Listener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = listener.into();
    // What the binary refuses, refused here too: an embedder's listener
    // gets the same rules (SPEC §3).
    let (hosts, address) = match &listener {
        Listener::Tcp(tcp) => {
            let bound = tcp.local_addr()?;
            listen::check_tcp(bound, config.allow_external)?;
            (
                HostAllowlist::new(bound.port(), bound, &config.allowed_hosts),
                bound.to_string(),
            )
        }
        Listener::Unix(_, path) => {
            listen::secure_unix_socket(path)?;
            (
                HostAllowlist::unix(&config.allowed_hosts),
                format!("unix:{}", path.display()),
            )
        }
    };
    let state = start(config, hosts, address, String::new())?;
    let max = state.limits.max_connections.max(1);
    let conns = Arc::new(Conns::default());
    let (closing_tx, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Room for it: at once, by shedding the oldest connection that has
        // not sent a complete head; else wait until a connection ends.
        let admitted = loop {
            let freed = conns.freed.notified();
            if let Some(admitted) = conns.try_admit(max) {
                break Some(admitted);
            }
            tokio::select! {
                () = &mut shutdown => break None,
                () = freed => {}
            }
        };
        let Some((id, slot)) = admitted else { break };
        let state = Arc::clone(&state);
        let closing = closing_rx.clone();
        let conns = Arc::clone(&conns);
        tokio::spawn(async move {
            match stream {
                Stream::Tcp(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    connection(tcp, state, closing, &conns, id, &slot).await;
                }
                Stream::Unix(unix) => connection(unix, state, closing, &conns, id, &slot).await,
            }
            conns.done(id, &slot);
        });
    }
    let _ = closing_tx.send(true);
    state.lab.stop();
    let grace = state.limits.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        loop {
            let freed = conns.freed.notified();
            if conns.open() == 0 {
                break;
            }
            freed.await;
        }
    })
    .await;
    Ok(())
}

/// The state of a server (or a mounted service) over `config`, its Lab's
/// background work started: the walks of the allowed roots (when asked
/// for) and the summariser. Needs a tokio runtime.
fn start(
    config: Config,
    hosts: HostAllowlist,
    address: String,
    prefix: String,
) -> std::io::Result<Arc<State>> {
    let discover_every = config.discover_every;
    let lab = Lab::new(lab_core::LabConfig {
        registry: config.registry,
        allowlist: config.allowlist,
        runner: config.runner,
        exports_dir: config.exports_dir,
        jobs: config.jobs,
        job_runs: config.job_runs,
        lab_secrets: config.lab_secrets,
        discovery_warnings: config.discovery_warnings,
        walking: discover_every.is_some(),
        formats: config.formats,
        cached_points: config.cached_points,
        s3: config.s3,
    })
    .map_err(std::io::Error::other)?;
    let lab = Arc::new(lab);
    let state = Arc::new(State {
        lab: Arc::clone(&lab),
        hosts,
        token: lab_registry::data_dir::random_hex(32)?,
        key: config.access_key,
        sessions: auth::Sessions::under(config.limits.session_lifetime, &prefix)?,
        failures: Failures::default(),
        limits: config.limits,
        address,
        prefix,
    });
    if let Some(every) = discover_every {
        tokio::spawn(Arc::clone(&lab).keep_discovering(every));
    }
    // Every run summarised off the request path (at once at start, then
    // again at a bounded rate), so a list that filters or sorts them all
    // never waits for them to be read.
    let summarising = Arc::downgrade(&lab);
    tokio::task::spawn_blocking(move || Lab::keep_fresh(summarising));
    Ok(state)
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Stream> {
    match listener {
        Listener::Tcp(tcp) => tcp.accept().await.map(|(s, _)| Stream::Tcp(s)),
        Listener::Unix(unix, _) => unix.accept().await.map(|(s, _)| Stream::Unix(s)),
    }
}

/// Serves one connection until it ends, the server closes, or it is shed.
async fn connection<S>(
    stream: S,
    state: Arc<State>,
    mut closing: watch::Receiver<bool>,
    conns: &Arc<Conns>,
    id: u64,
    slot: &Arc<Slot>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = state.limits.clone();
    let seen = (Arc::clone(conns), Arc::clone(slot));
    let failed_here = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let service = service_fn(move |req: Request<Incoming>| {
        let req = request::boxed(req);
        let credential = auth::authenticate(req.headers(), &state.key, &state.sessions);
        // Only a client that proved who it is keeps its connection when the
        // server is full; one without a credential (which can reach only
        // the login shell and its assets), or with a cookie alone that did
        // not open a signed element URL, stays first in line to be shed,
        // however many requests it sends.
        let full = credential.as_ref().is_some_and(auth::Credential::is_full);
        if full {
            seen.0.head_seen(id, &seen.1);
        }
        let state = Arc::clone(&state);
        let failed_here = Arc::clone(&failed_here);
        // The cookie alone keeps its connection only for an element load
        // whose URL signature the guard verified (marked before the
        // handler runs, so a long stream is not shed); an answer's status
        // says nothing about that (a 403 for a foreign Host is no proof).
        let seen = (Arc::clone(&seen.0), Arc::clone(&seen.1));
        let mark = move || seen.0.head_seen(id, &seen.1);
        async move {
            let mut response = handle(Arc::clone(&state), req, credential, mark).await?;
            // A failed credential (401, or 429 while failures are over the
            // rate) counts for the whole server and for this connection,
            // which is closed after its last allowed one.
            let status = response.status();
            let failed = status == http::StatusCode::UNAUTHORIZED
                || status == http::StatusCode::TOO_MANY_REQUESTS;
            if failed {
                state.failures.record(state.limits.max_failures_per_second);
                let here = failed_here.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if here >= state.limits.max_failures_per_connection {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(100)
        // A client that shuts its write side after its request (`nc -N`,
        // scripts, the guard's fuzz harness) still gets the answer.
        .half_close(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let io = io::WriteTimeout::new(TokioIo::new(stream), limits.write_stall_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = slot.kill.notified() => {}
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<request::ReqBody>,
    credential: Option<auth::Credential>,
    signed_load: impl FnOnce(),
) -> Result<http::Response<response::Body>, Infallible> {
    let context = guard::Context {
        hosts: &state.hosts,
        locked: state.failures.locked(),
        lifetime: state.sessions.lifetime,
        now: signed::unix_now(),
    };
    let mut response = match guard::check(&req, context, credential) {
        Ok(mut checked) => {
            if checked.signed {
                signed_load();
            }
            checked.urls = checked.urls.under(&state.prefix);
            routes::route(&state, req, checked)
                .await
                .unwrap_or_else(response::ApiError::into_response)
        }
        Err(refused) => refused.into_response(),
    };
    response::secure(response.headers_mut());
    Ok(response)
}
