//! Routing and the handlers of SPEC §4.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use lab_fs::{ArtifactName, RunRoot};
use lab_registry::RunId;
use lab_stream::{FileBody, Plan, Validators, evaluate, multipart_segments};
use serde_json::json;

use crate::State;
use crate::decode::percent_decode;
use crate::exports;
use crate::guard::{Checked, MAX_BODY};
use crate::jobs;
use crate::response::{ApiError, Body, Code, empty, json_response};
use crate::runs;
use crate::ui;

pub(crate) type Result<T> = std::result::Result<T, ApiError>;

pub(crate) async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    checked: Checked,
) -> Result<Response<Body>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let is_read = method == Method::GET || method == Method::HEAD;
    if path == "/" {
        return if is_read {
            Ok(match &checked.credential {
                // A browser's page carries its own session's token; a
                // script (Bearer) needs none and gets the server's, which
                // no mutation accepts.
                Some(crate::auth::Credential::Cookie { token }) => {
                    ui::page(ui::index_html(token), &method)
                }
                Some(crate::auth::Credential::Bearer) => index(state, &method),
                // No credential: the login shell, holding no token and no data.
                None => ui::page(ui::LOGIN_HTML.to_owned(), &method),
            })
        } else {
            Ok(ApiError::method_not_allowed("GET, HEAD"))
        };
    }
    if let Some(asset) = path.strip_prefix("/assets/") {
        return if is_read {
            ui::asset(asset, &method).ok_or_else(ApiError::no_route)
        } else {
            Ok(ApiError::method_not_allowed("GET, HEAD"))
        };
    }
    let Some(api) = path.strip_prefix("/api/") else {
        return Err(ApiError::no_route());
    };
    let segments: Vec<&str> = api.split('/').collect();
    match segments.as_slice() {
        ["session"] => match method {
            Method::POST => create_session(state, req, checked).await,
            Method::DELETE => Ok(delete_session(state, req.headers())),
            _ => Ok(ApiError::method_not_allowed("POST, DELETE")),
        },
        ["status"] => match method {
            Method::GET | Method::HEAD => status(state).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["runs"] => match method {
            Method::GET | Method::HEAD => runs::list(state, req.uri().query()).await,
            Method::POST => import_run(state, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD, POST")),
        },
        ["runs", id] => match method {
            Method::GET | Method::HEAD => runs::show(state, parse_id(id)?).await,
            Method::DELETE => forget_run(state, id).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD, DELETE")),
        },
        ["runs", id, "artifacts", _, ..] => {
            if !is_read {
                return Ok(ApiError::method_not_allowed("GET, HEAD"));
            }
            let prefix = format!("runs/{id}/artifacts/");
            let raw_name = &api[prefix.len()..];
            artifact(state, &method, req.headers(), id, raw_name).await
        }
        ["runs", id, "export"] => match method {
            Method::POST => exports::create(state, id, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("POST")),
        },
        ["exports"] => match method {
            Method::GET | Method::HEAD => exports::list(state).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["exports", file] => match method {
            Method::GET | Method::HEAD => {
                exports::download(state, &method, req.headers(), file).await
            }
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["jobs"] => match method {
            Method::GET | Method::HEAD => jobs::list(state).await,
            Method::POST => jobs::create(state, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD, POST")),
        },
        ["jobs", id] => match method {
            Method::GET | Method::HEAD => jobs::show(state, id).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["jobs", id, "log"] => match method {
            Method::GET => jobs::log(state, req.headers(), id).await,
            _ => Ok(ApiError::method_not_allowed("GET")),
        },
        ["jobs", id, "cancel"] => match method {
            Method::POST => jobs::cancel(state, id).await,
            _ => Ok(ApiError::method_not_allowed("POST")),
        },
        _ => Err(ApiError::no_route()),
    }
}

/// Runs blocking filesystem work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| internal("a worker task failed"))?
}

pub(crate) fn internal(detail: &str) -> ApiError {
    eprintln!("lab: internal error: {detail}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "internal error; see the server log",
    )
}

impl From<lab_registry::Error> for ApiError {
    fn from(e: lab_registry::Error) -> Self {
        use lab_registry::Error as E;
        let msg = e.to_string();
        let (status, code) = match &e {
            E::InvalidId(_) => (StatusCode::BAD_REQUEST, Code::InvalidRunId),
            E::RelativePath => (StatusCode::BAD_REQUEST, Code::PathNotAbsolute),
            E::NonUtf8Path => (StatusCode::BAD_REQUEST, Code::PathNotUtf8),
            E::NotFound => (StatusCode::NOT_FOUND, Code::DirectoryNotFound),
            E::NotADirectory => (StatusCode::BAD_REQUEST, Code::NotADirectory),
            E::OutsideAllowedRoots => (StatusCode::FORBIDDEN, Code::OutsideAllowedRoots),
            E::IsAllowedRoot => (StatusCode::BAD_REQUEST, Code::IsAllowedRoot),
            E::AlreadyRegistered(_) => (StatusCode::CONFLICT, Code::AlreadyRegistered),
            E::IdTaken(_) => (StatusCode::CONFLICT, Code::IdTaken),
            E::UnknownRun => (StatusCode::NOT_FOUND, Code::UnknownRun),
            E::Full => (StatusCode::CONFLICT, Code::RegistryFull),
            _ => return internal(&msg),
        };
        ApiError::new(status, code, msg)
    }
}

impl From<lab_fs::Error> for ApiError {
    fn from(e: lab_fs::Error) -> Self {
        use lab_fs::Error as E;
        let (status, code, message) = match &e {
            E::InvalidName(reason) => (
                StatusCode::BAD_REQUEST,
                Code::InvalidArtifactName,
                format!("invalid artifact name: {reason}"),
            ),
            E::NotAllowed => (
                StatusCode::NOT_FOUND,
                Code::ArtifactNotAllowed,
                "this name is not on the artifact allowlist".to_owned(),
            ),
            E::Escape => (
                StatusCode::FORBIDDEN,
                Code::PathEscapesRun,
                "the artifact resolves outside its run directory".to_owned(),
            ),
            E::NotFound => (
                StatusCode::NOT_FOUND,
                Code::ArtifactNotFound,
                "no such artifact in this run".to_owned(),
            ),
            E::NotAFile => (
                StatusCode::NOT_FOUND,
                Code::NotAFile,
                "the artifact is not a regular file".to_owned(),
            ),
            E::RootMoved => (
                StatusCode::CONFLICT,
                Code::RunRootMoved,
                "the run directory is no longer where it was registered".to_owned(),
            ),
            _ => return internal(&e.to_string()),
        };
        ApiError::new(status, code, message)
    }
}

fn index(state: &State, method: &Method) -> Response<Body> {
    ui::page(ui::index_html(&state.token), method)
}

/// `POST /api/session {"key": KEY}`: the access key (compared in constant
/// time) buys a session cookie; anything else is 401.
async fn create_session(
    state: &Arc<State>,
    req: Request<Incoming>,
    checked: Checked,
) -> Result<Response<Body>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        key: String,
    }
    let login: Login = read_json(state, req, &checked).await?;
    if !state.key.matches(login.key.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::BadKey,
            "this is not this Lab's key; each `lab serve` prints a new link",
        ));
    }
    let cookie = state
        .sessions
        .open()
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
fn delete_session(state: &State, headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.sessions.close(headers));
    response
}

