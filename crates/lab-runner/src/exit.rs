//! How a job ended (re-exported as `lab_runner::Exit` and
//! `lab_runner::runner::Exit`).

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
    /// The OOM killer struck in the job's memory cgroup (`memory_max`),
    /// however the job then ended.
    Oom,
    /// The node it ran on failed (a cluster backend said so: Slurm's
    /// `NODE_FAIL`, `BOOT_FAIL`): why.
    NodeFail(String),
    /// The sandbox refused to run it: a required layer failed.
    Refused {
        /// The layer.
        layer: String,
        /// Why.
        error: String,
    },
}
