//! lab-runner runs jobs in a sandbox (SPEC §5 "Runner"): [`Runner`] resolves
//! the program allowlist, builds the job's environment, and runs each job
//! through `lab __sandbox` ([`sandbox`]: user, mount, pid and network
//! namespaces, read-only mounts, Landlock, seccomp, no capabilities,
//! rlimits — fail closed), redacting its output (with `lab_redact`, from the
//! secrets its caller passes in) into the run directory and recording
//! provenance. `unsafe` lives only in the private `sys` module.
#![deny(unsafe_code)]

pub mod git;
pub mod jobs;
pub mod kernel;
pub mod runner;
pub mod sandbox;
mod spawn;
mod sys;

pub use runner::{Exit, JobOutcome, JobRequest, Program, Runner, RunnerConfig, Stream};
pub use sandbox::Limits;
