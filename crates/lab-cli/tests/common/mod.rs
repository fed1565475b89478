//! What the binary's integration tests share: the binary, and (from
//! lab-test-support) starting `lab serve` and reading its address and key.

#![allow(dead_code)] // each test binary uses part of it

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[allow(unused_imports)] // not every test binary names the type
pub use lab_test_support::lab::{Killed, Served, serve};

/// The binary under test.
pub const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// Spawns `command` (a `lab … serve --bind unix:…` command) and returns the
/// child, killed when dropped, once it printed its listening line (and
/// the login link).
pub fn serve_socket(mut command: Command) -> Killed {
    let mut child = Killed(command.stdout(Stdio::piped()).spawn().unwrap());
    let listening =
        lab_test_support::lab::read_listening(&mut BufReader::new(child.0.stdout.take().unwrap()))
            .unwrap();
    assert!(listening.base.starts_with("unix:"), "{listening:?}");
    child
}

/// A scratch directory outside `/tmp` and `/dev/shm` (which a job sees as
/// its own private tmpfs), wherever the checkout and its target dir are: so
/// what a job is refused there is refused on the real path. `/var/tmp`.
pub fn outside_tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lab-test-")
        .tempdir_in("/var/tmp")
        .expect("a scratch directory in /var/tmp")
}

/// The writers' venv python (`cargo xtask test` makes it).
pub fn python() -> PathBuf {
    let python = std::env::var_os("LAB_FORMATS_PYTHON").unwrap_or_else(|| {
        panic!(
            "LAB_FORMATS_PYTHON is not set: run the tests with `cargo xtask test`, which makes a venv \
             with every pinned writer (xtask's FORMAT_WRITERS) under target/formats-venv"
        )
    });
    PathBuf::from(python)
}

/// The real-writer script.
pub fn writer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/writers/write_runs.py")
}

/// Runs the real writer `kind` into `root`.
pub fn write(kind: &str, root: &Path) {
    #[allow(clippy::disallowed_methods)] // the test drives the real writers
    let out = Command::new(python())
        .arg(writer())
        .arg(kind)
        .arg(root)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env("HOME", root.join(".home"))
        .current_dir(root)
        .output()
        .expect("starting python");
    assert!(
        out.status.success(),
        "{kind} writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lightning's CSVLogger layout, as `lightning.pytorch.loggers.CSVLogger`
/// writes it: a row per log call, empty cells for metrics not logged then.
pub fn write_lightning(root: &Path) {
    let mut csv = String::from("epoch,step,train_loss,val_loss\n");
    for step in 0..20 {
        csv.push_str(&format!(
            "{},{step},{},\n",
            step / 10,
            1.0 / f64::from(step + 1)
        ));
        if step % 10 == 9 {
            csv.push_str(&format!(
                "{},{step},,{}\n",
                step / 10,
                f64::from(step) / 100.0
            ));
        }
    }
    lab_test_support::fixture::Tree::new(root.join("lightning_logs/version_0"))
        .file(
            "hparams.yaml",
            "lr: 0.02\nhidden:\n- 64\n- 32\noptimizer: adam\n",
        )
        .file("metrics.csv", csv);
}

/// A scratch data dir and project outside `/tmp` (jobs get a private
/// one), and a config whose `[runner]` table is `runner` plus
/// `read_paths = ["project"]`: where `lab run` jobs are run from.
pub struct JobEnv {
    _tmp: tempfile::TempDir,
    /// The scratch directory (canonical): `data/`, `lab.toml`, `project/`.
    pub base: PathBuf,
    /// The jobs' working directory.
    pub project: PathBuf,
}

impl JobEnv {
    /// The scratch directory, with `runner` in the config's `[runner]`.
    pub fn new(runner: &str) -> Self {
        let tmp = outside_tmp();
        let base = tmp.path().canonicalize().unwrap();
        let project = base.join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            base.join("lab.toml"),
            format!("[runner]\nread_paths = [\"project\"]\n{runner}\n"),
        )
        .unwrap();
        Self {
            _tmp: tmp,
            base,
            project,
        }
    }

    /// `lab --data-dir BASE/data --config BASE/lab.toml`, in the project.
    pub fn lab(&self) -> Command {
        #[allow(clippy::disallowed_methods)] // the tests start the binary under test
        let mut command = Command::new(LAB);
        command
            .arg("--data-dir")
            .arg(self.base.join("data"))
            .arg("--config")
            .arg(self.base.join("lab.toml"))
            .current_dir(&self.project)
            .stdin(Stdio::null());
        command
    }
}
