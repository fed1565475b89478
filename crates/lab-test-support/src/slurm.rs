//! A real single-node Slurm cluster for tests: `munged`, `slurmctld` and
//! `slurmd` from the machine's packages (Debian's `slurm-wlm`,
//! `slurm-client` and `munge`), on loopback ports, with every key, socket,
//! configuration, state, spool, pid and log file under a scratch directory.
//!
//! Every Slurm command, daemon or client, gets `SLURM_CONF=<scratch>/slurm.conf`
//! ([`Cluster::env`]) and the daemons also `-f` it, so nothing reads
//! `/etc/slurm`; clients find munge through the configuration's
//! `AuthInfo=socket=…`, so nothing touches `/run/munge` either. Without the
//! tools a start fails saying which package to install (`cargo xtask deps`
//! installs them).
//!
//! ```no_run
//! # use lab_test_support::slurm::Cluster;
//! let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
//! let cluster = Cluster::start(scratch.path());
//! let out = cluster.client("squeue").output().unwrap();
//! assert!(out.status.success());
//! ```
//!
//! Jobs run under `proctrack/linuxproc` as children of a `slurmstepd` that
//! `slurmd` has let go of; [`Cluster::stop`] cancels every job, then kills
//! the daemons by process group and any `slurmstepd` of this cluster (found
//! by the `SLURM_CONF` in its environment) with its whole session.

use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one client command (`sinfo`, `scontrol`, `scancel`) may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a daemon has to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The one partition.
const PARTITION: &str = "lab";

/// The tools the harness runs, and the Debian package of each (xtask's
/// `TEST_TOOLS` names the same).
pub const TOOLS: &[(&str, &str)] = &[
    ("munged", "munge"),
    ("mungekey", "munge"),
    ("slurmctld", "slurm-wlm"),
    ("slurmd", "slurm-wlm"),
    ("sbatch", "slurm-client"),
    ("squeue", "slurm-client"),
    ("sinfo", "slurm-client"),
    ("scontrol", "slurm-client"),
    ("scancel", "slurm-client"),
];

/// The absolute path of a Slurm or munge tool (searched on `PATH`, then in
/// `/usr/sbin`, `/usr/bin`, `/sbin`, `/bin`); panics naming its package
/// when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    match found {
        Some(path) => path,
        None => {
            let package = TOOLS
                .iter()
                .find(|(tool, _)| *tool == name)
                .map_or("its package", |(_, package)| package);
            panic!(
                "`{name}` is not installed: the Slurm tests need a real Slurm and munge; install \
                 {package} (`cargo xtask deps` installs every test tool, or `apt-get install -y \
                 slurm-wlm slurm-client munge`)"
            )
        }
    }
}

/// Runs `command` with its output captured, killing it (and answering
/// `Err`) if it has not exited within `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    // Both pipes are drained while the command runs, so a long answer
    // (`squeue --json`) cannot stall it.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{command:?} did not exit within {limit:?}"));
            }
            Err(e) => return Err(format!("waiting for {command:?}: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// A running single-node cluster, stopped when dropped.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    node: String,
    ports: (u16, u16),
    munged: Option<Child>,
    slurmctld: Option<Child>,
    slurmd: Option<Child>,
}

/// This host's short name, as `hostname -s` says and `slurmd` looks itself
/// up by.
fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_else(|e| panic!("reading the hostname: {e}"));
    let name = name.trim();
    name.split('.').next().unwrap_or(name).to_owned()
}

/// A bit less than the memory available now, in MB (`slurmd` drains a node
/// that has less than its configured `RealMemory`).
fn real_memory_mb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_else(|e| panic!("reading /proc/meminfo: {e}"));
    let kb: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no MemAvailable in /proc/meminfo"));
    (kb / 1024 * 9 / 10).max(64)
}

/// Two free loopback ports, both bound at once so they differ.
fn free_ports() -> (u16, u16) {
    let bind = || {
        TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding a loopback port: {e}"))
    };
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| {
        l.local_addr()
            .unwrap_or_else(|e| panic!("a bound address: {e}"))
            .port()
    };
    (port(&a), port(&b))
}

/// The last lines of a log in the scratch dir, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(20);
    format!("--- {} ---\n{}", path.display(), lines[from..].join("\n"))
}

/// Sends `signal` (`-TERM`, `-KILL`) to the process group `pgid`.
fn signal_group(signal: &str, pgid: u32) {
    #[allow(clippy::disallowed_methods)] // the harness stops the daemons it started
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops a daemon started in its own process group: SIGTERM to the group,
/// SIGKILL if the leader has not exited in time, then SIGKILL to whatever
/// is left of the group (`slurmctld`'s `slurmscriptd`), and reaps it.
fn stop_daemon(child: Option<Child>) {
    let Some(mut child) = child else { return };
    let pgid = child.id();
    signal_group("-TERM", pgid);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group("-KILL", pgid);
    let _ = child.kill();
    let _ = child.wait();
}

/// `(pid, session)` of every process whose `/proc/PID/stat` can be read.
fn processes() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command's `)`: state, ppid, pgrp, session.
            let rest = &stat[stat.rfind(')')? + 1..];
            let session = rest.split_whitespace().nth(3)?.parse().ok()?;
            Some((pid, session))
        })
        .collect()
}

