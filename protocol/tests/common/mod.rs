//! A tiny protobuf wire reader, independent of prost, so the tests can see
//! which field numbers and wire types prost actually put on the wire.

/// One decoded field: its number and its raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Varint(u64),
    Fixed64(u64),
    Len(Vec<u8>),
    Fixed32(u32),
}

fn varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = buf[*pos];
        *pos += 1;
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return out;
        }
    }
    panic!("varint longer than 10 bytes");
}

/// Splits an encoded message into its top-level fields, in wire order.
pub fn fields(buf: &[u8]) -> Vec<(u32, Value)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let number = u32::try_from(key >> 3).expect("field number fits u32");
        let value = match key & 7 {
            0 => Value::Varint(varint(buf, &mut pos)),
            1 => {
                let raw: [u8; 8] = buf[pos..pos + 8].try_into().unwrap();
                pos += 8;
                Value::Fixed64(u64::from_le_bytes(raw))
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)).unwrap();
                let bytes = buf[pos..pos + len].to_vec();
                pos += len;
                Value::Len(bytes)
            }
            5 => {
                let raw: [u8; 4] = buf[pos..pos + 4].try_into().unwrap();
                pos += 4;
                Value::Fixed32(u32::from_le_bytes(raw))
            }
            other => panic!("unexpected wire type {other}"),
        };
        out.push((number, value));
    }
    out
}

/// The field numbers present, in wire order.
pub fn numbers(buf: &[u8]) -> Vec<u32> {
    fields(buf).into_iter().map(|(n, _)| n).collect()
}

/// The only value of field `number`; panics if it is absent or repeated.
pub fn only(buf: &[u8], number: u32) -> Value {
    let mut found: Vec<Value> = fields(buf)
        .into_iter()
        .filter(|(n, _)| *n == number)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "field {number} should appear exactly once");
    found.remove(0)
}

/// The bytes of length-delimited field `number` (a string, bytes or an
/// embedded message).
pub fn len_field(buf: &[u8], number: u32) -> Vec<u8> {
    match only(buf, number) {
        Value::Len(bytes) => bytes,
        other => panic!("field {number} is not length-delimited: {other:?}"),
    }
}

/// The value of varint field `number`.
pub fn varint_field(buf: &[u8], number: u32) -> u64 {
    match only(buf, number) {
        Value::Varint(v) => v,
        other => panic!("field {number} is not a varint: {other:?}"),
    }
}

/// Appends a field key.
pub fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited field.
pub fn put_len(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
