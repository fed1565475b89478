//! What the kernel provides, and whether that is enough to run a job.
//!
//! The sandbox helper (`lab __sandbox kernel`, crate lab-sandbox) reads what
//! this kernel reports (procfs, the Landlock ABI version); [`decide`] is a
//! pure function of that report: it
//! says which layers will be enforced, or names every missing kernel feature.
//! The sandbox helper then sets each layer up as a hard requirement, so a
//! report that was wrong still ends in a refusal, never in a job run with
//! less (fail closed).

use serde_json::{Value, json};

/// The oldest Landlock ABI whose filesystem rules the sandbox relies on:
/// ABI 1 confines reads and writes, ABI 2 (`REFER`) stops links and renames
/// out of the writable directories, ABI 3 (`TRUNCATE`) stops truncating a
/// file the job may only read.
pub const LANDLOCK_MIN_ABI: u32 = 3;
/// The newest ABI the sandbox knows how to use (5 adds `IOCTL_DEV`, 6
/// scopes signals and abstract Unix sockets to the job).
pub const LANDLOCK_MAX_ABI: u32 = 6;
/// Unprivileged overlayfs inside a user namespace needs Linux 5.11.
pub const OVERLAY_MIN_KERNEL: (u32, u32) = (5, 11);

/// Landlock as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Landlock {
    /// The kernel was built without Landlock (`ENOSYS`).
    NotBuilt,
    /// Built in, but not in the boot-time LSM list (`EOPNOTSUPP`).
    NotEnabled,
    /// Enabled, with this ABI version.
    Abi(u32),
}

/// What the kernel reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelFeatures {
    /// `major.minor` of the running kernel.
    pub release: (u32, u32),
    /// Landlock.
    pub landlock: Landlock,
    /// `None` when this user may create user namespaces, else why not.
    pub user_namespaces: Option<String>,
    /// Whether overlayfs is available (listed in `/proc/filesystems` or
    /// present as a module).
    pub overlay: bool,
    /// Whether seccomp filters with an errno action are available.
    pub seccomp: bool,
}

/// The layers a job will get on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The Landlock ABI the rules are written for (at least
    /// [`LANDLOCK_MIN_ABI`], at most [`LANDLOCK_MAX_ABI`]).
    pub landlock_abi: u32,
    /// Device ioctls are confined too (ABI 5): only named devices get them.
    pub ioctl_rules: bool,
    /// Landlock TCP rules (ABI 4): reported as an extra, never relied on.
    pub landlock_network: bool,
}

impl Plan {
    /// As JSON, for status and reports.
    pub fn to_json(&self) -> Value {
        json!({
            "landlock_abi": self.landlock_abi,
            "landlock_ioctl_rules": self.ioctl_rules,
            "landlock_network_rules": self.landlock_network,
        })
    }
}

/// Decides, from what the kernel reported alone, whether jobs can run with
/// every required layer, and how. `Err` names each missing feature.
pub fn decide(features: &KernelFeatures) -> Result<Plan, Vec<String>> {
    let mut missing = Vec::new();
    let abi = match features.landlock {
        Landlock::NotBuilt => {
            missing.push(format!(
                "Landlock: this kernel ({}.{}) was built without it (CONFIG_SECURITY_LANDLOCK; Linux 6.2 or later with Landlock ABI {LANDLOCK_MIN_ABI} is needed)",
                features.release.0, features.release.1
            ));
            None
        }
        Landlock::NotEnabled => {
            missing.push(
                "Landlock: built in but not enabled; add `landlock` to the `lsm=` kernel boot parameter"
                    .to_owned(),
            );
            None
        }
        Landlock::Abi(abi) if abi < LANDLOCK_MIN_ABI => {
            missing.push(format!(
                "Landlock ABI {LANDLOCK_MIN_ABI} (file truncation rules, Linux 6.2): this kernel has ABI {abi}"
            ));
            None
        }
        Landlock::Abi(abi) => Some(abi.min(LANDLOCK_MAX_ABI)),
    };
    if let Some(why) = &features.user_namespaces {
        missing.push(format!("user namespaces: {why}"));
    }
    if !features.overlay {
        missing.push(
            "overlayfs (CONFIG_OVERLAY_FS), for the job's view of its working directory".to_owned(),
        );
    } else if features.release < OVERLAY_MIN_KERNEL {
        missing.push(format!(
            "overlayfs inside a user namespace (Linux {}.{}): this kernel is {}.{}",
            OVERLAY_MIN_KERNEL.0, OVERLAY_MIN_KERNEL.1, features.release.0, features.release.1
        ));
    }
    if !features.seccomp {
        missing.push("seccomp filters (CONFIG_SECCOMP_FILTER)".to_owned());
    }
    match abi {
        Some(abi) if missing.is_empty() => Ok(Plan {
            landlock_abi: abi,
            ioctl_rules: abi >= 5,
            landlock_network: abi >= 4,
        }),
        _ => Err(missing),
    }
}

