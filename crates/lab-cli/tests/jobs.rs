//! The jobs API of a real `lab serve --enable-runner`: off by default,
//! live redacted logs over server-sent events with resume, cancel that ends
//! the process tree, records that survive a crash of the Lab.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use lab_test_support::http::Request;

use common::LAB;
const SECRET: &str = "s3cr3t-job-value-4242";

struct Lab {
    served: common::Served,
    token: String,
}

fn start(data: &PathBuf, args: &[&str]) -> Lab {
    start_with(data, args, "", &[])
}

/// [`start`] with `extra` appended to the config's `[runner]` table and
/// `envs` set for the Lab.
fn start_with(data: &PathBuf, args: &[&str], extra: &str, envs: &[(&str, &str)]) -> Lab {
    let config = data.join("lab.toml");
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(
        &config,
        format!(
            "[runner]\nprograms = [\"python3\", \"sh\"]\nenv_allow = [\"MY_API_TOKEN\"]\n{extra}"
        ),
    )
    .unwrap();
    let mut command = Command::new(LAB);
    command
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("MY_API_TOKEN", SECRET)
        .envs(envs.iter().copied())
        .stderr(Stdio::null());
    let mut lab = Lab {
        served: common::serve(command),
        token: String::new(),
    };
    let page = lab.request("GET", "/", None, &[]).1;
    let at = page.find("name=\"lab-token\" content=\"").unwrap() + 26;
    lab.token = page[at..at + 64].to_owned();
    lab
}

impl Lab {
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = Request::new(method, path)
            .header("Authorization", format!("Bearer {}", self.served.key));
        if method != "GET" {
            req = req.header("X-Lab-Token", self.token.clone());
        }
        if let Some(body) = body {
            req = req.json(&body.to_string());
        }
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        let reply = req.send(self.served.port).unwrap();
        (reply.status, reply.text())
    }

    fn json(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, text) = self.request(method, path, body, &[]);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The whole SSE stream of a job (it ends after the `end` event).
    fn events(&self, id: &str, last: Option<&str>) -> Vec<(String, String, String)> {
        let headers: Vec<(&str, &str)> =
            last.map(|l| vec![("Last-Event-ID", l)]).unwrap_or_default();
        let (status, body) = self.request("GET", &format!("/api/jobs/{id}/log"), None, &headers);
        assert_eq!(status, 200);
        body.split("\n\n")
            .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
            .map(|e| {
                let field = |name: &str| {
                    e.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .unwrap_or("")
                        .to_owned()
                };
                let data: String = serde_json::from_str(&field("data")).unwrap_or_default();
                (field("id"), field("event"), data)
            })
            .collect()
    }

    fn wait_state(&self, id: &str, done: impl Fn(&str) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (_, job) = self.json("GET", &format!("/api/jobs/{id}"), None);
            if done(job["state"].as_str().unwrap_or("")) {
                return job;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "job stuck: {job}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The run of job `id` shows `status`, with the job's `state` as its tag
/// `status_raw`.
fn assert_run_status(lab: &Lab, id: &str, status: &str, state: &str) {
    let (code, run) = lab.json("GET", &format!("/api/runs/{id}"), None);
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["status"], status, "{run}");
    let raw = format!("status_raw={state}");
    assert!(
        run["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == &json!(raw)),
        "{run}"
    );
}

/// Whether a process whose command line starts with `marker` is alive
/// (anchored, so `lab run … sleep N` itself does not count).
fn survivors(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", &format!("^{marker}")])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn jobs_are_refused_unless_the_runner_is_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = start(&tmp.path().join("data"), &[]);
    let (status, body) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "sh", "args": ["-c", "id"]})),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("runner_disabled"))
    );
    let (_, status) = lab.json("GET", "/api/status", None);
    assert_eq!(status["runner"]["enabled"], false);
}

