//! Oracle: the W&B record-log reader never panics, reads the same whatever
//! the chunking the bytes arrive in, and accepts nothing after a header
//! that is not W&B's. Inputs start with a valid header and a first record
//! made valid (its CRC fixed), so the fuzzer reaches the record decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xe1, 0xbe, 0];

fuzz_target!(|input: (u8, bool, &[u8])| {
    let (chunk, fix, body) = input;
    let mut bytes = HEADER.to_vec();
    bytes.extend_from_slice(body);
    if fix && bytes.len() >= 14 {
        let len = usize::from(u16::from_le_bytes([bytes[11], bytes[12]]));
        let kind = bytes[13];
        if let Some(data) = bytes.get(14..14 + len) {
            let crc = lab_formats::fuzz::wandb_crc(kind, data);
            bytes[7..11].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let whole = lab_formats::fuzz::wandb(&bytes, bytes.len());
    let pieces = lab_formats::fuzz::wandb(&bytes, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "chunking changes nothing");
    // The same bytes behind a header that is not W&B's: refused.
    let mut other = bytes.clone();
    other[0] ^= 0xff;
    assert!(lab_formats::fuzz::wandb(&other, 64).is_err());
});
