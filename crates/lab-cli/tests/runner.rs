//! `lab run`: the sandboxed runner through the real binary. Network, shell
//! metacharacters, process-tree teardown, split secrets, provenance, the
//! program allowlist, programs found in the caller's PATH (a venv's).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod common;

const LAB: &str = env!("CARGO_BIN_EXE_lab");
const SECRET: &str = "hunter2-secret-value-77";
/// `[runner] path`'s default, and the PATH `lab run` is started with here.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Env {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    /// The project `lab run` is invoked from (a `[runner] read_paths` entry).
    project: PathBuf,
}

fn env() -> Env {
    env_with("")
}

/// A scratch data dir, a fake `HOME` (`base/home`), a project directory and
/// a config with `extra` appended to its `[runner]` table.
fn env_with(extra: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let project = base.join("home/project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        base.join("lab.toml"),
        format!(
            "[runner]\nprograms = [\"echo\", \"python3\", \"sh\", \"cat\"]\nenv_allow = [\"MY_API_TOKEN\", \"SEED\", \"WANDB_MODE\"]\nread_paths = [\"home/project\"]\n{extra}"
        ),
    )
    .unwrap();
    Env {
        _tmp: tmp,
        base,
        project,
    }
}

impl Env {
    /// `lab --data-dir … --config …`, started in the project with the fake
    /// `HOME`.
    fn lab(&self) -> Command {
        let mut command = Command::new(LAB);
        command
            .arg("--data-dir")
            .arg(self.base.join("data"))
            .arg("--config")
            .arg(self.base.join("lab.toml"))
            .current_dir(&self.project)
            .env("HOME", self.base.join("home"))
            // The caller's PATH, where `lab run` finds PROGRAM: the system's
            // alone, whatever this test's own (a pyenv shim, a venv) holds.
            .env("PATH", SYSTEM_PATH)
            .env("MY_API_TOKEN", SECRET)
            .env("SEED", "7");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.lab().arg("run").args(args).output().unwrap()
    }

