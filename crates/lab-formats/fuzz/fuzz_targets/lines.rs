//! Oracle (in `lab_formats::fuzz::check_lines`): the metrics.csv and
//! metrics.jsonl readers never panic and keep at most one point per number
//! or word of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_lines(data);
});
