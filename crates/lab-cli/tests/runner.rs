//! `lab run`: the sandboxed runner through the real binary. Network, shell
//! metacharacters, process-tree teardown, split secrets, provenance, the
//! program allowlist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#![allow(clippy::disallowed_methods)] // these tests start the binary under test

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const LAB: &str = env!("CARGO_BIN_EXE_lab");
const SECRET: &str = "hunter2-secret-value-77";

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
    let on = e.run(&["--runner-allow-network", "--", "python3", "-c", &script]);
    assert!(on.status.success(), "{}", text(&on.stderr));
    assert!(text(&on.stdout).contains("connected"));
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
    assert!(stdout.contains("refused 13"), "{stdout}");
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
