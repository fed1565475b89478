//! lab-stream decides how to answer a GET or HEAD for a file, and streams it.
//!
//! [`evaluate`] is pure: given the method, the request headers and the
//! file's [`Validators`], it returns a [`Plan`] following RFC 9110 §13.2.2
//! (preconditions in order: If-Match, If-Unmodified-Since, If-None-Match,
//! If-Modified-Since, then If-Range) and §14 (Range). It does no I/O.
//!
//! [`FileBody`] is the one piece that touches a file: it reads from a handle
//! it is given (it never opens anything) with large positioned reads on the
//! blocking pool, one read ahead, so memory per stream is a fixed number of
//! chunks whatever the file size and however slow the client.
//!
//! ```
//! use http::{HeaderMap, Method, header::RANGE};
//! use lab_stream::{evaluate, ByteRange, Plan, Validators};
//!
//! let v = Validators::new(10_000, std::time::UNIX_EPOCH, 7);
//! let mut h = HeaderMap::new();
//! h.insert(RANGE, "bytes=-500".parse().unwrap());
//! assert_eq!(evaluate(&Method::GET, &h, &v), Plan::Single(ByteRange { first: 9_500, last: 9_999 }));
//! ```
#![forbid(unsafe_code)]

mod body;
mod conditional;
#[doc(hidden)]
pub mod fuzz;
pub mod range;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_RANGE, RANGE};
use http::{HeaderMap, Method};

pub use body::{CHUNK_SIZE, FileBody, Segment, multipart_segments};
pub use range::{ByteRange, RangeRequest};

/// The validators of one representation (RFC 9110 §8.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// Length in bytes.
    pub len: u64,
    /// Strong entity tag, quoted: from length, nanosecond mtime and inode.
    pub etag: String,
    /// Modification time truncated to whole seconds, as HTTP dates carry.
    pub last_modified: SystemTime,
}

impl Validators {
    /// Validators for a file of `len` bytes modified at `modified`.
    pub fn new(len: u64, modified: SystemTime, inode: u64) -> Self {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let etag = format!(
            "\"{:x}-{:x}.{:x}-{:x}\"",
            len,
            since_epoch.as_secs(),
            since_epoch.subsec_nanos(),
            inode
        );
        let last_modified = UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
        Self {
            len,
            etag,
            last_modified,
        }
    }

    /// `Last-Modified` header value (IMF-fixdate).
    pub fn last_modified_header(&self) -> String {
        httpdate::fmt_http_date(self.last_modified)
    }
}

/// How to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 200 with the whole representation (headers only for HEAD).
    Full,
    /// 206 with one range.
    Single(ByteRange),
    /// 206 `multipart/byteranges` with these (merged, at most
    /// [`range::MAX_PARTS`]) ranges.
    Multi(Vec<ByteRange>),
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

/// Decides the answer to a GET or HEAD. Other methods get [`Plan::Full`]
/// (the caller refuses them before asking).
pub fn evaluate(method: &Method, headers: &HeaderMap, v: &Validators) -> Plan {
    if let Some(plan) = conditional::preconditions(method, headers, v) {
        return plan;
    }
    // §14.2: Range is defined only for GET; a HEAD ignores it.
    if method != Method::GET {
        return Plan::Full;
    }
    let mut ranges = headers.get_all(RANGE).iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return Plan::Full;
    };
    let Ok(range) = range.to_str() else {
        return Plan::Full;
    };
    // §13.1.5: If-Range applies only together with Range.
    if let Some(if_range) = headers.get(IF_RANGE)
        && !conditional::if_range_matches(if_range, v)
    {
        return Plan::Full;
    }
    match range::parse(range, v.len) {
        RangeRequest::Ignore => Plan::Full,
        RangeRequest::Unsatisfiable => Plan::Unsatisfiable,
        RangeRequest::Satisfiable(ranges) => match ranges.as_slice() {
            [one] => Plan::Single(*one),
            many if range::multipart_is_worth_it(many, v.len) => Plan::Multi(ranges),
            _ => Plan::Full,
        },
    }
}

/// Whether a representation whose entity-tag is `etag` (strong, quoted)
/// matches the request's `If-None-Match`, by the weak comparison RFC 9110
/// §13.1.2 prescribes: `*`, or any listed tag with the same opaque-tag,
/// `W/` or not. Every instance of the header counts; a malformed list
/// matches nothing, and no header, `false`. For a response that is not a
/// file (so has no [`Validators`]) but has a tag of its own: a match is a
/// 304 for GET and HEAD.
///
/// ```
/// use http::{HeaderMap, header::IF_NONE_MATCH};
///
/// let mut h = HeaderMap::new();
/// h.insert(IF_NONE_MATCH, r#""a", W/"m-1""#.parse().unwrap());
/// assert!(lab_stream::if_none_match(&h, "\"m-1\""));
/// assert!(!lab_stream::if_none_match(&h, "\"m-2\""));
/// ```
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    conditional::if_none_match(headers, etag)
}

/// `Content-Range` for a 416 (RFC 9110 §15.5.17).
pub fn unsatisfied_content_range(len: u64) -> String {
    format!("bytes */{len}")
}
