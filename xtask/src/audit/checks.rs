//! The checks that need more than a request to the running server: the
//! bind rules, secrets on disk, spawning, the runner, and the static gates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fixture::Fixture;
use super::probes::{self, Check, DECOY_CANARY, ENV_SECRET, OUTSIDE_CANARY, Target, Verdict};
use super::server::{Lab, lab_command};
use crate::http::{Reply, Request};
use crate::{cargo, root};

/// The bind rules, on the real binary.
pub(super) fn bind_checks(lab: &Path, fixture: &Fixture) -> Check {
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
pub(super) fn secrets_check(target: &Target, fixture: &Fixture, log: &Path) -> Check {
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
pub(super) fn spawn_check() -> Check {
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
        // lab-test-support never ships: tidy's dependency rules keep it a
        // dev-dependency of every product crate (xtask alone links it).
        if entry.file_name() != "lab-runner"
            && entry.file_name() != "lab-sandbox"
            && entry.file_name() != "lab-test-support"
        {
            files_under(&entry.path().join("src"), &mut files);
        }
    }
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .filter(|f| !test_only(f))
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
            "{} source files outside lab-runner, lab-sandbox, lab-test-support (dev-only) and test-only modules: no Command::new, no shell",
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

/// Whether `file` is a module its parent declares only for tests
/// (`#[cfg(test)]` on the line before `mod NAME;`): compiled into no
/// binary.
fn test_only(file: &Path) -> bool {
    let (Some(dir), Some(stem)) = (file.parent(), file.file_stem().and_then(|s| s.to_str())) else {
        return false;
    };
    let declared = format!("mod {stem};");
    ["lib.rs", "main.rs", "mod.rs"].iter().any(|parent| {
        let text = std::fs::read_to_string(dir.join(parent)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        lines
            .windows(2)
            .any(|w| w[0] == "#[cfg(test)]" && w[1] == declared)
    })
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
        // Each event's data is one JSON string.
        .filter_map(|d| serde_json::from_str::<String>(d).ok())
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
pub(super) fn runner_checks(lab: &Path, fixture: &Fixture) -> Vec<Check> {
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
    let journal = data.join("registry.log");
    let script = format!(
        "import os\nrun = os.path.dirname(os.environ['LAB_OUTPUT_DIR'])\nfor n in ('provenance.json.tmp', 'provenance.json', 'stdout.log'):\n    try:\n        os.symlink({victim:?}, os.path.join(run, n)); print('PLANTED', n)\n    except OSError as e:\n        print('refused', n, e.errno)\nfor f in ({registry:?}, {journal:?}):\n    try:\n        open(f).read(); print('READ the registry')\n    except OSError as e:\n        print('registry unreadable', e.errno)"
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
            && job.contains("\"state\":\"finished\""),
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

pub(super) fn static_gates() -> Vec<Check> {
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

/// The body of a job running `script` with python3's inline-program flag
/// (the job's argv; no shell is involved), passing the `env` names.
fn python_job(script: &str, env: &[&str]) -> String {
    format!(
        "{{\"program\": \"python3\", \"args\": [\"-c\", {}], \"env\": {}}}",
        serde_json::Value::from(script),
        serde_json::json!(env)
    )
}

#[cfg(test)]
mod spawn_tests {
    use super::*;

    /// The static check over this tree: a test-only module and the test
    /// support crate are not product code; everything else builds no
    /// process outside the runner and the sandbox.
    #[test]
    fn only_the_runner_and_the_sandbox_build_processes() {
        let check = spawn_check();
        assert!(
            matches!(check.verdict, Verdict::Pass),
            "{:?}",
            check.evidence
        );
        let lab_s3 = root().join("crates/lab-s3/src");
        assert!(test_only(&lab_s3.join("wire_tests.rs")));
        assert!(!test_only(&lab_s3.join("store.rs")));
    }
}
