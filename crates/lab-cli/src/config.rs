//! `lab.toml`: what the config file may say, and what only the command line
//! may say.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Keys that switch on something dangerous; SPEC §3 lets only command-line
/// flags set them, so the file may not even mention them.
const COMMAND_LINE_ONLY: &[(&str, &str)] = &[
    ("allow_external", "--allow-external"),
    ("allow_network", "--runner-allow-network"),
    ("runner_allow_network", "--runner-allow-network"),
    ("allow_workflow_exec", "--runner-allow-workflow-exec"),
    ("runner_allow_workflow_exec", "--runner-allow-workflow-exec"),
    ("enable_runner", "--enable-runner"),
];

/// The config file as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Default bind address.
    pub bind: Option<String>,
    /// Allowed import roots (relative paths are relative to the file).
    #[serde(default)]
    pub roots: Vec<PathBuf>,
    /// Extra Host header values to accept.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Artifact allowlist additions.
    #[serde(default)]
    pub artifacts: ArtifactsConfig,
    /// Runner settings (the runner itself is not in this build yet).
    #[serde(default)]
    pub runner: RunnerConfig,
    /// Format readers' bounds.
    #[serde(default)]
    pub formats: FormatsConfig,
    /// Object storage (`s3://` roots): endpoint, region, `allow_http`,
    /// listing bounds — never keys.
    #[serde(default)]
    pub s3: lab_core::remote::Settings,
}

/// `[formats]`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatsConfig {
    /// Largest SQLite store (and `-wal`) read, bytes; each read copies it
    /// into a private snapshot [default: 512 MiB].
    pub sqlite_max_bytes: Option<u64>,
    /// Most bytes the SQLite snapshots alive at once hold together; a
    /// store whose copy would pass it is an error of that store until
    /// there is room [default: 2 GiB].
    pub sqlite_snapshot_budget_bytes: Option<u64>,
    /// Most runs a walk of the roots registers (one warning says where it
    /// stopped) [default: 200,000; at most the registry's 2,000,000].
    pub max_runs: Option<usize>,
    /// Most directories a walk lists [default: 400,000].
    pub max_dirs: Option<usize>,
    /// Most entries of one directory read [default: 200,000].
    pub max_entries: Option<usize>,
    /// How deep under a root a walk looks for runs [default: 8].
    pub max_depth: Option<usize>,
    /// Most points (24 bytes each) the server keeps read across runs; the
    /// runs read least recently are read again when asked for [default:
    /// 8,000,000, about 190 MiB; at most 400,000,000].
    pub cached_points: Option<usize>,
}

/// `[artifacts]`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// Extra allowlist entries (`NAME`, `DIR/NAME`, `DIR/*.ext`).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[runner]`
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// Programs jobs may run.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Where program names (and pasta) are looked up, and the jobs' PATH:
    /// absolute directories joined by `:`.
    pub path: Option<String>,
    /// Environment variable names jobs may receive.
    #[serde(default)]
    pub env_allow: Vec<String>,
    /// Directories jobs may read (datasets, projects); a job's working
    /// directory may lie under one. Relative paths are relative to the file.
    #[serde(default)]
    pub read_paths: Vec<PathBuf>,
    /// Device files passed through to jobs (`*` in the last segment, as in
    /// `/dev/nvidia*`).
    #[serde(default)]
    pub devices: Vec<String>,
    /// Cap per job log file, bytes (the head and the tail are kept).
    pub log_max_bytes: Option<u64>,
    /// Size of a job's private /tmp, bytes.
    pub tmp_size: Option<u64>,
    /// Size of a job's private /dev/shm, bytes.
    pub shm_size: Option<u64>,
    /// Memory a job may use, bytes (a cgroup per job).
    pub memory_max: Option<u64>,
    /// Processes and threads a job may have at once (a cgroup per job).
    pub pids_max: Option<u64>,
    /// CPUs a job may use, a number (0.5: half a core; a cgroup per job).
    pub cpu_max: Option<f64>,
    /// Where jobs run: `"local"` (the default) or `"slurm"`.
    pub backend: Option<String>,
    /// `[runner.slurm]`: the partition, account, QoS, resource defaults
    /// and maxima (read strictly by lab-runner's `SlurmConfig`).
    pub slurm: Option<toml::Table>,
}

