//! The runner: which programs may run, with which environment, and running
//! one job through the sandbox helper with its output redacted into the run
//! directory and its provenance recorded.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::kernel::{KernelFeatures, Plan};
use crate::protocol::{JOB_HOME, Limits, Overlay, PROTOCOL_VERSION, Report, SandboxSpec};
use lab_redact::{Redactor, is_secret_name};

/// The PATH the runner searches for program names, and the one jobs get.
pub const RUNNER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The run's subdirectory the job writes into (its content); everything
/// else in the run directory is the Lab's.
pub const JOB_DIR: &str = lab_fs::JOB_DIR;
/// overlayfs's work directory inside the run directory (never served: it
/// starts with a dot), removed when the job ends.
pub const WORK_DIR: &str = ".work";
/// Default cap on each log file a job's output fills.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 << 20;
/// Longest argument accepted.
pub const MAX_ARG: usize = 128 * 1024;
/// Most arguments accepted.
pub const MAX_ARGS: usize = 4096;

/// Variables never passed to a job, even when allowlisted: they make the
/// program load or run something else (runner-isolation.md).
const REFUSED_ENV: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SSH_AUTH_SOCK",
    "PATH",
    "HOME",
    "LANG",
    "LAB_OUTPUT_DIR",
    "TMPDIR",
    "IFS",
];
const REFUSED_ENV_PREFIXES: &[&str] = &["LD_", "GIT_SSH", "GIT_CONFIG_", "DYLD_"];
/// Programs that run whatever they are told: allowlisting one allows all.
const TRAMPOLINES: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "fish", "env", "busybox", "xargs", "find", "timeout",
    "nice", "nohup", "sudo", "doas", "python", "python3", "perl", "ruby", "node", "awk", "gawk",
    "make", "git",
];

/// Why a job was refused or failed to start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The program is not on the `[runner] programs` allowlist.
    ProgramNotAllowed(String),
    /// A configured program cannot be found or resolved.
    ProgramNotFound(String),
    /// An environment variable name is invalid, refused or not allowlisted.
    EnvNotAllowed(String),
    /// An argument is invalid (NUL, too long, too many).
    BadArgument(&'static str),
    /// The run directory could not be made or written.
    RunDir(std::io::Error),
    /// The sandbox helper could not be started.
    Spawn(std::io::Error),
    /// A workflow file is invalid.
    Workflow(String),
    /// A workflow has exec hooks and they are not allowed and confirmed.
    ExecHooksRefused(String),
    /// The working directory asked for is not allowed.
    Cwd(String),
    /// This machine cannot provide every isolation layer: no job runs.
    Unavailable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ProgramNotAllowed(p) => {
                write!(f, "program {p:?} is not on the [runner] programs allowlist")
            }
            Error::ProgramNotFound(p) => write!(f, "program {p:?} cannot be found"),
            Error::EnvNotAllowed(why) => write!(f, "environment: {why}"),
            Error::BadArgument(why) => write!(f, "invalid argument: {why}"),
            Error::RunDir(e) => write!(f, "run directory: {e}"),
            Error::Spawn(e) => write!(f, "starting the sandbox: {e}"),
            Error::Workflow(why) => write!(f, "workflow: {why}"),
            Error::ExecHooksRefused(why) => write!(f, "exec hooks refused: {why}"),
            Error::Cwd(why) => write!(f, "working directory: {why}"),
            Error::Unavailable(why) => write!(
                f,
                "the runner is unavailable on this machine (it refuses to run jobs with less isolation): {why}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A variable passed to a job: name and value.
pub type EnvVar = (String, String);

/// An allowlisted program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// As configured.
    pub name: String,
    /// Canonical absolute path (what the allowlist matches).
    pub path: PathBuf,
    /// The absolute path as configured or found in [`RUNNER_PATH`], which
    /// is what runs (a venv's `bin/python3` stays that venv's python).
    pub exec_path: PathBuf,
    /// What the job may read to run it: the installation(s) it lives in.
    pub installs: Vec<PathBuf>,
}

/// Runner settings.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// `[runner] programs`: names (searched in [`RUNNER_PATH`]) or absolute paths.
    pub programs: Vec<String>,
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
    /// other runs, exports, job records), so no cwd or `read_paths` entry
    /// may contain it or lie in it.
    pub data_dir: Option<PathBuf>,
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
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with a code.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
    /// Killed at the timeout, with everything it started.
    TimedOut,
    /// Cancelled, with everything it started.
    Cancelled,
    /// The sandbox refused to run it: a required layer failed.
    Refused {
        /// The layer.
        layer: String,
        /// Why.
        error: String,
    },
}

