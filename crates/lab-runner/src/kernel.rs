//! What the kernel provides, and whether that is enough to run a job: the
//! types and the pure decision live in lab-protocol ([`lab_protocol::kernel`],
//! re-exported here); what the supervisor adds is the test switch that takes
//! features away ([`DENY_FEATURES_ENV`]).

pub use lab_protocol::kernel::{
    KernelFeatures, LANDLOCK_MAX_ABI, LANDLOCK_MIN_ABI, Landlock, OVERLAY_MIN_KERNEL, Plan, decide,
    parse_release,
};

/// Names kernel features to treat as missing (see
/// [`KernelFeatures::without`]); for tests of the fail-closed path.
pub const DENY_FEATURES_ENV: &str = "LAB_RUNNER_DENY_FEATURES";

/// What the kernel reported (from `lab __sandbox kernel`), with the
/// features [`DENY_FEATURES_ENV`] names taken away.
pub fn reported(features: KernelFeatures) -> KernelFeatures {
    features.without(&std::env::var(DENY_FEATURES_ENV).unwrap_or_default())
}
