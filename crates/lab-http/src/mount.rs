//! The Lab as a [`tower_service::Service`], to mount inside a host
//! application (axum: `Router::nest_service("/lab", service)`).
//!
//! A service cannot see the listener, so the host lists the Host header
//! values it serves the Lab under; every request it hands on still passes
//! the whole guard (Host, `Sec-Fetch-Site`, the credential, the token on
//! mutations, same Origin, body limits), its signatures and its security
//! headers — exactly as `serve` does. The host strips its prefix before
//! it hands a request on (axum's `nest_service` does); the Lab writes the
//! prefix back into every URL it hands out, scopes its cookie to it
//! (`Path=PREFIX/`) and namespaces the page binding's storage key by it.
//!
//! The host serves HTTP/1.1 on `http://` origins: the guard wants the Host
//! header and an `Origin` of `http://HOST` on mutations, so behind HTTP/2
//! (no Host header) or HTTPS every request, or every mutation, is refused —
//! closed, not open.
//!
//! Scripts on the host's origin are trusted with Lab data: a page the host
//! serves beside the Lab can call the Lab's API with the Lab's cookie as
//! any page of that origin can. Serve the Lab on a port of its own
//! (`serve`, or [`Builder`](crate::Builder)) unless the host's own pages are
//! as trusted as the Lab's.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};

use crate::request::BoxError;
use crate::response::Body;
use crate::{Config, HostAllowlist, State, auth, handle, request};

/// The Lab, mountable: cheap to clone (every clone is the same Lab). The
/// Lab's background work (the walks, the summariser) stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct LabService {
    state: Arc<State>,
    _running: Arc<Running>,
}

impl std::fmt::Debug for LabService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabService")
            .field("prefix", &self.state.prefix)
            .finish_non_exhaustive()
    }
}

/// Stops the Lab's background work when the last service goes.
#[derive(Debug)]
struct Running(Arc<lab_core::Lab>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Whether `prefix` is `""` or `/`-led segments of letters, digits, `-`
/// and `_` (no trailing `/`): safe in a cookie's `Path`, a page's markup
/// and a storage key as it is.
fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || prefix.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        })
}

impl LabService {
    /// The Lab over `config`, answering only requests whose Host header is
    /// one of `hosts` (each `name:port` matched exactly, a bare name only
    /// without a port; at least one), mounted under `prefix` (`""`, or
    /// say `/lab`). Starts the Lab's background work: call it inside a
    /// tokio runtime.
    pub fn new(config: Config, hosts: &[String], prefix: &str) -> std::io::Result<Self> {
        let named = |h: &String| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'@' && b != b',')
        };
        if hosts.is_empty() || !hosts.iter().all(named) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a mounted Lab needs the Host names it is served under (a service cannot see its listener): each a non-empty name[:port]",
            ));
        }
        if !valid_prefix(prefix) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a prefix is empty or /-led segments of letters, digits, - and _, without a final /",
            ));
        }
        let address = format!("mounted at {prefix}/");
        let state = crate::start(
            config,
            HostAllowlist::only(hosts),
            address,
            prefix.to_owned(),
        )?;
        let running = Arc::new(Running(Arc::clone(&state.lab)));
        Ok(Self {
            state,
            _running: running,
        })
    }
}

impl<B> tower_service::Service<Request<B>> for LabService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let state = Arc::clone(&self.state);
        Box::pin(async move {
            let req = request::boxed(req);
            let credential = auth::authenticate(req.headers(), &state.key, &state.sessions);
            let response = handle(Arc::clone(&state), req, credential, || {}).await?;
            // Failed credentials count server-wide, as on a listener (there
            // is no connection here to close).
            let status = response.status();
            if status == http::StatusCode::UNAUTHORIZED
                || status == http::StatusCode::TOO_MANY_REQUESTS
            {
                state.failures.record(state.limits.max_failures_per_second);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_service_needs_real_host_names() {
        let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let _entered = runtime.enter();
        let config = || {
            let registry =
                lab_registry::Registry::open(scratch.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
            crate::Config::new(
                std::sync::Arc::new(registry),
                lab_fs::Allowlist::default(),
                crate::AccessKey::generate().unwrap_or_else(|e| panic!("{e}")),
            )
        };
        for hosts in [
            vec![],
            vec![String::new()],
            vec!["lab host".to_owned()],
            vec!["a,b".to_owned()],
        ] {
            assert!(
                super::LabService::new(config(), &hosts, "/lab").is_err(),
                "{hosts:?}"
            );
        }
        assert!(super::LabService::new(config(), &["127.0.0.1:8080".to_owned()], "/lab").is_ok());
    }

    #[test]
    fn prefixes_are_plain_segments() {
        for good in ["", "/lab", "/tools/lab-2", "/a_b"] {
            assert!(super::valid_prefix(good), "{good}");
        }
        for bad in [
            "/",
            "lab",
            "/lab/",
            "//lab",
            "/la b",
            "/lab;x",
            "/lab\"",
            "/é",
            "/lab/../x",
            "/.",
        ] {
            assert!(!super::valid_prefix(bad), "{bad}");
        }
    }
}
