//! The job's mounts, made by init in the job's own mount namespace: the
//! overlay on its cwd, private size-capped /tmp and /dev/shm (with the paths
//! the job needs under them bound back), a /proc of its PID namespace, and
//! everything read-only but the job's directories.

use std::path::{Path, PathBuf};

use lab_protocol::{JOB_HOME, SandboxSpec};
use serde_json::{Value, json};

use crate::sys;

pub(crate) fn cstring(text: &str) -> std::ffi::CString {
    // Paths come from canonicalised, validated config and NUL-free JSON;
    // an interior NUL becomes an empty string, which every mount refuses.
    std::ffi::CString::new(text).unwrap_or_default()
}

pub(crate) fn cpath(path: &Path) -> std::ffi::CString {
    cstring(&path.to_string_lossy())
}

/// Paths the job needs that lie under `/tmp` or `/dev/shm` (a project or
/// data dir kept in /tmp) would vanish under the private tmpfs: each is
/// opened first and bind-mounted back at the same path afterwards.
pub(crate) struct Kept {
    path: PathBuf,
    handle: std::fs::File,
    is_dir: bool,
    /// Read-only paths are bound back read-only: under the private tmpfs
    /// they would otherwise inherit its Landlock write rule.
    writable: bool,
}

pub(crate) fn keep(paths: &[(&Path, bool)], under: &str) -> Result<Vec<Kept>, std::io::Error> {
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

pub(crate) fn restore(kept: &[Kept]) -> Result<(), std::io::Error> {
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
pub(crate) fn private_tmpfs(
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
pub(crate) fn mounts(spec: &SandboxSpec) -> Result<Value, (String, std::io::Error)> {
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
