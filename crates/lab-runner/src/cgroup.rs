//! Job limits through a cgroup per job (SPEC §5 Runner): `[runner]
//! memory_max` (bytes), `pids_max` (processes) and `cpu_max` (CPUs, a
//! float) bind every process of the job, the sandbox helper joining the
//! job's cgroup before it makes its namespaces.
//!
//! Which cgroups are used is a pure function of what the machine offers
//! ([`choose`] over a [`Layout`] read from `/proc/self/mountinfo`,
//! `/proc/self/cgroup` and the v2 `cgroup.controllers`): cgroup v2 when its
//! controllers list every one needed, else each limit from its own v1
//! hierarchy (`memory`, `pids`, `cpu`). A limit that cannot be applied
//! refuses the job; nothing runs with less than was configured.
//!
//! [`JobCgroup`] makes the job's cgroup beneath a directory handle of its
//! parent (`mkdirat`, then each control file opened beneath the new
//! directory without following links), writes the limits, reads them back
//! (what the kernel holds is what is reported), tells whether the OOM
//! killer struck, and removes the cgroup when the job is over.
//!
//! ```text
//! v2: /sys/fs/cgroup/<the Lab's cgroup>/lab-job-<id>/{memory.max,pids.max,cpu.max}
//! v1: /sys/fs/cgroup/memory/<the Lab's cgroup>/lab-job-<id>/memory.limit_in_bytes, …
//! ```

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Mode, OFlags};

/// On cgroup v2, the leaf the Lab moves itself into so that its own cgroup
/// may enable controllers for its jobs' cgroups.
const LAB_LEAF: &str = "lab-server";

/// The period `cpu_max` is measured over, microseconds (the kernel's
/// default CFS period).
const CPU_PERIOD_US: u64 = 100_000;

/// A cgroup controller a limit needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    /// `memory_max`.
    Memory,
    /// `pids_max`.
    Pids,
    /// `cpu_max`.
    Cpu,
}

impl Controller {
    /// The kernel's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// The limits configured (`[runner]`); `None`: not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Wanted {
    /// Bytes of memory (RAM; swap is not granted beyond it where the
    /// kernel has the knob).
    pub memory_max: Option<u64>,
    /// Processes and threads.
    pub pids_max: Option<u64>,
    /// CPUs (0.5: half of one core's time).
    pub cpu_max: Option<f64>,
}

impl Wanted {
    /// Whether no limit is configured.
    pub fn is_empty(&self) -> bool {
        self.memory_max.is_none() && self.pids_max.is_none() && self.cpu_max.is_none()
    }

    /// The controllers the configured limits need.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut out = Vec::new();
        if self.memory_max.is_some() {
            out.push(Controller::Memory);
        }
        if self.pids_max.is_some() {
            out.push(Controller::Pids);
        }
        if self.cpu_max.is_some() {
            out.push(Controller::Cpu);
        }
        out
    }

    /// Checks the values: memory at least 1 MiB, processes at least 1, CPUs
    /// a finite number at least 0.01.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_max.is_some_and(|m| m < 1 << 20) {
            return Err(
                "[runner] memory_max is in bytes and must be at least 1048576 (1 MiB)".into(),
            );
        }
        if self.pids_max.is_some_and(|p| p < 4) {
            return Err("[runner] pids_max must be at least 4: it counts the sandbox's own helper and init (and pasta with the network) too".into());
        }
        if self
            .cpu_max
            .is_some_and(|c| !c.is_finite() || !(0.01..=1_000_000.0).contains(&c))
        {
            return Err(
                "[runner] cpu_max is a number of CPUs (e.g. 0.5 or 4) and must be at least 0.01"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A cgroup v1 hierarchy mounted on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Its controllers (`cpu,cpuacct` has two).
    pub controllers: Vec<String>,
    /// Where the Lab's own cgroup of it is (mount point + the cgroup's
    /// path within the mount).
    pub dir: PathBuf,
}

/// The cgroup v2 hierarchy, where mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Hierarchy {
    /// Where the Lab's own cgroup is.
    pub dir: PathBuf,
    /// What `cgroup.controllers` of that cgroup lists (empty on machines
    /// that mount every controller in v1).
    pub controllers: Vec<String>,
    /// The cgroup is the Lab's user's to manage (delegated to it, as
    /// systemd does for a unit or scope with `Delegate=yes`: the directory
    /// and its `cgroup.procs` and `cgroup.subtree_control` are the user's).
    pub delegated: bool,
}

