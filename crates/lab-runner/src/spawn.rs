//! The one place outside the sandbox's final `exec` where the workspace
//! builds a process: the `lab __sandbox` helper, argv only, no shell, empty
//! environment (the job's environment travels in the spec on stdin).

use std::path::Path;

/// `LAB __sandbox` with a cleared environment, run from `/`.
pub fn helper(lab: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(lab);
    command.arg("__sandbox").env_clear().current_dir("/");
    command
}

/// SIGKILL to `pid` (a namespace init: it takes its namespace with it).
pub fn kill(pid: i32) {
    let _ = crate::sys::signal(pid, libc::SIGKILL);
}

/// SIGTERM to `pid` (a process of a job's namespace, asked to finish).
pub fn terminate(pid: i32) {
    let _ = crate::sys::signal(pid, libc::SIGTERM);
}
