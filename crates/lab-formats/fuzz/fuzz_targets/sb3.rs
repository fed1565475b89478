//! Oracle (in `lab_formats::fuzz::check_sb3`): an SB3 `progress.csv` or
//! `monitor.csv` reads the same whole or appended in any chunking, never
//! more points than cells, a monitor's series `episode/…`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lab_formats::fuzz::check_sb3(data);
});