/// What the machine offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// cgroup v2.
    pub v2: Option<V2Hierarchy>,
    /// cgroup v1 hierarchies.
    pub v1: Vec<V1Hierarchy>,
}

/// Where a job's cgroups are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// No limit is configured: no cgroup.
    Nothing,
    /// One cgroup v2 directory, under the Lab's own cgroup.
    V2 {
        /// The parent of each job's cgroup.
        parent: PathBuf,
        /// The controllers to enable for its children.
        controllers: Vec<Controller>,
    },
    /// One directory per controller, each in its own v1 hierarchy.
    V1 {
        /// The parent of each job's cgroup in each hierarchy.
        parents: Vec<(Controller, PathBuf)>,
    },
}

impl Choice {
    /// `v2`, `v1` or `none`.
    pub fn version(&self) -> &'static str {
        match self {
            Choice::Nothing => "none",
            Choice::V2 { .. } => "v2",
            Choice::V1 { .. } => "v1",
        }
    }
}

/// Which cgroups carry the `wanted` limits on a machine laid out as
/// `layout`, for a Lab running as root (`root`) or not; or why they cannot
/// be applied.
pub fn choose(layout: &Layout, root: bool, wanted: &Wanted) -> Result<Choice, String> {
    let needed = wanted.controllers();
    if needed.is_empty() {
        return Ok(Choice::Nothing);
    }
    let names = |list: &[Controller]| {
        list.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut missing_v2 = Vec::new();
    if let Some(v2) = &layout.v2 {
        let missing: Vec<Controller> = needed
            .iter()
            .copied()
            .filter(|c| !v2.controllers.iter().any(|n| n == c.as_str()))
            .collect();
        if missing.is_empty() {
            if !root && !v2.delegated {
                return Err(format!(
                    "limits ({}) on cgroup v2 need a cgroup delegated to the Lab's user: start it with `systemd-run --user --scope -p Delegate=yes lab serve …` (or run it as root)",
                    names(&needed)
                ));
            }
            return Ok(Choice::V2 {
                parent: v2.dir.clone(),
                controllers: needed,
            });
        }
        missing_v2 = missing;
    }
    let mut parents = Vec::new();
    let mut missing = Vec::new();
    for controller in &needed {
        match layout
            .v1
            .iter()
            .find(|h| h.controllers.iter().any(|n| n == controller.as_str()))
        {
            Some(h) => parents.push((*controller, h.dir.clone())),
            None => missing.push(*controller),
        }
    }
    if !missing.is_empty() {
        // With no v1 hierarchy at all, what v2 lacks is the answer.
        if layout.v1.is_empty() && !missing_v2.is_empty() {
            missing = missing_v2;
        }
        return Err(format!(
            "this machine offers no cgroup controller for {} (neither in cgroup v2's cgroup.controllers nor as a v1 hierarchy)",
            names(&missing)
        ));
    }
    if !root {
        return Err(format!(
            "limits ({}) on cgroup v1 need root: the Lab, run as a user, cannot make cgroups there",
            names(&needed)
        ));
    }
    Ok(Choice::V1 { parents })
}

/// Parses `/proc/self/mountinfo` and `/proc/self/cgroup` into the
/// hierarchies they name; `v2_controllers` reads `cgroup.controllers` of
/// the Lab's v2 cgroup (given its directory) and whether that cgroup is
/// delegated to the Lab's user.
pub fn parse_layout(
    mountinfo: &str,
    own: &str,
    v2_controllers: impl Fn(&Path) -> Option<(String, bool)>,
) -> Layout {
    // hierarchy id : controllers : path
    let mut own_v2 = None;
    let mut own_v1: Vec<(Vec<String>, String)> = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            own_v2 = Some(path.to_owned());
        } else if !controllers.is_empty() {
            own_v1.push((
                controllers
                    .split(',')
                    .filter(|c| !c.starts_with("name="))
                    .map(str::to_owned)
                    .collect(),
                path.to_owned(),
            ));
        }
    }
    let mut layout = Layout::default();
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint options [optional…] - fstype source superoptions
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let (Some(root), Some(mountpoint)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let after: Vec<&str> = after.split(' ').collect();
        let (Some(fstype), Some(superoptions)) = (after.first(), after.get(2)) else {
            continue;
        };
        let mountpoint = unescape(mountpoint);
        let root = unescape(root);
        match *fstype {
            "cgroup2" => {
                let Some(path) = &own_v2 else { continue };
                let Some(dir) = within(&mountpoint, &root, path) else {
                    continue;
                };
                let (controllers, delegated) = match v2_controllers(&dir) {
                    Some((c, delegated)) => {
                        (c.split_whitespace().map(str::to_owned).collect(), delegated)
                    }
                    None => (Vec::new(), false),
                };
                layout.v2 = Some(V2Hierarchy {
                    dir,
                    controllers,
                    delegated,
                });
            }
            "cgroup" => {
                let controllers: Vec<String> = superoptions
                    .split(',')
                    .filter(|o| matches!(*o, "memory" | "pids" | "cpu" | "cpuacct" | "cpuset"))
                    .map(str::to_owned)
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                // The Lab's cgroup in this hierarchy: the line of
                // /proc/self/cgroup with the same controllers.
                let Some((_, path)) = own_v1.iter().find(|(c, _)| {
                    let mut a = c.clone();
                    let mut b = controllers.clone();
                    a.sort();
                    b.sort();
                    a == b
                }) else {
                    continue;
                };
                let Some(dir) = within(&mountpoint, &root, path) else {
                    continue;
                };
                if layout.v1.iter().any(|h| h.controllers == controllers) {
                    continue;
                }
                layout.v1.push(V1Hierarchy { controllers, dir });
            }
            _ => {}
        }
    }
    layout
}

