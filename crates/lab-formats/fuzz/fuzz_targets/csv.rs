//! Oracle (in `lab_formats::fuzz::check_csv`): a CSV header or row split
//! into fields, written back with every field quoted, splits into the same
//! fields.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_csv(data);
});
