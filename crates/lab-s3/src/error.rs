//! The one error of lab-s3: a reason a person can act on, never a secret.

use std::fmt;

use crate::capped::TooLarge;

/// What went wrong talking to the store. `Display` is one line a person
/// can act on; no variant ever carries a key, a secret or a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A relative key that is empty, starts with `/`, holds a NUL or
    /// control character or an empty, `.` or `..` segment (never sent).
    InvalidKey(&'static str),
    /// No object at that key.
    NotFound,
    /// The object's ETag is no longer the one the caller pinned.
    Changed,
    /// The store refused us: wrong credentials or no permission.
    Denied(String),
    /// The bucket does not exist.
    NoSuchBucket,
    /// The store could not be reached (refused, reset, unresolvable).
    Unreachable(String),
    /// The store did not answer in time.
    TimedOut,
    /// Anything else, described without secrets.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidKey(why) => write!(f, "invalid key: {why}"),
            Error::NotFound => f.write_str("no such key"),
            Error::Changed => f.write_str("the object changed (its ETag no longer matches)"),
            Error::Denied(why) => f.write_str(why),
            Error::NoSuchBucket => f.write_str("no such bucket"),
            Error::Unreachable(why) => write!(f, "unreachable: {why}"),
            Error::TimedOut => f.write_str("timed out"),
            Error::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

/// The whole chain of an error as text (for classifying only).
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" | ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        if let Some(r) = s.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return Some(std::io::ErrorKind::TimedOut);
        }
        source = s.source();
    }
    None
}

/// The reason a body was refused for its size, if that is what failed.
fn too_large(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(TooLarge(why)) = s.downcast_ref::<TooLarge>() {
            return Some(why);
        }
        source = s.source();
    }
    None
}

/// The S3 error code in a response body (`<Code>NoSuchBucket</Code>`).
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    let code = &text[start..end];
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

/// Maps an object_store error to ours by what it is, never echoing the
/// upstream text (which names URLs and, for a bad signature, the access key).
pub(crate) fn classify(e: &object_store::Error) -> Error {
    use object_store::Error as E;
    if let Some(why) = too_large(e) {
        return Error::Other(why.to_owned());
    }
    let text = chain_text(e);
    let code = s3_code(&text);
    match code {
        Some("NoSuchBucket") => return Error::NoSuchBucket,
        Some(
            c @ ("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"),
        ) => {
            return Error::Denied(format!("wrong credentials (403 {c})"));
        }
        Some("AccessDenied" | "AllAccessDisabled") => {
            return Error::Denied("access denied".to_owned());
        }
        Some("PreconditionFailed") => return Error::Changed,
        Some("NoSuchKey") => return Error::NotFound,
        _ => {}
    }
    match e {
        E::Precondition { .. } => return Error::Changed,
        E::NotFound { .. } => return Error::NotFound,
        E::PermissionDenied { .. } => return Error::Denied("access denied".to_owned()),
        E::Unauthenticated { .. } => return Error::Denied("wrong credentials (401)".to_owned()),
        _ => {}
    }
    match io_kind(e) {
        Some(std::io::ErrorKind::TimedOut) => return Error::TimedOut,
        Some(std::io::ErrorKind::ConnectionRefused) => {
            return Error::Unreachable("connection refused".to_owned());
        }
        Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
            return Error::Unreachable("connection reset".to_owned());
        }
        _ => {}
    }
    let lower = text.to_ascii_lowercase();
    let status = [
        ("412 precondition", Error::Changed),
        ("403 forbidden", Error::Denied("access denied".to_owned())),
        ("404 not found", Error::NotFound),
        (
            "416 range not satisfiable",
            Error::Other("the range lies past the end of the object".to_owned()),
        ),
        (
            "redirect",
            Error::Other(
                "the store answered with a redirect, which the Lab never follows".to_owned(),
            ),
        ),
        ("timed out", Error::TimedOut),
        (
            "connection refused",
            Error::Unreachable("connection refused".to_owned()),
        ),
        (
            "dns error",
            Error::Unreachable("cannot resolve the endpoint's host".to_owned()),
        ),
        (
            "certificate",
            Error::Unreachable("TLS certificate not trusted".to_owned()),
        ),
        (
            "error sending request",
            Error::Unreachable("cannot connect".to_owned()),
        ),
        (
            "connection closed",
            Error::Unreachable("connection closed".to_owned()),
        ),
        (
            "connection reset",
            Error::Unreachable("connection reset".to_owned()),
        ),
    ];
    for (needle, error) in status {
        if lower.contains(needle) {
            return error;
        }
    }
    if let Some(status) = lower
        .split("status code: ")
        .nth(1)
        .and_then(|s| s.get(..3))
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        if status.starts_with('3') {
            return Error::Other(
                "the store answered with a redirect, which the Lab never follows".to_owned(),
            );
        }
        return Error::Other(format!("the store answered HTTP {status}"));
    }
    match e {
        E::InvalidPath { .. } => {
            Error::Other("the store listed a key the Lab cannot read".to_owned())
        }
        _ => Error::Other("the store's answer could not be read".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_codes_are_read_from_bodies() {
        assert_eq!(
            s3_code("x <Code>NoSuchBucket</Code> y"),
            Some("NoSuchBucket")
        );
        assert_eq!(s3_code("<Code>a b</Code>"), None);
        assert_eq!(s3_code("nothing"), None);
    }
}