/// The directory of cgroup `path` in a hierarchy whose `root` is mounted
/// at `mountpoint`; `None` when the cgroup lies outside what is mounted
/// (or its path is not plain).
fn within(mountpoint: &str, root: &str, path: &str) -> Option<PathBuf> {
    let rest = if root == "/" {
        path
    } else {
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    let rest = rest.trim_start_matches('/');
    if rest
        .split('/')
        .any(|s| s == ".." || s == "." || s.contains('\0'))
        || !path.starts_with('/')
    {
        return None;
    }
    let mut dir = PathBuf::from(mountpoint);
    if !rest.is_empty() {
        dir.push(rest);
    }
    Some(dir)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
            && let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What this machine offers, read now.
pub fn read_layout() -> Layout {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let euid = rustix::process::geteuid().as_raw();
    parse_layout(&mountinfo, &own, |dir| {
        use std::os::unix::fs::MetadataExt;
        let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).ok()?;
        let ours =
            |name: &str| std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.uid() == euid);
        let delegated = ours("") && ours("cgroup.procs") && ours("cgroup.subtree_control");
        Some((controllers, delegated))
    })
}

/// One cgroup directory of a job: its path, a handle on it, and which
/// version's files it has.
#[derive(Debug)]
struct Made {
    parent: OwnedFd,
    name: String,
    dir: OwnedFd,
    path: PathBuf,
    controllers: Vec<Controller>,
}

/// A job's cgroup(s), with its limits written; removed by [`JobCgroup::remove`]
/// (or on drop).
#[derive(Debug)]
pub struct JobCgroup {
    v2: bool,
    made: Vec<Made>,
    /// What the kernel holds, read back after writing.
    applied: crate::record::AppliedLimits,
    oom_at_start: u64,
}

