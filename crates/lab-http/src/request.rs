//! Request extraction: JSON bodies within their caps, run ids, work off the
//! async workers.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lab_registry::RunId;

use crate::State;
use crate::errors::internal;
use crate::guard::{Checked, MAX_BODY};
use crate::response::{ApiError, Code};

/// What every handler returns.
pub(crate) type Result<T> = std::result::Result<T, ApiError>;

/// An error of a request body, whoever made the body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the handlers take it: hyper's own (`serve`) or the
/// host's (the mounted service), boxed once at the entry.
pub(crate) type ReqBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// `req` with its body boxed as [`ReqBody`]: each data frame's bytes
/// taken as they are.
pub(crate) fn boxed<B>(req: Request<B>) -> Request<ReqBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use bytes::Buf;
    req.map(|body| {
        body.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
            .map_err(Into::into)
            .boxed_unsync()
    })
}

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
    req: Request<ReqBody>,
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
pub(crate) async fn read_capped(mut body: ReqBody) -> Result<Bytes> {
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
