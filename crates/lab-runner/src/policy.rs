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

/// Resolves a program name in `search` (`[runner] path`, by default
/// [`RUNNER_PATH`]; never the job's or the Lab's PATH) or an absolute path,
/// to its canonical path.
pub(crate) fn resolve_path(requested: &str, search: &str) -> Option<PathBuf> {
    resolve_both(requested, search).map(|(_, canonical)| canonical)
}

/// The absolute path found for `requested` in `search` and its canonical
/// path.
pub(crate) fn resolve_both(requested: &str, search: &str) -> Option<(PathBuf, PathBuf)> {
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
        search
            .split(':')
            .filter(|dir| dir.starts_with('/'))
            .map(|dir| Path::new(dir).join(requested))
            .find(|p| p.is_file())?
    };
    let canonical = std::fs::canonicalize(&candidate).ok()?;
    canonical.is_file().then_some((candidate, canonical))
}

/// What a search of the caller's `PATH` found for `lab run` (SPEC §3).
#[derive(Debug, Default)]
pub(crate) struct CallerFind {
    /// The path found, as the caller's shell would run it, and its
    /// canonical path; `None` when no directory of the `PATH` holds it.
    pub(crate) found: Option<(PathBuf, PathBuf)>,
    /// Version managers' shims passed over on the way (`~/.pyenv/shims/
    /// python3`): scripts that pick the real program at run time, from
    /// files no job is granted, so they never run in the sandbox.
    pub(crate) shims: Vec<PathBuf>,
}

/// Looks `requested` up as the caller's shell would: an absolute path as
/// it is, a name in each absolute directory of `caller_path` in order, the
/// first executable file there. A version manager's shim (a file in a
/// directory named `shims`: pyenv, rbenv, asdf, mise) whose canonical path
/// is not `allowed` is passed over, and the search goes on.
pub(crate) fn find_in_caller_path(
    requested: &str,
    caller_path: &str,
    allowed: impl Fn(&Path) -> bool,
) -> CallerFind {
    let mut find = CallerFind::default();
    if requested.contains('/') {
        find.found = resolve_both(requested, "");
        return find;
    }
    if requested.is_empty() || requested.contains('\0') {
        return find;
    }
    for dir in caller_path.split(':').filter(|dir| dir.starts_with('/')) {
        let candidate = Path::new(dir).join(requested);
        if !is_executable_file(&candidate) {
            continue;
        }
        let Ok(canonical) = std::fs::canonicalize(&candidate) else {
            continue;
        };
        let in_shims = candidate
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "shims");
        if in_shims && !allowed(&canonical) {
            find.shims.push(candidate);
            continue;
        }
        find.found = Some((candidate, canonical));
        break;
    }
    find
}

/// Whether `path` is (or links to) a regular file with an execute bit.
fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The job's `PATH` (SPEC §5 Runner): the directory its program was found
/// in, when that lies inside one of the installations granted to it (a
/// venv's or conda env's `bin/`, a toolchain's), so that a `python` the job
/// starts by name is that installation's; then `runner_path`. A directory
/// a `PATH` cannot carry (not UTF-8, or holding `:`) is left out.
pub(crate) fn job_path(exec_path: &Path, installs: &[PathBuf], runner_path: &str) -> String {
    let own = exec_path
        .parent()
        .filter(|dir| dir.is_absolute() && installs.iter().any(|i| dir.starts_with(i)))
        .and_then(Path::to_str)
        .filter(|dir| !dir.contains(':'));
    match own {
        Some(dir) => format!("{dir}:{runner_path}"),
        None => runner_path.to_owned(),
    }
}

