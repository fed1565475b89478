//! The real binary in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver protocol (plain JSON over HTTP, no client crate),
//! loads the UI on the fixture runs, opens the run with the video, and checks
//! that `<video>` plays and seeks the (not fast-started) MP4 through the
//! signed artifact URL the API gave, with no CSP violation and no console
//! error.
//!
//! Needs Debian's `chromium` and `chromium-driver`; `cargo xtask test`
//! installs them. The test fails, never skips, when they are absent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // starts the binary, chromedriver

use std::path::PathBuf;
use std::process::{Command, Stdio};

use lab_test_support::browser::{Browser, wait_for, wait_for_within};
use serde_json::{Value, json};

mod common;

use common::LAB;

/// No CSP violation was recorded and the console holds no error, except the
/// browser's own network-log line for a deliberate 403 from `expected_403`.
fn assert_clean_page(browser: &Browser, expected_403: Option<&str>) {
    let csp = browser.run_async("arguments[arguments.length - 1](window.__csp)");
    assert_eq!(csp, json!([]), "CSP violations");
    let expected = expected_403.map(|path| {
        format!("{path} - Failed to load resource: the server responded with a status of 403")
    });
    let errors: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| {
            !e["message"]
                .as_str()
                .is_some_and(|m| expected.as_deref().is_some_and(|x| m.contains(x)))
        })
        // The one conflict a page may meet: an import that raced the Lab's
        // own walk of the roots (the dialog then opens the run the walk
        // registered; the import steps check that it did).
        .filter(|e| {
            !e["message"].as_str().is_some_and(|m| {
                m.ends_with("/api/runs - Failed to load resource: the server responded with a status of 409 (Conflict)")
            })
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// Moves the pointer to the middle of the first chart under `holder` and
/// returns its tip: `{text, rows}` (a row per run).
fn hover_middle(browser: &Browser, holder: &str) -> Value {
    browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         const s = document.querySelector('{holder} svg');
         const b = s.getBoundingClientRect();
         s.dispatchEvent(new PointerEvent('pointermove', {{clientX: b.left + b.width / 2, clientY: b.top + b.height / 2, bubbles: true}}));
         setTimeout(() => {{ const tip = document.querySelector('{holder} .tip'); done({{text: tip.textContent, rows: tip.querySelectorAll('.tip-row').length}}); }}, 50);"
    ))
}

/// Every URL in `urls` (a JSON list of what elements' `src` and `href`
/// say, as the page wrote them) is one the API signed for the session
/// (SPEC §4): a path of the Lab's with `?exp=…&sig=…`, nothing else in
/// its query.
fn assert_signed(urls: &Value, what: &str) {
    let urls = urls
        .as_array()
        .unwrap_or_else(|| panic!("{what}: not a list: {urls}"));
    assert!(!urls.is_empty(), "{what}: no URL to check");
    for url in urls {
        let url = url.as_str().unwrap_or_else(|| panic!("{what}: {url}"));
        let (path, query) = url
            .split_once('?')
            .unwrap_or_else(|| panic!("{what}: unsigned {url}"));
        assert!(path.starts_with("/api/"), "{what}: {url}");
        let query = query.split('#').next().unwrap_or_default();
        let names: Vec<&str> = query
            .split('&')
            .map(|pair| pair.split('=').next().unwrap_or_default())
            .collect();
        assert_eq!(names, ["exp", "sig"], "{what}: {url}");
        assert!(
            query
                .split('&')
                .all(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty())),
            "{what}: {url}"
        );
    }
}

/// The status of a GET of `url` (its first 16 bytes) with the browser's
/// own cookies and nothing else: no binding header, no key. What a page
/// of another port on this host could make the browser send.
fn status_with_cookie_alone(server: &common::Served, browser: &Browser, url: &str) -> u16 {
    let cookie = browser.cookie_header();
    assert!(
        cookie.contains('='),
        "the browser holds the session cookie: {cookie}"
    );
    lab_test_support::http::Request::new("GET", url)
        .header("Cookie", cookie)
        .header("Range", "bytes=0-15")
        .send(server.port)
        .unwrap()
        .status
}

fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(name), &png).unwrap();
    if std::env::var_os("LAB_UPDATE_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
}

/// Opens the login `link` and waits until the Lab has loaded signed in (the
/// login page posts the key, then loads the Lab): a page asked for before
/// then would be the login shell's.
fn sign_in(browser: &Browser, link: &str) {
    browser.goto(link);
    let signed_in = wait_for(
        browser,
        "document.querySelector('meta[name=lab-token]') && document.getElementById('status') && document.getElementById('status').textContent.length > 0",
        "true",
    );
    assert_eq!(signed_in, json!(true), "{signed_in}");
}

/// A browser whose pages record every CSP violation in `window.__csp`
/// (`assert_clean_page` reads it).
fn csp_browser() -> Browser {
    let browser = Browser::start(Command::new("chromedriver"));
    browser.on_new_document(
        "window.__csp = [];
         document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    );
    browser
}

/// A `csp_browser` of `width` × `height`, signed in to `server`.
fn signed_in_browser(server: &common::Served, width: u32, height: u32) -> Browser {
    let browser = csp_browser();
    browser.resize(width, height);
    sign_in(&browser, &server.link);
    browser
}

/// `lab serve` on a loopback port with the data dir `data` and the roots
/// `roots`, its log dropped.
fn serve_roots(data: &std::path::Path, roots: &[&std::path::Path]) -> common::Served {
    let mut command = Command::new(LAB);
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    for root in roots {
        command.arg("--root").arg(root);
    }
    command.stderr(Stdio::null());
    common::serve(command)
}

#[test]
fn the_ui_lists_plays_charts_compares_and_imports() {
    // The three Lab-format fixture runs (the other formats' fixtures have
    // tests of their own), copied into scratch.
    let bundled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/runs");
    let lab_runs = tempfile::tempdir().unwrap();
    let fixtures = lab_runs.path().canonicalize().unwrap();
    let copies = lab_test_support::fixture::Tree::new(&fixtures);
    for run in ["cartpole-ppo", "diffusion-sweep-a", "lorenz-sim"] {
        copies.copy_dir(run, bundled.join(run));
    }
    let data = tempfile::tempdir().unwrap();
    let extra = tempfile::tempdir().unwrap();
    let extra_root = extra.path().canonicalize().unwrap();
    // A run whose MP4 holds MPEG-4 Part 2 video, which Chromium cannot decode.
    std::fs::create_dir_all(extra_root.join("bad-codec")).unwrap();
    std::fs::write(
        extra_root.join("bad-codec/run.toml"),
        "name = \"bad-codec\"\ncreated = \"2026-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=1:size=160x120:rate=10",
            "-c:v",
            "mpeg4",
        ])
        .arg(extra_root.join("bad-codec/output.mp4"))
        .status()
        .expect("ffmpeg is required: `cargo xtask test` installs it");
    assert!(made.success());
    let server = serve_roots(data.path(), &[&fixtures, &extra_root]);
    let base = server.base.clone();

    let browser = csp_browser();
    // 0. Without the link: the login shell, saying where to find it, and no
    // run data. With it: signed in, and the key gone from the address bar.
    browser.goto(&base);
    let shell = wait_for(
        &browser,
        "document.getElementById('login-status') && document.getElementById('login-status').textContent.includes('not signed in')",
        "{text: document.body.textContent, meta: !!document.querySelector('meta[name=lab-token]')}",
    );
    assert!(
        shell["text"].as_str().unwrap_or("").contains("lab serve"),
        "{shell}"
    );
    assert_eq!(shell["meta"], false, "{shell}");
    assert!(
        !shell["text"].as_str().unwrap_or("").contains("cartpole"),
        "{shell}"
    );
    browser.goto(&server.link);
    let signed_in = wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]') && document.querySelectorAll('#runs .card-title').length >= 4",
        "{href: location.href, history: history.length}",
    );
    assert_eq!(
        signed_in["href"],
        json!(base),
        "the key left the address bar: {signed_in}"
    );

    // 1. The runs list, newest first, with the status strip.
    let titles = wait_for(
        &browser,
        "document.querySelectorAll('#runs .card-title').length >= 4 && document.querySelector('#status .badge')",
        "{titles: [...document.querySelectorAll('#runs .card-title')].map(e => e.textContent), status: document.getElementById('status').textContent}",
    );
    assert_eq!(
        titles["titles"],
        json!([
            "diffusion-sweep-a",
            "cartpole-ppo",
            "lorenz-sim",
            "bad-codec"
        ]),
        "{titles}"
    );
    let status = titles["status"].as_str().unwrap();
    assert!(
        status.contains("runner disabled") && status.contains("network disabled"),
        "{status}"
    );
    let thumbs = wait_for(
        &browser,
        "[...document.querySelectorAll('#runs img.thumb')].some(i => i.complete && i.naturalWidth > 0)",
        "{count: document.querySelectorAll('#runs .thumb').length,
          urls: [...document.querySelectorAll('#runs img.thumb, #runs video.thumb')].map(e => e.getAttribute('src') || e.dataset.src)}",
    );
    assert_eq!(
        thumbs["count"],
        json!(4),
        "a thumbnail, first frame or placeholder per run: {thumbs}"
    );
    // Thumbnails and first frames load by the URLs the API signed.
    assert_signed(&thumbs["urls"], "thumbnails");
    save_screenshot(&browser, "runs-list.png");

    // 2. A run page: the video plays and seeks through Range; the chart renders.
    let run = browser.run_async(
        "const done = arguments[arguments.length - 1];
         [...document.querySelectorAll('#runs .card-link')].find(a => a.textContent.includes('cartpole-ppo')).click();
         const start = Date.now();
         (function poll() {
           const v = document.querySelector('#videos video');
           if (Date.now() - start > 20000) return done({error: 'timeout', state: v ? v.readyState : null});
           if (!v || v.readyState < 2 || !document.querySelector('#metrics svg path.series')) return setTimeout(poll, 100);
           const ready = v.readyState, duration = v.duration;
           v.addEventListener('seeked', () => done({ready, duration, time: v.currentTime, src: v.getAttribute('src'),
             videos: [...document.querySelectorAll('#view video')].map(e => e.getAttribute('src')),
             images: [...document.querySelectorAll('#view img')].map(e => e.getAttribute('src')),
             downloads: [...document.querySelectorAll('#view a[download]')].map(e => e.getAttribute('href')),
             series: document.querySelector('#metrics .metric-panel').querySelectorAll('svg path.series').length,
             provenance: document.querySelector('#provenance dl') ? document.querySelector('#provenance dl').textContent : '',
             log: (document.querySelector('pre.log') || {}).textContent || ''}), {once: true});
           v.currentTime = 3.0;
         })();",
    );
    assert!(run.get("error").is_none(), "{run}");
    assert!(run["ready"].as_u64().unwrap() >= 2, "{run}");
    assert!(
        (run["duration"].as_f64().unwrap() - 4.0).abs() < 0.1,
        "{run}"
    );
    assert!(run["time"].as_f64().unwrap() >= 2.9, "seeked: {run}");
    // The video seeked (above) through the URL the API signed for this
    // session; so do the page's other media and its download links.
    let src = run["src"].as_str().unwrap();
    assert!(
        src.split('?')
            .next()
            .unwrap()
            .ends_with("/artifacts/output.mp4"),
        "{run}"
    );
    assert_signed(&json!([src]), "the video");
    assert_signed(&run["videos"], "the page's videos");
    assert_signed(&run["downloads"], "the artifacts' download links");
    if !run["images"].as_array().unwrap().is_empty() {
        assert_signed(&run["images"], "the page's images");
    }
    // The browser's session cookie alone reads the file by its signed
    // URL, and nothing by the same path unsigned or with another
    // signature.
    assert_eq!(
        status_with_cookie_alone(&server, &browser, src),
        206,
        "{src}"
    );
    let (path, query) = src.split_once('?').unwrap();
    assert_eq!(
        status_with_cookie_alone(&server, &browser, path),
        401,
        "{path}"
    );
    let forged = format!("{path}?{}", query.replace("sig=", "sig=A"));
    assert_eq!(
        status_with_cookie_alone(&server, &browser, &forged),
        401,
        "{forged}"
    );
    assert_eq!(run["series"], 1, "{run}");
    let provenance = run["provenance"].as_str().unwrap();
    assert!(
        provenance.contains("program")
            && provenance.contains("python3")
            && !provenance.contains("[object"),
        "{run}"
    );
    assert!(
        run["log"].as_str().unwrap().contains("done"),
        "log tail: {run}"
    );
    // Hover values on the chart.
    let hover = hover_middle(&browser, "#metrics")["text"].clone();
    // The tip names the x and each run's value there.
    assert!(
        hover.as_str().unwrap().starts_with("step ")
            && hover.as_str().unwrap().contains("cartpole-ppo: "),
        "{hover}"
    );
    // The log scale keeps the chart drawn.
    let log = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const box = document.querySelector('#metrics input.log-scale');
         box.click();
         setTimeout(() => done(document.querySelector('#metrics .metric-panel').querySelectorAll('svg path.series').length), 50);",
    );
    assert_eq!(log, json!(1));
    save_screenshot(&browser, "run-page.png");
    // The Export button makes a bundle and offers it.
    let exported = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('export').click();
         const start = Date.now();
         (function poll() {
           const link = document.querySelector('#export-result a');
           if (link) return done({href: link.getAttribute('href')});
           if (Date.now() - start > 10000) return done({error: document.getElementById('export-result').textContent});
           setTimeout(poll, 100);
         })();",
    );
    assert!(exported.get("error").is_none(), "{exported}");
    let signed_href = exported["href"].as_str().unwrap();
    assert_signed(&json!([signed_href]), "the bundle's download link");
    assert_eq!(
        status_with_cookie_alone(&server, &browser, signed_href),
        206,
        "{exported}"
    );
    let href = signed_href.split('?').next().unwrap();
    assert!(
        href.starts_with("/api/exports/cartpole-ppo-") && href.ends_with(".tar"),
        "{exported}"
    );
    assert!(
        data.path()
            .join("exports")
            .join(href.trim_start_matches("/api/exports/"))
            .is_file()
    );

    // 3. Compare: two videos play in sync; metrics overlaid.
    browser.goto(&base);
    wait_for(
        &browser,
        "document.querySelectorAll('#runs .card').length >= 4",
        "true",
    );
    let compare = browser.run_async(
        "const done = arguments[arguments.length - 1];
         for (const card of document.querySelectorAll('#runs .card')) {
           const t = card.querySelector('.card-title').textContent;
           if (t === 'cartpole-ppo' || t === 'diffusion-sweep-a') card.querySelector('.pick input').click();
         }
         document.getElementById('compare-selected').click();
         const start = Date.now();
         (function poll() {
           const vs = [...document.querySelectorAll('#compare-videos video')];
           if (Date.now() - start > 20000) return done({error: 'timeout', n: vs.length});
           if (vs.length < 2 || vs.some(v => v.readyState < 2) || !window.labCompare || !document.querySelector('#compare-metrics svg')) return setTimeout(poll, 100);
           window.labCompare.play().then(() => setTimeout(() => {
             const times = vs.map(v => v.currentTime);
             const paused = vs.map(v => v.paused);
             done({times, paused, srcs: vs.map(v => v.getAttribute('src')), series: document.querySelector('#compare-metrics .metric-panel').querySelectorAll('svg path.series').length});
           }, 1200));
         })();",
    );
    assert!(compare.get("error").is_none(), "{compare}");
    let times: Vec<f64> = compare["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    assert!(times.iter().all(|t| *t > 0.5), "both play: {compare}");
    assert!((times[0] - times[1]).abs() < 0.15, "in sync: {compare}");
    assert_eq!(compare["paused"], json!([false, false]), "{compare}");
    assert_eq!(compare["series"], json!(2), "metrics overlaid: {compare}");
    // The players take their runs' `video_url`.
    assert_signed(&compare["srcs"], "the compared videos");
    save_screenshot(&browser, "compare.png");
    let stepped = browser.run_async(
        "const done = arguments[arguments.length - 1];
         window.labCompare.pause();
         window.labCompare.seek(2.0);
         setTimeout(() => { window.labCompare.step(1); setTimeout(() => done([...document.querySelectorAll('#compare-videos video')].map(v => v.currentTime)), 300); }, 300);",
    );
    let stepped: Vec<f64> = stepped
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    assert!(
        stepped.iter().all(|t| (t - 2.04).abs() < 0.05),
        "frame step moves both: {stepped:?}"
    );

    // A file the browser cannot decode says so instead of a black box.
    let bad = browser.run_async(
        "const done = arguments[arguments.length - 1];
         fetch('/api/runs?q=bad-codec', {headers: {'X-Lab-Binding': localStorage.getItem('lab-binding')}}).then(r => r.json()).then(page => {
           location.hash = '#/runs/' + page.runs[0].id;
           const start = Date.now();
           (function poll() {
             const note = document.querySelector('.video-note.error');
             if (note) return done(note.textContent);
             if (Date.now() - start > 15000) return done('timeout');
             setTimeout(poll, 100);
           })();
         });",
    );
    assert!(bad.as_str().unwrap().contains("cannot"), "{bad}");

    // Clean so far, with no exception (the console log is drained by reading it).
    assert_clean_page(&browser, None);

    // 4. Import through the dialog: a refusal in plain words, then success.
    std::fs::create_dir_all(extra_root.join("new-run")).unwrap();
    std::fs::write(
        extra_root.join("new-run/run.toml"),
        "name = \"Imported via dialog\"\n",
    )
    .unwrap();
    let refused = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('import-open').click();
         document.getElementById('import-path').value = '/etc';
         document.getElementById('import-submit').click();
         const start = Date.now();
         (function poll() {
           const t = document.getElementById('import-error').textContent;
           if (t || Date.now() - start > 5000) return done({reason: t, roots: document.getElementById('import-roots').textContent});
           setTimeout(poll, 100);
         })();",
    );
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("not inside one of the allowed roots"),
        "{refused}"
    );
    assert!(
        refused["roots"]
            .as_str()
            .unwrap()
            .contains(extra_root.to_str().unwrap()),
        "{refused}"
    );
    let path = extra_root.join("new-run");
    let imported = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         document.getElementById('import-path').value = {path:?};
         document.getElementById('import-submit').click();
         const start = Date.now();
         (function poll() {{
           const title = document.getElementById('run-title');
           if (title && title.textContent === 'Imported via dialog') return done({{hash: location.hash, open: document.getElementById('import-dialog').open}});
           if (Date.now() - start > 25000) return done({{error: document.getElementById('import-error').textContent}});
           setTimeout(poll, 100);
         }})();",
        path = path.to_str().unwrap()
    ));
    assert!(imported.get("error").is_none(), "{imported}");
    assert!(
        imported["hash"]
            .as_str()
            .unwrap()
            .starts_with("#/runs/new-run-"),
        "{imported}"
    );
    assert_eq!(imported["open"], false);
    // Importing it again (or after the Lab's own walk found it first)
    // opens the run rather than failing.
    let again = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         location.hash = '#/';
         setTimeout(() => {{
           document.getElementById('import-open').click();
           document.getElementById('import-path').value = {path:?};
           document.getElementById('import-submit').click();
           const start = Date.now();
           (function poll() {{
             const title = document.getElementById('run-title');
             if (title && title.textContent === 'Imported via dialog' && !document.getElementById('import-dialog').open) return done({{hash: location.hash}});
             if (Date.now() - start > 25000) return done({{error: document.getElementById('import-error').textContent}});
             setTimeout(poll, 100);
           }})();
         }}, 300);",
        path = path.to_str().unwrap()
    ));
    assert_eq!(again["hash"], imported["hash"], "{again}");

    // 5. Keyboard: j/k move between runs from a run page.
    browser.goto(&base);
    wait_for(
        &browser,
        "document.querySelectorAll('#runs .card').length >= 4",
        "true",
    );
    let keys = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const key = (k) => document.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
         key('j');
         const focused = document.querySelector('.card.focused .card-title').textContent;
         key('Enter');
         setTimeout(() => { key('j'); setTimeout(() => done({focused, hash: location.hash}), 400); }, 400);",
    );
    assert!(
        keys["hash"].as_str().unwrap().starts_with("#/runs/"),
        "{keys}"
    );

    // No CSP violation and no console error anywhere on the way, but the
    // browser's network log of the deliberate 403 refusal of /etc above.
    assert_clean_page(&browser, Some("/api/runs"));

    // 6. The session dies (as when the Lab restarts): the page says so, once,
    // instead of failing request by request.
    let ended = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const token = document.querySelector('meta[name=lab-token]').content;
         fetch('/api/session', {method: 'DELETE', headers: {'X-Lab-Token': token, 'X-Lab-Binding': localStorage.getItem('lab-binding')}})
           .then(() => { location.hash = '#/compare/'; location.hash = '#/'; })
           .then(() => setTimeout(() => done({banner: document.getElementById('session-ended') ? document.getElementById('session-ended').textContent : null}), 1500));",
    );
    assert!(
        ended["banner"]
            .as_str()
            .unwrap_or("")
            .contains("session has ended"),
        "{ended}"
    );
}

