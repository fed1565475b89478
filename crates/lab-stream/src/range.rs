//! `Range: bytes=…` parsing and the multi-range policy (RFC 9110 §14.1–14.2).

/// Longest `Range` header value looked at; a longer one is ignored.
pub const MAX_RANGE_HEADER_LEN: usize = 1024;
/// Most range-specs accepted in one header before merging; more are ignored
/// (Apache's CVE-2011-3192 is why this exists).
pub const MAX_RANGE_SPECS: usize = 64;
/// Most parts sent as `multipart/byteranges` after merging; more and the
/// whole file is sent with 200.
pub const MAX_PARTS: usize = 16;
/// Framing charged per part when deciding whether multipart outweighs the
/// file (nginx's rule).
pub const PART_OVERHEAD: u64 = 256;

/// A satisfiable byte range `first..=last`, always inside `[0, len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteRange {
    /// First byte position.
    pub first: u64,
    /// Last byte position, inclusive.
    pub last: u64,
}

impl ByteRange {
    /// Number of bytes in the range (never zero).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// A range is never empty; provided for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `Content-Range` value: `bytes FIRST-LAST/LEN` (RFC 9110 §14.4).
    pub fn content_range(&self, complete_len: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, complete_len)
    }
}

/// What a `Range` header asks of a representation of a given length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Not a byte range request we act on: send the whole representation.
    Ignore,
    /// Well formed, but no range overlaps the representation (416).
    Unsatisfiable,
    /// Sorted, merged, non-overlapping, non-adjacent ranges inside `[0, len)`.
    Satisfiable(Vec<ByteRange>),
}

/// Parses a `Range` header value against a representation of `len` bytes.
///
/// The unit is case-insensitive; OWS and empty list elements are allowed;
/// numbers saturate instead of failing; any malformed element makes the whole
/// header ignored (RFC 9110 §14.2 allows ignoring, as Apache does). A
/// zero-length representation never yields a range.
pub fn parse(header: &str, len: u64) -> RangeRequest {
    if header.len() > MAX_RANGE_HEADER_LEN {
        return RangeRequest::Ignore;
    }
    let Some((unit, set)) = header.split_once('=') else {
        return RangeRequest::Ignore;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let mut specs = Vec::new();
    for element in set.split(',') {
        let element = element.trim_matches([' ', '\t']);
        if element.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGE_SPECS {
            return RangeRequest::Ignore;
        }
        match parse_spec(element) {
            Some(spec) => specs.push(spec),
            None => return RangeRequest::Ignore,
        }
    }
    if specs.is_empty() {
        // `bytes=` or `bytes=,,`: the range-set needs one element (§14.1.1).
        return RangeRequest::Ignore;
    }
    if len == 0 {
        // Never a 206 or 416 for an empty representation.
        return RangeRequest::Ignore;
    }
    let mut ranges: Vec<ByteRange> = specs.into_iter().filter_map(|s| s.resolve(len)).collect();
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    ranges.sort_unstable();
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            // Overlapping or adjacent: extend.
            Some(prev) if range.first <= prev.last.saturating_add(1) => {
                prev.last = prev.last.max(range.last);
            }
            _ => merged.push(range),
        }
    }
    RangeRequest::Satisfiable(merged)
}

/// One range-spec before it meets a length (§14.1.1).
#[derive(Clone, Copy, Debug)]
enum Spec {
    /// `first-` or `first-last`.
    Int { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

impl Spec {
    fn resolve(self, len: u64) -> Option<ByteRange> {
        match self {
            Spec::Int { first, last } => {
                if first >= len {
                    return None;
                }
                let last = last.unwrap_or(u64::MAX).min(len - 1);
                Some(ByteRange { first, last })
            }
            // `-0` is unsatisfiable; a suffix longer than the file is all of it.
            Spec::Suffix(0) => None,
            Spec::Suffix(n) => Some(ByteRange {
                first: len.saturating_sub(n),
                last: len - 1,
            }),
        }
    }
}

fn parse_spec(element: &str) -> Option<Spec> {
    let (first, last) = element.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(parse_number(last)?));
    }
    let first = parse_number(first)?;
    if last.is_empty() {
        return Some(Spec::Int { first, last: None });
    }
    let last = parse_number(last)?;
    // §14.1.1: a range-spec whose last is below its first is invalid.
    if last < first {
        return None;
    }
    Some(Spec::Int {
        first,
        last: Some(last),
    })
}

/// `1*DIGIT`, saturating at `u64::MAX` (leading zeros are fine).
fn parse_number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Whether a set of merged ranges should be sent as multipart, given the
/// representation length: not more than [`MAX_PARTS`], and not when the parts
/// plus framing would outweigh the whole file.
pub fn multipart_is_worth_it(ranges: &[ByteRange], len: u64) -> bool {
    if ranges.len() > MAX_PARTS {
        return false;
    }
    let payload: u64 = ranges.iter().map(ByteRange::len).sum();
    let framing = PART_OVERHEAD * ranges.len() as u64;
    payload.saturating_add(framing) <= len
}
