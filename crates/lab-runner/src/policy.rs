//! Which programs and variables a job may have: the runner's own PATH,
//! variables never passed, trampolines, resolving a program by canonical
//! path, and the installation a program needs to read.

use std::path::{Path, PathBuf};

/// The PATH the runner searches for program names, and the one jobs get.
pub const RUNNER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The run's subdirectory the job writes into (its content); everything
/// else in the run directory is the Lab's.
pub const JOB_DIR: &str = lab_fs::JOB_DIR;
/// overlayfs's work directory inside the run directory (never served: it
/// starts with a dot), removed when the job ends.
pub const WORK_DIR: &str = ".work";
/// Default cap on each log file a job's output fills.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 64 << 20;
/// Longest argument accepted.
pub const MAX_ARG: usize = 128 * 1024;
/// Most arguments accepted.
pub const MAX_ARGS: usize = 4096;

/// Variables never passed to a job, even when allowlisted: they make the
/// program load or run something else (runner-isolation.md).
pub(crate) const REFUSED_ENV: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "SSH_AUTH_SOCK",
    "PATH",
    "HOME",
    "LANG",
    "LAB_OUTPUT_DIR",
    "TMPDIR",
    "IFS",
];
pub(crate) const REFUSED_ENV_PREFIXES: &[&str] = &["LD_", "GIT_SSH", "GIT_CONFIG_", "DYLD_"];
/// Programs that run whatever they are told: allowlisting one allows all.
pub(crate) const TRAMPOLINES: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "fish", "env", "busybox", "xargs", "find", "timeout",
    "nice", "nohup", "sudo", "doas", "python", "python3", "perl", "ruby", "node", "awk", "gawk",
    "make", "git",
];

pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn refused_env(name: &str) -> bool {
    REFUSED_ENV.contains(&name)
        || REFUSED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
        || name.to_ascii_uppercase().ends_with("_PROXY")
}

/// Resolves a program name in [`RUNNER_PATH`] (never the job's PATH) or an
/// absolute path, to its canonical path.
pub(crate) fn resolve_path(requested: &str) -> Option<PathBuf> {
    resolve_both(requested).map(|(_, canonical)| canonical)
}

/// The absolute path found for `requested` and its canonical path.
pub(crate) fn resolve_both(requested: &str) -> Option<(PathBuf, PathBuf)> {
    if requested.is_empty() || requested.contains('\0') {
        return None;
    }
    let candidate = if requested.contains('/') {
        let path = Path::new(requested);
        if !path.is_absolute() {
            return None;
        }
        path.to_path_buf()
    } else {
        RUNNER_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(requested))
            .find(|p| p.is_file())?
    };
    let canonical = std::fs::canonicalize(&candidate).ok()?;
    canonical.is_file().then_some((candidate, canonical))
}

/// The directories a program needs to run: for each of its configured and
/// canonical paths, the nearest ancestor holding `pyvenv.cfg` or
/// `conda-meta/` (a venv or conda env), else the prefix of a `bin/` outside
/// the system directories (pyenv, /opt/tool), else the file alone.
pub fn installs(exec_path: &Path, canonical: &Path) -> Vec<PathBuf> {
    let system = |p: &Path| {
        crate::protocol::SYSTEM_DIRS
            .iter()
            .any(|d| p.starts_with(d))
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for path in [exec_path, canonical] {
        if system(path) {
            continue;
        }
        let env = path
            .ancestors()
            .skip(1)
            .take(6)
            .find(|dir| dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir());
        let prefix = path
            .parent()
            .filter(|bin| bin.file_name().is_some_and(|n| n == "bin"))
            .and_then(Path::parent)
            .filter(|prefix| prefix.parent().is_some() && !system(prefix));
        let dir = env.or(prefix).unwrap_or(path);
        // Never a home directory or one of its parents.
        if is_home_or_parent(dir) {
            found.push(path.to_path_buf());
        } else {
            found.push(dir.to_path_buf());
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether `dir` is the user's home directory or one of its parents.
pub(crate) fn is_home_or_parent(dir: &Path) -> bool {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| std::fs::canonicalize(h).ok());
    dir == Path::new("/") || home.is_some_and(|home| home.starts_with(dir))
}
