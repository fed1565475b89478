//! Oracle (in `lab_redact::fuzz::check_redaction`): for any secret, any
//! text woven of it, its claimed encodings and other bytes, and any split
//! into reads: the output is the same whatever the reads, holds no needle
//! of the secret and no inserted encoding whole, and text without the
//! secret comes out as a redactor knowing no secret writes it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lab_redact::fuzz::check_redaction(data);
});
