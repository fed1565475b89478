//! The request guard of SPEC §5, in front of every route.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use http::{Method, Request, StatusCode};
use subtle::ConstantTimeEq;

use crate::auth::Credential;
use crate::response::{ApiError, Code};
use crate::route::{API, Resource, Route};
use crate::signed::{self, Unsigned, Urls};

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

    /// Exactly `names`, lower-cased: a `name:port` matches with that port
    /// alone, a bare name only without a port (a mounted Lab, which cannot
    /// see its listener, is told the names it is served under).
    pub fn only(names: &[String]) -> Self {
        let mut exact: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        exact.sort();
        exact.dedup();
        Self {
            exact,
            any_port: Vec::new(),
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
    /// How the URLs in the answer are written: signed with the session's
    /// key when the request carried its page binding, plain for `Bearer`
    /// (and for answers no URL goes into).
    pub(crate) urls: Urls,
    /// The cookie alone, with a URL signature its session's key made for
    /// this path: an element load of the owner's page.
    pub(crate) signed: bool,
}

/// What the guard needs to know about the server beyond the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context<'a> {
    /// Which Host header values name this server.
    pub(crate) hosts: &'a HostAllowlist,
    /// Failed credentials went over the server-wide rate: every request
    /// that needs one but carries no full one is refused with 429.
    pub(crate) locked: bool,
    /// How long a session lives (what a URL signature may reach).
    pub(crate) lifetime: std::time::Duration,
    /// Unix seconds, now.
    pub(crate) now: u64,
}

