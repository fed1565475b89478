//! Range and conditional-request vectors, each citing where the behaviour
//! comes from. `check` is the only caller of `evaluate`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, UNIX_EPOCH};

use http::header::IF_NONE_MATCH;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use lab_stream::range::{self, MAX_PARTS};
use lab_stream::{ByteRange, Plan, RangeRequest, Validators, evaluate, if_none_match};
use proptest::prelude::*;

const LEN: u64 = 10_000;
/// 2026-01-01T00:00:00Z, with sub-second nanos to show they are dropped.
fn validators(len: u64) -> Validators {
    Validators::new(
        len,
        UNIX_EPOCH + Duration::new(1_767_225_600, 123_456_789),
        42,
    )
}
const LM: &str = "Thu, 01 Jan 2026 00:00:00 GMT";
const BEFORE: &str = "Wed, 31 Dec 2025 23:59:59 GMT";
const AFTER: &str = "Thu, 01 Jan 2026 00:00:01 GMT";

fn r(first: u64, last: u64) -> ByteRange {
    ByteRange { first, last }
}

fn check(method: Method, len: u64, headers: &[(&str, &str)], expected: Plan) {
    let v = validators(len);
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let value = value.replace("{etag}", &v.etag).replace("{lm}", LM);
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    let got = evaluate(&method, &map, &v);
    assert_eq!(got, expected, "{method} len={len} {headers:?}");
}

use Plan::*;

#[test]
fn single_ranges() {
    let cases: &[(&str, Plan)] = &[
        // RFC 9110 §14.1.2 examples.
        ("bytes=0-499", Single(r(0, 499))),
        ("bytes=500-999", Single(r(500, 999))),
        ("bytes=-500", Single(r(9_500, 9_999))),
        ("bytes=9500-", Single(r(9_500, 9_999))),
        ("bytes=0-0", Single(r(0, 0))),
        ("bytes=-1", Single(r(9_999, 9_999))),
        // §14.1.1: the unit is case-insensitive.
        ("Bytes=0-9", Single(r(0, 9))),
        ("BYTES=0-9", Single(r(0, 9))),
        // §5.6.1: OWS and empty list elements are allowed.
        ("bytes=0-9,", Single(r(0, 9))),
        ("bytes=,0-9", Single(r(0, 9))),
        ("bytes= 0-9 ,\t", Single(r(0, 9))),
        // Leading zeros are digits; huge numbers saturate to "to the end".
        ("bytes=0009-0010", Single(r(9, 10))),
        ("bytes=0-99999999999999999999", Single(r(0, 9_999))),
        (
            "bytes=9000-99999999999999999999999999999",
            Single(r(9_000, 9_999)),
        ),
        // §14.1.2: last clamped to the length; suffix longer than the file is all of it.
        ("bytes=9990-20000", Single(r(9_990, 9_999))),
        ("bytes=-20000", Single(r(0, 9_999))),
        ("bytes=-99999999999999999999999", Single(r(0, 9_999))),
        // Overlapping and adjacent ranges merge into one (§14.2 allows it).
        ("bytes=0-9,5-20", Single(r(0, 20))),
        ("bytes=0-9,10-19", Single(r(0, 19))),
        ("bytes=0-,0-,0-", Single(r(0, 9_999))),
        ("bytes=0-9,0-9,0-9", Single(r(0, 9))),
        // Unsatisfiable elements are dropped when another is satisfiable.
        ("bytes=20000-,0-9", Single(r(0, 9))),
    ];
    for (range, plan) in cases {
        check(Method::GET, LEN, &[("range", range)], plan.clone());
    }
}

#[test]
fn unsatisfiable_and_ignored_ranges() {
    let cases: &[(&str, Plan)] = &[
        // §14.1.2 / §15.5.17: no range overlaps the representation.
        ("bytes=10000-", Unsatisfiable),
        ("bytes=10000-10005", Unsatisfiable),
        ("bytes=-0", Unsatisfiable),
        ("bytes=20000-,30000-", Unsatisfiable),
        // §14.2: an unknown unit is ignored (a MUST).
        ("items=0-9", Full),
        ("bytes 0-9", Full),
        ("none", Full),
        // Syntactically invalid sets are ignored (200), as Apache does.
        ("bytes=", Full),
        ("bytes=,", Full),
        ("bytes=9-0", Full),
        ("bytes=a-b", Full),
        ("bytes=0-9,x", Full),
        ("bytes=--5", Full),
        ("bytes=1-2-3", Full),
        ("bytes=+1-2", Full),
        ("bytes=0x10-20", Full),
        ("bytes=-", Full),
        (" bytes=0-9", Full),
    ];
    for (range, plan) in cases {
        check(Method::GET, LEN, &[("range", range)], plan.clone());
    }
}

