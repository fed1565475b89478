//! Where a job runs: one [`Backend`] trait, two implementations — this
//! machine ([`Local`]) and a Slurm cluster ([`crate::slurm::Slurm`]).
//! Planning (the allowlist, the environment, the cwd), provenance,
//! redaction, the job's output read as its run's data and the limits are
//! the same on both: a backend only decides where [`Runner::run_steps`]
//! runs and who says how the job ended.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Error;
use crate::plan::StepPlan;
use crate::runner::{EnvVar, JobOutcome, Runner, Stream};

/// A boxed future, for the object-safe trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job asks for beside its time limit (SPEC §4 `resources`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_mb: Option<u64>,
    /// GPUs (a cluster's `gres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

impl Resources {
    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// One job, planned and validated, about to run in `run_dir` (made and
/// registered by the caller, empty).
#[derive(Clone, Copy, Debug)]
pub struct JobRun<'a> {
    /// The steps, in order.
    pub steps: &'a [StepPlan],
    /// The allowlisted variables passed, with the Lab's values.
    pub passed: &'a [EnvVar],
    /// The job's working directory (canonical, checked), seen through an
    /// overlay.
    pub cwd: Option<&'a Path>,
    /// The one time limit.
    pub timeout: Duration,
    /// The resources in force ([`Backend::resources`]'s answer).
    pub resources: Resources,
    /// The run directory.
    pub run_dir: &'a Path,
    /// A scratch file for the sandbox's report (local jobs).
    pub report: &'a Path,
}

/// What a backend learns about a job while it waits and runs, for its
/// record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Accepted by the cluster under this id.
    Submitted {
        /// Slurm's job id.
        slurm_job_id: String,
    },
    /// Waiting: the scheduler's reason and the job's place in its
    /// partition's queue (1: next).
    Queued {
        /// Slurm's `Reason`.
        reason: Option<String>,
        /// Place among the partition's pending jobs.
        position: Option<u32>,
    },
    /// Started (on `node`, for a cluster).
    Running {
        /// Where.
        node: Option<String>,
    },
}

/// Where a job's redacted output goes, chunk by chunk.
pub type OutputSink<'a> = Box<dyn FnMut(Stream, &[u8]) + Send + 'a>;

/// Callbacks a backend reports through.
pub struct Hooks<'a> {
    /// Every redacted chunk of the job's output, as it is logged.
    pub output: OutputSink<'a>,
    /// A change of the job's place in its life.
    pub update: Box<dyn FnMut(Update) + Send + 'a>,
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// Where jobs run.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// `local` or `slurm`, as records and `/api/status` say it.
    fn name(&self) -> &'static str;

    /// The resources a job gets: `asked` checked against this backend's
    /// maxima (an [`Error::Resources`] naming the limit), defaults filled.
    fn resources(&self, runner: &Runner, asked: &Resources) -> Result<Resources, Error>;

    /// Whether these variables may be passed on this backend (a cluster
    /// stores exported values: no secret-looking name is passed there).
    fn check_env(&self, _passed: &[EnvVar]) -> Result<(), Error> {
        Ok(())
    }

    /// Why no job can start now (`None`: they can). A cluster backend
    /// says so after three failed commands in a row.
    fn unavailable(&self) -> Option<String>;

    /// Runs `job` to its end; `true` on `cancel` cancels it.
    fn run<'a>(
        &'a self,
        runner: &'a Runner,
        job: JobRun<'a>,
        hooks: Hooks<'a>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<JobOutcome, Error>>;

    /// Follows a job a previous Lab started and the backend still knows
    /// (`None`: it cannot, the job is gone with its Lab).
    fn reattach<'a>(
        &'a self,
        record: &'a crate::jobs::JobRecord,
        run_dir: &'a Path,
        hooks: Hooks<'a>,
        cancel: watch::Receiver<bool>,
    ) -> Option<BoxFuture<'a, Result<JobOutcome, Error>>>;
}

/// Checks a job's `cpus` and `mem_mb` against `[runner]`'s `cpu_max` and
/// `memory_max` (which bind every job, on either backend), and against
/// what a cgroup can hold: at least 1, at most 1,000,000 CPUs, less than
/// 2^60 bytes.
pub(crate) fn within_runner_limits(
    wanted: &crate::cgroup::Wanted,
    cpus: Option<u32>,
    mem_mb: Option<u64>,
) -> Result<(), Error> {
    if let Some(n) = cpus {
        if n == 0 {
            return Err(Error::Resources("cpus must be at least 1".into()));
        }
        if n > 1_000_000 {
            return Err(Error::Resources("cpus: at most 1000000".into()));
        }
        if let Some(max) = wanted.cpu_max
            && f64::from(n) > max
        {
            return Err(Error::Resources(format!(
                "cpus {n} is over [runner] cpu_max = {max}"
            )));
        }
    }
    if let Some(n) = mem_mb {
        if n == 0 {
            return Err(Error::Resources("mem_mb must be at least 1".into()));
        }
        let bytes = n
            .checked_mul(1 << 20)
            .filter(|b| *b < 1 << 60)
            .ok_or_else(|| Error::Resources(format!("mem_mb {n} is more memory than exists")))?;
        if let Some(max) = wanted.memory_max
            && bytes > max
        {
            return Err(Error::Resources(format!(
                "mem_mb {n} is over [runner] memory_max = {max} bytes ({} MiB)",
                max >> 20
            )));
        }
    }
    Ok(())
}

/// This machine: the job runs under this process, through `lab __sandbox`.
#[derive(Debug, Default)]
pub struct Local;

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    /// `cpus` and `mem_mb` become this job's cgroup limits, each at most
    /// the `[runner]` value (`cpu_max`, `memory_max`); this machine
    /// schedules no GPUs (`[runner] devices` passes them through).
    fn resources(&self, runner: &Runner, asked: &Resources) -> Result<Resources, Error> {
        if asked.gpus.is_some_and(|g| g > 0) {
            return Err(Error::Resources(
                "gpus: the local backend schedules no GPUs (pass them to every job with [runner] devices, or use backend = \"slurm\")".into(),
            ));
        }
        within_runner_limits(&runner.config.cgroup, asked.cpus, asked.mem_mb)?;
        Ok(Resources {
            gpus: None,
            ..*asked
        })
    }

    fn unavailable(&self) -> Option<String> {
        None
    }

    fn run<'a>(
        &'a self,
        runner: &'a Runner,
        job: JobRun<'a>,
        mut hooks: Hooks<'a>,
        cancel: watch::Receiver<bool>,
    ) -> BoxFuture<'a, Result<JobOutcome, Error>> {
        Box::pin(async move {
            (hooks.update)(Update::Running { node: None });
            let wanted = runner.wanted_for(&job.resources);
            let output = hooks.output;
            runner
                .run_steps_limited(
                    job.steps,
                    job.passed,
                    job.cwd,
                    job.timeout,
                    job.run_dir,
                    job.report,
                    &wanted,
                    output,
                    cancel,
                )
                .await
        })
    }

    /// A local job dies with the process that ran it.
    fn reattach<'a>(
        &'a self,
        _record: &'a crate::jobs::JobRecord,
        _run_dir: &'a Path,
        _hooks: Hooks<'a>,
        _cancel: watch::Receiver<bool>,
    ) -> Option<BoxFuture<'a, Result<JobOutcome, Error>>> {
        None
    }
}