fn open_dir_beneath(parent: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Writes `value` to control file `name` beneath `dir` (no link followed;
/// cgroupfs keeps its files, so `O_CREAT` only ever opens one there).
fn write_control(dir: &OwnedFd, name: &str, value: &str) -> std::io::Result<()> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(value.as_bytes())
        .map_err(|e| std::io::Error::new(e.kind(), format!("writing {name}: {e}")))
}

/// Reads control file `name` beneath `dir` (at most 64 KiB, no link
/// followed).
fn read_control(dir: &OwnedFd, name: &str) -> std::io::Result<String> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(64 * 1024)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn exists_beneath(dir: &OwnedFd, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

/// The counter `key` in a `key value` file (`memory.events`,
/// `memory.oom_control`).
fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

impl JobCgroup {
    /// Makes cgroup `lab-job-<job>` where `choice` says and writes the
    /// `wanted` limits into it; any failure removes what was made and is
    /// the job's refusal.
    pub fn create(choice: &Choice, job: &str, wanted: &Wanted) -> std::io::Result<Option<Self>> {
        Self::create_in(choice, job, wanted, true)
    }

    /// [`JobCgroup::create`]; `real` requires each parent to be on a
    /// cgroup filesystem (tests pass `false` for a fake one in a temp dir).
    fn create_in(
        choice: &Choice,
        job: &str,
        wanted: &Wanted,
        real: bool,
    ) -> std::io::Result<Option<Self>> {
        if !job
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || job.is_empty()
        {
            return Err(std::io::Error::other("a job id fit for a cgroup name"));
        }
        let name = format!("lab-job-{job}");
        let mut group = JobCgroup {
            v2: matches!(choice, Choice::V2 { .. }),
            made: Vec::new(),
            applied: crate::record::AppliedLimits::default(),
            oom_at_start: 0,
        };
        let places: Vec<(PathBuf, Vec<Controller>)> = match choice {
            Choice::Nothing => return Ok(None),
            Choice::V2 {
                parent,
                controllers,
            } => vec![(parent.clone(), controllers.clone())],
            Choice::V1 { parents } => parents.iter().map(|(c, p)| (p.clone(), vec![*c])).collect(),
        };
        for (parent_path, controllers) in places {
            let parent = rustix::fs::openat(
                CWD,
                &parent_path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                std::io::Error::new(
                    std::io::Error::from(e).kind(),
                    format!("opening the cgroup {}: {e}", parent_path.display()),
                )
            })?;
            if real && !is_cgroupfs(&parent) {
                return Err(std::io::Error::other(format!(
                    "{} is not on a cgroup filesystem",
                    parent_path.display()
                )));
            }
            if group.v2 {
                group.enable_v2(&parent, &parent_path, &controllers)?;
            }
            rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)).map_err(
                |e| {
                    std::io::Error::new(
                        std::io::Error::from(e).kind(),
                        format!("making the cgroup {}/{name}: {e}", parent_path.display()),
                    )
                },
            )?;
            let dir = open_dir_beneath(&parent, &name)?;
            group.made.push(Made {
                parent,
                name: name.clone(),
                dir,
                path: parent_path.join(&name),
                controllers,
            });
        }
        group.write_limits(wanted)?;
        group.oom_at_start = group.oom_kills();
        Ok(Some(group))
    }

    /// On v2, the controllers must be enabled for the parent's children:
    /// written to its `cgroup.subtree_control` unless already there.
    fn enable_v2(
        &self,
        parent: &OwnedFd,
        path: &Path,
        controllers: &[Controller],
    ) -> std::io::Result<()> {
        let enabled = read_control(parent, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<&str> = controllers
            .iter()
            .map(|c| c.as_str())
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let line = missing
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let enable = || write_control(parent, "cgroup.subtree_control", &line);
        let enabled = match enable() {
            // cgroup v2 enables controllers for the children only of a
            // cgroup without processes of its own: the Lab moves itself
            // into a leaf beside its jobs (`lab-server`), then enables.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                match rustix::fs::mkdirat(parent, LAB_LEAF, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let leaf = open_dir_beneath(parent, LAB_LEAF)?;
                write_control(&leaf, "cgroup.procs", &std::process::id().to_string())?;
                enable()
            }
            other => other,
        };
        enabled.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "enabling {} for the children of {} (a cgroup that still holds other processes cannot; start the Lab in a cgroup of its own): {e}",
                    missing.join(", "),
                    path.display()
                ),
            )
        })
    }

    fn dir_for(&self, controller: Controller) -> Option<&Made> {
        self.made
            .iter()
            .find(|m| m.controllers.contains(&controller))
    }

    fn write_limits(&mut self, wanted: &Wanted) -> std::io::Result<()> {
        let mut applied = crate::record::AppliedLimits {
            version: if self.v2 { "v2" } else { "v1" }.to_owned(),
            ..crate::record::AppliedLimits::default()
        };
        let missing = |c: Controller| std::io::Error::other(format!("no {} cgroup", c.as_str()));
        if let Some(bytes) = wanted.memory_max {
            let made = self
                .dir_for(Controller::Memory)
                .ok_or_else(|| missing(Controller::Memory))?;
            let (limit, swap) = if self.v2 {
                ("memory.max", "memory.swap.max")
            } else {
                ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
            };
            write_control(&made.dir, limit, &bytes.to_string())?;
            // No swap beyond the limit, where the kernel accounts it.
            if exists_beneath(&made.dir, swap) {
                let value = if self.v2 {
                    "0".to_owned()
                } else {
                    bytes.to_string()
                };
                write_control(&made.dir, swap, &value)?;
            }
            let held: u64 = read_control(&made.dir, limit)?
                .trim()
                .parse()
                .map_err(|_| std::io::Error::other(format!("{limit} reads back as no number")))?;
            // The kernel rounds down to a page.
            if held > bytes || held + 65536 < bytes {
                return Err(std::io::Error::other(format!(
                    "{limit} holds {held} after writing {bytes}"
                )));
            }
            // v1: a parent's `oom_kill_disable` would freeze the job at
            // the limit instead of ending it.
            if !self.v2 && exists_beneath(&made.dir, "memory.oom_control") {
                write_control(&made.dir, "memory.oom_control", "0")?;
                let state = read_control(&made.dir, "memory.oom_control")?;
                if counter(&state, "oom_kill_disable") != 0 {
                    return Err(std::io::Error::other(
                        "memory.oom_control keeps the OOM killer disabled",
                    ));
                }
            }
            applied.memory_max = Some(held);
        }
        if let Some(count) = wanted.pids_max {
            let made = self
                .dir_for(Controller::Pids)
                .ok_or_else(|| missing(Controller::Pids))?;
            write_control(&made.dir, "pids.max", &count.to_string())?;
            let held = read_control(&made.dir, "pids.max")?;
            if held.trim() != count.to_string() {
                return Err(std::io::Error::other(format!(
                    "pids.max holds {} after writing {count}",
                    held.trim()
                )));
            }
            applied.pids_max = Some(count);
        }
        if let Some(cpus) = wanted.cpu_max {
            let made = self
                .dir_for(Controller::Cpu)
                .ok_or_else(|| missing(Controller::Cpu))?;
            // NOTE: cpus is validated finite and at least 0.01.
            let quota = ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000);
            if self.v2 {
                write_control(&made.dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
                let held = read_control(&made.dir, "cpu.max")?;
                if held.split_whitespace().next() != Some(quota.to_string().as_str()) {
                    return Err(std::io::Error::other(format!(
                        "cpu.max holds {} after writing {quota} {CPU_PERIOD_US}",
                        held.trim()
                    )));
                }
            } else {
                write_control(&made.dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                write_control(&made.dir, "cpu.cfs_quota_us", &quota.to_string())?;
                let held = read_control(&made.dir, "cpu.cfs_quota_us")?;
                if held.trim() != quota.to_string() {
                    return Err(std::io::Error::other(format!(
                        "cpu.cfs_quota_us holds {} after writing {quota}",
                        held.trim()
                    )));
                }
            }
            applied.cpu_max = Some(quota as f64 / CPU_PERIOD_US as f64);
        }
        self.applied = applied;
        Ok(())
    }

    /// The `cgroup.procs` files the sandbox helper writes its pid to.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.made
            .iter()
            .map(|m| m.path.join("cgroup.procs"))
            .collect()
    }

    /// The limits the kernel holds, as the isolation report shows them:
    /// `{"version", "memory_max", "pids_max", "cpu_max"}`.
    pub fn applied(&self) -> &crate::record::AppliedLimits {
        &self.applied
    }

    /// How many times the OOM killer has killed in the job's memory cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(made) = self.dir_for(Controller::Memory) else {
            return 0;
        };
        if self.v2 {
            read_control(&made.dir, "memory.events")
                .map(|t| counter(&t, "oom_kill"))
                .unwrap_or(0)
        } else {
            read_control(&made.dir, "memory.oom_control")
                .map(|t| counter(&t, "oom_kill"))
                .unwrap_or(0)
        }
    }

    /// Whether the OOM killer struck since the cgroup was made.
    pub fn oom_killed(&self) -> bool {
        self.oom_kills() > self.oom_at_start
    }

    /// Removes the job's cgroup(s): its processes are gone (the PID
    /// namespace went with its init), so each directory is empty but for
    /// the kernel's files; a few retries while the last exits are reaped.
    pub fn remove(mut self) {
        self.remove_all();
    }

    fn remove_all(&mut self) {
        for made in self.made.drain(..) {
            for attempt in 0..50 {
                match rustix::fs::unlinkat(&made.parent, made.name.as_str(), AtFlags::REMOVEDIR) {
                    Ok(()) => break,
                    Err(rustix::io::Errno::NOENT) => break,
                    // A fake cgroupfs (tests): the files written are real.
                    Err(rustix::io::Errno::NOTEMPTY) if !is_cgroupfs(&made.dir) => {
                        clear_fake(&made.dir);
                    }
                    Err(_) if attempt < 49 => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => {
                        tracing::warn!("removing the cgroup {}: {e}", made.path.display());
                    }
                }
            }
        }
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// Whether `dir` is on a cgroup filesystem (v1 or v2).
fn is_cgroupfs(dir: &OwnedFd) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    rustix::fs::fstatfs(dir).is_ok_and(|s| {
        #[allow(clippy::unnecessary_cast)] // the field is i64 on x86_64, not everywhere
        let kind = s.f_type as i64;
        kind == CGROUP_SUPER_MAGIC || kind == CGROUP2_SUPER_MAGIC
    })
}