impl Cluster {
    /// Makes a munge key and a `slurm.conf` under `scratch`, starts
    /// `munged`, `slurmctld` and `slurmd` there, and waits (up to 60 s)
    /// until the controller answers and the node is `idle`.
    pub fn start(scratch: &Path) -> Cluster {
        // Every tool first, so a missing one fails before anything starts.
        for (name, _) in TOOLS {
            tool(name);
        }
        let dir = scratch.to_path_buf();
        for sub in ["state", "spool", "home", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("making the scratch tree: {e}"));
        }
        let key = dir.join("munge.key");
        #[allow(clippy::disallowed_methods)] // the harness makes its own munge key
        let made = output_within(
            Command::new(tool("mungekey"))
                .arg("--create")
                .arg(format!("--keyfile={}", key.display()))
                .env_clear()
                .current_dir(&dir),
            CLIENT_TIMEOUT,
        );
        match made {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "mungekey failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(why) => panic!("mungekey: {why}"),
        }
        let node = short_hostname();
        let ports = free_ports();
        let conf = dir.join("slurm.conf");
        std::fs::write(&conf, Self::configuration(&dir, &node, ports))
            .unwrap_or_else(|e| panic!("writing slurm.conf: {e}"));
        let mut cluster = Cluster {
            dir,
            conf,
            node,
            ports,
            munged: None,
            slurmctld: None,
            slurmd: None,
        };
        cluster.start_munge();
        let conf = cluster.conf.clone();
        cluster.slurmctld = Some(cluster.daemon(
            "slurmctld",
            &["-D".as_ref(), "-f".as_ref(), conf.as_os_str()],
        ));
        cluster.slurmd =
            Some(cluster.daemon("slurmd", &["-D".as_ref(), "-f".as_ref(), conf.as_os_str()]));
        cluster.wait_idle();
        cluster
    }

    /// The `slurm.conf` of a cluster under `dir` whose one node is `node`.
    fn configuration(dir: &Path, node: &str, (ctld_port, slurmd_port): (u16, u16)) -> String {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory = real_memory_mb();
        let d = dir.display();
        format!(
            "\
# A single-node test cluster (lab_test_support::slurm): loopback only,
# everything under {d}.
ClusterName=labtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={d}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=100
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
KillWait=2
MinJobAge=600
OverTimeLimit=0
ReturnToService=2
MpiDefault=none
# Loopback only: without these slurmctld and slurmd listen on 0.0.0.0;
# with them slurmctld binds SlurmctldHost's address and slurmd its NodeAddr.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"
        )
    }

    /// Starts one daemon in its own process group, output to
    /// `<scratch>/NAME.out`, with only the environment it needs.
    fn daemon(&self, name: &str, args: &[&std::ffi::OsStr]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.out")))
            .unwrap_or_else(|e| panic!("opening {name}.out: {e}"));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning the log handle: {e}"));
        #[allow(clippy::disallowed_methods)] // the harness starts a real Slurm
        let mut command = Command::new(tool(name));
        command
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env())
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.join("home"))
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group: a Ctrl-C to the tests is not its to
            // handle, and stop kills the group (slurmctld's slurmscriptd).
            .process_group(0);
        command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
    }

    /// Polls `sinfo` until the node is `idle`; panics with the daemons'
    /// logs if it is not within 60 s or a daemon exits.
    fn wait_idle(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = [
                ("munged", &mut self.munged),
                ("slurmctld", &mut self.slurmctld),
                ("slurmd", &mut self.slurmd),
            ]
            .into_iter()
            .find_map(|(name, child)| match child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(format!("{name} exited ({status}) while starting")),
                _ => None,
            });
            if let Some(why) = exited {
                self.fail_start(&why);
            }
            let mut sinfo = self.client("sinfo");
            sinfo.args(["--noheader", "--Node", "--format=%T", "--nodes", &self.node]);
            let last = match output_within(&mut sinfo, CLIENT_TIMEOUT) {
                Ok(out) if out.status.success() => {
                    String::from_utf8_lossy(&out.stdout).trim().to_owned()
                }
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(why) => why,
            };
            if last == "idle" {
                return;
            }
            if Instant::now() > deadline {
                let why = format!("the node is not idle after {START_TIMEOUT:?}; sinfo: {last}");
                self.fail_start(&why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn fail_start(&mut self, why: &str) -> ! {
        let logs = ["munged.out", "slurmctld.out", "slurmd.out"]
            .map(|name| tail(&self.dir.join(name)))
            .join("\n");
        self.stop();
        panic!("the Slurm test cluster did not start: {why}\n{logs}");
    }

    /// `<scratch>/slurm.conf`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// What a Slurm command needs in its environment: `SLURM_CONF` (the
    /// client reads the munge socket from the configuration's `AuthInfo`,
    /// so no munge variable). Clear the rest: a `SLURM_*` variable of the
    /// caller's own would override the cluster's.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SLURM_CONF".to_owned(), self.conf.display().to_string())]
    }

    /// The one partition, `lab` (the default).
    pub fn partition(&self) -> &str {
        PARTITION
    }

    /// The one node's name (this host's short name).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `(SlurmctldPort, SlurmdPort)`, both on 127.0.0.1.
    pub fn ports(&self) -> (u16, u16) {
        self.ports
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client command (`sbatch`, `squeue`, …) by absolute path, with a
    /// cleared environment but for [`Cluster::env`], `PATH`, and `HOME`
    /// and `TMPDIR` in the scratch dir, run there; stdin is null.
    pub fn client(&self, name: &str) -> Command {
        #[allow(clippy::disallowed_methods)] // the harness drives Slurm's clients
        let mut command = Command::new(tool(name));
        command
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env())
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.join("home"))
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null());
        command
    }

    /// Runs a client with the harness's timeout; panics unless it succeeds.
    fn run_client(&self, name: &str, args: &[&str]) -> String {
        let mut command = self.client(name);
        command.args(args);
        match output_within(&mut command, CLIENT_TIMEOUT) {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            Ok(out) => panic!(
                "{name} {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(why) => panic!("{why}"),
        }
    }

    /// Sets the partition `UP` or `DOWN` (`scontrol update`).
    pub fn set_partition_state(&self, up: bool) {
        let state = if up { "State=UP" } else { "State=DOWN" };
        self.run_client(
            "scontrol",
            &["update", &format!("PartitionName={PARTITION}"), state],
        );
    }

    /// Stops `munged` (SIGTERM: it removes its socket), so every Slurm
    /// command fails to authenticate until [`Cluster::start_munge`].
    pub fn stop_munge(&mut self) {
        stop_daemon(self.munged.take());
    }

    /// Starts `munged` (again) on the cluster's key and socket and waits
    /// until its socket is there.
    pub fn start_munge(&mut self) {
        if self.munged.is_some() {
            return;
        }
        let d = &self.dir;
        let args = [
            "--foreground".to_owned(),
            "--force".to_owned(),
            format!("--socket={}", d.join("munge.socket").display()),
            format!("--key-file={}", d.join("munge.key").display()),
            format!("--pid-file={}", d.join("munged.pid").display()),
            format!("--log-file={}", d.join("munged.log").display()),
            format!("--seed-file={}", d.join("munged.seed").display()),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let mut munged = self.daemon("munged", &args);
        let socket = self.dir.join("munge.socket");
        let deadline = Instant::now() + START_TIMEOUT;
        while !socket.exists() {
            if let Ok(Some(status)) = munged.try_wait() {
                panic!(
                    "munged exited ({status}) while starting\n{}",
                    tail(&self.dir.join("munged.out"))
                );
            }
            assert!(
                Instant::now() < deadline,
                "munged made no socket within {START_TIMEOUT:?}\n{}",
                tail(&self.dir.join("munged.out"))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.munged = Some(munged);
    }

    /// The pids of this cluster's `slurmstepd`s: those whose environment
    /// holds this cluster's `SLURM_CONF` (they inherit `slurmd`'s).
    pub fn steps(&self) -> Vec<u32> {
        let wanted = format!("SLURM_CONF={}", self.conf.display());
        processes()
            .into_iter()
            .map(|(pid, _)| pid)
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "slurmstepd")
                    && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                        environ
                            .split(|b| *b == 0)
                            .any(|var| var == wanted.as_bytes())
                    })
            })
            .collect()
    }

    /// Kills each of this cluster's `slurmstepd`s with every process of
    /// its session (the job's processes), by pid.
    fn kill_steps(&self) {
        let steps = self.steps();
        if steps.is_empty() {
            return;
        }
        let all = processes();
        let sessions: Vec<u32> = all
            .iter()
            .filter(|(pid, _)| steps.contains(pid))
            .map(|(_, session)| *session)
            .collect();
        let own = std::process::id();
        let mut victims: Vec<String> = all
            .iter()
            .filter(|(pid, session)| *pid != own && sessions.contains(session))
            .map(|(pid, _)| pid.to_string())
            .collect();
        victims.extend(steps.iter().map(u32::to_string));
        victims.sort_unstable();
        victims.dedup();
        #[allow(clippy::disallowed_methods)] // the harness kills the job steps it caused
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&victims)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Cancels every job (while munge and the controller are up), stops
    /// the daemons by process group, kills any `slurmstepd` left with its
    /// job, and reaps them all. Removes nothing: the scratch dir is the
    /// caller's.
    pub fn stop(&mut self) {
        if self.munged.is_some() && self.slurmctld.is_some() {
            let mut scancel = self.client("scancel");
            scancel.args(["--user=root", "--full"]);
            if output_within(&mut scancel, CLIENT_TIMEOUT).is_ok() {
                // KillWait=2: a cancelled step is gone within a few seconds.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !self.steps().is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        stop_daemon(self.slurmd.take());
        stop_daemon(self.slurmctld.take());
        self.kill_steps();
        stop_daemon(self.munged.take());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
