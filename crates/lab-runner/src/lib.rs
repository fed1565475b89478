//! lab-runner runs jobs in a sandbox (SPEC §5 "Runner"): [`Runner`] resolves
//! the program allowlist, builds the job's environment, and runs each job
//! through `lab __sandbox` (user, mount, pid and network
//! namespaces, read-only mounts, Landlock, seccomp, no capabilities,
//! rlimits — fail closed), redacting its output (with `lab_redact`, from the
//! secrets its caller passes in) into the run directory and recording
//! provenance. It never links the sandbox (crate lab-sandbox, where all
//! `unsafe` lives): it starts the helper as a process and speaks
//! [`protocol`] with it.
#![forbid(unsafe_code)]

pub mod backend;
pub mod cgroup;
mod error;
mod exit;
mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod git;
mod helper;
pub mod jobs;
pub mod kernel;
mod plan;
mod policy;
mod probe;
pub mod protocol;
mod provenance;
pub mod record;
mod report;
pub mod runner;
pub mod slurm;
mod spawn;

pub use backend::{Backend, Resources};
pub use jobs::JobState;
pub use protocol::Limits;
pub use runner::{Exit, JobOutcome, JobRequest, Program, Protected, Runner, RunnerConfig, Stream};
