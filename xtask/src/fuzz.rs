//! `cargo xtask fuzz [--seconds N] [TARGET…]`: every fuzz target (each a
//! few lines of glue over an oracle in its crate), built once with the
//! nightly toolchain into `target/fuzz/` (one target directory for all, so
//! shared dependencies build once), each run for N seconds (default 60)
//! from its committed seeds (`crates/C/fuzz/seeds/T/`) and the corpus it
//! keeps under `target/fuzz/corpus/T/`. A crash stops the run and names
//! its input under `target/fuzz/artifacts/T/`: copy it to
//! `crates/C/fuzz/regressions/T/` and commit it, and the crate's
//! `committed_*_inputs_hold` test replays it from then on.
//!
//! `.ci/run` calls it with a few seconds each. Without the nightly
//! toolchain it fails, saying how to install it; it never skips.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{root, run};

/// Every target: its crate, its name, and a dictionary (under the crate's
/// `fuzz/`) where one helps the fuzzer find the format's words.
pub const TARGETS: &[(&str, &str, Option<&str>)] = &[
    ("lab-fs", "resolve", None),
    ("lab-fs", "name", None),
    ("lab-fs", "unpack", None),
    ("lab-http", "guard", Some("guard.dict")),
    ("lab-registry", "load", None),
    ("lab-runner", "request", Some("request.dict")),
    ("lab-redact", "redact", None),
    ("lab-stream", "range", None),
    ("lab-formats", "tfrecord", None),
    ("lab-formats", "wandb", None),
    ("lab-formats", "yaml", None),
    ("lab-formats", "lines", None),
    ("lab-formats", "mlflow", None),
    ("lab-formats", "csv", None),
    ("lab-formats", "huggingface", None),
    ("lab-formats", "keras", None),
    ("lab-formats", "sb3", None),
    ("lab-formats", "ultralytics", None),
    ("lab-formats", "raytune", None),
    ("lab-formats", "dvclive", None),
    ("lab-formats", "sacred", None),
    ("lab-formats", "trackio", None),
    ("lab-core", "filter", None),
];

/// A fresh `cargo` (rustup's proxy, so `+nightly` works), without the
/// variables the stable cargo running xtask set.
fn nightly_cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("CARGO_TARGET_DIR")
        .arg("+nightly");
    cmd
}

/// What one run of a target showed.
struct Figures {
    target: String,
    seconds: f64,
    runs: Option<u64>,
    cov: Option<u64>,
    corpus: Option<u64>,
}

/// The value after `key` in a libFuzzer status line (`cov: 123`).
fn after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub fn run_all(args: &[String]) -> anyhow::Result<()> {
    let mut seconds: u64 = 60;
    let mut only: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = rest
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?;
            }
            name if TARGETS.iter().any(|(_, t, _)| *t == name) => only.push(name),
            other => bail!(
                "unknown argument {other:?}: cargo xtask fuzz [--seconds N] [TARGET…], targets: {}",
                TARGETS
                    .iter()
                    .map(|(_, t, _)| *t)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!(
            "the nightly toolchain is missing (the fuzz targets need it for -Zsanitizer and coverage): run `rustup toolchain install nightly`"
        );
    }
    let has_fuzz = nightly_cargo(&root())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let target_dir = root().join("target/fuzz");
    let chosen: Vec<_> = TARGETS
        .iter()
        .filter(|(_, t, _)| only.is_empty() || only.contains(t))
        .collect();
    // Build every crate's targets first, so a build error shows before any
    // fuzzing time is spent.
    let mut crates: Vec<&str> = chosen.iter().map(|(c, _, _)| *c).collect();
    crates.dedup();
    for krate in &crates {
        let started = Instant::now();
        run(nightly_cargo(&root().join("crates").join(krate))
            .args(["fuzz", "build", "--target-dir"])
            .arg(&target_dir))?;
        eprintln!(
            "xtask: built {krate}'s fuzz targets in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut figures = Vec::new();
    for (krate, target, dict) in chosen {
        let dir = root().join("crates").join(krate).join("fuzz");
        let corpus = target_dir.join("corpus").join(target);
        let artifacts = target_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let mut cmd = nightly_cargo(&root().join("crates").join(krate));
        cmd.args(["fuzz", "run", target, "--target-dir"])
            .arg(&target_dir)
            .arg(&corpus)
            .arg(dir.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            // A slow or hungry input is a finding too: bounded time and
            // memory per input.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1");
        if let Some(dict) = dict {
            cmd.arg(format!("-dict={}", dir.join(dict).display()));
        }
        eprintln!("xtask: running {cmd:?}");
        let started = Instant::now();
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let mut last_status = String::new();
        let mut runs = None;
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines() {
                let line = line?;
                if line.contains(" cov: ") {
                    last_status = line.clone();
                } else if let Some(n) = after(&line, "stat::number_of_executed_units:") {
                    runs = Some(n);
                }
                // Keep the log readable: status and new-function lines are many.
                let chatter = line.starts_with('#') || line.starts_with('\t');
                if !chatter || line.contains("DONE") || line.contains("INITED") {
                    eprintln!("{line}");
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!(
                "fuzz target {target} ({krate}) failed with {status}: its input is under {}; copy it to crates/{krate}/fuzz/regressions/{target}/ and commit it as a regression test",
                artifacts.display()
            );
        }
        figures.push(Figures {
            target: (*target).to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            runs,
            cov: after(&last_status, "cov:"),
            corpus: after(&last_status, "corp:"),
        });
    }
    let show = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
    let mut table = String::from(
        "| target | seconds | executions | coverage (edges) | corpus |\n|---|---|---|---|---|\n",
    );
    for f in &figures {
        table.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} |\n",
            f.target,
            f.seconds,
            show(f.runs),
            show(f.cov),
            show(f.corpus)
        ));
    }
    std::fs::write(target_dir.join("summary.md"), &table)?;
    println!("{table}");
    Ok(())
}
