//! Run routes: the list (query parsing, extra fields, URLs), one run's
//! details, the columns, import and forget — wire shapes over lab-core's
//! [`Lab`](lab_core::Lab).

use std::sync::Arc;

use http::{Response, StatusCode};
use lab_core::Run;
use lab_core::discovery::ImportError;
use lab_core::discovery::log_safe;
use lab_registry::RunId;
use serde_json::{Value, json};

use crate::State;
use crate::guard::Checked;
use crate::query::{Field, ListError, QueryError, parse_list_query};
use crate::request::{ReqBody, Result, blocking, gated, parse_id, read_json};
use crate::response::{ApiError, Body, Code, json_response};
use crate::signed::Urls;

/// Adds the URLs a page's elements load to a run's JSON (a summary or the
/// details), written by `urls`: `video_url` and `thumbnail_url` beside
/// `video` and `thumbnail`, `url` on each artifact, and on each media item
/// (an artifact's, or a TensorBoard image's own).
pub(crate) fn add_urls(value: &mut Value, run: &str, urls: &Urls) {
    let Value::Object(object) = value else {
        return;
    };
    for (field, url_field) in [("video", "video_url"), ("thumbnail", "thumbnail_url")] {
        if let Some(name) = object.get(field).and_then(Value::as_str) {
            let url = urls.url(&crate::signed::artifact_path(run, name));
            object.insert(url_field.to_owned(), Value::String(url));
        }
    }
    if let Some(Value::Array(artifacts)) = object.get_mut("artifacts") {
        for artifact in artifacts {
            if let Some(name) = artifact.get("name").and_then(Value::as_str) {
                let url = urls.url(&crate::signed::artifact_path(run, name));
                artifact["url"] = Value::String(url);
            }
        }
    }
    if let Some(Value::Array(media)) = object.get_mut("media") {
        for item in media {
            let path = match (
                item.get("url").and_then(Value::as_str),
                item.get("name").and_then(Value::as_str),
            ) {
                (Some(own), _) => own.to_owned(),
                (None, Some(name)) => crate::signed::artifact_path(run, name),
                (None, None) => continue,
            };
            item["url"] = Value::String(urls.url(&path));
        }
    }
    // A table is served where it is an artifact the run lists (its size
    // known); else its `url` is null and the page says why.
    if let Some(Value::Array(tables)) = object.get_mut("tables") {
        for table in tables {
            let url = match (
                table.get("name").and_then(Value::as_str),
                table.get("size").and_then(Value::as_u64),
            ) {
                (Some(name), Some(_)) => {
                    Value::String(urls.url(&crate::signed::artifact_path(run, name)))
                }
                _ => Value::Null,
            };
            table["url"] = url;
        }
    }
}

/// The basic fields of a run (what an import or forget answers with).
pub(crate) fn run_json(run: &Run) -> Value {
    json!({
        "id": run.id,
        "name": run.dir_name(),
        "path": run.root.display().to_string(),
        "imported_at": run.imported_at,
        "format": run.format.as_str(),
    })
}

pub(crate) fn bad(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, Code::BadQuery, message)
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Query(q) => q.into(),
            ListError::Filter(f) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::BadFilter,
                format!("bad filter: {} at character {}", f.message, f.position),
            ),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(QueryError(message): QueryError) -> Self {
        bad(message)
    }
}

/// `GET /api/runs?limit=&cursor=&q=&tag=&has_video=&format=&filter=&sort=&order=&fields=`.
pub(crate) async fn list(
    state: &Arc<State>,
    query: Option<&str>,
    urls: &Urls,
) -> Result<Response<Body>> {
    let (wanted, fields) = parse_list_query(query.unwrap_or(""))?;
    let lab = Arc::clone(&state.lab);
    let offset = wanted.offset;
    let page = blocking(move || Ok(lab.list(&wanted)?)).await?;
    let (rows, total) = (page.rows, page.total);
    let items: Vec<Value> = rows
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(&**s).unwrap_or(Value::Null);
            add_urls(&mut v, s.id.as_str(), urls);
            if !fields.is_empty() {
                let mut params = serde_json::Map::new();
                let mut metrics = serde_json::Map::new();
                for f in &fields {
                    match f {
                        Field::Param(k) => {
                            params.insert(k.clone(), s.param(k).cloned().unwrap_or(Value::Null));
                        }
                        Field::Metric(k) => {
                            metrics.insert(k.clone(), json!(s.last(k)));
                        }
                    }
                }
                v["params"] = Value::Object(params);
                v["metrics"] = Value::Object(metrics);
            }
            v
        })
        .collect();
    let end = offset + items.len();
    let next = (end < total).then(|| end.to_string());
    Ok(json_response(
        StatusCode::OK,
        &json!({ "runs": items, "next_cursor": next, "total": total }),
    ))
}

