//! The request guard's oracle on raw request bytes, for the fuzz target
//! (`crates/lab-http/fuzz`, `guard`) and the property test: a real server
//! on a loopback port, over a registry with one run whose every readable
//! part (its name, notes, a metric, a param) carries a random marker, is
//! sent whatever bytes the input holds, and the answer is judged. Not an API.
//!
//! An input is a template: `{KEY}` becomes the access key, `{COOKIE}` the
//! session cookie (`name=value`), `{BINDING}` its page binding, `{TOKEN}`
//! that session's page token, `{NOTES}` the signed URL (path and query) the
//! API gave that session for the run's `notes.md`,
//! `{HOST}` this server's `127.0.0.1:PORT`, `{RUN}` the run's id, `{DIR}` a
//! directory under the allowed root that may be imported, and `{LEN}` the
//! length of what follows the next blank line up to the next `{/}` (which
//! is dropped) or the end. The oracle is judged on the
//! bytes sent, whatever put a value there:
//!
//! - no response carries an `Access-Control-*` header;
//! - bytes that name none of this server's Host values get only refusals
//!   (a status of 400 or more), and never run data;
//! - bytes without the key, or without the session cookie together with
//!   its binding or a URL signature the API gave it, never get run data
//!   (the marker), whatever the route;
//! - bytes without the key, or without the cookie, its binding and the
//!   token together, never change the registry or the exports directory;
//! - the server answers (or closes) within 10 s, and keeps serving.
//!
//! A change the input was allowed to make is undone before the next one.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lab_registry::Registry;

/// A server to send templates to, and what it must never give away.
pub struct GuardHarness {
    port: u16,
    key: String,
    /// `name=value`.
    cookie: String,
    binding: String,
    token: String,
    /// The signed URL of the run's `notes.md`, and its signature.
    notes: String,
    signature: String,
    marker: String,
    run_id: String,
    base: PathBuf,
    runs: PathBuf,
    exports: PathBuf,
    registry: Arc<Registry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GuardHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardHarness")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// What one template did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every status line's code, in order.
    pub statuses: Vec<u16>,
    /// Whether run data (the marker) came back.
    pub run_data: bool,
    /// Whether the registry or the exports directory changed.
    pub changed: bool,
}

