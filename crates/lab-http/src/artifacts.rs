//! Artifacts: opened by lab-core (which run, which file), answered with
//! lab-stream (preconditions, Range, multipart).

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;

use lab_core::content_type;
use lab_stream::{FileBody, Plan, Segment, Validators, evaluate, multipart_segments};

use crate::State;
use crate::decode::percent_decode;
use crate::errors::internal;
use crate::request::{Result, gated, parse_id};
use crate::response::{ApiError, Body, Code, empty};

pub(crate) async fn artifact(
    state: &Arc<State>,
    method: &Method,
    headers: &HeaderMap,
    id: &str,
    raw_name: &str,
) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    // Decoded exactly once; what survives (`%`, `#`, `?`, `;`) is ordinary text.
    let name = percent_decode(raw_name, false).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArtifactName,
            "invalid artifact name: malformed percent-encoding",
        )
    })?;
    // Refused alike for every run when no format's list has it; then the
    // run's own format decides.
    let name = state.lab.allowlists().any(&name)?;
    let kind = content_type(&name);
    let disposition = (kind == "application/octet-stream").then(|| "attachment".to_owned());
    // A run in object storage: its object's length and ETag (a HEAD,
    // through the gate), then ranged GETs pinned to that ETag.
    if state.lab.is_remote(&id) {
        let lab = Arc::clone(&state.lab);
        let gate_id = id.clone();
        let remote = gated(state, &gate_id, move || {
            Ok(lab.open_remote_artifact(&id, &name)?)
        })
        .await?;
        let validators = Validators::new(remote.len, remote.modified, remote.tag());
        return respond(
            method,
            headers,
            &validators,
            kind,
            disposition,
            |segments| crate::remote_body::RemoteBody::new(remote, segments).boxed(),
        );
    }
    // At once on this worker where no disk has to be waited on; else on a
    // blocking thread through the run's gate.
    let artifact = match state.lab.open_artifact_cached(&id, &name) {
        Some(artifact) => artifact?,
        None => {
            let open_name = name.clone();
            let lab = Arc::clone(&state.lab);
            let gate_id = id.clone();
            gated(state, &gate_id, move || {
                Ok(lab.open_artifact(&id, &open_name)?)
            })
            .await?
        }
    };
    file_response(method, headers, artifact, kind, disposition)
}

/// Answers a GET or HEAD for an open file: preconditions, Range, streaming
/// (lab-stream decides; this only builds the response).
pub(crate) fn file_response(
    method: &Method,
    headers: &HeaderMap,
    artifact: lab_fs::Artifact,
    kind: &str,
    disposition: Option<String>,
) -> Result<Response<Body>> {
    let validators = Validators::new(artifact.len, artifact.modified, artifact.inode);
    let file = artifact.file;
    respond(
        method,
        headers,
        &validators,
        kind,
        disposition,
        |segments| match segments.as_slice() {
            [Segment::File { offset, len }] => FileBody::region(file, *offset, *len).boxed(),
            _ => FileBody::new(file, segments).boxed(),
        },
    )
}

/// Answers a GET or HEAD for an artifact of `validators`' length and
/// version: preconditions, Range (lab-stream decides), the body of the
/// bytes to send made by `body` from their segments (a file's, or an
/// object's ranged GETs).
fn respond(
    method: &Method,
    headers: &HeaderMap,
    validators: &Validators,
    kind: &str,
    disposition: Option<String>,
    body: impl FnOnce(Vec<Segment>) -> Body,
) -> Result<Response<Body>> {
    let len = validators.len;
    let plan = evaluate(method, headers, validators);
    let mut builder = Response::builder()
        .header(header::ETAG, &validators.etag)
        .header(header::LAST_MODIFIED, validators.last_modified_header())
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(disposition) = disposition {
        builder = builder.header(header::CONTENT_DISPOSITION, disposition);
    }
    let head = method == Method::HEAD;
    let response = match plan {
        Plan::NotModified => builder.status(StatusCode::NOT_MODIFIED).body(empty()),
        Plan::PreconditionFailed => {
            let mut r = ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                Code::PreconditionFailed,
                "a precondition header did not match the artifact",
            )
            .into_response();
            r.headers_mut().insert(
                header::ETAG,
                HeaderValue::from_str(&validators.etag).map_err(|_| internal("etag"))?,
            );
            return Ok(r);
        }
        Plan::Unsatisfiable => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Code::RangeNotSatisfiable,
                "the requested range is outside the artifact",
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&lab_stream::unsatisfied_content_range(len))
                    .map_err(|_| internal("content-range"))?,
            );
            return Ok(r);
        }
        Plan::Full => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, kind)
            .header(header::CONTENT_LENGTH, len)
            .body(if head {
                empty()
            } else {
                body(vec![Segment::File { offset: 0, len }])
            }),
        Plan::Single(range) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, kind)
            .header(header::CONTENT_RANGE, range.content_range(len))
            .header(header::CONTENT_LENGTH, range.len())
            .body(if head {
                empty()
            } else {
                body(vec![Segment::File {
                    offset: range.first,
                    len: range.len(),
                }])
            }),
        Plan::Multi(ranges) => {
            let boundary = boundary()?;
            let (segments, total) = multipart_segments(&ranges, len, kind, &boundary);
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/byteranges; boundary={boundary}"),
                )
                .header(header::CONTENT_LENGTH, total)
                .body(if head { empty() } else { body(segments) })
        }
    };
    response.map_err(|_| internal("building an artifact response"))
}

pub(crate) fn boundary() -> Result<String> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|_| internal("OS random number generator"))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

/// `GET /api/runs/{id}/images/{file}/{offset}/{n}`: a TensorBoard image,
/// read again from its record in the event file (CRCs checked, the event
/// decoded) and served only if it is a PNG, as `image/png`.
pub(crate) async fn tensorboard_image(
    state: &Arc<State>,
    method: &Method,
    id: &str,
    file: &str,
    offset: &str,
    n: &str,
) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::ImageNotFound,
            "no TensorBoard image there",
        )
    };
    let file = percent_decode(file, false).ok_or_else(not_found)?;
    let offset: u64 = offset.parse().map_err(|_| not_found())?;
    let n: usize = n.parse().map_err(|_| not_found())?;
    let lab = Arc::clone(&state.lab);
    let gate_id = id.clone();
    let png = gated(state, &gate_id, move || {
        Ok(lab.tensorboard_image(&id, &file, offset, n)?)
    })
    .await?
    .ok_or_else(not_found)?;
    let len = png.len();
    let mut response = Response::new(if *method == Method::HEAD {
        crate::response::empty()
    } else {
        crate::response::full(png)
    });
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("image/png"),
    );
    headers.insert(header::CONTENT_LENGTH, http::HeaderValue::from(len));
    headers.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, max-age=60"),
    );
    Ok(response)
}
