//! Run ids: `[a-z0-9][a-z0-9-]{0,63}`.
//!
//! A run found or imported gets a **stable** id (SPEC §4): a slug of its
//! name and the first 12 hex digits of SHA-256 over where it is —
//!
//! ```text
//! ROOT \0 WITHIN            a run directory
//! ROOT \0 WITHIN \0 ENTRY   a run of a store (WITHIN is the store's directory)
//! ```
//!
//! — where ROOT is the allowed root holding it (its canonical path as
//! UTF-8; `/` when none does), WITHIN the directory's path below ROOT
//! (`/`-separated, no leading `/`), and ENTRY the store's key of the run.
//! So the same directory has the same id in every data dir. On a clash
//! with another run's id the suffix is 16 hex digits. A job's run keeps a
//! random suffix ([`RunId::generate`]): its id names its directory.

use sha2::{Digest, Sha256};

use crate::Error;

/// Longest run id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Longest slug a stable id starts with, in bytes.
pub const MAX_SLUG_LEN: usize = 40;

/// Hex digits of a stable id's hash, and on a clash.
const STABLE_HEX: [usize; 2] = [12, 16];

/// Where a run is, as its stable id hashes it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    /// The allowed root holding the run, canonical (`/` when none does).
    pub root: &'a str,
    /// The run's directory below `root` (a store's, for a store's run),
    /// `/`-separated, without a leading `/`.
    pub within: &'a str,
    /// For a run of a store: its key in the store.
    pub entry: Option<&'a str>,
}

impl Place<'_> {
    /// The bytes hashed: `root \0 within`, then `\0 entry` for a store's
    /// run.
    pub fn hashed(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.root.len() + self.within.len() + 2);
        bytes.extend_from_slice(self.root.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(self.within.as_bytes());
        if let Some(entry) = self.entry {
            bytes.push(0);
            bytes.extend_from_slice(entry.as_bytes());
        }
        bytes
    }
}

/// The slug of `name` an id starts with: lower-case ASCII letters and
/// digits, every other run of characters one `-` (none first or last), at
/// most [`MAX_SLUG_LEN`] bytes; `run` when nothing is left.
pub(crate) fn slug(name: &str) -> String {
    slug_capped(name, MAX_SLUG_LEN)
}

