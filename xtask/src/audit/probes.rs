//! The audit's probes over HTTP. Each takes a [`Target`] (a running server)
//! and returns a [`Check`] with its evidence: what was sent, what came back.
//! They know nothing about how the server was started, so the same probes
//! run against the real `lab` binary and, in the teeth test, against a
//! deliberately insecure stand-in that must fail every one.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::http::{Reply, Request, new_binding};
use crate::rss_kib;

/// Text planted outside every run root; it must never come back.
pub const OUTSIDE_CANARY: &str = "AUDIT-OUTSIDE-CANARY-7f3a9c";
/// Text planted in decoy files inside a run; it must never come back.
pub const DECOY_CANARY: &str = "AUDIT-DECOY-CANARY-91c2e4";
/// The value of a secret-looking variable in the Lab's environment.
pub const ENV_SECRET: &str = "audit-env-secret-value-5d8e1b";

/// A server under audit.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its loopback port.
    pub port: u16,
    /// The run with decoys (and a video at `output.mp4`).
    pub run: String,
    /// A run whose `output.mp4` is large (sparse), for the memory probe.
    pub big_run: String,
    /// Size of that file.
    pub big_len: u64,
    /// The process whose RSS to watch while streaming.
    pub pid: u32,
    /// The access key from the login link (`None`: none was printed).
    pub key: Option<String>,
}

/// PASS, FAIL, or not applicable yet (said why in the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule held.
    Pass,
    /// The rule broke, or could not be shown to hold.
    Fail,
    /// The capability is not in this build; the evidence says what was checked instead.
    NotApplicable,
}

/// One checklist line.
#[derive(Debug, Clone)]
pub struct Check {
    /// The checklist item.
    pub item: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was sent and what came back.
    pub evidence: Vec<String>,
}

impl Check {
    /// A passing check with no evidence yet.
    pub fn new(item: &str) -> Self {
        Self {
            item: item.to_owned(),
            verdict: Verdict::Pass,
            evidence: Vec::new(),
        }
    }

    /// Records evidence; a failed expectation fails the check.
    pub fn record(&mut self, ok: bool, evidence: impl Into<String>) {
        let evidence = evidence.into();
        if ok {
            self.evidence.push(evidence);
        } else {
            self.verdict = Verdict::Fail;
            self.evidence.push(format!("FAILED: {evidence}"));
        }
    }
}

fn send(target: &Target, request: &Request) -> Reply {
    request.send(target.port).unwrap_or_default()
}

/// The session token from the page's `<meta name="lab-token">`.
pub fn token(target: &Target) -> Option<String> {
    page_token(target, Request::new("GET", "/"))
}

/// The token in the page that `page` (a `GET /` with some credential) gets.
fn page_token(target: &Target, page: Request) -> Option<String> {
    let page = send(target, &page).text();
    let marker = "name=\"lab-token\" content=\"";
    let start = page.find(marker)? + marker.len();
    let token: String = page[start..].chars().take_while(|c| *c != '"').collect();
    (!token.is_empty()).then_some(token)
}

fn artifact(target: &Target, name: &str) -> String {
    format!("/api/runs/{}/artifacts/{name}", target.run)
}

fn leaks(reply: &Reply) -> bool {
    let text = reply.text();
    text.contains(OUTSIDE_CANARY)
        || text.contains(DECOY_CANARY)
        || text.contains(ENV_SECRET)
        || text.contains("root:x:0:0")
}

/// Every probe, in checklist order.
pub fn all(target: &Target) -> Vec<Check> {
    vec![
        loopback_only(target),
        no_key_no_data(target),
        stolen_cookie(target),
        host_check(target),
        cors(target),
        security_headers(target),
        token_required(target),
        token_hygiene(target),
        run_roots_only(target),
        allowlist(target),
        range(target),
        memory_flat(target),
        runner_off(target),
        failures_rate_limited(target),
    ]
}

/// The machine's addresses other than 127.0.0.1 to try connecting to.
fn other_addresses() -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 2])];
    // The source address the kernel would use to reach a (non-routed, never
    // contacted) public address: the primary interface, if there is one.
    if let Ok(socket) = std::net::UdpSocket::bind("0.0.0.0:0")
        && socket.connect("192.0.2.1:9").is_ok()
        && let Ok(local) = socket.local_addr()
        && !local.ip().is_loopback()
        && !local.ip().is_unspecified()
    {
        addrs.push(local.ip());
    }
    addrs
}

/// The server answers on 127.0.0.1 and on no other address.
pub fn loopback_only(target: &Target) -> Check {
    let mut check = Check::new("binds 127.0.0.1 only (not reachable on other addresses)");
    let on_loopback = Request::new("GET", "/api/status").send(target.port);
    check.record(
        on_loopback.is_ok(),
        format!("127.0.0.1:{} answers", target.port),
    );
    for ip in other_addresses() {
        let reached = Request::new("GET", "/api/status")
            .header("Host", format!("127.0.0.1:{}", target.port))
            .send_to(ip, target.port)
            .is_ok_and(|r| r.status != 0);
        check.record(
            !reached,
            format!(
                "{ip}:{} -> {}",
                target.port,
                if reached { "answered" } else { "refused" }
            ),
        );
    }
    check
}

