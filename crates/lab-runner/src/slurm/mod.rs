//! The Slurm backend (`[runner] backend = "slurm"`): a job is planned
//! here exactly as a local one, then submitted with `sbatch` — argv, no
//! shell, `--export` naming only its allowlisted variables — as a batch
//! script the Lab writes into the run's own `slurm/` directory (which no
//! job sees) whose one line runs `lab __slurm-helper` ([`node`]). On the
//! node the helper checks the typed spec beside the script and runs
//! [`crate::Runner::run_steps`] there: every sandbox layer, the cgroup
//! limits, redaction, the capped logs and provenance, failing closed. Its
//! result comes back in `slurm/result.json`.
//!
//! The Lab follows the job through `squeue --json` (or `scontrol show
//! job -o`), never `sacct`; Slurm decides `timeout`, `node_fail` and
//! `cancelled`, the helper's result the rest. Every command runs by
//! absolute path with a 10 s limit; three failures in a row make the
//! runner unavailable (the last stderr line says why) until a check — one
//! every 15 s — passes again.

pub mod node;
pub mod status;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::backend::{Backend, BoxFuture, Hooks, JobRun, Resources, Update};
use crate::error::Error;
use crate::exit::Exit;
use crate::record::Isolation;
use crate::runner::{JobOutcome, Runner, RunnerConfig, Stream};
use status::{JobStatus, Phase};

/// The run's directory of the Lab's Slurm files: the batch script, the
/// spec, Slurm's own output (the helper's diagnostics) and the result.
pub const SLURM_DIR: &str = "slurm";
/// The batch script.
pub const SCRIPT_FILE: &str = "batch.sh";
/// The typed spec (mode 0600) the helper verifies.
pub const SPEC_FILE: &str = "spec.json";
/// What the helper hands back.
pub const RESULT_FILE: &str = "result.json";
/// Every Slurm command's time limit.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an unavailable (or quiet) cluster is checked again.
pub const RECHECK: Duration = Duration::from_secs(15);
/// Failures in a row that make the runner unavailable.
pub const FAILURES: u32 = 3;
/// Memory (MiB) the allocation has beside the job's own `mem_mb`: the
/// helper's.
const HELPER_MEM_MB: u64 = 64;
/// The longest `--time` asked for (a year): Slurm keeps minutes in 32
/// bits; the helper ends the job at its `timeout_secs` anyway.
const MAX_TIME_MINUTES: u64 = 525_600;
/// How often a job's state is asked for.
const POLL: Duration = Duration::from_secs(1);
/// How often a queued job's place in its partition's queue is asked for.
const POSITION_EVERY: Duration = Duration::from_secs(5);
/// Looks in a row at which Slurm says it does not know a job (and the
/// helper left no result) before the Lab takes it as lost.
const UNKNOWN_LOOKS: u32 = 10;
/// Largest spec, result or script read.
const MAX_FILE: u64 = 1 << 20;

/// `[runner.slurm]`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// The partition jobs go to.
    pub partition: String,
    /// `--account`.
    #[serde(default)]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default)]
    pub qos: Option<String>,
    /// CPUs of a job that asks for none.
    #[serde(default)]
    pub default_cpus: Option<u32>,
    /// MiB of a job that asks for none.
    #[serde(default)]
    pub default_mem_mb: Option<u64>,
    /// Most CPUs a job may ask for.
    #[serde(default)]
    pub max_cpus: Option<u32>,
    /// Most MiB a job may ask for.
    #[serde(default)]
    pub max_mem_mb: Option<u64>,
    /// Most GPUs a job may ask for (0 when unset: none).
    #[serde(default)]
    pub max_gpus: Option<u32>,
    /// Where `sbatch`, `squeue`, `scontrol`, `scancel` and `sinfo` are
    /// (absolute); `[runner] path` when unset.
    #[serde(default)]
    pub bin_dir: Option<PathBuf>,
}

/// A partition, account or QoS name Slurm takes in one argv word.
fn slurm_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(format!(
            "[runner.slurm] {what} {name:?}: letters, digits, `_`, `-` and `.` only"
        ));
    }
    Ok(())
}

impl SlurmConfig {
    /// Reads `[runner.slurm]`; a missing partition, an unknown key, a
    /// name Slurm could not take or a default over its maximum is an
    /// error naming it.
    pub fn from_toml(table: &toml::Table) -> Result<Self, String> {
        let config: SlurmConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| format!("[runner.slurm]: {}", e.message()))?;
        slurm_name("partition", &config.partition)?;
        if let Some(account) = &config.account {
            slurm_name("account", account)?;
        }
        if let Some(qos) = &config.qos {
            slurm_name("qos", qos)?;
        }
        if let Some(dir) = &config.bin_dir
            && !dir.is_absolute()
        {
            return Err(format!(
                "[runner.slurm] bin_dir {}: an absolute directory",
                dir.display()
            ));
        }
        for (what, default, max) in [
            (
                "cpus",
                config.default_cpus.map(u64::from),
                config.max_cpus.map(u64::from),
            ),
            ("mem_mb", config.default_mem_mb, config.max_mem_mb),
        ] {
            if default == Some(0) {
                return Err(format!("[runner.slurm] default_{what} must be at least 1"));
            }
            if let (Some(d), Some(m)) = (default, max)
                && d > m
            {
                return Err(format!(
                    "[runner.slurm] default_{what} = {d} is over max_{what} = {m}"
                ));
            }
        }
        Ok(config)
    }
}

