//! Who is asking (SPEC §5): the access key printed in the login link, the
//! sessions it buys, and the credential a request carries.
//!
//! The key is 256 bits from the OS RNG, base64url, new for every `serve`;
//! it is accepted only from `Authorization: Bearer KEY` or the body of
//! `POST /api/session`, never from a query string, and compared in constant
//! time. A session is another 256 random bits, held in memory only and sent
//! to the browser as an `HttpOnly; SameSite=Strict; Path=/` cookie whose
//! name is new for every `serve` too (cookies ignore ports: two Labs on one
//! host must not overwrite each other's).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::decode::base64url;
use crate::signed::SignKey;

/// Most sessions kept; the oldest is forgotten beyond this.
const MAX_SESSIONS: usize = 256;

fn random_base64url() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(base64url(&bytes))
}

/// The access key of one `serve`. Its `Debug` never shows it.
#[derive(Clone)]
pub struct AccessKey(String);

impl AccessKey {
    /// A new key: 32 bytes from the OS RNG, base64url (43 characters).
    pub fn generate() -> std::io::Result<Self> {
        random_base64url().map(Self)
    }

    /// The key, for the login link (and `--key-file`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with what a client sent.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(given.ct_eq(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey([hidden])")
    }
}

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The session cookie of a browser that logged in with the key, with
    /// that session's page token (what its mutations must echo in
    /// `X-Lab-Token`; it dies with the session) and signing key.
    Cookie {
        /// The session's page token (64 hex digits).
        token: String,
        /// The session's key for element URLs ([`crate::signed`]).
        key: SignKey,
        /// The request carried the session's page binding
        /// (`X-Lab-Binding`). Without it the cookie is what a browser
        /// sends to every port of the host, a foreign one's included:
        /// alone it reads nothing; with a valid URL signature, an element
        /// route.
        bound: bool,
    },
    /// `Authorization: Bearer KEY` (scripts); not forgeable by a browser.
    Bearer,
}

impl Credential {
    /// Proved by a secret no browser sends on its own: the key, or the
    /// cookie together with its page's binding.
    pub(crate) fn is_full(&self) -> bool {
        matches!(
            self,
            Credential::Bearer | Credential::Cookie { bound: true, .. }
        )
    }
}

/// A session: its cookie value, its page token, the page binding its login
/// gave (a secret the UI keeps in its own origin's storage), its key for
/// element URLs, and when its page last used it.
struct Session {
    id: String,
    token: String,
    binding: String,
    key: SignKey,
    used: Instant,
}

/// The header that carries a session's page binding.
pub(crate) const BINDING_HEADER: &str = "x-lab-binding";

/// Sessions in memory.
pub(crate) struct Sessions {
    cookie: String,
    /// The cookie's `Path`: `/`, or a mounted Lab's prefix with a final
    /// `/`, so the host's own routes are never sent it.
    path: String,
    /// A session ends this long after its page last used it (a request
    /// with its binding).
    pub(crate) lifetime: Duration,
    live: Mutex<VecDeque<Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("cookie", &self.cookie)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    #[cfg(test)]
    pub(crate) fn new(lifetime: Duration) -> std::io::Result<Self> {
        Self::under(lifetime, "")
    }