async fn status(state: &Arc<State>) -> Result<Response<Body>> {
    let registry = Arc::clone(&state.registry);
    let runs = blocking(move || Ok(registry.runs()?.len())).await?;
    let roots: Vec<String> = state
        .registry
        .allowed_roots()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "address": state.address,
            "runner": {
                "enabled": state.runner.enabled,
                "network_allowed": state.runner.network_allowed,
                "workflow_exec_allowed": state.runner.workflow_exec_allowed,
                "programs": state.runner.programs,
                "env_allow": state.runner.env_allow,
                "isolation": state.runner.isolation,
                "available": state.runner.enabled && state.runner.unavailable.is_none(),
                "unavailable": state.runner.unavailable,
            },
            "counts": { "runs": runs },
            "allowed_roots": roots,
            "artifact_allowlist": state.allowlist.patterns().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    path: String,
    #[serde(default)]
    id: Option<String>,
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

async fn import_run(
    state: &Arc<State>,
    req: Request<Incoming>,
    checked: Checked,
) -> Result<Response<Body>> {
    let body: ImportBody = read_json(state, req, &checked).await?;
    if body.path.contains('\0') || body.path.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidPath,
            "the path contains a NUL or control character",
        ));
    }
    let registry = Arc::clone(&state.registry);
    let run = blocking(move || {
        let path = std::path::PathBuf::from(&body.path);
        registry
            .import(&path, body.id.as_deref())
            .map_err(|e| match e {
                // Inside a root but unreadable: the client's own file
                // permissions, not a server fault.
                lab_registry::Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        Code::PermissionDenied,
                        "the Lab may not read that directory",
                    )
                }
                other => ApiError::from(other),
            })
    })
    .await?;
    eprintln!("lab: imported run {} from {}", run.id, run.root.display());
    Ok(json_response(StatusCode::CREATED, &runs::run_json(&run)))
}

/// Most bytes read and thrown away after a body passes [`MAX_BODY`], so the
/// client finishes sending and reads the 413 instead of a connection reset.
const MAX_DRAIN: usize = 8 * MAX_BODY as usize;

/// Collects a body of at most [`MAX_BODY`] bytes. A larger one is drained
/// (up to [`MAX_DRAIN`]) and refused with 413.
async fn read_capped(mut body: Incoming) -> Result<Bytes> {
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

async fn forget_run(state: &Arc<State>, id: &str) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let registry = Arc::clone(&state.registry);
    let run = blocking(move || Ok(registry.forget(&id)?)).await?;
    eprintln!("lab: forgot run {}", run.id);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "forgotten": runs::run_json(&run) }),
    ))
}

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
        Some("json") => "application/json",
        Some("log" | "csv" | "jsonl" | "toml" | "md" | "txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn artifact(
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
    let name = state.allowlist.check(&name)?;
    let registry = Arc::clone(&state.registry);
    let open_name = name.clone();
    let artifact = blocking(move || {
        let run = registry.get(&id)?;
        Ok(RunRoot::open_ambient(&run.root)?.open_artifact(&open_name)?)
    })
    .await?;
    let kind = content_type(&name);
    let disposition = (kind == "application/octet-stream").then(|| "attachment".to_owned());
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

fn boundary() -> Result<String> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|_| internal("OS random number generator"))?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}
