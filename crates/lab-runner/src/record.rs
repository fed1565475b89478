//! What a job leaves behind, typed from the helper to the record to the
//! UI: the isolation report ([`Isolation`], assembled from the helper's
//! typed [`crate::protocol::Report`] lines), how it ended ([`ExitRecord`])
//! and its provenance ([`Provenance`], version 2). Each serialises to the
//! JSON the records, `provenance.json` and the API have always carried,
//! and is read back as these types, never as `serde_json::Value` by key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::exit::Exit;

/// A layer the sandbox could not set up, so nothing ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The layer.
    pub layer: String,
    /// Why.
    pub error: String,
}

/// The cgroup limits as the kernel holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedLimits {
    /// `v1` or `v2`.
    pub version: String,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// Processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    /// CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_max: Option<f64>,
}

/// The isolation layers in force for a job (or the start-up probe), each
/// as the layer reported it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Isolation {
    /// A user namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_namespace: Option<bool>,
    /// A mount namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_namespace: Option<bool>,
    /// A PID namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<bool>,
    /// A network namespace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_namespace: Option<bool>,
    /// The job's uid inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_inside: Option<u32>,
    /// What the network flag gave the job, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Each mount, in words (as the helper reported them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Value>,
    /// Landlock's rules and status (as the helper reported them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlock_filesystem: Option<Value>,
    /// The seccomp filter, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<String>,
    /// `PR_SET_NO_NEW_PRIVS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privs: Option<bool>,
    /// The capabilities left, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    /// The resource limits (rlimits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Value>,
    /// The cgroup limits; `None` (null) when none is configured.
    #[serde(default)]
    pub limits: Option<AppliedLimits>,
    /// The layer that refused, when one did (nothing ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// The probe could not run (what went wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The probe's kernel features (`KernelFeatures::to_json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Value>,
    /// The probe's plan of layers (`Plan::to_json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
}

impl std::fmt::Display for Isolation {
    /// As JSON, the form records and the API carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

impl Isolation {
    /// A probe or job refused at `layer`.
    pub fn refused(layer: &str, error: impl Into<String>) -> Self {
        Self {
            refused: Some(Refusal {
                layer: layer.to_owned(),
                error: error.into(),
            }),
            ..Self::default()
        }
    }
}

/// How a job ended, as records and provenance keep it: exactly one field
/// set (`{"code": 0}`, `{"signal": 9}`, `{"timed_out": true}`,
/// `{"cancelled": true}`, `{"oom": true}`, `{"refused": {…}}`, `{"error":
/// …}` for a job that could not start, `{"interrupted": …}` for one whose
/// runner stopped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exited with this code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Killed by this signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Killed at its timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    /// Cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<bool>,
    /// Ended by the OOM killer at `memory_max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom: Option<bool>,
    /// Refused by the sandbox before it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Could not start (why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its runner stopped while it ran (why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// The node it ran on failed (a cluster backend's word for why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_fail: Option<String>,
}

impl From<&Exit> for ExitRecord {
    fn from(exit: &Exit) -> Self {
        let mut record = ExitRecord::default();
        match exit {
            Exit::Code(c) => record.code = Some(*c),
            Exit::Signal(s) => record.signal = Some(*s),
            Exit::TimedOut => record.timed_out = Some(true),
            Exit::Cancelled => record.cancelled = Some(true),
            Exit::Oom => record.oom = Some(true),
            Exit::NodeFail(why) => record.node_fail = Some(why.clone()),
            Exit::Refused { layer, error } => {
                record.refused = Some(Refusal {
                    layer: layer.clone(),
                    error: error.clone(),
                });
            }
        }
        record
    }
}

impl ExitRecord {
    /// The exit this record keeps (`None` for an empty one, one of a job
    /// that could not start, or one whose runner stopped): how a Slurm
    /// job's helper hands its exit back to the Lab.
    pub fn to_exit(&self) -> Option<Exit> {
        Some(match self {
            ExitRecord { code: Some(c), .. } => Exit::Code(*c),
            ExitRecord {
                signal: Some(s), ..
            } => Exit::Signal(*s),
            ExitRecord {
                timed_out: Some(true),
                ..
            } => Exit::TimedOut,
            ExitRecord {
                cancelled: Some(true),
                ..
            } => Exit::Cancelled,
            ExitRecord {
                oom: Some(true), ..
            } => Exit::Oom,
            ExitRecord {
                node_fail: Some(why),
                ..
            } => Exit::NodeFail(why.clone()),
            ExitRecord {
                refused: Some(r), ..
            } => Exit::Refused {
                layer: r.layer.clone(),
                error: r.error.clone(),
            },
            _ => return None,
        })
    }
}

