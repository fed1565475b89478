//! Serving a listener with every rule of SPEC §3 kept inside the library:
//! [`Builder`] binds where it is told and refuses what the binary refuses
//! (a non-loopback address unless allowed, a Unix socket outside a 0700
//! directory of this user's, a key file where a job could read it), and
//! [`Bound::serve`] removes the socket and the key file when it stops.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let registry = lab_registry::Registry::open("/tmp/lab-data".as_ref(), &[])?;
//! let key = lab_http::AccessKey::generate()?;
//! let config = lab_http::Config::new(Arc::new(registry), lab_fs::Allowlist::default(), key);
//! let bound = lab_http::Builder::new(config)
//!     .bind(&lab_http::Bind::Tcp("127.0.0.1:0".parse()?))
//!     .await?;
//! println!("open {}", bound.login_link());
//! bound.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::listen::{self, Bind, Leftovers, ListenError};
use crate::{Config, Listener};

/// The port the login link of a Unix socket names: what a browser opens
/// after `ssh -L 7878:PATH host`.
pub const FORWARDED_PORT: u16 = 7878;

/// A server about to listen: its configuration, and where its key file
/// goes, if anywhere.
#[derive(Debug)]
pub struct Builder {
    config: Config,
    key_file: Option<PathBuf>,
    /// Places the key file may not lie under, besides the allowed roots and
    /// the system directories every job reads.
    key_file_away_from: Vec<(PathBuf, &'static str)>,
}

impl Builder {
    /// A server over `config` (its `allow_external` decides whether a
    /// non-loopback address may be bound).
    pub fn new(config: Config) -> Self {
        Self {
            config,
            key_file: None,
            key_file_away_from: Vec::new(),
        }
    }

    /// Also writes the access key to `path`: created exclusively (never
    /// through a link) with mode 0600, removed when the server stops, and
    /// refused under an allowed root, a system directory, or a place named
    /// with [`Builder::key_file_away_from`] — where a job could read it.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// A place a job may read (say, the runner's `read_paths`), and what
    /// to call it in a refusal: the key file may not lie under it.
    pub fn key_file_away_from(mut self, place: impl Into<PathBuf>, what: &'static str) -> Self {
        self.key_file_away_from.push((place.into(), what));
        self
    }

    /// Binds `bind`, refusing what SPEC §3 refuses, and writes the key
    /// file. Needs a tokio runtime.
    pub async fn bind(self, bind: &Bind) -> Result<Bound, ListenError> {
        let Builder {
            config,
            key_file,
            key_file_away_from,
        } = self;
        let mut leftovers = Leftovers::default();
        let key = config.access_key.as_str().to_owned();
        if let Some(file) = &key_file {
            let mut places: Vec<(PathBuf, &'static str)> = config
                .registry
                .allowed_roots()
                .iter()
                .map(|r| (r.clone(), "the allowed root"))
                .collect();
            places.extend(key_file_away_from);
            places.extend(
                lab_core::runner::protocol::SYSTEM_DIRS
                    .iter()
                    .map(|d| (PathBuf::from(d), "the system directory")),
            );
            listen::check_key_file_place(file, &places)?;
        }
        let (listener, listening, link) = match bind {
            Bind::Tcp(addr) => {
                listen::check_tcp(*addr, config.allow_external)?;
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ListenError::Io {
                        context: format!("cannot listen on {addr}"),
                        source,
                    })?;
                let local = listener.local_addr().map_err(|source| ListenError::Io {
                    context: format!("cannot listen on {addr}"),
                    source,
                })?;
                (
                    Listener::Tcp(listener),
                    format!("http://{local}/"),
                    format!("http://{local}/#key={key}"),
                )
            }
            Bind::Unix(path) => {
                listen::prepare_unix_socket(path)?;
                let listener =
                    tokio::net::UnixListener::bind(path).map_err(|source| ListenError::Io {
                        context: format!("cannot listen on unix:{}", path.display()),
                        source,
                    })?;
                leftovers.push(path.clone());
                listen::secure_unix_socket(path)?;
                (
                    Listener::Unix(listener, path.clone()),
                    format!("unix:{}", path.display()),
                    format!("http://localhost:{FORWARDED_PORT}/#key={key}"),
                )
            }
        };
        if let Some(file) = key_file {
            listen::write_key_file(&file, &config.access_key)?;
            leftovers.push(file);
        }
        Ok(Bound {
            config,
            listener,
            listening,
            link,
            leftovers,
        })
    }
}

/// A server bound to its listener, not serving yet.
#[derive(Debug)]
pub struct Bound {
    config: Config,
    listener: Listener,
    listening: String,
    link: String,
    /// The socket and key file, removed when this is dropped.
    leftovers: Leftovers,
}

impl Bound {
    /// Where it listens: `http://127.0.0.1:PORT/` or `unix:PATH`.
    pub fn listening(&self) -> &str {
        &self.listening
    }

    /// The login link, with the access key in its fragment (on a Unix
    /// socket, the address a browser opens after `ssh -L 7878:PATH`).
    pub fn login_link(&self) -> &str {
        &self.link
    }

    /// The TCP address bound, if it is one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.listener {
            Listener::Tcp(tcp) => tcp.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Serves until `shutdown` completes (see [`crate::serve`]), then
    /// removes the socket and the key file.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Bound {
            config,
            listener,
            leftovers,
            ..
        } = self;
        let served = crate::serve(config, listener, shutdown).await;
        drop(leftovers);
        served
    }
}