/// `text` as a TOML basic string (quoted, with `\\`, `\"` and control
/// characters escaped), for a line the user pastes into `lab.toml`.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why someone other than root or the Lab's user could replace `path` (a
/// program the Lab runs outside the sandbox, such as pasta): the file, or
/// a directory on its way from `/`, owned by another user or writable by
/// group or others (a sticky `/tmp` included); `None` when no one could.
pub(crate) fn replaceable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let euid = rustix::process::geteuid().as_raw();
    let mut at = Some(path);
    while let Some(here) = at {
        match std::fs::symlink_metadata(here) {
            Ok(meta) => {
                if meta.uid() != 0 && meta.uid() != euid {
                    return Some(format!("{} belongs to uid {}", here.display(), meta.uid()));
                }
                // A sticky directory (`/tmp`) lets others add entries but
                // not rename or remove ours: the next component's owner,
                // checked in its turn, is what counts.
                let sticky = meta.is_dir() && meta.mode() & 0o1000 != 0;
                if !meta.file_type().is_symlink() && !sticky && meta.mode() & 0o022 != 0 {
                    return Some(format!("{} is writable by group or others", here.display()));
                }
            }
            Err(e) => return Some(format!("{}: {e}", here.display())),
        }
        at = here.parent();
    }
    None
}

/// What a granted directory is for. The rules differ in one point only: an
/// installation (found by the Lab, not chosen by the user) may not hold or
/// be one of the home's dot-directories unless it is the program's own
/// installation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A program's installation (venv, conda env, toolchain, prefix).
    Installation,
    /// A `[runner] read_paths` entry.
    ReadPath,
    /// A job's working directory.
    Cwd,
}

/// Why a directory cannot be granted: the protected path it is, holds or
/// lies in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The protected path.
    pub exposed: PathBuf,
    /// What that is: one of the `Protected::*` labels.
    pub what: &'static str,
}

/// What no grant may expose (SPEC §5 Runner): the user's home directory
/// and its parents, the Lab's own files (data dir, config file, key file),
/// and — for an installation — the home's dot-directories and dotfiles.
/// Every grant a job gets (installations, `read_paths`, the cwd) is checked
/// by [`Protected::exposure`], the one containment check.
#[derive(Clone, Debug, Default)]
pub struct Protected {
    /// The home directory, as given and canonical.
    homes: Vec<PathBuf>,
    /// The home's dot entries (`~/.ssh`, `~/.cargo`, `~/.netrc`), as named
    /// under the home and canonical, and whether each is a directory.
    dot_entries: Vec<(PathBuf, bool)>,
    /// The Lab's own files, canonical, with their labels.
    lab_files: Vec<(PathBuf, &'static str)>,
}

impl Protected {
    /// The label of the home directory.
    pub const HOME: &'static str = "your home directory";
    /// The label of the data dir.
    pub const DATA_DIR: &'static str = "the Lab's data dir";
    /// The label of the config file.
    pub const CONFIG_FILE: &'static str = "the Lab's config file";
    /// The label of the key file.
    pub const KEY_FILE: &'static str = "the Lab's key file";
    /// The label of a home dot-directory.
    pub const DOT_DIR: &'static str = "a home dot-directory";
    /// The label of a home dotfile.
    pub const DOTFILE: &'static str = "a home dotfile";

    /// The protected set for `home` and the Lab's files (each made absolute
    /// and canonical where it exists; a key file not yet written counts by
    /// its canonical directory). Reads the home's entries once.
    pub fn new(
        home: Option<&Path>,
        data_dir: Option<&Path>,
        config_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Self {
        let mut homes = Vec::new();
        let mut dot_entries = Vec::new();
        if let Some(home) = home.filter(|h| h.is_absolute()) {
            homes.push(home.to_path_buf());
            if let Ok(canonical) = std::fs::canonicalize(home) {
                homes.push(canonical);
            }
            homes.dedup();
            for entry in std::fs::read_dir(home).into_iter().flatten().flatten() {
                if !entry.file_name().as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                let named = home.join(entry.file_name());
                let is_dir = named.is_dir();
                if let Ok(canonical) = std::fs::canonicalize(&named)
                    && canonical != named
                {
                    dot_entries.push((canonical, is_dir));
                }
                dot_entries.push((named, is_dir));
            }
        }
        let lab_files = [
            (data_dir, Self::DATA_DIR),
            (config_file, Self::CONFIG_FILE),
            (key_file, Self::KEY_FILE),
        ]
        .into_iter()
        .filter_map(|(path, what)| Some((normal(path?)?, what)))
        .collect();
        Self {
            homes,
            dot_entries,
            lab_files,
        }
    }

    /// [`Protected::new`] with the home directory `HOME` names.
    pub fn from_env(
        data_dir: Option<&Path>,
        config_file: Option<&Path>,
        key_file: Option<&Path>,
    ) -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        let mut protected = Self::new(home.as_deref(), data_dir, config_file, key_file);
        // `$HOME` is the caller's to set: the account's home directory (from
        // the password database) is protected too, whatever it says.
        if let Some(account) = account_home(rustix::process::geteuid().as_raw())
            && home.as_deref() != Some(account.as_path())
        {
            let other = Self::new(Some(&account), None, None, None);
            protected.homes.extend(other.homes);
            protected.dot_entries.extend(other.dot_entries);
        }
        protected
    }

