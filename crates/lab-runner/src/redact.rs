//! Secret redaction for logs, provenance and exports.
//!
//! Two engines, one output: an Aho-Corasick automaton (leftmost-longest) over
//! every secret value the Lab knows (from secret-looking environment
//! variables) and its common encodings (base64 at byte shifts 0/1/2, URL,
//! JSON), and a regex over well-known key formats (AWS, GitHub, GitLab,
//! OpenAI/Anthropic, Slack, Google, Hugging Face, Stripe, JWTs, `Bearer`,
//! `scheme://user:pass@`, `password=…` assignments). Every match becomes
//! `[REDACTED]`; PEM private-key blocks are redacted line by line until their
//! END line.
//!
//! [`RedactStream`] keeps the incomplete last line (and, for a very long
//! line, a tail of [`TAIL`] bytes) so a secret split across reads is still
//! caught: no byte of a secret is emitted before the whole secret was seen.

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
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const MARKERS: &[&str] = &[
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
        "SESSION",
        "COOKIE",
        "DSN",
        "DATABASE_URL",
        "CONNECTION_STRING",
    ];
    MARKERS.iter().any(|m| upper.contains(m))
}

/// A compiled redactor.
#[derive(Clone, Debug)]
pub struct Redactor {
    values: Option<AhoCorasick>,
    patterns: Regex,
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
        let pattern = format!("(?-u:{})", PATTERNS.join("|"));
        // NOTE(unwrap): PATTERNS is a constant covered by
        // `known_formats_are_redacted`; an error here is a programming error.
        let patterns = Regex::new(&pattern).unwrap_or_else(|e| panic!("redaction patterns: {e}"));
        Self { values, patterns }
    }

    /// A redactor for the values of the secret-looking variables in `vars`
    /// (typically `std::env::vars_os()` of the Lab itself).
    pub fn from_env<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let values: Vec<Vec<u8>> = vars
            .into_iter()
            .filter(|(k, _)| is_secret_name(&k.as_ref().to_string_lossy()))
            .map(|(_, v)| v.as_ref().as_encoded_bytes().to_vec())
            .collect();
        Self::new(values)
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

/// The raw value and its common encodings.
fn encodings(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    for shift in 0..3 {
        if let Some(b64) = base64_stable(value, shift) {
            out.push(b64);
        }
    }
    let url: Vec<u8> = value
        .iter()
        .flat_map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                vec![b]
            } else {
                format!("%{b:02X}").into_bytes()
            }
        })
        .collect();
    out.push(url);
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

/// The part of base64(`shift` unknown bytes + value + unknown bytes) that
/// depends only on `value`.
fn base64_stable(value: &[u8], shift: usize) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
            encoded.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
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
