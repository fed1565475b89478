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
/// from `cwd`, stdin null, in a process group of its own, its output
/// captured (16 MiB a stream at most). When it has not exited and closed
/// its output within `limit`, its whole group is killed (a site's wrapper
/// and the real tool behind it, anything it left behind holding the
/// pipes) and the answer is `Err`. Blocking: the async callers run it with
/// `spawn_blocking`.
pub(crate) fn tool_output(
    tool: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    limit: std::time::Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    use std::process::Stdio;
    use std::sync::mpsc;
    let name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let deadline = std::time::Instant::now() + limit;
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
    let mut child = std::process::Command::new(tool)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    let group = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let kill_group = || {
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    };
    // Both pipes drain while it runs (a long `squeue --json` answer never
    // stalls it); each reader hands its bytes over a channel, so waiting
    // for them has the same deadline.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(16 << 20).read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let timed_out = |child: &mut std::process::Child| {
        kill_group();
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{name} did not answer within {limit:?}"))
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => return timed_out(&mut child),
            Err(e) => {
                kill_group();
                return Err(format!("waiting for {name}: {e}"));
            }
        }
    };
    let mut outputs = Vec::new();
    for rx in [stdout, stderr] {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => outputs.push(bytes),
            // Exited, but something it started still holds its output.
            Err(_) => {
                kill_group();
                return Err(format!(
                    "{name} left a process holding its output past {limit:?}"
                ));
            }
        }
    }
    let stderr = outputs.pop().unwrap_or_default();
    let stdout = outputs.pop().unwrap_or_default();
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_answers_within_its_limit_whatever_it_leaves_behind() {
        let sh = Path::new("/bin/sh");
        let run = |script: &str| {
            let started = std::time::Instant::now();
            let out = tool_output(
                sh,
                &["-c".into(), script.into()],
                &[],
                Path::new("/"),
                std::time::Duration::from_secs(2),
            );
            (out, started.elapsed())
        };
        let (out, _) = run("echo hello; echo oops >&2; exit 3");
        let out = out.unwrap();
        assert_eq!(out.stdout, b"hello\n");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.status.code(), Some(3));
        // Exits at once, but a child it left holds its output.
        let (out, took) = run("(sleep 30) & echo started");
        assert!(out.unwrap_err().contains("holding its output"));
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // Never answers.
        let (out, took) = run("sleep 30");
        assert!(out.unwrap_err().contains("did not answer within"));
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}
