//! A tiny binary codec shared by receipt handles and the pop journal:
//! LEB128 varints (protobuf's, from `prost::encoding`), zigzag for signed
//! values, length-prefixed strings. Decoding never panics; it returns
//! `None` on any malformed input.

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

/// Appends encoded values to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn uvar(&mut self, v: u64) -> &mut Self {
        encode_varint(v, &mut self.buf);
        self
    }

    pub fn ivar(&mut self, v: i64) -> &mut Self {
        self.uvar(((v << 1) ^ (v >> 63)) as u64)
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.uvar(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
}

/// Reads encoded values from a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub fn uvar(&mut self) -> Option<u64> {
        // Advances `buf` past the varint; refuses truncated and overlong
        // ones (more than ten bytes, or a tenth byte above 1), and any but
        // the shortest form, the one `Writer::uvar` writes (so a record
        // read back is the record written: found by fuzzing).
        let before = self.buf.len();
        let v = decode_varint(&mut self.buf).ok()?;
        (before - self.buf.len() == encoded_len_varint(v)).then_some(v)
    }

    pub fn u32var(&mut self) -> Option<u32> {
        u32::try_from(self.uvar()?).ok()
    }

    pub fn ivar(&mut self) -> Option<i64> {
        let u = self.uvar()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.uvar()?).ok()?;
        if len > self.buf.len() {
            return None;
        }
        let (s, rest) = self.buf.split_at(len);
        self.buf = rest;
        std::str::from_utf8(s).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut w = Writer::default();
        let nums = [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        for n in nums {
            w.uvar(n);
        }
        let ints = [0i64, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000];
        for i in ints {
            w.ivar(i);
        }
        w.str("héllo").str("").u8(7);
        let mut r = Reader::new(&w.buf);
        for n in nums {
            assert_eq!(r.uvar(), Some(n));
        }
        for i in ints {
            assert_eq!(r.ivar(), Some(i));
        }
        assert_eq!(r.str(), Some("héllo"));
        assert_eq!(r.str(), Some(""));
        assert_eq!(r.u8(), Some(7));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(Reader::new(&[0x80]).uvar(), None);
        assert_eq!(Reader::new(&[0xff; 11]).uvar(), None);
        // Ten bytes whose last carries more than the top bit of a u64.
        let mut overlong = [0xff; 10];
        overlong[9] = 0x02;
        assert_eq!(Reader::new(&overlong).uvar(), None);
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x7f]).u32var(), None);
        assert_eq!(Reader::new(&[5, b'a']).str(), None);
        assert_eq!(Reader::new(&[1, 0xff]).str(), None);
        // A value in a longer form than the shortest (60 as 0xbc 0x00),
        // which the journal fuzzing found accepted: refused.
        assert_eq!(Reader::new(&[0xbc, 0x00]).uvar(), None);
        assert_eq!(Reader::new(&[0x80, 0x80, 0x00]).uvar(), None);
        assert_eq!(Reader::new(&[60]).uvar(), Some(60));
        assert_eq!(Reader::new(&[0x00]).uvar(), Some(0));
    }
}
