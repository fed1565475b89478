//! `cargo xtask bench charts`: a 20-run overlay of 1,000,000-point series
//! in headless Chromium — the time from opening the comparison of the 20
//! runs to their 20 lines drawn in its `loss` chart, and the time from a
//! drag-to-zoom to the zoomed lines drawn.
//!
//! Each run is a `lab`-format directory whose `metrics.jsonl` holds
//! 1,000,000 steps of one metric, `loss` (about 33 MB each, 660 MB in
//! all), written once and read once so the page cache holds them. The
//! server is started on them and every run summarised (each series read
//! whole) before the browser signs in; then the comparison is opened three
//! times from the runs page (the medians shown), each time with a zoom
//! after its lines are drawn. Times are the page's own (`performance.now`
//! around the hash change or the pointer events, to a `MutationObserver`
//! seeing the lines). Twice: with the server's default reader budget
//! (`[formats] cached_points`, 8,000,000 points: a third of these, so
//! runs are read again as the charts ask for them) and with one that
//! holds every point.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use lab_test_support::browser::Killed;

use super::launch;
use crate::root;

const RUNS: usize = 20;
/// Steps of each run's series (`LAB_BENCH_CHART_STEPS` to try the bench
/// out on less).
fn steps() -> u64 {
    std::env::var("LAB_BENCH_CHART_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// The table: the overlay and the zoom, medians of three.
pub(super) fn run() -> anyhow::Result<String> {
    crate::ensure_tools(&[
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ])?;
    let tmp = std::env::temp_dir().join(format!("lab-bench-charts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = measure(&tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn measure(tmp: &Path) -> anyhow::Result<String> {
    let runs = tmp.join("runs");
    let written = Instant::now();
    let mut bytes = 0u64;
    for r in 0..RUNS {
        let dir = runs.join(format!("seed-{r:02}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("run.toml"),
            format!("name = \"seed {r}\"\nexperiment = \"overlay\"\n"),
        )?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("metrics.jsonl"))?);
        for step in 0..steps() {
            let loss = 1.0 / (1.0 + step as f64 * 1e-4) + (r as f64) * 0.01;
            writeln!(f, "{{\"step\": {step}, \"loss\": {loss:.6}}}")?;
        }
        f.flush()?;
        bytes += std::fs::metadata(dir.join("metrics.jsonl"))?.len();
    }
    eprintln!(
        "wrote {RUNS} runs of {} steps ({:.0} MB) in {:.1} s",
        steps(),
        bytes as f64 / 1e6,
        written.elapsed().as_secs_f64()
    );
    let mut table = String::from(
        "| `[formats] cached_points` | opening the comparison of 20 runs to their 20 `loss` lines drawn (median of 3) | each | a drag-to-zoom over the middle third to the zoomed lines drawn (median of 3) | each | server RSS after |\n|---|---|---|---|---|---|\n",
    );
    for (label, cached) in [
        ("24,000,000 (every point)", Some(24_000_000u64)),
        ("8,000,000 (the default: a third of the points)", None),
    ] {
        // A browser session that fails (chromedriver gives up on a page
        // that is busy for long) is a row that says so, not a lost table.
        let measured =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| overlay(tmp, &runs, cached)));
        let (mut overlays, mut zooms, rss) = match measured {
            Ok(measured) => measured?,
            Err(_) => {
                table.push_str(&format!(
                    "| {label} | the browser session failed (see the log) | | | | |\n"
                ));
                continue;
            }
        };
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (overlay, zoom) = (median(&mut overlays), median(&mut zooms));
        table.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {rss:.0} MiB |\n",
            list(&[overlay]),
            list(&overlays),
            list(&[zoom]),
            list(&zooms),
        ));
    }
    table.push_str(&format!(
        "\n{RUNS} runs of {} points each. Goals: the overlay < 500 ms, a zoom < 200 ms.\n",
        steps()
    ));
    Ok(table)
}

