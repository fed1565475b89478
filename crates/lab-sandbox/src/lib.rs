//! lab-sandbox is the sandbox helper, `lab __sandbox`: a fresh process that
//! reads a [`SandboxSpec`] on stdin (the typed, versioned protocol of
//! crate lab-protocol) and runs the job inside it. It is the only crate
//! with `unsafe` (its `sys` module), and the only one that links Landlock and
//! seccomp; the job supervisor (lab-runner) never links it, it starts it as a
//! process, and it never links the supervisor: of our crates it depends on
//! lab-protocol alone (serde types, no I/O). `lab __sandbox kernel` reports what the kernel provides;
//! `lab __sandbox pasta PASTA PID` connects a job's network namespace.
//!
//! ```text
//! helper (host namespaces)      unshare(user, mount, pid, ipc [+ net]), identity uid/gid map
//!  └─ init (pid 1 of a new pid namespace)   dies with the helper (PDEATHSIG);
//!      │     mounts private /tmp, /dev/shm, /proc and the cwd overlay
//!      └─ job (pid 2)   setsid, rlimits, no_new_privs, no capabilities, Landlock, seccomp, close fds, exec
//! ```
//!
//! When the job exits, init exits and the kernel kills every process left in
//! the namespace — setsid'd grandchildren included. When the runner kills the
//! helper (timeout, cancel), init receives SIGKILL and the same happens; a
//! `t` byte on stdin makes the helper SIGTERM init, which passes it to every
//! process of the namespace first.
//! Every layer reports to a JSON-lines file outside the run directory; a
//! required layer that fails stops the job before `exec` (fail closed).

#![deny(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;

use serde_json::json;

use lab_protocol::{
    NETWORK_READY, PROTOCOL_VERSION, REFUSED, Report as Line, SandboxSpec, TERMINATE,
};

pub mod kernel;
mod mounts;
mod rules;
mod seccomp;
mod sys;

use crate::mounts::mounts;
use crate::rules::landlock;
pub use seccomp::seccomp_filter;
pub use sys::limit_malloc_arenas;

/// Writes the report, one typed [`Line`] per JSON line.
struct Report(std::fs::File);

impl Report {
    fn line(&mut self, line: Line) {
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(self.0, "{text}");
            let _ = self.0.flush();
        }
    }

    fn refuse(&mut self, layer: &str, error: impl std::fmt::Display) -> ! {
        self.line(Line::Refused {
            layer: layer.to_owned(),
            error: error.to_string(),
        });
        sys::exit_now(REFUSED)
    }
}

/// The helper's one way to say something: a line on its own stderr, written
/// directly, never through `tracing`. That stderr is the job's: the runner
/// reads the helper's stderr pipe as the job's stderr (redacted, into
/// `stderr.log` and the live log; for `kernel` and `pasta` it is
/// `/dev/null`), so what goes wrong before the job's `exec` is read where
/// the job's own errors are. The `lab` binary installs its subscriber only
/// after dispatching `__sandbox`, and none is installed here: the helper
/// keeps no global state and starts no thread (after it made a PID
/// namespace it may not), and links only small leaves.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Entry point of `lab __sandbox [kernel | pasta PASTA PID]`. Never returns.
pub fn helper_main() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("kernel") => {
            // What this kernel provides, for the supervisor's decision.
            let features = kernel::detect();
            match serde_json::to_string(&features) {
                Ok(text) => {
                    // The answer on stdout, which the runner reads; flushed
                    // before `exit_now`, which skips Rust's own exit.
                    let mut stdout = std::io::stdout().lock();
                    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
                    sys::exit_now(if written.is_ok() { 0 } else { 1 })
                }
                Err(_) => sys::exit_now(1),
            }
        }
        Some("pasta") => pasta(&args[1..]),
        None => run_job(),
        Some(_) => {
            say(format_args!("lab __sandbox: unknown request"));
            sys::exit_now(2)
        }
    }
}