/// A Host that does not name the server is refused before routing.
pub fn host_check(target: &Target) -> Check {
    let mut check = Check::new("Host header must name this server (DNS rebinding)");
    let port = target.port;
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
    ] {
        for path in ["/", "/api/runs", &artifact(target, "output.mp4")] {
            let reply = send(
                target,
                &Request::new("GET", path).header("Host", host.clone()),
            );
            check.record(
                reply.status == 403 && !leaks(&reply) && !reply.text().contains(&target.run),
                format!("GET {path} Host: {host} -> {}", reply.summary()),
            );
        }
    }
    let ok = send(
        target,
        &Request::new("GET", "/api/runs").header("Host", format!("localhost:{port}")),
    );
    check.record(
        ok.status == 200,
        format!("GET /api/runs Host: localhost:{port} -> {}", ok.summary()),
    );
    check
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("access-control-"))
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

/// No CORS header on any response; preflights are never approved.
pub fn cors(target: &Target) -> Check {
    let mut check = Check::new("CORS restricted to same origin (no Access-Control-* ever)");
    let evil = "http://evil.example";
    let requests = [
        Request::new("GET", "/api/runs").header("Origin", evil),
        Request::new("GET", "/api/status").header("Origin", "null"),
        Request::new("OPTIONS", "/api/runs")
            .header("Origin", evil)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "x-lab-token, content-type",
            ),
        Request::new("OPTIONS", "/api/runs/x")
            .header("Origin", evil)
            .header("Access-Control-Request-Method", "DELETE"),
        Request::new("POST", "/api/runs")
            .header("Origin", evil)
            .json("{\"path\": \"/tmp\"}"),
    ];
    for request in &requests {
        let reply = send(target, request);
        let acao = cors_headers(&reply);
        let preflight_refused = request.method != "OPTIONS" || !(200..300).contains(&reply.status);
        let post_refused = request.method != "POST" || reply.status == 403;
        check.record(
            reply.status != 0 && acao.is_empty() && preflight_refused && post_refused,
            format!(
                "{} {} Origin: {} -> {} {}",
                request.method,
                request.path,
                request.headers[0].1,
                reply.summary(),
                if acao.is_empty() {
                    "no Access-Control-*".to_owned()
                } else {
                    acao.join(", ")
                }
            ),
        );
    }
    check
}

/// The security headers are on every response, whatever the status.
pub fn security_headers(target: &Target) -> Check {
    let mut check = Check::new(
        "security headers on every response (nosniff, no-referrer, CORP, no framing, no-store)",
    );
    let video = artifact(target, "output.mp4");
    let requests = [
        Request::new("GET", "/"),
        Request::new("GET", "/api/status"),
        Request::new("GET", "/api/runs"),
        Request::new("GET", "/api/nope"),
        Request::new("GET", "/nope"),
        Request::new("GET", "/api/runs").header("Host", "evil.example"),
        Request::new("POST", "/api/runs"),
        Request::new("GET", &video).header("Range", "bytes=0-9"),
        Request::new("GET", &video).header("Range", "bytes=99999999999-"),
        Request::new("GET", "/api/runs/x/artifacts/..%2f..%2fetc%2fpasswd"),
    ];
    for request in &requests {
        let reply = send(target, request);
        let h = |n: &str| reply.header(n).unwrap_or("").to_owned();
        let csp = h("content-security-policy");
        let mut missing = Vec::new();
        if h("x-content-type-options") != "nosniff" {
            missing.push("nosniff");
        }
        if h("referrer-policy") != "no-referrer" {
            missing.push("Referrer-Policy");
        }
        if h("cross-origin-resource-policy") != "same-origin" {
            missing.push("CORP");
        }
        if h("x-frame-options") != "DENY" {
            missing.push("X-Frame-Options");
        }
        if !csp.contains("frame-ancestors 'none'") {
            missing.push("frame-ancestors");
        }
        let is_json = h("content-type").starts_with("application/json");
        if (request.path == "/" || is_json) && reply.status != 0 && h("cache-control") != "no-store"
        {
            missing.push("Cache-Control: no-store");
        }
        if request.path.contains("/artifacts/")
            && reply.status == 206
            && !csp.starts_with("sandbox")
        {
            missing.push("CSP sandbox on the artifact");
        }
        check.record(
            reply.status != 0 && missing.is_empty(),
            format!(
                "{} {} -> {} {}",
                request.method,
                request.path,
                reply.summary(),
                if missing.is_empty() {
                    "all present".to_owned()
                } else {
                    format!("missing {}", missing.join(", "))
                }
            ),
        );
    }
    check
}

