//! `cargo xtask bench tensorboard`: the same TensorBoard event files read by
//! the release `lab` and by TensorBoard's own Rust data server
//! (`tensorboard-data-server`, the reader behind
//! `tensorboard --load_fast=true`), the time until every scalar series can
//! be charted and each one's peak RSS.
//!
//! The runs: `fixtures/writers/bench_tensorboard.py` in the writers' venv
//! (`crate::writers_venv`) writes, with tensorboardX, 100 runs of about
//! 10 MB — 1 GB in all — each a directory `run-NNN/` holding one event
//! file of 8 scalar tags × 2,500 steps and 200 PNG images of 128×128 noise
//! (the bulk), deterministic (seeded by the run's number). They are
//! written once into a temp dir and read once before the first
//! measurement, so both readers find them in the page cache.
//! `LAB_BENCH_TENSORBOARD_DIR=DIR` uses runs already written there by the
//! script (with its defaults) instead, and leaves them.
//!
//! The data server is the binary of the `tensorboard_data_server` package
//! the venv's `tensorboard` depends on (`server_binary()`), started with
//! the arguments TensorBoard's `server_ingester.py` gives it, `--reload`
//! being `once` (TensorBoard's `--reload_interval=0`):
//! `--logdir=ROOT --reload=once --samples-per-plugin= --port=0
//! --port-file=F --die-after-stdin --error-file=E --verbose`. Its time is
//! from spawn to the line it writes to stderr at the end of its first
//! load cycle, `… INFO  rustboard_core::cli] Finished load cycle (…)`
//! (logged by `--verbose` after the loader has read every event file of
//! every run to its end and committed what it read, which is when
//! TensorBoard's scalars can be charted from it). Two more rows keep every
//! scalar point as the Lab does (`--samples-per-plugin=scalars=all`; by
//! default it keeps a reservoir of 1,000 per tag), and also check every
//! record's CRC as the Lab does (`--checksum`; by default only a record
//! that fails to parse is checked).
//!
//! The Lab's time is from spawn (`lab serve` on a fresh data dir, with
//! `--root` the runs' directory and a bearer key, `super::launch`) until
//! every run's every series answers in full: the client (one connection
//! at a time) lists the runs (`GET /api/runs?limit=500`) until all 100 are
//! there, then asks `GET /api/runs/{id}/metrics/{tag}` (the chart request,
//! its default 1,000 buckets) for each run in list order and each tag,
//! again until each answers 200 with `count` equal to the steps written
//! (read from the body without parsing the rest: the client shares the
//! two cores). A list summarises the runs of its page that were never
//! summarised, so in practice the first list reads every event file and
//! the chart requests find each run read; the server's summariser reads
//! them in the background too. The time to that first full list is shown
//! below the table.
//!
//! Peak RSS: `VmRSS` of each process from `/proc/PID/status` every 20 ms;
//! CPU time: its `utime + stime` from `/proc/PID/stat` at the end (in
//! clock ticks of 1/100 s). Three rounds, the order of the readers
//! alternating, the median of each figure shown.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use lab_test_support::browser::Killed;

use super::launch;
use crate::{root, rss_kib};

/// What the generator writes by default (and what is checked).
const RUNS: usize = 100;
const STEPS: u64 = 2_500;
const TAGS: [&str; 8] = [
    "train/loss",
    "train/acc",
    "train/lr",
    "train/grad_norm",
    "eval/loss",
    "eval/acc",
    "perf/throughput",
    "perf/memory",
];
const ROUNDS: usize = 3;
/// The longest either reader may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(600);

/// The line the data server logs (with `--verbose`) when a load cycle
/// ends.
const LOADED: &str = "Finished load cycle";

/// The data server's variants: a row label and the flags that differ from
/// how TensorBoard starts it.
const VARIANTS: [(&str, &[&str]); 3] = [
    (
        "tensorboard-data-server, as `tensorboard --load_fast=true` starts it",
        &["--samples-per-plugin="],
    ),
    (
        "tensorboard-data-server, every scalar kept (`--samples-per-plugin=scalars=all`)",
        &["--samples-per-plugin=scalars=all"],
    ),
    (
        "tensorboard-data-server, every scalar kept and every record's CRC checked (`--checksum`)",
        &["--samples-per-plugin=scalars=all", "--checksum"],
    ),
];

/// One reader's figures in one round.
#[derive(Clone, Copy, Default)]
struct Figures {
    seconds: f64,
    peak_kib: u64,
    cpu_s: f64,
    /// The Lab: spawn to the first list holding every run.
    listed_s: f64,
}

