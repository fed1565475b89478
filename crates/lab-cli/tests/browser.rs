//! The real binary in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver protocol (plain JSON over HTTP, no client crate),
//! loads the UI on the fixture runs, opens the run with the video, and checks
//! that `<video>` plays and seeks the (not fast-started) MP4 through its
//! artifact URL with no CSP violation and no console error.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `cargo xtask test`
//! installs them. The test fails, never skips, when they are absent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // starts the binary, chromedriver

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const LAB: &str = env!("CARGO_BIN_EXE_lab");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request with a JSON body; returns the parsed JSON answer.
fn http_json(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    // chromedriver keeps connections open: read the head, then exactly the body.
    let mut reader = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let body = if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|n| n.trim().parse::<usize>().unwrap())
    {
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    } else {
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        if head.contains("transfer-encoding: chunked") {
            dechunk(&rest)
        } else {
            rest
        }
    };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

struct Browser {
    port: u16,
    session: String,
    _driver: Killed,
}

impl Browser {
    fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is required: `cargo xtask test` installs chromium-driver");
        let driver = Killed(driver);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let created = http_json(port, "POST", "/session", Some(&caps));
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Self {
            port,
            session,
            _driver: driver,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = http_json(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        if reply["value"].get("error").is_some() {
            panic!("{method} {path}: {reply}");
        }
        reply["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs async script; the last argument is the callback.
    fn run_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn console(&self) -> Vec<Value> {
        self.call("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http_json(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

#[test]
fn the_browser_plays_and_seeks_the_fixture_video() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/runs");
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(LAB)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--root")
        .arg(&fixtures)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Killed(child);
    let base = line
        .trim()
        .strip_prefix("lab: listening on ")
        .unwrap()
        .to_owned();

    let browser = Browser::start();
    browser.goto(&base);
    // The runs list renders the fixture runs from the API.
    let names = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {
           const items = [...document.querySelectorAll('#runs li strong')].map(e => e.textContent);
           if (items.length >= 3 || Date.now() - start > 10000) done(items); else setTimeout(poll, 100);
         })();",
    );
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, ["cartpole-ppo", "diffusion-sweep-a", "lorenz-sim"]);

    // Open the run with the video; collect CSP violations from here on.
    let outcome = browser.run_async(
        "const done = arguments[arguments.length - 1];
         window.__csp = [];
         document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
         const link = [...document.querySelectorAll('#runs li a')].find(a => a.textContent.startsWith('cartpole-ppo'));
         link.click();
         const start = Date.now();
         (function poll() {
           const v = document.querySelector('#videos video');
           if (Date.now() - start > 20000) return done({error: 'timeout', state: v ? v.readyState : null, err: v && v.error ? v.error.code : null});
           if (!v || v.readyState < 2) return setTimeout(poll, 100);
           const ready = v.readyState;
           const duration = v.duration;
           v.addEventListener('seeked', () => {
             v.play().then(() => setTimeout(() => done({ready, duration, time: v.currentTime, state: v.readyState, paused: v.paused, csp: window.__csp, src: v.currentSrc}), 500))
              .catch(e => done({error: 'play: ' + e}));
           }, {once: true});
           v.currentTime = 3.0;
         })();",
    );
    assert!(outcome.get("error").is_none(), "{outcome}");
    assert!(outcome["ready"].as_u64().unwrap() >= 2, "{outcome}");
    assert!(
        (outcome["duration"].as_f64().unwrap() - 4.0).abs() < 0.1,
        "{outcome}"
    );
    assert!(
        outcome["time"].as_f64().unwrap() >= 2.9,
        "seeked to 3 s: {outcome}"
    );
    assert_eq!(outcome["paused"], false, "{outcome}");
    assert!(
        outcome["src"]
            .as_str()
            .unwrap()
            .ends_with("/artifacts/output.mp4"),
        "{outcome}"
    );
    assert_eq!(outcome["csp"], json!([]), "no CSP violation");
    // The Export button makes a bundle and offers it for download.
    let exported = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('export').click();
         const start = Date.now();
         (function poll() {
           const link = document.querySelector('#export-result a');
           if (link) return done({href: link.getAttribute('href'), text: document.getElementById('export-result').textContent});
           if (Date.now() - start > 10000) return done({error: document.getElementById('export-result').textContent});
           setTimeout(poll, 100);
         })();",
    );
    assert!(exported.get("error").is_none(), "{exported}");
    let href = exported["href"].as_str().unwrap();
    assert!(
        href.starts_with("/api/exports/cartpole-ppo-") && href.ends_with(".tar"),
        "{exported}"
    );
    let bundle = data
        .path()
        .join("exports")
        .join(href.trim_start_matches("/api/exports/"));
    assert!(bundle.is_file(), "{bundle:?}");
    let errors: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
