//! Run ids: `[a-z0-9][a-z0-9-]{0,63}`.

use crate::Error;

/// Longest run id, in bytes.
pub const MAX_ID_LEN: usize = 64;

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

    /// A new id from a directory name: a slug of it plus a short random
    /// suffix, e.g. `cartpole-ppo-3f9c2d`.
    pub fn generate(dir_name: &str) -> Result<Self, Error> {
        let mut slug = String::new();
        for c in dir_name.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.len() >= MAX_ID_LEN - 7 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        let slug = if slug.is_empty() { "run" } else { slug };
        let mut random = [0u8; 3];
        getrandom::fill(&mut random).map_err(|e| Error::Io {
            context: "reading the OS random number generator",
            source: std::io::Error::other(e.to_string()),
        })?;
        Self::parse(&format!(
            "{slug}-{:02x}{:02x}{:02x}",
            random[0], random[1], random[2]
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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

    proptest! {
        /// Whatever the directory name, a generated id is valid and starts
        /// with the name's slug or `run`.
        #[test]
        fn generated_ids_are_always_valid(name in "\\PC{0,100}") {
            let id = RunId::generate(&name).unwrap();
            prop_assert!(RunId::parse(id.as_str()).is_ok());
            prop_assert!(id.as_str().len() <= MAX_ID_LEN);
        }
    }

    #[test]
    fn generated_ids_keep_the_name() {
        let id = RunId::generate("CartPole PPO (seed 7)").unwrap();
        assert!(id.as_str().starts_with("cartpole-ppo-seed-7-"), "{id}");
        assert!(RunId::generate("...").unwrap().as_str().starts_with("run-"));
        assert_ne!(RunId::generate("x").unwrap(), RunId::generate("x").unwrap());
    }
}
