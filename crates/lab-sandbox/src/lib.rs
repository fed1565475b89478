//! lab-sandbox is the sandbox helper, `lab __sandbox`: a fresh process that
//! reads a [`SandboxSpec`] on stdin (the typed, versioned protocol of
//! `lab_runner::protocol`) and runs the job inside it. It is the only crate
//! with `unsafe` (its `sys` module), and the only one that links Landlock and
//! seccomp; the job supervisor (lab-runner) never links it, it starts it as a
//! process. `lab __sandbox kernel` reports what the kernel provides;
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
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde_json::{Value, json};

use lab_runner::kernel::{LANDLOCK_MAX_ABI, LANDLOCK_MIN_ABI};
use lab_runner::protocol::{
    DEFAULT_DEVICES, JOB_HOME, NETWORK_READY, PROTOCOL_VERSION, REFUSED, Report as Line,
    SYSTEM_DIRS, SandboxSpec, TERMINATE,
};

pub mod kernel;
mod sys;

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

/// Entry point of `lab __sandbox [kernel | pasta PASTA PID]`. Never returns.
pub fn helper_main() -> ! {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(2).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("kernel") => {
            // What this kernel provides, for the supervisor's decision.
            let features = kernel::detect();
            match serde_json::to_string(&features) {
                Ok(text) => {
                    println!("{text}");
                    sys::exit_now(0)
                }
                Err(_) => sys::exit_now(1),
            }
        }
        Some("pasta") => pasta(&args[1..]),
        None => run_job(),
        Some(_) => {
            eprintln!("lab __sandbox: unknown request");
            sys::exit_now(2)
        }
    }
}

/// `lab __sandbox pasta PASTA PID`: pasta connecting the helper `PID`'s
/// network namespace, with a parent-death signal so it never outlives the
/// runner (SPEC: no port forwarding, the gateway not mapped to the host,
/// IPv4 only — IPv6 would reach the host through its link-local address).
fn pasta(args: &[std::ffi::OsString]) -> ! {
    let [pasta, pid] = args else {
        eprintln!("lab __sandbox pasta: expected PASTA PID");
        sys::exit_now(2)
    };
    if sys::die_with_parent(libc::SIGKILL).is_err() {
        sys::exit_now(1);
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
    eprintln!("lab __sandbox pasta: {error}");
    sys::exit_now(127)
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
        eprintln!("lab __sandbox: invalid spec");
        sys::exit_now(REFUSED)
    };
    if spec.version != PROTOCOL_VERSION {
        eprintln!(
            "lab __sandbox: protocol version {} (this helper speaks {PROTOCOL_VERSION})",
            spec.version
        );
        sys::exit_now(REFUSED)
    }
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
    let mut flags =
        libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWNS;
    if !spec.network || spec.user_mode_network {
        flags |= libc::CLONE_NEWNET;
    }
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
        network_namespace: !spec.network || spec.user_mode_network,
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
    } else if spec.network {
        report.line(Line::Network {
            network: "the host's network namespace (pasta not found): IP sockets only, but services on the host's loopback are reachable".to_owned(),
        });
    }
    // The lock goes before the fork (init must not inherit it held); the
    // thread below takes stdin up again.
    drop(stdin);
    match sys::fork() {
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

fn cstring(text: &str) -> std::ffi::CString {
    // Paths come from canonicalised, validated config and NUL-free JSON;
    // an interior NUL becomes an empty string, which every mount refuses.
    std::ffi::CString::new(text).unwrap_or_default()
}

fn cpath(path: &Path) -> std::ffi::CString {
    cstring(&path.to_string_lossy())
}

/// Paths the job needs that lie under `/tmp` or `/dev/shm` (a project or
/// data dir kept in /tmp) would vanish under the private tmpfs: each is
/// opened first and bind-mounted back at the same path afterwards.
struct Kept {
    path: PathBuf,
    handle: std::fs::File,
    is_dir: bool,
    /// Read-only paths are bound back read-only: under the private tmpfs
    /// they would otherwise inherit its Landlock write rule.
    writable: bool,
}

fn keep(paths: &[(&Path, bool)], under: &str) -> Result<Vec<Kept>, std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut kept = Vec::new();
    for &(path, writable) in paths {
        if !path.starts_with(under) {
            continue;
        }
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)?;
        let is_dir = handle.metadata()?.is_dir();
        kept.push(Kept {
            path: path.to_path_buf(),
            handle,
            is_dir,
            writable,
        });
    }
    // Parents before children, so a child's mount lands on top.
    kept.sort_by_key(|k| k.path.components().count());
    Ok(kept)
}