#[test]
fn a_job_streams_redacted_output_and_resumes_from_last_event_id() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lab = start(&data, &["--enable-runner"]);
    let (_, status) = lab.json("GET", "/api/status", None);
    assert_eq!(status["runner"]["enabled"], true);
    assert_eq!(status["runner"]["network_allowed"], false);
    assert_eq!(
        status["runner"]["isolation"]["user_namespace"], true,
        "{status}"
    );
    assert_eq!(
        status["runner"]["isolation"]["network_namespace"], true,
        "{status}"
    );
    let script = "import os, sys, time\nv = os.environ['MY_API_TOKEN']\nfor i in range(3):\n    print('step', i, flush=True)\nsys.stdout.write(v[:8]); sys.stdout.flush(); time.sleep(0.5)\nsys.stdout.write(v[8:] + '\\n'); sys.stdout.flush()";
    let (code, made) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "python3", "args": ["-c", script], "env": ["MY_API_TOKEN"]})),
    );
    assert_eq!(code, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["run_id"], made["id"]);
    // The run is registered at once.
    assert_eq!(lab.json("GET", &format!("/api/runs/{id}"), None).0, 200);
    let events = lab.events(&id, None);
    let text: String = events
        .iter()
        .filter(|e| e.1 == "stdout")
        .map(|e| e.2.as_str())
        .collect();
    assert_eq!(text, "step 0\nstep 1\nstep 2\n[REDACTED]\n", "{events:?}");
    assert_eq!(events.last().unwrap().1, "end");
    for (_, _, data) in &events {
        assert!(
            !data.contains("s3cr3t") && !data.contains("4242"),
            "{events:?}"
        );
    }
    // Resume: only what came after the given id.
    let resumed = lab.events(&id, Some(&events[1].0));
    assert_eq!(resumed.first().unwrap().0, events[2].0);
    let job = lab.wait_state(&id, |s| s != "running");
    assert_eq!(job["state"], "finished");
    // Its run's status is its job's state, mapped (SPEC §4), the state kept.
    assert_run_status(&lab, &id, "finished", "finished");
    assert_eq!(job["env_names"], json!(["MY_API_TOKEN"]));
    // What "Run again" fills its form with, from this record: the default
    // timeout in force, no working directory asked for.
    assert_eq!(job["relaunch"], json!({"timeout_secs": 3600}), "{job}");
    assert_eq!(
        job["isolation"]["seccomp"],
        "socket() refused for every family; io_uring, mounts, namespaces, keyrings and x32 syscalls refused"
    );
    assert_eq!(job["isolation"]["landlock_filesystem"]["enforced"], "fully");
    let log = std::fs::read_to_string(data.join("runs").join(&id).join("stdout.log")).unwrap();
    assert!(!log.contains("s3cr3t"), "{log}");
    for entry in walk(&data) {
        let content = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
        assert!(
            !content.contains(SECRET),
            "{} holds the secret",
            entry.display()
        );
    }
    // Bad requests.
    for (body, code) in [
        (json!({"program": "id"}), "program_not_allowed"),
        (
            json!({"program": "sh", "env": ["LD_PRELOAD"]}),
            "env_not_allowed",
        ),
        (json!({"program": "sh", "shell": true}), "invalid_json"),
        (json!({"workflow": "/x.toml"}), "invalid_workflow"),
        (
            json!({"workflow": "/etc/passwd", "confirm_exec_hooks": true}),
            "invalid_workflow",
        ),
        (json!({"workflow": "/x.toml", "steps": []}), "invalid_json"),
    ] {
        let (_, reply) = lab.json("POST", "/api/jobs", Some(&body));
        assert_eq!(reply["error"]["code"], code, "{body}");
    }
    assert_eq!(lab.json("GET", "/api/jobs/nope", None).0, 404);
    assert_eq!(
        lab.json("POST", &format!("/api/jobs/{id}/cancel"), None).0,
        409
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn cancel_ends_the_job_and_everything_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = start(&tmp.path().join("data"), &["--enable-runner"]);
    let marker = "sleep 421.125";
    let (code, made) = lab.json("POST", "/api/jobs", Some(&json!({"program": "sh", "args": ["-c", format!("setsid {marker} & {marker} & echo up; wait")]})));
    assert_eq!(code, 202);
    let id = made["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while !survivors(marker) {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        lab.json("POST", &format!("/api/jobs/{id}/cancel"), None).0,
        202
    );
    let job = lab.wait_state(&id, |s| s != "running");
    assert_eq!(job["state"], "cancelled");
    assert_run_status(&lab, &id, "killed", "cancelled");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!survivors(marker), "a process survived the cancel");
}