    /// What granting `dir` (a directory, or a program file granted alone)
    /// for `grant` would expose, or `None` when it may be granted: it is
    /// never `/`, the home directory or one of its parents; it never holds,
    /// is or lies in the data dir, the config file or the key file; an
    /// installation never holds or is a home dot-directory or dotfile
    /// unless that dot-directory is itself the installation (a venv with
    /// `pyvenv.cfg`, a conda prefix with `conda-meta/`). Both `dir` and its
    /// canonical path are checked.
    pub fn exposure(&self, dir: &Path, grant: Grant) -> Option<Exposure> {
        let canonical = std::fs::canonicalize(dir).ok();
        let forms: Vec<&Path> = std::iter::once(dir)
            .chain(canonical.as_deref().filter(|c| *c != dir))
            .collect();
        for form in &forms {
            if self.is_home_or_parent(form) {
                return Some(Exposure {
                    exposed: self
                        .homes
                        .first()
                        .cloned()
                        .unwrap_or_else(|| form.to_path_buf()),
                    what: Self::HOME,
                });
            }
        }
        for form in &forms {
            for (file, what) in &self.lab_files {
                if file.starts_with(form) || form.starts_with(file) {
                    return Some(Exposure {
                        exposed: file.clone(),
                        what,
                    });
                }
            }
        }
        if grant != Grant::Installation {
            return None;
        }
        for form in &forms {
            for (entry, is_dir) in &self.dot_entries {
                let own_installation = entry == form && is_installation(form);
                if entry.starts_with(form) && !own_installation {
                    return Some(Exposure {
                        exposed: entry.clone(),
                        what: if *is_dir {
                            Self::DOT_DIR
                        } else {
                            Self::DOTFILE
                        },
                    });
                }
            }
        }
        None
    }

    /// Whether `dir` is `/`, the home directory or one of its parents.
    pub(crate) fn is_home_or_parent(&self, dir: &Path) -> bool {
        dir.parent().is_none() || self.homes.iter().any(|h| h.starts_with(dir))
    }

