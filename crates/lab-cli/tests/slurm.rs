//! Jobs on a real single-node Slurm cluster (`lab_test_support::slurm`:
//! munged, slurmctld and slurmd on loopback in a scratch dir), through a
//! real `lab serve --enable-runner` with `[runner] backend = "slurm"`: a
//! job submitted from the browser runs through `sbatch` and the node's
//! helper (its Slurm id in the record, Slurm agreeing, its metrics on the
//! run page, the node's isolation report); exit 3 is `failed` 3; over its
//! timeout is `timeout`; a down partition holds a job with Slurm's reason
//! until it comes back; cancel is `scancel`; a Lab restarted re-attaches
//! to a queued job; the same spec gives equal results on both backends;
//! resources over the maxima are refused; munge stopped makes the runner
//! unavailable with the reason, and back again once it answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab_test_support::browser::{Browser, wait_for_within};
use lab_test_support::http::Request;
use lab_test_support::slurm::{self, Cluster};
use serde_json::{Value, json};

mod common;

use common::LAB;

/// How long a job may take through Slurm on a busy 2-core machine.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);

/// The training script every job runs: metrics into `LAB_OUTPUT_DIR`,
/// one line out, and the exit code its first argument asks for.
const TRAIN: &str = "\
import json, os, sys
out = os.environ['LAB_OUTPUT_DIR']
with open(os.path.join(out, 'metrics.jsonl'), 'w') as f:
    for step in range(5):
        f.write(json.dumps({'step': step, 'loss': 1.0 / (step + 1)}) + '\\n')