/// Every mutation route needs the token header; nothing else will do.
pub fn token_required(target: &Target) -> Check {
    let mut check = Check::new("POST/DELETE endpoints require the session token");
    let Some(token) = token(target) else {
        check.record(
            false,
            "no session token in <meta name=\"lab-token\"> of GET /",
        );
        return check;
    };
    let run = target.run.clone();
    let routes: Vec<(&str, String, &str)> = vec![
        (
            "POST",
            "/api/runs".to_owned(),
            "{\"path\": \"/nonexistent\"}",
        ),
        ("DELETE", format!("/api/runs/{run}"), ""),
        (
            "POST",
            format!("/api/runs/{run}/export"),
            "{\"name\": \"audit-token-probe\"}",
        ),
        ("POST", "/api/jobs".to_owned(), "{\"program\": \"true\"}"),
        ("POST", "/api/jobs/x/cancel".to_owned(), ""),
    ];
    let wrong = "0".repeat(token.len().max(64));
    for (method, path, body) in &routes {
        let base = |p: &str| {
            let r = Request::new(method, p);
            if body.is_empty() { r } else { r.json(body) }
        };
        let query = format!("{path}?token={token}&x-lab-token={token}");
        let without = send(target, &base(path));
        let wrong_token = send(target, &base(path).header("X-Lab-Token", wrong.clone()));
        let in_query = send(target, &base(&query));
        let as_cookie = send(
            target,
            &base(path).header("Cookie", format!("lab-token={token}")),
        );
        check.record(
            without.status == 403
                && wrong_token.status == 403
                && in_query.status == 403
                // A token as a cookie is no credential at all.
                && matches!(as_cookie.status, 401 | 403),
            format!(
                "{method} {path}: no token -> {}, wrong -> {}, ?token= -> {}, cookie -> {}",
                without.summary(),
                wrong_token.summary(),
                in_query.summary(),
                as_cookie.summary()
            ),
        );
    }
    // The right token gets past the guard (the route answers for itself).
    let with = send(
        target,
        &Request::new("POST", "/api/runs")
            .header("X-Lab-Token", token.clone())
            .json("{\"path\": \"relative/dir\"}"),
    );
    check.record(
        with.status == 400,
        format!("POST /api/runs {{\"path\": \"relative/dir\"}} with the token -> {} (past the guard, refused by the route)", with.summary()),
    );
    let plain = send(
        target,
        &Request::new("POST", "/api/runs")
            .header("X-Lab-Token", token.clone())
            .body("text/plain", b"{\"path\": \"/tmp\"}"),
    );
    check.record(
        plain.status == 415,
        format!("POST text/plain with the token -> {}", plain.summary()),
    );
    let cross = send(
        target,
        &Request::new("GET", "/api/runs").header("Sec-Fetch-Site", "cross-site"),
    );
    check.record(
        cross.status == 403,
        format!(
            "GET /api/runs Sec-Fetch-Site: cross-site -> {}",
            cross.summary()
        ),
    );
    check
}

/// The token is 256 bits, only in the page, never in a URL.
pub fn token_hygiene(target: &Target) -> Check {
    let mut check = Check::new("session token: 256 bits, in the page only, never in a URL");
    let page = send(target, &Request::new("GET", "/"));
    let Some(token) = token(target) else {
        check.record(false, "no session token in the page");
        return check;
    };
    check.record(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        format!("token is {} hex characters", token.len()),
    );
    let text = page.text();
    check.record(
        text.matches(token.as_str()).count() == 1 && !text.contains("token="),
        "the token appears once, in the meta tag, and in no URL",
    );
    let again = self::token(target);
    check.record(
        again.as_deref() == Some(token.as_str()),
        "stable for the session",
    );
    check
}

/// Only files under registered run roots are ever read.
pub fn run_roots_only(target: &Target) -> Check {
    let mut check = Check::new("only registered run roots are readable (traversal corpus)");
    let run = &target.run;
    let names = [
        "..",
        "../..",
        "../../../../etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%252e%252e%252fetc%252fpasswd",
        "..%5c..%5cetc%5cpasswd",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "....//....//etc/passwd",
        "..;/..;/etc/passwd",
        "output.mp4/../../outside/secret.txt",
        "videos/../../outside/secret.txt",
        "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "..%00/etc/passwd",
        "outside-link/secret.txt",
        "file:///etc/passwd",
        "http:%2f%2f127.0.0.1%2f",
    ];
    let mut paths: Vec<String> = Vec::new();
    for name in names {
        paths.push(format!("/api/runs/{run}/artifacts/{name}"));
        paths.push(format!("/api/exports/{name}"));
        paths.push(format!("/api/runs/{name}"));
        paths.push(format!("/api/runs/{name}/artifacts/output.mp4"));
    }
    for raw in [
        "/../../etc/passwd",
        "/assets/../../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
    ] {
        paths.push(raw.to_owned());
    }
    let mut refused = 0;
    for path in &paths {
        let reply = send(target, &Request::new("GET", path));
        let ok = reply.status >= 400 && !leaks(&reply);
        if ok {
            refused += 1;
        } else {
            check.record(
                false,
                format!(
                    "GET {path} -> {} {}",
                    reply.summary(),
                    if leaks(&reply) { "LEAKED a canary" } else { "" }
                ),
            );
        }
    }
    check.record(
        refused == paths.len(),
        format!("{refused}/{} traversal requests refused with 4xx, no canary or /etc/passwd in any body", paths.len()),
    );
    check
}