#[test]
fn multiple_ranges_follow_the_multipart_policy() {
    check(
        Method::GET,
        LEN,
        &[("range", "bytes=0-9,100-109")],
        Multi(vec![r(0, 9), r(100, 109)]),
    );
    check(
        Method::GET,
        LEN,
        &[("range", "bytes=100-109,0-9,5-12")],
        Multi(vec![r(0, 12), r(100, 109)]),
    );
    // Parts plus framing outweighing the file: the whole file (nginx's rule).
    check(
        Method::GET,
        LEN,
        &[("range", "bytes=0-4999,5001-9999")],
        Full,
    );
    // More than MAX_PARTS after merging: the whole file.
    let many: Vec<String> = (0..=MAX_PARTS as u64)
        .map(|i| format!("{}-{}", i * 100, i * 100))
        .collect();
    check(
        Method::GET,
        LEN,
        &[("range", &format!("bytes={}", many.join(",")))],
        Full,
    );
    let cap: Vec<String> = (0..MAX_PARTS as u64)
        .map(|i| format!("{}-{}", i * 100, i * 100))
        .collect();
    let Plan::Multi(parts) = evaluate(
        &Method::GET,
        &[(
            http::header::RANGE,
            HeaderValue::from_str(&format!("bytes={}", cap.join(","))).unwrap(),
        )]
        .into_iter()
        .collect(),
        &validators(LEN),
    ) else {
        panic!("16 small parts are worth a multipart");
    };
    assert_eq!(parts.len(), MAX_PARTS);
    // Too many raw specs: ignored outright.
    let flood = format!(
        "bytes={}",
        vec!["0-0"; range::MAX_RANGE_SPECS + 1].join(",")
    );
    check(Method::GET, LEN, &[("range", &flood)], Full);
    // A header longer than the cap is ignored.
    let long = format!("bytes=0-{}", "0".repeat(range::MAX_RANGE_HEADER_LEN));
    check(Method::GET, LEN, &[("range", &long)], Full);
    // Two Range header lines: ignored.
    check(
        Method::GET,
        LEN,
        &[("range", "bytes=0-1"), ("range", "bytes=2-3")],
        Full,
    );
}

#[test]
fn empty_files_and_heads_never_get_a_range() {
    // A zero-length representation: ignore Range, 200.
    for range in ["bytes=0-", "bytes=-5", "bytes=0-0", "bytes=-0"] {
        check(Method::GET, 0, &[("range", range)], Full);
    }
    // §14.2: Range is defined only for GET.
    check(Method::HEAD, LEN, &[("range", "bytes=0-9")], Full);
    check(Method::HEAD, LEN, &[("range", "bytes=20000-")], Full);
}

