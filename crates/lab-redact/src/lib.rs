//! Secret redaction for logs, provenance and exports.
//!
//! Two engines, one output: an Aho-Corasick automaton (leftmost-longest) over
//! every secret value the Lab knows (from secret-looking environment
//! variables, see [`is_secret_name`]) and its common encodings, and a regex
//! over well-known key formats (AWS, GitHub, GitLab, OpenAI/Anthropic, Slack,
//! Google, Hugging Face, Stripe, JWTs, `Bearer`, `scheme://user:pass@`,
//! `password=…` assignments). Every match becomes `[REDACTED]`; PEM
//! private-key blocks are redacted line by line until their END line.
//!
//! The encodings of each value that are matched too:
//!
//! - standard base64 (`+`/`/`) and base64url (`-`/`_`), each at byte shifts
//!   0, 1 and 2, so the value is also found inside a larger base64 blob,
//!   padded or not (only the characters that depend on the value alone are
//!   matched; the one or two mixing in neighbouring bytes stay);
//! - lowercase and uppercase hex;
//! - percent-encoding (RFC 3986: every byte outside `A-Za-z0-9-._~` as `%XX`),
//!   with uppercase and with lowercase hex digits;
//! - a JSON string body (`\"`, `\\`, `\/`, `\u00XX`).
//!
//! A value shorter than [`MIN_SECRET_LEN`] is not matched, and an encoding
//! longer than [`TAIL`] is skipped (the value itself and its shorter
//! encodings still are), so no match is ever longer than what a stream holds
//! back.
//!
//! [`RedactStream`] keeps the incomplete last line (and, for a very long
//! line, a tail of [`TAIL`] bytes) so a secret split across reads is still
//! caught: no byte of a secret is emitted before the whole secret was seen.
//!
//! Redaction is a safety net, not a guarantee: a secret the Lab does not
//! know, one shorter than [`MIN_SECRET_LEN`], or one transformed in any other
//! way (sliced, reversed, compressed, encrypted, wrapped across lines, mixed
//! case hex, …) is written as it is. Keeping secrets out of jobs is what
//! protects them; this only catches the common accidents.

#![forbid(unsafe_code)]

pub mod export;
#[doc(hidden)]
pub mod fuzz;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::bytes::Regex;

/// What every match is replaced with.
pub const REDACTED: &[u8] = b"[REDACTED]";
/// Secret values shorter than this are not matched (too many false hits).
pub const MIN_SECRET_LEN: usize = 6;
/// Longest match either engine can make; bytes this close to the end of an
/// incomplete line are held back until more arrives.
pub const TAIL: usize = 1024;
/// An incomplete line longer than this is emitted in part (all but [`TAIL`]).
pub const MAX_PENDING: usize = 64 * 1024;

/// Well-known key formats. Every repetition is bounded so no match is longer
/// than [`TAIL`]. A capturing group marks the part to redact; without one
/// the whole match is redacted (every other group is non-capturing).
const PATTERNS: &[&str] = &[
    r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}",
    r"gh[pousr]_[A-Za-z0-9]{36,255}",
    r"github_pat_[A-Za-z0-9_]{22,255}",
    r"glpat-[A-Za-z0-9_\-]{20,255}",
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,255}",
    r"xox[abposr]-[A-Za-z0-9\-]{10,255}",
    r"AIza[0-9A-Za-z_\-]{35}",
    r"hf_[A-Za-z0-9]{30,255}",
    r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,255}",
    r"eyJ[A-Za-z0-9_\-]{5,400}\.eyJ[A-Za-z0-9_\-]{5,400}\.[A-Za-z0-9_\-]{5,200}",
    r"(?i:bearer)[ \t]+([A-Za-z0-9._~+/\-]{16,500}=*)",
    r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://([^\s:/@]{1,200}:[^\s@/]{1,200})@",
    r#"(?i:api[_-]?key|secret|token|password|passwd|pwd)["']?[ \t]*[:=][ \t]*["']?([^\s"',;]{6,400})"#,
];

