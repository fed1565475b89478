//! Signed element URLs (SPEC §4, §5): what a page element loads without
//! headers — an artifact, a TensorBoard image, a bundle download, a job's
//! log stream — carries `?exp=EXP&sig=SIG`, where SIG is HMAC-SHA256 under
//! its session's own 256-bit key over `GET\n<raw path>\n<exp>`, base64url.
//!
//! A browser sends the session cookie to every port of the host, a foreign
//! server's included; a signature is what such a cookie lacks. It is
//! checked in constant time, only with the cookie of the session whose key
//! made it, only on the element routes, and only until `exp` (Unix
//! seconds, never further ahead than the session's lifetime). The key dies
//! with the session.
//!
//! ```text
//! /api/runs/demo-1a2b3c4d5e6f/artifacts/videos/a%20b.mp4?exp=1797000000&sig=Jx3…
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::decode::{base64url, percent_encode_path};

/// A session's signing key: 256 bits from the OS RNG, in memory only. Its
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SignKey([u8; 32]);

impl SignKey {
    /// A new key from the OS RNG.
    pub(crate) fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The signature of `path` until `exp`, base64url (43 characters).
    fn sign(&self, path: &str, exp: u64) -> String {
        base64url(&hmac_sha256(
            &self.0,
            &[b"GET\n", path.as_bytes(), b"\n", exp.to_string().as_bytes()],
        ))
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under a 32-byte
/// key. The key is zero-padded to SHA-256's 64-byte block, which is what
/// RFC 2104 does to a shorter key: the same MAC, through the constructor
/// that cannot fail.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for SignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignKey([hidden])")
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How the URLs in one response are written: signed for the page of a
/// bound session, plain for a script holding the key (`Bearer`, which
/// needs no signature).
#[derive(Clone, Debug)]
pub(crate) enum Urls {
    /// Signed with the session's key, valid until `exp`.
    Signed {
        /// The session's key.
        key: SignKey,
        /// Unix seconds.
        exp: u64,
    },
    /// As they are.
    Plain,
    /// Under a mounted Lab's prefix ([`Urls::under`]).
    Mounted {
        /// How the path itself is written.
        inner: Box<Urls>,
        /// The prefix the host mounts the Lab under.
        prefix: String,
    },
}

impl Urls {
    /// Signs for a session whose lifetime is `lifetime`, at `now` (Unix
    /// seconds). `exp` is `now + lifetime` rounded down to the hour when
    /// the lifetime is two hours or more, so that the URLs a page is given
    /// stay the same for an hour (an image is not fetched again for each
    /// new answer) and are valid at least `lifetime - 1 h`.
    pub(crate) fn signed(key: SignKey, now: u64, lifetime: Duration) -> Self {
        let end = now.saturating_add(lifetime.as_secs());
        let exp = if lifetime >= Duration::from_secs(2 * 3600) {
            end - end % 3600
        } else {
            end
        };
        Urls::Signed { key, exp }
    }

    /// The URL of `path` (a raw path as the server emits it, already
    /// percent-encoded, without a query).
    pub(crate) fn url(&self, path: &str) -> String {
        match self {
            Urls::Signed { key, exp } => {
                format!("{path}?exp={exp}&sig={}", key.sign(path, *exp))
            }
            Urls::Plain => path.to_owned(),
            Urls::Mounted { inner, prefix } => format!("{prefix}{}", inner.url(path)),
        }
    }

    /// These URLs for a Lab mounted under `prefix` (`""`: as they are):
    /// the signature stays over the path the Lab itself sees (the host
    /// strips the prefix before it hands a request on), the URL the
    /// browser follows starts with the prefix.
    pub(crate) fn under(self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        Urls::Mounted {
            inner: Box::new(self),
            prefix: prefix.to_owned(),
        }
    }
}

/// The raw path of an artifact of a run, as the server emits it.
pub(crate) fn artifact_path(run: &str, name: &str) -> String {
    format!(
        "/api/runs/{}/artifacts/{}",
        percent_encode_path(run),
        percent_encode_path(name)
    )
}

/// The raw path of a TensorBoard image (`FILE/OFFSET/N`) of a run.
pub(crate) fn image_path(run: &str, image: &str) -> String {
    format!(
        "/api/runs/{}/images/{}",
        percent_encode_path(run),
        percent_encode_path(image)
    )
}

/// The raw path of a bundle download.
pub(crate) fn export_path(file: &str) -> String {
    format!(
        "/api/exports/{}",
        percent_encode_path(file).replace('/', "%2F")
    )
}

/// The raw path of a job's log stream.
pub(crate) fn job_log_path(job: &str) -> String {
    format!(
        "/api/jobs/{}/log",
        percent_encode_path(job).replace('/', "%2F")
    )
}

/// Why a request's URL signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsigned {
    /// The query names neither `exp` nor `sig`: the request did not try.
    Absent,
    /// A signature that does not hold: malformed, for another path or
    /// session, expired, or reaching further than a session lives.
    Bad,
}

/// Checks the signature in `query` for `path` (the raw request path) under
/// `key`, at `now` (Unix seconds), for a session living `lifetime`. The
/// query must be exactly `exp` and `sig`, once each, in either order.
pub(crate) fn verify(
    key: &SignKey,
    path: &str,
    query: Option<&str>,
    now: u64,
    lifetime: Duration,
) -> Result<(), Unsigned> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Err(Unsigned::Absent);
    };
    let mut exp = None;
    let mut sig = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "exp" => &mut exp,
            "sig" => &mut sig,
            _ => return Err(Unsigned::Bad),
        };
        if slot.replace(value).is_some() {
            return Err(Unsigned::Bad);
        }
    }
    let (Some(exp_text), Some(sig)) = (exp, sig) else {
        return Err(Unsigned::Bad);
    };
    // Digits only, no sign, no leading zero: one spelling per instant.
    let canonical = !exp_text.is_empty()
        && exp_text.len() <= 20
        && exp_text.bytes().all(|b| b.is_ascii_digit())
        && (exp_text == "0" || !exp_text.starts_with('0'));
    let Some(exp) = canonical.then(|| exp_text.parse::<u64>().ok()).flatten() else {
        return Err(Unsigned::Bad);
    };
    let expected = key.sign(path, exp);
    // Compared before the clock, so every malformed or live-looking
    // signature costs the same.
    let matches = bool::from(sig.as_bytes().ct_eq(expected.as_bytes()));
    if !matches || exp < now || exp > now.saturating_add(lifetime.as_secs()) {
        return Err(Unsigned::Bad);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: u64 = 1_800_000_123;

    fn url_of(urls: &Urls, path: &str) -> (String, String) {
        let url = urls.url(path);
        let (p, q) = url.split_once('?').unwrap();
        (p.to_owned(), q.to_owned())
    }

    /// One case: what a request sends (path, query) against the key that
    /// signed, at `now`.
    fn check(
        key: &SignKey,
        path: &str,
        query: Option<&str>,
        now: u64,
        expected: Result<(), Unsigned>,
    ) {
        assert_eq!(
            verify(key, path, query, now, 12 * HOUR),
            expected,
            "{path}?{query:?} at {now}"
        );
    }

    #[test]
    fn a_signature_opens_its_own_path_until_it_expires_and_nothing_else() {
        let key = SignKey::generate().unwrap();
        let other = SignKey::generate().unwrap();
        let path = "/api/runs/demo/artifacts/videos/a%20b.mp4";
        let urls = Urls::signed(key.clone(), NOW, 12 * HOUR);
        let Urls::Signed { exp, .. } = urls else {
            panic!()
        };
        assert_eq!(exp % 3600, 0);
        assert!(exp > NOW + 11 * 3600 && exp <= NOW + 12 * 3600, "{exp}");
        let (p, q) = url_of(&urls, path);
        assert_eq!(p, path);
        let sig = q.split_once("&sig=").unwrap().1.to_owned();
        assert_eq!(sig.len(), 43);
        let swapped = format!("sig={sig}&exp={exp}");
        let other_query = url_of(&Urls::signed(other.clone(), NOW, 12 * HOUR), path).1;
        let later = format!("exp={}&sig={sig}", exp + 3600);
        let ok = Ok(());
        let bad = Err(Unsigned::Bad);
        check(&key, path, Some(&q), NOW, ok);
        check(&key, path, Some(&swapped), NOW, ok);
        check(&key, path, Some(&q), exp, ok);
        // Expired, one second on.
        check(&key, path, Some(&q), exp + 1, bad);
        // Another path: another file, another run, the same path decoded.
        for elsewhere in [
            "/api/runs/demo/artifacts/videos/a%20b.mp4x",
            "/api/runs/other/artifacts/videos/a%20b.mp4",
            "/api/runs/demo/artifacts/videos/a b.mp4",
            "/api/runs/demo/artifacts/videos/a%20B.mp4",
            "/api/exports/demo.tar",
        ] {
            check(&key, elsewhere, Some(&q), NOW, bad);
        }
        // Another session's key, or another session's signature.
        check(&other, path, Some(&q), NOW, bad);
        check(&key, path, Some(&other_query), NOW, bad);
        // A later exp with the same signature.
        check(&key, path, Some(&later), NOW, bad);
        // Malformed queries.
        for query in [
            format!("exp={exp}"),
            format!("sig={sig}"),
            format!("{q}&x=1"),
            format!("{q}&sig={sig}"),
            format!("{q}&exp={exp}"),
            format!("exp=0{exp}&sig={sig}"),
            format!("exp=+{exp}&sig={sig}"),
            format!("exp={exp}&sig={}", &sig[1..]),
            format!("exp={exp}&sig={sig}A"),
            format!("exp={exp}&sig={}", sig.to_uppercase()),
            format!("exp={exp}&sig"),
            "exp=&sig=".to_owned(),
            "x".to_owned(),
            "&".to_owned(),
        ] {
            check(&key, path, Some(&query), NOW, bad);
        }
        check(&key, path, None, NOW, Err(Unsigned::Absent));
        check(&key, path, Some(""), NOW, Err(Unsigned::Absent));
    }

    #[test]
    fn hmac_is_rfc_4231() {
        // RFC 4231 test case 2: key "Jefe" (HMAC pads it with zeros).
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn exp_never_reaches_past_the_lifetime() {
        let key = SignKey::generate().unwrap();
        let path = "/api/exports/a.tar";
        // Signed with a longer lifetime than the server grants: refused.
        let (_, q) = url_of(&Urls::signed(key.clone(), NOW, 48 * HOUR), path);
        check(&key, path, Some(&q), NOW, Err(Unsigned::Bad));
        // A short lifetime is not rounded.
        let urls = Urls::signed(key.clone(), NOW, Duration::from_secs(60));
        let Urls::Signed { exp, .. } = urls else {
            panic!()
        };
        assert_eq!(exp, NOW + 60);
        assert_eq!(Urls::Plain.url(path), path);
    }
}
