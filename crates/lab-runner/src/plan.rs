//! A planned step and the workflow file format.

use std::path::{Path, PathBuf};

/// `argv[0]`: the full path that runs, so an interpreter that locates its
/// installation from `argv[0]` (Python finds a venv's `pyvenv.cfg` so)
/// finds the right one.
pub(crate) fn argv0(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A short name for a step, for run ids: the program's file name.
pub fn step_name(step: &StepPlan) -> String {
    step.exec_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".to_owned())
}

/// One planned step (also the steps of a Slurm job's spec, as typed JSON).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepPlan {
    /// The program as written.
    pub label: String,
    /// Canonical path (allowlist match, hash).
    pub path: PathBuf,
    /// The path executed.
    pub exec_path: PathBuf,
    /// Installations the program needs to read.
    pub installs: Vec<PathBuf>,
    /// argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// Whether this is an exec hook.
    pub exec_hook: bool,
}

/// A workflow file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workflow {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) steps: Vec<WorkflowStep>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkflowStep {
    pub(crate) program: String,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) exec: bool,
}