/// Whether an environment variable name looks like it holds a secret.
///
/// Case-insensitive: the name contains one of `KEY`, `TOKEN`, `SECRET`,
/// `PASSWORD`, `PASSWD`, `PWD`, `CREDENTIAL`, `PRIVATE`, `AUTH`, `SESSION`,
/// `COOKIE`, `DSN`, `DATABASE_URL`, `CONNECTION_STRING`, or it is `PASS` or
/// ends in `_PASS`. The shell's `PWD` and `OLDPWD` are working directories,
/// not passwords, and do not count.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const MARKERS: &[&str] = &[
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PWD",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
        "SESSION",
        "COOKIE",
        "DSN",
        "DATABASE_URL",
        "CONNECTION_STRING",
    ];
    /// Names that contain a marker but are not secrets.
    const NOT_SECRET: &[&str] = &["PWD", "OLDPWD"];
    if NOT_SECRET.contains(&upper.as_str()) {
        return false;
    }
    upper == "PASS" || upper.ends_with("_PASS") || MARKERS.iter().any(|m| upper.contains(m))
}

/// The values of the secret-looking variables among `vars` (an
/// environment): what every redactor of the Lab's output must know. The
/// caller reads its environment once and passes this around.
pub fn secret_values<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    vars: impl IntoIterator<Item = (K, V)>,
) -> Vec<Vec<u8>> {
    vars.into_iter()
        .filter(|(k, _)| is_secret_name(&k.as_ref().to_string_lossy()))
        .map(|(_, v)| v.as_ref().as_encoded_bytes().to_vec())
        .collect()
}

/// A compiled redactor.
#[derive(Clone, Debug)]
pub struct Redactor {
    values: Option<AhoCorasick>,
    /// One compiled regex per process, shared (with its warm match caches)
    /// by every redactor.
    patterns: &'static Regex,
}

impl Default for Redactor {
    /// Known formats only, no secret values.
    fn default() -> Self {
        Self::new(std::iter::empty::<String>())
    }
}

impl Redactor {
    /// A redactor for these secret values (and their encodings) plus the
    /// known formats.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            // A multi-line value (a PEM key in a variable) is matched line by line.
            for line in secret.as_ref().split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() >= MIN_SECRET_LEN && line.len() <= TAIL {
                    needles.extend(encodings(line));
                }
            }
        }
        needles.retain(|n| n.len() >= MIN_SECRET_LEN && n.len() <= TAIL);
        needles.sort();
        needles.dedup();
        let values = if needles.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&needles)
                .ok()
        };
        // Compiled once per process (tens of milliseconds) and shared.
        static COMPILED: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let patterns = COMPILED.get_or_init(|| {
            let pattern = format!("(?-u:{})", PATTERNS.join("|"));
            // NOTE(unwrap): PATTERNS is a constant covered by
            // `known_formats_are_redacted`; an error here is a
            // programming error.
            Regex::new(&pattern).unwrap_or_else(|e| panic!("redaction patterns: {e}"))
        });
        Self { values, patterns }
    }

    /// A redactor for the values of the secret-looking variables in `vars`
    /// (typically `std::env::vars_os()` of the Lab itself).
    pub fn from_env<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self::new(secret_values(vars))
    }

    /// Byte ranges to redact in `text`, sorted and merged.
    fn spans(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if let Some(values) = &self.values {
            spans.extend(values.find_iter(text).map(|m| (m.start(), m.end())));
        }
        for caps in self.patterns.captures_iter(text) {
            let part = caps.iter().skip(1).flatten().next();
            if let Some(m) = part.or_else(|| caps.get(0)) {
                spans.push((m.start(), m.end()));
            }
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Redacts a complete text (no state carried between calls).
    pub fn redact(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in self.spans(text) {
            out.extend_from_slice(&text[at..start]);
            out.extend_from_slice(REDACTED);
            at = end;
        }
        out.extend_from_slice(&text[at..]);
        out
    }

    /// Redacts a string.
    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact(text.as_bytes())).into_owned()
    }

    /// A streaming redactor for one output stream.
    pub fn stream(&self) -> RedactStream<'_> {
        RedactStream {
            redactor: self,
            pending: Vec::new(),
            in_pem: false,
        }
    }
}

