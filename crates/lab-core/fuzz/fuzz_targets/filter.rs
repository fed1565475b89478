//! Oracle (in `lab_core::filter::fuzz_check`): any bytes, as a filter
//! expression, parse or are refused without a panic; a filter that parses
//! is evaluated on a fixed summary and its display parses back into it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lab_core::filter::fuzz_check(data);
});
