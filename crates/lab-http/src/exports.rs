//! Export routes: `POST /api/runs/{id}/export`, `GET /api/exports`,
//! `GET /api/exports/{file}`.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use lab_core::ExportError;
use lab_fs::bundle::{BundleError, BundleName};
use serde_json::json;

use crate::State;
use crate::artifacts::file_response;
use crate::errors::internal;
use crate::guard::Checked;
use crate::request::{ReqBody, Result, blocking, parse_id, read_json};
use crate::response::{ApiError, Body, Code, json_response};
use crate::signed::{Urls, export_path};

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::InvalidName(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidBundleName,
                format!("invalid bundle name: {reason}"),
            ),
            BundleError::AlreadyExists => ApiError::new(
                StatusCode::CONFLICT,
                Code::BundleExists,
                "a bundle with this name exists already; choose another name",
            ),
            BundleError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                Code::BundleNotFound,
                "no such bundle",
            ),
            BundleError::Fs(e) => e.into(),
            other => internal(&other.to_string()),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NotConfigured => not_configured(),
            ExportError::InProgress => ApiError::new(
                StatusCode::CONFLICT,
                Code::ExportInProgress,
                "an export of this run is being written; try again when it is done",
            ),
            ExportError::Registry(e) => e.into(),
            ExportError::Bundle(e) => e.into(),
        }
    }
}

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        Code::ExportsNotConfigured,
        "this server has no exports directory",
    )
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    #[serde(default)]
    name: Option<String>,
}

fn exports_dir(state: &State) -> Result<&lab_fs::bundle::ExportsDir> {
    Ok(state.lab.exports()?)
}

pub(crate) async fn create(
    state: &Arc<State>,
    id: &str,
    req: Request<ReqBody>,
    checked: Checked,
) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    exports_dir(state)?;
    let urls = checked.urls.clone();
    let body: ExportBody = if checked.has_body {
        read_json(state, req, &checked).await?
    } else {
        ExportBody::default()
    };
    let lab = Arc::clone(&state.lab);
    let info = blocking(move || Ok(lab.export(&id, body.name.as_deref())?)).await?;
    tracing::info!(
        "exported {} to {} ({} bytes)",
        info.manifest.source_run,
        info.name.as_str(),
        info.size
    );
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "file": info.name.as_str(),
            "url": urls.url(&export_path(info.name.as_str())),
            "size": info.size,
            "files": info.manifest.files.len(),
        }),
    ))
}

pub(crate) async fn list(state: &Arc<State>, urls: &Urls) -> Result<Response<Body>> {
    exports_dir(state)?;
    let state = Arc::clone(state);
    let bundles = blocking(move || Ok(exports_dir(&state)?.list()?)).await?;
    let items: Vec<serde_json::Value> = bundles
        .iter()
        .map(|b| {
            json!({
                "file": b.name.as_str(),
                "url": urls.url(&export_path(b.name.as_str())),
                "size": b.len,
                "modified": b.modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "exports": items })))
}

pub(crate) async fn download(
    state: &Arc<State>,
    method: &Method,
    headers: &HeaderMap,
    file: &str,
) -> Result<Response<Body>> {
    exports_dir(state)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::BundleNotFound,
            "no such bundle",
        )
    };
    // Bundle names are plain ASCII, so no decoding: anything else is not ours.
    let name = BundleName::parse(file).map_err(|_| not_found())?;
    if name.as_str() != file {
        return Err(not_found());
    }
    let state = Arc::clone(state);
    let open = name.clone();
    let bundle = blocking(move || Ok(exports_dir(&state)?.open(&open)?)).await?;
    file_response(
        method,
        headers,
        bundle,
        "application/x-tar",
        Some(format!("attachment; filename=\"{}\"", name.as_str())),
    )
}
