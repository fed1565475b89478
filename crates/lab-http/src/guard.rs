//! The request guard of SPEC §5, in front of every route.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use http::{Method, Request, StatusCode};
use subtle::ConstantTimeEq;

use crate::auth::Credential;
use crate::response::{ApiError, Code};

/// Largest request body accepted.
pub const MAX_BODY: u64 = 1024 * 1024;

/// The header that carries the session token on mutations.
pub const TOKEN_HEADER: &str = "x-lab-token";

/// Which Host header values name this server.
#[derive(Clone, Debug)]
pub struct HostAllowlist {
    /// Exact `host[:port]` values accepted, lower-cased.
    exact: Vec<String>,
    /// Names accepted with any port (or none), lower-cased.
    any_port: Vec<String>,
}

impl HostAllowlist {
    /// `localhost`, `127.0.0.1` and `[::1]` with the bound port, the bound
    /// address itself, and each extra name: a name with a port must match
    /// exactly; a name without one matches alone (behind a reverse proxy) or
    /// with the bound port.
    pub fn new(port: u16, bound: std::net::SocketAddr, extra: &[String]) -> Self {
        let mut exact = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            bound.to_string(),
        ];
        for name in extra {
            let name = name.to_ascii_lowercase();
            if has_port(&name) {
                exact.push(name);
            } else {
                exact.push(format!("{name}:{port}"));
                exact.push(name);
            }
        }
        exact.sort();
        exact.dedup();
        Self {
            exact,
            any_port: Vec::new(),
        }
    }

    /// On a Unix socket (reached through `ssh -L PORT:PATH`, so the port
    /// is the client's): `localhost`, `127.0.0.1` and `[::1]` with any port
    /// or none, and each extra name with any port.
    pub fn unix(extra: &[String]) -> Self {
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()];
        names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        Self {
            exact: Vec::new(),
            any_port: names,
        }
    }

    /// Whether `host` (a Host header value) names this server.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.exact.contains(&host) {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port))
                if !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && (!name.contains(':') || name.ends_with(']')) =>
            {
                name
            }
            _ => host.as_str(),
        };
        self.any_port.iter().any(|n| n == name)
    }
}

fn has_port(name: &str) -> bool {
    match name.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']'))
        }
        None => false,
    }
}

/// What the guard learned about a request that passed it.
#[derive(Debug)]
pub struct Checked {
    /// Whether the request carries a body to read (already checked to be JSON
    /// and within [`MAX_BODY`] by its declared length).
    pub has_body: bool,
    /// How the request proved who it is; `None` only on the routes open to
    /// anyone (the login shell, its assets, `POST /api/session`).
    pub(crate) credential: Option<Credential>,
}

/// What a page's elements load with the cookie alone (no header can be
/// added to them): the page, artifacts, TensorBoard images, bundle
/// downloads, job log streams.
fn element_load(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    let segments: Vec<&str> = path.split('/').collect();
    read && (path == "/"
        || matches!(
            segments.as_slice(),
            ["", "api", "runs", _, "artifacts", _, ..] | ["", "api", "runs", _, "images", _, _, _]
        )
        || matches!(segments.as_slice(), ["", "api", "exports", file] if !file.is_empty())
        || matches!(segments.as_slice(), ["", "api", "jobs", _, "log"]))
}

/// The routes a request without a credential may reach.
fn is_public(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    (read && (path == "/" || path.starts_with("/assets/")))
        || (method == Method::POST && path == "/api/session")
}