#[test]
fn the_new_run_panel_starts_a_sandboxed_job_and_follows_its_log() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("lab.toml");
    std::fs::write(&config, "[runner]\nprograms = [\"sh\", \"echo\"]\n").unwrap();
    let flows = data.path().join("flows");
    std::fs::create_dir_all(flows.join("wf")).unwrap();
    std::fs::write(
        flows.join("wf/workflow.toml"),
        "name = \"hooked\"\n[[steps]]\nexec = true\nprogram = \"./hook.sh\"\n",
    )
    .unwrap();
    std::fs::write(
        flows.join("wf/hook.sh"),
        "#!/bin/sh\necho exec hook output\n",
    )
    .unwrap();
    std::fs::set_permissions(
        flows.join("wf/hook.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut command = Command::new(LAB);
    command
        // The data dir beside the workflows, not around them: no job may
        // start inside the Lab's data dir.
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(&flows)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--enable-runner",
            "--runner-allow-workflow-exec",
        ])
        .stderr(Stdio::null());
    let server = common::serve(command);
    let base = server.base.clone();
    let browser = csp_browser();
    // Which URLs the page opens event streams on (an EventSource sends no
    // header of the page's: only its URL's signature lets it read).
    browser.on_new_document(
        "window.__streams = [];
         window.EventSource = class extends window.EventSource {
           constructor(url, options) { super(url, options); window.__streams.push(String(url)); }
         };",
    );
    browser.goto(&server.link);
    wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]')",
        "true",
    );
    browser.goto(&format!("{base}#/jobs"));
    let panel = wait_for(
        &browser,
        "document.getElementById('job-program')",
        "{programs: [...document.querySelectorAll('#job-program option')].map(o => o.value), badges: document.querySelector('.job-form .badges').textContent}",
    );
    assert_eq!(panel["programs"], json!(["sh", "echo"]), "{panel}");
    assert!(
        panel["badges"]
            .as_str()
            .unwrap()
            .contains("network disabled"),
        "{panel}"
    );
    let done = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('job-program').value = 'sh';
         document.getElementById('job-args').value = `-c 'echo hello from the sandbox; sleep 0.5; echo \"$1 literally\"' sh '$(id);*'`;
         document.getElementById('job-submit').click();
         const start = Date.now();
         (function poll() {
           const state = document.getElementById('job-state');
           const log = document.getElementById('job-log');
           const iso = document.getElementById('job-isolation');
           if (state && state.textContent === 'finished' && log.textContent.includes('literally') && iso && iso.tagName === 'DETAILS')
             return done({log: log.textContent, hash: location.hash, cancel: document.getElementById('job-cancel').disabled, streams: window.__streams,
                          isolation: document.querySelector('.job-view').textContent.includes('user_namespace'), details: document.querySelector('.job-view').textContent,
                          jobIsolation: {open: iso.open, summary: iso.querySelector('summary').textContent},
                          facts: document.getElementById('job-facts').innerText});
           if (Date.now() - start > 15000) return done({error: 'timeout', text: document.getElementById('view').textContent});
           setTimeout(poll, 100);
         })();",
    );
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(
        done["log"], "hello from the sandbox\n$(id);* literally\n",
        "{done}"
    );
    assert!(
        done["hash"].as_str().unwrap().starts_with("#/jobs/dash-")
            || done["hash"].as_str().unwrap().starts_with("#/jobs/sh-"),
        "{done}"
    );
    assert_eq!(done["cancel"], true);
    // The log streamed by the job's `log_url`, signed.
    assert_signed(&done["streams"], "the job's log stream");
    assert!(
        done["streams"][0]
            .as_str()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .ends_with("/log"),
        "{done}"
    );
    assert_eq!(done["isolation"], true, "{done}");
    assert!(
        !done["details"].as_str().unwrap().contains("[object"),
        "{done}"
    );
    // The job page says its isolation in one line, closed by default, and
    // its facts in words.
    assert_eq!(done["jobIsolation"]["open"], false, "{done}");
    let line = done["jobIsolation"]["summary"].as_str().unwrap();
    assert!(
        line.starts_with("sandboxed: own namespaces, Landlock ABI ")
            && line.contains("seccomp, no network"),
        "{done}"
    );
    let job_facts = done["facts"].as_str().unwrap();
    for said in ["exited with code 0", "network\noff", "'$(id);*'"] {
        assert!(job_facts.contains(said), "{said:?} in {done}");
    }
    save_screenshot(&browser, "job.png");
    // Run again: the run the job made offers it, and the New run form
    // comes back filled in from the job's record (program, arguments,
    // timeout), editable, with the same network badge.
    let job_id = done["hash"]
        .as_str()
        .unwrap()
        .trim_start_matches("#/jobs/")
        .to_owned();
    browser.goto("about:blank");
    browser.goto(&format!("{base}#/runs/{job_id}"));
    assert_provenance_shown(&server, &browser, &job_id);
    let again = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {
           const link = document.getElementById('run-again');
           if (link && !location.hash.includes('again=')) { link.click(); return setTimeout(poll, 100); }
           const note = document.getElementById('again-note');
           if (note && note.textContent) return done({
             hash: location.hash, note: note.textContent, heading: document.querySelector('#new-run h2').textContent,
             program: document.getElementById('job-program').value, args: document.getElementById('job-args').value,
             timeout: document.getElementById('job-timeout').value, cwd: document.getElementById('job-cwd').value,
             badges: document.querySelector('.job-form .badges').textContent});
           if (Date.now() - start > 15000) return done({stuck: document.getElementById('view').innerText.slice(0, 300)});
           setTimeout(poll, 100);
         })();",
    );
    assert!(again.get("stuck").is_none(), "{again}");
    assert_eq!(again["hash"], format!("#/jobs?again={job_id}"), "{again}");
    assert_eq!(again["heading"], "Run again", "{again}");
    // The path it ran by, as recorded (the server checks it again).
    let ran_by = api_get(&server, &format!("/api/jobs/{job_id}"))["exec_path"].clone();
    assert_eq!(again["program"], ran_by, "{again}");
    assert_eq!(
        again["args"],
        "-c 'echo hello from the sandbox; sleep 0.5; echo \"$1 literally\"' sh '$(id);*'",
        "{again}"
    );
    assert_eq!(again["timeout"], "3600", "{again}");
    assert_eq!(again["cwd"], "", "{again}");
    assert!(again["note"].as_str().unwrap().contains(&job_id), "{again}");
    assert!(
        again["badges"]
            .as_str()
            .unwrap()
            .contains("network disabled"),
        "{again}"
    );
    save_screenshot(&browser, "run-again.png");
    // Edited and started, it runs as a new job.
    let rerun = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('job-args').value = \"-c 'echo again'\";
         document.getElementById('job-submit').click();
         const start = Date.now();
         (function poll() {
           const state = document.getElementById('job-state');
           const log = document.getElementById('job-log');
           if (state && state.textContent === 'finished' && log.textContent.includes('again')) return done({log: log.textContent, hash: location.hash});
           if (Date.now() - start > 15000) return done({timeout: document.getElementById('view').innerText.slice(0, 300)});
           setTimeout(poll, 100);
         })();",
    );
    assert_eq!(rerun["log"], "again\n", "{rerun}");
    assert_ne!(rerun["hash"], done["hash"], "a new job: {rerun}");
    // An argument with line breaks (a script), made through the API: run
    // again, it is one quoted argument across lines, and goes as recorded.
    let made = lab_test_support::http::Request::new("POST", "/api/jobs")
        .header("Authorization", format!("Bearer {}", server.key))
        .body(
            "application/json",
            json!({"program": "sh", "args": ["-c", "echo first\necho second"]})
                .to_string()
                .as_bytes(),
        )
        .send(server.port)
        .unwrap()
        .json();
    let script_job = made["id"].as_str().unwrap().to_owned();
    browser.goto("about:blank");
    browser.goto(&format!("{base}#/jobs?again={script_job}"));
    let kept = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {
           if (!location.hash.startsWith('#/jobs/')) {
             const note = document.getElementById('again-note');
             if (!note || !note.textContent) return Date.now() - start < 15000 ? setTimeout(poll, 100) : done({stuck: document.getElementById('view').innerText.slice(0, 400)});
             if (!window.__clicked) { window.__clicked = document.getElementById('job-args').value; document.getElementById('job-submit').click(); }
             return setTimeout(poll, 100);
           }
           const log = document.getElementById('job-log');
           const state = document.getElementById('job-state');
           if (log && state && state.textContent === 'finished') return done({note: window.__clicked, log: log.textContent});
           if (Date.now() - start > 15000) return done({stuck: document.getElementById('view').innerText.slice(0, 300)});
           setTimeout(poll, 100);
         })();",
    );
    assert_eq!(kept["note"], "-c 'echo first\necho second'", "{kept}");
    assert_eq!(kept["log"], "first\nsecond\n", "{kept}");
    // A workflow with an exec hook: a clear warning and an explicit
    // confirmation before it is sent again with confirm_exec_hooks.
    browser.goto(&format!("{base}#/jobs"));
    let flow = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function waitForm() {{
           const input = document.getElementById('workflow-path');
           if (!input) return setTimeout(waitForm, 100);
           input.value = {path:?};
           document.getElementById('workflow-submit').click();
           (function poll() {{
             const confirm = document.getElementById('exec-confirm');
             if (confirm) {{
               const disabledBefore = confirm.disabled;
               const warning = document.querySelector('#workflow-result .warning').textContent;
               document.getElementById('exec-understood').click();
               confirm.click();
               return (function wait() {{
                 const log = document.getElementById('job-log');
                 const state = document.getElementById('job-state');
                 if (log && state && state.textContent === 'finished') return done({{disabledBefore, warning, log: log.textContent}});
                 if (Date.now() - start > 15000) return done({{error: 'timeout after confirm'}});
                 setTimeout(wait, 100);
               }})();
             }}
             if (Date.now() - start > 15000) return done({{error: document.getElementById('workflow-result').textContent}});
             setTimeout(poll, 100);
           }})();
         }})();",
        path = flows.join("wf/workflow.toml").to_str().unwrap()
    ));
    assert!(flow.get("error").is_none(), "{flow}");
    assert_eq!(flow["disabledBefore"], true, "{flow}");
    assert!(
        flow["warning"].as_str().unwrap().contains("exec hooks"),
        "{flow}"
    );
    assert_eq!(flow["log"], "exec hook output\n", "{flow}");
    // Clean, but for the network log of the deliberate 403 (exec hooks not
    // yet confirmed) above.
    assert_clean_page(&browser, Some("/api/jobs"));
}

/// Whether `text` reads as a local ISO 8601 time with its offset, as the
/// run page writes one: `2026-12-07 05:45:01 +01:00`.
fn is_local_iso_time(text: &str) -> bool {
    let shape = "dddd-dd-dd dd:dd:dd sdd:dd";
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            's' => c == '+' || c == '-',
            _ => c == s,
        })
}

/// The run page of job run `run_id` (open in `browser`) shows its
/// provenance for people, read from the Lab's own `provenance.json`: start
/// and end as local ISO times, the duration, the program as found with
/// its canonical path and digest, the command quoted, the exit in words,
/// no git work tree; the isolation report in one line whose full report
/// is closed until opened, then shows Landlock's ABI.
fn assert_provenance_shown(server: &common::Served, browser: &Browser, run_id: &str) {
    let run = api_get(server, &format!("/api/runs/{run_id}"));
    assert!(
        run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "provenance.json"),
        "{run}"
    );
    let recorded = api_get(
        server,
        &format!("/api/runs/{run_id}/artifacts/provenance.json"),
    );
    let shown = wait_for(
        browser,
        "document.getElementById('provenance-facts') && document.getElementById('provenance-isolation')",
        "(() => {
           const facts = document.getElementById('provenance-facts');
           const iso = document.getElementById('provenance-isolation');
           const tree = iso.querySelector('dl.tree');
           const closed = {open: iso.open, rendered: tree.checkVisibility(), visible: iso.innerText, text: facts.innerText};
           iso.querySelector('summary').click();
           const abi = [...tree.querySelectorAll('dt')].find((dt) => dt.textContent === 'abi');
           const times = [...facts.querySelectorAll('time')];
           return {closed, open: iso.open, rendered: tree.checkVisibility(),
                   summary: iso.querySelector('summary').textContent, visible: iso.innerText,
                   abi: abi && abi.checkVisibility() ? abi.nextElementSibling.innerText : null,
                   times: times.map((t) => ({text: t.textContent, unix: Date.parse(t.getAttribute('datetime')) / 1000})),
                   duration: (facts.querySelector('.duration') || {}).textContent};
         })()",
    );
    assert!(shown.get("timeout").is_none(), "{shown}");
    let text = shown["closed"]["text"].as_str().unwrap();
    // Started and ended: local ISO times that are the recorded instants.
    let times = shown["times"].as_array().unwrap();
    assert_eq!(times.len(), 2, "{shown}");
    for (time, key) in times.iter().zip(["started", "ended"]) {
        assert!(is_local_iso_time(time["text"].as_str().unwrap()), "{shown}");
        assert_eq!(time["unix"], recorded[key], "{key}: {shown}");
    }
    assert!(
        !text.contains(&recorded["started"].to_string()),
        "no raw Unix time: {shown}"
    );
    let seconds = recorded["ended"].as_u64().unwrap() - recorded["started"].as_u64().unwrap();
    let duration = if seconds == 0 {
        "under 1 s".to_owned()
    } else {
        format!("{seconds} s")
    };
    assert_eq!(shown["duration"], duration.as_str(), "{shown}");
    // The program as found, its canonical path, a short digest.
    let path = recorded["path"].as_str().unwrap();
    let resolved = recorded["resolved_path"].as_str().unwrap();
    let sha256 = recorded["sha256"].as_str().unwrap();
    assert!(path.starts_with('/'), "{recorded}");
    assert!(text.contains(path) && text.contains(resolved), "{shown}");
    assert!(
        text.contains(&format!("sha256 {}…", &sha256[..12])),
        "{shown}"
    );
    assert!(!text.contains(sha256), "the digest shortened: {shown}");
    for said in [
        "'$(id);*'",
        "exited with code 0",
        "not a git work tree",
        "network\noff",
        "limits\nnone",
    ] {
        assert!(text.contains(said), "{said:?} in {shown}");
    }
    assert!(
        !text.contains("[object") && !text.contains("null"),
        "{shown}"
    );
    // The isolation report: one line, closed; opened, the full report
    // shows Landlock's ABI.
    let abi = recorded["isolation"]["landlock_filesystem"]["abi"].to_string();
    assert!(
        shown["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("Landlock ABI {abi}")),
        "{shown}"
    );
    assert_eq!(shown["closed"]["open"], false, "{shown}");
    assert_eq!(shown["closed"]["rendered"], false, "{shown}");
    assert!(
        !shown["closed"]["visible"]
            .as_str()
            .unwrap()
            .contains("landlock_filesystem"),
        "{shown}"
    );
    assert_eq!(shown["open"], true, "{shown}");
    assert_eq!(shown["rendered"], true, "{shown}");
    assert!(
        shown["visible"]
            .as_str()
            .unwrap()
            .contains("landlock_filesystem"),
        "{shown}"
    );
    assert_eq!(shown["abi"], abi.as_str(), "{shown}");
}

/// Parses `line` with the UI's argv.js in `browser`, for each line: a list
/// of `{argv}` or `{error, at}`.
fn parse_in_page(browser: &Browser, lines: &[&str]) -> Vec<Value> {
    let parsed = browser.run_async_with(
        "const done = arguments[arguments.length - 1];
         import('/assets/argv.js').then((m) => done(arguments[0].map((line) => m.parseArgv(line))), (e) => done({failed: String(e)}));",
        &[json!(lines)],
    );
    parsed
        .as_array()
        .unwrap_or_else(|| panic!("argv.js did not load: {parsed}"))
        .clone()
}

/// What dash (`/bin/sh`, a POSIX shell) makes of `line` as the arguments
/// of a command: the oracle for lines with no character a shell would
/// expand or treat as an operator.
fn shell_words(line: &str) -> Vec<String> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf '%s\\001' START {line}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "sh on {line:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words: Vec<String> = text.split('\u{1}').map(str::to_owned).collect();
    assert_eq!(words.remove(0), "START", "{line:?}");
    assert_eq!(words.pop().as_deref(), Some(""), "{line:?}");
    words
}

