//! The real `lab` binary: flags, errors, the listening line, signals, and a
//! CLI working beside a running server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use lab_test_support::http::{Reply, Request};

use common::LAB;

struct Env {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    for d in ["runs/one", "runs/two", "elsewhere/x"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    std::fs::write(base.join("runs/one/notes.md"), "hello").unwrap();
    // A run is a directory a format reader recognises (SPEC §6): an empty
    // directory is not one, nor one holding only notes.
    std::fs::write(base.join("runs/one/run.toml"), "name = \"one\"\n").unwrap();
    std::fs::write(base.join("runs/two/run.toml"), "name = \"two\"\n").unwrap();
    Env { _tmp: tmp, base }
}

/// The commands that take `--root` (SPEC §3); the others refuse it.
const ROOTED: [&str; 4] = ["serve", "import", "import-bundle", "run"];

impl Env {
    /// `lab --data-dir DATA`: no root (a command that takes one is given
    /// it by [`Env::run`], or after its name).
    fn lab(&self) -> Command {
        let mut cmd = Command::new(LAB);
        cmd.arg("--data-dir")
            .arg(self.base.join("data"))
            .env_remove("XDG_DATA_HOME")
            .env("HOME", &self.base);
        cmd
    }

    fn runs_root(&self) -> PathBuf {
        self.base.join("runs")
    }

    /// `lab ARGS`, with `--root BASE/runs` after the command's name for
    /// the commands that take one.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.lab();
        if let [name, rest @ ..] = args
            && ROOTED.contains(name)
        {
            cmd.arg(name).arg("--root").arg(self.runs_root()).args(rest);
        } else {
            cmd.args(args);
        }
        cmd.output().unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failing command prints exactly one `lab: error:` line naming the problem.
fn assert_fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure, got {out:?}");
    let err = stderr(out);
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    assert!(lines[0].starts_with("lab: error: "), "{err:?}");
}

struct Server(common::Served);

impl Server {
    fn start(env: &Env, args: &[&str]) -> Self {
        let mut command = env.lab();
        command
            .arg("serve")
            .arg("--root")
            .arg(env.runs_root())
            .args(args)
            .stderr(Stdio::piped());
        let served = common::serve(command);
        assert!(
            served.base.starts_with("http://127.0.0.1:"),
            "{}",
            served.base
        );
        Self(served)
    }

    fn get(&self, path: &str) -> Reply {
        Request::new("GET", path)
            .header("Authorization", format!("Bearer {}", self.0.key))
            .send(self.0.port)
            .unwrap()
    }

