//! Oracle (in `lab_formats::fuzz::check_sacred`): a Sacred run whose files
//! are the input reads within the caps, its `metrics.json` streamed reads
//! exactly what a parse into JSON values reads, and discovery's content
//! test takes only Sacred's `run.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_sacred(data);
});
