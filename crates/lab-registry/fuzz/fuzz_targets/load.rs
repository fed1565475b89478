//! Oracle (in `lab_registry::fuzz::check_load`): any bytes as the snapshot
//! and the journal give an error or a whole registry (unique sorted ids,
//! absolute roots, a second instance agreeing), never a panic. The input
//! is split at its first NUL: snapshot before, journal after.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_registry::fuzz::check_load_bytes(data);
});
