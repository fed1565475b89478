//! Protocol Buffers' wire format, read by hand for messages whose shape
//! matters (TensorBoard's hparams: a map's order, caps while decoding,
//! nesting refused past a depth): a message is its fields in wire order,
//! each a varint key (field number, wire type) and a value; groups (wire
//! types 3 and 4, absent from proto3) are refused. Nothing here recurses;
//! every length is checked against the bytes there before it is used.
//! (The other TensorBoard messages are prost derive structs.)

/// One field of a message as it lies on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (a `double` is `f64::from_bits`).
    Fixed64(u64),
    /// Wire type 2: a string, bytes or an embedded message.
    Bytes(&'a [u8]),
    /// Wire type 5 (skipped).
    Fixed32,
}

/// See [`fields`].
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
}

/// The fields of one message, in wire order; after an error, nothing.
pub(crate) fn fields(bytes: &[u8]) -> Fields<'_> {
    Fields { rest: bytes }
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("a truncated varint")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint longer than ten bytes".to_owned())
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err("a field runs past its message".to_owned());
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Wire<'a>), String> {
        let key = varint(&mut self.rest)?;
        let number = key >> 3;
        if number == 0 {
            return Err("field number 0".to_owned());
        }
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut self.rest)?),
            1 => {
                let b = take(&mut self.rest, 8)?;
                Wire::Fixed64(u64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            }
            2 => {
                let len = varint(&mut self.rest)?;
                let len = usize::try_from(len).map_err(|_| "a length past memory".to_owned())?;
                Wire::Bytes(take(&mut self.rest, len)?)
            }
            5 => {
                take(&mut self.rest, 4)?;
                Wire::Fixed32
            }
            // Groups (3, 4) are not in proto3; 6 and 7 are no wire type.
            other => return Err(format!("wire type {other}")),
        };
        Ok((number, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

/// The error of a known field with another wire type than its own.
pub(crate) fn wrong(message: &str, number: u64) -> String {
    format!("{message} field {number} has the wrong wire type")
}

/// Text of at most `max` bytes (invalid UTF-8 replaced; cut on a
/// character boundary): never more than `max` is converted.
pub(crate) fn text(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Appends a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends field `number` (for tests and the fuzz oracles' round trips).
pub(crate) fn put(out: &mut Vec<u8>, number: u64, value: Wire<'_>) {
    let kind = match value {
        Wire::Varint(_) => 0,
        Wire::Fixed64(_) => 1,
        Wire::Bytes(_) => 2,
        Wire::Fixed32 => 5,
    };
    put_varint(out, (number << 3) | kind);
    match value {
        Wire::Varint(v) => put_varint(out, v),
        Wire::Fixed64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Wire::Bytes(b) => {
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Wire::Fixed32 => out.extend_from_slice(&[0; 4]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
        fields(bytes).collect()
    }

    #[test]
    fn fields_read_in_wire_order_and_bad_ones_stop_the_message() {
        // 1: varint 300; 2: "hi"; 3: fixed64; 4: fixed32.
        let good = [
            0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 0, 0, 0, 0,
        ];
        assert_eq!(
            all(&good).unwrap(),
            [
                (1, Wire::Varint(300)),
                (2, Wire::Bytes(b"hi")),
                (3, Wire::Fixed64(1)),
                (4, Wire::Fixed32)
            ]
        );
        for (bad, why) in [
            (&[0x12, 5, b'h'][..], "runs past"),
            (&[0x08][..], "truncated varint"),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ][..],
                "ten bytes",
            ),
            (&[0x0b][..], "wire type 3"),
            (&[0x00, 0x01][..], "field number 0"),
            // A length of 2^63: refused, never allocated.
            (
                &[
                    0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
                ][..],
                "runs past",
            ),
        ] {
            let err = all(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
            // Nothing after the error.
            let mut f = fields(bad);
            while let Some(Ok(_)) = f.next() {}
            assert!(f.next().is_none());
        }
    }

    #[test]
    fn what_is_put_reads_back() {
        let mut out = Vec::new();
        for (n, w) in [
            (1, Wire::Varint(u64::MAX)),
            (2, Wire::Fixed64(7)),
            (536_870_911, Wire::Bytes(b"xyz")),
            (4, Wire::Fixed32),
        ] {
            out.clear();
            put(&mut out, n, w);
            assert_eq!(all(&out).unwrap(), [(n, w)]);
        }
    }

    #[test]
    fn text_is_cut_to_its_cap_on_a_character_boundary() {
        assert_eq!(text("héllo".as_bytes(), 2), "h");
        assert_eq!(text(b"\xff\xfe", 64), "\u{fffd}\u{fffd}");
        assert_eq!(text(b"\xff\xfe", 4), "\u{fffd}");
        assert_eq!(text(b"abc", 64), "abc");
    }
}
