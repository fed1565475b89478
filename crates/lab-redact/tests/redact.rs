//! Redaction: known formats, secret values and encodings, split writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use lab_redact::{MAX_PENDING, Redactor, is_secret_name};
use proptest::prelude::*;

const SECRET: &str = "s3cr3t-VALUE-0123456789";

fn check(redactor: &Redactor, input: &str, expected: &str) {
    assert_eq!(redactor.redact_str(input), expected, "{input:?}");
}

#[test]
fn known_formats_are_redacted() {
    let r = Redactor::default();
    let table: &[(&str, &str)] = &[
        ("key AKIAIOSFODNN7EXAMPLE here", "key [REDACTED] here"),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "[REDACTED]",
        ),
        ("glpat-abcdefghij0123456789", "[REDACTED]"),
        (
            "OPENAI sk-proj-abcdefghijklmnopqrstuvwx",
            "OPENAI [REDACTED]",
        ),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
        ("xoxb-123456789012-abcdefghij", "[REDACTED]"),
        ("AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "[REDACTED]"),
        ("hf_abcdefghijklmnopqrstuvwxyzABCDEF", "[REDACTED]"),
        ("sk_live_abcdefghijklmnop1234", "[REDACTED]"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "jwt [REDACTED] end",
        ),
        (
            "Authorization: Bearer abcdefghijklmnop1234",
            "Authorization: Bearer [REDACTED]",
        ),
        (
            "postgres://alice:pa55word@db:5432/x",
            "postgres://[REDACTED]@db:5432/x",
        ),
        ("password=hunter2hunter2", "password=[REDACTED]"),
        (
            "\"api_key\": \"abcdef123456\"",
            "\"api_key\": \"[REDACTED]\"",
        ),
        // Ordinary experiment output is left alone.
        ("step=100 loss=0.25 lr=3e-4", "step=100 loss=0.25 lr=3e-4"),
        (
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        (
            "run 123e4567-e89b-12d3-a456-426614174000",
            "run 123e4567-e89b-12d3-a456-426614174000",
        ),
    ];
    for (input, expected) in table {
        check(&r, input, expected);
    }
}

#[test]
fn secret_values_and_their_encodings_are_redacted() {
    let r = Redactor::new([SECRET]);
    check(&r, &format!("x {SECRET} y"), "x [REDACTED] y");
    // The last base64 character mixes in what follows the secret, so it stays.
    check(&r, "czNjcjN0LVZBTFVFLTAxMjM0NTY3ODk=", "[REDACTED]k=");
    // base64 at byte shifts 1 and 2 (the secret inside a larger blob).
    for prefix in ["a", "ab", "abc"] {
        let blob = base64(format!("{prefix}{SECRET}!!").as_bytes());
        let out = r.redact_str(&blob);
        assert!(out.contains("[REDACTED]"), "{prefix}: {blob} -> {out}");
    }
    let special = Redactor::new(["p@ss/word+42!", "quo\"te\\secret"]);
    check(&special, "q=p%40ss%2Fword%2B42%21&x", "q=[REDACTED]&x");
    check(
        &special,
        r#"{"v": "quo\"te\\secret"}"#,
        r#"{"v": "[REDACTED]"}"#,
    );
    let short = Redactor::new(["abc"]);
    check(&short, "abc abc", "abc abc");
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(data: &[u8]) -> String {
    base64_with(data, STD, true)
}

/// A plain base64 encoder, independent of the library's.
fn base64_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                s.push('=');
            }
        }
    }
    s
}