impl std::fmt::Display for ExitRecord {
    /// As JSON, the form records and the log stream's `end` event carry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// One step of a job (a workflow has several), as provenance records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The program as asked for.
    pub program: String,
    /// The path it ran by, as found.
    pub path: String,
    /// Its canonical path (what the allowlist matched).
    pub resolved_path: String,
    /// SHA-256 of the program as the job saw it; `None` when it could not
    /// be told.
    pub sha256: Option<String>,
    /// argv, redacted.
    pub argv: Vec<String>,
    /// A workflow's exec hook.
    pub exec_hook: bool,
    /// How it ended.
    pub exit: ExitRecord,
}

/// `provenance.json` of a job's run (the Lab's own file, where the job
/// cannot write), version 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Format version: 2.
    pub version: u32,
    /// The Lab that ran it.
    pub lab_version: String,
    /// The first step's program as asked for.
    pub program: String,
    /// The first step's path, as found.
    pub path: String,
    /// The first step's canonical path.
    pub resolved_path: String,
    /// The first step's program hash.
    pub sha256: Option<String>,
    /// The first step's argv, redacted.
    pub argv: Vec<String>,
    /// Every step.
    pub steps: Vec<StepRecord>,
    /// The working directory, seen through an overlay.
    pub cwd: Option<String>,
    /// The git commit, branch and dirty state of the cwd, read from `.git`
    /// (as `git::describe` reports them), or null.
    pub git: Value,
    /// Where in the run the job wrote.
    pub job_dir: String,
    /// The variables passed, by name.
    pub env_names: Vec<String>,
    /// Whether it had the network.
    pub network_allowed: bool,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds.
    pub ended: u64,
    /// How it ended.
    pub exit: ExitRecord,
    /// The isolation layers in force.
    pub isolation: Isolation,
}

/// The version of [`Provenance`] this Lab writes.
pub const PROVENANCE_VERSION: u32 = 2;

impl Provenance {
    /// Reads a `provenance.json`: version 2, or `None` (another version,
    /// or not provenance at all).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let provenance: Provenance = serde_json::from_slice(bytes).ok()?;
        (provenance.version == PROVENANCE_VERSION).then_some(provenance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_record_is_the_json_records_have_always_held() {
        for (exit, json) in [
            (Exit::Code(0), r#"{"code":0}"#),
            (Exit::Signal(9), r#"{"signal":9}"#),
            (Exit::TimedOut, r#"{"timed_out":true}"#),
            (Exit::Cancelled, r#"{"cancelled":true}"#),
            (Exit::Oom, r#"{"oom":true}"#),
            (
                Exit::Refused {
                    layer: "l".into(),
                    error: "e".into(),
                },
                r#"{"refused":{"layer":"l","error":"e"}}"#,
            ),
        ] {
            let record = ExitRecord::from(&exit);
            assert_eq!(record.to_string(), json);
            let back: ExitRecord = serde_json::from_str(json).unwrap();
            assert_eq!(back, record);
        }
        let interrupted: ExitRecord =
            serde_json::from_str(r#"{"interrupted": "the Lab stopped"}"#).unwrap();
        assert_eq!(interrupted.interrupted.as_deref(), Some("the Lab stopped"));
    }

    #[test]
    fn an_isolation_report_keeps_its_shape() {
        let json = r#"{"user_namespace":true,"network_namespace":true,"uid_inside":0,"seccomp":"x","limits":{"version":"v1","memory_max":1048576},"refused":{"layer":"l","error":"e"}}"#;
        let isolation: Isolation = serde_json::from_str(json).unwrap();
        assert_eq!(isolation.limits.as_ref().unwrap().memory_max, Some(1 << 20));
        assert_eq!(serde_json::to_string(&isolation).unwrap(), json);
        assert_eq!(
            serde_json::to_string(&Isolation::default()).unwrap(),
            r#"{"limits":null}"#
        );
    }
}