/// Checks a request before routing. The order is: Host, request target,
/// Sec-Fetch-Site on `/api/`, the server-wide lockout after too many failed
/// credentials, a credential (but on the public routes) — the cookie alone
/// only with a valid URL signature, and only on an element route — then
/// for mutations the token (when the credential is the cookie), Origin, and
/// body type and size.
pub(crate) fn check<B>(
    req: &Request<B>,
    context: Context<'_>,
    credential: Option<Credential>,
) -> Result<Checked, ApiError> {
    let hosts = context.hosts;
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
    if req.uri().path().starts_with(API)
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
    let path = req.uri().path();
    let read = method == Method::GET || method == Method::HEAD;
    let resource = Resource::parse(path);
    let route = resource.and_then(|r| r.route(method));
    let public = route.is_ok_and(Route::is_public);
    // What a page's elements load without headers, so with the cookie and
    // a URL signature ([`signed`]) only.
    let element = read && resource.is_ok_and(Resource::is_element);
    // Too many failed credentials server-wide: what needs one (a login
    // included) waits a second, before anything is looked up — but for a
    // request proved by a secret no browser sends on its own (the key, or
    // the cookie with its page's binding), so the owner's page and scripts
    // work on while someone guesses.
    // A cookie alone on an element route: its URL signature, checked (in
    // constant time, before anything is looked up) ahead of the lockout,
    // which a valid one passes — no one guesses a 256-bit MAC.
    let signature = match &credential {
        Some(Credential::Cookie {
            bound: false, key, ..
        }) if !public && element => Some(signed::verify(
            key,
            path,
            req.uri().query(),
            context.now,
            context.lifetime,
        )),
        _ => None,
    };
    let signed = signature == Some(Ok(()));
    // Too many failed credentials server-wide: what needs one (a login
    // included) waits a second, before anything is looked up — but for a
    // request proved by a secret no browser sends on its own (the key, or
    // the cookie with its page's binding) or by a valid URL signature, so
    // the owner's page, its elements and scripts work on while someone
    // guesses.
    let signs_in = route == Ok(Route::SignIn);
    if context.locked
        && (!public || signs_in)
        && !signed
        && !credential.as_ref().is_some_and(Credential::is_full)
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::RateLimited,
            "too many failed credentials; try again in a second",
        ));
    }
    // Another user of the machine is not the owner: nothing without the key.
    if credential.is_none() && !public {
        return Err(ApiError::unauthenticated());
    }
    // The cookie alone is what a browser sends to any port of the host, a
    // foreign one's included: it reads nothing, whatever ids it knows, but
    // what an element loads by a URL the API signed for its session.
    let mut urls = Urls::Plain;
    match &credential {
        Some(Credential::Cookie { bound: false, .. }) if !public => match signature {
            Some(Ok(())) => {}
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "this session's cookie needs its page's X-Lab-Binding header here",
                ));
            }
            Some(Err(Unsigned::Absent)) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    "this URL needs the signature the API gave it (?exp=…&sig=…) or its page's X-Lab-Binding header",
                ));
            }
            Some(Err(Unsigned::Bad)) => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    Code::BadSignature,
                    "this URL's signature does not hold (expired, for another path, or another session's): ask the API for the URL again",
                ));
            }
        },
        Some(Credential::Cookie {
            bound: true, key, ..
        }) => urls = Urls::signed(key.clone(), context.now, context.lifetime),
        _ => {}
    }
    if read {
        return Ok(Checked {
            has_body: false,
            credential,
            urls,
            signed,
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
        urls,
        signed,
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

    /// Whether `path` (with `query`) passes the guard for the cookie
    /// alone of a session whose key is `key`, and with what code if not.
    fn cookie_alone(
        method: &str,
        target: &str,
        key: &crate::signed::SignKey,
    ) -> Result<(), String> {
        let bound: std::net::SocketAddr = "127.0.0.1:7878".parse().unwrap();
        let hosts = HostAllowlist::new(7878, bound, &[]);
        let req = Request::builder()
            .method(method)
            .uri(target)
            .header(HOST, "127.0.0.1:7878")
            .body(())
            .unwrap();
        let context = Context {
            hosts: &hosts,
            locked: false,
            lifetime: std::time::Duration::from_secs(3600),
            now: crate::signed::unix_now(),
        };
        let credential = Credential::Cookie {
            token: "t".repeat(64),
            key: key.clone(),
            bound: false,
        };
        check(&req, context, Some(credential))
            .map(|_| ())
            .map_err(|e| e.code.as_str().to_owned())
    }

    #[test]
    fn a_signature_is_a_credential_only_on_the_route_it_signs_and_only_for_reads() {
        let key = crate::signed::SignKey::generate().unwrap();
        let urls = Urls::signed(
            key.clone(),
            crate::signed::unix_now(),
            std::time::Duration::from_secs(3600),
        );
        let signed = |path: &str| urls.url(path);
        // Element routes open with their own signature.
        for path in [
            "/api/runs/demo/artifacts/notes.md",
            "/api/runs/demo/artifacts/videos/a%20b.mp4",
            "/api/runs/demo/images/events.out.tfevents.1/0/1",
            "/api/exports/demo.tar",
            "/api/jobs/demo-1/log",
        ] {
            assert_eq!(cookie_alone("GET", &signed(path), &key), Ok(()), "{path}");
            assert_eq!(cookie_alone("HEAD", &signed(path), &key), Ok(()), "{path}");
            assert_eq!(
                cookie_alone("GET", path, &key),
                Err("unauthenticated".into()),
                "{path}"
            );
            // Not for a mutation, even signed for that very path.
            assert_eq!(
                cookie_alone("DELETE", &signed(path), &key),
                Err("unauthenticated".into()),
                "{path}"
            );
        }
        // JSON routes never take a signature, however valid for their path.
        for path in [
            "/api/runs",
            "/api/runs/demo",
            "/api/status",
            "/api/exports",
            "/api/jobs",
            "/api/jobs/demo-1",
            "/api/runs/demo/metrics/loss",
            "/api/runs/demo/histograms/w",
            "/api/columns",
            "/api/experiments",
            "/api/runs/demo/artifacts/",
            "/api/exports/",
        ] {
            assert_eq!(
                cookie_alone("GET", &signed(path), &key),
                Err("unauthenticated".into()),
                "{path}"
            );
        }
        // The page and its assets need no signature.
        assert_eq!(cookie_alone("GET", "/", &key), Ok(()));
        assert_eq!(cookie_alone("GET", "/assets/app.js", &key), Ok(()));
    }
}
