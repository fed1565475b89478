//! `cargo xtask bench scale [RUNS]`: the registry and the list at 10,000
//! and RUNS (100,000 by default) `lab`-format runs, and a run whose
//! `metrics.jsonl` holds 1,000,000 steps of 4 metrics.
//!
//! Each run is a directory with a `run.toml` (name, experiment — ten of
//! them —, created, tags) and a `params.json` and a 3-line `metrics.jsonl`,
//! made once and read once so
//! the page cache is warm. For each size: start-up (spawn to the listening
//! line: discovery and registration of every run), the first list that
//! needs every run's summary, the same lists warm, a plain page,
//! `lab import` of one more run while the server runs, and a restart with
//! nothing new. Then the history: the chart request of a 1,000,000-step
//! series (bytes, first and warm), and following it while it grows
//! (bytes the server read for the update, from `/proc/PID/io`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use lab_test_support::browser::Killed;

use super::launch;
use crate::root;

fn lab() -> std::path::PathBuf {
    root().join("target/release/lab")
}

/// Writes `count` runs named `run-NNNNNN` under `runs`.
fn make_runs(runs: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(runs)?;
    for i in 0..count {
        let dir = runs.join(format!("run-{i:06}"));
        std::fs::create_dir(&dir)?;
        std::fs::write(
            dir.join("run.toml"),
            format!(
                "name = \"sweep {i}\"\nexperiment = \"sweep-g{}\"\ncreated = \"2026-{:02}-{:02}T{:02}:00:00Z\"\ntags = [\"sweep\", \"g{}\"]\n",
                i % 10,
                1 + i % 12,
                1 + i % 28,
                i % 24,
                i % 10
            ),
        )?;
        std::fs::write(
            dir.join("params.json"),
            format!("{{\"lr\": {}, \"seed\": {i}}}\n", (i % 97) as f64 * 1e-4),
        )?;
        std::fs::write(
            dir.join("metrics.jsonl"),
            format!(
                "{{\"step\": 0, \"loss\": {}}}\n{{\"step\": 1, \"loss\": {}}}\n{{\"step\": 2, \"loss\": {}}}\n",
                1.0 + (i % 13) as f64,
                0.5 + (i % 7) as f64,
                0.25 + (i % 5) as f64
            ),
        )?;
    }
    Ok(())
}

struct Server {
    child: Killed,
    port: u16,
    link: String,
    started_s: f64,
}

fn start(data: &Path, runs: &Path) -> anyhow::Result<Server> {
    let started = Instant::now();
    let (child, listening) = launch(&lab(), data, runs)?;
    let started_s = started.elapsed().as_secs_f64();
    Ok(Server {
        child: Killed(child),
        port: listening.port,
        link: listening.link,
        started_s,
    })
}

/// (seconds, body bytes) of one GET that must answer 200.
fn timed(port: u16, path: &str) -> anyhow::Result<(f64, usize)> {
    let at = Instant::now();
    let response = crate::http::Request::new("GET", path).send(port)?;
    let seconds = at.elapsed().as_secs_f64();
    if response.status != 200 {
        bail!("{path} answered {}: {}", response.status, response.text());
    }
    Ok((seconds, response.body.len()))
}

/// Median of 5 (after one that is thrown away), milliseconds.
fn warm_ms(port: u16, path: &str) -> anyhow::Result<f64> {
    timed(port, path)?;
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(timed(port, path)?.0 * 1e3);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[2])
}

fn rss_mib(pid: u32) -> f64 {
    crate::rss_kib(pid) as f64 / 1024.0
}