    /// Sends `signal` and waits for a clean exit.
    fn stop(mut self, signal: &str) -> String {
        let pid = self.0.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.child.try_wait().unwrap() {
                assert!(status.success(), "exit after {signal}: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "no exit after {signal}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut err = String::new();
        self.0
            .child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

#[test]
fn serve_prints_the_real_address_and_stops_gracefully_on_signals() {
    let e = env();
    for signal in ["-TERM", "-INT"] {
        let server = Server::start(&e, &["--bind", "127.0.0.1:0"]);
        assert_ne!(server.0.port, 0);
        let reply = server.get("/api/status");
        let status = reply.text();
        assert_eq!(reply.status, 200, "{status}");
        assert!(
            status.contains("\"runs\":2"),
            "both runs imported at start: {status}"
        );
        let log = server.stop(signal);
        assert!(log.contains("lab: stopped"), "{log}");
    }
}

#[test]
fn serve_binds_loopback_7878_by_default() {
    let e = env();
    let server = Server::start(&e, &[]);
    assert_eq!(server.0.port, 7878);
    server.stop("-TERM");
}

#[test]
fn a_non_loopback_bind_needs_allow_external() {
    let e = env();
    for bind in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7878"] {
        let out = e.run(&["serve", "--bind", bind]);
        assert_fails_with(&out, "--allow-external");
        assert!(stderr(&out).contains("ssh -L"), "the ssh recipe is offered");
    }
    // The config file cannot allow it either.
    std::fs::write(e.base.join("lab.toml"), "bind = \"0.0.0.0:0\"\n").unwrap();
    let out = e
        .lab()
        .arg("--config")
        .arg(e.base.join("lab.toml"))
        .args(["serve"])
        .output()
        .unwrap();
    assert_fails_with(&out, "--allow-external");
    // With the flag it starts, loudly: on every interface, so for as
    // short as it takes to read one line, and killed whatever fails.
    let mut child = common::Killed(
        e.lab()
            .args(["serve", "--bind", "0.0.0.0:0", "--allow-external"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let read = BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line);
    child.0.kill().unwrap();
    read.unwrap();
    assert!(
        line.starts_with("lab: listening on http://0.0.0.0:"),
        "{line}"
    );
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.0.wait().unwrap();
    assert!(err.contains("WARNING"), "{err}");
}

#[test]
fn bad_flags_and_bad_config_get_one_clear_line() {
    let e = env();
    let config = |text: &str| {
        let path = e.base.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        e.lab()
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .output()
            .unwrap()
    };
    assert_fails_with(&config("bnid = 1\n"), "unknown field `bnid`");
    assert_fails_with(
        &config("allow_external = true\n"),
        "only the command-line flag --allow-external",
    );
    assert_fails_with(
        &config("[runner]\nallow_network = true\n"),
        "--runner-allow-network",
    );
    assert_fails_with(&config("[artifacts]\nallow = [\".env\"]\n"), "hidden");
    assert_fails_with(
        &config("[artifacts]\nallow = [\"a/b/c/d/e\"]\n"),
        "more than four path segments",
    );
    assert_fails_with(
        &config("roots = [\"/definitely/missing\"]\n"),
        "/definitely/missing",
    );
    let missing = e
        .lab()
        .args(["--config", "/no/such/lab.toml", "runs"])
        .output()
        .unwrap();
    assert_fails_with(&missing, "/no/such/lab.toml");
    assert_fails_with(
        &e.run(&["serve", "--bind", "nonsense"]),
        "invalid --bind address",
    );
    assert_fails_with(
        &e.run(&["serve", "--bind", "127.0.0.1:99999"]),
        "invalid --bind address",
    );
    assert_fails_with(
        &e.run(&["serve", "--runner-allow-network"]),
        "need --enable-runner",
    );
    assert_fails_with(
        &e.run(&["serve", "--runner-allow-workflow-exec"]),
        "need --enable-runner",
    );
    // A Slurm table that cannot be used is one line naming what is wrong,
    // for `lab run` and `lab serve` alike — never a local run instead.
    let slurm = e.base.join("slurm.toml");
    for (config, says) in [
        (
            "[runner]\nprograms = [\"true\"]\nbackend = \"slurm\"\n",
            "needs a [runner.slurm] table",
        ),
        (
            "[runner]\nprograms = [\"true\"]\nbackend = \"slurm\"\n[runner.slurm]\npartition = \"a b\"\n",
            "[runner.slurm] partition \"a b\"",
        ),
        (
            "[runner]\nprograms = [\"true\"]\nbackend = \"slurm\"\n[runner.slurm]\npartition = \"gpu\"\nmax_gpu = 2\n",
            "max_gpu",
        ),
        (
            "[runner]\nprograms = [\"true\"]\n[runner.slurm]\npartition = \"gpu\"\n",
            "backend is not \"slurm\"",
        ),
        (
            "[runner]\nprograms = [\"true\"]\nbackend = \"pbs\"\n",
            "the backends are \"local\" and \"slurm\"",
        ),
    ] {
        std::fs::write(&slurm, config).unwrap();
        for args in [
            &["run", "--", "true"][..],
            &["serve", "--enable-runner", "--bind", "127.0.0.1:0"],
        ] {
            let out = e
                .lab()
                .arg("--config")
                .arg(&slurm)
                .args(args)
                .output()
                .unwrap();
            assert_fails_with(&out, says);
        }
    }
    assert_fails_with(&e.run(&["forget", "BAD/ID"]), "invalid run id");
    assert_fails_with(&e.run(&["forget", "nope"]), "no run with this id");
    assert_fails_with(&e.run(&["export", "nope"]), "no run with this id");
    // A job refused before it starts: one `lab: refused:` line, exit 2.
    let refused = e.run(&["run", "--", "true"]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let err = stderr(&refused);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with("lab: refused: ") && err.contains("not on the [runner] programs allowlist"),
        "{err:?}"
    );
    assert_fails_with(&e.run(&["run"]), "nothing to run");
    let import_outside = e.run(&["import", e.base.join("elsewhere/x").to_str().unwrap()]);
    assert_fails_with(&import_outside, "not under an allowed root");
    // clap's own errors: non-zero, and they name the flag.
    let bogus = e.run(&["serve", "--bogus"]);
    assert_eq!(bogus.status.code(), Some(2));
    assert!(stderr(&bogus).contains("--bogus"));
    // A corrupt registry is an error naming the file, never emptied.
    std::fs::create_dir_all(e.base.join("data")).unwrap();
    std::fs::write(e.base.join("data/registry.json"), "{oops").unwrap();
    assert_fails_with(&e.run(&["runs"]), "registry.json");
    assert_fails_with(&e.run(&["serve", "--bind", "127.0.0.1:0"]), "registry.json");
    assert_eq!(
        std::fs::read_to_string(e.base.join("data/registry.json")).unwrap(),
        "{oops"
    );
}

#[test]
fn every_command_has_help() {
    for cmd in [
        &[][..],
        &["serve"],
        &["import"],
        &["runs"],
        &["forget"],
        &["export"],
        &["import-bundle"],
        &["run"],
    ] {
        let out = Command::new(LAB).args(cmd).arg("--help").output().unwrap();
        assert!(out.status.success(), "{cmd:?} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{cmd:?}"
        );
    }
}

/// The ids `lab runs` lists (the first column, under the header).
fn run_ids(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "EXPERIMENT", "FORMAT", "STATUS", "CREATED"],
        "{text}"
    );
    lines
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// The entries `lab runs --json` prints, one a line.
fn run_entries(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn runs_are_listed_through_a_filter() {
    let e = env();
    for (dir, lr) in [("a", 0.1), ("b", 0.3)] {
        let path = e.base.join("runs").join(dir);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("params.json"), format!("{{\"lr\": {lr}}}")).unwrap();
        std::fs::write(path.join("run.json"), "{}").unwrap();
        let out = e.run(&["import", path.to_str().unwrap(), "--id", dir]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        run_ids(&e.run(&["runs", "--filter", "params.lr > 0.15"])),
        ["b"]
    );
    assert_eq!(
        run_ids(&e.run(&["runs", "--filter", "params.lr < 1 AND name ILIKE 'A'"])),
        ["a"]
    );
    let listed = run_entries(&e.run(&["runs", "--json", "--filter", "params.lr IN (0.1, 0.3)"]));
    assert_eq!(listed.len(), 2);
    // A syntax error: the message, the expression, a caret under it; 2.
    let out = e.run(&["runs", "--filter", "params.lr >> 1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        stderr(&out),
        "lab: error: bad filter: expected a value (a quoted string or a number) at character 11\n  params.lr >> 1\n             ^\n"
    );
}

#[test]
fn the_cli_works_beside_a_running_server() {
    let e = env();
    let server = Server::start(&e, &["--bind", "127.0.0.1:0"]);
    // Below the walk's depth (8), so only the CLI's import registers them
    // (a walk of the root would race it for a run it can see).
    let deep = e.base.join("runs/d/1/2/3/4/5/6/7");
    std::fs::create_dir_all(deep.join("three")).unwrap();
    std::fs::write(deep.join("three/run.json"), "{}").unwrap();
    let out = e.run(&[
        "import",
        deep.join("three").to_str().unwrap(),
        "--id",
        "three",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The server sees the CLI's import without a restart.
    let page = server.get("/api/runs/three");
    assert_eq!(page.status, 200, "{}", page.text());
    // Relative paths are resolved against the working directory.
    std::fs::create_dir_all(deep.join("four")).unwrap();
    std::fs::write(deep.join("four/run.json"), "{}").unwrap();
    let out = e
        .lab()
        .current_dir(&deep)
        .args(["import", "four"])
        .output()
        .unwrap();
    // (No --root: `lab serve --root` remembered it.)
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = run_ids(&e.run(&["runs"]));
    assert_eq!(ids.len(), 4, "{ids:?}");
    let out = e.run(&["forget", "three"]);
    assert!(out.status.success());
    assert_eq!(server.get("/api/runs/three").status, 404);
    assert!(deep.join("three").is_dir(), "forget leaves files alone");
    server.stop("-TERM");
}

#[test]
fn concurrent_cli_imports_lose_nothing() {
    let e = env();
    let dirs: Vec<PathBuf> = (0..12)
        .map(|i| {
            let d = e.base.join(format!("runs/batch-{i}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("run.json"), "{}").unwrap();
            d
        })
        .collect();
    let children: Vec<Child> = dirs
        .iter()
        .map(|d| {
            e.lab()
                .arg("import")
                .arg("--root")
                .arg(e.runs_root())
                .arg(d)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let listed = run_entries(&e.run(&["runs", "--json"]));
    for d in &dirs {
        assert!(
            listed.iter().any(|r| r["path"] == d.to_str().unwrap()),
            "{d:?} lost:\n{listed:?}"
        );
    }
    assert_eq!(listed.len(), 12);
    assert_eq!(run_ids(&e.run(&["runs"])).len(), 12);
    assert!(Path::new(&e.base.join("data/registry.json")).exists());
}

#[test]
fn a_run_travels_between_data_dirs_as_a_bundle() {
    let e = env();
    std::fs::write(e.base.join("runs/one/metrics.jsonl"), "{\"loss\": 0.5}\n").unwrap();
    std::fs::write(e.base.join("runs/one/.env"), "OPENAI_API_KEY=sk-decoy").unwrap();
    let out = e.run(&[
        "import",
        e.base.join("runs/one").to_str().unwrap(),
        "--id",
        "one",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.run(&["export", "one", "--name", "travel"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bundle = e.base.join("data/exports/travel.tar");
    assert!(String::from_utf8_lossy(&out.stdout).contains(bundle.to_str().unwrap()));
    assert_fails_with(
        &e.run(&["export", "one", "--name", "travel"]),
        "exists already",
    );
    assert_fails_with(
        &e.run(&["export", "one", "--name", "../x"]),
        "invalid bundle name",
    );
    // A second Lab, elsewhere.
    let other = tempfile::tempdir().unwrap();
    let other_base = other.path().canonicalize().unwrap();
    std::fs::create_dir_all(other_base.join("imported")).unwrap();
    let lab2 = |args: &[&str]| {
        let mut cmd = Command::new(LAB);
        cmd.arg("--data-dir")
            .arg(other_base.join("data"))
            .args(args);
        if args[0] == "import-bundle" {
            cmd.arg("--root").arg(other_base.join("imported"));
        }
        cmd.output().unwrap()
    };
    let outside = lab2(&[
        "import-bundle",
        bundle.to_str().unwrap(),
        "--into",
        e.base.to_str().unwrap(),
    ]);
    assert_fails_with(&outside, "not under an allowed root");
    let into = other_base.join("imported");
    let out = lab2(&[
        "import-bundle",
        bundle.to_str().unwrap(),
        "--into",
        into.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["notes.md", "metrics.jsonl"] {
        assert_eq!(
            std::fs::read(e.base.join("runs/one").join(name)).unwrap(),
            std::fs::read(into.join("one").join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(!into.join("one/.env").exists());
    assert_eq!(run_ids(&lab2(&["runs"])), ["one"]);
    // Importing the same bundle again: the directory exists, nothing changes.
    let again = lab2(&[
        "import-bundle",
        bundle.to_str().unwrap(),
        "--into",
        into.to_str().unwrap(),
    ]);
    assert_fails_with(&again, "exists already");
}

#[test]
fn a_thousand_idle_connections_do_not_lock_out_a_real_client() {
    // Before: 256 connections held, new ones waited in the backlog until the
    // 15 s header timeout. Now the cap comes from RLIMIT_NOFILE and a full
    // server sheds the oldest connection without a complete head.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let env = env();
    let server = Server::start(&env, &["--bind", "127.0.0.1:0"]);
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", server.0.port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127").unwrap();
        idle.push(s);
    }
    let mut s = TcpStream::connect(("127.0.0.1", server.0.port)).unwrap();
    // Well under the 15 s header timeout that used to free the slots.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.0.port, server.0.key
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    drop(idle);
    server.stop("-TERM");
}

#[test]
fn a_unix_socket_and_a_key_file_for_shared_machines() {
    use std::os::unix::fs::PermissionsExt;
    let env = env();
    let dir = env.base.join("sock");
    let path = dir.join("lab.sock");
    let key_file = env.base.join("key");
    let mut command = env.lab();
    command
        .args(["serve", "--bind"])
        .arg(format!("unix:{}", path.display()))
        .arg("--key-file")
        .arg(&key_file)
        .stderr(Stdio::piped());
    let mut child = common::Killed(command.stdout(Stdio::piped()).spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let (mut listening, mut open) = (String::new(), String::new());
    out.read_line(&mut listening).unwrap();
    out.read_line(&mut open).unwrap();
    assert_eq!(
        listening.trim(),
        format!("lab: listening on unix:{}", path.display())
    );
    assert!(
        open.starts_with("lab: open http://localhost:7878/#key="),
        "{open}"
    );
    let key = open.trim().rsplit("#key=").next().unwrap().to_owned();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the socket's directory is made 0700");
    assert_eq!(mode(&path), 0o600, "the socket is 0600");
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    let ask = |auth: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        write!(
            s,
            "GET /api/runs HTTP/1.1\r\nHost: localhost:7878\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    };
    assert!(ask("").starts_with("HTTP/1.1 401"));
    assert!(ask(&format!("Authorization: Bearer {key}\r\n")).starts_with("HTTP/1.1 200"));
    // A second server on the same, live socket is refused; SIGTERM removes
    // the socket and the key file.
    let second = env
        .lab()
        .args(["serve", "--bind"])
        .arg(format!("unix:{}", path.display()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.0.wait().unwrap().success());
    assert!(!path.exists() && !key_file.exists());
    // A directory that is not 0700 is refused, never chmod-ed.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let loose = env
        .lab()
        .args(["serve", "--bind"])
        .arg(format!("unix:{}", path.display()))
        .output()
        .unwrap();
    assert!(!loose.status.success());
    assert!(String::from_utf8_lossy(&loose.stderr).contains("0700"));
    assert_eq!(mode(&dir), 0o755);
    // A socket left by a server that died (SIGKILL) is stale: replaced.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let serve_here = || {
        let mut command = env.lab();
        command
            .args(["serve", "--bind"])
            .arg(format!("unix:{}", path.display()))
            .stderr(Stdio::null());
        common::serve_socket(command)
    };
    let mut killed = serve_here();
    killed.0.kill().unwrap();
    killed.0.wait().unwrap();
    assert!(path.exists(), "a killed server leaves its socket");
    drop(serve_here());
    // Anything but a stale socket at the path is refused.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "not a socket").unwrap();
    let file = env
        .lab()
        .args(["serve", "--bind"])
        .arg(format!("unix:{}", path.display()))
        .output()
        .unwrap();
    assert!(!file.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}

/// Only `lab export` writes bundles: the commands that only read or change
/// the registry neither create `DATA_DIR/exports` nor fail when it cannot
/// be opened (here a regular file, which stays as it was).
#[test]
fn only_export_needs_the_exports_directory() {
    let e = env();
    let one = e.base.join("runs/one");
    let out = e.run(&["import", one.to_str().unwrap(), "--id", "one"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.run(&["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exports = e.base.join("data/exports");
    assert!(
        !exports.exists(),
        "`lab import` and `lab runs` made {exports:?}"
    );
    std::fs::write(&exports, b"canary").unwrap();
    let two = e.base.join("runs/two");
    for args in [
        &["runs"][..],
        &["import", two.to_str().unwrap(), "--id", "two"],
        &["forget", "two"],
    ] {
        let out = e.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert_fails_with(&e.run(&["export", "one"]), "exports directory");
    assert_eq!(std::fs::read(&exports).unwrap(), b"canary");
    // Nor do they parse the artifact allowlist, which only bundles use.
    std::fs::write(
        e.base.join("data/lab.toml"),
        "[artifacts]\nallow = [\".env\"]\n",
    )
    .unwrap();
    let out = e.run(&["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_fails_with(&e.run(&["export", "one"]), "hidden");
}

/// `--into` naming a file (under an allowed root) is refused as what it
/// is, not as a directory outside the roots.
#[test]
fn import_bundle_into_a_file_says_it_is_not_a_directory() {
    let e = env();
    let file = e.base.join("runs/one/notes.md");
    let out = e.run(&[
        "import-bundle",
        file.to_str().unwrap(),
        "--into",
        file.to_str().unwrap(),
    ]);
    assert_fails_with(&out, "is not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
}

/// `lab runs`: a header, then a row per run with its title, status and
/// creation time, in columns; `--json` the entries `GET /api/runs` lists,
/// without the URLs a browser session signs.
#[test]
fn lab_runs_lists_titles_status_and_dates_under_a_header() {
    let e = env();
    std::fs::create_dir_all(e.base.join("runs/three")).unwrap();
    std::fs::write(
        e.base.join("runs/three/run.toml"),
        "name = \"a much longer title, with spaces\"\nstatus = \"finished\"\ncreated = \"2026-03-04T05:06:07Z\"\n",
    )
    .unwrap();
    for (dir, id) in [("two", "two"), ("three", "three")] {
        let out = e.run(&[
            "import",
            e.base.join("runs").join(dir).to_str().unwrap(),
            "--id",
            id,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = e.run(&["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("ID "), "{text}");
    assert_eq!(run_ids(&out), ["three", "two"]);
    let three = lines[1];
    for cell in [
        "a much longer title, with spaces",
        "lab",
        "finished",
        "2026-03-04T05:06:07Z",
    ] {
        assert!(three.contains(cell), "{cell:?} not in {three:?}");
    }
    // Every header's left edge is its column's, in every row.
    let column = |line: &str, word: &str| line.find(word).unwrap();
    for (header, cell) in [
        ("NAME", "a much longer title"),
        ("FORMAT", "lab"),
        ("STATUS", "finished"),
        ("CREATED", "2026-03-04"),
    ] {
        assert_eq!(
            column(lines[0], header),
            column(three, cell),
            "{header}:\n{text}"
        );
    }
    assert_eq!(
        column(lines[0], "FORMAT"),
        column(lines[2], "lab"),
        "{text}"
    );
    // --json: one entry a line, as the API lists them, less the URLs.
    let entries = run_entries(&e.run(&["runs", "--json"]));
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["id"], "three");
    assert_eq!(entries[0]["name"], "a much longer title, with spaces");
    assert_eq!(entries[0]["status"], "finished");
    assert_eq!(entries[0]["created"], "2026-03-04T05:06:07Z");
    // The same entries as the API's, field for field (the server walks
    // the root at start: runs/one too).
    let server = Server::start(&e, &["--bind", "127.0.0.1:0"]);
    let api = server.get("/api/runs").json();
    let listed = api["runs"].as_array().unwrap();
    let entries = run_entries(&e.run(&["runs", "--json"]));
    assert_eq!(listed.len(), 3, "{api}");
    assert_eq!(entries.len(), 3, "{entries:?}");
    for (cli, api) in entries.iter().zip(listed) {
        let mut api = api.clone();
        for url in ["video_url", "thumbnail_url"] {
            api.as_object_mut().unwrap().remove(url);
        }
        let (cli, api) = (cli.as_object().unwrap(), api.as_object().unwrap());
        assert_eq!(
            cli.keys().collect::<Vec<_>>(),
            api.keys().collect::<Vec<_>>(),
            "the same fields"
        );
        for key in [
            "id",
            "name",
            "name_raw",
            "experiment",
            "format",
            "status",
            "created",
            "path",
        ] {
            assert_eq!(cli[key], api[key], "{key}");
        }
    }
    server.stop("-TERM");
}

/// Reading never creates the data dir: `lab runs` on one that does not
/// exist prints the header alone (nothing with `--json`), exits 0 and
/// leaves it absent; looking a run up there says there is none.
#[test]
fn reading_never_creates_the_data_dir() {
    let e = env();
    let data = e.base.join("data");
    let out = e.run(&["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["ID", "NAME", "EXPERIMENT", "FORMAT", "STATUS", "CREATED"]
    );
    assert!(!data.exists(), "`lab runs` made {data:?}");
    let out = e.run(&["runs", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!data.exists(), "`lab runs --json` made {data:?}");
    for args in [&["forget", "nope"][..], &["export", "nope"]] {
        assert_fails_with(&e.run(args), "no run with this id: nope");
        assert!(!data.exists(), "{args:?} made {data:?}");
    }
    assert_fails_with(
        &e.run(&["forget-root", e.runs_root().to_str().unwrap()]),
        "not a remembered root",
    );
    assert!(!data.exists(), "`lab forget-root` made {data:?}");
}

/// `lab --help` says what the Lab is for; every command's help has
/// examples; a mistyped command gets a suggestion.
#[test]
fn help_says_what_the_lab_is_for_with_examples() {
    let help = |args: &[&str]| {
        let out = Command::new(LAB).args(args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?} --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&[]);
    assert!(!top.contains("thin composition"), "{top}");
    assert!(top.contains("experiment runs"), "{top}");
    for cmd in [
        &[][..],
        &["serve"],
        &["import"],
        &["runs"],
        &["forget"],
        &["forget-root"],
        &["export"],
        &["import-bundle"],
        &["run"],
    ] {
        let text = help(cmd);
        let name = cmd.first().unwrap_or(&"");
        assert!(text.contains("Examples:\n"), "{cmd:?}:\n{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("lab {name}"))
                    || l.contains(&format!("&& lab {name}"))),
            "{cmd:?} has no example of itself:\n{text}"
        );
    }
    let runs = help(&["runs"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        runs.contains("ID NAME EXPERIMENT FORMAT STATUS CREATED"),
        "{runs}"
    );
    assert!(
        runs.contains("EXPERIMENT is the group its format puts it in"),
        "{runs}"
    );
    assert!(runs.contains("without the signed URLs"), "{runs}");
    let typo = Command::new(LAB).arg("serv").output().unwrap();
    assert_eq!(typo.status.code(), Some(2));
    let err = stderr(&typo);
    assert!(err.contains("'serve'"), "{err}");
}

/// Errors name the id or path they are about, and where to look.
#[test]
fn errors_name_the_id_or_path_and_point_to_runs_or_root() {
    let e = env();
    for cmd in ["forget", "export"] {
        let out = e.run(&[cmd, "nope"]);
        assert_fails_with(&out, "no run with this id: nope");
        assert_fails_with(&out, "see `lab runs`");
    }
    let bad = e.run(&["forget", "BAD/ID"]);
    assert_fails_with(&bad, "invalid run id \"BAD/ID\"");
    // A relative path that does not exist: said so, resolved.
    let missing = e
        .lab()
        .current_dir(&e.base)
        .args(["import", "relative/missing"])
        .output()
        .unwrap();
    let resolved = e.base.join("relative/missing");
    assert_fails_with(&missing, "does not exist");
    assert_fails_with(&missing, resolved.to_str().unwrap());
    assert!(!stderr(&missing).contains("allowed root"), "{missing:?}");
    // A directory outside the roots: named, with the fix.
    let outside = e.base.join("elsewhere/x");
    let out = e.run(&["import", outside.to_str().unwrap()]);
    assert_fails_with(&out, "not under an allowed root");
    assert_fails_with(&out, outside.to_str().unwrap());
    assert_fails_with(&out, "--root DIR");
}

/// A port in use: another Lab may be running there; port 0 is offered.
#[test]
fn a_port_in_use_suggests_another_lab_and_a_free_port() {
    let e = env();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let out = e.run(&["serve", "--bind", &bind]);
    assert_fails_with(&out, &format!("cannot listen on {bind}"));
    assert_fails_with(&out, "another Lab may be running there");
    assert_fails_with(&out, "--bind 127.0.0.1:0");
    drop(taken);
}

/// `--root` only where it means something, with help that says how deep
/// the walk goes; written before the command it still reaches the
/// commands that take it.
#[test]
fn root_only_where_it_means_something() {
    let e = env();
    let root = e.runs_root();
    for cmd in ["runs", "forget", "forget-root", "export"] {
        let out = Command::new(LAB).args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("--root <DIR>"), "{cmd}:\n{text}");
    }
    let out = e
        .lab()
        .args(["runs", "--root", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("--root"), "{out:?}");
    let before = e
        .lab()
        .args(["--root", root.to_str().unwrap(), "forget", "x"])
        .output()
        .unwrap();
    assert_fails_with(&before, "--root means nothing to `lab forget`");
    let serve = Command::new(LAB)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&serve.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!text.contains("directly under"), "{text}");
    assert!(text.contains("walked up to 8 directories deep"), "{text}");
    // Before the command, as older scripts write it.
    let out = e
        .lab()
        .arg("--root")
        .arg(&root)
        .arg("import")
        .arg(root.join("two"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(run_ids(&e.run(&["runs"])).len(), 1);
}

#[test]
fn ids_issued_before_stable_ids_still_name_their_runs() {
    let e = env();
    std::fs::write(e.base.join("runs/one/metrics.jsonl"), "{\"loss\": 0.5}\n").unwrap();
    // A data dir as a version before stable ids left it (`lab serve
    // --root BASE/runs` remembered the root): random ids, version 2.
    let runs = e.runs_root();
    let old = serde_json::json!({"version": 2, "forgotten": [], "roots": [runs], "runs": [
        {"id": "one-3f9c2d", "root": runs.join("one"), "imported_at": 5, "format": "lab"},
        {"id": "two-00aa11", "root": runs.join("two"), "imported_at": 5, "format": "lab"},
    ]});
    std::fs::create_dir_all(e.base.join("data")).unwrap();
    std::fs::write(e.base.join("data/registry.json"), old.to_string()).unwrap();
    let mut ids = run_ids(&e.run(&["runs"]));
    ids.sort();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (id, slug) in ids.iter().zip(["one-", "two-"]) {
        assert!(id.starts_with(slug) && id.len() == slug.len() + 12, "{id}");
    }
    // The same directories get the same ids in a new data dir.
    let fresh = |args: &[&str]| {
        Command::new(LAB)
            .arg("--data-dir")
            .arg(e.base.join("fresh"))
            .env_remove("XDG_DATA_HOME")
            .env("HOME", &e.base)
            .args(args)
            .output()
            .unwrap()
    };
    for dir in ["one", "two"] {
        let path = runs.join(dir);
        let out = fresh(&[
            "import",
            "--root",
            runs.to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut again = run_ids(&fresh(&["runs"]));
    again.sort();
    assert_eq!(again, ids);
    // The old ids still work for export and forget.
    let out = e.run(&["export", "one-3f9c2d", "--name", "old-id"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(e.base.join("data/exports/old-id.tar").is_file());
    let out = e.run(&["forget", "one-3f9c2d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(run_ids(&e.run(&["runs"])), [ids[1].clone()]);
    assert_fails_with(&e.run(&["forget", "one-3f9c2d"]), "one-3f9c2d");
    assert_fails_with(&e.run(&["forget", &ids[0]]), &ids[0]);
}

/// SPEC §6: a directory no reader recognises is never a run. `lab import`
/// of one fails (exit 1) naming each format and the files it looked for,
/// and what the directory looks like when it is run-like; nothing is
/// registered. A served root counts such directories in `/api/status`.
#[test]
fn a_directory_with_no_run_is_refused_on_import_and_counted_by_the_walk() {
    let e = env();
    let root = e.runs_root();
    for (rel, file) in [
        ("video-only", "output.mp4"),
        ("notes-only", "notes.md"),
        ("aim-project/.aim", "meta.json"),
        ("clearml/offline", "0a1b2c3d.zip"),
    ] {
        std::fs::create_dir_all(root.join(rel)).unwrap();
        std::fs::write(root.join(rel).join(file), "x").unwrap();
    }
    let out = e.run(&["import", root.join("video-only").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_fails_with(&out, "no run found there");
    assert_fails_with(&out, "videos, images or logs without run files");
    for looked_for in [
        "MLflow (meta.yaml with metrics/, params/ or tags/, or an mlflow.db)",
        "TensorBoard (events.out.tfevents.* files)",
        "Sacred (",
        "Lab (run.toml, run.json, metrics.jsonl or metrics.csv; a Lab job's provenance.json)",
    ] {
        assert_fails_with(&out, looked_for);
    }
    let aim = e.run(&["import", root.join("aim-project").to_str().unwrap()]);
    assert_eq!(aim.status.code(), Some(1), "{aim:?}");
    assert_fails_with(&aim, "an Aim repository (.aim/)");
    assert!(run_ids(&e.run(&["runs"])).is_empty());

    // Served: the walk registers `one` and `two` and counts what it could
    // not read (the notes, the video, the Aim repository, the ClearML
    // sessions), naming the first three.
    let server = Server::start(&e, &["--bind", "127.0.0.1:0"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status: serde_json::Value = loop {
        let status: serde_json::Value = server.get("/api/status").json();
        if status["counts"]["runs"] == 2 && status["unrecognised"]["count"] != 0 {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let unrecognised = &status["unrecognised"];
    assert_eq!(unrecognised["count"], 4, "{status}");
    let examples: Vec<(&str, &str)> = unrecognised["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["path"].as_str().unwrap(), x["what"].as_str().unwrap()))
        .collect();
    let at = |rel: &str| root.join(rel).display().to_string();
    assert_eq!(
        examples,
        [
            (at("aim-project").as_str(), "an Aim repository (.aim/)"),
            (
                at("notes-only").as_str(),
                "a directory of videos, images or logs without run files"
            ),
            (
                at("video-only").as_str(),
                "a directory of videos, images or logs without run files"
            ),
        ]
    );
    server.stop("-TERM");
}

/// `[formats] max_runs` (and the walk's other bounds) are the config's to
/// set: a walk stops at it, saying where; a value out of range is one
/// clear line.
#[test]
fn the_walks_bounds_are_configurable_and_checked() {
    let e = env();
    let config = e.base.join("bounds.toml");
    std::fs::write(&config, "[formats]\nmax_runs = 1\n").unwrap();
    let mut command = e.lab();
    command
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .arg("--root")
        .arg(e.runs_root())
        .args(["--bind", "127.0.0.1:0"])
        .stderr(Stdio::null());
    let served = common::serve(command);
    let get = |path: &str| {
        Request::new("GET", path)
            .header("Authorization", format!("Bearer {}", served.key))
            .send(served.port)
            .unwrap()
            .json()
    };
    let runs = get("/api/runs");
    assert_eq!(runs["total"], 1, "{runs}");
    let status = get("/api/status");
    assert!(
        status["discovery_warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().ends_with("stopped at 1 runs")),
        "{status}"
    );
    drop(served);
    for (bad, says) in [
        ("max_runs = 0", "[formats] max_runs = 0: from 1 to 2000000"),
        ("max_runs = 2000001", "[formats] max_runs = 2000001"),
        ("max_depth = 99", "[formats] max_depth = 99: from 1 to 32"),
        (
            "cached_points = 1000",
            "[formats] cached_points = 1000: from 1000000 to 400000000",
        ),
        ("max_dir = 5", "max_dir"),
    ] {
        std::fs::write(&config, format!("[formats]\n{bad}\n")).unwrap();
        let out = e
            .lab()
            .arg("--config")
            .arg(&config)
            .args(["serve", "--bind", "127.0.0.1:0", "--root"])
            .arg(e.runs_root())
            .output()
            .unwrap();
        assert_fails_with(&out, says);
    }
}
