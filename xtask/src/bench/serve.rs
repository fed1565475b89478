//! `cargo xtask bench [serve] [SECONDS]`: the Lab against nginx on the same
//! files, side by side in one run.
//!
//! nginx (the Debian package, `sendfile on`, `tcp_nopush off`, as many
//! workers as cores, keep-alive unbounded like the Lab's) and the release
//! `lab` binary serve one temp directory: a 64 KiB `output.mp4` and a
//! 1 GiB one (real bytes, read once so the page cache holds them; nginx
//! serves the very same inodes). wrk (Debian) loads each server in turn —
//! nginx first in odd rounds, the Lab first in even ones — for three
//! rounds; each row reports the median round. Every Lab request carries
//! its credential and passes every check it does in production
//! (authentication, Host, the run lookup, the root identity, the
//! beneath-open, the allowlist). Time to first byte is measured by a
//! client here: random 64 KiB ranges on one keep-alive connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use lab_test_support::browser::Killed;

use super::{launch, run_id};
use crate::root;

const SMALL: usize = 64 << 10;
const BIG: u64 = 1 << 30;
const ROUNDS: usize = 3;
/// nginx's flag naming its configuration file (no shell is involved; the
/// tidy test that refuses `-c` arguments allows this one line).
const NGINX_CONF_FLAG: &str = "-c";

/// One server under test: where it listens and what a request needs.
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) port: u16,
    /// Extra header lines (`Name: value`), none for nginx.
    pub(super) headers: Vec<String>,
    pub(super) small: String,
    pub(super) big: String,
}

/// A table row: its label, what it shows, the unit, whether more is better.
type Row = (&'static str, fn(&Figures) -> f64, &'static str, bool);

/// What one row measured for one server in one round.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    download_mb_s: f64,
    artifact_rps: f64,
    range_rps: f64,
    ttfb_ms: f64,
}

