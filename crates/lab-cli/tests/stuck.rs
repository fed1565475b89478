//! Nothing a run's files hold can hang the Lab (issue 22, SPEC §4 and §6):
//! a FIFO planted at an SQLite store's file or side files, as root and as
//! an unprivileged user; the data dir kept apart from the allowed roots;
//! `lab forget-root`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::io::{BufReader, Read};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use lab_test_support::http::{Reply, Request};

use common::LAB;

/// The uid and gid an unprivileged Lab runs as (Debian's `nobody`).
const NOBODY: u32 = 65534;

/// A `lab serve` started by this test, killed when dropped; its stderr is
/// collected on a thread.
struct Lab {
    child: Child,
    port: u16,
    key: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// Starts `command` and waits (at most 20 s, never forever) for its
    /// listening line.
    fn start(mut command: Command) -> Lab {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let listening = lab_test_support::lab::read_listening(&mut BufReader::new(stdout));
            let _ = tx.send(listening);
        });
        let (log_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = log_tx.send(text);
        });
        let listening = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(listening) => listening.unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("lab serve printed no listening line within 20 s");
            }
        };
        Lab {
            child,
            port: listening.port,
            key: listening.key,
            log,
        }
    }

    fn get(&self, path: &str) -> Reply {
        Request::new("GET", path)
            .header("Authorization", format!("Bearer {}", self.key))
            .send(self.port)
            .unwrap()
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }

    /// The runs listed, by path.
    fn run_at(&self, dir: &Path) -> Option<serde_json::Value> {
        let list = self.json("/api/runs?limit=500");
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"].as_str() == dir.to_str())
            .cloned()
    }

    /// Waits (at most 30 s) for a run at `dir` to be listed.
    fn wait_for_run(&self, dir: &Path) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(run) = self.run_at(dir) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "no run at {} was discovered",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The process's thread count.
    fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    }

    /// Sends SIGTERM and waits at most 5 s for the process to exit: its
    /// stderr.
    fn terminate_within_five_seconds(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "lab serve did not exit within 5 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default()
    }
}

