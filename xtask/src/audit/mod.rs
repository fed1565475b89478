//! `cargo xtask audit`: the ship gate. Builds the `lab` binary, starts it on
//! a free loopback port with a temp data dir and hostile fixture runs made at
//! run time, proves each item of the seed's checklist (and the rules SPEC §5
//! adds) by request, runs the static gates, prints a table of item, verdict
//! and evidence (or JSON with `--json`), and exits non-zero if anything fails.

pub mod probes;
mod teeth;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::probes::{Check, DECOY_CANARY, ENV_SECRET, OUTSIDE_CANARY, Target, Verdict};
use crate::http::{Reply, Request};
use crate::{cargo, on_path, root};

/// Size of the sparse "large video" (sparse: costs no disk).
const BIG_LEN: u64 = 1 << 30;

struct Lab {
    child: Child,
    port: u16,
    stderr: PathBuf,
    /// The access key from its login link.
    key: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fixture {
    dir: PathBuf,
    runs: PathBuf,
    data: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Hostile runs: decoys, symlinks out, secrets in logs and provenance, a
/// large sparse video, and a run directory that is a link leaving the root.
fn fixture() -> anyhow::Result<Fixture> {
    let dir = std::env::temp_dir().join(format!("lab-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runs = dir.join("runs");
    let good = runs.join("good");
    let outside = dir.join("outside");
    for d in [
        good.join("videos"),
        good.join(".git"),
        runs.join("sibling"),
        runs.join("big"),
        outside.clone(),
    ] {
        std::fs::create_dir_all(&d)?;
    }
    std::fs::copy(
        root().join("fixtures/runs/cartpole-ppo/output.mp4"),
        good.join("output.mp4"),
    )
    .context("copying the fixture video")?;
    std::fs::write(good.join("metrics.jsonl"), "{\"step\": 1, \"loss\": 0.5}\n")?;
    std::fs::write(good.join("notes.md"), "# audit run\n")?;
    std::fs::write(
        good.join("stdout.log"),
        format!("using key {ENV_SECRET}\naws AKIAIOSFODNN7EXAMPLE\n"),
    )?;
    std::fs::write(
        good.join("provenance.json"),
        format!("{{\"program\": \"train\", \"env\": {{\"AUDIT_API_KEY\": \"{ENV_SECRET}\"}}}}\n"),
    )?;
    for decoy in [
        ".env",
        "secret.txt",
        ".git/config",
        "videos/.hidden.mp4",
        "notes.html",
    ] {
        std::fs::write(
            good.join(decoy),
            format!("{DECOY_CANARY} OPENAI_API_KEY={ENV_SECRET}\n"),
        )?;
    }
    std::fs::write(
        runs.join("sibling/summary.json"),
        format!("{{\"x\": \"{DECOY_CANARY}\"}}"),
    )?;
    std::fs::write(outside.join("secret.txt"), OUTSIDE_CANARY)?;
    symlink(outside.join("secret.txt"), good.join("params.json"))?;
    symlink("../sibling/summary.json", good.join("summary.json"))?;
    symlink("/etc/passwd", good.join("stderr.log"))?;
    symlink(&outside, good.join("outside-link"))?;
    symlink(&outside, runs.join("escape-link"))?;
    std::fs::File::create(runs.join("big/output.mp4"))?.set_len(BIG_LEN)?;
    Ok(Fixture {
        data: dir.join("data"),
        dir,
        runs,
    })
}

fn lab_command(lab: &Path, fixture: &Fixture) -> Command {
    let mut cmd = Command::new(lab);
    cmd.arg("--data-dir")
        .arg(&fixture.data)
        .arg("--root")
        .arg(&fixture.runs)
        .env("AUDIT_API_KEY", ENV_SECRET)
        .stdin(Stdio::null());
    cmd
}

/// Starts `lab serve ARGS`, returns once it printed its listening line.
fn start(lab: &Path, fixture: &Fixture, args: &[&str]) -> anyhow::Result<Lab> {
    let stderr = fixture.dir.join(format!("lab-stderr-{}.log", args.len()));
    let mut child = lab_command(lab, fixture)
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr)?)
        .spawn()?;
    let listening = lab_test_support::lab::read_listening(&mut BufReader::new(
        child.stdout.take().context("no stdout")?,
    ))
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}; log: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    })?;
    let (port, key) = (listening.port, listening.key);
    // Probes speak as the signed-in browser (the cookie; mutations still
    // need the page's token), but for those that say they are anonymous.
    crate::http::sign_in(port, &key).context("signing in with the printed key")?;
    Ok(Lab {
        child,
        port,
        stderr,
        key,
    })
}

