//! Preconditions, in the order of RFC 9110 §13.2.2.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::{Plan, Validators};

/// Returns the answer if a precondition decides it, `None` to go on.
pub(crate) fn preconditions(method: &Method, headers: &HeaderMap, v: &Validators) -> Option<Plan> {
    // Step 1: If-Match, else step 2: If-Unmodified-Since.
    if let Some(list) = joined(headers, &IF_MATCH) {
        if !tag_list_matches(&list, &v.etag, Compare::Strong) {
            return Some(Plan::PreconditionFailed);
        }
    } else if let Some(date) = date(headers, &IF_UNMODIFIED_SINCE)
        && v.last_modified > date
    {
        return Some(Plan::PreconditionFailed);
    }
    let safe = method == Method::GET || method == Method::HEAD;
    // Step 3: If-None-Match, else step 4: If-Modified-Since (GET/HEAD only).
    if headers.contains_key(IF_NONE_MATCH) {
        if if_none_match(headers, &v.etag) {
            return Some(if safe {
                Plan::NotModified
            } else {
                Plan::PreconditionFailed
            });
        }
    } else if safe
        && let Some(date) = date(headers, &IF_MODIFIED_SINCE)
        && v.last_modified <= date
    {
        return Some(Plan::NotModified);
    }
    None
}

/// §13.1.2: whether the `If-None-Match` of `headers` (every instance,
/// joined) matches `etag` (strong, quoted) by weak comparison: `*`, or a
/// listed tag with the same opaque-tag, `W/` or not. Absent: `false`.
pub(crate) fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    joined(headers, &IF_NONE_MATCH).is_some_and(|list| tag_list_matches(&list, etag, Compare::Weak))
}

/// §13.1.5: an entity-tag matches only by strong comparison (a weak tag never
/// does); a date must equal Last-Modified exactly.
pub(crate) fn if_range_matches(value: &HeaderValue, v: &Validators) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return matches!(
            parse_tag(value),
            Some((tag, rest)) if rest.trim().is_empty() && tag.matches(&v.etag, Compare::Strong)
        );
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == v.last_modified)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    Strong,
    Weak,
}

struct Tag<'a> {
    weak: bool,
    /// The opaque-tag with its quotes.
    opaque: &'a str,
}

impl Tag<'_> {
    fn matches(&self, current: &str, compare: Compare) -> bool {
        // Our own tags are always strong.
        (compare == Compare::Weak || !self.weak) && self.opaque == current
    }
}

/// Every instance of a list header joined with `, ` (RFC 9110 §5.3), or
/// `None` when absent. A value that is not visible ASCII yields an empty
/// list, which matches nothing.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let parts: Vec<&str> = values.map(|v| v.to_str().unwrap_or("")).collect();
    Some(parts.join(", "))
}

fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).iter();
    // A repeated or unparsable date is ignored (§13.1.3, §13.1.4).
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let date = httpdate::parse_http_date(value.to_str().ok()?).ok()?;
    (date >= UNIX_EPOCH).then_some(date)
}

/// `*` or a comma list of entity-tags; a malformed list matches nothing.
fn tag_list_matches(list: &str, current: &str, compare: Compare) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let Some((tag, after)) = parse_tag(rest) else {
            return false;
        };
        if tag.matches(current, compare) {
            return true;
        }
        let after = after.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return false;
        }
        rest = after;
    }
}

/// `[W/]"etagc*"` at the start of `s`; returns the tag and what follows.
fn parse_tag(s: &str) -> Option<(Tag<'_>, &str)> {
    let (weak, s) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let inner = s.strip_prefix('"')?;
    let end = inner.find('"')?;
    let body = &inner[..end];
    // etagc = %x21 / %x23-7E / obs-text
    if !body
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
    {
        return None;
    }
    Some((
        Tag {
            weak,
            opaque: &s[..end + 2],
        },
        &inner[end + 1..],
    ))
}