/// argv.js's parser on its table of cases, in the real browser: each
/// line, its argv or the position of its error; where a line holds
/// nothing a shell would expand, a real POSIX shell agrees.
#[test]
fn the_command_line_parser_follows_posix_quoting_and_expands_nothing() {
    let browser = csp_browser();
    let (server, base) = runner_server(&["sh"]);
    browser.goto(&server.link);
    wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]')",
        "true",
    );
    browser.goto(&format!("{base}#/jobs"));
    wait_for(&browser, "document.getElementById('job-args')", "true");
    // (line, Ok(argv) or Err(UTF-16 index of the error))
    let cases: &[(&str, Result<&[&str], usize>)] = &[
        ("", Ok(&[])),
        ("   \t \n ", Ok(&[])),
        ("train.py --lr 0.3", Ok(&["train.py", "--lr", "0.3"])),
        ("  a   b  ", Ok(&["a", "b"])),
        ("a\tb\nc", Ok(&["a", "b", "c"])),
        ("--lr '0.3 x'", Ok(&["--lr", "0.3 x"])),
        (r#""a\"b""#, Ok(&["a\"b"])),
        (r"c\ d", Ok(&["c d"])),
        ("'' \"\"", Ok(&["", ""])),
        ("a '' b", Ok(&["a", "", "b"])),
        ("''''", Ok(&[""])),
        (r"'it'\''s'", Ok(&["it's"])),
        (r#""it's""#, Ok(&["it's"])),
        (r#"'say "hi"'"#, Ok(&["say \"hi\""])),
        (r"'a\b'", Ok(&["a\\b"])),
        (r"'a\'", Ok(&["a\\"])),
        (r#""\$ \` \\ \" \a \n""#, Ok(&["$ ` \\ \" \\a \\n"])),
        (r"\a\b\\", Ok(&["ab\\"])),
        (r"\'", Ok(&["'"])),
        (r#"\""#, Ok(&["\""])),
        (r#"a"b c"'d e'f"#, Ok(&["ab cd ef"])),
        ("a\\\nb", Ok(&["ab"])),
        ("\"a\\\nb\"", Ok(&["ab"])),
        ("\"a\nb\"", Ok(&["a\nb"])),
        ("'a\nb'", Ok(&["a\nb"])),
        ("\\\n", Ok(&[])),
        ("é '日本 語' 😀", Ok(&["é", "日本 語", "😀"])),
        ("a\u{a0}b", Ok(&["a\u{a0}b"])),
        // No expansion, no operators, no comments: no shell runs.
        ("$HOME", Ok(&["$HOME"])),
        (
            "\"$HOME\" '$HOME' ${X:-y} $(id) `id`",
            Ok(&["$HOME", "$HOME", "${X:-y}", "$(id)", "`id`"]),
        ),
        ("*.py ~ ~/x ?", Ok(&["*.py", "~", "~/x", "?"])),
        (
            "a;b c|d && e > f < g 2>&1 &",
            Ok(&["a;b", "c|d", "&&", "e", ">", "f", "<", "g", "2>&1", "&"]),
        ),
        ("x # not a comment", Ok(&["x", "#", "not", "a", "comment"])),
        ("{a,b} (x) !", Ok(&["{a,b}", "(x)", "!"])),
        ("A=1 b", Ok(&["A=1", "b"])),
        // Errors: where the unterminated quote opened, or the last backslash.
        ("'abc", Err(0)),
        ("x \"abc", Err(2)),
        ("ok 'it'''s'", Err(10)),
        (r#""a\""#, Err(0)),
        ("é 'x", Err(2)),
        ("😀 \"x", Err(3)),
        (r"abc\", Err(3)),
        (r"'a' \", Err(4)),
    ];
    let lines: Vec<&str> = cases.iter().map(|(line, _)| *line).collect();
    let parsed = parse_in_page(&browser, &lines);
    assert_eq!(parsed.len(), cases.len());
    // What a shell expands or reads as an operator, and a newline (which
    // ends a shell command, and is a blank here).
    let special = |c: char| "$`*?[~#;|&<>(){}!\n".contains(c);
    for ((line, expected), got) in cases.iter().zip(&parsed) {
        match expected {
            Ok(argv) => {
                assert_eq!(got, &json!({ "argv": argv }), "{line:?}");
                if !line.contains(special) {
                    assert_eq!(shell_words(line), *argv, "sh disagrees on {line:?}");
                }
            }
            Err(at) => {
                assert_eq!(got["at"], json!(at), "{line:?}: {got}");
                assert!(got["argv"].is_null(), "{line:?}: {got}");
                assert!(!got["error"].as_str().unwrap().is_empty(), "{line:?}");
            }
        }
    }
    // The round trip: for tricky argvs (empty words, quotes, backslashes,
    // line breaks, blanks, shell characters, unicode), quoteArgv's line
    // parses back to the same argv, and means the same argv to dash.
    let pieces = [
        "", "a", "Z9", " ", "  ", "\t", "\n", "'", "''", "\"", "\\", "\\\\", "\\'", "'\\''", "$",
        "$HOME", "`", "*", "~", "#", ";", "|", "&&", "-", "--lr=0.3", "%", "@", ",", ":", "é",
        "日本", "😀", "\u{a0}", "\u{200b}", "e\u{301}", "\r",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut argvs: Vec<Vec<String>> = vec![
        vec![],
        vec![String::new()],
        vec![String::new(), String::new()],
        vec!["-c".into(), "print('it''s')".into(), "a b".into()],
        vec!["it's \"q\" \\ $HOME\n\ttab".into()],
    ];
    for _ in 0..400 {
        let mut argv = Vec::new();
        for _ in 0..next(5) {
            let mut word = String::new();
            for _ in 0..next(5) {
                word.push_str(pieces[next(pieces.len())]);
            }
            argv.push(word);
        }
        argvs.push(argv);
    }
    let round = browser.run_async_with(
        "const done = arguments[arguments.length - 1];
         import('/assets/argv.js').then((m) => done(arguments[0].map((argv) => {
           const line = m.quoteArgv(argv);
           return {line, back: m.parseArgv(line)};
         })), (e) => done({failed: String(e)}));",
        &[json!(argvs)],
    );
    let round = round.as_array().unwrap_or_else(|| panic!("{round}"));
    for (argv, got) in argvs.iter().zip(round) {
        let line = got["line"].as_str().unwrap();
        assert_eq!(
            got["back"],
            json!({ "argv": argv }),
            "{argv:?} quoted as {line:?}"
        );
        assert_eq!(&shell_words(line), argv, "sh reads {line:?} otherwise");
    }
    // Bare where nothing needs quoting, in single quotes where anything does.
    let quoted = browser.run_async_with(
        "const done = arguments[arguments.length - 1];
         import('/assets/argv.js').then((m) => done(m.quoteArgv(arguments[0])));",
        &[json!([
            "train.py", "--lr=0.3", "a b", "", "it's", "$HOME", "é"
        ])],
    );
    assert_eq!(quoted, r#"train.py --lr=0.3 'a b' '' 'it'\''s' '$HOME' é"#);
    assert_clean_page(&browser, None);
}

/// A Lab with the runner on for `programs` and a fresh data dir: the
/// server (its data dir held with it) and its base URL.
fn runner_server(programs: &[&str]) -> (RunnerServer, String) {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("lab.toml");
    std::fs::write(&config, format!("[runner]\nprograms = {programs:?}\n")).unwrap();
    let root = data.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut command = Command::new(LAB);
    command
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .arg("--config")
        .arg(&config)
        .arg("--root")
        .arg(&root)
        .args(["serve", "--bind", "127.0.0.1:0", "--enable-runner"])
        .stderr(Stdio::null());
    let served = common::serve(command);
    let base = served.base.clone();
    (
        RunnerServer {
            served,
            _data: data,
        },
        base,
    )
}

/// A served Lab and the data dir it lives in (dropped after the server).
struct RunnerServer {
    served: common::Served,
    _data: tempfile::TempDir,
}

impl std::ops::Deref for RunnerServer {
    type Target = common::Served;
    fn deref(&self) -> &common::Served {
        &self.served
    }
}

/// `GET path` with the key, as JSON.
fn api_get(server: &common::Served, path: &str) -> Value {
    lab_test_support::http::Request::new("GET", path)
        .header("Authorization", format!("Bearer {}", server.key))
        .send(server.port)
        .unwrap()
        .json()
}

/// The New run form takes a command line: typed key by key, it shows the
/// argv it makes as the user types; an unterminated quote is an error in
/// the form and starts nothing; Run again fills it with a line quoted from
/// the recorded argv, which, unedited, starts a job with exactly that argv.
#[test]
fn the_new_run_form_splits_a_command_line_like_a_shell_and_runs_again_exactly() {
    let (server, base) = runner_server(&["sh", "echo"]);
    let browser = csp_browser();
    browser.goto(&server.link);
    wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]')",
        "true",
    );
    browser.goto(&format!("{base}#/jobs"));
    let help = wait_for(
        &browser,
        "document.getElementById('job-args')",
        "document.getElementById('job-args-help').textContent",
    );
    assert!(
        help.as_str().unwrap().contains("No shell ever runs"),
        "{help}"
    );
    let chips = "[...document.querySelectorAll('#job-argv li code')].map((c) => c.textContent)";
    // Typed as a user would: the argv follows each key.
    browser.type_into("#job-args", "train.py --lr '0.3");
    let partial = wait_for(
        &browser,
        "document.getElementById('job-argv-error')",
        &format!(
            "{{error: document.getElementById('job-argv-error').textContent, chips: {chips}}}"
        ),
    );
    assert!(
        partial["error"]
            .as_str()
            .unwrap()
            .contains("unterminated single quote"),
        "{partial}"
    );
    assert_eq!(partial["chips"], json!([]), "{partial}");
    browser.type_into("#job-args", r#" x' "a\"b" c\ d '' $HOME"#);
    let typed = wait_for(
        &browser,
        "!document.getElementById('job-argv-error') && document.querySelectorAll('#job-argv li').length === 7",
        &format!(
            "{{chips: {chips}, line: document.getElementById('job-args').value, summary: document.getElementById('job-argv-summary').textContent}}"
        ),
    );
    assert_eq!(
        typed["line"], r#"train.py --lr '0.3 x' "a\"b" c\ d '' $HOME"#,
        "{typed}"
    );
    assert_eq!(
        typed["chips"],
        json!(["train.py", "--lr", "0.3 x", "a\"b", "c d", "", "$HOME"]),
        "{typed}"
    );
    assert_eq!(typed["summary"], "sh gets 7 arguments:", "{typed}");
    save_screenshot(&browser, "new-run-argv.png");
    // A pasted line that starts with the program's own name says so.
    browser.clear("#job-args");
    browser.type_into("#job-args", "sh -c 'echo x'");
    let twice = wait_for(
        &browser,
        "document.getElementById('job-argv-program-twice')",
        chips,
    );
    assert_eq!(twice, json!(["sh", "-c", "echo x"]), "{twice}");
    // An unterminated quote: shown in the form, and Start starts nothing.
    browser.clear("#job-args");
    browser.type_into("#job-args", r#"-c "echo started"#);
    let refused = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('job-submit').click();
         setTimeout(() => done({
           hash: location.hash,
           shown: (document.getElementById('job-argv-error') || {}).textContent,
           result: document.getElementById('job-result').textContent,
           focused: document.activeElement.id,
           at: document.getElementById('job-args').selectionStart,
         }), 1000);",
    );
    assert_eq!(refused["hash"], "#/jobs", "{refused}");
    assert!(
        refused["shown"]
            .as_str()
            .unwrap()
            .contains("unterminated double quote"),
        "{refused}"
    );
    assert!(
        refused["result"]
            .as_str()
            .unwrap()
            .contains("Nothing was started"),
        "{refused}"
    );
    assert_eq!(refused["focused"], "job-args", "{refused}");
    assert_eq!(refused["at"], 3, "{refused}");
    let jobs = api_get(&server, "/api/jobs");
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
    // Run again of a job whose arguments hold quotes, blanks, an empty
    // word and a backslash: the line reads back as exactly that argv,
    // and unedited it starts a job whose record has exactly that argv.
    let recorded = json!([
        "-c",
        "printf '<%s>' \"$@\"; echo \" it's\"",
        "zero",
        "a  b",
        "",
        "it's \"quoted\" \\ end",
        "print('it''s')"
    ]);
    let made = lab_test_support::http::Request::new("POST", "/api/jobs")
        .header("Authorization", format!("Bearer {}", server.key))
        .body(
            "application/json",
            json!({"program": "sh", "args": recorded})
                .to_string()
                .as_bytes(),
        )
        .send(server.port)
        .unwrap()
        .json();
    let first = made["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_owned();
    browser.goto("about:blank");
    browser.goto(&format!("{base}#/jobs?again={first}"));
    let filled = wait_for(
        &browser,
        "document.getElementById('again-note') && document.getElementById('again-note').textContent",
        &format!(
            "{{line: document.getElementById('job-args').value, program: document.getElementById('job-program').value, chips: {chips}}}"
        ),
    );
    let line = filled["line"]
        .as_str()
        .unwrap_or_else(|| panic!("{filled}"));
    assert_eq!(
        line,
        r#"-c 'printf '\''<%s>'\'' "$@"; echo " it'\''s"' zero 'a  b' '' 'it'\''s "quoted" \ end' 'print('\''it'\'''\''s'\'')'"#,
        "{filled}"
    );
    let ran_by = api_get(&server, &format!("/api/jobs/{first}"))["exec_path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ran_by.ends_with("/sh"), "{ran_by}");
    assert_eq!(filled["program"], ran_by.as_str(), "{filled}");
    assert_eq!(filled["chips"], recorded, "{filled}");
    assert_eq!(
        parse_in_page(&browser, &[line]),
        [json!({ "argv": recorded })]
    );
    let started = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('job-submit').click();
         const start = Date.now();
         (function poll() {
           const state = document.getElementById('job-state');
           const log = document.getElementById('job-log');
           if (location.hash.startsWith('#/jobs/') && state && state.textContent === 'finished' && log.textContent.includes(\" it's\\n\"))
             return done({hash: location.hash, log: log.textContent, head: document.querySelector('.job-view .run-head p').textContent});
           if (Date.now() - start > 15000) return done({stuck: document.getElementById('view').innerText.slice(0, 400)});
           setTimeout(poll, 100);
         })();",
    );
    assert!(started.get("stuck").is_none(), "{started}");
    let second = started["hash"]
        .as_str()
        .unwrap()
        .trim_start_matches("#/jobs/");
    assert_ne!(second, first, "{started}");
    let record = api_get(&server, &format!("/api/jobs/{second}"));
    assert_eq!(record["program"], ran_by.as_str(), "{record}");
    assert_eq!(record["exec_path"], ran_by.as_str(), "{record}");
    assert_eq!(record["args"], recorded, "{record}");
    assert_eq!(
        started["log"], "<a  b><><it's \"quoted\" \\ end><print('it''s')> it's\n",
        "{started}"
    );
    // The job's page shows its command quoted the same way.
    assert_eq!(started["head"], format!("{ran_by} {line}"), "{started}");
    assert_clean_page(&browser, None);
}

/// Each format's run page, on runs the real tools wrote: the title, the
/// params table, a chart drawn from the metrics API and no console error;
/// one screenshot per format (`LAB_UPDATE_SCREENSHOTS=1` copies them into
/// docs/screenshots).
#[test]
fn each_formats_run_page_shows_params_and_charts() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    for kind in ["tensorboard", "mlflow", "mlflow-db", "hydra", "wandb"] {
        common::write(kind, &root);
    }
    common::write_lightning(&root);
    let server = serve_roots(&base.join("data"), &[&root]);
    let runs = lab_test_support::http::Request::new("GET", "/api/runs")
        .header("Authorization", format!("Bearer {}", server.key))
        .send(server.port)
        .unwrap()
        .json();
    let pick = |format: &str, path_has: &str| -> String {
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["format"] == format && r["path"].as_str().unwrap().ends_with(path_has))
            .unwrap_or_else(|| panic!("no {format} run: {runs}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let browser = csp_browser();
    browser.goto(&server.link);
    // Runs with no media: the list opens as the table; cards, chosen, are
    // remembered (the format filter below lists cards).
    let opened = wait_for(
        &browser,
        "document.querySelector('.segmented .on')",
        "document.querySelector('.segmented .on').id",
    );
    assert_eq!(opened, json!("view-table"));
    browser.run_async(
        "document.getElementById('view-cards').click(); arguments[arguments.length - 1](true)",
    );
    wait_for(&browser, "document.querySelector('#runs .card')", "true");
    browser.resize(1280, 1700);
    // (format, where, a param or a section the page must show, screenshot)
    for (format, path_has, shows, shot) in [
        (
            "tensorboard",
            "/tb-ppo-seed1",
            "#texts",
            "format-tensorboard.png",
        ),
        ("mlflow", "mlruns", "layers", "format-mlflow.png"),
        ("mlflow", "/store", "depth", "format-mlflow-db.png"),
        ("lightning", "version_0", "hidden.1", "format-lightning.png"),
        ("hydra", "10-00-00", "model.depth", "format-hydra.png"),
        ("wandb", "wb-alpha", "model.depth", "format-wandb.png"),
    ] {
        // MLflow: alpha and gamma, the runs with params, metrics and artifacts.
        let id = match path_has {
            "mlruns" | "/store" | "wb-alpha" => {
                let title = match path_has {
                    "mlruns" => "alpha",
                    "/store" => "gamma",
                    other => other,
                };
                runs["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["name"] == title)
                    .unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
            _ => pick(format, path_has),
        };
        // A whole page load each time (a fragment-only change would keep
        // the previous page's scripts and media running under the waits).
        browser.goto("about:blank");
        browser.goto(&format!("{}#/runs/{id}", server.base));
        let ready = format!(
            "(document.getElementById('run-path') || {{}}).textContent?.startsWith({id:?}) && document.querySelector('#metrics svg path.series')"
        );
        let page = wait_for(
            &browser,
            &ready,
            "{facts: document.getElementById('run-facts').textContent,
              params: [...document.querySelectorAll('#params th')].map(t => t.textContent),
              texts: !!document.querySelector('#texts'),
              series: document.querySelectorAll('#metrics svg path.series').length}",
        );
        assert!(page.get("timeout").is_none(), "{format}: {page}");
        assert!(
            page["facts"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{format} run")),
            "{page}"
        );
        let shown = if shows == "#texts" {
            page["texts"] == true
        } else {
            page["params"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == shows)
        };
        assert!(shown, "{format}: {shows} in {page}");
        if format == "wandb" {
            // Media by step: the logged video and image at their steps.
            let media = wait_for(
                &browser,
                "document.querySelector('#media-by-step video') && document.querySelector('#media-by-step img') && document.querySelector('#media-by-step img').complete && document.querySelector('#media-by-step video').readyState >= 1",
                "{captions: [...document.querySelectorAll('#media-by-step .scrub-tile')].map(k => k.dataset.key + ' ' + k.querySelector('.scrub-caption').textContent),
                  srcs: [...document.querySelectorAll('#media-by-step video, #media-by-step img')].map(e => e.getAttribute('src'))}",
            );
            assert!(media.get("timeout").is_none(), "{media}");
            assert_signed(&media["srcs"], "W&B media by step");
            let media = &media["captions"];
            // One scrubber for both keys, at the last step (11): each key
            // shows its item at the greatest step at or below it.
            let text = media.to_string();
            assert!(
                text.contains("rollout @ step 10") && text.contains("sample @ step 11"),
                "{text}"
            );
        }
        assert!(page["series"].as_u64().unwrap() >= 1, "{page}");
        assert_clean_page(&browser, None);
        save_screenshot(&browser, shot);
    }
    // The list filters by format.
    browser.goto(&server.base);
    let listed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {
           const select = document.getElementById('format');
           if (!select) return Date.now() - start < 15000 ? setTimeout(poll, 100) : done({timeout: document.body.innerText.slice(0, 300)});
           if (select.value !== 'lightning') { select.value = 'lightning'; select.dispatchEvent(new Event('change')); }
           const cards = [...document.querySelectorAll('#runs .card')];
           if ((cards.length !== 1 || !document.getElementById('format') || document.getElementById('format').value !== 'lightning') && Date.now() - start < 15000) return setTimeout(poll, 100);
           done(cards.map(c => c.querySelector('.badge.format').textContent));
         })();",
    );
    assert_eq!(listed, json!(["lightning"]), "{listed}");
}

/// The id of the run whose path ends with `suffix`, among those the list
/// gives for `query` (`format=…`, `q=…`).
fn run_id(server: &common::Served, query: &str, suffix: &str) -> String {
    let runs = lab_test_support::http::Request::new("GET", &format!("/api/runs?limit=500&{query}"))
        .header("Authorization", format!("Bearer {}", server.key))
        .send(server.port)
        .unwrap()
        .json();
    runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no run {suffix}: {runs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Issue 16's views on runs the real tools wrote, beside 10,000 plain
/// runs: the runs table (column choice and sort, remembered; only the rows
/// in view in the DOM), twenty MLflow runs overlaid with smoothing and
/// their params diffed, one step scrubber changing the frame of two
/// tensorboardX runs at once (keys and a chart click), and a run still
/// being written gaining points without a reload. Screenshots of each.
#[test]
fn the_ui_handles_sweeps_media_by_step_and_live_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("sweep", &root);
    common::write("tb-media", &root);
    // A run whose log is still being written (the Lab's own format).
    std::fs::create_dir_all(root.join("logging")).unwrap();
    std::fs::write(root.join("logging/run.toml"), "name = \"logging\"\n").unwrap();
    std::fs::write(root.join("logging/stdout.log"), "line 1\n").unwrap();
    // 10,000 plain runs: the table must stay a screenful of rows.
    let bulk = base.join("bulk");
    for i in 0..10_000 {
        let dir = bulk.join(format!("bulk-{i:05}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("run.toml"),
            format!(
                "name = \"bulk-{i:05}\"\n[params]\nlr = {}\n",
                f64::from(i) / 1e5
            ),
        )
        .unwrap();
    }
    // A run still being written: tensorboardX, 10 points now, 10 more when
    // told.
    #[allow(clippy::disallowed_methods)] // the test drives the real writer
    let mut live = Command::new(common::python())
        .arg(common::writer())
        .args(["live"])
        .arg(&root)
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut live_out = std::io::BufReader::new(live.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut live_out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let server = serve_roots(&base.join("data"), &[&root, &bulk]);
    let id_of = |suffix: &str| run_id(&server, "format=tensorboard", suffix);
    let browser = csp_browser();
    browser.resize(1280, 800);
    browser.goto(&server.link);
    // 10,000 runs without media: the list opens as the table.
    let opened = wait_for(
        &browser,
        "document.querySelector('.segmented .on')",
        "document.querySelector('.segmented .on').id",
    );
    assert_eq!(opened, json!("view-table"));

    // 1. The table: 10,000+ runs, a screenful of rows in the DOM; choose
    // the columns lr and loss, sort by lr (descending), and find both
    // remembered after a reload.
    let table = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('view-table').click();
         const start = Date.now();
         (function poll() {
           const rows = document.querySelectorAll('#runs-table .tbody .trow:not(.loading)');
           if (!rows.length || !document.querySelector('#columns')) return Date.now() - start < 15000 ? setTimeout(poll, 100) : done({timeout: document.body.innerText.slice(0, 400)});
           done({rendered: rows.length, total: Number(document.getElementById('runs-table').getAttribute('aria-rowcount')) - 1});
         })();",
    );
    assert!(table.get("timeout").is_none(), "{table}");
    assert!(table["total"].as_u64().unwrap() >= 10_022, "{table}");
    assert!(
        table["rendered"].as_u64().unwrap() < 100,
        "only the rows in view: {table}"
    );
    // Scrolled to the end, the last rows arrive (pages asked for on the way).
    let end = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const s = document.getElementById('runs-table');
         const start = performance.now();
         s.scrollTop = s.scrollHeight;
         (function poll() {
           const last = [...document.querySelectorAll('#runs-table .tbody .trow:not(.loading)')].map(r => Number(r.dataset.index));
           if (last.includes(Number(s.getAttribute('aria-rowcount')) - 2)) return done({rendered: document.querySelectorAll('#runs-table .tbody .trow').length, ms: Math.round(performance.now() - start)});
           if (performance.now() - start > 15000) return done({timeout: last.slice(-3)});
           requestAnimationFrame(poll);
         })();",
    );
    assert!(end.get("timeout").is_none(), "{end}");
    // Issue 28 asks for it: from the scroll to the painted last rows (the
    // last page of the list fetched on the way), in this headless run.
    eprintln!(
        "scroll to the end of {} runs painted in {} ms",
        table["total"], end["ms"]
    );
    assert!(end["rendered"].as_u64().unwrap() < 100, "{end}");
    let sorted = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         const choose = (want) => {
           for (const box of document.querySelectorAll('#columns input[type=checkbox]')) {
             if (box.checked !== want.includes(box.value)) { box.click(); return true; }
           }
           return false;
         };
         (function poll() {
           if (Date.now() - start > 20000) return done({timeout: document.querySelector('#runs-table .thead').textContent});
           // One change at a time: each redraws the table.
           if (choose(['params.lr', 'metrics.loss'])) return setTimeout(poll, 300);
           const lr = document.querySelector('#runs-table .thead [data-key=\"params.lr\"]');
           if (!lr || !document.querySelector('#runs-table .thead [data-key=\"metrics.loss\"]')) return setTimeout(poll, 100);
           if (!lr.classList.contains('sorted')) { lr.click(); return setTimeout(poll, 300); }
           const heads = [...document.querySelectorAll('#runs-table .thead .th')].map(h => h.dataset.key);
           const cells = [...document.querySelectorAll('#runs-table .tbody .trow:not(.loading)')].slice(0, 5).map(r => r.querySelector('.td.param').textContent);
           if (!cells.length) return setTimeout(poll, 100);
           done({heads, cells, sort: document.getElementById('sort').value});
         })();",
    );
    assert!(sorted.get("timeout").is_none(), "{sorted}");
    assert_eq!(sorted["sort"], "params.lr:desc", "{sorted}");
    assert!(
        sorted["heads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "params.lr"),
        "{sorted}"
    );
    // The sweep's lr runs 0.001…0.02; the plain runs' below 0.1 but the
    // largest of all is bulk-09999's 0.09999.
    assert_eq!(sorted["cells"][0], "0.09999", "{sorted}");
    save_screenshot(&browser, "runs-table.png");
    browser.goto("about:blank");
    browser.goto(&server.base);
    let remembered = wait_for(
        &browser,
        "document.querySelector('#runs-table .thead [data-key=\"params.lr\"]')",
        "{view: !!document.getElementById('runs-table'), heads: [...document.querySelectorAll('#runs-table .thead .th')].map(h => h.dataset.key).filter(k => k.includes('.'))}",
    );
    assert_eq!(
        remembered,
        json!({"view": true, "heads": ["params.lr", "metrics.loss"]}),
        "the view and the columns are remembered"
    );
    // No token, key or run data in storage: preferences only.
    let stored = browser.run_async(
        "arguments[arguments.length - 1](Object.keys(localStorage).map(k => k + '=' + localStorage.getItem(k)))",
    );
    for entry in stored.as_array().unwrap() {
        let entry = entry.as_str().unwrap();
        assert!(
            entry.starts_with("lab-pref-") || entry.starts_with("lab-binding="),
            "{entry}"
        );
        assert!(!entry.contains(&server.key), "{entry}");
    }

    // 2. Twenty MLflow runs selected in the table, overlaid, smoothed.
    let compare = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const format = document.getElementById('format');
         format.value = 'mlflow'; format.dispatchEvent(new Event('change'));
         const start = Date.now();
         (function poll() {
           if (Date.now() - start > 25000) return done({timeout: document.getElementById('view').innerText.slice(0, 300), hash: location.hash, boxes: document.querySelectorAll('#runs-table .tbody .trow .pick input').length});
           const boxes = [...document.querySelectorAll('#runs-table .tbody .trow:not(.loading) .pick input')];
           if (!location.hash.startsWith('#/compare/')) {
             const table = document.getElementById('runs-table');
             if (document.getElementById('format').value !== 'mlflow' || !table || table.getAttribute('aria-rowcount') !== '21' || !boxes.length) return setTimeout(poll, 100);
             // Tick what is in view, scroll on, until all twenty are.
             boxes.forEach(b => { if (!b.checked) b.click(); });
             const button = document.getElementById('compare-selected');
             if (button.textContent !== 'Compare 20 selected') { table.scrollTop += 200; return setTimeout(poll, 100); }
             button.click();
             return setTimeout(poll, 100);
           }
           const panel = document.querySelector('#compare-metrics .metric-panel');
           if (!panel || panel.querySelectorAll('svg path.series').length < 20) return setTimeout(poll, 100);
           const smooth = document.querySelector('#compare-metrics input.smoothing');
           if (smooth.value !== '0.6') { smooth.value = '0.6'; smooth.dispatchEvent(new Event('input')); return setTimeout(poll, 100); }
           const chart = panel.querySelector('.chart').chart;
           done({
             button: document.getElementById('compare-selected') ? null : 'gone',
             smoothed: panel.querySelectorAll('svg path.series.smoothed').length,
             raw: panel.querySelectorAll('svg path.series.raw').length,
             rawOpacity: panel.querySelector('svg path.series.raw').getAttribute('stroke-opacity'),
             chart,
             diff: [...document.querySelectorAll('#params-diff tbody tr')].map(r => r.dataset.key),
             diffCount: document.getElementById('params-diff-count').textContent,
           });
         })();",
    );
    assert!(compare.get("timeout").is_none(), "{compare}");
    assert_eq!(compare["smoothed"], 20, "{compare}");
    assert_eq!(compare["raw"], 20, "{compare}");
    assert_eq!(compare["rawOpacity"], "0.25", "{compare}");
    assert_eq!(compare["chart"]["smoothing"], 0.6, "{compare}");
    assert!(
        compare["chart"]["series"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["points"] == 30),
        "every run's 30 steps: {compare}"
    );
    // lr and batch differ between the runs; opt does not.
    assert_eq!(compare["diff"], json!(["batch", "lr"]), "{compare}");
    assert!(
        compare["diffCount"].as_str().unwrap().starts_with("2 of 3"),
        "{compare}"
    );
    // Hover: every run's value at that step.
    let hover = hover_middle(&browser, "#compare-metrics");
    assert_eq!(hover["rows"], 20, "{hover}");
    let all = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('params-all').click();
         setTimeout(() => done(document.querySelectorAll('#params-diff tbody tr').length), 50);",
    );
    assert_eq!(all, 3, "show all");
    assert_clean_page(&browser, None);
    save_screenshot(&browser, "compare-20-runs.png");

    // 3. One scrubber for two runs' images by step: media-a logged at 0
    // and 20, media-b at 0, 10 and 20.
    let (a, b) = (id_of("/tb-media-a"), id_of("/tb-media-b"));
    browser.goto("about:blank");
    browser.goto(&format!("{}#/compare/{a},{b}", server.base));
    let frames = "Object.fromEntries([...document.querySelectorAll('#step-scrubber .scrub-tile')].map(t => [t.dataset.run, {step: t.dataset.step, src: (t.querySelector('img') || {}).src, done: !!(t.querySelector('img') && t.querySelector('img').complete && t.querySelector('img').naturalWidth)}]))";
    let at_end = wait_for(
        &browser,
        &format!(
            "document.querySelectorAll('#step-scrubber .scrub-tile img').length === 2 && Object.values({frames}).every(f => f.done)"
        ),
        &format!(
            "{{label: document.querySelector('.scrubber-step').textContent, frames: {frames}}}"
        ),
    );
    assert!(at_end.get("timeout").is_none(), "{at_end}");
    assert_eq!(at_end["label"], "step 20", "{at_end}");
    assert_eq!(at_end["frames"][&a]["step"], "20", "{at_end}");
    assert_eq!(at_end["frames"][&b]["step"], "20", "{at_end}");
    // TensorBoard images load by the signed URLs the API gave (`media[].url`).
    let srcs: Vec<String> = [&a, &b]
        .iter()
        .map(|id| {
            let src = at_end["frames"][id.as_str()]["src"].as_str().unwrap();
            let at = src.find("/api/").unwrap_or_else(|| panic!("{at_end}"));
            src[at..].to_owned()
        })
        .collect();
    assert_signed(&json!(srcs), "the scrubber's images");
    // Keys: `,` steps back to 10 — b has a frame there, a shows its 0.
    let stepped = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         document.dispatchEvent(new KeyboardEvent('keydown', {{key: ',', bubbles: true}}));
         setTimeout(() => done({{label: document.querySelector('.scrubber-step').textContent, frames: {frames}}}), 200);"
    ));
    assert_eq!(stepped["label"], "step 10", "{stepped}");
    assert_eq!(stepped["frames"][&a]["step"], "0", "{stepped}");
    assert_eq!(stepped["frames"][&b]["step"], "10", "{stepped}");
    assert_ne!(
        stepped["frames"][&b]["src"], at_end["frames"][&b]["src"],
        "{stepped}"
    );
    assert_ne!(
        stepped["frames"][&a]["src"], at_end["frames"][&a]["src"],
        "{stepped}"
    );
    save_screenshot(&browser, "media-by-step.png");
    // A click on the chart at the far right moves the scrubber to 20.
    let picked = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {{
           const s = document.querySelector('#compare-metrics svg');
           if (!s) return Date.now() - start < 15000 ? setTimeout(poll, 100) : done({{timeout: true}});
           const b = s.getBoundingClientRect();
           const at = {{clientX: b.right - 2, clientY: b.top + b.height / 2, bubbles: true, pointerId: 1}};
           s.dispatchEvent(new PointerEvent('pointerdown', at));
           s.dispatchEvent(new PointerEvent('pointerup', at));
           setTimeout(() => done({{label: document.querySelector('.scrubber-step').textContent, frames: {frames}}}), 200);
         }})();"
    ));
    assert_eq!(picked["label"], "step 20", "{picked}");
    assert_eq!(picked["frames"][&a]["step"], "20", "{picked}");
    assert_clean_page(&browser, None);

    // 4. The live run gains its next 10 points without a reload.
    let id = id_of("/tb-live");
    browser.goto("about:blank");
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let before = wait_for(
        &browser,
        "document.querySelector('#metrics .chart') && document.querySelector('#metrics .chart').chart",
        "(window.__same = 'this document', {points: document.querySelector('#metrics .chart').chart.series[0].points, live: !document.querySelector('#metrics .badge.live').hidden})",
    );
    // Not seen growing yet (its format says nothing of its status): no
    // "live" badge.
    assert_eq!(before, json!({"points": 10, "live": false}), "{before}");
    use std::io::Write as _;
    writeln!(live.stdin.as_mut().unwrap()).unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut live_out, &mut line).unwrap();
    assert_eq!(line.trim(), "done");
    let after = wait_for(
        &browser,
        "document.querySelector('#metrics .chart').chart.series[0].points === 20",
        "{same: window.__same, points: document.querySelector('#metrics .chart').chart.series[0].points, live: !document.querySelector('#metrics .badge.live').hidden}",
    );
    // Seen growing: the badge says so.
    assert_eq!(
        after,
        json!({"same": "this document", "points": 20, "live": true}),
        "{after}"
    );
    writeln!(live.stdin.as_mut().unwrap()).unwrap();
    let _ = live.wait();
    assert_clean_page(&browser, None);
    save_screenshot(&browser, "live-run.png");
    // x by time since the run's first point: the same 20 points.
    let relative = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const x = document.querySelector('#metrics select.x-axis');
         x.value = 'relative'; x.dispatchEvent(new Event('change'));
         const start = Date.now();
         (function poll() {
           const c = document.querySelector('#metrics .chart');
           if (c && c.chart && c.chart.axis === 'relative') return done({points: c.chart.series[0].points, label: c.querySelector('.axis-label').textContent});
           if (Date.now() - start > 15000) return done({stuck: true});
           setTimeout(poll, 100);
         })();",
    );
    assert_eq!(
        relative,
        json!({"points": 20, "label": "time since start"}),
        "{relative}"
    );
    // A log being written is followed: only the appended bytes are asked
    // for, and they appear without a reload.
    let logging = run_id(&server, "q=logging", "/logging");
    browser.goto("about:blank");
    browser.goto(&format!("{}#/runs/{logging}", server.base));
    let first = wait_for(
        &browser,
        "(document.querySelector('pre.log') || {}).textContent === 'line 1\\n'",
        "(window.__same = 'log document', document.querySelector('.log-panel input[type=checkbox]').checked)",
    );
    assert_eq!(first, true, "a fresh log is followed: {first}");
    {
        use std::io::Write as _;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("logging/stdout.log"))
            .unwrap();
        log.write_all(b"line 2\n").unwrap();
    }
    let grown = wait_for(
        &browser,
        "document.querySelector('pre.log').textContent === 'line 1\\nline 2\\n'",
        "window.__same",
    );
    assert_eq!(grown, "log document", "{grown}");
    // A run id nobody registered: a page that says so and where to go.
    browser.goto(&format!("{}#/runs/no-such-run", server.base));
    let missing = wait_for(
        &browser,
        "document.querySelector('.failure')",
        "document.querySelector('.failure').textContent",
    );
    assert!(
        missing.as_str().unwrap().contains("No run with this id"),
        "{missing}"
    );

    // 5. The same views on a 4K screen and in dark mode.
    browser.call(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    );
    let dark = browser.run_async(
        "arguments[arguments.length - 1](getComputedStyle(document.body).backgroundColor)",
    );
    assert_eq!(dark, "rgb(18, 20, 23)", "dark mode follows the system");
    save_screenshot(&browser, "live-run-dark.png");
    browser.resize(3840, 2160);
    browser.goto("about:blank");
    browser.goto(&format!("{}#/compare/{a},{b}", server.base));
    wait_for(
        &browser,
        "document.querySelectorAll('#step-scrubber .scrub-tile img').length === 2 && document.querySelector('#compare-metrics svg')",
        "true",
    );
    save_screenshot(&browser, "compare-4k-dark.png");
}

/// Failed credentials over the server-wide rate are answered 429 for a
/// second (SPEC §4). The owner's login link still signs in (the login page
/// tries again after `Retry-After`), and the page's API calls try a 429
/// again after its `Retry-After`, at most twice.
#[test]
fn a_429_is_tried_again_after_its_retry_after() {
    let data = tempfile::tempdir().unwrap();
    let server = serve_roots(data.path(), &[]);
    let browser = Browser::start(Command::new("chromedriver"));
    browser.goto(&server.base);
    wait_for(
        &browser,
        "document.getElementById('login-status') && document.getElementById('login-status').textContent.includes('not signed in')",
        "true",
    );
    // Someone guesses keys: over 100 failures in a second lock the Lab.
    let guess = || {
        lab_test_support::http::Request::new("GET", "/api/status")
            .anonymous()
            .header("Authorization", "Bearer not-the-key")
            .send(server.port)
            .unwrap()
    };
    // Four guessers, each until the Lab answers 429 (a slow machine may
    // need more than a second's worth of guesses to pass the rate).
    let seen = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2000 {
                    if seen.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    if guess().status == 429 {
                        seen.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let locked = guess();
    assert_eq!(locked.status, 429, "{}", locked.summary());
    assert_eq!(
        locked.header("retry-after"),
        Some("1"),
        "{}",
        locked.summary()
    );
    // The login link, opened now, signs in all the same.
    browser.goto(&server.link);
    let signed_in = wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]')",
        "location.href",
    );
    assert_eq!(signed_in, json!(server.base), "{signed_in}");
    // What the console holds is at most the login's 429 (while the Lab
    // was still locked when the page posted the key; it usually is).
    for entry in browser.console() {
        let message = entry["message"].as_str().unwrap_or_default();
        assert!(
            entry["level"] != "SEVERE"
                || message.ends_with("/api/session - Failed to load resource: the server responded with a status of 429 (Too Many Requests)"),
            "{entry}"
        );
    }
    // api(): a 429 is sent again after Retry-After (two of them cost two
    // seconds), a third is the caller's error.
    let retried = browser.run_async(
        "const done = arguments[arguments.length - 1];
         import('/assets/dom.js').then(async ({ api }) => {
           const real = window.fetch;
           const refuse = (n) => {
             let left = n;
             window.fetch = (...args) => left-- > 0
               ? Promise.resolve(new Response(JSON.stringify({error: {code: 'rate_limited', message: 'slow down'}}),
                   {status: 429, headers: {'Retry-After': '1', 'Content-Type': 'application/json'}}))
               : real(...args);
           };
           refuse(2);
           let start = Date.now();
           const answered = await api('/api/status').then((s) => typeof s.version, (e) => e.code);
           const twice = Date.now() - start;
           refuse(3);
           start = Date.now();
           const refused = await api('/api/status').then(() => 'answered', (e) => `${e.status} ${e.code}`);
           const thrice = Date.now() - start;
           window.fetch = real;
           done({answered, twice, refused, thrice});
         }, (e) => done({error: String(e)}));",
    );
    assert!(retried.get("error").is_none(), "{retried}");
    assert_eq!(retried["answered"], "string", "{retried}");
    assert!(retried["twice"].as_u64().unwrap() >= 2000, "{retried}");
    assert_eq!(retried["refused"], "429 rate_limited", "{retried}");
    let thrice = retried["thrice"].as_u64().unwrap();
    assert!(
        (2000..2900).contains(&thrice),
        "at most two retries: {retried}"
    );
}

/// The research loop's `train.py`: `--lr` in, `params.json` and a few
/// steps of `loss` in `metrics.jsonl`, and TensorBoard scalars
/// (`train/loss`) by tensorboardX in `tb/`, all under `$LAB_OUTPUT_DIR`.
const RESEARCH_TRAIN: &str = "\
import argparse, json, os
from tensorboardX import SummaryWriter
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, required=True)
lr = parser.parse_args().lr
out = os.environ['LAB_OUTPUT_DIR']
with open(os.path.join(out, 'params.json'), 'w') as f:
    json.dump({'lr': lr}, f)
writer = SummaryWriter(os.path.join(out, 'tb'))
with open(os.path.join(out, 'metrics.jsonl'), 'w') as f:
    for step in range(6):
        loss = 1.0 / (1.0 + lr * (step + 1))
        f.write(json.dumps({'step': step, 'loss': loss}) + '\\n')
        writer.add_scalar('train/loss', loss, step)
writer.close()
print('trained with lr', lr)
";

/// What a run page (open in `browser`) shows once its params and a chart
/// are in (and its children, when `children` says there are some): the
/// facts line, the params, each metric panel's metric and the series it
/// drew, the runs its job wrote. Bounded: `{"timeout": …}` after 30 s.
fn run_page_shows(browser: &Browser, base: &str, id: &str, children: bool) -> Value {
    browser.goto("about:blank");
    browser.goto(&format!("{base}#/runs/{id}"));
    let shown = lab_test_support::browser::wait_for_within(
        browser,
        30,
        &format!(
            "document.getElementById('run-facts') && document.querySelector('#params tr')
             && document.querySelector('#metrics path.series[data-label]')
             && ({children} ? !!document.querySelector('#run-children a') : true)"
        ),
        "{title: document.getElementById('run-title').textContent,
          facts: document.getElementById('run-facts').textContent,
          params: Object.fromEntries([...document.querySelectorAll('#params tr')].map((r) => [r.querySelector('th').textContent, r.querySelector('td').textContent])),
          panels: [...document.querySelectorAll('#metrics .metric-panel')].map((p) => ({
            metric: p.querySelector('select.panel-metric').value,
            labels: [...p.querySelectorAll('path.series[data-label]')].map((s) => s.dataset.label),
            drawn: ((p.querySelector('.chart') || {}).chart || {series: []}).series})),
          children: [...document.querySelectorAll('#run-children a')].map((a) => ({href: a.getAttribute('href'), text: a.textContent})),
          childrenLine: (document.getElementById('run-children') || {}).textContent || null,
          parent: (document.querySelector('#run-parent a') || {}).textContent || null}",
    );
    assert!(shown.get("timeout").is_none(), "run page {id}: {shown}");
    shown
}

/// Issue 25's headline: the research loop end to end, in a real browser.
/// `lab run -- python3 train.py --lr 0.1` from a project with a venv's
/// python first in `PATH` (allowed by its canonical path, run by the path
/// found, so tensorboardX imports; refused with the line to add when the
/// allowlist lacks it); then `lab serve --enable-runner` on the same data
/// dir: the Jobs page lists that job, its run's Run again is prefilled
/// from the record (the venv's python as it ran), edited to `--lr 0.3`
/// and started; both runs show `finished`, their lr, a `loss` chart and
/// the TensorBoard run their job wrote (with `train/loss`) as a child;
/// compared, the params table shows 0.1 against 0.3 and the loss chart
/// draws both; the Jobs page lists both jobs.
#[test]
fn the_research_loop_runs_reruns_and_compares_two_jobs() {
    use std::time::{Duration, Instant};

    let python = std::path::absolute(common::python()).unwrap();
    let venv_bin = python.parent().unwrap().to_owned();
    let found = venv_bin.join("python3");
    let interpreter = std::fs::canonicalize(&python).unwrap();
    assert_ne!(found, interpreter, "the venv's python3 is a link");
    let tmp = common::outside_tmp();
    let base_dir = tmp.path().canonicalize().unwrap();
    let project = base_dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("train.py"), RESEARCH_TRAIN).unwrap();
    let toml = |programs: &[&str]| {
        format!(
            "[runner]\nprograms = {programs:?}\nread_paths = [{:?}]\n",
            project.to_str().unwrap()
        )
    };
    let config = base_dir.join("lab.toml");
    std::fs::write(&config, toml(&[interpreter.to_str().unwrap()])).unwrap();
    let data = base_dir.join("data");
    let caller_path = format!("{}:/usr/bin:/bin", venv_bin.to_str().unwrap());
    let lab_run = |config: &std::path::Path, data: &std::path::Path, lr: &str| {
        Command::new(LAB)
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(config)
            .args(["run", "--", "python3", "train.py", "--lr", lr])
            .current_dir(&project)
            .env("PATH", &caller_path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // 1–2. `lab run` from the project: finished, exit 0.
    let out = lab_run(&config, &data, "0.1");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("trained with lr 0.1") || stderr.contains("trained with lr 0.1"),
        "the job's output streamed: {stdout} {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    let first_job = last
        .strip_prefix("lab: ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_owned();
    assert!(
        last.contains(&format!("{first_job} finished (exit 0) in ")),
        "{stderr}"
    );
    // With an allowlist that lacks it: refused (2), with the line to add.
    let refusing = base_dir.join("refusing.toml");
    std::fs::write(&refusing, toml(&["/usr/bin/true"])).unwrap();
    let out = lab_run(&refusing, &base_dir.join("data-refused"), "0.1");
    let refused = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{refused}");
    let line = format!(
        "programs = [\"/usr/bin/true\", {:?}]",
        found.to_str().unwrap()
    );
    assert!(
        refused.lines().any(|l| l.trim_end().ends_with(&line)),
        "{line:?} in {refused}"
    );

    // 3. The Lab on the same data dir and config.
    let mut command = Command::new(LAB);
    command
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--bind", "127.0.0.1:0", "--enable-runner"])
        .stderr(Stdio::null());
    let server = common::serve(command);
    let base = server.base.clone();
    let first_record = api_get(&server, &format!("/api/jobs/{first_job}"));
    assert_eq!(first_record["state"], "finished", "{first_record}");
    assert_eq!(
        first_record["exec_path"],
        found.to_str().unwrap(),
        "run by the path found: {first_record}"
    );
    let first_run = first_record["run_id"].as_str().unwrap().to_owned();

    let browser = csp_browser();
    browser.goto(&server.link);
    wait_for(
        &browser,
        "document.querySelector('meta[name=lab-token]')",
        "true",
    );
    let jobs_rows = "[...document.querySelectorAll('#jobs tbody tr')].map((r) => ({id: r.cells[0].textContent, command: r.cells[1].textContent, state: r.cells[2].textContent}))";
    browser.goto(&format!("{base}#/jobs"));
    let listed = wait_for(
        &browser,
        "document.querySelector('#jobs tbody tr')",
        jobs_rows,
    );
    let listed_rows = listed
        .as_array()
        .unwrap_or_else(|| panic!("the Jobs page lists the job: {listed}"));
    assert_eq!(listed_rows.len(), 1, "{listed}");
    assert_eq!(listed_rows[0]["id"], first_job.as_str(), "{listed}");
    assert_eq!(listed_rows[0]["state"], "finished", "{listed}");
    assert!(
        listed_rows[0]["command"]
            .as_str()
            .unwrap()
            .ends_with("python3 train.py --lr 0.1"),
        "{listed}"
    );
    // Open it: its job page, then its run, whose Run again fills the form.
    let opened = browser.run_async_with(
        "const [id, done] = arguments;
         document.querySelector(`#jobs a[href=\"#/jobs/${id}\"]`).click();
         const start = Date.now();
         (function poll() {
           const state = document.getElementById('job-state');
           const open = [...document.querySelectorAll('.job-view a')].find((a) => a.textContent === 'open run');
           if (state && state.textContent === 'finished' && open) {
             const facts = {hash: location.hash, head: document.querySelector('.job-view .run-head p').textContent,
                            runAgainOnJobPage: !!document.getElementById('run-again'), openRun: open.getAttribute('href')};
             open.click();
             return done(facts);
           }
           if (Date.now() - start > 15000) return done({stuck: document.getElementById('view').innerText.slice(0, 400)});
           setTimeout(poll, 100);
         })();",
        &[json!(first_job)],
    );
    assert!(opened.get("stuck").is_none(), "{opened}");
    assert_eq!(opened["hash"], format!("#/jobs/{first_job}"), "{opened}");
    assert_eq!(opened["openRun"], format!("#/runs/{first_run}"), "{opened}");
    let again = wait_for(
        &browser,
        "document.getElementById('run-again') || (document.getElementById('again-note') && document.getElementById('again-note').textContent)",
        "(() => { const link = document.getElementById('run-again'); if (link) link.click(); return true; })()",
    );
    assert_eq!(again, json!(true), "the run page offers Run again: {again}");
    let filled = wait_for(
        &browser,
        "document.getElementById('again-note') && document.getElementById('again-note').textContent",
        "{hash: location.hash, heading: document.querySelector('#new-run h2').textContent,
          program: document.getElementById('job-program').value,
          option: document.getElementById('job-program').selectedOptions[0].textContent,
          args: document.getElementById('job-args').value, cwd: document.getElementById('job-cwd').value}",
    );
    assert!(filled.get("timeout").is_none(), "{filled}");
    assert_eq!(
        filled["hash"],
        format!("#/jobs?again={first_job}"),
        "{filled}"
    );
    assert_eq!(filled["heading"], "Run again", "{filled}");
    assert_eq!(filled["program"], found.to_str().unwrap(), "{filled}");
    assert!(
        filled["option"].as_str().unwrap().contains("as it ran"),
        "{filled}"
    );
    assert_eq!(filled["args"], "train.py --lr 0.1", "{filled}");
    assert_eq!(filled["cwd"], project.to_str().unwrap(), "{filled}");
    // The arguments line edited as a user would, and started.
    browser.clear("#job-args");
    browser.type_into("#job-args", "train.py --lr 0.3");
    let chips = wait_for(
        &browser,
        "document.querySelectorAll('#job-argv li code').length === 3 && document.getElementById('job-args').value === 'train.py --lr 0.3'",
        "[...document.querySelectorAll('#job-argv li code')].map((c) => c.textContent)",
    );
    assert_eq!(chips, json!(["train.py", "--lr", "0.3"]), "{chips}");
    browser.run_async(
        "document.getElementById('job-submit').click(); arguments[arguments.length - 1](true);",
    );
    let rerun = lab_test_support::browser::wait_for_within(
        &browser,
        60,
        "location.hash.startsWith('#/jobs/') && document.getElementById('job-state') && ['finished', 'failed', 'killed', 'timeout', 'oom', 'refused', 'cancelled'].includes(document.getElementById('job-state').textContent)",
        "{hash: location.hash, state: document.getElementById('job-state').textContent, log: document.getElementById('job-log').textContent}",
    );
    assert!(rerun.get("timeout").is_none(), "{rerun}");
    assert_eq!(rerun["state"], "finished", "{rerun}");
    let second_job = rerun["hash"]
        .as_str()
        .unwrap()
        .trim_start_matches("#/jobs/")
        .to_owned();
    assert_ne!(second_job, first_job, "{rerun}");
    assert!(
        rerun["log"]
            .as_str()
            .unwrap()
            .contains("trained with lr 0.3"),
        "{rerun}"
    );
    let second_record = api_get(&server, &format!("/api/jobs/{second_job}"));
    assert_eq!(second_record["state"], "finished", "{second_record}");
    assert_eq!(
        second_record["exec_path"],
        found.to_str().unwrap(),
        "{second_record}"
    );
    assert_eq!(
        second_record["args"],
        json!(["train.py", "--lr", "0.3"]),
        "{second_record}"
    );
    let second_run = second_record["run_id"].as_str().unwrap().to_owned();

    // 4. Both runs: finished, their lr, a loss chart, and the TensorBoard
    // run their job wrote as a child with `train/loss`.
    let mut child_ids = Vec::new();
    for (run_id, lr) in [(&first_run, "0.1"), (&second_run, "0.3")] {
        let started = Instant::now();
        let run = loop {
            let run = api_get(&server, &format!("/api/runs/{run_id}"));
            if run["status"] == "finished"
                && run["children"].as_array().is_some_and(|c| !c.is_empty())
            {
                break run;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "{run}");
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(run["format"], "lab", "{run}");
        assert_eq!(run["params"]["lr"], lr.parse::<f64>().unwrap(), "{run}");
        let loss = run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "loss")
            .unwrap_or_else(|| panic!("{run}"));
        assert_eq!(loss["count"], 6, "{run}");
        let children = run["children"].as_array().unwrap();
        assert_eq!(children.len(), 1, "the one TensorBoard run: {run}");
        let child_id = children[0]["id"].as_str().unwrap().to_owned();
        child_ids.push(child_id.clone());
        assert_eq!(children[0]["format"], "tensorboard", "{run}");
        let child = api_get(&server, &format!("/api/runs/{child_id}"));
        assert_eq!(child["parent"], run_id.as_str(), "{child}");
        let scalars = child["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "train/loss")
            .unwrap_or_else(|| panic!("{child}"));
        assert_eq!(scalars["count"], 6, "{child}");

        let shown = run_page_shows(&browser, &base, run_id, true);
        let facts = shown["facts"].as_str().unwrap();
        assert!(facts.contains(" · finished"), "{shown}");
        assert_eq!(shown["params"], json!({ "lr": lr }), "{shown}");
        let panel = shown["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metric"] == "loss")
            .unwrap_or_else(|| panic!("a loss chart: {shown}"));
        assert_eq!(panel["drawn"].as_array().unwrap().len(), 1, "{shown}");
        assert_eq!(panel["drawn"][0]["points"], 6, "{shown}");
        assert!(
            shown["childrenLine"]
                .as_str()
                .unwrap()
                .starts_with("Runs its job wrote (1): "),
            "{shown}"
        );
        assert_eq!(
            shown["children"],
            json!([{"href": format!("#/runs/{child_id}"), "text": child["name"]}]),
            "{shown}"
        );
        // The child's page: written by this job's run, with its scalars.
        let child_shown = {
            browser.goto("about:blank");
            browser.goto(&format!("{base}#/runs/{child_id}"));
            lab_test_support::browser::wait_for_within(
                &browser,
                30,
                "document.querySelector('#run-parent a') && document.querySelector('#metrics path.series[data-label]')",
                "{parent: document.querySelector('#run-parent a').getAttribute('href'),
                  panels: [...document.querySelectorAll('#metrics .metric-panel')].map((p) => ({
                    metric: p.querySelector('select.panel-metric').value,
                    drawn: ((p.querySelector('.chart') || {}).chart || {series: []}).series}))}",
            )
        };
        assert!(child_shown.get("timeout").is_none(), "{child_shown}");
        assert_eq!(
            child_shown["parent"],
            format!("#/runs/{run_id}"),
            "{child_shown}"
        );
        assert!(
            child_shown["panels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| { p["metric"] == "train/loss" && p["drawn"][0]["points"] == 6 }),
            "{child_shown}"
        );
    }

    // 5. Compare the two job runs: lr 0.1 against 0.3, two loss curves.
    browser.goto("about:blank");
    browser.resize(1280, 1300);
    browser.goto(&format!("{base}#/compare/{first_run},{second_run}"));
    let compared = lab_test_support::browser::wait_for_within(
        &browser,
        30,
        "document.querySelector('#params-diff tbody tr')
         && [...document.querySelectorAll('#compare-metrics .metric-panel')].some((p) => p.querySelector('select.panel-metric').value === 'loss'
              && new Set([...p.querySelectorAll('path.series[data-label]')].map((s) => s.dataset.label)).size === 2)",
        "{heading: document.querySelector('.compare-view h1').textContent,
          legend: [...document.querySelectorAll('.compare-legend a')].map((a) => ({href: a.getAttribute('href'), text: a.textContent})),
          columns: [...document.querySelectorAll('#params-diff thead th')].map((th) => ({title: th.getAttribute('title'), text: th.textContent})),
          rows: [...document.querySelectorAll('#params-diff tbody tr')].map((r) => ({key: r.dataset.key, differs: r.classList.contains('differs'), cells: [...r.querySelectorAll('td')].map((td) => td.textContent)})),
          count: document.getElementById('params-diff-count').textContent,
          loss: [...document.querySelectorAll('#compare-metrics .metric-panel')].filter((p) => p.querySelector('select.panel-metric').value === 'loss').map((p) => ({
            labels: [...p.querySelectorAll('path.series[data-label]')].map((s) => s.dataset.label),
            strokes: [...new Set([...p.querySelectorAll('path.series[data-label]')].map((s) => s.getAttribute('stroke')))],
            drawn: ((p.querySelector('.chart') || {}).chart || {series: []}).series}))[0]}",
    );
    assert!(compared.get("timeout").is_none(), "{compared}");
    assert_eq!(compared["heading"], "Compare 2 runs", "{compared}");
    assert_eq!(
        compared["legend"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["href"].clone())
            .collect::<Vec<_>>(),
        [
            json!(format!("#/runs/{first_run}")),
            json!(format!("#/runs/{second_run}"))
        ],
        "{compared}"
    );
    let titles: Vec<&str> = compared["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_ne!(titles[0], titles[1], "{compared}");
    assert!(
        titles[0].ends_with("train.py --lr 0.1") && titles[1].ends_with("train.py --lr 0.3"),
        "{compared}"
    );
    let columns: Vec<Value> = compared["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].clone())
        .collect();
    assert_eq!(
        columns,
        [
            Value::Null,
            json!(first_run.as_str()),
            json!(second_run.as_str())
        ],
        "{compared}"
    );
    assert_eq!(
        compared["rows"],
        json!([{"key": "lr", "differs": true, "cells": ["0.1", "0.3"]}]),
        "{compared}"
    );
    assert_eq!(compared["count"], "1 of 1 params differ", "{compared}");
    let loss = &compared["loss"];
    let mut labels: Vec<&str> = loss["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    labels.dedup();
    assert_eq!(labels, titles, "one loss curve per run: {compared}");
    assert_eq!(
        loss["strokes"].as_array().unwrap().len(),
        2,
        "in two colours: {compared}"
    );
    let drawn: Vec<(Value, Value)> = loss["drawn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["label"].clone(), s["points"].clone()))
        .collect();
    assert_eq!(
        drawn,
        [(json!(titles[0]), json!(6)), (json!(titles[1]), json!(6))],
        "{compared}"
    );
    save_screenshot(&browser, "research-loop.png");
    browser.resize(1280, 900);

    // 6. Both jobs on the Jobs page, finished.
    browser.goto("about:blank");
    browser.goto(&format!("{base}#/jobs"));
    let both = wait_for(
        &browser,
        "document.querySelectorAll('#jobs tbody tr').length >= 2",
        jobs_rows,
    );
    let mut rows: Vec<(String, String)> = both
        .as_array()
        .unwrap_or_else(|| panic!("{both}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    let mut expected = vec![
        (first_job.clone(), "finished".to_owned()),
        (second_job.clone(), "finished".to_owned()),
    ];
    expected.sort();
    assert_eq!(rows, expected, "{both}");
    // No CSP violation and no console error (a run that is not a job's
    // asks for no job).
    let csp = browser.run_async("arguments[arguments.length - 1](window.__csp)");
    assert_eq!(csp, json!([]), "CSP violations");
    let errors: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The runs table's geometry on the measured page, as JSON: the scroller's
/// box and scroll extents, each header cell's left edge, and for every
/// rendered row (not a placeholder) its cells' left edges, and where the
/// name column's header and cells sit.
const TABLE_GEOMETRY: &str = "
    const s = document.getElementById('runs-table');
    const box = s.getBoundingClientRect();
    const heads = [...s.querySelectorAll('.thead [role=columnheader]')];
    const rows = [...s.querySelectorAll('.tbody [role=row]:not(.loading)')];
    const left = (e) => e.getBoundingClientRect().left;
    const nameAt = heads.findIndex((h) => h.matches('[data-key=\"name\"]') || h.querySelector('[data-key=\"name\"]'));
    const cellsOf = (r) => [...r.children];
    return {
      box: {left: box.left, right: box.right},
      role: s.getAttribute('role'), rowcount: s.getAttribute('aria-rowcount'),
      scrollWidth: s.scrollWidth, clientWidth: s.clientWidth, scrollLeft: s.scrollLeft,
      heads: heads.map(left),
      nameAt,
      nameHead: nameAt < 0 ? null : heads[nameAt].getBoundingClientRect().toJSON(),
      rows: rows.map((r) => ({
        index: r.getAttribute('aria-rowindex'),
        cells: cellsOf(r).map(left),
        roles: [...new Set(cellsOf(r).map((c) => c.getAttribute('role')))],
        name: nameAt < 0 ? null : cellsOf(r)[nameAt]?.getBoundingClientRect().toJSON(),
      })),
    };";

/// Every rendered row has as many cells as the header has columns, each
/// cell's left edge within a pixel of its header's.
fn assert_cells_under_headers(geometry: &Value, what: &str) {
    let heads = geometry["heads"].as_array().unwrap();
    let rows = geometry["rows"].as_array().unwrap();
    assert!(heads.len() > 5, "{what}: the header's columns: {geometry}");
    assert!(rows.len() > 3, "{what}: rows rendered: {geometry}");
    for row in rows {
        let cells = row["cells"].as_array().unwrap();
        assert_eq!(
            cells.len(),
            heads.len(),
            "{what}: row {} has as many cells as the header has columns",
            row["index"]
        );
        for (column, (cell, head)) in cells.iter().zip(heads).enumerate() {
            let (cell, head) = (cell.as_f64().unwrap(), head.as_f64().unwrap());
            assert!(
                (cell - head).abs() <= 1.0,
                "{what}: row {} column {column}: cell at {cell}, header at {head}",
                row["index"]
            );
        }
    }
    assert_eq!(geometry["role"], "grid", "{what}: an ARIA grid");
    assert!(geometry["rowcount"].is_string(), "{what}: aria-rowcount");
    for row in rows {
        assert!(
            row["index"].is_string(),
            "{what}: aria-rowindex on every row"
        );
        assert_eq!(
            row["roles"],
            json!(["gridcell"]),
            "{what}: row {}'s cells",
            row["index"]
        );
    }
}

/// The name column is inside the scroller's box, in the header and in
/// every rendered row.
fn assert_name_in_view(geometry: &Value, what: &str) {
    let (left, right) = (
        geometry["box"]["left"].as_f64().unwrap(),
        geometry["box"]["right"].as_f64().unwrap(),
    );
    let inside = |rect: &Value| {
        rect["left"].as_f64().unwrap() >= left - 1.0
            && rect["right"].as_f64().unwrap() <= right + 1.0
    };
    assert!(
        inside(&geometry["nameHead"]),
        "{what}: the name header: {geometry}"
    );
    for row in geometry["rows"].as_array().unwrap() {
        assert!(
            inside(&row["name"]),
            "{what}: row {}'s name: {geometry}",
            row["index"]
        );
    }
}

/// Issue 28's table: on runs of every format, with long titles and many
/// tags, at 1280×800 and 800×600, header and rows share one column
/// template (every cell's left edge under its header's, measured), the
/// table scrolls sideways with the name column kept in view, and no
/// console error. Screenshots of the default table and of one with more
/// param and metric columns.
#[test]
fn the_runs_table_lines_every_cell_up_under_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    for kind in ["tensorboard", "mlflow", "mlflow-db", "hydra", "wandb"] {
        common::write(kind, &root);
    }
    common::write_lightning(&root);
    // The Lab's own format, with titles and tag lists far wider than
    // their columns.
    for i in 0..12 {
        let dir = root.join(format!("long-{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        let tags: Vec<String> = (0..14)
            .map(|t| format!("\"tag-{i}-{t}-{}\"", "x".repeat(t)))
            .collect();
        std::fs::write(
            dir.join("run.toml"),
            format!(
                "title = \"{i}: a title long enough to cross every column of the table {}\"\n\
                 created = \"2026-03-{:02}T10:00:00Z\"\nstatus = \"finished\"\ntags = [{}]\n",
                "and then some more words ".repeat(i + 1),
                i + 1,
                tags.join(", ")
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("params.json"),
            format!("{{\"lr\": 0.{i}1, \"optimizer\": \"adam with a very long name {i}\", \"seed\": {i}}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            format!("{{\"step\": 0, \"loss\": {i}.5}}\n{{\"step\": 1, \"loss\": {i}.25}}\n"),
        )
        .unwrap();
    }
    let server = serve_roots(&base.join("data"), &[&root]);
    let listed = api_get(&server, "/api/runs?limit=500");
    let formats: std::collections::BTreeSet<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["format"].as_str().unwrap())
        .collect();
    assert!(formats.len() >= 5, "runs of several formats: {formats:?}");
    let available = api_get(&server, "/api/columns");
    let names = |group: &str, field: &str| -> Vec<String> {
        available[group]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[field].as_str().unwrap().to_owned())
            .filter(|c| !c.contains(','))
            .collect()
    };
    let mut many: Vec<String> = names("params", "key")
        .into_iter()
        .take(5)
        .map(|k| format!("params.{k}"))
        .collect();
    many.extend(
        names("metrics", "name")
            .into_iter()
            .take(4)
            .map(|m| format!("metrics.{m}")),
    );
    assert!(
        many.iter().any(|c| c.starts_with("params."))
            && many.iter().any(|c| c.starts_with("metrics.")),
        "{available}"
    );

    let browser = csp_browser();
    browser.resize(1280, 800);
    browser.goto(&server.link);
    wait_for(&browser, "document.getElementById('view-table')", "true");
    // The table, whichever list view opens first.
    let opened = wait_for(
        &browser,
        "(document.getElementById('view-table').getAttribute('aria-pressed') === 'true' || document.getElementById('view-table').click())
         && document.querySelectorAll('#runs-table .tbody [role=row]:not(.loading)').length > 10",
        "true",
    );
    assert_eq!(opened, json!(true), "{opened}");
    let geometry = |browser: &Browser| {
        browser.run_async(&format!(
            "const done = arguments[arguments.length - 1];
             requestAnimationFrame(() => requestAnimationFrame(() => done((() => {{ {TABLE_GEOMETRY} }})())));"
        ))
    };
    let default = geometry(&browser);
    assert_cells_under_headers(&default, "1280×800, default columns");
    save_screenshot(&browser, "runs-table-default.png");

    // More param and metric columns, chosen in the picker (each change
    // redraws the table).
    let chosen = browser.run_async_with(
        "const [want, done] = arguments;
         const start = Date.now();
         (function poll() {
           if (Date.now() - start > 20000) return done({timeout: document.querySelector('#runs-table .thead').textContent});
           for (const box of document.querySelectorAll('#columns input[type=checkbox]')) {
             if (box.checked !== want.includes(box.value)) { box.click(); return setTimeout(poll, 300); }
           }
           const heads = [...document.querySelectorAll('#runs-table .thead [data-key]')].map((h) => h.dataset.key);
           if (!want.every((k) => heads.includes(k)) || document.querySelectorAll('#runs-table .tbody [role=row]:not(.loading)').length < 10) return setTimeout(poll, 100);
           done(heads);
         })();",
        &[json!(many)],
    );
    assert!(chosen.get("timeout").is_none(), "{chosen}");
    for (width, height) in [(1280, 800), (800, 600)] {
        browser.resize(width, height);
        let what = format!("{width}×{height}, {} columns chosen", many.len());
        let before = geometry(&browser);
        assert_cells_under_headers(&before, &what);
        assert_name_in_view(&before, &what);
        assert!(
            before["scrollWidth"].as_f64().unwrap()
                > before["clientWidth"].as_f64().unwrap() + 50.0,
            "{what}: the table is wider than its box and scrolls: {before}"
        );
        browser.run_async(
            "const s = document.getElementById('runs-table'); s.scrollLeft = s.scrollWidth; arguments[arguments.length - 1](true)",
        );
        let after = geometry(&browser);
        assert!(
            after["scrollLeft"].as_f64().unwrap() > 50.0,
            "{what}: scrolled right: {after}"
        );
        assert_cells_under_headers(&after, &format!("{what}, scrolled right"));
        assert_name_in_view(&after, &format!("{what}, scrolled right"));
        save_screenshot(
            &browser,
            if width == 1280 {
                "runs-table-columns.png"
            } else {
                "runs-table-800-scrolled.png"
            },
        );
        browser.run_async(
            "document.getElementById('runs-table').scrollLeft = 0; arguments[arguments.length - 1](true)",
        );
    }
    // A column sized by dragging its header's handle (a real pointer):
    // header and rows move together, and the width is remembered.
    let format_width = "(() => { const h = document.querySelector('#runs-table .thead [data-key=\"format\"]').closest('[role=columnheader]'); return h.getBoundingClientRect().width; })()";
    let handle = browser.run_async(&format!(
        "const g = document.querySelector('#runs-table .thead [data-key=\"format\"]').closest('[role=columnheader]').querySelector('.col-resize').getBoundingClientRect();
         arguments[arguments.length - 1]({{x: Math.round(g.left + g.width / 2), y: Math.round(g.top + g.height / 2), width: {format_width}}})"
    ));
    let (x, y) = (handle["x"].as_i64().unwrap(), handle["y"].as_i64().unwrap());
    browser.call(
        "POST",
        "/actions",
        Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "x": x, "y": y, "duration": 0},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "x": x + 30, "y": y, "duration": 50},
            {"type": "pointerMove", "x": x + 60, "y": y, "duration": 50},
            {"type": "pointerUp", "button": 0},
        ]}]})),
    );
    browser.call("DELETE", "/actions", None);
    let widened = browser.run_async(&format!(
        "arguments[arguments.length - 1]({{width: {format_width}, saved: JSON.parse(localStorage.getItem('lab-pref-column-widths') || 'null')}})"
    ));
    let before = handle["width"].as_f64().unwrap();
    assert!(
        (widened["width"].as_f64().unwrap() - before - 60.0).abs() <= 2.0,
        "the drag widened the column by 60 px: {handle} {widened}"
    );
    assert_eq!(
        widened["saved"]["format"].as_f64(),
        widened["width"].as_f64(),
        "{widened}"
    );
    assert_cells_under_headers(&geometry(&browser), "800×600, a column widened");
    browser.goto("about:blank");
    browser.goto(&server.base);
    let kept = wait_for(
        &browser,
        "document.querySelectorAll('#runs-table .tbody [role=row]:not(.loading)').length > 3",
        format_width,
    );
    assert_eq!(kept, widened["width"], "the width is remembered");
    assert_cells_under_headers(&geometry(&browser), "800×600, after a reload");
    assert_clean_page(&browser, None);
}

/// The resources the page asked for that answered 4xx or 5xx (fetches
/// included), by the Resource Timing API: none may be left on any view.
fn failed_requests(browser: &Browser) -> Value {
    browser.run_async(
        "arguments[arguments.length - 1](performance.getEntriesByType('resource')
           .filter(e => e.responseStatus >= 400).map(e => e.responseStatus + ' ' + e.name))",
    )
}

