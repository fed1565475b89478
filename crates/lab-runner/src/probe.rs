//! The start-up probe: the sandbox run once with a harmless program, to
//! report which isolation layers this machine provides.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::exit::Exit;
use crate::helper::{Sandboxed, start_sandbox, stop_network};
use crate::protocol::{PROTOCOL_VERSION, SandboxSpec};
use crate::record::Isolation;
use crate::report::read_report;
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
            } = start_sandbox(
                &self.config.helper,
                self.pasta.as_deref(),
                &spec,
                Stdio::null(),
                Stdio::null(),
            )
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
