//! lab-s3 against a real S3 server: SeaweedFS on loopback, with keys made
//! for the test (lab-test-support's `seaweed`). Needs the writers' venv:
//! `LAB_FORMATS_PYTHON` (`cargo xtask test` sets it), or `LAB_WEED` too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lab_s3::{Error, Resolved, S3Url, Settings, Store};
use lab_test_support::seaweed::Seaweed;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lab-s3-test-")
        .tempdir_in("/var/tmp")
        .expect("a scratch directory in /var/tmp")
}

fn store_with(server: &Seaweed, url: &str, secret: &str) -> Store {
    let resolved = Resolved::with_static_keys(
        &server.endpoint(),
        "us-east-1",
        true,
        server.access_key(),
        secret,
    )
    .expect("a loopback endpoint");
    Store::new(
        &S3Url::parse(url).expect("a root"),
        &resolved,
        &Settings::default(),
    )
    .expect("a store")
}

fn store(server: &Seaweed, url: &str) -> Store {
    store_with(server, url, server.secret_key())
}

/// Deterministic bytes that differ at every offset modulo 251.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Reads a whole stream on a runtime that is not lab-s3's.
fn collect(stream: lab_s3::ByteStream) -> (Vec<u8>, Option<Error>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut stream = stream;
        let mut out = Vec::new();
        while let Some(item) = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("the stream hung")
        {
            match item {
                Ok(chunk) => {
                    assert!(chunk.len() <= lab_s3::STREAM_CHUNK);
                    out.extend_from_slice(&chunk);
                }
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    })
}

#[test]
fn a_real_store_is_probed_listed_and_read_within_its_prefix() {
    let dir = scratch();
    let server = Seaweed::start(&dir.path().join("weed"));
    eprintln!("weed: {}", server.command_line());
    server.create_bucket("labbkt");

    // The tree under the root, and neighbours that must never show.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("run1/artifacts")).unwrap();
    std::fs::write(tree.join("run1/metrics.csv"), bytes(1000, 1)).unwrap();
    std::fs::write(tree.join("run1/artifacts/model.bin"), bytes(70_000, 2)).unwrap();
    std::fs::write(tree.join("top.txt"), b"top").unwrap();
    server.upload_tree("labbkt", "prefix", &tree);
    server.put("labbkt", "other/x", b"outside");
    server.put("labbkt", "prefix2/x", b"outside too");
    server.put("labbkt", "prefixx", b"a sibling key");

    let root = store(&server, "s3://labbkt/prefix");
    root.probe().expect("probe");

    // Wrong secret: a reason, not the secret.
    let wrong = "not-the-secret-0123456789";
    let err = store_with(&server, "s3://labbkt/prefix", wrong)
        .probe()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("wrong credentials") || text.contains("denied"),
        "{text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(server.access_key()),
        "{text}"
    );
    assert!(matches!(err, Error::Denied(_)), "{err:?}");

    // A missing bucket.
    let err = store(&server, "s3://nosuchbkt/prefix").probe().unwrap_err();
    assert_eq!(err, Error::NoSuchBucket);
    assert_eq!(err.to_string(), "no such bucket");

    // Every object, relative keys, exact sizes, nothing outside.
    let listing = root.list_all(100).expect("list_all");
    let mut got: Vec<(String, u64)> = listing
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.size))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("run1/artifacts/model.bin".to_owned(), 70_000),
            ("run1/metrics.csv".to_owned(), 1000),
            ("top.txt".to_owned(), 3),
        ]
    );
    assert!(!listing.truncated);
    assert!(
        listing
            .objects
            .iter()
            .all(|o| o.etag.is_some() && o.last_modified.is_some())
    );
    let capped = root.list_all(2).expect("list_all capped");
    assert_eq!((capped.objects.len(), capped.truncated), (2, true));

    // One level at a time.
    let top = root.list_dir("", 100).expect("list_dir root");
    assert_eq!(top.dirs, ["run1"]);
    assert_eq!(
        top.files.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["top.txt"]
    );
    let run = root.list_dir("run1", 100).expect("list_dir run1");
    assert_eq!(run.dirs, ["artifacts"]);
    assert_eq!(
        run.files
            .iter()
            .map(|o| (o.key.as_str(), o.size))
            .collect::<Vec<_>>(),
        [("run1/metrics.csv", 1000)]
    );
    let capped = root.list_dir("run1", 1).expect("list_dir capped");
    assert_eq!(capped.files.len() + capped.dirs.len(), 1);
    assert!(capped.truncated);

    // A root over the whole bucket sees the neighbours, under their keys.
    let whole = store(&server, "s3://labbkt")
        .list_all(100)
        .expect("whole bucket");
    assert_eq!(whole.objects.len(), 6);
    let sibling = store(&server, "s3://labbkt/pre")
        .list_all(100)
        .expect("sibling prefix");
    assert!(sibling.objects.is_empty(), "{sibling:?}");

    // Head and ranges.
    let model = root.head("run1/artifacts/model.bin").expect("head");
    assert_eq!(model.size, 70_000);
    assert_eq!(root.head("run1/nothing"), Err(Error::NotFound));
    let want = bytes(70_000, 2);
    let etag = model.etag.clone().expect("an etag");
    for (offset, len) in [
        (0, 10),
        (12_345, 30_000),
        (69_990, 100),
        (70_000, 10),
        (80_000, 10),
    ] {
        let got = root
            .get_range("run1/artifacts/model.bin", offset, len, Some(&etag))
            .expect("get_range");
        let start = (offset as usize).min(want.len());
        let end = (offset as usize + len).min(want.len());
        assert_eq!(got, want[start..end], "{offset}+{len}");
    }
    assert_eq!(
        root.get_range("run1/artifacts/model.bin", 5, 0, None),
        Ok(Vec::new())
    );

    // Streams, 5 MiB, polled from a runtime of the test's own.
    let big = bytes(5 << 20, 3);
    server.put("labbkt", "prefix/run1/artifacts/big.bin", &big);
    let big_etag = root.head("run1/artifacts/big.bin").unwrap().etag.unwrap();
    for (start, end) in [
        (0, 5 << 20),
        (1, 100),
        (123_456, 4_000_000),
        ((5 << 20) - 1, 5 << 20),
    ] {
        let (got, err) = collect(root.stream("run1/artifacts/big.bin", start, end, &big_etag));
        assert_eq!(err, None);
        assert_eq!(got, big[start as usize..end as usize], "[{start}, {end})");
    }
    let (got, err) = collect(root.stream("run1/artifacts/big.bin", 0, 10, "\"not-the-etag\""));
    assert_eq!((got.len(), err), (0, Some(Error::Changed)));

    // Dropping a stream midway hangs nothing.
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut stream = root.stream("run1/artifacts/big.bin", 0, 5 << 20, &big_etag);
        let first = stream.next().await.expect("a chunk").expect("bytes");
        assert!(!first.is_empty());
        drop(stream);
    });
    root.probe().expect("probe after a dropped stream");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // Overwritten: the old ETag no longer reads.
    server.put("labbkt", "prefix/run1/metrics.csv", &bytes(1000, 9));
    let stale = listing
        .objects
        .iter()
        .find(|o| o.key == "run1/metrics.csv")
        .unwrap()
        .etag
        .clone()
        .unwrap();
    assert_eq!(
        root.get_range("run1/metrics.csv", 0, 10, Some(&stale)),
        Err(Error::Changed)
    );
    let (_, err) = collect(root.stream("run1/metrics.csv", 0, 10, &stale));
    assert_eq!(err, Some(Error::Changed));
    assert_eq!(
        root.get_range("run1/metrics.csv", 0, 3, None),
        Ok(bytes(3, 9))
    );

    // Keys outside the prefix are never asked for.
    for bad in ["../other/x", "/other/x", "a/../../other/x", ""] {
        assert!(matches!(root.head(bad), Err(Error::InvalidKey(_))), "{bad}");
    }
}