/// Opens the comparison three times (and zooms each time) on a server
/// started over `runs` with `cached_points` (else the default): the
/// milliseconds of each, and the server's RSS after.
fn overlay(
    tmp: &Path,
    runs: &Path,
    cached_points: Option<u64>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, f64)> {
    use std::os::unix::fs::DirBuilderExt;
    let data = tmp.join(format!("data-{}", cached_points.unwrap_or(0)));
    std::fs::DirBuilder::new().mode(0o700).create(&data)?;
    if let Some(points) = cached_points {
        std::fs::write(
            data.join("lab.toml"),
            format!("[formats]\ncached_points = {points}\n"),
        )?;
    }
    let binary = root().join("target/release/lab");
    let (child, listening) = launch(&binary, &data, runs)?;
    let child = Killed(child);
    let pid = child.0.id();
    // Every run summarised (its series read whole) before the browser.
    let deadline = Instant::now() + Duration::from_secs(300);
    let ids: Vec<String> = loop {
        let listed = crate::http::Request::new("GET", "/api/runs?sort=name&limit=100")
            .send(listening.port)?
            .json();
        let ids: Vec<String> = listed["runs"]
            .as_array()
            .map(|runs| {
                runs.iter()
                    .filter(|r| r["available"] == true)
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() == RUNS {
            break ids;
        }
        if Instant::now() > deadline {
            bail!("only {} of {RUNS} runs were listed within 300 s", ids.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let browser = lab_test_support::browser::Browser::start(Command::new("chromedriver"));
    browser.goto(&listening.link);
    let signed_in = lab_test_support::browser::wait_for_within(
        &browser,
        60,
        "document.querySelector('meta[name=lab-token]') && document.querySelector('a[href^=\"#/runs/\"]')",
        "true",
    );
    if signed_in != serde_json::json!(true) {
        bail!("the browser did not sign in: {signed_in}");
    }
    // Ids are URL-safe (letters, digits, `-`, `_`, `.`).
    let compare = format!("#/compare/{}", ids.join(","));
    let mut overlays = Vec::new();
    let mut zooms = Vec::new();
    for _ in 0..3 {
        // From the runs page, so each opening draws anew.
        browser.run_async(
            "const done = arguments[arguments.length - 1];
             location.hash = '#/runs'; setTimeout(() => done(true), 500);",
        );
        let drawn = browser.run_async(&format!(
            "const done = arguments[arguments.length - 1];
             const asked = performance.now();
             const lines = () => {{
               const panel = document.querySelector('#compare-metrics .chart-svg');
               return panel ? panel.querySelectorAll('path.series').length : 0;
             }};
             const observer = new MutationObserver(() => {{
               if (lines() >= {RUNS}) {{ observer.disconnect(); done(performance.now() - asked); }}
             }});
             observer.observe(document.body, {{ childList: true, subtree: true, attributes: true }});
             setTimeout(() => {{ observer.disconnect(); done('only ' + lines() + ' lines'); }}, 30000);
             location.hash = {compare:?};"
        ));
        // Not drawn within 30 s: recorded as such (no zoom then).
        let Some(ms) = drawn.as_f64() else {
            eprintln!("the overlay was not drawn within 30 s: {drawn}");
            overlays.push(f64::INFINITY);
            zooms.push(f64::INFINITY);
            continue;
        };
        overlays.push(ms);
        // A drag over the middle third of the plot: the chart asks for
        // that range again and draws it.
        let zoomed = browser.run_async(
            "const done = arguments[arguments.length - 1];
             const wrap = document.querySelector('#compare-metrics .chart-svg').closest('.chart');
             const svg = document.querySelector('#compare-metrics .chart-svg');
             const before = JSON.stringify((wrap.chart || {}).x);
             const box = svg.getBoundingClientRect();
             const at = (f) => box.left + box.width * f;
             const y = box.top + box.height / 2;
             const fire = (type, x) => svg.dispatchEvent(new PointerEvent(type,
               { bubbles: true, clientX: x, clientY: y, pointerId: 1, isPrimary: true }));
             const observer = new MutationObserver(() => {
               const now = document.querySelector('#compare-metrics .chart-svg');
               const w = now && now.closest('.chart');
               if (w && w.chart && JSON.stringify(w.chart.x) !== before &&
                   now.querySelectorAll('path.series').length >= 20) {
                 observer.disconnect(); done(performance.now() - asked);
               }
             });
             observer.observe(document.body, { childList: true, subtree: true, attributes: true });
             setTimeout(() => { observer.disconnect(); done('not zoomed: ' + before); }, 30000);
             fire('pointerdown', at(0.35));
             fire('pointermove', at(0.5));
             const asked = performance.now();
             fire('pointerup', at(0.65));",
        );
        if zoomed.as_f64().is_none() {
            eprintln!("the zoom was not drawn within 30 s: {zoomed}");
        }
        zooms.push(zoomed.as_f64().unwrap_or(f64::INFINITY));
    }
    let rss = crate::rss_kib(pid) as f64 / 1024.0;
    Ok((overlays, zooms, rss))
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|ms| {
            if ms.is_finite() {
                format!("{ms:.0}")
            } else {
                "> 30,000".to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
        + " ms"
}
