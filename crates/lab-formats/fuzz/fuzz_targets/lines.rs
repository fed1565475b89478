//! Oracle: the metrics-line readers never panic and never keep more points
//! than there are numbers in the input (one point per number at most).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, &[u8])| {
    let (csv, text) = input;
    let points = lab_formats::fuzz::lines(text, csv);
    let digits = text.iter().filter(|b| b.is_ascii_digit()).count();
    let words = text
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    assert!(points <= digits + words, "{points} points from {} bytes", text.len());
});
