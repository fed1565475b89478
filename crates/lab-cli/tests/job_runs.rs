//! A job's output is its run's data (SPEC §5): what a job wrote in its
//! `job/` — the Lab's run files at its top, or the one run of another
//! format beneath it — is what its run shows; read as hostile (links out,
//! FIFOs, huge and deep trees cost bounded time and leak nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use lab_test_support::http::Request;

type Env = common::JobEnv;

fn env(program: &Path) -> Env {
    common::JobEnv::new(&format!("programs = [{:?}]", program.to_str().unwrap()))
}

/// What these tests do with a scratch Lab.
trait Jobs {
    fn run(&self, program: &Path, args: &[&str]) -> String;
    #[allow(clippy::type_complexity)]
    fn serve(&self) -> (common::Served, Box<dyn Fn(&str) -> (u16, Value, Duration)>);
}

impl Jobs for Env {
    /// `lab run -- PROGRAM ARGS…`; the run's id.
    fn run(&self, program: &Path, args: &[&str]) -> String {
        let out = self
            .lab()
            .arg("run")
            .arg("--")
            .arg(program)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let last = stderr.lines().last().unwrap();
        last.strip_prefix("lab: ")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{stderr}"))
            .to_owned()
    }

    /// `lab serve`, and a GET with its key.
    fn serve(&self) -> (common::Served, Box<dyn Fn(&str) -> (u16, Value, Duration)>) {
        let mut command = self.lab();
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stderr(Stdio::null());
        let served = common::serve(command);
        let (port, key) = (served.port, served.key.clone());
        let get = Box::new(move |path: &str| {
            let started = Instant::now();
            let reply = Request::new("GET", path)
                .header("Authorization", format!("Bearer {key}"))
                .send(port)
                .unwrap();
            (
                reply.status,
                serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
                started.elapsed(),
            )
        });
        (served, get)
    }
}

const TRAIN: &str = "import json, os, sys\nout = os.environ['LAB_OUTPUT_DIR']\nlr = float(sys.argv[2])\njson.dump({'lr': lr, 'model': 'mlp'}, open(os.path.join(out, 'params.json'), 'w'))\nwith open(os.path.join(out, 'metrics.jsonl'), 'w') as f:\n    for step in range(5):\n        f.write(json.dumps({'step': step, 'loss': lr / (step + 1)}) + '\\n')\n";

#[test]
fn a_jobs_lab_files_are_its_runs_params_and_metrics() {
    let python = PathBuf::from("/usr/bin/python3");
    let e = env(&python);
    std::fs::write(e.project.join("train.py"), TRAIN).unwrap();
    let first = e.run(&python, &["train.py", "--lr", "0.1"]);
    let second = e.run(&python, &["train.py", "--lr", "0.3"]);
    // Nothing landed in the project: the writes are the runs'.
    assert!(!e.project.join("metrics.jsonl").exists());
    let (_served, get) = e.serve();
    for (id, lr) in [(&first, 0.1), (&second, 0.3)] {
        let (status, run, _) = get(&format!("/api/runs/{id}"));
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["params"]["lr"], lr, "{run}");
        assert_eq!(run["params"]["model"], "mlp", "{run}");
        // Titled by its command (what a legend tells apart).
        assert_eq!(run["name"], format!("python3 train.py --lr {lr}"), "{run}");
        // Grouped by the project it ran in.
        let project = e.project.canonicalize().unwrap();
        assert_eq!(
            run["experiment"]["id"],
            format!("lab:{}", project.display()),
            "{run}"
        );
        assert_eq!(
            run["experiment"]["name"],
            project.file_name().unwrap().to_str().unwrap()
        );
        // Its status is its job's, from the Lab's own provenance.
        assert_eq!(run["status"], "finished", "{run}");
        assert!(
            run["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "status_raw=finished"),
            "{run}"
        );
        let loss = run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "loss")
            .unwrap_or_else(|| panic!("{run}"));
        assert_eq!(loss["count"], 5, "{run}");
        let (_, series, _) = get(&format!("/api/runs/{id}/metrics/loss"));
        assert_eq!(series["y"][0], lr, "{series}");
        // The Lab's own files of the job are still there, where the job
        // could not write.
        let names: Vec<&str> = run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        assert!(
            names.contains(&"provenance.json") && names.contains(&"stdout.log"),
            "{names:?}"
        );
    }
    // Both in the list with their params: what compare and the table read.
    let (_, list, _) = get("/api/runs?fields=params.lr,metrics.loss");
    let lrs: Vec<f64> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["params"]["lr"].as_f64())
        .collect();
    assert_eq!(lrs.len(), 2, "{list}");
}

