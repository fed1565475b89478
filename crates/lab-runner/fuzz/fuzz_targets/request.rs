//! Oracle (in `lab_runner::fuzz::RunnerHarness`): a job request (JSON) or
//! a workflow (TOML) is accepted only when every program is allowlisted by
//! canonical path or an allowed, confirmed exec hook inside the workflow's
//! directory, and every variable is allowlisted and not refused. The first
//! byte picks request or workflow and the exec-hook switches.
#![no_main]

use std::sync::OnceLock;

use lab_runner::fuzz::RunnerHarness;
use libfuzzer_sys::fuzz_target;

static RUNNER: OnceLock<RunnerHarness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    RUNNER.get_or_init(RunnerHarness::start).check(data);
});
