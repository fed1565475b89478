//! The one module of the workspace with `unsafe`: thin wrappers over the
//! system calls the sandbox helper needs (namespaces, fork, wait, limits,
//! descriptors, signals). Each call is used only from the single-threaded
//! `lab __sandbox` helper process, never from the server's runtime — but
//! [`limit_malloc_arenas`], which `lab` calls first thing in `main`,
//! before any thread exists.
#![allow(unsafe_code)]

use std::io;

/// Caps glibc's malloc arenas at `n` (`mallopt(M_ARENA_MAX)`): a server
/// whose threads take turns with the same work otherwise grows one arena
/// per thread, each fragmenting on its own (at 10,000 runs RSS grew from
/// 52 to 87 MiB in two minutes of background summarising, and stayed at
/// 44 MiB with one arena). Whether it was applied; `false` off glibc.
/// Call before any thread starts.
#[cfg(target_env = "gnu")]
pub fn limit_malloc_arenas(n: libc::c_int) -> bool {
    // SAFETY: mallopt takes two integers and changes only malloc's own
    // tuning; `lab` calls it at the start of `main`, before any other
    // thread exists, so no allocation races the change.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

/// Caps malloc's arenas where the C library has them (glibc only).
#[cfg(not(target_env = "gnu"))]
pub fn limit_malloc_arenas(_n: libc::c_int) -> bool {
    false
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `unshare(2)` with the given `CLONE_*` flags.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes only an integer; the helper is single-threaded,
    // so no other thread can observe a changed namespace or table.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

/// Which side of a fork this is.
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// `fork(2)`.
///
/// # Safety
///
/// The calling process must be single-threaded: the child gets a copy of
/// this thread alone, and a lock another thread held (the allocator's, a
/// stdio lock) would stay held forever in it, so the child could not go on
/// running ordinary Rust code.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller promises a single-threaded process (above); fork
    // itself takes no arguments.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// `waitpid(2)`, blocking; `pid == -1` waits for any child. Returns the pid
/// and how it ended.
pub fn wait(pid: libc::pid_t) -> io::Result<(libc::pid_t, Ended)> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int for the call.
        let got = unsafe { libc::waitpid(pid, &mut status, 0) };
        if got < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let ended = if libc::WIFEXITED(status) {
            Ended::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Ended::Signal(libc::WTERMSIG(status))
        } else {
            continue;
        };
        return Ok((got, ended));
    }
}

/// `setrlimit(2)` with soft = hard = `value`.
pub fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    check(unsafe { libc::setrlimit(resource, &limit) }).map(drop)
}

/// Closes every descriptor from `first` up.
///
/// # Safety
///
/// Nothing in the process may use a descriptor at or above `first` after
/// the call: an `OwnedFd` or `File` that still held one would close (or
/// read) whatever descriptor the kernel hands out next under that number.
pub unsafe fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range takes integers only; the caller promises that no
    // descriptor at or above `first` is in use (above).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to send `signal` to this process when its parent dies.
pub fn die_with_parent(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes the signal number as an integer.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// `PR_SET_NO_NEW_PRIVS`: no exec can ever grant more privileges.
pub fn no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// `setsid(2)`: a new session and process group.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    check(unsafe { libc::setsid() }).map(drop)
}

/// `kill(2)`.
pub fn signal(pid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes integers only.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Ends this process at once, without running destructors or flushing
/// buffers shared with a forked parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// The real uid and gid.
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and take no arguments.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// `mount(2)`. `None` passes NULL for that argument.
pub fn mount(
    source: Option<&std::ffi::CStr>,
    target: &std::ffi::CStr,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&std::ffi::CStr>| s.map_or(std::ptr::null(), std::ffi::CStr::as_ptr);
    // SAFETY: every pointer is NULL or a NUL-terminated string that outlives
    // the call; the kernel copies what it needs.
    check(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    })
    .map(drop)
}

/// The Landlock ABI version this kernel provides, or why there is none
/// (`ENOSYS`: not built in; `EOPNOTSUPP`: built in but not enabled at boot).
pub fn landlock_abi() -> io::Result<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the
    // call only returns the ABI version; it reads and writes no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as u32)
    }
}

/// The pid a SIGTERM handler forwards to: `0` means none yet; `-1` means
/// every process of this PID namespace but the caller (used by its init).
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_term(_: libc::c_int) {
    let target = FORWARD_TO.load(std::sync::atomic::Ordering::SeqCst);
    if target != 0 {
        // SAFETY: kill is async-signal-safe and takes integers only.
        unsafe { libc::kill(target, libc::SIGTERM) };
    }
}

