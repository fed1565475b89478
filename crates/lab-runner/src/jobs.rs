//! Jobs started through the API: records that survive a restart, a bounded
//! in-memory log of redacted output that server-sent-event clients follow
//! and resume, and cancel.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lab_registry::Registry;
use serde_json::Value;
use tokio::sync::watch;

use crate::error::Error;
use crate::exit::Exit;
use crate::record::{ExitRecord, Isolation};
use crate::runner::{JobRequest, Runner, Stream};

/// Output kept in memory per job for live viewers; older events are dropped
/// (the log files keep everything).
const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;
/// Job record format version: 2 has the SPEC §4 states, `backend`,
/// `exec_path` and `owner`. Version 1 is read too ([`JobRecord::parse`]).
pub const RECORD_VERSION: u32 = 2;

/// Where a job is in its life (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a backend to start it (a Slurm queue).
    Queued,
    /// Started, not ended.
    Running,
    /// Every step exited 0.
    Finished,
    /// A step exited non-zero (its code is in the record's `exit`).
    Failed,
    /// A step was killed by a signal.
    Killed,
    /// Stopped at its timeout.
    Timeout,
    /// Cancelled.
    Cancelled,
    /// Killed for using more memory than its limit. Not produced yet: it
    /// needs the per-job cgroup (SPEC §5 Limits).
    Oom,
    /// The node it ran on failed (a cluster backend).
    NodeFail,
    /// The sandbox refused it (a layer could not be set up), or it could not start.
    Refused,
    /// The Lab stopped while it ran.
    Interrupted,
}

impl JobState {
    /// Every state, in SPEC §4's order.
    pub const ALL: [JobState; 11] = [
        JobState::Queued,
        JobState::Running,
        JobState::Finished,
        JobState::Failed,
        JobState::Killed,
        JobState::Timeout,
        JobState::Cancelled,
        JobState::Oom,
        JobState::NodeFail,
        JobState::Refused,
        JobState::Interrupted,
    ];

    /// The state a finished job's exit puts it in.
    pub fn of(exit: &Exit) -> Self {
        match exit {
            Exit::Code(0) => JobState::Finished,
            Exit::Code(_) => JobState::Failed,
            Exit::Signal(_) => JobState::Killed,
            Exit::TimedOut => JobState::Timeout,
            Exit::Cancelled => JobState::Cancelled,
            Exit::Oom => JobState::Oom,
            Exit::NodeFail(_) => JobState::NodeFail,
            Exit::Refused { .. } => JobState::Refused,
        }
    }

    /// The state an exit as a record or provenance keeps it puts a job
    /// in: `{"code": 0}` finished, `{"code": N}` failed, `{"signal"}`
    /// killed, `{"timed_out"}`, `{"cancelled"}`, `{"oom"}`, `{"refused"}`
    /// and `{"error"}` (it could not start) refused, `{"interrupted"}`;
    /// `None` for an empty one.
    pub fn of_recorded_exit(exit: &ExitRecord) -> Option<Self> {
        Some(match exit {
            ExitRecord { code: Some(0), .. } => JobState::Finished,
            ExitRecord { code: Some(_), .. } => JobState::Failed,
            ExitRecord {
                signal: Some(_), ..
            } => JobState::Killed,
            ExitRecord {
                timed_out: Some(true),
                ..
            } => JobState::Timeout,
            ExitRecord {
                cancelled: Some(true),
                ..
            } => JobState::Cancelled,
            ExitRecord {
                oom: Some(true), ..
            } => JobState::Oom,
            ExitRecord {
                refused: Some(_), ..
            }
            | ExitRecord { error: Some(_), .. } => JobState::Refused,
            ExitRecord {
                interrupted: Some(_),
                ..
            } => JobState::Interrupted,
            ExitRecord {
                node_fail: Some(_), ..
            } => JobState::NodeFail,
            _ => return None,
        })
    }

    /// The word records, the API and `lab run` use.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Killed => "killed",
            JobState::Timeout => "timeout",
            JobState::Cancelled => "cancelled",
            JobState::Oom => "oom",
            JobState::NodeFail => "node_fail",
            JobState::Refused => "refused",
            JobState::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest job record read.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The text of the job record at `path`: a regular file opened without
/// following a link or waiting on a FIFO, at most [`MAX_RECORD_BYTES`].
fn read_record_file(path: &Path) -> Result<String, String> {
    crate::files::read_regular_capped(path, MAX_RECORD_BYTES)
        .map_err(|e| format!("cannot read the job record: {e}"))?
        .ok_or_else(|| format!("the job record is larger than {MAX_RECORD_BYTES} bytes"))
}

/// Who a job ran as, and which process runs it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobOwner {
    /// The Lab's effective uid, which the job ran as.
    pub uid: u32,
    /// A `lab run` process running the job in the foreground: its pid…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// …and its start time (clock ticks after boot, `/proc/PID/stat`'s
    /// 22nd field), so that a reused pid is not taken for it. `None` for
    /// a job of the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl JobOwner {
    /// This process's effective user (a job of the server).
    pub fn current() -> Self {
        Self {
            uid: rustix::process::geteuid().as_raw(),
            pid: None,
            started: None,
        }
    }

