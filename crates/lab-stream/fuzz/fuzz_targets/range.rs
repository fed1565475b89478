//! Oracle: for any Range header and length, the parser returns "ignore",
//! "unsatisfiable" (only for a non-empty file), or sorted, disjoint,
//! non-adjacent ranges inside [0, len); and `evaluate` never plans more bytes
//! than the file has.
#![no_main]

use http::{HeaderMap, HeaderValue, Method, header::RANGE};
use lab_stream::{Plan, RangeRequest, Validators, evaluate, range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, &str)| {
    let (len, header) = input;
    let len = len % (1 << 40);
    match range::parse(header, len) {
        RangeRequest::Ignore => {}
        RangeRequest::Unsatisfiable => assert!(len > 0),
        RangeRequest::Satisfiable(ranges) => {
            assert!(!ranges.is_empty());
            for (i, r) in ranges.iter().enumerate() {
                assert!(r.first <= r.last && r.last < len);
                if i > 0 {
                    assert!(ranges[i - 1].last + 1 < r.first);
                }
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(header) {
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
});
