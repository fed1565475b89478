//! The file body streams exactly the bytes asked for, in bounded chunks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::io::Write;

use http_body_util::BodyExt;
use lab_stream::{ByteRange, CHUNK_SIZE, FileBody, Segment, multipart_segments};

fn file_with(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&data).unwrap();
    (f, data)
}

async fn collect(mut body: FileBody) -> Result<(Vec<u8>, usize), std::io::Error> {
    let mut out = Vec::new();
    let mut largest = 0;
    while let Some(frame) = body.frame().await {
        let data = frame?.into_data().unwrap();
        largest = largest.max(data.len());
        out.extend_from_slice(&data);
    }
    Ok((out, largest))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_streams_exactly_its_bytes_in_bounded_chunks() {
    let (f, data) = file_with(3 * CHUNK_SIZE + 123);
    for (offset, len) in [
        (0, data.len()),
        (1, 10),
        (CHUNK_SIZE - 1, CHUNK_SIZE + 2),
        (data.len() - 1, 1),
        (5, 0),
    ] {
        let body = FileBody::region(f.reopen().unwrap(), offset as u64, len as u64);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(len as u64));
        let (got, largest) = collect(body).await.unwrap();
        assert_eq!(
            got,
            &data[offset..offset + len],
            "offset {offset} len {len}"
        );
        assert!(largest <= CHUNK_SIZE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_frames_each_part() {
    let (f, data) = file_with(1000);
    let ranges = [
        ByteRange { first: 0, last: 9 },
        ByteRange {
            first: 500,
            last: 519,
        },
    ];
    let (segments, total) = multipart_segments(&ranges, 1000, "video/mp4", "BOUNDARY");
    let (got, _) = collect(FileBody::new(f.reopen().unwrap(), segments))
        .await
        .unwrap();
    assert_eq!(got.len() as u64, total);
    let mut want = Vec::new();
    want.extend_from_slice(
        b"--BOUNDARY\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-9/1000\r\n\r\n",
    );
    want.extend_from_slice(&data[0..10]);
    want.extend_from_slice(
        b"\r\n--BOUNDARY\r\nContent-Type: video/mp4\r\nContent-Range: bytes 500-519/1000\r\n\r\n",
    );
    want.extend_from_slice(&data[500..520]);
    want.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_truncated_while_streaming_ends_in_an_error_not_short_content() {
    let (f, _) = file_with(2 * CHUNK_SIZE);
    let body = FileBody::new(
        f.reopen().unwrap(),
        vec![Segment::File {
            offset: 0,
            len: 2 * CHUNK_SIZE as u64,
        }],
    );
    f.as_file().set_len(CHUNK_SIZE as u64 / 2).unwrap();
    let err = collect(body).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// A file that is not in the page cache is read on the blocking pool (the
/// no-wait read declines) and still streams exactly its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_out_of_the_page_cache_streams_through_the_blocking_pool() {
    // Beside the build, not in /tmp, which may be a tmpfs (always cached).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("cold.bin");
    let data: Vec<u8> = (0..2 * CHUNK_SIZE + 7)
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    let mut probe = [0u8; 16];
    let cold = rustix::io::preadv2(
        &file,
        &mut [std::io::IoSliceMut::new(&mut probe)],
        CHUNK_SIZE as u64,
        rustix::io::ReadWriteFlags::NOWAIT,
    );
    assert_eq!(
        cold.err(),
        Some(rustix::io::Errno::AGAIN),
        "the file should have left the page cache"
    );
    let len = data.len() as u64;
    let (got, largest) = collect(FileBody::region(file, 0, len)).await.unwrap();
    assert_eq!(got, data);
    assert!(largest <= CHUNK_SIZE);
}