    /// This process, running a job in the foreground (`lab run`).
    pub fn this_process() -> Self {
        let pid = std::process::id();
        Self {
            pid: Some(pid),
            started: process_start(pid),
            ..Self::current()
        }
    }

    /// Whether the process that runs the job is still there: for a
    /// foreground job, a process with its pid and start time; a job of the
    /// server is run by no process once the server that started it is gone.
    pub fn is_alive(&self) -> bool {
        match (self.pid, self.started) {
            (Some(pid), Some(started)) => process_start(pid) == Some(started),
            _ => false,
        }
    }
}

/// The start time of process `pid` (clock ticks after boot), from
/// `/proc/PID/stat` (the fields after the command, which may hold spaces
/// and parentheses, so counted from the last `)`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // rest: " S ppid …": field 3 is the first; start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn local_backend() -> String {
    "local".to_owned()
}

/// A job's persisted record (`DATA_DIR/jobs/ID.json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
    /// Format version.
    pub version: u32,
    /// Job id (also its run id).
    pub id: String,
    /// The run registered for it.
    pub run_id: String,
    /// Program as requested.
    pub program: String,
    /// Arguments, redacted.
    pub args: Vec<String>,
    /// Environment variable names passed (never values).
    pub env_names: Vec<String>,
    /// Where it is in its life (a version-1 record's `exited` reads as
    /// `finished`, `timed_out` as `timeout`).
    pub state: JobState,
    /// Exit details, when ended (null while it runs).
    pub exit: Option<ExitRecord>,
    /// Isolation layers in force (null until the job started).
    pub isolation: Option<Isolation>,
    /// Whether it had the network.
    pub network_allowed: bool,
    /// Seconds since the epoch.
    pub created: u64,
    /// Seconds since the epoch, when ended.
    pub ended: Option<u64>,
    /// What "Run again" fills its form with, beside `program`, `args` and
    /// `env_names`: the working directory and timeout asked for, or the
    /// workflow file. Absent in records written before relaunch existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relaunch: Option<Relaunch>,
    /// Where it runs: `local` (the default; version-1 records are local).
    #[serde(default = "local_backend")]
    pub backend: String,
    /// The path executed, as found (a venv's `bin/python3`); `None` for a
    /// workflow (its steps are read from its file) and version-1 records.
    #[serde(default)]
    pub exec_path: Option<String>,
    /// Who it ran as; `None` in version-1 records.
    #[serde(default)]
    pub owner: Option<JobOwner>,
    /// On Slurm: the job's Slurm id, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// On Slurm: the node it runs (or ran) on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// On Slurm, while queued: why it waits (Slurm's `Reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On Slurm, while queued: its place in its partition's queue (1: next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// The resources it was given (CPUs, MiB, GPUs), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::backend::Resources>,
}

impl JobRecord {
    /// The record of a job starting now in run `run_id`, by `owner`:
    /// `running`, its arguments and relaunch redacted by `redactor`. The
    /// one constructor the server's jobs and `lab run` share.
    #[allow(clippy::too_many_arguments)]
    pub fn starting(
        run_id: &str,
        program: String,
        args: &[String],
        env_names: Vec<String>,
        network_allowed: bool,
        relaunch: Relaunch,
        exec_path: Option<String>,
        owner: JobOwner,
        redactor: &lab_redact::Redactor,
    ) -> Self {
        JobRecord {
            version: RECORD_VERSION,
            id: run_id.to_owned(),
            run_id: run_id.to_owned(),
            program,
            args: args.iter().map(|a| redactor.redact_str(a)).collect(),
            env_names,
            state: JobState::Running,
            exit: None,
            isolation: None,
            network_allowed,
            created: now(),
            ended: None,
            relaunch: Some(Relaunch {
                cwd: relaunch.cwd.map(|c| redactor.redact_str(&c)),
                ..relaunch
            }),
            backend: local_backend(),
            exec_path: exec_path.map(|p| redactor.redact_str(&p)),
            owner: Some(owner),
            slurm_job_id: None,
            node: None,
            reason: None,
            queue_position: None,
            resources: None,
        }
    }

    /// The record with what a backend learnt: submitted (queued under its
    /// Slurm id), waiting (why, where in the queue), running (where).
    pub fn update(&mut self, update: &crate::backend::Update) {
        use crate::backend::Update;
        match update {
            Update::Submitted { slurm_job_id } => {
                self.slurm_job_id = Some(slurm_job_id.clone());
                self.state = JobState::Queued;
            }
            Update::Queued { reason, position } => {
                self.state = JobState::Queued;
                self.reason = reason.clone();
                self.queue_position = *position;
            }
            Update::Running { node } => {
                self.state = JobState::Running;
                self.reason = None;
                self.queue_position = None;
                if node.is_some() {
                    self.node = node.clone();
                }
            }
        }
    }