/// `lab __sandbox pasta PASTA PID [CGROUP_PROCS…]`: pasta connecting the
/// helper `PID`'s network namespace, with a parent-death signal so it never
/// outlives the runner (SPEC: no port forwarding, the gateway not mapped to
/// the host, IPv4 only — IPv6 would reach the host through its link-local
/// address), in the job's cgroups (what it spends for the job counts
/// against the job's limits).
fn pasta(args: &[std::ffi::OsString]) -> ! {
    let [pasta, pid, cgroups @ ..] = args else {
        say(format_args!(
            "lab __sandbox pasta: expected PASTA PID [CGROUP_PROCS…]"
        ));
        sys::exit_now(2)
    };
    if sys::die_with_parent(libc::SIGKILL).is_err() {
        sys::exit_now(1);
    }
    for procs in cgroups {
        if let Err(e) = join_cgroup(std::path::Path::new(procs)) {
            say(format_args!(
                "lab __sandbox pasta: joining the job's cgroup: {e}"
            ));
            sys::exit_now(1);
        }
    }
    #[allow(clippy::disallowed_methods)] // the helper execs pasta, argv only
    let mut command = std::process::Command::new(pasta);
    command.args([
        "--config-net",
        "--no-map-gw",
        "-t",
        "none",
        "-u",
        "none",
        "-T",
        "none",
        "-U",
        "none",
        "--quiet",
        "--foreground",
        "--ipv4-only",
    ]);
    if sys::ids().0 == 0 {
        // As root pasta would drop to `nobody`, which may not enter the
        // helper's user namespace (owned by root).
        command.args(["--runas", "0:0"]);
    }
    let error = command.arg(pid).env_clear().current_dir("/").exec();
    say(format_args!("lab __sandbox pasta: {error}"));
    sys::exit_now(127)
}

/// Writes this process's pid to a cgroup's `cgroup.procs` (never through
/// a link), which moves it into that cgroup.
fn join_cgroup(procs: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(procs)?;
    file.write_all(std::process::id().to_string().as_bytes())
}

