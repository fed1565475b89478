//! The node's side of a Slurm job: `lab __slurm-helper SCRIPT SPEC`, the
//! one thing the batch script runs. It trusts nothing it was handed
//! without checking: the spec must be a regular 0600 file of this user,
//! named `spec.json`, alone in the run's `slurm/` directory (0700, this
//! user's, no link on the way), beside a `batch.sh` identical to the
//! script Slurm ran, and the job must not have run before. Then it runs
//! the job as a local Lab would — [`Runner::run_steps_limited`]: every
//! sandbox layer (failing closed), the job's cgroup limits, the capped and
//! redacted `stdout.log` and `stderr.log`, `provenance.json` — and writes
//! `result.json` for the Lab. Its own diagnostics go to stderr, which
//! Slurm writes to `slurm-ID.out`.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{NodeResult, NodeSettings, RESULT_FILE, SCRIPT_FILE, SLURM_DIR, SPEC_FILE};
use crate::backend::JobRun;
use crate::plan::StepPlan;
use crate::record::ExitRecord;
use crate::runner::{BackendConfig, Runner, RunnerConfig};

/// The spec's format version.
pub const SPEC_VERSION: u32 = 1;

/// The batch script: one line that runs the helper (Slurm passes the
/// script's own path and the spec's as arguments). It holds no value from
/// the job.
pub fn script(lab: &str) -> String {
    format!(
        "#!{lab} __slurm-helper\n\
         # Written by the Lab: Slurm runs this file, which runs only the Lab's\n\
         # sandbox helper; the job is the typed spec named after it.\n"
    )
}

/// Everything the helper needs, planned and checked by the Lab: never a
/// variable's value (those travel through Slurm's `--export`, by name).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    version: u32,
    run_dir: PathBuf,
    steps: Vec<StepPlan>,
    env_names: Vec<String>,
    cwd: Option<PathBuf>,
    timeout_secs: u64,
    memory_max: Option<u64>,
    cpu_max: Option<f64>,
    pids_max: Option<u64>,
    path: String,
    read_paths: Vec<PathBuf>,
    devices: Vec<String>,
    log_max_bytes: u64,
    allow_network: bool,
    limits: crate::protocol::Limits,
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

impl NodeSpec {
    /// The spec of `job`: its cgroup limits on the node are `[runner]`'s
    /// (`memory_max`, `pids_max`, `cpu_max`) with the job's own `mem_mb`
    /// and `cpus` in their place (already checked to be at most them), so
    /// nothing configured is dropped on the way to the node.
    pub(super) fn new(job: &JobRun<'_>, node: &NodeSettings) -> Result<Self, crate::error::Error> {
        let mut wanted = node.cgroup;
        if let Some(mem) = job.resources.mem_mb {
            wanted.memory_max = Some(mem.checked_mul(1 << 20).ok_or_else(|| {
                crate::error::Error::Resources(format!("mem_mb {mem} is more memory than exists"))
            })?);
        }
        if let Some(cpus) = job.resources.cpus {
            wanted.cpu_max = Some(f64::from(cpus));
        }
        wanted.validate().map_err(crate::error::Error::Resources)?;
        Ok(NodeSpec {
            version: SPEC_VERSION,
            run_dir: job.run_dir.to_path_buf(),
            steps: job.steps.to_vec(),
            env_names: job.passed.iter().map(|(k, _)| k.clone()).collect(),
            cwd: job.cwd.map(Path::to_path_buf),
            timeout_secs: job.timeout.as_secs(),
            memory_max: wanted.memory_max,
            cpu_max: wanted.cpu_max,
            pids_max: wanted.pids_max,
            path: node.path.clone(),
            read_paths: node.read_paths.clone(),
            devices: node.devices.clone(),
            log_max_bytes: node.log_max_bytes,
            allow_network: node.allow_network,
            limits: node.limits.clone(),
            data_dir: node.data_dir.clone(),
            config_file: node.config_file.clone(),
            key_file: node.key_file.clone(),
        })
    }
}

/// One line of the helper's own diagnostics, to its stderr (Slurm's
/// `--output` file in the run's `slurm/`).
fn say(what: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "lab __slurm-helper: {what}");
}

/// A directory of this user's, mode 0700, not a link.
fn private_dir(dir: &Path, euid: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o7777 != 0o700 {
        return Err(format!(
            "{} is not a 0700 directory of this user",
            dir.display()
        ));
    }
    Ok(())
}

