//! Jobs started through the API: records that survive a restart, a bounded
//! in-memory log of redacted output that server-sent-event clients follow
//! and resume, and cancel.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lab_registry::Registry;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::runner::{Error, Exit, JobRequest, Runner, Stream};

/// Output kept in memory per job for live viewers; older events are dropped
/// (the log files keep everything).
const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;
/// Job record format version.
const RECORD_VERSION: u32 = 1;

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Started, not ended.
    Running,
    /// Exited 0 (every step).
    Exited,
    /// A step exited non-zero.
    Failed,
    /// A step was killed by a signal.
    Killed,
    /// Stopped at its timeout.
    TimedOut,
    /// Cancelled.
    Cancelled,
    /// The sandbox refused it (a layer could not be set up) or it could not start.
    Refused,
    /// The Lab stopped while it ran.
    Interrupted,
}

impl JobState {
    /// The state a finished job's exit puts it in.
    pub fn of(exit: &Exit) -> Self {
        match exit {
            Exit::Code(0) => JobState::Exited,
            Exit::Code(_) => JobState::Failed,
            Exit::Signal(_) => JobState::Killed,
            Exit::TimedOut => JobState::TimedOut,
            Exit::Cancelled => JobState::Cancelled,
            Exit::Refused { .. } => JobState::Refused,
        }
    }
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
    /// `running`, `exited`, `failed`, `killed`, `timed_out`, `cancelled`,
    /// `refused` or `interrupted` (the Lab stopped while it ran).
    pub state: JobState,
    /// Exit details, when ended.
    pub exit: Value,
    /// Isolation layers in force.
    pub isolation: Value,
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

impl JobManager {
    /// Loads the job records in `DATA_DIR/jobs`; a job recorded as running
    /// was interrupted by the Lab stopping, and is marked so.
    pub fn open(runner: Runner, registry: Arc<Registry>, data_dir: &Path) -> std::io::Result<Self> {
        let layout = lab_registry::DataDir::new(data_dir);
        layout.ensure()?;
        let jobs_dir = layout.jobs();
        let mut records = BTreeMap::new();
        for entry in std::fs::read_dir(&jobs_dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json")
                || entry.file_name().to_string_lossy().starts_with('.')
            {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(mut record) = serde_json::from_str::<JobRecord>(&text) else {
                eprintln!("lab: ignoring unreadable job record {}", path.display());
                continue;
            };
            if record.version != RECORD_VERSION {
                continue;
            }
            if record.state == JobState::Running {
                record.state = JobState::Interrupted;
                record.exit = json!({"interrupted": "the Lab stopped while the job ran"});
                record.ended = Some(now());
                write_record(&jobs_dir, &record)?;
            }
            records.insert(record.id.clone(), record);
        }
        Ok(Self {
            runner,
            registry,
            data_dir: data_dir.to_path_buf(),
            jobs: Mutex::new(BTreeMap::new()),
            records: Mutex::new(records),
        })
    }

    /// The runner.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<JobRecord> {
        let mut all: Vec<JobRecord> = lock(&self.records).values().cloned().collect();
        for job in lock(&self.jobs).values() {
            let record = lock(&job.record).clone();
            all.retain(|r| r.id != record.id);
            all.push(record);
        }
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        all
    }

    /// One job.
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        if let Some(job) = lock(&self.jobs).get(id) {
            return Some(lock(&job.record).clone());
        }
        lock(&self.records).get(id).cloned()
    }

    /// Starts a job; returns its record at once (state `running`).
    pub fn start(self: &Arc<Self>, request: JobRequest) -> Result<JobRecord, Error> {
        self.runner.kernel_plan()?;
        let (step, passed, timeout) = self.runner.plan(&request)?;
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
            program: request.program.clone(),
            args: request.args.clone(),
            steps: vec![step],
            passed,
            cwd,
            timeout,
            relaunch,
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
        self.runner.kernel_plan()?;
        let file = workflow_under_roots(&self.registry, file)?;
        let (name, steps) = self.runner.plan_workflow(&file, confirm_exec_hooks)?;
        let cwd = self.runner.check_cwd(
            file.parent().unwrap_or(Path::new("/")),
            self.registry.allowed_roots(),
        )?;
        let label = if name.is_empty() {
            "workflow".to_owned()
        } else {
            format!("workflow {name}")
        };
        let id_name = if name.is_empty() {
            "workflow".to_owned()
        } else {
            name
        };
        let timeout = self.runner.default_timeout();
        let relaunch = Relaunch {
            cwd: None,
            timeout_secs: timeout.as_secs(),
            workflow: Some(file.display().to_string()),
        };
        self.launch(Launch {
            id_name,
            program: label,
            args: vec![file.display().to_string()],
            steps,
            passed: Vec::new(),
            cwd: Some(cwd),
            timeout,
            relaunch,
        })
    }

