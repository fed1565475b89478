//! Percent-decoding, exactly once; percent- and base64url-encoding.

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

/// Percent-encodes a path the way the server emits it in a URL: unreserved
/// characters (RFC 3986 §2.3) and `/` as they are, every other byte as
/// `%XX` (upper-case). [`percent_decode`] gives the input back.
pub fn percent_encode_path(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
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

/// Unpadded base64url (RFC 4648 §5).
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
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

    #[test]
    fn encoding_a_path_keeps_only_unreserved_bytes_and_slashes() {
        for (input, expected) in [
            ("videos/a b.mp4", "videos/a%20b.mp4"),
            ("images/50%_done.png", "images/50%25_done.png"),
            ("a+b?c#d&e=f", "a%2Bb%3Fc%23d%26e%3Df"),
            ("é", "%C3%A9"),
            ("x.tar", "x.tar"),
        ] {
            assert_eq!(percent_encode_path(input), expected, "{input}");
        }
    }

    /// SPEC §5: an MLflow 2 `log_image` name (`%` separators) beneath
    /// `artifacts/images/` is reached by its `%25` URL, decoded once;
    /// every encoded dot, separator or NUL, at one or two levels of
    /// encoding, decodes to a name lab-fs refuses, never to another file.
    #[test]
    fn only_an_mlflow_image_name_keeps_a_percent_sign_after_decoding_once() {
        let allow = lab_fs::Allowlist::default()
            .plus(&["artifacts/images/*.png", "artifacts/*.png"])
            .unwrap();
        let image = "artifacts/images/a#b%step%3%timestamp%17%9f-0e.png";
        let served = |raw: &str| {
            let name = percent_decode(raw, false)?;
            allow.check(&name).ok().map(|n| n.as_str().to_owned())
        };
        assert_eq!(served(&percent_encode_path(image)).as_deref(), Some(image));
        assert_eq!(
            served("artifacts/images/a%23b%25step%253%25timestamp%2517%259f-0e.png").as_deref(),
            Some(image)
        );
        for raw in [
            "artifacts/images/%2e%2e",
            "artifacts/images/%252e%252e",
            "artifacts/images/%2e%2e%2f%2e%2e%2frun.json",
            "artifacts/images/a%252fb%25step%253%25timestamp%2517%259f.png",
            "artifacts/images/a%2500.png",
            "artifacts/images/a%00.png",
            "artifacts%2fimages%2f..%2fx.png",
            "artifacts/a%25step%253%25timestamp%2517%259f.png",
            "artifacts/x%2525.png",
        ] {
            assert_eq!(served(raw), None, "{raw}");
        }
    }

    proptest::proptest! {
        /// For every string, decoding its encoded path gives it back, and
        /// the encoding holds no byte a URL would need to escape.
        #[test]
        fn an_encoded_path_decodes_to_itself(input in "\\PC*") {
            let encoded = percent_encode_path(&input);
            let decoded = percent_decode(&encoded, false);
            proptest::prop_assert_eq!(decoded.as_deref(), Some(input.as_str()));
            proptest::prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)));
        }
    }
}