fn slug_capped(name: &str, cap: usize) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if slug.len() >= cap {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "run".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Whether `id` has the shape [`RunId::generate`] gave every id before
/// ids were stable: a slug, `-`, and six hex digits. Stable ids (12 or 16
/// digits after the last `-`) never have it.
pub(crate) fn has_random_suffix(id: &RunId) -> bool {
    let id = id.as_str();
    let Some((slug, suffix)) = id.rsplit_once('-') else {
        return false;
    };
    !slug.is_empty()
        && suffix.len() == 6
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What an id was made from (the slug part of an id of the old shape),
/// for the stable id that replaces it.
pub(crate) fn slug_of(id: &RunId) -> &str {
    id.as_str()
        .rsplit_once('-')
        .map_or(id.as_str(), |(slug, _)| slug)
}

/// A valid run id. Holding one proves it matches `[a-z0-9][a-z0-9-]{0,63}`,
/// so it is safe in a URL path segment, a file name and a log line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// Parses an id exactly as given.
    pub fn parse(id: &str) -> Result<Self, Error> {
        let bytes = id.as_bytes();
        let Some(first) = bytes.first() else {
            return Err(Error::InvalidId("empty"));
        };
        if bytes.len() > MAX_ID_LEN {
            return Err(Error::InvalidId("longer than 64 characters"));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(Error::InvalidId("must start with a-z or 0-9"));
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(Error::InvalidId("only a-z, 0-9 and - are allowed"));
        }
        Ok(Self(id.to_owned()))
    }

    /// A new random id from a directory name: a slug of it plus a short
    /// random suffix, e.g. `cartpole-ppo-3f9c2d`. Only a job's run gets
    /// one (its directory is named after it); every other run's id is
    /// [`RunId::stable`].
    pub fn generate(dir_name: &str) -> Result<Self, Error> {
        let slug = slug_capped(dir_name, MAX_ID_LEN - 7);
        let mut random = [0u8; 3];
        getrandom::fill(&mut random).map_err(|e| Error::Io {
            context: "reading the OS random number generator",
            source: std::io::Error::other(e.to_string()),
        })?;
        Self::parse(&format!("{slug}-{}", hex(&random)))
    }

    /// The stable id of the run named `name` at `place` (see the module
    /// docs): the slug of `name`, `-`, and the first 12 hex digits of the
    /// SHA-256 of [`Place::hashed`]; the first 16 when `taken` says
    /// another run has that. `IdTaken` when both are taken (two 64-bit
    /// prefixes clashing: never, in practice).
    pub fn stable(
        name: &str,
        place: &Place<'_>,
        taken: impl Fn(&RunId) -> bool,
    ) -> Result<Self, Error> {
        let slug = slug(name);
        let digest = hex(&Sha256::digest(place.hashed()));
        let [short, long] = STABLE_HEX.map(|digits| format!("{slug}-{}", &digest[..digits]));
        let short = Self::parse(&short)?;
        if !taken(&short) {
            return Ok(short);
        }
        let long = Self::parse(&long)?;
        if !taken(&long) {
            return Ok(long);
        }
        Err(Error::IdTaken(long))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `bytes` as lower-case hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RunId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may panic

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_checked() {
        for ok in ["a", "0", "run-1", "a-", &"a".repeat(64)] {
            assert!(RunId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "a_b",
            "a.b",
            "a/b",
            "..",
            "a b",
            "é",
            "a\0",
            &"a".repeat(65),
        ] {
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// SHA-256 of `bytes` as hex, computed here apart from the code under
    /// test: the expected ids below are built from the documented bytes.
    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The stable id of `name` at `place`, with the 12-digit id taken by
    /// another run when `clash`.
    fn check(name: &str, place: Place<'_>, clash: bool, expected: &str) {
        let twelve = |id: &RunId| {
            id.as_str()
                .rsplit_once('-')
                .is_some_and(|(_, d)| d.len() == 12)
        };
        let id = RunId::stable(name, &place, |id| clash && twelve(id)).unwrap();
        assert_eq!(id.as_str(), expected, "{name:?} at {place:?}");
        assert!(RunId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn stable_ids_are_a_slug_and_the_hash_of_where_the_run_is() {
        let runs = |within| Place {
            root: "/data/runs",
            within,
            entry: None,
        };
        let hash = |bytes: &[u8], digits: usize| sha256_hex(bytes)[..digits].to_owned();
        let (fifty, cut) = ("a".repeat(50), format!("{} b", "a".repeat(39)));
        let cases: Vec<(&str, Place<'_>, bool, String)> = vec![
            (
                "exp-1",
                runs("exp-1"),
                false,
                format!("exp-1-{}", hash(b"/data/runs\0exp-1", 12)),
            ),
            // Deeper: the whole path below the root, `/`-separated.
            (
                "CartPole PPO (seed 7)",
                runs("sweep/CartPole PPO (seed 7)"),
                false,
                format!(
                    "cartpole-ppo-seed-7-{}",
                    hash(b"/data/runs\0sweep/CartPole PPO (seed 7)", 12)
                ),
            ),
            // A store's run: the store's directory, then its key.
            (
                "happy-fox",
                Place {
                    root: "/data/runs",
                    within: "mlruns",
                    entry: Some("0/abc123"),
                },
                false,
                format!("happy-fox-{}", hash(b"/data/runs\0mlruns\x000/abc123", 12)),
            ),
            // No allowed root holds it: `/` and the absolute path.
            (
                "x",
                Place {
                    root: "/",
                    within: "srv/x",
                    entry: None,
                },
                false,
                format!("x-{}", hash(b"/\0srv/x", 12)),
            ),
            // The slug is at most 40 characters, never ending in `-`.
            (
                &fifty,
                runs("long"),
                false,
                format!("{}-{}", "a".repeat(40), hash(b"/data/runs\0long", 12)),
            ),
            (
                &cut,
                runs("cut"),
                false,
                format!("{}-{}", "a".repeat(39), hash(b"/data/runs\0cut", 12)),
            ),
            // Nothing usable in the name: `run`.
            (
                "...",
                runs("..."),
                false,
                format!("run-{}", hash(b"/data/runs\0...", 12)),
            ),
            (
                "",
                runs(""),
                false,
                format!("run-{}", hash(b"/data/runs\0", 12)),
            ),
            // Another run has the 12-digit id: 16 digits.
            (
                "exp-1",
                runs("exp-1"),
                true,
                format!("exp-1-{}", hash(b"/data/runs\0exp-1", 16)),
            ),
        ];
        for (name, place, clash, expected) in cases {
            check(name, place, clash, &expected);
        }
    }

    #[test]
    fn both_stable_ids_taken_is_an_error_never_another_id() {
        let place = Place {
            root: "/r",
            within: "a",
            entry: None,
        };
        assert!(matches!(
            RunId::stable("a", &place, |_| true),
            Err(Error::IdTaken(id)) if id.as_str().len() == "a-".len() + 16
        ));
    }

    #[test]
    fn only_ids_of_the_old_random_shape_are_recognised_as_such() {
        for (id, old) in [
            ("exp-1-3f9c2d", true),
            ("run-000000", true),
            ("a-b-abcdef", true),
            ("exp-1", false),
            ("abcdef", false),
            ("exp-3f9c2g", false),
            ("exp-3f9c2d1", false),
            ("exp-1-3f9c2d4e5f60", false),
            ("exp-1-3f9c2d4e5f601234", false),
        ] {
            assert_eq!(has_random_suffix(&RunId::parse(id).unwrap()), old, "{id}");
        }
        assert_eq!(slug_of(&RunId::parse("exp-1-3f9c2d").unwrap()), "exp-1");
    }

    proptest! {
        /// Whatever the directory name, a generated id is valid and starts
        /// with the name's slug or `run`.
        #[test]
        fn generated_ids_are_always_valid(name in "\\PC{0,100}") {
            let id = RunId::generate(&name).unwrap();
            prop_assert!(RunId::parse(id.as_str()).is_ok());
            prop_assert!(id.as_str().len() <= MAX_ID_LEN);
        }

        /// Whatever the name and place, a stable id parses as a `RunId`,
        /// starts with the name's slug, ends in 12 (or, on a clash, 16) hex
        /// digits, and is the same when made again.
        #[test]
        fn stable_ids_always_parse(
            name in "\\PC{0,100}",
            root in "/\\PC{0,60}",
            within in "\\PC{0,100}",
            entry in proptest::option::of("\\PC{0,40}"),
            clash in any::<bool>(),
        ) {
            let place = Place { root: &root, within: &within, entry: entry.as_deref() };
            let taken = |id: &RunId| clash && id.as_str().len() - slug(&name).len() == 13;
            let id = RunId::stable(&name, &place, taken).unwrap();
            prop_assert!(RunId::parse(id.as_str()).is_ok());
            prop_assert!(id.as_str().len() <= MAX_ID_LEN);
            let (head, digits) = id.as_str().rsplit_once('-').unwrap();
            prop_assert_eq!(head, slug(&name));
            prop_assert_eq!(digits.len(), if clash { 16 } else { 12 });
            prop_assert!(!has_random_suffix(&id));
            prop_assert_eq!(RunId::stable(&name, &place, taken).unwrap(), id);
        }
    }

    #[test]
    fn generated_ids_keep_the_name() {
        let id = RunId::generate("CartPole PPO (seed 7)").unwrap();
        assert!(id.as_str().starts_with("cartpole-ppo-seed-7-"), "{id}");
        assert!(RunId::generate("...").unwrap().as_str().starts_with("run-"));
        assert_ne!(RunId::generate("x").unwrap(), RunId::generate("x").unwrap());
        assert!(has_random_suffix(&id));
    }
}
