//! Headless Chromium driven through chromedriver's WebDriver protocol
//! (plain JSON over HTTP, no client crate), for the browser tests and the
//! screenshots. Needs Debian's `chromium` and `chromium-driver` (`cargo
//! xtask test` installs them); it panics, never skips, without them.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::lab::Killed;

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
        .port()
}

/// One HTTP/1.1 request to chromedriver with a JSON body; returns the
/// parsed JSON answer.
fn http_json(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut request = crate::http::Request::new(method, path).anonymous();
    if let Some(body) = body {
        request = request.json(&body.to_string());
    }
    let reply = request
        .send(port)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", reply.text()))
}

/// The key of a WebDriver element reference (W3C WebDriver, "web element
/// identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Headless Chromium through chromedriver: one WebDriver session.
#[derive(Debug)]
pub struct Browser {
    port: u16,
    session: String,
    _driver: Killed,
    /// Chromium's profile (its only writes), removed after the driver
    /// (fields drop in order).
    _profile: tempfile::TempDir,
    /// One browser at a time in a test binary: two chromedrivers started
    /// together can be handed the same free port (one then talks to the
    /// other's sessions), and two Chromiums on two cores starve each
    /// other's timeouts. Released last.
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Whose turn it is to drive a browser.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Browser {
    /// Starts `chromedriver` (the caller's command for it: test support
    /// builds no process of its own) on a free port, and a headless
    /// Chromium session (1280×900).
    pub fn start(mut chromedriver: Command) -> Self {
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let port = free_port();
        let driver = chromedriver
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver is required (`cargo xtask test` installs chromium-driver): {e}"
                )
            });
        let driver = Killed(driver);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile =
            tempfile::tempdir().unwrap_or_else(|e| panic!("a browser profile directory: {e}"));
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
                    "--window-size=1280,900", "--hide-scrollbars", "--force-color-profile=srgb",
                    format!("--user-data-dir={}", profile.path().display()),
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
            _profile: profile,
            _turn: turn,
        }
    }

    /// One WebDriver command of this session; panics on a WebDriver error.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let reply = http_json(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        );
        // A WebDriver error carries a stack trace besides its error code.
        if reply["value"].get("error").is_some() && reply["value"].get("stacktrace").is_some() {
            let sent = body.map(|b| b.to_string()).unwrap_or_default();
            let sent: String = sent.chars().take(600).collect();
            panic!(
                "{method} {path}: {}: {} (sent {sent})",
                reply["value"]["error"], reply["value"]["message"]
            );
        }
        reply["value"].clone()
    }

    /// Resizes the window (a taller one shows more of a page in a
    /// screenshot).
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Navigates to `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    /// Runs async script; the last argument is the callback.
    pub fn run_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs async script with `args` (JSON values, no quoting into the
    /// script) before the callback, which is the last argument.
    pub fn run_async_with(&self, script: &str, args: &[Value]) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The WebDriver id of the first element `css` selects.
    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    /// Types `text` into the element `css` selects, key by key as a user
    /// would (WebDriver's Element Send Keys: each character fires the
    /// page's key and input events; `\n` is Enter).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Empties the editable element `css` selects (WebDriver's Element
    /// Clear).
    pub fn clear(&self, css: &str) {
        let id = self.element(css);
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
    }

    /// Runs `source` in every new document before the page's own scripts
    /// (DevTools protocol; the page's CSP does not apply to it).
    pub fn on_new_document(&self, source: &str) {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", None);
        base64_decode(
            encoded
                .as_str()
                .unwrap_or_else(|| panic!("a screenshot is base64 text: {encoded}")),
        )
    }

    /// The cookies the browser holds for the current page, `HttpOnly`
    /// ones included, as a `Cookie` header value (`name=value; …`): what
    /// the browser itself sends with an element's request.
    pub fn cookie_header(&self) -> String {
        self.call("GET", "/cookie", None)
            .as_array()
            .map(|cookies| {
                cookies
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}",
                            c["name"].as_str().unwrap_or_default(),
                            c["value"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// The browser console's entries since the last call.
    pub fn console(&self) -> Vec<Value> {
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

/// Standard base64 (WebDriver screenshots).
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'=' && !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (u32::from(value(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Waits (in the page) until `condition` (a JS expression) is truthy, then
/// returns `result` (a JS expression); or `{"timeout": …}` after 15 s.
pub fn wait_for(browser: &Browser, condition: &str, result: &str) -> Value {
    wait_for_within(browser, 15, condition, result)
}

/// [`wait_for`] with its own bound: `{"timeout": …}` after `seconds`
/// (for what takes a job's run, not a page's render). A bound past
/// WebDriver's default script timeout (30 s) raises it to cover the wait.
pub fn wait_for_within(browser: &Browser, seconds: u64, condition: &str, result: &str) -> Value {
    let millis = seconds * 1000;
    if millis + 5_000 > 30_000 {
        browser.call("POST", "/timeouts", Some(json!({"script": millis + 5_000})));
    }
    browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {{
           let ok = false;
           try {{ ok = ({condition}); }} catch (e) {{}}
           if (ok) return done({result});
           if (Date.now() - start > {millis}) return done({{timeout: {condition:?}}});
           setTimeout(poll, 100);
         }})();"
    ))
}
