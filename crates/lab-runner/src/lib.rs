//! lab-runner will run jobs in a sandbox (SPEC §5 "Runner"); that part is
//! not built yet. Today it provides the redactor every path that writes or
//! exports text uses: [`redact::Redactor`] removes the values of
//! secret-looking environment variables (and their encodings) and
//! well-known key formats, also when a secret arrives split across reads;
//! [`export::RedactingFilter`] applies it to artifacts going into a bundle.
//!
//! ```
//! let r = lab_runner::redact::Redactor::new(["hunter2-very-secret"]);
//! let mut out = Vec::new();
//! let mut stream = r.stream();
//! stream.push(b"password is hunter2-ve", &mut out);
//! stream.push(b"ry-secret, ok\n", &mut out);
//! stream.finish(&mut out);
//! assert_eq!(out, b"password is [REDACTED], ok\n");
//! ```
#![forbid(unsafe_code)]

pub mod export;
pub mod redact;
