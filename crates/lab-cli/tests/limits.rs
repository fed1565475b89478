//! Job limits through a cgroup per job, end to end on this machine (which
//! mounts cgroup v1 controllers; these tests run as root): `[runner]
//! memory_max` ends a job `oom` while the Lab stays up, `pids_max` stops a
//! fork loop, `cpu_max` slows a busy loop, the job cannot raise its own
//! limits, the cgroup is gone afterwards, limits that cannot be applied
//! refuse the job, and the network without pasta refuses it too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use lab_test_support::http::Request;

/// The uid and gid an unprivileged Lab runs as (Debian's `nobody`).
const NOBODY: u32 = 65534;

type Env = common::JobEnv;

fn env_with(extra: &str) -> Env {
    common::JobEnv::new(&format!("programs = [\"python3\"]\n{extra}"))
}

/// `lab run --verbose FLAGS -- python3 -c SCRIPT` in the project.
trait RunPython {
    fn python(&self, flags: &[&str], script: &str) -> Output;
}

impl RunPython for Env {
    fn python(&self, flags: &[&str], script: &str) -> Output {
        self.lab()
            .args(["run", "--verbose"])
            .args(flags)
            .args(["--", "python3", "-c", script])
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The directories of this process's own cgroups in each v1 hierarchy it
/// is in (where the Lab, its child, makes its jobs' cgroups).
fn own_cgroup_dirs() -> Vec<PathBuf> {
    let layout = lab_core::runner::cgroup::read_layout();
    layout.v1.iter().map(|h| h.dir.clone()).collect()
}

/// What is left of the cgroups of the jobs whose runs are in `data`
/// (`lab-job-<run id>` in each hierarchy); other tests' jobs may run
/// meanwhile.
fn leftover_job_cgroups(data: &std::path::Path) -> Vec<PathBuf> {
    let runs: Vec<String> = std::fs::read_dir(data.join("runs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(!runs.is_empty(), "no job ran");
    own_cgroup_dirs()
        .iter()
        .flat_map(|d| runs.iter().map(move |r| d.join(format!("lab-job-{r}"))))
        .filter(|p| p.exists())
        .collect()
}

const HOG: &str = "x = []\nfor i in range(400):\n    x.append(bytearray(8 << 20))\n    print('allocated', (i + 1) * 8, 'MiB', flush=True)\nprint('never bound', flush=True)\n";

#[test]
fn a_job_past_memory_max_ends_oom_and_lab_run_says_so() {
    let e = env_with("memory_max = 67108864");
    let out = e.python(&[], HOG);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(stderr.contains(" oom (the OOM killer"), "{stderr}");
    assert!(!text(&out.stdout).contains("never bound"));
    // The isolation report says which limits held, as the kernel holds them.
    assert!(
        stderr.contains("\"limits\":{\"version\":\"v1\",\"memory_max\":67108864}"),
        "{stderr}"
    );
    let dirs: Vec<PathBuf> = std::fs::read_dir(e.base.join("data/runs"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("provenance.json")).unwrap()).unwrap();
    assert_eq!(provenance["exit"], json!({"oom": true}));
    assert_eq!(provenance["isolation"]["limits"]["memory_max"], 67108864);
    // Under the limit, the same job runs.
    let fine = e.python(&[], "x = bytearray(16 << 20); print('fine')");
    assert!(fine.status.success(), "{}", text(&fine.stderr));
    assert!(leftover_job_cgroups(&e.base.join("data")).is_empty());
}

/// A job's own resources on this machine: `--mem-mb` and `--cpus` become
/// its cgroup limits, each at most the `[runner]` value (more is refused,
/// naming the limit, exit 2), and `--gpus` is refused (no GPU scheduling
/// here).
#[test]
fn a_jobs_own_resources_bind_it_within_the_configured_limits() {
    let e = env_with("memory_max = 1073741824\ncpu_max = 2.0");
    for (flags, says) in [
        (&["--mem-mb", "2048"][..], "memory_max"),
        (&["--cpus", "3"], "cpu_max"),
        (&["--gpus", "1"], "gpus"),
    ] {
        let out = e.python(flags, "print('ran')");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains("lab: refused: resources: "), "{stderr}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert!(!text(&out.stdout).contains("ran"));
    }
    // 64 MiB asked for binds it: the hog ends oom, under its own limit.
    let out = e.python(&["--mem-mb", "64", "--cpus", "1"], HOG);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(stderr.contains(" oom (the OOM killer"), "{stderr}");
    assert!(
        stderr.contains("\"memory_max\":67108864") && stderr.contains("\"cpu_max\":1"),
        "{stderr}"
    );
    let fine = e.python(
        &["--mem-mb", "64"],
        "x = bytearray(16 << 20); print('fine')",
    );
    assert!(fine.status.success(), "{}", text(&fine.stderr));
    assert!(leftover_job_cgroups(&e.base.join("data")).is_empty());
}

/// Memory charged by a tiny process (tmpfs pages in `/dev/shm`) would make
/// the sandbox helper the largest process in the job's cgroup: the job's
/// own processes are the OOM killer's first choice, and whatever it kills
/// the job ends `oom`, never `refused` (it ran).
#[test]
fn memory_charged_to_tmpfs_ends_oom_not_refused() {
    let e = env_with("memory_max = 67108864");
    let script = "import os\nprint('started', flush=True)\nos.execv('/bin/dd', ['dd', 'if=/dev/zero', 'of=/dev/shm/f', 'bs=64k'])\n";
    let out = e.python(&[], script);
    let stderr = text(&out.stderr);
    assert!(text(&out.stdout).contains("started"));
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(stderr.contains(" oom (the OOM killer"), "{stderr}");
}

#[test]
fn a_fork_loop_stops_at_pids_max_and_the_job_cannot_raise_its_limits() {
    let e = env_with("pids_max = 16");
    let script = "import os, time\nn = 0\ntry:\n    for i in range(500):\n        if os.fork() == 0:\n            time.sleep(3)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('refused', e.errno, flush=True)\nprint('children', n, flush=True)\n";
    let out = e.python(&[], script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let children: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("children "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(stdout.contains("refused 11"), "{stdout}");
    assert!(children < 16, "{children} children under pids_max = 16");
    // The job finds its cgroup and tries to lift the limit: cgroupfs is
    // read-only in the sandbox (and Landlock grants no write there).
    let lift = "import sys\npath = [l.split(':', 2)[2].strip() for l in open('/proc/self/cgroup') if l.split(':')[1] == 'pids'][0]\ntry:\n    open('/sys/fs/cgroup/pids' + path + '/pids.max', 'w').write('max')\n    print('RAISED')\nexcept OSError as e:\n    print('DENIED', e.errno)\n";
    let out = e.python(&[], lift);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("DENIED"),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert!(leftover_job_cgroups(&e.base.join("data")).is_empty());
}

#[test]
fn cpu_max_slows_a_busy_loop() {
    let e = env_with("cpu_max = 0.5");
    let script = "import time\nstart = time.time(); c0 = time.process_time()\nwhile time.time() - start < 2:\n    pass\nprint(round(time.process_time() - c0, 2), round(time.time() - start, 2), flush=True)\n";
    let out = e.python(&[], script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let figures: Vec<f64> = stdout
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    // A figure for the record, not a timing assertion (benchmarks hold
    // those): CPU seconds over wall seconds.
    eprintln!(
        "cpu_max = 0.5: {} CPU s in {} s of a busy loop",
        figures[0], figures[1]
    );
    assert!(
        text(&out.stderr).contains("\"cpu_max\":0.5"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn limits_that_cannot_be_applied_refuse_the_job_with_the_reason() {
    // As a user on cgroup v1 the Lab cannot make cgroups: a configured
    // limit refuses every job, saying why; nothing runs unbounded.
    let e = env_with("memory_max = 67108864");
    for dir in [&e.base, &e.project] {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::os::unix::fs::chown(e.base.join("lab.toml"), Some(NOBODY), Some(NOBODY)).unwrap();
    let out = e
        .lab()
        .uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", &e.base)
        .args(["run", "--", "python3", "-c", "print('ran')"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lab: refused:"), "{stderr}");
    assert!(
        stderr.contains("job limits:") && stderr.contains("need root"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("ran"));
    // A limit out of range is a config error.
    let bad = env_with("memory_max = 1024");
    let out = bad.python(&[], "print('ran')");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("memory_max is in bytes"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_network_without_pasta_refuses_the_job() {
    // `[runner] path` without pasta (python3 found there by a link).
    let e = env_with("path = \"BIN\"");
    let bin = e.base.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", bin.join("python3")).unwrap();
    let config = std::fs::read_to_string(e.base.join("lab.toml")).unwrap();
    std::fs::write(
        e.base.join("lab.toml"),
        config.replace("BIN", bin.to_str().unwrap()),
    )
    .unwrap();
    // Without the network the job runs (python3 resolved in [runner] path).
    let off = e.python(&[], "print('ran')");
    assert!(off.status.success(), "{}", text(&off.stderr));
    let on = e.python(&["--runner-allow-network"], "print('ran')");
    let stderr = text(&on.stderr);
    assert_eq!(on.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pasta"), "{stderr}");
    assert!(!text(&on.stdout).contains("ran"));
}

/// pasta runs outside the sandbox: one found where another user could
/// replace it is never run, and the runner says why.
#[test]
fn a_pasta_others_could_replace_is_never_run() {
    let e = env_with("path = \"BIN:/usr/bin:/bin\"");
    // World-writable, as a shared bin directory might be.
    let bin = e.base.join("shared-bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let canary = e.base.join("planted-pasta-ran");
    std::fs::write(
        bin.join("pasta"),
        format!(
            "#!/bin/sh\ntouch {}\nexec /usr/bin/pasta \"$@\"\n",
            canary.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("pasta"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = std::fs::read_to_string(e.base.join("lab.toml")).unwrap();
    std::fs::write(
        e.base.join("lab.toml"),
        config.replace("BIN", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = e.python(&["--runner-allow-network"], "print('ran')");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("could be replaced by another user"),
        "{stderr}"
    );
    assert!(!canary.exists(), "the planted pasta ran");
    assert!(!text(&out.stdout).contains("ran"));
}

/// The API: a job past `memory_max` is recorded `oom` (its run `killed`,
/// `status_raw=oom`) while the Lab answers on; `/api/status` says which
/// limits the runner applies.
#[test]
fn the_api_records_oom_and_the_lab_stays_up() {
    let e = env_with("memory_max = 67108864\npids_max = 64\ncpu_max = 1.5");
    std::fs::write(e.project.join("hog.py"), HOG).unwrap();
    let mut command = e.lab();
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--enable-runner"])
        .stderr(Stdio::null());
    let served = common::serve(command);
    let bearer = format!("Bearer {}", served.key);
    let ask = |method: &str, path: &str, body: Option<Value>| -> Value {
        let mut req = Request::new(method, path).header("Authorization", bearer.clone());
        if let Some(body) = body {
            req = req.json(&body.to_string());
        }
        let reply = req.send(served.port).unwrap();
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
    };
    let status = ask("GET", "/api/status", None);
    assert_eq!(
        status["runner"]["limits"],
        json!({
            "configured": {"memory_max": 67108864, "pids_max": 64, "cpu_max": 1.5},
            "cgroup": "v1",
            "unavailable": null,
        }),
        "{status}"
    );
    assert_eq!(status["runner"]["available"], true, "{status}");
    assert_eq!(
        status["runner"]["isolation"]["limits"]["pids_max"], 64,
        "{status}"
    );
    let started = ask(
        "POST",
        "/api/jobs",
        Some(json!({"program": "python3", "args": ["hog.py"], "cwd": e.project})),
    );
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let began = Instant::now();
    let job = loop {
        let job = ask("GET", &format!("/api/jobs/{id}"), None);
        let state = job["state"].as_str().unwrap_or("");
        if !["queued", "running", ""].contains(&state) {
            break job;
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{job}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(job["state"], "oom", "{job}");
    assert_eq!(job["isolation"]["limits"]["memory_max"], 67108864, "{job}");
    let run = ask(
        "GET",
        &format!("/api/runs/{}", job["run_id"].as_str().unwrap()),
        None,
    );
    assert_eq!(run["status"], "killed", "{run}");
    assert!(
        run["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "status_raw=oom"),
        "{run}"
    );
    // The Lab is up and answers.
    assert_eq!(ask("GET", "/api/status", None)["counts"]["runs"], 1);
    drop(served);
    assert!(leftover_job_cgroups(&e.base.join("data")).is_empty());
}