impl Exit {
    /// As JSON for provenance and job records.
    pub fn to_json(&self) -> Value {
        match self {
            Exit::Code(c) => json!({"code": c}),
            Exit::Signal(s) => json!({"signal": s}),
            Exit::TimedOut => json!({"timed_out": true}),
            Exit::Cancelled => json!({"cancelled": true}),
            Exit::Refused { layer, error } => json!({"refused": {"layer": layer, "error": error}}),
        }
    }
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// How it ended.
    pub exit: Exit,
    /// The isolation layers that were in force (from the helper's report).
    pub isolation: Value,
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
    config: RunnerConfig,
    kernel: KernelFeatures,
    plan: Result<Plan, Vec<String>>,
    /// `pasta` (Debian's passt), for jobs with the network allowed.
    pasta: Option<PathBuf>,
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn refused_env(name: &str) -> bool {
    REFUSED_ENV.contains(&name)
        || REFUSED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
        || name.to_ascii_uppercase().ends_with("_PROXY")
}

/// Resolves a program name in [`RUNNER_PATH`] (never the job's PATH) or an
/// absolute path, to its canonical path.
fn resolve_path(requested: &str) -> Option<PathBuf> {
    resolve_both(requested).map(|(_, canonical)| canonical)
}

/// The absolute path found for `requested` and its canonical path.
fn resolve_both(requested: &str) -> Option<(PathBuf, PathBuf)> {
    if requested.is_empty() || requested.contains('\0') {
        return None;
    }
    let candidate = if requested.contains('/') {
        let path = Path::new(requested);
        if !path.is_absolute() {
            return None;
        }
        path.to_path_buf()
    } else {
        RUNNER_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(requested))
            .find(|p| p.is_file())?
    };
    let canonical = std::fs::canonicalize(&candidate).ok()?;
    canonical.is_file().then_some((candidate, canonical))
}