    /// Whether a backend other than this process follows the job (a
    /// cluster's), so that a Lab that stopped does not end it.
    pub fn on_cluster(&self) -> bool {
        self.backend != "local" && self.slurm_job_id.is_some()
    }

    /// The record once the job ended with `outcome` (or could not start).
    pub fn ended(&mut self, outcome: &Result<crate::runner::JobOutcome, Error>) {
        let (state, exit, isolation) = match outcome {
            Ok(outcome) => (
                JobState::of(&outcome.exit),
                ExitRecord::from(&outcome.exit),
                Some(outcome.isolation.clone()),
            ),
            Err(e) => (
                JobState::Refused,
                ExitRecord {
                    error: Some(e.to_string()),
                    ..ExitRecord::default()
                },
                None,
            ),
        };
        self.state = state;
        self.exit = Some(exit);
        self.isolation = isolation;
        self.reason = None;
        self.queue_position = None;
        self.ended = Some(now());
    }

    /// Writes the record into `DATA_DIR/jobs` (atomically), where the
    /// server's job list reads it.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        write_record(&lab_registry::DataDir::new(data_dir).jobs(), self)
    }

    /// Whether this record says the job runs but no process runs it any
    /// more (the server or `lab run` that ran it stopped).
    fn orphaned(&self) -> bool {
        matches!(self.state, JobState::Running | JobState::Queued)
            && !self.on_cluster()
            && !self.owner.as_ref().is_some_and(JobOwner::is_alive)
    }

    /// Reads a record as a file holds it: version 2 as it is, version 1
    /// with its state words mapped (`exited` → `finished`, `timed_out` →
    /// `timeout`) and `backend` `local`; any other version, or text that is
    /// not a record, is an error saying so.
    pub fn parse(text: &str) -> Result<JobRecord, String> {
        let mut value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a job record: {e}"))?;
        let version = value.get("version").and_then(Value::as_u64);
        match version {
            Some(2) => {}
            Some(1) => {
                if let Some(state) = value.get_mut("state") {
                    let renamed = match state.as_str() {
                        Some("exited") => Some("finished"),
                        Some("timed_out") => Some("timeout"),
                        _ => None,
                    };
                    if let Some(renamed) = renamed {
                        *state = Value::from(renamed);
                    }
                }
                value["version"] = Value::from(RECORD_VERSION);
            }
            Some(other) => {
                return Err(format!(
                    "a job record of version {other}, which this Lab (version {RECORD_VERSION}) cannot read"
                ));
            }
            None => return Err("not a job record: no version".to_owned()),
        }
        serde_json::from_value(value).map_err(|e| format!("not a job record: {e}"))
    }
}

/// One entry of the job list: a job's record, or a record file that could
/// not be read (listed, never skipped).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum JobEntry {
    /// A job's record.
    Record(Box<JobRecord>),
    /// A record file this Lab cannot read.
    Unreadable(UnreadableRecord),
}

impl JobEntry {
    /// The job id (for an unreadable record, its file's name).
    pub fn id(&self) -> &str {
        match self {
            JobEntry::Record(r) => &r.id,
            JobEntry::Unreadable(u) => &u.id,
        }
    }

    /// Seconds since the epoch it was created (for an unreadable record,
    /// when its file last changed).
    pub fn created(&self) -> u64 {
        match self {
            JobEntry::Record(r) => r.created,
            JobEntry::Unreadable(u) => u.created,
        }
    }

    /// The record, when it could be read.
    pub fn record(&self) -> Option<&JobRecord> {
        match self {
            JobEntry::Record(r) => Some(r.as_ref()),
            JobEntry::Unreadable(_) => None,
        }
    }
}

/// A record file in `DATA_DIR/jobs` that could not be read: listed with
/// `state` `error` and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableRecord {
    /// The file's name without `.json`.
    pub id: String,
    /// Always `error`.
    pub state: &'static str,
    /// Why it could not be read.
    pub error: String,
    /// When the file last changed, in seconds since the epoch.
    pub created: u64,
}

/// How a job was asked for, for running it again (the record in the data
/// dir is the source: never files in the run directory, which the job
/// could forge).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relaunch {
    /// The working directory requested (`None`: the job's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The timeout in force, in seconds.
    pub timeout_secs: u64,
    /// For a workflow: its file (its steps are read from it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// One output event for live viewers.
#[derive(Clone, Debug)]
pub struct LogEvent {
    /// Sequence number (SSE id), from 1.
    pub seq: u64,
    /// `stdout`, `stderr`, or `end`.
    pub kind: &'static str,
    /// The redacted text.
    pub text: String,
}

#[derive(Debug, Default)]
struct LogBuffer {
    events: VecDeque<LogEvent>,
    bytes: usize,
    next: u64,
    done: bool,
}