#[test]
fn a_job_running_when_the_lab_dies_is_marked_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let marker = "sleep 422.5";
    let id = {
        let mut lab = start(&data, &["--enable-runner"]);
        let (_, made) = lab.json(
            "POST",
            "/api/jobs",
            Some(&json!({"program": "sh", "args": ["-c", format!("echo before; {marker}")]})),
        );
        let id = made["id"].as_str().unwrap().to_owned();
        let start = Instant::now();
        while !survivors(marker) {
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(50));
        }
        lab.served.child.kill().unwrap(); // SIGKILL: no chance to clean up
        lab.served.child.wait().unwrap();
        id
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!survivors(marker), "the job outlived the Lab");
    let lab = start(&data, &["--enable-runner"]);
    let (_, job) = lab.json("GET", &format!("/api/jobs/{id}"), None);
    assert_eq!(job["state"], "interrupted", "{job}");
    let (_, list) = lab.json("GET", "/api/jobs", None);
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    // Its log is still readable over the event stream.
    let events = lab.events(&id, None);
    assert!(
        events
            .iter()
            .any(|e| e.1 == "stdout" && e.2.contains("before")),
        "{events:?}"
    );
}

/// The escape of issue 9: a job plants links, FIFOs and directories at every
/// name the Lab uses, in its run directory (refused: the job cannot write
/// there) and in its own job directory (allowed, and harmless: the Lab's
/// files are elsewhere, and what it reads there goes through lab-fs).
#[test]
fn planted_links_fifos_and_directories_change_nothing() {
    // Outside /tmp (which the job sees as its own private tmpfs), so every
    // refusal below is the sandbox's, on the real run directory.
    let tmp = common::outside_tmp();
    let base = tmp.path().canonicalize().unwrap();
    let dataset = base.join("dataset");
    std::fs::create_dir_all(&dataset).unwrap();
    let canary = dataset.join("canary.txt");
    std::fs::write(&canary, "canary\n").unwrap();
    let data = base.join("data");
    let lab = start_with(
        &data,
        &["--enable-runner"],
        &format!("read_paths = [{:?}]\n", dataset.to_str().unwrap()),
        &[],
    );
    let script = r#"
import os, sys
canary = sys.argv[1]
out = os.environ["LAB_OUTPUT_DIR"]
run = os.path.dirname(out)
names = ["stdout.log", "stderr.log", "provenance.json", "provenance.json.tmp", ".work", "job"]
planted = []
for n in names:
    for kind in ("symlink", "hardlink", "fifo", "dir", "write"):
        p = os.path.join(run, n + "." + kind if kind != "symlink" else n)
        try:
            {"symlink": lambda: os.symlink(canary, p),
             "hardlink": lambda: os.link(canary, p),
             "fifo": lambda: os.mkfifo(p),
             "dir": lambda: os.mkdir(p),
             "write": lambda: open(os.path.join(run, n), "w").write("forged")}[kind]()
            planted.append(p)
        except OSError:
            pass
print("planted in the run dir:", planted)
open(os.path.join(out, "a.txt"), "w").write("mine")
os.symlink(canary, os.path.join(out, "stdout.log"))
os.symlink("../stdout.log", os.path.join(out, "stderr.log"))
os.mkfifo(os.path.join(out, "provenance.json"))
os.mkfifo(os.path.join(out, "metrics.jsonl"))
os.mkdir(os.path.join(out, "notes.md"))
os.link(os.path.join(out, "a.txt"), os.path.join(out, "summary.json"))
try:
    os.link(canary, os.path.join(out, "run.json"))
    print("hard-linked the canary")
except OSError as e:
    print("hard link refused", e.errno)
try:
    open(os.path.join(out, "stdout.log"), "w").write("overwritten")
    print("wrote through the link")
except OSError as e:
    print("write through the link refused", e.errno)
print("done")
"#;
    let (code, made) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "python3", "args": ["-c", script, canary.to_str().unwrap()]})),
    );
    assert_eq!(code, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let run_id = made["run_id"].as_str().unwrap().to_owned();
    let job = lab.wait_state(&id, |s| s != "running");
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "canary\n");
    let (status, stdout) = lab.request(
        "GET",
        &format!("/api/runs/{run_id}/artifacts/stdout.log"),
        None,
        &[],
    );
    assert_eq!(status, 200);
    assert!(stdout.contains("planted in the run dir: []"), "{stdout}");
    assert!(stdout.contains("hard link refused"), "{stdout}");
    assert!(
        stdout.contains("write through the link refused"),
        "{stdout}"
    );
    assert!(stdout.ends_with("done\n"), "{stdout}");
    let run_dir = data.join("runs").join(&run_id);
    for name in ["stdout.log", "stderr.log", "provenance.json"] {
        let meta = std::fs::symlink_metadata(run_dir.join(name)).unwrap();
        assert!(meta.is_file(), "{name} is the Lab's own regular file");
    }
    let (status, provenance) = lab.json(
        "GET",
        &format!("/api/runs/{run_id}/artifacts/provenance.json"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(provenance["exit"]["code"], 0, "{provenance}");
    // What the job planted in its own directory is never served: not the
    // link out, the link to the Lab's log, the FIFOs (no hang), the
    // directory or the hard link.
    for name in [
        "stdout.log",
        "stderr.log",
        "provenance.json",
        "metrics.jsonl",
        "notes.md",
        "summary.json",
    ] {
        let (status, body) = lab.request(
            "GET",
            &format!("/api/runs/{run_id}/artifacts/job/{name}"),
            None,
            &[],
        );
        assert!(status >= 400, "job/{name}: {status} {body}");
        assert!(
            !body.contains("canary") && !body.contains("planted"),
            "{body}"
        );
    }
    let (status, run) = lab.json("GET", &format!("/api/runs/{run_id}"), None);
    assert_eq!(status, 200, "the Lab stays responsive");
    let names: Vec<&str> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"stdout.log"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("job/")),
        "nothing the job planted is listed: {names:?}"
    );
}