fn restore(kept: &[Kept]) -> Result<(), std::io::Error> {
    use std::os::fd::AsRawFd;
    for k in kept {
        if k.is_dir {
            std::fs::create_dir_all(&k.path)?;
        } else {
            if let Some(parent) = k.path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(&k.path)?;
        }
        let source = format!("/proc/self/fd/{}", k.handle.as_raw_fd());
        sys::mount(
            Some(&cstring(&source)),
            &cpath(&k.path),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
        if !k.writable {
            let target = cpath(&k.path);
            let locked = sys::locked_mount_flags(&target)?;
            sys::mount(
                None,
                &target,
                None,
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | locked,
                None,
            )?;
        }
    }
    Ok(())
}

/// A private tmpfs of `size` bytes on `dir`, with the `needed` paths that
/// lay under it bound back.
fn private_tmpfs(
    needed: &[(&Path, bool)],
    dir: &str,
    size: u64,
) -> Result<(), (String, std::io::Error)> {
    let fail = |e| (format!("mounts: private {dir}"), e);
    let kept = keep(needed, dir).map_err(fail)?;
    sys::mount(
        Some(&cstring("tmpfs")),
        &cstring(dir),
        Some(&cstring("tmpfs")),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&cstring(&format!("size={size},mode=1777"))),
    )
    .map_err(fail)?;
    restore(&kept).map_err(fail)
}

