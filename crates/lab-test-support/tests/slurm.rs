//! The Slurm harness runs real jobs: a batch script's exit code and output,
//! a down partition that holds a job, a cancel, and munge going away.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lab_test_support::slurm::{self, Cluster};

/// How long a short job may take to run on a busy 2-core machine.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// A job's state and reason, as `squeue --json` says (Slurm 22.05's
/// OpenAPI v0.0.38: `job_state` a string; later versions a list).
fn job(cluster: &Cluster, id: &str) -> (String, String) {
    let mut squeue = cluster.client("squeue");
    squeue.args(["--json", "--states=all", "--jobs", id]);
    let out = slurm::output_within(&mut squeue, Duration::from_secs(20)).unwrap();
    assert!(
        out.status.success(),
        "squeue --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = answer["jobs"]
        .as_array()
        .and_then(|jobs| {
            jobs.iter()
                .find(|j| j["job_id"].as_u64().is_some_and(|n| n.to_string() == id))
        })
        .unwrap_or_else(|| panic!("job {id} not in squeue's answer: {answer}"));
    let state = match &job["job_state"] {
        serde_json::Value::Array(states) => states[0].as_str().unwrap().to_owned(),
        state => state.as_str().unwrap().to_owned(),
    };
    (state, job["state_reason"].as_str().unwrap_or("").to_owned())
}

/// Polls until the job is in one of `states`; returns it.
fn wait_for(cluster: &Cluster, id: &str, states: &[&str]) -> String {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let (state, reason) = job(cluster, id);
        if states.contains(&state.as_str()) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {state} ({reason}) after {JOB_TIMEOUT:?}, not one of {states:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The local addresses listening on `port`, from `/proc/net/tcp` and
/// `tcp6` (an IPv4 address in the kernel's little-endian hex).
fn listeners(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl, local_address, rem_address, st (0A: LISTEN)
            let (Some(local), Some("0A")) = (fields.get(1), fields.get(3).copied()) else {
                continue;
            };
            let (addr, hex_port) = local.split_once(':').unwrap();
            if u16::from_str_radix(hex_port, 16).unwrap() != port {
                continue;
            }
            found.push(if addr.len() == 8 {
                let n = u32::from_str_radix(addr, 16).unwrap();
                std::net::Ipv4Addr::from(n.swap_bytes()).to_string()
            } else {
                format!("ipv6 {addr}")
            });
        }
    }
    found
}

/// Writes an executable batch script into the scratch dir.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `sbatch --parsable` by absolute path with only the cluster's
/// environment (and PATH, HOME, TMPDIR for the job); returns the job id.
fn submit(cluster: &Cluster, script: &Path) -> String {
    let dir = cluster.dir();
    #[allow(clippy::disallowed_methods)] // the test submits to a real Slurm
    let mut sbatch = Command::new(slurm::tool("sbatch"));
    sbatch
        .env_clear()
        .envs(cluster.env())
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .current_dir(dir)
        .arg("--parsable")
        .arg(format!("--output={}/out-%j.log", dir.display()))
        .arg(format!("--chdir={}", dir.display()))
        .arg(format!("--partition={}", cluster.partition()))
        .arg("--time=1")
        .arg(script);
    let out = slurm::output_within(&mut sbatch, Duration::from_secs(20)).unwrap();
    assert!(
        out.status.success(),
        "sbatch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = String::from_utf8(out.stdout).unwrap();
    // `--parsable` prints `ID` or `ID;CLUSTER`.
    let id = answer.trim().split(';').next().unwrap().to_owned();
    assert!(id.parse::<u32>().is_ok(), "not a job id: {answer:?}");
    id
}

fn scontrol_job(cluster: &Cluster, id: &str) -> String {
    let mut scontrol = cluster.client("scontrol");
    scontrol.args(["show", "job", "-o", id]);
    let out = slurm::output_within(&mut scontrol, Duration::from_secs(20)).unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn squeue_within_10s(cluster: &Cluster) -> Result<std::process::Output, String> {
    let mut squeue = cluster.client("squeue");
    slurm::output_within(&mut squeue, Duration::from_secs(10))
}

#[test]
fn a_real_cluster_runs_holds_cancels_and_needs_munge() {
    let scratch = tempfile::Builder::new()
        .prefix("lab-slurm-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = scratch.path();
    let started = Instant::now();
    let mut cluster = Cluster::start(dir);
    let start_took = started.elapsed();
    assert!(cluster.conf().starts_with(dir));
    assert_eq!(cluster.partition(), "lab");
    let (ctld_port, slurmd_port) = cluster.ports();
    for port in [ctld_port, slurmd_port] {
        assert_eq!(
            listeners(port),
            ["127.0.0.1"],
            "port {port} is not loopback alone"
        );
    }

    // A batch job's output and exit code.
    let hello = script(
        dir,
        "hello.sh",
        "#!/bin/sh\necho hello-$SLURM_JOB_ID\nexit 3\n",
    );
    let id = submit(&cluster, &hello);
    assert_eq!(wait_for(&cluster, &id, &["COMPLETED", "FAILED"]), "FAILED");
    let shown = scontrol_job(&cluster, &id);
    assert!(shown.contains(" ExitCode=3:0 "), "{shown}");
    let output = std::fs::read_to_string(dir.join(format!("out-{id}.log"))).unwrap();
    assert_eq!(output, format!("hello-{id}\n"));

    // A down partition holds a job, with its reason; up again, it runs.
    cluster.set_partition_state(false);
    let ran = script(dir, "ran.sh", "#!/bin/sh\necho ran-$SLURM_JOB_ID\n");
    let held = submit(&cluster, &ran);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (state, reason) = job(&cluster, &held);
        assert_eq!(state, "PENDING", "a job ran in a down partition");
        if reason == "PartitionDown" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pending for {reason:?}, not PartitionDown"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.set_partition_state(true);
    assert_eq!(
        wait_for(&cluster, &held, &["COMPLETED", "FAILED"]),
        "COMPLETED"
    );
    let output = std::fs::read_to_string(dir.join(format!("out-{held}.log"))).unwrap();
    assert_eq!(output, format!("ran-{held}\n"));

    // A cancelled job ends CANCELLED, its step gone.
    let sleeper = script(dir, "sleep.sh", "#!/bin/sh\nsleep 60\n");
    let long = submit(&cluster, &sleeper);
    wait_for(&cluster, &long, &["RUNNING"]);
    assert!(
        !cluster.steps().is_empty(),
        "no slurmstepd for a running job"
    );
    let mut scancel = cluster.client("scancel");
    scancel.arg(&long);
    let out = slurm::output_within(&mut scancel, Duration::from_secs(20)).unwrap();
    assert!(out.status.success());
    assert_eq!(wait_for(&cluster, &long, &["CANCELLED"]), "CANCELLED");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.steps().is_empty() {
        assert!(Instant::now() < deadline, "a cancelled job's step lives on");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Without munge every command fails, quickly; with it back, they work.
    cluster.stop_munge();
    let out = squeue_within_10s(&cluster).expect("squeue hung without munge");
    assert!(!out.status.success(), "squeue worked without munge");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("authentication"), "{stderr}");
    cluster.start_munge();
    let out = squeue_within_10s(&cluster).expect("squeue hung after munge came back");
    assert!(
        out.status.success(),
        "squeue failed with munge back: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stopping leaves no step and no daemon of this cluster behind.
    let sleeper = submit(&cluster, &sleeper);
    wait_for(&cluster, &sleeper, &["RUNNING"]);
    let pids: Vec<String> = ["munged.pid", "slurmctld.pid", "slurmd.pid"]
        .iter()
        .map(|name| {
            std::fs::read_to_string(dir.join(name))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    cluster.stop();
    assert!(cluster.steps().is_empty(), "a slurmstepd outlived stop");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "daemon {pid} outlived stop"
        );
    }
    // The harness's figures, for whoever reads the test's output.
    eprintln!(
        "slurm: start took {start_took:?}, the whole test {:?}",
        started.elapsed()
    );
}
