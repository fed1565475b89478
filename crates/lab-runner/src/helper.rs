//! The helper process side of a job: starting `lab __sandbox` with a spec,
//! connecting its network namespace with pasta, asking it to terminate the
//! job, and the start-up probe.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::exit::Exit;
use crate::protocol::{PROTOCOL_VERSION, Report, SandboxSpec};
use crate::record::Isolation;
use crate::report::{read_report, read_report_lines};
use crate::runner::Runner;

impl Runner {
    /// Runs the sandbox once with a harmless program (this binary's
    /// `--version`) in a scratch directory under `scratch_parent`, and
    /// returns the isolation report: which layers this machine provides.
    /// Refused at once, naming the missing kernel features, when
    /// [`Runner::kernel_plan`] says jobs cannot run here.
    pub async fn probe(&self, scratch_parent: &Path) -> Isolation {
        let refused = |layer: &str, error: String| Isolation {
            kernel: Some(self.kernel.to_json()),
            ..Isolation::refused(layer, error)
        };
        let failed = |error: String| Isolation {
            error: Some(error),
            ..Isolation::default()
        };
        let plan = match self.kernel_plan() {
            Ok(plan) => plan.clone(),
            Err(e) => return refused("kernel and configuration", e.to_string()),
        };
        let dir = scratch_parent.join(format!(".probe-{}", std::process::id()));
        let report = scratch_parent.join(format!(".probe-{}.report", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::File::create(&report).map(drop))
        {
            return failed(e.to_string());
        }
        // The limits too: a cgroup made and joined as a job's would be.
        let cgroup = match self.cgroups().map(|choice| {
            // Random too: a leftover of an earlier Lab with the same pid
            // must not make this one's probe fail.
            let suffix = lab_registry::data_dir::random_hex(4).unwrap_or_default();
            let name = format!("probe-{}-{suffix}", std::process::id());
            crate::cgroup::JobCgroup::create(choice, &name, &self.config.cgroup)
        }) {
            Ok(Ok(group)) => group,
            Ok(Err(e)) => {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_file(&report);
                return refused("cgroup limits", e.to_string());
            }
            Err(e) => {
                return refused("cgroup limits", e.to_string());
            }
        };
        let helper = std::fs::canonicalize(&self.config.helper)
            .unwrap_or_else(|_| self.config.helper.clone());
        let spec = SandboxSpec {
            version: PROTOCOL_VERSION,
            program: helper.clone(),
            argv: vec!["lab".into(), "--version".into()],
            env: vec![("PATH".into(), self.config.path.clone())],
            job_dir: dir.clone(),
            cwd: None,
            read_only: vec![helper],
            devices: Vec::new(),
            report: report.clone(),
            network: self.config.allow_network,
            user_mode_network: self.pasta.is_some(),
            limits: self.config.limits.clone(),
            landlock_abi: plan.landlock_abi,
            cgroup_procs: cgroup
                .as_ref()
                .map(crate::cgroup::JobCgroup::procs_files)
                .unwrap_or_default(),
        };
        let result = async {
            let Sandboxed {
                mut child,
                control,
                network,
            } = self
                .start_sandbox(&spec, Stdio::null(), Stdio::null())
                .await?;
            drop(control);
            let waited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            stop_network(network).await;
            waited.map_err(|_| std::io::Error::other("the probe timed out"))?
        }
        .await;
        let (mut isolation, exit) = read_report(&report);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&report);
        match (result, exit) {
            (Err(e), _) => failed(e.to_string()),
            (Ok(_), Exit::Refused { layer, error }) => refused(&layer, error),
            (Ok(_), _) => {
                isolation.limits = cgroup.as_ref().map(|g| g.applied().clone());
                isolation.kernel = Some(self.kernel.to_json());
                isolation.plan = Some(plan.to_json());
                isolation
            }
        }
    }
}

impl Runner {
    /// Starts `lab __sandbox` with `spec` (one JSON line on its stdin). With
    /// user-mode networking, waits until the helper has made its namespaces,
    /// connects them with pasta (returned: the caller kills it when the job
    /// ends), and sends the go-ahead byte once the namespace has its default
    /// route — nothing, so the helper refuses the job, when pasta failed.
    pub(crate) async fn start_sandbox(
        &self,
        spec: &SandboxSpec,
        stdout: Stdio,
        stderr: Stdio,
    ) -> std::io::Result<Sandboxed> {
        let mut line = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut child = crate::spawn::helper(&self.config.helper)
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
        if let (true, Some(pasta)) = (spec.network && spec.user_mode_network, &self.pasta) {
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
                match crate::spawn::pasta(&self.config.helper, pasta, pid, &spec.cgroup_procs)
                    .spawn()
                {
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
                            eprintln!("lab: pasta could not connect the job's network namespace");
                            let _ = started.start_kill();
                        }
                        network = Some(started);
                    }
                    Err(e) => eprintln!("lab: cannot start pasta: {e}"),
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
