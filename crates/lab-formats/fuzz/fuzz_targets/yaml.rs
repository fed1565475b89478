//! Oracle (in `lab_formats::fuzz::check_yaml`): parsing never panics, never
//! fails for aliases without a `*`, nests at most 64 levels, and refuses
//! every alias instead of expanding it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_yaml(data);
});
