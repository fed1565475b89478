//! The runner: which programs may run, with which environment, and running
//! one job through the sandbox helper with its output redacted into the run
//! directory and its provenance recorded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

use crate::backend::{Backend, Hooks, JobRun, Resources};
pub use crate::error::Error;
pub use crate::exit::Exit;
pub use crate::files::expand_devices;
use crate::files::{CappedLog, remove_work_dir};
pub use crate::helper::GRACE;
use crate::helper::{Sandboxed, start_sandbox, stop_network, terminate};
use crate::kernel::{KernelFeatures, Plan};
pub use crate::plan::{StepPlan, step_name};
use crate::plan::{Workflow, argv0};
pub use crate::policy::{
    DEFAULT_LOG_MAX_BYTES, Exposure, Grant, JOB_DIR, MAX_ARG, MAX_ARGS, Protected, RUNNER_PATH,
    WORK_DIR, installs,
};
use crate::policy::{
    TRAMPOLINES, find_in_caller_path, job_path, refused_env, resolve_both, resolve_path,
    toml_string, valid_env_name,
};
use crate::protocol::{JOB_HOME, Limits, Overlay, PROTOCOL_VERSION, SandboxSpec};
use crate::provenance::program_hash;
use crate::record::{ExitRecord, Isolation, PROVENANCE_VERSION, Provenance, StepRecord};
use crate::report::read_report;
use lab_redact::{Redactor, is_secret_name};

/// Largest workflow file read.
const MAX_WORKFLOW_BYTES: u64 = 1 << 20;

/// Tidying after a job (blocking: a walk of what it left): the overlay's
/// work dir goes, and no setuid or setgid file the job made survives it
/// (the job ran as the Lab's uid; such a file would run as it).
pub(crate) fn tidy_after(
    run_dir: &Path,
    work_dir: &Path,
    overlay: bool,
) -> Result<(), lab_fs::Error> {
    if overlay {
        remove_work_dir(work_dir);
    }
    std::fs::canonicalize(run_dir)
        .map_err(lab_fs::Error::Io)
        .and_then(|dir| lab_fs::RunRoot::open_ambient(&dir))
        .and_then(|root| root.clear_setid_bits(JOB_DIR))
        .map(drop)
}

/// Why a directory cannot be granted, after its path in a message: "is your
/// home directory or one of its parents; …" or "holds or lies in the Lab's
/// data dir /x, which no job may read".
fn refusal(protected: &Protected, exposure: &Exposure) -> String {
    if exposure.what == Protected::HOME {
        "is your home directory or one of its parents; a job would see everything in it".to_owned()
    } else {
        format!(
            "holds or lies in {} {}, which no job may read",
            exposure.what,
            protected.shown(&exposure.exposed)
        )
    }
}

/// A variable passed to a job: name and value.
pub type EnvVar = (String, String);

/// An allowlisted program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// As configured.
    pub name: String,
    /// Canonical absolute path (what the allowlist matches).
    pub path: PathBuf,
    /// The absolute path as configured or found — in `[runner] path` for
    /// the API, in the caller's `PATH` for `lab run` — which is what runs
    /// (a venv's `bin/python3` stays that venv's python).
    pub exec_path: PathBuf,
    /// What the job may read to run it: the installation(s) it lives in;
    /// or, when one cannot be granted safely, why (jobs running it are
    /// refused with [`Error::Installation`]).
    pub installs: Result<Vec<PathBuf>, String>,
}

/// An allowlisted program as `lab run` found it in the caller's `PATH`
/// ([`Runner::resolve_for_caller`]); holding one is the proof it is allowed.
#[derive(Clone, Debug)]
pub struct FoundProgram {
    program: Program,
    passed_over: Vec<PathBuf>,
}

impl FoundProgram {
    /// The program: its canonical path, the path found (what runs), and
    /// the installations that path needs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Version managers' shims found first in the caller's `PATH` and
    /// passed over (`~/.pyenv/shims/python3`): they pick the real program
    /// at run time from files no job is granted.
    pub fn passed_over(&self) -> &[PathBuf] {
        &self.passed_over
    }
}