/// Decoys inside the run are present but never served; the allowlisted video is.
pub fn allowlist(target: &Target) -> Check {
    let mut check = Check::new("artifact allowlist enforced (decoys never served)");
    for decoy in [
        ".env",
        "%2eenv",
        "secret.txt",
        ".git/config",
        "params.json",
        "summary.json",
        "videos/.hidden.mp4",
        "stderr.log",
        "notes.html",
        "registry.json",
    ] {
        let reply = send(target, &Request::new("GET", &artifact(target, decoy)));
        check.record(
            reply.status >= 400 && !leaks(&reply),
            format!("GET {decoy} -> {}", reply.summary()),
        );
    }
    let listing = send(
        target,
        &Request::new("GET", &format!("/api/runs/{}", target.run)),
    )
    .text();
    for decoy in [
        ".env",
        "secret.txt",
        ".git",
        "params.json",
        "summary.json",
        ".hidden.mp4",
    ] {
        check.record(
            !listing.contains(&format!("\"{decoy}\"")),
            format!("run listing does not show {decoy}"),
        );
    }
    let video = send(
        target,
        &Request::new("GET", &artifact(target, "output.mp4")),
    );
    check.record(
        video.status == 200 && video.header("content-type") == Some("video/mp4"),
        format!(
            "GET output.mp4 -> {} {}",
            video.summary(),
            video.header("content-type").unwrap_or("")
        ),
    );
    check
}

/// Range, 416 and 304 work on the video.
pub fn range(target: &Target) -> Check {
    let mut check = Check::new("video streaming uses Range (206, 416, 304 before 416)");
    let path = artifact(target, "output.mp4");
    let full = send(target, &Request::new("HEAD", &path));
    let len: u64 = full
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    check.record(
        full.header("accept-ranges") == Some("bytes"),
        format!(
            "HEAD -> {} Accept-Ranges: {}",
            full.summary(),
            full.header("accept-ranges").unwrap_or("-")
        ),
    );
    let part = send(
        target,
        &Request::new("GET", &path).header("Range", "bytes=0-99"),
    );
    check.record(
        part.status == 206
            && part.header("content-range") == Some(format!("bytes 0-99/{len}").as_str())
            && part.body.len() == 100,
        format!(
            "Range: bytes=0-99 -> {} Content-Range: {} ({} bytes)",
            part.summary(),
            part.header("content-range").unwrap_or("-"),
            part.body.len()
        ),
    );
    let tail = send(
        target,
        &Request::new("GET", &path).header("Range", "bytes=-10"),
    );
    check.record(
        tail.status == 206 && tail.body.len() == 10,
        format!(
            "Range: bytes=-10 -> {} ({} bytes)",
            tail.summary(),
            tail.body.len()
        ),
    );
    let beyond = format!("bytes={len}-");
    let unsat = send(
        target,
        &Request::new("GET", &path).header("Range", beyond.clone()),
    );
    check.record(
        unsat.status == 416
            && unsat.header("content-range") == Some(format!("bytes */{len}").as_str()),
        format!(
            "Range: {beyond} -> {} Content-Range: {}",
            unsat.summary(),
            unsat.header("content-range").unwrap_or("-")
        ),
    );
    let etag = full.header("etag").unwrap_or("\"none\"").to_owned();
    let cached = send(
        target,
        &Request::new("GET", &path)
            .header("If-None-Match", etag.clone())
            .header("Range", beyond),
    );
    check.record(
        cached.status == 304,
        format!(
            "If-None-Match: {etag} + unsatisfiable Range -> {}",
            cached.summary()
        ),
    );
    check
}

/// Memory while streaming the large file to several clients stays within a
/// fixed bound, far below the file's size.
pub fn memory_flat(target: &Target) -> Check {
    const CLIENTS: usize = 3;
    const BOUND_KIB: u64 = 64 * 1024;
    let mut check = Check::new("streaming memory is flat (large video to several clients)");
    let path = format!("/api/runs/{}/artifacts/output.mp4", target.big_run);
    let before = rss_kib(target.pid);
    let started = Instant::now();
    let streamed: u64 = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let path = path.clone();
                scope.spawn(move || stream_len(target.port, &path))
            })
            .collect();
        let mut peak = before;
        while clients.iter().any(|c| !c.is_finished())
            && started.elapsed() < Duration::from_secs(120)
        {
            peak = peak.max(rss_kib(target.pid));
            std::thread::sleep(Duration::from_millis(20));
        }
        check.evidence.push(format!(
            "RSS before {before} KiB, peak {peak} KiB while streaming"
        ));
        if peak.saturating_sub(before) > BOUND_KIB || before == 0 {
            check.record(
                false,
                format!(
                    "grew by {} KiB (bound {BOUND_KIB} KiB)",
                    peak.saturating_sub(before)
                ),
            );
        }
        clients.into_iter().map(|c| c.join().unwrap_or(0)).sum()
    });
    check.record(
        streamed >= target.big_len * CLIENTS as u64,
        format!(
            "{CLIENTS} clients received {streamed} bytes of a {}-byte file in {:.1} s",
            target.big_len,
            started.elapsed().as_secs_f64()
        ),
    );
    check
}

/// Bytes of body received for a GET (head excluded), read in 1 MiB pieces.
fn stream_len(port: u16, path: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}Connection: close\r\n\r\n",
        crate::http::credential_line(port)
    )
    .is_err()
    {
        return 0;
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut head_done = false;
    let mut head = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if head_done => total += n as u64,
            Ok(n) => {
                head.extend_from_slice(&buf[..n]);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    head_done = true;
                    total += (head.len() - end - 4) as u64;
                    head.clear();
                }
            }
        }
    }
    total
}