/// The job's mounts, in its own mount namespace (private propagation, so
/// nothing reaches the host): the overlay on its cwd, private size-capped
/// `/tmp` and `/dev/shm`, and a `/proc` of its PID namespace only.
fn mounts(spec: &SandboxSpec) -> Result<Value, (String, std::io::Error)> {
    let fail = |what: &str| {
        let what = what.to_owned();
        move |e| (what, e)
    };
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    sys::mount(
        None,
        &cstring("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .map_err(fail("mounts: private propagation"))?;
    if let Some(overlay) = &spec.cwd {
        let options = format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            overlay.lower.display(),
            spec.job_dir.display(),
            overlay.work.display()
        );
        sys::mount(
            Some(&cstring("overlay")),
            &cpath(&overlay.lower),
            Some(&cstring("overlay")),
            nosuid_nodev,
            Some(&cstring(&options)),
        )
        .map_err(fail("mounts: overlay on the working directory"))?;
    }
    // The job directory as a mount of its own (when it is not the overlay),
    // so it can stay writable when everything else turns read-only.
    if spec.cwd.is_none() {
        let dir = cpath(&spec.job_dir);
        sys::mount(Some(&dir), &dir, None, libc::MS_BIND, None)
            .map_err(fail("mounts: the job directory"))?;
    }
    let mut needed: Vec<(&Path, bool)> = spec
        .read_only
        .iter()
        .map(|p| (p.as_path(), false))
        .collect();
    needed.extend(spec.devices.iter().map(|p| (p.as_path(), true)));
    needed.push((
        spec.cwd
            .as_ref()
            .map_or(spec.job_dir.as_path(), |o| o.lower.as_path()),
        true,
    ));
    private_tmpfs(&needed, "/tmp", spec.limits.tmp_size)?;
    std::fs::create_dir_all(JOB_HOME).map_err(fail("mounts: the job's HOME"))?;
    let shm = Path::new("/dev/shm").is_dir();
    if shm {
        private_tmpfs(&needed, "/dev/shm", spec.limits.shm_size)?;
    }
    sys::mount(
        Some(&cstring("proc")),
        &cstring("/proc"),
        Some(&cstring("proc")),
        nosuid_nodev | libc::MS_NOEXEC,
        None,
    )
    .map_err(fail("mounts: /proc of the job's PID namespace"))?;
    // Everything read-only, then writable again only where the job writes:
    // metadata (chmod, chown, utimes, xattrs) is not a Landlock right, and a
    // read-only mount refuses it (EROFS) on every file outside.
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    sys::mount_setattr(&cstring("/"), true, MOUNT_ATTR_RDONLY, 0)
        .map_err(fail("mounts: everything read-only"))?;
    let writable = spec
        .cwd
        .as_ref()
        .map_or(spec.job_dir.as_path(), |o| o.lower.as_path());
    let mut writable_mounts = vec![cstring("/tmp"), cpath(writable)];
    if shm {
        writable_mounts.push(cstring("/dev/shm"));
    }
    for path in &writable_mounts {
        sys::mount_setattr(path, false, 0, MOUNT_ATTR_RDONLY)
            .map_err(fail("mounts: the job's writable directories"))?;
    }
    Ok(json!({
        "tmp": format!("private tmpfs, {} bytes", spec.limits.tmp_size),
        "dev_shm": if shm { json!(format!("private tmpfs, {} bytes", spec.limits.shm_size)) } else { json!("absent on the host") },
        "proc": "the job's PID namespace only",
        "read_only": "every mount but the job's directory, /tmp and /dev/shm",
        "cwd_overlay": spec.cwd.as_ref().map(|o| o.lower.display().to_string()),
    }))
}

/// PID 1 of the job's namespace: mount, start the job, reap, report, exit.
fn init(spec: &SandboxSpec, mut report: Report) -> ! {
    if let Err(e) = sys::die_with_parent(libc::SIGKILL) {
        report.refuse("parent-death signal", e);
    }
    // A SIGTERM from the helper reaches every other process of the namespace.
    if let Err(e) = sys::forward_sigterm_to(-1) {
        report.refuse("init's SIGTERM handler", e);
    }
    match mounts(spec) {
        Ok(value) => report.line(Line::Mounts { mounts: value }),
        Err((what, e)) => report.refuse(&what, e),
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

/// Refused with `EPERM` whatever their arguments: mounting (the old and the
/// new mount API: a detached overlay would write past Landlock), namespaces,
/// the kernel keyrings, io_uring, and kernel interfaces a job has no use
/// for.
const REFUSED_SYSCALLS: &[i64] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
];

/// `clone(2)` flags that make a namespace.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
    0x80, // CLONE_NEWTIME
];

/// A second filter: `clone3(2)` fails with `ENOSYS`, so C libraries fall
/// back to `clone(2)`, whose flags the first filter can see.
fn clone3_filter(arch: seccompiler::TargetArch) -> Result<seccompiler::BpfProgram, String> {
    let mut rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        std::collections::BTreeMap::new();
    rules.insert(libc::SYS_clone3, Vec::new());
    seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?
    .try_into()
    .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// First syscall number of the x32 ABI on x86_64: the same architecture
/// token, `nr | 0x4000_0000`. Every such number is refused.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The seccomp program: non-native syscall numbers (x32; other
/// architectures are killed by the architecture check), `io_uring`, and
/// `socket(2)` — for every family, or, with the network allowed, for every
/// family but `AF_INET`/`AF_INET6` — fail with `EPERM`. `socketpair(2)`
/// stays available.
pub fn seccomp_filter(network: bool) -> Result<Vec<seccompiler::BpfProgram>, String> {
    use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};
    use std::collections::BTreeMap;
    let arch = if cfg!(target_arch = "x86_64") {
        seccompiler::TargetArch::x86_64
    } else if cfg!(target_arch = "aarch64") {
        seccompiler::TargetArch::aarch64
    } else {
        return Err("unsupported architecture".into());
    };
    let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = BTreeMap::new();
    for syscall in REFUSED_SYSCALLS {
        rules.insert(*syscall, Vec::new());
    }
    // clone(2) that would make a namespace (a nested user namespace gives
    // back every capability inside it).
    let mut clone = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let flag = *flag as u64;
        clone.push(
            seccompiler::SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .map_err(|e| e.to_string())?,
            ])
            .map_err(|e| e.to_string())?,
        );
    }
    rules.insert(libc::SYS_clone, clone);
    let socket = if network {
        let not = |family: libc::c_int| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
                .map_err(|e| e.to_string())
        };
        // Raw sockets too (the type's low bits; SOCK_NONBLOCK and
        // SOCK_CLOEXEC above them).
        let raw = SeccompCondition::new(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(0xf),
            libc::SOCK_RAW as u64,
        )
        .map_err(|e| e.to_string())?;
        vec![
            seccompiler::SeccompRule::new(vec![not(libc::AF_INET)?, not(libc::AF_INET6)?])
                .map_err(|e| e.to_string())?,
            seccompiler::SeccompRule::new(vec![raw]).map_err(|e| e.to_string())?,
        ]
    } else {
        Vec::new()
    };
    rules.insert(libc::SYS_socket, socket);
    let filter = seccompiler::SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    // Before the compiled program: load the syscall number, and refuse any
    // at or above the x32 bit. Jumps in the rest are relative, so
    // prepending leaves them intact.
    let mut guarded = vec![
        seccompiler::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0, // offsetof(struct seccomp_data, nr)
        },
        seccompiler::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        seccompiler::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
    ];
    guarded.extend(program);
    Ok(vec![guarded, clone3_filter(arch)?])
}