#[test]
fn preconditions_in_rfc_order() {
    let cases: &[(&[(&str, &str)], Plan)] = &[
        // §13.1.1 If-Match: strong comparison.
        (&[("if-match", "{etag}")], Full),
        (&[("if-match", "*")], Full),
        (&[("if-match", "\"nope\", {etag}")], Full),
        (&[("if-match", "\"nope\"")], PreconditionFailed),
        (&[("if-match", "W/{etag}")], PreconditionFailed),
        (&[("if-match", "garbage")], PreconditionFailed),
        // §13.1.4 If-Unmodified-Since, only without If-Match.
        (&[("if-unmodified-since", LM)], Full),
        (&[("if-unmodified-since", AFTER)], Full),
        (&[("if-unmodified-since", BEFORE)], PreconditionFailed),
        (
            &[("if-match", "{etag}"), ("if-unmodified-since", BEFORE)],
            Full,
        ),
        (&[("if-unmodified-since", "not a date")], Full),
        // §13.1.2 If-None-Match: weak comparison, 304 for GET/HEAD.
        (&[("if-none-match", "{etag}")], NotModified),
        (&[("if-none-match", "W/{etag}")], NotModified),
        (&[("if-none-match", "*")], NotModified),
        (&[("if-none-match", "\"a\", \"b\"")], Full),
        (
            &[("if-none-match", "\"a\""), ("if-none-match", "{etag}")],
            NotModified,
        ),
        // §13.1.3 If-Modified-Since, only without If-None-Match.
        (&[("if-modified-since", LM)], NotModified),
        (&[("if-modified-since", AFTER)], NotModified),
        (&[("if-modified-since", BEFORE)], Full),
        (
            &[("if-none-match", "\"other\""), ("if-modified-since", AFTER)],
            Full,
        ),
        (&[("if-modified-since", "yesterday")], Full),
        // §13.2.2: preconditions before Range, so a 304 beats a 416.
        (
            &[("if-none-match", "{etag}"), ("range", "bytes=20000-")],
            NotModified,
        ),
        (
            &[("if-match", "\"x\""), ("range", "bytes=0-9")],
            PreconditionFailed,
        ),
        (
            &[("if-match", "{etag}"), ("range", "bytes=0-9")],
            Single(r(0, 9)),
        ),
        // §13.1.5 If-Range: strong etag match, or a date equal to Last-Modified.
        (
            &[("if-range", "{etag}"), ("range", "bytes=0-9")],
            Single(r(0, 9)),
        ),
        (&[("if-range", "\"stale\""), ("range", "bytes=0-9")], Full),
        (&[("if-range", "W/{etag}"), ("range", "bytes=0-9")], Full),
        (&[("if-range", LM), ("range", "bytes=0-9")], Single(r(0, 9))),
        (&[("if-range", AFTER), ("range", "bytes=0-9")], Full),
        (&[("if-range", "junk"), ("range", "bytes=0-9")], Full),
        // If-Range mismatch wins over an unsatisfiable range: 200, not 416.
        (
            &[("if-range", "\"stale\""), ("range", "bytes=20000-")],
            Full,
        ),
        // If-Range without Range is ignored.
        (&[("if-range", "\"stale\"")], Full),
    ];
    for (headers, plan) in cases {
        check(Method::GET, LEN, headers, plan.clone());
    }
    // §13.1.2: a matching If-None-Match on an unsafe method is a 412.
    check(
        Method::POST,
        LEN,
        &[("if-none-match", "*")],
        PreconditionFailed,
    );
    // §13.1.3: If-Modified-Since is only for GET and HEAD.
    check(Method::POST, LEN, &[("if-modified-since", AFTER)], Full);
    check(
        Method::HEAD,
        LEN,
        &[("if-modified-since", AFTER)],
        NotModified,
    );
}

/// `If-None-Match` instances (each `{etag}` replaced by the tag) against
/// the tag, alone: what a response with a tag but no file asks.
fn check_if_none_match(values: &[&str], expected: bool) {
    let etag = "\"m-3-1-2\"";
    let mut map = HeaderMap::new();
    for value in values {
        map.append(
            IF_NONE_MATCH,
            HeaderValue::from_str(&value.replace("{etag}", etag)).unwrap(),
        );
    }
    assert_eq!(if_none_match(&map, etag), expected, "{values:?}");
}

#[test]
fn if_none_match_compares_weakly() {
    let cases: &[(&[&str], bool)] = &[
        // §13.1.2: weak comparison, so the tag matches with or without W/.
        (&["{etag}"], true),
        (&["W/{etag}"], true),
        (&["*"], true),
        (&[" * "], true),
        (&["\"a\", W/{etag}"], true),
        (&["\"a\",W/{etag} , \"b\""], true),
        (&["\"a\"", "W/{etag}"], true),
        (&[], false),
        (&[""], false),
        (&["\"a\", \"b\""], false),
        (&["W/\"m-3-1\""], false),
        (&["m-3-1-2"], false),
        (&["w/{etag}"], false),
        (&["\"m-3-1-2"], false),
        (&["*, {etag}"], false),
        // A malformed list matches nothing past the malformation.
        (&["garbage, {etag}"], false),
        (&["{etag} garbage"], true),
    ];
    for (values, expected) in cases {
        check_if_none_match(values, *expected);
    }
}

#[test]
fn validators_are_strong_and_change_with_the_file() {
    let a = validators(LEN);
    assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && !a.etag.starts_with("W/"));
    assert_eq!(a.last_modified_header(), LM);
    let b = Validators::new(
        LEN,
        UNIX_EPOCH + Duration::new(1_767_225_600, 123_456_790),
        42,
    );
    assert_ne!(a.etag, b.etag, "a nanosecond change must change the tag");
    assert_ne!(a.etag, Validators::new(LEN + 1, UNIX_EPOCH, 42).etag);
    assert_ne!(a.etag, validators(LEN - 1).etag);
}

