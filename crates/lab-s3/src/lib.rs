//! The object-storage boundary: an `s3://BUCKET/PREFIX` root (SPEC §3, §6).
//!
//! What lab-s3 guarantees:
//!
//! - A root is an [`S3Url`], parsed once; every key a [`Store`] is given
//!   is relative to its prefix and checked, so nothing outside `prefix/` is
//!   ever requested, and listed keys outside it are dropped.
//! - Credentials are static keys from the environment or the shared AWS
//!   files ([`Resolved::resolve`]); never `credential_process`, SSO, web
//!   identity, the container endpoint or instance metadata. They never
//!   appear in a `Display`, a `Debug` or an error.
//! - The endpoint is https, or http to a loopback host with `allow_http`;
//!   no proxy (the `*_PROXY` environment is ignored), no redirects.
//! - Every request is timed (connect 5 s, data 30 s, probe 10 s) and
//!   retried at most twice; streams hold at most 4 chunks of 256 KiB. IO
//!   runs on a runtime lab-s3 owns, so sync callers need none.
//! - Every response body is capped before it is read: a listing page at
//!   16 MiB (past it the listing fails), an error body cut at 64 KiB, a
//!   ranged GET at its range (and 64 KiB more).
//!
//! ```no_run
//! use lab_s3::{Resolved, S3Url, Settings, Store};
//! let url = S3Url::parse("s3://my-bucket/runs").unwrap();
//! let settings = Settings::default();
//! let resolved = Resolved::resolve(&settings, &|k| std::env::var(k).ok(), None).unwrap();
//! let store = Store::new(&url, &resolved, &settings).unwrap();
//! store.probe().unwrap();
//! let listing = store.list_all(settings.max_keys).unwrap();
//! ```
#![forbid(unsafe_code)]

mod capped;
mod config;
mod error;
mod store;
mod url;

pub use config::{ConfigError, CredentialSource, Resolved, Settings};
pub use error::Error;
pub use store::{ByteStream, DirListing, Listing, Object, STREAM_CHUNK, STREAM_DEPTH, Store};
pub use url::{S3Url, UrlError};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
