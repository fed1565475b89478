//! Oracle (in `lab_formats::fuzz::check_dvclive`): a run's files from the
//! input, read whole and read cut then appended, end the same, within
//! the caps, without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_dvclive(data);
});
