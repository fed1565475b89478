//! `cargo xtask bench s3`: an artifact in object storage served by the
//! Lab, against the same reads made straight to the store, in one run.
//!
//! A real SeaweedFS (`lab_test_support::seaweed`, all on loopback) holds
//! bucket `bench` with one run under prefix `runs`: `big/run.toml`,
//! `big/metrics.jsonl` and `big/output.mp4`, 256 MiB of pseudo-random
//! bytes. The release `lab` serves `s3://bench/runs` (keys from `AWS_*`,
//! `allow_http` for the loopback endpoint); every request carries
//! `Authorization: Bearer KEY` (the browser's cookie path is not measured).
//! The direct side is `lab_s3::Store`, the very client the Lab streams
//! through, called in this process.
//!
//! - Seeks: 300 random 64 KiB-aligned 64 KiB ranges, the same offsets for
//!   both, the two taking turns request by request. The Lab is asked over
//!   one keep-alive HTTP/1.1 connection (`Range:`); its time to first byte
//!   is when the answer's first byte arrived, its time to the whole range
//!   when the last did. Directly, the first byte is the first chunk of a
//!   `Store::stream` of the range (what the Lab itself sends from), and the
//!   whole range is one `Store::get_range` pinned to the ETag.
//! - Downloads: the whole object, three times each (alternating which goes
//!   first), the median shown: a plain GET from the Lab, one
//!   `Store::stream` drained directly.
//!
//! The goals: time to first byte at most 1.2× direct, throughput
//! at least 0.9× direct.

use std::io::{BufReader, Write};
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_core::Stream;
use lab_s3::{Resolved, S3Url, Settings, Store};
use lab_test_support::browser::Killed;
use lab_test_support::seaweed::Seaweed;

use super::run_id;
use super::serve::{Conn, Target};
use crate::root;

const BUCKET: &str = "bench";
const KEY: &str = "big/output.mp4";
const SIZE: u64 = 256 << 20;
const SEEK: u64 = 64 << 10;
pub(super) const SEEKS: usize = 300;
const DOWNLOADS: usize = 3;