/// Runner settings.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// `[runner] programs`: names (searched in `path`) or absolute paths.
    pub programs: Vec<String>,
    /// `[runner] path`: where `[runner] programs` names, the API's program
    /// names and pasta are looked up, and the job's `PATH` (after its
    /// program's own directory when that lies in its installation);
    /// [`RUNNER_PATH`] unless configured, never the Lab's own environment.
    pub path: String,
    /// `[runner] env_allow`: variable names a job may ask for.
    pub env_allow: Vec<String>,
    /// `--runner-allow-network`.
    pub allow_network: bool,
    /// `--runner-allow-workflow-exec`.
    pub allow_workflow_exec: bool,
    /// Resource limits.
    pub limits: Limits,
    /// The `lab` binary, re-executed as `lab __sandbox`.
    pub helper: PathBuf,
    /// Timeout when a job names none.
    pub default_timeout: Duration,
    /// `[runner] read_paths`: canonical directories jobs may read (datasets,
    /// projects), and in which a job's cwd may lie.
    pub read_paths: Vec<PathBuf>,
    /// `[runner] devices`: device paths (`*` in the last segment, as in
    /// `/dev/nvidia*`) passed through to jobs.
    pub devices: Vec<String>,
    /// `[runner] log_max_bytes`: cap per log file (head and tail kept).
    pub log_max_bytes: u64,
    /// The values of the Lab's own secret-looking environment variables
    /// ([`lab_redact::secret_values`]), which no log may show; the caller
    /// reads its environment once.
    pub lab_secrets: Vec<Vec<u8>>,
    /// The Lab's data dir (canonical): no job may read it (the registry,
    /// other runs, exports, job records), so no installation, cwd or
    /// `read_paths` entry may hold it or lie in it.
    pub data_dir: Option<PathBuf>,
    /// The config file in force (`--config`), protected as the data dir is.
    pub config_file: Option<PathBuf>,
    /// `lab serve --key-file`, protected as the data dir is.
    pub key_file: Option<PathBuf>,
    /// `[runner] memory_max`, `pids_max`, `cpu_max`: bound through a
    /// cgroup per job ([`crate::cgroup`]); a job is refused when one
    /// cannot be applied.
    pub cgroup: crate::cgroup::Wanted,
    /// `[runner] backend`: where jobs run.
    pub backend: BackendConfig,
}

/// `[runner] backend` and its table.
#[derive(Clone, Debug, Default)]
pub enum BackendConfig {
    /// This machine.
    #[default]
    Local,
    /// A Slurm cluster (`[runner.slurm]`).
    Slurm(crate::slurm::SlurmConfig),
}

/// A job as asked for.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Program name or absolute path.
    pub program: String,
    /// Arguments (argv without argv[0]).
    #[serde(default)]
    pub args: Vec<String>,
    /// Names of allowlisted variables to pass.
    #[serde(default)]
    pub env: Vec<String>,
    /// Wall-clock timeout.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The job's working directory (absolute; under an allowed root or a
    /// `[runner] read_paths` entry), seen through an overlay.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// CPUs, memory and GPUs asked for (checked against the backend's
    /// maxima; defaults filled in).
    #[serde(default)]
    pub resources: Option<crate::backend::Resources>,
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// How it ended.
    pub exit: Exit,
    /// The isolation layers that were in force (from the helper's report).
    pub isolation: Isolation,
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// stdout
    Stdout,
    /// stderr
    Stderr,
}