#[test]
fn a_jobs_one_tensorboard_run_is_its_run() {
    let python = common::python();
    let e = env(&python);
    let script = "import os\nfrom tensorboardX import SummaryWriter\nw = SummaryWriter(os.path.join(os.environ['LAB_OUTPUT_DIR'], 'runs', 'tb'))\nfor step in range(7):\n    w.add_scalar('train/loss', 1.0 / (step + 1), step)\nw.close()\n";
    std::fs::write(e.project.join("tb.py"), script).unwrap();
    let id = e.run(&python, &["tb.py"]);
    let (_served, get) = e.serve();
    let (status, run, _) = get(&format!("/api/runs/{id}"));
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["id"], id.as_str(), "the job's run keeps its id");
    assert_eq!(run["format"], "tensorboard", "{run}");
    let loss = run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "train/loss")
        .unwrap_or_else(|| panic!("{run}"));
    assert_eq!(loss["count"], 7, "{run}");
}

/// Everything a hostile job can leave in `job/` at once: links to a file
/// outside and FIFOs at the Lab's names (a FIFO at every one of them, and
/// at a TensorBoard event file, in runs beneath), a sparse 1 GiB file, a
/// 200-deep tree and 50,000 files. The run answers in bounded time, shows
/// nothing from outside, and the Lab serves on.
#[test]
fn a_hostile_job_dir_costs_bounded_time_and_leaks_nothing() {
    let python = PathBuf::from("/usr/bin/python3");
    let e = env(&python);
    let canary = e.base.join("canary.json");
    std::fs::write(&canary, "{\"leaked\": \"CANARY-job-runs-5c1e\"}").unwrap();
    let script = format!(
        "import os\nout = os.environ['LAB_OUTPUT_DIR']\nos.symlink({canary:?}, os.path.join(out, 'params.json'))\nos.symlink({canary:?}, os.path.join(out, 'run.json'))\nos.mkfifo(os.path.join(out, 'metrics.jsonl'))\nos.mkfifo(os.path.join(out, 'run.toml'))\nfor sub, names in [('fifos', ['run.toml', 'run.json', 'params.json', 'metrics.jsonl', 'metrics.csv']), ('tb', ['events.out.tfevents.1.x'])]:\n    os.mkdir(os.path.join(out, sub))\n    for name in names:\n        os.mkfifo(os.path.join(out, sub, name))\nwith open(os.path.join(out, 'metrics.csv'), 'w') as f:\n    f.truncate(1 << 30)\nd = os.path.join(out, 'deep')\nfor i in range(200):\n    d = os.path.join(d, 'd')\nos.makedirs(d)\nmany = os.path.join(out, 'many')\nos.mkdir(many)\nfor i in range(50000):\n    open(os.path.join(many, str(i)), 'w').close()\nprint('planted')\n",
        canary = canary.to_str().unwrap()
    );
    std::fs::write(e.project.join("hostile.py"), script).unwrap();
    let id = e.run(&python, &["hostile.py"]);
    let (_served, get) = e.serve();
    let (status, run, took) = get(&format!("/api/runs/{id}"));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(matches!(status, 200 | 409 | 503), "{status} {run}");
    let text = run.to_string();
    assert!(!text.contains("CANARY-job-runs"), "{text}");
    // The runs beneath (FIFOs at every name) answer in bounded time too.
    let (_, run, _) = get(&format!("/api/runs/{id}"));
    for child in run["children"].as_array().into_iter().flatten() {
        let (status, child_run, took) =
            get(&format!("/api/runs/{}", child["id"].as_str().unwrap()));
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(matches!(status, 200 | 409 | 503), "{status} {child_run}");
    }
    let (status, list, took) = get("/api/runs");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!list.to_string().contains("CANARY-job-runs"));
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "{\"leaked\": \"CANARY-job-runs-5c1e\"}"
    );
}

