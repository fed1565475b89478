//! lab-http over a real loopback socket, speaking raw bytes: the guard, the
//! security headers, the read API, artifact streaming, hostile clients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server on a free loopback port, with runs built at test time.
struct Lab {
    port: u16,
    token: String,
    /// The access key, the session cookie (`name=value`) it bought and
    /// the page binding it was bought with; every request carries the
    /// cookie and the binding (as the UI's `api()` does) unless it sets
    /// its own `Cookie` or `Authorization` header.
    key: String,
    cookie: String,
    binding: String,
    base: PathBuf,
    run_id: String,
    _tmp: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Request headers as written in a case table.
type Headers<'a> = Vec<(&'a str, &'a str)>;

const SECRET: &str = "TOP-SECRET-CONTENT-do-not-serve";
/// The page binding the test client signs in with.
const BINDING: &str = "test-page-binding-0123456789_abcdef";
/// What `outside/passwd` holds: `root:x:` as `/etc/passwd` starts.
const PASSWD: &str = "root:x:0:0:canary:/root:/bin/sh\n";

async fn start_with(limits: lab_http::Limits, allowed_hosts: Vec<String>) -> Lab {
    start_on(limits, allowed_hosts, Ids::Now).await
}

/// Which ids the runs `demo` and `other` are registered with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// `demo` and `other`, given on import.
    Now,
    /// `demo-3f9c2d` and `other-00aa11`, by a data dir as a version before
    /// stable ids left it (a version 2 snapshot): `run_id` is `demo`'s
    /// migrated id.
    BeforeStableIds,
}

async fn start_on(limits: lab_http::Limits, allowed_hosts: Vec<String>, ids: Ids) -> Lab {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let runs = base.join("runs");
    let run = runs.join("demo");
    std::fs::create_dir_all(run.join("videos")).unwrap();
    std::fs::create_dir_all(runs.join("other")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    let video: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(run.join("output.mp4"), &video).unwrap();
    std::fs::write(run.join("videos/a b.mp4"), b"0123456789").unwrap();
    std::fs::write(
        run.join("run.toml"),
        "name = \"Demo run\"\ntags = [\"x\"]\n",
    )
    .unwrap();
    std::fs::write(run.join("stdout.log"), b"").unwrap();
    std::fs::write(run.join("stderr.log.txt"), b"decoy").unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"aws\": \"AKIAIOSFODNN7EXAMPLE\"}\n",
    )
    .unwrap();
    std::fs::write(run.join("notes.md"), "<script>alert(1)</script>").unwrap();
    std::fs::write(run.join(".env"), SECRET).unwrap();
    std::fs::write(run.join("secret.txt"), SECRET).unwrap();
    std::fs::write(base.join("outside/secret.txt"), SECRET).unwrap();
    // A stand-in for /etc/passwd: links lead only into the temp directory,
    // never to a file of the machine (a test run as root could harm it).
    std::fs::write(base.join("outside/passwd"), PASSWD).unwrap();
    std::fs::write(runs.join("other/summary.json"), SECRET).unwrap();
    // Its own run file makes `other` a run (SPEC §6).
    std::fs::write(runs.join("other/run.json"), "{}").unwrap();
    symlink(base.join("outside/secret.txt"), run.join("params.json")).unwrap();
    symlink("../other/summary.json", run.join("summary.json")).unwrap();
    symlink(base.join("outside/passwd"), run.join("stderr.log")).unwrap();
    symlink("output.mp4", run.join("video.mp4")).unwrap();
    if ids == Ids::BeforeStableIds {
        let old = serde_json::json!({"version": 2, "forgotten": [], "roots": [], "runs": [
            {"id": "demo-3f9c2d", "root": run, "imported_at": 5, "format": "lab"},
            {"id": "other-00aa11", "root": runs.join("other"), "imported_at": 5, "format": "lab"},
        ]});
        std::fs::create_dir_all(base.join("data")).unwrap();
        std::fs::write(base.join("data/registry.json"), old.to_string()).unwrap();
    }
    let registry =
        lab_registry::Registry::open(&base.join("data"), std::slice::from_ref(&runs)).unwrap();
    let run_id = match ids {
        Ids::Now => {
            let id = registry.import(&run, Some("demo")).unwrap().id.to_string();
            registry.import(&runs.join("other"), Some("other")).unwrap();
            id
        }
        Ids::BeforeStableIds => {
            let old = lab_registry::RunId::parse("demo-3f9c2d").unwrap();
            registry.get(&old).unwrap().id.to_string()
        }
    };
    let key = lab_http::AccessKey::generate().unwrap();
    let mut config = lab_http::Config::new(
        Arc::new(registry),
        lab_fs::Allowlist::default(),
        key.clone(),
    );
    config.limits = limits;
    config.exports_dir = Some(base.join("data/exports"));
    config.allowed_hosts = allowed_hosts;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(lab_http::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let mut lab = Lab {
        port,
        token: String::new(),
        key: key.as_str().to_owned(),
        cookie: String::new(),
        binding: BINDING.to_owned(),
        base,
        run_id,
        _tmp: tmp,
        stop: Some(stop),
        task: Some(task),
    };
    let login = lab
        .sign_in(&format!(
            "{{\"key\": \"{}\", \"binding\": \"{BINDING}\"}}",
            lab.key
        ))
        .await;
    assert_eq!(login.status, 204, "{}", login.text());
    lab.cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = lab.get("/").await;
    let marker = "<meta name=\"lab-token\" content=\"";
    let start = page.text().find(marker).expect("token meta") + marker.len();
    lab.token = page.text()[start..start + 64].to_owned();
    lab
}

async fn start() -> Lab {
    start_with(lab_http::Limits::default(), Vec::new()).await
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        v["error"]["code"].as_str().unwrap_or("").to_owned()
    }
}

