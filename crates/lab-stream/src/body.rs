//! A response body that streams regions of an open file.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::ByteRange;

/// Bytes per positioned read. Measured on these machines (see
/// `shared/notes/range-and-streaming.md`), 256 KiB reads keep hyper within
/// reach of nginx's sendfile.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// A piece of a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Bytes held in memory (multipart framing).
    Bytes(Bytes),
    /// `len` bytes of the file starting at `offset`.
    File {
        /// Where to start reading.
        offset: u64,
        /// How many bytes to send.
        len: u64,
    },
}

impl Segment {
    /// How many bytes it sends.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }
}

/// Streams [`Segment`]s of one open file. At most one read of
/// [`CHUNK_SIZE`] is in flight, started as the previous chunk is handed to
/// the connection, so a stream holds a bounded number of chunks however
/// large the file and however slow the reader: hyper asks for the next frame
/// only when it has room to write.
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    segments: VecDeque<Segment>,
    inflight: Option<JoinHandle<io::Result<Bytes>>>,
    remaining: u64,
}

impl FileBody {
    /// A body made of `segments` of `file`.
    pub fn new(file: File, segments: Vec<Segment>) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        Self {
            file: Arc::new(file),
            segments: segments.into(),
            inflight: None,
            remaining,
        }
    }

    /// A body of `len` bytes of `file` from `offset`.
    pub fn region(file: File, offset: u64, len: u64) -> Self {
        Self::new(file, vec![Segment::File { offset, len }])
    }

    /// The next read: where, and how many bytes (at most [`CHUNK_SIZE`]),
    /// if the front segment is a file region and nothing is in flight.
    fn next_read(&self) -> Option<(u64, usize)> {
        if self.inflight.is_some() {
            return None;
        }
        match self.segments.front() {
            Some(Segment::File { offset, len }) if *len > 0 => {
                Some((*offset, (*len).min(CHUNK_SIZE as u64) as usize))
            }
            _ => None,
        }
    }

    /// Reads the next chunk here and now if the page cache holds it
    /// (`preadv2(RWF_NOWAIT)`, which never waits on a disk): `None` when
    /// it does not, or the kernel cannot say, and the read must go to the
    /// blocking pool. A short read is a chunk of its own.
    fn read_cached(&self, offset: u64, n: usize) -> Option<Bytes> {
        let mut buf = vec![0u8; n];
        let read = rustix::io::preadv2(
            &*self.file,
            &mut [io::IoSliceMut::new(&mut buf)],
            offset,
            rustix::io::ReadWriteFlags::NOWAIT,
        );
        match read {
            // End of file early (truncated under us?): the blocking read
            // decides, and aborts the response rather than send short
            // content.
            Ok(0) | Err(_) => None,
            Ok(got) => {
                buf.truncate(got);
                Some(Bytes::from(buf))
            }
        }
    }

    /// Starts reading the next chunk of the front segment on the blocking
    /// pool, if it is a file region and nothing is in flight.
    fn start_read(&mut self) {
        if let Some((offset, n)) = self.next_read() {
            let file = Arc::clone(&self.file);
            self.inflight = Some(tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                // A file truncated under us ends in UnexpectedEof, which
                // aborts the response rather than sending short content.
                file.read_exact_at(&mut buf, offset)?;
                Ok(Bytes::from(buf))
            }));
        }
    }

    /// Records that `n` bytes of the front file segment were read.
    fn advance(&mut self, n: u64) {
        if let Some(Segment::File { offset, len }) = self.segments.front_mut() {
            *offset += n;
            *len -= n;
            if *len == 0 {
                self.segments.pop_front();
            }
        }
        self.remaining -= n;
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(handle) = this.inflight.as_mut() {
                let result = ready!(Pin::new(handle).poll(cx));
                this.inflight = None;
                let chunk = match result {
                    Ok(Ok(chunk)) => chunk,
                    Ok(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Err(join) => return Poll::Ready(Some(Err(io::Error::other(join)))),
                };
                this.advance(chunk.len() as u64);
                // The disk was slow once: keep one read ahead of the socket.
                this.start_read();
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            match this.segments.front() {
                None => return Poll::Ready(None),
                Some(Segment::Bytes(_)) => {
                    if let Some(Segment::Bytes(bytes)) = this.segments.pop_front() {
                        this.remaining -= bytes.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                }
                Some(Segment::File { len: 0, .. }) => {
                    this.segments.pop_front();
                }
                Some(Segment::File { offset, len }) => {
                    let (offset, n) = (*offset, (*len).min(CHUNK_SIZE as u64) as usize);
                    match this.read_cached(offset, n) {
                        Some(chunk) => {
                            this.advance(chunk.len() as u64);
                            return Poll::Ready(Some(Ok(Frame::data(chunk))));
                        }
                        None => this.start_read(),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.inflight.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The segments of a `multipart/byteranges` body (RFC 9110 §14.6) and its
/// total length. `boundary` must not occur in the file; a random one of 16+
/// characters makes that vanishingly unlikely.
pub fn multipart_segments(
    ranges: &[ByteRange],
    complete_len: u64,
    content_type: &str,
    boundary: &str,
) -> (Vec<Segment>, u64) {
    let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, range) in ranges.iter().enumerate() {
        let lead = if i == 0 { "" } else { "\r\n" };
        let head = format!(
            "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(complete_len)
        );
        segments.push(Segment::Bytes(Bytes::from(head)));
        segments.push(Segment::File {
            offset: range.first,
            len: range.len(),
        });
    }
    segments.push(Segment::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    let total = segments.iter().map(Segment::len).sum();
    (segments, total)
}
