//! Routing and the handlers of SPEC §4.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::State;
use crate::exports;
use crate::guard::Checked;
use crate::jobs;
use crate::response::{ApiError, Body, Code, json_response};
use crate::runs;
use crate::ui;

use crate::artifacts::artifact;
pub(crate) use crate::request::{Result, blocking, parse_id, read_json};
use crate::session::{create_session, delete_session};

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
                Some(crate::auth::Credential::Cookie { token, .. }) => {
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

fn index(state: &State, method: &Method) -> Response<Body> {
    ui::page(ui::index_html(&state.token), method)
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
