//! Oracle (in `lab_formats::fuzz::check_keras`): a Keras CSVLogger file
//! reads the same whole or appended in any chunking, never more points
//! than cells, every series a header column.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_keras(data);
});
