//! The sandbox helper: `lab __sandbox`, a fresh single-threaded process that
//! reads a [`SandboxSpec`] on stdin and runs the job inside it.
//!
//! ```text
//! helper (host namespaces)      unshare(user [+ net] + pid), identity uid/gid map
//!  └─ init (pid 1 of a new pid namespace)   dies with the helper (PDEATHSIG)
//!      └─ job (pid 2)   setsid, rlimits, Landlock, no_new_privs, seccomp, close fds, exec
//! ```
//!
//! When the job exits, init exits and the kernel kills every process left in
//! the namespace — setsid'd grandchildren included. When the runner kills the
//! helper (timeout, cancel), init receives SIGKILL and the same happens.
//! Every layer reports to a JSON-lines file outside the run directory; a
//! required layer that fails stops the job before `exec` (fail closed).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
};
use serde_json::json;

use crate::sys;

/// Resource limits for a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Largest file the job may write, bytes (RLIMIT_FSIZE).
    pub file_size: u64,
    /// Open descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes of the job's user inside its namespace (RLIMIT_NPROC).
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 3600,
            file_size: 16 << 30,
            open_files: 1024,
            processes: 512,
        }
    }
}

/// What the helper needs to run one job.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SandboxSpec {
    /// Canonical absolute path of the program.
    pub program: PathBuf,
    /// argv, `argv[0]` included.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// The run directory: the working directory and the only writable place.
    pub dir: PathBuf,
    /// Where the layers report (JSON lines), outside `dir`.
    pub report: PathBuf,
    /// Whether the job may use the network.
    pub network: bool,
    /// Resource limits.
    pub limits: Limits,
}

/// Exit code when the sandbox could not be set up (nothing ran).
pub const REFUSED: i32 = 125;

struct Report(std::fs::File);

impl Report {
    fn line(&mut self, value: serde_json::Value) {
        let _ = writeln!(self.0, "{value}");
        let _ = self.0.flush();
    }

    fn refuse(&mut self, layer: &str, error: impl std::fmt::Display) -> ! {
        self.line(json!({"stage": "refused", "layer": layer, "error": error.to_string()}));
        sys::exit_now(REFUSED)
    }
}

/// Entry point of `lab __sandbox`. Never returns.
pub fn helper_main() -> ! {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        sys::exit_now(REFUSED);
    }
    let Ok(spec) = serde_json::from_str::<SandboxSpec>(&input) else {
        eprintln!("lab __sandbox: invalid spec");
        sys::exit_now(REFUSED)
    };
    let Ok(file) = std::fs::OpenOptions::new().append(true).open(&spec.report) else {
        eprintln!("lab __sandbox: cannot open the report file");
        sys::exit_now(REFUSED)
    };
    let mut report = Report(file);
    // If the Lab dies, so does the helper, then init, then the whole job.
    if let Err(e) = sys::die_with_parent(libc::SIGKILL) {
        report.refuse("parent-death signal", e);
    }
    let (uid, gid) = sys::ids();
    let mut flags = libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if !spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    if let Err(e) = sys::unshare(flags) {
        report.refuse("user, pid and network namespaces", e);
    }
    let maps = [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("{uid} {uid} 1")),
        ("/proc/self/gid_map", format!("{gid} {gid} 1")),
    ];
    for (file, content) in maps {
        if let Err(e) = std::fs::write(file, content) {
            report.refuse("user namespace id maps", e);
        }
    }
    report.line(json!({
        "stage": "namespaces",
        "user_namespace": true,
        "pid_namespace": true,
        "network_namespace": !spec.network,
        "uid_inside": uid,
    }));
    match sys::fork() {
        Err(e) => report.refuse("fork of the namespace init", e),
        Ok(sys::Forked::Child) => init(&spec, report),
        Ok(sys::Forked::Parent(init_pid)) => {
            report.line(json!({"stage": "started", "init_pid": init_pid}));
            match sys::wait(init_pid) {
                Ok((_, sys::Ended::Signal(sig))) => {
                    report.line(json!({"stage": "killed", "signal": sig}));
                }
                Ok(_) => {}
                Err(e) => report.line(json!({"stage": "helper", "error": e.to_string()})),
            }
            sys::exit_now(0)
        }
    }
}

