//! Embedding: the example host (`examples/mount.rs`) mounts the Lab under
//! `/lab/` beside its own routes, and the library's own refusals hold for
//! an embedder that never went through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // starts chromedriver

#[allow(dead_code)] // the test drives `host`, not the example's `main`
#[path = "../examples/mount.rs"]
mod example;

use std::process::Command;
use std::sync::Arc;

use lab_test_support::browser::{Browser, wait_for};
use lab_test_support::fixture::Tree;
use lab_test_support::http::{Request, new_binding};

struct Host {
    _scratch: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
    port: u16,
    key: String,
    run: String,
}

/// A registry with one run holding `videos/clip.mp4` (16 bytes), and the
/// example host serving it under `/lab/` on a loopback port.
fn host() -> Host {
    let scratch = tempfile::tempdir().unwrap();
    let runs = scratch.path().join("runs");
    Tree::new(&runs)
        .file("demo/params.json", r#"{"lr": 0.1}"#)
        .file("demo/videos/clip.mp4", b"0123456789abcdef");
    let runs = runs.canonicalize().unwrap();
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let registry = lab_registry::Registry::open(&data, std::slice::from_ref(&runs)).unwrap();
    let run = registry
        .import(&runs.join("demo"), None)
        .unwrap()
        .id
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = lab_http::AccessKey::generate().unwrap();
    let config = lab_http::Config::new(
        Arc::new(registry),
        lab_fs::Allowlist::default(),
        key.clone(),
    );
    let (port, lab, listener) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        let lab = lab_http::LabService::new(config, &hosts, example::PREFIX).unwrap();
        (port, lab, listener)
    });
    runtime.spawn(example::host(listener, lab));
    Host {
        _scratch: scratch,
        _runtime: runtime,
        port,
        key: key.as_str().to_owned(),
        run,
    }
}

#[test]
fn the_mounted_lab_keeps_its_guard_beside_the_hosts_routes() {
    let h = host();
    let get = |path: &str| Request::new("GET", path).anonymous().send(h.port).unwrap();
    // Nothing without the key; the host's own route is the host's.
    assert_eq!(get("/lab/api/runs").status, 401);
    assert_eq!(get("/hello").status, 200);
    assert_eq!(get("/lab").header("location"), Some("/lab/"));
    // The login shell and its assets, beneath the prefix.
    let shell = get("/lab/").text();
    assert!(
        shell.contains(r#"<meta name="lab-prefix" content="/lab">"#),
        "{shell}"
    );
    assert!(shell.contains(r#"src="/lab/assets/login.js""#), "{shell}");
    assert!(!shell.contains("lab-token"), "the shell holds no token");
    assert_eq!(get("/lab/assets/login.js").status, 200);
    // The Host check: a name the host did not list is refused.
    let foreign = Request::new("GET", "/lab/api/runs")
        .header("Host", "evil.example")
        .header("Authorization", format!("Bearer {}", h.key))
        .send(h.port)
        .unwrap();
    assert!(matches!(foreign.status, 400 | 403), "{}", foreign.summary());
    // The host hands on origin-form targets only.
    let absolute = Request::new("GET", "http://evil.example/lab/api/runs")
        .header("Authorization", format!("Bearer {}", h.key))
        .send(h.port)
        .unwrap();
    assert_eq!(absolute.status, 400, "{}", absolute.summary());
    // The key as Bearer: the run, with URLs beneath the prefix.
    let bearer = |path: &str| {
        Request::new("GET", path)
            .anonymous()
            .header("Authorization", format!("Bearer {}", h.key))
    };
    let run = bearer(&format!("/lab/api/runs/{}", h.run))
        .send(h.port)
        .unwrap()
        .json();
    let url = run["video_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/lab/api/runs/{}/artifacts/", h.run)),
        "{url}"
    );
    // An artifact's Range read through the host.
    let part = bearer(&url)
        .header("Range", "bytes=4-7")
        .send(h.port)
        .unwrap();
    assert_eq!(part.status, 206, "{}", part.summary());
    assert_eq!(part.text(), "4567");
    assert_eq!(part.header("content-range"), Some("bytes 4-7/16"));
    // Signing in: the cookie is scoped to the prefix.
    let binding = new_binding();
    let login = Request::new("POST", "/lab/api/session")
        .anonymous()
        .json(&format!(
            r#"{{"key": "{}", "binding": "{binding}"}}"#,
            h.key
        ))
        .send(h.port)
        .unwrap();
    assert_eq!(login.status, 204, "{}", login.summary());
    let cookie = login.header("set-cookie").unwrap();
    assert!(cookie.contains("; Path=/lab/"), "{cookie}");
    // The security headers on the Lab's answers, none on the host's.
    assert!(
        get("/lab/api/runs")
            .header("content-security-policy")
            .is_some()
    );
}

/// A browser signed in to the mounted Lab never sends its cookie to the
/// host's own routes, and keeps the page binding under a key of the
/// prefix's.
#[test]
fn a_host_route_never_receives_the_labs_cookie() {
    let h = host();
    let browser = Browser::start(Command::new("chromedriver"));
    browser.goto(&format!("http://127.0.0.1:{}/lab/#key={}", h.port, h.key));
    // Signed in: the app shows the run.
    wait_for(
        &browser,
        "document.querySelector('meta[name=\"lab-token\"]') && document.body.innerText.includes('demo')",
        "true",
    );
    let stored = browser.run_async(
        "const done = arguments[0]; done([localStorage.getItem('lab-binding:/lab') !== null, localStorage.getItem('lab-binding')]);",
    );
    assert_eq!(
        stored,
        serde_json::json!([true, null]),
        "the binding's key is the prefix's"
    );
    browser.goto(&format!("http://127.0.0.1:{}/hello", h.port));
    let seen = browser.run_async("arguments[0](document.body.innerText)");
    let seen = seen.as_str().unwrap();
    assert!(seen.starts_with("hello from the host"), "{seen}");
    assert!(
        !seen.contains("lab_session"),
        "the host's route was sent the Lab's cookie: {seen}"
    );
    // The Lab's own routes still get it: the page under the prefix is the
    // signed-in one.
    browser.goto(&format!("http://127.0.0.1:{}/lab/", h.port));
    wait_for(
        &browser,
        "document.querySelector('meta[name=\"lab-token\"]') !== null",
        "true",
    );
}