#[derive(Debug)]
struct Job {
    record: Mutex<JobRecord>,
    log: Mutex<LogBuffer>,
    seq: watch::Sender<u64>,
    cancel: watch::Sender<bool>,
}

impl Job {
    /// A job of the table, with `record`, and the receiver its cancel
    /// reaches.
    fn new(record: &JobRecord) -> (Arc<Job>, watch::Receiver<bool>) {
        let (seq, _) = watch::channel(0u64);
        let (cancel, cancel_rx) = watch::channel(false);
        let job = Arc::new(Job {
            record: Mutex::new(record.clone()),
            log: Mutex::new(LogBuffer::default()),
            seq,
            cancel,
        });
        (job, cancel_rx)
    }
}

/// What a viewer gets: the events after its last id, whether the job is
/// done, and whether events were dropped before them.
#[derive(Debug)]
pub struct LogSlice {
    /// New events.
    pub events: Vec<LogEvent>,
    /// No more will come.
    pub done: bool,
    /// Some events between the viewer's last id and these were dropped.
    pub gap: bool,
}

/// The job table.
#[derive(Debug)]
pub struct JobManager {
    runner: Runner,
    registry: Arc<Registry>,
    data_dir: PathBuf,
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    records: Mutex<BTreeMap<String, JobRecord>>,
    unreadable: Mutex<Vec<UnreadableRecord>>,
    /// When the records were last read from the data dir.
    loaded: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn write_record(dir: &Path, record: &JobRecord) -> std::io::Result<()> {
    lab_registry::data_dir::write_json(dir, &format!("{}.json", record.id), record)
}

/// The record of job `id` in `data_dir` (for a server without the
/// runner, which keeps no job table): read as the job table reads it (a
/// regular file, capped, its id its name), one whose owner is gone shown
/// as `interrupted` (the file is not changed); `None` when there is none.
pub fn read_record(data_dir: &Path, id: &str) -> Option<JobRecord> {
    lab_registry::RunId::parse(id).ok()?;
    let path = lab_registry::DataDir::new(data_dir)
        .jobs()
        .join(format!("{id}.json"));
    let mut record = read_record_file(&path)
        .and_then(|text| JobRecord::parse(&text))
        .ok()
        .filter(|r| r.id == id)?;
    if record.orphaned() {
        record.state = JobState::Interrupted;
    }
    Some(record)
}

/// How often the records are read again for jobs started by other
/// processes (`lab run`).
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The job records in `jobs_dir` (version 1 read as version 2), but those
/// in `skip` (jobs this process runs, whose records it holds): a record
/// that says its job runs while no process runs it (the server or `lab
/// run` that ran it stopped) is marked interrupted (and written so). A
/// record that cannot be read is kept as an [`UnreadableRecord`].
#[allow(clippy::type_complexity)]
fn load_records<T>(
    jobs_dir: &Path,
    skip: &BTreeMap<String, T>,
    persist: bool,
) -> std::io::Result<(BTreeMap<String, JobRecord>, Vec<UnreadableRecord>)> {
    let mut records = BTreeMap::new();
    let mut unreadable = Vec::new();
    for entry in std::fs::read_dir(jobs_dir)?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // The writer's temporary files and the helper's reports are
        // not records.
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        if name.starts_with('.') || skip.contains_key(id) {
            continue;
        }
        let meta = entry.metadata();
        let created = meta
            .as_ref()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_default();
        // A regular file (no link followed, no FIFO waited on), at most
        // MAX_RECORD_BYTES, whose id is its file's name.
        let read = if meta.is_ok_and(|m| m.is_file()) {
            read_record_file(&path).and_then(|text| JobRecord::parse(&text))
        } else {
            Err("the job record is not a regular file".to_owned())
        }
        .and_then(|record| {
            if record.id != id || lab_registry::RunId::parse(&record.id).is_err() {
                Err(format!(
                    "the job record's id {:?} is not its file's name",
                    record.id.chars().take(80).collect::<String>()
                ))
            } else {
                Ok(record)
            }
        });
        let mut record = match read {
            Ok(record) => record,
            Err(error) => {
                unreadable.push(UnreadableRecord {
                    id: id.to_owned(),
                    state: "error",
                    error,
                    created,
                });
                continue;
            }
        };
        if record.orphaned() {
            // Another process's record (a `lab run`'s, by pid) is never
            // rewritten here: it is shown interrupted, and its owner, if
            // only this server cannot see it (another pid namespace),
            // still writes how it ended. A job of a server that stopped is
            // marked so on disk once, when the next server opens the table.
            let others = record.owner.as_ref().is_some_and(|o| o.pid.is_some());
            record.state = JobState::Interrupted;
            record.exit = Some(ExitRecord {
                interrupted: Some("the Lab stopped while the job ran".to_owned()),
                ..ExitRecord::default()
            });
            record.ended = Some(now());
            // A record that cannot be rewritten is still listed, as
            // interrupted; it never stops the Lab from starting.
            if persist
                && !others
                && let Err(e) = write_record(jobs_dir, &record)
            {
                tracing::warn!(
                    "warning: job record {}: cannot mark it interrupted: {e}",
                    path.display()
                );
            }
        }
        records.insert(record.id.clone(), record);
    }
    Ok((records, unreadable))
}