/// Every view in turn (the runs table and cards, a run page following its
/// logs, compare, jobs, the Import dialog, the keys' help) at 800×600:
/// no console error, no CSP violation, no failed request. Metric-only runs
/// open as the table, and the user's choice of cards is remembered; the
/// format filter offers the server's formats (W&B among them); the header
/// keeps one line; a toast and a dialog go with the view that opened them.
#[test]
fn every_view_is_clean_and_owns_its_toasts_and_dialogs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("wandb", &root);
    for name in ["logging-a", "logging-b"] {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("run.toml"),
            format!("name = \"{name}\"\n[params]\nlr = 0.1\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            "{\"step\": 0, \"loss\": 1.0}\n{\"step\": 1, \"loss\": 0.5}\n",
        )
        .unwrap();
        std::fs::write(dir.join("stdout.log"), "line 1\nline 2\n").unwrap();
    }
    let server = serve_roots(&base.join("data"), &[&root]);
    let a = run_id(&server, "format=lab", "/logging-a");
    let b = run_id(&server, "format=lab", "/logging-b");
    let browser = csp_browser();
    browser.resize(800, 600);
    browser.goto(&server.link);
    let clean = |what: &str| {
        assert_clean_page(&browser, None);
        assert_eq!(failed_requests(&browser), json!([]), "{what}");
    };

    // 1. No run has media: the list opens as the table.
    let opened = wait_for(
        &browser,
        "document.querySelector('.segmented .on') && document.querySelector('#format option:nth-child(2)')",
        "document.querySelector('.segmented .on').id",
    );
    assert_eq!(opened, json!("view-table"));
    // The format filter is the server's list.
    let status = api_get(&server, "/api/status");
    let labels: Vec<Value> = status["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].clone())
        .collect();
    assert!(labels.contains(&json!("W&B")), "{status}");
    let offered = browser.run_async(
        "arguments[arguments.length - 1]([...document.querySelectorAll('#format option')].slice(1).map(o => o.textContent))",
    );
    assert_eq!(offered, Value::Array(labels));
    // The header keeps one line at 800 px: every item on the same middle
    // line, nothing past the right edge, "Sign out" one line of text.
    let header = browser.run_async(
        "const h = document.querySelector('.topbar');
         const mids = [...h.children].filter(c => c.getClientRects().length).map(c => { const r = c.getBoundingClientRect(); return (r.top + r.bottom) / 2; });
         const words = document.createRange();
         words.selectNodeContents(document.getElementById('signout'));
         arguments[arguments.length - 1]({
           spread: Math.round(Math.max(...mids) - Math.min(...mids)),
           height: Math.round(h.getBoundingClientRect().height),
           overflow: h.scrollWidth - h.clientWidth,
           signout_lines: words.getClientRects().length,
           signout_right: Math.round(document.getElementById('signout').getBoundingClientRect().right),
         });",
    );
    assert!(header["spread"].as_i64().unwrap() <= 2, "{header}");
    assert!(header["height"].as_i64().unwrap() <= 56, "{header}");
    assert_eq!(header["overflow"], json!(0), "{header}");
    assert_eq!(header["signout_lines"], json!(1), "{header}");
    assert!(header["signout_right"].as_i64().unwrap() <= 800, "{header}");
    save_screenshot(&browser, "header-800.png");
    clean("the runs table");
    // Cards, chosen, are remembered over a reload.
    browser.run_async(
        "document.getElementById('view-cards').click(); arguments[arguments.length - 1](true)",
    );
    wait_for(&browser, "document.querySelector('#runs .card')", "true");
    browser.goto("about:blank");
    browser.goto(&server.base);
    let chosen = wait_for(
        &browser,
        "document.querySelector('.segmented .on')",
        "document.querySelector('.segmented .on').id",
    );
    assert_eq!(chosen, json!("view-cards"));
    wait_for(&browser, "document.querySelector('#runs .card')", "true");
    clean("the runs cards");

    // 2. A run page following its log (a fresh file: the page follows it,
    // asking from the size last seen), then a toast shown on it: leaving
    // the page puts the toast away.
    browser.goto(&format!("{}#/runs/{a}", server.base));
    wait_for(
        &browser,
        "document.querySelector('[data-log=\"stdout.log\"]') && document.querySelector('[data-log=\"stdout.log\"]').textContent.includes('line 2')",
        "true",
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    clean("a run page with a log");
    let toast = browser.run_async(
        "const done = arguments[arguments.length - 1];
         import(document.querySelector('script[type=module]').src.replace('app.js', 'dom.js')).then((dom) => {
           dom.showError(new Error('a failure on this page'));
           const shown = !document.getElementById('error').hidden;
           location.hash = '#/compare/';
           setTimeout(() => done({shown, after: !document.getElementById('error').hidden}), 300);
         });",
    );
    assert_eq!(toast, json!({"shown": true, "after": false}), "{toast}");

    // 3. The keys' help is made from the keys table; the Import dialog and
    // the help close when the view is left.
    let help = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.dispatchEvent(new KeyboardEvent('keydown', {key: '?'}));
         const d = document.getElementById('keys-help');
         done({open: d.open, keys: [...d.querySelectorAll('kbd')].map(k => k.textContent)});",
    );
    assert_eq!(help["open"], json!(true), "{help}");
    assert_eq!(
        help["keys"],
        json!([
            "Space", "←", "→", "[", "]", ",", ".", "j", "k", "Enter", "?"
        ]),
        "{help}"
    );
    let dialogs = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         document.getElementById('keys-help').close();
         document.getElementById('import-open').click();
         const open = document.getElementById('import-dialog').open;
         location.hash = '#/compare/{a},{b}';
         const start = Date.now();
         (function poll() {{
           if (!document.querySelector('.compare-view') && Date.now() - start < 15000) return setTimeout(poll, 100);
           done({{open, after: document.getElementById('import-dialog').open, compared: document.querySelectorAll('.compare-legend .legend-item').length}});
         }})();"
    ));
    assert_eq!(
        dialogs,
        json!({"open": true, "after": false, "compared": 2}),
        "{dialogs}"
    );
    wait_for(
        &browser,
        "document.querySelector('#compare-metrics .chart')",
        "true",
    );
    clean("compare");

    // 4. Jobs, with the runner disabled.
    browser.run_async("location.hash = '#/jobs'; arguments[arguments.length - 1](true)");
    wait_for(
        &browser,
        "document.getElementById('view').textContent.includes('The runner is disabled')",
        "true",
    );
    clean("jobs");
}

