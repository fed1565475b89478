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