/// Parses `6.18.44-fc` into `(6, 18)`.
pub fn parse_release(text: &str) -> (u32, u32) {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

impl KernelFeatures {
    /// Nothing known: what a helper that could not report leaves.
    pub fn unknown() -> Self {
        Self {
            release: (0, 0),
            landlock: Landlock::NotBuilt,
            user_namespaces: Some("unknown".into()),
            overlay: false,
            seccomp: false,
        }
    }

    /// These features with those named in `names` (comma-separated:
    /// `landlock`, `userns`, `overlay`, `seccomp`) taken away. It can only
    /// remove layers, so the fail-closed path can be tested end to end on a
    /// machine that has everything (lab-runner's `DENY_FEATURES_ENV`).
    pub fn without(mut self, names: &str) -> Self {
        for name in names.split(',').map(str::trim) {
            match name {
                "landlock" => self.landlock = Landlock::NotBuilt,
                "userns" => {
                    self.user_namespaces = Some("taken away by LAB_RUNNER_DENY_FEATURES".into());
                }
                "overlay" => self.overlay = false,
                "seccomp" => self.seccomp = false,
                _ => {}
            }
        }
        self
    }

    /// As JSON, for status.
    pub fn to_json(&self) -> Value {
        json!({
            "kernel": format!("{}.{}", self.release.0, self.release.1),
            "landlock": match self.landlock {
                Landlock::NotBuilt => json!("not built"),
                Landlock::NotEnabled => json!("not enabled"),
                Landlock::Abi(abi) => json!(abi),
            },
            "user_namespaces": self.user_namespaces.is_none(),
            "overlay": self.overlay,
            "seccomp": self.seccomp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> KernelFeatures {
        KernelFeatures {
            release: (6, 8),
            landlock: Landlock::Abi(4),
            user_namespaces: None,
            overlay: true,
            seccomp: true,
        }
    }

    #[test]
    fn a_full_kernel_runs_jobs() {
        let plan = decide(&full()).unwrap();
        assert_eq!(plan.landlock_abi, 4);
        assert!(!plan.ioctl_rules, "ABI 4 has no ioctl rights");
        assert!(plan.landlock_network);
        let newer = KernelFeatures {
            landlock: Landlock::Abi(7),
            ..full()
        };
        let plan = decide(&newer).unwrap();
        assert_eq!(
            plan.landlock_abi, LANDLOCK_MAX_ABI,
            "capped at what we write rules for"
        );
        assert!(plan.ioctl_rules);
    }

    #[test]
    fn no_landlock_is_refused_with_the_reason() {
        for (landlock, needle) in [
            (Landlock::NotBuilt, "built without"),
            (Landlock::NotEnabled, "lsm="),
        ] {
            let missing = decide(&KernelFeatures { landlock, ..full() }).unwrap_err();
            assert_eq!(missing.len(), 1, "{missing:?}");
            assert!(missing[0].contains(needle), "{missing:?}");
        }
    }

    #[test]
    fn old_landlock_abis_are_refused() {
        for abi in [1, 2] {
            let missing = decide(&KernelFeatures {
                landlock: Landlock::Abi(abi),
                ..full()
            })
            .unwrap_err();
            assert!(
                missing[0].contains(&format!("has ABI {abi}")),
                "{missing:?}"
            );
        }
        assert!(
            decide(&KernelFeatures {
                landlock: Landlock::Abi(3),
                ..full()
            })
            .is_ok()
        );
    }

    #[test]
    fn no_user_namespaces_or_overlay_or_seccomp_is_refused() {
        let missing = decide(&KernelFeatures {
            user_namespaces: Some("disabled".into()),
            ..full()
        })
        .unwrap_err();
        assert!(missing[0].starts_with("user namespaces"), "{missing:?}");
        let missing = decide(&KernelFeatures {
            overlay: false,
            ..full()
        })
        .unwrap_err();
        assert!(missing[0].contains("overlayfs"), "{missing:?}");
        let missing = decide(&KernelFeatures {
            release: (5, 10),
            ..full()
        })
        .unwrap_err();
        assert!(missing[0].contains("5.11"), "{missing:?}");
        let missing = decide(&KernelFeatures {
            seccomp: false,
            ..full()
        })
        .unwrap_err();
        assert!(missing[0].contains("seccomp"), "{missing:?}");
    }

    #[test]
    fn every_missing_feature_is_named_at_once() {
        let missing = decide(&KernelFeatures {
            release: (5, 4),
            landlock: Landlock::NotBuilt,
            user_namespaces: Some("disabled".into()),
            overlay: false,
            seccomp: false,
        })
        .unwrap_err();
        assert_eq!(missing.len(), 4, "{missing:?}");
    }

    #[test]
    fn features_can_only_be_taken_away() {
        let f = full().without("landlock, seccomp,bogus");
        assert_eq!(f.landlock, Landlock::NotBuilt);
        assert!(!f.seccomp);
        assert!(f.overlay && f.user_namespaces.is_none());
        assert_eq!(full().without(""), full());
    }

    #[test]
    fn releases_parse() {
        assert_eq!(parse_release("6.18.44-fc-v1045"), (6, 18));
        assert_eq!(parse_release("5.4.0-150-generic"), (5, 4));
        assert_eq!(parse_release(""), (0, 0));
    }
}