/// Runs one job: the spec on stdin.
fn run_job() -> ! {
    // The spec is one JSON line; with user-mode networking a go-ahead byte
    // follows once the runner has connected the namespace.
    let mut stdin = std::io::stdin().lock();
    let mut input = String::new();
    if std::io::BufRead::read_line(&mut stdin, &mut input).is_err() {
        sys::exit_now(REFUSED);
    }
    let Ok(spec) = serde_json::from_str::<SandboxSpec>(&input) else {
        say(format_args!("lab __sandbox: invalid spec"));
        sys::exit_now(REFUSED)
    };
    if spec.version != PROTOCOL_VERSION {
        say(format_args!(
            "lab __sandbox: protocol version {} (this helper speaks {PROTOCOL_VERSION})",
            spec.version
        ));
        sys::exit_now(REFUSED)
    }
    let Ok(file) = std::fs::OpenOptions::new().append(true).open(&spec.report) else {
        say(format_args!("lab __sandbox: cannot open the report file"));
        sys::exit_now(REFUSED)
    };
    let mut report = Report(file);
    // If the Lab dies, so does the helper, then init, then the whole job.
    if let Err(e) = sys::die_with_parent(libc::SIGKILL) {
        report.refuse("parent-death signal", e);
    }
    // The job's limits: this process joins the job's cgroup in each
    // hierarchy before anything else, so init and every process of the job
    // are bound (and before the user namespace, where the cgroup files
    // would no longer be ours to write).
    for procs in &spec.cgroup_procs {
        if let Err(e) = join_cgroup(procs) {
            report.refuse("cgroup limits", format!("joining {}: {e}", procs.display()));
        }
    }
    if !spec.cgroup_procs.is_empty() {
        report.line(Line::Cgroup {
            joined: spec.cgroup_procs.len(),
        });
    }
    // Never the host's network namespace: a job with the network has one
    // of its own, connected by user-mode networking, or does not run.
    if spec.network && !spec.user_mode_network {
        report.refuse(
            "user-mode networking (pasta)",
            "the network is allowed but no user-mode networking was set up; the job does not share the host's network namespace",
        );
    }
    let (uid, gid) = sys::ids();
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWNET;
    if let Err(e) = sys::unshare(flags) {
        report.refuse("user, mount, pid and network namespaces", e);
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
    if let Err(e) = sys::join_new_session_keyring() {
        report.refuse("a new session keyring", e);
    }
    report.line(Line::Namespaces {
        user_namespace: true,
        mount_namespace: true,
        pid_namespace: true,
        network_namespace: true,
        uid_inside: uid,
    });
    if spec.network && spec.user_mode_network {
        let mut go = [0u8; 1];
        match stdin.read(&mut go) {
            Ok(1) if go[0] == NETWORK_READY => report.line(Line::Network {
                network: "own network namespace, connected by user-mode networking (pasta): outbound IPv4 only; the host's loopback and its own addresses are out of reach".to_owned(),
            }),
            _ => report.refuse(
                "user-mode networking (pasta)",
                "the runner could not connect the job's network namespace",
            ),
        }
    }
    // The lock goes before the fork (init must not inherit it held); the
    // loop below reads stdin again, by descriptor.
    drop(stdin);
    // SAFETY: the helper process is single-threaded: `lab __sandbox` is
    // dispatched before any runtime starts, and the helper starts no thread
    // (pasta is a process; the loop below polls stdin itself).
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() };
    match forked {
        Err(e) => report.refuse("fork of the namespace init", e),
        Ok(sys::Forked::Child) => init(&spec, report),
        Ok(sys::Forked::Parent(init_pid)) => {
            // The runner stops a job by signalling this helper (its own
            // child, whose pid cannot be reused while it is unreaped): a
            // SIGTERM goes on to init, which passes it to every process of
            // the namespace; a SIGKILL kills the helper, and init with it.
            if let Err(e) = sys::forward_sigterm_to(init_pid) {
                report.line(Line::Helper {
                    error: e.to_string(),
                });
            }
            report.line(Line::Started);
            // Until init ends: wait for it, and read the supervisor's
            // requests (TERMINATE) from stdin (a process in a new PID
            // namespace's parent may not start threads: one loop does both).
            let mut listening = true;
            loop {
                match sys::try_wait(init_pid) {
                    Ok(Some(sys::Ended::Signal(sig))) => {
                        report.line(Line::Killed { signal: sig });
                        break;
                    }
                    Ok(Some(sys::Ended::Code(_))) => break,
                    Ok(None) => {}
                    Err(e) => {
                        report.line(Line::Helper {
                            error: e.to_string(),
                        });
                        break;
                    }
                }
                if listening {
                    match sys::read_byte_within(0, 100) {
                        Ok(Some(Some(TERMINATE))) => {
                            let _ = sys::signal(init_pid, libc::SIGTERM);
                        }
                        Ok(Some(None)) | Err(_) => listening = false,
                        Ok(_) => {}
                    }
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            sys::exit_now(0)
        }
    }
}

/// PID 1 of the job's namespace: mount, start the job, reap, report, exit.
fn init(spec: &SandboxSpec, mut report: Report) -> ! {
    if let Err(e) = sys::die_with_parent(libc::SIGKILL) {
        report.refuse("parent-death signal", e);
    }
    // The job's processes (init, and the job, which inherits it and may not
    // lower it) are the OOM killer's first choice, before the helper that
    // reports how the job ended and anything of the host.
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "1000") {
        report.refuse("the job's OOM score", e);
    }
    // A SIGTERM from the helper reaches every other process of the namespace.
    if let Err(e) = sys::forward_sigterm_to(-1) {
        report.refuse("init's SIGTERM handler", e);
    }
    match mounts(spec) {
        Ok(value) => report.line(Line::Mounts { mounts: value }),
        Err((what, e)) => report.refuse(&what, e),
    }
    // SAFETY: init (pid 1) is single-threaded: it was forked from the
    // single-threaded helper and starts no thread.
    #[allow(unsafe_code)]
    let forked = unsafe { sys::fork() };
    let job = match forked {
        Err(e) => report.refuse("fork of the job", e),
        Ok(sys::Forked::Child) => job(spec, report),
        Ok(sys::Forked::Parent(pid)) => pid,
    };
    loop {
        match sys::wait(-1) {
            Ok((pid, ended)) if pid == job => {
                let (value, code) = match ended {
                    sys::Ended::Code(code) => (
                        Line::Exit {
                            code: Some(code),
                            signal: None,
                        },
                        code,
                    ),
                    sys::Ended::Signal(sig) => (
                        Line::Exit {
                            code: None,
                            signal: Some(sig),
                        },
                        128 + sig,
                    ),
                };
                report.line(value);
                // Leaving takes every other process in the namespace down.
                sys::exit_now(code)
            }
            Ok(_) => continue,
            Err(e) => {
                report.line(Line::Init {
                    error: e.to_string(),
                });
                sys::exit_now(REFUSED)
            }
        }
    }
}

/// The job process: apply every layer, then exec.
fn job(spec: &SandboxSpec, mut report: Report) -> ! {
    if let Err(e) = sys::default_sigterm() {
        report.refuse("SIGTERM disposition", e);
    }
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
    if let Err(e) = sys::drop_capabilities() {
        report.refuse("dropping every capability", e);
    }
    let landlock = match landlock(spec) {
        Ok(value) => value,
        Err(e) => report.refuse("Landlock filesystem rules", e),
    };
    let seccomp = match seccomp_filter(spec.network).and_then(|programs| {
        programs
            .iter()
            .try_for_each(|p| seccompiler::apply_filter(p).map_err(|e| e.to_string()))
    }) {
        Ok(()) if spec.network => {
            "socket() refused for every family but AF_INET/AF_INET6 and for raw sockets; io_uring, mounts, namespaces, keyrings and x32 syscalls refused"
        }
        Ok(()) => {
            "socket() refused for every family; io_uring, mounts, namespaces, keyrings and x32 syscalls refused"
        }
        Err(e) => report.refuse("seccomp filter", e),
    };
    report.line(Line::Job {
        landlock_filesystem: landlock,
        seccomp: seccomp.to_owned(),
        no_new_privs: true,
        capabilities: "none (bounding set emptied, securebits locked)".to_owned(),
        rlimits: json!({
            "cpu_secs": spec.limits.cpu_secs,
            "file_size": spec.limits.file_size,
            "open_files": spec.limits.open_files,
            "processes": spec.limits.processes,
            "core": 0,
        }),
    });
    drop(report);
    // SAFETY: the job process holds no descriptor above stderr that is used
    // after this point: the report file was dropped just above, and what
    // follows is exec.
    #[allow(unsafe_code)]
    let closed = unsafe { sys::close_from(3) };
    if let Err(e) = closed {
        say(format_args!("lab sandbox: closing descriptors failed: {e}"));
        sys::exit_now(REFUSED);
    }
    let cwd = spec.cwd.as_ref().map_or(&spec.job_dir, |o| &o.lower);
    // The job itself: argv only, never a shell; this process is replaced.
    #[allow(clippy::disallowed_methods)]
    let mut command = std::process::Command::new(&spec.program);
    command
        .arg0(spec.argv.first().map(String::as_str).unwrap_or(""))
        .args(spec.argv.iter().skip(1))
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    let error = command.exec();
    say(format_args!(
        "lab sandbox: cannot execute {}: {error}",
        spec.program.display()
    ));
    sys::exit_now(127)
}