    fn launch(self: &Arc<Self>, launch: Launch) -> Result<JobRecord, Error> {
        let Launch {
            id_name,
            program,
            args,
            steps,
            passed,
            cwd,
            timeout,
            relaunch,
        } = launch;
        // Registered at once, so the UI can open the run while it runs.
        let run = lab_registry::DataDir::new(&self.data_dir)
            .create_job_run(&self.registry, &id_name)
            .map_err(|e| Error::RunDir(std::io::Error::other(e.to_string())))?;
        let run_dir = run.root.clone();
        let redactor = self.runner.redactor();
        let record = JobRecord {
            version: RECORD_VERSION,
            id: run.id.to_string(),
            run_id: run.id.to_string(),
            program,
            args: args.iter().map(|a| redactor.redact_str(a)).collect(),
            env_names: passed.iter().map(|(k, _)| k.clone()).collect(),
            state: JobState::Running,
            exit: Value::Null,
            isolation: Value::Null,
            network_allowed: self.runner.network_allowed(),
            created: now(),
            ended: None,
            relaunch: Some(Relaunch {
                cwd: relaunch.cwd.map(|c| redactor.redact_str(&c)),
                ..relaunch
            }),
        };
        let jobs_dir = lab_registry::DataDir::new(&self.data_dir).jobs();
        write_record(&jobs_dir, &record).map_err(Error::RunDir)?;
        let (seq, _) = watch::channel(0u64);
        let (cancel, cancel_rx) = watch::channel(false);
        let job = Arc::new(Job {
            record: Mutex::new(record.clone()),
            log: Mutex::new(LogBuffer::default()),
            seq,
            cancel,
        });
        lock(&self.jobs).insert(record.id.clone(), Arc::clone(&job));
        let manager = Arc::clone(self);
        tokio::spawn(async move {
            let report = jobs_dir.join(format!("{}.report", job_id(&job)));
            let sink_job = Arc::clone(&job);
            let sink = move |stream: Stream, bytes: &[u8]| {
                let kind = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                push(&sink_job, kind, String::from_utf8_lossy(bytes).into_owned());
            };
            let outcome = manager
                .runner
                .run_steps(
                    &steps,
                    &passed,
                    cwd.as_deref(),
                    timeout,
                    &run_dir,
                    &report,
                    sink,
                    cancel_rx,
                )
                .await;
            let (state, exit, isolation) = match outcome {
                Ok(outcome) => (
                    JobState::of(&outcome.exit),
                    outcome.exit.to_json(),
                    outcome.isolation,
                ),
                Err(e) => (
                    JobState::Refused,
                    json!({"error": e.to_string()}),
                    Value::Null,
                ),
            };
            let finished = {
                let mut record = lock(&job.record);
                record.state = state;
                record.exit = exit.clone();
                record.isolation = isolation;
                record.ended = Some(now());
                record.clone()
            };
            if let Err(e) = write_record(&jobs_dir, &finished) {
                eprintln!("lab: cannot record job {}: {e}", finished.id);
            }
            lock(&manager.records).insert(finished.id.clone(), finished);
            push(&job, "end", exit.to_string());
        });
        Ok(record)
    }

    /// Asks a running job to stop. `false` when it is not running here.
    pub fn cancel(&self, id: &str) -> bool {
        match lock(&self.jobs).get(id) {
            Some(job) if lock(&job.record).state == JobState::Running => {
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
    /// Program (or workflow label) as the record shows it.
    program: String,
    /// Arguments as the record shows them (redacted when recorded).
    args: Vec<String>,
    steps: Vec<crate::runner::StepPlan>,
    passed: Vec<crate::runner::EnvVar>,
    cwd: Option<PathBuf>,
    timeout: std::time::Duration,
    relaunch: Relaunch,
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
        for (state, text) in [
            (JobState::Running, "running"),
            (JobState::Exited, "exited"),
            (JobState::Failed, "failed"),
            (JobState::Killed, "killed"),
            (JobState::TimedOut, "timed_out"),
            (JobState::Cancelled, "cancelled"),
            (JobState::Refused, "refused"),
            (JobState::Interrupted, "interrupted"),
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<JobState>(text.into()).unwrap(),
                state
            );
        }
        assert!(serde_json::from_value::<JobState>("done".into()).is_err());
        assert_eq!(JobState::of(&Exit::Code(0)), JobState::Exited);
        assert_eq!(JobState::of(&Exit::Code(2)), JobState::Failed);
        assert_eq!(JobState::of(&Exit::TimedOut), JobState::TimedOut);
    }
}
