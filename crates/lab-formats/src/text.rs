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

/// The fields of one CSV line (RFC 4180 quoting within the line).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
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
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
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
            csv_fields("a,\"b,c\",\"d\"\"e\","),
            ["a", "b,c", "d\"e", ""]
        );
        assert_eq!(number(" nan ").map(f64::is_nan), Some(true));
        assert_eq!(number(""), None);
        assert_eq!(cap(&"é".repeat(5000)).len(), 4096);
    }
}
