//! The helper process side of a job: starting `lab __sandbox` with a spec,
//! connecting its network namespace with pasta, asking it to terminate the
//! job (the start-up probe, which uses these, is in `probe.rs`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::protocol::{Report, SandboxSpec};
use crate::report::read_report_lines;

/// Starts `lab __sandbox` (the binary `helper`) with `spec` (one JSON line
/// on its stdin). With user-mode networking, waits until the helper has made
/// its namespaces, connects them with `pasta` (returned: the caller kills it
/// when the job ends), and sends the go-ahead byte once the namespace has its
/// default route — nothing, so the helper refuses the job, when pasta failed.
pub(crate) async fn start_sandbox(
    helper: &Path,
    pasta: Option<&Path>,
    spec: &SandboxSpec,
    stdout: Stdio,
    stderr: Stdio,
) -> std::io::Result<Sandboxed> {
    let mut line = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut child = crate::spawn::helper(helper)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let Some(mut stdin) = child.stdin.take() else {
        return Ok(Sandboxed {
            child,
            control: None,
            network: None,
        });
    };
    stdin.write_all(&line).await?;
    let mut network = None;
    if let (true, Some(pasta)) = (spec.network && spec.user_mode_network, pasta) {
        let mut made = false;
        for _ in 0..500 {
            let lines = read_report_lines(&spec.report);
            if lines.iter().any(|l| matches!(l, Report::Refused { .. })) {
                break;
            }
            if lines.iter().any(|l| matches!(l, Report::Namespaces { .. })) {
                made = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let (true, Some(pid)) = (made, child.id()) {
            match crate::spawn::pasta(helper, pasta, pid, &spec.cgroup_procs).spawn() {
                Ok(mut started) => {
                    let mut ready = false;
                    for _ in 0..500 {
                        if has_default_route(pid) {
                            ready = true;
                            break;
                        }
                        if !matches!(started.try_wait(), Ok(None)) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    if ready {
                        stdin.write_all(&[crate::protocol::NETWORK_READY]).await?;
                    } else {
                        tracing::warn!("pasta could not connect the job's network namespace");
                        let _ = started.start_kill();
                    }
                    network = Some(started);
                }
                Err(e) => tracing::warn!("cannot start pasta: {e}"),
            }
        }
    }
    // Kept open: the way to ask the helper to terminate the job.
    Ok(Sandboxed {
        child,
        control: Some(stdin),
        network,
    })
}

/// A started sandbox helper, the pipe to ask it things, and the job's pasta.
pub(crate) struct Sandboxed {
    pub(crate) child: tokio::process::Child,
    pub(crate) control: Option<tokio::process::ChildStdin>,
    pub(crate) network: Option<tokio::process::Child>,
}

/// Asks the helper to SIGTERM every process of the job (it passes it to
/// the namespace's init, which passes it on): over its stdin, never by a
/// pid that could have been reused.
pub(crate) async fn terminate(control: &mut Option<tokio::process::ChildStdin>) {
    if let Some(pipe) = control
        && pipe.write_all(&[crate::protocol::TERMINATE]).await.is_err()
    {
        *control = None;
    }
}

/// Whether the network namespace of `pid` has a default route yet (pasta
/// configures addresses first, routes last).
pub(crate) fn has_default_route(pid: u32) -> bool {
    let v4 = std::fs::read_to_string(format!("/proc/{pid}/net/route")).unwrap_or_default();
    let v6 = std::fs::read_to_string(format!("/proc/{pid}/net/ipv6_route")).unwrap_or_default();
    v4.lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        || v6
            .lines()
            .any(|l| l.starts_with("00000000000000000000000000000000 00") && !l.ends_with(" lo"))
}

/// Ends a job's pasta, if it had one.
pub(crate) async fn stop_network(network: Option<tokio::process::Child>) {
    if let Some(mut pasta) = network {
        let _ = pasta.start_kill();
        let _ = pasta.wait().await;
    }
}

/// How long a job has between SIGTERM and SIGKILL on timeout or cancel.
pub const GRACE: Duration = Duration::from_secs(3);
