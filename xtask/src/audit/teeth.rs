//! The gate has teeth: the audit's probes, run against a deliberately
//! insecure stand-in server (a few lines of hyper that bind 0.0.0.0, send
//! `Access-Control-Allow-Origin: *`, serve any path, ignore the token, read
//! whole files into memory and know no Range), must each report FAIL.
#![cfg(test)]

use std::convert::Infallible;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::probes::{self, DECOY_CANARY, OUTSIDE_CANARY, Target, Verdict};

const BIG: u64 = 256 << 20;

fn naive_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&path[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Everything the seed's threat model warns about, in one handler.
async fn insecure(
    base: PathBuf,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = naive_decode(req.uri().path());
    let file = match path
        .strip_prefix("/api/runs/")
        .and_then(|rest| rest.split_once("/artifacts/"))
    {
        Some((run, name)) => base.join("runs").join(run).join(name),
        None => base.join(path.trim_start_matches('/')),
    };
    let (status, body) =
        if req.method() == hyper::Method::GET || req.method() == hyper::Method::HEAD {
            match std::fs::read(&file) {
                Ok(bytes) => (200, bytes),
                Err(_) => (404, b"not found".to_vec()),
            }
        } else {
            // Mutations: accepted without any token.
            (200, b"{\"ok\": true}".to_vec())
        };
    let response = Response::builder()
        .status(status)
        .header("Access-Control-Allow-Origin", "*")
        .header("Access-Control-Allow-Credentials", "true")
        .header("Access-Control-Allow-Methods", "*")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}

#[test]
fn every_probe_fails_against_an_insecure_server() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let good = base.join("runs/good");
    std::fs::create_dir_all(good.join(".git")).unwrap();
    std::fs::create_dir_all(base.join("runs/big")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(good.join("output.mp4"), vec![1u8; 10_000]).unwrap();
    for decoy in [".env", "secret.txt", ".git/config", "notes.html"] {
        std::fs::write(good.join(decoy), DECOY_CANARY).unwrap();
    }
    std::fs::write(base.join("outside/secret.txt"), OUTSIDE_CANARY).unwrap();
    std::os::unix::fs::symlink(base.join("outside/secret.txt"), good.join("params.json")).unwrap();
    std::fs::File::create(base.join("runs/big/output.mp4"))
        .unwrap()
        .set_len(BIG)
        .unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("0.0.0.0:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve_base = base.clone();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let base = serve_base.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| insecure(base.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let target = Target {
        port,
        run: "good".into(),
        big_run: "big".into(),
        big_len: BIG,
        pid: std::process::id(),
        key: None,
    };
    let checks = probes::all(&target);
    assert_eq!(checks.len(), 14);
    let passed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict != Verdict::Fail)
        .map(|c| format!("{}: {:?}", c.item, c.evidence))
        .collect();
    assert!(
        passed.is_empty(),
        "probes without teeth:\n{}",
        passed.join("\n")
    );
    runtime.shutdown_background();
}