    /// `path` for a message, `~/…` when it lies in the home directory.
    pub fn shown(&self, path: &Path) -> String {
        for home in &self.homes {
            if let Ok(rest) = path.strip_prefix(home) {
                return if rest.as_os_str().is_empty() {
                    "~".to_owned()
                } else {
                    format!("~/{}", rest.display())
                };
            }
        }
        path.display().to_string()
    }
}

/// `path` absolute and canonical; one that does not exist yet (a key file
/// about to be written) by its canonical directory.
fn normal(path: &Path) -> Option<PathBuf> {
    let path = std::path::absolute(path).ok()?;
    if let Ok(canonical) = std::fs::canonicalize(&path) {
        return Some(canonical);
    }
    match (path.parent().map(std::fs::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => Some(dir.join(name)),
        _ => Some(path),
    }
}

/// Whether `dir` is an installation by its own marker: a venv
/// (`pyvenv.cfg`) or a conda prefix (`conda-meta/`).
fn is_installation(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir()
}

/// The directories a program needs to run: for each of its configured and
/// canonical paths, the nearest ancestor holding `pyvenv.cfg` or
/// `conda-meta/` (a venv or conda env), else the prefix of a `bin/` outside
/// the system directories (a toolchain such as `~/.rustup/toolchains/X` or
/// `~/.pyenv/versions/X`, `/opt/tool`), else — when that would be the home
/// directory or a parent — the file alone.
///
/// Each is checked by [`Protected::exposure`]: a program whose installation
/// would expose the data dir, the config or key file, or a home
/// dot-directory (`~/.local/bin/x` → `~/.local`, `~/.cargo/bin/x` →
/// `~/.cargo`) is refused, with why and what to allowlist instead. A
/// configured path that is only a link to the program elsewhere (pipx's
/// `~/.local/bin/tool`) needs no grant of its own when its bare prefix is
/// refused: what runs is granted through the canonical path.
pub fn installs(
    exec_path: &Path,
    canonical: &Path,
    protected: &Protected,
) -> Result<Vec<PathBuf>, String> {
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
            .find(|dir| is_installation(dir));
        let prefix = path
            .parent()
            .filter(|bin| bin.file_name().is_some_and(|n| n == "bin"))
            .and_then(Path::parent)
            .filter(|prefix| prefix.parent().is_some() && !system(prefix));
        let dir = env
            .or(prefix)
            .filter(|dir| !protected.is_home_or_parent(dir))
            .unwrap_or(path);
        match protected.exposure(dir, Grant::Installation) {
            None => found.push(dir.to_path_buf()),
            Some(_) if path == exec_path && exec_path != canonical && env.is_none() => {}
            Some(Exposure { exposed, what }) => {
                return Err(format!(
                    "{}'s installation {} would expose {} ({what}); allowlist the program's real installation (a venv) or copy it to /usr/local/bin",
                    protected.shown(path),
                    protected.shown(dir),
                    protected.shown(&exposed),
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_program_others_could_replace_is_named() {
        // The system's own: root's all the way up.
        assert_eq!(replaceable_by_others(Path::new("/usr/bin")), None);
        // Ours under the sticky /var/tmp: others cannot rename it.
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let file = tmp.path().join("pasta");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        assert_eq!(replaceable_by_others(&file), None);
        // In a directory anyone may write (not sticky): anyone may swap it.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        std::fs::write(shared.join("pasta"), "#!/bin/sh\n").unwrap();
        let why = replaceable_by_others(&shared.join("pasta")).unwrap();
        assert!(
            why.contains("shared is writable by group or others"),
            "{why}"
        );
        assert!(replaceable_by_others(&tmp.path().join("missing")).is_some());
    }

    use super::*;

    /// A scratch tree acting as `HOME` (`T/home`) and the rest of a
    /// machine (`T/opt`, `T/data`), made of directories, files and links
    /// under `T`.
    struct Machine {
        _tmp: tempfile::TempDir,
        root: PathBuf,
    }

    impl Machine {
        fn new(layout: &[&str]) -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().canonicalize().unwrap();
            std::fs::create_dir_all(root.join("home")).unwrap();
            for entry in layout {
                // `dir/`, `file`, or `link -> target` (target relative to T).
                if let Some((link, target)) = entry.split_once(" -> ") {
                    let link = root.join(link);
                    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                    std::os::unix::fs::symlink(root.join(target), link).unwrap();
                } else if let Some(dir) = entry.strip_suffix('/') {
                    std::fs::create_dir_all(root.join(dir)).unwrap();
                } else {
                    let file = root.join(entry);
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    std::fs::write(file, "x").unwrap();
                }
            }
            Self { _tmp: tmp, root }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.root.join(rel)
        }
    }

    /// What the Lab protects, relative to T: data dir, config, key file.
    struct Lab<'a> {
        data: &'a str,
        config: &'a str,
        key: &'a str,
    }

    const DEFAULT_LAB: Lab<'static> = Lab {
        data: "home/.local/share/lab",
        config: "home/.local/share/lab/lab.toml",
        key: "home/.lab-key",
    };

    /// The one caller of `installs` here: a program at `exec` (relative to
    /// T) in the machine `layout`, for the Lab's files `lab`, is granted
    /// `granted` (relative to T) or refused with a message containing each
    /// of `refused`.
    fn check(layout: &[&str], lab: &Lab, exec: &str, expected: Result<&[&str], &[&str]>) {
        let m = Machine::new(layout);
        let protected = Protected::new(
            Some(&m.path("home")),
            Some(&m.path(lab.data)),
            Some(&m.path(lab.config)),
            Some(&m.path(lab.key)),
        );
        let exec_path = m.path(exec);
        let canonical = exec_path.canonicalize().unwrap();
        let got = installs(&exec_path, &canonical, &protected);
        match (got, expected) {
            (Ok(dirs), Ok(want)) => {
                let want: Vec<PathBuf> = want.iter().map(|w| m.path(w)).collect();
                assert_eq!(dirs, want, "{exec}");
            }
            (Err(why), Err(needles)) => {
                for needle in needles {
                    assert!(why.contains(needle), "{exec}: {why:?} lacks {needle:?}");
                }
                assert!(
                    why.contains("allowlist the program's real installation"),
                    "{why}"
                );
            }
            (got, want) => panic!("{exec}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn installations_that_would_expose_the_labs_files_or_dot_directories_are_refused() {
        let local_bin = ["home/.local/bin/foo", "home/.local/share/lab/registry.json"];
        // ~/.local/bin/foo's prefix ~/.local holds the data dir.
        check(
            &local_bin,
            &DEFAULT_LAB,
            "home/.local/bin/foo",
            Err(&[
                "~/.local/bin/foo's installation ~/.local would expose ~/.local/share/lab (the Lab's data dir)",
                "copy it to /usr/local/bin",
            ]),
        );
        // The data dir elsewhere: ~/.local is a home dot-directory still.
        let elsewhere = Lab {
            data: "data",
            config: "data/lab.toml",
            key: "keys/key",
        };
        check(
            &local_bin,
            &elsewhere,
            "home/.local/bin/foo",
            Err(&["~/.local (a home dot-directory)"]),
        );
        // ~/.cargo/bin/tool: ~/.cargo holds credentials.toml.
        check(
            &["home/.cargo/bin/tool", "home/.cargo/credentials.toml"],
            &elsewhere,
            "home/.cargo/bin/tool",
            Err(&["installation ~/.cargo would expose ~/.cargo (a home dot-directory)"]),
        );
        // A program in ~/.pyenv/bin (pyenv itself) would need all of ~/.pyenv.
        check(
            &[
                "home/.pyenv/bin/pyenv",
                "home/.pyenv/versions/3.12/bin/python3",
            ],
            &DEFAULT_LAB,
            "home/.pyenv/bin/pyenv",
            Err(&["~/.pyenv (a home dot-directory)"]),
        );
        // A prefix outside home holding the key file or the config.
        check(
            &["opt/tool/bin/tool", "opt/tool/etc/key"],
            &Lab {
                key: "opt/tool/etc/key",
                ..elsewhere
            },
            "opt/tool/bin/tool",
            Err(&["(the Lab's key file)"]),
        );
        check(
            &["opt/tool/bin/tool", "opt/tool/etc/lab.toml"],
            &Lab {
                config: "opt/tool/etc/lab.toml",
                ..elsewhere
            },
            "opt/tool/bin/tool",
            Err(&["(the Lab's config file)"]),
        );
        // A key file not written yet counts by its path.
        check(
            &["opt/tool/bin/tool", "opt/tool/run/"],
            &Lab {
                key: "opt/tool/run/lab.key",
                ..elsewhere
            },
            "opt/tool/bin/tool",
            Err(&["(the Lab's key file)"]),
        );
        // A venv holding the data dir, and a program inside the data dir.
        check(
            &["venv/pyvenv.cfg", "venv/bin/python3", "venv/state/"],
            &Lab {
                data: "venv/state",
                ..elsewhere
            },
            "venv/bin/python3",
            Err(&["(the Lab's data dir)"]),
        );
        check(
            &[
                "data/runs/r/job/.venv/pyvenv.cfg",
                "data/runs/r/job/.venv/bin/python3",
            ],
            &elsewhere,
            "data/runs/r/job/.venv/bin/python3",
            Err(&["(the Lab's data dir)"]),
        );
        // A home dot-directory that is a link elsewhere is still one.
        check(
            &["store/cargo/bin/tool", "home/.cargo -> store/cargo"],
            &elsewhere,
            "home/.cargo/bin/tool",
            Err(&["(a home dot-directory)"]),
        );
        check(
            &[
                "store/bin/tool",
                "store/secrets/",
                "home/.aws -> store/secrets",
            ],
            &elsewhere,
            "store/bin/tool",
            Err(&["store/secrets (a home dot-directory)"]),
        );
    }

    #[test]
    fn a_programs_own_installation_is_granted_whole_and_nothing_more() {
        let lab = DEFAULT_LAB;
        // A venv in a home dot-directory of its own.
        check(
            &["home/.venv/pyvenv.cfg", "home/.venv/bin/python3"],
            &lab,
            "home/.venv/bin/python3",
            Ok(&["home/.venv"]),
        );
        // A conda prefix in a home dot-directory, and an env inside it.
        check(
            &[
                "home/.miniconda3/conda-meta/",
                "home/.miniconda3/bin/python",
            ],
            &lab,
            "home/.miniconda3/bin/python",
            Ok(&["home/.miniconda3"]),
        );
        check(
            &[
                "home/miniconda3/conda-meta/",
                "home/miniconda3/envs/x/conda-meta/",
                "home/miniconda3/envs/x/bin/python",
            ],
            &lab,
            "home/miniconda3/envs/x/bin/python",
            Ok(&["home/miniconda3/envs/x"]),
        );
        // Toolchains inside dot-directories: only the toolchain.
        check(
            &["home/.pyenv/versions/3.12/bin/python3.12"],
            &lab,
            "home/.pyenv/versions/3.12/bin/python3.12",
            Ok(&["home/.pyenv/versions/3.12"]),
        );
        check(
            &["home/.rustup/toolchains/stable/bin/cargo"],
            &lab,
            "home/.rustup/toolchains/stable/bin/cargo",
            Ok(&["home/.rustup/toolchains/stable"]),
        );
        // A project's venv whose python links to another interpreter: the
        // venv and the interpreter's own installation.
        check(
            &[
                "home/proj/.venv/pyvenv.cfg",
                "home/.pyenv/versions/3.12/bin/python3.12",
                "home/proj/.venv/bin/python3 -> home/.pyenv/versions/3.12/bin/python3.12",
            ],
            &lab,
            "home/proj/.venv/bin/python3",
            Ok(&["home/.pyenv/versions/3.12", "home/proj/.venv"]),
        );
        // pipx: ~/.local/bin/tool links into its venv; the venv only, never
        // ~/.local.
        check(
            &[
                "home/.local/share/pipx/venvs/tool/pyvenv.cfg",
                "home/.local/share/pipx/venvs/tool/bin/tool",
                "home/.local/bin/tool -> home/.local/share/pipx/venvs/tool/bin/tool",
                "home/.local/share/lab/registry.json",
            ],
            &lab,
            "home/.local/bin/tool",
            Ok(&["home/.local/share/pipx/venvs/tool"]),
        );
        // A prefix outside home; a bin/ in home itself: the file alone.
        check(
            &["opt/tool/bin/tool"],
            &lab,
            "opt/tool/bin/tool",
            Ok(&["opt/tool"]),
        );
        check(
            &["home/bin/tool"],
            &lab,
            "home/bin/tool",
            Ok(&["home/bin/tool"]),
        );
        // Not in a bin/ (a pyenv shim): the file alone, never its directory.
        check(
            &["home/.pyenv/shims/python"],
            &lab,
            "home/.pyenv/shims/python",
            Ok(&["home/.pyenv/shims/python"]),
        );
        check(&["home/tool"], &lab, "home/tool", Ok(&["home/tool"]));
    }

    /// `check` for cwd and `read_paths` grants: what `Protected::exposure`
    /// says of `dir` (relative to T), as (exposed, what).
    fn exposure(dir: &str, grant: Grant) -> Option<(String, &'static str)> {
        let m = Machine::new(&[
            "home/project/",
            "home/.ssh/",
            "data/runs/r/",
            "etc/lab.toml",
        ]);
        let protected = Protected::new(
            Some(&m.path("home")),
            Some(&m.path("data")),
            Some(&m.path("etc/lab.toml")),
            Some(&m.path("keys/key")),
        );
        protected.exposure(&m.path(dir), grant).map(|e| {
            let shown = protected.shown(&e.exposed);
            let shown = match e.exposed.strip_prefix(&m.root) {
                Ok(rel) if !shown.starts_with('~') => rel.display().to_string(),
                _ => shown,
            };
            (shown, e.what)
        })
    }

    #[test]
    fn cwds_and_read_paths_go_through_the_same_check() {
        for grant in [Grant::Cwd, Grant::ReadPath, Grant::Installation] {
            for (dir, expected) in [
                ("home/project", None),
                ("home", Some(("~", Protected::HOME))),
                ("", Some(("~", Protected::HOME))),
                ("data", Some(("data", Protected::DATA_DIR))),
                ("data/runs/r", Some(("data", Protected::DATA_DIR))),
                ("etc", Some(("etc/lab.toml", Protected::CONFIG_FILE))),
            ] {
                let got = exposure(dir, grant);
                let got = got.as_ref().map(|(s, w)| (s.as_str(), *w));
                assert_eq!(got, expected, "{dir} for {grant:?}");
            }
        }
        assert_eq!(
            exposure("/", Grant::Cwd).map(|e| e.1),
            Some(Protected::HOME)
        );
        // Dot-directories bind installations only: a user-chosen cwd or
        // read_paths entry inside one is the user's choice.
        assert_eq!(exposure("home/.ssh", Grant::Cwd), None);
        assert_eq!(
            exposure("home/.ssh", Grant::Installation),
            Some(("~/.ssh".to_owned(), Protected::DOT_DIR))
        );
    }
}

/// The home directory of the account `uid` in `/etc/passwd` (a system
/// file, read whole up to 4 MiB), when it has one that is absolute.
fn account_home(uid: u32) -> Option<PathBuf> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/etc/passwd")
        .ok()?
        .take(4 << 20)
        .read_to_string(&mut text)
        .ok()?;
    home_in_passwd(&text, uid)
}

/// `uid`'s home directory in the text of a password file.
fn home_in_passwd(text: &str, uid: u32) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2].parse() == Ok(uid) && fields[5].starts_with('/'))
            .then(|| PathBuf::from(fields[5]))
    })
}

