//! Response building: JSON errors with stable codes, and the security
//! headers every response carries.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// The body type of every response.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// CSP of the UI page: only our own scripts, styles and media; no inline
/// code; never framed.
pub const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; media-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";
/// CSP of everything else: artifacts, JSON, errors. `sandbox` keeps anything
/// a run wrote from running script on the Lab's origin.
pub const SANDBOX_CSP: &str = "sandbox; default-src 'none'; frame-ancestors 'none'";

/// A full in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// An error answer: status, stable snake_case code, and a message that never
/// holds a path or internal detail.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: Cow<'static, str>,
}

impl ApiError {
    /// A new error.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 for a route that does not exist.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 401 for a request without a valid credential.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in with the link `lab serve` printed (…/#key=…), or send Authorization: Bearer KEY",
        )
    }

    /// 405 with the methods the route does allow.
    pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
        let mut response = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource allows {allow}"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lab\""),
            );
        }
        response
    }
}

/// A JSON response with `Cache-Control: no-store`.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds the headers SPEC §5 requires on every response and removes any
/// `Access-Control-*` header, whatever produced the response.
pub fn secure(headers: &mut HeaderMap) {
    let names: Vec<header::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX_CSP),
        );
    }
}
