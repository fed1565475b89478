//! `cargo xtask bench formats`: a root of runs of every format, copies of
//! what the real writers made, discovered, read and listed by the release
//! binary; its time and memory.

use std::io::BufReader;
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
/// the time to start (discovery and registration happen before the
/// listening line), the first list sorted by a metric (every run read), a
/// second one (cached), and the server's RSS.
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
    let started = Instant::now();
    let mut child = Command::new(root().join("target/release/lab"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.join("data"))
        .arg("--root")
        .arg(&runs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting lab")?;
    let listening = lab_test_support::lab::read_listening(&mut BufReader::new(
        child.stdout.take().context("no stdout")?,
    ))
    .map_err(|e| anyhow::anyhow!(e))?;
    let discovered = started.elapsed();
    let server = Server {
        child,
        port: listening.port,
    };
    crate::http::remember(
        server.port,
        "Authorization",
        &format!("Bearer {}", listening.key),
    );
    let rss_idle = rss_kib(server.child.id());
    let list = |path: &str| -> anyhow::Result<(f64, serde_json::Value)> {
        let t = Instant::now();
        let reply = crate::http::Request::new("GET", path).send(server.port)?;
        Ok((t.elapsed().as_secs_f64(), reply.json()))
    };
    let (first, page) = list("/api/runs?sort=metrics.loss&limit=500&fields=params.lr")?;
    let total = page["total"].as_u64().unwrap_or(0);
    let rss_read = rss_kib(server.child.id());
    let (second, _) = list("/api/runs?sort=metrics.loss&limit=500&fields=params.lr")?;
    let (plain, _) = list("/api/runs?limit=100")?;
    drop(server);
    let _ = std::fs::remove_dir_all(&tmp);
    println!();
    println!(
        "formats: a root of {total} runs (250 TensorBoard, 250 MLflow file-store, 250 Lightning and 250 lab runs with 1000-point series; the TensorBoard and MLflow runs are copies of what the real writers made): \
         discovered and registered in {:.2} s (start to listening line); first list sorted by a metric (every run read) {:.2} s, \
         again (cached) {:.3} s, a plain page of 100 {:.3} s; RSS {} KiB after start, {} KiB with every run read",
        discovered.as_secs_f64(),
        first,
        second,
        plain,
        rss_idle,
        rss_read
    );
    if total != 1000 {
        bail!("expected 1000 runs, found {total}");
    }
    Ok(())
}