/// The Lab's files at `job/`'s top are the job's run; the TensorBoard runs
/// beneath are runs of their own, each with the job's run as `parent`,
/// listed on the job's run.
#[test]
fn runs_a_job_wrote_beside_its_own_files_are_its_children() {
    let python = common::python();
    let e = env(&python);
    let script = "import json, os\nfrom tensorboardX import SummaryWriter\nout = os.environ['LAB_OUTPUT_DIR']\njson.dump({'lr': 0.2}, open(os.path.join(out, 'params.json'), 'w'))\nopen(os.path.join(out, 'metrics.jsonl'), 'w').write(json.dumps({'step': 0, 'loss': 1.0}) + '\\n')\nfor name in ['train', 'eval']:\n    w = SummaryWriter(os.path.join(out, 'tb', name))\n    for step in range(4):\n        w.add_scalar(name + '/acc', step / 4, step)\n    w.close()\n";
    std::fs::write(e.project.join("both.py"), script).unwrap();
    let id = e.run(&python, &["both.py"]);
    let (_served, get) = e.serve();
    let started = Instant::now();
    let run = loop {
        let (status, run, _) = get(&format!("/api/runs/{id}"));
        assert_eq!(status, 200, "{run}");
        if run["children"].as_array().is_some_and(|c| c.len() == 2) {
            break run;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{run}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(run["format"], "lab", "{run}");
    assert_eq!(run["params"]["lr"], 0.2, "{run}");
    assert_eq!(run["parent"], Value::Null, "{run}");
    for child in run["children"].as_array().unwrap() {
        let child_id = child["id"].as_str().unwrap();
        let (status, child_run, _) = get(&format!("/api/runs/{child_id}"));
        assert_eq!(status, 200, "{child_run}");
        assert_eq!(child_run["parent"], id.as_str(), "{child_run}");
        assert_eq!(child_run["format"], "tensorboard", "{child_run}");
        let acc = child_run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"].as_str().unwrap().ends_with("/acc"))
            .unwrap_or_else(|| panic!("{child_run}"));
        assert_eq!(acc["count"], 4, "{child_run}");
    }
}

/// A job's run takes its status from its job (its record, read even by a
/// server without the runner), never from what the job wrote: a job that
/// writes `status = "finished"` while it runs shows `running`.
#[test]
fn a_job_cannot_set_its_own_runs_status() {
    let python = PathBuf::from("/usr/bin/python3");
    let e = env(&python);
    let script = "import os, time\nopen(os.path.join(os.environ['LAB_OUTPUT_DIR'], 'run.toml'), 'w').write('status = \"finished\"\\n')\nprint('written', flush=True)\ntime.sleep(6)\n";
    std::fs::write(e.project.join("forge.py"), script).unwrap();
    let mut child = e
        .lab()
        .args(["run", "--", "/usr/bin/python3", "forge.py"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_served, get) = e.serve();
    let started = Instant::now();
    let run = loop {
        let (_, list, _) = get("/api/runs");
        if let Some(run) = list["runs"].as_array().and_then(|r| r.first()).cloned()
            && run["tags"].is_array()
        {
            let id = run["id"].as_str().unwrap().to_owned();
            let (_, run, _) = get(&format!("/api/runs/{id}"));
            // Once it is a job's run (its record or its `job/` there).
            if run["job"].is_string() {
                break run;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["status"], "running", "{run}");
    assert!(child.wait().unwrap().success());
}

/// `lab export` of a run a job wrote opens it as the server does, with
/// the job's single-link rule: a file the job gave a second name is in
/// neither the served run nor its bundle.
#[test]
fn an_exported_run_a_job_wrote_carries_no_hard_linked_file() {
    let python = PathBuf::from("/usr/bin/python3");
    let e = env(&python);
    let script = "import json, os\nout = os.environ['LAB_OUTPUT_DIR']\nopen(os.path.join(out, 'metrics.jsonl'), 'w').write(json.dumps({'step': 0, 'loss': 1.0}) + '\\n')\nchild = os.path.join(out, 'child')\nos.mkdir(child)\nopen(os.path.join(child, 'metrics.jsonl'), 'w').write(json.dumps({'step': 0, 'acc': 0.5}) + '\\n')\nopen(os.path.join(child, 'notes.md'), 'w').write('linked\\n')\nos.link(os.path.join(child, 'notes.md'), os.path.join(child, 'summary.json'))\n";
    std::fs::write(e.project.join("link.py"), script).unwrap();
    let id = e.run(&python, &["link.py"]);
    // The server registers the runs the job wrote.
    let child = {
        let (_served, get) = e.serve();
        let started = Instant::now();
        loop {
            let (status, run, _) = get(&format!("/api/runs/{id}"));
            assert_eq!(status, 200, "{run}");
            if let Some(child) = run["children"].as_array().and_then(|c| c.first()) {
                let child = child["id"].as_str().unwrap().to_owned();
                let (_, shown, _) = get(&format!("/api/runs/{child}"));
                let names: Vec<&str> = shown["artifacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|a| a["name"].as_str())
                    .collect();
                assert!(!names.contains(&"notes.md"), "{shown}");
                break child;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{run}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let out = e
        .lab()
        .args(["export", &child, "--name", "linked"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = e.base.join("data/exports/linked.tar");
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let names = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(names.contains("metrics.jsonl"), "{names}");
    for linked in ["notes.md", "summary.json"] {
        assert!(!names.contains(linked), "{linked} bundled:\n{names}");
    }
}