/// The Slurm clients, by absolute path.
#[derive(Clone, Debug)]
struct Tools {
    sbatch: PathBuf,
    squeue: PathBuf,
    scontrol: PathBuf,
    scancel: PathBuf,
    sinfo: PathBuf,
}

impl Tools {
    fn find(config: &SlurmConfig, path: &str) -> Result<Self, String> {
        let dirs: Vec<PathBuf> = match &config.bin_dir {
            Some(dir) => vec![dir.clone()],
            None => path
                .split(':')
                .map(PathBuf::from)
                .filter(|d| d.is_absolute())
                .collect(),
        };
        let find = |name: &str| {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!(
                        "`{name}` is not in {} (install Slurm's clients, or set [runner.slurm] bin_dir)",
                        match &config.bin_dir {
                            Some(d) => d.display().to_string(),
                            None => "[runner] path".to_owned(),
                        }
                    )
                })
        };
        Ok(Tools {
            sbatch: find("sbatch")?,
            squeue: find("squeue")?,
            scontrol: find("scontrol")?,
            scancel: find("scancel")?,
            sinfo: find("sinfo")?,
        })
    }
}

/// Failures in a row, and the last one's line.
#[derive(Debug, Default)]
struct HealthState {
    failures: u32,
    last: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    state: Mutex<HealthState>,
    wake: Condvar,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ok(&self) {
        let mut state = self.lock();
        state.failures = 0;
        state.last = None;
    }

    fn failed(&self, why: &str) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        state.last = Some(why.to_owned());
        if state.failures < FAILURES {
            // The check runs again soon, so three failures in a row are
            // seconds apart, not minutes.
            self.wake.notify_all();
        }
    }

    fn unavailable(&self) -> Option<String> {
        let state = self.lock();
        (state.failures >= FAILURES).then(|| {
            format!(
                "the Slurm cluster did not answer {} times in a row: {}",
                state.failures,
                state.last.as_deref().unwrap_or("no reason given")
            )
        })
    }
}

/// The runner settings a node's helper needs, from the Lab's.
#[derive(Clone, Debug)]
struct NodeSettings {
    path: String,
    read_paths: Vec<PathBuf>,
    devices: Vec<String>,
    log_max_bytes: u64,
    allow_network: bool,
    limits: crate::protocol::Limits,
    /// `[runner] memory_max`, `pids_max`, `cpu_max`: every job's cgroup
    /// limits on the node, unless it asked for less.
    cgroup: crate::cgroup::Wanted,
    data_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// The Slurm backend.
#[derive(Debug)]
pub struct Slurm {
    config: SlurmConfig,
    tools: Result<Tools, String>,
    /// The environment of every Slurm command: `PATH`, and `SLURM_CONF`
    /// when the Lab was started with one.
    env: Vec<(String, String)>,
    health: Arc<Health>,
    /// The `lab` binary (the same path on every node).
    lab: PathBuf,
    node: NodeSettings,
}

/// The last non-empty line of a command's stderr (or its status), short.
fn stderr_line(name: &str, out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().filter(|c| !c.is_control()).take(300).collect())
        .unwrap_or_else(|| format!("exited with {}", out.status));
    format!("{name}: {line}")
}

/// Whether a failed command's message says the cluster cannot be reached
/// (the controller, munge) rather than that it refused the request.
fn unreachable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unable to contact",
        "authentication",
        "munge",
        "socket timed out",
        "connection",
        "communication",
        "zero bytes were transmitted",
        "did not answer within",
        "cannot run",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Reads a regular file the Lab or its helper wrote, never following a