/// A regular 0600 file of this user with one link, read without
/// following a link or waiting on a FIFO.
fn private_file(path: &Path, euid: u32) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() || meta.uid() != euid || meta.mode() & 0o7777 != 0o600 || meta.nlink() != 1 {
        return Err(format!(
            "{} is not a 0600 file of this user with one link",
            path.display()
        ));
    }
    super::read_private(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks what the helper was handed: its spec, its script, its run.
fn verify(script: &Path, spec_path: &Path) -> Result<NodeSpec, String> {
    let euid = rustix::process::geteuid().as_raw();
    if !spec_path.is_absolute()
        || spec_path.file_name() != Some(SPEC_FILE.as_ref())
        || spec_path.parent().and_then(Path::file_name) != Some(SLURM_DIR.as_ref())
    {
        return Err(format!(
            "{} is not a run's {SLURM_DIR}/{SPEC_FILE}",
            spec_path.display()
        ));
    }
    let dir = spec_path.parent().unwrap_or(Path::new("/"));
    private_dir(dir, euid)?;
    let bytes = private_file(spec_path, euid)?;
    let spec: NodeSpec =
        serde_json::from_slice(&bytes).map_err(|e| format!("the spec cannot be read: {e}"))?;
    if spec.version != SPEC_VERSION {
        return Err(format!(
            "a spec of version {} (this helper reads {SPEC_VERSION}): the lab binary on this node differs from the Lab's",
            spec.version
        ));
    }
    if Some(spec.run_dir.as_path()) != dir.parent() {
        return Err("the spec names another run directory than its own".into());
    }
    let ours = private_file(&dir.join(SCRIPT_FILE), euid)?;
    let ran = super::read_private(script).map_err(|e| format!("{}: {e}", script.display()))?;
    if ours != ran {
        return Err("the script Slurm ran is not the Lab's batch script of this run".into());
    }
    if std::fs::symlink_metadata(dir.join(RESULT_FILE)).is_ok() {
        return Err("this job has run before (its result is there): it never runs twice".into());
    }
    Ok(spec)
}

/// The node's host name, for the result.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// `lab __slurm-helper SCRIPT SPEC`: runs the job; its exit code is the
/// job's (1 when it did not exit with one).
pub fn helper_main(args: &[OsString]) -> i32 {
    let [script, spec_path] = args else {
        say("expected SCRIPT SPEC (this runs only as a Lab job's batch script)");
        return 2;
    };
    let spec_path = PathBuf::from(spec_path);
    let spec = match verify(Path::new(script), &spec_path) {
        Ok(spec) => spec,
        Err(why) => {
            say(format_args!("refused: {why}"));
            return 2;
        }
    };
    let dir = spec_path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let result = run(spec, &dir);
    let code = match result.exit.as_ref().and_then(ExitRecord::to_exit) {
        Some(crate::exit::Exit::Code(c)) if (0..=255).contains(&c) => c,
        _ => 1,
    };
    if let Some(error) = &result.error {
        say(format_args!("the job could not start: {error}"));
    }
    if let Err(e) = lab_registry::data_dir::write_json(&dir, RESULT_FILE, &result) {
        say(format_args!("cannot write the result: {e}"));
        return 1;
    }
    code
}

fn run(spec: NodeSpec, dir: &Path) -> NodeResult {
    let mut result = NodeResult {
        version: SPEC_VERSION,
        exit: None,
        isolation: None,
        error: None,
        node: hostname(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            result.error = Some(format!("starting the async runtime: {e}"));
            return result;
        }
    };
    let helper = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(format!("locating the lab binary: {e}"));
            return result;
        }
    };
    let wanted = crate::cgroup::Wanted {
        memory_max: spec.memory_max,
        pids_max: spec.pids_max,
        cpu_max: spec.cpu_max,
    };
    let config = RunnerConfig {
        programs: Vec::new(),
        path: spec.path.clone(),
        env_allow: spec.env_names.clone(),
        allow_network: spec.allow_network,
        allow_workflow_exec: false,
        limits: spec.limits.clone(),
        helper,
        default_timeout: Duration::from_secs(spec.timeout_secs),
        read_paths: spec.read_paths.clone(),
        devices: spec.devices.clone(),
        log_max_bytes: spec.log_max_bytes,
        // The helper's environment is what Slurm exported: the secret
        // values in it are redacted as the Lab's own are.
        lab_secrets: lab_redact::secret_values(std::env::vars_os()),
        data_dir: spec.data_dir.clone(),
        config_file: spec.config_file.clone(),
        key_file: spec.key_file.clone(),
        cgroup: wanted,
        backend: BackendConfig::Local,
    };
    let runner = match Runner::new(config) {
        Ok((runner, _)) => runner,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    if let Err(e) = runner.startable() {
        // Fail closed: this node cannot isolate the job.
        result.exit = Some(ExitRecord::from(&crate::exit::Exit::Refused {
            layer: "node".into(),
            error: e.to_string(),
        }));
        return result;
    }
    // The values of the variables the Lab exported by name.
    let passed: Vec<(String, String)> = spec
        .env_names
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
        .collect();
    let report = dir.join("sandbox.report");
    let outcome = runtime.block_on(async {
        let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
        // scancel (and Slurm's own time limit) send SIGTERM first.
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                term.recv().await;
                let _ = cancel_tx.send(true);
            });
        }
        runner
            .run_steps_limited(
                &spec.steps,
                &passed,
                spec.cwd.as_deref(),
                Duration::from_secs(spec.timeout_secs),
                &spec.run_dir,
                &report,
                &wanted,
                |_, _| {},
                cancel_rx,
            )
            .await
    });
    match outcome {
        Ok(outcome) => {
            result.exit = Some(ExitRecord::from(&outcome.exit));
            result.isolation = Some(outcome.isolation);
        }
        Err(e) => result.error = Some(e.to_string()),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A run's `slurm/` as the Lab writes it: the spec and the script.
    fn written(run: &Path) -> (PathBuf, PathBuf) {
        let dir = run.join(SLURM_DIR);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let spec = NodeSpec {
            version: SPEC_VERSION,
            run_dir: run.to_path_buf(),
            steps: Vec::new(),
            env_names: Vec::new(),
            cwd: None,
            timeout_secs: 5,
            memory_max: None,
            cpu_max: None,
            pids_max: None,
            path: "/usr/bin:/bin".into(),
            read_paths: Vec::new(),
            devices: Vec::new(),
            log_max_bytes: 1 << 20,
            allow_network: false,
            limits: crate::protocol::Limits::default(),
            data_dir: None,
            config_file: None,
            key_file: None,
        };
        super::super::write_new(&dir.join(SPEC_FILE), &serde_json::to_vec(&spec).unwrap()).unwrap();
        super::super::write_new(&dir.join(SCRIPT_FILE), script("/usr/bin/lab").as_bytes()).unwrap();
        // Slurm runs its own copy of the script.
        let copy = run.join("slurm_script");
        std::fs::write(&copy, script("/usr/bin/lab")).unwrap();
        (dir.join(SPEC_FILE), copy)
    }

    #[test]
    fn the_helper_runs_only_its_own_untouched_spec_and_never_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().canonicalize().unwrap().join("run-1");
        std::fs::create_dir(&run).unwrap();
        let (spec, copy) = written(&run);
        assert!(verify(&copy, &spec).is_ok());
        // Another script than the Lab's.
        std::fs::write(run.join("other"), "#!/bin/sh\nid\n").unwrap();
        let err = verify(&run.join("other"), &spec).unwrap_err();
        assert!(err.contains("not the Lab's batch script"), "{err}");
        // A spec others may read, or with a second name.
        std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(verify(&copy, &spec).unwrap_err().contains("0600"));
        std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&spec, run.join("second-name")).unwrap();
        assert!(verify(&copy, &spec).unwrap_err().contains("one link"));
        std::fs::remove_file(run.join("second-name")).unwrap();
        // Not a run's slurm/spec.json.
        assert!(verify(&copy, &run.join("spec.json")).is_err());
        assert!(verify(&copy, Path::new("slurm/spec.json")).is_err());
        // A job the Lab gave up on never starts.
        assert!(verify(&copy, &spec).is_ok());
        super::super::poison(&run.join(SLURM_DIR), "a test");
        let err = verify(&copy, &spec).unwrap_err();
        assert!(err.contains("never runs twice"), "{err}");
    }

    #[test]
    fn a_spec_naming_another_run_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        for run in ["a", "b"] {
            std::fs::create_dir(base.join(run)).unwrap();
        }
        let (_, copy) = written(&base.join("a"));
        // b's slurm/ holds a's spec.
        std::fs::create_dir(base.join("b").join(SLURM_DIR)).unwrap();
        let dir_b = base.join("b").join(SLURM_DIR);
        std::fs::set_permissions(&dir_b, std::fs::Permissions::from_mode(0o700)).unwrap();
        let spec_a = std::fs::read(base.join("a").join(SLURM_DIR).join(SPEC_FILE)).unwrap();
        super::super::write_new(&dir_b.join(SPEC_FILE), &spec_a).unwrap();
        super::super::write_new(&dir_b.join(SCRIPT_FILE), script("/usr/bin/lab").as_bytes())
            .unwrap();
        let err = verify(&copy, &dir_b.join(SPEC_FILE)).unwrap_err();
        assert!(err.contains("another run directory"), "{err}");
    }
}
