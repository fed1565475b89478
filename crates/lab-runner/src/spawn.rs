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

/// A Slurm client (`sbatch`, `squeue`, `scontrol`, `scancel`, `sinfo`) by
/// its absolute path, argv only, with a cleared environment but `env`, run
/// from `cwd`, stdin null, its output captured; killed, and `Err`, when it
/// has not exited within `limit`. Blocking: the async callers run it with
/// `spawn_blocking`.
pub(crate) fn tool_output(
    tool: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    limit: std::time::Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read as _;
    use std::process::Stdio;
    let name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
    let mut child = std::process::Command::new(tool)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    // Both pipes drain while it runs (a long `squeue --json` answer never
    // stalls it), each capped.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(16 << 20).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{name} did not answer within {limit:?}"));
            }
            Err(e) => return Err(format!("waiting for {name}: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
