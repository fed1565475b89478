//! `s3://BUCKET/PREFIX`, parsed once at the boundary.

use std::fmt;

/// The most bytes a root's prefix may have.
const MAX_PREFIX: usize = 512;

/// `s3://BUCKET/PREFIX` parsed at the boundary: never a path.
///
/// Holding one is the proof that the bucket follows S3's naming rules and
/// that the prefix is a sequence of non-empty segments, none `.` or `..`,
/// with no `%`, `\`, NUL or control character anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct S3Url {
    bucket: String,
    prefix: String,
}

/// Why a string is not an `s3://` root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

fn refuse(reason: &str) -> UrlError {
    UrlError(reason.to_owned())
}

impl S3Url {
    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX` (one trailing `/` is
    /// allowed and dropped). Rejects, never repairs.
    pub fn parse(s: &str) -> Result<S3Url, UrlError> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| refuse("not an s3:// URL"))?;
        if let Some(c) = rest.chars().find(|c| {
            *c == '%' || *c == '\\' || *c == '?' || *c == '#' || *c == '@' || c.is_control()
        }) {
            return Err(UrlError(match c {
                '%' => "percent-encoding is not allowed in an s3:// URL".to_owned(),
                '\\' => "a backslash is not allowed in an s3:// URL".to_owned(),
                '?' => "a query is not allowed in an s3:// URL".to_owned(),
                '#' => "a fragment is not allowed in an s3:// URL".to_owned(),
                '@' => "user information is not allowed in an s3:// URL".to_owned(),
                _ => "a control character is not allowed in an s3:// URL".to_owned(),
            }));
        }
        let (bucket, prefix) = match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket, prefix),
            None => (rest, ""),
        };
        check_bucket(bucket)?;
        let prefix = if prefix.is_empty() {
            ""
        } else {
            let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
            if trimmed.is_empty() {
                return Err(refuse("an empty segment in the prefix"));
            }
            trimmed
        };
        if prefix.len() > MAX_PREFIX {
            return Err(refuse("the prefix is longer than 512 bytes"));
        }
        if !prefix.is_empty() {
            for segment in prefix.split('/') {
                match segment {
                    "" => return Err(refuse("an empty segment in the prefix")),
                    "." | ".." => return Err(refuse("a `.` or `..` segment in the prefix")),
                    _ => {}
                }
            }
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The prefix, without a leading or trailing `/` (empty: the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the `s3://` URL `other` names a key strictly beneath this
    /// root, segment by segment: `s3://b/pre` does not contain
    /// `s3://b/prefix2/x`, and a root does not contain itself. A string that
    /// does not parse is never within.
    pub fn is_within(&self, other: &str) -> bool {
        let Ok(other) = S3Url::parse(other) else {
            return false;
        };
        if other.bucket != self.bucket || other.prefix.is_empty() {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        other
            .prefix
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The full key of `rel` (already checked) beneath this root.
    pub(crate) fn full_key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// `rel` of a full key that lies beneath this root, if it does.
    pub(crate) fn relative<'k>(&self, full: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            Some(full)
        } else {
            full.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// S3's bucket naming rules: 3 to 63 characters of `[a-z0-9.-]`, starting
/// and ending with a letter or digit, no `..`, not an IPv4 address.
fn check_bucket(bucket: &str) -> Result<(), UrlError> {
    if bucket.is_empty() {
        return Err(refuse("no bucket"));
    }
    if bucket.contains(':') {
        return Err(refuse("a port is not allowed in an s3:// URL"));
    }
    let bytes = bucket.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| alnum(b) || b == b'.' || b == b'-')
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
        && !bucket.contains("..")
        && bucket.parse::<std::net::Ipv4Addr>().is_err();
    if valid {
        Ok(())
    } else {
        Err(refuse(
            "not a valid bucket name (3 to 63 of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit)",
        ))
    }
}

/// Checks a key relative to a root: non-empty, no leading `/`, no NUL or
/// control character, no empty, `.` or `..` segment.
pub(crate) fn check_rel(rel: &str) -> Result<(), &'static str> {
    if rel.is_empty() {
        return Err("an empty key");
    }
    if rel.starts_with('/') {
        return Err("a key starting with `/`");
    }
    if rel.chars().any(char::is_control) {
        return Err("a NUL or control character in a key");
    }
    if rel
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("an empty, `.` or `..` segment in a key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), ()>) {
        let got = S3Url::parse(input);
        match expected {
            Ok((bucket, prefix)) => {
                let url = got.unwrap_or_else(|e| panic!("{input:?} refused: {e}"));
                assert_eq!((url.bucket(), url.prefix()), (bucket, prefix), "{input:?}");
            }
            Err(()) => assert!(got.is_err(), "{input:?} accepted as {got:?}"),
        }
    }

    #[test]
    fn good_urls_parse() {
        for (input, bucket, prefix) in [
            ("s3://bucket", "bucket", ""),
            ("s3://bucket/", "bucket", ""),
            ("s3://my-bucket.data/runs", "my-bucket.data", "runs"),
            ("s3://b12/runs/", "b12", "runs"),
            ("s3://b12/a/b/c", "b12", "a/b/c"),
            ("s3://b12/a b/..c/d..", "b12", "a b/..c/d.."),
            ("s3://123/x", "123", "x"),
        ] {
            check(input, Ok((bucket, prefix)));
        }
    }

    #[test]
    fn bad_urls_are_refused() {
        let long = format!("s3://bucket/{}", "a".repeat(513));
        for input in [
            "",
            "s3:/bucket",
            "S3://bucket",
            "http://bucket/x",
            "s3://",
            "s3:///x",
            "s3://ab",
            "s3://Bucket",
            "s3://-bucket",
            "s3://bucket-",
            "s3://.bucket",
            "s3://bu..cket",
            "s3://bu_cket",
            "s3://192.168.1.1",
            &format!("s3://{}", "a".repeat(64)),
            "s3://user@bucket/x",
            "s3://user:pw@bucket/x",
            "s3://bucket:9000/x",
            "s3://bucket/x?list-type=2",
            "s3://bucket/x#frag",
            "s3://bucket/a%2e%2e",
            "s3://bucket/%2e%2e/x",
            "s3://bucket/a%2Fb",
            "s3://bucket/a\\b",
            "s3://bucket/..\\x",
            "s3://bucket/a\0b",
            "s3://bucket/a\nb",
            "s3://bucket/a\u{7f}",
            "s3://bucket/a\u{85}b",
            "s3://bucket//",
            "s3://bucket//x",
            "s3://bucket/a//c",
            "s3://bucket/a//",
            "s3://bucket/.",
            "s3://bucket/..",
            "s3://bucket/a/../b",
            "s3://bucket/a/./b",
            "s3://bucket/a/..",
            &long,
        ] {
            check(input, Err(()));
        }
    }

    #[test]
    fn a_prefix_of_exactly_512_bytes_is_allowed() {
        let url = format!("s3://bucket/{}/", "a".repeat(512));
        check(&url, Ok(("bucket", &"a".repeat(512))));
    }

    #[test]
    fn display_has_no_trailing_slash() {
        assert_eq!(
            S3Url::parse("s3://bucket/").unwrap().to_string(),
            "s3://bucket"
        );
        assert_eq!(
            S3Url::parse("s3://bucket/a/b/").unwrap().to_string(),
            "s3://bucket/a/b"
        );
    }

    #[test]
    fn within_is_segment_wise_and_strict() {
        let root = S3Url::parse("s3://b12/pre").unwrap();
        for (other, within) in [
            ("s3://b12/pre/x", true),
            ("s3://b12/pre/x/y", true),
            ("s3://b12/pre/x/", true),
            ("s3://b12/pre", false),
            ("s3://b12/pre/", false),
            ("s3://b12/prefix2/x", false),
            ("s3://b12/pre2", false),
            ("s3://b12/other/x", false),
            ("s3://b13/pre/x", false),
            ("s3://b12/pre/../x", false),
            ("s3://b12/pre/%2e%2e/x", false),
            ("s3://b12/pre//x", false),
            ("https://b12/pre/x", false),
            ("", false),
        ] {
            assert_eq!(root.is_within(other), within, "{other}");
        }
        let whole = S3Url::parse("s3://b12").unwrap();
        assert!(whole.is_within("s3://b12/x"));
        assert!(!whole.is_within("s3://b12"));
        assert!(!whole.is_within("s3://b12/"));
    }

    #[test]
    fn relative_keys_are_checked() {
        for good in ["a", "a/b", "a b/c.d", "..a/b..", "%2e%2e"] {
            assert_eq!(check_rel(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", "./a", "a\0", "a\nb",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn full_and_relative_keys_round_trip_only_beneath_the_root() {
        let root = S3Url::parse("s3://b12/pre").unwrap();
        assert_eq!(root.full_key("a/b"), "pre/a/b");
        assert_eq!(root.relative("pre/a/b"), Some("a/b"));
        assert_eq!(root.relative("prefix2/x"), None);
        assert_eq!(root.relative("other/x"), None);
        let whole = S3Url::parse("s3://b12").unwrap();
        assert_eq!(whole.full_key("a"), "a");
        assert_eq!(whole.relative("a"), Some("a"));
    }
}