proptest! {
    /// For every header and length, the range parser returns "ignore",
    /// "unsatisfiable" or sorted, disjoint, non-adjacent ranges inside
    /// `[0, len)` whose total never exceeds the length; never a panic.
    #[test]
    fn parsed_ranges_stay_inside_the_file(header in "(?i:bytes)?=?[0-9,\\- \t]{0,40}", len in 0u64..100_000) {
        match range::parse(&header, len) {
            RangeRequest::Ignore => {}
            RangeRequest::Unsatisfiable => prop_assert!(len > 0),
            RangeRequest::Satisfiable(ranges) => {
                prop_assert!(!ranges.is_empty());
                let mut total = 0u64;
                for (i, range) in ranges.iter().enumerate() {
                    prop_assert!(range.first <= range.last && range.last < len);
                    if i > 0 {
                        prop_assert!(ranges[i - 1].last + 1 < range.first);
                    }
                    total += range.len();
                }
                prop_assert!(total <= len);
            }
        }
    }

    /// Whatever the Range, a plan never promises more bytes than the file
    /// has, and a satisfiable set is never answered with 416.
    #[test]
    fn plans_never_exceed_the_file(specs in proptest::collection::vec((0u64..20_000, 0u64..20_000, 0u8..3), 1..40), len in 0u64..20_000) {
        let header = format!("bytes={}", specs.iter().map(|(a, b, kind)| match kind {
            0 => format!("{}-{}", a.min(b), a.max(b)),
            1 => format!("{a}-"),
            _ => format!("-{b}"),
        }).collect::<Vec<_>>().join(","));
        let v = validators(len);
        let map: HeaderMap = [(http::header::RANGE, HeaderValue::from_str(&header).unwrap())].into_iter().collect();
        let any_satisfiable = len > 0 && specs.iter().any(|(a, b, kind)| match kind {
            0 => *a.min(b) < len,
            1 => *a < len,
            _ => *b > 0,
        });
        match evaluate(&Method::GET, &map, &v) {
            Plan::Single(r) => prop_assert!(r.last < len),
            Plan::Multi(parts) => {
                prop_assert!(parts.len() <= MAX_PARTS);
                let total: u64 = parts.iter().map(ByteRange::len).sum();
                prop_assert!(total + range::PART_OVERHEAD * parts.len() as u64 <= len);
            }
            Plan::Unsatisfiable => prop_assert!(!any_satisfiable, "{header}"),
            Plan::Full => prop_assert!(len == 0 || specs.len() > range::MAX_RANGE_SPECS || header.len() > range::MAX_RANGE_HEADER_LEN || any_satisfiable),
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// Arbitrary header bytes never panic the evaluator.
    #[test]
    fn arbitrary_headers_never_panic(range in "\\PC{0,64}", inm in "\\PC{0,32}", ir in "\\PC{0,32}", len in 0u64..1000) {
        let mut map = HeaderMap::new();
        for (name, value) in [("range", &range), ("if-none-match", &inm), ("if-range", &ir), ("if-match", &inm)] {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(HeaderName::from_static(name), value);
            }
        }
        match evaluate(&Method::GET, &map, &validators(len)) {
            Plan::Single(r) => prop_assert!(r.last < len),
            Plan::Multi(parts) => prop_assert!(parts.iter().all(|r| r.last < len)),
            Plan::Unsatisfiable => prop_assert!(len > 0),
            _ => {}
        }
    }
}

/// The fuzz target's oracle (`lab_stream::fuzz::check_range`) on every
/// committed seed and finding, and on generated headers.
#[test]
fn committed_range_inputs_hold() {
    let parsed: Vec<_> =
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "range")
            .iter()
            .map(|(_, bytes)| lab_stream::fuzz::check_range(bytes))
            .collect();
    assert!(
        parsed
            .iter()
            .any(|p| matches!(p, lab_stream::RangeRequest::Satisfiable(_))),
        "{parsed:?}"
    );
}

proptest::proptest! {
    #[test]
    fn the_range_oracle_holds_for_generated_headers(
        len in proptest::prelude::any::<u64>(),
        header in "(bytes|items)=(-?[0-9]{0,6}-?[0-9]{0,6},?){0,5}",
    ) {
        let mut data = len.to_le_bytes().to_vec();
        data.extend_from_slice(header.as_bytes());
        lab_stream::fuzz::check_range(&data);
    }
}