fn hex(data: &[u8], upper: bool) -> String {
    data.iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent(data: &[u8], upper: bool) -> String {
    data.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// Pushes `input` one byte at a time.
fn byte_by_byte(r: &Redactor, input: &[u8]) -> String {
    let mut out = Vec::new();
    let mut s = r.stream();
    for b in input {
        s.push(std::slice::from_ref(b), &mut out);
    }
    s.finish(&mut out);
    String::from_utf8(out).unwrap()
}

/// Checks `input -> expected` whole, streamed one byte at a time, and with
/// a trailing newline.
fn check_all_ways(r: &Redactor, input: &str, expected: &str) {
    check(r, input, expected);
    assert_eq!(byte_by_byte(r, input.as_bytes()), expected, "{input:?}");
    assert_eq!(
        byte_by_byte(r, format!("{input}\n").as_bytes()),
        format!("{expected}\n"),
        "{input:?} + newline"
    );
}

/// A secret whose base64 has `+` and `/` at every shift (so base64url
/// differs) and that has bytes percent-encoding must escape.
const ENC_SECRET: &str = "s3cr3t?>~VALUE/0123456789";

/// base64(`prefix` + `ENC_SECRET` + `suffix`) with the characters that
/// depend only on the secret replaced by `[REDACTED]`: character `i` covers
/// bits `6i..6i+6`, the secret bits `8p..8(p+n)`.
fn expected_base64(prefix: &str, suffix: &str, alphabet: &[u8; 64], pad: bool) -> (String, String) {
    let data = format!("{prefix}{ENC_SECRET}{suffix}");
    let blob = base64_with(data.as_bytes(), alphabet, pad);
    let first = (8 * prefix.len()).div_ceil(6);
    let last = 8 * (prefix.len() + ENC_SECRET.len()) / 6;
    let expected = format!("{}[REDACTED]{}", &blob[..first], &blob[last..]);
    (blob, expected)
}

#[test]
fn base64_inside_a_longer_blob_is_redacted_at_every_shift() {
    let r = Redactor::new([ENC_SECRET]);
    for prefix in ["", "x", "xx", "xxx", "xxxx", "xxxxx"] {
        for suffix in ["", "y", "yy", "yyy"] {
            for pad in [true, false] {
                let (std_blob, std_expected) = expected_base64(prefix, suffix, STD, pad);
                let (url_blob, url_expected) = expected_base64(prefix, suffix, URL, pad);
                assert_ne!(std_blob, url_blob, "the alphabets must differ here");
                assert!(std_expected.len() < std_blob.len());
                for (blob, expected) in [(std_blob, std_expected), (url_blob, url_expected)] {
                    check_all_ways(
                        &r,
                        &format!("data: {blob} end"),
                        &format!("data: {expected} end"),
                    );
                }
            }
        }
    }
    // The textbook case from the brief: base64("xx" + secret + "yy").
    let blob = base64(format!("xx{ENC_SECRET}yy").as_bytes());
    let out = byte_by_byte(&r, blob.as_bytes());
    assert!(out.starts_with("eHh[REDACTED]"), "{blob} -> {out}");
    assert!(out.len() < "eHh[REDACTED]".len() + 8, "{blob} -> {out}");
}

#[test]
fn hex_and_percent_encodings_are_redacted() {
    let r = Redactor::new([ENC_SECRET]);
    let forms = [
        hex(ENC_SECRET.as_bytes(), false),
        hex(ENC_SECRET.as_bytes(), true),
        percent(ENC_SECRET.as_bytes(), true),
        percent(ENC_SECRET.as_bytes(), false),
    ];
    assert!(forms[2].contains("%3F%3E~") && forms[3].contains("%3f%3e~"));
    for form in &forms {
        assert_ne!(form, ENC_SECRET);
        check_all_ways(
            &r,
            &format!("GET /cb?code={form}&state=1"),
            "GET /cb?code=[REDACTED]&state=1",
        );
        check_all_ways(&r, form, "[REDACTED]");
    }
    // The same through the environment, as the runner builds it.
    let r = Redactor::from_env([("DB_PASS", ENC_SECRET), ("LANG", "C.UTF-8")]);
    for form in &forms {
        check_all_ways(&r, &format!("x {form} C.UTF-8"), "x [REDACTED] C.UTF-8");
    }
}

#[test]
fn unregistered_values_are_never_redacted() {
    let r = Redactor::from_env([
        ("WANDB_MODE", "offline"),
        ("PWD", "/home/alice/project"),
        ("OLDPWD", "/home/alice"),
        ("MYSQL_PWD", ENC_SECRET),
    ]);
    let plain = [
        "wandb: offline".to_owned(),
        format!("b64 {}", base64(b"offline")),
        format!("b64 {}", base64(b"xxofflineyy")),
        format!("hex {} {}", hex(b"offline", false), hex(b"offline", true)),
        "cwd /home/alice/project (was /home/alice)".to_owned(),
        format!("pct {}", percent(b"/home/alice/project", true)),
    ];
    for text in &plain {
        check_all_ways(&r, text, text);
    }
    check_all_ways(
        &r,
        &format!("offline {ENC_SECRET} offline"),
        "offline [REDACTED] offline",
    );
}

#[test]
fn private_key_blocks_are_redacted_line_by_line() {
    let r = Redactor::default();
    let mut out = Vec::new();
    let mut s = r.stream();
    s.push(b"before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmUAAAAEbm9uZQ\n", &mut out);
    s.push(b"-----END OPENSSH PRIVATE KEY-----\nafter\n", &mut out);
    s.finish(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "before\n[REDACTED]\n[REDACTED]\n[REDACTED]\n[REDACTED]\nafter\n"
    );
}

#[test]
fn names_that_look_secret() {
    for name in [
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "HF_TOKEN",
        "DB_PASSWORD",
        "DATABASE_URL",
        "github_token",
    ] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in ["DB_PASS", "SMTP_PASS", "DB_PWD", "MYSQL_PWD"] {
        assert!(is_secret_name(name), "{name}");
    }
    for name in [
        "PATH",
        "HOME",
        "LANG",
        "CUDA_VISIBLE_DEVICES",
        "SEED",
        "WANDB_MODE",
        "PWD",
        "OLDPWD",
        "PASSTHROUGH_MODE",
        "BYPASS",
    ] {
        assert!(!is_secret_name(name), "{name}");
    }
    let r = Redactor::from_env([("MY_API_KEY", SECRET), ("HOME", "/home/alice")]);
    assert_eq!(
        r.redact_str(&format!("{SECRET} /home/alice")),
        "[REDACTED] /home/alice"
    );
}

fn streamed(r: &Redactor, input: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = r.stream();
    let mut at = 0;
    for &cut in cuts {
        let cut = cut.clamp(at, input.len());
        s.push(&input[at..cut], &mut out);
        at = cut;
    }
    s.push(&input[at..], &mut out);
    s.finish(&mut out);
    out
}

#[test]
fn a_secret_split_across_reads_is_still_redacted() {
    let r = Redactor::new([SECRET]);
    let line = format!("token {SECRET} and ghp_0123456789abcdefghijABCDEFGHIJ012345 done\n");
    for cut in 0..=line.len() {
        let out = streamed(&r, line.as_bytes(), &[cut]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "token [REDACTED] and [REDACTED] done\n",
            "cut at {cut}"
        );
    }
    // A line far longer than the pending cap, with secrets straddling the cuts.
    let mut long = Vec::new();
    while long.len() < 3 * MAX_PENDING {
        long.extend_from_slice(b"xxxxxxxxxx ");
        long.extend_from_slice(SECRET.as_bytes());
        long.push(b' ');
    }
    for step in [1usize, 7, 4096, MAX_PENDING - 3, MAX_PENDING + 5] {
        let cuts: Vec<usize> = (1..)
            .map(|i| i * step)
            .take_while(|c| *c < long.len())
            .collect();
        let out = streamed(&r, &long, &cuts);
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("s3cr3t"),
            "step {step} leaked part of the secret"
        );
        assert!(
            !text.contains("0123456789 "),
            "step {step} leaked the secret's tail"
        );
    }
}

proptest! {
    /// However a stream is cut into reads, streaming gives the same output
    /// as redacting the whole text at once, and no secret survives.
    #[test]
    fn streaming_equals_whole_text(
        parts in proptest::collection::vec(prop_oneof![
            Just(SECRET.to_owned()),
            Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
            Just("\n".to_owned()),
            "[a-z =:]{0,12}",
        ], 0..30),
        cuts in proptest::collection::vec(0usize..600, 0..10),
    ) {
        let r = Redactor::new([SECRET]);
        let input = parts.concat();
        let mut sorted = cuts.clone();
        sorted.sort_unstable();
        let out = streamed(&r, input.as_bytes(), &sorted);
        let whole: Vec<u8> = input
            .split_inclusive('\n')
            .flat_map(|l| {
                let body = l.strip_suffix('\n').unwrap_or(l);
                let mut v = r.redact(body.as_bytes());
                if l.ends_with('\n') { v.push(b'\n'); }
                v
            })
            .collect();
        let text = String::from_utf8_lossy(&out);
        prop_assert_eq!(&out, &whole);
        prop_assert!(!text.contains(SECRET));
        prop_assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"));
    }
}

mod export_filter {
    use lab_fs::ArtifactName;
    use lab_fs::bundle::ExportFilter;
    use lab_redact::Redactor;
    use lab_redact::export::RedactingFilter;

    fn run(filter: &RedactingFilter, name: &str, input: &[u8]) -> (bool, String) {
        let mut out = Vec::new();
        let mut input = input;
        let changed = filter
            .filter(&ArtifactName::parse(name).unwrap(), &mut input, &mut out)
            .unwrap();
        (changed, String::from_utf8(out).unwrap())
    }

    #[test]
    fn provenance_keeps_env_names_and_loses_values() {
        let filter = RedactingFilter::new(Redactor::new(["lab-process-secret-123"]));
        let provenance = br#"{
            "program": "python3",
            "argv": ["train.py", "--token", "lab-process-secret-123"],
            "env": {"OPENAI_API_KEY": "sk-abcdefghijklmnopqrstuvwx", "SEED": "7"},
            "environment": ["HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEF", "LANG=C"],
            "nested": {"AWS_SECRET_ACCESS_KEY": "plain-value", "note": "key AKIAIOSFODNN7EXAMPLE"}
        }"#;
        let (changed, out) = run(&filter, "provenance.json", provenance);
        assert!(changed);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["env"], serde_json::json!(["OPENAI_API_KEY", "SEED"]));
        assert_eq!(v["environment"], serde_json::json!(["HF_TOKEN", "LANG"]));
        assert_eq!(v["argv"][2], "[REDACTED]");
        assert_eq!(v["nested"]["AWS_SECRET_ACCESS_KEY"], "[REDACTED]");
        assert_eq!(v["nested"]["note"], "key [REDACTED]");
        for leaked in [
            "sk-abc",
            "hf_abc",
            "plain-value",
            "AKIA",
            "lab-process-secret",
            "\"7\"",
        ] {
            assert!(!out.contains(leaked), "{leaked} survived: {out}");
        }
    }

    #[test]
    fn text_is_redacted_and_media_copied() {
        let filter = RedactingFilter::new(Redactor::new(["lab-process-secret-123"]));
        let (changed, out) = run(&filter, "stdout.log", b"using lab-process-secret-123\nok\n");
        assert!(changed);
        assert_eq!(out, "using [REDACTED]\nok\n");
        let (changed, out) = run(&filter, "videos/a.mp4", b"lab-process-secret-123");
        assert!(
            !changed && out.is_empty(),
            "media is copied unchanged by the caller"
        );
        // A provenance.json that is not JSON is still redacted, as text.
        let (_, out) = run(
            &filter,
            "provenance.json",
            b"not json lab-process-secret-123",
        );
        assert_eq!(out, "not json [REDACTED]");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The fuzz target's oracle (`lab_redact::fuzz::check_redaction`) on
    /// generated inputs: a secret, its encodings woven into text, any split
    /// into reads.
    #[test]
    fn any_secret_in_any_encoding_and_any_reads_is_redacted(
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        lab_redact::fuzz::check_redaction(&data);
    }
}

/// The fuzz target's seeds and every input it ever failed on.
#[test]
fn committed_fuzz_inputs_hold() {
    for (_, bytes) in
        lab_test_support::fuzz::committed_inputs(env!("CARGO_MANIFEST_DIR").as_ref(), "redact")
    {
        lab_redact::fuzz::check_redaction(&bytes);
    }
}
