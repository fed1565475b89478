//! Oracle (in `lab_fs::fuzz::check_unpack`): whatever the tar bytes, a
//! refused bundle leaves nothing behind, an accepted one only its run
//! directory of allowlisted regular files, and nothing outside changes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bundle: &[u8]| {
    let _ = lab_fs::fuzz::check_unpack(bundle);
});
