//! `POST /api/session` and `DELETE /api/session`.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::State;
use crate::errors::internal;
use crate::guard::Checked;
use crate::request::{Result, read_json};
use crate::response::{ApiError, Body, Code, empty};

/// `POST /api/session {"key": KEY}`: the access key (compared in constant
/// time) buys a session cookie; anything else is 401.
pub(crate) async fn create_session(
    state: &Arc<State>,
    req: Request<Incoming>,
    checked: Checked,
) -> Result<Response<Body>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        key: String,
        /// A page binding (16 to 128 base64url characters) the UI keeps in
        /// its origin's storage; a session opened with one lets the cookie
        /// alone reach only what elements load.
        #[serde(default)]
        binding: Option<String>,
    }
    let login: Login = read_json(state, req, &checked).await?;
    let bad_binding = login.binding.as_ref().is_some_and(|b| {
        !(16..=128).contains(&b.len())
            || !b
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    if bad_binding {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidJson,
            "the binding must be 16 to 128 base64url characters",
        ));
    }
    if !state.key.matches(login.key.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::BadKey,
            "this is not this Lab's key; each `lab serve` prints a new link",
        ));
    }
    let cookie = state
        .sessions
        .open(login.binding.clone())
        .map_err(|e| internal(&format!("opening a session: {e}")))?;
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `DELETE /api/session`: log out; the cookie is cleared.
pub(crate) fn delete_session(state: &State, headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.sessions.close(headers));
    response
}
