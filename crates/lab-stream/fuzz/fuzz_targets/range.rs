//! Oracle (in `lab_stream::fuzz::check_range`): for any Range header and
//! length, the parser returns "ignore", "unsatisfiable" (only for a
//! non-empty file), or sorted, disjoint, non-adjacent ranges inside
//! [0, len); and `evaluate` never plans more bytes than the file has.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_stream::fuzz::check_range(data);
});