fn abi(version: u32) -> ABI {
    ABI::from(version.min(LANDLOCK_MAX_ABI) as i32)
}

/// Landlock: read and execute the system directories, the program's
/// installation and `read_only`; read and write the job directory (or the
/// overlay on its cwd), its private `/tmp` and `/dev/shm`, and the devices.
/// Every rule is a hard requirement at `spec.landlock_abi`.
fn landlock(spec: &SandboxSpec) -> Result<Value, String> {
    let abi = abi(spec.landlock_abi);
    if spec.landlock_abi < LANDLOCK_MIN_ABI {
        return Err(format!("Landlock ABI {} is too old", spec.landlock_abi));
    }
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let device = AccessFs::from_file(abi) & !AccessFs::Execute;
    let mut rules: Vec<(PathBuf, landlock::BitFlags<AccessFs>, bool)> = Vec::new();
    for dir in SYSTEM_DIRS {
        rules.push((PathBuf::from(dir), read, false));
    }
    for path in &spec.read_only {
        rules.push((path.clone(), read, true));
    }
    let work = spec
        .cwd
        .as_ref()
        .map_or(spec.job_dir.clone(), |o| o.lower.clone());
    rules.push((work, all, true));
    rules.push((PathBuf::from("/tmp"), all, true));
    if Path::new("/dev/shm").is_dir() {
        rules.push((PathBuf::from("/dev/shm"), all, true));
    }
    for dev in DEFAULT_DEVICES {
        rules.push((PathBuf::from(dev), device, false));
    }
    for dev in &spec.devices {
        rules.push((dev.clone(), device, true));
    }
    let scoped = spec.landlock_abi >= 6;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .and_then(|r| {
            if scoped {
                // An extra beside the PID namespace and seccomp: no signal
                // or abstract socket reaches outside the job.
                r.scope(Scope::Signal | Scope::AbstractUnixSocket)
            } else {
                Ok(r)
            }
        })
        .and_then(|r| r.create())
        .map_err(|e| e.to_string())?;
    let mut granted = Vec::new();
    for (path, access, required) in rules {
        let fd = match PathFd::new(&path) {
            Ok(fd) => fd,
            Err(e) if required => return Err(format!("{}: {e}", path.display())),
            Err(_) => continue,
        };
        let is_file = std::fs::metadata(&path).is_ok_and(|m| !m.is_dir());
        let access = if is_file {
            access & AccessFs::from_file(abi)
        } else {
            access
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        granted.push(path.display().to_string());
    }
    let status = ruleset.restrict_self().map_err(|e| e.to_string())?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(format!(
            "the ruleset is {:?}, not fully enforced",
            status.ruleset
        ));
    }
    Ok(json!({
        "abi": spec.landlock_abi.min(LANDLOCK_MAX_ABI),
        "enforced": "fully",
        "scoped": if scoped { json!(["signals", "abstract unix sockets"]) } else { json!([]) },
        "readable": granted,
        "writable": [spec.cwd.as_ref().map_or(spec.job_dir.display().to_string(), |o| o.lower.display().to_string()), "/tmp", "/dev/shm"],
    }))
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
    if let Err(e) = sys::close_from(3) {
        eprintln!("lab sandbox: closing descriptors failed: {e}");
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
    eprintln!(
        "lab sandbox: cannot execute {}: {error}",
        spec.program.display()
    );
    sys::exit_now(127)
}