print('trained', len(sys.argv), flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
";

struct Lab {
    served: common::Served,
    token: String,
}

impl Lab {
    fn start(base: &Path, cluster: &Cluster) -> Lab {
        let mut command = Command::new(LAB);
        command
            .arg("--data-dir")
            .arg(base.join("data"))
            .arg("--config")
            .arg(base.join("lab.toml"))
            .args(["serve", "--bind", "127.0.0.1:0", "--enable-runner"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", base.join("home"))
            .env("MY_SETTING", "plain-value")
            .env("MY_API_TOKEN", "s3cr3t-never-exported")
            .envs(cluster.env())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(base.join("lab.log"))
                    .unwrap(),
            );
        let mut lab = Lab {
            served: common::serve(command),
            token: String::new(),
        };
        let page = lab.request("GET", "/", None).1;
        let at = page.find("name=\"lab-token\" content=\"").unwrap() + 26;
        lab.token = page[at..at + 64].to_owned();
        lab
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        let mut req = Request::new(method, path)
            .header("Authorization", format!("Bearer {}", self.served.key));
        if method != "GET" {
            req = req.header("X-Lab-Token", self.token.clone());
        }
        if let Some(body) = body {
            req = req.json(&body.to_string());
        }
        let reply = req.send(self.served.port).unwrap();
        (reply.status, reply.text())
    }

    fn json(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, text) = self.request(method, path, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn submit(&self, body: Value) -> String {
        let (code, answer) = self.json("POST", "/api/jobs", Some(&body));
        assert_eq!(code, 202, "{answer}");
        answer["id"].as_str().unwrap().to_owned()
    }

    fn job(&self, id: &str) -> Value {
        self.json("GET", &format!("/api/jobs/{id}"), None).1
    }

    /// Polls job `id` until `done` holds for its record.
    fn wait(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < JOB_TIMEOUT,
                "job {id} is not {what} after {JOB_TIMEOUT:?}: {job}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn status(&self) -> Value {
        self.json("GET", "/api/status", None).1
    }
}

/// Opens `lab`'s login link, waits until the Lab has loaded signed in
/// (the login page posts the key, then loads the Lab), then opens the
/// Jobs page and waits for its form.
fn sign_in(browser: &Browser, lab: &Lab) {
    browser.goto(&lab.served.link);
    // The login page navigates while the wait runs; a WebDriver script cut
    // short by that navigation is asked again, within 60 s in all.
    let waited = Instant::now();
    loop {
        let signed_in = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for_within(
                browser,
                10,
                "document.querySelector('meta[name=lab-token]') && document.getElementById('status') && document.getElementById('status').textContent.length > 0",
                "true",
            )
        }));
        if matches!(&signed_in, Ok(v) if *v == json!(true)) {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "not signed in: {signed_in:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let base_url = lab.served.base.trim_end_matches('/').to_owned();
    browser.goto(&format!("{base_url}/#/jobs"));
    let form = wait_for_within(
        browser,
        30,
        "document.getElementById('job-program')",
        "true",
    );
    assert_eq!(form, json!(true), "{form}");
}

/// What `squeue --json` says of Slurm job `id`: its state.
fn slurm_state(cluster: &Cluster, id: &str) -> String {
    let mut squeue = cluster.client("squeue");
    squeue.args(["--json", "--states=all", "--jobs", id]);
    let out = slurm::output_within(&mut squeue, Duration::from_secs(20)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = answer["jobs"]
        .as_array()
        .and_then(|jobs| {
            jobs.iter()
                .find(|j| j["job_id"].as_u64().is_some_and(|n| n.to_string() == id))
        })
        .unwrap_or_else(|| panic!("Slurm does not know job {id}: {answer}"));
    match &job["job_state"] {
        Value::Array(states) => states[0].as_str().unwrap().to_owned(),
        state => state.as_str().unwrap().to_owned(),
    }
}

/// `lab run` with `config`, from the project, in Slurm's environment.
fn lab_run(base: &Path, cluster: &Cluster, config: &str, args: &[&str]) -> Output {
    Command::new(LAB)
        .arg("--data-dir")
        .arg(base.join("data"))
        .arg("--config")
        .arg(base.join(config))
        .arg("run")
        .args(args)
        .current_dir(base.join("project"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", base.join("home"))
        .envs(cluster.env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run directory `lab run` ended with (`… — /abs/run/dir`).
fn run_dir_of(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" — /"))
        .unwrap_or_else(|| panic!("no final line: {stderr}"));
    PathBuf::from(line.rsplit(" — ").next().unwrap())
}

/// The Slurm job id a run dir's `slurm/` holds output of.
fn slurm_id_of(run_dir: &Path) -> Option<String> {
    std::fs::read_dir(run_dir.join("slurm"))
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find_map(|n| {
            n.strip_prefix("slurm-")
                .and_then(|n| n.strip_suffix(".out"))
                .map(str::to_owned)
        })
}

#[test]
fn jobs_run_queue_fail_time_out_cancel_and_reattach_on_a_real_slurm_cluster() {
    let scratch = common::outside_tmp();
    let base = scratch.path().canonicalize().unwrap();
    let mut cluster = Cluster::start(&base.join("cluster"));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for dir in ["project", "home"] {
        std::fs::create_dir_all(base.join(dir)).unwrap();
    }
    std::fs::write(base.join("project/train.py"), TRAIN).unwrap();
    let runner = "[runner]\nprograms = [\"python3\", \"sleep\"]\nread_paths = [\"project\"]\n\
                  env_allow = [\"MY_SETTING\", \"MY_API_TOKEN\"]\n";
    std::fs::write(
        base.join("lab.toml"),
        format!(
            "{runner}backend = \"slurm\"\n[runner.slurm]\npartition = \"{}\"\nmax_cpus = {}\nmax_mem_mb = 4096\nmax_gpus = 1\n",
            cluster.partition(),
            cpus
        ),
    )
    .unwrap();
    std::fs::write(base.join("local.toml"), runner).unwrap();
    let train = base.join("project/train.py").display().to_string();

    let lab = Lab::start(&base, &cluster);
    let status = lab.status();
    assert_eq!(status["runner"]["backend"]["name"], "slurm", "{status}");
    assert_eq!(status["runner"]["available"], true, "{status}");

    // Over a maximum, a GPU nobody offers, a secret-looking variable: refused
    // before anything is submitted.
    for (body, code, says) in [
        (
            json!({"program": "python3", "args": [train], "resources": {"cpus": cpus + 1}}),
            400,
            "max_cpus",
        ),
        (
            json!({"program": "python3", "args": [train], "resources": {"gpus": 2}}),
            400,
            "max_gpus",
        ),
        (
            json!({"program": "python3", "args": [train], "env": ["MY_API_TOKEN"]}),
            403,
            "Slurm stores",
        ),
    ] {
        let (status, answer) = lab.json("POST", "/api/jobs", Some(&body));
        assert_eq!(status, code, "{body}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    let refused = lab_run(
        &base,
        &cluster,
        "lab.toml",
        &["--cpus", "99", "--", "python3", "train.py"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("max_cpus"),
        "{}",
        text(&refused.stderr)
    );
    // Within the Lab's maximum but a GPU this cluster has no gres for:
    // sbatch refuses, and the job is `refused` with Slurm's message.
    let over = lab.submit(json!({"program": "python3", "args": [train], "resources": {"gpus": 1}}));
    let job = lab.wait(&over, "refused", |j| j["state"] == "refused");
    let error = job["exit"]["refused"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("sbatch: "), "{job}");
    assert_eq!(job["exit"]["refused"]["layer"], "slurm", "{job}");
    assert!(job["slurm_job_id"].is_null(), "{job}");
    let refused = lab_run(
        &base,
        &cluster,
        "lab.toml",
        &["--gpus", "1", "--", "python3", "train.py"],
    );
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("Slurm refused it: sbatch: "), "{said}");

    // From the browser: the job runs through Slurm, its metrics on its run.
    let browser = Browser::start(Command::new("chromedriver"));
    browser.resize(1280, 900);
    sign_in(&browser, &lab);
    let submitted = browser.run_async_with(
        "const [args, done] = arguments;
         document.getElementById('job-program').value = 'python3';
         document.getElementById('job-args').value = args;
         document.getElementById('job-submit').click();
         const start = Date.now();
         (function poll() {
           if (location.hash.startsWith('#/jobs/')) return done(location.hash.slice('#/jobs/'.length));
           if (Date.now() - start > 15000) return done({error: document.getElementById('view').textContent});
           setTimeout(poll, 100);
         })();",
        &[json!(train)],
    );
    let id = submitted
        .as_str()
        .unwrap_or_else(|| panic!("the browser did not submit: {submitted}"))
        .to_owned();
    let done = lab.wait(&id, "ended", |job| {
        !matches!(job["state"].as_str(), Some("queued" | "running"))
    });
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(done["backend"], "slurm", "{done}");
    assert_eq!(done["node"], cluster.node(), "{done}");
    let slurm_id = done["slurm_job_id"].as_str().unwrap().to_owned();
    assert_eq!(slurm_state(&cluster, &slurm_id), "COMPLETED");
    // The node's isolation report, from the helper there.
    let isolation = &done["isolation"];
    for layer in [
        "user_namespace",
        "mount_namespace",
        "pid_namespace",
        "network_namespace",
    ] {
        assert_eq!(isolation[layer], true, "{layer}: {done}");
    }
    assert!(
        isolation["seccomp"]
            .as_str()
            .is_some_and(|s| s.starts_with("socket() refused")),
        "{done}"
    );
    assert_eq!(
        isolation["landlock_filesystem"]["enforced"], "fully",
        "{done}"
    );
    // Its metrics on its run, its output in its log.
    let (code, run) = lab.json(
        "GET",
        &format!("/api/runs/{}", done["run_id"].as_str().unwrap()),
        None,
    );
    assert_eq!(code, 200, "{run}");
    assert_eq!(run["status"], "finished", "{run}");
    let loss = run["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "loss"))
        .unwrap_or_else(|| panic!("no loss metric on the run: {run}"));
    assert_eq!(loss["count"], 5, "{run}");
    let page = wait_for_within(
        &browser,
        30,
        "document.getElementById('job-state') && document.getElementById('job-state').textContent === 'finished' && document.getElementById('job-log').textContent.includes('trained')",
        "document.getElementById('view').innerText",
    );
    assert!(page.as_str().unwrap().contains(&slurm_id), "{page}");

    // Exit 3: failed with code 3, Slurm says FAILED.
    let failed = lab.submit(json!({"program": "python3", "args": [train, "3"]}));
    let job = lab.wait(&failed, "failed", |j| j["state"] == "failed");
    assert_eq!(job["exit"]["code"], 3, "{job}");
    assert_eq!(
        slurm_state(&cluster, job["slurm_job_id"].as_str().unwrap()),
        "FAILED"
    );

    // Over timeout_secs: the helper ends it, exactly.
    let slow = lab.submit(json!({"program": "sleep", "args": ["60"], "timeout_secs": 3}));
    let job = lab.wait(&slow, "timeout", |j| j["state"] == "timeout");
    assert_eq!(job["exit"]["timed_out"], true, "{job}");

    // A down partition holds a job, with Slurm's reason and its place.
    cluster.set_partition_state(false);
    let held = lab.submit(json!({"program": "python3", "args": [train]}));
    let job = lab.wait(&held, "queued for PartitionDown", |j| {
        j["state"] == "queued" && j["reason"] == "PartitionDown"
    });
    assert_eq!(job["queue_position"], 1, "{job}");
    assert!(job["slurm_job_id"].is_string(), "{job}");
    // A Lab that stops and starts again follows it still.
    drop(lab);
    let lab = Lab::start(&base, &cluster);
    let job = lab.job(&held);
    assert_eq!(job["state"], "queued", "{job}");
    cluster.set_partition_state(true);
    let job = lab.wait(&held, "finished", |j| j["state"] == "finished");
    assert!(job["reason"].is_null(), "{job}");
    assert_eq!(job["node"], cluster.node(), "{job}");

    // A queued and a running job at once: the first takes every CPU.
    let hog = lab.submit(json!({"program": "sleep", "args": ["120"], "resources": {"cpus": cpus}}));
    lab.wait(&hog, "running", |j| j["state"] == "running");
    let waiting =
        lab.submit(json!({"program": "sleep", "args": ["120"], "resources": {"cpus": 1}}));
    lab.wait(&waiting, "queued with a reason", |j| {
        j["state"] == "queued" && j["reason"].is_string()
    });
    // The browser signs in to the Lab that runs now.
    sign_in(&browser, &lab);
    // The list shows the backend, why the second waits, and the node.
    let listed = wait_for_within(
        &browser,
        30,
        "document.querySelector('tr.job-queued .job-reason') && [...document.querySelectorAll('.job-node')].some(n => n.textContent.length > 0)",
        "{reason: document.querySelector('tr.job-queued .job-reason').textContent,
          nodes: [...document.querySelectorAll('.job-node')].map(n => n.textContent),
          backends: [...document.querySelectorAll('td.job-where .job-backend')].map(b => b.textContent),
          text: document.getElementById('view').innerText}",
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    if listed.get("timeout").is_some() {
        std::fs::write(shots.join("slurm-jobs-failed.png"), browser.screenshot()).unwrap();
        let text = browser.run_async(
            "arguments[arguments.length - 1](document.getElementById('view').innerHTML)",
        );
        panic!("{listed}: the page holds {text}");
    }
    let queued_reason = lab.job(&waiting)["reason"].as_str().unwrap().to_owned();
    assert!(
        listed["reason"].as_str().unwrap().contains(&queued_reason),
        "{listed}"
    );
    assert!(
        listed["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains(cluster.node())),
        "{listed}"
    );
    let hog_slurm = lab.job(&hog)["slurm_job_id"].as_str().unwrap().to_owned();
    assert!(
        listed["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b.as_str().unwrap().contains(&hog_slurm)),
        "{listed}"
    );
    // Tall enough for the form and the list.
    browser.resize(1280, 1700);
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(shots.join("slurm-jobs.png"), &png).unwrap();

    // Cancel goes through scancel: both end cancelled, Slurm agreeing.
    for id in [&waiting, &hog] {
        let (code, answer) = lab.json("POST", &format!("/api/jobs/{id}/cancel"), None);
        assert!((200..300).contains(&code), "{answer}");
    }
    for id in [&waiting, &hog] {
        let job = lab.wait(id, "cancelled", |j| j["state"] == "cancelled");
        assert_eq!(
            slurm_state(&cluster, job["slurm_job_id"].as_str().unwrap()),
            "CANCELLED"
        );
    }

    // The same spec on both backends: the same exit, output and metrics.
    let on_slurm = lab_run(
        &base,
        &cluster,
        "lab.toml",
        &["--", "python3", "train.py", "3"],
    );
    let here = lab_run(
        &base,
        &cluster,
        "local.toml",
        &["--", "python3", "train.py", "3"],
    );
    for out in [&on_slurm, &here] {
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    }
    assert_eq!(text(&on_slurm.stdout), text(&here.stdout));
    assert_eq!(text(&here.stdout), "trained 2\n");
    let (slurm_run, local_run) = (
        run_dir_of(&text(&on_slurm.stderr)),
        run_dir_of(&text(&here.stderr)),
    );
    assert!(
        text(&on_slurm.stderr).contains("submitted to Slurm as job"),
        "{}",
        text(&on_slurm.stderr)
    );
    assert!(slurm_id_of(&slurm_run).is_some());
    assert!(slurm_id_of(&local_run).is_none());
    assert_eq!(
        std::fs::read(slurm_run.join("job/metrics.jsonl")).unwrap(),
        std::fs::read(local_run.join("job/metrics.jsonl")).unwrap()
    );
    let provenance = |dir: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("provenance.json")).unwrap()).unwrap()
    };
    assert_eq!(
        provenance(&slurm_run)["exit"],
        provenance(&local_run)["exit"]
    );
    assert_eq!(
        provenance(&slurm_run)["argv"],
        provenance(&local_run)["argv"]
    );

    // Munge stopped: three failures in a row make the runner unavailable,
    // saying why; jobs are refused; munge back, the runner is too.
    cluster.stop_munge();
    let start = Instant::now();
    let status = loop {
        let status = lab.status();
        if status["runner"]["available"] == false {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the runner is still available with munge stopped: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let why = status["runner"]["unavailable"].as_str().unwrap();
    assert!(why.contains("sinfo"), "{why}");
    let (code, answer) = lab.json(
        "POST",
        "/api/jobs",
        Some(&json!({"program": "python3", "args": [train]})),
    );
    assert_eq!(code, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "runner_unavailable", "{answer}");
    // `lab run` cannot submit either: refused (exit 2), saying why.
    let refused = lab_run(&base, &cluster, "lab.toml", &["--", "python3", "train.py"]);
    let said = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(
        said.contains("unavailable") && said.contains("sbatch"),
        "{said}"
    );
    cluster.start_munge();
    let start = Instant::now();
    while lab.status()["runner"]["available"] != true {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the runner is still unavailable with munge back"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(lab);
    cluster.stop();
}
