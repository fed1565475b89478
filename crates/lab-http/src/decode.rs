//! Percent-decoding, exactly once.

/// Decodes `%XX` escapes once. `+` is kept as is (paths) unless
/// `plus_as_space` (query strings). A malformed escape or a result that is
/// not UTF-8 is an error, never repaired. A decoded `%` is an ordinary
/// character: `%252e` becomes `%2e`, not `.`.
pub fn percent_decode(input: &str, plus_as_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` pairs of a query string.
pub fn query_pairs(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(key, true)?, percent_decode(value, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exactly_once() {
        let table: &[(&str, Option<&str>)] = &[
            ("a.mp4", Some("a.mp4")),
            ("%2e%2e", Some("..")),
            ("%252e%252e", Some("%2e%2e")),
            ("videos%2Fa.mp4", Some("videos/a.mp4")),
            ("a+b", Some("a+b")),
            ("%", None),
            ("%2", None),
            ("%zz", None),
            ("%ff", None),
            ("%c3%a9", Some("é")),
            ("%00", Some("\0")),
        ];
        for (input, expected) in table {
            assert_eq!(
                percent_decode(input, false).as_deref(),
                *expected,
                "{input}"
            );
        }
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
    }
}