/// The console errors and failed requests of a page that typed a filter
/// that does not parse: only its 400s from `/api/runs?…filter=` may be
/// there (the browser logs each as an error).
fn assert_clean_but_bad_filters(browser: &Browser) {
    let csp = browser.run_async("arguments[arguments.length - 1](window.__csp)");
    assert_eq!(csp, json!([]), "CSP violations");
    let bad_filter =
        |m: &str| m.contains("/api/runs?") && m.contains("filter=") && m.contains(" 400");
    let errors: Vec<Value> = browser
        .console()
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| !e["message"].as_str().is_some_and(bad_filter))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let failed: Vec<Value> = failed_requests(browser)
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !r.as_str().is_some_and(|r| {
                r.starts_with("400 ") && r.contains("/api/runs?") && r.contains("filter=")
            })
        })
        .cloned()
        .collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
}

/// The ids of the runs table's rendered rows (every row, when the table
/// is taller than the list), once it shows `count` runs.
const TABLE_IDS: &str = "[...document.querySelectorAll('#runs-table .tbody .trow[data-id]')].map((r) => r.dataset.id).sort()";

/// Issue 29 in the browser, on runs the real MLflow writer put in two
/// experiments (demo: alpha and beta; sweep: twenty runs) beside a run of
/// no experiment that shares a name with one of them: the search box
/// takes a filter expression (exactly the runs it holds for listed, the
/// filter kept in the address over a reload), a filter that does not
/// parse is said under the box with a caret at its character and the list
/// stays; grouped by experiment the table has a header row per group
/// (counts, collapsible from the keyboard, remembered for the session),
/// one group's box selects it for compare, and compare shows exactly its
/// runs; runs with one name are told apart by their experiment; a run
/// page links to its experiment's list. Screenshots of each.
#[test]
fn the_list_takes_filters_and_groups_runs_by_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("mlflow", &root);
    common::write("sweep", &root);
    // A run of no experiment named as demo's first run.
    let plain = root.join("alpha-plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(
        plain.join("run.toml"),
        "name = \"alpha\"\n[params]\nlr = 0.006\n",
    )
    .unwrap();
    std::fs::write(
        plain.join("metrics.jsonl"),
        "{\"step\": 0, \"loss\": 0.9}\n{\"step\": 1, \"loss\": 0.2}\n",
    )
    .unwrap();
    let server = serve_roots(&base.join("data"), &[&root]);

    // What the filter holds for, worked out here from each run's params
    // and last metrics, and as the server's own filter says.
    let expression = "params.lr > 0.005 and metrics.loss < 0.5";
    let all = api_get(&server, "/api/runs?limit=500&fields=params.lr,metrics.loss");
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 23, "{all}");
    let mut expected: Vec<String> = runs
        .iter()
        .filter(|r| {
            let lr = r["params"]["lr"]
                .as_f64()
                .or_else(|| r["params"]["lr"].as_str().and_then(|s| s.parse().ok()));
            lr.is_some_and(|lr| lr > 0.005)
                && r["metrics"]["loss"].as_f64().is_some_and(|loss| loss < 0.5)
        })
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    // sweep-05…sweep-19, demo's alpha, the plain alpha.
    assert_eq!(expected.len(), 17, "{all}");
    let query = format!(
        "/api/runs?limit=500&filter={}",
        expression
            .replace(' ', "%20")
            .replace('>', "%3E")
            .replace('<', "%3C")
    );
    let filtered = api_get(&server, &query);
    let mut by_server: Vec<String> = filtered["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    by_server.sort();
    assert_eq!(by_server, expected, "{filtered}");
    let experiment_of = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = runs
            .iter()
            .filter(|r| r["experiment"]["name"] == name)
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sweep = experiment_of("sweep");
    let demo = experiment_of("demo");
    assert_eq!((sweep.len(), demo.len()), (20, 2), "{all}");
    let named_alpha = |experiment: Option<&str>| -> String {
        runs.iter()
            .find(|r| r["name"] == "alpha" && r["experiment"]["name"].as_str() == experiment)
            .unwrap_or_else(|| panic!("alpha in {experiment:?}: {all}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (demo_alpha, plain_alpha) = (named_alpha(Some("demo")), named_alpha(None));

    let browser = csp_browser();
    browser.resize(1280, 1000);
    browser.goto(&server.link);
    wait_for(&browser, "document.getElementById('view-table')", "true");
    let opened = wait_for(
        &browser,
        "(document.getElementById('view-table').getAttribute('aria-pressed') === 'true' || document.getElementById('view-table').click())
         && document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === 23",
        "document.getElementById('run-count').textContent",
    );
    assert_eq!(opened, json!("23 runs"), "{opened}");
    // The experiment column: its name, the id on hover.
    let column = browser.run_async(&format!(
        "const row = document.querySelector('#runs-table .trow[data-id=\"{demo_alpha}\"]');
         const at = [...document.querySelectorAll('#runs-table .thead [role=columnheader]')].findIndex((h) => h.querySelector('[data-key=\"experiment\"]'));
         const cell = row.children[at];
         arguments[arguments.length - 1]({{text: cell.textContent, title: cell.getAttribute('title')}});"
    ));
    assert_eq!(column["text"], "demo", "{column}");
    assert!(
        column["title"].as_str().unwrap().contains("mlflow:"),
        "the id on hover: {column}"
    );

    // 1. A filter typed key by key: exactly the runs it holds for.
    browser.type_into("#filter", expression);
    let listed = wait_for(
        &browser,
        "document.getElementById('run-count').textContent === '17 runs' && document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === 17",
        &format!(
            "{{ids: {TABLE_IDS}, hash: location.hash, error: !document.getElementById('filter-error') || document.getElementById('filter-error').hidden}}"
        ),
    );
    assert!(listed.get("timeout").is_none(), "{listed}");
    assert_eq!(listed["ids"], json!(expected), "{listed}");
    assert_eq!(listed["error"], json!(true), "no error said: {listed}");
    let hash = listed["hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("#/?filter="), "{listed}");
    // The address keeps it: a reload lists the same runs, the box says it.
    browser.goto("about:blank");
    browser.goto(&format!("{}{hash}", server.base));
    let reloaded = wait_for(
        &browser,
        "document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === 17",
        &format!("{{ids: {TABLE_IDS}, box: document.getElementById('filter').value}}"),
    );
    assert_eq!(
        reloaded,
        json!({"ids": expected, "box": expression}),
        "{reloaded}"
    );

    // 2. A filter that does not parse (a string left open): said under
    // the box, a caret under its character 12; the list stays as it was.
    // Emptied without an event (no search for "" in between), then typed.
    browser.run_async(
        "document.getElementById('filter').value = ''; arguments[arguments.length - 1](true)",
    );
    browser.type_into("#filter", "params.lr > 'x");
    let said = wait_for(
        &browser,
        "!document.getElementById('filter-error').hidden",
        &format!(
            "{{role: document.getElementById('filter-error').getAttribute('role'),
          text: document.querySelector('#filter-error p').textContent,
          caret: document.querySelector('#filter-error pre').textContent,
          ids: {TABLE_IDS}, hash: location.hash, toast: !document.getElementById('error').hidden}}"
        ),
    );
    assert!(said.get("timeout").is_none(), "{said}");
    assert_eq!(said["role"], "alert", "{said}");
    assert!(
        said["text"].as_str().unwrap().contains("at character 12"),
        "{said}"
    );
    assert_eq!(
        said["caret"],
        json!(format!("params.lr > 'x\n{}^", " ".repeat(12))),
        "{said}"
    );
    assert_eq!(said["ids"], json!(expected), "the list stays: {said}");
    assert_eq!(said["hash"], json!(hash), "{said}");
    assert_eq!(said["toast"], json!(false), "no toast: {said}");
    save_screenshot(&browser, "runs-filter-error.png");
    browser.run_async(
        "document.querySelector('#filter-help summary').click(); arguments[arguments.length - 1](true)",
    );
    save_screenshot(&browser, "runs-filter-syntax.png");
    browser.run_async(
        "document.querySelector('#filter-help summary').click(); arguments[arguments.length - 1](true)",
    );
    assert_clean_but_bad_filters(&browser);

    // 2b. Words with `=` that do not start as an expression does (a tag, a
    // Hydra job's name) are searched for, not refused as a filter.
    let tagged = api_get(&server, "/api/runs?q=team%3Dvision&limit=500");
    let tagged: Vec<String> = tagged["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!tagged.is_empty(), "the demo's alpha has the tag");
    browser.run_async(
        "document.getElementById('filter').value = ''; arguments[arguments.length - 1](true)",
    );
    browser.type_into("#filter", "team=vision");
    let words = wait_for(
        &browser,
        &format!(
            "document.getElementById('filter-error').hidden && location.hash.includes('q=') && document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === {}",
            tagged.len()
        ),
        &format!("{{ids: {TABLE_IDS}, hash: location.hash}}"),
    );
    assert!(words.get("timeout").is_none(), "{words}");
    let mut shown: Vec<String> = words["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    shown.sort();
    let mut tagged = tagged;
    tagged.sort();
    assert_eq!(shown, tagged, "{words}");

    // 3. Grouped by experiment: a header row per group, with its count.
    browser.run_async(
        "const box = document.getElementById('filter');
         box.value = ''; box.dispatchEvent(new Event('input'));
         arguments[arguments.length - 1](true)",
    );
    wait_for(
        &browser,
        "document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === 23 && document.getElementById('filter-error').hidden",
        "true",
    );
    let grouped = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('group-by-experiment').click();
         const start = Date.now();
         (function poll() {
           const groups = [...document.querySelectorAll('#runs-table .tbody .trow.group')];
           if ((groups.length < 3 || document.querySelectorAll('#runs-table .tbody .trow[data-id]').length < 23) && Date.now() - start < 15000) return setTimeout(poll, 100);
           done({
             count: document.getElementById('run-count').textContent,
             rowcount: document.getElementById('runs-table').getAttribute('aria-rowcount'),
             groups: groups.map((g) => ({
               name: g.querySelector('.group-toggle').textContent,
               count: g.querySelector('.group-count').textContent,
               role: g.getAttribute('role'),
               expanded: g.getAttribute('aria-expanded'),
               cells: [...g.children].map((c) => c.getAttribute('role')),
             })),
           });
         })();",
    );
    let group = |name: &str, count: &str| json!({"name": format!("▾{name}"), "count": count, "role": "row", "expanded": "true", "cells": ["gridcell", "gridcell"]});
    assert_eq!(
        grouped,
        json!({
            "count": "23 runs in 3 groups",
            "rowcount": "27",
            "groups": [group("demo", "2 runs"), group("sweep", "20 runs"), group("no experiment", "1 run")],
        }),
        "{grouped}"
    );
    // The runs' rows still line up under the header.
    let geometry = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         requestAnimationFrame(() => done((() => {{ {} }})()));",
        TABLE_GEOMETRY.replace(
            ".tbody [role=row]:not(.loading)",
            ".tbody [role=row][data-id]"
        )
    ));
    assert_cells_under_headers(&geometry, "grouped by experiment");
    // Collapsed and expanded from the keyboard (← and → on the group's
    // button, which keeps the focus); a collapsed group stays so after a
    // reload, for the session.
    let keyed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const toggle = () => document.querySelector('#runs-table .trow.group[data-group^=\"mlflow:\"] .group-toggle');
         toggle().focus();
         toggle().dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowLeft', bubbles: true}));
         setTimeout(() => done({
           expanded: toggle().closest('.trow').getAttribute('aria-expanded'),
           focused: document.activeElement === toggle(),
           rows: document.querySelectorAll('#runs-table .tbody .trow[data-id]').length,
           rowcount: document.getElementById('runs-table').getAttribute('aria-rowcount'),
         }), 200);",
    );
    assert_eq!(
        keyed,
        json!({"expanded": "false", "focused": true, "rows": 21, "rowcount": "25"}),
        "demo collapsed: {keyed}"
    );
    browser.goto("about:blank");
    browser.goto(&server.base);
    let kept = wait_for(
        &browser,
        "document.querySelectorAll('#runs-table .tbody .trow.group').length === 3 && document.querySelectorAll('#runs-table .tbody .trow[data-id]').length === 21",
        "[...document.querySelectorAll('#runs-table .tbody .trow.group')].map((g) => g.getAttribute('aria-expanded'))",
    );
    assert_eq!(kept, json!(["false", "true", "true"]), "{kept}");
    let expanded = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const toggle = () => document.querySelector('#runs-table .trow.group .group-toggle');
         toggle().focus();
         toggle().dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
         setTimeout(() => done({expanded: toggle().getAttribute('aria-expanded'), focused: document.activeElement === toggle()}), 200);",
    );
    assert_eq!(
        expanded,
        json!({"expanded": "true", "focused": true}),
        "{expanded}"
    );

    // 4. The sweep's box selects all twenty for compare; compare shows
    // exactly them.
    let sweep_box = "[...document.querySelectorAll('#runs-table .trow.group')].find((g) => g.querySelector('.group-toggle').textContent.endsWith('sweep')).querySelector('.group-pick')";
    let selected = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {sweep_box}.click();
         const start = Date.now();
         (function poll() {{
           const button = document.getElementById('compare-selected');
           if (button.disabled && Date.now() - start < 15000) return setTimeout(poll, 100);
           done({{button: button.textContent, checked: {sweep_box}.checked,
                 rows: [...document.querySelectorAll('#runs-table .tbody .trow[data-id]')].filter((r) => r.querySelector('.pick input').checked).map((r) => r.dataset.id).sort()}});
         }})();"
    ));
    assert_eq!(
        selected,
        json!({"button": "Compare 20 selected", "checked": true, "rows": sweep}),
        "{selected}"
    );
    save_screenshot(&browser, "runs-grouped.png");
    let compared = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.getElementById('compare-selected').click();
         const start = Date.now();
         (function poll() {
           if (!document.querySelector('#compare-metrics .chart') && Date.now() - start < 20000) return setTimeout(poll, 100);
           done({heading: document.querySelector('.compare-view h1').textContent,
                 ids: [...document.querySelectorAll('.compare-legend a')].map((a) => decodeURIComponent(a.getAttribute('href').slice('#/runs/'.length))).sort()});
         })();",
    );
    assert_eq!(
        compared,
        json!({"heading": "Compare 20 runs", "ids": sweep}),
        "{compared}"
    );
    save_screenshot(&browser, "compare-group.png");

    // The cards in the same groups (each open group's cards asked for),
    // j/k moving over them in order; then the table again.
    browser.goto(&server.base);
    let cards = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const start = Date.now();
         (function poll() {
           const cards = document.getElementById('view-cards');
           if (!cards && Date.now() - start < 15000) return setTimeout(poll, 100);
           if (cards.getAttribute('aria-pressed') !== 'true') { cards.click(); return setTimeout(poll, 100); }
           if (document.querySelectorAll('#runs-groups .card').length < 23 && Date.now() - start < 15000) return setTimeout(poll, 100);
           document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j', bubbles: true}));
           done({
             groups: [...document.querySelectorAll('.card-group')].map((g) => [g.querySelector('.group-toggle').textContent, g.querySelector('.group-count').textContent, g.querySelectorAll('.card').length]),
             focused: [...document.querySelectorAll('#runs-groups .card')].findIndex((c) => c.classList.contains('focused')),
             experiment: document.querySelector('.card-group .card .card-experiment').textContent,
           });
         })();",
    );
    assert_eq!(
        cards,
        json!({
            "groups": [["▾demo", "2 runs", 2], ["▾sweep", "20 runs", 20], ["▾no experiment", "1 run", 1]],
            "focused": 1,
            "experiment": "demo",
        }),
        "{cards}"
    );
    save_screenshot(&browser, "runs-grouped-cards.png");
    browser.run_async(
        "document.getElementById('view-table').click(); arguments[arguments.length - 1](true)",
    );
    wait_for(
        &browser,
        "document.querySelectorAll('#runs-table .tbody .trow.group').length === 3",
        "true",
    );

    // 5. Two runs named alpha: told apart by experiment (or directory).
    browser.goto(&format!(
        "{}#/compare/{demo_alpha},{plain_alpha}",
        server.base
    ));
    let named = wait_for(
        &browser,
        "document.querySelector('#params-diff thead th[title]') && document.querySelectorAll('.compare-legend a').length === 2",
        "{legend: [...document.querySelectorAll('.compare-legend a')].map((a) => a.textContent),
          heads: [...document.querySelectorAll('#params-diff thead th[title]')].map((th) => th.textContent.trim())}",
    );
    assert_eq!(
        named,
        json!({"legend": ["alpha · demo", "alpha · alpha-plain"], "heads": ["alpha · demo", "alpha · alpha-plain"]}),
        "{named}"
    );
    save_screenshot(&browser, "compare-same-names.png");

    // 6. A run page names its experiment, a link to that experiment's
    // runs.
    browser.goto(&format!("{}#/runs/{demo_alpha}", server.base));
    let link = wait_for(
        &browser,
        "document.querySelector('#run-experiment a')",
        "{text: document.querySelector('#run-experiment a').textContent, raw: !!document.getElementById('run-name-raw')}",
    );
    assert_eq!(link, json!({"text": "demo", "raw": false}), "{link}");
    let listed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.querySelector('#run-experiment a').click();
         const start = Date.now();
         (function poll() {
           const chip = document.getElementById('experiment-chip');
           if ((!chip || !chip.textContent.includes('demo') || document.querySelectorAll('#runs-table .tbody .trow[data-id]').length !== 2) && Date.now() - start < 15000) return setTimeout(poll, 100);
           done({chip: chip && chip.textContent, hash: location.hash.startsWith('#/?experiment=mlflow'),
                 ids: [...document.querySelectorAll('#runs-table .tbody .trow[data-id]')].map((r) => r.dataset.id).sort()});
         })();",
    );
    assert_eq!(
        listed,
        json!({"chip": "experiment: demo ✕", "hash": true, "ids": demo}),
        "{listed}"
    );
    assert_clean_but_bad_filters(&browser);
}

