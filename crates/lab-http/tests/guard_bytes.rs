//! The guard's oracle (`lab_http::fuzz::GuardHarness`) on raw request
//! bytes: hand-written cases that must be judged as expected (so the oracle
//! itself can fail), then generated requests (proptest) from the same
//! pieces the fuzz target's seeds use, and every committed fuzz finding.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use lab_http::fuzz::GuardHarness;

#[test]
fn the_oracle_sees_what_a_credential_buys() {
    let mut lab = GuardHarness::start();
    // A credentialed read gets run data; without it, a 401 and none.
    let read = lab.check(
        b"GET /api/runs/{RUN} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}\r\n\r\n",
    );
    assert_eq!(read.statuses, vec![200]);
    assert!(read.run_data);
    let anon = lab.check(b"GET /api/runs/{RUN} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    assert_eq!(anon.statuses, vec![401]);
    assert!(!anon.run_data);
    // Pipelined: both answered. The cookie alone reads nothing, not even
    // an artifact whose path it knows; with its page's binding, both.
    let two = lab.check(
        b"GET /api/runs HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\n\r\nGET /api/runs/{RUN}/artifacts/notes.md HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\n\r\n",
    );
    assert_eq!(two.statuses, vec![401, 401]);
    assert!(!two.run_data);
    let two = lab.check(
        b"GET /api/runs HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}\r\n\r\nGET /api/runs/{RUN}/artifacts/notes.md HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}\r\n\r\n",
    );
    assert_eq!(two.statuses, vec![200, 200]);
    assert!(two.run_data);
    // The signed URL the API gave the page: the cookie alone opens it, and
    // nothing opens it without the cookie.
    let signed = lab.check(b"GET {NOTES} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\n\r\n");
    assert_eq!(signed.statuses, vec![200]);
    assert!(signed.run_data);
    let unsigned = lab.check(b"GET {NOTES} HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    assert_eq!(unsigned.statuses, vec![401]);
    assert!(!unsigned.run_data);
    // A mutation with the cookie, its binding and its token changes the
    // registry (and is undone); without the token, or without the
    // binding, it is refused and changes nothing.
    let forget = b"DELETE /api/runs/{RUN} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}\r\nX-Lab-Token: {TOKEN}\r\n\r\n";
    let done = lab.check(forget);
    assert!(done.changed, "{done:?}");
    let refused = lab.check(
        b"DELETE /api/runs/{RUN} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}\r\n\r\n",
    );
    assert_eq!(refused.statuses, vec![403]);
    assert!(!refused.changed);
    let unbound = lab.check(
        b"DELETE /api/runs/{RUN} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {COOKIE}\r\nX-Lab-Token: {TOKEN}\r\n\r\n",
    );
    assert_eq!(unbound.statuses, vec![401]);
    assert!(!unbound.changed);
    // The run came back under a new id, which {RUN} now names.
    let again = lab.check(forget);
    assert!(again.changed, "{again:?}");
    let import = lab.check(
        b"POST /api/runs HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {LEN}\r\n\r\n{\"path\": \"{DIR}\"}",
    );
    assert!(import.changed && import.statuses[0] < 300, "{import:?}");
    // A foreign Host: refused before anything.
    let foreign = lab.check(
        b"GET /api/runs HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {KEY}\r\n\r\n",
    );
    assert_eq!(foreign.statuses, vec![403]);
    assert!(!foreign.run_data);
}

// Repeated entries weigh the draw towards requests that get through.
const METHODS: &[&str] = &[
    "GET", "GET", "GET", "HEAD", "POST", "POST", "POST", "DELETE", "DELETE", "PUT", "OPTIONS",
    "PATCH", "get",
];
const PATHS: &[&str] = &[
    "/api/runs",
    "/api/runs/{RUN}",
    "/api/exports",
    "/",
    "/assets/app.js",
    "/api/status",
    "/api/runs",
    "/api/runs?q=m&sort=name",
    "/api/columns",
    "/api/runs/{RUN}",
    "/api/runs/{RUN}/artifacts/notes.md",
    "/api/runs/{RUN}/artifacts/%6eotes.md",
    "/api/runs/{RUN}/metrics",
    "/api/runs/{RUN}/export",
    "/api/runs/{RUN}/../{RUN}",
    "/api/session",
    "/api/exports",
    "/api/exports/x.tar",
    "/api/jobs",
    "http://{HOST}/api/runs",
    "*",
    "/api/runs/{RUN}?key={KEY}",
    "{NOTES}",
    "{NOTES}",
    "{NOTES}x",
];
const HOSTS: &[&str] = &[
    "Host: {HOST}",
    "Host: {HOST}",
    "Host: {HOST}",
    "Host: {HOST}",
    "Host: {HOST}",
    "Host: {HOST}",
    "Host: evil.example",
    "Host: 127.0.0.1:1",
    "Host: {HOST}\r\nHost: {HOST}",
    "",
];
const CREDENTIALS: &[&str] = &[
    "",
    "Authorization: Bearer {KEY}",
    "Authorization: Bearer {KEY}",
    "Cookie: {COOKIE}",
    "Cookie: {COOKIE}",
    "Cookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}",
    "Cookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}",
    "Cookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}",
    "Authorization: Bearer {KEY}",
    "Authorization: Bearer {KEY}",
    "Cookie: {COOKIE}\r\nX-Lab-Binding: {BINDING}x",
    "X-Lab-Binding: {BINDING}",
    "Authorization: Bearer {KEY}x",
    "Authorization: bearer {KEY}",
    "Authorization: Basic {KEY}",
    "Cookie: lab-session=forged",
];
const TOKENS: &[&str] = &[
    "",
    "X-Lab-Token: {TOKEN}",
    "X-Lab-Token: {TOKEN}",
    "X-Lab-Token: {TOKEN}",
    "X-Lab-Token: {KEY}",
];
const EXTRAS: &[&str] = &[
    "Origin: http://{HOST}",
    "Origin: http://evil.example",
    "Sec-Fetch-Site: cross-site",
    "Sec-Fetch-Site: same-origin",
    "Content-Type: text/plain",
    "Transfer-Encoding: chunked",
    "Connection: close",
    "Expect: 100-continue",
    "Range: bytes=0-3",
];
const BODIES: &[&str] = &[
    "",
    "",
    "{\"key\": \"{KEY}\"}",
    "{\"path\": \"{DIR}\"}",
    "{\"run\": \"{RUN}\", \"name\": \"b.tar\"}",
    "{",
];

/// One request: method, target, Host, credential, token, extra headers,
/// body (JSON with its length).
type Parts = (usize, usize, usize, usize, usize, Vec<usize>, usize);

fn request((m, p, host, cred, token, extras, body): &Parts) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", METHODS[*m], PATHS[*p]);
    let extras = extras.iter().map(|e| EXTRAS[*e]);
    for header in [HOSTS[*host], CREDENTIALS[*cred], TOKENS[*token]]
        .into_iter()
        .chain(extras)
    {
        if !header.is_empty() {
            out.push_str(header);
            out.push_str("\r\n");
        }
    }
    if !BODIES[*body].is_empty() {
        out.push_str("Content-Type: application/json\r\nContent-Length: {LEN}\r\n");
    }
    out.push_str("\r\n");
    out.push_str(BODIES[*body]);
    out.push_str("{/}");
    out.into_bytes()
}

/// Generated requests, one to three on a connection, some with a byte
/// flipped, inserted or cut: the oracle holds for every one.
#[test]
fn the_guard_holds_for_generated_raw_requests() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let lab = std::cell::RefCell::new(GuardHarness::start());
    let one = (
        0..METHODS.len(),
        0..PATHS.len(),
        0..HOSTS.len(),
        0..CREDENTIALS.len(),
        0..TOKENS.len(),
        proptest::collection::vec(0..EXTRAS.len(), 0..2),
        0..BODIES.len(),
    );
    let input = (
        proptest::collection::vec(one, 1..4),
        proptest::option::weighted(0.3, (any::<prop::sample::Index>(), any::<u8>(), 0..3u8)),
    );
    let mut runner = TestRunner::new(Config {
        cases: 1500,
        source_file: Some(file!()),
        ..Config::default()
    });
    let seen = std::cell::Cell::new([0usize; 3]);
    let result = runner.run(&input, |(requests, damage)| {
        let mut bytes: Vec<u8> = requests.iter().flat_map(request).collect();
        if let Some((at, byte, how)) = damage {
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        let outcome = lab.borrow_mut().check(&bytes);
        let mut counts = seen.get();
        counts[0] += usize::from(outcome.run_data);
        counts[1] += usize::from(outcome.changed);
        counts[2] += usize::from(outcome.statuses.iter().any(|s| *s < 300));
        seen.set(counts);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator reaches the interesting answers, not only refusals.
    let seen = seen.get();
    eprintln!("run data, changes, successes over 1500: {seen:?}");
    assert!(
        seen.iter().all(|n| *n > 0),
        "run data, changes, successes: {seen:?}"
    );
}

/// The fuzz target's seeds and every input it ever failed on
/// (`crates/lab-http/fuzz/{seeds,regressions}/guard/`).
#[test]
fn committed_fuzz_inputs_hold() {
    let mut lab = GuardHarness::start();
    for (path, bytes) in
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "guard")
    {
        eprintln!("{}", path.display());
        lab.check(&bytes);
    }
}
