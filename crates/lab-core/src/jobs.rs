//! Jobs: starting and cancelling them through the runner's job table, and
//! reading the log files of a job this Lab does not hold in memory (one
//! another process runs, or one from before a restart).

use std::io::Read;
use std::sync::Arc;

use lab_runner::JobRequest;
use lab_runner::jobs::{JobManager, JobRecord};

use crate::{Error, Lab};

/// The last this much of each log is read for a job whose output this
/// Lab did not see.
pub const TAIL_AFTER_RESTART: u64 = 1024 * 1024;

/// Why a job operation was refused.
#[derive(Debug)]
pub enum JobError {
    /// The runner is off.
    Disabled,
    /// The runner is on, but this machine cannot isolate jobs: why.
    Unavailable(String),
    /// No job with this id.
    Unknown,
    /// The job runs in another process (`lab run`, this pid), which owns
    /// it: the Lab does not signal processes it did not start.
    NotOwner(u32),
    /// The job is not running.
    NotRunning,
    /// The runner refused the job.
    Runner(lab_runner::runner::Error),
}

impl From<lab_runner::runner::Error> for JobError {
    fn from(e: lab_runner::runner::Error) -> Self {
        JobError::Runner(e)
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Disabled => {
                f.write_str("the runner is off; start the Lab with --enable-runner to run jobs")
            }
            JobError::Unavailable(why) => write!(f, "the runner is unavailable: {why}"),
            JobError::Unknown => f.write_str("no job with this id"),
            JobError::NotOwner(pid) => write!(
                f,
                "this job runs in `lab run` (pid {pid}), not in this server: stop it there (Ctrl-C)"
            ),
            JobError::NotRunning => f.write_str("the job is not running"),
            JobError::Runner(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for JobError {}

/// A piece of a job's log: `stdout` or `stderr`, and its text.
pub type LogChunk = (&'static str, String);

impl Lab {
    /// The job table: refused when the runner is off.
    pub fn job_manager(&self) -> Result<&Arc<JobManager>, JobError> {
        self.jobs.as_ref().ok_or(JobError::Disabled)
    }

    /// The table, when jobs may start on this machine.
    fn startable(&self) -> Result<&Arc<JobManager>, JobError> {
        let jobs = self.job_manager()?;
        match self.runner_unavailable() {
            Some(why) => Err(JobError::Unavailable(why)),
            None => Ok(jobs),
        }
    }

    /// Why jobs cannot start now: what this machine lacks (found when the
    /// Lab started), or what the backend says now (a Slurm cluster that
    /// stopped answering); `None` when they can.
    pub fn runner_unavailable(&self) -> Option<String> {
        self.runner.unavailable.clone().or_else(|| {
            self.jobs
                .as_ref()
                .and_then(|jobs| jobs.runner().backend().unavailable())
        })
    }

    /// Where jobs run (`local`, `slurm`), and the backend's settings that
    /// the UI shows (a cluster's partition); `null` with the runner off.
    pub fn runner_backend(&self) -> serde_json::Value {
        match &self.jobs {
            None => serde_json::Value::Null,
            Some(jobs) => jobs.runner().backend_status(),
        }
    }

    /// Starts a job. Blocking (the program is resolved and its run
    /// directory made here).
    pub fn start_job(&self, request: JobRequest) -> Result<JobRecord, JobError> {
        Ok(self.startable()?.start(request)?)
    }

    /// Starts the workflow in `file`. Blocking.
    pub fn start_workflow(
        &self,
        file: &std::path::Path,
        confirm_exec_hooks: bool,
    ) -> Result<JobRecord, JobError> {
        Ok(self.startable()?.start_workflow(file, confirm_exec_hooks)?)
    }

    /// Asks job `id` to stop (this Lab's own jobs only).
    pub fn cancel_job(&self, id: &str) -> Result<(), JobError> {
        let jobs = self.job_manager()?;
        if jobs.get(id).is_none() {
            return Err(JobError::Unknown);
        }
        if jobs.cancel(id) {
            return Ok(());
        }
        // Running, but in another process (`lab run`): that process owns
        // it; the Lab does not signal processes it did not start.
        if let Some(record) = jobs.get(id)
            && record.state == lab_runner::JobState::Running
            && let Some(pid) = record.owner.as_ref().and_then(|o| o.pid)
        {
            return Err(JobError::NotOwner(pid));
        }
        Err(JobError::NotRunning)
    }

    /// What the log files of run `run_id` gained past `from` (`None`:
    /// start at their last [`TAIL_AFTER_RESTART`] bytes), and the offsets
    /// reached; at most 1 MiB a file a call. Blocking.
    pub fn job_log_grown(
        &self,
        run_id: &str,
        from: [Option<u64>; 2],
    ) -> (Vec<LogChunk>, [Option<u64>; 2]) {
        let mut chunks = Vec::new();
        let mut reached = from;
        let allow = self.allowlists.base();
        let Ok(run) = lab_registry::RunId::parse(run_id).and_then(|id| self.registry.get(&id))
        else {
            return (chunks, reached);
        };
        let Ok(root) = self.readers.open_root(&run.root) else {
            return (chunks, reached);
        };
        for (n, (name, kind)) in [("stdout.log", "stdout"), ("stderr.log", "stderr")]
            .into_iter()
            .enumerate()
        {
            let Ok(name) = allow.check(name) else {
                continue;
            };
            let Ok(artifact) = root.open_artifact(&name) else {
                continue;
            };
            let start = from[n].unwrap_or_else(|| artifact.len.saturating_sub(TAIL_AFTER_RESTART));
            // A file that shrank (it is the Lab's own, capped head and
            // tail): read on from its end.
            let start = start.min(artifact.len);
            let mut file = artifact.file;
            if std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)).is_err() {
                continue;
            }
            let mut text = Vec::new();
            file.take(TAIL_AFTER_RESTART).read_to_end(&mut text).ok();
            reached[n] = Some(start + text.len() as u64);
            if !text.is_empty() {
                chunks.push((kind, String::from_utf8_lossy(&text).into_owned()));
            }
        }
        (chunks, reached)
    }

    /// The last [`TAIL_AFTER_RESTART`] bytes of each (already redacted)
    /// log file of run `run_id`, reached the one way every run is: its
    /// record in the registry. Blocking.
    pub fn job_log_tail(&self, run_id: &str) -> Result<Vec<LogChunk>, Error> {
        let allow = self.allowlists.base();
        let mut out = Vec::new();
        let run = self.registry.get(&lab_registry::RunId::parse(run_id)?)?;
        let root = self.readers.open_root(&run.root)?;
        for (n, name) in ["stdout.log", "stderr.log"].iter().enumerate() {
            let Ok(name) = allow.check(name) else {
                continue;
            };
            let Ok(artifact) = root.open_artifact(&name) else {
                continue;
            };
            let skip = artifact.len.saturating_sub(TAIL_AFTER_RESTART);
            let mut text = Vec::new();
            let mut file = artifact.file;
            std::io::copy(&mut (&mut file).take(skip), &mut std::io::sink()).ok();
            file.take(TAIL_AFTER_RESTART).read_to_end(&mut text).ok();
            out.push((
                if n == 0 { "stdout" } else { "stderr" },
                String::from_utf8_lossy(&text).into_owned(),
            ));
        }
        Ok(out)
    }
}
