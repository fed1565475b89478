//! The redactor's oracle, for the fuzz target (`crates/lab-redact/fuzz`,
//! `redact`) and the property tests. Not an API.
//!
//! An input is a secret and a text built around it: plain bytes, the secret
//! as it is, and the encodings the redactor claims to cover, each made here
//! by code of its own (hex, percent-encoding, base64 of the secret between
//! other bytes in both alphabets, a JSON string body). The text is then
//! streamed through [`crate::RedactStream`] whole and in pieces, and:
//!
//! - no piece changes the output (no line is longer than
//!   [`crate::MAX_PENDING`] here, so nothing is cut);
//! - no needle of the secret (its raw form or a claimed encoding) is left
//!   in the output, but where it overlaps a `[REDACTED]` the redactor wrote;
//! - no inserted encoding is left whole;
//! - where the text holds no needle of the secret, the output is what a
//!   redactor that knows no secret writes: knowing one changes nothing else.

use crate::{MIN_SECRET_LEN, REDACTED, Redactor, TAIL};

/// Reads a few bytes at a time from the input, then zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn hex(value: &[u8], upper: bool) -> Vec<u8> {
    value
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect::<String>()
        .into_bytes()
}

fn percent(value: &[u8], upper: bool) -> Vec<u8> {
    let mut out = String::new();
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out.into_bytes()
}

/// Base64 with padding (RFC 4648), by bit arithmetic on 6-bit groups.
fn base64(value: &[u8], url: bool) -> Vec<u8> {
    let alphabet: Vec<u8> = (b'A'..=b'Z')
        .chain(b'a'..=b'z')
        .chain(b'0'..=b'9')
        .chain(if url { *b"-_" } else { *b"+/" })
        .collect();
    let bits: Vec<bool> = value
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
        .collect();
    let mut out: Vec<u8> = bits
        .chunks(6)
        .map(|group| {
            let n = group
                .iter()
                .chain(std::iter::repeat(&false))
                .take(6)
                .fold(0usize, |n, bit| n << 1 | usize::from(*bit));
            alphabet[n]
        })
        .collect();
    while !out.len().is_multiple_of(4) {
        out.push(b'=');
    }
    out
}

fn json_body(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len())
        .filter(|&i| &haystack[i..i + needle.len()] == needle)
        .collect()
}

/// Whether `output` holds `needle` anywhere it does not overlap a
/// `[REDACTED]`.
fn left_in(output: &[u8], needle: &[u8]) -> bool {
    let redacted: Vec<usize> = find_all(output, REDACTED);
    find_all(output, needle).into_iter().any(|at| {
        let end = at + needle.len();
        !redacted.iter().any(|&r| r < end && at < r + REDACTED.len())
    })
}

fn stream(redactor: &Redactor, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = redactor.stream();
    for piece in pieces {
        s.push(piece, &mut out);
    }
    s.finish(&mut out);
    out
}

/// What one input built and what came out.
#[derive(Debug)]
pub struct Redacted {
    /// The secret.
    pub secret: Vec<u8>,
    /// The text built around it.
    pub text: Vec<u8>,
    /// The redacted text.
    pub output: Vec<u8>,
    /// Whether the text holds a needle of the secret.
    pub holds_secret: bool,
}