#[test]
fn a_store_killed_mid_stream_yields_an_error_and_serves_again_after_restart() {
    let dir = scratch();
    let mut server = Seaweed::start(&dir.path().join("weed"));
    server.create_bucket("labbkt");
    let size = 48 << 20;
    server.put("labbkt", "runs/huge.bin", &bytes(size, 4));
    let root = store(&server, "s3://labbkt/runs");
    let etag = root.head("huge.bin").unwrap().etag.unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (read, error) = rt.block_on(async {
        let mut stream = root.stream("huge.bin", 0, size as u64, &etag);
        let mut read = stream.next().await.expect("a chunk").expect("bytes").len();
        server.stop();
        loop {
            match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
                Err(_) => panic!("the stream hung after the store died"),
                Ok(None) => return (read, None),
                Ok(Some(Ok(chunk))) => read += chunk.len(),
                Ok(Some(Err(e))) => return (read, Some(e)),
            }
        }
    });
    assert!(
        error.is_some(),
        "a stream cut short ended cleanly after {read} bytes"
    );
    assert!(read < size, "{read}");

    let err = root.probe().unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
    server.restart();
    root.probe().expect("probe after restart");
    assert_eq!(
        root.get_range("huge.bin", 10, 5, Some(&etag)),
        Ok(bytes(size, 4)[10..15].to_vec())
    );
}

#[test]
fn an_http_endpoint_off_loopback_is_refused_before_any_connection() {
    for endpoint in [
        "http://10.255.255.1:9000",
        "http://127.0.0.1.nip.io:8333",
        "http://169.254.169.254",
    ] {
        let err =
            Resolved::with_static_keys(endpoint, "us-east-1", true, "AKID", "secret").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{endpoint}: {err}");
    }
    let settings = Settings {
        endpoint: Some("http://example.com:9000".to_owned()),
        allow_http: true,
        ..Settings::default()
    };
    let env = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKID".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
        _ => None,
    };
    assert!(Resolved::resolve(&settings, &env, None).is_err());
}
