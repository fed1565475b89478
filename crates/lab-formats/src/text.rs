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
