//! What the Lab's tests, benchmarks and audit share (`publish = false`):
//!
//! - [`http`]: the one raw, blocking HTTP/1.1 client. It sends exactly the
//!   bytes it is told to (a hostile client is the point of many tests),
//!   parses answers with `httparse`, and remembers a credential per port.
//! - [`lab`]: starting `lab serve` and reading its listening line and the
//!   login link after it.
//! - [`fixture`]: building run directories (files, links, sparse files).
//! - [`fuzz`]: the seeds and findings a fuzz target keeps in the repository.
//! - [`seaweed`]: a real S3 server (SeaweedFS) on loopback, and boto3 to fill it.
//! - [`slurm`]: a real single-node Slurm cluster (munged, slurmctld, slurmd)
//!   on loopback, everything under a scratch directory.
//! - [`browser`]: headless Chromium through chromedriver (WebDriver over
//!   [`http`]), for the browser tests and screenshots.
#![forbid(unsafe_code)]

pub mod browser;
pub mod fixture;
pub mod fuzz;
pub mod http;
pub mod lab;
pub mod seaweed;
pub mod slurm;