/// The bind rules, on the real binary.
fn bind_checks(lab: &Path, fixture: &Fixture) -> Check {
    let mut check =
        Check::new("binds 127.0.0.1:7878 by default; 0.0.0.0 refused without --allow-external");
    let fail = |check: &mut Check, ok: bool, evidence: String| check.record(ok, evidence);
    // No --bind: either it listens on 127.0.0.1:7878 or, if that port is
    // taken here, says it could not listen on exactly that address.
    match lab_command(lab, fixture)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            let mut line = String::new();
            if let Some(out) = child.stdout.take() {
                let _ = BufReader::new(out).read_line(&mut line);
            }
            let _ = child.kill();
            let output = child.wait_with_output();
            let err = output
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            let ok = line.trim() == "lab: listening on http://127.0.0.1:7878/"
                || err.contains("cannot listen on 127.0.0.1:7878");
            fail(
                &mut check,
                ok,
                format!(
                    "`lab serve` (no --bind) -> {:?}{}",
                    line.trim(),
                    if line.is_empty() {
                        format!(" / {}", err.trim())
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Err(e) => fail(&mut check, false, format!("could not start lab: {e}")),
    }
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let out = lab_command(lab, fixture)
            .args(["serve", "--bind", bind])
            .output();
        let (code, err) = match &out {
            Ok(o) => (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            ),
            Err(e) => (None, e.to_string()),
        };
        fail(
            &mut check,
            code.is_some_and(|c| c != 0) && err.contains("--allow-external"),
            format!("`lab serve --bind {bind}` -> exit {code:?}: {err}"),
        );
    }
    for (label, text) in [
        ("bind = \"0.0.0.0:0\"", "bind = \"0.0.0.0:0\"\n"),
        (
            "allow_external = true",
            "bind = \"0.0.0.0:0\"\nallow_external = true\n",
        ),
    ] {
        let config = fixture.dir.join("external.toml");
        let written = std::fs::write(&config, text);
        let out = lab_command(lab, fixture)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .output();
        let refused = written.is_ok() && out.as_ref().is_ok_and(|o| !o.status.success());
        fail(
            &mut check,
            refused,
            format!(
                "lab.toml `{label}` -> {}",
                out.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default()
            ),
        );
    }
    check
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// Exports the hostile run through the API, then scans the bundle, the
/// whole data dir and the server log for secrets, the token and the key.
fn secrets_check(target: &Target, fixture: &Fixture, log: &Path) -> Check {
    let mut check = Check::new(
        "no secrets written to store, export or log; token and key never in a log or on disk",
    );
    let mut expect = |ok: bool, evidence: String| check.record(ok, evidence);
    let Some(token) = probes::token(target) else {
        expect(false, "no token".into());
        return check;
    };
    let key = target.key.clone().unwrap_or_default();
    let made = Request::new("POST", &format!("/api/runs/{}/export", target.run))
        .header("X-Lab-Token", token.clone())
        .json("{\"name\": \"audit\"}")
        .send(target.port)
        .unwrap_or_default();
    expect(
        made.status == 201,
        format!("POST export -> {} {}", made.summary(), made.text()),
    );
    let bundle = Request::new("GET", "/api/exports/audit.tar")
        .send(target.port)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bundle.body).into_owned();
    expect(
        bundle.status == 200 && !bundle.body.is_empty(),
        format!(
            "GET /api/exports/audit.tar -> {} ({} bytes)",
            bundle.summary(),
            bundle.body.len()
        ),
    );
    let needles = [
        ENV_SECRET,
        DECOY_CANARY,
        OUTSIDE_CANARY,
        "AKIAIOSFODNN7EXAMPLE",
        token.as_str(),
        key.as_str(),
    ];
    let found: Vec<&str> = needles
        .iter()
        .filter(|n| !n.is_empty() && text.contains(**n))
        .copied()
        .collect();
    expect(
        found.is_empty(),
        format!(
            "bundle scanned for the env secret, decoys, outside canary, AWS key, token: {}",
            if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            }
        ),
    );
    expect(
        text.contains("AUDIT_API_KEY"),
        "the bundle's provenance keeps the variable's name".into(),
    );
    let mut files = Vec::new();
    files_under(&fixture.data, &mut files);
    let mut hits = Vec::new();
    for file in &files {
        let content = std::fs::read(file).unwrap_or_default();
        let content = String::from_utf8_lossy(&content);
        for needle in needles {
            if !needle.is_empty() && content.contains(needle) {
                hits.push(format!(
                    "{} holds {}",
                    file.display(),
                    if needle == token {
                        "the token"
                    } else if needle == key {
                        "the access key"
                    } else {
                        needle
                    }
                ));
            }
        }
    }
    expect(
        hits.is_empty(),
        format!(
            "{} files in the data dir scanned: {}",
            files.len(),
            if hits.is_empty() {
                "clean".to_owned()
            } else {
                hits.join("; ")
            }
        ),
    );
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    expect(
        !log_text.contains(&token)
            && (key.is_empty() || !log_text.contains(&key))
            && !log_text.contains(ENV_SECRET),
        format!(
            "server log ({} bytes) holds neither the token, the access key nor the env secret",
            log_text.len()
        ),
    );
    check
}

