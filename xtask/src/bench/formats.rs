//! `cargo xtask bench formats`: a root of runs of every format, copies of
//! what the real writers made, discovered, read and listed by the release
//! binary; its time and memory.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use super::Server;
use crate::{root, rss_kib};

/// Copies the regular files of `from` into `to`, and with `deep` its
/// subdirectories too.
fn copy_tree(from: &std::path::Path, to: &std::path::Path, deep: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if deep {
                copy_tree(&entry.path(), &to.join(entry.file_name()), deep)?;
            }
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// A root of 1,000 mixed runs — 250 each of TensorBoard and MLflow (copies
/// of runs the real writers made), Lightning and lab — discovered and listed:
/// the time to the listening line, the first list sorted by a metric (it
/// waits for the first walk — discovery and registration — and reads every
/// run), a second one (cached), and the server's RSS; then the same for
/// about 1,000 runs of the eight newer formats.
pub(super) fn measure_formats() -> anyhow::Result<()> {
    let python = crate::writers_venv()?;
    let tmp = std::env::temp_dir().join(format!("lab-bench-formats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let made = tmp.join("made");
    std::fs::create_dir_all(made.join(".home"))?;
    for kind in ["tensorboard", "mlflow"] {
        crate::run(
            Command::new(&python)
                .arg(root().join("fixtures/writers/write_runs.py"))
                .arg(kind)
                .arg(&made)
                .env("MLFLOW_ALLOW_FILE_STORE", "true")
                .env("HOME", made.join(".home"))
                .current_dir(&made)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
    }
    let runs = tmp.join("runs");
    let mlflow_run = std::fs::read_dir(made.join("mlruns"))?
        .flatten()
        .filter(|e| e.file_name() != ".trash" && e.file_name() != "0")
        .flat_map(|exp| {
            std::fs::read_dir(exp.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .find(|r| r.path().join("metrics").is_dir())
        .context("no MLflow run written")?
        .path();
    let tb_run = made.join("tb-ppo-seed1");
    let mut metrics_jsonl = String::new();
    let mut metrics_csv = String::from("epoch,step,loss\n");
    for step in 0..1000 {
        metrics_jsonl.push_str(&format!(
            "{{\"step\": {step}, \"loss\": {}}}\n",
            1.0 / f64::from(step + 1)
        ));
        metrics_csv.push_str(&format!("0,{step},{}\n", 1.0 / f64::from(step + 1)));
    }
    for i in 0..250 {
        // The event file only (not its add_hparams subdirectory, which is folded into it).
        copy_tree(&tb_run, &runs.join(format!("tb/run-{i}")), false)?;
        copy_tree(&mlflow_run, &runs.join(format!("mlruns/1/{i:032x}")), true)?;
        lab_test_support::fixture::Tree::new(&runs)
            .file(
                &format!("lightning_logs/version_{i}/metrics.csv"),
                &metrics_csv,
            )
            .file(
                &format!("lightning_logs/version_{i}/hparams.yaml"),
                format!("lr: {}\n", f64::from(i) / 1000.0),
            )
            .file(
                &format!("lab/run-{i}/run.toml"),
                format!("name = \"run {i}\"\n"),
            )
            .file(&format!("lab/run-{i}/metrics.jsonl"), &metrics_jsonl);
    }
    let figures = serve_and_list(&tmp, &runs)?;
    println!();
    println!(
        "formats: a root of {} runs (250 TensorBoard, 250 MLflow file-store, 250 Lightning and 250 lab runs with 1000-point series; the TensorBoard and MLflow runs are copies of what the real writers made): {figures}",
        figures.total
    );
    if figures.total != 1000 {
        bail!("expected 1000 runs, found {}", figures.total);
    }
    let new = measure_new_formats(&python, &tmp)?;
    println!();
    println!("{new}");
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// What one root of runs costs the release binary.
struct Figures {
    total: u64,
    /// Spawn to the listening line.
    listening_s: f64,
    /// The first list sorted by a metric: it waits for the first walk
    /// (discovery and registration) and reads every run.
    first_s: f64,
    second_s: f64,
    plain_s: f64,
    rss_idle_kib: u64,
    rss_read_kib: u64,
    /// Runs by format, as listed.
    by_format: std::collections::BTreeMap<String, u64>,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "listening in {:.2} s; the first list sorted by a metric (after the first walk: discovery, registration, every run read) {:.2} s, \
             again (cached) {:.3} s, a plain page of 100 {:.3} s; RSS {} KiB after start, {} KiB with every run read",
            self.listening_s,
            self.first_s,
            self.second_s,
            self.plain_s,
            self.rss_idle_kib,
            self.rss_read_kib
        )
    }
}

/// Starts the release binary on `runs` (its data dir in `tmp`), lists,
/// and stops it.
fn serve_and_list(tmp: &std::path::Path, runs: &std::path::Path) -> anyhow::Result<Figures> {
    let data = tmp.join(format!(
        "data-{}",
        runs.file_name().and_then(|n| n.to_str()).unwrap_or("runs")
    ));
    let started = Instant::now();
    let (child, listening) = super::launch(&root().join("target/release/lab"), &data, runs)?;
    let listening_s = started.elapsed().as_secs_f64();
    let server = Server {
        child,
        port: listening.port,
    };
    let rss_idle_kib = rss_kib(server.child.id());
    let list = |path: &str| -> anyhow::Result<(f64, serde_json::Value)> {
        let t = Instant::now();
        let reply = crate::http::Request::new("GET", path).send(server.port)?;
        Ok((t.elapsed().as_secs_f64(), reply.json()))
    };
    let (first_s, page) = list("/api/runs?sort=metrics.loss&limit=500&fields=params.lr")?;
    let total = page["total"].as_u64().unwrap_or(0);
    let rss_read_kib = rss_kib(server.child.id());
    let (second_s, _) = list("/api/runs?sort=metrics.loss&limit=500&fields=params.lr")?;
    let (plain_s, _) = list("/api/runs?limit=100")?;
    let mut by_format = std::collections::BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = list(&format!("/api/runs?limit=500&cursor={cursor}"))?;
        for run in page["runs"].as_array().into_iter().flatten() {
            let format = run["format"].as_str().unwrap_or("?").to_owned();
            *by_format.entry(format).or_insert(0) += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_owned(),
            _ => break,
        }
    }
    drop(server);
    Ok(Figures {
        total,
        listening_s,
        first_s,
        second_s,
        plain_s,
        rss_idle_kib,
        rss_read_kib,
        by_format,
    })
}

/// The writers of the formats issue 31 added, as `write_runs.py` kinds.
const NEW_FORMATS: &[&str] = &[
    "huggingface",
    "keras",
    "sb3",
    "ultralytics",
    "raytune",
    "dvclive",
    "sacred",
    "trackio",
];

/// About 1,000 runs of the eight newer formats, an eighth each: what each
/// real writer (or layout writer) made once, copied as often as it takes.
fn measure_new_formats(python: &std::path::Path, tmp: &std::path::Path) -> anyhow::Result<String> {
    let made = tmp.join("made-new");
    let mut per_kind = Vec::new();
    for kind in NEW_FORMATS {
        let dir = made.join(kind);
        std::fs::create_dir_all(dir.join(".home"))?;
        crate::run(
            Command::new(python)
                .arg(root().join("fixtures/writers/write_runs.py"))
                .arg(kind)
                .arg(&dir)
                .env("HOME", dir.join(".home"))
                .env("TRACKIO_DIR", dir.join("trackio"))
                .env("RAY_USAGE_STATS_ENABLED", "0")
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let _ = std::fs::remove_dir_all(dir.join(".home"));
        // How many runs one copy holds, as the Lab reads it.
        let one = serve_and_list(tmp, &dir)?;
        let runs = one.by_format.get(*kind).copied().unwrap_or(0);
        if runs == 0 {
            bail!("the {kind} writer made no {kind} run: {:?}", one.by_format);
        }
        per_kind.push((*kind, dir, runs));
    }
    let root_dir = tmp.join("new");
    for (kind, dir, runs) in &per_kind {
        let copies = 125u64.div_ceil(*runs);
        for i in 0..copies {
            copy_tree(dir, &root_dir.join(format!("{kind}-{i}")), true)?;
        }
    }
    let figures = serve_and_list(tmp, &root_dir)?;
    let counts: Vec<String> = figures
        .by_format
        .iter()
        .map(|(f, n)| format!("{n} {f}"))
        .collect();
    Ok(format!(
        "new formats: a root of {} runs ({}; copies of what each writer made once): {figures}",
        figures.total,
        counts.join(", ")
    ))
}