impl JobManager {
    /// Loads the job records in `DATA_DIR/jobs` (version 1 read as
    /// version 2); a job recorded as running was interrupted by the Lab
    /// stopping, and is marked so (and written as version 2). A record
    /// that cannot be read is kept as an [`UnreadableRecord`] and listed.
    pub fn open(runner: Runner, registry: Arc<Registry>, data_dir: &Path) -> std::io::Result<Self> {
        let layout = lab_registry::DataDir::new(data_dir);
        layout.ensure()?;
        let (records, unreadable) =
            load_records(&layout.jobs(), &BTreeMap::<String, ()>::new(), true)?;
        Ok(Self {
            runner,
            registry,
            data_dir: data_dir.to_path_buf(),
            jobs: Mutex::new(BTreeMap::new()),
            records: Mutex::new(records),
            unreadable: Mutex::new(unreadable),
            loaded: Mutex::new(Instant::now()),
        })
    }

    /// Reads the records again, at most once a second: jobs `lab run`
    /// started since (each its own process, writing the same records)
    /// appear, and end, here too. Blocking (a directory of small files).
    fn reload(&self) {
        {
            let mut loaded = lock(&self.loaded);
            if loaded.elapsed() < RELOAD_EVERY {
                return;
            }
            *loaded = Instant::now();
        }
        let jobs_dir = lab_registry::DataDir::new(&self.data_dir).jobs();
        let live: BTreeMap<String, ()> = lock(&self.jobs).keys().map(|k| (k.clone(), ())).collect();
        if let Ok((records, unreadable)) = load_records(&jobs_dir, &live, false) {
            *lock(&self.records) = records;
            *lock(&self.unreadable) = unreadable;
        }
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Every job, newest first, with the record files that could not be
    /// read among them.
    pub fn list(&self) -> Vec<JobEntry> {
        self.reload();
        let mut records = lock(&self.records).clone();
        for job in lock(&self.jobs).values() {
            let record = lock(&job.record).clone();
            records.insert(record.id.clone(), record);
        }
        let mut all: Vec<JobEntry> = records
            .into_values()
            .map(|r| JobEntry::Record(Box::new(r)))
            .collect();
        all.extend(
            lock(&self.unreadable)
                .iter()
                .cloned()
                .map(JobEntry::Unreadable),
        );
        all.sort_by(|a, b| {
            b.created()
                .cmp(&a.created())
                .then_with(|| b.id().cmp(a.id()))
        });
        all
    }

    /// One job.
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        if let Some(job) = lock(&self.jobs).get(id) {
            return Some(lock(&job.record).clone());
        }
        self.reload();
        lock(&self.records).get(id).cloned()
    }

    /// Starts a job; returns its record at once (`running` here, `queued`
    /// on a cluster).
    pub fn start(self: &Arc<Self>, request: JobRequest) -> Result<JobRecord, Error> {
        self.runner.startable()?;
        // An absolute path (Run again's recorded `exec_path`): allowed by
        // its canonical path and run by that path, as `lab run` runs what
        // it found; a name resolves in `[runner] path`.
        let (step, passed, timeout) = if request.program.starts_with('/') {
            let found = self.runner.resolve_for_caller(&request.program, None)?;
            self.runner.plan_found(&request, &found)?
        } else {
            self.runner.plan(&request)?
        };
        let resources = self.runner.resources(request.resources.as_ref())?;
        self.runner.backend().check_env(&passed)?;
        let cwd = request
            .cwd
            .as_deref()
            .map(|cwd| self.runner.check_cwd(cwd, self.registry.allowed_roots()))
            .transpose()?;
        let relaunch = Relaunch {
            cwd: request.cwd.as_ref().map(|c| c.display().to_string()),
            timeout_secs: timeout.as_secs(),
            workflow: None,
        };
        self.launch(Launch {
            id_name: crate::runner::step_name(&step),
            exec_path: Some(step.exec_path.display().to_string()),
            program: request.program.clone(),
            args: request.args.clone(),
            steps: vec![step],
            passed,
            cwd,
            timeout,
            relaunch,
            resources,
        })
    }

