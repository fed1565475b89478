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

/// SIGTERM to the sandbox helper, which passes it to the namespace's init,
/// which passes it to every process of the job. Signalled through the
/// `Child` (the helper is this process's own unreaped child, so its pid
/// cannot have been reused); nothing happens once it has been reaped.
pub fn terminate(helper: &tokio::process::Child) {
    if let Some(pid) = helper.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = crate::sys::signal(pid, libc::SIGTERM);
    }
}
