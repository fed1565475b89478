//! Routing and the handlers of SPEC §4.

use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::State;
use crate::exports;
use crate::guard::Checked;
use crate::jobs;
use crate::response::{ApiError, Body, json_response};
use crate::route::{Resource, Route, RouteError};
use crate::runs;
use crate::ui;

use crate::artifacts::artifact;
pub(crate) use crate::request::{ReqBody, Result, blocking, parse_id};
use crate::session::{create_session, delete_session};

pub(crate) async fn route(
    state: &Arc<State>,
    req: Request<ReqBody>,
    checked: Checked,
) -> Result<Response<Body>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let resource = match Resource::parse(&path) {
        Ok(resource) => resource,
        Err(refused) => return refuse(refused),
    };
    // Right after the server started, what names runs waits for the first
    // walk of the allowed roots (no longer than the gate's limit after the
    // start; the status page, which says how the walk goes, no longer than
    // 0.75 s after it).
    if let Some(wait) = resource.first_walk_wait() {
        state.lab.walks().first_done(wait).await;
    }
    let route = match resource.route(&method) {
        Ok(route) => route,
        Err(refused) => return refuse(refused),
    };
    match route {
        Route::Page => Ok(match &checked.credential {
            // A browser's page carries its own session's token; a script
            // (Bearer) needs none and gets the server's, which no mutation
            // accepts.
            Some(crate::auth::Credential::Cookie { token, .. }) => {
                ui::page(ui::index_html(token, &state.prefix), &method)
            }
            Some(crate::auth::Credential::Bearer) => index(state, &method),
            // No credential: the login shell, holding no token and no data.
            None => ui::page(ui::login_html(&state.prefix), &method),
        }),
        Route::Asset { name } => ui::asset(name, &method).ok_or_else(ApiError::no_route),
        Route::SignIn => create_session(state, req, checked).await,
        Route::SignOut => Ok(delete_session(state, req.headers())),
        Route::Columns => runs::columns(state).await,
        Route::Experiments => runs::experiments(state, req.uri().query()).await,
        Route::Status => status(state).await,
        Route::ListRuns => runs::list(state, req.uri().query(), &checked.urls).await,
        Route::ImportRun => runs::import(state, req, checked).await,
        Route::ShowRun { run } => runs::show(state, parse_id(run)?, &checked.urls).await,
        Route::ForgetRun { run } => runs::forget(state, run).await,
        Route::Artifact { run, raw_name } => {
            artifact(state, &method, req.headers(), run, raw_name).await
        }
        Route::Metric { run, raw_name } => {
            crate::metrics::metric(state, req.headers(), run, raw_name, req.uri().query()).await
        }
        Route::Histogram { run, raw_name } => {
            crate::histograms::histogram(state, run, raw_name, req.uri().query()).await
        }
        Route::Image {
            run,
            file,
            offset,
            n,
        } => crate::artifacts::tensorboard_image(state, &method, run, file, offset, n).await,
        Route::ExportRun { run } => exports::create(state, run, req, checked).await,
        Route::ListExports => exports::list(state, &checked.urls).await,
        Route::Bundle { file } => exports::download(state, &method, req.headers(), file).await,
        Route::ListJobs => jobs::list(state, &checked.urls).await,
        Route::StartJob => jobs::create(state, req, checked).await,
        Route::ShowJob { job } => jobs::show(state, job, &checked.urls).await,
        Route::JobLog { job } => jobs::log(state, req.headers(), job).await,
        Route::CancelJob { job } => jobs::cancel(state, job).await,
    }
}

/// 404 `not_found`, or 405 `method_not_allowed` with `Allow`.
fn refuse(refused: RouteError) -> Result<Response<Body>> {
    match refused {
        RouteError::NotFound => Err(ApiError::no_route()),
        RouteError::MethodNotAllowed { allow } => Ok(ApiError::method_not_allowed(allow)),
    }
}

fn index(state: &State, method: &Method) -> Response<Body> {
    ui::page(ui::index_html(&state.token, &state.prefix), method)
}

async fn status(state: &Arc<State>) -> Result<Response<Body>> {
    let lab = Arc::clone(&state.lab);
    let runs = blocking(move || Ok(lab.runs()?.len())).await?;
    // Each object-storage root: whether it answers, and why not (the
    // store's words: never a key).
    let s3_roots: Vec<Value> = state
        .lab
        .s3_roots()
        .iter()
        .map(|root| {
            let reason = root.unavailable();
            json!({"url": root.url().to_string(), "available": reason.is_none(), "reason": reason})
        })
        .collect();
    let roots: Vec<String> = state
        .lab
        .registry()
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
                "enabled": state.lab.runner().enabled,
                "network_allowed": state.lab.runner().network_allowed,
                "workflow_exec_allowed": state.lab.runner().workflow_exec_allowed,
                "programs": state.lab.runner().programs,
                "env_allow": state.lab.runner().env_allow,
                "isolation": state.lab.runner().isolation,
                "available": state.lab.runner().enabled && state.lab.runner_unavailable().is_none(),
                "unavailable": state.lab.runner_unavailable(),
                "backend": state.lab.runner_backend(),
                "limits": state.lab.runner().limits,
            },
            "counts": { "runs": runs },
            "discovery_warnings": state.lab.discovery_warnings(),
            "unrecognised": state.lab.unrecognised(),
            "discovery_stuck_secs": state.lab.walks().stuck_for().map(|d| d.as_secs()),
            "allowed_roots": roots,
            "s3_roots": s3_roots,
            "artifact_allowlist": state.lab.allowlists().base().patterns().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "formats": lab_core::formats::Format::ALL
                .iter()
                .map(|f| json!({"id": f.as_str(), "label": f.label()}))
                .collect::<Vec<_>>(),
            "limits": {
                "runs_page": lab_core::list::MAX_PAGE,
                "fields": lab_core::list::MAX_FIELDS,
            },
            "format_artifacts": lab_core::formats::Format::ALL
                .iter()
                .map(|f| (f.as_str(), f.artifact_patterns()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        }),
    ))
}
