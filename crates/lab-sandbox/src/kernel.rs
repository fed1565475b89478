//! What this kernel provides, read from procfs and the Landlock ABI query
//! (a system call: hence here, beside the other `unsafe`). The decision on
//! it is `lab_protocol::kernel::decide`, a pure function.

use lab_protocol::kernel::{KernelFeatures, Landlock, parse_release};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Reads what this kernel reports.
pub fn detect() -> KernelFeatures {
    let release_text = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    let landlock = match crate::sys::landlock_abi() {
        Ok(abi) => Landlock::Abi(abi),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Landlock::NotEnabled,
        Err(_) => Landlock::NotBuilt,
    };
    let (uid, _) = crate::sys::ids();
    let user_namespaces = if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        Some("disabled (/proc/sys/user/max_user_namespaces is 0)".to_owned())
    } else if uid != 0 && read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
    {
        Some(
            "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=0)"
                .to_owned(),
        )
    } else if uid != 0
        && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        Some(
            "AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=1)"
                .to_owned(),
        )
    } else if !std::path::Path::new("/proc/self/ns/user").exists() {
        Some("not built into this kernel (CONFIG_USER_NS)".to_owned())
    } else {
        None
    };
    let overlay =
        read("/proc/filesystems").is_some_and(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        }) || std::path::Path::new(&format!("/lib/modules/{release_text}/kernel/fs/overlayfs"))
            .is_dir();
    let seccomp = read("/proc/sys/kernel/seccomp/actions_avail")
        .is_some_and(|a| a.split_whitespace().any(|w| w == "errno"));
    KernelFeatures {
        release: parse_release(&release_text),
        landlock,
        user_namespaces,
        overlay,
        seccomp,
    }
}
