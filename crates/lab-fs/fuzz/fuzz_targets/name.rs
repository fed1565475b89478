//! Oracle (in `lab_fs::fuzz::check_name`): a name that parses is never
//! repaired, has at most four segments (five under `job/`), none empty,
//! `.`/`..` or dot-prefixed, no control character or backslash; a name the
//! allowlist accepts matches one of its patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lab_fs::fuzz::check_name(data);
});