/// The runner.
#[derive(Debug)]
pub struct Runner {
    programs: Vec<Program>,
    env_allow: Vec<String>,
    pub(crate) config: RunnerConfig,
    pub(crate) kernel: KernelFeatures,
    plan: Result<Plan, Vec<String>>,
    /// `pasta` (Debian's passt), for jobs with the network allowed.
    pub(crate) pasta: Option<PathBuf>,
    /// Where each job's cgroup is made for the configured limits, or why
    /// they cannot be applied here.
    cgroups: Result<crate::cgroup::Choice, String>,
    /// What no grant may expose.
    protected: Protected,
    /// Where jobs run.
    backend: Box<dyn Backend>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Runner {
    /// Resolves the allowlist once. Returns the runner and warnings (a
    /// trampoline on the allowlist makes the allowlist meaningless).
    pub fn new(config: RunnerConfig) -> Result<(Self, Vec<String>), Error> {
        let mut programs = Vec::new();
        let mut warnings = Vec::new();
        let protected = Protected::from_env(
            config.data_dir.as_deref(),
            config.config_file.as_deref(),
            config.key_file.as_deref(),
        );
        for name in &config.programs {
            let path = resolve_path(name, &config.path)
                .ok_or_else(|| Error::ProgramNotFound(name.clone()))?;
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let base = file.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            if TRAMPOLINES.contains(&file) || TRAMPOLINES.contains(&base) {
                warnings.push(format!(
                    "[runner] programs allows {name:?} ({}), which runs whatever its arguments say: any job can run anything",
                    path.display()
                ));
            }
            let (exec_path, _) = resolve_both(name, &config.path)
                .ok_or_else(|| Error::ProgramNotFound(name.clone()))?;
            let installs = installs(&exec_path, &path, &protected);
            if let Err(why) = &installs {
                warnings.push(format!(
                    "[runner] programs entry {name:?} is refused to every job: {why}"
                ));
            }
            programs.push(Program {
                name: name.clone(),
                installs,
                exec_path,
                path,
            });
        }
        for path in &config.read_paths {
            if let Some(exposure) = protected.exposure(path, Grant::ReadPath) {
                return Err(Error::Cwd(format!(
                    "[runner] read_paths entry {} {}",
                    path.display(),
                    refusal(&protected, &exposure)
                )));
            }
        }
        for name in &config.env_allow {
            if !valid_env_name(name) {
                return Err(Error::EnvNotAllowed(format!(
                    "{name:?} is not a valid variable name"
                )));
            }
            if refused_env(name) {
                return Err(Error::EnvNotAllowed(format!(
                    "{name} changes what a program loads or runs and is never passed to a job"
                )));
            }
        }
        // Asked of the helper (which alone makes the Landlock system call);
        // decided here, by a pure function.
        let (kernel, plan) = match crate::spawn::kernel_report(&config.helper) {
            Some(reported) => {
                let kernel = crate::kernel::reported(reported);
                let plan = crate::kernel::decide(&kernel);
                (kernel, plan)
            }
            None => (
                KernelFeatures::unknown(),
                Err(vec![
                    "the sandbox helper (`lab __sandbox kernel`) could not report what this kernel provides".to_owned(),
                ]),
            ),
        };
        let (kernel, mut plan) = (kernel, plan);
        let pasta = if config.allow_network {
            // The path found, not the canonical one: pasta is a link to
            // passt, which picks its mode by the name it was run as.
            let found = resolve_both("pasta", &config.path);
            // pasta runs outside the sandbox (as root, for a root Lab):
            // where another user could swap it, it is not run at all.
            if let Some((found, canonical)) = &found {
                let untrusted = [found.as_path(), canonical.as_path()]
                    .into_iter()
                    .find_map(crate::policy::replaceable_by_others);
                if let Some(why) = untrusted {
                    let why = format!(
                        "--runner-allow-network: pasta at {} could be replaced by another user ({why}); install it where only root can write (Debian's passt puts it in /usr/bin)",
                        found.display()
                    );
                    match &mut plan {
                        Ok(_) => plan = Err(vec![why]),
                        Err(missing) => missing.push(why),
                    }
                }
            }
            let found = found.map(|(found, _)| found);
            if found.is_none() {
                // Fail closed: a job never shares the host's network
                // namespace (its loopback services would be in reach).
                let why = "--runner-allow-network needs user-mode networking, and pasta (Debian package passt) is not on [runner] path: no job runs rather than share the host's network namespace".to_owned();
                match &mut plan {
                    Ok(_) => plan = Err(vec![why]),
                    Err(missing) => missing.push(why),
                }
            }
            found
        } else {
            None
        };
        config.cgroup.validate().map_err(Error::Limits)?;
        let backend: Box<dyn Backend> = match &config.backend {
            BackendConfig::Local => Box::new(crate::backend::Local),
            BackendConfig::Slurm(slurm) => {
                Box::new(crate::slurm::Slurm::new(slurm.clone(), &config))
            }
        };
        let cgroups = crate::cgroup::choose(
            &crate::cgroup::read_layout(),
            rustix::process::geteuid().is_root(),
            &config.cgroup,
        );
        // Every job carries the configured limits: where they cannot be
        // applied, no job runs (and the status says why).
        if let Err(why) = &cgroups {
            let why = format!("job limits: {why}");
            match &mut plan {
                Ok(_) => plan = Err(vec![why]),
                Err(missing) => missing.push(why),
            }
        }
        Ok((
            Self {
                programs,
                env_allow: config.env_allow.clone(),
                config,
                kernel,
                plan,
                pasta,
                cgroups,
                protected,
                backend,
            },
            warnings,
        ))
    }

    /// Where jobs run.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The resources job `request` gets on this backend, or
    /// [`Error::Resources`] naming the limit it is over.
    pub fn resources(&self, asked: Option<&Resources>) -> Result<Resources, Error> {
        self.backend
            .resources(self, asked.unwrap_or(&Resources::default()))
    }

    /// The cgroup limits of a job given `resources`: `cpus` and `mem_mb`
    /// in place of `[runner] cpu_max` and `memory_max` (already checked to
    /// be at most them).
    pub fn wanted_for(&self, resources: &Resources) -> crate::cgroup::Wanted {
        let mut wanted = self.config.cgroup;
        if let Some(cpus) = resources.cpus {
            wanted.cpu_max = Some(f64::from(cpus));
        }
        if let Some(mem) = resources.mem_mb {
            wanted.memory_max = Some(mem.saturating_mul(1 << 20));
        }
        wanted
    }

    /// The backend as `/api/status` shows it: `{"name": "local"}`, or
    /// `{"name": "slurm", "partition", "account", "qos", "max_cpus",
    /// "max_mem_mb", "max_gpus"}`.
    pub fn backend_status(&self) -> Value {
        match &self.config.backend {
            BackendConfig::Local => json!({"name": "local"}),
            BackendConfig::Slurm(c) => json!({
                "name": "slurm",
                "partition": c.partition,
                "account": c.account,
                "qos": c.qos,
                "default_cpus": c.default_cpus,
                "default_mem_mb": c.default_mem_mb,
                "max_cpus": c.max_cpus,
                "max_mem_mb": c.max_mem_mb,
                "max_gpus": c.max_gpus,
            }),
        }
    }

    /// Fills in what a new job's record says of where it runs: the
    /// backend (`queued` on a cluster until it starts) and its resources.
    pub fn describe(&self, record: &mut crate::jobs::JobRecord, resources: &Resources) {
        record.backend = self.backend.name().to_owned();
        if record.backend != "local" {
            record.state = crate::jobs::JobState::Queued;
        }
        record.resources = (!resources.is_empty()).then_some(*resources);
    }

    /// Runs `job` on this runner's backend ([`Backend::run`]).
    pub async fn run_job(
        &self,
        job: JobRun<'_>,
        hooks: Hooks<'_>,
        cancel: watch::Receiver<bool>,
    ) -> Result<JobOutcome, Error> {
        self.backend.run(self, job, hooks, cancel).await
    }

    /// Why jobs cannot start: this machine's missing layers (local jobs),
    /// or the backend's own state (a cluster that stopped answering).
    pub fn startable(&self) -> Result<(), Error> {
        if self.backend.name() == "local" {
            self.kernel_plan()?;
        }
        match self.backend.unavailable() {
            Some(why) => Err(Error::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// The settings the runner was made with.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// A redactor of the Lab's own secrets (and known key formats).
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.config.lab_secrets.iter())
    }

    /// What the kernel reported.
    pub fn kernel(&self) -> &KernelFeatures {
        &self.kernel
    }

    /// Where jobs' cgroups go for the configured limits (`Nothing` when
    /// none is configured), or [`Error::Limits`] saying why they cannot be
    /// applied on this machine.
    pub fn cgroups(&self) -> Result<&crate::cgroup::Choice, Error> {
        self.cgroups
            .as_ref()
            .map_err(|why| Error::Limits(why.clone()))
    }

    /// The configured limits, and how this machine applies them, for
    /// `/api/status`: `{"configured": {…}, "cgroup": "v1"|"v2"|"none",
    /// "unavailable": why|null}`.
    pub fn limits_status(&self) -> Value {
        let wanted = &self.config.cgroup;
        json!({
            "configured": {
                "memory_max": wanted.memory_max,
                "pids_max": wanted.pids_max,
                "cpu_max": wanted.cpu_max,
            },
            "cgroup": self.cgroups.as_ref().map_or("none", |c| c.version()),
            "unavailable": self.cgroups.as_ref().err(),
        })
    }

    /// The layers jobs get on this kernel, or [`Error::Unavailable`] naming
    /// every missing kernel feature.
    pub fn kernel_plan(&self) -> Result<&Plan, Error> {
        self.plan
            .as_ref()
            .map_err(|missing| Error::Unavailable(missing.join("; ")))
    }

    /// Checks a job's working directory: absolute, an existing directory,
    /// under one of `allowed_roots` or a `[runner] read_paths` entry, never
    /// the home directory or one of its parents, and a path overlayfs can
    /// take. Returns its canonical path.
    pub fn check_cwd(&self, cwd: &Path, allowed_roots: &[PathBuf]) -> Result<PathBuf, Error> {
        let how = "add it (or a parent) to `read_paths` under [runner] in lab.toml, or `lab serve --root` it";
        if !cwd.is_absolute() {
            return Err(Error::Cwd(format!("{} is not absolute", cwd.display())));
        }
        let canonical = std::fs::canonicalize(cwd)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| Error::Cwd(format!("{} is not a directory", cwd.display())))?;
        if let Some(exposure) = self.protected.exposure(&canonical, Grant::Cwd) {
            let advice = if exposure.what == Protected::HOME {
                format!("Run from a project directory instead, and {how}")
            } else {
                "run from a project directory elsewhere (and add it to `read_paths` under [runner] in lab.toml)".to_owned()
            };
            return Err(Error::Cwd(format!(
                "{} {}; {advice}",
                canonical.display(),
                refusal(&self.protected, &exposure),
            )));
        }
        let text = canonical.to_string_lossy();
        if text.contains([',', ':', '\\', '\n']) {
            return Err(Error::Cwd(format!(
                "{text:?} contains a character overlayfs options cannot carry (`,` `:` `\\\\` or a newline)"
            )));
        }
        let allowed = allowed_roots
            .iter()
            .chain(self.config.read_paths.iter())
            .any(|root| canonical.starts_with(root));
        if !allowed {
            return Err(Error::Cwd(format!(
                "{} is not under an allowed root or a [runner] read_paths entry; {how}",
                canonical.display()
            )));
        }
        Ok(canonical)
    }

    /// The allowlisted programs.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// Whether jobs may use the network.
    pub fn network_allowed(&self) -> bool {
        self.config.allow_network
    }

    /// The timeout of a job that names none.
    pub fn default_timeout(&self) -> Duration {
        self.config.default_timeout
    }

    /// The single step of a plain job request (the API's: its program
    /// resolved in `[runner] path`), after validation.
    pub fn plan(&self, request: &JobRequest) -> Result<(StepPlan, Vec<EnvVar>, Duration), Error> {
        let (program, passed) = self.validate(request)?;
        self.step(request, program, passed)
    }

    /// The single step of `lab run`'s job request, whose program was found
    /// by [`Runner::resolve_for_caller`] (and runs by the path found there),
    /// after validation of its arguments and variables.
    pub fn plan_found(
        &self,
        request: &JobRequest,
        found: &FoundProgram,
    ) -> Result<(StepPlan, Vec<EnvVar>, Duration), Error> {
        let passed = self.check_args_and_env(request)?;
        self.step(request, &found.program, passed)
    }

    fn step(
        &self,
        request: &JobRequest,
        program: &Program,
        passed: Vec<EnvVar>,
    ) -> Result<(StepPlan, Vec<EnvVar>, Duration), Error> {
        let mut argv = vec![argv0(&program.exec_path)];
        argv.extend(request.args.iter().cloned());
        let step = StepPlan {
            label: request.program.clone(),
            path: program.path.clone(),
            exec_path: program.exec_path.clone(),
            installs: program.installs.clone().map_err(Error::Installation)?,
            argv,
            exec_hook: false,
        };
        let timeout = request
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.default_timeout);
        Ok((step, passed, timeout))
    }