    /// Sessions whose cookie is sent only beneath `prefix` (`""`: the
    /// whole origin).
    pub(crate) fn under(lifetime: Duration, prefix: &str) -> std::io::Result<Self> {
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            cookie: format!("lab_session_{}", base64url(&id)),
            path: format!("{prefix}/"),
            lifetime,
            live: Mutex::new(VecDeque::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Session>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session bound to `binding`; returns its `Set-Cookie` value.
    pub(crate) fn open(&self, binding: String) -> std::io::Result<HeaderValue> {
        let id = random_base64url()?;
        let token = lab_registry::data_dir::random_hex(32)?;
        let key = SignKey::generate()?;
        let mut live = self.lock();
        let lifetime = self.lifetime;
        live.retain(|s| s.used.elapsed() <= lifetime);
        if live.len() >= MAX_SESSIONS {
            live.pop_front();
        }
        live.push_back(Session {
            id: id.clone(),
            token,
            binding,
            key,
            used: Instant::now(),
        });
        HeaderValue::from_str(&format!(
            "{}={id}; HttpOnly; SameSite=Strict; Path={}",
            self.cookie, self.path
        ))
        .map_err(std::io::Error::other)
    }

    /// Forgets the session `headers` carry; returns the `Set-Cookie` value
    /// that clears the cookie.
    pub(crate) fn close(&self, headers: &HeaderMap) -> HeaderValue {
        for given in self.cookie_values(headers) {
            self.lock()
                .retain(|s| !bool::from(s.id.as_bytes().ct_eq(given.as_bytes())));
        }
        HeaderValue::from_str(&format!(
            "{}=; HttpOnly; SameSite=Strict; Path={}; Max-Age=0",
            self.cookie, self.path
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("lab_session=; Max-Age=0"))
    }

    /// Every value sent under this Lab's cookie name, at most 16: a page
    /// on another port of the host can plant a cookie of the same name
    /// (cookies ignore ports), which a browser may send before the real
    /// one.
    fn cookie_values(&self, headers: &HeaderMap) -> Vec<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value.to_owned())
            .take(16)
            .collect()
    }

    /// The credential of the live session `given` names, bound when
    /// `binding` is its page's binding (which also renews it). Every live
    /// id is compared, in constant time each; a session its page has not
    /// used for a lifetime is over.
    fn session_of(&self, given: &str, binding: Option<&[u8]>) -> Option<Credential> {
        let mut live = self.lock();
        let lifetime = self.lifetime;
        let mut found = None;
        for session in live.iter_mut() {
            if bool::from(session.id.as_bytes().ct_eq(given.as_bytes()))
                && session.used.elapsed() <= lifetime
            {
                let bound =
                    binding.is_some_and(|b| bool::from(b.ct_eq(session.binding.as_bytes())));
                if bound {
                    session.used = Instant::now();
                }
                found = Some(Credential::Cookie {
                    token: session.token.clone(),
                    key: session.key.clone(),
                    bound,
                });
            }
        }
        found
    }
}

/// The credential `headers` carry, if any is valid. A malformed or wrong
/// `Authorization` header is no credential (and never falls back to the
/// cookie: a client that sends one means it).
pub(crate) fn authenticate(
    headers: &HeaderMap,
    key: &AccessKey,
    sessions: &Sessions,
) -> Option<Credential> {
    let mut auth = headers.get_all(AUTHORIZATION).iter();
    match (auth.next(), auth.next()) {
        (Some(value), None) => {
            let value = value.as_bytes();
            let (scheme, rest) = value.split_at(value.len().min(7));
            return (scheme.eq_ignore_ascii_case(b"bearer ") && key.matches(rest))
                .then_some(Credential::Bearer);
        }
        (Some(_), Some(_)) => return None,
        (None, _) => {}
    }
    let mut given = headers.get_all(BINDING_HEADER).iter();
    // One binding header, or none counts.
    let binding = match (given.next(), given.next()) {
        (Some(value), None) => Some(value.as_bytes()),
        _ => None,
    };
    // Of every value under the cookie's name (a planted one among them),
    // the live session bound by this binding, else the first live one.
    let mut found = None;
    for value in sessions.cookie_values(headers) {
        match sessions.session_of(&value, binding) {
            Some(bound @ Credential::Cookie { bound: true, .. }) => return Some(bound),
            Some(other) if found.is_none() => found = Some(other),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    const BINDING: &str = "b1nd1ng-0123456789abcdef";

    #[test]
    fn base64url_is_rfc_4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let key = AccessKey::generate().unwrap();
        assert_eq!(key.as_str().len(), 43);
        assert_ne!(key.as_str(), AccessKey::generate().unwrap().as_str());
        assert_eq!(format!("{key:?}"), "AccessKey([hidden])");
    }

    #[test]
    fn bearer_and_cookie_credentials() {
        let key = AccessKey::generate().unwrap();
        let sessions = Sessions::new(Duration::from_secs(12 * 3600)).unwrap();
        let k = key.as_str();
        assert_eq!(authenticate(&headers(&[]), &key, &sessions), None);
        for good in [
            format!("Bearer {k}"),
            format!("bearer {k}"),
            format!("BEARER {k}"),
        ] {
            assert_eq!(
                authenticate(&headers(&[("authorization", &good)]), &key, &sessions),
                Some(Credential::Bearer),
                "{good}"
            );
        }
        for bad in [
            format!("Bearer {}", &k[..42]),
            format!("Bearer {k}x"),
            format!("Basic {k}"),
            format!("Bearer  {k}"),
            k.to_owned(),
            String::new(),
        ] {
            assert_eq!(
                authenticate(&headers(&[("authorization", &bad)]), &key, &sessions),
                None,
                "{bad:?}"
            );
        }
        let set = sessions.open(BINDING.into()).unwrap();
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        assert!(
            set.to_str()
                .unwrap()
                .contains("HttpOnly; SameSite=Strict; Path=/")
        );
        let with_cookie = headers(&[("cookie", &format!("other=1; {pair}"))]);
        let Some(Credential::Cookie { token, .. }) = authenticate(&with_cookie, &key, &sessions)
        else {
            panic!("the session cookie is a credential");
        };
        assert_eq!(token.len(), 64);
        // Each session has its own page token.
        let other_set = sessions.open(BINDING.into()).unwrap();
        let other_pair = other_set
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let Some(Credential::Cookie { token: other, .. }) =
            authenticate(&headers(&[("cookie", &other_pair)]), &key, &sessions)
        else {
            panic!("a second session");
        };
        assert_ne!(token, other);
        // A wrong Authorization header is never rescued by a good cookie.
        let both = headers(&[("cookie", &pair), ("authorization", "Bearer nope")]);
        assert_eq!(authenticate(&both, &key, &sessions), None);
        // The key itself is not a session; a closed session is gone.
        let (name, _) = pair.split_once('=').unwrap();
        let forged = headers(&[("cookie", &format!("{name}={k}"))]);
        assert_eq!(authenticate(&forged, &key, &sessions), None);
        let cleared = sessions.close(&with_cookie);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(authenticate(&with_cookie, &key, &sessions), None);
        // Another Lab's cookie name is not ours.
        let other = Sessions::new(Duration::from_secs(12 * 3600)).unwrap();
        assert_ne!(other.cookie, sessions.cookie);
    }

    #[test]
    fn a_cookie_is_bound_only_with_its_own_binding_and_ends_with_its_lifetime() {
        let key = AccessKey::generate().unwrap();
        let sessions = Sessions::new(Duration::from_millis(300)).unwrap();
        let pair = |set: HeaderValue| set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mine = pair(sessions.open(BINDING.into()).unwrap());
        let theirs = pair(sessions.open("another-binding-0123456789".into()).unwrap());
        let bound = |cookie: &str, binding: &[&str]| {
            let mut h = vec![("cookie", cookie)];
            h.extend(binding.iter().map(|b| (BINDING_HEADER, *b)));
            match authenticate(&headers(&h), &key, &sessions) {
                Some(Credential::Cookie { bound, .. }) => Some(bound),
                _ => None,
            }
        };
        assert_eq!(bound(&mine, &[BINDING]), Some(true));
        assert_eq!(bound(&mine, &[]), Some(false));
        assert_eq!(bound(&mine, &["another-binding-0123456789"]), Some(false));
        assert_eq!(bound(&mine, &[&BINDING[1..]]), Some(false));
        assert_eq!(bound(&mine, &[BINDING, BINDING]), Some(false));
        assert_eq!(bound(&theirs, &[BINDING]), Some(false));
        // A planted cookie of the same name, sent first, changes nothing;
        // of two live sessions the binding picks its own.
        let (name, _) = mine.split_once('=').unwrap();
        let planted = format!("{name}=junk; {mine}");
        assert_eq!(bound(&planted, &[BINDING]), Some(true));
        assert_eq!(bound(&format!("{theirs}; {mine}"), &[BINDING]), Some(true));
        assert_eq!(bound(&format!("{name}=junk"), &[BINDING]), None);
        // Each session signs with its own key.
        let key_of =
            |cookie: &str| match authenticate(&headers(&[("cookie", cookie)]), &key, &sessions) {
                Some(Credential::Cookie { key, .. }) => key,
                other => panic!("{other:?}"),
            };
        assert_ne!(key_of(&mine), key_of(&theirs));
        // Used with its binding, a session lives on; the cookie alone does
        // not renew it.
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(bound(&mine, &[BINDING]), Some(true));
            let _ = bound(&theirs, &[]);
        }
        assert_eq!(bound(&theirs, &[]), None, "unused for its lifetime: over");
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(bound(&mine, &[BINDING]), None);
    }
}