/// The peak `VmRSS` of a process, sampled every 20 ms on a thread.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling (one last sample first) and returns the peak in KiB.
    fn finish(mut self, pid: u32) -> u64 {
        self.peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// User and system CPU seconds of `pid` so far (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The fields after the command name, which may hold spaces:
            // state is field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// `tag` as one path segment.
fn encode(tag: &str) -> String {
    tag.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `"count"` of a series answer, found without parsing the rest (the
/// client's time on the same two cores is not the server's).
fn count_of(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"count\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The data server's binary, from the venv's `tensorboard_data_server`
/// (`VENV/lib/pythonX.Y/site-packages/tensorboard_data_server/bin/server`).
fn data_server(python: &Path) -> anyhow::Result<PathBuf> {
    let venv = python
        .parent()
        .and_then(Path::parent)
        .context("the writers' venv has no root")?;
    let found = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages/tensorboard_data_server/bin/server")
        })
        .find(|p| p.is_file());
    found.with_context(|| {
        format!(
            "the writers' venv ({}) has no tensorboard_data_server binary (the package comes with \
             tensorboard)",
            venv.display()
        )
    })
}

/// Writes the runs (or finds them in `LAB_BENCH_TENSORBOARD_DIR`); the
/// bytes of event files under them.
fn make_runs(python: &Path, runs: &Path) -> anyhow::Result<u64> {
    if !runs.join(format!("run-{:03}", RUNS - 1)).is_dir() {
        eprintln!(
            "writing {RUNS} TensorBoard runs (about 1 GB) with tensorboardX into {}…",
            runs.display()
        );
        let started = Instant::now();
        crate::run(
            Command::new(python)
                .arg(root().join("fixtures/writers/bench_tensorboard.py"))
                .arg(runs)
                .arg(RUNS.to_string())
                .arg(STEPS.to_string())
                .stdout(Stdio::null()),
        )?;
        eprintln!("written in {:.0} s", started.elapsed().as_secs_f64());
    }
    // Read once: both readers find every byte in the page cache.
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..RUNS {
        let dir = runs.join(format!("run-{i:03}"));
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let mut f = std::fs::File::open(entry?.path())?;
            loop {
                let n = std::io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
    }
    Ok(total)
}

/// The data server from spawn to the end of its first load cycle.
fn measure_server(
    binary: &Path,
    runs: &Path,
    tmp: &Path,
    flags: &[&str],
) -> anyhow::Result<Figures> {
    let port_file = tmp.join("port");
    let error_file = tmp.join("startup_error");
    let _ = std::fs::remove_file(&port_file);
    let started = Instant::now();
    let mut child = Command::new(binary)
        .arg(format!("--logdir={}", runs.display()))
        .arg("--reload=once")
        .args(flags)
        .arg("--port=0")
        .arg(format!("--port-file={}", port_file.display()))
        .arg("--die-after-stdin")
        .arg(format!("--error-file={}", error_file.display()))
        .arg("--verbose")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let child = Killed(child);
    let pid = child.0.id();
    let sampler = Sampler::start(pid);
    // The log read on a thread: the time is taken when the line arrives.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(LOADED) {
                let _ = tx.send(Ok((started.elapsed(), line)));
                return;
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    let (elapsed, line) = match rx.recv_timeout(PATIENCE) {
        Ok(Ok(found)) => found,
        Ok(Err(log)) => bail!(
            "the data server ended without a {LOADED:?} line: {log}\n{}",
            std::fs::read_to_string(&error_file).unwrap_or_default()
        ),
        Err(_) => bail!("the data server did not finish a load cycle in {PATIENCE:?}"),
    };
    let cpu_s = cpu_seconds(pid);
    let peak_kib = sampler.finish(pid);
    drop(child);
    eprintln!(
        "  data server {flags:?}: {:.2} s ({}), peak RSS {peak_kib} KiB, CPU {cpu_s:.1} s",
        elapsed.as_secs_f64(),
        line.split("] ").nth(1).unwrap_or(&line)
    );
    Ok(Figures {
        seconds: elapsed.as_secs_f64(),
        peak_kib,
        cpu_s,
        listed_s: 0.0,
    })
}

/// The Lab from spawn until every run's every series answers in full.
fn measure_lab(runs: &Path, data: &Path) -> anyhow::Result<Figures> {
    let _ = std::fs::remove_dir_all(data);
    let started = Instant::now();
    let (child, listening) = launch(&root().join("target/release/lab"), data, runs)?;
    let child = Killed(child);
    let pid = child.0.id();
    let sampler = Sampler::start(pid);
    let port = listening.port;
    let get = |path: &str| crate::http::Request::new("GET", path).send(port);
    // Every run registered.
    let (ids, listed_s): (Vec<String>, f64) = loop {
        let list = get("/api/runs?limit=500")?.json();
        let ids: Vec<String> = list["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() >= RUNS {
            break (ids, started.elapsed().as_secs_f64());
        }
        if started.elapsed() > PATIENCE {
            bail!("the Lab registered {} of {RUNS} runs", ids.len());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if ids.len() != RUNS {
        bail!("the Lab registered {} runs, not {RUNS}", ids.len());
    }
    // Every series of every run, in full.
    let mut pending: Vec<(String, &str)> = ids
        .iter()
        .flat_map(|id| TAGS.iter().map(move |tag| (id.clone(), *tag)))
        .collect();
    let mut last = String::new();
    while !pending.is_empty() {
        pending.retain(|(id, tag)| {
            let Ok(reply) = get(&format!("/api/runs/{id}/metrics/{}", encode(tag))) else {
                return true;
            };
            let full = reply.status == 200 && count_of(&reply.body) == Some(STEPS);
            if !full {
                last = format!("{id} {tag}: {} {}", reply.status, reply.text());
                last.truncate(300);
            }
            !full
        });
        if pending.is_empty() {
            break;
        }
        if started.elapsed() > PATIENCE {
            bail!(
                "{} series still short after {PATIENCE:?}; the last answer: {last}",
                pending.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds(pid);
    let peak_kib = sampler.finish(pid);
    drop(child);
    eprintln!(
        "  lab: {seconds:.2} s (every run listed at {listed_s:.2} s), peak RSS {peak_kib} KiB, CPU {cpu_s:.1} s"
    );
    Ok(Figures {
        seconds,
        peak_kib,
        cpu_s,
        listed_s,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over the rounds, figure by figure.
fn medians(rounds: &[Figures]) -> Figures {
    Figures {
        seconds: median(rounds.iter().map(|f| f.seconds).collect()),
        peak_kib: median(rounds.iter().map(|f| f.peak_kib as f64).collect()) as u64,
        cpu_s: median(rounds.iter().map(|f| f.cpu_s).collect()),
        listed_s: median(rounds.iter().map(|f| f.listed_s).collect()),
    }
}

/// How the figures were measured, for the line below the table.
pub(super) const METHOD: &str = "Method: `cargo xtask bench tensorboard` (see \
    `xtask/src/bench/tensorboard.rs`): 100 runs written by tensorboardX \
    (`fixtures/writers/bench_tensorboard.py`: 8 scalar tags × 2,500 steps and 200 128×128 PNG \
    images each, about 1 GB), in the page cache. The Lab: spawn of `lab serve` on a fresh data \
    dir until every run's 8 series answer `GET /api/runs/{id}/metrics/{tag}` with every step \
    (`count` 2,500). The data server: spawn, with the arguments TensorBoard gives it and \
    `--reload=once`, until it logs `Finished load cycle`. Peak RSS: `VmRSS` every 20 ms; CPU: \
    user + system. Medians of 3 rounds, the readers' order alternating.\n";

/// The table, measured.
pub(super) fn run() -> anyhow::Result<String> {
    let python = crate::writers_venv()?;
    let binary = data_server(&python)?;
    let tmp = std::env::temp_dir().join(format!("lab-bench-tensorboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let given = std::env::var_os("LAB_BENCH_TENSORBOARD_DIR").map(PathBuf::from);
    let runs = given.unwrap_or_else(|| tmp.join("runs"));
    let result = bench(&python, &binary, &runs, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench(python: &Path, binary: &Path, runs: &Path, tmp: &Path) -> anyhow::Result<String> {
    let bytes = make_runs(python, runs)?;
    let version = Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut lab = Vec::new();
    let mut servers: Vec<Vec<Figures>> = vec![Vec::new(); VARIANTS.len()];
    for round in 0..ROUNDS {
        eprintln!("round {}/{ROUNDS}", round + 1);
        let lab_first = round % 2 == 0;
        if lab_first {
            lab.push(measure_lab(runs, &tmp.join("data"))?);
        }
        for (i, (_, flags)) in VARIANTS.iter().enumerate() {
            servers[i].push(measure_server(binary, runs, tmp, flags)?);
        }
        if !lab_first {
            lab.push(measure_lab(runs, &tmp.join("data"))?);
        }
    }
    let lab = medians(&lab);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut table = format!(
        "{RUNS} TensorBoard runs, {:.2} GB of event files ({} scalar series of {STEPS} points, \
         200 images per run); {version}.\n\n\
         | reader | every scalar series can be charted | data server / Lab | peak RSS | CPU time |\n\
         |---|---|---|---|---|\n\
         | Lab (`lab serve`, release) | {:.2} s | 1 | {:.1} MiB | {:.1} s |\n",
        bytes as f64 / 1e9,
        RUNS * TAGS.len(),
        lab.seconds,
        mib(lab.peak_kib),
        lab.cpu_s,
    );
    for ((label, _), rounds) in VARIANTS.iter().zip(&servers) {
        let f = medians(rounds);
        table.push_str(&format!(
            "| {label} | {:.2} s | {:.2} | {:.1} MiB | {:.1} s |\n",
            f.seconds,
            f.seconds / lab.seconds,
            mib(f.peak_kib),
            f.cpu_s,
        ));
    }
    table.push_str(&format!(
        "\nOf the Lab's {:.2} s, {:.2} s went to its first list holding all {RUNS} runs (spawn, \
         discovery, and the page's runs summarised: every event file read), the rest to the \
         {} chart requests.\n",
        lab.seconds,
        lab.listed_s,
        RUNS * TAGS.len(),
    ));
    Ok(table)
}