    /// The allowlisted program `requested` names in `[runner] path` (or by
    /// an absolute path), matched by canonical path: the API's programs
    /// and workflow steps.
    pub fn resolve(&self, requested: &str) -> Result<&Program, Error> {
        let not_allowed = || Error::ProgramNotAllowed(requested.to_owned());
        let path = resolve_path(requested, &self.config.path).ok_or_else(not_allowed)?;
        self.programs
            .iter()
            .find(|p| p.path == path)
            .ok_or_else(not_allowed)
    }

    /// `lab run`'s program (SPEC §3): `requested` as the caller's shell
    /// finds it in `caller_path` (an activated venv or conda env first; a
    /// version manager's shim passed over, see [`FoundProgram::passed_over`]),
    /// allowed when its canonical path is on the allowlist, and run by the
    /// path found, with the installation that path needs. A name found
    /// nowhere in `caller_path` is looked up as [`Runner::resolve`] does.
    ///
    /// A program found but not allowlisted is [`Error::FoundNotAllowed`],
    /// with the `programs = [...]` line that would allow it; one whose
    /// installation cannot be granted is [`Error::Installation`].
    pub fn resolve_for_caller(
        &self,
        requested: &str,
        caller_path: Option<&str>,
    ) -> Result<FoundProgram, Error> {
        let allowed = |canonical: &Path| self.programs.iter().any(|p| p.path == canonical);
        let find = find_in_caller_path(requested, caller_path.unwrap_or(""), allowed);
        let passed_over = find.shims;
        let Some((found, canonical)) = find.found else {
            let program = self.resolve(requested)?.clone();
            return Ok(FoundProgram {
                program,
                passed_over,
            });
        };
        // Allowed by its canonical path but run by the path found: where
        // another user could swap what that path leads to between the
        // check and the run, it is not run at all.
        if let Some(why) = [found.as_path(), canonical.as_path()]
            .into_iter()
            .find_map(crate::policy::replaceable_by_others)
        {
            return Err(Error::Installation(format!(
                "{} could be replaced by another user between its check and its run ({why}); keep the program where only you or root can write",
                found.display()
            )));
        }
        let installs = installs(&found, &canonical, &self.protected);
        if !allowed(&canonical) {
            if let Err(why) = installs {
                return Err(Error::Installation(why));
            }
            return Err(Error::FoundNotAllowed {
                program: requested.to_owned(),
                fix: self.allowlist_fix(&found),
                found,
                canonical,
            });
        }
        Ok(FoundProgram {
            program: Program {
                name: requested.to_owned(),
                path: canonical,
                exec_path: found,
                installs,
            },
            passed_over,
        })
    }