/// Markdown a run wrote (its description, a text summary) is rendered from
/// a safe subset into nodes: a table of cases, then 3,000 generated inputs
/// of Markdown and HTML fragments, none of which makes an element or an
/// attribute outside the subset or a link that is not `http(s)`; inputs
/// built to make a naive parser backtrack or nest forever render.
#[test]
fn markdown_renders_a_safe_subset_into_nodes_never_html() {
    let base = tempfile::tempdir().unwrap();
    let base = base.path().canonicalize().unwrap();
    let root = base.join("runs");
    let dir = root.join("noted");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("run.toml"),
        "name = \"noted\"\ndescription = \"\"\"\n# Notes\nTried **lr 0.1**: see [the paper](https://example.org/p) and [this](javascript:alert(1)).\n\n<img src=x onerror=alert(1)>\n\"\"\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("metrics.jsonl"), "{\"step\": 0, \"loss\": 1.0}\n").unwrap();
    let server = serve_roots(&base.join("data"), &[&root]);
    let id = run_id(&server, "format=lab", "/noted");
    let browser = csp_browser();
    sign_in(&browser, &server.link);
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let shown = wait_for(
        &browser,
        "document.querySelector('#run-description .markdown h1')",
        "{html: document.querySelector('#run-description .markdown').innerHTML, imgs: document.querySelectorAll('#run-description img').length}",
    );
    assert_eq!(
        shown["html"],
        "<h1>Notes</h1><p>Tried <strong>lr 0.1</strong>: see <a href=\"https://example.org/p\" rel=\"noopener noreferrer\" target=\"_blank\">the paper</a> and [this](javascript:alert(1)).</p><p>&lt;img src=x onerror=alert(1)&gt;</p>",
        "{shown}"
    );
    assert_eq!(shown["imgs"], 0);
    let cases = json!([
        ["# Title", "<h1>Title</h1>"],
        ["## C# ##", "<h2>C#</h2>"],
        ["#hashtag", "<p>#hashtag</p>"],
        [
            "Some *em* and **strong** and `co*de*`",
            "<p>Some <em>em</em> and <strong>strong</strong> and <code>co*de*</code></p>"
        ],
        [
            "snake_case_name and 2*3*4",
            "<p>snake_case_name and 2<em>3</em>4</p>"
        ],
        [
            "[ok](https://example.org/a) [bad](javascript:alert(1)) [data](data:text/html,x)",
            "<p><a href=\"https://example.org/a\" rel=\"noopener noreferrer\" target=\"_blank\">ok</a> [bad](javascript:alert(1)) [data](data:text/html,x)</p>"
        ],
        [
            "<script>alert(1)</script>",
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
        ],
        ["- a\n- b *c*", "<ul><li>a</li><li>b <em>c</em></li></ul>"],
        ["3. x\n4. y", "<ol start=\"3\"><li>x</li><li>y</li></ol>"],
        [
            "| a | b |\n|---|:-:|\n| 1 | `2|` |\n| 3 |",
            "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>`2</td></tr><tr><td>3</td><td></td></tr></tbody></table>"
        ],
        [
            "```\n<b>x</b>\n```",
            "<pre><code>&lt;b&gt;x&lt;/b&gt;</code></pre>"
        ],
        ["one\ntwo\n\nthree", "<p>one two</p><p>three</p>"],
        ["\\*not em\\*", "<p>*not em*</p>"]
    ]);
    let checked = browser.run_async_with(
        "const [cases, done] = [arguments[0], arguments[arguments.length - 1]];
         import('/assets/markdown.js').then((m) => {
           const wrong = cases.map(([input, want]) => ({ input, want, got: m.renderMarkdown(input).innerHTML }))
             .filter((c) => c.got !== c.want);
           let seed = 2029;
           const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
           const tokens = ['*', '**', '_', '__', '`', '```', '~~~', '#', '# ', '[', ']', '(', ')', '](', 'https://x.org/', 'http://a', 'javascript:alert(1)',
             'data:text/html,<b>', '<script>', '</script>', '<img src=x onerror=alert(1)>', '<a href=\"javascript:x\">', '|', '---', '|-|', '- ', '1. ',
             '\\n', '\\n\\n', ' ', '  ', 'a', 'b', '\"', \"'\", '&amp;', '>', '<', '\\\\', 'onclick=', 'style=', '\\u0000', '\\u202e'];
           const bad = [];
           for (let n = 0; n < 3000 && bad.length < 5; n += 1) {
             let input = '';
             const len = Math.floor(rand() * 40);
             for (let k = 0; k < len; k += 1) input += tokens[Math.floor(rand() * tokens.length)];
             const out = m.renderMarkdown(input);
             for (const e of [out, ...out.querySelectorAll('*')]) {
               const tag = e.tagName.toLowerCase();
               if (!m.ALLOWED.tags.includes(tag) || e.namespaceURI !== 'http://www.w3.org/1999/xhtml') bad.push({ input, tag });
               for (const a of e.attributes) {
                 const ok = (e === out && a.name === 'class' && a.value === 'markdown') || (m.ALLOWED.attributes[tag] || []).includes(a.name);
                 if (!ok) bad.push({ input, tag, attr: a.name });
               }
               if (tag === 'a' && (!/^https?:\\/\\/[^\\s]+$/i.test(e.getAttribute('href') || '') || e.getAttribute('rel') !== 'noopener noreferrer')) {
                 bad.push({ input, href: e.getAttribute('href'), rel: e.getAttribute('rel') });
               }
             }
           }
           const hostile = ['*'.repeat(70000), '['.repeat(30000) + '](', '`'.repeat(65536), '# ' + ' '.repeat(65000) + 'x',
             '**a'.repeat(20000), '_'.repeat(70000), '[a](' + 'b'.repeat(60000), '|'.repeat(5000) + '\\n|---|', '- '.repeat(30000),
             // A rule row's spaces, built to make a regular expression
             // backtrack (an attack found it: 10 s a line); three would
             // run past WebDriver's 30 s script timeout.
             'a|b\\n' + ' '.repeat(65000) + 'x-', 'a|b\\n|' + ' '.repeat(65000) + '-', 'a|b\\n:' + ' '.repeat(65000) + ':'];
           // Each returns (a hang would time the script out), its blocks made.
           const rendered = hostile.map((s) => m.renderMarkdown(s).childElementCount > 0);
           done({ wrong, bad, rendered });
         }, (e) => done({ error: String(e) }));",
        &[cases],
    );
    assert_eq!(checked["error"], Value::Null, "{checked}");
    assert_eq!(checked["wrong"], json!([]), "{checked:#}");
    assert_eq!(checked["bad"], json!([]), "{checked:#}");
    assert_eq!(checked["rendered"], json!(vec![true; 12]), "{checked}");
    assert_clean_page(&browser, None);
}

/// Issue 30 (a): every metric of a run the real W&B writer wrote is on its
/// page: charts in sections by prefix (`train/`, `val/`, then the rest as
/// "other"), `train/loss` among them, and `final_score` (logged once) as a
/// number in the "summary". A section closed stays closed on the next
/// visit to a run of that experiment, and its charts are not asked for
/// while it is closed.
#[test]
fn every_metric_of_a_wandb_run_is_on_its_page_in_sections_and_single_values_are_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("wandb-metrics", &root);
    let server = serve_roots(&base.join("data"), &[&root]);
    let id = run_id(&server, "format=wandb", "");
    let browser = signed_in_browser(&server, 1280, 1400);
    browser.goto(&format!("{}#/runs/{id}", server.base));
    // Every charted section's charts drawn (all in view at this size).
    let charted = "[...document.querySelectorAll('#metrics .metric-panel')].map((p) => ({
        section: p.closest('.metric-section').dataset.section,
        metric: p.querySelector('select.panel-metric').value,
        points: ((p.querySelector('.chart') || {}).chart || {series: [{}]}).series[0].points}))";
    let page = wait_for(
        &browser,
        "document.querySelectorAll('#metrics .metric-panel').length && [...document.querySelectorAll('#metrics .metric-panel')].every((p) => p.querySelector('.chart'))",
        &format!(
            "{{sections: [...document.querySelectorAll('#metrics .metric-section')].map((s) => ({{section: s.dataset.section,
                 title: s.querySelector('.section-toggle').textContent,
                 expanded: s.querySelector('.section-toggle').getAttribute('aria-expanded'),
                 controls: !!document.getElementById(s.querySelector('.section-toggle').getAttribute('aria-controls'))}})),
              summary: [...document.querySelectorAll('#metrics .summary-value')].map((v) => [v.querySelector('dt').textContent, v.querySelector('dd').textContent]),
              panels: {charted},
              labels: [...document.querySelectorAll('#metrics svg.chart-svg')].map((s) => s.getAttribute('aria-label'))}}"
        ),
    );
    assert!(page.get("timeout").is_none(), "{page}");
    let sections: Vec<&str> = page["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["section"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["summary", "train/", "val/", "other"], "{page}");
    for s in page["sections"].as_array().unwrap() {
        assert_eq!(s["expanded"], "true", "{page}");
        assert_eq!(s["controls"], true, "{page}");
    }
    assert_eq!(page["summary"], json!([["final_score", "0.875"]]), "{page}");
    let mut panels: Vec<(String, String, String)> = page["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["section"].as_str().unwrap().to_owned(),
                p["metric"].as_str().unwrap().to_owned(),
                p["points"].to_string(),
            )
        })
        .collect();
    panels.sort();
    let expected: Vec<(String, String, String)> = [
        ("other", "epoch"),
        ("train/", "train/acc"),
        ("train/", "train/loss"),
        ("val/", "val/acc"),
        ("val/", "val/loss"),
    ]
    .iter()
    .map(|(s, m)| ((*s).to_owned(), (*m).to_owned(), "50".to_owned()))
    .collect();
    assert_eq!(panels, expected, "{page}");
    assert!(
        page["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("train/loss by step")),
        "{page}"
    );
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]));
    save_screenshot(&browser, "wandb-metric-sections.png");

    // Closing `val/` hides its charts; the next visit keeps it closed
    // and asks for none of its series.
    let closed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const toggle = document.querySelector('.metric-section[data-section=\"val/\"] .section-toggle');
         toggle.click();
         done({expanded: toggle.getAttribute('aria-expanded'), hidden: document.getElementById(toggle.getAttribute('aria-controls')).hidden});",
    );
    assert_eq!(
        closed,
        json!({"expanded": "false", "hidden": true}),
        "{closed}"
    );
    browser.goto("about:blank");
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let again = wait_for(
        &browser,
        "document.querySelector('.metric-section[data-section=\"train/\"] .chart') && document.querySelector('.metric-section[data-section=\"other\"] .chart')",
        "{val: document.querySelector('.metric-section[data-section=\"val/\"] .section-toggle').getAttribute('aria-expanded'),
           train: document.querySelector('.metric-section[data-section=\"train/\"] .section-toggle').getAttribute('aria-expanded')}",
    );
    assert_eq!(again, json!({"val": "false", "train": "true"}), "{again}");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let asked = browser.run_async(
        "arguments[arguments.length - 1](performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/metrics/')).map((n) => decodeURIComponent(n.split('/metrics/')[1].split('?')[0])).sort())",
    );
    assert_eq!(
        asked,
        json!(["epoch", "train/acc", "train/loss"]),
        "only the open sections' series are asked for: {asked}"
    );
    // Opened again, its charts load.
    let opened = browser.run_async(
        "const done = arguments[arguments.length - 1];
         document.querySelector('.metric-section[data-section=\"val/\"] .section-toggle').click();
         const start = Date.now();
         (function poll() {
           const charts = document.querySelectorAll('.metric-section[data-section=\"val/\"] .chart');
           if (charts.length < 2 && Date.now() - start < 15000) return setTimeout(poll, 100);
           done([...charts].map((c) => c.chart.series[0].points));
         })();",
    );
    assert_eq!(opened, json!([50, 50]), "{opened}");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]));
}