/// Fail closed, end to end: on a kernel without Landlock (taken away by
/// LAB_RUNNER_DENY_FEATURES, which can only remove layers) the runner says
/// it is unavailable, naming what is missing, and refuses every job.
#[test]
fn without_a_required_layer_the_runner_is_unavailable_and_refuses_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lab = start_with(
        &data,
        &["--enable-runner"],
        "",
        &[("LAB_RUNNER_DENY_FEATURES", "landlock,overlay")],
    );
    let (_, status) = lab.json("GET", "/api/status", None);
    assert_eq!(status["runner"]["enabled"], true);
    assert_eq!(status["runner"]["available"], false, "{status}");
    let why = status["runner"]["unavailable"].as_str().unwrap();
    assert!(
        why.contains("Landlock") && why.contains("overlayfs"),
        "{why}"
    );
    let (code, body) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "sh", "args": ["-c", "echo ran"]})),
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "runner_unavailable");
    assert!(
        !data.join("runs").exists()
            || std::fs::read_dir(data.join("runs"))
                .unwrap()
                .next()
                .is_none()
    );
    // `lab run` refuses too, with the reason, and exit 2 (refused, SPEC §3).
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let out = Command::new(LAB)
        .arg("--data-dir")
        .arg(&data)
        .arg("--root")
        .arg(&project)
        .current_dir(&project)
        .env("LAB_RUNNER_DENY_FEATURES", "seccomp")
        .args(["run", "--", "sh", "-c", "echo ran"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("lab: refused: "))
            && err.contains("unavailable")
            && err.contains("seccomp"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
}

/// The first job `GET /api/jobs` lists as running, waiting at most
/// `within` for one.
fn first_running(lab: &Lab, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (_, list) = lab.json("GET", "/api/jobs", None);
        if let Some(job) = list["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["state"] == "running")
        {
            return job.clone();
        }
        assert!(started.elapsed() < within, "no running job listed: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lab run` writes the same job record as the API: a running server lists
/// its job within 2 s, owned by that process (a cancel from the server is
/// 409 `not_owner`), with its state when it ends; a `lab run` killed
/// mid-job leaves a record the server reads as `interrupted`.
#[test]
fn a_lab_run_job_is_on_the_servers_jobs_page() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lab = start(&data, &["--enable-runner"]);
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let config = data.join("lab.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "[runner]\n",
            &format!("[runner]\nread_paths = [{:?}]\n", project.to_str().unwrap()),
        ),
    )
    .unwrap();
    let lab_run = |script: &str| {
        Command::new(LAB)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .current_dir(&project)
            .env("PATH", "/usr/bin:/bin")
            .args(["run", "--", "python3", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = lab_run("import time; print('working', flush=True); time.sleep(3)");
    // Listed within 2 s (the server reads the records again each second).
    let job = first_running(&lab, Duration::from_millis(3500));
    assert_eq!(job["owner"]["pid"], child.id(), "{job}");
    assert_eq!(job["program"], "python3", "{job}");
    assert!(
        job["exec_path"].as_str().unwrap().ends_with("python3"),
        "{job}"
    );
    let id = job["id"].as_str().unwrap().to_owned();
    let (code, refused) = lab.json("POST", &format!("/api/jobs/{id}/cancel"), None);
    assert_eq!(
        (code, refused["error"]["code"].as_str()),
        (409, Some("not_owner")),
        "{refused}"
    );
    // Its log, followed from its files as the job writes them, to its end.
    let events = lab.events(&id, None);
    assert!(
        events
            .iter()
            .any(|(_, kind, text)| kind == "stdout" && text.contains("working")),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(|e| e.1.as_str()),
        Some("end"),
        "{events:?}"
    );
    assert!(child.wait().unwrap().success());
    let ended = lab.wait_state(&id, |s| s != "running");
    assert_eq!(ended["state"], "finished", "{ended}");
    assert_run_status(&lab, &id, "finished", "finished");
    // Killed mid-job: nobody runs it any more.
    let mut child = lab_run("import time; time.sleep(30)");
    let id = first_running(&lab, Duration::from_secs(5))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    child.kill().unwrap();
    child.wait().unwrap();
    let ended = lab.wait_state(&id, |s| s != "running");
    assert_eq!(ended["state"], "interrupted", "{ended}");
}

/// Run again sends the recorded `exec_path`: an absolute program is
/// allowed by its canonical path and runs by that path, so a venv's python
/// stays the venv's; one whose canonical path is off the allowlist is
/// refused.
#[test]
fn an_absolute_program_runs_by_its_path_when_its_canonical_path_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lab = start(&data, &["--enable-runner"]);
    let outside = common::outside_tmp();
    let venv = outside.path().canonicalize().unwrap().join("venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let python = venv.join("bin/python3");
    let (code, made) = lab.json(
        "POST",
        "/api/jobs",
        Some(
            &json!({"program": python, "args": ["-c", "import sys; print('prefix', sys.prefix)"]}),
        ),
    );
    assert_eq!(code, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let job = lab.wait_state(&id, |s| s != "running");
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["exec_path"], python.to_str().unwrap(), "{job}");
    let out: String = lab
        .events(&id, None)
        .into_iter()
        .filter(|(_, kind, _)| kind == "stdout")
        .map(|(_, _, text)| text)
        .collect();
    assert!(
        out.contains(&format!("prefix {}", venv.display())),
        "the venv's python ran as the venv's: {out}"
    );
    let (code, refused) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "/usr/bin/env", "args": ["id"]})),
    );
    assert_eq!(
        (code, refused["error"]["code"].as_str()),
        (403, Some("program_not_allowed")),
        "{refused}"
    );
}