pub fn run(seconds: u64, before: Option<&Path>) -> anyhow::Result<String> {
    crate::ensure_tools(&[("nginx", "nginx"), ("wrk", "wrk")])?;
    let tmp = std::env::temp_dir().join(format!("lab-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = bench(&tmp, seconds, before);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench(tmp: &Path, seconds: u64, before: Option<&Path>) -> anyhow::Result<String> {
    let runs = tmp.join("runs");
    for run in ["small", "big"] {
        std::fs::create_dir_all(runs.join(run))?;
        // A run of its own files: a directory holding only a video is none.
        std::fs::write(
            runs.join(run).join("run.toml"),
            format!("name = \"{run}\"\n"),
        )?;
    }
    let pattern: Vec<u8> = (0..SMALL).map(|i| (i * 131 % 251) as u8).collect();
    std::fs::write(runs.join("small/output.mp4"), &pattern)?;
    {
        let mut big = std::io::BufWriter::new(std::fs::File::create(runs.join("big/output.mp4"))?);
        for _ in 0..BIG / SMALL as u64 {
            big.write_all(&pattern)?;
        }
        big.flush()?;
    }
    // Warm the page cache for both servers alike.
    for run in ["small", "big"] {
        std::io::copy(
            &mut std::fs::File::open(runs.join(run).join("output.mp4"))?,
            &mut std::io::sink(),
        )?;
    }
    let nginx_port = free_port()?;
    let _nginx = start_nginx(tmp, &runs, nginx_port)?;
    let mut targets = vec![Target {
        name: "nginx",
        port: nginx_port,
        headers: Vec::new(),
        small: "/small/output.mp4".into(),
        big: "/big/output.mp4".into(),
    }];
    let mut labs = Vec::new();
    let mut binaries = vec![("Lab", root().join("target/release/lab"))];
    if let Some(before) = before {
        binaries.push(("Lab before", before.to_path_buf()));
    }
    for (i, (name, binary)) in binaries.into_iter().enumerate() {
        let (target, child) = start_lab(name, &binary, &tmp.join(format!("data-{i}")), &runs)?;
        targets.push(target);
        labs.push(child);
    }
    for t in &targets {
        wait_ok(t)?;
    }
    let rss_before = crate::rss_kib(labs[0].0.id());
    let n = targets.len();
    let mut rounds: Vec<Vec<Figures>> = Vec::new();
    for round in 0..ROUNDS {
        // Each round starts with a different server.
        let order: Vec<usize> = (0..n).map(|k| (k + round) % n).collect();
        let mut figures = vec![Figures::default(); n];
        for &i in &order {
            figures[i].download_mb_s = wrk(tmp, &targets[i], &targets[i].big, 4, seconds, false)?.1;
        }
        for &i in &order {
            figures[i].artifact_rps =
                wrk(tmp, &targets[i], &targets[i].small, 64, seconds, false)?.0;
        }
        for &i in &order {
            figures[i].range_rps = wrk(tmp, &targets[i], &targets[i].big, 64, seconds, true)?.0;
        }
        for (i, ms) in ttfb(&targets, 1000)?.into_iter().enumerate() {
            figures[i].ttfb_ms = ms;
        }
        for (t, f) in targets.iter().zip(&figures) {
            eprintln!(
                "round {}: {:<10} download {:.0} MB/s, 64 KiB {:.0} req/s, range {:.0} req/s, ttfb {:.3} ms",
                round + 1,
                t.name,
                f.download_mb_s,
                f.artifact_rps,
                f.range_rps,
                f.ttfb_ms
            );
        }
        rounds.push(figures);
    }
    let peak = peak_kib(labs[0].0.id());
    let median = |server: usize, pick: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(|r| pick(&r[server])).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let labs_shown: Vec<usize> = (1..n).collect();
    let mut table = String::from("| |");
    for &i in &labs_shown {
        table.push_str(&format!(" {} |", targets[i].name));
    }
    table.push_str(" nginx |");
    for &i in &labs_shown {
        table.push_str(&format!(" {}/nginx |", targets[i].name));
    }
    table.push('\n');
    table.push_str(&"|---".repeat(2 + 2 * labs_shown.len()));
    table.push_str("|\n");
    let rows: [Row; 4] = [
        (
            "1 GiB download (4 clients)",
            |f| f.download_mb_s,
            "MB/s",
            true,
        ),
        (
            "64 KiB artifact (64 clients)",
            |f| f.artifact_rps,
            "req/s",
            true,
        ),
        (
            "64 KiB Range of a 1 GiB file, random offsets (64 clients)",
            |f| f.range_rps,
            "req/s",
            true,
        ),
        (
            "time to first byte of a 64 KiB seek (median of 1,000; the servers take turns, request by request)",
            |f| f.ttfb_ms,
            "ms",
            false,
        ),
    ];
    for (label, pick, unit, higher_better) in rows {
        let fmt = |v: f64| {
            if unit == "ms" {
                format!("{v:.3} {unit}")
            } else {
                format!("{} {unit}", thousands(v))
            }
        };
        let nginx = median(0, pick);
        table.push_str(&format!("| {label} |"));
        for &i in &labs_shown {
            table.push_str(&format!(" {} |", fmt(median(i, pick))));
        }
        table.push_str(&format!(" {} |", fmt(nginx)));
        for &i in &labs_shown {
            let ratio = median(i, pick) / nginx;
            if higher_better {
                table.push_str(&format!(" {ratio:.2} |"));
            } else {
                table.push_str(&format!(" {ratio:.2}× nginx's |"));
            }
        }
        table.push('\n');
    }
    table.push_str(&format!(
        "\nLab RSS at start {:.1} MiB, peak over the whole run {:.1} MiB.\n",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    ));
    Ok(table)
}

/// Starts `binary` serving `runs`: the target (its credential remembered)
/// and the process.
fn start_lab(
    name: &'static str,
    binary: &Path,
    data: &Path,
    runs: &Path,
) -> anyhow::Result<(Target, Killed)> {
    let (lab, listening) = launch(binary, data, runs)?;
    let child = Killed(lab);
    let port = listening.port;
    let list = crate::http::Request::new("GET", "/api/runs")
        .send(port)?
        .json();
    let id = |run: &str| run_id(&list, run);
    let target = Target {
        name,
        port,
        headers: vec![format!("Authorization: Bearer {}", listening.key)],
        small: format!("/api/runs/{}/artifacts/output.mp4", id("small")?),
        big: format!("/api/runs/{}/artifacts/output.mp4", id("big")?),
    };
    Ok((target, child))
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// nginx, stopped through its master on drop (`nginx -s stop`: the
/// workers exit with it; killing the master alone would orphan them).
struct Nginx {
    child: Child,
    prefix: std::path::PathBuf,
    conf: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let stopped = Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg(NGINX_CONF_FLAG)
            .arg(&self.conf)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn start_nginx(tmp: &Path, runs: &Path, port: u16) -> anyhow::Result<Nginx> {
    let prefix = tmp.join("nginx");
    std::fs::create_dir_all(prefix.join("logs"))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let conf = format!(
        "worker_processes {workers};\n\
         daemon off;\n\
         master_process on;\n\
         pid {prefix}/nginx.pid;\n\
         error_log {prefix}/logs/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
           access_log off;\n\
           sendfile on;\n\
           tcp_nopush off;\n\
           keepalive_requests 100000000;\n\
           types {{ video/mp4 mp4; }}\n\
           client_body_temp_path {prefix}/body;\n\
           proxy_temp_path {prefix}/proxy;\n\
           fastcgi_temp_path {prefix}/fastcgi;\n\
           uwsgi_temp_path {prefix}/uwsgi;\n\
           scgi_temp_path {prefix}/scgi;\n\
           server {{ listen 127.0.0.1:{port}; root {root}; }}\n\
         }}\n",
        prefix = prefix.display(),
        root = runs.display(),
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    // As root, nginx's workers drop to `nobody`: the files must be readable.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(tmp).status();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&prefix)
        .arg(NGINX_CONF_FLAG)
        .arg(&conf_path)
        .arg("-e")
        .arg(prefix.join("logs/error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    // Stopped on every way out from here.
    let nginx = Nginx {
        child,
        prefix: prefix.clone(),
        conf: conf_path,
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            let log = std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default();
            bail!("nginx did not start: {log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(nginx)
}

/// One request on a fresh connection must answer 200 with the file.
fn wait_ok(t: &Target) -> anyhow::Result<()> {
    let mut conn = Conn::new(t)?;
    let (status, body) = conn.get(&t.small, None)?;
    if status != 200 || body != SMALL {
        bail!(
            "{}: {} answered {status} with {body} bytes",
            t.name,
            t.small
        );
    }
    Ok(())
}

/// wrk against `path`: (requests/s, MB/s). With `ranges`, each request asks
/// for a random 64 KiB-aligned 64 KiB range of the 1 GiB file.
fn wrk(
    tmp: &Path,
    t: &Target,
    path: &str,
    connections: u32,
    seconds: u64,
    ranges: bool,
) -> anyhow::Result<(f64, f64)> {
    let mut cmd = Command::new("wrk");
    // A 1 GiB response takes longer than wrk's default 2 s timeout.
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "30s",
    ]);
    if ranges {
        // Written with the credential in it: the temp dir is this run's.
        let headers: String = t
            .headers
            .iter()
            .filter_map(|h| h.split_once(": "))
            .map(|(n, v)| format!("[\"{n}\"] = \"{v}\", "))
            .collect();
        let script = format!(
            "math.randomseed(42)\n\
             request = function()\n\
               local first = math.random(0, {last}) * {SMALL}\n\
               return wrk.format(nil, nil, {{ {headers}[\"Range\"] = \"bytes=\" .. first .. \"-\" .. (first + {SMALL} - 1) }})\n\
             end\n",
            last = BIG / SMALL as u64 - 1,
        );
        let script_path = tmp.join(format!("range-{}.lua", t.name));
        std::fs::write(&script_path, script)?;
        cmd.arg("-s").arg(&script_path);
    } else {
        for h in &t.headers {
            cmd.args(["-H", h]);
        }
    }
    cmd.arg(format!("http://127.0.0.1:{}{path}", t.port));
    let out = cmd.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("{}: wrk on {path} failed or saw errors:\n{text}", t.name);
    }
    let field = |label: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
    };
    let rps: f64 = field("Requests/sec:")
        .context("wrk printed no Requests/sec")?
        .parse()?;
    let transfer = field("Transfer/sec:").context("wrk printed no Transfer/sec")?;
    Ok((rps, wrk_bytes(transfer)? / 1e6))
}

/// wrk's `2.60GB` (binary units) in bytes.
fn wrk_bytes(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .context("no unit")?;
    let (n, unit) = text.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0f64.powi(4),
        other => bail!("unknown unit {other}"),
    };
    Ok(n.parse::<f64>()? * scale)
}

/// A keep-alive HTTP/1.1 connection that reads whole responses.
pub(super) struct Conn<'a> {
    t: &'a Target,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl<'a> Conn<'a> {
    pub(super) fn new(t: &'a Target) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", t.port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            t,
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends a GET and reads the response: (status, body length). With
    /// `first_byte`, records when the first byte of the answer arrived.
    pub(super) fn get(
        &mut self,
        path: &str,
        range: Option<(u64, u64)>,
    ) -> anyhow::Result<(u16, usize)> {
        self.get_timed(path, range, &mut None)
    }

    pub(super) fn get_timed(
        &mut self,
        path: &str,
        range: Option<(u64, u64)>,
        first_byte: &mut Option<Instant>,
    ) -> anyhow::Result<(u16, usize)> {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", self.t.port);
        for h in &self.t.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        if let Some((a, b)) = range {
            head.push_str(&format!("Range: bytes={a}-{b}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.buf.clear();
        let mut chunk = vec![0u8; 256 << 10];
        let end_of_head = loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed mid-response");
            }
            if first_byte.is_none() {
                *first_byte = Some(Instant::now());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end_of_head]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .context("no status")?
            .parse()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .context("no content-length")?
            .trim()
            .parse()?;
        let mut have = self.buf.len() - end_of_head;
        while have < len {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("connection closed mid-body");
            }
            have += n;
        }
        Ok((status, len))
    }
}

/// Median time to the first byte of `count` random 64 KiB ranges of the
/// 1 GiB file per target, one after another on one connection each, the
/// targets taking turns request by request (so each sees the same moment
/// of a busy machine), the same offsets for all.
fn ttfb(targets: &[Target], count: usize) -> anyhow::Result<Vec<f64>> {
    let mut conns = targets
        .iter()
        .map(Conn::new)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut times = vec![Vec::with_capacity(count); targets.len()];
    for _ in 0..count {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let first = ((x >> 11) % (BIG / SMALL as u64)) * SMALL as u64;
        for (conn, times) in conns.iter_mut().zip(&mut times) {
            let mut got = None;
            let sent = Instant::now();
            let path = conn.t.big.clone();
            let (status, len) =
                conn.get_timed(&path, Some((first, first + SMALL as u64 - 1)), &mut got)?;
            if status != 206 || len != SMALL {
                bail!(
                    "{}: a range answered {status} with {len} bytes",
                    conn.t.name
                );
            }
            times.push(got.map_or(0.0, |at| (at - sent).as_secs_f64() * 1e3));
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect())
}

/// The peak resident set (`VmHWM`) of `pid`, KiB.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
