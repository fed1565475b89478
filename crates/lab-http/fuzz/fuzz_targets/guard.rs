//! Oracle (in `lab_http::fuzz::GuardHarness`): raw request bytes, with
//! placeholders for the key, the session cookie, its token, our Host, the
//! run and an importable directory, sent to a real server: no
//! `Access-Control-*`; bytes naming none of our Hosts get only refusals;
//! no run data without the key or the cookie; no change to the registry or
//! the exports without the key, or the cookie and its token.
#![no_main]

use std::sync::{Mutex, OnceLock};

use lab_http::fuzz::GuardHarness;
use libfuzzer_sys::fuzz_target;

static LAB: OnceLock<Mutex<GuardHarness>> = OnceLock::new();

fuzz_target!(|template: &[u8]| {
    let lab = LAB.get_or_init(|| Mutex::new(GuardHarness::start()));
    let mut lab = lab.lock().unwrap_or_else(|p| p.into_inner());
    lab.check(template);
});