    /// The run directory of the only (or last) job.
    fn run_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.base.join("data/runs"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A host outside this machine's loopback: a network namespace joined to
/// the host by a veth pair, with a listener that greets one client.
struct PeerHost {
    name: String,
    addr: String,
    port: u16,
    _listener: std::process::Child,
}

impl PeerHost {
    fn start() -> Self {
        let id = std::process::id();
        let name = format!("lt{id}");
        // 198.18.0.0/15, set aside for benchmarking (RFC 2544): never a
        // real route of the machine's.
        let net = format!("198.{}.{}", 18 + id % 2, (id / 2) % 250);
        let (host_if, peer_if) = (format!("lt{id}h"), format!("lt{id}p"));
        let ip = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2): `cargo xtask test` installs it");
            assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
        ]);
        ip(&["link", "set", &peer_if, "netns", &name]);
        ip(&["addr", "add", &format!("{net}.1/24"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let peer_net = format!("{net}.2/24");
        ip(&["-n", &name, "addr", "add", &peer_net, "dev", &peer_if]);
        ip(&["-n", &name, "link", "set", &peer_if, "up"]);
        let addr = format!("{net}.2");
        let port = 45000 + (id % 1000) as u16;
        let listener = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c"])
            .arg(format!("import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{addr}', {port}))\ns.listen()\nprint('ready', flush=True)\nc, _ = s.accept()\nc.send(b'hello from outside\\n')\nc.close()"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut listener = listener;
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(listener.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "ready\n");
        PeerHost {
            name,
            addr,
            port,
            _listener: listener,
        }
    }
}

impl Drop for PeerHost {
    fn drop(&mut self) {
        let _ = self._listener.kill();
        let _ = self._listener.wait();
        // Deleting the namespace takes its end of the veth pair, and the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[test]
fn network_is_off_unless_allowed() {
    let e = env();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=5)\nprint('connected')"
    );
    let off = e.run(&["--", "python3", "-c", &script]);
    assert_eq!(off.status.code(), Some(1), "{}", text(&off.stderr));
    assert!(
        text(&off.stderr).contains("Operation not permitted"),
        "{}",
        text(&off.stderr)
    );
    assert!(!text(&off.stdout).contains("connected"));
    // With the flag, the job has a network namespace of its own connected
    // by pasta: a host outside the machine's loopback is reachable, the
    // host's own loopback services are not.
    let peer = PeerHost::start();
    let outside = format!(
        "import socket\ns = socket.create_connection(('{}', {}), timeout=5)\nprint(s.recv(64).decode())",
        peer.addr, peer.port
    );
    let on = e.run(&["--runner-allow-network", "--", "python3", "-c", &outside]);
    assert!(on.status.success(), "{}", text(&on.stderr));
    assert_eq!(text(&on.stdout).trim(), "hello from outside");
    // pasta ends with the job: none is left behind, orphaned.
    let orphans = Command::new("pgrep")
        .args(["-P", "1", "-x", "pasta"])
        .output()
        .unwrap();
    assert!(
        !orphans.status.success(),
        "a pasta outlived its job: {}",
        text(&orphans.stdout)
    );
    let on = e.run(&["--runner-allow-network", "--", "python3", "-c", &script]);
    assert!(!on.status.success(), "{}", text(&on.stdout));
    assert!(
        text(&on.stderr).contains("Connection refused"),
        "the host's loopback is out of reach: {}",
        text(&on.stderr)
    );
    // Name resolution and UDP are gone too.
    for script in [
        "import socket; socket.getaddrinfo('example.com', 80)",
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
    ] {
        let out = e.run(&["--", "python3", "-c", script]);
        assert!(!out.status.success(), "{script} succeeded");
    }
    // A pathname Unix socket of the host (think docker.sock): a network
    // namespace does not stop it; the seccomp filter does.
    let path = e.base.join("host.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let script = format!(
        "import socket; socket.socket(socket.AF_UNIX).connect({:?}); print('unix connected')",
        path.to_str().unwrap()
    );
    let off = e.run(&["--", "python3", "-c", &script]);
    assert!(
        !off.status.success() && !text(&off.stdout).contains("unix connected"),
        "{}",
        text(&off.stderr)
    );
    // With the network flag, only IP sockets: the host's Unix sockets (D-Bus,
    // X11, ssh-agent, docker) and abstract ones stay out of reach.
    let on = e.run(&["--runner-allow-network", "--", "python3", "-c", &script]);
    assert!(
        !on.status.success() && !text(&on.stdout).contains("unix connected"),
        "{}",
        text(&on.stderr)
    );
    assert!(
        text(&on.stderr).contains("Operation not permitted"),
        "{}",
        text(&on.stderr)
    );
    // The same script does connect outside the sandbox: the probe can succeed.
    let host = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(text(&host.stdout).contains("unix connected"));
    let abstract_name = format!("lab-test-{}", std::process::id());
    let _abstract = std::os::unix::net::UnixListener::bind_addr(
        &<std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            abstract_name.as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    let script = format!(
        "import socket; socket.socket(socket.AF_UNIX).connect('\\0{abstract_name}'); print('abstract connected')"
    );
    let host = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        text(&host.stdout).contains("abstract connected"),
        "{}",
        text(&host.stderr)
    );
    for flags in [&[][..], &["--runner-allow-network"]] {
        let mut args = flags.to_vec();
        args.extend(["--", "python3", "-c", &script]);
        let out = e.run(&args);
        assert!(
            !out.status.success() && !text(&out.stdout).contains("abstract connected"),
            "{flags:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn shell_metacharacters_arrive_literally() {
    let e = env();
    let args = [
        "$(id)",
        "a;b",
        "`whoami`",
        "*",
        "x > /tmp/y",
        "'q'",
        "$HOME",
    ];
    let mut argv = vec!["--", "echo"];
    argv.extend(args);
    let out = e.run(&argv);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n", args.join(" ")));
    let dir = &e.run_dirs()[0];
    assert_eq!(
        std::fs::read_to_string(dir.join("stdout.log")).unwrap(),
        format!("{}\n", args.join(" "))
    );
    assert!(!Path::new("/tmp/y").exists());
}

/// Whether a process whose command line starts with `marker` is alive
/// (anchored, so `lab run … sleep N` itself does not count).
fn survivors(marker: &str) -> bool {
    let out = Command::new("pgrep")
        .args(["-f", &format!("^{marker}")])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn a_timeout_ends_every_process_the_job_started() {
    let e = env();
    let marker = "sleep 417.25";
    let script =
        format!("setsid {marker} & {marker} & (setsid sh -c '{marker}' &) ; echo started; wait");
    let out = e.run(&["--timeout", "2", "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("started"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !survivors(marker),
        "a process of the job survived the timeout"
    );
    let provenance = std::fs::read_to_string(e.run_dirs()[0].join("provenance.json")).unwrap();
    assert!(provenance.contains("\"timed_out\": true"), "{provenance}");
}

#[test]
fn when_the_job_ends_its_background_processes_end_too() {
    let e = env();
    let marker = "sleep 418.5";
    let out = e.run(&["--", "sh", "-c", &format!("setsid {marker} & echo bye")]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !survivors(marker),
        "a setsid'd background process outlived the job"
    );
}

#[test]
fn a_cancelled_job_takes_its_process_tree_with_it() {
    let e = env();
    let marker = "sleep 419.75";
    let mut child = e
        .lab()
        .args([
            "run",
            "--",
            "sh",
            "-c",
            &format!("setsid {marker} & {marker}"),
        ])
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !survivors(marker) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!survivors(marker), "a process survived the cancel");
}

#[test]
fn a_secret_split_across_writes_never_reaches_the_log() {
    let e = env();
    let script = "import os, sys, time\nv = os.environ['MY_API_TOKEN']\nsys.stdout.write('token=' + v[:7]); sys.stdout.flush(); time.sleep(0.4)\nsys.stdout.write(v[7:] + ' and AKIA'); sys.stdout.flush(); time.sleep(0.4)\nsys.stdout.write('IOSFODNN7EXAMPLE done\\n')\nsys.stderr.write(v + '\\n')";
    let out = e.run(&["--env", "MY_API_TOKEN", "--", "python3", "-c", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = &e.run_dirs()[0];
    let stdout = std::fs::read_to_string(dir.join("stdout.log")).unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    assert_eq!(stdout, "token=[REDACTED] and [REDACTED] done\n");
    assert_eq!(stderr, "[REDACTED]\n");
    assert!(
        !text(&out.stdout).contains("hunter2"),
        "the terminal echo is redacted too"
    );
    // Nothing in the data dir holds the value: logs, provenance, registry.
    let mut files = Vec::new();
    files_under(&e.base.join("data"), &mut files);
    for file in files {
        let content = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !content.contains(SECRET) && !content.contains("hunter2"),
            "{} holds the secret",
            file.display()
        );
    }
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(provenance["env_names"], serde_json::json!(["MY_API_TOKEN"]));
    assert_eq!(provenance["exit"]["code"], 0);
    assert_eq!(provenance["isolation"]["user_namespace"], true);
    assert_eq!(provenance["isolation"]["network_namespace"], true);
    assert!(provenance["sha256"].as_str().unwrap().len() == 64);
}

#[test]
fn the_job_sees_only_its_environment_and_writes_only_its_directory() {
    let e = env();
    let script = "import os\nprint(sorted(os.environ))\nopen(os.environ['LAB_OUTPUT_DIR'] + '/out.txt', 'w').write('ok')\ntry:\n    open('/var/tmp/lab-runner-escape.txt', 'w')\n    print('ESCAPED')\nexcept OSError as e:\n    print('refused', e.errno)";
    let out = e
        .lab()
        .args(["run", "--env", "SEED", "--", "python3", "-c", script])
        .env("AWS_SECRET_ACCESS_KEY", "should-not-pass")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("['HOME', 'LAB_OUTPUT_DIR', 'LANG', 'PATH', 'SEED', 'TMPDIR']"),
        "{stdout}"
    );
    // EROFS: everything but the job's own directories is mounted read-only
    // (and Landlock would refuse it with EACCES besides).
    assert!(stdout.contains("refused 30"), "{stdout}");
    assert!(e.run_dirs()[0].join("job/out.txt").exists());
    assert!(
        !e.project.join("out.txt").exists(),
        "the project is untouched"
    );
    assert!(!Path::new("/var/tmp/lab-runner-escape.txt").exists());
}

#[test]
fn programs_off_the_allowlist_are_refused_however_spelled() {
    let e = env();
    for program in [
        "id",
        "/usr/bin/id",
        "/bin/../usr/bin/id",
        "./echo",
        "echo/",
        "",
        "/usr/bin/env",
        "bash",
    ] {
        let out = e.run(&["--", program, "x"]);
        assert!(!out.status.success(), "{program:?} ran");
        let err = text(&out.stderr);
        assert!(
            err.contains("not on the [runner] programs allowlist")
                || err.contains("nothing to run"),
            "{program:?}: {err}"
        );
    }
    // The same program spelled differently resolves to the same canonical path.
    for program in ["echo", "/bin/echo", "/usr/bin/echo", "/usr/bin/../bin/echo"] {
        let out = e.run(&["--", program, "same"]);
        assert!(out.status.success(), "{program:?}: {}", text(&out.stderr));
    }
    // Environment names off env_allow, or loader variables, are refused.
    for name in ["PATH", "LD_PRELOAD", "AWS_SECRET_ACCESS_KEY", "BAD=NAME"] {
        let out = e.run(&["--env", name, "--", "echo"]);
        assert!(!out.status.success(), "{name} was passed");
    }
    assert!(
        e.run_dirs().len() <= 4,
        "refused jobs leave no run directory"
    );
}

#[test]
fn exec_hooks_run_only_with_the_flag_and_the_confirmation() {
    let e = env();
    let root = e.base.join("flows");
    std::fs::create_dir_all(root.join("sweep")).unwrap();
    let workflow = root.join("sweep/workflow.toml");
    std::fs::write(
        &workflow,
        "name = \"sweep\"\n[[steps]]\nprogram = \"echo\"\nargs = [\"first\"]\n[[steps]]\nexec = true\nprogram = \"./hook.sh\"\n[[steps]]\nprogram = \"echo\"\nargs = [\"last\"]\n",
    )
    .unwrap();
    std::fs::write(root.join("sweep/hook.sh"), "#!/bin/sh\necho HOOK-RAN\n").unwrap();
    std::fs::set_permissions(
        root.join("sweep/hook.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let run_file = |file: &Path, extra: &[&str]| {
        e.lab()
            .arg("--root")
            .arg(&root)
            .args(["run", "--workflow", file.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let run = |extra: &[&str]| run_file(&workflow, extra);
    for extra in [
        &[][..],
        &["--runner-allow-workflow-exec"],
        &["--confirm-exec-hooks"],
    ] {
        let out = run(extra);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            text(&out.stderr).contains("exec hooks refused"),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stdout).contains("first"),
            "no step runs before the refusal"
        );
        assert!(e.run_dirs().is_empty(), "a refused workflow leaves no run");
    }
    let out = run(&["--runner-allow-workflow-exec", "--confirm-exec-hooks"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first\nHOOK-RAN\nlast\n");
    let provenance: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(e.run_dirs()[0].join("provenance.json")).unwrap(),
    )
    .unwrap();
    let steps = provenance["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1]["exec_hook"], true);
    assert_eq!(steps[2]["exit"]["code"], 0);
    // A workflow outside the allowed roots is refused.
    let outside = e.base.join("outside.toml");
    std::fs::copy(&workflow, &outside).unwrap();
    let out = run_file(&outside, &[]);
    assert!(
        text(&out.stderr).contains("not a file under an allowed root"),
        "{}",
        text(&out.stderr)
    );
    // A failing step stops the workflow.
    std::fs::write(&workflow, "[[steps]]\nprogram = \"sh\"\nargs = [\"-c\", \"exit 3\"]\n[[steps]]\nprogram = \"echo\"\nargs = [\"never\"]\n").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!text(&out.stdout).contains("never"));
}

#[test]
fn a_timeout_sends_sigterm_first_then_sigkill() {
    let e = env();
    // A job that cleans up on SIGTERM gets to do so...
    let polite = "import signal, sys, time\ndef bye(*_):\n    print('cleaned up', flush=True); sys.exit(0)\nsignal.signal(signal.SIGTERM, bye)\nprint('working', flush=True)\ntime.sleep(60)";
    let out = e.run(&["--timeout", "1", "--", "python3", "-c", polite]);
    assert_eq!(out.status.code(), Some(124));
    assert_eq!(text(&out.stdout), "working\ncleaned up\n");
    // ...and one that ignores it is killed after the grace period.
    let stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ignoring', flush=True)\ntime.sleep(423.5)";
    let started = std::time::Instant::now();
    let out = e.run(&["--timeout", "1", "--", "python3", "-c", stubborn]);
    assert_eq!(out.status.code(), Some(124));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "killed after the grace period"
    );
    assert!(text(&out.stdout).contains("ignoring"));
}

/// Runs `script` with `python3 -c` from the project and returns its stdout.
fn python(e: &Env, extra: &[&str], script: &str) -> String {
    let mut args = extra.to_vec();
    args.extend(["--", "python3", "-c", script]);
    let out = e.run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

const TRY_READ: &str = "import sys\nfor p in sys.argv[1:]:\n    try:\n        open(p, 'rb').read(1)\n        print('READ', p)\n    except OSError as e:\n        print('DENIED', e.errno, p)\n";

#[test]
fn reads_are_confined_to_what_the_job_needs() {
    // Outside /tmp, so the denials are Landlock's on real host paths.
    let tmp = common::outside_tmp();
    let base = tmp.path().canonicalize().unwrap();
    let home = base.join("home");
    for (file, content) in [
        ("home/.ssh/id_ed25519", "PRIVATE KEY"),
        ("home/.aws/credentials", "aws_secret"),
        ("home/.netrc", "machine x password y"),
        ("home/project/train.py", "print('train')"),
        ("datasets/mnist/train.csv", "1,2,3"),
    ] {
        std::fs::create_dir_all(base.join(file).parent().unwrap()).unwrap();
        std::fs::write(base.join(file), content).unwrap();
    }
    // A venv (its python is a link to the system one) with a package.
    let venv = base.join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("site-packages");
    std::fs::write(site.join("labprobe.py"), "WHERE = __file__\n").unwrap();
    let data = base.join("data");
    std::fs::write(
        base.join("lab.toml"),
        format!(
            "[runner]\nprograms = [{:?}, \"python3\"]\nread_paths = [\"home/project\", \"datasets\"]\n",
            venv.join("bin/python3").to_str().unwrap()
        ),
    )
    .unwrap();
    let lab = |args: &[&str]| {
        Command::new(LAB)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(base.join("lab.toml"))
            .current_dir(home.join("project"))
            .env("HOME", &home)
            .args(args)
            .output()
            .unwrap()
    };
    // A first run, whose files a second job must not see.
    let first = lab(&["run", "--", "python3", "-c", "print('first run')"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let other_run = std::fs::read_dir(data.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let secrets = [
        home.join(".ssh/id_ed25519"),
        home.join(".aws/credentials"),
        home.join(".netrc"),
        data.join("registry.json"),
        data.join("registry.log"),
        other_run.join("stdout.log"),
        other_run.join("provenance.json"),
        std::env::current_exe().unwrap(),
    ];
    let readable = [
        home.join("project/train.py"),
        base.join("datasets/mnist/train.csv"),
        PathBuf::from("/etc/passwd"),
    ];
    let mut args: Vec<String> = [
        "run",
        "--",
        venv.join("bin/python3").to_str().unwrap(),
        "-c",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!(
        "{TRY_READ}import labprobe, sys\nprint('venv', sys.prefix, labprobe.WHERE)"
    ));
    args.extend(
        secrets
            .iter()
            .chain(&readable)
            .map(|p| p.display().to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for path in &secrets {
        // EACCES (Landlock); or, for a path under /tmp (a checkout there),
        // ENOENT: the job's /tmp is its own.
        let denied = [13, 2]
            .iter()
            .any(|errno| stdout.contains(&format!("DENIED {errno} {}", path.display())));
        assert!(
            denied && !stdout.contains(&format!("READ {}", path.display())),
            "{} was readable:\n{stdout}",
            path.display()
        );
    }
    for path in &readable {
        assert!(
            stdout.contains(&format!("READ {}", path.display())),
            "{} was not readable:\n{stdout}",
            path.display()
        );
    }
    assert!(
        stdout.contains(&format!("venv {}", venv.display()))
            && stdout.contains(&site.join("labprobe.py").display().to_string()),
        "the venv's python runs with its own site-packages:\n{stdout}"
    );
    // /tmp and /dev/shm are the job's own, and gone afterwards.
    let marker = format!("lab-private-{}", std::process::id());
    let script = format!(
        "import os\nfor d in ('/tmp', '/dev/shm'):\n    open(os.path.join(d, '{marker}'), 'w').write('x')\n    print(d, sorted(os.listdir(d)))\nimport shutil\nprint('tmp size', shutil.disk_usage('/tmp').total)"
    );
    let out = lab(&["run", "--", "python3", "-c", &script]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("/dev/shm ['{marker}']")),
        "a private, empty /dev/shm: {stdout}"
    );
    assert!(
        stdout.contains(&format!("tmp size {}", 4u64 << 30)),
        "a size-capped /tmp: {stdout}"
    );
    for dir in ["/tmp", "/dev/shm"] {
        assert!(
            !Path::new(dir).join(&marker).exists(),
            "{dir} is not private"
        );
    }
}

#[test]
fn named_devices_pass_through_and_no_others() {
    let script = "try:\n    f = open('/dev/full', 'wb', buffering=0)\n    f.write(b'x')\nexcept OSError as e:\n    print('errno', e.errno)";
    let e = env();
    // Not named: Landlock refuses the open (EACCES).
    assert_eq!(python(&e, &[], script), "errno 13\n");
    let e = env_with("devices = [\"/dev/ful*\"]\n");
    // Named: it opens, and writing to it fails as /dev/full does (ENOSPC).
    assert_eq!(python(&e, &[], script), "errno 28\n");
}

#[test]
fn lab_run_works_in_a_project_and_its_writes_land_in_the_run() {
    let e = env();
    std::fs::write(
        e.project.join("train.py"),
        "import os, sys\nprint('lr', sys.argv[1:])\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/x.txt', 'w').write('x')\nos.makedirs('lightning_logs/version_0')\nopen('lightning_logs/version_0/metrics.csv', 'w').write('step,loss\\n0,1.0\\n')\nopen('train.py', 'a').write('# edited by the job\\n')\n",
    )
    .unwrap();
    std::fs::create_dir_all(e.project.join(".git/refs/heads")).unwrap();
    std::fs::write(e.project.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    std::fs::write(
        e.project.join(".git/refs/heads/main"),
        format!("{commit}\n"),
    )
    .unwrap();
    let before = std::fs::read_to_string(e.project.join("train.py")).unwrap();
    let out = e.run(&["--", "python3", "train.py", "--lr", "0.1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lr ['--lr', '0.1']\n");
    let run = &e.run_dirs()[0];
    assert_eq!(
        std::fs::read_to_string(run.join("job/outputs/x.txt")).unwrap(),
        "x"
    );
    assert!(
        run.join("job/lightning_logs/version_0/metrics.csv")
            .is_file()
    );
    assert!(
        run.join("job/train.py").is_file(),
        "the edited copy is the run's"
    );
    assert!(!e.project.join("outputs").exists());
    assert!(!e.project.join("lightning_logs").exists());
    assert_eq!(
        std::fs::read_to_string(e.project.join("train.py")).unwrap(),
        before,
        "the project is untouched"
    );
    assert!(
        !run.join(".work").exists(),
        "overlayfs's work dir is removed"
    );
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(provenance["cwd"], e.project.display().to_string());
    assert_eq!(provenance["git"]["commit"], commit);
    assert_eq!(provenance["git"]["branch"], "main");
}

#[test]
fn a_cwd_of_home_or_outside_the_allowed_places_is_refused() {
    let e = env();
    let home = e.base.join("home");
    let elsewhere = e.base.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for (dir, needle) in [
        (&home, "home directory"),
        (&e.base, "home directory or one of its parents"),
        (
            &elsewhere,
            "not under an allowed root or a [runner] read_paths entry",
        ),
    ] {
        let out = e
            .lab()
            .current_dir(dir)
            .args(["run", "--", "echo", "hi"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{} was accepted", dir.display());
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{}: {err}", dir.display());
        assert!(err.contains("read_paths"), "says how to allow it: {err}");
        assert_eq!(
            err.lines()
                .filter(|l| !l.starts_with("lab: warning:"))
                .count(),
            1,
            "one line: {err}"
        );
    }
    assert!(e.run_dirs().is_empty(), "no run for a refused job");
}

#[test]
fn allowlisted_values_that_are_not_secrets_stay_readable() {
    let e = env();
    let out = e
        .lab()
        .env("WANDB_MODE", "offline")
        .args(["run", "--env", "WANDB_MODE", "--", "python3", "-c"])
        .arg("import os; print('mode', os.environ['WANDB_MODE'], 'offline')")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(e.run_dirs()[0].join("stdout.log")).unwrap();
    assert_eq!(log, "mode offline offline\n");
}

#[test]
fn logs_are_capped_keeping_head_and_tail() {
    let e = env_with("log_max_bytes = 2000\n");
    let script = "import sys\nprint('HEAD-MARK')\nfor i in range(2000):\n    print('line %05d' % i)\nprint('TAIL-MARK')";
    let out = e.run(&["--", "python3", "-c", script]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("line 01000"),
        "the terminal gets it all"
    );
    let log = std::fs::read_to_string(e.run_dirs()[0].join("stdout.log")).unwrap();
    assert!(log.starts_with("HEAD-MARK\n"), "{log}");
    assert!(log.ends_with("TAIL-MARK\n"), "{log}");
    assert!(log.contains("bytes of output omitted"), "{log}");
    assert!(!log.contains("line 01000"), "the middle is left out");
    assert!(log.len() < 2300, "{} bytes", log.len());
}

#[test]
fn seccomp_refuses_x32_syscall_numbers() {
    let e = env();
    // getpid through the x32 ABI (nr | 0x40000000): a pid outside, EPERM inside.
    let script = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall(0x40000000 | 39)\nprint(r, ctypes.get_errno())";
    let host = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    // Outside, the kernel answers (a pid, or ENOSYS where x32 is compiled
    // out); inside, the filter refuses it before the kernel sees it.
    let host = text(&host.stdout);
    assert!(!host.ends_with(" 1\n"), "EPERM outside the sandbox: {host}");
    assert_eq!(python(&e, &[], script), "-1 1\n");
}

#[test]
fn a_job_keeps_no_capability_and_cannot_mount_unshare_or_reach_keyrings() {
    let e = env();
    // A root job in its user namespace would otherwise hold every
    // capability there; a detached overlay (fsopen/fsmount) would write past
    // Landlock, a nested user namespace would give them back.
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')]
print('caps', sorted(set(caps)))
def call(name, nr, *args):
    r = libc.syscall(nr, *args)
    print(name, r, ctypes.get_errno())
call('fsopen', 430, b'overlay', 0)
call('open_tree', 428, -100, b'/tmp', 1)
call('mount', 165, b'none', b'/tmp', b'tmpfs', 0, None)
call('unshare', 272, 0x10000000)
call('clone', 56, 0x10000000 | 17, 0, 0, 0, 0)
call('clone3', 435, 0, 0)
call('keyctl', 250, 0, -3, 0)
call('add_key', 248, b'user', b'x', b'y', 1, -3)
open('tool', 'w').write('#!/bin/sh\n')
os.chmod('tool', 0o6755)
print('mode', oct(os.stat('tool').st_mode & 0o7777))
"#;
    let out = python(&e, &[], script);
    assert!(out.contains("caps ['0000000000000000']"), "{out}");
    for call in [
        "fsopen",
        "open_tree",
        "mount",
        "unshare",
        "clone",
        "keyctl",
        "add_key",
    ] {
        assert!(
            out.contains(&format!("{call} -1 1\n")),
            "{call} not refused with EPERM: {out}"
        );
    }
    assert!(out.contains("clone3 -1 38\n"), "clone3 is ENOSYS: {out}");
    assert!(out.contains("mode 0o6755"), "{out}");
    // The setuid/setgid bits did not survive the job.
    let tool = e.run_dirs()[0].join("job/tool");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&tool).unwrap().permissions());
    assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
}

#[test]
fn a_cwd_in_the_data_dir_is_refused() {
    let e = env();
    let out = e.run(&["--", "echo", "first"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // DATA/runs is an allowed root (jobs run there); still no job may start
    // in another run, where it could read that run's logs.
    let other = e.run_dirs()[0].clone();
    let out = e
        .lab()
        .current_dir(&other)
        .args(["run", "--", "cat", "stdout.log"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("the Lab's data dir"), "{err}");
    assert!(!text(&out.stdout).contains("first"));
}

#[test]
fn a_job_cannot_change_the_metadata_of_anything_outside() {
    // Outside /tmp: real host paths. chmod, utimes and xattrs are not
    // Landlock rights; read-only mounts refuse them.
    let tmp = common::outside_tmp();
    let base = tmp.path().canonicalize().unwrap();
    let project = base.join("home/project");
    let dataset = base.join("dataset");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&dataset).unwrap();
    let canary = dataset.join("canary.bin");
    std::fs::write(&canary, "x").unwrap();
    std::fs::write(project.join("train.py"), "print(1)").unwrap();
    let data = base.join("data");
    std::fs::write(
        base.join("lab.toml"),
        "[runner]\nprograms = [\"python3\"]\nread_paths = [\"home/project\", \"dataset\"]\n",
    )
    .unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o7777
    };
    let before = [mode(&canary), mode(&project.join("train.py"))];
    std::fs::create_dir_all(&data).unwrap();
    let data_mode = mode(&data);
    let script = "import os, sys\nfor p in sys.argv[1:]:\n    for what, call in (('chmod', lambda: os.chmod(p, 0o6777)), ('utime', lambda: os.utime(p, (0, 0))), ('xattr', lambda: os.setxattr(p, 'user.lab', b'1'))):\n        try:\n            call(); print('CHANGED', what, p)\n        except OSError as e:\n            print('refused', what, e.errno, p)\n";
    let out = Command::new(LAB)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(base.join("lab.toml"))
        .current_dir(&project)
        .env("HOME", base.join("home"))
        .args(["run", "--", "python3", "-c", script])
        .arg(&canary)
        .arg(project.join("train.py"))
        .arg(&data)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("CHANGED"))
        .collect();
    assert!(
        changed.iter().all(|l| l.ends_with("train.py")),
        "only the job's own copy of a project file may change: {stdout}"
    );
    assert!(
        stdout.contains(&format!("refused chmod 30 {}", canary.display())),
        "{stdout}"
    );
    // The project's file changed only in the job's copy (the overlay).
    assert_eq!([mode(&canary), mode(&project.join("train.py"))], before);
    assert_eq!(mode(&data), data_mode);
}

#[test]
fn provenance_hashes_the_program_a_later_step_really_runs() {
    let e = env();
    let flows = e.base.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("hook.sh"), "#!/bin/sh\necho ORIGINAL\n").unwrap();
    std::fs::set_permissions(
        flows.join("hook.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Step 1 rewrites the hook in the job's view of the directory (the
    // overlay); step 2 then runs the rewritten one.
    std::fs::write(
        flows.join("wf.toml"),
        "[[steps]]\nprogram = \"sh\"\nargs = [\"-c\", \"printf '#!/bin/sh\\\\necho REPLACED\\\\n' > hook.sh\"]\n[[steps]]\nexec = true\nprogram = \"./hook.sh\"\n",
    )
    .unwrap();
    let out = e
        .lab()
        .arg("--root")
        .arg(&flows)
        .args([
            "run",
            "--runner-allow-workflow-exec",
            "--confirm-exec-hooks",
            "--workflow",
        ])
        .arg(flows.join("wf.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "REPLACED\n");
    let run = &e.run_dirs()[0];
    let sha = |p: &Path| {
        let out = Command::new("sha256sum").arg(p).output().unwrap();
        text(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(
        provenance["steps"][1]["sha256"],
        sha(&run.join("job/hook.sh"))
    );
    assert_ne!(
        provenance["steps"][1]["sha256"],
        sha(&flows.join("hook.sh"))
    );
    assert_eq!(
        std::fs::read_to_string(flows.join("hook.sh")).unwrap(),
        "#!/bin/sh\necho ORIGINAL\n"
    );
}

/// The last line `lab run` writes (SPEC §3): `lab: ID STATE… in N s — DIR`.
fn last_line(out: &Output) -> String {
    text(&out.stderr).lines().last().unwrap_or("").to_owned()
}

#[test]
fn the_last_line_and_exit_code_follow_the_job_state() {
    let e = env();
    for (args, code, state) in [
        (&["--", "echo", "hi"][..], 0, "finished (exit 0)"),
        (&["--", "sh", "-c", "exit 3"][..], 3, "failed (exit 3)"),
        (
            &["--", "sh", "-c", "kill -9 $$"][..],
            137,
            "killed (signal 9)",
        ),
        (
            &["--timeout", "1", "--", "sh", "-c", "sleep 30"][..],
            124,
            "timeout",
        ),
    ] {
        let before = e.run_dirs();
        let out = e.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let dir = e
            .run_dirs()
            .into_iter()
            .find(|d| !before.contains(d))
            .unwrap();
        let id = dir.file_name().unwrap().to_str().unwrap();
        let line = last_line(&out);
        let prefix = format!("lab: {id} {state} in ");
        let suffix = format!(" s — {}", dir.display());
        assert!(
            line.starts_with(&prefix) && line.ends_with(&suffix),
            "{args:?}: {line:?}"
        );
        let seconds = &line[prefix.len()..line.len() - suffix.len()];
        assert!(seconds.parse::<f64>().is_ok(), "{line:?}");
    }
    // Refused before it starts: one line, exit 2, no run.
    let before = e.run_dirs();
    let out = e.run(&["--env", "LD_PRELOAD", "--", "echo", "hi"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        last_line(&out).starts_with("lab: refused: "),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(e.run_dirs(), before);
}

#[test]
fn a_program_in_home_local_bin_never_gets_the_data_dir() {
    // Outside /tmp, so the denials are Landlock's on real host paths. HOME
    // is the scratch home, and the data dir its default, ~/.local/share/lab.
    let tmp = common::outside_tmp();
    let base = tmp.path().canonicalize().unwrap();
    let home = base.join("home");
    let project = home.join("project");
    let data = home.join(".local/share/lab");
    let local_bin = home.join(".local/bin");
    // A program copied into ~/.local/bin, and a pipx-style one: a link in
    // ~/.local/bin to the program in its own venv.
    let venv = home.join(".local/share/pipx/venvs/tool");
    for dir in [&project, &local_bin, &venv.join("bin")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let cat = std::fs::canonicalize("/bin/cat").unwrap();
    std::fs::copy(&cat, local_bin.join("lab-cat")).unwrap();
    std::fs::copy(&cat, venv.join("bin/tool")).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::os::unix::fs::symlink(venv.join("bin/tool"), local_bin.join("tool")).unwrap();
    std::fs::write(
        base.join("lab.toml"),
        format!(
            "[runner]\nprograms = [{:?}, {:?}, \"python3\"]\nread_paths = [{:?}]\n",
            local_bin.join("lab-cat").to_str().unwrap(),
            local_bin.join("tool").to_str().unwrap(),
            project.to_str().unwrap(),
        ),
    )
    .unwrap();
    let lab = |args: &[&str]| {
        Command::new(LAB)
            .arg("--config")
            .arg(base.join("lab.toml"))
            .current_dir(&project)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .arg("run")
            .args(args)
            .output()
            .unwrap()
    };
    // A first run, in the default data dir under this HOME.
    let first = lab(&["--", "python3", "-c", "print('first run')"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let runs = || -> Vec<PathBuf> {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(data.join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        runs.sort();
        runs
    };
    let other_run = runs()[0].clone();
    let other_log = other_run.join("stdout.log");
    assert_eq!(std::fs::read_to_string(&other_log).unwrap(), "first run\n");

    // ~/.local/bin/lab-cat's installation would be ~/.local, which holds
    // the data dir: refused, saying why and what to do, and nothing runs.
    let out = lab(&["--", local_bin.join("lab-cat").to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        last_line(&out).starts_with(
            "lab: refused: ~/.local/bin/lab-cat's installation ~/.local would expose ~/.local/share/lab (the Lab's data dir); allowlist the program's real installation (a venv) or copy it to /usr/local/bin"
        ),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
    assert_eq!(runs().len(), 1, "no run for a refused job");

    // The pipx-style tool is granted its venv alone: it runs, and cannot
    // read another run's log or the job records.
    let out = lab(&[
        "--",
        local_bin.join("tool").to_str().unwrap(),
        other_log.to_str().unwrap(),
        data.join("jobs").to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "cat failed: {err}");
    assert!(
        !text(&out.stdout).contains("first run"),
        "{}",
        text(&out.stdout)
    );
    assert!(err.contains("Permission denied"), "{err}");
    let run = runs().into_iter().find(|r| *r != other_run).unwrap();
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap())
            .unwrap();
    let readable: Vec<&str> = provenance["isolation"]["landlock_filesystem"]["readable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(readable.contains(&venv.to_str().unwrap()), "{readable:?}");
    for path in &readable {
        let path = Path::new(path);
        assert!(
            !data.starts_with(path) && !path.starts_with(&data),
            "{} exposes the data dir: {readable:?}",
            path.display()
        );
        assert_ne!(path, home.join(".local"), "{readable:?}");
    }
}

/// A venv made by `/usr/bin/python3` at `dir` (`--copies`: its python a
/// copy, not a link to the system one).
fn make_venv(dir: &Path, copies: bool) {
    let mut make = Command::new("/usr/bin/python3");
    make.args(["-m", "venv", "--without-pip"]);
    if copies {
        make.arg("--copies");
    }
    let made = make.arg(dir).output().unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
}

/// `lab run` with the caller's PATH `path`.
fn run_with_path(e: &Env, path: &str, args: &[&str]) -> Output {
    e.lab()
        .env("PATH", path)
        .arg("run")
        .args(args)
        .output()
        .unwrap()
}

/// Prints the job's python, the python a subprocess started by name gets,
/// and the job's PATH.
const WHICH_PYTHON: &str = "import os, subprocess, sys\nprint('prefix', sys.prefix)\nprint('executable', sys.executable)\nfor name in ('python3', 'python'):\n    try:\n        out = subprocess.run([name, '-c', 'import sys; print(sys.prefix)'], capture_output=True, text=True).stdout.strip()\n    except FileNotFoundError:\n        out = 'not found'\n    print('child', name, out)\nprint('PATH', os.environ['PATH'])\n";

#[test]
fn lab_run_finds_the_program_in_the_callers_path_and_the_job_stays_in_its_venv() {
    // The allowlist names `python3` (resolved in [runner] path: the system
    // interpreter). The project's venv was made from it, so its
    // bin/python3 has the same canonical path and is allowed; it runs by
    // the path found, as that venv's python.
    let e = env();
    let venv = e.project.join(".venv");
    make_venv(&venv, false);
    let canonical = std::fs::canonicalize("/usr/bin/python3").unwrap();
    assert_eq!(
        std::fs::canonicalize(venv.join("bin/python3")).unwrap(),
        canonical
    );
    let activated = format!("{}:{SYSTEM_PATH}", venv.join("bin").display());
    let out = run_with_path(&e, &activated, &["--", "python3", "-c", WHICH_PYTHON]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let venv_bin = venv.join("bin");
    assert_eq!(
        stdout,
        format!(
            "prefix {v}\nexecutable {v}/bin/python3\nchild python3 {v}\nchild python {v}\nPATH {}:{SYSTEM_PATH}\n",
            venv_bin.display(),
            v = venv.display(),
        )
    );
    // Provenance keeps both: the path found (what ran) and the canonical
    // path (what the allowlist matched).
    let run = e.run_dirs().pop().unwrap();
    let provenance: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(
        provenance["path"],
        venv.join("bin/python3").display().to_string()
    );
    assert_eq!(provenance["resolved_path"], canonical.display().to_string());
    assert_eq!(provenance["steps"][0]["path"], provenance["path"]);

    // A relative path means what it means to the caller's shell.
    let out = run_with_path(
        &e,
        SYSTEM_PATH,
        &[
            "--",
            ".venv/bin/python3",
            "-c",
            "import sys; print(sys.prefix)",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n", venv.display()));

    // Without the venv in the caller's PATH: the system's python, and the
    // job's PATH is [runner] path alone.
    let out = run_with_path(&e, SYSTEM_PATH, &["--", "python3", "-c", WHICH_PYTHON]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.starts_with("prefix /usr\n"), "{stdout}");
    assert!(
        stdout.ends_with(&format!("PATH {SYSTEM_PATH}\n")),
        "{stdout}"
    );
}

#[test]
fn a_program_found_in_the_callers_path_but_not_allowlisted_is_refused_with_the_line_to_add() {
    // A venv whose python is a copy: its canonical path is its own, on no
    // allowlist.
    let e = env();
    let venv = e.project.join("copied");
    make_venv(&venv, true);
    let python = venv.join("bin/python3");
    let activated = format!("{}:{SYSTEM_PATH}", venv.join("bin").display());
    let script = "import sys; print(sys.prefix)";
    let out = run_with_path(&e, &activated, &["--", "python3", "-c", script]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = format!(
        "programs = [\"echo\", \"python3\", \"sh\", \"cat\", \"{}\"]",
        python.display()
    );
    assert_eq!(
        last_line(&out),
        format!(
            "lab: refused: program \"python3\" is {} in your PATH, which is not on the [runner] programs allowlist; add its path to [runner] programs in {}: {line}",
            python.display(),
            e.base.join("lab.toml").display(),
        ),
    );
    assert!(text(&out.stdout).is_empty());
    assert!(e.run_dirs().is_empty(), "a refused job leaves no run");
    // Not a fallback to [runner] path's python3 either: nothing ran. With
    // the line pasted into lab.toml, the same command runs that venv's
    // python.
    let config = std::fs::read_to_string(e.base.join("lab.toml")).unwrap();
    let old = config.lines().find(|l| l.starts_with("programs")).unwrap();
    std::fs::write(e.base.join("lab.toml"), config.replace(old, &line)).unwrap();
    let out = run_with_path(&e, &activated, &["--", "python3", "-c", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n", venv.display()));
}

#[test]
fn a_version_managers_shim_in_the_callers_path_is_passed_over_saying_so() {
    // A pyenv-style shim first in PATH: a script that would pick the real
    // program from ~/.pyenv at run time. The next python3 in PATH runs.
    let e = env();
    let shims = e.base.join("pyenv/shims");
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::write(shims.join("python3"), "#!/bin/sh\necho SHIM-RAN\nexit 99\n").unwrap();
    std::fs::set_permissions(
        shims.join("python3"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{SYSTEM_PATH}", shims.display());
    let out = run_with_path(&e, &path, &["--", "python3", "-c", "print('real')"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(text(&out.stdout), "real\n");
    assert!(
        err.contains(&format!(
            "lab: note: passing over {} (a version manager's shim",
            shims.join("python3").display()
        )),
        "{err}"
    );
}

#[test]
fn the_isolation_line_is_printed_only_with_verbose() {
    let e = env();
    for (flags, shown) in [
        (&[][..], false),
        (&["--verbose"][..], true),
        (&["-v"][..], true),
    ] {
        let mut args = flags.to_vec();
        args.extend(["--", "echo", "hi"]);
        let out = e.run(&args);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert_eq!(text(&out.stdout), "hi\n");
        let isolation = err
            .lines()
            .find(|l| l.starts_with("lab: job ") && l.contains(" isolation: {"));
        assert_eq!(isolation.is_some(), shown, "{flags:?}: {err}");
        if let Some(line) = isolation {
            let json = &line[line.find('{').unwrap()..];
            let layers: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(layers["user_namespace"], true, "{line}");
        }
        // The summary is the last line either way.
        assert!(last_line(&out).contains(" finished (exit 0) in "), "{err}");
    }
}