/// The runner is off by default and says so.
pub fn runner_off(target: &Target) -> Check {
    let mut check = Check::new("runner disabled by default; network off; jobs refused");
    let status = send(target, &Request::new("GET", "/api/status")).text();
    check.record(
        status.contains("\"enabled\":false")
            && status.contains("\"network_allowed\":false")
            && status.contains("\"workflow_exec_allowed\":false"),
        format!(
            "GET /api/status -> runner {}",
            serde_json::from_str::<serde_json::Value>(&status).unwrap_or_default()["runner"]
        ),
    );
    if let Some(token) = token(target) {
        let job = send(
            target,
            &Request::new("POST", "/api/jobs")
                .header("X-Lab-Token", token)
                .json("{\"program\": \"sh\", \"args\": [\"-c\", \"id\"]}"),
        );
        check.record(
            job.status >= 400 && job.status != 0,
            format!(
                "POST /api/jobs (sh -c id) with the token -> {}",
                job.summary()
            ),
        );
    } else {
        check.record(false, "no token to try a job with");
    }
    check
}

/// Another user of the machine is not the owner: without the key, a local
/// client reads nothing but the login shell; the key travels only in the
/// fragment, a Bearer header or the session's body, never a query string.
pub fn no_key_no_data(target: &Target) -> Check {
    let mut check = Check::new(
        "a local client without the key reads nothing (401 everywhere but the login shell)",
    );
    let art = artifact(target, "output.mp4");
    let run = format!("/api/runs/{}", target.run);
    let mut anonymous_ok = 0;
    for (method, path) in [
        ("GET", "/api/status"),
        ("GET", "/api/runs"),
        ("GET", run.as_str()),
        ("GET", art.as_str()),
        ("GET", "/api/exports"),
        ("GET", "/api/jobs"),
        ("GET", "/api/jobs/x/log"),
    ] {
        let reply = send(target, &Request::new(method, path).anonymous());
        let ok = reply.status == 401 && reply.code() == "unauthenticated" && !leaks(&reply);
        if ok {
            anonymous_ok += 1;
        } else {
            check.record(
                false,
                format!(
                    "{method} {path} without a credential -> {}",
                    reply.summary()
                ),
            );
        }
    }
    check.record(
        anonymous_ok == 7,
        format!("{anonymous_ok}/7 API routes answer 401 unauthenticated without a credential"),
    );
    let shell = send(target, &Request::new("GET", "/").anonymous());
    let text = shell.text();
    check.record(
        shell.status == 200 && !text.contains("lab-token") && !text.contains(&target.run),
        format!(
            "GET / without a credential -> {} login shell, no token, no run data",
            shell.status
        ),
    );
    let Some(key) = &target.key else {
        check.record(false, "no access key was printed in a login link");
        return check;
    };
    let in_query = send(
        target,
        &Request::new("GET", &format!("/api/runs?key={key}&token={key}")).anonymous(),
    );
    check.record(
        in_query.status == 401,
        format!("the key in a query string -> {}", in_query.summary()),
    );
    let bearer = send(
        target,
        &Request::new("GET", "/api/runs").header("Authorization", format!("Bearer {key}")),
    );
    check.record(
        bearer.status == 200,
        format!("Authorization: Bearer KEY -> {}", bearer.status),
    );
    let wrong = send(
        target,
        &Request::new("GET", "/api/runs").header("Authorization", format!("Bearer {}x", &key[1..])),
    );
    check.record(
        wrong.status == 401,
        format!("a wrong Bearer key -> {}", wrong.summary()),
    );
    let wrong_login = login(target, &format!("{}x", &key[1..]), Some(&new_binding()));
    check.record(
        wrong_login.status == 401 && wrong_login.header("set-cookie").is_none(),
        format!(
            "POST /api/session with a wrong key -> {}",
            wrong_login.summary()
        ),
    );
    let unbound = login(target, key, None);
    check.record(
        unbound.status == 400
            && unbound.code() == "binding_required"
            && unbound.header("set-cookie").is_none(),
        format!(
            "POST /api/session with the key but no page binding -> {}, no cookie",
            unbound.summary()
        ),
    );
    let login = login(target, key, Some(&new_binding()));
    let cookie = login.header("set-cookie").unwrap_or_default().to_owned();
    check.record(
        login.status == 204
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/")
            && !cookie.contains(key.as_str()),
        format!(
            "POST /api/session with the key and a page binding -> {} Set-Cookie: {}",
            login.status,
            cookie.split('=').next().unwrap_or("")
        ),
    );
    check
}

/// `POST /api/session` as the UI sends it: the key and (but for the probes
/// that leave it out) a page binding.
fn login(target: &Target, key: &str, binding: Option<&str>) -> Reply {
    let body = match binding {
        Some(binding) => serde_json::json!({"key": key, "binding": binding}),
        None => serde_json::json!({"key": key}),
    };
    send(
        target,
        &Request::new("POST", "/api/session")
            .anonymous()
            .json(&body.to_string()),
    )
}