/// Makes SIGTERM to this process a SIGTERM to `target` instead (`-1`: every
/// other process of the caller's PID namespace, when the caller is its init).
pub fn forward_sigterm_to(target: libc::pid_t) -> io::Result<()> {
    FORWARD_TO.store(target, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is a valid value to fill in; the handler
    // only reads an atomic and calls kill, both async-signal-safe, and
    // SA_RESTART keeps waitpid from failing with EINTR.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = forward_term as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        check(libc::sigaction(
            libc::SIGTERM,
            &action,
            std::ptr::null_mut(),
        ))
        .map(drop)
    }
}

/// Restores SIGTERM's default action (in the job, before it execs).
pub fn default_sigterm() -> io::Result<()> {
    // SAFETY: SIG_DFL is always a valid disposition for SIGTERM.
    let previous = unsafe { libc::signal(libc::SIGTERM, libc::SIG_DFL) };
    if previous == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The `MS_*` flags a bind mount of `path` must keep when remounted inside a
/// user namespace (the kernel locks nosuid, nodev, noexec and the atime
/// flags of mounts inherited from the parent namespace).
pub fn locked_mount_flags(path: &std::ffi::CStr) -> io::Result<libc::c_ulong> {
    // SAFETY: an all-zero statvfs is a valid buffer for the kernel to fill.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is valid and writable.
    check(unsafe { libc::statvfs(path.as_ptr(), &mut stat) })?;
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    Ok(pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |flags, (_, ms)| flags | ms))
}

/// Gives up every capability for good, before the job's `exec`: the
/// ambient set cleared, every capability dropped from the bounding set, the
/// securebits that stop uid 0 from regaining any on `exec` (or a setuid
/// fix-up) set and locked, then the effective, permitted and inheritable
/// sets emptied. A job that is uid 0 inside its user namespace keeps no
/// capability there (no mounts, no raw sockets, no overlay of its own).
pub fn drop_capabilities() -> io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
        .unwrap_or(63);
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })?;
    for cap in 0..=last {
        // SAFETY: PR_CAPBSET_DROP takes the capability number as an integer.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) })?;
    }
    // SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED,
    // SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock bit.
    const SECURE_BITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: PR_SET_SECUREBITS takes an integer bit mask.
    check(unsafe { libc::prctl(libc::PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0) })?;
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: `header` and `data` are valid for the call and laid out as
    // the kernel's `__user_cap_header_struct` and two
    // `__user_cap_data_struct`s (version 3).
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives this process a new, empty session keyring, so a job cannot reach
/// the keys of the session the Lab was started in.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: with a NULL name the kernel creates an anonymous keyring; no
    // memory is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mount_setattr(2)` on `path`: set and clear `MOUNT_ATTR_*` bits, on the
/// whole subtree when `recursive`.
pub fn mount_setattr(
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is NUL-terminated, `attr` is a valid `struct
    // mount_attr` whose size is passed; both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if recursive { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `waitpid(pid, WNOHANG)`: how `pid` ended, or `None` while it runs.
pub fn try_wait(pid: libc::pid_t) -> io::Result<Option<Ended>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the call.
    let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if got < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(None)
        } else {
            Err(err)
        };
    }
    if got == 0 {
        return Ok(None);
    }
    Ok(if libc::WIFEXITED(status) {
        Some(Ended::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(Ended::Signal(libc::WTERMSIG(status)))
    } else {
        None
    })
}

/// One byte from descriptor `fd` if one arrives within `timeout_ms`:
/// `Ok(Some(None))` at end of file, `Ok(None)` when nothing came. Reads the
/// descriptor itself (no buffering that could hide a later byte).
pub fn read_byte_within(
    fd: libc::c_int,
    timeout_ms: libc::c_int,
) -> io::Result<Option<Option<u8>>> {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll` is one valid pollfd for the call.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(None)
        } else {
            Err(err)
        };
    }
    if ready == 0 {
        return Ok(None);
    }
    let mut byte = 0u8;
    // SAFETY: `byte` is one writable byte; poll said `fd` is readable (or
    // closed), so the read does not block.
    let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
    match n {
        1 => Ok(Some(Some(byte))),
        0 => Ok(Some(None)),
        _ => Err(io::Error::last_os_error()),
    }
}
