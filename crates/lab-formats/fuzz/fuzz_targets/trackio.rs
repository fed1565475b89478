//! Oracle (in `lab_formats::fuzz::check_trackio`): a Trackio metrics row
//! gives at most a point per value, and every media path it names is
//! refused or served from inside the run's media directory, unrepaired.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_trackio(data);
});