/// PID 1 of the job's namespace: start the job, reap, report, exit.
fn init(spec: &SandboxSpec, mut report: Report) -> ! {
    if let Err(e) = sys::die_with_parent(libc::SIGKILL) {
        report.refuse("parent-death signal", e);
    }
    let job = match sys::fork() {
        Err(e) => report.refuse("fork of the job", e),
        Ok(sys::Forked::Child) => job(spec, report),
        Ok(sys::Forked::Parent(pid)) => pid,
    };
    loop {
        match sys::wait(-1) {
            Ok((pid, ended)) if pid == job => {
                let (value, code) = match ended {
                    sys::Ended::Code(code) => (json!({"stage": "exit", "code": code}), code),
                    sys::Ended::Signal(sig) => (json!({"stage": "exit", "signal": sig}), 128 + sig),
                };
                report.line(value);
                // Leaving takes every other process in the namespace down.
                sys::exit_now(code)
            }
            Ok(_) => continue,
            Err(e) => {
                report.line(json!({"stage": "init", "error": e.to_string()}));
                sys::exit_now(REFUSED)
            }
        }
    }
}

fn seccomp_filter() -> Result<seccompiler::BpfProgram, String> {
    use std::collections::BTreeMap;
    let arch = if cfg!(target_arch = "x86_64") {
        seccompiler::TargetArch::x86_64
    } else if cfg!(target_arch = "aarch64") {
        seccompiler::TargetArch::aarch64
    } else {
        return Err("unsupported architecture".into());
    };
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = BTreeMap::new();
    // socket(2) for any family fails; socketpair(2) stays available.
    for syscall in [
        libc::SYS_socket,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        rules.insert(syscall, Vec::new());
    }
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// The job process: apply every layer, then exec.
fn job(spec: &SandboxSpec, mut report: Report) -> ! {
    if let Err(e) = sys::new_session() {
        report.refuse("new session", e);
    }
    let limits = [
        (libc::RLIMIT_CPU, spec.limits.cpu_secs),
        (libc::RLIMIT_FSIZE, spec.limits.file_size),
        (libc::RLIMIT_NOFILE, spec.limits.open_files),
        (libc::RLIMIT_CORE, 0),
        (libc::RLIMIT_NPROC, spec.limits.processes),
    ];
    for (resource, value) in limits {
        if let Err(e) = sys::set_limit(resource, value) {
            report.refuse("resource limits", e);
        }
    }
    if let Err(e) = sys::no_new_privs() {
        report.refuse("no_new_privs", e);
    }
    // Landlock: read and execute everything, write only the run directory.
    let abi = ABI::V5;
    let mut writable = vec![spec.dir.clone(), PathBuf::from("/dev/null")];
    if std::path::Path::new("/dev/shm").is_dir() {
        writable.push(PathBuf::from("/dev/shm"));
    }
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| {
            if spec.network {
                Ok(r)
            } else {
                r.handle_access(AccessNet::from_all(abi))
            }
        })
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi))))
        .and_then(|r| r.add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi))))
        .and_then(|r| r.restrict_self());
    let landlock = match ruleset {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => "fully enforced",
            RulesetStatus::PartiallyEnforced => "partially enforced (older kernel ABI)",
            RulesetStatus::NotEnforced => "not available on this kernel",
        },
        Err(e) => report.refuse("Landlock", e),
    };
    let seccomp = if spec.network {
        "not applied (network allowed)".to_owned()
    } else {
        match seccomp_filter()
            .and_then(|p| seccompiler::apply_filter(&p).map_err(|e| e.to_string()))
        {
            Ok(()) => "socket() and io_uring refused".to_owned(),
            Err(e) => report.refuse("seccomp socket filter", e),
        }
    };
    report.line(json!({
        "stage": "job",
        "landlock_filesystem": landlock,
        "landlock_network": if spec.network { "not applied" } else { "TCP bind/connect refused where the kernel supports it (best effort)" },
        "seccomp": seccomp,
        "no_new_privs": true,
        "rlimits": {
            "cpu_secs": spec.limits.cpu_secs,
            "file_size": spec.limits.file_size,
            "open_files": spec.limits.open_files,
            "processes": spec.limits.processes,
            "core": 0,
        },
    }));
    drop(report);
    if let Err(e) = sys::close_from(3) {
        eprintln!("lab sandbox: closing descriptors failed: {e}");
        sys::exit_now(REFUSED);
    }
    // The job itself: argv only, never a shell; this process is replaced.
    #[allow(clippy::disallowed_methods)]
    let mut command = std::process::Command::new(&spec.program);
    command
        .arg0(spec.argv.first().map(String::as_str).unwrap_or(""))
        .args(spec.argv.iter().skip(1))
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.dir)
        .stdin(std::process::Stdio::null());
    let error = command.exec();
    eprintln!(
        "lab sandbox: cannot execute {}: {error}",
        spec.program.display()
    );
    sys::exit_now(127)
}