    /// The change to the config that allows the program at `found`: the
    /// configured `programs` plus its path, as a TOML line.
    fn allowlist_fix(&self, found: &Path) -> String {
        let file = match &self.config.config_file {
            Some(file) => std::path::absolute(file)
                .unwrap_or_else(|_| file.clone())
                .display()
                .to_string(),
            None => "lab.toml".to_owned(),
        };
        let entries: Vec<String> = self
            .config
            .programs
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(found.to_string_lossy().as_ref()))
            .map(toml_string)
            .collect();
        format!(
            "add its path to [runner] programs in {file}: programs = [{}]",
            entries.join(", ")
        )
    }

    /// Checks a request without running it: the program is allowlisted, the
    /// arguments are sane, every variable is allowlisted. Returns the program
    /// and the variables to pass (those set in the Lab's environment).
    pub fn validate(&self, request: &JobRequest) -> Result<(&Program, Vec<EnvVar>), Error> {
        let program = self.resolve(&request.program)?;
        Ok((program, self.check_args_and_env(request)?))
    }

    /// The arguments are sane and every variable is allowlisted; returns
    /// the variables to pass (those set in the Lab's environment).
    fn check_args_and_env(&self, request: &JobRequest) -> Result<Vec<EnvVar>, Error> {
        if request.args.len() > MAX_ARGS {
            return Err(Error::BadArgument("too many arguments"));
        }
        for arg in &request.args {
            if arg.contains('\0') {
                return Err(Error::BadArgument("NUL in an argument"));
            }
            if arg.len() > MAX_ARG {
                return Err(Error::BadArgument("an argument is longer than 128 KiB"));
            }
        }
        let mut passed: Vec<EnvVar> = Vec::new();
        for name in &request.env {
            if !valid_env_name(name) || refused_env(name) || !self.env_allow.contains(name) {
                return Err(Error::EnvNotAllowed(format!(
                    "{name:?} is not on [runner] env_allow"
                )));
            }
            if let Some(value) = std::env::var_os(name) {
                passed.push((name.clone(), value.to_string_lossy().into_owned()));
            }
        }
        Ok(passed)
    }

    /// Runs `steps` (from [`Runner::plan`] or [`Runner::plan_workflow`]) in
    /// order for the run directory `run_dir` (which must exist and be empty:
    /// the caller creates and registers it first), each through the sandbox,
    /// stopping at the first that does not exit 0.
    ///
    /// The run directory belongs to the Lab: `stdout.log`, `stderr.log` and
    /// `provenance.json` are written there, where the job has no access.
    /// The job writes only into `run_dir/job/` ([`JOB_DIR`]) — through the
    /// overlay on `cwd` (already checked by [`Runner::check_cwd`]) when
    /// there is one. `on_output` gets every redacted chunk as it is logged;
    /// `report` is a scratch file outside the run directory; sending `true`
    /// on `cancel` cancels. The timeout covers the whole job.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_steps(
        &self,
        steps: &[StepPlan],
        passed: &[EnvVar],
        cwd: Option<&Path>,
        timeout: Duration,
        run_dir: &Path,
        report: &Path,
        on_output: impl FnMut(Stream, &[u8]) + Send,
        cancel: watch::Receiver<bool>,
    ) -> Result<JobOutcome, Error> {
        let wanted = self.config.cgroup;
        self.run_steps_limited(
            steps, passed, cwd, timeout, run_dir, report, &wanted, on_output, cancel,
        )
        .await
    }

    /// [`Runner::run_steps`] with the cgroup limits `wanted` (from
    /// [`Runner::wanted_for`]) in place of the configured ones.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_steps_limited(
        &self,
        steps: &[StepPlan],
        passed: &[EnvVar],
        cwd: Option<&Path>,
        timeout: Duration,
        run_dir: &Path,
        report: &Path,
        wanted: &crate::cgroup::Wanted,
        mut on_output: impl FnMut(Stream, &[u8]) + Send,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<JobOutcome, Error> {
        let plan = self.kernel_plan()?.clone();
        // Redact the Lab's own secrets and the values of secret-looking
        // variables passed to the job; other values reach the log as they are.
        let lab_secrets = self.config.lab_secrets.iter().cloned();
        let redactor = Redactor::new(
            lab_secrets.chain(
                passed
                    .iter()
                    .filter(|(k, _)| is_secret_name(k))
                    .map(|(_, v)| v.as_bytes().to_vec()),
            ),
        );
        // Empty, but for the Slurm backend's own directory (its batch
        // script, spec and result), which no job sees.
        if std::fs::read_dir(run_dir)
            .map_err(Error::RunDir)?
            .flatten()
            .any(|e| e.file_name() != crate::slurm::SLURM_DIR)
        {
            return Err(Error::RunDir(std::io::Error::other(
                "the run directory is not empty",
            )));
        }
        let job_dir = run_dir.join(JOB_DIR);
        let work_dir = run_dir.join(WORK_DIR);
        {
            use std::os::unix::fs::DirBuilderExt;
            let mut builder = std::fs::DirBuilder::new();
            builder.mode(0o700);
            builder.create(&job_dir).map_err(Error::RunDir)?;
            if cwd.is_some() {
                builder.create(&work_dir).map_err(Error::RunDir)?;
            }
        }
        let cap = self.config.log_max_bytes;
        let mut logs = [
            CappedLog::create(run_dir, "stdout.log", cap)?,
            CappedLog::create(run_dir, "stderr.log", cap)?,
        ];
        let output_dir = cwd.unwrap_or(&job_dir).to_string_lossy().into_owned();
        // `PATH` comes first, per step (its program's own directory, then
        // `[runner] path`).
        let mut env = vec![
            ("HOME".to_owned(), JOB_HOME.to_owned()),
            (
                "LANG".to_owned(),
                std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
            ),
            ("LAB_OUTPUT_DIR".to_owned(), output_dir),
            ("TMPDIR".to_owned(), "/tmp".to_owned()),
        ];
        env.extend(passed.iter().cloned());
        let devices = expand_devices(&self.config.devices);
        let started = now_secs();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut streams = [redactor.stream(), redactor.stream()];
        let mut out = Vec::new();
        let mut isolation = Isolation::default();
        let mut exit = Exit::Code(0);
        let mut step_records = Vec::new();
        // The job's cgroup, for every step: made before the first starts,
        // removed after the last (its processes are gone by then).
        let cgroup = {
            let choice = if *wanted == self.config.cgroup {
                self.cgroups()?.clone()
            } else {
                wanted.validate().map_err(Error::Limits)?;
                crate::cgroup::choose(
                    &crate::cgroup::read_layout(),
                    rustix::process::geteuid().is_root(),
                    wanted,
                )
                .map_err(|why| Error::Limits(format!("job limits: {why}")))?
            };
            let wanted = *wanted;
            // Named after the run (`lab-job-<run id>`), so what is left of
            // a job can be told apart.
            let name = match run_dir.file_name().and_then(|n| n.to_str()) {
                Some(n) if n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                    n.to_owned()
                }
                _ => lab_registry::data_dir::random_hex(8).map_err(Error::Spawn)?,
            };
            tokio::task::spawn_blocking(move || {
                crate::cgroup::JobCgroup::create(&choice, &name, &wanted)
            })
            .await
            .map_err(|e| Error::Limits(e.to_string()))?
            .map_err(|e| Error::Limits(e.to_string()))?
        };
        let cgroup_procs = cgroup
            .as_ref()
            .map(crate::cgroup::JobCgroup::procs_files)
            .unwrap_or_default();
        for step in steps {
            std::fs::File::create(report).map_err(Error::RunDir)?;
            let mut read_only = step.installs.clone();
            read_only.extend(self.config.read_paths.iter().cloned());
            let path = job_path(&step.exec_path, &step.installs, &self.config.path);
            let step_env = std::iter::once(("PATH".to_owned(), path))
                .chain(env.iter().cloned())
                .collect();
            let spec = SandboxSpec {
                version: PROTOCOL_VERSION,
                program: step.exec_path.clone(),
                argv: step.argv.clone(),
                env: step_env,
                job_dir: job_dir.clone(),
                cwd: cwd.map(|lower| Overlay {
                    lower: lower.to_path_buf(),
                    work: work_dir.clone(),
                }),
                read_only,
                devices: devices.clone(),
                report: report.to_path_buf(),
                network: self.config.allow_network,
                user_mode_network: self.pasta.is_some(),
                limits: self.config.limits.clone(),
                landlock_abi: plan.landlock_abi,
                cgroup_procs: cgroup_procs.clone(),
            };
            // Hashed before it runs, as the job will see it (file reads: off
            // the async workers).
            let program_sha256 = {
                let (step, cwd, job_dir) =
                    (step.clone(), cwd.map(Path::to_path_buf), job_dir.clone());
                tokio::task::spawn_blocking(move || program_hash(&step, cwd.as_deref(), &job_dir))
                    .await
                    .unwrap_or(None)
            };
            let Sandboxed {
                mut child,
                mut control,
                network,
            } = start_sandbox(
                &self.config.helper,
                self.pasta.as_deref(),
                &spec,
                Stdio::piped(),
                Stdio::piped(),
            )
            .await
            .map_err(Error::Spawn)?;
            let (tx, mut rx) = mpsc::channel::<(Stream, Vec<u8>)>(16);
            let pipes: [(Stream, Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>); 2] = [
                (
                    Stream::Stdout,
                    child.stdout.take().map(|p| Box::new(p) as _),
                ),
                (
                    Stream::Stderr,
                    child.stderr.take().map(|p| Box::new(p) as _),
                ),
            ];
            for (stream, pipe) in pipes {
                let Some(mut pipe) = pipe else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = pipe.read(&mut buf).await {
                        if n == 0 || tx.send((stream, buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut ended_by: Option<Exit> = None;
            let mut exited = false;
            let mut pipes_open = true;
            // After SIGTERM, the job has GRACE to clean up before SIGKILL.
            let kill_at = tokio::time::sleep(Duration::from_secs(100 * 365 * 86_400));
            tokio::pin!(kill_at);
            let mut terminating = false;
            while !exited || pipes_open {
                tokio::select! {
                    chunk = rx.recv(), if pipes_open => match chunk {
                        Some((stream, bytes)) => {
                            let i = stream as usize;
                            out.clear();
                            streams[i].push(&bytes, &mut out);
                            if !out.is_empty() {
                                logs[i].write(&out);
                                on_output(stream, &out);
                            }
                        }
                        None => pipes_open = false,
                    },
                    _ = child.wait(), if !exited => exited = true,
                    () = &mut deadline, if ended_by.is_none() => {
                        ended_by = Some(Exit::TimedOut);
                        terminate(&mut control).await;
                        kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
                        terminating = true;
                    }
                    changed = cancel.changed(), if ended_by.is_none() => {
                        if changed.is_err() || *cancel.borrow() {
                            ended_by = Some(Exit::Cancelled);
                            terminate(&mut control).await;
                            kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
                            terminating = true;
                        }
                    }
                    () = &mut kill_at, if terminating && !exited => {
                        terminating = false;
                        // The helper dies; init dies with it (PDEATHSIG) and
                        // takes the whole namespace along.
                        let _ = child.start_kill();
                    }
                }
            }
            stop_network(network).await;
            let (mut step_isolation, reported) = read_report(report);
            exit = ended_by.clone().unwrap_or(reported);
            // The OOM killer struck: that is how the job ended, whatever
            // its exit status says.
            // A timeout or a cancel the Lab started stays what it was.
            if let Some(group) = &cgroup
                && ended_by.is_none()
                && group.oom_killed()
                && !matches!(exit, Exit::Refused { .. })
            {
                exit = Exit::Oom;
            }
            step_isolation.limits = cgroup.as_ref().map(|g| g.applied().clone());
            isolation = step_isolation;
            step_records.push(StepRecord {
                program: step.label.clone(),
                path: step.exec_path.display().to_string(),
                resolved_path: step.path.display().to_string(),
                sha256: program_sha256,
                argv: step.argv.iter().map(|a| redactor.redact_str(a)).collect(),
                exec_hook: step.exec_hook,
                exit: ExitRecord::from(&exit),
            });
            if exit != Exit::Code(0) {
                break;
            }
        }
        for (i, stream) in streams.into_iter().enumerate() {
            out.clear();
            stream.finish(&mut out);
            if !out.is_empty() {
                logs[i].write(&out);
                on_output(
                    if i == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    },
                    &out,
                );
            }
        }
        for log in logs {
            log.finish();
        }
        if let Some(group) = cgroup {
            let _ = tokio::task::spawn_blocking(move || group.remove()).await;
        }
        // Tidying after the job, off the async workers (a walk of what the
        // job left): the overlay's work dir goes, and no setuid or setgid
        // file the job made survives it (the job ran as the Lab's uid; such a
        // file would run as it).
        let tidy = {
            let (run_dir, work_dir, overlay) =
                (run_dir.to_path_buf(), work_dir.clone(), cwd.is_some());
            tokio::task::spawn_blocking(move || tidy_after(&run_dir, &work_dir, overlay)).await
        };
        if let Ok(Err(e)) = tidy {
            tracing::warn!("clearing setuid bits in {}: {e}", run_dir.display());
        }
        // Read from `.git` off the async workers: a hostile `.git` (a FIFO,
        // a slow mount) may stall the read, never the server.
        let git = match cwd {
            Some(cwd) => {
                let cwd = cwd.to_path_buf();
                tokio::task::spawn_blocking(move || crate::git::describe(&cwd))
                    .await
                    .unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        let first = step_records[0].clone();
        let provenance = Provenance {
            version: PROVENANCE_VERSION,
            lab_version: env!("CARGO_PKG_VERSION").to_owned(),
            program: first.program,
            path: first.path,
            resolved_path: first.resolved_path,
            sha256: first.sha256,
            argv: first.argv,
            steps: step_records,
            cwd: cwd.map(|c| c.display().to_string()),
            git,
            job_dir: JOB_DIR.to_owned(),
            env_names: passed.iter().map(|(k, _)| k.clone()).collect(),
            network_allowed: self.config.allow_network,
            started,
            ended: now_secs(),
            exit: ExitRecord::from(&exit),
            isolation: isolation.clone(),
        };
        lab_registry::data_dir::write_json(run_dir, "provenance.json", &provenance)
            .map_err(Error::RunDir)?;
        let _ = std::fs::remove_file(report);
        Ok(JobOutcome { exit, isolation })
    }

    /// Reads and checks a workflow file (already known to lie under an
    /// allowed root): every plain step's program is allowlisted; exec hooks
    /// (`exec = true`, a program relative to the workflow's directory and
    /// inside it) need both `allow_exec` (the command-line flag) and
    /// `confirm` (the request). Nothing runs if any check fails.
    pub fn plan_workflow(
        &self,
        file: &Path,
        confirm: bool,
    ) -> Result<(String, Vec<StepPlan>), Error> {
        let allow_exec = self.config.allow_workflow_exec;
        // A regular file, opened without following a final link or waiting
        // on a FIFO swapped in, and at most 1 MiB read.
        let text = crate::files::read_regular_capped(file, MAX_WORKFLOW_BYTES)
            .map_err(|e| Error::Workflow(format!("cannot read it: {e}")))?
            .ok_or_else(|| Error::Workflow("a workflow file is at most 1 MiB".into()))?;
        let workflow: Workflow =
            toml::from_str(&text).map_err(|e| Error::Workflow(e.message().to_owned()))?;
        if workflow.steps.is_empty() || workflow.steps.len() > 64 {
            return Err(Error::Workflow("a workflow has 1 to 64 steps".into()));
        }
        let base = file.parent().unwrap_or(Path::new("/"));
        let mut plan = Vec::new();
        for (i, step) in workflow.steps.iter().enumerate() {
            for arg in &step.args {
                if arg.contains('\0') || arg.len() > MAX_ARG {
                    return Err(Error::BadArgument("NUL or an argument longer than 128 KiB"));
                }
            }
            let path = if step.exec {
                if !allow_exec {
                    return Err(Error::ExecHooksRefused(format!(
                        "step {} is an exec hook ({}); the Lab was not started with --runner-allow-workflow-exec",
                        i + 1,
                        step.program
                    )));
                }
                if !confirm {
                    return Err(Error::ExecHooksRefused(format!(
                        "step {} is an exec hook ({}); running it must be confirmed (confirm_exec_hooks: true, or --confirm-exec-hooks)",
                        i + 1,
                        step.program
                    )));
                }
                let candidate = Path::new(&step.program);
                if candidate.is_absolute() {
                    return Err(Error::Workflow(format!(
                        "step {}: an exec hook names a path relative to the workflow's directory",
                        i + 1
                    )));
                }
                let canonical = std::fs::canonicalize(base.join(candidate)).map_err(|e| {
                    Error::Workflow(format!("step {}: {}: {e}", i + 1, step.program))
                })?;
                if !canonical.starts_with(base) || !canonical.is_file() {
                    return Err(Error::Workflow(format!(
                        "step {}: the exec hook must be a file inside the workflow's directory",
                        i + 1
                    )));
                }
                (canonical.clone(), canonical, Vec::new())
            } else {
                let program = self.resolve(&step.program)?;
                (
                    program.path.clone(),
                    program.exec_path.clone(),
                    program.installs.clone().map_err(Error::Installation)?,
                )
            };
            let (path, exec_path, installs) = path;
            let mut argv = vec![argv0(&exec_path)];
            argv.extend(step.args.iter().cloned());
            plan.push(StepPlan {
                label: step.program.clone(),
                path,
                exec_path,
                installs,
                argv,
                exec_hook: step.exec,
            });
        }
        Ok((workflow.name, plan))
    }
}