/// Issue 30 (b, c): a 200,000-step run with one 10.0 at step 123,456 (the
/// rest near 1 / (1 + step / 1000)): smoothed at 0.9, the y axis still
/// reaches 10 and the spike's bucket is drawn as a stroke up to 10; the
/// hover over it names the exact step of the spike and its value, asked of
/// the server for that bucket alone.
#[test]
fn a_spike_in_a_200k_step_run_stays_in_view_smoothed_and_its_hover_names_the_exact_step() {
    use std::fmt::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    let dir = root.join("spiky");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.toml"), "name = \"spiky\"\n").unwrap();
    let mut lines = String::with_capacity(200_000 * 40);
    for step in 0..200_000u64 {
        let noise = ((step * 7919) % 1000) as f64 / 1000.0 * 0.02 - 0.01;
        let loss = if step == 123_456 {
            10.0
        } else {
            1.0 / (1.0 + step as f64 / 1000.0) + noise
        };
        writeln!(lines, "{{\"step\": {step}, \"loss\": {loss}}}").unwrap();
    }
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let server = serve_roots(&base.join("data"), &[&root]);
    let id = run_id(&server, "format=lab", "/spiky");
    let browser = signed_in_browser(&server, 1280, 1000);
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let drawn = wait_for(
        &browser,
        "document.querySelector('#metrics .chart') && document.querySelector('#metrics .chart').chart",
        "document.querySelector('#metrics .chart').chart.series[0].points",
    );
    assert_eq!(drawn, json!(800), "800 buckets of the 200,000 points");
    // Smoothing 0.9, then what the chart drew: its y range, and the
    // stroke drawn at the spike's bucket, measured in the SVG.
    let smoothed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const smooth = document.querySelector('#metrics input.smoothing');
         smooth.value = '0.9'; smooth.dispatchEvent(new Event('input'));
         const start = Date.now();
         (function poll() {
           const c = document.querySelector('#metrics .chart');
           if ((!c || c.chart.smoothing !== 0.9) && Date.now() - start < 15000) return setTimeout(poll, 100);
           const { y, plot } = c.chart;
           const py = (v) => plot.top + (1 - (v - y[0]) / (y[1] - y[0])) * (plot.bottom - plot.top);
           const svg = c.querySelector('svg');
           const scale = svg.getBoundingClientRect().height / plot.height;
           const spikes = [...svg.querySelectorAll('line.extreme')].map((l) => ({
             x: Number(l.dataset.x), max: Number(l.dataset.max),
             top: Number(l.getAttribute('y1')), bottom: Number(l.getAttribute('y2')),
             width: Number(l.getAttribute('stroke-width')), height: l.getBoundingClientRect().height / scale,
           }));
           done({ smoothed: !!svg.querySelector('path.series.smoothed'), envelope: !!svg.querySelector('path.envelope'),
                  yMax: y[1], at10: py(10), plotTop: plot.top, plotHeight: plot.bottom - plot.top, spikes });
         })();",
    );
    assert_eq!(smoothed["smoothed"], true, "{smoothed}");
    assert_eq!(smoothed["envelope"], true, "{smoothed}");
    assert!(smoothed["yMax"].as_f64().unwrap() >= 10.0, "{smoothed}");
    let spikes = smoothed["spikes"].as_array().unwrap();
    assert_eq!(spikes.len(), 1, "one bucket stands out: {smoothed}");
    let spike = &spikes[0];
    let x = spike["x"].as_f64().unwrap();
    assert!(
        x <= 123_456.0 && 123_456.0 - x < 250.0,
        "the spike's bucket: {smoothed}"
    );
    assert_eq!(spike["max"], 10.0, "{smoothed}");
    let at10 = smoothed["at10"].as_f64().unwrap();
    assert!(
        (spike["top"].as_f64().unwrap() - at10).abs() < 2.0,
        "the stroke reaches 10: {smoothed}"
    );
    assert!(spike["width"].as_f64().unwrap() >= 1.5, "{smoothed}");
    assert!(
        spike["height"].as_f64().unwrap() > 0.8 * smoothed["plotHeight"].as_f64().unwrap(),
        "drawn from near 0 to 10: {smoothed}"
    );
    save_screenshot(&browser, "spike-smoothed.png");

    // The hover over the spike: the exact step and its value.
    let hover = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const c = document.querySelector('#metrics .chart');
         const { x, plot } = c.chart;
         const svg = c.querySelector('svg');
         const box = svg.getBoundingClientRect();
         const sx = plot.left + ((123456 - x[0]) / (x[1] - x[0])) * (plot.right - plot.left);
         const at = {clientX: box.left + sx * box.width / plot.width, clientY: box.top + box.height / 2, bubbles: true};
         svg.dispatchEvent(new PointerEvent('pointermove', at));
         const start = Date.now();
         (function poll() {
           const tip = c.querySelector('.tip');
           if (!tip.textContent.includes('123,456') && Date.now() - start < 15000) return setTimeout(poll, 100);
           const t = tip.getBoundingClientRect();
           done({text: tip.textContent, hidden: tip.hidden, inside: t.left >= 0 && t.right <= window.innerWidth});
         })();",
    );
    let text = hover["text"].as_str().unwrap();
    assert!(
        text.contains("max 10 at step 123,456"),
        "the spike's step and value: {hover}"
    );
    assert!(text.starts_with("step 123,250"), "{hover}");
    assert_eq!(hover["hidden"], false, "{hover}");
    assert_eq!(hover["inside"], true, "{hover}");
    save_screenshot(&browser, "spike-hover.png");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]));
}

/// Where (in client pixels) a value sits on a parallel-coordinates axis:
/// a JS function `at(field, value)` → `{x, y}`, from the axis's own data
/// attributes (its x, its top and bottom, its numeric range).
const PC_AT: &str = "const at = (field, value) => {
   const a = document.querySelector(`#pc-plot .pc-axis[data-field=\"${field}\"]`);
   const r = document.querySelector('#pc-plot .pc-overlay').getBoundingClientRect();
   const [x, top, bottom, min, max] = ['x', 'top', 'bottom', 'min', 'max'].map((k) => Number(a.dataset[k]));
   return {x: r.left + x, y: r.top + bottom - ((value - min) / (max - min)) * (bottom - top)};
 };";

/// Issue 30's parallel coordinates on the runs MLflow wrote (the 20-run
/// sweep: lr = 0.001 × (i + 1), kept by MLflow as text; batch 32 or 64;
/// loss): opened from the sweep's group header, axes lr, batch and loss
/// chosen, a drag on the lr axis brushes exactly the runs with lr in
/// [0.005, 0.0105] (worked out here from the API's values), the scatter
/// marks the same runs, "Select these 6 runs" makes them the compare
/// selection and compare shows exactly them; a hover names a line and a
/// click on it opens its run. No console error, no failed request.
#[test]
fn parallel_coordinates_brush_a_sweep_into_the_compare_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("sweep", &root);
    let server = serve_roots(&base.join("data"), &[&root]);

    // The brushed set, worked out from the API's values.
    let all = api_get(
        &server,
        "/api/runs?limit=500&fields=params.lr,params.batch,metrics.loss",
    );
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 20, "{all}");
    let lr_of = |r: &Value| -> f64 {
        let lr = &r["params"]["lr"];
        lr.as_f64()
            .or_else(|| lr.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("lr of {r}"))
    };
    let in_range: Vec<&Value> = runs
        .iter()
        .filter(|r| (0.005..=0.0105).contains(&lr_of(r)))
        .collect();
    let mut expected: Vec<String> = in_range
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    let mut names: Vec<&str> = in_range
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "sweep-04", "sweep-05", "sweep-06", "sweep-07", "sweep-08", "sweep-09"
        ],
        "{all}"
    );
    let experiment = runs[0]["experiment"]["id"].as_str().unwrap().to_owned();
    let sweep_12 = runs.iter().find(|r| r["name"] == "sweep-12").unwrap();
    let (id_12, lr_12) = (sweep_12["id"].as_str().unwrap().to_owned(), lr_of(sweep_12));
    let batch_12 = sweep_12["params"]["batch"]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .or_else(|| sweep_12["params"]["batch"].as_f64())
        .unwrap();

    let browser = csp_browser();
    browser.resize(1280, 1000);
    browser.goto(&server.link);

    // 1. From the grouped list: the sweep's group header links to its
    // parallel coordinates.
    let link = wait_for(
        &browser,
        "document.getElementById('group-by-experiment') && (document.getElementById('group-by-experiment').checked || document.getElementById('group-by-experiment').click())
         && document.querySelector('.group-plot')",
        "document.querySelector('.group-plot').getAttribute('href')",
    );
    assert_eq!(
        link,
        json!(format!(
            "#/plot?experiment={}",
            experiment.replace(':', "%3A").replace('/', "%2F")
        )),
        "{link}"
    );
    browser.run_async(
        "document.querySelector('.group-plot').click(); arguments[arguments.length - 1](true)",
    );
    let opened = wait_for(
        &browser,
        "document.querySelector('#pc-plot .pc-axis') && document.getElementById('pc-summary').textContent.startsWith('20 runs')",
        "{heading: document.querySelector('.plot-view h1').textContent, label: document.getElementById('pc-plot').getAttribute('aria-label'),
          controls: [...document.querySelectorAll('.pc-controls select')].map((s) => s.closest('label').textContent.split(' (')[0])}",
    );
    assert!(opened.get("timeout").is_none(), "{opened}");
    assert!(
        opened["heading"]
            .as_str()
            .unwrap()
            .starts_with("Experiment sweep"),
        "{opened}"
    );
    assert!(
        opened["label"]
            .as_str()
            .unwrap()
            .starts_with("Parallel coordinates of 20 runs"),
        "{opened}"
    );
    assert_eq!(
        opened["controls"],
        json!(["Metric axis", "Scatter x", "Scatter y"]),
        "labelled controls: {opened}"
    );

    // 2. The axes lr, batch and the metric loss, chosen one change at a
    // time (each asks for the values again).
    let chosen = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const want = ['params.lr', 'params.batch'];
         let cleared = false;
         const start = Date.now();
         (function poll() {
           if (Date.now() - start > 20000) return done({timeout: document.getElementById('pc-summary').textContent, boxes: [...document.querySelectorAll('#pc-axes input[type=checkbox]')].map((b) => b.value + ':' + b.checked), metric: document.getElementById('pc-metric').value, axes: [...document.querySelectorAll('#pc-plot .pc-axis')].map((a) => a.dataset.field)});
           const details = document.getElementById('pc-axes');
           details.open = true;
           // Every box cleared, then lr and batch checked in that order
           // (the axes' order is the order of checking).
           const boxes = [...details.querySelectorAll('input[type=checkbox]')];
           const order = [...document.querySelectorAll('#pc-plot .pc-axis.param')].map((a) => a.dataset.field);
           if (order.join() !== want.join()) {
             if (!cleared) {
               const on = boxes.find((b) => b.checked);
               if (on) { on.click(); return setTimeout(poll, 300); }
               cleared = true;
             }
             const next = want.map((f) => boxes.find((b) => b.value === f)).find((b) => !b.checked);
             if (next) { next.click(); return setTimeout(poll, 300); }
             return setTimeout(poll, 100);
           }
           // The metric axis loss; the scatter loss against lr.
           for (const [id, value] of [['pc-metric', 'loss'], ['pc-x', 'lr'], ['pc-y', 'loss']]) {
             const box = document.getElementById(id);
             if (box.value !== value) { box.value = value; box.dispatchEvent(new Event('change')); return setTimeout(poll, 300); }
           }
           const axes = [...document.querySelectorAll('#pc-plot .pc-axis')].map((a) => a.dataset.field);
           if (axes.join() !== 'params.lr,params.batch,metrics.loss') return setTimeout(poll, 100);
           details.open = false;
           if (!document.querySelector('#pc-scatter h3') || document.querySelector('#pc-scatter h3').textContent !== 'loss against lr') return setTimeout(poll, 100);
           done({axes, scales: [...document.querySelectorAll('#pc-plot .pc-axis')].map((a) => a.dataset.scale),
                 points: document.querySelectorAll('#pc-scatter .pc-pt').length,
                 legend: document.getElementById('pc-legend').textContent});
         })();",
    );
    assert_eq!(
        chosen["axes"],
        json!(["params.lr", "params.batch", "metrics.loss"]),
        "{chosen}"
    );
    // lr arrives as text ("0.005") and is still a number axis.
    assert_eq!(
        chosen["scales"],
        json!(["linear", "linear", "linear"]),
        "{chosen}"
    );
    assert!(
        chosen["legend"].as_str().unwrap().contains("colour: loss"),
        "{chosen}"
    );
    assert_eq!(chosen["points"], json!(20), "{chosen}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    save_screenshot(&browser, "parcoords-experiment.png");

    // 3. A drag down the lr axis from 0.0105 to just under 0.005: exactly
    // the runs with lr in [0.005, 0.0105] are brushed.
    let brushed = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {PC_AT}
         const [from, to] = [at('params.lr', 0.0105), at('params.lr', 0.0047)];
         const hit = document.querySelector('#pc-plot .pc-hit[data-field=\"params.lr\"]');
         const event = (type, p) => new PointerEvent(type, {{clientX: p.x, clientY: p.y, button: 0, buttons: 1, pointerId: 1, isPrimary: true, pointerType: 'mouse', bubbles: true}});
         hit.dispatchEvent(event('pointerdown', from));
         document.dispatchEvent(event('pointermove', {{x: from.x, y: (from.y + to.y) / 2}}));
         document.dispatchEvent(event('pointermove', to));
         document.dispatchEvent(event('pointerup', to));
         document.querySelector('#pc-data summary').click();
         const start = Date.now();
         (function poll() {{
           if (!document.getElementById('pc-table') && Date.now() - start < 5000) return setTimeout(poll, 50);
           done({{
           button: document.getElementById('pc-select').textContent,
           summary: document.getElementById('pc-summary').textContent,
           table: [...document.querySelectorAll('#pc-table tbody tr.brushed')].map((r) => r.dataset.id).sort(),
           rows: document.querySelectorAll('#pc-table tbody tr').length,
           scatter: [...document.querySelectorAll('#pc-scatter .pc-pt.brushed')].map((c) => c.dataset.id).sort(),
           faint: document.querySelectorAll('#pc-scatter .pc-pt.faint').length,
           brush: !!document.querySelector('#pc-plot .pc-brush[data-field=\"params.lr\"]'),
         }});
         }})();"
    ));
    // The range said in lr's own units (as far as a pixel tells).
    let summary = brushed["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.starts_with("20 runs, 6 brushed: lr 0.004") && summary.contains("–0.010"),
        "{brushed}"
    );
    assert_eq!(
        brushed,
        json!({
            "button": "Select these 6 runs",
            "summary": summary,
            "table": expected,
            "rows": 20,
            "scatter": expected,
            "faint": 14,
            "brush": true,
        }),
        "{brushed}"
    );
    browser.run_async(
        "document.querySelector('#pc-data summary').click(); window.scrollTo(0, 0); arguments[arguments.length - 1](true)",
    );
    save_screenshot(&browser, "parcoords-brushed.png");
    browser.run_async(
        "document.getElementById('pc-scatter').scrollIntoView({block: 'center'}); arguments[arguments.length - 1](true)",
    );
    save_screenshot(&browser, "parcoords-scatter.png");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]), "the plot");

    // 4. Escape clears the brushes; brushed again, "Select these 6 runs"
    // makes them the selection and compare shows exactly them.
    let cleared = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const plot = document.getElementById('pc-plot');
         plot.focus();
         plot.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
         done({button: document.getElementById('pc-select').textContent, disabled: document.getElementById('pc-select').disabled,
               brushes: document.querySelectorAll('#pc-plot .pc-brush').length});",
    );
    assert_eq!(
        cleared,
        json!({"button": "Brush an axis to pick runs", "disabled": true, "brushes": 0}),
        "{cleared}"
    );
    let compared = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {PC_AT}
         const [from, to] = [at('params.lr', 0.0047), at('params.lr', 0.0105)];
         const hit = document.querySelector('#pc-plot .pc-hit[data-field=\"params.lr\"]');
         const event = (type, p) => new PointerEvent(type, {{clientX: p.x, clientY: p.y, button: 0, buttons: 1, pointerId: 1, isPrimary: true, pointerType: 'mouse', bubbles: true}});
         hit.dispatchEvent(event('pointerdown', from));
         document.dispatchEvent(event('pointermove', to));
         document.dispatchEvent(event('pointerup', to));
         document.getElementById('pc-select').click();
         document.getElementById('pc-compare').click();
         const start = Date.now();
         (function poll() {{
           if (!document.querySelector('.compare-view #pc-plot .pc-axis') && Date.now() - start < 20000) return setTimeout(poll, 100);
           done({{heading: document.querySelector('.compare-view h1').textContent,
                 ids: [...document.querySelectorAll('.compare-legend a')].map((a) => decodeURIComponent(a.getAttribute('href').slice('#/runs/'.length))).sort(),
                 plotted: document.getElementById('pc-summary').textContent}});
         }})();"
    ));
    assert_eq!(compared["heading"], json!("Compare 6 runs"), "{compared}");
    assert_eq!(compared["ids"], json!(expected), "{compared}");
    assert!(
        compared["plotted"].as_str().unwrap().starts_with("6 runs"),
        "compare's own parallel coordinates: {compared}"
    );
    wait_for(
        &browser,
        "document.querySelector('#compare-metrics .chart')",
        "true",
    );
    browser.run_async(
        "document.getElementById('parcoords').scrollIntoView(); arguments[arguments.length - 1](true)",
    );
    save_screenshot(&browser, "parcoords-compare.png");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]), "compare");

    // 5. Back on the experiment's plot (the axes remembered): a hover names
    // sweep-12's line, a click on it opens the run.
    browser.goto(&format!(
        "{}#/plot?experiment={}",
        server.base,
        experiment.replace(':', "%3A").replace('/', "%2F")
    ));
    let remembered = wait_for(
        &browser,
        "document.querySelectorAll('#pc-plot .pc-axis').length === 3 && document.getElementById('pc-summary').textContent.startsWith('20 runs')",
        "[...document.querySelectorAll('#pc-plot .pc-axis')].map((a) => a.dataset.field)",
    );
    assert_eq!(
        remembered,
        json!(["params.lr", "params.batch", "metrics.loss"]),
        "{remembered}"
    );
    // sweep-12's line a quarter of the way from the lr axis to batch's.
    let on_line = format!(
        "{PC_AT}
         const [a, b] = [at('params.lr', {lr_12}), at('params.batch', {batch_12})];
         const p = {{x: a.x + (b.x - a.x) / 4, y: a.y + (b.y - a.y) / 4}};
         const target = document.elementFromPoint(p.x, p.y);"
    );
    let hover = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {on_line}
         target.dispatchEvent(new PointerEvent('pointermove', {{clientX: p.x, clientY: p.y, pointerType: 'mouse', bubbles: true}}));
         requestAnimationFrame(() => requestAnimationFrame(() => {{
           const tip = document.querySelector('#pc-plot .tip');
           done({{shown: !tip.hidden, text: tip.textContent, line: !!document.querySelector('#pc-plot .pc-hover').getAttribute('d')}});
         }}));"
    ));
    assert_eq!(hover["shown"], json!(true), "{hover}");
    assert_eq!(hover["line"], json!(true), "{hover}");
    assert!(
        hover["text"]
            .as_str()
            .unwrap()
            .starts_with("sweep-12lr: 0.013batch: 64loss:"),
        "{hover}"
    );
    save_screenshot(&browser, "parcoords-hover.png");
    let clicked = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {on_line}
         target.dispatchEvent(new MouseEvent('click', {{clientX: p.x, clientY: p.y, bubbles: true}}));
         done(location.hash);"
    ));
    assert_eq!(clicked, json!(format!("#/runs/{id_12}")), "{clicked}");
    wait_for(&browser, "document.querySelector('.run-head h1')", "true");
    assert_clean_page(&browser, None);
    assert_eq!(
        failed_requests(&browser),
        json!([]),
        "a run opened from the plot"
    );
}

