//! Artifacts: opening one through the registry and lab-fs, the type table,
//! and answering with lab-stream (preconditions, Range, multipart).

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;

use lab_formats::Format;
use lab_fs::{Allowlist, ArtifactName, RunRoot};
use lab_stream::{FileBody, Plan, Validators, evaluate, multipart_segments};

use crate::State;
use crate::decode::percent_decode;
use crate::errors::internal;
use crate::request::{Result, gated, parse_id};
use crate::response::{ApiError, Body, Code, empty};

/// The fixed, safe content-type table (SPEC §5). Anything else is an opaque
/// download; nothing is ever served as HTML, SVG or script.
pub fn content_type(name: &ArtifactName) -> &'static str {
    let ext = name
        .file()
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4") => "video/mp4",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webm") => "video/webm",
        Some("json") => "application/json",
        Some("log" | "csv" | "jsonl" | "toml" | "md" | "txt" | "yaml") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

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
    let name = state.allowlists.any(&name)?;
    let artifact = match open_cached(state, &id, &name) {
        Some(artifact) => artifact?,
        None => {
            let open_name = name.clone();
            let shared = Arc::clone(state);
            let gate_id = id.clone();
            gated(state, &gate_id, move || {
                let state = shared;
                let run = state.registry.get(&id)?;
                let format = crate::discovery::format_of(&run);
                if !state.allowlists.of(format).allows(&open_name) {
                    return Err(lab_fs::Error::NotAllowed.into());
                }
                let root = state
                    .summaries
                    .readers
                    .artifact_root(&run)?
                    .ok_or(lab_fs::Error::NotFound)?;
                Ok(root.open_artifact(&open_name)?)
            })
            .await?
        }
    };
    let kind = content_type(&name);
    let disposition = (kind == "application/octet-stream").then(|| "attachment".to_owned());
    file_response(method, headers, artifact, kind, disposition)
}

/// The artifact opened here on the async worker when nothing has to wait
/// on a disk: a run whose files lie in its own directory, its root opened
/// through no link from the kernel's lookup cache, the name resolved
/// beneath it from that cache (lab-fs's `*_cached` opens, the same checks
/// as the blocking path). `None`: the blocking
/// path answers (and gives every error of record).
fn open_cached(
    state: &State,
    id: &lab_registry::RunId,
    name: &ArtifactName,
) -> Option<Result<lab_fs::Artifact>> {
    let run = state.registry.get(id).ok()?;
    if run.entry.is_some() {
        return None;
    }
    if !state
        .allowlists
        .of(crate::discovery::format_of(&run))
        .allows(name)
    {
        return Some(Err(lab_fs::Error::NotAllowed.into()));
    }
    let root = RunRoot::open_ambient_cached(&run.root)?;
    Some(root.open_artifact_cached(name)?.map_err(Into::into))
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
    let len = artifact.len;
    let plan = evaluate(method, headers, &validators);
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
                FileBody::region(artifact.file, 0, len).boxed()
            }),
        Plan::Single(range) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_TYPE, kind)
            .header(header::CONTENT_RANGE, range.content_range(len))
            .header(header::CONTENT_LENGTH, range.len())
            .body(FileBody::region(artifact.file, range.first, range.len()).boxed()),
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
                .body(FileBody::new(artifact.file, segments).boxed())
        }
    };
    response.map_err(|_| internal("building an artifact response"))
}

pub(crate) fn boundary() -> Result<String> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|_| internal("OS random number generator"))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

/// Per format, the artifact allowlist: the configured one plus the
/// format's fixed patterns.
#[derive(Debug)]
pub(crate) struct Allowlists {
    base: Allowlist,
    by_format: HashMap<Format, Allowlist>,
}

impl Allowlists {
    pub(crate) fn new(base: Allowlist) -> Self {
        let by_format = Format::ALL
            .into_iter()
            .map(|f| {
                // The formats' patterns are constant; one that failed to
                // parse would leave that format with the base list.
                let list = base
                    .plus(f.artifact_patterns())
                    .unwrap_or_else(|_| base.clone());
                (f, list)
            })
            .collect();
        Self { base, by_format }
    }

    /// The configured list, without any format's patterns.
    pub(crate) fn base(&self) -> &Allowlist {
        &self.base
    }

    /// The list for a run of `format`.
    pub(crate) fn of(&self, format: Format) -> &Allowlist {
        self.by_format.get(&format).unwrap_or(&self.base)
    }

    /// Whether any format's list could serve `name` (checked before the
    /// run is looked up, so a name no run may have is refused alike).
    pub(crate) fn any(
        &self,
        name: &str,
    ) -> std::result::Result<lab_fs::ArtifactName, lab_fs::Error> {
        let mut last = lab_fs::Error::NotAllowed;
        for list in self.by_format.values() {
            match list.check(name) {
                Ok(name) => return Ok(name),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
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
    let shared = Arc::clone(state);
    let gate_id = id.clone();
    let png =
        gated(state, &gate_id, move || {
            let state = shared;
            let run = state.registry.get(&id)?;
            let root = RunRoot::open_ambient(&run.root)?;
            // A job's run: the events the job wrote.
            let (content, _, format, _) = state.summaries.readers.content(&run, &root);
            if format != Format::Tensorboard {
                return Ok(None);
            }
            let root = content.unwrap_or(root);
            Ok(lab_formats::tensorboard_image(
                &lab_formats::LocalStorage::new(&root),
                &file,
                offset,
                n,
            )
            .ok())
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
