//! A host application that mounts the Lab under `/lab/` beside its own
//! routes, with hyper alone (axum's `Router::nest_service("/lab", lab)`
//! does the same in one line).
//!
//! ```text
//! cargo run -p lab-http --example mount -- DATA_DIR RUNS_DIR
//! ```
//!
//! It prints the login link (`http://127.0.0.1:PORT/lab/#key=…`). The
//! Lab's guard, sessions, signatures and security headers apply to every
//! request the host hands it; its cookie is scoped to `/lab/`, so the
//! host's own routes never receive it. Scripts the host serves on the same
//! origin could still call the Lab's API with that cookie: mount the Lab
//! beside routes you trust as much as the Lab, or give it a port of its
//! own (`lab_http::Builder`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tower_service::Service;

/// Where the host mounts the Lab.
pub const PREFIX: &str = "/lab";

/// Serves `listener` forever: `/lab/…` goes to the Lab with the prefix
/// stripped (`/lab` alone is sent on to `/lab/`), `/hello` is the host's
/// own route (it says which cookies it was sent), anything else 404.
pub async fn host(listener: tokio::net::TcpListener, lab: lab_http::LabService) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let lab = lab.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(req, lab.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(
    req: Request<Incoming>,
    mut lab: lab_http::LabService,
) -> Result<Response<lab_http::Body>, Infallible> {
    // Only origin-form targets (`/path?query`): an absolute-form one
    // (`GET http://elsewhere/lab/…`) would lose its authority below.
    if req.uri().authority().is_some() {
        return Ok(text(StatusCode::BAD_REQUEST, "origin-form targets only"));
    }
    let path = req.uri().path().to_owned();
    if path == PREFIX {
        let mut moved = text(StatusCode::PERMANENT_REDIRECT, "");
        moved.headers_mut().insert(
            http::header::LOCATION,
            http::HeaderValue::from_static("/lab/"),
        );
        return Ok(moved);
    }
    if let Some(rest) = path.strip_prefix(PREFIX).filter(|r| r.starts_with('/')) {
        // The Lab sees the path beneath the prefix, query and all.
        let (mut parts, body) = req.into_parts();
        let inner = match parts.uri.query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_owned(),
        };
        parts.uri = inner
            .parse::<Uri>()
            .unwrap_or_else(|_| Uri::from_static("/"));
        return lab.call(Request::from_parts(parts, body)).await;
    }
    if path == "/hello" {
        let cookies = req
            .headers()
            .get(http::header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return Ok(text(
            StatusCode::OK,
            &format!("hello from the host; cookies sent here: [{cookies}]"),
        ));
    }
    Ok(text(StatusCode::NOT_FOUND, "not the host's"))
}

fn text(status: StatusCode, body: &str) -> Response<lab_http::Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

#[allow(dead_code)] // the test drives `host`, not `main`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(data), Some(runs)) = (args.next(), args.next()) else {
        return Err("usage: mount DATA_DIR RUNS_DIR".into());
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let runs = std::fs::canonicalize(runs)?;
        let registry =
            lab_registry::Registry::open(std::path::Path::new(&data), std::slice::from_ref(&runs))?;
        let key = lab_http::AccessKey::generate()?;
        let mut config = lab_http::Config::new(
            Arc::new(registry),
            lab_fs::Allowlist::default(),
            key.clone(),
        );
        // Walk the allowed root now and every 5 s, as `lab serve` does.
        config.discover_every = Some(std::time::Duration::from_secs(5));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        let lab = lab_http::LabService::new(config, &hosts, PREFIX)?;
        println!("open http://127.0.0.1:{port}{PREFIX}/#key={}", key.as_str());
        host(listener, lab).await;
        Ok(())
    })
}
