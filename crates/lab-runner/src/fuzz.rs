//! Oracles for the fuzz target (`crates/lab-runner/fuzz`, `request`) and
//! the property tests: a job request (JSON, as `POST /api/jobs` and
//! `lab run` build it) and a workflow file (TOML), whatever their bytes,
//! are accepted only when every program that would run is on the
//! allowlist (by canonical path) or an exec hook that was allowed and
//! confirmed and lies inside the workflow's directory, and every variable
//! passed is allowlisted and never one that makes a program load something
//! else. Not an API.
//!
//! The scratch directory holds `wf/` (the workflow's directory: `hook.sh`,
//! `sub/inner.sh`, a directory `dir/`, a link `escape` to `../outside/evil.sh`,
//! a link `inside` to `hook.sh`, a looping link `loop`) and `outside/evil.sh`.
//! Every link stays inside the scratch directory; nothing is run (the
//! runners only plan), and the one file written, `wf/workflow.toml`, is
//! created anew each time, never through a link.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::policy::{refused_env, valid_env_name};
use crate::{JobRequest, Runner, RunnerConfig};

/// The programs the harness allows, by name.
pub const PROGRAMS: &[&str] = &["true", "echo"];
/// The variables the harness allows.
pub const ENV_ALLOW: &[&str] = &["LAB_FUZZ_OK", "CUDA_VISIBLE_DEVICES"];

/// Two runners (exec hooks allowed or not) over one scratch directory.
pub struct RunnerHarness {
    plain: Runner,
    exec: Runner,
    base: PathBuf,
    workflows: PathBuf,
    allowed: Vec<PathBuf>,
}

impl std::fmt::Debug for RunnerHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerHarness")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn made<T>(what: &str, result: std::io::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl RunnerHarness {
    /// The runners and their scratch directory.
    pub fn start() -> Self {
        let name = lab_registry::data_dir::random_hex(12).unwrap_or_else(|e| panic!("RNG: {e}"));
        let base =
            std::env::temp_dir().join(format!("lab-runner-fuzz-{}-{name}", std::process::id()));
        let wf = base.join("wf");
        made("scratch", std::fs::create_dir_all(wf.join("sub")));
        made("scratch", std::fs::create_dir_all(wf.join("dir")));
        made("scratch", std::fs::create_dir_all(base.join("outside")));
        for file in ["wf/hook.sh", "wf/sub/inner.sh", "outside/evil.sh"] {
            made(file, std::fs::write(base.join(file), "#!/bin/true\n"));
        }
        made("link", symlink("../outside/evil.sh", wf.join("escape")));
        made("link", symlink("hook.sh", wf.join("inside")));
        made("link", symlink("loop", wf.join("loop")));
        let base = made("scratch", base.canonicalize());
        let runner = |allow_workflow_exec| {
            let config = RunnerConfig {
                programs: PROGRAMS.iter().map(|p| (*p).to_owned()).collect(),
                env_allow: ENV_ALLOW.iter().map(|p| (*p).to_owned()).collect(),
                allow_network: false,
                allow_workflow_exec,
                limits: crate::Limits::default(),
                // No helper: nothing here runs; planning needs none.
                helper: base.join("no-helper"),
                default_timeout: Duration::from_secs(60),
                read_paths: Vec::new(),
                devices: Vec::new(),
                log_max_bytes: crate::policy::DEFAULT_LOG_MAX_BYTES,
                lab_secrets: Vec::new(),
                data_dir: None,
                config_file: None,
                key_file: None,
                cgroup: crate::cgroup::Wanted::default(),
                backend: Default::default(),
                path: crate::policy::RUNNER_PATH.to_owned(),
            };
            Runner::new(config)
                .unwrap_or_else(|e| panic!("runner: {e}"))
                .0
        };
        let plain = runner(false);
        let exec = runner(true);
        let allowed = plain.programs().iter().map(|p| p.path.clone()).collect();
        Self {
            plain,
            exec,
            workflows: base.join("wf"),
            base,
            allowed,
        }
    }

    /// Parses `json` as a job request and plans it; panics when an accepted
    /// request would run a program off the allowlist or pass a variable
    /// that is not allowed. Returns whether it was accepted.
    pub fn check_request(&self, json: &[u8]) -> bool {
        let Ok(request) = serde_json::from_slice::<JobRequest>(json) else {
            return false;
        };
        let Ok((step, passed, _)) = self.plain.plan(&request) else {
            return false;
        };
        assert!(
            self.allowed.contains(&step.path),
            "{:?} runs {}, which is not allowed",
            request.program,
            step.path.display()
        );
        assert!(!step.exec_hook);
        assert_eq!(step.argv.len(), request.args.len() + 1);
        for name in &request.env {
            assert!(
                ENV_ALLOW.contains(&name.as_str()) && valid_env_name(name) && !refused_env(name),
                "variable {name:?} accepted"
            );
        }
        for (name, _) in passed {
            assert!(request.env.contains(&name), "{name} passed unasked");
        }
        true
    }

    /// Writes `toml` as `wf/workflow.toml` and plans it with exec hooks
    /// allowed or not and confirmed or not; panics when an accepted
    /// workflow runs a program off the allowlist, or an exec hook that was
    /// not allowed and confirmed or does not lie inside `wf/`. Returns
    /// whether it was accepted.
    pub fn check_workflow(&self, toml: &[u8], allow_exec: bool, confirm: bool) -> bool {
        use std::io::Write as _;
        let file = self.workflows.join("workflow.toml");
        // Never written through a link: the last one unlinked, a new file
        // created exclusively (`O_EXCL` follows no link).
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("workflow: {e}"),
            _ => {}
        }
        made(
            "workflow",
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .and_then(|mut f| f.write_all(toml)),
        );
        let runner = if allow_exec { &self.exec } else { &self.plain };
        let Ok((_, steps)) = runner.plan_workflow(&file, confirm) else {
            return false;
        };
        assert!(!steps.is_empty() && steps.len() <= 64);
        for step in &steps {
            if step.exec_hook {
                assert!(
                    allow_exec && confirm,
                    "an exec hook ran unallowed or unconfirmed"
                );
                assert!(
                    !Path::new(&step.label).is_absolute(),
                    "an absolute exec hook {}",
                    step.label
                );
                let real = made("hook", step.path.canonicalize());
                assert_eq!(real, step.path, "the hook's path is its real path");
                assert!(
                    real.starts_with(&self.workflows) && real.is_file(),
                    "exec hook {} outside {}",
                    real.display(),
                    self.workflows.display()
                );
                assert_eq!(step.exec_path, step.path);
            } else {
                assert!(
                    self.allowed.contains(&step.path),
                    "step {:?} runs {}, which is not allowed",
                    step.label,
                    step.path.display()
                );
            }
        }
        true
    }

    /// The fuzz target's entry: the first byte picks request or workflow
    /// (bit 0), exec hooks allowed (bit 1) and confirmed (bit 2); the rest
    /// is the text.
    pub fn check(&self, data: &[u8]) -> bool {
        let Some((mode, text)) = data.split_first() else {
            return false;
        };
        if mode & 1 == 0 {
            self.check_request(text)
        } else {
            self.check_workflow(text, mode & 2 != 0, mode & 4 != 0)
        }
    }
}

impl Drop for RunnerHarness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
