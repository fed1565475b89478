//! Request extraction: JSON bodies within their caps, run ids, work off the
//! async workers.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use lab_registry::RunId;

use crate::State;
use crate::errors::internal;
use crate::guard::{Checked, MAX_BODY};
use crate::response::{ApiError, Code};

/// What every handler returns.
pub(crate) type Result<T> = std::result::Result<T, ApiError>;

/// Runs blocking filesystem work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| internal("a worker task failed"))?
}

/// Runs blocking work that reads run `id`'s files through the run gate:
/// after any read of it in flight, never while one is stuck (then 503
/// `run_unavailable` at once, without a thread).
pub(crate) async fn gated<T: Send + 'static>(
    state: &State,
    id: &RunId,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    state
        .lab
        .gate()
        .read(id, work)
        .await
        .map_err(crate::errors::stuck_error)?
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    state: &State,
    req: Request<Incoming>,
    checked: &Checked,
) -> Result<T> {
    if !checked.has_body {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::MissingBody,
            "this request needs a JSON body",
        ));
    }
    let bytes = tokio::time::timeout(state.limits.body_read_timeout, read_capped(req.into_body()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                Code::BodyTimeout,
                "the request body was not received in time",
            )
        })??;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidJson,
            format!("invalid request body: {e}"),
        )
    })
}

/// Most bytes read and thrown away after a body passes [`MAX_BODY`], so the
/// client finishes sending and reads the 413 instead of a connection reset.
pub(crate) const MAX_DRAIN: usize = 8 * MAX_BODY as usize;

/// Collects a body of at most [`MAX_BODY`] bytes. A larger one is drained
/// (up to [`MAX_DRAIN`]) and refused with 413.
pub(crate) async fn read_capped(mut body: Incoming) -> Result<Bytes> {
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::BadBody,
                "the request body could not be read",
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY as usize {
            collected.extend_from_slice(&data);
        } else if seen > MAX_BODY as usize + MAX_DRAIN {
            break;
        }
    }
    if seen > MAX_BODY as usize {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            "request bodies are limited to 1 MiB",
        ));
    }
    Ok(Bytes::from(collected))
}

pub(crate) fn parse_id(id: &str) -> Result<RunId> {
    RunId::parse(id).map_err(ApiError::from)
}