/// Removes the regular files written into a fake cgroup (a test's temp
/// directory), beneath its handle, never following a link.
fn clear_fake(dir: &OwnedFd) {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let _ = rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_OWN: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/f1f0
2:cpuacct:/
1:cpu:/
0::/
";
    const V2_MOUNTINFO: &str = "\
25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_OWN: &str = "0::/system.slice/lab.service\n";
    /// A container with a cgroup namespace: the mount's root is the
    /// container's cgroup, and so is the path in /proc/self/cgroup.
    const V2_NESTED_MOUNTINFO: &str = "\
700 699 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
";
    const V2_NESTED_OWN: &str = "0::/docker/abc/lab\n";
    const MIXED_CPU_CPUACCT: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
    const MIXED_OWN: &str = "3:cpu,cpuacct:/user.slice\n4:memory:/user.slice\n";

    fn layout(mountinfo: &str, own: &str, v2: Option<&str>) -> Layout {
        parse_layout(mountinfo, own, |_| v2.map(|c| (c.to_owned(), false)))
    }

    const ALL: Wanted = Wanted {
        memory_max: Some(1 << 30),
        pids_max: Some(64),
        cpu_max: Some(0.5),
    };

    /// One case: the layout, root or not, what is wanted → the choice.
    fn check(layout: &Layout, root: bool, wanted: Wanted, expected: Result<Choice, &str>) {
        let got = choose(layout, root, &wanted);
        match (&got, &expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "{layout:?}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "{g:?} should say {e:?}"),
            _ => panic!("{got:?}, expected {expected:?} for {layout:?}"),
        }
    }

    #[test]
    fn mountinfo_and_own_cgroups_give_each_hierarchy_and_where_the_lab_is() {
        let v1 = layout(V1_MOUNTINFO, V1_OWN, Some(""));
        assert_eq!(
            v1.v2,
            Some(V2Hierarchy {
                dir: "/sys/fs/cgroup/unified".into(),
                controllers: vec![],
                delegated: false,
            })
        );
        let dirs: Vec<(String, PathBuf)> = v1
            .v1
            .iter()
            .map(|h| (h.controllers.join(","), h.dir.clone()))
            .collect();
        assert_eq!(
            dirs,
            vec![
                ("cpu".into(), "/sys/fs/cgroup/cpu".into()),
                ("cpuacct".into(), "/sys/fs/cgroup/cpuacct".into()),
                (
                    "memory".into(),
                    "/sys/fs/cgroup/memory/process_api/f1f0".into()
                ),
                ("pids".into(), "/sys/fs/cgroup/pids".into()),
            ]
        );
        let v2 = layout(V2_MOUNTINFO, V2_OWN, Some("cpuset cpu io memory pids\n"));
        assert_eq!(
            v2.v2,
            Some(V2Hierarchy {
                dir: "/sys/fs/cgroup/system.slice/lab.service".into(),
                controllers: ["cpuset", "cpu", "io", "memory", "pids"]
                    .map(String::from)
                    .to_vec(),
                delegated: false,
            })
        );
        assert!(v2.v1.is_empty());
        let nested = layout(V2_NESTED_MOUNTINFO, V2_NESTED_OWN, Some("memory pids cpu"));
        assert_eq!(nested.v2.unwrap().dir, PathBuf::from("/sys/fs/cgroup/lab"));
        // A cgroup outside what is mounted, or a path that is not plain, is
        // no place for the Lab's jobs.
        assert_eq!(
            layout(V2_NESTED_MOUNTINFO, "0::/docker/abcd\n", Some("memory")).v2,
            None
        );
        assert_eq!(
            layout(V2_MOUNTINFO, "0::/a/../b\n", Some("memory")).v2,
            None
        );
        let mixed = layout(MIXED_CPU_CPUACCT, MIXED_OWN, None);
        assert_eq!(mixed.v1[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            mixed.v1[0].dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/user.slice")
        );
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(layout("garbage\n\n - \n", "x", None), Layout::default());
    }

    #[test]
    fn the_choice_follows_what_the_machine_offers() {
        let v1 = layout(V1_MOUNTINFO, V1_OWN, Some(""));
        let v2 = layout(V2_MOUNTINFO, V2_OWN, Some("cpuset cpu io memory pids"));
        let v2_no_pids = layout(V2_MOUNTINFO, V2_OWN, Some("cpu memory"));
        let nothing = Layout::default();
        let memory_only = Wanted {
            memory_max: Some(1 << 30),
            ..Wanted::default()
        };
        // Nothing wanted: no cgroup, whatever the machine.
        check(&nothing, false, Wanted::default(), Ok(Choice::Nothing));
        // This build machine: v1 controllers, an empty v2 hierarchy.
        check(
            &v1,
            true,
            ALL,
            Ok(Choice::V1 {
                parents: vec![
                    (
                        Controller::Memory,
                        "/sys/fs/cgroup/memory/process_api/f1f0".into(),
                    ),
                    (Controller::Pids, "/sys/fs/cgroup/pids".into()),
                    (Controller::Cpu, "/sys/fs/cgroup/cpu".into()),
                ],
            }),
        );
        check(&v1, false, memory_only, Err("on cgroup v1 need root"));
        // A v2-only machine.
        check(
            &v2,
            true,
            ALL,
            Ok(Choice::V2 {
                parent: "/sys/fs/cgroup/system.slice/lab.service".into(),
                controllers: vec![Controller::Memory, Controller::Pids, Controller::Cpu],
            }),
        );
        check(
            &v2,
            false,
            ALL,
            Err("systemd-run --user --scope -p Delegate=yes"),
        );
        // A user's Lab in a delegated scope (systemd-run --user --scope -p
        // Delegate=yes): its own cgroup.
        let mut delegated = v2.clone();
        if let Some(h) = delegated.v2.as_mut() {
            h.delegated = true;
            h.dir = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope".into();
        }
        check(
            &delegated,
            false,
            ALL,
            Ok(Choice::V2 {
                parent: "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope".into(),
                controllers: vec![Controller::Memory, Controller::Pids, Controller::Cpu],
            }),
        );
        // v2 without a controller, and no v1 to fall back on.
        check(&v2_no_pids, true, ALL, Err("no cgroup controller for pids"));
        check(
            &v2_no_pids,
            true,
            memory_only,
            Ok(Choice::V2 {
                parent: "/sys/fs/cgroup/system.slice/lab.service".into(),
                controllers: vec![Controller::Memory],
            }),
        );
        check(
            &nothing,
            true,
            ALL,
            Err("no cgroup controller for memory, pids, cpu"),
        );
    }

    #[test]
    fn limits_are_validated() {
        assert!(ALL.validate().is_ok());
        for bad in [
            Wanted {
                memory_max: Some(4096),
                ..Wanted::default()
            },
            Wanted {
                pids_max: Some(0),
                ..Wanted::default()
            },
            Wanted {
                cpu_max: Some(0.0),
                ..Wanted::default()
            },
            Wanted {
                cpu_max: Some(f64::NAN),
                ..Wanted::default()
            },
            Wanted {
                cpu_max: Some(-1.0),
                ..Wanted::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    /// A fake cgroupfs in a temp dir: the writer's files and what it read
    /// back, for each layout.
    #[test]
    fn the_writer_makes_the_job_cgroup_beneath_its_parent_writes_reads_back_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let v2_parent = tmp.path().join("v2/lab.service");
        std::fs::create_dir_all(&v2_parent).unwrap();
        std::fs::write(v2_parent.join("cgroup.subtree_control"), "").unwrap();
        let choice = Choice::V2 {
            parent: v2_parent.clone(),
            controllers: vec![Controller::Memory, Controller::Pids, Controller::Cpu],
        };
        let group = JobCgroup::create_in(&choice, "abc-1", &ALL, false)
            .unwrap()
            .unwrap();
        let job = v2_parent.join("lab-job-abc-1");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(
            read(&v2_parent.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(read(&job.join("memory.max")), (1u64 << 30).to_string());
        assert_eq!(read(&job.join("pids.max")), "64");
        assert_eq!(read(&job.join("cpu.max")), "50000 100000");
        assert_eq!(group.procs_files(), vec![job.join("cgroup.procs")]);
        assert_eq!(
            serde_json::to_value(group.applied()).unwrap(),
            serde_json::json!({"version": "v2", "memory_max": 1u64 << 30, "pids_max": 64, "cpu_max": 0.5})
        );
        assert!(!group.oom_killed());
        std::fs::write(
            job.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(group.oom_killed());
        group.remove();
        assert!(!job.exists(), "removed");

        // v1: one directory per hierarchy; the swap knob only where it is.
        let memory = tmp.path().join("v1/memory/lab");
        let pids = tmp.path().join("v1/pids");
        let cpu = tmp.path().join("v1/cpu");
        for d in [&memory, &pids, &cpu] {
            std::fs::create_dir_all(d).unwrap();
        }
        let choice = Choice::V1 {
            parents: vec![
                (Controller::Memory, memory.clone()),
                (Controller::Pids, pids.clone()),
                (Controller::Cpu, cpu.clone()),
            ],
        };
        let group = JobCgroup::create_in(&choice, "j2", &ALL, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            read(&memory.join("lab-job-j2/memory.limit_in_bytes")),
            (1u64 << 30).to_string()
        );
        assert!(
            !memory
                .join("lab-job-j2/memory.memsw.limit_in_bytes")
                .exists()
        );
        assert_eq!(read(&pids.join("lab-job-j2/pids.max")), "64");
        assert_eq!(read(&cpu.join("lab-job-j2/cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("lab-job-j2/cpu.cfs_period_us")), "100000");
        assert_eq!(group.procs_files().len(), 3);
        std::fs::write(
            memory.join("lab-job-j2/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert!(group.oom_killed());
        drop(group);
        for d in [&memory, &pids, &cpu] {
            assert!(!d.join("lab-job-j2").exists());
        }
    }

    #[test]
    fn the_writer_refuses_links_bad_names_and_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        std::fs::write(&canary, "canary").unwrap();
        let parent = tmp.path().join("v1/pids");
        std::fs::create_dir_all(&parent).unwrap();
        let choice = Choice::V1 {
            parents: vec![(Controller::Pids, parent.clone())],
        };
        let pids = Wanted {
            pids_max: Some(10),
            ..Wanted::default()
        };
        // A job id that is not a plain name.
        for bad in ["", "../x", "a/b", "a b"] {
            assert!(
                JobCgroup::create_in(&choice, bad, &pids, false).is_err(),
                "{bad:?}"
            );
        }
        // A leftover of the same name (never reused): refused, untouched.
        std::fs::create_dir(parent.join("lab-job-taken")).unwrap();
        assert!(JobCgroup::create_in(&choice, "taken", &pids, false).is_err());
        // A link planted where the job's cgroup goes: refused, and the
        // canary it points at is never written.
        std::os::unix::fs::symlink(tmp.path(), parent.join("lab-job-linked")).unwrap();
        assert!(JobCgroup::create_in(&choice, "linked", &pids, false).is_err());
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary");
        assert!(!tmp.path().join("pids.max").exists());
        // A parent that does not exist.
        let gone = Choice::V1 {
            parents: vec![(Controller::Pids, tmp.path().join("nowhere"))],
        };
        let e = JobCgroup::create_in(&gone, "j", &pids, false).unwrap_err();
        assert!(e.to_string().contains("nowhere"), "{e}");
        // A parent that is not a cgroup filesystem, for real.
        let e = JobCgroup::create(&choice, "real", &pids).unwrap_err();
        assert!(e.to_string().contains("not on a cgroup filesystem"), "{e}");
        // Nothing chosen: no cgroup.
        assert!(
            JobCgroup::create_in(&Choice::Nothing, "j", &pids, false)
                .unwrap()
                .is_none()
        );
    }
}
