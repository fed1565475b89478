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

use crate::redact::{Redactor, is_secret_name};
use crate::sandbox::{Limits, SandboxSpec};

/// The PATH the runner searches for program names, and the one jobs get.
pub const RUNNER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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
    /// Canonical absolute path.
    pub path: PathBuf,
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
    let canonical = std::fs::canonicalize(candidate).ok()?;
    canonical.is_file().then_some(canonical)
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
            programs.push(Program {
                name: name.clone(),
                path,
            });
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
        Ok((
            Self {
                programs,
                env_allow: config.env_allow.clone(),
                config,
            },
            warnings,
        ))
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
        let mut argv = vec![argv0(&program.path)];
        argv.extend(request.args.iter().cloned());
        let step = StepPlan {
            label: request.program.clone(),
            path: program.path.clone(),
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
    /// order in the run directory `run_dir` (which must exist and be empty:
    /// the caller creates and registers it first), each through the sandbox,
    /// stopping at the first that does not exit 0. `on_output` gets every
    /// redacted chunk as it is written to `stdout.log` / `stderr.log`;
    /// `report` is a scratch file outside the run directory; sending `true`
    /// on `cancel` cancels. The timeout covers the whole job.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_steps(
        &self,
        steps: &[StepPlan],
        passed: &[EnvVar],
        timeout: Duration,
        run_dir: &Path,
        report: &Path,
        mut on_output: impl FnMut(Stream, &[u8]) + Send,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<JobOutcome, Error> {
        // Redact the Lab's own secrets and every value passed to the job.
        let lab_secrets = std::env::vars_os()
            .filter(|(k, _)| is_secret_name(&k.to_string_lossy()))
            .map(|(_, v)| v.as_encoded_bytes().to_vec());
        let redactor =
            Redactor::new(lab_secrets.chain(passed.iter().map(|(_, v)| v.as_bytes().to_vec())));
        if std::fs::read_dir(run_dir)
            .map_err(Error::RunDir)?
            .next()
            .is_some()
        {
            return Err(Error::RunDir(std::io::Error::other(
                "the run directory is not empty",
            )));
        }
        std::fs::create_dir(run_dir.join("tmp")).map_err(Error::RunDir)?;
        let open_log = |name: &str| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(run_dir.join(name))
                .map_err(Error::RunDir)
        };
        let mut logs = [open_log("stdout.log")?, open_log("stderr.log")?];
        let dir = run_dir.to_string_lossy().into_owned();
        let mut env = vec![
            ("PATH".to_owned(), RUNNER_PATH.to_owned()),
            ("HOME".to_owned(), dir.clone()),
            (
                "LANG".to_owned(),
                std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
            ),
            ("LAB_OUTPUT_DIR".to_owned(), dir.clone()),
            ("TMPDIR".to_owned(), format!("{dir}/tmp")),
        ];
        env.extend(passed.iter().cloned());
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
            let spec = SandboxSpec {
                program: step.path.clone(),
                argv: step.argv.clone(),
                env: env.clone(),
                dir: run_dir.to_path_buf(),
                report: report.to_path_buf(),
                network: self.config.allow_network,
                limits: self.config.limits.clone(),
            };
            let spec_json =
                serde_json::to_vec(&spec).map_err(|e| Error::Spawn(std::io::Error::other(e)))?;
            let mut child = crate::spawn::helper(&self.config.helper)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(Error::Spawn)?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&spec_json).await.map_err(Error::Spawn)?;
            }
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
                                let _ = logs[i].write_all(&out);
                                on_output(stream, &out);
                            }
                        }
                        None => pipes_open = false,
                    },
                    _ = child.wait(), if !exited => exited = true,
                    () = &mut deadline, if ended_by.is_none() => {
                        ended_by = Some(Exit::TimedOut);
                        terminate(report);
                        kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
                        terminating = true;
                    }
                    changed = cancel.changed(), if ended_by.is_none() => {
                        if changed.is_err() || *cancel.borrow() {
                            ended_by = Some(Exit::Cancelled);
                            terminate(report);
                            kill_at.as_mut().reset(tokio::time::Instant::now() + GRACE);
                            terminating = true;
                        }
                    }
                    () = &mut kill_at, if terminating && !exited => {
                        terminating = false;
                        kill_all(&mut child, report).await;
                    }
                }
            }
            let (step_isolation, reported) = read_report(report);
            exit = ended_by.unwrap_or(reported);
            isolation = step_isolation;
            step_records.push(json!({
                "program": step.label,
                "resolved_path": step.path.display().to_string(),
                "sha256": sha256_file(&step.path),
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
                let _ = logs[i].write_all(&out);
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
        for log in &logs {
            let _ = log.sync_all();
        }
        let first = &step_records[0];
        let provenance = json!({
            "version": 1,
            "lab_version": env!("CARGO_PKG_VERSION"),
            "program": first["program"],
            "resolved_path": first["resolved_path"],
            "sha256": first["sha256"],
            "argv": first["argv"],
            "steps": step_records,
            "cwd": dir,
            "env_names": passed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            "network_allowed": self.config.allow_network,
            "started": started,
            "ended": now_secs(),
            "exit": exit.to_json(),
            "isolation": isolation,
        });
        write_atomically(&run_dir.join("provenance.json"), &provenance).map_err(Error::RunDir)?;
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
                canonical
            } else {
                self.resolve(&step.program)?.path.clone()
            };
            let mut argv = vec![argv0(&path)];
            argv.extend(step.args.iter().cloned());
            plan.push(StepPlan {
                label: step.program.clone(),
                path,
                argv,
                exec_hook: step.exec,
            });
        }
        Ok((workflow.name, plan))
    }
}

