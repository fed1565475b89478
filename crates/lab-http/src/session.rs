//! `POST /api/session` and `DELETE /api/session`.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};

use crate::State;
use crate::errors::internal;
use crate::guard::Checked;
use crate::request::{ReqBody, Result, read_json};
use crate::response::{ApiError, Body, Code, empty};

/// `POST /api/session {"key": KEY, "binding": B}`: the access key
/// (compared in constant time) buys a session cookie bound to the page
/// binding B; a wrong key is 401, a login without a binding 400
/// `binding_required` (a session on the cookie alone would be one any
/// other port of the host is sent).
pub(crate) async fn create_session(
    state: &Arc<State>,
    req: Request<ReqBody>,
    checked: Checked,
) -> Result<Response<Body>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        key: String,
        /// A page binding (16 to 128 base64url characters) the UI keeps in
        /// its origin's storage and sends as `X-Lab-Binding`.
        #[serde(default)]
        binding: Option<String>,
    }
    let login: Login = read_json(state, req, &checked).await?;
    if !state.key.matches(login.key.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::BadKey,
            "this is not this Lab's key; each `lab serve` prints a new link",
        ));
    }
    let Some(binding) = login.binding else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::BindingRequired,
            "a session needs a page binding: {\"key\": KEY, \"binding\": 16 to 128 base64url characters the page keeps}; scripts send Authorization: Bearer KEY instead",
        ));
    };
    let well_formed = (16..=128).contains(&binding.len())
        && binding
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    if !well_formed {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::BindingRequired,
            "the binding must be 16 to 128 base64url characters",
        ));
    }
    let cookie = state
        .sessions
        .open(binding)
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
