//! The body of an artifact in object storage: its segments (multipart
//! framing in memory, byte ranges of the object) sent in order, each range
//! a ranged GET pinned to the object's ETag (lab-s3's `Store::stream`:
//! chunks of at most 256 KiB, four in flight, so a 4 GiB video costs what
//! a 4 KiB one does). A GET that fails, or hands back an object of another
//! ETag, or more or fewer bytes than asked, ends the body with an error:
//! the connection is closed rather than a response completed with wrong
//! bytes. Dropping the body drops the stream, which cancels its request.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use lab_core::remote::{ByteStream, RemoteArtifact};
use lab_stream::Segment;

/// See the module docs.
pub(crate) struct RemoteBody {
    artifact: RemoteArtifact,
    segments: VecDeque<Segment>,
    /// The range being sent, and the bytes of it still to come.
    current: Option<(ByteStream, u64)>,
    remaining: u64,
}

impl RemoteBody {
    pub(crate) fn new(artifact: RemoteArtifact, segments: Vec<Segment>) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        let mut segments: VecDeque<Segment> = segments.into();
        // The first range's GET starts now, while the response's head is
        // written, not when the body is first polled after it.
        let current = match segments.front() {
            Some(Segment::File { offset, len }) if *len > 0 => {
                let (offset, len) = (*offset, *len);
                segments.pop_front();
                Some((
                    artifact
                        .store
                        .stream(&artifact.key, offset, offset + len, &artifact.etag),
                    len,
                ))
            }
            _ => None,
        };
        Self {
            artifact,
            segments,
            current,
            remaining,
        }
    }
}

impl Body for RemoteBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((stream, left)) = &mut this.current {
                match Pin::new(stream).poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(chunk))) => {
                        let n = chunk.len() as u64;
                        if n > *left {
                            this.current = None;
                            return Poll::Ready(Some(Err(io::Error::other(
                                "the store sent more bytes than asked",
                            ))));
                        }
                        *left -= n;
                        this.remaining -= n;
                        if n == 0 {
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(chunk))));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        this.artifact.stream_failed(&e);
                        this.current = None;
                        this.segments.clear();
                        return Poll::Ready(Some(Err(io::Error::other(e.to_string()))));
                    }
                    Poll::Ready(None) => {
                        let short = *left > 0;
                        this.current = None;
                        if short {
                            this.segments.clear();
                            return Poll::Ready(Some(Err(io::Error::other(
                                "the object ended before the range did",
                            ))));
                        }
                    }
                }
            }
            match this.segments.pop_front() {
                None => return Poll::Ready(None),
                Some(Segment::Bytes(bytes)) => {
                    this.remaining -= bytes.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Some(Segment::File { offset, len }) => {
                    if len == 0 {
                        continue;
                    }
                    let stream = this.artifact.store.stream(
                        &this.artifact.key,
                        offset,
                        offset + len,
                        &this.artifact.etag,
                    );
                    this.current = Some((stream, len));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.current.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
