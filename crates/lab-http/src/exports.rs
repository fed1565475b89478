//! Export routes: `POST /api/runs/{id}/export`, `GET /api/exports`,
//! `GET /api/exports/{file}`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use lab_fs::bundle::{BundleError, BundleName, ExportsDir, default_bundle_name};
use serde_json::json;

use crate::State;
use crate::artifacts::file_response;
use crate::errors::internal;
use crate::guard::Checked;
use crate::request::{Result, blocking, parse_id, read_json};
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

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    #[serde(default)]
    name: Option<String>,
}

fn exports_dir(state: &State) -> Result<&lab_fs::bundle::ExportsDir> {
    state.exports.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            Code::ExportsNotConfigured,
            "this server has no exports directory",
        )
    })
}

pub(crate) async fn create(
    state: &Arc<State>,
    id: &str,
    req: Request<Incoming>,
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
    let name = match body.name {
        Some(name) => BundleName::parse(&name)?,
        None => BundleName::parse(&default_bundle_name(id.as_str(), SystemTime::now()))?,
    };
    // Not through the run gate: a bundle of a 3 GiB video legitimately
    // takes longer than the gate's 5 s, and its reads are lab-fs's
    // non-blocking opens of regular files and a private SQLite snapshot.
    // One export of a run at a time: each holds a blocking thread for as
    // long as its bundle takes.
    if !crate::readers::lock(&state.exporting).insert(id.clone()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::ExportInProgress,
            "an export of this run is being written; try again when it is done",
        ));
    }
    let state = Arc::clone(state);
    let info = blocking(move || {
        let _done = Exporting(&state, id.clone());
        let exports = exports_dir(&state)?;
        let run = state.registry.get(&id)?;
        Ok(export_run(
            exports,
            &name,
            &run,
            state.allowlists.base(),
            &state.export_filter,
            &state.formats,
        )?)
    })
    .await?;
    eprintln!(
        "lab: exported {} to {} ({} bytes)",
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

/// Bundles `run` as `name` into `exports`: its allowlisted artifacts (a
/// store's run: from its own artifact directory) and, for a run of another
/// format, its params and series in the Lab's own form (`run.json`,
/// `metrics.jsonl`), so the bundle reimports whole. Blocking. The server's
/// route and `lab export` both call this.
pub fn export_run(
    exports: &ExportsDir,
    name: &BundleName,
    run: &lab_registry::RunRecord,
    allowlist: &lab_fs::Allowlist,
    filter: &dyn lab_fs::bundle::ExportFilter,
    limits: &lab_formats::Limits,
) -> std::result::Result<lab_fs::bundle::BundleInfo, lab_fs::bundle::BundleError> {
    let format = crate::discovery::format_of(run);
    let allow = allowlist.plus(format.artifact_patterns())?;
    let root = lab_fs::RunRoot::open_ambient(&run.root)?;
    let mut reader = lab_formats::RunReader::new_entry_with(format, run.entry.as_deref(), limits);
    reader.refresh(&lab_formats::LocalStorage::new(&root));
    // A store's run bundles its own artifact directory; when its store
    // names none inside the store (or one that leaves it), the bundle holds
    // its params and series alone.
    let nothing = lab_fs::Allowlist::only::<&str>(&[])?;
    let (source, allow) = match &run.entry {
        None => (root, &allow),
        Some(_) => match reader.info().artifact_dir.map(|d| root.open_sub(&d)) {
            Some(Ok(dir)) => (dir, &allow),
            _ => (root, &nothing),
        },
    };
    let present = source.list_artifacts(allow)?;
    let extra: Vec<(lab_fs::ArtifactName, Vec<u8>)> =
        lab_formats::lab_form(&reader, |n| present.iter().any(|a| a.name.as_str() == n))
            .into_iter()
            .filter_map(|(n, bytes)| Some((lab_fs::ArtifactName::parse(&n).ok()?, bytes)))
            .collect();
    exports.write_bundle(name, &source, allow, run.id.as_str(), filter, &extra)
}

/// Marks the export of a run done when dropped (written, failed or
/// panicked).
struct Exporting<'a>(&'a State, lab_registry::RunId);

impl Drop for Exporting<'_> {
    fn drop(&mut self) {
        crate::readers::lock(&self.0.exporting).remove(&self.1);
    }
}
