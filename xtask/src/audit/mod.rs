//! `cargo xtask audit`: the ship gate. Builds the `lab` binary, starts it on
//! a free loopback port with a temp data dir and hostile fixture runs made at
//! run time, proves each item of the seed's checklist (and the rules SPEC §5
//! adds) by request, runs the static gates, prints a table of item, verdict
//! and evidence (or JSON with `--json`), and exits non-zero if anything fails.

mod checks;
mod fixture;
pub mod probes;
mod report;
mod server;
mod teeth;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use self::fixture::BIG_LEN;
use self::probes::{Check, Target, Verdict};
use crate::http::Request;
use crate::{cargo, on_path, root};

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
    let fixture = fixture::fixture()?;
    let mut checks = vec![checks::bind_checks(&lab, &fixture)];
    let server = server::start(&lab, &fixture, &["--bind", "127.0.0.1:0"])?;
    let listed = Request::new("GET", "/api/runs?limit=500").send(server.port)?;
    let runs = listed.json()["runs"]
        .as_array()
        .cloned()
        .with_context(|| format!("GET /api/runs gave no list: {}", listed.text()))?;
    let id_of = |name: &str| -> anyhow::Result<String> {
        runs.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("run {name} not imported: {}", listed.text()))
    };
    let target = Target {
        port: server.port,
        run: id_of("good")?,
        big_run: id_of("big")?,
        big_len: BIG_LEN,
        pid: server.child.id(),
        key: Some(server.key.clone()),
    };
    let escaped = runs.iter().any(|r| r["name"] == "escape-link");
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
    checks.push(checks::secrets_check(&target, &fixture, &server.stderr));
    checks.push(checks::spawn_check());
    checks.extend(checks::runner_checks(&lab, &fixture));
    drop(server);
    if Instant::now() > deadline {
        bail!("the probes took over 10 minutes");
    }
    if !skip_static {
        if !on_path("cargo") {
            bail!("cargo is not on PATH");
        }
        checks.extend(checks::static_gates());
    }
    if json {
        report::print_json(&checks);
    } else {
        report::print_table(&checks);
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