/// Issue 30's scale: an experiment of 2,500 runs draws its first 2,000
/// (asked for in four pages of 500 with `fields=`), a learning rate over
/// four decades offers a log scale, a categorical param is an ordinal
/// axis with its missing values at a "missing" tick, and a brush dragged
/// over 2,000 lines redraws within a frame or two.
#[test]
fn parallel_coordinates_draw_two_thousand_runs_smoothly() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    for i in 0..2500_u32 {
        let dir = root.join(format!("big-{i:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lr = 10f64.powf(-5.0 + 4.0 * f64::from(i) / 2500.0);
        // Every fifth run has no optimiser.
        let opt = ["", "adam", "sgd", "rmsprop", "adamw"][(i % 5) as usize];
        let opt = if opt.is_empty() {
            String::new()
        } else {
            format!("opt = \"{opt}\"\n")
        };
        std::fs::write(
            dir.join("run.toml"),
            format!(
                "name = \"big-{i:04}\"\nexperiment = \"big\"\n[params]\nlr = {lr}\ndepth = {}\n{opt}",
                2 + i % 7
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics.jsonl"),
            format!(
                "{{\"step\": 0, \"loss\": 2.0}}\n{{\"step\": 1, \"loss\": {}}}\n",
                1.0 / (1.0 + f64::from(i % 97))
            ),
        )
        .unwrap();
    }
    let server = serve_roots(&base.join("data"), &[&root]);
    let experiments = api_get(&server, "/api/experiments");
    let big = experiments
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "big")
        .unwrap_or_else(|| panic!("{experiments}"));
    assert_eq!(big["runs"], json!(2500), "{experiments}");
    let id = big["id"]
        .as_str()
        .unwrap()
        .replace(':', "%3A")
        .replace('/', "%2F");

    let browser = signed_in_browser(&server, 1280, 1000);
    browser.goto(&format!("{}#/plot?experiment={id}", server.base));
    let chosen = wait_for_within(
        &browser,
        30,
        "document.getElementById('pc-summary') && document.getElementById('pc-summary').textContent.startsWith('2,000 runs')",
        "true",
    );
    assert_eq!(chosen, json!(true), "{chosen}");
    let chosen = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const want = ['params.lr', 'params.opt', 'params.depth'];
         let cleared = false;
         const start = Date.now();
         (function poll() {
           if (Date.now() - start > 30000) return done({timeout: document.getElementById('pc-summary').textContent});
           const details = document.getElementById('pc-axes');
           const boxes = [...details.querySelectorAll('input[type=checkbox]')];
           const order = [...document.querySelectorAll('#pc-plot .pc-axis.param')].map((a) => a.dataset.field);
           if (order.join() !== want.join()) {
             if (!cleared) {
               const on = boxes.find((b) => b.checked);
               if (on) { on.click(); return setTimeout(poll, 500); }
               cleared = true;
             }
             const next = want.map((f) => boxes.find((b) => b.value === f)).find((b) => !b.checked);
             if (next) { next.click(); return setTimeout(poll, 500); }
             return setTimeout(poll, 100);
           }
           const metric = document.getElementById('pc-metric');
           if (metric.value !== 'loss') { metric.value = 'loss'; metric.dispatchEvent(new Event('change')); return setTimeout(poll, 500); }
           if (document.querySelectorAll('#pc-plot .pc-axis').length !== 4 || !document.getElementById('pc-summary').textContent.startsWith('2,000')) return setTimeout(poll, 100);
           performance.clearResourceTimings();
           // The log scale for lr: asks for nothing again.
           document.querySelector('.pc-log input[data-field=\"params.lr\"]').click();
           const axes = [...document.querySelectorAll('#pc-plot .pc-axis')];
           done({
             summary: document.getElementById('pc-summary').textContent,
             scales: axes.map((a) => a.dataset.scale),
             missing: [...document.querySelectorAll('#pc-plot .pc-missing text')].map((t) => t.textContent),
             opt: [...axes[1].querySelectorAll('.pc-tick:not(.pc-missing) text')].map((t) => t.textContent),
             asked: performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/runs?')).length,
           });
         })();",
    );
    assert!(chosen.get("timeout").is_none(), "{chosen}");
    assert!(
        chosen["summary"]
            .as_str()
            .unwrap()
            .starts_with("2,000 runs (the first 2,000 of 2,500)"),
        "{chosen}"
    );
    assert_eq!(
        chosen["scales"],
        json!(["log", "ordinal", "linear", "linear"]),
        "{chosen}"
    );
    assert_eq!(chosen["missing"], json!(["missing (400)"]), "{chosen}");
    assert_eq!(
        chosen["opt"],
        json!(["adam", "adamw", "rmsprop", "sgd"]),
        "{chosen}"
    );
    assert_eq!(chosen["asked"], json!(0), "{chosen}");
    // The values of one choice: four pages of 500.
    let pages = browser.run_async(
        "const done = arguments[arguments.length - 1];
         performance.clearResourceTimings();
         const metric = document.getElementById('pc-metric');
         metric.value = ''; metric.dispatchEvent(new Event('change'));
         const start = Date.now();
         (function poll() {
           if (document.querySelectorAll('#pc-plot .pc-axis').length !== 3 && Date.now() - start < 20000) return setTimeout(poll, 100);
           const runs = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/runs?'));
           done({pages: runs.length, limits: runs.map((e) => new URL(e.name).searchParams.get('limit')),
                 fields: [...new Set(runs.map((e) => new URL(e.name).searchParams.get('fields')))]});
         })();",
    );
    assert_eq!(
        pages,
        json!({"pages": 4, "limits": ["500", "500", "500", "500"], "fields": ["params.lr,params.opt,params.depth"]}),
        "{pages}"
    );
    browser.run_async(
        "const metric = document.getElementById('pc-metric'); metric.value = 'loss'; metric.dispatchEvent(new Event('change')); arguments[arguments.length - 1](true)",
    );
    wait_for(
        &browser,
        "document.querySelectorAll('#pc-plot .pc-axis').length === 4 && document.getElementById('pc-summary').textContent.startsWith('2,000')",
        "true",
    );
    // A brush dragged down the depth axis, a frame per move.
    let drag = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         {PC_AT}
         const hit = document.querySelector('#pc-plot .pc-hit[data-field=\"params.depth\"]');
         const event = (type, p) => new PointerEvent(type, {{clientX: p.x, clientY: p.y, button: 0, buttons: 1, pointerId: 1, isPrimary: true, pointerType: 'mouse', bubbles: true}});
         const from = at('params.depth', 8.5);
         hit.dispatchEvent(event('pointerdown', from));
         const frames = [];
         let k = 0;
         let last = performance.now();
         (function move() {{
           const now = performance.now();
           if (k) frames.push(now - last);
           last = now;
           if (k++ === 20) {{
             document.dispatchEvent(event('pointerup', at('params.depth', 4.5)));
             frames.sort((a, b) => a - b);
             return done({{median: frames[10], worst: frames[frames.length - 1], button: document.getElementById('pc-select').textContent}});
           }}
           document.dispatchEvent(event('pointermove', at('params.depth', 8.5 - k * 0.2)));
           requestAnimationFrame(move);
         }})();"
    ));
    eprintln!("a brush over 2,000 lines: frames {drag}");
    assert!(drag["median"].as_f64().unwrap() < 50.0, "{drag}");
    // depth 5…8 of 2…8: 4 of 7 values, 1,143 runs or so: more than
    // compare takes, and said so.
    assert!(
        drag["button"]
            .as_str()
            .unwrap()
            .ends_with("brushed: compare takes 20 at most, narrow the brushes"),
        "{drag}"
    );
    save_screenshot(&browser, "parcoords-2000.png");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]), "2,000 runs");
}

/// A run's histograms are drawn under "Distributions": one SVG chart per
/// histogram, its four bands (min–max lightest, darker inward) as filled
/// paths and the median as a line, over every step; hovering shows a
/// step's nine values as text; no console error, no CSP violation, no
/// failed request. Screenshot: `target/screenshots/histogram.png`.
#[test]
fn a_runs_histograms_are_drawn_as_distributions() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("histograms", &root);
    let server = serve_roots(&base.join("data"), &[&root]);
    let id = run_id(&server, "format=tensorboard", "/tb-hist");
    let detail = api_get(&server, &format!("/api/runs/{id}"));
    let names: Vec<Value> = detail["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].clone())
        .collect();
    assert_eq!(names.len(), 3, "{detail}");
    let browser = signed_in_browser(&server, 1280, 1400);
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let drawn = wait_for(
        &browser,
        "document.querySelectorAll('#distributions svg.histogram-svg').length === 3",
        "[...document.querySelectorAll('#distributions .histogram-panel')].map(p => ({
           name: p.dataset.histogram,
           bands: [...p.querySelectorAll('path.band')].filter(b => (b.getAttribute('d') || '').length > 20).length,
           median: p.querySelectorAll('path.median').length,
           opacities: [...p.querySelectorAll('path.band')].map(b => Number(b.getAttribute('fill-opacity'))),
           heading: document.evaluate('ancestor::section/h2', p, null, XPathResult.STRING_TYPE, null).stringValue,
         }))",
    );
    let panels = drawn
        .as_array()
        .unwrap_or_else(|| panic!("no distribution charts: {drawn}"));
    assert_eq!(
        panels.iter().map(|p| p["name"].clone()).collect::<Vec<_>>(),
        names
    );
    for panel in panels {
        assert_eq!(panel["bands"], json!(4), "{panel}");
        assert_eq!(panel["median"], json!(1), "{panel}");
        let opacities: Vec<f64> = panel["opacities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_f64().unwrap())
            .collect();
        assert!(opacities.windows(2).all(|w| w[0] < w[1]), "{panel}");
        assert_eq!(panel["heading"], json!("Distributions (3)"), "{panel}");
    }
    // Hovering the middle of layer1/weights' chart names a step and its
    // nine values.
    let readout = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const p = document.querySelector('.histogram-panel[data-histogram=\"layer1/weights\"]');
         const s = p.querySelector('svg');
         s.scrollIntoView();
         const b = s.getBoundingClientRect();
         s.dispatchEvent(new MouseEvent('mousemove', {clientX: b.left + b.width / 2, clientY: b.top + b.height / 2, bubbles: true}));
         setTimeout(() => done(p.querySelector('.histogram-readout').textContent), 50);",
    );
    let readout = readout.as_str().unwrap();
    assert!(readout.starts_with("step "), "{readout}");
    assert!(
        readout.contains("median") && readout.contains("max"),
        "{readout}"
    );
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]));
    browser.run_async(
        "document.getElementById('distributions').scrollIntoView(); arguments[arguments.length - 1](true)",
    );
    save_screenshot(&browser, "histogram.png");
}

/// Issue 32: a `wandb.Table` the real writer logged is drawn on its run's
/// page under "Tables": its columns and rows, every cell as text (a cell
/// holding `<b>dog</b>` is those characters, not markup; a nested dict as
/// compact JSON; None empty); a table file that is not JSON, one that is
/// a FIFO and one over 16 MiB (a link) say why they are not drawn; of
/// 1,500 rows the first 1,000 are, and the page says so. No console
/// error, no CSP violation.
#[test]
fn a_wandb_table_is_drawn_on_its_run_page_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("wandb", &root);
    let run_dir = std::fs::read_dir(root.join("wandb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("offline-run-")
        })
        .unwrap();
    let tables = run_dir.join("files/media/table");
    std::fs::write(tables.join("bad_2_bbbb.table.json"), "{\"columns\": [").unwrap();
    // Over the page's 16 MiB: a link, never fetched.
    std::fs::File::create(tables.join("huge_1_aaaa.table.json"))
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    // 1,500 rows: the first 1,000 drawn, and said so.
    let rows: Vec<Value> = (0..1500).map(|i| json!([i])).collect();
    std::fs::write(
        tables.join("many_5_eeee.table.json"),
        json!({"columns": ["i"], "data": rows}).to_string(),
    )
    .unwrap();
    // 5,000 columns and a row of 100,000 cells: the first 200 drawn.
    let wide: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
    let cells: Vec<u32> = (0..100_000).collect();
    std::fs::write(
        tables.join("wide_6_ffff.table.json"),
        json!({"columns": wide, "data": [cells]}).to_string(),
    )
    .unwrap();
    let fifo = Command::new("mkfifo")
        .arg(tables.join("fifo_4_dddd.table.json"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let server = serve_roots(&base.join("data"), &[&root]);
    let id = run_id(&server, "format=wandb", "");
    let browser = signed_in_browser(&server, 1280, 1400);
    browser.goto(&format!("{}#/runs/{id}", server.base));
    let page = wait_for(
        &browser,
        "document.querySelectorAll('#tables .datatable-table').length === 3 && document.querySelectorAll('#tables .datatable-why').length === 3",
        "(() => { const t = document.querySelector('#tables .datatable[data-name*=\"preds_\"] .datatable-table');
           const many = document.querySelector('#tables .datatable[data-name*=\"many_\"]');
           const tables = document.getElementById('tables');
           window.scrollTo(0, tables.getBoundingClientRect().top + window.scrollY - 120);
           return {
             heads: [...document.querySelectorAll('#tables .datatable h3')].map((h) => h.textContent),
             columns: [...t.querySelectorAll('thead th')].map((c) => c.textContent),
             rows: [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].map((c) => c.textContent)),
             count: document.querySelector('#tables .datatable[data-name*=\"preds_\"] .datatable-count').textContent,
             many: [many.querySelector('.datatable-count').textContent, many.querySelectorAll('tbody tr').length,
               many.querySelector('tbody tr:last-child td').textContent],
             huge: [...document.querySelectorAll('#tables .datatable[data-name*=\"huge_\"] .datatable-why a[download]')].length,
             wide: (() => { const w = document.querySelector('#tables .datatable[data-name*=\"wide_\"]');
               return [w.querySelector('.datatable-count').textContent, w.querySelectorAll('thead th').length, w.querySelectorAll('tbody td').length]; })(),
             markup: document.querySelectorAll('#tables b').length,
             why: [...document.querySelectorAll('#tables .datatable-why')].map((p) => p.textContent),
           }; })()",
    );
    assert!(page.get("timeout").is_none(), "{page}");
    assert_eq!(
        page["heads"],
        json!([
            "huge @ step 1",
            "bad @ step 2",
            "fifo @ step 4",
            "many @ step 5",
            "wide @ step 6",
            "preds @ step 12"
        ]),
        "{page}"
    );
    assert_eq!(
        page["columns"],
        json!(["id", "label", "score", "extra"]),
        "{page}"
    );
    assert_eq!(
        page["rows"],
        json!([
            ["0", "say \"hi\"", "0.5", ""],
            ["1", "cat", "", "{\"k\":[1,2]}"],
            ["2", "<b>dog</b>", "0.25", "plain"],
        ]),
        "{page}"
    );
    assert_eq!(page["count"], "4 columns, 3 rows", "{page}");
    assert_eq!(page["markup"], 0, "{page}");
    assert_eq!(
        page["many"],
        json!(["1 column, first 1,000 of 1,500 rows", 1000, "999"]),
        "{page}"
    );
    assert_eq!(page["huge"], 1, "{page}");
    assert_eq!(
        page["wide"],
        json!(["5000 columns, the first 200 drawn, 1 row", 200, 200]),
        "{page}"
    );
    let why: Vec<&str> = page["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(why[0].contains("over the 16.0 MiB"), "{page}");
    assert!(why[1].ends_with("is not JSON."), "{page}");
    assert!(why[2].contains("not served"), "{page}");
    assert_clean_page(&browser, None);
    assert_eq!(failed_requests(&browser), json!([]));
    save_screenshot(&browser, "wandb-table.png");
}

/// Issue 32 on runs the real mlflow wrote (`write_runs.py mlflow-nested`):
/// the outer run's page shows its `log_image` images by step on the
/// scrubber (key `samples/grid`, steps 0..3, each frame a signed URL that
/// loads), its plain `plot.png` inline as a lazy thumbnail linking to the
/// whole image, its user, source, shortened commit (whole in the title)
/// and duration, and its nested run under "Child runs"; the inner run's
/// page links back to it as "Parent run". No console error, no CSP
/// violation. Screenshots `mlflow-images-by-step.png`, `mlflow-nested.png`.
#[test]
fn an_mlflow_run_page_shows_images_by_step_and_its_nested_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    common::write("mlflow-nested", &root);
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("facts.json")).unwrap()).unwrap();
    let server = serve_roots(&base.join("data"), &[&root]);
    let outer_dir = facts["outer"]["run_id"].as_str().unwrap();
    let inner_dir = facts["inner"]["run_id"].as_str().unwrap();
    let outer = run_id(&server, "format=mlflow", outer_dir);
    let inner = run_id(&server, "format=mlflow", inner_dir);
    let browser = signed_in_browser(&server, 1280, 1000);

    browser.goto(&format!("{}#/runs/{outer}", server.base));
    let page = wait_for(
        &browser,
        "document.querySelectorAll('#media-by-step .scrub-tile img').length === 1 && document.querySelector('#media-by-step img').complete && document.querySelector('#media-by-step img').naturalWidth > 0 && document.querySelector('#images img') && document.querySelector('#run-children')",
        "{caption: document.querySelector('#media-by-step .scrub-caption').textContent,
          key: document.querySelector('#media-by-step .scrub-tile').dataset.key,
          steps: document.querySelector('#step-scrubber input[type=range]').max,
          srcs: [...document.querySelectorAll('#media-by-step img, #images img')].map(e => e.getAttribute('src')),
          hrefs: [...document.querySelectorAll('#images a')].map(e => e.getAttribute('href')),
          lazy: [...document.querySelectorAll('#images img')].map(e => e.getAttribute('loading')),
          stills: [...document.querySelectorAll('#images figcaption')].map(e => e.textContent),
          origin: document.querySelector('#run-origin').textContent,
          commitTitle: document.querySelector('#run-commit').title,
          children: [...document.querySelectorAll('#run-children a')].map(a => [a.textContent, a.getAttribute('href')]),
          childrenText: document.querySelector('#run-children').textContent}",
    );
    assert!(page.get("timeout").is_none(), "{page}");
    assert_eq!(page["key"], "samples/grid", "{page}");
    // Four steps (0..3), the scrubber at the last one.
    assert_eq!(page["steps"], "3", "{page}");
    let caption = page["caption"].as_str().unwrap();
    assert!(
        caption.starts_with("samples/grid @ step 3 · samples~grid+step+3+"),
        "{caption}"
    );
    assert_signed(&page["srcs"], "MLflow images");
    assert_signed(&page["hrefs"], "MLflow image links");
    assert_eq!(page["stills"], json!(["artifacts/plot.png"]), "{page}");
    assert_eq!(page["lazy"], json!(["lazy"]), "{page}");
    let commit = facts["outer"]["git_commit"].as_str().unwrap();
    assert_eq!(page["commitTitle"], commit, "{page}");
    let origin = page["origin"].as_str().unwrap();
    for part in [
        format!("user {}", facts["outer"]["user"].as_str().unwrap()),
        format!(
            "source {} ({})",
            facts["outer"]["source_name"].as_str().unwrap(),
            facts["outer"]["source_type"].as_str().unwrap()
        ),
        format!("commit {}", &commit[..10]),
        "duration ".to_owned(),
    ] {
        assert!(origin.contains(&part), "{part:?} in {origin:?}");
    }
    assert!(!origin.contains(commit), "shortened: {origin}");
    assert!(
        page["childrenText"]
            .as_str()
            .unwrap()
            .starts_with("Child runs (1)"),
        "{page}"
    );
    assert_eq!(
        page["children"],
        json!([["inner", format!("#/runs/{inner}")]]),
        "{page}"
    );
    // Scrubbing back to step 1 shows step 1's image.
    let scrubbed = browser.run_async(
        "const done = arguments[arguments.length - 1];
         const s = document.querySelector('#step-scrubber input[type=range]');
         s.value = '1'; s.dispatchEvent(new Event('input'));
         const img = document.querySelector('#media-by-step img');
         const finish = () => done({caption: document.querySelector('#media-by-step .scrub-caption').textContent, loaded: img.naturalWidth > 0 || document.querySelector('#media-by-step img').naturalWidth > 0});
         const now = document.querySelector('#media-by-step img');
         if (now.complete) finish(); else now.addEventListener('load', finish);",
    );
    assert!(
        scrubbed["caption"]
            .as_str()
            .unwrap()
            .starts_with("samples/grid @ step 1 · samples~grid+step+1+"),
        "{scrubbed}"
    );
    assert_eq!(scrubbed["loaded"], true, "{scrubbed}");
    // Back at the last step for the screenshot.
    browser.run_async(
        "const done = arguments[arguments.length - 1];
         const s = document.querySelector('#step-scrubber input[type=range]');
         s.value = s.max; s.dispatchEvent(new Event('input'));
         const img = document.querySelector('#media-by-step img');
         if (img.complete) done(true); else img.addEventListener('load', () => done(true));",
    );
    assert_clean_page(&browser, None);
    save_screenshot(&browser, "mlflow-images-by-step.png");

    // The nested run: its parent linked.
    browser.goto(&format!("{}#/runs/{inner}", server.base));
    let child = wait_for(
        &browser,
        "document.querySelector('#run-parent a') && document.getElementById('run-title').textContent === 'inner' && document.querySelector('#run-parent a').textContent === 'outer'",
        "{text: document.querySelector('#run-parent').textContent, href: document.querySelector('#run-parent a').getAttribute('href'), title: document.querySelector('#run-parent a').title, children: !!document.querySelector('#run-children')}",
    );
    assert!(child.get("timeout").is_none(), "{child}");
    assert_eq!(child["text"], "Parent run outer", "{child}");
    assert_eq!(child["title"], format!("mlflow run {outer}"), "{child}");
    assert_eq!(child["href"], format!("#/runs/{outer}"), "{child}");
    assert_eq!(child["children"], false, "{child}");
    assert_clean_page(&browser, None);
    // The parent again, its header with the child listed, for the shot.
    browser.goto(&format!("{}#/runs/{outer}", server.base));
    let back = wait_for(
        &browser,
        "document.querySelector('#run-children a') && document.querySelector('#images img') && document.querySelector('#images img').complete",
        "true",
    );
    assert_eq!(back, json!(true));
    browser.goto(&format!("{}#/runs/{inner}", server.base));
    let again = wait_for(
        &browser,
        "document.querySelector('#run-parent a') && document.getElementById('run-title').textContent === 'inner' && document.querySelector('#run-parent a').textContent === 'outer'",
        "true",
    );
    assert_eq!(again, json!(true));
    save_screenshot(&browser, "mlflow-nested.png");
    assert_clean_page(&browser, None);
}
