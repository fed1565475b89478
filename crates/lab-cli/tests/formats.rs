//! Runs in the formats people already have, written by the real tools
//! (tensorboardX and TensorBoard's own summary code, MLflow, Hydra) at test
//! time, read through the real binary's API. Lightning's CSVLogger layout
//! is written here (installing torch is too heavy), and Ultralytics' by
//! `write_runs.py` as its trainer lays it out; so are the hostile
//! inputs, most of them by damaging what the real writers wrote.
//!
//! The writers live in a venv `cargo xtask test` makes under `target/`
//! and names in `LAB_FORMATS_PYTHON`; without it these tests fail saying
//! so (they never skip).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{python, write, write_lightning, writer};
use lab_test_support::http::{Reply, Request};
use serde_json::Value;

mod common;

const LAB: &str = env!("CARGO_BIN_EXE_lab");

struct Lab {
    _served: lab_test_support::lab::Served,
    port: u16,
    key: String,
    stderr: PathBuf,
}

/// Starts the real writer `kind` live in `root` (its stderr dropped): it
/// says `ready`, then writes as it is told on stdin. Killed when dropped.
fn live_writer(
    kind: &str,
    root: &Path,
) -> (
    common::Killed,
    BufReader<std::process::ChildStdout>,
    std::process::ChildStdin,
) {
    #[allow(clippy::disallowed_methods)] // the test drives the real writer
    let mut live = common::Killed(
        Command::new(python())
            .arg(writer())
            .arg(kind)
            .arg(root)
            .current_dir(root)
            .env("HOME", root.join(".home"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(live.0.stdout.take().unwrap());
    let stdin = live.0.stdin.take().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    (live, out, stdin)
}

fn lab_cmd(data: &Path) -> Command {
    #[allow(clippy::disallowed_methods)] // the test drives the real binary
    let mut cmd = Command::new(LAB);
    cmd.arg("--data-dir").arg(data).stdin(Stdio::null());
    cmd
}

fn serve(data: &Path, root: &Path) -> Lab {
    let stderr = data.with_extension("stderr.log");
    let mut cmd = lab_cmd(data);
    cmd.arg("serve")
        .arg("--root")
        .arg(root)
        .args(["--bind", "127.0.0.1:0"])
        .stderr(std::fs::File::create(&stderr).unwrap());
    let served = lab_test_support::lab::serve(cmd);
    Lab {
        port: served.port,
        key: served.key.clone(),
        _served: served,
        stderr,
    }
}

impl Lab {
    fn get(&self, path: &str) -> Reply {
        Request::new("GET", path)
            .header("Authorization", format!("Bearer {}", self.key))
            .send(self.port)
            .unwrap()
    }

    fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }

    fn runs(&self) -> Vec<Value> {
        self.json("/api/runs?limit=500")["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The run whose path ends with `rel`.
    fn run_at(&self, rel: &str) -> Value {
        let runs = self.runs();
        let found = runs
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with(rel))
            .unwrap_or_else(|| panic!("no run at {rel}: {runs:#?}\n{}", self.log()));
        self.json(&format!("/api/runs/{}", found["id"].as_str().unwrap()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `path` until `done` holds (the server picks up new data on
    /// its own; this only waits for it).
    fn wait_for(&self, what: &str, mut done: impl FnMut(&Lab) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn metric<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {}", run["metrics"]))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[test]
fn runs_written_by_the_real_tools_read_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("tensorboard", &root);
    write("mlflow", &root);
    write("hydra", &root);
    write_lightning(&root);
    let lab = serve(&base.join("data"), &root);

    let runs = lab.runs();
    let mut formats: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            let rel = path.strip_prefix(root.to_str().unwrap()).unwrap();
            // The MLflow ids and the hparams timestamp vary; their depth does not.
            let shape: Vec<&str> = rel
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    // Ids and timestamps (add_hparams names its directory
                    // by a float time of varying length) vary.
                    let stamp = s.len() > 8 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                    if s.len() > 16 || stamp { "*" } else { s }
                })
                .collect();
            (shape.join("/"), r["format"].as_str().unwrap().to_owned())
        })
        .collect();
    formats.sort();
    let expect = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        formats,
        [
            expect("lightning_logs/version_0", "lightning"),
            expect("mlruns/*/*", "mlflow"),
            expect("mlruns/*/*", "mlflow"),
            expect("outputs/2026-12-01/10-00-00", "hydra"),
            // add_hparams' timestamped subdirectory is folded into the
            // run that has the curves: not a run of its own.
            expect("tb-ppo-seed1", "tensorboard"),
        ],
        "{}",
        lab.log()
    );

    // TensorBoard: TF1 simple_value and TF2 tensor scalars, text; exact
    // values at exact steps (float32 as written).
    let tb = lab.run_at("/tb-ppo-seed1");
    assert_eq!(tb["errors"], serde_json::json!([]));
    let loss = metric(&tb, "train/loss");
    assert_eq!(
        (loss["count"].as_u64(), loss["last_step"].as_i64()),
        (Some(50), Some(49))
    );
    assert!(close(loss["last"].as_f64().unwrap(), 1.0 / 50.0), "{loss}");
    let lr = metric(&tb, "train/lr");
    assert_eq!(lr["count"], 50);
    assert!(close(lr["last"].as_f64().unwrap(), 0.5f64.powi(49)), "{lr}");
    assert_eq!(metric(&tb, "eval/return")["count"], 5);
    assert_eq!(tb["texts"][0]["text"], "hello from tensorboardX");
    // Images by step, PNG bytes read again from their records and checked.
    let images: Vec<&Value> = tb["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["key"] == "frames/sample")
        .collect();
    let steps: Vec<i64> = images.iter().map(|m| m["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, [0, 5], "{}", tb["media"]);
    for m in &images {
        let png = lab.get(m["url"].as_str().unwrap());
        assert_eq!(png.status, 200, "{}", png.text());
        assert_eq!(png.header("content-type"), Some("image/png"));
        assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"));
        // IHDR: width 12, height 8, as logged.
        let be = |at: usize| u32::from_be_bytes(png.body[at..at + 4].try_into().unwrap());
        assert_eq!((be(16), be(20)), (12, 8));
    }
    let url = images[0]["url"].as_str().unwrap();
    let (base_url, _) = url.rsplit_once('/').unwrap();
    let (file_url, offset) = base_url.rsplit_once('/').unwrap();
    for wrong in [
        format!("{file_url}/{}/0", offset.parse::<u64>().unwrap() + 1),
        format!("{file_url}/{offset}/7"),
        format!(
            "/api/runs/{}/images/..%2F..%2Fetc%2Fpasswd/0/0",
            tb["id"].as_str().unwrap()
        ),
    ] {
        let reply = lab.get(&wrong);
        assert_eq!(reply.code(), "image_not_found", "{wrong}: {}", reply.text());
    }
    assert_eq!(tb["texts"][0]["step"], 0);
    let id = tb["id"].as_str().unwrap();
    let series = lab.json(&format!("/api/runs/{id}/metrics/train%2Floss?points=5"));
    assert_eq!(series["count"], 50);
    assert_eq!(
        series["x"],
        serde_json::json!([0.0, 10.0, 20.0, 30.0, 40.0])
    );
    assert!(close(series["max"][0].as_f64().unwrap(), 1.0));
    assert!(close(series["min"][0].as_f64().unwrap(), 0.1));
    assert!(close(series["y"][4].as_f64().unwrap(), 1.0 / 50.0));
    let exact = lab.json(&format!("/api/runs/{id}/metrics/train%2Floss"));
    assert_eq!(exact["x"].as_array().unwrap().len(), 50);
    for (i, y) in exact["y"].as_array().unwrap().iter().enumerate() {
        assert!(
            close(y.as_f64().unwrap(), 1.0 / (i as f64 + 1.0)),
            "step {i}: {y}"
        );
    }
    // add_hparams' subdirectory is the run's: its hparams are the run's
    // params, beside the curves, and its metric_dict a series of the run.
    assert!(
        runs.iter()
            .all(|r| !r["path"].as_str().unwrap().contains("/tb-ppo-seed1/")),
        "{runs:?}"
    );
    assert_eq!(tb["params"]["lr"], 0.001);
    assert_eq!(tb["params"]["batch"], 64);
    assert_eq!(tb["params"]["opt"], "adam");
    assert!(close(
        metric(&tb, "hparam/score")["last"].as_f64().unwrap(),
        0.9
    ));

    // MLflow: each stored run is a run, named, with params, tags, status
    // and the metric at its steps.
    let mlflow: Vec<Value> = runs
        .iter()
        .filter(|r| r["format"] == "mlflow")
        .map(|r| lab.json(&format!("/api/runs/{}", r["id"].as_str().unwrap())))
        .collect();
    let alpha = mlflow.iter().find(|r| r["name"] == "alpha").expect("alpha");
    let beta = mlflow.iter().find(|r| r["name"] == "beta").expect("beta");
    assert_eq!(alpha["params"]["lr"], "0.01");
    assert_eq!(alpha["params"]["layers"], "3");
    assert_eq!(alpha["status"], "finished");
    assert_eq!(beta["status"], "failed");
    assert_eq!(beta["params"]["lr"], "0.1");
    assert!(
        alpha["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("team=vision"))
    );
    let loss = metric(alpha, "loss");
    assert_eq!(
        (loss["count"].as_u64(), loss["last_step"].as_i64()),
        (Some(10), Some(9))
    );
    assert!(close(loss["last"].as_f64().unwrap(), 0.1));
    assert!(
        alpha["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "artifacts/summary.txt"),
        "{}",
        alpha["artifacts"]
    );
    let aid = alpha["id"].as_str().unwrap();
    let text = lab.get(&format!("/api/runs/{aid}/artifacts/artifacts/summary.txt"));
    assert_eq!(text.text(), "alpha summary\n");
    // MLflow's own files are read, never served.
    assert_eq!(
        lab.get(&format!("/api/runs/{aid}/artifacts/meta.yaml"))
            .status,
        404
    );
    assert_eq!(
        lab.get(&format!("/api/runs/{aid}/artifacts/params/lr"))
            .status,
        404
    );

    // Lightning: hparams.yaml flattened; empty cells are "not logged".
    let pl = lab.run_at("/lightning_logs/version_0");
    assert_eq!(pl["params"]["lr"], 0.02);
    assert_eq!(pl["params"]["hidden.1"], 32);
    assert_eq!(pl["params"]["optimizer"], "adam");
    assert_eq!(metric(&pl, "train_loss")["count"], 20);
    let val = metric(&pl, "val_loss");
    assert_eq!(
        (val["count"].as_u64(), val["last_step"].as_i64()),
        (Some(2), Some(19))
    );
    assert!(close(val["last"].as_f64().unwrap(), 0.19));
    assert!(
        pl["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["name"] != "epoch")
    );

    // Hydra: the composed config (with the override applied) and the
    // overrides as params; the job's metrics.jsonl as series.
    let hy = lab.run_at("/outputs/2026-12-01/10-00-00");
    assert_eq!(hy["params"]["model.lr"], 0.01);
    assert_eq!(hy["params"]["model.depth"], 8);
    assert_eq!(hy["params"]["seed"], 7);
    assert_eq!(hy["params"]["hydra.overrides"], "model.depth=8");
    assert_eq!(metric(&hy, "acc")["count"], 5);
    assert_eq!(metric(&hy, "acc")["last"], 1.0);
    // .hydra/ is read, never served.
    let hid = hy["id"].as_str().unwrap();
    assert_ne!(
        lab.get(&format!("/api/runs/{hid}/artifacts/.hydra/config.yaml"))
            .status,
        200
    );

    // The list sorts by a metric's last value and a param, and adds fields.
    let sorted = lab
        .json("/api/runs?format=mlflow&sort=metrics.loss&order=desc&fields=params.lr,metrics.loss");
    let titles: Vec<&str> = sorted["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["beta", "alpha"]);
    assert_eq!(sorted["runs"][1]["params"]["lr"], "0.01");
    assert!(close(
        sorted["runs"][1]["metrics"]["loss"].as_f64().unwrap(),
        0.1
    ));
    let by_lr = lab.json("/api/runs?sort=params.lr&limit=2");
    assert_eq!(
        by_lr["runs"][0]["format"], "tensorboard",
        "lr 0.001 first: {by_lr}"
    );

    // A bundle carries a run of any format in the Lab's own form: the
    // TensorBoard runs and an MLflow run reimport with their params and
    // every point of their series.
    for (source, metric_names) in [
        (&tb, &["train/loss", "hparam/score"][..]),
        (alpha, &["loss"][..]),
    ] {
        let id = source["id"].as_str().unwrap();
        let new_id = export_and_reimport(&lab, &base, id);
        let copy = lab.json(&format!("/api/runs/{new_id}"));
        assert_eq!(copy["format"], "lab", "{copy}");
        assert_eq!(
            copy["params"], source["params"],
            "params survive the bundle"
        );
        // Its name and its experiment's name too.
        assert_eq!(copy["name"], source["name"], "{copy}");
        assert!(source["experiment"]["name"].is_string(), "{source}");
        assert_eq!(copy["experiment"]["name"], source["experiment"]["name"]);
        for metric_name in metric_names {
            let series = |run: &str| {
                let s = lab.json(&format!(
                    "/api/runs/{run}/metrics/{}?points=10000",
                    metric_name.replace('/', "%2F")
                ));
                (s["count"].clone(), s["x"].clone(), s["y"].clone())
            };
            assert_eq!(
                series(id),
                series(&new_id),
                "{metric_name} survives the bundle"
            );
        }
    }
}

#[test]
fn a_run_still_being_written_is_followed_and_new_runs_appear() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write_lightning(&root);
    let lab = serve(&base.join("data"), &root);
    assert_eq!(lab.runs().len(), 1);
    // A TensorBoard run that starts after the server, and keeps writing.
    let (mut live, mut out, mut stdin) = live_writer("live", &root);
    let mut line = String::new();
    let count = |lab: &Lab| -> Option<u64> {
        let runs = lab.runs();
        let run = runs.iter().find(|r| r["format"] == "tensorboard")?;
        let series = lab.get(&format!("/api/runs/{}/metrics/loss", run["id"].as_str()?));
        (series.status == 200)
            .then(|| series.json()["count"].as_u64())
            .flatten()
    };
    lab.wait_for("the new run with 10 points", |lab| count(lab) == Some(10));
    let id = lab
        .runs()
        .iter()
        .find(|r| r["format"] == "tensorboard")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = lab.get(&format!("/api/runs/{id}/metrics/loss"));
    let etag = first.header("etag").unwrap().to_owned();
    let again = Request::new("GET", &format!("/api/runs/{id}/metrics/loss"))
        .header("Authorization", format!("Bearer {}", lab.key))
        .header("If-None-Match", etag.clone())
        .send(lab.port)
        .unwrap();
    assert_eq!(again.status, 304);
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("the appended points", |lab| count(lab) == Some(20));
    let grown = lab.get(&format!("/api/runs/{id}/metrics/loss"));
    assert_ne!(
        grown.header("etag").unwrap(),
        etag,
        "the ETag changes when the series grows"
    );
    assert_eq!(grown.json()["y"][19], 19.0);
    writeln!(stdin, "end").unwrap();
    assert!(live.0.wait().unwrap().success());

    // A forgotten run stays forgotten while the server keeps walking.
    let reply = Request::new("DELETE", &format!("/api/runs/{id}"))
        .header("Authorization", format!("Bearer {}", lab.key))
        .send(lab.port)
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    std::thread::sleep(Duration::from_secs(7));
    assert!(lab.runs().iter().all(|r| r["format"] != "tensorboard"));

    // The roots given to serve are remembered: a later `lab import`
    // without --root accepts a directory under them.
    let later = root.join("later/version_3");
    std::fs::create_dir_all(&later).unwrap();
    std::fs::write(later.join("metrics.csv"), "epoch,step,loss\n0,0,1.5\n").unwrap();
    let out = lab_cmd(&base.join("data"))
        .arg("import")
        .arg(&later)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(lightning)"));
    let listed = lab_cmd(&base.join("data"))
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("\"format\":\"lightning\""), "{listed}");
}

#[test]
fn a_million_step_run_charts_from_a_thousand_buckets() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let run = base.join("runs/long");
    std::fs::create_dir_all(&run).unwrap();
    let mut text = String::with_capacity(40 << 20);
    for step in 0..1_000_000u32 {
        let loss = if step == 654_321 {
            1e6
        } else {
            f64::from(step % 1000)
        };
        text.push_str(&format!("{{\"step\": {step}, \"loss\": {loss}}}\n"));
    }
    std::fs::write(run.join("metrics.jsonl"), text).unwrap();
    let lab = serve(&base.join("data"), &base.join("runs"));
    let id = lab.runs()[0]["id"].as_str().unwrap().to_owned();
    let series = lab.json(&format!("/api/runs/{id}/metrics/loss"));
    assert_eq!(series["count"], 1_000_000);
    assert_eq!(series["x"].as_array().unwrap().len(), 1000);
    assert_eq!(series["x"][1], 1000.0);
    // The spike survives downsampling, in exactly one bucket.
    let maxes = series["max"].as_array().unwrap();
    assert_eq!(maxes.iter().filter(|m| **m == 1e6).count(), 1);
    assert_eq!(series["max"][654], 1e6);
    // Zooming asks for the range again, exactly.
    let zoom = lab.json(&format!(
        "/api/runs/{id}/metrics/loss?from=654300&to=654340"
    ));
    assert_eq!(zoom["count"], 41);
    assert_eq!(zoom["y"][21], 1e6);
    assert_eq!(
        lab.get(&format!("/api/runs/{id}/metrics/loss?points=10001"))
            .status,
        400
    );
    assert_eq!(
        lab.get(&format!("/api/runs/{id}/metrics/nope")).code(),
        "unknown_metric"
    );
}

/// A real event file, damaged in each of the ways a hostile or crashed
/// writer leaves one; every other run of the root still loads.
#[test]
fn hostile_inputs_are_errors_of_their_run_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("tensorboard", &root);
    write("mlflow", &root);
    let good = root.join("tb-ppo-seed1");
    let event = std::fs::read_dir(&good)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("events.out.tfevents.")
        })
        .unwrap();
    let bytes = std::fs::read(&event).unwrap();
    let damaged = |name: &str, content: &[u8]| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("events.out.tfevents.1.hostile"), content).unwrap();
    };
    // Cut in the middle of a record: pending, not an error.
    damaged("tb-truncated", &bytes[..bytes.len() - 7]);
    // A payload byte flipped: the record fails its CRC.
    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x40;
    damaged("tb-bad-crc", &flipped);
    // A length field of 2^63 with a valid length CRC.
    let len = (1u64 << 63).to_le_bytes();
    let crc = {
        let c = crc32c_of(&len);
        c.rotate_right(15).wrapping_add(0xa282_ead8)
    };
    let mut huge = len.to_vec();
    huge.extend(crc.to_le_bytes());
    huge.extend([0u8; 64]);
    damaged("tb-huge-length", &huge);
    // A 10 GB sparse event file (no disk used).
    let sparse = root.join("tb-sparse");
    std::fs::create_dir_all(&sparse).unwrap();
    std::fs::File::create(sparse.join("events.out.tfevents.2.sparse"))
        .unwrap()
        .set_len(10 << 30)
        .unwrap();
    // An MLflow run whose meta.yaml is a YAML bomb, and one nested deeply.
    let mlruns = root.join("mlruns/1");
    for (name, text) in [
        ("bomb", bomb()),
        (
            "deep",
            format!("a: {}{}\n", "[".repeat(20_000), "]".repeat(20_000)),
        ),
    ] {
        let run = mlruns.join(name);
        std::fs::create_dir_all(run.join("params")).unwrap();
        std::fs::write(run.join("meta.yaml"), text).unwrap();
        std::fs::write(run.join("params/lr"), "0.5").unwrap();
    }
    // A FIFO where a metric file should be: never blocks a reader.
    let fifo_run = mlruns.join("fifo");
    std::fs::create_dir_all(fifo_run.join("metrics")).unwrap();
    std::fs::write(fifo_run.join("meta.yaml"), "run_name: fifo\nstatus: 1\n").unwrap();
    let made = nix_mkfifo(&fifo_run.join("metrics/loss"));
    assert!(made, "mkfifo");

    let started = Instant::now();
    let lab = serve(&base.join("data"), &root);
    let errors = |rel: &str| lab.run_at(rel)["errors"].clone();
    assert_eq!(errors("/tb-truncated"), serde_json::json!([]));
    let truncated = lab.run_at("/tb-truncated");
    let full = lab.run_at("/tb-ppo-seed1");
    // Every complete record before the cut is read.
    let n = |run: &Value| metric(run, "train/loss")["count"].as_u64().unwrap();
    assert!(n(&truncated) >= 49, "{}", truncated["metrics"]);
    assert_eq!(n(&full), 50);
    let text = |rel: &str| errors(rel).to_string();
    assert!(
        text("/tb-bad-crc").contains("fails its CRC"),
        "{}",
        text("/tb-bad-crc")
    );
    assert!(
        text("/tb-huge-length").contains("claims"),
        "{}",
        text("/tb-huge-length")
    );
    assert!(
        text("/tb-sparse").contains("length fails its CRC"),
        "{}",
        text("/tb-sparse")
    );
    assert!(
        text("/mlruns/1/bomb").contains("aliases"),
        "{}",
        text("/mlruns/1/bomb")
    );
    let deep = text("/mlruns/1/deep");
    assert!(
        deep.contains("deeper") || deep.contains("recursion"),
        "{deep}"
    );
    // The rest of those runs still shows.
    assert_eq!(lab.run_at("/mlruns/1/bomb")["params"]["lr"], "0.5");
    // The FIFO is not a metric file: passed over, never opened.
    let fifo = lab.run_at("/mlruns/1/fifo");
    assert_eq!(
        (
            fifo["name"].as_str(),
            fifo["metrics"].as_array().map(Vec::len)
        ),
        (Some("fifo"), Some(0))
    );
    // The healthy runs are untouched by their neighbours.
    assert_eq!(full["errors"], serde_json::json!([]));
    assert!(
        lab.runs()
            .iter()
            .filter(|r| r["format"] == "mlflow")
            .count()
            >= 5,
        "{:#?}",
        lab.runs()
    );
    assert!(started.elapsed() < Duration::from_secs(120), "no hang");
    // The rest of the truncated record arrives: the run completes.
    let dir = root.join("tb-truncated");
    std::fs::write(dir.join("events.out.tfevents.1.hostile"), &bytes).unwrap();
    lab.wait_for("the completed record", |lab| {
        n(&lab.run_at("/tb-truncated")) == 50
    });
}

/// A "billion laughs" document: nine levels of nine aliases.
fn bomb() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

fn crc32c_of(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C (Castagnoli), reflected polynomial 0x82F63B78: an
    // independent implementation, so the test does not trust the reader's.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn nix_mkfifo(path: &Path) -> bool {
    #[allow(clippy::disallowed_methods)] // a FIFO is made by the system tool
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Names, sizes and modification times of everything under `dir`.
fn snapshot(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            out.push((
                entry.path().display().to_string(),
                meta.len(),
                meta.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn an_mlflow_sqlite_store_is_read_read_only_and_followed_while_written() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("mlflow-db", &root);
    // Beside it, a file that only claims to be a store, and a real SQLite
    // database of some other program.
    std::fs::create_dir_all(root.join("bad")).unwrap();
    std::fs::write(
        root.join("bad/mlflow.db"),
        b"this is not SQLite at all".repeat(100),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("foreign")).unwrap();
    #[allow(clippy::disallowed_methods)] // a real SQLite file, made by Python's sqlite3
    let made = Command::new(python())
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table notes(x)'); c.commit()")
        .arg(root.join("foreign/mlflow.db"))
        .status()
        .unwrap();
    assert!(made.success());
    let before = snapshot(&root.join("store"));
    let lab = serve(&base.join("data"), &root);

    let runs = lab.runs();
    let store: Vec<Value> = runs
        .iter()
        .filter(|r| r["format"] == "mlflow")
        .map(|r| lab.json(&format!("/api/runs/{}", r["id"].as_str().unwrap())))
        .collect();
    assert_eq!(store.len(), 2, "{runs:#?}\n{}", lab.log());
    let gamma = store.iter().find(|r| r["name"] == "gamma").expect("gamma");
    let delta = store.iter().find(|r| r["name"] == "delta").expect("delta");
    assert!(gamma["id"].as_str().unwrap().starts_with("gamma-"));
    assert!(
        gamma["path"]
            .as_str()
            .unwrap()
            .ends_with("/experiments/store")
    );
    assert_eq!(gamma["status"], "finished");
    assert_eq!(delta["status"], "running");
    // The store's experiment, named from its table, the same for both.
    let store_dir = gamma["path"].as_str().unwrap();
    assert_eq!(gamma["experiment"]["name"], "dbdemo", "{gamma}");
    let id = gamma["experiment"]["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("mlflow:{store_dir}#")), "{id}");
    assert_eq!(delta["experiment"], gamma["experiment"]);
    assert_eq!(gamma["params"]["lr"], "0.3");
    assert_eq!(gamma["params"]["depth"], "12");
    assert!(
        gamma["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("team=audio"))
    );
    let loss = metric(gamma, "loss");
    assert_eq!(
        (loss["count"].as_u64(), loss["last_step"].as_i64()),
        (Some(8), Some(7))
    );
    assert_eq!(loss["last"], 0.125);
    // MLflow stores NaN as is_nan: null in the API.
    assert_eq!(metric(gamma, "acc")["last"], Value::Null);
    let gid = gamma["id"].as_str().unwrap();
    let nan = lab.json(&format!("/api/runs/{gid}/metrics/acc"));
    assert_eq!(nan["y"], serde_json::json!([null]));
    assert_eq!(metric(delta, "loss")["last"], 3.0);
    // delta logged no artifact (its artifact directory does not exist): its
    // bundle holds its params and series alone.
    let did = delta["id"].as_str().unwrap();
    let made = export(&lab, did);
    assert_eq!(made["files"], 2, "run.json and metrics.jsonl: {made}");
    // Its artifacts come from its artifact_uri inside the store.
    let names: Vec<&str> = gamma["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["artifacts/notes.txt"]);
    let notes = lab.get(&format!("/api/runs/{gid}/artifacts/artifacts/notes.txt"));
    assert_eq!(notes.text(), "gamma notes\n");
    // The database is never served, and never written: the store's
    // directory is exactly as MLflow left it.
    assert_eq!(
        lab.get(&format!("/api/runs/{gid}/artifacts/mlflow.db"))
            .status,
        404
    );
    assert_eq!(snapshot(&root.join("store")), before);
    // The broken stores are named in /api/status; the rest of the root loads.
    let status = lab.json("/api/status");
    let warnings = status["discovery_warnings"].to_string();
    assert!(
        warnings.contains("bad") && warnings.contains("not a database"),
        "{warnings}"
    );
    assert!(
        warnings.contains("foreign") && warnings.contains("not an MLflow store"),
        "{warnings}"
    );

    // A store in WAL mode, written while the Lab reads it.
    let (mut live, mut out, mut stdin) = live_writer("mlflow-db-live", &root);
    let mut line = String::new();
    assert!(
        root.join("live-store/mlflow.db-wal").exists(),
        "the store is in WAL mode"
    );
    let count = |lab: &Lab| -> Option<u64> {
        let runs = lab.runs();
        let run = runs.iter().find(|r| r["name"] == "epsilon")?;
        let series = lab.get(&format!("/api/runs/{}/metrics/loss", run["id"].as_str()?));
        (series.status == 200)
            .then(|| series.json()["count"].as_u64())
            .flatten()
    };
    lab.wait_for("the WAL store's first half", |lab| count(lab) == Some(10));
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("the WAL store's second half", |lab| count(lab) == Some(20));
    let run = lab
        .runs()
        .into_iter()
        .find(|r| r["name"] == "epsilon")
        .unwrap();
    let run = lab.json(&format!("/api/runs/{}", run["id"].as_str().unwrap()));
    assert_eq!(run["status"], "running");
    writeln!(stdin, "end").unwrap();
    assert!(live.0.wait().unwrap().success());
    // The writer is gone and its -wal and -shm with it (SQLite's clean
    // close): reading the WAL store now must not create them again.
    let store = root.join("live-store");
    assert!(!store.join("mlflow.db-wal").exists() && !store.join("mlflow.db-shm").exists());
    let closed = snapshot(&store);
    let id = run["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        let again = lab.json(&format!("/api/runs/{id}"));
        assert_eq!(again["errors"], serde_json::json!([]), "{again}");
        assert_eq!(metric(&again, "loss")["count"], 20);
    }
    assert_eq!(snapshot(&store), closed, "nothing written into the store");
}

#[test]
fn an_offline_wandb_run_reads_from_its_record_log() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("wandb", &root);
    // The log, torn (a crashed writer) and damaged, as runs of their own.
    let run_dir = std::fs::read_dir(root.join("wandb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("offline-run-")
        })
        .unwrap();
    let log = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wandb"))
        .unwrap();
    let bytes = std::fs::read(&log).unwrap();
    for (name, content) in [
        ("offline-run-torn", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("offline-run-badcrc", {
            let mut b = bytes.clone();
            b[bytes.len() / 2] ^= 0x10;
            b
        }),
    ] {
        let dir = root.join("wandb").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("run-x.wandb"), content).unwrap();
    }
    // WebM and GIF media beside the MP4 (made by ffmpeg, named as W&B names
    // its media: KEY_STEP_HASH.ext).
    for (name, args) in [
        ("clip_12_0a1b.webm", &["-c:v", "libvpx", "-b:v", "200k"][..]),
        ("anim_13_2c3d.gif", &[][..]),
    ] {
        #[allow(clippy::disallowed_methods)] // ffmpeg makes the media files
        let made = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=duration=1:size=64x48:rate=5")
            .args(args)
            .arg(run_dir.join("files/media/videos").join(name))
            .status()
            .expect("ffmpeg is required: `cargo xtask test` installs it");
        assert!(made.success(), "{name}");
    }
    let lab = serve(&base.join("data"), &root);
    let runs = lab.runs();
    let wandb: Vec<&Value> = runs.iter().filter(|r| r["format"] == "wandb").collect();
    // latest-run is a link to the same run: never followed, never doubled.
    assert_eq!(wandb.len(), 3, "{runs:#?}");
    let run = lab.run_at(run_dir.file_name().unwrap().to_str().unwrap());
    assert_eq!(run["errors"], serde_json::json!([]), "{run}");
    assert_eq!(run["name"], "wb-alpha");
    // Its W&B project is its experiment (one namespace, wherever it lies).
    assert_eq!(
        run["experiment"],
        serde_json::json!({"id": "wandb:demo", "name": "demo"})
    );
    assert_eq!(run["status"], "finished");
    assert_eq!(run["description"], "offline run");
    let tags = run["tags"].as_array().unwrap();
    assert!(
        tags.contains(&Value::from("rl")) && tags.contains(&Value::from("video")),
        "{tags:?}"
    );
    assert_eq!(run["params"]["lr"], 0.01);
    assert_eq!(run["params"]["model.depth"], 4);
    assert_eq!(run["params"]["opt"], "adam");
    assert_eq!(run["params"]["summary.best"], 0.99);
    let loss = metric(&run, "loss");
    assert_eq!(
        (loss["count"].as_u64(), loss["last_step"].as_i64()),
        (Some(10), Some(9))
    );
    let id = run["id"].as_str().unwrap();
    let series = lab.json(&format!("/api/runs/{id}/metrics/loss"));
    for (i, y) in series["y"].as_array().unwrap().iter().enumerate() {
        assert!(
            close(y.as_f64().unwrap(), 1.0 / (i as f64 + 1.0)),
            "step {i}: {y}"
        );
    }
    // Media by step, with the key it was logged under.
    let media = run["media"].as_array().unwrap();
    let video = media
        .iter()
        .find(|m| m["kind"] == "video")
        .expect("a video");
    assert_eq!(
        (video["key"].as_str(), video["step"].as_i64()),
        (Some("rollout"), Some(10))
    );
    let image = media
        .iter()
        .find(|m| m["kind"] == "image")
        .expect("an image");
    assert_eq!(
        (image["key"].as_str(), image["step"].as_i64()),
        (Some("sample"), Some(11))
    );
    // The logged MP4 streams with Range, byte for byte what was logged.
    let url = format!(
        "/api/runs/{id}/artifacts/{}",
        video["name"].as_str().unwrap()
    );
    let part = Request::new("GET", &url)
        .header("Authorization", format!("Bearer {}", lab.key))
        .header("Range", "bytes=100-199")
        .send(lab.port)
        .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-type"), Some("video/mp4"));
    let original = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/runs/cartpole-ppo/output.mp4"),
    )
    .unwrap();
    assert_eq!(part.body, original[100..200]);
    // WebM and GIF play like any artifact, with their fixed types.
    for (key, step, kind) in [("clip", 12, "video/webm"), ("anim", 13, "image/gif")] {
        let m = media
            .iter()
            .find(|m| m["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {media:?}"));
        assert_eq!(m["step"], step);
        let part = Request::new(
            "GET",
            &format!("/api/runs/{id}/artifacts/{}", m["name"].as_str().unwrap()),
        )
        .header("Authorization", format!("Bearer {}", lab.key))
        .header("Range", "bytes=0-5")
        .send(lab.port)
        .unwrap();
        assert_eq!(
            (part.status, part.header("content-type")),
            (206, Some(kind)),
            "{key}"
        );
        assert_eq!(part.body.len(), 6);
    }
    // The log itself and W&B's debug logs are never served.
    let log_name = log.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        lab.get(&format!("/api/runs/{id}/artifacts/{log_name}"))
            .status,
        404
    );
    assert_eq!(
        lab.get(&format!("/api/runs/{id}/artifacts/logs/debug.log"))
            .status,
        404
    );
    // A torn log reads up to the tear; a damaged one says where it broke.
    let torn = lab.run_at("/offline-run-torn");
    assert_eq!(torn["errors"], serde_json::json!([]), "{torn}");
    assert_eq!(torn["name"], "wb-alpha");
    assert!(metric(&torn, "loss")["count"].as_u64().unwrap() >= 1);
    // The flipped middle byte lands in a record's payload (a CRC that
    // fails) or, as the writer's bytes shift from run to run, in a
    // record's header (its type byte): either way the damage is said.
    let bad = lab.run_at("/offline-run-badcrc");
    let said = bad["errors"].to_string();
    assert!(
        said.contains("fails its CRC") || said.contains("record type"),
        "{bad}"
    );
    // Exported and imported elsewhere: the same params, series and media.
    let copy_id = export_and_reimport(&lab, &base, id);
    let copy = lab.json(&format!("/api/runs/{copy_id}"));
    assert_eq!(copy["params"], run["params"]);
    let again = lab.json(&format!("/api/runs/{copy_id}/metrics/loss"));
    assert_eq!((&again["x"], &again["y"]), (&series["x"], &series["y"]));
    let copied = lab.get(&format!(
        "/api/runs/{copy_id}/artifacts/{}",
        video["name"].as_str().unwrap()
    ));
    assert_eq!(copied.body, original);
}

#[test]
fn a_wandb_run_in_progress_updates_and_a_crash_leaves_it_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    let lab = serve(&base.join("data"), &root);
    let (mut live, mut out, mut stdin) = live_writer("wandb-live", &root);
    let mut line = String::new();
    let count = |lab: &Lab| -> Option<u64> {
        let runs = lab.runs();
        let run = runs.iter().find(|r| r["format"] == "wandb")?;
        let series = lab.get(&format!("/api/runs/{}/metrics/loss", run["id"].as_str()?));
        (series.status == 200)
            .then(|| series.json()["count"].as_u64())
            .flatten()
    };
    // wandb writes its log a 32 KiB block at a time: what the blocks
    // written so far hold is read, the rest when it is written.
    lab.wait_for("the W&B run's first blocks", |lab| {
        count(lab).is_some_and(|n| n > 500)
    });
    let first = count(&lab).unwrap();
    assert!(first <= 1500, "{first}");
    writeln!(stdin, "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("the W&B run's later blocks", |lab| {
        count(lab).is_some_and(|n| n > first + 1000)
    });
    let second = count(&lab).unwrap();
    writeln!(stdin, "end").unwrap();
    let _ = live.0.wait();
    // The writer died: no exit record, a buffered block lost. The run is
    // still RUNNING, and every point that reached the disk is there, in
    // order.
    std::thread::sleep(Duration::from_millis(1500));
    let runs = lab.runs();
    let run = runs.iter().find(|r| r["format"] == "wandb").unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    let run = lab.json(&format!("/api/runs/{id}"));
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["name"], "wb-live");
    assert_eq!(run["errors"], serde_json::json!([]), "{run}");
    let n = metric(&run, "loss")["count"].as_u64().unwrap();
    assert!(n >= second, "{n} < {second}");
    let series = lab.json(&format!("/api/runs/{id}/metrics/loss?points=10000"));
    for (i, y) in series["y"].as_array().unwrap().iter().enumerate() {
        assert_eq!(y.as_f64(), Some(i as f64), "step {i}");
    }
}

/// `GET /api/columns` on a 20-run MLflow sweep the real tool wrote: every
/// param key and metric name with how many runs have it; and the list
/// sorted by one of them with the columns as `fields`, which is what the
/// runs table asks for.
#[test]
fn the_columns_of_a_sweep_are_listed_and_sortable() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("sweep", &root);
    let lab = serve(&base.join("data"), &root);
    let columns = lab.json("/api/columns");
    let names = |kind: &str, field: &str| -> Vec<(String, u64)> {
        columns[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[field].as_str().unwrap().to_owned(),
                    c["runs"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        names("params", "key"),
        [
            ("batch".to_owned(), 20),
            ("lr".to_owned(), 20),
            ("opt".to_owned(), 20)
        ],
        "{columns}"
    );
    assert_eq!(
        names("metrics", "name"),
        [("acc".to_owned(), 20), ("loss".to_owned(), 20)],
        "{columns}"
    );
    let page =
        lab.json("/api/runs?sort=params.lr&order=desc&limit=3&fields=params.lr,metrics.loss");
    let rows: Vec<(String, f64, f64)> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let lr = &r["params"]["lr"];
            // MLflow stores params as text.
            let lr = lr
                .as_f64()
                .unwrap_or_else(|| lr.as_str().unwrap().parse().unwrap());
            (
                r["name"].as_str().unwrap().to_owned(),
                lr,
                r["metrics"]["loss"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(page["total"], 20);
    assert_eq!(rows[0].0, "sweep-19", "{page}");
    assert!(close(rows[0].1, 0.02) && close(rows[1].1, 0.019), "{page}");
    // loss at the last step (29) of run 19: (1 + 1.9) / 30.
    assert!(close(rows[0].2, 2.9 / 30.0), "{page}");
}

/// The names of the runs `lab` lists for `query`, sorted.
fn names_for(lab: &Lab, query: &str) -> Vec<String> {
    let page = lab.json(&format!("/api/runs?limit=500&{query}"));
    let mut names: Vec<String> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A number as the API gives a param: a JSON number, or MLflow's text.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// MLflow runs in two experiments group by experiment name; a Hydra
/// multirun groups as one sweep and its jobs are named by their overrides;
/// a lone Hydra job is in no experiment; the filter language picks runs by
/// value, exactly the runs the values say.
#[test]
fn experiments_group_runs_names_say_what_varied_and_filters_pick_by_value() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("mlflow", &root);
    write("sweep", &root);
    write("hydra-multirun", &root);
    write("hydra", &root);
    let lab = serve(&base.join("data"), &root);

    let experiments = lab.json("/api/experiments");
    let groups: Vec<(String, String, u64)> = experiments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["format"].as_str().unwrap().to_owned(),
                e["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("2026-12-02/11-00-00".to_owned(), "hydra".to_owned(), 4),
            ("demo".to_owned(), "mlflow".to_owned(), 2),
            ("sweep".to_owned(), "mlflow".to_owned(), 20),
        ],
        "{experiments:#}\n{}",
        lab.log()
    );
    let id_of = |name: &str| {
        experiments
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Ids are format + location: the sweep's directory, the experiment's.
    let sweep_dir = root.join("multirun/2026-12-02/11-00-00");
    assert_eq!(
        id_of("2026-12-02/11-00-00"),
        format!("hydra:{}", sweep_dir.display())
    );
    assert!(id_of("demo").starts_with(&format!("mlflow:{}/", root.join("mlruns").display())));
    assert_ne!(id_of("demo"), id_of("sweep"));
    for e in experiments.as_array().unwrap() {
        assert!(e["last_created"].as_str().unwrap().starts_with("20"), "{e}");
    }

    // The sweep's jobs, named by what each varied; their own name none.
    let hydra_id = id_of("2026-12-02/11-00-00");
    let query = format!("experiment={}", pct(&hydra_id));
    assert_eq!(
        names_for(&lab, &query),
        [
            "lr=0.01,optimizer=adam",
            "lr=0.01,optimizer=sgd",
            "lr=0.1,optimizer=adam",
            "lr=0.1,optimizer=sgd"
        ]
    );
    let job = lab.run_at("/multirun/2026-12-02/11-00-00/2");
    assert_eq!(job["name"], "lr=0.1,optimizer=adam", "{job}");
    assert_eq!(job["name_raw"], Value::Null);
    assert_eq!(job["experiment"]["id"], hydra_id.as_str());
    assert_eq!(job["params"]["optimizer"], "adam");
    // A lone job: its override names it, no experiment.
    let lone = lab.run_at("/outputs/2026-12-01/10-00-00");
    assert_eq!(lone["name"], "model.depth=8");
    assert_eq!(lone["experiment"], Value::Null);
    // MLflow: the run's own name, and its experiment's.
    let alpha = lab
        .runs()
        .into_iter()
        .find(|r| r["name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["name_raw"], "alpha");
    assert_eq!(alpha["experiment"]["name"], "demo");
    assert!(
        !alpha["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("experiment=")),
        "{alpha}"
    );
    // Grouped: sorted by experiment, a group's runs together.
    let grouped = lab.json("/api/runs?limit=500&sort=experiment");
    let order: Vec<Value> = grouped["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["experiment"]["name"].clone())
        .collect();
    let mut runs_of: Vec<Value> = order.clone();
    runs_of.dedup();
    assert_eq!(
        runs_of,
        [
            Value::from("2026-12-02/11-00-00"),
            Value::from("demo"),
            Value::from("sweep"),
            Value::Null
        ],
        "{order:?}"
    );

    // The filter language, checked against the values themselves.
    let all = lab.json("/api/runs?limit=500&fields=params.lr,params.optimizer,metrics.loss");
    let all = all["runs"].as_array().unwrap();
    let expect = |pick: &dyn Fn(&Value) -> bool| -> Vec<String> {
        let mut names: Vec<String> = all
            .iter()
            .filter(|r| pick(r))
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let lr = |r: &Value| number(&r["params"]["lr"]);
    let loss = |r: &Value| r["metrics"]["loss"].as_f64();
    let by_value =
        expect(&|r| lr(r).is_some_and(|lr| lr > 0.005) && loss(r).is_some_and(|loss| loss < 0.5));
    assert_eq!(by_value.len(), 16, "{by_value:?}");
    assert_eq!(
        names_for(
            &lab,
            "filter=params.lr%20%3E%200.005%20and%20metrics.loss%20%3C%200.5"
        ),
        by_value
    );
    let either = expect(&|r| r["params"]["optimizer"] == "adam" || r["name"] == "beta");
    assert_eq!(either.len(), 3, "{either:?}");
    assert_eq!(
        names_for(
            &lab,
            &format!(
                "filter={}",
                pct("params.optimizer = \"adam\" or name = 'beta'")
            )
        ),
        either
    );
    let listed = expect(&|r| lr(r).is_some_and(|lr| lr == 0.01 || lr == 0.1));
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert_eq!(
        names_for(&lab, &format!("filter={}", pct("params.lr IN (0.01, 0.1)"))),
        listed
    );
    assert_eq!(
        names_for(
            &lab,
            &format!("filter={}", pct("experiment_name ILIKE 'SW%'"))
        )
        .len(),
        20
    );
    let bad = lab.get(&format!("/api/runs?filter={}", pct("params.lr > and")));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "bad_filter");
    assert!(bad.text().contains("character 12"), "{}", bad.text());
}

/// `text` percent-encoded for a query value.
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a file's modification time.
fn mtime_iso(path: &Path) -> String {
    let secs = std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    lab_fs::bundle::iso8601_utc(secs)
}

/// A metric's (count, last_step, last) as the run lists it.
fn summary(run: &Value, name: &str) -> (u64, i64, Option<f64>) {
    let m = metric(run, name);
    (
        m["count"].as_u64().unwrap(),
        m["last_step"].as_i64().unwrap(),
        m["last"].as_f64(),
    )
}

fn assert_summary(run: &Value, name: &str, count: u64, last_step: i64, last: f64) {
    let (c, s, l) = summary(run, name);
    assert_eq!((c, s), (count, last_step), "{name}: {}", metric(run, name));
    assert!(close(l.unwrap(), last), "{name}: {l:?} for {last}");
}

fn has_metric(run: &Value, name: &str) -> bool {
    run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == name)
}

/// Hugging Face (transformers' real TrainerState and TrainingArguments),
/// Keras' CSVLogger and SB3's logger and Monitor layouts (written as their
/// sources show): each run found once, of its format, read exactly.
#[test]
fn trainer_keras_and_sb3_runs_read_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("huggingface", &root);
    write("keras", &root);
    write("sb3", &root);
    let lab = serve(&base.join("data"), &root);
    let mut found: Vec<(String, String)> = lab
        .runs()
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            let rel = path.strip_prefix(root.to_str().unwrap()).unwrap();
            (rel.to_owned(), r["format"].as_str().unwrap().to_owned())
        })
        .collect();
    found.sort();
    let expect = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    // The checkpoints and the TensorBoard callback's runs/ are the
    // output dir's, never runs of their own.
    assert_eq!(
        found,
        [
            expect("/hf-out", "huggingface"),
            expect("/keras-fit", "keras"),
            expect("/keras-semicolon", "keras"),
            expect("/sb3-ppo", "sb3"),
        ],
        "{}",
        lab.log()
    );

    // Hugging Face: log_history rows by step, the final row's values at
    // the last step; training_args.json and the state as params.
    let hf = lab.run_at("/hf-out");
    assert_eq!(hf["errors"], serde_json::json!([]));
    assert_eq!(hf["name"], "tiny-bert");
    assert_eq!(hf["status"], "finished");
    assert_summary(&hf, "loss", 8, 8, 0.125);
    assert_summary(&hf, "grad_norm", 8, 8, 0.8);
    assert_summary(&hf, "learning_rate", 8, 8, 0.0002);
    assert_summary(&hf, "eval_loss", 2, 8, 0.25);
    assert_summary(&hf, "eval_accuracy", 2, 8, 1.0);
    assert_summary(&hf, "eval_runtime", 2, 8, 0.5);
    assert_summary(&hf, "train_runtime", 1, 8, 12.5);
    assert_summary(&hf, "train_loss", 1, 8, 0.25);
    assert_summary(&hf, "total_flos", 1, 8, 1234.0);
    assert_summary(&hf, "train_steps_per_second", 1, 8, 0.64);
    assert!(!has_metric(&hf, "epoch") && !has_metric(&hf, "step"));
    assert_eq!(
        hf["metrics"].as_array().unwrap().len(),
        13,
        "{}",
        hf["metrics"]
    );
    let id = hf["id"].as_str().unwrap();
    let norm = lab.json(&format!("/api/runs/{id}/metrics/grad_norm"));
    assert_eq!(
        norm["x"],
        serde_json::json!([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    );
    // Step 3's NaN is a point without a value.
    assert_eq!(norm["y"][2], Value::Null);
    assert!(close(norm["y"][3].as_f64().unwrap(), 0.4));
    let p = &hf["params"];
    assert_eq!(p["learning_rate"], 0.001);
    assert_eq!(p["per_device_train_batch_size"], 16);
    assert_eq!(p["seed"], 7);
    assert_eq!(p["run_name"], "tiny-bert");
    assert_eq!(p["state.global_step"], 8);
    assert_eq!(p["state.max_steps"], 8);
    assert_eq!(p["state.epoch"], 2.0);
    assert_eq!(p["state.best_metric"], 0.25);
    assert_eq!(p["state.best_global_step"], 8);
    assert_eq!(p["state.best_model_checkpoint"], "checkpoint-8");
    let hf_dir = root.join("hf-out");
    let created = [
        mtime_iso(&hf_dir.join("training_args.json")),
        mtime_iso(&hf_dir.join("checkpoint-4/trainer_state.json")),
        mtime_iso(&hf_dir.join("trainer_state.json")),
    ]
    .into_iter()
    .min()
    .unwrap();
    assert_eq!(hf["created"], created.as_str());
    let experiments = format!("{}", root.display());
    assert_eq!(
        hf["experiment"],
        serde_json::json!({"id": format!("huggingface:{experiments}"), "name": "experiments"})
    );
    let state = lab.get(&format!("/api/runs/{id}/artifacts/trainer_state.json"));
    assert_eq!(state.status, 200);
    assert_eq!(state.header("content-type"), Some("application/json"));

    // Keras: series by epoch; NA is a gap; a column all NA is no series;
    // a list cell is not a number; `;` as the separator.
    let fit = lab.run_at("/keras-fit");
    assert_eq!(fit["errors"], serde_json::json!([]));
    assert_summary(&fit, "loss", 10, 9, 0.1);
    assert_summary(&fit, "accuracy", 10, 9, 0.9);
    assert_summary(&fit, "val_loss", 5, 9, 0.05);
    assert!(!has_metric(&fit, "val_accuracy") && !has_metric(&fit, "epoch"));
    assert_eq!(fit["status"], "unknown");
    assert_eq!(fit["params"], serde_json::json!({}));
    assert_eq!(
        fit["experiment"],
        serde_json::json!({"id": format!("keras:{experiments}"), "name": "experiments"})
    );
    let fid = fit["id"].as_str().unwrap();
    let val = lab.json(&format!("/api/runs/{fid}/metrics/val_loss"));
    assert_eq!(val["x"], serde_json::json!([1.0, 3.0, 5.0, 7.0, 9.0]));
    let log = lab.get(&format!("/api/runs/{fid}/artifacts/training.log"));
    assert_eq!(log.status, 200);
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // csv.excel's line ends, as CSVLogger's DictWriter writes them.
    assert!(
        log.text()
            .starts_with("epoch,accuracy,loss,val_loss,val_accuracy\r\n")
    );
    let semi = lab.run_at("/keras-semicolon");
    assert_eq!(semi["errors"], serde_json::json!([]));
    assert_summary(&semi, "loss", 4, 3, 0.125);
    assert_eq!(
        semi["metrics"].as_array().unwrap().len(),
        1,
        "{}",
        semi["metrics"]
    );

    // SB3: progress.csv by total timesteps (the late key's rows after the
    // rewrite), monitor.csv's episodes from t_start.
    let ppo = lab.run_at("/sb3-ppo");
    assert_eq!(ppo["errors"], serde_json::json!([]));
    assert_summary(&ppo, "rollout/ep_rew_mean", 5, 10240, 50.0);
    assert_summary(&ppo, "time/fps", 5, 10240, 100.0);
    assert_summary(&ppo, "train/value_loss", 4, 10240, 0.2);
    assert!(!has_metric(&ppo, "time/total_timesteps"));
    assert_summary(&ppo, "episode/reward", 20, 19, 29.0);
    assert_summary(&ppo, "episode/length", 20, 19, 29.0);
    assert_eq!(
        ppo["metrics"].as_array().unwrap().len(),
        5,
        "{}",
        ppo["metrics"]
    );
    assert_eq!(ppo["created"], "2026-01-01T00:00:00Z");
    assert_eq!(ppo["params"], serde_json::json!({"env_id": "CartPole-v1"}));
    assert_eq!(ppo["status"], "unknown");
    assert_eq!(
        ppo["experiment"],
        serde_json::json!({"id": format!("sb3:{experiments}"), "name": "experiments"})
    );
    let pid = ppo["id"].as_str().unwrap();
    let rew = lab.json(&format!("/api/runs/{pid}/metrics/rollout%2Fep_rew_mean"));
    assert_eq!(
        rew["x"],
        serde_json::json!([2048.0, 4096.0, 6144.0, 8192.0, 10240.0])
    );
    assert_eq!(rew["y"], serde_json::json!([10.0, 20.0, 30.0, 40.0, 50.0]));
    let progress = lab.get(&format!("/api/runs/{pid}/artifacts/progress.csv"));
    assert_eq!(
        progress.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // Each exports as a bundle that reimports whole.
    for (source, metric_name) in [(&hf, "loss"), (&fit, "val_loss"), (&ppo, "episode/reward")] {
        let id = source["id"].as_str().unwrap();
        let new_id = export_and_reimport(&lab, &base, id);
        let copy = lab.json(&format!("/api/runs/{new_id}"));
        // The export's redaction takes a `*_token` param's value out
        // (TrainingArguments writes `hub_token` as "<HUB_TOKEN>").
        let without_token = |run: &Value| {
            let mut params = run["params"].clone();
            params.as_object_mut().unwrap().remove("hub_token");
            params
        };
        assert_eq!(
            without_token(&copy),
            without_token(source),
            "params survive the bundle"
        );
        // A run whose files name it keeps the name (a Keras or SB3 run
        // is named by its directory, which the bundle's is not).
        if source["name_raw"].is_string() {
            assert_eq!(copy["name"], source["name"]);
        }
        assert_eq!(copy["status"], source["status"]);
        assert_eq!(copy["created"], source["created"]);
        let series = |run: &str| {
            let s = lab.json(&format!(
                "/api/runs/{run}/metrics/{}?points=10000",
                metric_name.replace('/', "%2F")
            ));
            (s["count"].clone(), s["x"].clone(), s["y"].clone())
        };
        assert_eq!(
            series(id),
            series(&new_id),
            "{metric_name} survives the bundle"
        );
    }
}

/// Exports run `id` as a bundle (201 Created); the answer (`file`, the
/// bundle's name under `data/exports`; `files`, how many it holds).
fn export(lab: &Lab, id: &str) -> Value {
    let made = Request::new("POST", &format!("/api/runs/{id}/export"))
        .header("Authorization", format!("Bearer {}", lab.key))
        .json("{}")
        .send(lab.port)
        .unwrap();
    assert_eq!(made.status, 201, "{}", made.text());
    made.json()
}

/// Exports run `id` as a bundle and imports it into `base/reimported`;
/// the new run's id.
fn export_and_reimport(lab: &Lab, base: &Path, id: &str) -> String {
    let file = export(lab, id)["file"].as_str().unwrap().to_owned();
    let into = base.join("reimported");
    std::fs::create_dir_all(&into).unwrap();
    let out = lab_cmd(&base.join("data"))
        // The data dir must lie outside every allowed root.
        .arg("--root")
        .arg(&into)
        .arg("import-bundle")
        .arg(base.join("data/exports").join(&file))
        .arg("--into")
        .arg(&into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("imported bundle as ")
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no new id in {text:?}"))
        .to_owned()
}

/// A Trainer still training (only its checkpoints so far) and an SB3 run
/// still logging (progress.csv rewritten in place when a key appears)
/// are followed as they are written.
#[test]
fn a_trainer_and_an_sb3_run_are_followed_while_written() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    let (_hf, mut hf_out, mut hf_in) = live_writer("huggingface-live", &root);
    let (_sb3, mut sb3_out, mut sb3_in) = live_writer("sb3-live", &root);
    let lab = serve(&base.join("data"), &root);
    let hf = lab.run_at("/hf-live");
    assert_eq!(hf["format"], "huggingface");
    assert_eq!(hf["errors"], serde_json::json!([]));
    // checkpoint-4's state: four train rows and one evaluation, written
    // just now.
    assert_summary(&hf, "loss", 4, 4, 0.25);
    assert_summary(&hf, "eval_loss", 1, 4, 0.5);
    assert_eq!(hf["status"], "running");
    let sb3 = lab.run_at("/sb3-live");
    assert_summary(&sb3, "rollout/ep_rew_mean", 1, 2048, 10.0);
    assert!(!has_metric(&sb3, "train/value_loss"));
    assert_summary(&sb3, "episode/reward", 5, 4, 14.0);
    for (stdin, stdout) in [(&mut hf_in, &mut hf_out), (&mut sb3_in, &mut sb3_out)] {
        writeln!(stdin).unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    }
    lab.wait_for("the trainer's end and the SB3 dumps", |lab| {
        let hf = lab.run_at("/hf-live");
        let sb3 = lab.run_at("/sb3-live");
        hf["status"] == "finished"
            && has_metric(&sb3, "train/value_loss")
            && summary(&sb3, "episode/reward").0 == 10
            && summary(&sb3, "rollout/ep_rew_mean").0 == 4
    });
    let hf = lab.run_at("/hf-live");
    assert_summary(&hf, "loss", 8, 8, 0.125);
    assert_summary(&hf, "train_runtime", 1, 8, 12.5);
    assert_eq!(hf["errors"], serde_json::json!([]));
    let sb3 = lab.run_at("/sb3-live");
    assert_eq!(sb3["errors"], serde_json::json!([]));
    assert_summary(&sb3, "rollout/ep_rew_mean", 4, 8192, 40.0);
    assert_summary(&sb3, "train/value_loss", 3, 8192, 0.25);
    assert_summary(&sb3, "episode/reward", 10, 9, 19.0);
    let id = sb3["id"].as_str().unwrap();
    let rew = lab.json(&format!("/api/runs/{id}/metrics/rollout%2Fep_rew_mean"));
    assert_eq!(rew["y"], serde_json::json!([10.0, 20.0, 30.0, 40.0]));
    assert!(
        lab.runs()
            .iter()
            .all(|r| !r["path"].as_str().unwrap().contains("/hf-live/")),
        "no checkpoint or runs/ dir is a run"
    );
    writeln!(hf_in).unwrap();
    writeln!(sb3_in).unwrap();
}

/// A FIFO, a link or an oversize file at each name these readers open,
/// a row longer than the line cap and rows that are not UTF-8: errors of
/// their run alone, never a hang, the rest of each run still read.
#[test]
fn hostile_trainer_keras_and_sb3_files_are_errors_of_their_run_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("huggingface", &root);
    write("keras", &root);
    write("sb3", &root);
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = r#"{"log_history": [{"loss": 42, "step": 1}]}"#;
    std::fs::write(outside.join("secret.json"), secret).unwrap();
    let copy = |from: &str, to: &str| {
        let (from, to) = (root.join(from), root.join(to));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    // HF: a FIFO at training_args.json; a link at trainer_state.json (the
    // checkpoint stands in); a 40 MB trainer_state.json (sparse); one
    // that is not JSON.
    copy(
        "hf-out/trainer_state.json",
        "hf-fifo-args/trainer_state.json",
    );
    assert!(nix_mkfifo(&root.join("hf-fifo-args/training_args.json")));
    copy(
        "hf-out/checkpoint-4/trainer_state.json",
        "hf-link/checkpoint-4/trainer_state.json",
    );
    std::os::unix::fs::symlink(
        outside.join("secret.json"),
        root.join("hf-link/trainer_state.json"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("hf-huge")).unwrap();
    std::fs::File::create(root.join("hf-huge/trainer_state.json"))
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    std::fs::create_dir_all(root.join("hf-garbage")).unwrap();
    std::fs::write(
        root.join("hf-garbage/trainer_state.json"),
        b"{\"log_history\": [\xff\xfe]}",
    )
    .unwrap();
    // Keras: a row of 2 MB, rows not UTF-8.
    let mut long = std::fs::read(root.join("keras-fit/training.log")).unwrap();
    long.extend(b"10,");
    long.extend(vec![b'9'; 2 << 20]);
    long.extend(b"\n");
    std::fs::create_dir_all(root.join("keras-long")).unwrap();
    std::fs::write(root.join("keras-long/training.log"), long).unwrap();
    std::fs::create_dir_all(root.join("keras-utf8")).unwrap();
    std::fs::write(
        root.join("keras-utf8/log.csv"),
        b"epoch,loss\n0,0.5\n1,\xff\xfe\n2,0.25\n",
    )
    .unwrap();
    // SB3: a FIFO at progress.csv beside a good monitor; a link at a
    // monitor file beside a good progress.csv.
    copy("sb3-ppo/monitor.csv", "sb3-fifo/monitor.csv");
    assert!(nix_mkfifo(&root.join("sb3-fifo/progress.csv")));
    copy("sb3-ppo/progress.csv", "sb3-link/progress.csv");
    std::os::unix::fs::symlink(
        root.join("sb3-ppo/monitor.csv"),
        root.join("sb3-link/1.monitor.csv"),
    )
    .unwrap();
    // The other way round, each link to the canary: HF's state a FIFO (the
    // checkpoint stands in), its args a link; a Keras log a FIFO or a link
    // (no header to read: no run); SB3's progress.csv a link beside a good
    // monitor, a monitor file a FIFO beside a good progress.csv.
    let canary = canary(&base);
    for (good, at, file, what) in [
        (
            "hf-out",
            "hf-fifo-state",
            "trainer_state.json",
            Hostile::Fifo,
        ),
        (
            "hf-out",
            "hf-link-args",
            "training_args.json",
            Hostile::Link,
        ),
        ("keras-fit", "keras-fifo", "training.log", Hostile::Fifo),
        ("keras-fit", "keras-link", "training.log", Hostile::Link),
        (
            "sb3-ppo",
            "sb3-link-progress",
            "progress.csv",
            Hostile::Link,
        ),
        (
            "sb3-ppo",
            "sb3-fifo-monitor",
            "1.monitor.csv",
            Hostile::Fifo,
        ),
    ] {
        hostile_copy(&root.join(good), &root.join(at), file, what, &canary);
    }

    let started = Instant::now();
    let lab = serve(&base.join("data"), &root);
    let errors = |rel: &str| lab.run_at(rel)["errors"].to_string();
    let fifo = lab.run_at("/hf-fifo-args");
    assert!(
        errors("/hf-fifo-args").contains("training_args.json"),
        "{}",
        fifo["errors"]
    );
    assert_summary(&fifo, "loss", 8, 8, 0.125);
    let link = lab.run_at("/hf-link");
    assert!(
        errors("/hf-link").contains("trainer_state.json: artifact is not a regular file"),
        "{}",
        link["errors"]
    );
    // The link is never followed: the checkpoint's 4 steps, not the
    // outside file's loss 42.
    assert_summary(&link, "loss", 4, 4, 0.25);
    assert!(
        errors("/hf-huge").contains("larger than"),
        "{}",
        errors("/hf-huge")
    );
    assert!(
        errors("/hf-garbage").contains("trainer_state.json: "),
        "{}",
        errors("/hf-garbage")
    );
    assert_eq!(lab.run_at("/hf-garbage")["metrics"], serde_json::json!([]));
    let long = lab.run_at("/keras-long");
    assert!(
        errors("/keras-long").contains("longer than"),
        "{}",
        long["errors"]
    );
    assert_summary(&long, "loss", 10, 9, 0.1);
    let utf8 = lab.run_at("/keras-utf8");
    assert!(
        errors("/keras-utf8").contains("1 rows could not be read"),
        "{}",
        utf8["errors"]
    );
    assert_summary(&utf8, "loss", 2, 2, 0.25);
    let sfifo = lab.run_at("/sb3-fifo");
    assert!(
        errors("/sb3-fifo").contains("progress.csv"),
        "{}",
        sfifo["errors"]
    );
    assert_summary(&sfifo, "episode/reward", 20, 19, 29.0);
    let slink = lab.run_at("/sb3-link");
    assert!(
        errors("/sb3-link").contains("1.monitor.csv"),
        "{}",
        slink["errors"]
    );
    assert_summary(&slink, "rollout/ep_rew_mean", 5, 10240, 50.0);
    assert!(!has_metric(&slink, "1/episode/reward"));
    hostile_runs_hold(
        &lab,
        &canary,
        "/hf-out",
        &[
            (
                "/hf-fifo-state",
                "trainer_state.json: artifact is not a regular file",
            ),
            ("/hf-link-args", "training_args.json"),
            ("/sb3-link-progress", "progress.csv"),
            (
                "/sb3-fifo-monitor",
                "1.monitor.csv: artifact is not a regular file",
            ),
        ],
    );
    assert_summary(&lab.run_at("/hf-link-args"), "loss", 8, 8, 0.125);
    assert_summary(
        &lab.run_at("/sb3-fifo-monitor"),
        "rollout/ep_rew_mean",
        5,
        10240,
        50.0,
    );
    for rel in ["/keras-fifo", "/keras-link"] {
        assert_eq!(id_at(&lab, rel), None, "{rel}: a log never read is no run");
    }
    canary_untouched(&canary);
    // The healthy neighbours are untouched.
    for rel in ["/hf-out", "/keras-fit", "/sb3-ppo"] {
        assert_eq!(lab.run_at(rel)["errors"], serde_json::json!([]), "{rel}");
    }
    assert!(started.elapsed() < Duration::from_secs(120), "no hang");
    // The outside file the link points at is as it was written.
    assert!(
        std::fs::symlink_metadata(outside.join("secret.json"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.json")).unwrap(),
        secret
    );
}

/// Pickles (a Trainer's training_args.bin, params.pkl, weights/*.pt, a
/// Lab run's model.pkl) whose unpickling would create a canary file: after
/// discovery, serving every run and exporting each as a bundle, the canary
/// never appears, and no pickle is served or bundled.
#[test]
fn pickles_are_never_loaded_served_or_bundled() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("huggingface", &root);
    write("keras", &root);
    write("sb3", &root);
    write("pickles", &root);
    let canary = base.join("pickle-canary");
    // The writer unpickled one copy (for pickle-proof): the pickles are live.
    assert!(
        base.join("pickle-proof").exists(),
        "the pickles would open their canary"
    );
    let lab = serve(&base.join("data"), &root);
    for (rel, pickles) in [
        (
            "/hf-out",
            &["training_args.bin", "checkpoint-4/training_args.bin"][..],
        ),
        ("/sb3-ppo", &["params.pkl"][..]),
        ("/keras-fit", &["weights/best.pt"][..]),
        ("/lab-pickled", &["model.pkl"][..]),
    ] {
        let run = lab.run_at(rel);
        let id = run["id"].as_str().unwrap().to_owned();
        let names: Vec<&str> = run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for pickle in pickles {
            assert!(!names.contains(pickle), "{rel}: {names:?}");
            let reply = lab.get(&format!("/api/runs/{id}/artifacts/{pickle}"));
            assert_ne!(reply.status, 200, "{rel}/{pickle} served");
        }
        let file = export(&lab, &id)["file"].as_str().unwrap().to_owned();
        let bundle = std::fs::read(base.join("data/exports").join(&file)).unwrap();
        let needle = b"pickle-canary";
        assert!(
            !bundle.windows(needle.len()).any(|w| w == needle),
            "{rel}: a pickle in the bundle"
        );
        assert!(!canary.exists(), "{rel}: something unpickled");
    }
    // Every run listed and read again, the series asked for.
    for run in lab.runs() {
        let id = run["id"].as_str().unwrap();
        let full = lab.json(&format!("/api/runs/{id}"));
        for m in full["metrics"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap().replace('/', "%2F");
            lab.json(&format!("/api/runs/{id}/metrics/{name}"));
        }
    }
    assert!(!canary.exists(), "something unpickled");
}

/// Sets `path`'s modification time to `secs` after the Unix epoch.
fn set_mtime(path: &Path, secs: u64) {
    std::fs::File::options()
        .append(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// The run's media entry whose artifact name is `name`, fetched: its
/// content type and bytes.
fn media_bytes(lab: &Lab, run: &Value, name: &str) -> (String, Vec<u8>) {
    let media = run["media"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no media {name} in {}", run["media"]));
    assert_eq!(media["kind"], "image", "{media}");
    let url = media["url"].as_str().unwrap_or_else(|| panic!("{media}"));
    let reply = lab.get(url);
    assert_eq!(reply.status, 200, "{name}: {}", reply.text());
    (
        reply.header("content-type").unwrap_or("").to_owned(),
        reply.body.clone(),
    )
}

/// What a hostile variant of a run is made of.
enum Hostile {
    Fifo,
    /// A link to the canary outside the root.
    Link,
    Bytes(Vec<u8>),
}

/// A copy of the run `good` at `at` with `file` replaced by `what`.
fn hostile_copy(good: &Path, at: &Path, file: &str, what: Hostile, canary: &Path) {
    lab_test_support::fixture::Tree::new(at).copy_dir("", good);
    let target = at.join(file);
    let _ = std::fs::remove_file(&target);
    match what {
        Hostile::Fifo => assert!(nix_mkfifo(&target), "mkfifo"),
        Hostile::Link => std::os::unix::fs::symlink(canary, &target).unwrap(),
        Hostile::Bytes(bytes) => std::fs::write(&target, bytes).unwrap(),
    }
}

/// What the canary file holds.
const CANARY: &str = "CANARY-OUTSIDE-THE-ROOT\n";

/// A CANARY file outside the root, for the links of hostile runs.
fn canary(base: &Path) -> PathBuf {
    let canary = base.join("canary.txt");
    std::fs::write(&canary, CANARY).unwrap();
    canary
}

/// The canary the links of hostile runs point at still says what
/// [`canary`] wrote: nothing wrote through a link.
fn canary_untouched(canary: &Path) {
    assert!(
        std::fs::symlink_metadata(canary).unwrap().is_file(),
        "the canary is a file"
    );
    assert_eq!(std::fs::read_to_string(canary).unwrap(), CANARY);
}

/// A header, then a row of more than the 1 MiB line cap.
fn huge_row(header: &str) -> Vec<u8> {
    let mut bytes = format!("{header}\n").into_bytes();
    bytes.extend(std::iter::repeat_n(b'7', 2 << 20));
    bytes.push(b'\n');
    bytes
}

/// Every hostile variant is a run whose errors say `why`, none shows the
/// canary, the healthy run `good` has no errors, and the file `canary`
/// is still a file holding what it was written with (`CANARY`).
fn hostile_runs_hold(lab: &Lab, canary: &Path, good: &str, cases: &[(&str, &str)]) {
    assert_eq!(lab.run_at(good)["errors"], serde_json::json!([]));
    for (rel, why) in cases {
        let run = lab.run_at(rel);
        let errors = run["errors"].to_string();
        assert!(errors.contains(why), "{rel}: {errors} lacks {why:?}");
        assert!(!run.to_string().contains("CANARY"), "{rel}: {run}");
    }
    canary_untouched(canary);
}

/// Ultralytics' layout, as its trainer writes it (the writer needs torch:
/// `write_runs.py ultralytics` lays it out as `ultralytics/engine/
/// trainer.py` `save_metrics` and `BaseTrainer.__init__`, and
/// `ultralytics/cfg/__init__.py` `get_save_dir` show), read exactly; the
/// older padded `results.csv` too; a row appended is followed; hostile
/// variants are errors of their run alone.
#[test]
fn ultralytics_runs_read_exactly_as_its_trainer_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("ultralytics", &root);
    let good = root.join("runs/detect/train");
    set_mtime(&good.join("args.yaml"), 1_700_000_000);
    let canary = canary(&base);
    let hostile = root.join("runs/hostile");
    for (name, file, what) in [
        ("fifo", "results.csv", Hostile::Fifo),
        ("link", "results.csv", Hostile::Link),
        (
            "huge",
            "results.csv",
            Hostile::Bytes(huge_row("epoch,time,loss")),
        ),
        (
            "badutf",
            "args.yaml",
            Hostile::Bytes(b"task: detect\nmode: train\nname: \xff\xfe\n".to_vec()),
        ),
        ("args-fifo", "args.yaml", Hostile::Fifo),
        ("args-link", "args.yaml", Hostile::Link),
    ] {
        hostile_copy(&good, &hostile.join(name), file, what, &canary);
    }
    let lab = serve(&base.join("data"), &root);
    let runs = lab.runs();
    let formats: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            (
                path.strip_prefix(root.to_str().unwrap()).unwrap(),
                r["format"].as_str().unwrap(),
            )
        })
        .collect();
    let mut formats = formats;
    formats.sort();
    assert_eq!(
        formats,
        [
            ("/runs/detect/proj/train2", "ultralytics"),
            ("/runs/detect/train", "ultralytics"),
            // args.yaml no regular file: not Ultralytics' (see below).
            ("/runs/hostile/args-fifo", "keras"),
            ("/runs/hostile/args-link", "keras"),
            ("/runs/hostile/badutf", "ultralytics"),
            ("/runs/hostile/fifo", "ultralytics"),
            ("/runs/hostile/huge", "ultralytics"),
            ("/runs/hostile/link", "ultralytics"),
        ],
        "{}",
        lab.log()
    );

    let run = lab.run_at("/runs/detect/train");
    assert_eq!(run["errors"], serde_json::json!([]), "{run}");
    assert_eq!(run["name"], "train");
    assert_eq!(run["params"]["epochs"], 3);
    assert_eq!(run["params"]["lr0"], 0.01);
    assert_eq!(run["params"]["optimizer"], "auto");
    // A path in args.yaml is text, never opened.
    assert_eq!(run["params"]["data"], "/etc/passwd");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        run["experiment"],
        serde_json::json!({
            "id": format!("ultralytics:{}", root.join("runs/detect").display()),
            "name": "detect"
        })
    );
    for (name, last) in [
        ("train/box_loss", 0.75),
        ("metrics/mAP50(B)", 0.375),
        ("lr/pg0", 0.0025),
        ("time", 4.5),
    ] {
        let m = metric(&run, name);
        assert_eq!(
            (
                m["count"].as_u64(),
                m["last_step"].as_i64(),
                m["last"].as_f64()
            ),
            (Some(3), Some(3), Some(last)),
            "{name}"
        );
    }
    assert_eq!(
        run["metrics"].as_array().unwrap().len(),
        4,
        "{}",
        run["metrics"]
    );
    let id = run["id"].as_str().unwrap();
    let series = lab.json(&format!("/api/runs/{id}/metrics/metrics%2FmAP50(B)"));
    assert_eq!(series["x"], serde_json::json!([1.0, 2.0, 3.0]));
    assert_eq!(series["y"], serde_json::json!([0.125, 0.25, 0.375]));
    // Plots and batches are media, served with their types; the weights
    // never are.
    let (kind, png) = media_bytes(&lab, &run, "results.png");
    assert_eq!(kind, "image/png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let (kind, jpg) = media_bytes(&lab, &run, "train_batch0.jpg");
    assert_eq!(kind, "image/jpeg");
    assert!(jpg.starts_with(b"\xff\xd8\xff"));
    assert_eq!(
        lab.get(&format!("/api/runs/{id}/artifacts/weights/last.pt"))
            .status,
        404
    );

    // Ultralytics 8.0's padded header and values, under a project.
    let old = lab.run_at("/runs/detect/proj/train2");
    assert_eq!(old["errors"], serde_json::json!([]), "{old}");
    assert_eq!(old["experiment"]["name"], "detect/proj");
    let m = metric(&old, "train/box_loss");
    assert_eq!(
        (
            m["count"].as_u64(),
            m["last_step"].as_i64(),
            m["last"].as_f64()
        ),
        (Some(2), Some(2), Some(1.0))
    );
    // Two of five epochs, written just now.
    assert_eq!(old["status"], "running");

    hostile_runs_hold(
        &lab,
        &canary,
        "/runs/detect/train",
        &[
            (
                "/runs/hostile/fifo",
                "results.csv: artifact is not a regular file",
            ),
            ("/runs/hostile/link", "results.csv"),
            ("/runs/hostile/huge", "longer than"),
            ("/runs/hostile/badutf", "args.yaml: not UTF-8"),
        ],
    );
    // A FIFO or a link at args.yaml is never opened, and is no regular
    // file: the directory is then not an Ultralytics run, and its
    // results.csv (a header that starts with `epoch`) reads as a Keras log.
    for rel in ["/runs/hostile/args-fifo", "/runs/hostile/args-link"] {
        let run = lab.run_at(rel);
        assert_eq!(run["format"], "keras", "{rel}");
        assert!(!run.to_string().contains("CANARY"), "{rel}: {run}");
    }
    canary_untouched(&canary);

    // The next epoch is appended: followed.
    let mut csv = std::fs::OpenOptions::new()
        .append(true)
        .open(good.join("results.csv"))
        .unwrap();
    csv.write_all(b"4,6,0.5,0.5,0.00125\n").unwrap();
    lab.wait_for("the fourth epoch", |lab| {
        metric(&lab.run_at("/runs/detect/train"), "train/box_loss")["count"] == 4
    });
}

/// The trial directories of a Ray Tune experiment, each found by ISO
/// order.
fn ray_trials(root: &Path) -> Vec<PathBuf> {
    let exp = root.join("ray_results/exp");
    let mut trials: Vec<PathBuf> = std::fs::read_dir(&exp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("result.json").is_file())
        .collect();
    trials.sort();
    trials
}

/// A real Ray Tune experiment (two trials of three iterations, written
/// by `ray.tune.Tuner` at test time) reads exactly: params, every series,
/// name and title, created, status and the experiment; its event files
/// are the trials', never TensorBoard runs; a result appended is
/// followed; hostile variants are errors of their trial alone.
#[test]
fn ray_tune_trials_written_by_ray_read_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    let started = Instant::now();
    write("raytune", &root);
    eprintln!("ray tune wrote its trials in {:?}", started.elapsed());
    let trials = ray_trials(&root);
    assert_eq!(trials.len(), 2, "{trials:?}");
    let canary = canary(&base);
    let exp = root.join("ray_results/exp");
    let result_name = |i: usize| format!("trainable_x_0000{i}_{i}_lr=9_2026-12-07_11-25-56");
    let finished = exp.join(result_name(5));
    lab_test_support::fixture::Tree::new(&finished).copy_dir("", &trials[0]);
    {
        let mut result = std::fs::read_to_string(finished.join("result.json")).unwrap();
        let last = result
            .lines()
            .last()
            .unwrap()
            .replace("\"done\": false", "\"done\": true");
        result.push_str(&last);
        result.push('\n');
        std::fs::write(finished.join("result.json"), result).unwrap();
    }
    for (i, file, what) in [
        (
            6,
            "error.txt",
            Hostile::Bytes(b"Traceback: boom\n".to_vec()),
        ),
        (7, "result.json", Hostile::Link),
        (8, "result.json", Hostile::Bytes(huge_row("{\"loss\": 1}"))),
        (
            9,
            "params.json",
            Hostile::Bytes(b"{\"lr\": \"\xff\"}".to_vec()),
        ),
        (4, "error.txt", Hostile::Fifo),
        (10, "params.json", Hostile::Fifo),
        (11, "params.json", Hostile::Link),
        (12, "progress.csv", Hostile::Fifo),
        (13, "progress.csv", Hostile::Link),
        (14, "result.json", Hostile::Fifo),
        (15, "error.txt", Hostile::Link),
    ] {
        hostile_copy(&trials[0], &exp.join(result_name(i)), file, what, &canary);
    }
    let lab = serve(&base.join("data"), &root);
    // A trial whose params.json is a FIFO or a link (no regular file) is no
    // Ray trial: what it holds besides, Ray's event file, is then a
    // TensorBoard run.
    let no_params = [result_name(10), result_name(11)];
    let (runs, no_trials): (Vec<Value>, Vec<Value>) = lab.runs().into_iter().partition(|r| {
        let path = r["path"].as_str().unwrap();
        !no_params.iter().any(|n| path.ends_with(n.as_str()))
    });
    assert!(
        runs.iter().all(|r| r["format"] == "raytune"),
        "no event file of a trial is a run of its own: {runs:#?}"
    );
    assert_eq!(runs.len(), 2 + 10, "{runs:#?}");
    assert_eq!(no_trials.len(), 2, "{no_trials:#?}");
    for rel in &no_params {
        let run = lab.run_at(rel);
        assert_eq!(run["format"], "tensorboard", "{rel}");
        assert!(!run.to_string().contains("CANARY"), "{rel}: {run}");
    }

    for (trial, lr) in trials.iter().zip([0.1f64, 0.2]) {
        let dir = trial.file_name().unwrap().to_str().unwrap();
        let run = lab.run_at(dir);
        assert_eq!(run["errors"], serde_json::json!([]), "{run}");
        let first: Value = serde_json::from_str(
            std::fs::read_to_string(trial.join("result.json"))
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        let id = first["trial_id"].as_str().unwrap();
        assert_eq!(run["name_raw"], format!("trainable_{id}"));
        // What the trial varied, as Ray names its directory.
        assert_eq!(run["name"], format!("lr={lr:.4}"));
        assert_eq!(run["params"]["lr"], lr);
        assert_eq!(run["params"]["opt.name"], "adam");
        let begun = first["timestamp"].as_f64().unwrap() - first["time_total_s"].as_f64().unwrap();
        assert_eq!(
            run["created"],
            lab_fs::bundle::iso8601_utc(begun.round() as u64)
        );
        // Written just now, and Ray's function trainables never say done.
        assert_eq!(run["status"], "running");
        assert_eq!(
            run["experiment"],
            serde_json::json!({"id": format!("raytune:{}", exp.display()), "name": "exp"})
        );
        let loss = metric(&run, "loss");
        assert_eq!(
            (
                loss["count"].as_u64(),
                loss["last_step"].as_i64(),
                loss["last"].as_f64()
            ),
            (Some(3), Some(3), Some(lr / 3.0))
        );
        let acc = metric(&run, "nested/acc");
        assert_eq!(
            (acc["count"].as_u64(), acc["last"].as_f64()),
            (Some(3), Some(0.5))
        );
        assert_eq!(metric(&run, "time_total_s")["count"], 3);
        let rid = run["id"].as_str().unwrap();
        let series = lab.json(&format!("/api/runs/{rid}/metrics/loss"));
        assert_eq!(series["x"], serde_json::json!([1.0, 2.0, 3.0]));
        assert_eq!(series["y"], serde_json::json!([lr, lr / 2.0, lr / 3.0]));
        // Ray's bookkeeping is not a metric.
        for name in ["pid", "timestamp", "training_iteration", "done"] {
            assert!(
                run["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|m| m["name"] != name),
                "{name}"
            );
        }
    }
    let done = lab.run_at(&result_name(5));
    assert_eq!(
        (done["status"].as_str(), done["errors"].clone()),
        (Some("finished"), serde_json::json!([]))
    );
    assert!(
        done["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("status_raw=TERMINATED"))
    );
    assert_eq!(lab.run_at(&result_name(6))["status"], "failed");
    hostile_runs_hold(
        &lab,
        &canary,
        trials[1].file_name().unwrap().to_str().unwrap(),
        &[
            (&result_name(7), "result.json"),
            (&result_name(8), "longer than"),
            (&result_name(9), "params.json: not UTF-8"),
            (&result_name(4), "error.txt: artifact is not a regular file"),
            (
                &result_name(14),
                "result.json: artifact is not a regular file",
            ),
            (&result_name(15), "error.txt"),
        ],
    );
    // progress.csv is read only where result.json is absent: a FIFO or a
    // link there is never opened, and the trial reads whole.
    for i in [12, 13] {
        let run = lab.run_at(&result_name(i));
        assert_eq!(run["errors"], serde_json::json!([]), "{run}");
        assert_eq!(metric(&run, "loss")["count"], 3, "{run}");
        assert!(!run.to_string().contains("CANARY"), "{run}");
    }
    canary_untouched(&canary);

    // Another result is appended: followed.
    let dir = trials[0].file_name().unwrap().to_str().unwrap().to_owned();
    let mut result = std::fs::OpenOptions::new()
        .append(true)
        .open(trials[0].join("result.json"))
        .unwrap();
    result
        .write_all(b"{\"loss\": 0.01, \"training_iteration\": 4, \"timestamp\": 1796642800, \"done\": true}\n")
        .unwrap();
    lab.wait_for("the fourth result", |lab| {
        let run = lab.run_at(&dir);
        metric(&run, "loss")["count"] == 4 && run["status"] == "finished"
    });
}

/// A run written by DVCLive's own `Live` reads exactly: params, the
/// plots' series (`train/loss` from a subdirectory), a value only in the
/// summary, the image served; a live writer's steps are followed; hostile
/// variants are errors of their run alone.
#[test]
fn dvclive_runs_read_exactly_and_a_live_one_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("dvclive", &root);
    let good = root.join("dvc-project");
    set_mtime(&good.join("dvclive/params.yaml"), 1_700_000_000);
    let canary = canary(&base);
    for (name, file, what) in [
        ("dvc-fifo", "dvclive/metrics.json", Hostile::Fifo),
        ("dvc-link", "dvclive/plots/metrics/acc.tsv", Hostile::Link),
        (
            "dvc-huge",
            "dvclive/plots/metrics/acc.tsv",
            Hostile::Bytes(huge_row("step\tacc")),
        ),
        (
            "dvc-badutf",
            "dvclive/params.yaml",
            Hostile::Bytes(b"lr: \xff\n".to_vec()),
        ),
        ("dvc-params-fifo", "dvclive/params.yaml", Hostile::Fifo),
        ("dvc-params-link", "dvclive/params.yaml", Hostile::Link),
        ("dvc-metrics-link", "dvclive/metrics.json", Hostile::Link),
        (
            "dvc-tsv-fifo",
            "dvclive/plots/metrics/acc.tsv",
            Hostile::Fifo,
        ),
    ] {
        hostile_copy(&good, &root.join(name), file, what, &canary);
    }
    let lab = serve(&base.join("data"), &root);
    let (_live, mut out, mut stdin) = live_writer("dvclive-live", &root);
    let runs = lab.runs();
    assert!(runs.iter().all(|r| r["format"] == "dvclive"), "{runs:#?}");

    let run = lab.run_at("/dvc-project");
    assert_eq!(run["errors"], serde_json::json!([]), "{run}");
    assert_eq!(run["params"]["lr"], 0.01);
    assert_eq!(run["params"]["model.depth"], 4);
    assert_eq!(run["params"]["model.name"], "mlp");
    assert_eq!(run["created"], "2023-11-14T22:13:20Z");
    assert_eq!(run["status"], "running");
    assert_eq!(
        run["experiment"],
        serde_json::json!({"id": format!("dvclive:{}", root.display()), "name": "experiments"})
    );
    for (name, count, last) in [
        ("train/loss", 10, 0.1),
        ("acc", 10, 0.9),
        ("best/f1", 1, 0.75),
    ] {
        let m = metric(&run, name);
        assert_eq!(
            (
                m["count"].as_u64(),
                m["last_step"].as_i64(),
                m["last"].as_f64()
            ),
            (Some(count), Some(9), Some(last)),
            "{name}"
        );
    }
    assert_eq!(
        run["metrics"].as_array().unwrap().len(),
        3,
        "{}",
        run["metrics"]
    );
    let id = run["id"].as_str().unwrap();
    let series = lab.json(&format!("/api/runs/{id}/metrics/train%2Floss"));
    assert_eq!(series["count"], 10);
    for (i, y) in series["y"].as_array().unwrap().iter().enumerate() {
        assert_eq!(y.as_f64(), Some(1.0 / (i as f64 + 1.0)), "step {i}");
    }
    let (kind, png) = media_bytes(&lab, &run, "dvclive/plots/images/final.png");
    assert_eq!(kind, "image/png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    hostile_runs_hold(
        &lab,
        &canary,
        "/dvc-project",
        &[
            ("/dvc-fifo", "metrics.json: artifact is not a regular file"),
            ("/dvc-link", "acc.tsv: artifact is not a regular file"),
            ("/dvc-huge", "longer than"),
            ("/dvc-badutf", "params.yaml: not UTF-8"),
            (
                "/dvc-params-fifo",
                "params.yaml: artifact is not a regular file",
            ),
            ("/dvc-params-link", "params.yaml"),
            ("/dvc-metrics-link", "metrics.json"),
            ("/dvc-tsv-fifo", "acc.tsv: artifact is not a regular file"),
        ],
    );
    canary_untouched(&canary);

    // The live writer's first five steps, then all ten.
    let count = |lab: &Lab| {
        lab.runs()
            .iter()
            .find(|r| r["path"].as_str().unwrap().ends_with("/dvc-live"))
            .map(|r| lab.json(&format!("/api/runs/{}", r["id"].as_str().unwrap())))
            .map_or(0, |run| {
                run["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["name"] == "train/loss")
                    .map_or(0, |m| m["count"].as_u64().unwrap())
            })
    };
    lab.wait_for("the first five steps", |lab| count(lab) == 5);
    writeln!(stdin).unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("all ten steps", |lab| count(lab) == 10);
    writeln!(stdin).unwrap();
}

/// The id of the run whose path ends with `rel`.
fn id_at(lab: &Lab, rel: &str) -> Option<String> {
    lab.runs()
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(rel)))
        .and_then(|r| r["id"].as_str().map(str::to_owned))
}

#[test]
fn sacred_runs_read_exactly_and_a_live_one_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("sacred", &root);
    let runs_dir = root.join("sacred_runs");
    // Hostile copies of run 1, each a run of its own with one error.
    std::fs::write(base.join("canary"), b"canary").unwrap();
    let copy = |name: &str| {
        let dir = runs_dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["run.json", "config.json", "metrics.json", "cout.txt"] {
            std::fs::copy(runs_dir.join("1").join(f), dir.join(f)).unwrap();
        }
        dir
    };
    let fifo = copy("h-fifo");
    std::fs::remove_file(fifo.join("metrics.json")).unwrap();
    lab_fs::fuzz::make_fifo(&fifo.join("metrics.json")).unwrap();
    let link = copy("h-link");
    std::fs::remove_file(link.join("metrics.json")).unwrap();
    std::os::unix::fs::symlink(base.join("canary"), link.join("metrics.json")).unwrap();
    // run.json and config.json a FIFO or a link to the canary too.
    for (name, file) in [
        ("h-run-fifo", "run.json"),
        ("h-run-link", "run.json"),
        ("h-cfg-fifo", "config.json"),
        ("h-cfg-link", "config.json"),
    ] {
        let at = copy(name).join(file);
        std::fs::remove_file(&at).unwrap();
        if name.ends_with("fifo") {
            lab_fs::fuzz::make_fifo(&at).unwrap();
        } else {
            std::os::unix::fs::symlink(base.join("canary"), &at).unwrap();
        }
    }
    let utf8 = copy("h-utf8");
    std::fs::write(utf8.join("config.json"), b"{\"lr\": \"\xff\xfe\"}").unwrap();
    let big = copy("h-big");
    // A metrics.json past the cap (64 MiB), sparse.
    std::fs::File::options()
        .write(true)
        .open(big.join("metrics.json"))
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    let lab = serve(&base.join("data"), &root);

    let run_json: Value =
        serde_json::from_slice(&std::fs::read(runs_dir.join("1/run.json")).unwrap()).unwrap();
    let start = run_json["start_time"].as_str().unwrap();
    let one = lab.run_at("sacred_runs/1");
    assert_eq!(one["format"], "sacred");
    assert_eq!(one["errors"], serde_json::json!([]), "{one}");
    assert_eq!(one["status"], "finished");
    assert!(
        one["tags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("status_raw=COMPLETED")),
        "{one}"
    );
    assert_eq!(one["created"], format!("{}Z", &start[..19]));
    assert_eq!(
        one["experiment"],
        serde_json::json!({"id": "sacred:mnist_sweep", "name": "mnist_sweep"})
    );
    assert_eq!(
        one["params"],
        serde_json::json!({"fail": false, "lr": 0.01, "model.act": "relu", "model.depth": 4, "seed": 7})
    );
    let loss = metric(&one, "train.loss");
    assert_eq!(
        (&loss["count"], &loss["last_step"], &loss["last"]),
        (&Value::from(5), &Value::from(4), &Value::from(0.2))
    );
    let acc = metric(&one, "acc");
    assert_eq!(
        (&acc["count"], &acc["last_step"]),
        (&Value::from(5), &Value::from(4))
    );
    assert!(close(acc["last"].as_f64().unwrap(), 0.04), "{acc}");
    let id = one["id"].as_str().unwrap();
    let media = one["media"].as_array().unwrap();
    assert_eq!(media.len(), 1, "{media:?}");
    assert_eq!(
        (&media[0]["name"], &media[0]["kind"]),
        (&Value::from("plot.png"), &Value::from("image"))
    );
    let plot = lab.get(&format!("/api/runs/{id}/artifacts/plot.png"));
    assert_eq!(
        (plot.status, plot.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(
        plot.body,
        std::fs::read(runs_dir.join("1/plot.png")).unwrap()
    );
    let cout = lab.get(&format!("/api/runs/{id}/artifacts/cout.txt"));
    assert_eq!(
        cout.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(cout.text().contains("hello from cout"), "{}", cout.text());

    // The failed run says what it changed.
    let two = lab.run_at("sacred_runs/2");
    assert_eq!(
        (&two["status"], &two["name"]),
        (&Value::from("failed"), &Value::from("fail=true,lr=0.1"))
    );
    assert_eq!(two["params"]["lr"], 0.1);
    assert!(close(metric(&two, "acc")["last"].as_f64().unwrap(), 0.4));
    assert_eq!(two["experiment"], one["experiment"]);
    // `_sources/` is no run; every run under sacred_runs/ is Sacred's.
    let paths: Vec<String> = lab
        .runs()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(!paths.iter().any(|p| p.ends_with("_sources")), "{paths:?}");

    // Each hostile file is an error of its own run, the rest of it read.
    for (rel, error) in [
        ("h-fifo", "metrics.json: artifact is not a regular file"),
        ("h-link", "metrics.json: "),
        ("h-utf8", "config.json: invalid unicode"),
        ("h-big", "metrics.json: larger than 67108864 bytes"),
        ("h-cfg-fifo", "config.json: artifact is not a regular file"),
        ("h-cfg-link", "config.json: "),
    ] {
        let run = lab.run_at(&format!("sacred_runs/{rel}"));
        assert_eq!(run["format"], "sacred", "{rel}");
        let errors = run["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{rel}: {errors:?}");
        assert!(
            errors[0].as_str().unwrap().starts_with(error),
            "{rel}: {errors:?}"
        );
        assert!(
            !errors[0].as_str().unwrap().contains("canary"),
            "{rel}: {errors:?}"
        );
        assert_eq!(run["status"], "finished", "{rel}");
    }
    // run.json a FIFO or a link: never read, so nothing says the directory
    // is Sacred's (nor any other format's): no run.
    for rel in ["sacred_runs/h-run-fifo", "sacred_runs/h-run-link"] {
        assert_eq!(id_at(&lab, rel), None, "{rel}");
    }
    assert_eq!(std::fs::read(base.join("canary")).unwrap(), b"canary");

    // A run still being written: its series grow, it runs, then completes.
    let (mut live, mut out, mut stdin) = live_writer("sacred-live", &root);
    let count = |lab: &Lab| -> Option<u64> {
        let id = id_at(lab, "sacred_live/1")?;
        let run = lab.json(&format!("/api/runs/{id}"));
        run["metrics"]
            .as_array()?
            .iter()
            .find(|m| m["name"] == "loss")?["count"]
            .as_u64()
    };
    lab.wait_for("the live run's first half", |lab| count(lab) == Some(5));
    writeln!(stdin, "go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("the live run's second half", |lab| count(lab) == Some(10));
    assert_eq!(lab.run_at("sacred_live/1")["status"], "running");
    writeln!(stdin, "end").unwrap();
    assert!(live.0.wait().unwrap().success());
    lab.wait_for("the live run's end", |lab| {
        lab.run_at("sacred_live/1")["status"] == "finished"
    });
    let live = lab.run_at("sacred_live/1");
    assert_eq!(metric(&live, "loss")["last"], 0.1);
    assert_eq!(live["experiment"]["name"], "live_sweep");
}

#[test]
fn trackio_projects_read_exactly_from_a_snapshot_and_a_live_one_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("trackio", &root);
    let store = root.join("trackio");
    // Hostile neighbours: a project database that is not SQLite, another
    // program's SQLite database, and a project whose database is a FIFO or
    // a link (each in a directory of its own beside `media/`).
    std::fs::write(base.join("canary"), b"canary").unwrap();
    let beside = |name: &str| {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("media")).unwrap();
        dir
    };
    let mut not_sqlite = b"SQLite format 3\0".to_vec();
    not_sqlite.extend(b"but not really".repeat(100));
    std::fs::write(beside("fake").join("proj.db"), not_sqlite).unwrap();
    #[allow(clippy::disallowed_methods)] // a real SQLite file of another program
    let made = Command::new(python())
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table notes(x)'); c.commit()")
        .arg(beside("foreign").join("notes.db"))
        .status()
        .unwrap();
    assert!(made.success());
    // A FIFO or a link at the database's own name: no store there at all
    // (discovery lists regular files only); at its `-wal`: a warning of
    // that store alone, the canary never read.
    lab_fs::fuzz::make_fifo(&beside("fifo-db").join("proj.db")).unwrap();
    std::os::unix::fs::symlink(store.join("vision.db"), beside("link-db").join("proj.db")).unwrap();
    for (name, plant) in [("fifo", true), ("link", false)] {
        let dir = beside(name);
        std::fs::copy(store.join("vision.db"), dir.join("vision.db")).unwrap();
        if plant {
            lab_fs::fuzz::make_fifo(&dir.join("vision.db-wal")).unwrap();
        } else {
            std::os::unix::fs::symlink(base.join("canary"), dir.join("vision.db-wal")).unwrap();
        }
    }
    // A media path that leaves the run's media directory, added to a copy
    // of the project (the real database, one row more).
    let evil = beside("evil");
    std::fs::copy(store.join("vision.db"), evil.join("vision.db")).unwrap();
    #[allow(clippy::disallowed_methods)] // the test damages a real database
    let damaged = Command::new(python())
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             run=c.execute(\"select run_id from configs where run_name='alpha'\").fetchone()[0]; \
             c.execute(\"insert into metrics (run_id, timestamp, run_name, step, metrics) values (?, '2026-01-01T00:00:00+00:00', 'alpha', 9, ?)\", \
               (run, '{\"x\": {\"_type\": \"trackio.image\", \"file_path\": \"../../../canary\"}, \"huge\": 1}')); c.commit()",
        )
        .arg(evil.join("vision.db"))
        .status()
        .unwrap();
    assert!(damaged.success());
    let before = snapshot(&store);
    let lab = serve(&base.join("data"), &root);

    let runs = lab.runs();
    let mine: Vec<&Value> = runs
        .iter()
        .filter(|r| r["format"] == "trackio" && r["path"].as_str().unwrap().ends_with("/trackio"))
        .collect();
    assert_eq!(mine.len(), 2, "{runs:#?}\n{}", lab.log());
    let find = |name: &str| {
        let id = mine
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {mine:#?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        lab.json(&format!("/api/runs/{id}"))
    };
    let alpha = find("alpha");
    let beta = find("beta");
    assert_eq!(alpha["errors"], serde_json::json!([]), "{alpha}");
    assert_eq!(
        alpha["params"],
        serde_json::json!({"layers.0": 1, "layers.1": 2, "lr": 0.01, "opt.name": "adam"})
    );
    let exp = alpha["experiment"].clone();
    assert_eq!(exp["name"], "vision");
    assert_eq!(
        exp["id"],
        format!("trackio:{}#vision", store.display()),
        "{exp}"
    );
    assert_eq!(beta["experiment"], exp);
    // Written just now: running (Trackio records no end).
    assert_eq!(alpha["status"], "running");
    assert!(alpha["created"].as_str().unwrap().ends_with('Z'), "{alpha}");
    for (name, count, last_step, last) in [
        ("loss", 5, 4, Value::from(0.2)),
        ("acc", 5, 4, Value::from(0.4)),
        ("train/grad", 5, 4, Value::from(4.0)),
        ("bad", 1, 4, Value::Null),
    ] {
        let m = metric(&alpha, name);
        assert_eq!(
            (&m["count"], &m["last_step"], &m["last"]),
            (&Value::from(count), &Value::from(last_step), &last),
            "{name}: {m}"
        );
    }
    assert_eq!(metric(&beta, "loss")["last"], 5.0);
    assert_eq!(beta["params"], serde_json::json!({"lr": 0.1}));
    let media = alpha["media"].as_array().unwrap();
    assert_eq!(media.len(), 1, "{media:?}");
    assert_eq!(
        (&media[0]["kind"], &media[0]["step"], &media[0]["key"]),
        (
            &Value::from("image"),
            &Value::from(2),
            &Value::from("sample")
        )
    );
    let name = media[0]["name"].as_str().unwrap();
    assert!(name.starts_with("2/") && name.ends_with(".png"), "{name}");
    let id = alpha["id"].as_str().unwrap();
    let image = lab.get(&format!("/api/runs/{id}/artifacts/{name}"));
    assert_eq!(
        (image.status, image.header("content-type")),
        (200, Some("image/png"))
    );
    assert_eq!(
        image.body,
        std::fs::read(store.join("media/vision/alpha").join(name)).unwrap()
    );
    // The database is never served, nor anything beside the run's media.
    for other in ["vision.db", "../../vision.db", "2/../../beta"] {
        assert_ne!(
            lab.get(&format!("/api/runs/{id}/artifacts/{other}")).status,
            200
        );
    }
    assert_eq!(snapshot(&store), before, "nothing written in the store");

    // Each hostile neighbour is a warning or an error of its own alone.
    let warnings = lab.json("/api/status")["discovery_warnings"].to_string();
    for needle in [
        "fake: proj.db: file is not a database",
        "foreign: notes.db: not a Trackio project",
        "fifo: vision.db-wal: ",
        "link: vision.db-wal: ",
    ] {
        assert!(warnings.contains(needle), "{needle}: {warnings}");
    }
    assert!(
        !warnings.contains("fifo-db") && !warnings.contains("link-db"),
        "{warnings}"
    );
    let paths: Vec<&str> = runs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    for hostile in [
        "/fake", "/foreign", "/fifo", "/link", "/fifo-db", "/link-db",
    ] {
        assert!(
            !paths.iter().any(|p| p.ends_with(hostile)),
            "{hostile}: {paths:?}"
        );
    }
    let evil_alpha = runs
        .iter()
        .find(|r| r["name"] == "alpha" && r["path"].as_str().unwrap().ends_with("/evil"))
        .unwrap();
    let evil_alpha = lab.json(&format!("/api/runs/{}", evil_alpha["id"].as_str().unwrap()));
    assert_eq!(
        evil_alpha["errors"],
        serde_json::json!([
            "vision.db: 1 media paths outside the run's media directory were not served"
        ])
    );
    assert_eq!(evil_alpha["media"].as_array().unwrap().len(), 1);
    assert_eq!(metric(&evil_alpha, "huge")["last"], 1.0);
    assert_eq!(std::fs::read(base.join("canary")).unwrap(), b"canary");

    // A project being written: new rows appear on refresh.
    let (mut live, mut out, mut stdin) = live_writer("trackio-live", &root);
    let count = |lab: &Lab| -> Option<u64> {
        let runs = lab.runs();
        let run = runs.iter().find(|r| r["name"] == "gamma")?;
        let series = lab.get(&format!("/api/runs/{}/metrics/loss", run["id"].as_str()?));
        (series.status == 200)
            .then(|| series.json()["count"].as_u64())
            .flatten()
    };
    lab.wait_for("the live project's first half", |lab| count(lab) == Some(5));
    writeln!(stdin, "go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    lab.wait_for("the live project's second half", |lab| {
        count(lab) == Some(10)
    });
    writeln!(stdin, "end").unwrap();
    assert!(live.0.wait().unwrap().success());
    let gamma = lab
        .runs()
        .into_iter()
        .find(|r| r["name"] == "gamma")
        .unwrap();
    let gamma = lab.json(&format!("/api/runs/{}", gamma["id"].as_str().unwrap()));
    assert_eq!(gamma["experiment"]["name"], "live");
    assert_eq!(metric(&gamma, "loss")["last"], 0.1);
    assert_eq!(gamma["params"]["lr"], 0.5);
}

/// The bundled fixtures (`fixtures/runs`, what README's first command
/// serves) hold a run of every format the Lab reads, each read without an
/// error: a newcomer sees them all.
#[test]
fn the_bundled_fixtures_hold_a_run_of_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/runs")
        .canonicalize()
        .unwrap();
    let lab = serve(&tmp.path().join("data"), &fixtures);
    let status = lab.json("/api/status");
    let mut every: Vec<String> = status["formats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    every.sort();
    assert_eq!(every.len(), 14, "{status}");
    let runs = lab.runs();
    let mut seen: Vec<String> = runs
        .iter()
        .map(|r| r["format"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, every, "{}", lab.log());
    for run in &runs {
        assert_eq!(run["error_count"], 0, "{run}");
        assert_eq!(run["available"], true, "{run}");
    }
    assert_eq!(status["unrecognised"]["count"], 0, "{status}");
}

/// Whether `got` is `want` within 1e-9 relative (absolute near 0).
fn within_1e9(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-9 * want.abs().max(got.abs()).max(1e-300) || got == want
}

/// The histogram route's answer for each of `run`'s histograms, by name.
fn histogram_answers(lab: &Lab, run: &Value) -> Vec<(String, Value)> {
    let id = run["id"].as_str().unwrap();
    run["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let name = h["name"].as_str().unwrap().to_owned();
            let got = lab.json(&format!(
                "/api/runs/{id}/histograms/{}?points=10000",
                pct(&name)
            ));
            (name, got)
        })
        .collect()
}

/// Histograms written by tensorboardX's `add_histogram` (TensorBoard's
/// default bins and numpy's "auto"), TensorBoard's own TF2 histogram
/// summary and `wandb.Histogram` (offline): the histogram route's bands
/// at every step are what TensorBoard's own `compress_histogram_proto`
/// (`compress_histogram` for the TF2 tensor) makes of the same histogram,
/// as the writer computed them (`expected-bands.json`, beside the runs),
/// within 1e-9 relative; `points` picks steps evenly, the last among them;
/// a histogram's fields are no metrics; and a bundle of the TensorBoard
/// run, reimported, answers the same.
#[test]
fn histograms_read_as_tensorboards_own_distribution_bands() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("histograms", &root);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(root.join("expected-bands.json")).unwrap()).unwrap();
    let lab = serve(&base.join("data"), &root);
    let tb = lab.run_at("/tb-hist");
    assert_eq!(tb["format"], "tensorboard");
    let wandb_path = lab
        .runs()
        .into_iter()
        .find(|r| r["format"] == "wandb")
        .unwrap_or_else(|| panic!("no W&B run\n{}", lab.log()))["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let wb = lab.run_at(&wandb_path);
    for (run, format) in [(&tb, "tensorboard"), (&wb, "wandb")] {
        assert_eq!(run["errors"], serde_json::json!([]), "{format}");
        // A histogram's fields (values, bins, _type) are no metrics.
        let metrics: Vec<&str> = run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(metrics, ["loss"], "{format}");
        let want = expected[format].as_object().unwrap();
        let listed: Vec<&str> = run["histograms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(listed, want.keys().map(String::as_str).collect::<Vec<_>>());
        for (name, got) in histogram_answers(&lab, run) {
            let steps = want[&name].as_array().unwrap();
            let info = run["histograms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["name"] == name.as_str())
                .unwrap();
            assert_eq!(info["count"], steps.len(), "{format} {name}");
            assert_eq!(info["last_step"], steps.last().unwrap()["step"]);
            assert_eq!(got["name"], name.as_str());
            let points = got["points"].as_array().unwrap();
            assert_eq!(points.len(), steps.len(), "{format} {name}");
            for (p, w) in points.iter().zip(steps) {
                assert_eq!(p["step"], w["step"], "{format} {name}");
                assert!(p["wall_time"].as_f64().unwrap() > 1.7e9, "{p}");
                let (got_bands, want_bands) = (
                    p["bands"].as_array().unwrap(),
                    w["bands"].as_array().unwrap(),
                );
                assert_eq!(got_bands.len(), 9);
                for (g, e) in got_bands.iter().zip(want_bands) {
                    let (g, e) = (g.as_f64().unwrap(), e.as_f64().unwrap());
                    assert!(
                        within_1e9(g, e),
                        "{format} {name} step {}: {got_bands:?} != {want_bands:?}",
                        w["step"]
                    );
                }
            }
        }
    }
    // Three of ten steps (0, 5, …, 45): the first, one between, the last.
    let id = tb["id"].as_str().unwrap();
    let three = lab.json(&format!(
        "/api/runs/{id}/histograms/layer1%2Fweights?points=3"
    ));
    let steps: Vec<i64> = three["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, [0, 20, 45]);
    // The bundle carries the histograms (`histograms.jsonl`): reimported,
    // the same answers.
    let copy_id = export_and_reimport(&lab, &base, id);
    let copy = lab.json(&format!("/api/runs/{copy_id}"));
    assert_eq!(copy["format"], "lab", "{copy}");
    assert_eq!(copy["histograms"], tb["histograms"]);
    assert_eq!(histogram_answers(&lab, &copy), histogram_answers(&lab, &tb));
    assert!(
        copy["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "histograms.jsonl"),
        "{copy}"
    );
}

/// The `tensorboard` and `wandb` fixture writers log a histogram too
/// (`weights`): each run lists it, and W&B's `[1, 3, 2]` over the bins
/// `[0, 1, 2, 4]` gives the bands worked out by hand (weights 10000/6,
/// 40000/6, 10000; each basis point interpolated in its bin).
#[test]
fn the_fixture_writers_histograms_are_listed_and_banded() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("tensorboard", &root);
    write("wandb", &root);
    let lab = serve(&base.join("data"), &root);
    let tb = lab.run_at("/tb-ppo-seed1");
    assert_eq!(
        tb["histograms"],
        serde_json::json!([{"name": "weights", "count": 2, "last_step": 10}])
    );
    let wandb_path = lab
        .runs()
        .into_iter()
        .find(|r| r["format"] == "wandb")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let wb = lab.run_at(&wandb_path);
    assert_eq!(
        wb["histograms"],
        serde_json::json!([{"name": "weights", "count": 1, "last_step": 12}])
    );
    assert!(!has_metric(&wb, "weights.values") && !has_metric(&wb, "weights.bins"));
    let got = lab.json(&format!(
        "/api/runs/{}/histograms/weights",
        wb["id"].as_str().unwrap()
    ));
    let (w1, w2) = (10_000.0 / 6.0, 40_000.0 / 6.0);
    let by_hand = |b: f64| {
        if b < w1 {
            b / w1
        } else if b < w2 {
            1.0 + (b - w1) / (w2 - w1)
        } else if b < 10_000.0 {
            2.0 + (b - w2) * 2.0 / (10_000.0 - w2)
        } else {
            4.0
        }
    };
    let bands = got["points"][0]["bands"].as_array().unwrap();
    let basis = [
        0.0, 668.0, 1587.0, 3085.0, 5000.0, 6915.0, 8413.0, 9332.0, 10000.0,
    ];
    for (band, b) in bands.iter().zip(basis) {
        assert!(
            within_1e9(band.as_f64().unwrap(), by_hand(b)),
            "{band} != {} at {b}",
            by_hand(b)
        );
    }
    assert_eq!(got["points"][0]["step"], 12);
}

/// Histograms no reader may keep, written by the real writers (a million
/// buckets given, NaN and infinite edges, lengths that differ, negative
/// counts) and a bundle's `histograms.jsonl` with 200,000 buckets on a
/// line, a bad line and one a megabyte long: each is an error of its run,
/// named, never kept; the good histogram beside them is served; another
/// run is untouched.
#[test]
fn hostile_histograms_are_errors_of_their_run_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("histograms-hostile", &root);
    let lab_run = root.join("lab-hostile");
    std::fs::create_dir_all(&lab_run).unwrap();
    std::fs::write(lab_run.join("run.json"), "{\"name\": \"lab-hostile\"}").unwrap();
    let many = vec!["1"; 200_000].join(",");
    let lines = [
        "{\"name\": \"ok\", \"step\": 1, \"min\": 0, \"max\": 2, \"limits\": [1, 2], \"counts\": [1, 3]}".to_owned(),
        format!("{{\"name\": \"many\", \"step\": 1, \"min\": 0, \"max\": 2, \"limits\": [{many}], \"counts\": [{many}]}}"),
        "{\"name\": \"text\", \"step\": 1, \"min\": 0, \"max\": 2, \"limits\": \"x\", \"counts\": []}".to_owned(),
    ];
    std::fs::write(lab_run.join("histograms.jsonl"), lines.join("\n") + "\n").unwrap();
    let long_run = root.join("lab-long-line");
    std::fs::create_dir_all(&long_run).unwrap();
    std::fs::write(long_run.join("run.json"), "{\"name\": \"long\"}").unwrap();
    std::fs::write(
        long_run.join("histograms.jsonl"),
        format!(
            "{{\"name\": \"w\", \"limits\": [{}]}}\n",
            "1,".repeat(1 << 20)
        ),
    )
    .unwrap();
    write("tensorboard", &root);
    let lab = serve(&base.join("data"), &root);
    let wandb_path = lab
        .runs()
        .into_iter()
        .find(|r| r["format"] == "wandb")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: [(&str, &[&str]); 3] = [
        (
            "/tb-hostile",
            &[
                "\"million\": 1000000 buckets (at most 1000",
                "\"nan-limit\": a bucket limit that is not a finite number",
                "\"inf-limit\": a bucket limit that is not a finite number",
                "\"lengths\": 3 bucket limits but 2 counts",
                "\"negative\": a bucket count that is negative",
            ],
        ),
        (
            &wandb_path,
            &[
                "\"million\": 1000000 buckets (at most 1000",
                "\"nan-bin\": a bin or value that is not a number",
                "\"lengths\": 2 bins for 2 values",
                "\"negative\": a bucket count that is negative",
            ],
        ),
        (
            "/lab-hostile",
            &[
                "\"many\": 200000 buckets (at most 1000",
                "histograms.jsonl line 3: invalid type",
            ],
        ),
    ];
    for (at, reasons) in cases {
        let run = lab.run_at(at);
        assert_eq!(
            run["histograms"],
            serde_json::json!([{"name": "ok", "count": 1, "last_step": 1}]),
            "{at}"
        );
        let errors: Vec<&str> = run["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let errors = errors.join("\n");
        for why in reasons {
            assert!(errors.contains(why), "{at}: {why} not in {errors}");
        }
        let id = run["id"].as_str().unwrap();
        let ok = lab.json(&format!("/api/runs/{id}/histograms/ok"));
        assert_eq!(ok["points"].as_array().unwrap().len(), 1, "{at}");
        let refused = lab.get(&format!("/api/runs/{id}/histograms/negative"));
        assert_eq!(refused.status, 404, "{at}");
    }
    // A line over the cap stops that file, as any Lab file's.
    let long = lab.run_at("/lab-long-line");
    assert_eq!(long["histograms"], serde_json::json!([]));
    assert!(
        long["errors"].to_string().contains("histograms.jsonl"),
        "{long}"
    );
    // The run beside them is whole.
    let tb = lab.run_at("/tb-ppo-seed1");
    assert_eq!(tb["errors"], serde_json::json!([]));
    assert_eq!(tb["histograms"][0]["count"], 2);
}

/// What a round-trip must bring back of one run (the issue's list): its
/// name, experiment name, status, created, params, every point of every
/// scalar series, media as (kind, key, step), histograms as the
/// histogram route answers them, tables as (key, step) with their files'
/// bytes.
#[derive(Debug, PartialEq)]
struct Whole {
    name: Value,
    experiment: Value,
    status: Value,
    created: Value,
    params: Value,
    series: std::collections::BTreeMap<String, (Value, Value)>,
    /// (kind, key, step, a hash of the bytes served at its `url`).
    media: std::collections::BTreeSet<(String, Option<String>, Option<i64>, u64)>,
    tables: std::collections::BTreeMap<(Option<String>, Option<i64>), Vec<u8>>,
    /// The histogram route's answer for each histogram, by name.
    histograms: Vec<(String, Value)>,
}

fn whole(lab: &Lab, id: &str) -> Whole {
    let run = lab.json(&format!("/api/runs/{id}"));
    assert_eq!(run["error_count"], 0, "{run:#}");
    let mut series = std::collections::BTreeMap::new();
    for m in run["metrics"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let count = m["count"].as_u64().unwrap();
        // Full resolution: every point in a bucket of its own.
        assert!(count <= 10_000, "{name}: {count} points");
        let s = lab.json(&format!(
            "/api/runs/{id}/metrics/{}?points=10000",
            pct(name)
        ));
        assert_eq!(s["count"], count, "{name}");
        series.insert(name.to_owned(), (s["x"].clone(), s["y"].clone()));
    }
    let media = run["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let url = m["url"].as_str().unwrap();
            let got = lab.get(url);
            assert_eq!(got.status, 200, "{url}: {}", got.text());
            (
                m["kind"].as_str().unwrap().to_owned(),
                m["key"].as_str().map(str::to_owned),
                m["step"].as_i64(),
                fnv(&got.body),
            )
        })
        .collect();
    let tables = run["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            let got = lab.get(&format!("/api/runs/{id}/artifacts/{}", pct(name)));
            assert_eq!(got.status, 200, "{name}: {}", got.text());
            (
                (t["key"].as_str().map(str::to_owned), t["step"].as_i64()),
                got.body.clone(),
            )
        })
        .collect();
    Whole {
        name: run["name"].clone(),
        experiment: run["experiment"]["name"].clone(),
        status: run["status"].clone(),
        created: run["created"].clone(),
        params: run["params"].clone(),
        series,
        histograms: histogram_answers(lab, &run),
        media,
        tables,
    }
}

/// Serves a copy of the committed fixture runs of one format
/// (`fixtures/runs/<format_dir>`), exports each with the real `lab
/// export`, imports the bundle with `lab import-bundle` into another
/// scratch root, and checks the reimported run is the original whole
/// ([`Whole`]). Returns what was compared, per run, for a test's own
/// checks that the comparison was not of nothing.
fn round_trip(format_dir: &str) -> Vec<Whole> {
    round_trip_redacting(format_dir, &[])
}

/// [`round_trip`], where the params `redacted` must come back redacted
/// (and every other item as it was).
fn round_trip_redacting(format_dir: &str, redacted: &[&str]) -> Vec<Whole> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/runs")
        .join(format_dir)
        .canonicalize()
        .unwrap();
    round_trip_of(&fixtures, format_dir, redacted)
}

/// [`round_trip_redacting`] of the runs in `fixtures` (copied first).
fn round_trip_of(fixtures: &Path, format_dir: &str, redacted: &[&str]) -> Vec<Whole> {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("runs");
    lab_test_support::fixture::Tree::new(&root).copy_dir(format_dir, fixtures);
    let into = base.join("reimported");
    std::fs::create_dir_all(&into).unwrap();
    let data = base.join("data");
    let lab = serve(&data, &root);
    let originals: Vec<String> = lab
        .runs()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!originals.is_empty(), "no run in {format_dir}");
    let mut compared = Vec::new();
    for id in &originals {
        let before = whole(&lab, id);
        let out = lab_cmd(&data).arg("export").arg(id).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bundle = text
            .split(" to ")
            .nth(1)
            .and_then(|t| t.split(" (").next())
            .unwrap_or_else(|| panic!("no bundle in {text:?}"));
        let out = lab_cmd(&data)
            .arg("--root")
            .arg(&into)
            .arg("import-bundle")
            .arg(bundle)
            .arg("--into")
            .arg(&into)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let new = text
            .strip_prefix("imported bundle as ")
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("no new id in {text:?}"))
            .to_owned();
        lab.wait_for("the reimported run", |lab| {
            lab.get(&format!("/api/runs/{new}")).status == 200
        });
        let after = whole(&lab, &new);
        let gaps = differences(&before, &after, redacted);
        assert!(
            gaps.is_empty(),
            "{format_dir}: {id} came back as {new}, not whole:\n{}",
            gaps.join("\n")
        );
        compared.push(before);
    }
    compared
}

/// FNV-1a of `bytes` (to compare media files without holding them).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What differs between a run and its reimported copy, one line each.
fn differences(before: &Whole, after: &Whole, redacted: &[&str]) -> Vec<String> {
    let mut gaps = Vec::new();
    for (what, a, b) in [
        ("name", &before.name, &after.name),
        ("experiment", &before.experiment, &after.experiment),
        ("status", &before.status, &after.status),
        ("created", &before.created, &after.created),
    ] {
        if a != b {
            gaps.push(format!("{what}: {a} became {b}"));
        }
    }
    if before.params != after.params {
        let (a, b) = (
            before.params.as_object().unwrap(),
            after.params.as_object().unwrap(),
        );
        for (k, v) in a {
            // A secret-looking value is redacted on its way into a bundle
            // (SECURITY.md): the one change a round-trip makes, by design.
            if redacted.contains(&k.as_str()) {
                if b.get(k) != Some(&Value::from("[REDACTED]")) {
                    gaps.push(format!("param {k}: {v} was not redacted: {:?}", b.get(k)));
                }
                continue;
            }
            if b.get(k) != Some(v) {
                gaps.push(format!("param {k}: {v} became {:?}", b.get(k)));
            }
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            gaps.push(format!("param {k}: added"));
        }
    }
    for (name, points) in &before.series {
        match after.series.get(name) {
            None => gaps.push(format!("series {name}: lost")),
            Some(p) if p != points => gaps.push(format!("series {name}: {points:?} became {p:?}")),
            Some(_) => {}
        }
    }
    for name in after
        .series
        .keys()
        .filter(|n| !before.series.contains_key(*n))
    {
        gaps.push(format!("series {name}: added"));
    }
    if before.media != after.media {
        gaps.push(format!(
            "media: {:?} became {:?}",
            before.media, after.media
        ));
    }
    if before.tables != after.tables {
        gaps.push(format!(
            "tables: {:?} became {:?}",
            before.tables.keys().collect::<Vec<_>>(),
            after.tables.keys().collect::<Vec<_>>()
        ));
    }
    if before.histograms != after.histograms {
        gaps.push(format!(
            "histograms: {:?} became {:?}",
            before.histograms, after.histograms
        ));
    }
    gaps
}

/// Whether some run compared has series, media or tables (so a format's
/// test is not a comparison of empty lists).
fn has_points(runs: &[Whole]) -> bool {
    runs.iter().any(|w| {
        w.series
            .values()
            .any(|(x, _)| !x.as_array().unwrap().is_empty())
    })
}

#[test]
fn lab_runs_round_trip_whole() {
    for dir in ["cartpole-ppo", "diffusion-sweep-a", "lorenz-sim"] {
        assert!(has_points(&round_trip(dir)), "{dir}");
    }
}

#[test]
fn tensorboard_runs_round_trip_whole() {
    let runs = round_trip("tensorboard");
    assert!(has_points(&runs));
    assert!(runs.iter().any(|w| !w.histograms.is_empty()), "{runs:#?}");
    // Its embedded images come back as files with their key and step.
    assert!(
        runs.iter().any(|w| w
            .media
            .iter()
            .any(|(k, _, s, _)| k == "image" && s.is_some())),
        "{runs:#?}"
    );
}

#[test]
fn mlflow_file_store_runs_round_trip_whole() {
    assert!(has_points(&round_trip("mlflow")));
}

#[test]
fn mlflow_sqlite_store_runs_round_trip_whole() {
    assert!(has_points(&round_trip("mlflow-db")));
}

/// MLflow runs with `log_image` by key and step and a nested run, in a
/// file store and in an `mlflow.db`: the images come back with their keys
/// and steps.
#[test]
fn mlflow_images_by_step_round_trip_whole_in_both_stores() {
    for dir in ["mlflow-nested", "mlflow-db-nested"] {
        let runs = round_trip(dir);
        assert!(has_points(&runs), "{dir}");
        assert!(
            runs.iter().any(|w| w
                .media
                .iter()
                .any(|(k, key, s, _)| k == "image" && key.is_some() && s.is_some())),
            "{dir}: {runs:#?}"
        );
    }
}

#[test]
fn wandb_runs_round_trip_whole() {
    let runs = round_trip("wandb");
    assert!(has_points(&runs));
    assert!(runs.iter().any(|w| !w.histograms.is_empty()), "{runs:#?}");
    assert!(runs.iter().any(|w| !w.tables.is_empty()), "{runs:#?}");
    // Media keep their history steps and keys.
    assert!(
        runs.iter().any(|w| w
            .media
            .iter()
            .any(|(_, k, s, _)| k.is_some() && s.is_some())),
        "{runs:#?}"
    );
}

#[test]
fn lightning_runs_round_trip_whole() {
    assert!(has_points(&round_trip("lightning")));
}

#[test]
fn hydra_runs_round_trip_whole() {
    assert!(has_points(&round_trip("hydra")));
}

#[test]
fn huggingface_runs_round_trip_whole() {
    // The Trainer writes its `hub_token` placeholder, which bundles redact.
    assert!(has_points(&round_trip_redacting(
        "huggingface",
        &["hub_token"]
    )));
}

#[test]
fn ultralytics_runs_round_trip_whole() {
    assert!(has_points(&round_trip("ultralytics")));
}

#[test]
fn keras_runs_round_trip_whole() {
    assert!(has_points(&round_trip("keras")));
}

#[test]
fn sb3_runs_round_trip_whole() {
    assert!(has_points(&round_trip("sb3")));
}

#[test]
fn raytune_runs_round_trip_whole() {
    assert!(has_points(&round_trip("raytune")));
}

#[test]
fn dvclive_runs_round_trip_whole() {
    assert!(has_points(&round_trip("dvclive")));
}

#[test]
fn trackio_runs_round_trip_whole() {
    assert!(has_points(&round_trip("trackio")));
}

#[test]
fn sacred_runs_round_trip_whole() {
    assert!(has_points(&round_trip("sacred")));
}

/// A `wandb.Table` logged by the real wandb (offline) is listed in the run
/// detail's `tables` with the key and step of its history row, served as
/// JSON with the rows as logged (a quote, a None, a nested dict); its
/// fields (`nrows`, `ncols`, `sha256`…) are no metrics. Hostile table
/// files beside it — huge, not JSON, a FIFO, a link out of the root — are
/// listed as what they are (a size over the page's cap; served bytes that
/// do not parse; no size and no URL), and the run still reads whole.
#[test]
fn a_wandb_table_is_listed_with_its_step_and_served_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("experiments");
    std::fs::create_dir_all(root.join(".home")).unwrap();
    write("wandb", &root);
    let canary = canary(&base);
    let run_dir = std::fs::read_dir(root.join("wandb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("offline-run-")
        })
        .unwrap();
    let tables = run_dir.join("files/media/table");
    let hostile = lab_test_support::fixture::Tree::new(&tables);
    hostile
        .sparse("huge_1_aaaa.table.json", 17 << 20)
        .file(
            "bad_2_bbbb.table.json",
            "{\"columns\": [\"a\"], \"data\": [[1]",
        )
        .link("link_3_cccc.table.json", &canary);
    assert!(nix_mkfifo(&tables.join("fifo_4_dddd.table.json")));
    let lab = serve(&base.join("data"), &root);
    let run = lab.run_at(run_dir.file_name().unwrap().to_str().unwrap());
    let id = run["id"].as_str().unwrap();
    // The run still reads whole.
    assert_eq!(metric(&run, "loss")["count"], 10, "{run:#}");
    assert_eq!(run["error_count"], 0, "{run:#}");
    // A table's fields are no metrics, nor params.
    for m in run["metrics"].as_array().unwrap() {
        assert!(!m["name"].as_str().unwrap().starts_with("preds"), "{m}");
    }
    assert!(
        !run["params"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("preds.")),
        "{run:#}"
    );
    let listed: std::collections::BTreeMap<&str, &Value> = run["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t))
        .collect();
    assert_eq!(
        listed.keys().copied().collect::<Vec<_>>(),
        ["bad", "fifo", "huge", "link", "preds"],
        "{run:#}"
    );
    // The logged table: its history row's step (12), not its name's.
    let preds = listed["preds"];
    assert_eq!(preds["step"], 12, "{preds}");
    let name = preds["name"].as_str().unwrap();
    assert!(
        name.starts_with("files/media/table/preds_") && name.ends_with(".table.json"),
        "{name}"
    );
    let got = lab.get(&format!("/api/runs/{id}/artifacts/{}", pct(name)));
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(preds["size"], got.body.len(), "{preds}");
    let table: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        table["columns"],
        serde_json::json!(["id", "label", "score", "extra"])
    );
    assert_eq!(
        table["data"],
        serde_json::json!([
            [0, "say \"hi\"", 0.5, null],
            [1, "cat", null, {"k": [1, 2]}],
            [2, "<b>dog</b>", 0.25, "plain"],
        ])
    );
    // Hostile files: each as what it is.
    assert_eq!(listed["huge"]["size"], 17 << 20);
    assert_eq!(listed["huge"]["step"], 1);
    let bad = listed["bad"]["name"].as_str().unwrap();
    let served = lab.get(&format!("/api/runs/{id}/artifacts/{}", pct(bad)));
    assert_eq!(served.status, 200);
    assert!(serde_json::from_slice::<Value>(&served.body).is_err());
    for key in ["fifo", "link"] {
        assert_eq!(listed[key]["size"], Value::Null, "{key}");
        assert_eq!(listed[key]["url"], Value::Null, "{key}");
        let name = listed[key]["name"].as_str().unwrap();
        let refused = lab.get(&format!("/api/runs/{id}/artifacts/{}", pct(name)));
        assert_ne!(refused.status, 200, "{key}");
        assert!(!refused.text().contains("CANARY"), "{key}");
    }
    canary_untouched(&canary);
}

/// A W&B run the real writer wrote now (with a `Table`, which the
/// committed fixture predates) round-trips whole: its table comes back as
/// an artifact with its key, its step and its bytes, its media with theirs.
#[test]
fn a_wandb_run_with_a_table_round_trips_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let written = tmp.path().canonicalize().unwrap().join("written");
    std::fs::create_dir_all(written.join(".home")).unwrap();
    write("wandb", &written);
    std::fs::remove_dir_all(written.join(".home")).unwrap();
    let runs = round_trip_of(&written, "wandb", &[]);
    let tables: Vec<_> = runs.iter().flat_map(|w| w.tables.keys()).collect();
    assert_eq!(tables, [&(Some("preds".to_owned()), Some(12))], "{runs:#?}");
    let bytes = runs.iter().flat_map(|w| w.tables.values()).next().unwrap();
    let table: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(table["data"][1][3], serde_json::json!({"k": [1, 2]}));
    assert!(
        runs.iter().any(|w| w
            .media
            .iter()
            .any(|(_, k, s, _)| k.is_some() && s.is_some())),
        "{runs:#?}"
    );
}

/// The facts `write_runs.py mlflow-nested` / `mlflow-db-nested` took from
/// MLflow's own client after writing: `outer` and `inner`, each with
/// `run_id`, `start_time`, `end_time`, `user`, `source_name`,
/// `source_type`, `git_commit`, `parent`, `artifact_uri`.
fn mlflow_facts(root: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root.join("facts.json")).unwrap()).unwrap()
}

/// Checks one store's outer and inner runs against what MLflow said of
/// them and what lies in the outer run's `artifacts/` (`artifacts` is that
/// directory): media by key and step (each served, its bytes the file's),
/// the plain image as media without a step, artifacts in one and two
/// subdirectories listed (not deeper), the experiment's name, user,
/// source, commit, duration, and the nesting both ways.
fn check_mlflow_nesting(lab: &Lab, outer: &Value, inner: &Value, facts: &Value, artifacts: &Path) {
    let id = |run: &Value| run["id"].as_str().unwrap().to_owned();
    for (run, fact) in [(outer, &facts["outer"]), (inner, &facts["inner"])] {
        assert_eq!(run["format"], "mlflow", "{run}");
        assert_eq!(run["experiment"]["name"], "nesting", "{run}");
        let tags = run["tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .all(|t| !t.as_str().unwrap().starts_with("mlflow.")
                    && !t.as_str().unwrap().starts_with("experiment=")),
            "{tags:?}"
        );
        assert_eq!(run["user"], fact["user"], "{run}");
        assert_eq!(
            run["source"].as_str().unwrap(),
            format!(
                "{} ({})",
                fact["source_name"].as_str().unwrap(),
                fact["source_type"].as_str().unwrap()
            )
        );
        assert_eq!(run["git_commit"], fact["git_commit"], "{run}");
        let secs = |k: &str| fact[k].as_i64().unwrap() / 1000;
        assert_eq!(
            run["duration_secs"].as_f64(),
            Some((secs("end_time") - secs("start_time")) as f64),
            "{run}"
        );
    }
    assert_eq!(
        facts["outer"]["git_commit"],
        "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
    );
    // Nesting: the inner run's parent is the outer run, in its detail and
    // in the list; the outer run lists it as its child.
    assert_eq!(facts["inner"]["parent"], facts["outer"]["run_id"]);
    assert_eq!(
        inner["parent"].as_str(),
        Some(id(outer).as_str()),
        "{inner}"
    );
    assert_eq!(outer["parent"], Value::Null, "{outer}");
    let listed = lab
        .runs()
        .into_iter()
        .find(|r| r["id"] == inner["id"])
        .unwrap();
    assert_eq!(listed["parent"], outer["id"], "{listed}");
    assert_eq!(
        outer["children"],
        serde_json::json!([{"id": id(inner), "name": "inner", "format": "mlflow"}]),
        "{outer}"
    );
    assert_eq!(inner["children"], serde_json::json!([]), "{inner}");
    // Images by step: what lies in `artifacts/images/` (the `.png`s, not
    // MLflow's compressed `.webp` copies), each with its key and step.
    let mut on_disk: Vec<(i64, String)> = std::fs::read_dir(artifacts.join("images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".png") && n.starts_with("samples~grid+step+"))
        .map(|n| {
            let step = n.split('+').nth(2).unwrap().parse().unwrap();
            (step, n)
        })
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let media = outer["media"].as_array().unwrap();
    let stepped: Vec<&Value> = media
        .iter()
        .filter(|m| m["step"].is_i64() && m["key"] == "samples/grid")
        .collect();
    let got: Vec<(i64, String)> = stepped
        .iter()
        .map(|m| {
            (
                m["step"].as_i64().unwrap(),
                m["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = on_disk
        .iter()
        .map(|(s, n)| (*s, format!("artifacts/images/{n}")))
        .collect();
    assert_eq!(got, want, "{media:#?}");
    for m in &stepped {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["kind"], "image");
        let (kind, bytes) = media_bytes(lab, outer, name);
        assert_eq!(kind, "image/png");
        let file = name.strip_prefix("artifacts/").unwrap();
        assert_eq!(
            bytes,
            std::fs::read(artifacts.join(file)).unwrap(),
            "{name}"
        );
    }
    // The plain image: media without a step, served.
    let plot = media
        .iter()
        .find(|m| m["name"] == "artifacts/plot.png")
        .unwrap_or_else(|| panic!("{media:#?}"));
    assert_eq!(plot["step"], Value::Null);
    let (kind, bytes) = media_bytes(lab, outer, "artifacts/plot.png");
    assert_eq!(
        (kind.as_str(), bytes),
        (
            "image/png",
            std::fs::read(artifacts.join("plot.png")).unwrap()
        )
    );
    assert!(
        media
            .iter()
            .all(|m| !m["name"].as_str().unwrap().ends_with(".webp")),
        "{media:#?}"
    );
    // Artifacts in subdirectories, to four path segments.
    let names: Vec<&str> = outer["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for (name, listed) in [
        ("artifacts/config/labels.json", true),
        ("artifacts/config/deep/more.json", true),
        ("artifacts/config/a/b/too-deep.json", false),
    ] {
        assert_eq!(names.contains(&name), listed, "{name}: {names:?}");
        assert!(
            artifacts
                .join(name.strip_prefix("artifacts/").unwrap())
                .is_file()
        );
    }
    let labels = outer["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "artifacts/config/labels.json")
        .unwrap();
    let reply = lab.get(labels["url"].as_str().unwrap());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        std::fs::read(artifacts.join("config/labels.json")).unwrap()
    );
    assert_eq!(outer["errors"], serde_json::json!([]), "{outer}");
}

/// MLflow `log_image(key=…, step=…)` images by step, a nested run,
/// `log_dict` into subdirectories and the run's user, source, commit and
/// duration, as the real mlflow wrote them in a file store and in an
/// `mlflow.db`, read exactly. Beside them, files planted in the outer
/// run's `artifacts/images/` under an MLflow 2 name (`%` separators, `#`
/// for `/`: served by its `%25`-encoded URL, as media of its step) and
/// under hostile `%` names (`%2e%2e`, `%00`, `%2f`), and a `%` name
/// elsewhere: never listed, never served, no panic.
#[test]
fn mlflow_images_by_step_nesting_and_subdirectories_read_exactly_in_both_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    let (files, db) = (root.join("files"), root.join("db"));
    for dir in [&files, &db] {
        std::fs::create_dir_all(dir.join(".home")).unwrap();
    }
    write("mlflow-nested", &files);
    write("mlflow-db-nested", &db);
    let (file_facts, db_facts) = (mlflow_facts(&files), mlflow_facts(&db));
    let dir_of = |facts: &Value, run: &str| {
        PathBuf::from(
            facts[run]["artifact_uri"]
                .as_str()
                .unwrap()
                .trim_start_matches("file://"),
        )
    };
    let file_artifacts = dir_of(&file_facts, "outer");
    let db_artifacts = dir_of(&db_facts, "outer");
    // An MLflow 2 name for the step-0 image, at step 7, and hostile ones.
    let step0 = std::fs::read_dir(file_artifacts.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("samples~grid+step+0+") && n.ends_with(".png")
        })
        .unwrap();
    let legacy =
        "samples#grid%step%7%timestamp%1796653770703%93904f9c-f7a9-45fb-8809-dee7ca15adb7.png";
    std::fs::copy(&step0, file_artifacts.join("images").join(legacy)).unwrap();
    let canary = canary(&base);
    for planted in ["%2e%2e", "%2e%2e%2fcanary.png", "a%00.png", "x%2fy.png"] {
        std::fs::write(file_artifacts.join("images").join(planted), "planted").unwrap();
    }
    std::fs::write(file_artifacts.join("a%2e.png"), "planted").unwrap();
    std::fs::write(file_artifacts.join("config/b%2fc.json"), "{}").unwrap();

    let lab = serve(&base.join("data"), &root);
    let runs = lab.runs();
    let detail = |store: &str, name: &str| {
        let found = runs
            .iter()
            .find(|r| {
                r["format"] == "mlflow"
                    && r["name"] == name
                    && r["path"].as_str().unwrap().contains(store)
            })
            .unwrap_or_else(|| panic!("no {name} in {store}: {runs:#?}\n{}", lab.log()));
        lab.json(&format!("/api/runs/{}", found["id"].as_str().unwrap()))
    };
    let (outer, inner) = (detail("/files/", "outer"), detail("/files/", "inner"));
    // The file store's outer run has the MLflow 2 image too: take it out
    // of the media before the common checks, after checking it.
    let mut outer_files = outer.clone();
    let media = outer_files["media"].as_array_mut().unwrap();
    let at = media
        .iter()
        .position(|m| m["name"] == format!("artifacts/images/{legacy}"))
        .unwrap_or_else(|| panic!("{media:#?}"));
    let old = media.remove(at);
    assert_eq!(
        (old["key"].as_str(), old["step"].as_i64()),
        (Some("samples/grid"), Some(7))
    );
    let url = old["url"].as_str().unwrap();
    assert!(url.contains("%25step%257%25"), "{url}");
    let (kind, bytes) = media_bytes(&lab, &outer, old["name"].as_str().unwrap());
    assert_eq!(
        (kind.as_str(), bytes),
        ("image/png", std::fs::read(&step0).unwrap())
    );
    check_mlflow_nesting(&lab, &outer_files, &inner, &file_facts, &file_artifacts);
    let (outer_db, inner_db) = (detail("/db/store", "outer"), detail("/db/store", "inner"));
    check_mlflow_nesting(&lab, &outer_db, &inner_db, &db_facts, &db_artifacts);

    // The planted names: never listed, never served (every encoding of
    // them refused), the canary untouched.
    let listing = outer.to_string();
    for planted in ["%2e%2e", "%00", "%2f", "a%2e"] {
        assert!(!listing.contains(planted), "{planted}: {listing}");
    }
    let oid = outer["id"].as_str().unwrap();
    for raw in [
        "artifacts/images/%252e%252e",
        "artifacts/images/%252e%252e%252fcanary.png",
        "artifacts/images/%2e%2e%2fcanary.png",
        "artifacts/images/a%2500.png",
        "artifacts/images/x%252fy.png",
        "artifacts/a%252e.png",
        "artifacts/config/b%252fc.json",
        "artifacts/images/..%2f..%2f..%2fcanary.txt",
    ] {
        let reply = lab.get(&format!("/api/runs/{oid}/artifacts/{raw}"));
        assert!(
            matches!(reply.status, 400 | 403 | 404),
            "{raw}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(!reply.text().contains("CANARY"), "{raw}");
    }
    canary_untouched(&canary);
    // A bundle of either outer run keeps its user, source, commit and
    // duration (the bundle's `run.json`, read back by the Lab reader).
    for run in [&outer, &outer_db] {
        let copy_id = export_and_reimport(&lab, &base, run["id"].as_str().unwrap());
        let copy = lab.json(&format!("/api/runs/{copy_id}"));
        assert_eq!(copy["format"], "lab", "{copy}");
        for field in ["user", "source", "git_commit", "duration_secs", "created"] {
            assert!(!run[field].is_null(), "{field}: {run}");
            assert_eq!(copy[field], run[field], "{field}: {copy}");
        }
    }
}
