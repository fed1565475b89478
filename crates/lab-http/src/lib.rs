//! lab-http is the Lab's server: an embeddable library on raw hyper 1.x.
//!
//! Every request passes the guard of SPEC §5 before routing (Host allowlist,
//! `Sec-Fetch-Site`, token header, same Origin, JSON bodies of at most 1 MiB
//! on mutations), and every response — errors and 404s included — leaves with
//! the security headers and without any `Access-Control-*` header. Files are
//! reached only through lab-registry (which run) and lab-fs (which file), and
//! streamed by lab-stream.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! let registry = lab_registry::Registry::open("/tmp/lab-data".as_ref(), &[])
//!     .map_err(std::io::Error::other)?;
//! let config = lab_http::Config::new(Arc::new(registry), lab_fs::Allowlist::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! lab_http::serve(config, listener, shutdown).await
//! # }
//! ```
#![forbid(unsafe_code)]

mod decode;
mod exports;
mod guard;
mod io;
mod jobs;
mod response;
mod routes;
mod runs;
mod ui;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lab_fs::Allowlist;
use lab_registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use guard::{HostAllowlist, MAX_BODY, TOKEN_HEADER};
pub use response::{SANDBOX_CSP, UI_CSP};
pub use routes::content_type;

/// What the runner may do, as `/api/status` reports it.
#[derive(Clone, Debug, Default)]
pub struct RunnerStatus {
    /// Jobs may be started.
    pub enabled: bool,
    /// Jobs may use the network.
    pub network_allowed: bool,
    /// Workflow exec hooks may run (with confirmation).
    pub workflow_exec_allowed: bool,
    /// Allowlisted program names.
    pub programs: Vec<String>,
    /// Allowlisted environment variable names.
    pub env_allow: Vec<String>,
    /// The isolation layers this machine provided when the Lab started (a
    /// probe run through the sandbox), or why it could not.
    pub isolation: serde_json::Value,
    /// Why jobs cannot run on this machine (a required isolation layer is
    /// missing), when they cannot; every job is then refused.
    pub unavailable: Option<String>,
}

/// Limits that keep hostile clients from exhausting the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; further ones wait in the kernel backlog.
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
    /// Runner switches, for `/api/status`.
    pub runner: RunnerStatus,
    /// Resource limits.
    pub limits: Limits,
    /// Where bundles are written (`DATA_DIR/exports`); `None` turns the
    /// export routes off.
    pub exports_dir: Option<std::path::PathBuf>,
    /// The job table when the runner is enabled; `None` refuses every job.
    pub jobs: Option<Arc<lab_runner::jobs::JobManager>>,
}

impl Config {
    /// A configuration with default limits, no extra hosts and the runner off.
    pub fn new(registry: Arc<Registry>, allowlist: Allowlist) -> Self {
        Self {
            registry,
            allowlist,
            allowed_hosts: Vec::new(),
            runner: RunnerStatus::default(),
            limits: Limits::default(),
            exports_dir: None,
            jobs: None,
        }
    }
}

/// Shared per-server state.
pub(crate) struct State {
    pub(crate) registry: Arc<Registry>,
    pub(crate) allowlist: Allowlist,
    pub(crate) hosts: HostAllowlist,
    /// 256 bits from the OS RNG, hex; new for every `serve`, never stored.
    pub(crate) token: String,
    pub(crate) runner: RunnerStatus,
    pub(crate) limits: Limits,
    pub(crate) bound: SocketAddr,
    pub(crate) exports: Option<lab_fs::bundle::ExportsDir>,
    pub(crate) summaries: runs::Summaries,
    pub(crate) jobs: Option<Arc<lab_runner::jobs::JobManager>>,
    /// Redaction applied to text going into a bundle: the values of the
    /// secret-looking variables in the Lab's own environment, known formats.
    pub(crate) export_filter: lab_runner::export::RedactingFilter,
}

/// A fresh session token: 32 bytes from the OS RNG, as 64 hex digits.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, asks open connections to finish, and waits up to
/// [`Limits::shutdown_grace`] for them.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?;
    let exports = config
        .exports_dir
        .as_deref()
        .map(lab_fs::bundle::ExportsDir::open_ambient)
        .transpose()
        .map_err(|e| std::io::Error::other(format!("exports directory: {e}")))?;
    let state = Arc::new(State {
        exports,
        summaries: runs::Summaries::default(),
        jobs: config.jobs,
        export_filter: lab_runner::export::RedactingFilter::from_process_env(),
        hosts: HostAllowlist::new(bound.port(), bound, &config.allowed_hosts),
        registry: config.registry,
        allowlist: config.allowlist,
        token: new_token()?,
        runner: config.runner,
        limits: config.limits,
        bound,
    });
    let max = state.limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (closing_tx, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("lab: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let limits = state.limits.clone();
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_header_size(limits.max_header_bytes)
                .max_headers(100)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true);
            let io = io::WriteTimeout::new(TokioIo::new(stream), limits.write_stall_timeout);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = closing_tx.send(true);
    let grace = state.limits.shutdown_grace;
    let _ = tokio::time::timeout(grace, slots.acquire_many(max as u32)).await;
    Ok(())
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<http::Response<response::Body>, Infallible> {
    let mut response = match guard::check(&req, &state.hosts, state.token.as_bytes()) {
        Ok(checked) => routes::route(&state, req, checked)
            .await
            .unwrap_or_else(response::ApiError::into_response),
        Err(refused) => refused.into_response(),
    };
    response::secure(response.headers_mut());
    Ok(response)
}