fn random_hex() -> String {
    lab_registry::data_dir::random_hex(12).unwrap_or_else(|e| panic!("the OS RNG: {e}"))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

impl GuardHarness {
    /// A server over a fresh scratch directory, signed in once.
    pub fn start() -> Self {
        let base = std::env::temp_dir().join(format!(
            "lab-http-guard-{}-{}",
            std::process::id(),
            random_hex()
        ));
        let runs = base.join("runs");
        let run = runs.join("run");
        let importable = runs.join("importable");
        for dir in [&run, &importable] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        let base = base
            .canonicalize()
            .unwrap_or_else(|e| panic!("scratch: {e}"));
        let runs = base.join("runs");
        let run = runs.join("run");
        let marker = format!("m{}", random_hex());
        write(
            &run.join("run.toml"),
            &format!("name = \"{marker}\"\ndescription = \"{marker}\"\n"),
        );
        write(&run.join("notes.md"), &marker);
        write(&run.join("params.json"), &format!("{{\"{marker}\": 1}}"));
        write(
            &run.join("metrics.jsonl"),
            &format!("{{\"step\": 0, \"{marker}\": 1.5}}\n"),
        );
        write(&base.join("runs/importable/notes.md"), "importable");
        // Its own run file makes it a run (a directory of notes alone is
        // none, SPEC §6).
        write(
            &base.join("runs/importable/run.toml"),
            "name = \"importable\"\n",
        );
        let registry = Registry::open(&base.join("data"), std::slice::from_ref(&runs))
            .unwrap_or_else(|e| panic!("registry: {e}"));
        let run_id = registry
            .import(&run, None)
            .unwrap_or_else(|e| panic!("import: {e}"))
            .id
            .to_string();
        let registry = Arc::new(registry);
        let exports = base.join("data/exports");
        let key = crate::AccessKey::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let mut config = crate::Config::new(
            Arc::clone(&registry),
            lab_fs::Allowlist::default(),
            key.clone(),
        );
        config.exports_dir = Some(exports.clone());
        config.limits.header_read_timeout = Duration::from_secs(2);
        // Generated inputs fail their credentials by the hundred a second:
        // the server-wide lockout (tested on its own) would answer most of
        // them 429 before the guard's other checks could be reached.
        config.limits.max_failures_per_second = u32::MAX;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("listener: {e}"));
                let served = crate::serve(config, listener, async {
                    let _ = stopped.await;
                })
                .await;
                served.unwrap_or_else(|e| panic!("serve: {e}"));
            });
        });
        let mut harness = Self {
            port,
            key: key.as_str().to_owned(),
            cookie: String::new(),
            binding: random_hex(),
            token: String::new(),
            notes: String::new(),
            signature: String::new(),
            marker,
            run_id,
            base,
            runs,
            exports,
            registry,
            stop: Some(stop),
            thread: Some(thread),
        };
        harness.sign_in();
        harness
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `bytes` on a new connection, half-closes it, and reads until
    /// the server closes (at most 10 s: longer is a hang, and fails).
    fn send(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| panic!("connect: {e}"));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        // The server may answer and close before reading everything.
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        match stream.read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "no answer within 10 s ({e}) to {:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
        reply
    }

    /// Signs in with the key and a binding, reads the page's token and the
    /// signed URL of the run's notes.
    fn sign_in(&mut self) {
        let body = format!(
            "{{\"key\": \"{}\", \"binding\": \"{}\"}}",
            self.key, self.binding
        );
        let login = self.send(
            format!(
                "POST /api/session HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.host(),
                body.len()
            )
            .as_bytes(),
        );
        let login = String::from_utf8_lossy(&login);
        let cookie = login
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .starts_with("set-cookie:")
                    .then(|| l["set-cookie:".len()..].trim())
            })
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no session cookie: {login}"));
        self.cookie = cookie.to_owned();
        let page = self.send(
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n",
                self.host(),
                self.cookie
            )
            .as_bytes(),
        );
        let page = String::from_utf8_lossy(&page);
        let slot = "<meta name=\"lab-token\" content=\"";
        let at = page
            .find(slot)
            .unwrap_or_else(|| panic!("no token in the page: {page}"))
            + slot.len();
        self.token = page[at..at + 64].to_owned();
        let run = self.send(
            format!(
                "GET /api/runs/{} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nX-Lab-Binding: {}\r\nConnection: close\r\n\r\n",
                self.run_id,
                self.host(),
                self.cookie,
                self.binding
            )
            .as_bytes(),
        );
        let run = String::from_utf8_lossy(&run);
        let body = run.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        self.notes = json["artifacts"]
            .as_array()
            .and_then(|all| all.iter().find(|a| a["name"] == "notes.md"))
            .and_then(|a| a["url"].as_str())
            .unwrap_or_else(|| panic!("no signed URL for notes.md: {run}"))
            .to_owned();
        self.signature = self
            .notes
            .split_once("sig=")
            .map(|(_, sig)| sig.to_owned())
            .unwrap_or_else(|| panic!("an unsigned URL: {}", self.notes));
    }

    /// The template with its placeholders filled in.
    pub fn fill(&self, template: &[u8]) -> Vec<u8> {
        let dir = self.runs.join("importable");
        let host = self.host();
        let values: [(&[u8], &[u8]); 8] = [
            (b"{KEY}", self.key.as_bytes()),
            (b"{COOKIE}", self.cookie.as_bytes()),
            (b"{BINDING}", self.binding.as_bytes()),
            (b"{NOTES}", self.notes.as_bytes()),
            (b"{TOKEN}", self.token.as_bytes()),
            (b"{HOST}", host.as_bytes()),
            (b"{RUN}", self.run_id.as_bytes()),
            (b"{DIR}", dir.as_os_str().as_encoded_bytes()),
        ];
        let mut out = Vec::with_capacity(template.len() + 128);
        let mut at = 0;
        'scan: while at < template.len() {
            for (name, value) in values {
                if template[at..].starts_with(name) {
                    out.extend_from_slice(value);
                    at += name.len();
                    continue 'scan;
                }
            }
            out.push(template[at]);
            at += 1;
        }
        // `{LEN}`: the length of what follows the next blank line, up to
        // the next `{/}` (dropped) or the end.
        let mut filled = Vec::with_capacity(out.len());
        let mut at = 0;
        while at < out.len() {
            let len = memchr::memmem::find(&out[at..], b"{LEN}").map(|f| at + f);
            let end = memchr::memmem::find(&out[at..], b"{/}").map(|f| at + f);
            match (len, end) {
                (Some(here), end) if end.is_none_or(|e| here < e) => {
                    filled.extend_from_slice(&out[at..here]);
                    let rest = &out[here + 5..];
                    let body = memchr::memmem::find(rest, b"\r\n\r\n").map_or(0, |b| {
                        let body = &rest[b + 4..];
                        memchr::memmem::find(body, b"{/}").unwrap_or(body.len())
                    });
                    filled.extend_from_slice(body.to_string().as_bytes());
                    at = here + 5;
                }
                (_, Some(end)) => {
                    filled.extend_from_slice(&out[at..end]);
                    at = end + 3;
                }
                (_, None) => {
                    filled.extend_from_slice(&out[at..]);
                    at = out.len();
                }
            }
        }
        filled
    }

    /// What the registry and the exports directory hold.
    fn state(&self) -> (Vec<(String, PathBuf)>, Vec<String>) {
        let runs = self
            .registry
            .runs()
            .unwrap_or_else(|e| panic!("the registry cannot be read: {e}"));
        let mut runs: Vec<(String, PathBuf)> = runs
            .iter()
            .map(|r| (r.id.to_string(), r.root.clone()))
            .collect();
        runs.sort();
        let mut exports: Vec<String> = std::fs::read_dir(&self.exports)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        exports.sort();
        (runs, exports)
    }

    /// Sends `template` filled in, judges the answer (panics when the
    /// oracle fails), and undoes whatever it was allowed to change.
    pub fn check(&mut self, template: &[u8]) -> Outcome {
        let sent = self.fill(template);
        let before = self.state();
        let reply = self.send(&sent);
        let after = self.state();
        let has = |needle: &[u8]| memchr::memmem::find(&sent, needle).is_some();
        let lower: Vec<u8> = sent.to_ascii_lowercase();
        let names_us = [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
            format!("[::1]:{}", self.port),
        ]
        .iter()
        .any(|h| memchr::memmem::find(&lower, h.as_bytes()).is_some());
        let session = self
            .cookie
            .split_once('=')
            .map_or("", |(_, v)| v)
            .to_owned();
        let keyed = has(self.key.as_bytes());
        let cookied = !session.is_empty() && has(session.as_bytes());
        let tokened = has(self.token.as_bytes());
        let bound = has(self.binding.as_bytes());
        let signed = has(self.signature.as_bytes());
        let outcome = Outcome {
            statuses: statuses(&reply),
            run_data: memchr::memmem::find(&reply, self.marker.as_bytes()).is_some(),
            changed: before != after,
        };
        let shown = || String::from_utf8_lossy(&sent).into_owned();
        assert!(
            !has_cors_header(&reply),
            "an Access-Control header in the answer to {:?}",
            shown()
        );
        if !names_us {
            assert!(
                outcome.statuses.iter().all(|s| *s >= 400),
                "bytes naming no Host of ours were answered {:?}: {:?}",
                outcome.statuses,
                shown()
            );
            assert!(
                !outcome.run_data,
                "run data without our Host: {:?}",
                shown()
            );
        }
        if !keyed && !(cookied && (bound || signed)) {
            assert!(
                !outcome.run_data,
                "run data without the key, or the cookie with its binding or a signature: {:?}",
                shown()
            );
        }
        if outcome.changed {
            assert!(
                keyed || (cookied && bound && tokened),
                "a change without the key or the cookie, its binding and its token: {:?} → {:?} by {:?}",
                before,
                after,
                shown()
            );
            self.restore(&before);
        }
        // The input may have signed out our session or pushed it out.
        if keyed || cookied {
            self.sign_in();
        }
        outcome
    }

    /// Puts the registry and the exports directory back as `before`.
    fn restore(&mut self, before: &(Vec<(String, PathBuf)>, Vec<String>)) {
        let (runs, exports) = self.state();
        for (id, _) in runs.iter().filter(|r| !before.0.contains(r)) {
            let id = lab_registry::RunId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            self.registry
                .forget(&id)
                .unwrap_or_else(|e| panic!("forget: {e}"));
        }
        for (_, root) in before.0.iter().filter(|r| !runs.contains(r)) {
            let record = self
                .registry
                .import(root, None)
                .unwrap_or_else(|e| panic!("import again: {e}"));
            if root.ends_with("run") {
                self.run_id = record.id.to_string();
            }
        }
        for name in exports.iter().filter(|e| !before.1.contains(e)) {
            let _ = std::fs::remove_file(self.exports.join(name));
        }
    }
}

impl Drop for GuardHarness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The status code of every response in `reply`: every `HTTP/1.1 NNN `
/// (no body this server sends holds one with its spaces: a request target
/// has none, and the run's files are the harness's own).
fn statuses(reply: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&reply[at..], b"HTTP/1.1 ") {
        let here = at + found;
        let code = reply
            .get(here + 9..here + 13)
            .filter(|d| d[3] == b' ' && d[..3].iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(&d[..3]).ok())
            .and_then(|d| d.parse::<u16>().ok());
        out.extend(code);
        at = here + 9;
    }
    out
}

/// Whether any header line of `reply` is `Access-Control-*`.
fn has_cors_header(reply: &[u8]) -> bool {
    reply
        .split(|b| *b == b'\n')
        .any(|line| line.to_ascii_lowercase().starts_with(b"access-control-"))
}