    /// Starts a workflow (a file already known to lie under an allowed
    /// root); refused before any step runs if it has exec hooks that are not
    /// both allowed and confirmed.
    pub fn start_workflow(
        self: &Arc<Self>,
        file: &Path,
        confirm_exec_hooks: bool,
    ) -> Result<JobRecord, Error> {
        self.runner.startable()?;
        let resources = self.runner.resources(None)?;
        let planned = plan_workflow_job(&self.runner, &self.registry, file, confirm_exec_hooks)?;
        let (file, steps, cwd) = (planned.file, planned.steps, planned.cwd);
        let label = if planned.name == "workflow" {
            "workflow".to_owned()
        } else {
            format!("workflow {}", planned.name)
        };
        let id_name = planned.name;
        let timeout = self.runner.default_timeout();
        let relaunch = Relaunch {
            cwd: None,
            timeout_secs: timeout.as_secs(),
            workflow: Some(file.display().to_string()),
        };
        self.launch(Launch {
            id_name,
            exec_path: None,
            program: label,
            args: vec![file.display().to_string()],
            steps,
            passed: Vec::new(),
            cwd: Some(cwd),
            timeout,
            relaunch,
            resources,
        })
    }

    fn launch(self: &Arc<Self>, launch: Launch) -> Result<JobRecord, Error> {
        let Launch {
            id_name,
            exec_path,
            program,
            args,
            steps,
            passed,
            cwd,
            timeout,
            relaunch,
            resources,
        } = launch;
        // Registered at once, so the UI can open the run while it runs.
        let run = lab_registry::DataDir::new(&self.data_dir)
            .create_job_run(&self.registry, &id_name)
            .map_err(|e| Error::RunDir(std::io::Error::other(e.to_string())))?;
        let run_dir = run.root.clone();
        let mut record = JobRecord::starting(
            run.id.as_str(),
            program,
            &args,
            passed.iter().map(|(k, _)| k.clone()).collect(),
            self.runner.network_allowed(),
            relaunch,
            exec_path,
            JobOwner::current(),
            &self.runner.redactor(),
        );
        self.runner.describe(&mut record, &resources);
        let jobs_dir = lab_registry::DataDir::new(&self.data_dir).jobs();
        let (job, cancel_rx) = Job::new(&record);
        // In the table before its record is on disk: a reload meanwhile
        // never takes the record for an orphan's.
        lock(&self.jobs).insert(record.id.clone(), Arc::clone(&job));
        if let Err(e) = write_record(&jobs_dir, &record) {
            lock(&self.jobs).remove(&record.id);
            return Err(Error::RunDir(e));
        }
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let report = jobs_dir.join(format!("{}.report", job_id(&job)));
            let job_run = crate::backend::JobRun {
                steps: &steps,
                passed: &passed,
                cwd: cwd.as_deref(),
                timeout,
                resources,
                run_dir: &run_dir,
                report: &report,
            };
            let hooks = hooks(&job, &jobs_dir);
            let outcome = manager.runner.run_job(job_run, hooks, cancel_rx).await;
            manager.finish(&job, &jobs_dir, &outcome);
        });
        Ok(record)
    }

    /// Records how `job` ended, and tells its viewers.
    fn finish(
        &self,
        job: &Arc<Job>,
        jobs_dir: &Path,
        outcome: &Result<crate::runner::JobOutcome, Error>,
    ) {
        let finished = {
            let mut record = lock(&job.record);
            record.ended(outcome);
            record.clone()
        };
        let exit = finished.exit.clone().unwrap_or_default();
        if let Err(e) = write_record(jobs_dir, &finished) {
            tracing::error!("cannot record job {}: {e}", finished.id);
        }
        lock(&self.records).insert(finished.id.clone(), finished);
        push(job, "end", exit.to_string());
    }

    /// Follows again the jobs a cluster still runs for an earlier Lab
    /// (their records say queued or running, with a Slurm id): they are
    /// this Lab's jobs now, their logs read from the start. Needs a Tokio
    /// runtime.
    pub fn reattach(self: &Arc<Self>) {
        let jobs_dir = lab_registry::DataDir::new(&self.data_dir).jobs();
        let waiting: Vec<JobRecord> = lock(&self.records)
            .values()
            .filter(|r| matches!(r.state, JobState::Queued | JobState::Running))
            .filter(|r| r.on_cluster() && r.backend == self.runner.backend().name())
            // A `lab run` still following its own job keeps it.
            .filter(|r| {
                !r.owner
                    .as_ref()
                    .is_some_and(|o| o.pid.is_some() && o.is_alive())
            })
            .cloned()
            .collect();
        for mut record in waiting {
            let Some(run) = lab_registry::RunId::parse(&record.run_id)
                .ok()
                .and_then(|id| self.registry.get(&id).ok())
            else {
                continue;
            };
            record.owner = Some(JobOwner::current());
            let (job, cancel_rx) = Job::new(&record);
            lock(&self.jobs).insert(record.id.clone(), Arc::clone(&job));
            lock(&self.records).remove(&record.id);
            if let Err(e) = write_record(&jobs_dir, &record) {
                tracing::warn!("job {}: cannot take it over: {e}", record.id);
            }
            tracing::info!(
                "following job {} (Slurm job {}) again",
                record.id,
                record.slurm_job_id.as_deref().unwrap_or("?")
            );
            let manager = Arc::clone(self);
            let jobs_dir = jobs_dir.clone();
            let run_dir = run.root.clone();
            tokio::spawn(async move {
                let hooks = hooks(&job, &jobs_dir);
                let followed = manager
                    .runner
                    .backend()
                    .reattach(&record, &run_dir, hooks, cancel_rx);
                let outcome = match followed {
                    Some(follow) => follow.await,
                    None => return,
                };
                manager.finish(&job, &jobs_dir, &outcome);
            });
        }
    }

    /// Asks a running job to stop. `false` when it is not running here.
    pub fn cancel(&self, id: &str) -> bool {
        match lock(&self.jobs).get(id) {
            Some(job)
                if matches!(
                    lock(&job.record).state,
                    JobState::Running | JobState::Queued
                ) =>
            {
                let _ = job.cancel.send(true);
                true
            }
            _ => false,
        }
    }

    /// Events after `after`, and a receiver that changes when more arrive.
    /// `None` when the job's output is not in memory (from before a restart).
    pub fn log_since(&self, id: &str, after: u64) -> Option<(LogSlice, watch::Receiver<u64>)> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let rx = job.seq.subscribe();
        let log = lock(&job.log);
        let first = log.events.front().map(|e| e.seq).unwrap_or(log.next + 1);
        let events = log
            .events
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect();
        Some((
            LogSlice {
                events,
                done: log.done,
                gap: after + 1 < first,
            },
            rx,
        ))
    }
}

