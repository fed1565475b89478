//! Routing and the handlers of SPEC §4.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::State;
use crate::exports;
use crate::guard::Checked;
use crate::jobs;
use crate::response::{ApiError, Body, json_response};
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
    let is_read = method == Method::GET || method == Method::HEAD;
    if path == "/" {
        return if is_read {
            Ok(match &checked.credential {
                // A browser's page carries its own session's token; a
                // script (Bearer) needs none and gets the server's, which
                // no mutation accepts.
                Some(crate::auth::Credential::Cookie { token, .. }) => {
                    ui::page(ui::index_html(token, &state.prefix), &method)
                }
                Some(crate::auth::Credential::Bearer) => index(state, &method),
                // No credential: the login shell, holding no token and no data.
                None => ui::page(ui::login_html(&state.prefix), &method),
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
    // Right after the server started, what names runs waits for the first
    // walk of the allowed roots (no longer than the gate's limit after the
    // start; the status page, which says how the walk goes, no longer than
    // 0.75 s after it).
    match segments.first() {
        Some(&("runs" | "columns" | "exports")) => {
            state
                .lab
                .walks()
                .first_done(lab_core::gate::STUCK_AFTER)
                .await;
        }
        Some(&"status") => {
            state
                .lab
                .walks()
                .first_done(Duration::from_millis(750))
                .await
        }
        _ => {}
    }
    match segments.as_slice() {
        ["session"] => match method {
            Method::POST => create_session(state, req, checked).await,
            Method::DELETE => Ok(delete_session(state, req.headers())),
            _ => Ok(ApiError::method_not_allowed("POST, DELETE")),
        },
        ["columns"] => match method {
            Method::GET | Method::HEAD => runs::columns(state).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["status"] => match method {
            Method::GET | Method::HEAD => status(state).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["runs"] => match method {
            Method::GET | Method::HEAD => runs::list(state, req.uri().query(), &checked.urls).await,
            Method::POST => runs::import(state, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD, POST")),
        },
        ["runs", id] => match method {
            Method::GET | Method::HEAD => runs::show(state, parse_id(id)?, &checked.urls).await,
            Method::DELETE => runs::forget(state, id).await,
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
        ["runs", id, "metrics", _, ..] => {
            if !is_read {
                return Ok(ApiError::method_not_allowed("GET, HEAD"));
            }
            let prefix = format!("runs/{id}/metrics/");
            let raw_name = &api[prefix.len()..];
            crate::metrics::metric(state, req.headers(), id, raw_name, req.uri().query()).await
        }
        ["runs", id, "images", file, offset, n] => match method {
            Method::GET | Method::HEAD => {
                crate::artifacts::tensorboard_image(state, &method, id, file, offset, n).await
            }
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["runs", id, "export"] => match method {
            Method::POST => exports::create(state, id, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("POST")),
        },
        ["exports"] => match method {
            Method::GET | Method::HEAD => exports::list(state, &checked.urls).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["exports", file] => match method {
            Method::GET | Method::HEAD => {
                exports::download(state, &method, req.headers(), file).await
            }
            _ => Ok(ApiError::method_not_allowed("GET, HEAD")),
        },
        ["jobs"] => match method {
            Method::GET | Method::HEAD => jobs::list(state, &checked.urls).await,
            Method::POST => jobs::create(state, req, checked).await,
            _ => Ok(ApiError::method_not_allowed("GET, HEAD, POST")),
        },
        ["jobs", id] => match method {
            Method::GET | Method::HEAD => jobs::show(state, id, &checked.urls).await,
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

fn index(state: &State, method: &Method) -> Response<Body> {
    ui::page(ui::index_html(&state.token, &state.prefix), method)
}

async fn status(state: &Arc<State>) -> Result<Response<Body>> {
    let registry = Arc::clone(state.lab.registry());
    let runs = blocking(move || Ok(registry.runs()?.len())).await?;
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
                "available": state.lab.runner().enabled && state.lab.runner().unavailable.is_none(),
                "unavailable": state.lab.runner().unavailable,
                "limits": state.lab.runner().limits,
            },
            "counts": { "runs": runs },
            "discovery_warnings": state.lab.discovery_warnings(),
            "discovery_stuck_secs": state.lab.walks().stuck_for().map(|d| d.as_secs()),
            "allowed_roots": roots,
            "artifact_allowlist": state.lab.allowlists().base().patterns().iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "format_artifacts": lab_core::formats::Format::ALL
                .iter()
                .map(|f| (f.as_str(), f.artifact_patterns()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        }),
    ))
}