/// Static proof that only lab-runner (and the sandbox helper's final exec in
/// lab-sandbox) may start processes, and no shell is
/// ever invoked.
fn spawn_check() -> Check {
    let mut check = Check {
        item: "runner uses spawn without shell (static: who builds processes)".into(),
        verdict: Verdict::Pass,
        evidence: Vec::new(),
    };
    let mut offenders = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("crates"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name() != "lab-runner" && entry.file_name() != "lab-sandbox" {
            files_under(&entry.path().join("src"), &mut files);
        }
    }
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains("Command::new")
                || code.contains("\"/bin/sh\"")
                || code.contains("\"sh\", \"-c\"")
            {
                offenders.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    let clippy = std::fs::read_to_string(root().join("clippy.toml")).unwrap_or_default();
    if !clippy.contains("std::process::Command::new") {
        check.verdict = Verdict::Fail;
        check
            .evidence
            .push("FAILED: clippy.toml does not ban std::process::Command::new".into());
    } else {
        check.evidence.push(
            "clippy.toml bans std::process::Command::new outside lab-runner and lab-sandbox".into(),
        );
    }
    if offenders.is_empty() {
        check.evidence.push(format!(
            "{} source files outside lab-runner and lab-sandbox: no Command::new, no shell",
            files.len()
        ));
    } else {
        check.verdict = Verdict::Fail;
        check.evidence.push(format!(
            "FAILED: process or shell construction in {}",
            offenders.join(", ")
        ));
    }
    check
}

/// The text of a job's whole event stream (stdout and stderr events), after
/// it ended.
fn job_output(port: u16, id: &str) -> String {
    let reply = Request::new("GET", &format!("/api/jobs/{id}/log"))
        .send(port)
        .unwrap_or_default();
    reply
        .text()
        .split("\n\n")
        .filter(|e| e.contains("event: stdout") || e.contains("event: stderr"))
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .filter_map(|d| {
            let d = d.trim();
            // A JSON string: undo the escapes the probes care about.
            d.strip_prefix('"')?
                .strip_suffix('"')
                .map(|s| s.replace("\\n", "\n").replace("\\\"", "\""))
        })
        .collect()
}

fn start_job(port: u16, token: &str, body: &str) -> (Reply, String) {
    let made = Request::new("POST", "/api/jobs")
        .header("X-Lab-Token", token)
        .json(body)
        .send(port)
        .unwrap_or_default();
    let id = made.json()["id"].as_str().unwrap_or_default().to_owned();
    (made, id)
}

/// The runner, dynamically: a second Lab with `--enable-runner` and a
/// config allowing `echo` and `python3`.
fn runner_checks(lab: &Path, fixture: &Fixture) -> Vec<Check> {
    let mut literal =
        Check::new("runner uses spawn without shell (dynamic: metacharacters arrive literally)");
    let mut isolation =
        Check::new("runner: isolation report (network off by default, layers in force)");
    let mut secrets =
        Check::new("runner: job output is redacted in the log file and the event stream");
    // Until a probe runs, the two others cannot be shown to hold.
    isolation.record(false, "not reached");
    secrets.record(false, "not reached");
    let config = fixture.dir.join("runner.toml");
    if let Err(e) = std::fs::write(
        &config,
        "[runner]\nprograms = [\"echo\", \"python3\"]\nenv_allow = [\"AUDIT_API_KEY\"]\n",
    ) {
        literal.record(false, format!("writing the runner config: {e}"));
        return vec![literal, isolation, secrets];
    }
    // The runner's data dir (and the victim file beside it) lie outside
    // /tmp, which a job sees as its own private tmpfs (and so, wherever the
    // checkout is, in /var/tmp): every refusal the probes below see is the
    // sandbox's, on the real paths.
    let outside =
        PathBuf::from("/var/tmp").join(format!("lab-audit-runner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    let data = outside.join("data");
    let started = Command::new(lab)
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("AUDIT_API_KEY", ENV_SECRET)
        .stdin(Stdio::null())
        .args(["serve", "--bind", "127.0.0.1:0", "--enable-runner"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = started else {
        literal.record(false, "could not start lab --enable-runner");
        return vec![literal, isolation, secrets];
    };
    let listening = child
        .stdout
        .take()
        .and_then(|out| lab_test_support::lab::read_listening(&mut BufReader::new(out)).ok());
    let line = format!("{listening:?}");
    let (port, key) = listening.map(|l| (l.port, l.key)).unwrap_or_default();
    let server = Lab {
        child,
        port,
        stderr: PathBuf::new(),
        key,
    };
    let _ = crate::http::sign_in(server.port, &server.key);
    let target = Target {
        port: server.port,
        run: String::new(),
        big_run: String::new(),
        big_len: 0,
        pid: 0,
        key: Some(server.key.clone()),
    };
    let Some(token) = probes::token(&target) else {
        literal.record(
            false,
            format!("no token from lab --enable-runner ({line:?})"),
        );
        return vec![literal, isolation, secrets];
    };
    let wait_end = |id: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = Request::new("GET", &format!("/api/jobs/{id}"))
                .send(server.port)
                .unwrap_or_default()
                .text();
            if !job.contains("\"state\":\"running\"") || Instant::now() > deadline {
                return job;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    isolation = Check::new("runner: isolation report (network off by default, layers in force)");
    secrets = Check::new("runner: job output is redacted in the log file and the event stream");
    // Metacharacters.
    let args = ["$(id)", "a;b", "`id`", "*", "x > /tmp/audit-y", "$HOME"];
    let body = serde_json::json!({"program": "echo", "args": args}).to_string();
    let (made, id) = start_job(server.port, &token, &body);
    literal.record(
        made.status == 202,
        format!("POST /api/jobs echo {args:?} -> {}", made.summary()),
    );
    wait_end(&id);
    let out = job_output(server.port, &id);
    let expected = format!("{}\n", args.join(" "));
    literal.record(
        out == expected,
        format!("job output {out:?} (expected {expected:?})"),
    );
    literal.record(
        !Path::new("/tmp/audit-y").exists(),
        "no redirection happened",
    );
    // Isolation: the status report and a job that tries the network.
    let status = Request::new("GET", "/api/status")
        .send(server.port)
        .unwrap_or_default()
        .text();
    for layer in [
        "\"user_namespace\":true",
        "\"pid_namespace\":true",
        "\"network_namespace\":true",
        "\"mount_namespace\":true",
        "\"no_new_privs\":true",
        "\"capabilities\":\"none",
        "\"enforced\":\"fully\"",
        "socket() refused for every family; io_uring, mounts, namespaces, keyrings and x32 syscalls refused",
        "\"network_allowed\":false",
        "\"available\":true",
    ] {
        isolation.record(
            status.contains(layer),
            format!("/api/status runner: {layer}"),
        );
    }
    let report = serde_json::from_str::<serde_json::Value>(&status).unwrap_or_default();
    isolation.evidence.push(format!(
        "report: {}",
        report["runner"]["isolation"]
            .to_string()
            .chars()
            .take(400)
            .collect::<String>()
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok();
    let port = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port())
        .unwrap_or(9);
    let script = format!(
        "import socket\\ntry:\\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\\nexcept OSError as e:\\n    print('refused', e.errno)"
    );
    let (_, id) = start_job(
        server.port,
        &token,
        &python_job(&script.replace("\\n", "\n"), &[]),
    );
    let job = wait_end(&id);
    let out = job_output(server.port, &id);
    isolation.record(
        out.contains("refused") && !out.contains("CONNECTED"),
        format!("a job connecting to 127.0.0.1:{port} -> {:?}", out.trim()),
    );
    isolation.record(
        job.contains("\"network_namespace\":true"),
        "the job's record carries its isolation report",
    );
    // Issue 9's escape: links planted where the Lab writes after the job,
    // and reads of the Lab's own data dir.
    let victim = outside.join("audit-victim.txt");
    let _ = std::fs::write(&victim, "victim\n");
    let registry = data.join("registry.json");
    let script = format!(
        "import os\nrun = os.path.dirname(os.environ['LAB_OUTPUT_DIR'])\nfor n in ('provenance.json.tmp', 'provenance.json', 'stdout.log'):\n    try:\n        os.symlink({victim:?}, os.path.join(run, n)); print('PLANTED', n)\n    except OSError as e:\n        print('refused', n, e.errno)\ntry:\n    open({registry:?}).read(); print('READ the registry')\nexcept OSError as e:\n    print('registry unreadable', e.errno)"
    );
    let body = python_job(&script, &[]);
    let (_, id) = start_job(server.port, &token, &body);
    let job = wait_end(&id);
    let out = job_output(server.port, &id);
    isolation.record(
        !out.contains("PLANTED") && out.contains("refused provenance.json.tmp"),
        format!(
            "a job planting links in its run directory -> {:?}",
            out.trim()
        ),
    );
    isolation.record(
        out.contains("registry unreadable") && !out.contains("READ the registry"),
        "a job reading the Lab's registry is refused",
    );
    isolation.record(
        std::fs::read_to_string(&victim).is_ok_and(|v| v == "victim\n")
            && job.contains("\"state\":\"exited\""),
        format!(
            "the file outside is untouched and the job finished ({})",
            serde_json::from_str::<serde_json::Value>(&job).unwrap_or_default()["state"]
        ),
    );
    // Secrets: the Lab's AUDIT_API_KEY, passed and printed in two halves.
    let script = "import os, sys, time\\nv = os.environ['AUDIT_API_KEY']\\nsys.stdout.write(v[:9]); sys.stdout.flush(); time.sleep(0.4)\\nprint(v[9:])";
    let (_, id) = start_job(
        server.port,
        &token,
        &python_job(&script.replace("\\n", "\n"), &["AUDIT_API_KEY"]),
    );
    wait_end(&id);
    let out = job_output(server.port, &id);
    secrets.record(
        out.contains("[REDACTED]") && !out.contains(&ENV_SECRET[..9]),
        format!("event stream: {:?}", out.trim()),
    );
    let mut files = Vec::new();
    files_under(&data, &mut files);
    let leaked: Vec<String> = files
        .iter()
        .filter(|f| {
            String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default())
                .contains(&ENV_SECRET[..9])
        })
        .map(|f| f.display().to_string())
        .collect();
    secrets.record(
        leaked.is_empty(),
        format!(
            "{} files of the runner's data dir (logs, provenance, job records) scanned: {}",
            files.len(),
            if leaked.is_empty() {
                "clean".to_owned()
            } else {
                leaked.join(", ")
            }
        ),
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&outside);
    vec![literal, isolation, secrets]
}

fn gate(item: &str, cmd: &mut Command) -> Check {
    let started = Instant::now();
    let output = cmd.output();
    let (ok, tail) = match output {
        Ok(o) => {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let tail: Vec<&str> = all.lines().rev().take(3).collect();
            (
                o.status.success(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            )
        }
        Err(e) => (false, e.to_string()),
    };
    Check {
        item: item.to_owned(),
        verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        evidence: vec![format!(
            "`cargo {}` -> {} in {:.0} s: {tail}",
            cmd.get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            if ok { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        )],
    }
}

fn static_gates() -> Vec<Check> {
    let mut checks = vec![
        gate(
            "cargo fmt --check",
            cargo().args(["fmt", "--all", "--", "--check"]),
        ),
        gate(
            "clippy -D warnings",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        gate(
            "tidy checks (STYLE.md, as tests)",
            cargo().args(["test", "--locked", "-p", "xtask", "--", "tidy::"]),
        ),
    ];
    let has_deny = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_deny {
        let _ = Command::new("cargo")
            .args(["install", "cargo-deny", "--locked"])
            .status();
    }
    // cargo deny --offline needs every crate of Cargo.lock downloaded, the
    // other platforms' too; a fresh machine has none of them yet.
    let _ = cargo().args(["fetch", "--locked"]).status();
    checks.push(gate(
        "cargo deny check bans licenses sources",
        cargo().args(["deny", "--offline", "check", "bans", "licenses", "sources"]),
    ));
    checks.push(Check {
        item: "cargo deny check advisories".into(),
        verdict: Verdict::NotApplicable,
        evidence: vec!["NOT CHECKED: the RustSec advisory database cannot be fetched from this machine (no internet beyond the package registries)".into()],
    });
    checks
}

fn print_table(checks: &[Check]) {
    println!("{:<4} | {:<84} | evidence", "", "item");
    println!("{}", "-".repeat(120));
    for check in checks {
        let verdict = match check.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "N/A",
        };
        println!(
            "{verdict:<4} | {:<84} | {}",
            check.item,
            check.evidence.first().map(String::as_str).unwrap_or("")
        );
        for more in check.evidence.iter().skip(1) {
            println!("{:<4} | {:<84} | {more}", "", "");
        }
    }
}

/// The body of a job running `script` with python3's inline-program flag
/// (the job's argv; no shell is involved), passing the `env` names.
fn python_job(script: &str, env: &[&str]) -> String {
    format!(
        "{{\"program\": \"python3\", \"args\": [\"-c\", {}], \"env\": {}}}",
        serde_json::Value::from(script),
        serde_json::json!(env)
    )
}

fn print_json(checks: &[Check]) {
    let items: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            let verdict = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::NotApplicable => "not_applicable",
            };
            serde_json::json!({"item": c.item, "verdict": verdict, "evidence": c.evidence})
        })
        .collect();
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    println!(
        "{}",
        serde_json::json!({"passed": failed == 0, "checks": items})
    );
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let json = args.iter().any(|a| a == "--json");
    let skip_static = args.iter().any(|a| a == "--no-static");
    if let Some(unknown) = args
        .iter()
        .find(|a| !["--json", "--no-static"].contains(&a.as_str()))
    {
        bail!("unknown audit option {unknown:?} (options: --json, --no-static)");
    }
    crate::run(
        cargo()
            .args(["build", "--locked", "-p", "lab-cli"])
            .stdout(Stdio::null()),
    )?;
    let lab = root().join("target/debug/lab");
    let fixture = fixture()?;
    let mut checks = vec![bind_checks(&lab, &fixture)];
    let server = start(&lab, &fixture, &["--bind", "127.0.0.1:0"])?;
    let runs = Request::new("GET", "/api/runs").send(server.port)?.text();
    let id_of = |name: &str| -> anyhow::Result<String> {
        let at = runs
            .find(&format!("\"name\":\"{name}\""))
            .with_context(|| format!("run {name} not imported: {runs}"))?;
        let before = &runs[..at];
        let start = before.rfind("\"id\":\"").context("no id")? + 6;
        Ok(before[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned())
    };
    let target = Target {
        port: server.port,
        run: id_of("good")?,
        big_run: id_of("big")?,
        big_len: BIG_LEN,
        pid: server.child.id(),
        key: Some(server.key.clone()),
    };
    let escaped = runs.contains("escape-link");
    checks.push(Check {
        item: "import refuses a run directory whose real path leaves the allowed roots".into(),
        verdict: if escaped {
            Verdict::Fail
        } else {
            Verdict::Pass
        },
        evidence: vec![format!(
            "runs/escape-link -> outside: {}",
            if escaped {
                "FAILED: registered"
            } else {
                "skipped at start, not registered"
            }
        )],
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    checks.extend(probes::all(&target));
    checks.push(secrets_check(&target, &fixture, &server.stderr));
    checks.push(spawn_check());
    checks.extend(runner_checks(&lab, &fixture));
    drop(server);
    if Instant::now() > deadline {
        bail!("the probes took over 10 minutes");
    }
    if !skip_static {
        if !on_path("cargo") {
            bail!("cargo is not on PATH");
        }
        checks.extend(static_gates());
    }
    if json {
        print_json(&checks);
    } else {
        print_table(&checks);
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.item.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} audit item(s) failed: {}",
            failed.len(),
            failed.join("; ")
        );
    }
    if !json {
        println!(
            "\naudit: all {} items pass ({} not applicable yet, said why)",
            checks.len(),
            checks
                .iter()
                .filter(|c| c.verdict == Verdict::NotApplicable)
                .count()
        );
    }
    Ok(())
}