/// Checks a request before routing. The order is: Host, request target,
/// Sec-Fetch-Site on `/api/`, a credential (but on the public routes), then
/// for mutations the token (when the credential is the cookie), Origin, and
/// body type and size.
pub(crate) fn check<B>(
    req: &Request<B>,
    hosts: &HostAllowlist,
    credential: Option<Credential>,
) -> Result<Checked, ApiError> {
    let forbidden = |code, message| ApiError::new(StatusCode::FORBIDDEN, code, message);
    let mut host_values = req.headers().get_all(HOST).iter();
    let host = match (host_values.next(), host_values.next()) {
        (Some(host), None) => host.to_str().map_err(|_| {
            forbidden(
                Code::HostNotAllowed,
                "the Host header does not name this server",
            )
        })?,
        (None, _) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::MissingHost,
                "a Host header is required",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::DuplicateHost,
                "more than one Host header",
            ));
        }
    };
    // DNS rebinding: a foreign name resolving to 127.0.0.1 must not reach us.
    if !hosts.allows(host) {
        return Err(forbidden(
            Code::HostNotAllowed,
            "the Host header does not name this server",
        ));
    }
    // Only origin-form targets (`/path?query`); an absolute-form or
    // authority-form target could disagree with Host.
    if req.uri().scheme().is_some()
        || req.uri().authority().is_some()
        || !req.uri().path().starts_with('/')
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::BadRequestTarget,
            "the request target must be a path",
        ));
    }
    if req.uri().path().starts_with("/api/")
        && let Some(site) = req.headers().get("sec-fetch-site")
    {
        let site = site.as_bytes();
        if site.eq_ignore_ascii_case(b"cross-site") || site.eq_ignore_ascii_case(b"same-site") {
            return Err(forbidden(
                Code::CrossSiteRequest,
                "requests from other sites are refused",
            ));
        }
    }
    let method = req.method();
    // Another user of the machine is not the owner: nothing without the key.
    if credential.is_none() && !is_public(method, req.uri().path()) {
        return Err(ApiError::unauthenticated());
    }
    // A bound session's cookie without its binding (as a browser sends it
    // to any port of the host, a foreign one's included) reaches only what
    // an element loads: the page, artifacts, bundle downloads, the event
    // stream of a job's log.
    if let Some(Credential::Cookie { unbound: true, .. }) = &credential
        && !element_load(method, req.uri().path())
        && !is_public(method, req.uri().path())
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthenticated,
            "this session's cookie needs its page's X-Lab-Binding header here",
        ));
    }
    if method == Method::GET || method == Method::HEAD {
        return Ok(Checked {
            has_body: false,
            credential,
        });
    }
    // A mutation. A browser's cookie rides along on forged requests too, so
    // it needs the page's token as well; a Bearer key is not forgeable by a
    // browser. The token only ever comes from the header, never the query.
    if let Some(Credential::Cookie { token, .. }) = &credential {
        let mut tokens = req.headers().get_all(TOKEN_HEADER).iter();
        match (tokens.next(), tokens.next()) {
            (Some(given), None) if bool::from(given.as_bytes().ct_eq(token.as_bytes())) => {}
            (None, _) => {
                return Err(forbidden(
                    Code::MissingToken,
                    "this request needs the X-Lab-Token header",
                ));
            }
            _ => return Err(forbidden(Code::BadToken, "the X-Lab-Token header is wrong")),
        }
    }
    if let Some(origin) = req.headers().get(ORIGIN) {
        let expected = format!("http://{host}");
        if !origin.as_bytes().eq_ignore_ascii_case(expected.as_bytes()) {
            return Err(forbidden(
                Code::OriginNotAllowed,
                "the Origin header is not this server",
            ));
        }
    }
    let length = match req.headers().get(CONTENT_LENGTH) {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Code::BadContentLength,
                        "invalid Content-Length",
                    )
                })?,
        ),
        None => None,
    };
    let chunked = req.headers().contains_key(TRANSFER_ENCODING);
    let has_body = chunked || length.is_some_and(|n| n > 0);
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            "request bodies are limited to 1 MiB",
        ));
    }
    if has_body {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .is_some_and(|mime| mime.eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "request bodies must be application/json",
            ));
        }
    }
    Ok(Checked {
        has_body,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allowlist_matches_host_and_port_exactly() {
        let bound: std::net::SocketAddr = "127.0.0.1:7878".parse().unwrap();
        let hosts = HostAllowlist::new(7878, bound, &["lab.example".into(), "Proxy:8443".into()]);
        for ok in [
            "localhost:7878",
            "LOCALHOST:7878",
            "127.0.0.1:7878",
            "[::1]:7878",
            "lab.example",
            "lab.example:7878",
            "proxy:8443",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "localhost",
            "localhost:7879",
            "127.0.0.1",
            "127.0.0.1:78780",
            "evil.com:7878",
            "localhost.evil.com:7878",
            "127.0.0.1.nip.io:7878",
            "proxy",
            "proxy:7878",
            "",
            "[::1]",
            "lab.example:1",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
    }
}
