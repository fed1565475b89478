//! Small text helpers shared by the readers.

use crate::MAX_VALUE_LEN;

/// `s`, cut to at most [`MAX_VALUE_LEN`] bytes at a character boundary.
pub(crate) fn cap(s: &str) -> String {
    if s.len() <= MAX_VALUE_LEN {
        return s.to_owned();
    }
    let mut end = MAX_VALUE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (the same text
/// lab-fs's bundles write; a test holds the two equal).
pub(crate) fn iso8601_utc(secs: u64) -> String {
    // Howard Hinnant's `civil_from_days`.
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).max(0);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Seconds since the Unix epoch for an ISO 8601 date and time as Python
/// writes them (`2026-12-07T11:25:33.343004`, with `Z` or `+HH:MM` or no
/// offset, which is taken as UTC; a space for the `T`): `None` for
/// anything else or a year outside 1970..=9999.
pub(crate) fn iso8601_secs(text: &str) -> Option<f64> {
    let text = text.trim();
    let b = text.as_bytes();
    if b.len() < 19 || !b[..19].is_ascii() || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let int = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = (&text[..10], &text[11..19]);
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    if time.as_bytes()[2] != b':' || time.as_bytes()[5] != b':' {
        return None;
    }
    let (year, month, day) = (int(&date[..4])?, int(&date[5..7])?, int(&date[8..10])?);
    let (hour, minute, second) = (int(&time[..2])?, int(&time[3..5])?, int(&time[6..8])?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(digits) = rest.strip_prefix('.') {
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if end == 0 {
            return None;
        }
        fraction = format!("0.{}", &digits[..end.min(9)]).parse().ok()?;
        rest = &digits[end..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = &rest[1..];
            if !hm.is_ascii() {
                return None;
            }
            let (h, m) = match hm.len() {
                5 if hm.as_bytes()[2] == b':' => (int(&hm[..2])?, int(&hm[3..])?),
                4 => (int(&hm[..2])?, int(&hm[2..])?),
                2 => (int(hm)?, 0),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    // Howard Hinnant's `days_from_civil`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

/// The cells of one CSV line split at `sep`, with RFC 4180 quoting within
/// the line (what Python's `csv` writes: a cell holding the separator or a
/// quote is quoted, a quote in it doubled).
pub(crate) fn csv_fields(line: &str, sep: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (c, false) if c == sep => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// What [`python_json`] turns Python's bare `NaN`, `Infinity` and
/// `-Infinity` into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bare {
    /// `null` (a reader that takes null for NaN).
    Null,
    /// The word as a string (`"NaN"`, `"Infinity"`, `"-Infinity"`), for a
    /// reader that reads it back as the number.
    Quoted,
}

/// Python's `json.dumps` writes NaN and ±Infinity bare (invalid JSON):
/// outside strings, each becomes what `bare` says; strings (and so keys)
/// are never touched, escapes included. Borrowed when there was nothing
/// to turn.
pub(crate) fn python_json(bytes: &[u8], bare: Bare) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if b == b'\\' {
                if let Some(out) = &mut out {
                    out.extend_from_slice(&bytes[i..(i + 2).min(bytes.len())]);
                }
                i += 2;
                continue;
            }
            if let Some(out) = &mut out {
                out.push(b);
            }
            in_string = b != b'"';
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let word = [&b"NaN"[..], b"-Infinity", b"Infinity"]
            .into_iter()
            .find(|w| rest.starts_with(w));
        if let Some(word) = word {
            let out = out.get_or_insert_with(|| {
                let mut out = Vec::with_capacity(bytes.len() + 64);
                out.extend_from_slice(&bytes[..i]);
                out
            });
            match bare {
                Bare::Null => out.extend_from_slice(b"null"),
                Bare::Quoted => {
                    out.push(b'"');
                    out.extend_from_slice(word);
                    out.push(b'"');
                }
            }
            i += word.len();
            continue;
        }
        in_string = b == b'"';
        if let Some(out) = &mut out {
            out.push(b);
        }
        i += 1;
    }
    match out {
        Some(out) => std::borrow::Cow::Owned(out),
        None => std::borrow::Cow::Borrowed(bytes),
    }
}

/// Parses Python's JSON: plain JSON, else (when it fails) with bare
/// `NaN`, `Infinity` and `-Infinity` outside strings read as null. The
/// first error when there were none to turn.
pub(crate) fn from_python_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes).or_else(|first| match python_json(bytes, Bare::Null) {
        std::borrow::Cow::Borrowed(_) => Err(first),
        std::borrow::Cow::Owned(fixed) => serde_json::from_slice(&fixed),
    })
}

/// A number as written in a CSV cell or JSON-ish text: `nan`, `inf` and
/// `-inf` (any case) are accepted; an empty cell is `None`.
pub(crate) fn number(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if cell.is_empty() {
        return None;
    }
    cell.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readers' dates are the bundles' dates, to the second.
    #[test]
    fn dates_are_written_as_lab_fs_writes_them() {
        let mut secs = 0u64;
        while secs < 20_000_000_000 {
            assert_eq!(iso8601_utc(secs), lab_fs::bundle::iso8601_utc(secs));
            secs = secs * 3 / 2 + 86_399;
        }
        for secs in [u64::MAX, u64::MAX / 86_400, 951_782_400, 4_107_542_399] {
            assert_eq!(iso8601_utc(secs), lab_fs::bundle::iso8601_utc(secs));
        }
    }

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(
            csv_fields("a,\"b,c\",\"d\"\"e\",", ','),
            ["a", "b,c", "d\"e", ""]
        );
        assert_eq!(
            csv_fields("a,\"[1, 2]\",\"x\"\"y\",", ','),
            ["a", "[1, 2]", "x\"y", ""]
        );
        assert_eq!(csv_fields("a\tb,c", '\t'), ["a", "b,c"]);
        assert_eq!(number(" nan ").map(f64::is_nan), Some(true));
        assert_eq!(number(""), None);
        assert_eq!(cap(&"é".repeat(5000)).len(), 4096);
    }

    /// Bare words outside strings are turned; the same words inside a
    /// string or a key, escaped quotes included, stay as written.
    #[test]
    fn bare_nan_and_infinity_are_turned_and_strings_stay() {
        let text = br#"{"act": "NaN-safe", "NaN": "\"Infinity\" -Infinity\\", "lr": NaN, "hi": Infinity, "lo": -Infinity}"#;
        for (bare, lr, hi, lo) in [
            (Bare::Null, "null", "null", "null"),
            (Bare::Quoted, "\"NaN\"", "\"Infinity\"", "\"-Infinity\""),
        ] {
            let turned = String::from_utf8(python_json(text, bare).into_owned()).unwrap();
            assert_eq!(
                turned,
                format!(
                    r#"{{"act": "NaN-safe", "NaN": "\"Infinity\" -Infinity\\", "lr": {lr}, "hi": {hi}, "lo": {lo}}}"#
                )
            );
        }
        let value: serde_json::Value = from_python_json(text).unwrap();
        assert_eq!(value["act"], "NaN-safe");
        assert_eq!(value["NaN"], "\"Infinity\" -Infinity\\");
        assert!(value["lr"].is_null() && value["lo"].is_null());
        // Nothing to turn: the bytes themselves, and the first error.
        let plain = br#"{"a": "NaN"}"#;
        assert!(matches!(
            python_json(plain, Bare::Null),
            std::borrow::Cow::Borrowed(_)
        ));
        let err = from_python_json::<serde_json::Value>(b"{\"a\": x}").unwrap_err();
        assert_eq!(err.column(), 7);
    }

    #[test]
    fn python_dates_read_as_seconds_since_the_epoch() {
        for (text, expected) in [
            ("1970-01-01T00:00:00", Some(0.0)),
            ("2026-12-07T11:25:33.5", Some(1_796_642_733.5)),
            ("2026-12-07T11:25:33.500000+00:00", Some(1_796_642_733.5)),
            ("2026-12-07 12:25:33+01:00", Some(1_796_642_733.0)),
            ("2026-12-07T06:25:33-0500", Some(1_796_642_733.0)),
            ("2026-12-07T11:25:33Z", Some(1_796_642_733.0)),
            ("2024-02-29T00:00:00", Some(1_709_164_800.0)),
            ("2026-13-07T11:25:33", None),
            ("2026-12-07T11:25", None),
            ("2026-12-07T11:25:33.", None),
            ("2026-12-07T11:25:33 junk", None),
            ("é026-12-07T11:25:33", None),
            ("2026-12-07T11:25:3é", None),
            ("2026-12-07T11:25:33+aé", None),
            ("", None),
        ] {
            assert_eq!(iso8601_secs(text), expected, "{text:?}");
        }
        // What the writers' seconds become again.
        let secs = iso8601_secs("2026-12-07T11:25:33.343004").unwrap();
        assert_eq!(iso8601_utc(secs as u64), "2026-12-07T11:25:33Z");
    }
}