/// The query (`exp=…&sig=…`) of a signed URL, and its `exp`.
fn signature_of(url: &str) -> Option<(String, u64)> {
    let (_, query) = url.split_once('?')?;
    let exp = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("exp="))?
        .parse()
        .ok()?;
    query.contains("sig=").then(|| (query.to_owned(), exp))
}

/// A browser sends the session cookie to every port of the host, a foreign
/// server's included: so the cookie alone (without the page's
/// `X-Lab-Binding`) reads nothing, whatever ids it knows, but an element by
/// a URL the API signed for its own session, for that path, until `exp`.
pub fn stolen_cookie(target: &Target) -> Check {
    let mut check = Check::new(
        "a stolen session cookie reads nothing (without its page's binding or a signed URL)",
    );
    let key = target.key.clone().unwrap_or_default();
    let run = format!("/api/runs/{}", target.run);
    let notes = artifact(target, "notes.md");
    let video = artifact(target, "output.mp4");
    // Sign in as the UI does: the key and a page binding.
    let binding = new_binding();
    let signed_in = login(target, &key, Some(&binding));
    let cookie = signed_in
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    check.record(
        signed_in.status == 204 && cookie.is_some(),
        format!(
            "POST /api/session with the key and a binding -> {}{}",
            signed_in.summary(),
            if cookie.is_some() {
                " and a cookie"
            } else {
                ", no cookie"
            }
        ),
    );
    // Without a session the rest still runs on a cookie the server never
    // issued: what answers it is as telling.
    let cookie = cookie.unwrap_or_else(|| "lab-session=stolen".to_owned());
    let alone =
        |method: &str, path: &str| Request::new(method, path).header("Cookie", cookie.clone());
    let full =
        |method: &str, path: &str| alone(method, path).header("X-Lab-Binding", binding.clone());
    let bearer =
        |path: &str| Request::new("GET", path).header("Authorization", format!("Bearer {key}"));
    // With the full credential: a bundle to steal, and signed URLs.
    let token = page_token(target, full("GET", "/")).unwrap_or_default();
    let made = send(
        target,
        &full("POST", &format!("{run}/export"))
            .header("X-Lab-Token", token.clone())
            .json("{\"name\": \"audit-stolen-cookie\"}"),
    );
    let file = made.json()["file"]
        .as_str()
        .unwrap_or("audit-stolen-cookie.tar")
        .to_owned();
    let bundle = format!("/api/exports/{file}");
    let bundle_url = made.json()["url"].as_str().unwrap_or_default().to_owned();
    check.record(
        made.status == 201 && signature_of(&bundle_url).is_some(),
        format!(
            "POST {run}/export with cookie + binding + token -> {} {file}, url signed: {}",
            made.summary(),
            signature_of(&bundle_url).is_some()
        ),
    );
    // The cookie alone: 401 on every route, before any lookup (the same
    // 401 for an id that exists and one that does not).
    let reads_nothing = |reply: &Reply| {
        let text = reply.text();
        reply.status == 401
            && !leaks(reply)
            && !text.contains("# audit run")
            && !text.contains(&target.run)
            && !text.contains("ustar")
    };
    let made_up_job = "0123456789abcdef";
    let cookie_alone: Vec<(&str, String)> = vec![
        ("GET", notes.clone()),
        ("GET", video.clone()),
        ("HEAD", video.clone()),
        ("GET", bundle.clone()),
        ("GET", format!("/api/jobs/{made_up_job}/log")),
        ("GET", "/api/jobs/x/log".to_owned()),
        ("GET", format!("{run}/images/x/0/1")),
        ("GET", "/api/runs".to_owned()),
        ("GET", run.clone()),
        ("GET", "/api/exports".to_owned()),
        ("GET", "/api/jobs".to_owned()),
        ("GET", "/api/status".to_owned()),
    ];
    let mut refused = Vec::new();
    for (method, path) in &cookie_alone {
        let reply = send(target, &alone(method, path));
        if reads_nothing(&reply) && (*method == "HEAD" || reply.code() == "unauthenticated") {
            refused.push(format!("{method} {path}"));
        } else {
            check.record(
                false,
                format!(
                    "{method} {path} with the cookie alone -> {} ({} bytes){}",
                    reply.summary(),
                    reply.body.len(),
                    if leaks(&reply) {
                        " LEAKED a canary"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    check.record(
        refused.len() == cookie_alone.len(),
        format!(
            "{}/{} requests with the cookie alone -> 401 unauthenticated, nothing leaked: {}",
            refused.len(),
            cookie_alone.len(),
            refused.join(", ")
        ),
    );
    // The same paths with the key: what a lookup says (not 401).
    let looked_up = [
        format!("/api/jobs/{made_up_job}/log"),
        format!("{run}/images/x/0/1"),
    ]
    .map(|path| format!("{path} -> {}", send(target, &bearer(&path)).summary()));
    check.record(
        true,
        format!("the same with the key (Bearer): {}", looked_up.join(", ")),
    );
    // Nor does it write, even with the page's token (which the page shown
    // to the cookie alone holds).
    let alone_token = page_token(target, alone("GET", "/")).unwrap_or_default();
    let export = send(
        target,
        &alone("POST", &format!("{run}/export"))
            .header("X-Lab-Token", alone_token)
            .json("{\"name\": \"audit-stolen-write\"}"),
    );
    check.record(
        export.status == 401,
        format!(
            "POST {run}/export with the cookie alone and the page's token -> {}",
            export.summary()
        ),
    );
    // With the binding, the API hands out signed URLs; with the key, plain
    // paths.
    let listed = send(target, &full("GET", "/api/runs"));
    let row_video = listed.json()["runs"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == target.run.as_str()))
        .and_then(|r| r["video_url"].as_str())
        .unwrap_or_default()
        .to_owned();
    check.record(
        listed.status == 200 && signature_of(&row_video).is_some(),
        format!(
            "GET /api/runs with cookie + binding -> {}, the run's video_url signed: {}",
            listed.summary(),
            signature_of(&row_video).is_some()
        ),
    );
    let details = send(target, &full("GET", &run));
    let url_of = |reply: &Reply, name: &str| {
        reply.json()["artifacts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .and_then(|x| x["url"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let notes_url = url_of(&details, "notes.md");
    let signature = signature_of(&notes_url);
    check.record(
        details.status == 200 && notes_url.starts_with(&notes) && signature.is_some(),
        format!(
            "GET {run} with cookie + binding -> {}, notes.md url {}",
            details.summary(),
            notes_url.split("&sig=").next().unwrap_or("none")
        ),
    );
    let plain = url_of(&send(target, &bearer(&run)), "notes.md");
    check.record(
        plain == notes,
        format!("GET {run} with the key (Bearer) -> notes.md url {plain:?}, unsigned"),
    );
    let Some((query, exp)) = signature else {
        check.record(false, "no signed URL to try");
        return check;
    };
    // The signed URL opens its element with the cookie alone.
    let opened = send(target, &alone("GET", &notes_url));
    check.record(
        opened.status == 200 && opened.body == b"# audit run\n",
        format!(
            "GET the signed notes.md url with the cookie alone -> {} ({} bytes, the file)",
            opened.summary(),
            opened.body.len()
        ),
    );
    let bundled = send(target, &alone("GET", &bundle_url));
    check.record(
        bundled.status == 200 && !bundled.body.is_empty(),
        format!(
            "GET the signed bundle url with the cookie alone -> {} ({} bytes)",
            bundled.summary(),
            bundled.body.len()
        ),
    );
    let video_url = url_of(&details, "output.mp4");
    let seek = send(
        target,
        &alone("GET", &video_url).header("Range", "bytes=0-99"),
    );
    check.record(
        seek.status == 206 && seek.body.len() == 100,
        format!(
            "GET the signed output.mp4 url with the cookie alone, Range: bytes=0-99 -> {}",
            seek.summary()
        ),
    );
    // But for nothing else: another path, another exp, another session,
    // no session.
    let bad = |reply: &Reply| reply.status == 401 && reply.code() == "bad_signature";
    let elsewhere = send(target, &alone("GET", &format!("{video}?{query}")));
    check.record(
        bad(&elsewhere) && elsewhere.body.len() < 1024,
        format!(
            "notes.md's signature on output.mp4 with the cookie -> {}",
            elsewhere.summary()
        ),
    );
    let tampered = notes_url.replace(
        &format!("exp={exp}"),
        &format!("exp={}", exp.saturating_sub(1)),
    );
    let reply = send(target, &alone("GET", &tampered));
    check.record(
        bad(&reply),
        format!(
            "the signed url with exp {exp} -> {} -> {}",
            exp - 1,
            reply.summary()
        ),
    );
    let second = login(target, &key, Some(&new_binding()));
    let other_cookie = second
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or("lab-session=other")
        .to_owned();
    let reply = send(
        target,
        &Request::new("GET", &notes_url).header("Cookie", other_cookie),
    );
    check.record(
        second.status == 204 && bad(&reply),
        format!(
            "the signed url with another session's cookie -> {}",
            reply.summary()
        ),
    );
    let reply = send(target, &Request::new("GET", &notes_url).anonymous());
    check.record(
        reply.status == 401 && reply.code() == "unauthenticated",
        format!("the signed url without a cookie -> {}", reply.summary()),
    );
    // The key dies with the session.
    let out = send(
        target,
        &full("DELETE", "/api/session").header("X-Lab-Token", token),
    );
    let after = send(target, &alone("GET", &notes_url));
    check.record(
        out.status == 204 && after.status == 401,
        format!(
            "DELETE /api/session -> {}; then the signed url with its cookie -> {}",
            out.summary(),
            after.summary()
        ),
    );
    let unbound = login(target, &key, None);
    check.record(
        unbound.status == 400
            && unbound.code() == "binding_required"
            && unbound.header("set-cookie").is_none(),
        format!(
            "POST /api/session without a binding -> {}",
            unbound.summary()
        ),
    );
    check
}

/// The whole responses at the start of `raw`: each a head and the body its
/// `Content-Length` says (a response without one ends the list).
fn responses(raw: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let Some(len) = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        else {
            break;
        };
        let start = end + 4;
        if rest.len() < start + len {
            break;
        }
        out.push(Reply {
            status,
            headers,
            body: rest[start..start + len].to_vec(),
        });
        rest = &rest[start + len..];
    }
    out
}

/// Reads from `stream` until `count` whole responses are in, the server
/// closes, or the read times out.
fn read_responses(stream: &mut std::net::TcpStream, count: usize) -> Vec<Reply> {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let got = responses(&raw);
        if got.len() >= count {
            return got;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// A request with a wrong key, as raw bytes, on a kept-alive connection.
fn wrong_key_request(port: u16, close: bool) -> String {
    format!(
        "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {}\r\n{}\r\n",
        "w".repeat(43),
        if close { "Connection: close\r\n" } else { "" }
    )
}

/// Sends `count` failed credentials at once (pipelined) on one new
/// connection and reads their answers; returns them and the connection.
fn failures_on_one_connection(
    port: u16,
    count: usize,
) -> (Vec<Reply>, Option<std::net::TcpStream>) {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (Vec::new(), None);
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let requests = wrong_key_request(port, false).repeat(count);
    if stream.write_all(requests.as_bytes()).is_err() {
        return (Vec::new(), None);
    }
    (read_responses(&mut stream, count), Some(stream))
}

/// Failed credentials are rate-limited: a connection is closed after its
/// tenth, and over 100 a second server-wide everything that needs a
/// credential and carries no full one (the key, or the cookie with its
/// binding) is answered 429 for a second, while the owner works on.
pub fn failures_rate_limited(target: &Target) -> Check {
    use std::io::Write;
    const PER_CONNECTION: usize = 10;
    const PER_SECOND: usize = 100;
    let mut check = Check::new(
        "failed credentials are rate-limited (10 close a connection; over 100/s -> 429)",
    );
    // Whatever failures earlier probes left in the server's current
    // one-second window are gone after it.
    std::thread::sleep(Duration::from_millis(1100));
    let (answers, stream) = failures_on_one_connection(target.port, PER_CONNECTION);
    let closing: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        })
        .map(|(i, _)| i + 1)
        .collect();
    check.record(
        answers.len() == PER_CONNECTION
            && answers.iter().all(|r| r.status == 401)
            && closing == [PER_CONNECTION],
        format!(
            "{PER_CONNECTION} wrong keys pipelined on one connection -> {} answers ({}), Connection: close on answer {closing:?}",
            answers.len(),
            answers
                .iter()
                .map(|r| r.status.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
    );
    // One more on the same connection: the server has closed it.
    let eleventh = stream.map(|mut stream| {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = stream.write_all(wrong_key_request(target.port, true).as_bytes());
        read_responses(&mut stream, 1)
    });
    let answered = eleventh.as_ref().is_none_or(|r| !r.is_empty());
    check.record(
        !answered,
        format!(
            "an 11th request on that connection -> {}",
            match &eleventh {
                Some(r) if r.is_empty() => "no answer (closed)".to_owned(),
                Some(r) => format!("answered {}", r[0].summary()),
                None => "no connection".to_owned(),
            }
        ),
    );
    // Server-wide: well over the rate, at once, from several connections
    // (each closed after its tenth).
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    let burst: Vec<Reply> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..5)
            .map(|_| {
                scope.spawn(|| {
                    (0..3)
                        .flat_map(|_| failures_on_one_connection(target.port, PER_CONNECTION).0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let took = started.elapsed();
    let count = |status: u16| burst.iter().filter(|r| r.status == status).count();
    check.record(
        burst.len() > PER_SECOND && count(401) + count(429) == burst.len() && count(429) > 0,
        format!(
            "{} wrong keys on 15 connections in {:.2} s -> {} × 401, {} × 429",
            burst.len(),
            took.as_secs_f64(),
            count(401),
            count(429)
        ),
    );
    // Locked: no credential, a wrong one, and a login with the right key
    // all wait; the key and the cookie with its binding work on.
    let key = target.key.clone().unwrap_or_default();
    let anonymous = send(target, &Request::new("GET", "/api/runs").anonymous());
    check.record(
        anonymous.status == 429
            && anonymous.code() == "rate_limited"
            && anonymous.header("retry-after") == Some("1")
            && !leaks(&anonymous),
        format!(
            "then GET /api/runs without a credential -> {} Retry-After: {}",
            anonymous.summary(),
            anonymous.header("retry-after").unwrap_or("-")
        ),
    );
    let signing_in = login(target, &key, Some(&new_binding()));
    check.record(
        signing_in.status == 429 && signing_in.header("set-cookie").is_none(),
        format!(
            "POST /api/session with the right key -> {}",
            signing_in.summary()
        ),
    );
    let owner = send(target, &Request::new("GET", "/api/runs"));
    let script = send(
        target,
        &Request::new("GET", "/api/runs").header("Authorization", format!("Bearer {key}")),
    );
    check.record(
        owner.status == 200 && script.status == 200,
        format!(
            "GET /api/runs with cookie + binding -> {}, with the key -> {}",
            owner.summary(),
            script.summary()
        ),
    );
    // A second on (from the last failure), it is over.
    std::thread::sleep(Duration::from_millis(2100));
    let anonymous = send(target, &Request::new("GET", "/api/runs").anonymous());
    let signing_in = login(target, &key, Some(&new_binding()));
    check.record(
        anonymous.status == 401 && signing_in.status == 204,
        format!(
            "2 s later: GET /api/runs without a credential -> {}, POST /api/session with the key -> {}",
            anonymous.summary(),
            signing_in.summary()
        ),
    );
    check
}