/// A scratch tree: `root/` (the allowed root) and `data/` (the data dir),
/// readable by `owner`.
struct Scratch {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

impl Scratch {
    fn new(owner: Option<u32>) -> Scratch {
        let tmp = common::outside_tmp();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["root", "data"] {
            std::fs::create_dir(base.join(d)).unwrap();
            if let Some(uid) = owner {
                chown(base.join(d), Some(uid), Some(uid)).unwrap();
            }
        }
        Scratch { _tmp: tmp, base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn lab(&self, user: Option<u32>) -> Command {
        let mut cmd = Command::new(LAB);
        cmd.arg("--data-dir")
            .arg(self.base.join("data"))
            .env_remove("XDG_DATA_HOME")
            .env("HOME", self.base.join("data"));
        if let Some(uid) = user {
            cmd.uid(uid).gid(uid);
        }
        cmd
    }
}

/// An MLflow SQLite store at `dir/mlflow.db` (in WAL mode, or in the
/// rollback-journal mode whose `-journal` SQLite looks for by name before
/// every read), with one run and a metric, written by Python's sqlite3 (the
/// tables and columns the reader asks for, as MLflow's schema has them).
fn mlflow_store(dir: &Path, owner: Option<u32>, wal: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("pragma journal_mode=" + sys.argv[2])
c.executescript('''
create table experiments(experiment_id integer primary key, name text);
create table runs(run_uuid text primary key, name text, status text, start_time integer,
  end_time integer, artifact_uri text, experiment_id integer, lifecycle_stage text);
create table params(key text, value text, run_uuid text);
create table tags(key text, value text, run_uuid text);
create table metrics(key text, value real, timestamp integer, step integer, is_nan boolean, run_uuid text);
insert into experiments values (0, 'Default');
insert into runs values ('r1', 'sqlite-run', 'FINISHED', 1700000000000, 1700000001000, 'mlflow-artifacts:/0/r1', 0, 'active');
insert into params values ('lr', '0.1', 'r1');
insert into metrics values ('loss', 0.5, 1700000000000, 0, 0, 'r1');
''')
c.commit()
c.close()
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.join("mlflow.db"))
        .arg(if wal { "wal" } else { "delete" })
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(uid) = owner {
        chown(dir, Some(uid), Some(uid)).unwrap();
    }
}

/// Replaces (or makes) `path` with a FIFO anyone may open; no process
/// ever writes into it, so a blocking open of it never returns.
fn plant_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let out = Command::new("mkfifo")
        .arg("-m")
        .arg("0666")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

const SIDE_NAMES: [&str; 4] = [
    "mlflow.db",
    "mlflow.db-journal",
    "mlflow.db-wal",
    "mlflow.db-shm",
];

/// The whole scenario of the finding, as `user` (root when `None`).
fn fifos_beside_sqlite_stores_never_hang(user: Option<u32>) {
    let scratch = Scratch::new(user);
    let root = scratch.root();
    let stores: Vec<PathBuf> = SIDE_NAMES
        .iter()
        .enumerate()
        .map(|(i, _)| root.join(format!("store-{i}")))
        .collect();
    for (store, name) in stores.iter().zip(SIDE_NAMES) {
        mlflow_store(store, user, !name.ends_with("-journal"));
    }
    let mut cmd = scratch.lab(user);
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&root);
    let lab = Lab::start(cmd);
    // Each store's run is discovered and read whole first...
    let ids: Vec<String> = stores
        .iter()
        .map(|store| {
            let run = lab.wait_for_run(store);
            assert_eq!(run["name"], "sqlite-run", "{run}");
            run["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // ...then a FIFO is planted at one of its four names, as another user
    // of the machine would while the Lab runs.
    for (store, name) in stores.iter().zip(SIDE_NAMES) {
        plant_fifo(&store.join(name));
    }
    // 600 requests to those runs: each answered, none parks a thread.
    for i in 0..600 {
        let id = &ids[i % ids.len()];
        let path = if i % 2 == 0 {
            format!("/api/runs/{id}")
        } else {
            format!("/api/runs/{id}/metrics/loss")
        };
        let reply = lab.get(&path);
        assert!(
            [200, 404, 409, 503].contains(&reply.status),
            "{path}: {}",
            reply.summary()
        );
    }
    let threads = lab.threads();
    assert!(threads < 64, "{threads} threads after 600 requests");
    // Each run says what is wrong with it, naming the file, once its
    // reader looks again (at most a second later): an error of that run
    // alone, not a hang.
    for (id, name) in ids.iter().zip(SIDE_NAMES) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = lab.get(&format!("/api/runs/{id}")).text();
            // The store cannot be read now: the run is unavailable, and
            // says why.
            if text.contains(&format!("{name}: ")) && text.contains("\"available\":false") {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: {text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let asked = Instant::now();
    let status = lab.get("/api/status");
    assert_eq!(status.status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "/api/status took {:?}",
        asked.elapsed()
    );
    // A run added later is discovered.
    let later = root.join("later");
    std::fs::create_dir(&later).unwrap();
    std::fs::write(later.join("run.toml"), "name = \"later\"\n").unwrap();
    lab.wait_for_run(&later);
    let log = lab.terminate_within_five_seconds();
    assert!(log.contains("lab: stopped"), "{log}");
}

#[test]
fn fifos_at_an_sqlite_stores_four_names_never_hang_a_root_lab() {
    fifos_beside_sqlite_stores_never_hang(None);
}

#[test]
fn fifos_at_an_sqlite_stores_four_names_never_hang_an_unprivileged_lab() {
    fifos_beside_sqlite_stores_never_hang(Some(NOBODY));
}

#[test]
fn a_fifo_store_planted_before_start_never_delays_the_listening_line() {
    let scratch = Scratch::new(None);
    let root = scratch.root();
    for (i, name) in SIDE_NAMES.iter().enumerate() {
        let store = root.join(format!("store-{i}"));
        mlflow_store(&store, None, !name.ends_with("-journal"));
        plant_fifo(&store.join(name));
    }
    std::fs::create_dir(root.join("plain")).unwrap();
    std::fs::write(root.join("plain/run.toml"), "name = \"plain\"\n").unwrap();
    let mut cmd = scratch.lab(None);
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&root);
    let lab = Lab::start(cmd);
    lab.wait_for_run(&root.join("plain"));
    let status = lab.json("/api/status");
    assert!(status["discovery_stuck_secs"].is_null(), "{status}");
    lab.terminate_within_five_seconds();
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One `lab: error:` line naming `needle`, and a failure exit.
fn refused_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected a refusal: {out:?}");
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lab: error:") && err.contains(needle),
        "{err}"
    );
}

#[test]
fn a_data_dir_overlapping_an_allowed_root_is_refused_at_start() {
    let scratch = Scratch::new(None);
    let root = scratch.root();
    let inside = root.join("lab-data");
    // Under the root, the root itself, and holding the root: each refused
    // with one line naming the root and the fix, before anything is made.
    for (data_dir, relation) in [
        (inside.clone(), "lies under"),
        (root.clone(), "is"),
        (scratch.base.clone(), "contains"),
    ] {
        let out = run(Command::new(LAB)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["serve", "--bind", "127.0.0.1:0", "--root"])
            .arg(&root)
            .env("HOME", &scratch.base));
        refused_with(&out, relation);
        let err = stderr(&out);
        assert!(err.contains(root.to_str().unwrap()), "{err}");
        assert!(err.contains("lab forget-root"), "{err}");
    }
    assert!(!inside.exists(), "the refused data dir was created");
    // The data dir's own runs/ is an allowed root and no overlap.
    let data = scratch.base.join("data");
    let out = run(Command::new(LAB)
        .arg("--data-dir")
        .arg(&data)
        .arg("runs")
        .env("HOME", &scratch.base));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_remembered_root_over_the_data_dir_is_refused_until_forgotten() {
    let scratch = Scratch::new(None);
    let outer = scratch.base.join("outer");
    std::fs::create_dir(&outer).unwrap();
    std::fs::create_dir(outer.join("run-a")).unwrap();
    std::fs::write(outer.join("run-a/run.toml"), "name = \"a\"\n").unwrap();
    let data = outer.join("data");
    // An older Lab remembered `outer` while its data dir lay elsewhere;
    // the same registry is now used from inside `outer` (moved there).
    let old_data = scratch.base.join("data");
    let mut serve = scratch.lab(None);
    serve
        .args(["serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&outer);
    let lab = Lab::start(serve);
    lab.wait_for_run(&outer.join("run-a"));
    lab.terminate_within_five_seconds();
    std::fs::rename(&old_data, &data).unwrap();
    let lab_at = |args: &[&str]| {
        run(Command::new(LAB)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("HOME", &scratch.base))
    };
    refused_with(&lab_at(&["runs"]), "lies under");
    let forgot = lab_at(&["forget-root", outer.to_str().unwrap()]);
    assert!(forgot.status.success(), "{}", stderr(&forgot));
    assert!(String::from_utf8_lossy(&forgot.stdout).contains("forgot the root"));
    let listed = lab_at(&["runs"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    // Forgetting it again names the problem.
    refused_with(
        &lab_at(&["forget-root", outer.to_str().unwrap()]),
        "not a remembered root",
    );
}

#[test]
fn a_relative_data_dir_means_its_absolute_form() {
    let scratch = Scratch::new(None);
    std::fs::create_dir(scratch.root().join("one")).unwrap();
    std::fs::write(scratch.root().join("one/run.toml"), "name = \"one\"\n").unwrap();
    let imported = run(Command::new(LAB)
        .current_dir(&scratch.base)
        .args(["--data-dir", "data", "--root", "root", "import", "root/one"])
        .env("HOME", &scratch.base));
    assert!(imported.status.success(), "{}", stderr(&imported));
    // The same registry, named absolutely from elsewhere.
    let listed = run(Command::new(LAB)
        .current_dir("/")
        .arg("--data-dir")
        .arg(scratch.base.join("data"))
        .args(["runs", "--json"])
        .env("HOME", &scratch.base));
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("/root/one\""),
        "{listed:?}"
    );
}

#[test]
fn a_job_started_with_a_relative_data_dir_runs_and_lands_in_its_absolute_form() {
    let scratch = Scratch::new(None);
    let project = scratch.base.join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        scratch.base.join("lab.toml"),
        format!(
            "[runner]\nprograms = [\"echo\"]\nread_paths = [{:?}]\n",
            project.to_str().unwrap()
        ),
    )
    .unwrap();
    // Before, the runner was handed `../reldata/runs/…` and the job ended
    // "without reporting" (or `lab run` said the path must be absolute).
    let out = run(Command::new(LAB)
        .current_dir(&project)
        .args(["--data-dir", "../reldata", "--config"])
        .arg(scratch.base.join("lab.toml"))
        .args(["run", "--", "echo", "hello"])
        .env("HOME", &scratch.base));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let last = err.lines().last().unwrap();
    let runs = scratch.base.join("reldata/runs");
    assert!(
        last.contains(" finished (exit 0) ") && last.contains(runs.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn a_key_file_where_a_job_could_read_it_is_refused() {
    let scratch = Scratch::new(None);
    let project = scratch.base.join("project");
    std::fs::create_dir(&project).unwrap();
    let config = scratch.base.join("lab.toml");
    std::fs::write(
        &config,
        format!("[runner]\nread_paths = [{:?}]\n", project.to_str().unwrap()),
    )
    .unwrap();
    let serve_with_key = |key: &Path| {
        let mut cmd = scratch.lab(None);
        cmd.arg("--config")
            .arg(&config)
            .args(["serve", "--bind", "127.0.0.1:0", "--root"])
            .arg(scratch.root())
            .arg("--key-file")
            .arg(key);
        cmd
    };
    // Where a `lab run` job's working directory may be: refused, nothing
    // written.
    for (key, place) in [
        (scratch.root().join("lab.key"), "the allowed root"),
        (project.join("sub/../lab.key"), "read_paths"),
    ] {
        let out = run(&mut serve_with_key(&key));
        refused_with(&out, place);
        // The fix, in the command line's words (as before the builder).
        refused_with(
            &out,
            "put it outside every --root and [runner] read_paths (e.g. in $XDG_RUNTIME_DIR)",
        );
        assert!(!project.join("lab.key").exists() && !scratch.root().join("lab.key").exists());
    }
    // Beside them, out of every job's reach: written, and gone at exit.
    let key = scratch.base.join("lab.key");
    let lab = Lab::start(serve_with_key(&key));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap().trim(),
        lab.key.as_str()
    );
    lab.terminate_within_five_seconds();
    assert!(!key.exists());
}

#[test]
fn a_fifo_or_huge_workflow_file_is_refused_without_waiting() {
    let scratch = Scratch::new(None);
    let project = scratch.root().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        scratch.base.join("lab.toml"),
        "[runner]\nprograms = [\"echo\"]\n",
    )
    .unwrap();
    plant_fifo(&project.join("fifo.toml"));
    let huge = project.join("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    for (file, why) in [("fifo.toml", "workflow"), ("huge.toml", "at most 1 MiB")] {
        let mut cmd = scratch.lab(None);
        cmd.current_dir(&project)
            .arg("--config")
            .arg(scratch.base.join("lab.toml"))
            .arg("--root")
            .arg(scratch.root())
            .args(["run", "--workflow"])
            .arg(project.join(file))
            .stdin(Stdio::null());
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lab run --workflow {file} did not return");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(why), "{file}: {err}");
    }
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn sqlite_snapshots_live_in_the_data_dir_never_in_a_tmpdir_inside_the_root_and_leftovers_are_swept()
{
    let scratch = Scratch::new(None);
    let root = scratch.root();
    let store = root.join("store");
    mlflow_store(&store, None, true);
    // TMPDIR inside the allowed root, as on a cluster (TMPDIR=/scratch/$USER/tmp,
    // --root /scratch/$USER).
    let tmpdir = root.join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    // What a Lab killed while it copied left behind: a copy of the store
    // in a snapshot directory of a process that is gone.
    let snapshots = scratch.base.join("data/snapshots");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let leftover = snapshots.join(format!("lab-sqlite-{dead}-leftover"));
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::copy(store.join("mlflow.db"), leftover.join("mlflow.db")).unwrap();

    let mut cmd = scratch.lab(None);
    cmd.env("TMPDIR", &tmpdir)
        .args(["serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&root);
    let lab = Lab::start(cmd);
    let found = lab.wait_for_run(&store);
    let id = found["id"].as_str().unwrap().to_owned();
    let read = lab.json(&format!("/api/runs/{id}"));
    assert_eq!(read["errors"], serde_json::json!([]), "{read}");
    assert_eq!(read["name"], "sqlite-run", "{read}");
    // The leftover is gone; the copy the run's reader holds lies in the
    // data dir, 0700, named for this process; nothing is in TMPDIR.
    assert!(!leftover.exists(), "{:?}", names(&snapshots));
    let ours = format!("lab-sqlite-{}-", lab.child.id());
    let held = names(&snapshots);
    assert!(
        !held.is_empty() && held.iter().all(|n| n.starts_with(&ours)),
        "{held:?}"
    );
    let mode = std::fs::metadata(&snapshots).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o700, "{mode:o}");
    assert_eq!(names(&tmpdir), Vec::<String>::new());
    // A walk after that (the one that finds a run added now) imports no
    // snapshot: the store's run is the only MLflow run.
    let later = root.join("later");
    std::fs::create_dir(&later).unwrap();
    std::fs::write(later.join("run.toml"), "name = \"later\"\n").unwrap();
    lab.wait_for_run(&later);
    let list = lab.json("/api/runs?limit=500");
    let mlflow: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["format"] == "mlflow")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(mlflow, [store.to_str().unwrap()], "{list}");
    let log = lab.terminate_within_five_seconds();
    assert!(log.contains("lab: stopped"), "{log}");
    // The next command that reads runs finds no copy of a Lab that is gone.
    let listed = run(scratch.lab(None).arg("runs"));
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(names(&snapshots), Vec::<String>::new());
    assert_eq!(names(&tmpdir), Vec::<String>::new());
}

#[test]
fn stores_that_fill_the_snapshot_space_never_lock_the_others_out() {
    let scratch = Scratch::new(None);
    let root = scratch.root();
    let (a, b) = (root.join("store-a"), root.join("store-b"));
    mlflow_store(&a, None, false);
    mlflow_store(&b, None, false);
    let size = |d: &Path| std::fs::metadata(d.join("mlflow.db")).unwrap().len();
    // Room for one store's copy, not both.
    let budget = size(&a).max(size(&b)) * 3 / 2;
    let config = scratch.base.join("lab.toml");
    std::fs::write(
        &config,
        format!("[formats]\nsqlite_snapshot_budget_bytes = {budget}\n"),
    )
    .unwrap();
    let mut cmd = scratch.lab(None);
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&root);
    let lab = Lab::start(cmd);
    let (run_a, run_b) = (lab.wait_for_run(&a), lab.wait_for_run(&b));
    // Each run read on its own, again and again: each is read whole every
    // time (a copy no read holds is let go for the other), never "in use
    // by other stores" for good.
    for _ in 0..5 {
        for run in [&run_a, &run_b] {
            let id = run["id"].as_str().unwrap();
            let details = lab.json(&format!("/api/runs/{id}"));
            assert_eq!(details["available"], true, "{details}");
            assert_eq!(details["params"]["lr"], "0.1", "{details}");
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    lab.terminate_within_five_seconds();
    // Nothing of the snapshots is left once the Lab exited.
    let left: Vec<_> = std::fs::read_dir(scratch.base.join("data/snapshots"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
