//! Oracle: a record is handed out only when its length is within the cap,
//! it lies wholly inside the input, and both CRCs match (recomputed here);
//! "incomplete" only when the input really is shorter than the record; the
//! event reader, fed the same bytes in any chunking, reads the same points
//! or stops with the same error, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX_RECORD: usize = 16 << 20;

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, bytes) = input;
    match lab_formats::fuzz::tfrecord(bytes) {
        Ok(Some((payload, used))) => {
            assert!(payload.len() <= MAX_RECORD);
            assert_eq!(used, payload.len() + 16);
            assert!(used <= bytes.len());
            let len = &bytes[..8];
            let crc = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
            assert_eq!(lab_formats::fuzz::masked_crc(len), crc);
            let tail = u32::from_le_bytes(bytes[12 + payload.len()..used].try_into().unwrap());
            assert_eq!(lab_formats::fuzz::masked_crc(payload), tail);
            assert_eq!(u64::from_le_bytes(len.try_into().unwrap()), payload.len() as u64);
        }
        Ok(None) => {
            if bytes.len() >= 12 {
                let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                assert!(bytes.len() < 12 + len + 4);
            }
        }
        Err(_) => {}
    }
    let whole = lab_formats::fuzz::events(bytes, bytes.len().max(1));
    let pieces = lab_formats::fuzz::events(bytes, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "chunking changes nothing");
});