/// The directories a program needs to run: for each of its configured and
/// canonical paths, the nearest ancestor holding `pyvenv.cfg` or
/// `conda-meta/` (a venv or conda env), else the prefix of a `bin/` outside
/// the system directories (pyenv, /opt/tool), else the file alone.
pub fn installs(exec_path: &Path, canonical: &Path) -> Vec<PathBuf> {
    let system = |p: &Path| {
        crate::protocol::SYSTEM_DIRS
            .iter()
            .any(|d| p.starts_with(d))
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for path in [exec_path, canonical] {
        if system(path) {
            continue;
        }
        let env = path
            .ancestors()
            .skip(1)
            .take(6)
            .find(|dir| dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir());
        let prefix = path
            .parent()
            .filter(|bin| bin.file_name().is_some_and(|n| n == "bin"))
            .and_then(Path::parent)
            .filter(|prefix| prefix.parent().is_some() && !system(prefix));
        let dir = env.or(prefix).unwrap_or(path);
        // Never a home directory or one of its parents.
        if is_home_or_parent(dir) {
            found.push(path.to_path_buf());
        } else {
            found.push(dir.to_path_buf());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether `dir` is the user's home directory or one of its parents.
fn is_home_or_parent(dir: &Path) -> bool {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| std::fs::canonicalize(h).ok());
    dir == Path::new("/") || home.is_some_and(|home| home.starts_with(dir))
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
        for name in &config.programs {
            let path = resolve_path(name).ok_or_else(|| Error::ProgramNotFound(name.clone()))?;
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let base = file.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            if TRAMPOLINES.contains(&file) || TRAMPOLINES.contains(&base) {
                warnings.push(format!(
                    "[runner] programs allows {name:?} ({}), which runs whatever its arguments say: any job can run anything",
                    path.display()
                ));
            }
            let (exec_path, _) =
                resolve_both(name).ok_or_else(|| Error::ProgramNotFound(name.clone()))?;
            programs.push(Program {
                name: name.clone(),
                installs: installs(&exec_path, &path),
                exec_path,
                path,
            });
        }
        if let Some(data) = &config.data_dir {
            for path in &config.read_paths {
                if path.starts_with(data) || data.starts_with(path) {
                    return Err(Error::Cwd(format!(
                        "[runner] read_paths entry {} holds or lies in the Lab's data dir {}, which no job may read",
                        path.display(),
                        data.display()
                    )));
                }
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
                let kernel = reported.reported();
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
        let pasta = if config.allow_network {
            // The path found, not the canonical one: pasta is a link to
            // passt, which picks its mode by the name it was run as.
            let found = resolve_both("pasta").map(|(found, _)| found);
            if found.is_none() {
                warnings.push(
                    "--runner-allow-network without pasta (Debian package passt): jobs share the host's network namespace and can reach services on its loopback".to_owned(),
                );
            }
            found
        } else {
            None
        };
        Ok((
            Self {
                programs,
                env_allow: config.env_allow.clone(),
                config,
                kernel,
                plan,
                pasta,
            },
            warnings,
        ))
    }

    /// A redactor of the Lab's own secrets (and known key formats).
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.config.lab_secrets.iter())
    }

    /// What the kernel reported.
    pub fn kernel(&self) -> &KernelFeatures {
        &self.kernel
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
        if is_home_or_parent(&canonical) {
            return Err(Error::Cwd(format!(
                "{} is your home directory or one of its parents; a job would see everything in it. Run from a project directory instead, and {how}",
                canonical.display()
            )));
        }
        let text = canonical.to_string_lossy();
        if text.contains([',', ':', '\\', '\n']) {
            return Err(Error::Cwd(format!(
                "{text:?} contains a character overlayfs options cannot carry (`,` `:` `\\\\` or a newline)"
            )));
        }
        if let Some(data) = &self.config.data_dir
            && (canonical.starts_with(data) || data.starts_with(&canonical))
        {
            return Err(Error::Cwd(format!(
                "{} holds or lies in the Lab's data dir {}, which no job may read; run from a project directory elsewhere (and add it to `read_paths` under [runner] in lab.toml)",
                canonical.display(),
                data.display()
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

    /// The single step of a plain job request, after validation.
    pub fn plan(&self, request: &JobRequest) -> Result<(StepPlan, Vec<EnvVar>, Duration), Error> {
        let (program, passed) = self.validate(request)?;
        let mut argv = vec![argv0(&program.exec_path)];
        argv.extend(request.args.iter().cloned());
        let step = StepPlan {
            label: request.program.clone(),
            path: program.path.clone(),
            exec_path: program.exec_path.clone(),
            installs: program.installs.clone(),
            argv,
            exec_hook: false,
        };
        let timeout = request
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.default_timeout);
        Ok((step, passed, timeout))
    }

    /// The allowlisted program `requested` names, matched by canonical path.
    pub fn resolve(&self, requested: &str) -> Result<&Program, Error> {
        let not_allowed = || Error::ProgramNotAllowed(requested.to_owned());
        let path = resolve_path(requested).ok_or_else(not_allowed)?;
        self.programs
            .iter()
            .find(|p| p.path == path)
            .ok_or_else(not_allowed)
    }

    /// Checks a request without running it: the program is allowlisted, the
    /// arguments are sane, every variable is allowlisted. Returns the program
    /// and the variables to pass (those set in the Lab's environment).
    pub fn validate(&self, request: &JobRequest) -> Result<(&Program, Vec<EnvVar>), Error> {
        let program = self.resolve(&request.program)?;
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
        Ok((program, passed))
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
        if std::fs::read_dir(run_dir)
            .map_err(Error::RunDir)?
            .next()
            .is_some()
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
        let mut env = vec![
            ("PATH".to_owned(), RUNNER_PATH.to_owned()),
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
        let mut isolation = Value::Null;
        let mut exit = Exit::Code(0);
        let mut step_records = Vec::new();
        for step in steps {
            std::fs::File::create(report).map_err(Error::RunDir)?;
            let mut read_only = step.installs.clone();
            read_only.extend(self.config.read_paths.iter().cloned());
            let spec = SandboxSpec {
                version: PROTOCOL_VERSION,
                program: step.exec_path.clone(),
                argv: step.argv.clone(),
                env: env.clone(),
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
            };
            // Hashed before it runs, as the job will see it.
            let program_sha256 = program_hash(step, cwd, &job_dir);
            let Sandboxed {
                mut child,
                mut control,
                network,
            } = self
                .start_sandbox(&spec, Stdio::piped(), Stdio::piped())
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
            let (step_isolation, reported) = read_report(report);
            exit = ended_by.unwrap_or(reported);
            isolation = step_isolation;
            step_records.push(json!({
                "program": step.label,
                "path": step.exec_path.display().to_string(),
                "resolved_path": step.path.display().to_string(),
                "sha256": program_sha256,
                "argv": step.argv.iter().map(|a| redactor.redact_str(a)).collect::<Vec<_>>(),
                "exec_hook": step.exec_hook,
                "exit": exit.to_json(),
            }));
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
        if cwd.is_some() {
            remove_work_dir(&work_dir);
        }
        // No setuid or setgid file the job made survives it (the job ran as
        // the Lab's uid; such a file would run as it).
        if let Err(e) =
            lab_fs::RunRoot::open_ambient(&std::fs::canonicalize(run_dir).map_err(Error::RunDir)?)
                .and_then(|root| root.clear_setid_bits(JOB_DIR))
        {
            eprintln!("lab: clearing setuid bits in {}: {e}", run_dir.display());
        }
        let first = &step_records[0];
        let provenance = json!({
            "version": 2,
            "lab_version": env!("CARGO_PKG_VERSION"),
            "program": first["program"],
            "path": first["path"],
            "resolved_path": first["resolved_path"],
            "sha256": first["sha256"],
            "argv": first["argv"],
            "steps": step_records,
            "cwd": cwd.map(|c| c.display().to_string()),
            "git": cwd.map(crate::git::describe),
            "job_dir": JOB_DIR,
            "env_names": passed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "network_allowed": self.config.allow_network,
            "started": started,
            "ended": now_secs(),
            "exit": exit.to_json(),
            "isolation": isolation,
        });
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
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Workflow(format!("cannot read it: {e}")))?;
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
                    program.installs.clone(),
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

/// `argv[0]`: the full path that runs, so an interpreter that locates its
/// installation from `argv[0]` (Python finds a venv's `pyvenv.cfg` so)
/// finds the right one.
fn argv0(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A short name for a step, for run ids: the program's file name.
pub fn step_name(step: &StepPlan) -> String {
    step.exec_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".to_owned())
}

/// One planned step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// The program as written.
    pub label: String,
    /// Canonical path (allowlist match, hash).
    pub path: PathBuf,
    /// The path executed.
    pub exec_path: PathBuf,
    /// Installations the program needs to read.
    pub installs: Vec<PathBuf>,
    /// argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// Whether this is an exec hook.
    pub exec_hook: bool,
}

/// A workflow file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Workflow {
    #[serde(default)]
    name: String,
    #[serde(default)]
    steps: Vec<WorkflowStep>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowStep {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    exec: bool,
}

impl Runner {
    /// Runs the sandbox once with a harmless program (this binary's
    /// `--version`) in a scratch directory under `scratch_parent`, and
    /// returns the isolation report: which layers this machine provides.
    /// Refused at once, naming the missing kernel features, when
    /// [`Runner::kernel_plan`] says jobs cannot run here.
    pub async fn probe(&self, scratch_parent: &Path) -> Value {
        let plan = match self.kernel_plan() {
            Ok(plan) => plan.clone(),
            Err(e) => {
                return json!({"refused": {"layer": "kernel", "error": e.to_string()}, "kernel": self.kernel.to_json()});
            }
        };
        let dir = scratch_parent.join(format!(".probe-{}", std::process::id()));
        let report = scratch_parent.join(format!(".probe-{}.report", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::File::create(&report).map(drop))
        {
            return json!({"error": e.to_string()});
        }
        let helper = std::fs::canonicalize(&self.config.helper)
            .unwrap_or_else(|_| self.config.helper.clone());
        let spec = SandboxSpec {
            version: PROTOCOL_VERSION,
            program: helper.clone(),
            argv: vec!["lab".into(), "--version".into()],
            env: vec![("PATH".into(), RUNNER_PATH.into())],
            job_dir: dir.clone(),
            cwd: None,
            read_only: vec![helper],
            devices: Vec::new(),
            report: report.clone(),
            network: self.config.allow_network,
            user_mode_network: self.pasta.is_some(),
            limits: self.config.limits.clone(),
            landlock_abi: plan.landlock_abi,
        };
        let result = async {
            let Sandboxed {
                mut child,
                control,
                network,
            } = self
                .start_sandbox(&spec, Stdio::null(), Stdio::null())
                .await?;
            drop(control);
            let waited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            stop_network(network).await;
            waited.map_err(|_| std::io::Error::other("the probe timed out"))?
        }
        .await;
        let (mut isolation, exit) = read_report(&report);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&report);
        match (result, exit) {
            (Err(e), _) => json!({"error": e.to_string()}),
            (Ok(_), Exit::Refused { layer, error }) => {
                json!({"refused": {"layer": layer, "error": error}, "kernel": self.kernel.to_json()})
            }
            (Ok(_), _) => {
                isolation["kernel"] = self.kernel.to_json();
                isolation["plan"] = plan.to_json();
                isolation
            }
        }
    }
}

impl Runner {
    /// Starts `lab __sandbox` with `spec` (one JSON line on its stdin). With
    /// user-mode networking, waits until the helper has made its namespaces,
    /// connects them with pasta (returned: the caller kills it when the job
    /// ends), and sends the go-ahead byte once the namespace has its default
    /// route — nothing, so the helper refuses the job, when pasta failed.
    async fn start_sandbox(
        &self,
        spec: &SandboxSpec,
        stdout: Stdio,
        stderr: Stdio,
    ) -> std::io::Result<Sandboxed> {
        let mut line = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut child = crate::spawn::helper(&self.config.helper)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()?;
        let Some(mut stdin) = child.stdin.take() else {
            return Ok(Sandboxed {
                child,
                control: None,
                network: None,
            });
        };
        stdin.write_all(&line).await?;
        let mut network = None;
        if let (true, Some(pasta)) = (spec.network && spec.user_mode_network, &self.pasta) {
            let mut made = false;
            for _ in 0..500 {
                let lines = read_report_lines(&spec.report);
                if lines.iter().any(|l| matches!(l, Report::Refused { .. })) {
                    break;
                }
                if lines.iter().any(|l| matches!(l, Report::Namespaces { .. })) {
                    made = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let (true, Some(pid)) = (made, child.id()) {
                match crate::spawn::pasta(&self.config.helper, pasta, pid).spawn() {
                    Ok(mut started) => {
                        let mut ready = false;
                        for _ in 0..500 {
                            if has_default_route(pid) {
                                ready = true;
                                break;
                            }
                            if !matches!(started.try_wait(), Ok(None)) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        if ready {
                            stdin.write_all(&[crate::protocol::NETWORK_READY]).await?;
                        } else {
                            eprintln!("lab: pasta could not connect the job's network namespace");
                            let _ = started.start_kill();
                        }
                        network = Some(started);
                    }
                    Err(e) => eprintln!("lab: cannot start pasta: {e}"),
                }
            }
        }
        // Kept open: the way to ask the helper to terminate the job.
        Ok(Sandboxed {
            child,
            control: Some(stdin),
            network,
        })
    }
}

/// A started sandbox helper, the pipe to ask it things, and the job's pasta.
struct Sandboxed {
    child: tokio::process::Child,
    control: Option<tokio::process::ChildStdin>,
    network: Option<tokio::process::Child>,
}

/// Asks the helper to SIGTERM every process of the job (it passes it to
/// the namespace's init, which passes it on): over its stdin, never by a
/// pid that could have been reused.
async fn terminate(control: &mut Option<tokio::process::ChildStdin>) {
    if let Some(pipe) = control
        && pipe.write_all(&[crate::protocol::TERMINATE]).await.is_err()
    {
        *control = None;
    }
}

/// Whether the network namespace of `pid` has a default route yet (pasta
/// configures addresses first, routes last).
fn has_default_route(pid: u32) -> bool {
    let v4 = std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap_or_default();
    let v6 = std::fs::read_to_string(format!("/proc/{pid}/net/ipv6_route")).unwrap_or_default();
    v4.lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        || v6
            .lines()
            .any(|l| l.starts_with("00000000000000000000000000000000 00") && !l.ends_with(" lo"))
}

/// Ends a job's pasta, if it had one.
async fn stop_network(network: Option<tokio::process::Child>) {
    if let Some(mut pasta) = network {
        let _ = pasta.start_kill();
        let _ = pasta.wait().await;
    }
}

/// How long a job has between SIGTERM and SIGKILL on timeout or cancel.
pub const GRACE: Duration = Duration::from_secs(3);

/// A log file of the Lab's (created exclusively in the run directory, where
/// the job cannot write) holding at most about `cap` bytes of output: the
/// first half as it arrives, the last half kept in memory and written at the
/// end after a marker saying how much was left out between.
struct CappedLog {
    file: std::fs::File,
    head_left: u64,
    tail: std::collections::VecDeque<u8>,
    tail_cap: usize,
    omitted: u64,
}

impl CappedLog {
    fn create(dir: &Path, name: &str, cap: u64) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))
            .map_err(Error::RunDir)?;
        Ok(Self {
            file,
            head_left: cap / 2,
            tail: std::collections::VecDeque::new(),
            tail_cap: usize::try_from(cap - cap / 2).unwrap_or(usize::MAX),
            omitted: 0,
        })
    }

    fn write(&mut self, mut bytes: &[u8]) {
        if self.head_left > 0 {
            let n = bytes
                .len()
                .min(usize::try_from(self.head_left).unwrap_or(usize::MAX));
            let _ = self.file.write_all(&bytes[..n]);
            self.head_left -= n as u64;
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        if self.tail.len() > self.tail_cap {
            let excess = self.tail.len() - self.tail_cap;
            self.tail.drain(..excess);
            self.omitted += excess as u64;
        }
    }

    fn finish(mut self) {
        if self.omitted > 0 {
            let _ = write!(
                self.file,
                "\n[lab: {} bytes of output omitted here: the log keeps its first and last parts ([runner] log_max_bytes)]\n",
                self.omitted
            );
        }
        let (a, b) = self.tail.as_slices();
        let _ = self.file.write_all(a);
        let _ = self.file.write_all(b);
        let _ = self.file.sync_all();
    }
}

/// `[runner] devices` entries expanded (`*` in the last segment) to the
/// device files that exist, canonical; anything that is not a device is left
/// out.
pub fn expand_devices(patterns: &[String]) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        let candidates: Vec<PathBuf> =
            match (path.parent(), path.file_name().and_then(|f| f.to_str())) {
                (Some(dir), Some(file)) if file.contains('*') => {
                    let (prefix, suffix) = file.split_once('*').unwrap_or((file, ""));
                    std::fs::read_dir(dir)
                        .map(|entries| {
                            entries
                                .flatten()
                                .filter(|e| {
                                    let name = e.file_name();
                                    let name = name.to_string_lossy();
                                    name.len() >= prefix.len() + suffix.len()
                                        && name.starts_with(prefix)
                                        && name.ends_with(suffix)
                                })
                                .map(|e| e.path())
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => vec![path.to_path_buf()],
            };
        for candidate in candidates {
            let Ok(canonical) = std::fs::canonicalize(&candidate) else {
                continue;
            };
            let is_device = std::fs::metadata(&canonical)
                .is_ok_and(|m| m.file_type().is_char_device() || m.file_type().is_block_device());
            if is_device && canonical.starts_with("/dev") {
                found.push(canonical);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Removes overlayfs's work directory (the kernel leaves a mode-000
/// `work/` in it).
fn remove_work_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn read_report_lines(report: &Path) -> Vec<Report> {
    std::fs::read_to_string(report)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The isolation report and the exit the helper recorded.
fn read_report(report: &Path) -> (Value, Exit) {
    let lines = read_report_lines(report);
    let mut isolation = serde_json::Map::new();
    let mut exit = Exit::Refused {
        layer: "sandbox".into(),
        error: "the sandbox ended without reporting".into(),
    };
    let mut refused = false;
    for line in &lines {
        match line {
            Report::Namespaces { .. }
            | Report::Mounts { .. }
            | Report::Network { .. }
            | Report::Job { .. } => {
                // The layer's own fields, as it reported them.
                if let Ok(Value::Object(map)) = serde_json::to_value(line) {
                    for (k, v) in map {
                        if k != "stage" {
                            isolation.insert(k, v);
                        }
                    }
                }
            }
            Report::Refused { layer, error } => {
                refused = true;
                exit = Exit::Refused {
                    layer: layer.clone(),
                    error: error.clone(),
                };
                isolation.insert(
                    "refused".into(),
                    serde_json::to_value(line).unwrap_or(Value::Null),
                );
            }
            // A refusal is final: the exit init records after it (the job
            // process leaving with REFUSED) does not hide it.
            Report::Exit { code, signal } if !refused => {
                exit = match (code, signal) {
                    (Some(c), _) => Exit::Code(*c),
                    (_, Some(s)) => Exit::Signal(*s),
                    _ => exit,
                };
            }
            _ => {}
        }
    }
    (Value::Object(isolation), exit)
}

/// The SHA-256 of the program a step runs, as the job sees it: a program
/// inside the cwd is seen through the overlay, so when an earlier step left
/// its own copy in the job directory that copy is what runs and what is
/// hashed (`null` when the job put something there that is not a regular
/// file: what would run cannot be told).
fn program_hash(step: &StepPlan, cwd: Option<&Path>, job_dir: &Path) -> Value {
    if let Some(cwd) = cwd {
        for path in [&step.exec_path, &step.path] {
            let Ok(rel) = path.strip_prefix(cwd) else {
                continue;
            };
            let opened = std::fs::canonicalize(job_dir)
                .map_err(lab_fs::Error::Io)
                .and_then(|dir| lab_fs::RunRoot::open_ambient(&dir))
                .and_then(|root| root.open_regular(rel));
            match opened {
                Ok(file) => return json!(sha256_reader(file)),
                Err(lab_fs::Error::NotFound) => {}
                Err(_) => return Value::Null,
            }
        }
    }
    json!(sha256_file(&step.path))
}

fn sha256_file(path: &Path) -> Option<String> {
    sha256_reader(std::fs::File::open(path).ok()?)
}

fn sha256_reader(mut file: std::fs::File) -> Option<String> {
    let mut hash = Sha256::new();
    std::io::copy(&mut file, &mut HashWriter(&mut hash)).ok()?;
    Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::REFUSED;

    fn report(lines: &[&str]) -> (Value, Exit) {
        let dir =
            std::env::temp_dir().join(format!("lab-report-{}-{}", std::process::id(), lines.len()));
        std::fs::write(&dir, lines.join("\n")).unwrap();
        let parsed = read_report(&dir);
        std::fs::remove_file(&dir).unwrap();
        parsed
    }

    #[test]
    fn a_refused_layer_stays_the_outcome() {
        let (isolation, exit) = report(&[
            r#"{"stage":"namespaces","user_namespace":true}"#,
            r#"{"stage":"refused","layer":"Landlock","error":"EPERM"}"#,
            &format!(r#"{{"stage":"exit","code":{REFUSED}}}"#),
        ]);
        assert_eq!(
            exit,
            Exit::Refused {
                layer: "Landlock".into(),
                error: "EPERM".into()
            }
        );
        assert_eq!(isolation["user_namespace"], true);
        assert_eq!(isolation["refused"]["layer"], "Landlock");
    }

    #[test]
    fn exits_and_silence_are_read_as_such() {
        assert_eq!(report(&[r#"{"stage":"exit","code":3}"#]).1, Exit::Code(3));
        assert_eq!(
            report(&[r#"{"stage":"exit","signal":9}"#]).1,
            Exit::Signal(9)
        );
        assert!(
            matches!(report(&[]).1, Exit::Refused { .. }),
            "no report is a refusal, never a success"
        );
    }
}