fn argv0(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One planned step.
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// The program as written.
    pub label: String,
    /// Canonical path to execute.
    pub path: PathBuf,
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
    pub async fn probe(&self, scratch_parent: &Path) -> Value {
        let dir = scratch_parent.join(format!(".probe-{}", std::process::id()));
        let report = scratch_parent.join(format!(".probe-{}.report", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::File::create(&report).map(drop))
        {
            return json!({"error": e.to_string()});
        }
        let spec = SandboxSpec {
            program: self.config.helper.clone(),
            argv: vec!["lab".into(), "--version".into()],
            env: vec![("PATH".into(), RUNNER_PATH.into())],
            dir: dir.clone(),
            report: report.clone(),
            network: self.config.allow_network,
            limits: self.config.limits.clone(),
        };
        let result = async {
            let json = serde_json::to_vec(&spec).map_err(std::io::Error::other)?;
            let mut child = crate::spawn::helper(&self.config.helper)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&json).await?;
            }
            tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .map_err(|_| std::io::Error::other("the probe timed out"))?
        }
        .await;
        let (isolation, exit) = read_report(&report);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&report);
        match (result, exit) {
            (Err(e), _) => json!({"error": e.to_string()}),
            (Ok(_), Exit::Refused { layer, error }) => {
                json!({"refused": {"layer": layer, "error": error}})
            }
            (Ok(_), _) => isolation,
        }
    }
}

/// How long a job has between SIGTERM and SIGKILL on timeout or cancel.
pub const GRACE: Duration = Duration::from_secs(3);

fn init_pid(report: &Path) -> Option<i32> {
    read_report_lines(report)
        .iter()
        .find_map(|v| v.get("init_pid").and_then(Value::as_i64))
        .and_then(|p| i32::try_from(p).ok())
}

/// SIGTERM to every process in the job's PID namespace but its init (which
/// would ignore it): found from the host side by comparing
/// `/proc/PID/ns/pid` with the init's.
fn terminate(report: &Path) {
    let Some(init) = init_pid(report) else { return };
    let Ok(namespace) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != init
            && std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == namespace)
        {
            crate::spawn::terminate(pid);
        }
    }
}

/// SIGKILL the helper and the namespace's init: everything the job started
/// goes with the namespace.
async fn kill_all(child: &mut tokio::process::Child, report: &Path) {
    if let Some(init) = init_pid(report) {
        crate::spawn::kill(init);
    }
    let _ = child.start_kill();
}

fn read_report_lines(report: &Path) -> Vec<Value> {
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
        match line.get("stage").and_then(Value::as_str) {
            Some("namespaces") | Some("job") => {
                if let Some(map) = line.as_object() {
                    for (k, v) in map {
                        if k != "stage" {
                            isolation.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            Some("refused") => {
                refused = true;
                exit = Exit::Refused {
                    layer: line["layer"].as_str().unwrap_or("").to_owned(),
                    error: line["error"].as_str().unwrap_or("").to_owned(),
                };
                isolation.insert("refused".into(), line.clone());
            }
            // A refusal is final: the exit init records after it (the job
            // process leaving with REFUSED) does not hide it.
            Some("exit") if !refused => {
                exit = match (line["code"].as_i64(), line["signal"].as_i64()) {
                    (Some(c), _) => Exit::Code(c as i32),
                    (_, Some(s)) => Exit::Signal(s as i32),
                    _ => exit,
                };
            }
            _ => {}
        }
    }
    (Value::Object(isolation), exit)
}

fn sha256_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
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

/// temp file, fsync, rename.
fn write_atomically(path: &Path, value: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::REFUSED;

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
