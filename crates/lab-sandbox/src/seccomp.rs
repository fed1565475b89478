//! The seccomp filters a job gets.

/// Refused with `EPERM` whatever their arguments: mounting (the old and the
/// new mount API: a detached overlay would write past Landlock), namespaces,
/// the kernel keyrings, io_uring, and kernel interfaces a job has no use
/// for.
pub(crate) const REFUSED_SYSCALLS: &[i64] = &[
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
pub(crate) const NAMESPACE_FLAGS: &[libc::c_int] = &[
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
pub(crate) fn clone3_filter(
    arch: seccompiler::TargetArch,
) -> Result<seccompiler::BpfProgram, String> {
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
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

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
