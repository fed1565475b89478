//! Every response body the store sends, bounded before object_store reads
//! it: a ListObjectsV2 page at most 16 MiB (past it the request fails), an
//! error body (status 300 or more) cut at 64 KiB, a HEAD none, a ranged GET
//! the range it asked for and 64 KiB more, anything else its
//! `Content-Length` or else 16 MiB. object_store reads a listing page and an
//! error body whole before parsing them; without these a hostile or broken
//! endpoint could make the Lab hold gigabytes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use object_store::client::{
    HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};

/// The largest ListObjectsV2 page read (a 1000-key page is far below 1 MiB).
pub(crate) const MAX_LIST_PAGE: u64 = 16 << 20;
/// The most of an error body read; the rest is never read.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;
/// What a ranged GET's body may hold beyond the range asked for.
pub(crate) const RANGE_SLACK: u64 = 64 << 10;
/// The largest body of anything else with no `Content-Length`.
pub(crate) const MAX_OTHER: u64 = 16 << 20;

pub(crate) const LIST_TOO_LARGE: &str = "the store's listing page is larger than 16 MiB";
const RANGE_TOO_LARGE: &str = "the store sent more bytes than the range asked for";
const LENGTH_TOO_LARGE: &str = "the store sent more bytes than its Content-Length";
const OTHER_TOO_LARGE: &str = "the store's answer is larger than 16 MiB";

/// A body refused for its size; its `Display` is the lab-s3 error's text.
#[derive(Debug)]
pub(crate) struct TooLarge(pub(crate) &'static str);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TooLarge {}

/// How one response's body is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cap {
    /// Past `max` bytes the body fails with [`TooLarge`].
    Fail { max: u64, why: &'static str },
    /// The first `max` bytes (back to a UTF-8 boundary when cut) and no more.
    Cut { max: usize },
}

/// The length of a `Range: bytes=A-B` or `bytes=-N` (one range only).
fn range_len(range: &str) -> Option<u64> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let end: u64 = end.trim().parse().ok()?;
    if start.trim().is_empty() {
        return Some(end);
    }
    let start: u64 = start.trim().parse().ok()?;
    end.checked_sub(start)?.checked_add(1)
}

/// Whether a request is a ListObjectsV2 page (`list-type=2` in its query).
fn is_list(method: &str, query: Option<&str>) -> bool {
    method == "GET" && query.is_some_and(|q| q.split('&').any(|pair| pair == "list-type=2"))
}

/// The cap of a response to `method` on `query` with `range`, answered with
/// `status` and `content_length`.
pub(crate) fn cap_of(
    method: &str,
    query: Option<&str>,
    range: Option<&str>,
    status: u16,
    content_length: Option<u64>,
) -> Cap {
    if method == "HEAD" {
        return Cap::Cut { max: 0 };
    }
    if status >= 300 {
        return Cap::Cut {
            max: MAX_ERROR_BODY,
        };
    }
    if is_list(method, query) {
        return Cap::Fail {
            max: MAX_LIST_PAGE,
            why: LIST_TOO_LARGE,
        };
    }
    if let Some(len) = range.and_then(range_len) {
        return Cap::Fail {
            max: len.saturating_add(RANGE_SLACK),
            why: RANGE_TOO_LARGE,
        };
    }
    match content_length {
        Some(max) => Cap::Fail {
            max,
            why: LENGTH_TOO_LARGE,
        },
        None => Cap::Fail {
            max: MAX_OTHER,
            why: OTHER_TOO_LARGE,
        },
    }
}

/// A response body held to its [`Cap`].
struct Capped {
    inner: HttpResponseBody,
    cap: Cap,
    /// Data bytes seen so far.
    seen: u64,
    /// [`Cap::Cut`]: what is kept, sent as one frame when the body ends or
    /// reaches the cap.
    held: BytesMut,
    done: bool,
}

impl Capped {
    fn new(inner: HttpResponseBody, cap: Cap) -> Capped {
        Capped {
            inner,
            cap,
            seen: 0,
            held: BytesMut::new(),
            done: cap == Cap::Cut { max: 0 },
        }
    }

    /// The kept bytes of a [`Cap::Cut`] body as its last frame.
    fn finish(&mut self) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        self.done = true;
        if self.held.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(self.held.split().freeze()))))
    }
}