/// `GET /api/columns`: the param keys and metric names the runs have,
/// each with how many runs have it, most common first.
pub(crate) async fn columns(state: &Arc<State>) -> Result<Response<Body>> {
    let lab = Arc::clone(&state.lab);
    let body = blocking(move || Ok(lab.columns()?)).await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/experiments`: every experiment of the runs the list's query
/// (`?q=`, `?filter=`, `?format=`, …; its paging aside) holds, with how
/// many runs each has and when its newest was created.
pub(crate) async fn experiments(state: &Arc<State>, query: Option<&str>) -> Result<Response<Body>> {
    let (wanted, _) = parse_list_query(query.unwrap_or(""))?;
    let lab = Arc::clone(&state.lab);
    let list = blocking(move || Ok(lab.experiments(&wanted)?)).await?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::to_value(list).unwrap_or(Value::Null),
    ))
}

/// `GET /api/runs/{id}`: the summary, params, metric names, media,
/// errors and artifacts.
pub(crate) async fn show(state: &Arc<State>, id: RunId, urls: &Urls) -> Result<Response<Body>> {
    let lab = Arc::clone(&state.lab);
    let run = blocking(move || Ok(lab.run(&id)?)).await?;
    let read = state.lab.details_of(&run);
    let mut details = gated(state, &run.id, move || {
        read().map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                Code::RunUnavailable,
                lab_core::summaries::unavailable_reason(&e),
            )
        })
    })
    .await?;
    for m in details.media.iter_mut().filter(|m| m.embedded) {
        m.url = Some(crate::signed::image_path(run.id.as_str(), &m.artifact));
    }
    let mut body = serde_json::to_value(&details).unwrap_or(Value::Null);
    add_urls(&mut body, run.id.as_str(), urls);
    // The runs this run's job wrote beneath it, each a run of its own.
    let lab = Arc::clone(&state.lab);
    let parent = run.id.clone();
    let children = blocking(move || Ok(lab.children(&parent)?)).await?;
    body["children"] = serde_json::to_value(children).unwrap_or(Value::Null);
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    path: String,
    #[serde(default)]
    id: Option<String>,
}

/// `POST /api/runs`: import a directory — the run it is, or each run of a
/// store beneath it. Answers with the first run's fields and `runs`, all.
pub(crate) async fn import(
    state: &Arc<State>,
    req: http::Request<ReqBody>,
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
    let lab = Arc::clone(&state.lab);
    let runs = blocking(move || {
        let path = std::path::PathBuf::from(&body.path);
        lab.import(&path, body.id.as_deref()).map_err(|e| {
            match e {
                // Inside a root but unreadable: the client's own file
                // permissions, not a server fault.
                ImportError::Registry(lab_registry::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        Code::PermissionDenied,
                        "the Lab may not read that directory",
                    )
                }
                ImportError::Registry(other) => ApiError::from(other),
                e @ ImportError::IdForMany(_) => {
                    ApiError::new(StatusCode::BAD_REQUEST, Code::IdForManyRuns, e.to_string())
                }
                // The directory is inside a root and readable, but no run
                // of any format: what was looked for is in the message.
                e @ ImportError::NoRunFound { .. } => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Code::NoRunFound,
                    e.to_string(),
                ),
            }
        })
    })
    .await?;
    for run in &runs {
        tracing::info!(
            "imported run {} from {}",
            run.id,
            log_safe(run.root.display())
        );
    }
    let mut body = runs.first().map_or_else(|| json!({}), run_json);
    body["runs"] = Value::Array(runs.iter().map(run_json).collect());
    Ok(json_response(StatusCode::CREATED, &body))
}

/// `DELETE /api/runs/{id}`: forget a run (its files are untouched; the
/// walk does not bring it back).
pub(crate) async fn forget(state: &Arc<State>, id: &str) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let lab = Arc::clone(&state.lab);
    let run = blocking(move || Ok(lab.forget(&id)?)).await?;
    tracing::info!("forgot run {}", run.id);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "forgotten": run_json(&run) }),
    ))
}
