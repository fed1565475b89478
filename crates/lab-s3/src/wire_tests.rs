//! lab-s3 on the wire against servers of the test's own: proxies,
//! redirects, hostile listings, silence, and calls from inside a runtime.
#![cfg(test)]

use crate::tests::{KEY_ID, SECRET};
use crate::{Error, Resolved, S3Url, Settings, Store};

#[test]
fn sync_calls_work_from_inside_another_runtime_without_panicking() {
    let r = Resolved::with_static_keys("http://127.0.0.1:9", "us-east-1", true, KEY_ID, SECRET)
        .unwrap();
    let store = Store::new(
        &S3Url::parse("s3://bucket").unwrap(),
        &r,
        &Settings::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let blocking = store.clone();
    let got = rt.block_on(async move {
        tokio::task::spawn_blocking(move || blocking.probe())
            .await
            .unwrap()
    });
    assert_eq!(
        got,
        Err(Error::Unreachable("connection refused".to_owned()))
    );
    // Even called on the runtime's own thread (which it blocks, while lab-s3's
    // IO runs on lab-s3's runtime), it answers and does not panic.
    let got = rt.block_on(async move { store.list_dir("", 10) });
    assert_eq!(
        got,
        Err(Error::Unreachable("connection refused".to_owned()))
    );
}

/// A loopback listener that counts connections and answers each with a
/// redirect to `location`.
fn redirector(location: String) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, count)
}

const CHILD: &str = "LAB_S3_TEST_CHILD";

/// Runs in a child process with every proxy variable set (see below).
#[test]
fn child_probe_with_proxy_environment() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let endpoint = std::env::var("LAB_S3_TEST_ENDPOINT").unwrap();
    if mode == "lab" {
        let r = Resolved::with_static_keys(&endpoint, "us-east-1", true, KEY_ID, SECRET).unwrap();
        let store = Store::new(
            &S3Url::parse("s3://bucket/p").unwrap(),
            &r,
            &Settings::default(),
        )
        .unwrap();
        let err = store.probe().unwrap_err();
        assert_eq!(
            err,
            Error::Other(
                "the store answered with a redirect, which the Lab never follows".to_owned()
            )
        );
    } else {
        // The control: a default reqwest client does use the proxy variables.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(async {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(format!("{endpoint}/"))
                .send()
                .await
        });
    }
}

#[test]
fn proxy_variables_are_ignored_and_redirects_are_not_followed() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let (proxy, proxied) = redirector("http://127.0.0.1:9/".to_owned());
    let (other, redirected_to) = redirector("http://127.0.0.1:9/".to_owned());
    let (server, served) = redirector(format!("http://127.0.0.1:{other}/bucket?list-type=2"));
    let run = |mode: &str| {
        let proxy = format!("http://127.0.0.1:{proxy}");
        #[allow(clippy::disallowed_methods)] // the test re-runs itself with a hostile environment
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "wire_tests::child_probe_with_proxy_environment",
                "--nocapture",
            ])
            .env(CHILD, mode)
            .env("LAB_S3_TEST_ENDPOINT", format!("http://127.0.0.1:{server}"))
            .env("HTTP_PROXY", &proxy)
            .env("http_proxy", &proxy)
            .env("HTTPS_PROXY", &proxy)
            .env("ALL_PROXY", &proxy)
            .env("all_proxy", &proxy)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    use std::sync::atomic::Ordering::SeqCst;
    run("lab");
    assert_eq!(proxied.load(SeqCst), 0, "lab-s3 went through the proxy");
    assert_eq!(
        served.load(SeqCst),
        1,
        "one request, no retries of a redirect"
    );
    assert_eq!(redirected_to.load(SeqCst), 0, "lab-s3 followed a redirect");
    run("control");
    assert_eq!(
        proxied.load(SeqCst),
        1,
        "the control did not use the proxy: this test proves nothing"
    );
}

