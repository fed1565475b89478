//! The one place outside the sandbox's final `exec` where the workspace
//! builds a process: the `lab __sandbox` helper, argv only, no shell, empty
//! environment (the job's environment travels in the spec on stdin).

use std::path::Path;

/// `LAB __sandbox` with a cleared environment, run from `/`.
pub fn helper(lab: &Path) -> tokio::process::Command {
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
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

/// `pasta` connecting the network namespace of `pid` (a sandbox helper) to
/// the outside: addresses and routes configured in it (`--config-net`), no
/// port forwarded either way, and the gateway address *not* mapped to the
/// host (`--no-map-gw`), so the host's loopback services stay out of reach.
/// In the foreground, as the runner's own child, killed when the job ends
/// (it would outlive the namespace otherwise).
pub fn pasta(pasta: &Path, pid: u32) -> tokio::process::Command {
    #[allow(clippy::disallowed_methods)] // this module is where processes are built
    let mut command = tokio::process::Command::new(pasta);
    command
        .args([
            "--config-net",
            "--no-map-gw",
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
            "--quiet",
            "--foreground",
            // IPv6 would reach the host through its link-local address,
            // which --no-map-gw does not cover.
            "--ipv4-only",
        ])
        .args(if crate::sys::ids().0 == 0 {
            // As root pasta would drop to `nobody`, which may not enter the
            // helper's user namespace (owned by root).
            &["--runas", "0:0"][..]
        } else {
            &[][..]
        })
        .arg(pid.to_string())
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    crate::sys::die_with_parent_on_exec(&mut command);
    command
}
