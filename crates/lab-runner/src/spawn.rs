//! The one place where the workspace builds a process: the sandbox helper
//! (`lab __sandbox`, argv only, no shell, empty environment — the job's
//! environment travels in the spec on stdin), and the helper's two other
//! requests (the kernel report, pasta).

use std::path::Path;

/// `LAB __sandbox` with a cleared environment, run from `/`.
pub fn helper(lab: &Path) -> tokio::process::Command {
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
    let mut command = tokio::process::Command::new(lab);
    command.arg("__sandbox").env_clear().current_dir("/");
    command
}

/// `LAB __sandbox pasta PASTA PID [CGROUP_PROCS…]`: pasta connecting the network namespace
/// of `pid` (a sandbox helper) to the outside, as the runner's own child
/// with a parent-death signal (set by the helper binary before it execs
/// pasta), killed when the job ends.
pub fn pasta(
    lab: &Path,
    pasta: &Path,
    pid: u32,
    cgroup_procs: &[std::path::PathBuf],
) -> tokio::process::Command {
    let mut command = helper(lab);
    command
        .arg("pasta")
        .arg(pasta)
        .arg(pid.to_string())
        .args(cgroup_procs)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// What this kernel provides, as `LAB __sandbox kernel` reports it; `None`
/// when the helper could not say (then every job is refused).
pub fn kernel_report(lab: &Path) -> Option<crate::kernel::KernelFeatures> {
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
    let output = std::process::Command::new(lab)
        .args(["__sandbox", "kernel"])
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}