/// Drops a character cut in half at the end of `buf` (so a cut error body
/// still reads as text).
fn trim_to_char(buf: &mut BytesMut) {
    if let Err(e) = std::str::from_utf8(buf)
        && e.error_len().is_none()
    {
        buf.truncate(e.valid_up_to());
    }
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => match this.cap {
                    Cap::Fail { .. } => {
                        this.done = true;
                        return Poll::Ready(None);
                    }
                    Cap::Cut { .. } => return this.finish(),
                },
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match this.cap {
                Cap::Fail { max, why } => {
                    if let Some(data) = frame.data_ref() {
                        this.seen = this.seen.saturating_add(data.len() as u64);
                        if this.seen > max {
                            this.done = true;
                            return Poll::Ready(Some(Err(HttpError::new(
                                HttpErrorKind::Decode,
                                TooLarge(why),
                            ))));
                        }
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Cap::Cut { max } => {
                    // Trailers are dropped: only the data is read.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let room = max - this.held.len();
                    if data.len() > room {
                        this.held.extend_from_slice(&data[..room]);
                        trim_to_char(&mut this.held);
                        return this.finish();
                    }
                    this.held.extend_from_slice(&data);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            return SizeHint::with_exact(0);
        }
        // object_store sizes its buffer by the lower bound: a hostile
        // Content-Length is never allocated past the cap.
        let mut hint = SizeHint::new();
        match self.cap {
            Cap::Fail { max, .. } => {
                let room = max.saturating_sub(self.seen);
                let inner = self.inner.size_hint();
                hint.set_lower(inner.lower().min(room));
                hint.set_upper(inner.upper().unwrap_or(room).min(room).max(hint.lower()));
            }
            Cap::Cut { max } => hint.set_upper(max as u64),
        }
        hint
    }
}

/// lab-s3's reqwest client with every response body capped.
#[derive(Debug)]
pub(crate) struct CappedClient(pub(crate) reqwest::Client);

impl HttpService for CappedClient {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let method = req.method().as_str().to_owned();
            let query = req.uri().query().map(str::to_owned);
            let range = req
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let response = HttpService::call(&self.0, req).await?;
            let (parts, body) = response.into_parts();
            let content_length = parts
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let cap = cap_of(
                &method,
                query.as_deref(),
                range.as_deref(),
                parts.status.as_u16(),
                content_length,
            );
            Ok(HttpResponse::from_parts(
                parts,
                HttpResponseBody::new(Capped::new(body, cap)),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_response_gets_its_cap() {
        let list = Some("list-type=2&prefix=p%2F&max-keys=1000");
        assert_eq!(
            cap_of("GET", list, None, 200, Some(1 << 40)),
            Cap::Fail {
                max: MAX_LIST_PAGE,
                why: LIST_TOO_LARGE
            }
        );
        assert_eq!(
            cap_of("GET", list, None, 403, None),
            Cap::Cut {
                max: MAX_ERROR_BODY
            }
        );
        assert_eq!(
            cap_of("GET", None, Some("bytes=10-19"), 412, Some(1 << 30)),
            Cap::Cut {
                max: MAX_ERROR_BODY
            }
        );
        assert_eq!(
            cap_of("HEAD", None, None, 200, Some(5)),
            Cap::Cut { max: 0 }
        );
        assert_eq!(
            cap_of("GET", None, Some("bytes=10-19"), 206, Some(1 << 30)),
            Cap::Fail {
                max: 10 + RANGE_SLACK,
                why: RANGE_TOO_LARGE
            }
        );
        assert_eq!(
            cap_of("GET", None, Some("bytes=-7"), 206, None),
            Cap::Fail {
                max: 7 + RANGE_SLACK,
                why: RANGE_TOO_LARGE
            }
        );
        // An open range, or none: the Content-Length, else 16 MiB.
        assert_eq!(
            cap_of("GET", None, Some("bytes=10-"), 206, Some(90)),
            Cap::Fail {
                max: 90,
                why: LENGTH_TOO_LARGE
            }
        );
        assert_eq!(
            cap_of("GET", Some("list-type=20"), None, 200, None),
            Cap::Fail {
                max: MAX_OTHER,
                why: OTHER_TOO_LARGE
            }
        );
        for bad in ["bytes=9-1", "bytes=a-b", "items=1-2", "bytes=1"] {
            assert_eq!(range_len(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn bodies_fail_or_end_at_their_cap_and_hint_no_more() {
        let body =
            |cap| HttpResponseBody::new(Capped::new(Bytes::from(vec![b'x'; 100]).into(), cap));
        let failing = body(Cap::Fail {
            max: 10,
            why: LIST_TOO_LARGE,
        });
        // A hostile Content-Length is never what a reader sizes its buffer by.
        assert_eq!(failing.size_hint().lower(), 10);
        let err = failing.bytes().await.unwrap_err();
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), LIST_TOO_LARGE);
        let whole = body(Cap::Fail {
            max: 100,
            why: LIST_TOO_LARGE,
        });
        assert_eq!(whole.bytes().await.unwrap().len(), 100);
        let cut = body(Cap::Cut { max: 64 });
        assert_eq!(cut.size_hint().upper(), Some(64));
        assert_eq!(cut.bytes().await.unwrap().len(), 64);
        assert!(body(Cap::Cut { max: 0 }).bytes().await.unwrap().is_empty());
    }

    #[test]
    fn a_cut_body_ends_on_a_character() {
        let mut buf = BytesMut::from(&"ab\u{e9}".as_bytes()[..3]);
        trim_to_char(&mut buf);
        assert_eq!(&buf[..], b"ab");
        let mut buf = BytesMut::from("ab\u{e9}");
        trim_to_char(&mut buf);
        assert_eq!(&buf[..], "ab\u{e9}".as_bytes());
    }
}