/// Standard base64 alphabet (RFC 4648 §4).
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// URL- and filename-safe base64 alphabet (RFC 4648 §5).
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The raw value and its common encodings (see the module docs). Some may be
/// longer than [`TAIL`]; [`Redactor::new`] drops those.
fn encodings(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    for alphabet in [BASE64, BASE64_URL] {
        for shift in 0..3 {
            if let Some(b64) = base64_stable(value, shift, alphabet) {
                out.push(b64);
            }
        }
    }
    out.push(hex(value, b"0123456789abcdef"));
    out.push(hex(value, b"0123456789ABCDEF"));
    out.push(percent(value, b"0123456789ABCDEF"));
    out.push(percent(value, b"0123456789abcdef"));
    let json: Vec<u8> = value
        .iter()
        .flat_map(|&b| match b {
            b'"' => b"\\\"".to_vec(),
            b'\\' => b"\\\\".to_vec(),
            b'/' => b"\\/".to_vec(),
            b if b < 0x20 => format!("\\u{b:04x}").into_bytes(),
            b => vec![b],
        })
        .collect();
    out.push(json);
    out
}

/// Every byte as two hex digits from `digits`.
fn hex(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    value
        .iter()
        .flat_map(|&b| [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]])
        .collect()
}

/// RFC 3986 percent-encoding: unreserved bytes as they are, every other
/// byte as `%` and two hex digits from `digits`.
fn percent(value: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

/// The part of base64(`shift` unknown bytes + value + unknown bytes), in
/// `alphabet`, that depends only on `value`. Padding never depends only on
/// the value, so the result matches padded and unpadded text alike.
fn base64_stable(value: &[u8], shift: usize, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(value);
    let mut encoded = Vec::with_capacity(data.len() * 4 / 3 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            encoded.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    // Characters mixing prefix bits: none for shift 0, two for 1, three for 2.
    let skip = [0, 2, 3][shift];
    // The last character mixes in whatever follows unless the data ends on a
    // 3-byte boundary.
    let drop_end = usize::from(!data.len().is_multiple_of(3));
    let end = encoded.len().checked_sub(drop_end)?;
    (end > skip).then(|| encoded[skip..end].to_vec())
}

/// Streaming redaction state for one stream (see the module docs).
#[derive(Debug)]
pub struct RedactStream<'a> {
    redactor: &'a Redactor,
    pending: Vec<u8>,
    in_pem: bool,
}

impl RedactStream<'_> {
    /// Feeds `chunk`; appends to `out` every byte that is now safe to emit.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let before = self.pending.len();
        self.pending.extend_from_slice(chunk);
        // Only the new bytes can hold a newline: the held-back ones had none.
        if let Some(nl) = chunk.iter().rposition(|b| *b == b'\n').map(|i| before + i) {
            let complete: Vec<u8> = self.pending.drain(..=nl).collect();
            self.lines(&complete, out);
        }
        if self.pending.len() > MAX_PENDING && !self.in_pem {
            let cut = self.safe_cut();
            let head: Vec<u8> = self.pending.drain(..cut).collect();
            out.extend(self.redactor.redact(&head));
        } else if self.pending.len() > MAX_PENDING {
            // Inside a private-key block everything is redacted anyway.
            self.pending.clear();
            out.extend_from_slice(REDACTED);
        }
    }

    /// Ends the stream, emitting what is held back.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let rest = std::mem::take(&mut self.pending);
        self.lines(&rest, out);
    }

    /// Where an over-long incomplete line may be cut: `TAIL` bytes before
    /// its end, moved back to the start of any match crossing that point.
    fn safe_cut(&self) -> usize {
        let mut cut = self.pending.len() - TAIL;
        for (start, end) in self.redactor.spans(&self.pending) {
            if start < cut && end > cut {
                cut = start;
            }
        }
        cut
    }

    fn lines(&mut self, text: &[u8], out: &mut Vec<u8>) {
        for line in text.split_inclusive(|b| *b == b'\n') {
            let ends = line.ends_with(b"\n");
            if self.in_pem {
                out.extend_from_slice(REDACTED);
                if contains(line, b"-----END") {
                    self.in_pem = false;
                }
            } else if contains(line, b"-----BEGIN") && contains(line, b"PRIVATE KEY") {
                out.extend_from_slice(REDACTED);
                self.in_pem = !contains(line, b"-----END");
            } else {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                out.extend(self.redactor.redact(body));
            }
            if ends {
                out.push(b'\n');
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn secret_markers() {
        for name in [
            "OPENAI_API_KEY",
            "HF_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "DB_PASSWD",
            "DB_PASS",
            "SMTP_PASS",
            "smtp_pass",
            "PASS",
            "DB_PWD",
            "MYSQL_PWD",
            "PWD_HASH",
            "mysql_pwd",
            "DATABASE_URL",
        ] {
            assert!(is_secret_name(name), "{name} should be secret");
        }
    }

    #[test]
    fn non_secret_names() {
        for name in [
            "PWD",
            "OLDPWD",
            "pwd",
            "OldPwd",
            "PASSTHROUGH_MODE",
            "BYPASS",
            "COMPASS",
            "PASS_THROUGH",
            "WANDB_MODE",
            "CUDA_VISIBLE_DEVICES",
            "LANG",
            "HOME",
            "PATH",
            "SEED",
            "",
        ] {
            assert!(!is_secret_name(name), "{name} should not be secret");
        }
    }

    #[test]
    fn the_shell_working_directory_is_not_redacted() {
        let r = Redactor::from_env([
            ("PWD", "/home/alice/project"),
            ("OLDPWD", "/home/alice"),
            ("MYSQL_PWD", "my-sql-pw-123"),
            ("SMTP_PASS", "smtp-pass-456"),
        ]);
        assert_eq!(
            r.redact_str("cd /home/alice/project; my-sql-pw-123 smtp-pass-456"),
            "cd /home/alice/project; [REDACTED] [REDACTED]"
        );
    }

    fn contains_needle(needles: &[Vec<u8>], needle: &[u8]) -> bool {
        needles.iter().any(|n| n == needle)
    }

    #[test]
    fn encodings_cover_hex_percent_and_both_base64_alphabets() {
        // 0xfb 0xff encode to `+/` in standard base64 and `-_` in base64url.
        let value = b"a b/\xfb\xff?";
        let e = encodings(value);
        assert!(contains_needle(&e, value));
        assert!(contains_needle(&e, b"6120622ffbff3f"));
        assert!(contains_needle(&e, b"6120622FFBFF3F"));
        assert!(contains_needle(&e, b"a%20b%2F%FB%FF%3F"));
        assert!(contains_needle(&e, b"a%20b%2f%fb%ff%3f"));
        // base64("a b/\xfb\xff?") = "YSBiL/v/Pw==": the last character
        // mixes in what follows.
        assert!(contains_needle(&e, b"YSBiL/v/P"));
        assert!(contains_needle(&e, b"YSBiL_v_P"));
        // At every shift, the base64url needle is the standard one with
        // `+`/`/` mapped to `-`/`_`.
        for shift in 0..3 {
            let std = base64_stable(value, shift, BASE64).unwrap();
            let url = base64_stable(value, shift, BASE64_URL).unwrap();
            let mapped: Vec<u8> = std
                .iter()
                .map(|&c| match c {
                    b'+' => b'-',
                    b'/' => b'_',
                    c => c,
                })
                .collect();
            assert_eq!(url, mapped, "shift {shift}");
            assert!(contains_needle(&e, &std) && contains_needle(&e, &url));
        }
    }

    #[test]
    fn base64_stable_part_at_each_shift() {
        // Computed by hand: the stable part is what every base64 of
        // `shift` bytes + "abcdef" + anything has in common.
        assert_eq!(base64_stable(b"abcdef", 0, BASE64).unwrap(), b"YWJjZGVm");
        // "?abcdef" -> "P2FiY2RlZg==": skip "P2", drop the mixed "g".
        assert_eq!(base64_stable(b"abcdef", 1, BASE64).unwrap(), b"FiY2RlZ");
        // "??abcdef" -> "Pz9hYmNkZWY=": skip "Pz9", drop the mixed "Y".
        assert_eq!(base64_stable(b"abcdef", 2, BASE64).unwrap(), b"hYmNkZW");
    }

    #[test]
    fn encodings_longer_than_tail_are_skipped() {
        // Hex doubles the length: a value just over TAIL/2 keeps its raw
        // and base64 forms but loses hex.
        let value = vec![b'z'; TAIL / 2 + 10];
        let r = Redactor::new([&value]);
        let hex_form = hex(&value, b"0123456789abcdef");
        assert!(hex_form.len() > TAIL);
        assert_eq!(r.redact(&value), REDACTED);
        assert_eq!(r.redact(&hex_form), hex_form, "no needle over TAIL");
        let b64 = base64_stable(&value, 0, BASE64).unwrap();
        assert!(b64.len() <= TAIL);
        assert_ne!(r.redact(&b64), b64);
    }
}
