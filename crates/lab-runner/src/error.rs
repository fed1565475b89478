//! Why a job was refused or failed to start: lab-runner's one error type
//! (re-exported as `lab_runner::runner::Error`).

use std::path::PathBuf;

/// Why a job was refused or failed to start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The program is not on the `[runner] programs` allowlist.
    ProgramNotAllowed(String),
    /// `lab run` found the program in the caller's `PATH`, and its
    /// canonical path is not on the allowlist: says the line that would
    /// allow it.
    FoundNotAllowed {
        /// As asked for.
        program: String,
        /// Where it was found.
        found: PathBuf,
        /// Its canonical path.
        canonical: PathBuf,
        /// What to change: `add its path to [runner] programs in FILE:
        /// programs = [...]`.
        fix: String,
    },
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
    /// The program's installation cannot be granted without exposing what
    /// no job may read (the data dir, the config or key file, a home
    /// dot-directory): says why and what to allowlist instead.
    Installation(String),
    /// A configured limit (`memory_max`, `pids_max`, `cpu_max`) cannot be
    /// applied on this machine, or its cgroup could not be made: the job
    /// is refused rather than run unbounded.
    Limits(String),
    /// The resources asked for are over a configured maximum (it names
    /// the limit) or not offered by this backend.
    Resources(String),
    /// The cluster refused the job (`sbatch`'s message).
    Submit(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ProgramNotAllowed(p) => {
                write!(f, "program {p:?} is not on the [runner] programs allowlist")
            }
            Error::FoundNotAllowed {
                program,
                found,
                canonical,
                fix,
            } => {
                write!(f, "program {program:?} is {} in your PATH", found.display())?;
                if canonical != found {
                    write!(f, " (really {})", canonical.display())?;
                }
                write!(
                    f,
                    ", which is not on the [runner] programs allowlist; {fix}"
                )
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
            Error::Installation(why) => f.write_str(why),
            Error::Resources(why) => write!(f, "resources: {why}"),
            Error::Submit(why) => write!(f, "the cluster refused the job: {why}"),
            Error::Limits(why) => write!(
                f,
                "a configured job limit cannot be applied (the job is refused rather than run without it): {why}"
            ),
        }
    }
}

impl std::error::Error for Error {}
