//! lab-runner runs jobs in a sandbox (SPEC §5 "Runner"): [`Runner`] resolves
//! the program allowlist, builds the job's environment, and runs each job
//! through `lab __sandbox` ([`sandbox`]: user, pid and network namespaces,
//! Landlock, seccomp, no_new_privs, rlimits — fail closed), redacting its
//! output into the run directory and recording provenance. `unsafe` lives
//! only in the private `sys` module. It also provides the redactor every
//! path that writes or exports text uses: [`redact::Redactor`] removes the values of
//! secret-looking environment variables (and their encodings) and
//! well-known key formats, also when a secret arrives split across reads;
//! [`export::RedactingFilter`] applies it to artifacts going into a bundle.
//!
//! ```
//! let r = lab_runner::redact::Redactor::new(["hunter2-very-secret"]);
//! let mut out = Vec::new();
//! let mut stream = r.stream();
//! stream.push(b"password is hunter2-ve", &mut out);
//! stream.push(b"ry-secret, ok\n", &mut out);
//! stream.finish(&mut out);
//! assert_eq!(out, b"password is [REDACTED], ok\n");
//! ```
#![deny(unsafe_code)]

pub mod export;
pub mod git;
pub mod jobs;
pub mod kernel;
pub mod redact;
pub mod runner;
pub mod sandbox;
mod spawn;
mod sys;

pub use runner::{Exit, JobOutcome, JobRequest, Program, Runner, RunnerConfig, Stream};
pub use sandbox::Limits;