/// Whether a root as written is an object-storage URL (`s3://…`).
pub(crate) fn is_s3(root: &Path) -> bool {
    root.as_os_str().as_encoded_bytes().starts_with(b"s3:")
}

impl FileConfig {
    /// Loads `path`. A missing file is an error when `required` (it was named
    /// with `--config`), else an empty config.
    pub fn load(path: &Path, required: bool) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(e) => return Err(e).with_context(|| format!("config {}", path.display())),
        };
        let mut config =
            Self::parse(&text).with_context(|| format!("config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for root in config
            .roots
            .iter_mut()
            .chain(config.runner.read_paths.iter_mut())
        {
            // An `s3://` root is a URL, never a path: not joined.
            if root.is_relative() && !is_s3(root) {
                *root = base.join(&*root);
            }
        }
        Ok(config)
    }

    /// Parses config text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let value: toml::Table =
            toml::from_str(text).map_err(|e| anyhow::anyhow!(one_line(&e.to_string())))?;
        refuse_command_line_only(&value, "")?;
        toml::from_str(text).map_err(|e| anyhow::anyhow!(one_line(&e.to_string())))
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn refuse_command_line_only(table: &toml::Table, prefix: &str) -> anyhow::Result<()> {
    for (key, value) in table {
        let normal = key.replace('-', "_").to_ascii_lowercase();
        if let Some((_, flag)) = COMMAND_LINE_ONLY.iter().find(|(k, _)| *k == normal) {
            bail!(
                "`{prefix}{key}` cannot be set in the config file; only the command-line flag {flag} can turn it on"
            );
        }
        if let toml::Value::Table(inner) = value {
            refuse_command_line_only(inner, &format!("{prefix}{key}."))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<(), &str>) {
        let got = FileConfig::parse(text)
            .map(|_| ())
            .map_err(|e| e.to_string());
        match (expected, got) {
            (Ok(()), Ok(())) => {}
            (Err(needle), Err(msg)) => {
                assert!(msg.contains(needle), "{text:?}: {msg:?} lacks {needle:?}");
                assert!(!msg.contains('\n'), "{msg:?} is not one line");
            }
            (expected, got) => panic!("{text:?}: expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn config_files_are_strict() {
        check("", Ok(()));
        check(
            "bind = \"127.0.0.1:9000\"\nroots = [\"runs\"]\nallowed_hosts = [\"lab.local\"]\n[artifacts]\nallow = [\"extra/*.txt\"]\n[runner]\nprograms = [\"python3\"]\nenv_allow = [\"CUDA_VISIBLE_DEVICES\"]\nread_paths = [\"/data\"]\ndevices = [\"/dev/nvidia*\"]\nlog_max_bytes = 1048576\n",
            Ok(()),
        );
        check("bnid = \"x\"", Err("unknown field `bnid`"));
        check("[artifacts]\nallowed = []", Err("unknown field `allowed`"));
        check("[runner]\nshell = true", Err("unknown field `shell`"));
        check(
            "allow_external = true",
            Err("`allow_external` cannot be set in the config file"),
        );
        check("allow-external = false", Err("--allow-external"));
        check(
            "[runner]\nallow_network = true",
            Err("`runner.allow_network`"),
        );
        check(
            "[runner]\nallow-workflow-exec = true",
            Err("--runner-allow-workflow-exec"),
        );
        check("runner_allow_network = true", Err("--runner-allow-network"));
        check("enable_runner = true", Err("--enable-runner"));
        check("roots = \"not a list\"", Err("invalid type"));
        check("[[[", Err("TOML parse error at line 1"));
    }
}
