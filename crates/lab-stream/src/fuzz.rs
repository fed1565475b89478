//! The Range oracle, for the fuzz target (`crates/lab-stream/fuzz`,
//! `range`) and the property tests. Not an API.

use http::{HeaderMap, HeaderValue, Method, header::RANGE};

use crate::{Plan, RangeRequest, Validators, evaluate, range};

/// A file length (the first 8 bytes, little-endian, below 2^40) and a
/// Range header (the rest, as UTF-8 lossily): the parser returns "ignore",
/// "unsatisfiable" (only for a non-empty file), or sorted, disjoint,
/// non-adjacent ranges inside `[0, len)`; and `evaluate` never plans more
/// bytes than the file has, nor more parts than [`range::MAX_PARTS`].
/// Panics when the oracle fails; returns what the parser said.
pub fn check_range(data: &[u8]) -> RangeRequest {
    let mut len = [0u8; 8];
    let split = data.len().min(8);
    len[..split].copy_from_slice(&data[..split]);
    let len = u64::from_le_bytes(len) % (1 << 40);
    let header = String::from_utf8_lossy(&data[split..]);
    let parsed = range::parse(&header, len);
    match &parsed {
        RangeRequest::Ignore => {}
        RangeRequest::Unsatisfiable => assert!(len > 0, "unsatisfiable for an empty file"),
        RangeRequest::Satisfiable(ranges) => {
            assert!(!ranges.is_empty());
            for (i, r) in ranges.iter().enumerate() {
                assert!(r.first <= r.last && r.last < len, "{r:?} outside {len}");
                if i > 0 {
                    assert!(ranges[i - 1].last + 1 < r.first, "ranges touch or overlap");
                }
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(&header) {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, value);
        let v = Validators::new(len, std::time::UNIX_EPOCH, 1);
        match evaluate(&Method::GET, &headers, &v) {
            Plan::Single(r) => assert!(r.last < len),
            Plan::Multi(parts) => {
                let total: u64 = parts.iter().map(|r| r.len()).sum();
                assert!(parts.len() <= range::MAX_PARTS && total <= len);
            }
            _ => {}
        }
    }
    parsed
}