/// Builds a secret and a text from `data`, redacts it, and checks the
/// oracle (see the module docs); panics when it fails.
///
/// Layout: a length byte (the secret is 6 to 69 bytes, line breaks made
/// `x`), the secret, a count of split points and that many bytes (each a
/// piece length), then pieces of text: an op byte (`op % 10`: 0 plain
/// bytes — a length byte and the bytes —, 1 the secret, 2/3 lower/upper
/// hex, 4/5 upper/lower percent, 6/7 base64/base64url of the secret
/// between bytes, 8 its JSON string body, 9 a line break).
pub fn check_redaction(data: &[u8]) -> Redacted {
    let mut input = Bytes(data);
    let len = MIN_SECRET_LEN + usize::from(input.byte() % 64);
    let secret: Vec<u8> = input
        .take(len)
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b'x' } else { b })
        .collect();
    let splits: Vec<usize> = {
        let n = usize::from(input.byte() % 8);
        (0..n).map(|_| usize::from(input.byte()) + 1).collect()
    };
    let mut text = Vec::new();
    // Encodings inserted whole, each claimed by the redactor.
    let mut inserted: Vec<Vec<u8>> = Vec::new();
    while !input.0.is_empty() {
        let op = input.byte() % 10;
        let piece = match op {
            0 => {
                let n = usize::from(input.byte() % 64);
                input.take(n).to_vec()
            }
            1 => secret.clone(),
            2 => hex(&secret, false),
            3 => hex(&secret, true),
            4 => percent(&secret, true),
            5 => percent(&secret, false),
            6 | 7 => {
                let before = usize::from(input.byte() % 3);
                let after = usize::from(input.byte() % 3);
                let mut blob = input.take(before).to_vec();
                blob.extend_from_slice(&secret);
                blob.extend_from_slice(input.take(after));
                base64(&blob, op == 7)
            }
            8 => json_body(&secret),
            _ => b"\n".to_vec(),
        };
        if (1..=8).contains(&op) && secret.len() >= MIN_SECRET_LEN && piece.len() <= TAIL {
            inserted.push(piece.clone());
        }
        text.extend_from_slice(&piece);
    }
    let redactor = Redactor::new([&secret]);
    let output = stream(&redactor, &[&text]);
    // Any split of the text into reads gives the same output.
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = &text[..];
    for n in &splits {
        let (head, tail) = rest.split_at((*n).min(rest.len()));
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    assert_eq!(
        stream(&redactor, &pieces),
        output,
        "reads of {splits:?} changed the output"
    );
    let needles: Vec<Vec<u8>> = if secret.len() >= MIN_SECRET_LEN {
        crate::encodings(&secret)
            .into_iter()
            .filter(|n| n.len() >= MIN_SECRET_LEN && n.len() <= TAIL)
            .collect()
    } else {
        Vec::new()
    };
    for needle in &needles {
        assert!(
            !left_in(&output, needle),
            "{:?} left in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&output)
        );
    }
    for encoding in &inserted {
        assert!(
            encoding.len() < MIN_SECRET_LEN || !left_in(&output, encoding),
            "the inserted {:?} left whole in {:?}",
            String::from_utf8_lossy(encoding),
            String::from_utf8_lossy(&output)
        );
    }
    let holds_secret = needles.iter().any(|n| !find_all(&text, n).is_empty());
    if !holds_secret {
        assert_eq!(
            output,
            stream(&Redactor::default(), &[&text]),
            "knowing the secret changed text without it"
        );
    }
    Redacted {
        secret,
        text,
        output,
        holds_secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracles_own_encoders_are_right() {
        assert_eq!(base64(b"hello", false), b"aGVsbG8=");
        assert_eq!(base64(b"\xfb\xff\xbf", false), b"+/+/");
        assert_eq!(base64(b"\xfb\xff\xbf", true), b"-_-_");
        assert_eq!(base64(b"", false), b"");
        assert_eq!(hex(b"\x01\xab", false), b"01ab");
        assert_eq!(hex(b"\x01\xab", true), b"01AB");
        assert_eq!(percent(b"a b/~", true), b"a%20b%2F~");
        assert_eq!(json_body(b"a\"/\n"), b"a\\\"\\/\\u000a");
    }

    #[test]
    fn left_in_spares_only_what_overlaps_a_redaction() {
        assert!(left_in(b"x secret y", b"secret"));
        assert!(!left_in(b"x [REDACTED] y", b"secret"));
        // "[REDACTED]" followed by "zz": "ED]zz" overlaps it.
        assert!(!left_in(b"[REDACTED]zz", b"ED]zz"));
        assert!(left_in(b"[REDACTED] ED]zz", b"ED]zz"));
    }

    #[test]
    fn every_encoding_inserted_is_redacted() {
        // Secret "s3cr3t-value" (length byte 6 → 12 bytes), no splits,
        // then every op once.
        let mut data = vec![6u8];
        data.extend_from_slice(b"s3cr3t-value");
        data.push(0);
        for op in 1..=8u8 {
            data.extend_from_slice(&[op, 1, 2, 9]);
        }
        let r = check_redaction(&data);
        assert!(r.holds_secret);
        assert!(!r.output.windows(12).any(|w| w == b"s3cr3t-value"));
        assert!(
            r.output
                .windows(REDACTED.len())
                .filter(|w| *w == REDACTED)
                .count()
                >= 8
        );
    }
}