/// link or waiting on a FIFO, at most [`MAX_FILE`] bytes.
pub(crate) fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other("larger than 1 MiB"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to a new file `path` (mode 0600, never through a link,
/// never over an existing file).
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What the helper hands back in `slurm/result.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeResult {
    /// [`node::SPEC_VERSION`].
    pub version: u32,
    /// How the job ended (`None`: it could not start, see `error`).
    pub exit: Option<crate::record::ExitRecord>,
    /// The isolation the node's layers reported.
    pub isolation: Option<Isolation>,
    /// Why the job could not start on the node.
    pub error: Option<String>,
    /// The node's host name.
    pub node: Option<String>,
}

/// Where a job's logs have been read to.
#[derive(Debug, Default, Clone, Copy)]
struct Tail {
    offsets: [u64; 2],
}

impl Tail {
    /// What the logs gained (at most 1 MiB a file a call). Blocking: a
    /// slow shared filesystem stalls this read, so it runs off the async
    /// workers ([`Tail::read_off_workers`]).
    fn read(&mut self, run_dir: &Path) -> Vec<(Stream, Vec<u8>)> {
        use std::io::{Seek as _, SeekFrom};
        let mut chunks = Vec::new();
        for (i, (name, stream)) in [
            ("stdout.log", Stream::Stdout),
            ("stderr.log", Stream::Stderr),
        ]
        .into_iter()
        .enumerate()
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            let Ok(mut file) = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(run_dir.join(name))
            else {
                continue;
            };
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                continue;
            }
            if file.seek(SeekFrom::Start(self.offsets[i])).is_err() {
                continue;
            }
            let mut bytes = Vec::new();
            if file.take(1 << 20).read_to_end(&mut bytes).is_ok() && !bytes.is_empty() {
                self.offsets[i] += bytes.len() as u64;
                chunks.push((stream, bytes));
            }
        }
        chunks
    }

    /// [`Tail::read`] on the blocking pool; hands the chunks to `output`.
    async fn read_off_workers(
        &mut self,
        run_dir: &Path,
        output: &mut (dyn FnMut(Stream, &[u8]) + Send),
    ) {
        let mut tail = std::mem::take(self);
        let dir = run_dir.to_path_buf();
        let Ok((tail, chunks)) = tokio::task::spawn_blocking(move || {
            let chunks = tail.read(&dir);
            (tail, chunks)
        })
        .await
        else {
            return;
        };
        *self = tail;
        for (stream, bytes) in chunks {
            output(stream, &bytes);
        }
    }
}

/// Makes a job's spec unusable for good, so a job the Lab gave up on never
/// starts behind its back: a `result.json` of its own (created exclusively:
/// a real result stays), which the helper refuses to run past.
fn poison(dir: &Path, why: &str) {
    let result = NodeResult {
        version: node::SPEC_VERSION,
        exit: None,
        isolation: None,
        error: Some(format!("the Lab gave up on this job: {why}")),
        node: None,
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&result) {
        let _ = write_new(&dir.join(RESULT_FILE), &bytes);
    }
}

/// Runs `f` on the blocking pool (file reads and writes on a filesystem
/// that may be shared and slow); `None` if the task failed.
async fn off_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

impl Slurm {
    /// The backend for `config`, with the Lab's runner settings; starts
    /// the cluster check (a thread, every [`RECHECK`], sooner after a
    /// failure), which ends with the backend.
    pub fn new(config: SlurmConfig, runner: &RunnerConfig) -> Self {
        let tools = Tools::find(&config, &runner.path);
        let mut env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
        if let Some(conf) = std::env::var_os("SLURM_CONF") {
            env.push(("SLURM_CONF".to_owned(), conf.to_string_lossy().into_owned()));
        }
        let slurm = Slurm {
            config,
            tools,
            env,
            health: Arc::new(Health::default()),
            lab: runner.helper.clone(),
            node: NodeSettings {
                path: runner.path.clone(),
                read_paths: runner.read_paths.clone(),
                devices: runner.devices.clone(),
                log_max_bytes: runner.log_max_bytes,
                allow_network: runner.allow_network,
                limits: runner.limits.clone(),
                cgroup: runner.cgroup,
                data_dir: runner.data_dir.clone(),
                config_file: runner.config_file.clone(),
                key_file: runner.key_file.clone(),
            },
        };
        if let Ok(tools) = &slurm.tools {
            let checker = Checker {
                health: Arc::downgrade(&slurm.health),
                sinfo: tools.sinfo.clone(),
                partition: slurm.config.partition.clone(),
                env: slurm.env.clone(),
            };
            let _ = std::thread::Builder::new()
                .name("lab-slurm-check".into())
                .spawn(move || checker.run());
        }
        slurm
    }

    /// The settings.
    pub fn config(&self) -> &SlurmConfig {
        &self.config
    }

    fn tools(&self) -> Result<&Tools, Error> {
        self.tools
            .as_ref()
            .map_err(|why| Error::Unavailable(why.clone()))
    }

    /// Runs a Slurm client (off the async workers); a failure that says the
    /// cluster cannot be reached counts towards unavailability.
    async fn command(
        &self,
        tool: &Path,
        args: Vec<String>,
        extra_env: Vec<(String, String)>,
        cwd: PathBuf,
    ) -> Result<std::process::Output, String> {
        let tool = tool.to_path_buf();
        let name = tool
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut env = self.env.clone();
        env.extend(extra_env);
        let out = tokio::task::spawn_blocking(move || {
            crate::spawn::tool_output(&tool, &args, &env, &cwd, COMMAND_TIMEOUT)
        })
        .await
        .map_err(|e| format!("{name}: {e}"))?;
        match &out {
            Ok(o) if o.status.success() => self.health.ok(),
            Ok(o) => {
                let line = stderr_line(&name, o);
                if unreachable(&line) {
                    self.health.failed(&line);
                }
            }
            Err(why) => self.health.failed(why),
        }
        out
    }

    /// The sbatch argv for a job in `dir` (its run's `slurm/`).
    fn sbatch_args(&self, job: &JobRun<'_>, dir: &Path, names: &[String]) -> Vec<String> {
        let mut args = vec![
            "--parsable".to_owned(),
            format!("--job-name={}", self.job_name(job)),
            format!("--partition={}", self.config.partition),
        ];
        if let Some(account) = &self.config.account {
            args.push(format!("--account={account}"));
        }
        if let Some(qos) = &self.config.qos {
            args.push(format!("--qos={qos}"));
        }
        args.extend([
            "--nodes=1".to_owned(),
            "--ntasks=1".to_owned(),
            "--no-requeue".to_owned(),
        ]);
        if let Some(cpus) = job.resources.cpus {
            args.push(format!("--cpus-per-task={cpus}"));
        }
        if let Some(mem) = job.resources.mem_mb {
            // The job's cgroup on the node holds it to `mem_mb`; the
            // allocation has room beside it for the helper itself, so the
            // OOM killer finds the job, never the helper that reports it.
            args.push(format!("--mem={}M", mem.saturating_add(HELPER_MEM_MB)));
        }
        if let Some(gpus) = job.resources.gpus.filter(|g| *g > 0) {
            args.push(format!("--gres=gpu:{gpus}"));
        }
        // A backstop: the helper ends the job at timeout_secs exactly.
        args.push(format!(
            "--time={}",
            job.timeout
                .as_secs()
                .div_ceil(60)
                .saturating_add(1)
                .min(MAX_TIME_MINUTES)
        ));
        let out = dir.join("slurm-%j.out").display().to_string();
        args.push(format!("--output={out}"));
        args.push(format!("--error={out}"));
        args.push(format!("--chdir={}", dir.display()));
        args.push(if names.is_empty() {
            "--export=NONE".to_owned()
        } else {
            format!("--export={}", names.join(","))
        });
        args.push(dir.join(SCRIPT_FILE).display().to_string());
        args.push(dir.join(SPEC_FILE).display().to_string());
        args
    }

    /// Submits `job`; its Slurm id, or the job's refusal.
    async fn submit(&self, job: &JobRun<'_>) -> Result<Result<String, Exit>, Error> {
        let tools = self.tools()?.clone();
        if let Some(why) = self.health.unavailable() {
            return Err(Error::Unavailable(why));
        }
        self.check_env(job.passed)?;
        let lab = self.lab.display().to_string();
        if lab.contains(char::is_whitespace) || lab.len() > 200 {
            return Err(Error::Unavailable(format!(
                "the lab binary's path {lab:?} cannot start a batch script (#! takes no spaces, at most 200 bytes)"
            )));
        }
        let dir = job.run_dir.join(SLURM_DIR);
        // Slurm reads `%` and `\\` in --output as patterns and escapes.
        if dir.to_string_lossy().contains(['%', '\\']) {
            return Err(Error::Unavailable(format!(
                "the data dir's path {:?} holds `%` or `\\`, which Slurm's --output would read as a pattern: use a data dir without them",
                job.run_dir.display().to_string()
            )));
        }
        let spec = node::NodeSpec::new(job, &self.node)?;
        let spec_bytes = serde_json::to_vec_pretty(&spec)
            .map_err(|e| Error::RunDir(std::io::Error::other(e)))?;
        let script = node::script(&lab);
        let written = {
            let dir = dir.clone();
            off_workers(move || {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
                write_new(&dir.join(SPEC_FILE), &spec_bytes)?;
                write_new(&dir.join(SCRIPT_FILE), script.as_bytes())
            })
            .await
        };
        written
            .unwrap_or_else(|| Err(std::io::Error::other("the writer task failed")))
            .map_err(Error::RunDir)?;
        let names: Vec<String> = job.passed.iter().map(|(k, _)| k.clone()).collect();
        let args = self.sbatch_args(job, &dir, &names);
        let out = self
            .command(&tools.sbatch, args, job.passed.to_vec(), dir.clone())
            .await;
        // Whether sbatch may have submitted the job though the Lab cannot
        // say under which id: then the spec is made unusable and any job
        // of the run's name cancelled, so nothing runs unwatched.
        let poison_dir = dir.clone();
        let gave_up = |why: String| async move {
            let poisoned = poison_dir.clone();
            let reason = why.clone();
            off_workers(move || poison(&poisoned, &reason)).await;
            let _ = self
                .scancel(&tools, format!("--name={}", self.job_name(job)))
                .await;
            why
        };
        match out {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let id = text.trim().split(';').next().unwrap_or("").to_owned();
                if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    let why = format!(
                        "sbatch answered {:?}, not a job id",
                        text.chars().take(100).collect::<String>()
                    );
                    return Err(Error::Submit(gave_up(why).await));
                }
                Ok(Ok(id))
            }
            Ok(out) => {
                let line = stderr_line("sbatch", &out);
                if unreachable(&line) {
                    Err(Error::Unavailable(gave_up(line).await))
                } else {
                    // Slurm answered, and refused: no job exists.
                    off_workers(move || poison(&dir, "sbatch refused it")).await;
                    Ok(Err(Exit::Refused {
                        layer: "slurm".into(),
                        error: line,
                    }))
                }
            }
            Err(why) => Err(Error::Unavailable(gave_up(why).await)),
        }
    }

    /// `lab-<run id>`: the job's name in Slurm.
    fn job_name(&self, job: &JobRun<'_>) -> String {
        let run_name = job
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("lab-{run_name}")
    }

    /// `scancel ARGS` (a job id, or `--name=…`).
    async fn scancel(&self, tools: &Tools, arg: String) -> Result<std::process::Output, String> {
        self.command(&tools.scancel, vec![arg], Vec::new(), PathBuf::from("/"))
            .await
    }

    /// What Slurm says of job `id` (`None`: it no longer knows it).
    async fn status(&self, tools: &Tools, id: &str) -> Result<Option<JobStatus>, String> {
        let squeue = self
            .command(
                &tools.squeue,
                vec![
                    "--json".into(),
                    "--states=all".into(),
                    format!("--jobs={id}"),
                ],
                Vec::new(),
                PathBuf::from("/"),
            )
            .await;
        let wanted: u64 = id.parse().unwrap_or(0);
        if let Ok(out) = &squeue
            && out.status.success()
            && let Ok(jobs) = status::parse_squeue(&out.stdout)
            && let Some(found) = jobs.into_iter().find(|j| j.id == wanted)
        {
            return Ok(Some(found));
        }
        // Not in squeue's answer (a wrapper that caches, a controller
        // failing over): only scontrol's "Invalid job id" says it is gone.
        let scontrol = self
            .command(
                &tools.scontrol,
                vec!["show".into(), "job".into(), "-o".into(), id.to_owned()],
                Vec::new(),
                PathBuf::from("/"),
            )
            .await?;
        let text = String::from_utf8_lossy(&scontrol.stdout);
        if scontrol.status.success() {
            return Ok(status::parse_scontrol(&text).filter(|s| s.id == wanted));
        }
        let line = stderr_line("scontrol", &scontrol);
        if line.contains("Invalid job id") {
            return Ok(None);
        }
        Err(line)
    }

    /// The place of a pending job in its partition's queue.
    async fn position(&self, tools: &Tools, job: &JobStatus) -> Option<u32> {
        let out = self
            .command(
                &tools.squeue,
                vec![
                    "--json".into(),
                    "--states=PENDING".into(),
                    format!("--partition={}", self.config.partition),
                ],
                Vec::new(),
                PathBuf::from("/"),
            )
            .await
            .ok()?;
        let pending = status::parse_squeue(&out.stdout).ok()?;
        Some(status::position(job, &pending))
    }

    /// Follows Slurm job `id` of the run in `run_dir` to its end.
    async fn follow(
        &self,
        id: &str,
        run_dir: &Path,
        mut hooks: Hooks<'_>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<JobOutcome, Error> {
        let tools = self.tools()?.clone();
        let dir = run_dir.join(SLURM_DIR);
        let mut tail = Tail::default();
        let mut last: Option<Update> = None;
        // Asked to cancel; and whether scancel took it (tried again each
        // look until it does, or the job ends).
        let mut cancelled = false;
        let mut cancel_sent = false;
        let mut unknown = 0u32;
        let mut position: Option<(Instant, Option<u32>)> = None;
        let ended = loop {
            if !cancelled && (*cancel.borrow() || cancel.has_changed().is_err()) {
                cancelled = true;
            }
            if cancelled && !cancel_sent {
                let answer = self.scancel(&tools, id.to_owned()).await;
                match answer {
                    Ok(out) if out.status.success() => cancel_sent = true,
                    Ok(out) => {
                        tracing::warn!("job {id}: {}", stderr_line("scancel", &out));
                    }
                    Err(why) => tracing::warn!("job {id}: {why}"),
                }
            }
            match self.status(&tools, id).await {
                Ok(Some(status)) => {
                    unknown = 0;
                    let update = match status.phase() {
                        Phase::Ended(state) => break Some((state, status)),
                        Phase::Queued => {
                            // The whole partition's queue: asked for at
                            // most every few seconds.
                            let place = match position {
                                Some((at, place)) if at.elapsed() < POSITION_EVERY => place,
                                _ => {
                                    let place = self.position(&tools, &status).await;
                                    position = Some((Instant::now(), place));
                                    place
                                }
                            };
                            Update::Queued {
                                reason: status.reason.clone(),
                                position: place,
                            }
                        }
                        Phase::Running => Update::Running {
                            node: status.node.clone(),
                        },
                    };
                    if last.as_ref() != Some(&update) {
                        (hooks.update)(update.clone());
                        last = Some(update);
                    }
                }
                Ok(None) => {
                    // Slurm says it does not know the job (MinJobAge
                    // passed, or the controller lost it): the helper's
                    // result, if it left one, says how it ended.
                    unknown += 1;
                    let result = dir.join(RESULT_FILE);
                    let has_result = off_workers(move || result.exists()).await == Some(true);
                    if unknown >= UNKNOWN_LOOKS || has_result {
                        break None;
                    }
                }
                Err(_) => {}
            }
            tail.read_off_workers(run_dir, &mut hooks.output).await;
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = cancel.changed(), if !cancelled => {}
            }
        };
        tail.read_off_workers(run_dir, &mut hooks.output).await;
        let result = {
            let file = dir.join(RESULT_FILE);
            off_workers(move || {
                read_private(&file)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<NodeResult>(&bytes).ok())
            })
            .await
            .flatten()
        };
        if ended.is_none() && result.is_none() {
            // Lost: never left to start later, unwatched.
            let poisoned = dir.clone();
            off_workers(move || poison(&poisoned, "Slurm no longer knows the job")).await;
            let _ = self.scancel(&tools, id.to_owned()).await;
        }
        // A job that started and ended between two looks still says where
        // it ran: Slurm's node list, else the helper's host name.
        let node = ended
            .as_ref()
            .and_then(|(_, status)| status.node.clone())
            .or_else(|| result.as_ref().and_then(|r| r.node.clone()));
        if let Some(node) = node {
            let update = Update::Running { node: Some(node) };
            if last.as_ref() != Some(&update) {
                (hooks.update)(update);
            }
        }
        // What the helper does after the job, done again here in case it
        // was killed first (Slurm's KillWait, its own OOM kill): no setuid
        // file the job made survives, the overlay's work dir goes.
        let tidied = {
            let run_dir = run_dir.to_path_buf();
            off_workers(move || {
                let work = run_dir.join(crate::policy::WORK_DIR);
                let overlay = work.exists();
                crate::runner::tidy_after(&run_dir, &work, overlay)
            })
            .await
        };
        if let Some(Err(e)) = tidied {
            tracing::warn!("clearing setuid bits in {}: {e}", run_dir.display());
        }
        let dir_for_outcome = dir.clone();
        Ok(
            off_workers(move || outcome(ended, result, &dir_for_outcome, cancelled))
                .await
                .unwrap_or(JobOutcome {
                    exit: Exit::NodeFail("the Lab could not read how the job ended".into()),
                    isolation: Isolation::default(),
                }),
        )
    }
}

/// How a job ended: Slurm's final state decides `timeout`, `node_fail`,
/// `cancelled` and `oom`; the helper's result the rest (its exit code,
/// its own timeout, the job cgroup's `oom`, a layer it refused).
fn outcome(
    ended: Option<(String, JobStatus)>,
    result: Option<NodeResult>,
    dir: &Path,
    cancelled: bool,
) -> JobOutcome {
    let isolation = result
        .as_ref()
        .and_then(|r| r.isolation.clone())
        .unwrap_or_default();
    let from_helper = result.as_ref().map(|r| match (&r.exit, &r.error) {
        (Some(exit), _) => exit.to_exit().unwrap_or(Exit::Refused {
            layer: "slurm-helper".into(),
            error: "the helper's result holds no exit".into(),
        }),
        (None, error) => Exit::Refused {
            layer: "slurm-helper".into(),
            error: error
                .clone()
                .unwrap_or_else(|| "the job could not start on the node".into()),
        },
    });
    let no_result = || {
        let diagnostics = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
            .filter_map(|e| read_private(&e.path()).ok())
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .find(|t| !t.is_empty());
        Exit::Refused {
            layer: "slurm-helper".into(),
            error: match diagnostics {
                Some(text) => format!(
                    "the helper left no result; it said: {}",
                    text.lines()
                        .last()
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
                None => "the helper left no result".into(),
            },
        }
    };
    let exit = match ended {
        Some((state, status)) => match state.as_str() {
            "TIMEOUT" | "DEADLINE" => Exit::TimedOut,
            "CANCELLED" => match from_helper {
                // The helper finished the job (and saw it so) before the
                // cancel reached it.
                Some(exit) if !matches!(exit, Exit::Cancelled) && !cancelled => exit,
                _ => Exit::Cancelled,
            },
            "NODE_FAIL" | "BOOT_FAIL" => Exit::NodeFail(format!(
                "Slurm says {state} on {}",
                status.node.as_deref().unwrap_or("its node")
            )),
            "OUT_OF_MEMORY" => Exit::Oom,
            "PREEMPTED" => Exit::Signal(15),
            _ => from_helper.unwrap_or_else(no_result),
        },
        None => match from_helper {
            Some(exit) => exit,
            None => {
                Exit::NodeFail("Slurm no longer knows the job and its helper left no result".into())
            }
        },
    };
    JobOutcome { exit, isolation }
}

/// The cluster check.
struct Checker {
    health: Weak<Health>,
    sinfo: PathBuf,
    partition: String,
    env: Vec<(String, String)>,
}

impl Checker {
    /// `sinfo` for the partition, now and then every [`RECHECK`] (a
    /// second after a failure, until three in a row); ends with the
    /// backend.
    fn run(self) {
        while let Some(health) = self.health.upgrade() {
            let answer = crate::spawn::tool_output(
                &self.sinfo,
                &[
                    "--noheader".into(),
                    "--format=%P".into(),
                    format!("--partition={}", self.partition),
                ],
                &self.env,
                Path::new("/"),
                COMMAND_TIMEOUT,
            );
            match answer {
                Ok(out) if out.status.success() => {
                    let listed = String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .any(|l| l.trim().trim_end_matches('*') == self.partition);
                    if listed {
                        health.ok();
                    } else {
                        health.failed(&format!(
                            "sinfo: the cluster has no partition {:?} ([runner.slurm] partition)",
                            self.partition
                        ));
                    }
                }
                Ok(out) => health.failed(&stderr_line("sinfo", &out)),
                Err(why) => health.failed(&why),
            }
            let wait = {
                let state = health.lock();
                if state.failures > 0 && state.failures < FAILURES {
                    Duration::from_secs(1)
                } else {
                    RECHECK
                }
            };
            let state = health.lock();
            let _ = health.wake.wait_timeout(state, wait);
            drop(health);
        }
    }
}

impl Backend for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    /// Checked against `[runner.slurm]`'s maxima (GPUs: none unless
    /// `max_gpus`), defaults filled in.
    fn resources(&self, runner: &Runner, asked: &Resources) -> Result<Resources, Error> {
        let c = &self.config;
        let cpus = asked.cpus.or(c.default_cpus);
        let mem_mb = asked.mem_mb.or(c.default_mem_mb);
        if let (Some(n), Some(max)) = (cpus, c.max_cpus)
            && n > max
        {
            return Err(Error::Resources(format!(
                "cpus {n} is over [runner.slurm] max_cpus = {max}"
            )));
        }
        if let (Some(n), Some(max)) = (mem_mb, c.max_mem_mb)
            && n > max
        {
            return Err(Error::Resources(format!(
                "mem_mb {n} is over [runner.slurm] max_mem_mb = {max}"
            )));
        }
        // `[runner]`'s limits bind every job, here as on the node.
        crate::backend::within_runner_limits(&runner.config.cgroup, cpus, mem_mb)?;
        let gpus = asked.gpus.filter(|g| *g > 0);
        if let Some(n) = gpus
            && n > c.max_gpus.unwrap_or(0)
        {
            return Err(Error::Resources(format!(
                "gpus {n} is over [runner.slurm] max_gpus = {}",
                c.max_gpus.unwrap_or(0)
            )));
        }
        Ok(Resources { cpus, mem_mb, gpus })
    }

    fn check_env(&self, passed: &[crate::runner::EnvVar]) -> Result<(), Error> {
        // Known key formats, whatever the variable is called.
        let keys = lab_redact::Redactor::new(std::iter::empty::<Vec<u8>>());
        for (name, value) in passed {
            if lab_redact::is_secret_name(name) {
                return Err(Error::EnvNotAllowed(format!(
                    "{name} looks secret, and Slurm stores the values of the variables it exports: a secret-looking variable is not passed to a Slurm job"
                )));
            }
            if keys.redact_str(value) != *value {
                return Err(Error::EnvNotAllowed(format!(
                    "{name}'s value holds what looks like a key, and Slurm stores the values of the variables it exports: it is not passed to a Slurm job"
                )));
            }
        }
        Ok(())
    }

    fn unavailable(&self) -> Option<String> {
        match &self.tools {
            Err(why) => Some(why.clone()),
            Ok(_) => self.health.unavailable(),
        }
    }

    fn run<'a>(
        &'a self,
        _runner: &'a Runner,
        job: JobRun<'a>,
        mut hooks: Hooks<'a>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<JobOutcome, Error>> {
        Box::pin(async move {
            let id = match self.submit(&job).await? {
                Ok(id) => id,
                Err(refused) => {
                    return Ok(JobOutcome {
                        exit: refused,
                        isolation: Isolation::default(),
                    });
                }
            };
            (hooks.update)(Update::Submitted {
                slurm_job_id: id.clone(),
            });
            self.follow(&id, job.run_dir, hooks, cancel).await
        })
    }

    fn reattach<'a>(
        &'a self,
        record: &'a crate::jobs::JobRecord,
        run_dir: &'a Path,
        hooks: Hooks<'a>,
        cancel: watch::Receiver<bool>,
    ) -> Option<BoxFuture<'a, Result<JobOutcome, Error>>> {
        // A Slurm id is digits: anything else in a record is never passed
        // to a Slurm command (it could read as an option).
        let id = record.slurm_job_id.as_deref().filter(|id| {
            !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
        })?;
        Some(Box::pin(self.follow(id, run_dir, hooks, cancel)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slurm_table_is_read_strictly() {
        let table = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
        let config = SlurmConfig::from_toml(&table(
            "partition = \"gpu\"\naccount = \"lab-1\"\nmax_cpus = 8\ndefault_cpus = 2\n",
        ))
        .unwrap();
        assert_eq!(config.partition, "gpu");
        assert_eq!(config.max_cpus, Some(8));
        for (bad, says) in [
            ("account = \"x\"\n", "partition"),
            ("partition = \"a,b\"\n", "partition"),
            ("partition = \"p\"\nqos = \"--x y\"\n", "qos"),
            ("partition = \"p\"\nmax_cpu = 3\n", "max_cpu"),
            (
                "partition = \"p\"\ndefault_cpus = 9\nmax_cpus = 8\n",
                "max_cpus",
            ),
            ("partition = \"p\"\nbin_dir = \"bin\"\n", "bin_dir"),
        ] {
            let err = SlurmConfig::from_toml(&table(bad)).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_failed_command_is_unreachable_or_a_refusal() {
        assert!(unreachable(
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
        ));
        assert!(unreachable(
            "sinfo: error: Munge encode failed: Failed to access \"/x/munge.socket\""
        ));
        assert!(!unreachable(
            "sbatch: error: Batch job submission failed: Invalid partition name specified"
        ));
        assert!(!unreachable(
            "sbatch: error: Batch job submission failed: Requested node configuration is not available"
        ));
    }

    #[test]
    fn three_failures_in_a_row_make_it_unavailable_and_one_answer_heals() {
        let health = Health::default();
        health.failed("sinfo: a");
        health.failed("sinfo: b");
        assert_eq!(health.unavailable(), None);
        health.failed("sinfo: munge down");
        assert!(health.unavailable().unwrap().contains("munge down"));
        health.ok();
        assert_eq!(health.unavailable(), None);
    }

    #[test]
    fn slurm_decides_timeout_node_fail_and_cancel_the_helper_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let ended = |state: &str| {
            Some((
                state.to_owned(),
                JobStatus {
                    state: state.into(),
                    node: Some("n1".into()),
                    ..JobStatus::default()
                },
            ))
        };
        let result = |exit: Exit| NodeResult {
            version: node::SPEC_VERSION,
            exit: Some((&exit).into()),
            isolation: None,
            error: None,
            node: None,
        };
        let exit = |e, r, c| outcome(e, r, dir.path(), c).exit;
        assert_eq!(
            exit(ended("FAILED"), Some(result(Exit::Code(3))), false),
            Exit::Code(3)
        );
        assert_eq!(
            exit(ended("COMPLETED"), Some(result(Exit::Oom)), false),
            Exit::Oom
        );
        assert_eq!(
            exit(ended("COMPLETED"), Some(result(Exit::TimedOut)), false),
            Exit::TimedOut
        );
        assert_eq!(exit(ended("TIMEOUT"), None, false), Exit::TimedOut);
        assert_eq!(exit(ended("CANCELLED"), None, true), Exit::Cancelled);
        assert!(
            matches!(exit(ended("NODE_FAIL"), None, false), Exit::NodeFail(w) if w.contains("n1"))
        );
        assert!(matches!(
            exit(ended("COMPLETED"), None, false),
            Exit::Refused { layer, .. } if layer == "slurm-helper"
        ));
        std::fs::write(
            dir.path().join("slurm-4.out"),
            "lab __slurm-helper: the spec is not 0600\n",
        )
        .unwrap();
        assert!(matches!(
            exit(ended("FAILED"), None, false),
            Exit::Refused { error, .. } if error.contains("not 0600")
        ));
        assert!(matches!(exit(None, None, false), Exit::NodeFail(_)));
    }
}