/// Bytes `pid` has read through read(2) and friends so far.
fn rchar(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("rchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

pub fn run(big: usize) -> anyhow::Result<String> {
    let tmp = std::env::temp_dir().join(format!("lab-bench-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = bench(&tmp, big);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench(tmp: &Path, big: usize) -> anyhow::Result<String> {
    let mut table = String::from(
        "| runs | start-up | restart | first sorted list (every summary) | page of 100 | `?q=` | `?sort=name` | `?sort=created` | `?sort=params.lr` | `?filter=` | `/api/experiments` | `lab import` of one more | RSS after start / after the lists |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, count) in [10_000usize.min(big), big].into_iter().enumerate() {
        let runs = tmp.join(format!("runs-{i}"));
        let data = tmp.join(format!("data-{i}"));
        eprintln!("making {count} runs…");
        make_runs(&runs, count)?;
        let server = start(&data, &runs)?;
        let started_s = server.started_s;
        let pid = server.child.0.id();
        let port = server.port;
        let rss_start = rss_mib(pid);
        let (first_s, _) = timed(port, "/api/runs?sort=name&limit=100")?;
        let page = warm_ms(port, "/api/runs?limit=100")?;
        let q = warm_ms(port, "/api/runs?q=sweep%20123&limit=100")?;
        let by_name = warm_ms(port, "/api/runs?sort=name&limit=100")?;
        let by_created = warm_ms(port, "/api/runs?sort=created&order=desc&limit=100")?;
        let by_param = warm_ms(port, "/api/runs?sort=params.lr&limit=100")?;
        // `params.lr > 0.005 and metrics.loss < 1`: about a third of them.
        let filtered = warm_ms(
            port,
            "/api/runs?filter=params.lr%20%3E%200.005%20and%20metrics.loss%20%3C%201&limit=100",
        )?;
        let experiments = warm_ms(port, "/api/experiments")?;
        let rss_lists = rss_mib(pid);
        // One more run, imported by the CLI while the server runs.
        let extra = runs.join("extra");
        std::fs::create_dir(&extra)?;
        std::fs::write(extra.join("run.toml"), "name = \"extra\"\n")?;
        let at = Instant::now();
        let status = Command::new(lab())
            .arg("import")
            .arg(&extra)
            .arg("--data-dir")
            .arg(&data)
            .arg("--root")
            .arg(&runs)
            .stdout(Stdio::null())
            .status()?;
        let import_ms = at.elapsed().as_secs_f64() * 1e3;
        if !status.success() {
            bail!("lab import failed");
        }
        drop(server);
        let again = start(&data, &runs)?;
        let restart_s = again.started_s;
        let listed = crate::http::Request::new("GET", "/api/runs?limit=1")
            .send(again.port)?
            .json();
        if listed["total"].as_u64() != Some(count as u64 + 1) {
            bail!(
                "after the restart the list holds {} runs, not {}",
                listed["total"],
                count + 1
            );
        }
        drop(again);
        table.push_str(&format!(
            "| {count} | {started_s:.2} s | {restart_s:.2} s | {first_s:.2} s | {page:.1} ms | {q:.1} ms | {by_name:.1} ms | {by_created:.1} ms | {by_param:.1} ms | {filtered:.1} ms | {experiments:.1} ms | {import_ms:.0} ms | {rss_start:.1} MiB / {rss_lists:.1} MiB |\n"
        ));
        let _ = std::fs::remove_dir_all(&runs);
        let _ = std::fs::remove_dir_all(&data);
    }
    table.push('\n');
    table.push_str(&history(tmp)?);
    Ok(table)
}

/// The 1,000,000-step series: the chart request and following growth.
fn history(tmp: &Path) -> anyhow::Result<String> {
    let runs = tmp.join("runs-history");
    let run = runs.join("long");
    std::fs::create_dir_all(&run)?;
    std::fs::write(run.join("run.toml"), "name = \"long\"\n")?;
    let line = |step: u64| {
        format!(
            "{{\"step\": {step}, \"loss\": {:.6}, \"acc\": {:.6}, \"lr\": 0.0003, \"grad_norm\": {:.4}}}\n",
            1.0 / (1.0 + step as f64 * 1e-4),
            1.0 - 1.0 / (1.0 + step as f64 * 1e-5),
            (step % 1000) as f64 * 1e-3
        )
    };
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(run.join("metrics.jsonl"))?);
        for step in 0..1_000_000u64 {
            f.write_all(line(step).as_bytes())?;
        }
        f.flush()?;
    }
    let file_len = std::fs::metadata(run.join("metrics.jsonl"))?.len();
    // The first chart in headless Chromium, on a server just started.
    crate::ensure_tools(&[
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ])?;
    let first_chart_ms = {
        let server = start(&tmp.join("data-browser"), &runs)?;
        first_chart(&server)?
    };
    let server = start(&tmp.join("data-history"), &runs)?;
    let pid = server.child.0.id();
    let port = server.port;
    let listed = crate::http::Request::new("GET", "/api/runs")
        .send(port)?
        .json();
    let id = listed["runs"][0]["id"]
        .as_str()
        .context("no run")?
        .to_owned();
    let chart = format!("/api/runs/{id}/metrics/loss");
    let (first_s, bytes) = timed(port, &chart)?;
    let warm = warm_ms(port, &chart)?;
    // Following: 1,000 more steps appended, then the chart asked again.
    std::thread::sleep(Duration::from_millis(1100));
    let appended: String = (1_000_000..1_001_000u64).map(line).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("metrics.jsonl"))?
        .write_all(appended.as_bytes())?;
    let before = rchar(pid);
    let (follow_s, _) = timed(port, &chart)?;
    let read = rchar(pid) - before;
    let rss = rss_mib(pid);
    Ok(format!(
        "A run with a {:.0} MB `metrics.jsonl` (1,000,000 steps, 4 metrics): the chart request \
         (`/api/runs/ID/metrics/loss`, 1,000 buckets) answers {bytes} bytes, {:.0} ms the first \
         time after start (the series was read when the run was summarised at start), {warm:.1} ms warm; after 1,000 more steps were appended \
         ({} bytes), the next chart request took {:.1} ms and the server read {read} bytes for it; \
         server RSS {rss:.1} MiB. In headless Chromium, on a server started just before, the run \
         page drew its first chart {first_chart_ms:.0} ms after it was asked for (the browser \
         already signed in).\n",
        file_len as f64 / 1e6,
        first_s * 1e3,
        appended.len(),
        follow_s * 1e3,
    ))
}

/// Signs a headless Chromium in, opens the run page and returns the
/// milliseconds from asking for it to the first chart line drawn.
fn first_chart(server: &Server) -> anyhow::Result<f64> {
    use lab_test_support::browser::{Browser, wait_for_within};
    let listed = crate::http::Request::new("GET", "/api/runs")
        .send(server.port)?
        .json();
    let id = listed["runs"][0]["id"]
        .as_str()
        .context("no run")?
        .to_owned();
    let browser = Browser::start(Command::new("chromedriver"));
    browser.goto(&server.link);
    // The list waits for the run's first summary, which reads its whole
    // history: up to a minute on a busy machine.
    let signed_in = wait_for_within(
        &browser,
        60,
        "document.querySelector('meta[name=lab-token]') && document.querySelector('a[href^=\"#/runs/\"]')",
        "true",
    );
    if signed_in != serde_json::json!(true) {
        bail!("the browser did not sign in: {signed_in}");
    }
    let drawn = browser.run_async(&format!(
        "const done = arguments[arguments.length - 1];
         const asked = performance.now();
         const seen = () => document.querySelector('.chart-svg path.series');
         const observer = new MutationObserver(() => {{
           if (seen()) {{ observer.disconnect(); done(performance.now() - asked); }}
         }});
         observer.observe(document.body, {{ childList: true, subtree: true }});
         setTimeout(() => {{ observer.disconnect(); done(null); }}, 20000);
         location.hash = '#/runs/{id}';"
    ));
    drawn
        .as_f64()
        .with_context(|| format!("no chart was drawn within 20 s: {drawn}"))
}
