//! Oracle (in `lab_formats::fuzz::check_huggingface`): a Trainer's
//! `trainer_state.json` (any bytes): JSON reads the same after Python's
//! bare NaN/Infinity are made strings, and each series holds exactly the
//! numbers its `log_history` rows hold under that key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_huggingface(data);
});