#[cfg(test)]
mod account_tests {
    #[test]
    fn the_accounts_home_is_read_from_the_password_file() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
                      me:x:1000:1000:Me,,,:/home/me:/bin/sh\n\
                      odd:x:1001:1001::relative:/bin/sh\n\
                      short:x:1002\n";
        for (uid, home) in [
            (0, Some("/root")),
            (1000, Some("/home/me")),
            (1001, None),
            (1002, None),
            (4242, None),
        ] {
            assert_eq!(
                super::home_in_passwd(passwd, uid),
                home.map(std::path::PathBuf::from),
                "{uid}"
            );
        }
    }
}

#[cfg(test)]
mod caller_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A scratch tree of directories and files (`name` executable, `name!`
    /// not) under T.
    fn tree(files: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        for file in files {
            let (name, mode) = match file.strip_suffix('!') {
                Some(name) => (name, 0o644),
                None => (*file, 0o755),
            };
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (tmp, root)
    }

    /// The one caller of `find_in_caller_path` here: `requested` looked up
    /// in `path` (directories relative to T joined by `:`, `/…` as is),
    /// with `allowed` (relative to T) allowlisted, finds `found` and passes
    /// over `shims`.
    fn check(
        files: &[&str],
        requested: &str,
        path: &str,
        allowed: &[&str],
        found: Option<&str>,
        shims: &[&str],
    ) {
        let (_tmp, root) = tree(files);
        let at = |rel: &str| {
            if rel.starts_with('/') {
                PathBuf::from(rel)
            } else {
                root.join(rel)
            }
        };
        let search: Vec<String> = path
            .split(':')
            .map(|d| {
                if d.is_empty() || d.starts_with('/') || d.starts_with('.') {
                    d.to_owned()
                } else {
                    at(d).display().to_string()
                }
            })
            .collect();
        let allowed: Vec<PathBuf> = allowed.iter().map(|a| at(a)).collect();
        let requested = match requested.strip_prefix("T/") {
            Some(rel) => at(rel).display().to_string(),
            None => requested.to_owned(),
        };
        let find = find_in_caller_path(&requested, &search.join(":"), |c| {
            allowed.iter().any(|a| a == c)
        });
        assert_eq!(
            find.found.as_ref().map(|(f, _)| f.clone()),
            found.map(at),
            "{requested} in {path}"
        );
        if let Some((found, canonical)) = &find.found {
            assert_eq!(*canonical, found.canonicalize().unwrap());
        }
        let want: Vec<PathBuf> = shims.iter().map(|s| at(s)).collect();
        assert_eq!(find.shims, want, "{requested} in {path}");
    }

    #[test]
    fn the_callers_path_is_searched_as_a_shell_would() {
        let files = [
            "venv/bin/python3",
            "other/bin/python3",
            "noexec/python3!",
            "pyenv/shims/python3",
            "asdf/shims/python3",
        ];
        // The first directory holding it wins: an activated venv first.
        check(
            &files,
            "python3",
            "venv/bin:other/bin",
            &[],
            Some("venv/bin/python3"),
            &[],
        );
        // A file without an execute bit is not a program to a shell.
        check(
            &files,
            "python3",
            "noexec:other/bin",
            &[],
            Some("other/bin/python3"),
            &[],
        );
        // Relative and empty entries (the current directory) are never
        // searched.
        check(
            &files,
            "python3",
            ".::venv/bin",
            &[],
            Some("venv/bin/python3"),
            &[],
        );
        // Shims are passed over, every one, unless allowlisted themselves.
        check(
            &files,
            "python3",
            "pyenv/shims:asdf/shims:other/bin",
            &[],
            Some("other/bin/python3"),
            &["pyenv/shims/python3", "asdf/shims/python3"],
        );
        check(
            &files,
            "python3",
            "pyenv/shims:other/bin",
            &["pyenv/shims/python3"],
            Some("pyenv/shims/python3"),
            &[],
        );
        // Nowhere: nothing found (the caller falls back to [runner] path).
        check(
            &files,
            "python3",
            "pyenv/shims",
            &[],
            None,
            &["pyenv/shims/python3"],
        );
        check(&files, "python4", "venv/bin:other/bin", &[], None, &[]);
        check(&files, "", "venv/bin", &[], None, &[]);
        check(&files, "python3\0", "venv/bin", &[], None, &[]);
        // An absolute path is taken as it is, whatever the PATH; a
        // relative one with a slash is the caller's to make absolute.
        check(
            &files,
            "T/other/bin/python3",
            "venv/bin",
            &[],
            Some("other/bin/python3"),
            &[],
        );
        check(&files, "bin/python3", "venv", &[], None, &[]);
        check(&files, "T/missing/python3", "venv/bin", &[], None, &[]);
    }

    #[test]
    fn the_jobs_path_starts_with_its_programs_own_directory_inside_its_installation() {
        let runner = "/usr/bin:/bin";
        for (exec, installs, expected) in [
            // A venv's python: its bin/ first.
            (
                "/p/.venv/bin/python3",
                &["/p/.venv"][..],
                "/p/.venv/bin:/usr/bin:/bin",
            ),
            // A toolchain's.
            (
                "/opt/tool/bin/tool",
                &["/opt/tool"][..],
                "/opt/tool/bin:/usr/bin:/bin",
            ),
            // A system program has no installation of its own.
            ("/usr/bin/python3", &[][..], runner),
            // A file granted alone: its directory is not granted.
            ("/home/me/bin/tool", &["/home/me/bin/tool"][..], runner),
            // A link into an installation elsewhere: the directory found
            // is not inside it.
            (
                "/home/me/.local/bin/tool",
                &["/home/me/pipx/venvs/tool"][..],
                runner,
            ),
            // A directory a PATH cannot carry.
            ("/p:q/.venv/bin/python3", &["/p:q/.venv"][..], runner),
        ] {
            let installs: Vec<PathBuf> = installs.iter().map(PathBuf::from).collect();
            assert_eq!(
                job_path(Path::new(exec), &installs, runner),
                expected,
                "{exec}"
            );
        }
    }

    /// For every string, the quoted form parses back (as TOML) to the same
    /// string.
    #[test]
    fn a_toml_string_reads_back_as_itself() {
        for text in [
            "python3",
            "/home/me/proj/.venv/bin/python3",
            "with \"quotes\" and \\backslashes\\",
            "tab\tnewline\ncr\rnul\0esc\x1bdel\x7fc1\u{9b}",
            "ünïcödé ✓",
            "",
        ] {
            let line = format!("programs = [{}]\n", toml_string(text));
            #[derive(serde::Deserialize)]
            struct Line {
                programs: Vec<String>,
            }
            let parsed: Line = toml::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(parsed.programs, [text], "{line:?}");
        }
    }
}