/// The table, measured on a scratch directory removed afterwards (also
/// when a helper panics: SeaweedFS and the Lab stop as they unwind).
pub fn run() -> anyhow::Result<String> {
    let tmp = std::env::temp_dir().join(format!("lab-bench-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bench(&tmp)))
        .unwrap_or_else(|_| Err(anyhow!("the benchmark panicked (the message is above)")));
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn bench(tmp: &Path) -> anyhow::Result<String> {
    let file = tmp.join("output.mp4");
    write_random(&file, SIZE)?;
    eprintln!("bench s3: starting SeaweedFS");
    let seaweed = Seaweed::start(&tmp.join("seaweed"));
    seaweed.create_bucket(BUCKET);
    seaweed.put(BUCKET, "runs/big/run.toml", b"name = \"big\"\n");
    seaweed.put(
        BUCKET,
        "runs/big/metrics.jsonl",
        b"{\"step\": 0, \"loss\": 1.0}\n",
    );
    eprintln!("bench s3: uploading 256 MiB");
    seaweed.upload(BUCKET, &format!("runs/{KEY}"), &file);
    std::fs::remove_file(&file)?;

    let store = Store::new(
        &S3Url::parse(&format!("s3://{BUCKET}/runs"))?,
        &Resolved::with_static_keys(
            &seaweed.endpoint(),
            "us-east-1",
            true,
            seaweed.access_key(),
            seaweed.secret_key(),
        )?,
        &Settings::default(),
    )?;
    let object = store.head(KEY)?;
    let etag = object.etag.context("the store gave the object no ETag")?;
    if object.size != SIZE {
        bail!("the store holds {} bytes, not {SIZE}", object.size);
    }

    let (_lab, target) = start_lab(tmp, &seaweed)?;
    let mut conn = Conn::new(&target)?;
    let path = target.big.clone();
    // Warm both sides (connections, the Lab's first look at the object).
    for _ in 0..3 {
        lab_range(&mut conn, &path, 0)?;
        store.get_range(KEY, 0, SEEK as usize, Some(&etag))?;
        direct_first_chunk(&store, 0, &etag)?;
    }

    eprintln!("bench s3: {SEEKS} seeks");
    let (mut lab_first, mut lab_whole) = (Vec::new(), Vec::new());
    let (mut direct_first, mut direct_whole) = (Vec::new(), Vec::new());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..SEEKS {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let offset = ((x >> 11) % (SIZE / SEEK)) * SEEK;
        let mut lab = || -> anyhow::Result<()> {
            let (first, whole) = lab_range(&mut conn, &path, offset)?;
            lab_first.push(first);
            lab_whole.push(whole);
            Ok(())
        };
        let mut direct = || -> anyhow::Result<()> {
            let started = Instant::now();
            let bytes = store.get_range(KEY, offset, SEEK as usize, Some(&etag))?;
            direct_whole.push(ms(started));
            if bytes.len() as u64 != SEEK {
                bail!("get_range gave {} bytes", bytes.len());
            }
            direct_first.push(direct_first_chunk(&store, offset, &etag)?);
            Ok(())
        };
        if i % 2 == 0 {
            lab()?;
            direct()?;
        } else {
            direct()?;
            lab()?;
        }
    }

    eprintln!("bench s3: {DOWNLOADS} downloads of 256 MiB each");
    let (mut lab_mb_s, mut direct_mb_s) = (Vec::new(), Vec::new());
    for round in 0..DOWNLOADS {
        let mut lab = || -> anyhow::Result<()> {
            let started = Instant::now();
            let (status, len) = conn.get(&path, None)?;
            let secs = started.elapsed().as_secs_f64();
            if status != 200 || len as u64 != SIZE {
                bail!("the Lab answered {status} with {len} bytes");
            }
            lab_mb_s.push(SIZE as f64 / secs / 1e6);
            Ok(())
        };
        let mut direct = || -> anyhow::Result<()> {
            let started = Instant::now();
            let len = drain(store.stream(KEY, 0, SIZE, &etag))?;
            let secs = started.elapsed().as_secs_f64();
            if len != SIZE {
                bail!("the stream gave {len} bytes");
            }
            direct_mb_s.push(SIZE as f64 / secs / 1e6);
            Ok(())
        };
        if round % 2 == 0 {
            lab()?;
            direct()?;
        } else {
            direct()?;
            lab()?;
        }
        eprintln!(
            "round {}: Lab {:.0} MB/s, direct {:.0} MB/s",
            round + 1,
            lab_mb_s[round],
            direct_mb_s[round]
        );
    }

    let ttfb = (median(&mut lab_first), median(&mut direct_first));
    let whole = (median(&mut lab_whole), median(&mut direct_whole));
    let download = (median(&mut lab_mb_s), median(&mut direct_mb_s));
    let met = |ok: bool| if ok { "met" } else { "not met" };
    let mut table =
        String::from("| | Lab | direct (lab-s3) | Lab/direct | goal |\n|---|---|---|---|---|\n");
    table.push_str(&format!(
        "| time to first byte of a 64 KiB seek (median of {SEEKS}; Lab: the HTTP answer's first byte; direct: the first chunk of `Store::stream`) | {:.3} ms | {:.3} ms | {:.2}× | ≤ 1.2×: {} |\n",
        ttfb.0,
        ttfb.1,
        ttfb.0 / ttfb.1,
        met(ttfb.0 <= 1.2 * ttfb.1)
    ));
    table.push_str(&format!(
        "| time to the whole 64 KiB of a seek (median of {SEEKS}; Lab: the answer's last byte; direct: `Store::get_range`) | {:.3} ms | {:.3} ms | {:.2}× | ≤ 1.2×: {} |\n",
        whole.0,
        whole.1,
        whole.0 / whole.1,
        met(whole.0 <= 1.2 * whole.1)
    ));
    table.push_str(&format!(
        "| 256 MiB download, one client (median of {DOWNLOADS}; Lab: a GET; direct: `Store::stream` drained) | {:.0} MB/s | {:.0} MB/s | {:.2} | ≥ 0.9: {} |\n",
        download.0,
        download.1,
        download.0 / download.1,
        met(download.0 >= 0.9 * download.1)
    ));
    Ok(table)
}

/// `len` pseudo-random bytes (xorshift64*, not compressible) into `path`.
fn write_random(path: &Path, len: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len / block.len() as u64 {
        for word in block.chunks_exact_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            word.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.write_all(&block)?;
    }
    out.flush()?;
    Ok(())
}

/// The release `lab` serving `s3://bench/runs` from `seaweed`, once it
/// lists the run `big`: the process (killed on drop) and the target.
fn start_lab(tmp: &Path, seaweed: &Seaweed) -> anyhow::Result<(Killed, Target)> {
    let data = tmp.join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(
        data.join("lab.toml"),
        "[s3]\nallow_http = true\nrelist_secs = 2\n",
    )?;
    let binary = root().join("target/release/lab");
    let mut command = Command::new(&binary);
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--root", &format!("s3://{BUCKET}/runs")])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", seaweed.access_key())
        .env("AWS_SECRET_ACCESS_KEY", seaweed.secret_key())
        .env("AWS_ENDPOINT_URL", seaweed.endpoint())
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(tmp.join("lab.log"))?);
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let lab = Killed(child);
    let listening = lab_test_support::lab::read_listening(&mut BufReader::new(stdout))
        .map_err(|e| anyhow!("{e}; lab.log: {}", log(tmp)))?;
    let port = listening.port;
    crate::http::remember(port, "Authorization", &format!("Bearer {}", listening.key));
    let started = Instant::now();
    let id = loop {
        let list = crate::http::Request::new("GET", "/api/runs")
            .send(port)?
            .json();
        if let Ok(id) = run_id(&list, "big") {
            break id;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the Lab did not list the run big within 60 s: {list}; lab.log: {}",
                log(tmp)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let path = format!("/api/runs/{id}/artifacts/output.mp4");
    let target = Target {
        name: "Lab",
        port,
        headers: vec![format!("Authorization: Bearer {}", listening.key)],
        small: path.clone(),
        big: path,
    };
    Ok((lab, target))
}

fn log(tmp: &Path) -> String {
    std::fs::read_to_string(tmp.join("lab.log")).unwrap_or_default()
}

/// One 64 KiB range from the Lab: (ms to the first byte, ms to the last).
fn lab_range(conn: &mut Conn<'_>, path: &str, offset: u64) -> anyhow::Result<(f64, f64)> {
    let mut first = None;
    let started = Instant::now();
    let (status, len) = conn.get_timed(path, Some((offset, offset + SEEK - 1)), &mut first)?;
    let whole = ms(started);
    if status != 206 || len as u64 != SEEK {
        bail!("the Lab answered a range with {status} and {len} bytes");
    }
    let first = first.map_or(whole, |at| (at - started).as_secs_f64() * 1e3);
    Ok((first, whole))
}

/// Ms until the first chunk of a direct 64 KiB stream at `offset` (the
/// rest is drained, untimed, before the next request).
fn direct_first_chunk(store: &Store, offset: u64, etag: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut stream = store.stream(KEY, offset, offset + SEEK, etag);
    let mut first = None;
    let mut total = 0u64;
    block_on_each(&mut stream, |n| {
        first.get_or_insert_with(|| ms(started));
        total += n;
    })?;
    if total != SEEK {
        bail!("a direct stream gave {total} bytes");
    }
    Ok(first.unwrap_or_default())
}

/// Drains a stream on this thread: its length.
fn drain(mut stream: lab_s3::ByteStream) -> anyhow::Result<u64> {
    let mut total = 0;
    block_on_each(&mut stream, |n| total += n)?;
    Ok(total)
}

/// Wakes the thread that polls.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `stream` to its end on this thread (parking while it is pending;
/// its IO runs on lab-s3's own runtime), calling `each` with every chunk's
/// length.
fn block_on_each(stream: &mut lab_s3::ByteStream, mut each: impl FnMut(u64)) -> anyhow::Result<()> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        match Pin::new(&mut *stream).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => each(chunk.len() as u64),
            Poll::Ready(Some(Err(e))) => bail!("direct stream: {e}"),
            Poll::Ready(None) => return Ok(()),
            Poll::Pending => std::thread::park(),
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
