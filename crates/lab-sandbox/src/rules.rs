//! The Landlock ruleset a job gets: every rule a hard requirement.

use std::path::{Path, PathBuf};

use lab_protocol::kernel::{LANDLOCK_MAX_ABI, LANDLOCK_MIN_ABI};
use lab_protocol::{DEFAULT_DEVICES, SYSTEM_DIRS, SandboxSpec};
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde_json::{Value, json};

pub(crate) fn abi(version: u32) -> ABI {
    ABI::from(version.min(LANDLOCK_MAX_ABI) as i32)
}

/// Landlock: read and execute the system directories, the program's
/// installation and `read_only`; read and write the job directory (or the
/// overlay on its cwd), its private `/tmp` and `/dev/shm`, and the devices.
/// Every rule is a hard requirement at `spec.landlock_abi`.
pub(crate) fn landlock(spec: &SandboxSpec) -> Result<Value, String> {
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