/// A validated job about to be launched.
struct Launch {
    /// Base of the run id.
    id_name: String,
    /// The path executed (a plain job's program as found).
    exec_path: Option<String>,
    /// Program (or workflow label) as the record shows it.
    program: String,
    /// Arguments as the record shows them (redacted when recorded).
    args: Vec<String>,
    steps: Vec<crate::runner::StepPlan>,
    passed: Vec<crate::runner::EnvVar>,
    cwd: Option<PathBuf>,
    timeout: std::time::Duration,
    relaunch: Relaunch,
    resources: crate::backend::Resources,
}

/// A workflow job planned: its name (`workflow` when the file names none),
/// its canonical file, its steps and its working directory (the file's).
#[derive(Debug)]
pub struct WorkflowJob {
    /// The workflow's name, or `workflow`.
    pub name: String,
    /// The workflow file, canonical.
    pub file: PathBuf,
    /// Its steps.
    pub steps: Vec<crate::runner::StepPlan>,
    /// Its directory, checked as a job's cwd.
    pub cwd: PathBuf,
}

/// Plans the workflow in `file` (absolute, under an allowed root) as one
/// job: the one way the server's jobs and `lab run --workflow` do.
pub fn plan_workflow_job(
    runner: &Runner,
    registry: &Registry,
    file: &Path,
    confirm_exec_hooks: bool,
) -> Result<WorkflowJob, Error> {
    let file = workflow_under_roots(registry, file)?;
    let (name, steps) = runner.plan_workflow(&file, confirm_exec_hooks)?;
    let cwd = runner.check_cwd(
        file.parent().unwrap_or(Path::new("/")),
        registry.allowed_roots(),
    )?;
    Ok(WorkflowJob {
        name: if name.is_empty() {
            "workflow".to_owned()
        } else {
            name
        },
        file,
        steps,
        cwd,
    })
}

/// The canonical path of a workflow file, which must be absolute and lie
/// under an allowed root (compared by component).
pub fn workflow_under_roots(registry: &Registry, file: &Path) -> Result<PathBuf, Error> {
    if !file.is_absolute() {
        return Err(Error::Workflow("the workflow path must be absolute".into()));
    }
    let canonical = std::fs::canonicalize(file)
        .ok()
        .filter(|p| p.is_file())
        .filter(|p| registry.is_under_allowed_root(p))
        .ok_or_else(|| {
            Error::Workflow("the workflow file is not a file under an allowed root".into())
        })?;
    Ok(canonical)
}

/// The hooks a job's backend reports through: output to the job's live
/// log, updates to its record (written, so other processes see them).
fn hooks<'a>(job: &Arc<Job>, jobs_dir: &Path) -> crate::backend::Hooks<'a> {
    let sink_job = Arc::clone(job);
    let update_job = Arc::clone(job);
    let jobs_dir = jobs_dir.to_path_buf();
    crate::backend::Hooks {
        output: Box::new(move |stream: Stream, bytes: &[u8]| {
            let kind = match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            push(&sink_job, kind, String::from_utf8_lossy(bytes).into_owned());
        }),
        update: Box::new(move |update: crate::backend::Update| {
            let record = {
                let mut record = lock(&update_job.record);
                record.update(&update);
                record.clone()
            };
            if let Err(e) = write_record(&jobs_dir, &record) {
                tracing::warn!("job {}: cannot record its state: {e}", record.id);
            }
        }),
    }
}

fn job_id(job: &Job) -> String {
    lock(&job.record).id.clone()
}

