//! Oracle (in `lab_formats::fuzz::check_wandb`): the W&B record-log reader
//! never panics, reads the same whatever the chunking, and accepts nothing
//! after a header that is not W&B's.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_wandb(data);
});