impl Lab {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends raw bytes and reads one response (the connection is closed by
    /// `Connection: close` or by the server).
    async fn raw(&self, request: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        // The server may answer (and close) before reading everything; the
        // answer is what matters.
        let _ = stream.write_all(request).await;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
            .await
            .expect("the server answered in time")
            .unwrap();
        parse(&buf, request.starts_with(b"HEAD"))
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host()));
        }
        let credentialed = headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("cookie") || n.eq_ignore_ascii_case("authorization")
        });
        if !credentialed && !self.cookie.is_empty() {
            req.push_str(&format!(
                "Cookie: {}\r\nX-Lab-Binding: {}\r\n",
                self.cookie, self.binding
            ));
        }
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes).await
    }

    /// `POST /api/session` with `body`, without the session cookie.
    async fn sign_in(&self, body: &str) -> Reply {
        self.request(
            "POST",
            "/api/session",
            &[("Content-Type", "application/json"), ("Cookie", "")],
            body.as_bytes(),
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"").await
    }

    async fn post_json(&self, path: &str, body: &str) -> Reply {
        let token = self.token.clone();
        self.request(
            "POST",
            path,
            &[
                ("X-Lab-Token", &token),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
    }

    fn artifact(&self, name: &str) -> String {
        format!("/api/runs/{}/artifacts/{name}", self.run_id)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("graceful shutdown finished");
        result.unwrap().unwrap();
    }
}

fn parse(buf: &[u8], head_request: bool) -> Reply {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let body = buf[split + 4..].to_vec();
    if head_request {
        assert!(body.is_empty(), "a HEAD response has no body");
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    assert!(!chunked, "responses are sent with Content-Length");
    let declared = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, len)| len.parse::<usize>().unwrap());
    if let Some(len) = declared
        && !head_request
        && status != 304
    {
        assert_eq!(body.len(), len, "body length matches Content-Length");
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn assert_secure(reply: &Reply, what: &str) {
    for (name, _) in &reply.headers {
        assert!(
            !name.to_ascii_lowercase().starts_with("access-control-"),
            "{what}: CORS header {name}"
        );
    }
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        reply.header("cross-origin-resource-policy"),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{what}");
    let csp = reply.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_ne!(reply.status, 500, "{what}: never a 500 for bad input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers_and_no_cors() {
    let lab = start().await;
    let host = lab.host();
    let token = lab.token.clone();
    let art = lab.artifact("output.mp4");
    let cases: Vec<(&str, String, Headers)> = vec![
        ("GET", "/".into(), vec![]),
        ("HEAD", "/".into(), vec![]),
        ("GET", "/assets/app.js".into(), vec![]),
        ("GET", "/assets/nope.js".into(), vec![]),
        (
            "GET",
            "/api/status".into(),
            vec![("Origin", "http://evil.example")],
        ),
        (
            "GET",
            "/api/runs".into(),
            vec![("Origin", "http://evil.example")],
        ),
        ("GET", "/api/nope".into(), vec![]),
        ("GET", "/nope".into(), vec![]),
        ("PUT", "/api/runs".into(), vec![("X-Lab-Token", &token)]),
        ("GET", "/api/runs".into(), vec![("Host", "evil.example")]),
        (
            "OPTIONS",
            "/api/runs".into(),
            vec![
                ("Origin", "http://evil.example"),
                ("Access-Control-Request-Method", "POST"),
                (
                    "Access-Control-Request-Headers",
                    "x-lab-token, content-type",
                ),
            ],
        ),
        ("GET", art.clone(), vec![("Range", "bytes=0-9")]),
        ("GET", art.clone(), vec![("Range", "bytes=999999-")]),
        ("GET", art.clone(), vec![("Range", "bytes=0-1,5-6")]),
        ("GET", lab.artifact("..%2f..%2fetc%2fpasswd"), vec![]),
        ("POST", "/api/runs".into(), vec![]),
        (
            "GET",
            "/api/runs/demo".into(),
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
        ("GET", "/".into(), vec![("Host", &host)]),
    ];
    for (method, path, headers) in &cases {
        let reply = lab.request(method, path, headers, b"").await;
        assert_secure(
            &reply,
            &format!("{method} {path} {headers:?} -> {}", reply.status),
        );
    }
    let page = lab.get("/").await;
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        !page
            .header("content-security-policy")
            .unwrap()
            .contains("unsafe-inline")
    );
    let api = lab.get("/api/runs").await;
    assert_eq!(api.header("cache-control"), Some("no-store"));
    assert_eq!(api.header("content-type"), Some("application/json"));
    let preflight = lab
        .request(
            "OPTIONS",
            "/api/runs",
            &[("Origin", "http://evil.example")],
            b"",
        )
        .await;
    assert_eq!(preflight.status, 403, "a preflight is never approved");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_before_routing() {
    let lab = start_with(lab_http::Limits::default(), vec!["lab.internal".into()]).await;
    let port = lab.port;
    let refused = [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("127.0.0.2:{port}"),
        format!("0.0.0.0:{port}"),
        "lab.internal:1".to_owned(),
    ];
    for host in &refused {
        for path in ["/", "/api/runs", "/api/runs/demo", "/nope"] {
            let reply = lab.request("GET", path, &[("Host", host)], b"").await;
            assert_eq!(reply.status, 403, "Host {host} {path}");
            assert_eq!(reply.code(), "host_not_allowed");
            assert!(!reply.text().contains("demo"), "nothing routed");
        }
    }
    for host in [
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "lab.internal".to_owned(),
        format!("lab.internal:{port}"),
    ] {
        assert_eq!(
            lab.request("GET", "/api/runs", &[("Host", &host)], b"")
                .await
                .status,
            200,
            "{host}"
        );
    }
    let no_host = lab
        .raw(b"GET /api/runs HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(no_host.status, 400);
    let two = format!(
        "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(lab.raw(two.as_bytes()).await.status, 400);
    let absolute = format!(
        "GET http://evil.example/api/runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(lab.raw(absolute.as_bytes()).await.status, 400);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_to_the_api_are_refused() {
    let lab = start().await;
    for site in ["cross-site", "same-site", "Cross-Site"] {
        let reply = lab
            .request("GET", "/api/runs", &[("Sec-Fetch-Site", site)], b"")
            .await;
        assert_eq!(reply.status, 403, "{site}");
        assert_eq!(reply.code(), "cross_site_request");
        let art = lab
            .request(
                "GET",
                &lab.artifact("output.mp4"),
                &[("Sec-Fetch-Site", site)],
                b"",
            )
            .await;
        assert_eq!(art.status, 403, "{site} artifact");
    }
    for site in ["same-origin", "none"] {
        assert_eq!(
            lab.request("GET", "/api/runs", &[("Sec-Fetch-Site", site)], b"")
                .await
                .status,
            200
        );
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_need_the_token_header_and_nothing_else_will_do() {
    let lab = start().await;
    let body = format!(
        "{{\"path\": \"{}\"}}",
        lab.base.join("runs/other").display()
    );
    let wrong = "0".repeat(64);
    let short = lab.token[..63].to_owned();
    let long = format!("{}0", lab.token);
    let upper = lab.token.to_uppercase();
    let cookie = format!("token={}", lab.token);
    let bearer = format!("Bearer {}", lab.token);
    let json = ("Content-Type", "application/json");
    let cases: Vec<(Headers, &str, &str)> = vec![
        (vec![json], "/api/runs", "missing_token"),
        (
            vec![json, ("X-Lab-Token", &wrong)],
            "/api/runs",
            "bad_token",
        ),
        (
            vec![json, ("X-Lab-Token", &short)],
            "/api/runs",
            "bad_token",
        ),
        (vec![json, ("X-Lab-Token", &long)], "/api/runs", "bad_token"),
        (
            vec![json, ("X-Lab-Token", &upper)],
            "/api/runs",
            "bad_token",
        ),
        (vec![json, ("X-Lab-Token", "")], "/api/runs", "bad_token"),
        (
            vec![
                json,
                ("X-Lab-Token", &lab.token),
                ("X-Lab-Token", &lab.token),
            ],
            "/api/runs",
            "bad_token",
        ),
    ];
    for (headers, path, code) in &cases {
        let reply = lab.request("POST", path, headers, body.as_bytes()).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (403, *code),
            "{headers:?}"
        );
    }
    // The page token is no credential, as a cookie or a Bearer value: 401.
    for headers in [
        vec![json, ("Cookie", cookie.as_str())],
        vec![json, ("Authorization", bearer.as_str())],
        vec![json, ("Cookie", ""), ("X-Lab-Token", lab.token.as_str())],
    ] {
        let reply = lab
            .request("POST", "/api/runs", &headers, body.as_bytes())
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (401, "unauthenticated"),
            "{headers:?}"
        );
    }
    // The access key as Bearer needs no X-Lab-Token: a browser cannot forge it.
    let key = format!("Bearer {}", lab.key);
    let reply = lab
        .request(
            "POST",
            "/api/runs",
            &[json, ("Authorization", &key)],
            body.as_bytes(),
        )
        .await;
    // (The route answers for itself: that run is registered already.)
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (409, "already_registered"),
        "{}",
        reply.text()
    );
    // A token in the query string is never accepted.
    let in_query = format!("/api/runs?token={}&x-lab-token={}", lab.token, lab.token);
    let reply = lab
        .request("POST", &in_query, &[json], body.as_bytes())
        .await;
    assert_eq!(reply.status, 403);
    for method in ["DELETE", "PUT", "PATCH", "OPTIONS"] {
        let reply = lab.request(method, "/api/runs/other", &[], b"").await;
        assert_eq!(reply.status, 403, "{method} without token");
    }
    assert_eq!(
        lab.get("/api/runs/other").await.status,
        200,
        "nothing was forgotten"
    );
    // With the token it works.
    let token = lab.token.clone();
    let reply = lab
        .request("DELETE", "/api/runs/other", &[("X-Lab-Token", &token)], b"")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(lab.get("/api/runs/other").await.status, 404);
    assert!(
        lab.base.join("runs/other/summary.json").exists(),
        "forget never deletes files"
    );
    let reply = lab.post_json("/api/runs", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_bodies_must_be_same_origin_json_and_small() {
    let lab = start().await;
    let token = lab.token.clone();
    let t = ("X-Lab-Token", token.as_str());
    let body = format!(
        "{{\"path\": \"{}\"}}",
        lab.base.join("runs/other").display()
    );
    let origin_ok = format!("http://127.0.0.1:{}", lab.port);
    let origin_https = format!("https://127.0.0.1:{}", lab.port);
    let cases: Vec<(Headers, Vec<u8>, u16, &str)> = vec![
        (
            vec![t],
            body.clone().into_bytes(),
            415,
            "unsupported_media_type",
        ),
        (
            vec![t, ("Content-Type", "text/plain")],
            body.clone().into_bytes(),
            415,
            "unsupported_media_type",
        ),
        (
            vec![t, ("Content-Type", "application/x-www-form-urlencoded")],
            b"path=/x".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            vec![t, ("Content-Type", "multipart/form-data; boundary=x")],
            b"--x--".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            vec![
                t,
                ("Content-Type", "application/json"),
                ("Content-Length", "2000000"),
            ],
            b"{}".to_vec(),
            413,
            "body_too_large",
        ),
        (
            vec![
                t,
                ("Content-Type", "application/json"),
                ("Content-Length", "1048577"),
            ],
            Vec::new(),
            413,
            "body_too_large",
        ),
        (
            vec![t, ("Content-Type", "application/json")],
            b"{not json".to_vec(),
            400,
            "invalid_json",
        ),
        (
            vec![t, ("Content-Type", "application/json")],
            b"{\"path\": 1}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            vec![t, ("Content-Type", "application/json")],
            b"{\"path\": \"/x\", \"evil\": 1}".to_vec(),
            400,
            "invalid_json",
        ),
        (
            vec![t, ("Content-Type", "application/json")],
            b"".to_vec(),
            400,
            "missing_body",
        ),
        (
            vec![
                t,
                ("Content-Type", "application/json"),
                ("Origin", "http://evil.example"),
            ],
            body.clone().into_bytes(),
            403,
            "origin_not_allowed",
        ),
        (
            vec![t, ("Content-Type", "application/json"), ("Origin", "null")],
            body.clone().into_bytes(),
            403,
            "origin_not_allowed",
        ),
        (
            vec![
                t,
                ("Content-Type", "application/json"),
                ("Origin", &origin_https),
            ],
            body.clone().into_bytes(),
            403,
            "origin_not_allowed",
        ),
    ];
    for (headers, payload, status, code) in &cases {
        let reply = lab.request("POST", "/api/runs", headers, payload).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (*status, *code),
            "{headers:?}"
        );
    }
    // A chunked body over the cap is cut off at 1 MiB.
    let mut chunked = format!(
        "POST /api/runs HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nX-Lab-Binding: {}\r\nX-Lab-Token: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        lab.host(), lab.cookie, lab.binding, lab.token
    ).into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 100_000).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 100_000));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = lab.raw(&chunked).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (413, "body_too_large")
    );
    // Same origin, JSON with charset: accepted.
    let reply = lab
        .request(
            "POST",
            "/api/runs",
            &[
                t,
                ("Content-Type", "application/json; charset=utf-8"),
                ("Origin", &origin_ok),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 409, "already registered: {}", reply.text());
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_the_api_obeys_the_allowed_roots() {
    let lab = start().await;
    let outside = lab.base.join("outside");
    let cases: Vec<(String, u16, &str)> = vec![
        (outside.display().to_string(), 403, "outside_allowed_roots"),
        ("/etc".into(), 403, "outside_allowed_roots"),
        ("/definitely/not/here".into(), 403, "outside_allowed_roots"),
        (
            format!("{}/../outside", lab.base.join("runs").display()),
            403,
            "outside_allowed_roots",
        ),
        (
            lab.base.join("runs").display().to_string(),
            400,
            "is_allowed_root",
        ),
        ("runs/demo".into(), 400, "path_not_absolute"),
        (
            lab.base.join("runs/missing").display().to_string(),
            404,
            "directory_not_found",
        ),
        (
            lab.base.join("runs/demo").display().to_string(),
            409,
            "already_registered",
        ),
    ];
    for (path, status, code) in &cases {
        let body = serde_json::json!({ "path": path }).to_string();
        let reply = lab.post_json("/api/runs", &body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (*status, *code),
            "{path}"
        );
        assert!(
            !reply.text().contains("/outside"),
            "no foreign path echoed: {}",
            reply.text()
        );
    }
    // A directory holding no run of any format is refused, saying what was
    // looked for, and is not registered.
    std::fs::create_dir(lab.base.join("runs/new-run")).unwrap();
    std::fs::write(lab.base.join("runs/new-run/notes.txt"), "notes").unwrap();
    let body = serde_json::json!({ "path": lab.base.join("runs/new-run") }).to_string();
    let reply = lab.post_json("/api/runs", &body).await;
    assert_eq!((reply.status, reply.code().as_str()), (422, "no_run_found"));
    let reply: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let message = reply["error"]["message"].as_str().unwrap().to_owned();
    for looked_for in [
        "TensorBoard (events.out.tfevents.* files)",
        "Lab (run.toml, run.json, metrics.jsonl or metrics.csv",
        "Sacred (",
        "Trackio (",
    ] {
        assert!(message.contains(looked_for), "{message}");
    }
    assert!(
        !message.contains(lab.base.to_str().unwrap()),
        "no path: {message}"
    );
    let list = lab.get("/api/runs?limit=500").await;
    let list: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(list["total"], 2, "{list}");
    // With a run file it is one.
    std::fs::write(lab.base.join("runs/new-run/run.toml"), "name = \"new\"\n").unwrap();
    let body =
        serde_json::json!({ "path": lab.base.join("runs/new-run"), "id": "Bad Id" }).to_string();
    assert_eq!(
        lab.post_json("/api/runs", &body).await.code(),
        "invalid_run_id"
    );
    let body =
        serde_json::json!({ "path": lab.base.join("runs/new-run"), "id": "demo" }).to_string();
    assert_eq!(lab.post_json("/api/runs", &body).await.code(), "id_taken");
    let body =
        serde_json::json!({ "path": lab.base.join("runs/new-run"), "id": "new-1" }).to_string();
    let reply = lab.post_json("/api/runs", &body).await;
    assert_eq!(reply.status, 201);
    let run: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(run["id"], "new-1");
    assert_eq!(lab.get("/api/runs/new-1").await.status, 200);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowlisted_artifacts_inside_the_run_are_served() {
    let lab = start().await;
    // An MLflow 2 `log_image` file (a bundle of an MLflow run keeps it).
    let images = lab.base.join("runs/demo/artifacts/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("k%step%1%timestamp%2%ab.png"), b"png").unwrap();
    std::fs::write(images.join("%2e%2e.png"), SECRET).unwrap();
    let cases: &[(&str, u16)] = &[
        (
            "artifacts/images/k%25step%251%25timestamp%252%25ab.png",
            200,
        ),
        ("artifacts/images/%252e%252e.png", 400),
        ("artifacts/images/%2e%2e.png", 400),
        (
            "artifacts/images/k%25step%251%25timestamp%252%25ab.png%2500",
            400,
        ),
        ("artifacts/k%25step%251%25timestamp%252%25ab.png", 400),
        ("output.mp4", 200),
        ("video.mp4", 200),
        ("videos/a%20b.mp4", 200),
        ("videos%2Fa%20b.mp4", 200),
        ("run.toml", 200),
        (".env", 400),
        ("%2eenv", 400),
        ("secret.txt", 404),
        ("params.json", 403),
        ("summary.json", 403),
        ("stderr.log", 403),
        ("..", 400),
        ("../other/summary.json", 400),
        ("..%2fother%2fsummary.json", 400),
        ("%2e%2e/%2e%2e/outside/secret.txt", 400),
        // A decoded `%` outside an MLflow image name is refused by name.
        ("%252e%252e/outside/secret.txt", 400),
        ("%252e%252e", 400),
        ("%252e%252e%252foutput.mp4", 400),
        ("videos/../../outside/secret.txt", 400),
        ("/etc/passwd", 400),
        ("%2fetc%2fpasswd", 400),
        ("..%5c..%5coutside%5csecret.txt", 400),
        ("output.mp4%00", 400),
        ("output.mp4%0a", 400),
        ("output.mp4;.json", 404),
        ("output.mp4%3Fx", 404),
        ("output.mp4%23x", 404),
        ("%zz", 400),
        ("%c0%ae%c0%ae/x", 400),
        ("preview.mp4", 404),
        ("videos/", 400),
        ("videos/x/y.mp4", 404),
        ("a/b/c/d/e.mp4", 400),
    ];
    for (name, status) in cases {
        let reply = lab.get(&lab.artifact(name)).await;
        assert_eq!(reply.status, *status, "{name}: {}", reply.text());
        assert!(!reply.text().contains(SECRET), "{name} leaked the secret");
        assert!(
            !reply.text().contains("root:x:"),
            "{name} leaked /etc/passwd or its stand-in"
        );
        assert!(
            !reply.text().contains(lab.base.to_str().unwrap()),
            "{name} echoed a path"
        );
    }
    for id in ["..", "DEMO", "demo%2f..", "nope", "-x"] {
        let reply = lab
            .get(&format!("/api/runs/{id}/artifacts/output.mp4"))
            .await;
        assert!(matches!(reply.status, 400 | 404), "{id}: {}", reply.status);
    }
    let ok = lab.get(&lab.artifact("output.mp4")).await;
    assert_eq!(ok.header("content-type"), Some("video/mp4"));
    assert!(
        ok.header("content-security-policy")
            .unwrap()
            .starts_with("sandbox")
    );
    let notes = lab.get(&lab.artifact("notes.md")).await;
    assert_eq!(
        notes.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "HTML in a run is never HTML"
    );
    let run: serde_json::Value =
        serde_json::from_slice(&lab.get("/api/runs/demo").await.body).unwrap();
    let names: Vec<&str> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // The MLflow 2 image is listed; the planted `%2e%2e.png` is not.
    assert_eq!(
        names,
        [
            "artifacts/images/k%step%1%timestamp%2%ab.png",
            "metrics.jsonl",
            "notes.md",
            "output.mp4",
            "run.toml",
            "stdout.log",
            "video.mp4",
            "videos/a b.mp4"
        ]
    );
    assert_eq!(run["name"], "Demo run");
    assert_eq!(run["format"], "lab");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_and_preconditions_over_the_wire() {
    let lab = start().await;
    let url = lab.artifact("output.mp4");
    let full = lab.get(&url).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body.len(), 100_000);
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert!(
        full.header("content-range").is_none(),
        "never Content-Range on a 200"
    );
    let etag = full.header("etag").unwrap().to_owned();
    let last_modified = full.header("last-modified").unwrap().to_owned();
    let expected: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(full.body, expected);

    let r = lab
        .request("GET", &url, &[("Range", "bytes=1000-1999")], b"")
        .await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 1000-1999/100000"))
    );
    assert_eq!(r.body, &expected[1000..2000]);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = lab
        .request("GET", &url, &[("Range", "bytes=-10")], b"")
        .await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (206, Some("bytes 99990-99999/100000"))
    );
    let r = lab
        .request(
            "GET",
            &url,
            &[("Range", "Bytes=99990-99999999999999999999999")],
            b"",
        )
        .await;
    assert_eq!((r.status, r.body.len()), (206, 10));

    let r = lab
        .request("GET", &url, &[("Range", "bytes=100000-")], b"")
        .await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */100000"))
    );
    let r = lab
        .request("GET", &url, &[("Range", "bytes=5-1")], b"")
        .await;
    assert_eq!(r.status, 200, "a malformed set is ignored");
    let r = lab
        .request("HEAD", &url, &[("Range", "bytes=0-9")], b"")
        .await;
    assert_eq!(
        (r.status, r.header("content-length")),
        (200, Some("100000"))
    );

    let r = lab
        .request(
            "GET",
            &url,
            &[("If-None-Match", &etag), ("Range", "bytes=200000-")],
            b"",
        )
        .await;
    assert_eq!(r.status, 304, "a 304 beats a 416");
    assert!(r.body.is_empty());
    let r = lab
        .request("GET", &url, &[("If-Modified-Since", &last_modified)], b"")
        .await;
    assert_eq!(r.status, 304);
    let r = lab
        .request("GET", &url, &[("If-Match", "\"other\"")], b"")
        .await;
    assert_eq!(r.status, 412);
    let r = lab
        .request(
            "GET",
            &url,
            &[("If-Range", "\"stale\""), ("Range", "bytes=0-9")],
            b"",
        )
        .await;
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    let r = lab
        .request(
            "GET",
            &url,
            &[("If-Range", &etag), ("Range", "bytes=0-9")],
            b"",
        )
        .await;
    assert_eq!(r.status, 206);

    let r = lab
        .request("GET", &url, &[("Range", "bytes=0-9,50-59,20-29")], b"")
        .await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 3);
    assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    assert!(text.contains("Content-Range: bytes 20-29/100000"));
    // Parts that would outweigh the file: the whole file, never a multiple of it.
    let r = lab
        .request("GET", &url, &[("Range", "bytes=0-,0-,0-,1-,2-")], b"")
        .await;
    assert_eq!((r.status, r.body.len()), (206, 100_000));
    let r = lab
        .request("GET", &url, &[("Range", "bytes=0-49800,50000-99999")], b"")
        .await;
    assert_eq!((r.status, r.body.len()), (200, 100_000));

    // A zero-byte file never gets a 206.
    let empty = lab.artifact("stdout.log");
    for range in ["bytes=0-", "bytes=-1", "bytes=0-0"] {
        let r = lab.request("GET", &empty, &[("Range", range)], b"").await;
        assert_eq!((r.status, r.body.len()), (200, 0), "{range}");
        assert!(r.header("content-range").is_none());
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_is_not_modified_for_its_tag_weak_or_strong() {
    let lab = start().await;
    let run = lab.base.join("runs/curves");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"loss\": 0.5}\n",
    )
    .unwrap();
    let body = serde_json::json!({ "path": run.display().to_string(), "id": "curves" });
    let imported = lab.post_json("/api/runs", &body.to_string()).await;
    assert_eq!(imported.status, 201, "{}", imported.text());
    let url = "/api/runs/curves/metrics/loss";
    let full = lab.get(url).await;
    assert_eq!(full.status, 200, "{}", full.text());
    let etag = full.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("\"m-"), "{etag}");
    // RFC 9110 §13.1.2: If-None-Match compares weakly.
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {weak}");
    for (inm, status) in [
        (etag.as_str(), 304),
        (weak.as_str(), 304),
        (listed.as_str(), 304),
        ("*", 304),
        ("\"other\"", 200),
        ("W/\"other\"", 200),
    ] {
        let r = lab
            .request("GET", url, &[("If-None-Match", inm)], b"")
            .await;
        assert_eq!(r.status, status, "{inm}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{inm}");
        assert_eq!(
            r.header("cache-control"),
            Some("private, no-cache"),
            "{inm}"
        );
        if status == 304 {
            assert!(r.body.is_empty(), "{inm}");
        }
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_paginates_and_filters() {
    let lab = start().await;
    let page_of =
        |reply: Reply| -> serde_json::Value { serde_json::from_slice(&reply.body).unwrap() };
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = page_of(lab.get("/api/runs?limit=1").await);
    assert_eq!(ids(&page), ["demo"]);
    assert_eq!(page["next_cursor"], "1");
    assert_eq!(page["total"], 2);
    let page = page_of(lab.get("/api/runs?limit=1&cursor=1").await);
    assert_eq!(ids(&page), ["other"]);
    assert!(page["next_cursor"].is_null());
    // Summaries come from the run's own run.toml.
    let page = page_of(lab.get("/api/runs").await);
    assert_eq!(page["runs"][0]["name"], "Demo run");
    assert_eq!(page["runs"][0]["tags"], serde_json::json!(["x"]));
    assert_eq!(page["runs"][0]["has_video"], true);
    assert_eq!(page["runs"][0]["video"], "output.mp4");
    assert_eq!(page["runs"][1]["has_video"], false);
    // Filters: text over id, name, title and tags; exact tag; video.
    for (query, expected) in [
        ("q=OTH", vec!["other"]),
        ("q=demo%20RUN", vec!["demo"]),
        // Across two fields is no match (the id and the name here).
        ("q=demo%00demo", vec![]),
        ("q=x", vec!["demo"]),
        ("tag=x", vec!["demo"]),
        ("tag=X", vec![]),
        ("has_video=true", vec!["demo"]),
        ("has_video=false", vec!["other"]),
        ("sort=name&order=desc", vec!["other", "demo"]),
        ("sort=imported", vec!["demo", "other"]),
        ("sort=id&order=desc&limit=1", vec!["other"]),
        // A filter expression (issue 29).
        ("filter=name%20ILIKE%20%27demo%25%27", vec!["demo"]),
        ("filter=tags.x%20%3D%20%27%27", vec!["demo"]),
        ("filter=not%20tags.x%20%3D%20%27%27", vec!["other"]),
        (
            "filter=status%20IN%20(%27nope%27)%20or%20name%20%3D%20%27other%27",
            vec!["other"],
        ),
    ] {
        let page = page_of(lab.get(&format!("/api/runs?{query}")).await);
        assert_eq!(ids(&page), expected, "{query}");
    }
    for bad in [
        "limit=0",
        "limit=501",
        "limit=x",
        "cursor=..",
        "cursor=-1",
        "q=%zz",
        "sort=size",
        "order=up",
        "has_video=maybe",
    ] {
        let reply = lab.get(&format!("/api/runs?{bad}")).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "bad_query"),
            "{bad}"
        );
    }
    // A filter that does not parse: 400 bad_filter, naming the position.
    let reply = lab.get("/api/runs?filter=status%20%3D%3D%201").await;
    assert_eq!((reply.status, reply.code().as_str()), (400, "bad_filter"));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at character 8"), "{message}");
    let status: serde_json::Value =
        serde_json::from_slice(&lab.get("/api/status").await.body).unwrap();
    assert_eq!(status["runner"]["enabled"], false);
    assert_eq!(status["runner"]["network_allowed"], false);
    assert_eq!(status["counts"]["runs"], 2);
    assert_eq!(lab.get("/api/runs/nope").await.code(), "unknown_run");
    assert_eq!(lab.get("/api/runs/NOPE").await.code(), "invalid_run_id");
    let reply = lab
        .request(
            "PATCH",
            "/api/runs",
            &[("X-Lab-Token", &lab.token.clone())],
            b"",
        )
        .await;
    assert_eq!(
        (reply.status, reply.header("allow")),
        (405, Some("GET, HEAD, POST"))
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_malformed_clients_are_cut_off_without_harm() {
    let limits = lab_http::Limits {
        header_read_timeout: Duration::from_millis(700),
        ..lab_http::Limits::default()
    };
    let lab = start_with(limits, Vec::new()).await;
    // Slowloris: a head that never completes is closed after the timeout.
    let mut slow = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
    slow.write_all(b"GET /api/runs HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a slow head is cut off");
    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "an idle connection is closed");
    // Garbage and oversized heads get a 4xx or a closed connection, never a hang or a 500.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\n\r\n",
        lab.host(),
        "a".repeat(100_000)
    );
    for junk in [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        huge.into_bytes(),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
        let _ = s.write_all(&junk).await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(
            read.is_ok(),
            "junk {:?} hung",
            String::from_utf8_lossy(&junk[..junk.len().min(20)])
        );
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    // The server still answers.
    assert_eq!(lab.get("/api/status").await.status, 200);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_embeds_a_fresh_token_per_server() {
    let a = start().await;
    let b = start().await;
    assert_eq!(a.token.len(), 64);
    assert!(a.token.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.token, b.token);
    let page = a.get("/").await;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_and_ffmpeg_read_and_seek_the_video_through_range() {
    let lab = start().await;
    // A real, not fast-started H.264 MP4 (moov at the end) from the fixtures.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/runs/cartpole-ppo/output.mp4");
    std::fs::copy(&fixture, lab.base.join("runs/demo/preview.mp4")).unwrap();
    let url = format!("http://{}{}", lab.host(), lab.artifact("preview.mp4"));
    // A script's credential: the access key as a Bearer header.
    let auth = format!("Authorization: Bearer {}\r\n", lab.key);
    let probe = tokio::task::spawn_blocking({
        let url = url.clone();
        let auth = auth.clone();
        move || {
            #[allow(clippy::disallowed_methods)] // a test driving a real Range client
            std::process::Command::new("ffprobe")
                .args(["-v", "debug", "-headers", &auth, "-show_entries", "format=duration:stream=codec_name", "-of", "compact", &url])
                .output()
        }
    })
    .await
    .unwrap()
    .expect("ffprobe is required for this test: `cargo xtask test` installs it (apt-get install ffmpeg)");
    let stdout = String::from_utf8_lossy(&probe.stdout);
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(probe.status.success(), "{stderr}");
    assert!(stdout.contains("codec_name=h264"), "{stdout}");
    assert!(stdout.contains("duration=4.0"), "{stdout}");
    // The moov atom is at the end: ffprobe must have asked for a later range.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("Range: bytes=") && !l.contains("Range: bytes=0-")),
        "ffprobe never seeked: {stderr}"
    );
    // Decode one frame after seeking to 3 s.
    let seek = tokio::task::spawn_blocking(move || {
        #[allow(clippy::disallowed_methods)]
        std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-ss",
                "3",
                "-headers",
                &auth,
                "-i",
                &url,
                "-frames:v",
                "1",
                "-f",
                "null",
                "-",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("ffmpeg is required for this test");
    assert!(
        seek.status.success(),
        "{}",
        String::from_utf8_lossy(&seek.stderr)
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_created_listed_downloaded_and_never_overwritten() {
    let lab = start().await;
    let token = lab.token.clone();
    let json = ("Content-Type", "application/json");
    let t = ("X-Lab-Token", token.as_str());
    let body = br#"{"name": "good"}"#;
    let refused = lab
        .request("POST", "/api/runs/demo/export", &[json], body)
        .await;
    assert_eq!(refused.status, 403, "the token is required");
    let made = lab
        .request("POST", "/api/runs/demo/export", &[json, t], body)
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let made: serde_json::Value = serde_json::from_slice(&made.body).unwrap();
    assert_eq!(made["file"], "good.tar");
    let again = lab
        .request("POST", "/api/runs/demo/export", &[json, t], body)
        .await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (409, "bundle_exists")
    );
    for bad in [
        r#"{"name": "../x"}"#,
        r#"{"name": ".hidden"}"#,
        r#"{"name": "a/b"}"#,
        r#"{"name": ""}"#,
    ] {
        let reply = lab
            .request("POST", "/api/runs/demo/export", &[json, t], bad.as_bytes())
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "invalid_bundle_name"),
            "{bad}"
        );
    }
    let reply = lab
        .request(
            "POST",
            "/api/runs/demo/export",
            &[json, t],
            br#"{"nme": "x"}"#,
        )
        .await;
    assert_eq!(reply.code(), "invalid_json");
    let reply = lab
        .request("POST", "/api/runs/nope/export", &[t], b"")
        .await;
    assert_eq!(reply.code(), "unknown_run");
    let default = lab
        .request("POST", "/api/runs/demo/export", &[t], b"")
        .await;
    assert_eq!(default.status, 201, "{}", default.text());
    let default: serde_json::Value = serde_json::from_slice(&default.body).unwrap();
    assert!(default["file"].as_str().unwrap().starts_with("demo-"));

    let list: serde_json::Value =
        serde_json::from_slice(&lab.get("/api/exports").await.body).unwrap();
    assert_eq!(list["exports"].as_array().unwrap().len(), 2);
    let tar = lab.get("/api/exports/good.tar").await;
    assert_eq!(tar.status, 200);
    assert_eq!(tar.header("content-type"), Some("application/x-tar"));
    assert_eq!(
        tar.header("content-disposition"),
        Some("attachment; filename=\"good.tar\"")
    );
    assert_eq!(tar.body.len() as u64, made["size"].as_u64().unwrap());
    let text = String::from_utf8_lossy(&tar.body);
    assert!(
        !text.contains(SECRET) && !text.contains("decoy"),
        "no decoy in the bundle"
    );
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "text artifacts are redacted"
    );
    assert!(text.contains("[REDACTED]"));
    let part = lab
        .request(
            "GET",
            "/api/exports/good.tar",
            &[("Range", "bytes=0-99")],
            b"",
        )
        .await;
    assert_eq!((part.status, part.body.len()), (206, 100));
    for bad in [
        "good",
        "..%2fgood.tar",
        ".good.tar.x.tmp",
        "%2e%2e",
        "nope.tar",
        "registry.json",
    ] {
        let reply = lab.get(&format!("/api/exports/{bad}")).await;
        assert_eq!(reply.status, 404, "{bad}");
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected() {
    let limits = lab_http::Limits {
        write_stall_timeout: Duration::from_millis(800),
        ..lab_http::Limits::default()
    };
    let lab = start_with(limits, Vec::new()).await;
    let big = lab.base.join("runs/demo/videos/big.mp4");
    let len: u64 = 256 << 20;
    std::fs::File::create(&big).unwrap().set_len(len).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        lab.artifact("videos/big.mp4"),
        lab.host()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Read nothing for a while: the socket buffers fill, the server stalls.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received)).await;
    assert!(
        (received.len() as u64) < len,
        "the stalled response was cut off ({} of {len} bytes)",
        received.len()
    );
    assert_eq!(
        lab.get("/api/status").await.status,
        200,
        "the server still answers"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_credential_only_the_login_shell_answers() {
    let lab = start().await;
    let anonymous = [("Cookie", "")];
    let job_log = "/api/jobs/demo/log".to_owned();
    let export = "/api/exports/x.tar".to_owned();
    for (method, path) in [
        ("GET", "/api/status".to_owned()),
        ("GET", "/api/runs".to_owned()),
        ("GET", "/api/columns".to_owned()),
        ("GET", "/api/experiments".to_owned()),
        ("GET", "/api/runs/demo".to_owned()),
        ("GET", lab.artifact("output.mp4")),
        ("HEAD", lab.artifact("output.mp4")),
        ("GET", "/api/runs/demo/metrics/loss".to_owned()),
        ("GET", "/api/runs/demo/histograms/w".to_owned()),
        (
            "GET",
            "/api/runs/demo/images/events.out.tfevents.1.x/0/0".to_owned(),
        ),
        ("GET", "/api/exports".to_owned()),
        ("GET", export),
        ("GET", "/api/jobs".to_owned()),
        ("GET", job_log),
        ("DELETE", "/api/session".to_owned()),
        ("DELETE", "/api/runs/demo".to_owned()),
        ("GET", "/api/nothing-here".to_owned()),
        ("GET", format!("/api/runs?key={}", lab.key)),
        (
            "GET",
            format!("/api/status?access_key={}&token={}", lab.key, lab.key),
        ),
    ] {
        let reply = lab.request(method, &path, &anonymous, b"").await;
        assert_eq!(reply.status, 401, "{method} {path}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer realm=\"lab\"")
        );
        if method != "HEAD" {
            assert_eq!(reply.code(), "unauthenticated", "{method} {path}");
            assert!(!reply.text().contains("demo") && !reply.text().contains("Demo"));
        }
    }
    let reply = lab
        .request(
            "POST",
            "/api/runs",
            &[("Cookie", ""), ("Content-Type", "application/json")],
            b"{\"path\": \"/\"}",
        )
        .await;
    assert_eq!(reply.status, 401);
    // The login shell: no token, no run data, and no key in a query works.
    for path in ["/".to_owned(), format!("/?key={}", lab.key)] {
        let shell = lab.request("GET", &path, &anonymous, b"").await;
        assert_eq!(shell.status, 200);
        let text = shell.text();
        assert!(text.contains("/assets/login.js"), "{text}");
        assert!(
            !text.contains("lab-token") && !text.contains(&lab.token),
            "{text}"
        );
        assert!(!text.contains("Demo run"));
        assert_eq!(shell.header("cache-control"), Some("no-store"));
    }
    let script = lab
        .request("GET", "/assets/login.js", &anonymous, b"")
        .await;
    assert_eq!(script.status, 200);
    assert!(script.text().contains("history.replaceState"));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_buys_a_session_cookie_and_logging_out_ends_it() {
    let lab = start().await;
    let json = ("Content-Type", "application/json");
    let anonymous = ("Cookie", "");
    for (body, status) in [
        (
            format!("{{\"key\": \"nope\", \"binding\": \"{BINDING}\"}}"),
            401,
        ),
        (
            format!(
                "{{\"key\": \"{}\", \"binding\": \"{BINDING}\"}}",
                &lab.key[..42]
            ),
            401,
        ),
        (
            format!("{{\"key\": \"{}x\", \"binding\": \"{BINDING}\"}}", lab.key),
            401,
        ),
        (format!("{{\"key\": \"{}\"}}", lab.key), 400),
        ("{\"token\": \"x\"}".to_owned(), 400),
        ("not json".to_owned(), 400),
    ] {
        let reply = lab
            .request("POST", "/api/session", &[json, anonymous], body.as_bytes())
            .await;
        assert_eq!(reply.status, status, "{body}");
        assert!(reply.header("set-cookie").is_none(), "{body}");
    }
    // Cross-site or foreign-origin logins are refused like any mutation.
    let binding = "second-session-binding-0123456789";
    let body = format!("{{\"key\": \"{}\", \"binding\": \"{binding}\"}}", lab.key);
    let foreign = lab
        .request(
            "POST",
            "/api/session",
            &[json, anonymous, ("Origin", "http://evil.example")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(foreign.status, 403);
    let login = lab
        .request("POST", "/api/session", &[json, anonymous], body.as_bytes())
        .await;
    assert_eq!(login.status, 204);
    let set = login.header("set-cookie").unwrap().to_owned();
    assert!(
        set.ends_with("; HttpOnly; SameSite=Strict; Path=/"),
        "{set}"
    );
    assert!(!set.contains(&lab.key), "the cookie is not the key");
    let cookie = set.split(';').next().unwrap().to_owned();
    let with = |c: &str| [("Cookie", c.to_owned())];
    let page = lab
        .request(
            "GET",
            "/",
            &with(&cookie).map(|(k, v)| (k, v))[..]
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
            b"",
        )
        .await;
    assert!(
        page.text().contains("lab-token"),
        "an authenticated browser gets the app"
    );
    let marker = "<meta name=\"lab-token\" content=\"";
    let at = page.text().find(marker).unwrap() + marker.len();
    let this_token = page.text()[at..at + 64].to_owned();
    // Each session has its own page token: another session's does not pass.
    assert_ne!(this_token, lab.token);
    async fn forget(lab: &Lab, cookie: &str, binding: &str, token: &str) -> Reply {
        lab.request(
            "DELETE",
            "/api/runs/other",
            &[
                ("Cookie", cookie),
                ("X-Lab-Binding", binding),
                ("X-Lab-Token", token),
            ],
            b"",
        )
        .await
    }
    assert_eq!(
        forget(&lab, &cookie, binding, &lab.token).await.code(),
        "bad_token"
    );
    assert_eq!(
        forget(&lab, &lab.cookie, BINDING, &this_token).await.code(),
        "bad_token"
    );
    // Log out: the cookie is cleared and the session is gone for good, its
    // token with it.
    let out = lab
        .request(
            "DELETE",
            "/api/session",
            &[
                ("Cookie", &cookie),
                ("X-Lab-Binding", binding),
                ("X-Lab-Token", &this_token),
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let after = lab
        .request(
            "GET",
            "/api/runs",
            &[("Cookie", &cookie), ("X-Lab-Binding", binding)],
            b"",
        )
        .await;
    assert_eq!(after.status, 401);
    assert_eq!(
        forget(&lab, &cookie, binding, &this_token).await.status,
        401
    );
    lab.stop().await;
}

/// A signed-in client's request is answered well before the 15 s header
/// timeout could have freed any slot.
async fn answered_before_the_header_timeout(lab: &Lab) {
    let started = std::time::Instant::now();
    let reply = lab.get("/api/status").await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_sheds_connections_that_never_sent_a_head() {
    let limits = lab_http::Limits {
        max_connections: 16,
        ..lab_http::Limits::default()
    };
    let lab = start_with(limits, Vec::new()).await;
    let mut idle = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        idle.push(stream);
    }
    // Far more half-sent heads than the cap, yet a real client is answered
    // at once (the header timeout is 15 s; the answer must not wait for it).
    answered_before_the_header_timeout(&lab).await;
    // The oldest of the idle connections were the ones closed.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf))
        .await
        .expect("the oldest idle connection was shed")
        .unwrap_or(0);
    assert_eq!(closed, 0);
    drop(idle);
    // Connections that do send whole requests, but without a credential
    // (the login shell's assets), are still first to go: a client without
    // the key cannot hold the server by keeping connections busy.
    let mut busy = Vec::new();
    for _ in 0..64 {
        let mut stream = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
        let head = format!(
            "GET /assets/login.js HTTP/1.1\r\nHost: {}\r\n\r\n",
            lab.host()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        busy.push(stream);
    }
    answered_before_the_header_timeout(&lab).await;
    drop(busy);
    // Nor can a stolen cookie alone (the page, a JSON route refused): its
    // connections stay first to go too.
    let mut stolen = Vec::new();
    for i in 0..64 {
        let mut stream = TcpStream::connect(("127.0.0.1", lab.port)).await.unwrap();
        // The page, a JSON route refused, and a refusal before any
        // credential is looked at (a foreign Host: 403, no proof of
        // anything).
        let (target, host) = match i % 3 {
            0 => ("/", lab.host()),
            1 => ("/api/runs", lab.host()),
            _ => ("/api/runs", "evil.example:1".to_owned()),
        };
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nCookie: {}\r\n\r\n",
            lab.cookie
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stolen.push(stream);
    }
    answered_before_the_header_timeout(&lab).await;
    drop(stolen);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_serves_localhost_names_with_any_port() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("lab.sock");
    let registry = lab_registry::Registry::open(&tmp.path().join("data"), &[]).unwrap();
    let registry = Arc::new(registry);
    let key = lab_http::AccessKey::generate().unwrap();
    let config = || {
        lab_http::Config::new(
            Arc::clone(&registry),
            lab_fs::Allowlist::default(),
            key.clone(),
        )
    };
    // A socket in a directory others may enter is refused by the library
    // itself (SPEC §3), as `lab serve --bind unix:` refuses it.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let refused = lab_http::serve(
        config(),
        lab_http::Listener::Unix(listener, path.clone()),
        async {},
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("mode 0700"), "{refused}");
    std::fs::remove_file(&path).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = config();
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(lab_http::serve(
        config,
        lab_http::Listener::Unix(listener, path.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let ask = |host: &str, auth: bool| {
        let path = path.clone();
        let head = format!(
            "GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}\r\n",
            if auth {
                format!("Authorization: Bearer {}\r\n", key.as_str())
            } else {
                String::new()
            }
        );
        async move {
            let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).await.unwrap();
            parse(&buf, false)
        }
    };
    for host in [
        "localhost:7878",
        "localhost:9999",
        "127.0.0.1:1234",
        "[::1]:7878",
        "localhost",
    ] {
        let reply = ask(host, true).await;
        assert_eq!(reply.status, 200, "{host}");
        assert!(
            reply.text().contains("\"address\":\"unix:"),
            "{}",
            reply.text()
        );
    }
    assert_eq!(ask("evil.example:7878", true).await.status, 403);
    assert_eq!(ask("localhost:7878", false).await.status, 401);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_answers_alike_for_every_place_outside_the_roots() {
    let lab = start().await;
    let runs = lab.base.join("runs");
    symlink(lab.base.join("outside"), runs.join("link-out")).unwrap();
    symlink(lab.base.join("nowhere"), runs.join("link-missing")).unwrap();
    let outside = [
        format!("{}/../outside/secret.txt", runs.display()),
        format!("{}/../outside", runs.display()),
        format!("{}/../nothing-here", runs.display()),
        format!("{}/./../../..", runs.display()),
        "/etc".to_owned(),
        "/etc/passwd".to_owned(),
        "/root".to_owned(),
        "/no/such/place".to_owned(),
        format!("{}/link-out", runs.display()),
        format!("{}/link-out/sub", runs.display()),
        format!("{}/link-missing", runs.display()),
        format!("{}/link-missing/deeper", runs.display()),
    ];
    for path in &outside {
        let body = serde_json::json!({ "path": path }).to_string();
        let reply = lab.post_json("/api/runs", &body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (403, "outside_allowed_roots"),
            "{path}: {}",
            reply.text()
        );
    }
    for bad in ["/tmp/a\u{0}b", "\u{0}", "/tmp/x\ny"] {
        let body = serde_json::json!({ "path": bad }).to_string();
        let reply = lab.post_json("/api/runs", &body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "invalid_path"),
            "{bad:?}"
        );
    }
    // Inside a root, a missing directory is simply not found.
    let body = serde_json::json!({ "path": runs.join("nope") }).to_string();
    let reply = lab.post_json("/api/runs", &body).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    lab.stop().await;
}

/// The cookie (name=value) a sign-in with `binding` bought.
async fn session_with(lab: &Lab, binding: &str) -> String {
    let body = format!("{{\"key\": \"{}\", \"binding\": \"{binding}\"}}", lab.key);
    let login = lab.sign_in(&body).await;
    assert_eq!(login.status, 204, "{}", login.text());
    login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// `GET` (or `method`) of `path` with exactly these credential headers.
async fn as_(lab: &Lab, method: &str, path: &str, cookie: &str, binding: Option<&str>) -> Reply {
    let mut headers = vec![("Cookie", cookie)];
    if let Some(binding) = binding {
        headers.push(("X-Lab-Binding", binding));
    }
    lab.request(method, path, &headers, b"").await
}

/// The `url` of `name` in the run's artifact list, as the API gave it to
/// the page (cookie and binding).
async fn signed_artifact_url(lab: &Lab, cookie: &str, binding: &str, name: &str) -> String {
    let run = as_(lab, "GET", "/api/runs/demo", cookie, Some(binding)).await;
    assert_eq!(run.status, 200, "{}", run.text());
    let json: serde_json::Value = serde_json::from_slice(&run.body).unwrap();
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["url"].as_str())
        .unwrap_or_else(|| panic!("no url for {name}: {json}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_cookie_reads_nothing() {
    // A browser sends the cookie to every port of 127.0.0.1, a foreign
    // server's included. The replay: sign in as the UI does, then send
    // only the cookie, knowing every id.
    let lab = start().await;
    let binding = "b1nd1ng-0123456789abcdef_XYZ";
    let cookie = session_with(&lab, binding).await;
    let export = lab
        .request(
            "POST",
            "/api/runs/demo/export",
            &[
                ("Cookie", &cookie),
                ("X-Lab-Binding", binding),
                ("X-Lab-Token", &page_token(&lab, &cookie).await),
                ("Content-Type", "application/json"),
            ],
            b"{\"name\": \"stolen\"}",
        )
        .await;
    assert_eq!(export.status, 201, "{}", export.text());
    let export: serde_json::Value = serde_json::from_slice(&export.body).unwrap();
    let bundle_url = export["url"].as_str().unwrap().to_owned();
    assert!(
        bundle_url.starts_with("/api/exports/stolen.tar?exp="),
        "{bundle_url}"
    );
    // The cookie alone: the page and its assets, nothing else.
    assert_eq!(as_(&lab, "GET", "/", &cookie, None).await.status, 200);
    assert_eq!(
        as_(&lab, "GET", "/assets/app.js", &cookie, None)
            .await
            .status,
        200
    );
    for (method, path) in [
        ("GET", lab.artifact("notes.md")),
        ("HEAD", lab.artifact("output.mp4")),
        ("GET", lab.artifact("output.mp4")),
        ("GET", "/api/exports/stolen.tar".to_owned()),
        ("GET", "/api/jobs/demo-0123456789ab/log".to_owned()),
        (
            "GET",
            "/api/runs/demo/images/events.out.tfevents.1.x/0/1".to_owned(),
        ),
        ("GET", "/api/runs".to_owned()),
        ("GET", "/api/runs/demo".to_owned()),
        ("GET", "/api/status".to_owned()),
        ("GET", "/api/exports".to_owned()),
        ("GET", "/api/runs/demo/metrics/loss".to_owned()),
        ("GET", "/api/runs/demo/histograms/w".to_owned()),
        ("GET", "/api/columns".to_owned()),
        ("GET", "/api/experiments".to_owned()),
        ("DELETE", "/api/session".to_owned()),
    ] {
        let reply = as_(&lab, method, &path, &cookie, None).await;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.text());
        if method != "HEAD" {
            assert_eq!(reply.code(), "unauthenticated", "{method} {path}");
            assert!(!reply.text().contains("<script>") && !reply.text().contains("Demo run"));
        }
        // Another page's binding is no binding.
        let foreign = as_(
            &lab,
            method,
            &path,
            &cookie,
            Some("another-binding-0123456789"),
        )
        .await;
        assert_eq!(foreign.status, 401, "{method} {path} with a wrong binding");
    }
    // The page (cookie and binding) is given signed URLs, which open their
    // element with the cookie alone: a video seeks, a bundle downloads.
    let notes = signed_artifact_url(&lab, &cookie, binding, "notes.md").await;
    let video = signed_artifact_url(&lab, &cookie, binding, "output.mp4").await;
    let spaced = signed_artifact_url(&lab, &cookie, binding, "videos/a b.mp4").await;
    assert!(
        spaced.starts_with("/api/runs/demo/artifacts/videos/a%20b.mp4?exp="),
        "{spaced}"
    );
    for url in [&notes, &video, &spaced, &bundle_url] {
        let reply = as_(&lab, "GET", url, &cookie, None).await;
        assert_eq!(reply.status, 200, "{url}: {}", reply.text());
    }
    assert_eq!(
        as_(&lab, "GET", &notes, &cookie, None).await.text(),
        "<script>alert(1)</script>"
    );
    let ranged = lab
        .request(
            "GET",
            &video,
            &[("Cookie", &cookie), ("Range", "bytes=1000-1009")],
            b"",
        )
        .await;
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body.len(), 10);
    assert_eq!(as_(&lab, "HEAD", &video, &cookie, None).await.status, 200);
    let list = as_(&lab, "GET", "/api/runs", &cookie, Some(binding)).await;
    let list: serde_json::Value = serde_json::from_slice(&list.body).unwrap();
    let row = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "demo")
        .unwrap()
        .clone();
    let video_url = row["video_url"].as_str().unwrap();
    assert!(video_url.contains("&sig="), "{row}");
    assert_eq!(as_(&lab, "GET", video_url, &cookie, None).await.status, 200);
    // A signature opens its own path and no other, and only as written.
    let (_, query) = notes.split_once('?').unwrap();
    let (exp, sig) = query
        .strip_prefix("exp=")
        .unwrap()
        .split_once("&sig=")
        .unwrap();
    let exp: u64 = exp.parse().unwrap();
    for forged in [
        format!("{}?{query}", lab.artifact("output.mp4")),
        format!("/api/runs/other/artifacts/notes.md?{query}"),
        format!("/api/exports/stolen.tar?{query}"),
        format!("/api/jobs/demo/log?{query}"),
        format!("{}?exp={}&sig={sig}", lab.artifact("notes.md"), exp + 1),
        format!(
            "{}?exp={exp}&sig={}",
            lab.artifact("notes.md"),
            sig.to_ascii_lowercase()
        ),
        format!("{}?{query}&x=1", lab.artifact("notes.md")),
        format!("{}?exp={exp}", lab.artifact("notes.md")),
    ] {
        let reply = as_(&lab, "GET", &forged, &cookie, None).await;
        assert_eq!(reply.status, 401, "{forged}");
        assert_eq!(reply.code(), "bad_signature", "{forged}");
    }
    // A signature is no credential on a JSON route.
    let json_route = as_(
        &lab,
        "GET",
        &format!("/api/runs/demo?{query}"),
        &cookie,
        None,
    )
    .await;
    assert_eq!(json_route.status, 401);
    // Another session's cookie does not carry this one's signature, nor
    // does no cookie at all.
    let other_binding = "other-b1nd1ng-0123456789abcdef";
    let other = session_with(&lab, other_binding).await;
    let reply = as_(&lab, "GET", &notes, &other, None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "bad_signature")
    );
    let theirs = signed_artifact_url(&lab, &other, other_binding, "notes.md").await;
    assert_ne!(theirs, notes);
    let reply = as_(&lab, "GET", &theirs, &cookie, None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "bad_signature")
    );
    let reply = lab.request("GET", &notes, &[("Cookie", "")], b"").await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "unauthenticated")
    );
    // Logging out kills the session's signatures with it.
    let out = lab
        .request(
            "DELETE",
            "/api/session",
            &[
                ("Cookie", &other),
                ("X-Lab-Binding", other_binding),
                ("X-Lab-Token", &page_token(&lab, &other).await),
            ],
            b"",
        )
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(as_(&lab, "GET", &theirs, &other, None).await.status, 401);
    // A script with the key needs no signature, and is given plain URLs.
    let bearer = format!("Bearer {}", lab.key);
    let plain = lab
        .request("GET", "/api/runs/demo", &[("Authorization", &bearer)], b"")
        .await;
    let plain: serde_json::Value = serde_json::from_slice(&plain.body).unwrap();
    let url = plain["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "notes.md")
        .unwrap()["url"]
        .clone();
    assert_eq!(url, "/api/runs/demo/artifacts/notes.md");
    let by_key = lab
        .request(
            "GET",
            &lab.artifact("notes.md"),
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(by_key.status, 200);
    // A session needs a binding, well formed.
    let no_binding = lab.sign_in(&format!("{{\"key\": \"{}\"}}", lab.key)).await;
    assert_eq!(
        (no_binding.status, no_binding.code().as_str()),
        (400, "binding_required")
    );
    assert!(no_binding.header("set-cookie").is_none());
    for bad in [
        "short",
        "has space in it and is long enough",
        &"x".repeat(129),
    ] {
        let body = format!("{{\"key\": \"{}\", \"binding\": \"{bad}\"}}", lab.key);
        let reply = lab.sign_in(&body).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (400, "binding_required"),
            "{bad}"
        );
    }
    lab.stop().await;
}

/// The page token of the session `cookie` names.
async fn page_token(lab: &Lab, cookie: &str) -> String {
    let page = as_(lab, "GET", "/", cookie, None).await;
    let marker = "<meta name=\"lab-token\" content=\"";
    let at = page.text().find(marker).expect("token meta") + marker.len();
    page.text()[at..at + 64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_expires_while_its_session_lives_on() {
    let lab = start_with(
        lab_http::Limits {
            session_lifetime: Duration::from_secs(2),
            ..lab_http::Limits::default()
        },
        Vec::new(),
    )
    .await;
    let url = signed_artifact_url(&lab, &lab.cookie, &lab.binding, "notes.md").await;
    assert_eq!(as_(&lab, "GET", &url, &lab.cookie, None).await.status, 200);
    // The page keeps its session alive; the URL's exp passes.
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            lab.get("/api/status").await.status,
            200,
            "the session lives on"
        );
    }
    let reply = as_(&lab, "GET", &url, &lab.cookie, None).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "bad_signature")
    );
    // A fresh URL works again.
    let fresh = signed_artifact_url(&lab, &lab.cookie, &lab.binding, "notes.md").await;
    assert_ne!(fresh, url);
    assert_eq!(
        as_(&lab, "GET", &fresh, &lab.cookie, None).await.status,
        200
    );
    // The cookie alone does not keep a session alive.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        as_(&lab, "GET", &fresh, &lab.cookie, None).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let reply = as_(&lab, "GET", "/api/runs", &lab.cookie, Some(&lab.binding)).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (401, "unauthenticated")
    );
    lab.stop().await;
}

/// Sends `count` copies of `request` down one connection and returns what
/// came back before the server closed it.
async fn pipelined(port: u16, request: String, count: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = stream.write_all(request.repeat(count).as_bytes()).await;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .expect("the server closed the connection")
        .unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_credentials_close_the_connection_and_then_lock_out_for_a_second() {
    let lab = start().await;
    let url = signed_artifact_url(&lab, &lab.cookie, &lab.binding, "notes.md").await;
    let guess = format!(
        "GET /api/runs/demo/artifacts/notes.md HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\r\n",
        lab.host(),
        lab.cookie
    );
    // Ten failures on one connection close it: the tenth answer says so,
    // and nothing after it is answered.
    let answers =
        String::from_utf8_lossy(&pipelined(lab.port, guess.clone(), 15).await).into_owned();
    assert_eq!(answers.matches("HTTP/1.1 401").count(), 10, "{answers}");
    assert_eq!(answers.matches("connection: close").count(), 1, "{answers}");
    // Over 100 failures in a second, server-wide: what needs a credential
    // and has no full one waits a second, the login included; the page
    // (cookie and binding) and scripts (the key) go on.
    let mut floods = Vec::new();
    for _ in 0..11 {
        floods.push(pipelined(lab.port, guess.clone(), 10));
    }
    let floods = futures_join(floods).await;
    let failed: usize = floods
        .iter()
        .map(|b| String::from_utf8_lossy(b).matches("HTTP/1.1 4").count())
        .sum();
    assert_eq!(failed, 110);
    let guessed = format!("{}x", url);
    let locked = as_(&lab, "GET", &guessed, &lab.cookie, None).await;
    assert_eq!(
        (locked.status, locked.code().as_str()),
        (429, "rate_limited"),
        "{}",
        locked.text()
    );
    assert_eq!(locked.header("retry-after"), Some("1"));
    // The owner's elements load on: a valid signature is no guess.
    assert_eq!(as_(&lab, "GET", &url, &lab.cookie, None).await.status, 200);
    let anonymous = lab
        .request("GET", "/api/runs", &[("Cookie", "")], b"")
        .await;
    assert_eq!(anonymous.status, 429);
    let login = lab
        .sign_in(&format!(
            "{{\"key\": \"{}\", \"binding\": \"{BINDING}\"}}",
            lab.key
        ))
        .await;
    assert_eq!(login.status, 429, "no key is tried while locked");
    assert_eq!(lab.get("/api/runs").await.status, 200, "the page goes on");
    let bearer = format!("Bearer {}", lab.key);
    assert_eq!(
        lab.request("GET", "/api/runs", &[("Authorization", &bearer)], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        lab.get("/").await.status,
        200,
        "the login shell is no credential check"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(as_(&lab, "GET", &url, &lab.cookie, None).await.status, 200);
    lab.stop().await;
}

/// Runs the futures at once.
async fn futures_join<F: std::future::Future + Send + 'static>(all: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = all.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Sorted lists page the same whatever the page size: only the rows up to
/// a page's end are put in order, and a key missing from a run sorts last
/// in either order, ties broken by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sorted_pages_concatenate_to_the_whole_sorted_list() {
    let lab = start().await;
    let mut expected: Vec<(Option<u32>, String)> =
        vec![(None, "demo".into()), (None, "other".into())];
    for i in 0..40u32 {
        let id = format!("s{i:02}");
        let dir = lab.base.join("runs").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        // Every fifth run has no lr; the others repeat values (ties).
        let lr = (i % 5 != 0).then_some((i * 7) % 11);
        if let Some(lr) = lr {
            std::fs::write(dir.join("params.json"), format!("{{\"lr\": {lr}}}")).unwrap();
        }
        std::fs::write(dir.join("run.json"), "{}").unwrap();
        let body = serde_json::json!({ "path": dir, "id": id }).to_string();
        assert_eq!(lab.post_json("/api/runs", &body).await.status, 201);
        expected.push((lr, id));
    }
    let ids_of = |page: &serde_json::Value| -> Vec<String> {
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for descending in [false, true] {
        let mut want = expected.clone();
        want.sort_by(|a, b| match (a.0, b.0) {
            (None, None) => a.1.cmp(&b.1),
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => {
                let by = if descending { y.cmp(&x) } else { x.cmp(&y) };
                by.then_with(|| a.1.cmp(&b.1))
            }
        });
        let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
        let order = if descending { "desc" } else { "asc" };
        for size in [1usize, 7, 42, 500] {
            let mut got = Vec::new();
            let mut cursor = String::new();
            loop {
                let reply = lab
                    .get(&format!(
                        "/api/runs?sort=params.lr&order={order}&limit={size}&cursor={cursor}"
                    ))
                    .await;
                let page: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                got.extend(ids_of(&page));
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = next.to_owned(),
                    None => break,
                }
            }
            assert_eq!(got, want, "order {order}, pages of {size}");
        }
    }
}

/// Random requests — method, target, Host, credential, token, Origin,
/// Sec-Fetch-Site — against one server: the guard's promises hold for
/// every one (SPEC §5), and none of them changes the registry.
#[test]
fn the_guard_holds_for_any_mix_of_request_parts() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lab = runtime.block_on(start());
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"];
    const PATHS: &[&str] = &[
        "/",
        "/api/status",
        "/api/runs",
        "/api/runs/demo",
        "/api/runs/demo/artifacts/output.mp4",
        "/api/runs/demo/metrics/loss",
        "/api/runs/demo/histograms/w",
        "/api/runs/nope",
        "/api/exports",
        "/api/jobs",
    ];
    let parts = (
        0..METHODS.len(),
        0..PATHS.len(),
        0..4usize, // Host: ours, foreign, ours with another port, none
        0..5usize, // credential: none, good Bearer, bad Bearer, good cookie, bad cookie
        0..3usize, // token: none, good, bad
        0..3usize, // Origin: none, ours, foreign
        0..3usize, // Sec-Fetch-Site: none, same-origin, cross-site
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let result = runner.run(&parts, |(m, p, host, cred, token, origin, site)| {
        let (method, path) = (METHODS[m], PATHS[p]);
        // Nothing here may change the registry, even when allowed: a
        // DELETE names no run that exists, an import no directory.
        let path = if method == "DELETE" {
            "/api/runs/nope"
        } else {
            path
        };
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        let ours = lab.host();
        match host {
            0 => req.push_str(&format!("Host: {ours}\r\n")),
            1 => req.push_str("Host: evil.example\r\n"),
            2 => req.push_str("Host: 127.0.0.1:1\r\n"),
            _ => {}
        }
        match cred {
            1 => req.push_str(&format!("Authorization: Bearer {}\r\n", lab.key)),
            2 => req.push_str("Authorization: Bearer not-the-key\r\n"),
            3 => req.push_str(&format!("Cookie: {}\r\n", lab.cookie)),
            4 => req.push_str("Cookie: lab-session=forged\r\n"),
            _ => {}
        }
        match token {
            1 => req.push_str(&format!("X-Lab-Token: {}\r\n", lab.token)),
            2 => req.push_str(&format!("X-Lab-Token: {}\r\n", "0".repeat(64))),
            _ => {}
        }
        match origin {
            1 => req.push_str(&format!("Origin: http://{ours}\r\n")),
            2 => req.push_str("Origin: http://evil.example\r\n"),
            _ => {}
        }
        match site {
            1 => req.push_str("Sec-Fetch-Site: same-origin\r\n"),
            2 => req.push_str("Sec-Fetch-Site: cross-site\r\n"),
            _ => {}
        }
        let body = br#"{"path": "/definitely/not/here"}"#;
        if method == "POST" || method == "PUT" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        let mut bytes = req.into_bytes();
        if method == "POST" || method == "PUT" {
            bytes.extend_from_slice(body);
        }
        let reply = runtime.block_on(lab.raw(&bytes));
        let what = format!(
            "{method} {path} host={host} cred={cred} token={token} origin={origin} site={site}"
        );
        prop_assert!(
            reply
                .headers
                .iter()
                .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-")),
            "{what}: an Access-Control header"
        );
        let text = reply.text();
        let run_data = text.contains("Demo run") || reply.body.len() == 100_000;
        if host != 0 {
            prop_assert!(
                reply.status == 400 || reply.status == 403,
                "{what}: a foreign or missing Host answered {}",
                reply.status
            );
            prop_assert!(!run_data, "{what}: run data for a foreign Host");
        }
        let credentialed = cred == 1 || cred == 3;
        if !credentialed && path.starts_with("/api/") {
            prop_assert!(
                reply.status >= 400,
                "{what}: answered {} without a credential",
                reply.status
            );
        }
        if !credentialed {
            prop_assert!(!run_data, "{what}: run data without a credential");
        }
        let mutation = !matches!(method, "GET" | "HEAD" | "OPTIONS");
        if cred == 3 && mutation && token != 1 {
            prop_assert!(
                reply.status >= 400,
                "{what}: a cookie mutation without the token answered {}",
                reply.status
            );
        }
        Ok(())
    });
    // The registry is as it was.
    let listed = runtime.block_on(lab.request(
        "GET",
        "/api/runs",
        &[("Authorization", &format!("Bearer {}", lab.key))],
        b"",
    ));
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    runtime.block_on(lab.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(listed["total"], 2, "{listed}");
}

/// What the binary refuses, the library refuses: a listener that is not
/// loopback, through the builder and through `serve` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_is_not_loopback_is_refused_by_the_library() {
    let scratch = tempfile::tempdir().unwrap();
    let config = || {
        let registry = lab_registry::Registry::open(scratch.path(), &[]).unwrap();
        lab_http::Config::new(
            Arc::new(registry),
            lab_fs::Allowlist::default(),
            lab_http::AccessKey::generate().unwrap(),
        )
    };
    {
        let everywhere = lab_http::Bind::Tcp("0.0.0.0:0".parse().unwrap());
        let refused = lab_http::Builder::new(config()).bind(&everywhere).await;
        assert!(
            matches!(refused, Err(lab_http::ListenError::External(_))),
            "{refused:?}"
        );
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let served = lab_http::serve(config(), listener, async {}).await;
        assert_eq!(
            served.unwrap_err().kind(),
            std::io::ErrorKind::PermissionDenied
        );
        // Allowed explicitly, it binds.
        let mut allowed = config();
        allowed.allow_external = true;
        let bound = lab_http::Builder::new(allowed)
            .bind(&everywhere)
            .await
            .unwrap();
        assert!(bound.local_addr().unwrap().ip().is_unspecified());
        // Loopback needs nothing.
        let local = lab_http::Bind::Tcp("127.0.0.1:0".parse().unwrap());
        let bound = lab_http::Builder::new(config()).bind(&local).await.unwrap();
        assert!(bound.login_link().contains("/#key="));
    }
}

#[tokio::test]
async fn a_run_id_issued_before_stable_ids_still_answers() {
    let lab = start_on(
        lab_http::Limits::default(),
        Vec::new(),
        Ids::BeforeStableIds,
    )
    .await;
    assert!(lab.run_id.starts_with("demo-") && lab.run_id.len() == "demo-".len() + 12);
    // The list shows each run once, by its id now.
    let page: serde_json::Value = serde_json::from_slice(&lab.get("/api/runs").await.body).unwrap();
    let mut listed: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0], lab.run_id);
    assert!(listed[1].starts_with("other-") && !listed.contains(&"other-00aa11"));
    // The old id answers 200 with the run (no redirect), whose id is new.
    for path in [
        "/api/runs/demo-3f9c2d",
        &format!("/api/runs/{}", lab.run_id),
    ] {
        let reply = lab.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let run: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(run["id"], lab.run_id.as_str(), "{path}");
    }
    let video = lab.get("/api/runs/demo-3f9c2d/artifacts/output.mp4").await;
    assert_eq!(video.status, 200, "{}", video.text());
    assert_eq!(video.body.len(), 100_000);
    // Forgotten by the old id: then neither id answers.
    let token = lab.token.clone();
    let gone = lab
        .request(
            "DELETE",
            "/api/runs/demo-3f9c2d",
            &[("X-Lab-Token", &token)],
            b"",
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    let gone: serde_json::Value = serde_json::from_slice(&gone.body).unwrap();
    assert_eq!(gone["forgotten"]["id"], lab.run_id.as_str());
    for path in [
        "/api/runs/demo-3f9c2d",
        &format!("/api/runs/{}", lab.run_id),
    ] {
        assert_eq!(lab.get(path).await.status, 404, "{path}");
    }
    lab.stop().await;
}

/// A Lab run's `histograms.jsonl` (what a bundle carries) is listed in the
/// run's details and served as TensorBoard's bands, at most `points`
/// steps spread over the steps (the last among them); its bad lines are
/// errors of the run; an unknown name is 404, a bad `points` 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_histogram_is_served_as_its_quantile_bands() {
    let lab = start().await;
    let run = lab.base.join("runs/histos");
    std::fs::create_dir(&run).unwrap();
    let mut lines = String::new();
    for step in [0, 10, 20] {
        // Four equal buckets over [0, 4]: a uniform distribution, whose
        // value at basis point b is b / 2500 (2 at 5000: that weight is a
        // bucket's edge, and numpy's side="right" takes the next bucket).
        lines.push_str(&format!(
            "{{\"name\": \"layer/w\", \"step\": {step}, \"wall_time\": 100.5, \"min\": 0, \"max\": 4, \"limits\": [1, 2, 3, 4], \"counts\": [1, 1, 1, 1]}}\n"
        ));
    }
    lines.push_str("{\"name\": \"bad\", \"step\": 1, \"min\": 0, \"max\": 1, \"limits\": [1], \"counts\": [-1]}\n");
    lines.push_str("{\"name\": \"bad\", \"step\": 2, \"min\": 0, \"max\": 1, \"limits\": [1, 2], \"counts\": [1]}\n");
    lines.push_str("not json\n");
    std::fs::write(run.join("histograms.jsonl"), lines).unwrap();
    std::fs::write(run.join("run.json"), "{\"name\": \"histos\"}").unwrap();
    let body = serde_json::json!({ "path": run.display().to_string(), "id": "histos" });
    let imported = lab.post_json("/api/runs", &body.to_string()).await;
    assert_eq!(imported.status, 201, "{}", imported.text());
    let detail = lab.get("/api/runs/histos").await;
    let detail: serde_json::Value = serde_json::from_slice(&detail.body).unwrap();
    assert_eq!(
        detail["histograms"],
        serde_json::json!([{"name": "layer/w", "count": 3, "last_step": 20}])
    );
    let errors = detail["errors"].to_string();
    assert!(errors.contains("negative"), "{errors}");
    assert!(errors.contains("2 bucket limits but 1 counts"), "{errors}");
    assert!(errors.contains("histograms.jsonl line 6"), "{errors}");
    let reply = lab
        .get("/api/runs/histos/histograms/layer%2Fw?points=2")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let got: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(got["name"], "layer/w");
    let points = got["points"].as_array().unwrap();
    let steps: Vec<i64> = points.iter().map(|p| p["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [0, 20]);
    assert_eq!(points[1]["wall_time"], 100.5);
    let expected = [
        0.0, 668.0, 1587.0, 3085.0, 5000.0, 6915.0, 8413.0, 9332.0, 10000.0,
    ]
    .map(|b: f64| if b == 5000.0 { 2.0 } else { b / 2500.0 });
    for (band, e) in points[1]["bands"].as_array().unwrap().iter().zip(expected) {
        assert!((band.as_f64().unwrap() - e).abs() < 1e-12, "{band} != {e}");
    }
    let all = lab.get("/api/runs/histos/histograms/layer%2Fw").await;
    let all: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    assert_eq!(all["points"].as_array().unwrap().len(), 3);
    let unknown = lab.get("/api/runs/histos/histograms/nothing").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "unknown_histogram");
    let bad = lab
        .get("/api/runs/histos/histograms/layer%2Fw?points=0")
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "bad_query");
    lab.stop().await;
}