fn push(job: &Job, kind: &'static str, text: String) {
    let seq = {
        let mut log = lock(&job.log);
        log.next += 1;
        let seq = log.next;
        log.bytes += text.len();
        log.events.push_back(LogEvent { seq, kind, text });
        if kind == "end" {
            log.done = true;
        }
        while log.bytes > MAX_LOG_BYTES && log.events.len() > 1 {
            if let Some(old) = log.events.pop_front() {
                log.bytes -= old.text.len();
            }
        }
        seq
    };
    job.seq.send_replace(seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_are_the_documented_strings() {
        let words = [
            "queued",
            "running",
            "finished",
            "failed",
            "killed",
            "timeout",
            "cancelled",
            "oom",
            "node_fail",
            "refused",
            "interrupted",
        ];
        for (state, text) in JobState::ALL.into_iter().zip(words) {
            assert_eq!(state.as_str(), text);
            assert_eq!(serde_json::to_value(state).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<JobState>(text.into()).unwrap(),
                state
            );
        }
        // Version 1's words are read only through a version-1 record.
        for old in ["exited", "timed_out", "done"] {
            assert!(serde_json::from_value::<JobState>(old.into()).is_err());
        }
    }

    #[test]
    fn an_exit_maps_to_its_state() {
        for (exit, state) in [
            (Exit::Code(0), JobState::Finished),
            (Exit::Code(2), JobState::Failed),
            (Exit::Code(-1), JobState::Failed),
            (Exit::Signal(9), JobState::Killed),
            (Exit::TimedOut, JobState::Timeout),
            (Exit::Cancelled, JobState::Cancelled),
            (Exit::Oom, JobState::Oom),
            (
                Exit::Refused {
                    layer: "seccomp".into(),
                    error: "x".into(),
                },
                JobState::Refused,
            ),
        ] {
            assert_eq!(JobState::of(&exit), state, "{exit:?}");
        }
    }

    #[test]
    fn a_recorded_exit_gives_the_state_its_exit_did() {
        for exit in [
            Exit::Code(0),
            Exit::Code(3),
            Exit::Signal(9),
            Exit::TimedOut,
            Exit::Cancelled,
            Exit::Oom,
            Exit::Refused {
                layer: "x".into(),
                error: "y".into(),
            },
        ] {
            assert_eq!(
                JobState::of_recorded_exit(&ExitRecord::from(&exit)),
                Some(JobState::of(&exit)),
                "{exit:?}"
            );
        }
        assert_eq!(JobState::of_recorded_exit(&ExitRecord::default()), None);
        // A record whose exit is not one of these shapes is not read.
        assert!(serde_json::from_str::<ExitRecord>(r#"{"code": "0"}"#).is_err());
    }

    #[test]
    fn what_a_backend_learns_goes_into_the_record_and_a_cluster_job_is_no_orphan() {
        use crate::backend::Update;
        let mut record = JobRecord::starting(
            "sleep-0a1b2c",
            "sleep".into(),
            &["5".into()],
            Vec::new(),
            false,
            Relaunch {
                cwd: None,
                timeout_secs: 60,
                workflow: None,
            },
            Some("/usr/bin/sleep".into()),
            // A process that is gone.
            JobOwner {
                uid: 0,
                pid: Some(u32::MAX),
                started: Some(1),
            },
            &lab_redact::Redactor::new(std::iter::empty::<Vec<u8>>()),
        );
        record.backend = "slurm".into();
        assert!(record.orphaned(), "not yet submitted: its Lab is gone");
        record.update(&Update::Submitted {
            slurm_job_id: "42".into(),
        });
        assert_eq!(record.state, JobState::Queued);
        assert!(!record.orphaned(), "Slurm still has it");
        record.update(&Update::Queued {
            reason: Some("PartitionDown".into()),
            position: Some(2),
        });
        assert_eq!(
            (record.reason.as_deref(), record.queue_position),
            (Some("PartitionDown"), Some(2))
        );
        record.update(&Update::Running {
            node: Some("node7".into()),
        });
        assert_eq!(record.state, JobState::Running);
        assert_eq!(record.reason, None);
        assert_eq!(record.queue_position, None);
        assert_eq!(record.node.as_deref(), Some("node7"));
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(JobRecord::parse(&text).unwrap(), record);
    }

    #[test]
    fn records_of_other_versions_or_shapes_are_errors_not_records() {
        for (text, says) in [
            ("{", "not a job record"),
            ("[]", "no version"),
            (r#"{"version": 3, "id": "x"}"#, "version 3"),
            (r#"{"version": 2, "id": "x"}"#, "not a job record"),
            (
                r#"{"version": 2, "id": "x", "run_id": "x", "program": "p", "args": [], "env_names": [], "state": "exited", "exit": null, "isolation": null, "network_allowed": false, "created": 1, "ended": null}"#,
                "unknown variant `exited`",
            ),
        ] {
            let error = JobRecord::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