/// A loopback server answering every request with `response` (or, with
/// `None`, reading and never answering); it records the request heads.
fn fake_server(response: Option<String>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            match &response {
                Some(response) => {
                    let _ = stream.write_all(response.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    (port, heads)
}

fn store_at(port: u16, root: &str) -> Store {
    let r = Resolved::with_static_keys(
        &format!("http://127.0.0.1:{port}"),
        "us-east-1",
        true,
        KEY_ID,
        SECRET,
    )
    .unwrap();
    Store::new(&S3Url::parse(root).unwrap(), &r, &Settings::default()).unwrap()
}

#[test]
fn listed_keys_outside_the_prefix_are_dropped() {
    let contents: String = ["prefix/ok.txt", "other/x", "prefix2/y", "prefix", "prefixok", "prefix/sub/deep.bin"]
        .iter()
        .map(|key| {
            format!(
                "<Contents><Key>{key}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
                 <ETag>&quot;abc&quot;</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        })
        .collect();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bucket</Name>\
         <Prefix>prefix/</Prefix><KeyCount>6</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>\
         {contents}</ListBucketResult>"
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (port, heads) = fake_server(Some(response));
    let listing = store_at(port, "s3://bucket/prefix").list_all(100).unwrap();
    let keys: Vec<&str> = listing.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["ok.txt", "sub/deep.bin"]);
    assert_eq!(listing.objects[0].etag.as_deref(), Some("\"abc\""));
    assert_eq!(listing.objects[0].last_modified, Some(1_704_067_200));
    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with("GET /bucket?"), "{}", heads[0]);
    assert!(heads[0].contains("prefix=prefix%2F"), "{}", heads[0]);
    // Signed with the key id, never carrying the secret.
    assert!(heads[0].contains(KEY_ID) && !heads[0].contains(SECRET));
}

#[test]
fn a_store_that_never_answers_times_the_probe_out_after_10_s() {
    let (port, _) = fake_server(None);
    let started = std::time::Instant::now();
    let err = store_at(port, "s3://bucket/prefix").probe().unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, Error::TimedOut);
    assert!(
        took >= std::time::Duration::from_secs(9) && took < std::time::Duration::from_secs(14),
        "{took:?}"
    );
}

#[test]
fn a_ranged_get_and_a_head_still_read_their_answers() {
    let object =
        "ETag: \"abc\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: close\r\n";
    let (port, heads) = fake_server(Some(format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nContent-Range: bytes 2-5/10\r\n{object}\r\ncdef"
    )));
    let store = store_at(port, "s3://bucket/prefix");
    assert_eq!(
        store.get_range("a.bin", 2, 4, Some("\"abc\"")).unwrap(),
        b"cdef"
    );
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("range: bytes=2-5"), "{head}");
    // A HEAD's Content-Length is the object's size, never a body to read.
    let (port, _) = fake_server(Some(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n{object}\r\n"
    )));
    let got = store_at(port, "s3://bucket/prefix").head("a.bin").unwrap();
    assert_eq!((got.key.as_str(), got.size), ("a.bin", 10));
}

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A loopback server answering each request with `head`, `start` and
/// spaces up to `total` body bytes, written 64 KiB at a time (never held at
/// once); each connection sends how much it wrote before the client hung up.
fn hostile_server(
    head: String,
    start: &'static str,
    total: usize,
) -> (u16, std::sync::mpsc::Receiver<usize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (head, tx) = (head.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let mut wrote = 0;
                if stream.write_all(head.as_bytes()).is_ok()
                    && stream.write_all(start.as_bytes()).is_ok()
                {
                    wrote = start.len();
                    let pad = vec![b' '; 64 * 1024];
                    while wrote < total {
                        let n = pad.len().min(total - wrote);
                        if stream.write_all(&pad[..n]).is_err() {
                            break;
                        }
                        wrote += n;
                    }
                }
                let _ = tx.send(wrote);
            });
        }
    });
    (port, rx)
}

const MIB: usize = 1024 * 1024;

#[test]
fn hostile_listing_and_error_bodies_are_capped_not_held() {
    // Peak RSS from here on (where clear_refs is refused the old peak
    // stays, and the check below can only pass more easily).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss();

    // A listing page of 64 MiB (its Content-Length says so): the listing
    // fails at 16 MiB, quickly, and the store could not send it all.
    let total = 64 * MIB;
    let (port, wrote) = hostile_server(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
        ),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix>prefix/</Prefix><IsTruncated>false</IsTruncated>",
        total,
    );
    let started = std::time::Instant::now();
    let err = store_at(port, "s3://bucket/prefix")
        .list_all(100)
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err,
        Error::Other("the store's listing page is larger than 16 MiB".to_owned())
    );
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let sent = wrote
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(sent < total, "the whole 64 MiB was read");
    assert!(wrote.try_recv().is_err(), "a refused page was asked again");
    let after_list = peak_rss();

    // Errors with 10 MiB bodies (no Content-Length: until the store
    // closes): classified by their <Code>, only 64 KiB read.
    let (port, _) = hostile_server(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\n\r\n"
            .to_owned(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
         <Message>Access Denied</Message>",
        10 * MIB,
    );
    let store = store_at(port, "s3://bucket/prefix");
    let denied = Error::Denied("access denied".to_owned());
    assert_eq!(store.list_all(100).unwrap_err(), denied);
    assert_eq!(store.get_range("a.bin", 0, 10, None).unwrap_err(), denied);
    assert_eq!(store.probe().unwrap_err(), denied);
    let after = peak_rss();

    eprintln!(
        "peak RSS: before {} KiB, after the 64 MiB listing {} KiB (took {took:?}, the store wrote {} KiB), after the 10 MiB errors {} KiB",
        before / 1024,
        after_list / 1024,
        sent / 1024,
        after / 1024
    );
    // The 16 MiB page held once, not 64 MiB (nor 10 MiB of an error).
    let grew = after.saturating_sub(before);
    assert!(
        grew < 40 * MIB as u64,
        "peak RSS grew by {} KiB",
        grew / 1024
    );
}
