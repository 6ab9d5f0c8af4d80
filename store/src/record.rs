//! The commit-log record format. Pure encoding and decoding, no I/O.
//!
//! All integers are little-endian. A record is a 56-byte header followed by
//! a variable tail:
//!
//! | at | size | field |
//! |---:|---:|---|
//! | 0 | 4 | total length of the record, header included |
//! | 4 | 4 | CRC32C of the tail, continued over header bytes 8..56 |
//! | 8 | 1 | format version (1) |
//! | 9 | 1 | reserved, 0 |
//! | 10 | 2 | topic length |
//! | 12 | 4 | queue id |
//! | 16 | 4 | flags |
//! | 20 | 4 | reserved, 0 |
//! | 24 | 8 | commit-log position of this record |
//! | 32 | 8 | queue offset |
//! | 40 | 8 | store timestamp, ms since the epoch |
//! | 48 | 8 | born timestamp, ms since the epoch |
//!
//! The tail holds the topic, the message id (u16 length + bytes), the tag
//! (u16 length + bytes, length 0xFFFF for none), the keys (u16 count, each
//! u16 length + bytes), the properties (u16 count, each name and value as
//! u16 length + bytes) and the body (u32 length + bytes).
//!
//! The checksum runs over the tail first so it can be computed before the
//! append lock is taken; only the three fields assigned under the lock
//! (position, queue offset, store time) are folded in while it is held.
//! The record's own position inside it lets recovery tell a live record
//! from stale bytes.

use std::collections::BTreeMap;

use tern_model::{Message, TopicName};

pub const HEADER_LEN: usize = 56;
pub const FORMAT_VERSION: u8 = 1;
/// Upper bound on one record; a larger length field marks corruption.
pub const MAX_RECORD_LEN: u32 = 64 << 20;
const NO_TAG: u16 = u16::MAX;

/// One message laid out in a batch buffer, waiting for its position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub start: usize,
    pub len: u32,
    pub tail_crc: u32,
}

/// A batch of encoded records in one contiguous buffer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub buf: Vec<u8>,
    pub records: Vec<Pending>,
    /// The store time to write (raised to the log's last if lower), or
    /// `None` for the clock's.
    pub store_time: Option<i64>,
}

fn put_u16_str(buf: &mut Vec<u8>, s: &str) {
    // Validated messages keep every field under 16 KiB.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX - 1);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn count_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl Batch {
    /// Encodes `msg` (already validated) at the end of the buffer.
    pub fn push(&mut self, msg: &Message) {
        let start = self.buf.len();
        let buf = &mut self.buf;
        buf.resize(start + HEADER_LEN, 0);
        let topic = msg.topic.as_str().as_bytes();
        buf.extend_from_slice(topic);
        put_u16_str(buf, &msg.message_id);
        match &msg.tag {
            Some(tag) => put_u16_str(buf, tag),
            None => buf.extend_from_slice(&NO_TAG.to_le_bytes()),
        }
        buf.extend_from_slice(&count_u16(msg.keys.len()).to_le_bytes());
        for key in &msg.keys {
            put_u16_str(buf, key);
        }
        buf.extend_from_slice(&count_u16(msg.properties.len()).to_le_bytes());
        for (k, v) in &msg.properties {
            put_u16_str(buf, k);
            put_u16_str(buf, v);
        }
        let body_len = u32::try_from(msg.body.len()).unwrap_or(u32::MAX);
        buf.extend_from_slice(&body_len.to_le_bytes());
        buf.extend_from_slice(&msg.body);

        let len = u32::try_from(buf.len() - start).unwrap_or(u32::MAX);
        let h = &mut buf[start..start + HEADER_LEN];
        h[0..4].copy_from_slice(&len.to_le_bytes());
        h[8] = FORMAT_VERSION;
        // Topic names are at most 127 bytes.
        h[10..12].copy_from_slice(&count_u16(topic.len()).to_le_bytes());
        h[12..16].copy_from_slice(&msg.queue_id.to_le_bytes());
        h[16..20].copy_from_slice(&msg.flags.to_le_bytes());
        h[48..56].copy_from_slice(&msg.born_timestamp_ms.to_le_bytes());
        let tail_crc = crc32c::crc32c(&buf[start + HEADER_LEN..]);
        self.records.push(Pending {
            start,
            len,
            tail_crc,
        });
    }

    /// Adds a copy of `rec` (one whole record, already checked with
    /// [`RecordView::parse`]) as a message of `topic` and `queue_id`: the
    /// message id, tag, keys, properties, body, flags and born time are
    /// kept byte for byte; position, queue offset and store time are
    /// assigned when the batch is written.
    pub fn push_copy(&mut self, rec: &[u8], topic: &str, queue_id: u32) {
        let old_topic = usize::from(u16::from_le_bytes([rec[10], rec[11]]));
        let rest = &rec[HEADER_LEN + old_topic..];
        let start = self.buf.len();
        let buf = &mut self.buf;
        buf.extend_from_slice(&rec[..HEADER_LEN]);
        buf.extend_from_slice(topic.as_bytes());
        buf.extend_from_slice(rest);
        let len = u32::try_from(buf.len() - start).unwrap_or(u32::MAX);
        let h = &mut buf[start..start + HEADER_LEN];
        h[0..4].copy_from_slice(&len.to_le_bytes());
        h[4..8].fill(0);
        h[10..12].copy_from_slice(&count_u16(topic.len()).to_le_bytes());
        h[12..16].copy_from_slice(&queue_id.to_le_bytes());
        h[24..48].fill(0);
        let tail_crc = crc32c::crc32c(&buf[start + HEADER_LEN..]);
        self.records.push(Pending {
            start,
            len,
            tail_crc,
        });
    }

    /// The topic and queue record `i` goes to, read back from its header.
    pub fn target(&self, i: usize) -> (&str, u32) {
        let p = self.records[i];
        let h = &self.buf[p.start..p.start + HEADER_LEN];
        let topic_len = usize::from(u16::from_le_bytes([h[10], h[11]]));
        let at = p.start + HEADER_LEN;
        // Written from a `TopicName` (or a checked record) by this batch.
        let topic = std::str::from_utf8(&self.buf[at..at + topic_len]).unwrap_or_default();
        (topic, le_u32(&h[12..16]))
    }

    /// A batch from the bytes of another batch's buffer ([`Batch::buf`]
    /// before it was written): each record's length, format version and
    /// topic are checked, its tail checksum computed again.
    pub fn from_buf(buf: Vec<u8>) -> Result<Self, String> {
        let mut records = Vec::new();
        let mut at = 0usize;
        while at < buf.len() {
            let len = peek_len(&buf[at..]).ok_or_else(|| format!("bad record length at {at}"))?;
            let end = at + len as usize;
            let rec = buf
                .get(at..end)
                .ok_or_else(|| format!("record at {at} runs past the batch"))?;
            if rec[8] != FORMAT_VERSION {
                return Err(format!("record at {at}: format version {}", rec[8]));
            }
            let topic_len = usize::from(u16::from_le_bytes([rec[10], rec[11]]));
            let topic = rec
                .get(HEADER_LEN..HEADER_LEN + topic_len)
                .ok_or_else(|| format!("record at {at}: topic runs past the record"))?;
            let topic = std::str::from_utf8(topic)
                .map_err(|_| format!("record at {at}: topic not UTF-8"))?;
            TopicName::new(topic).map_err(|e| format!("record at {at}: {e}"))?;
            let tail_crc = crc32c::crc32c(&rec[HEADER_LEN..]);
            records.push(Pending {
                start: at,
                len,
                tail_crc,
            });
            at = end;
        }
        Ok(Self {
            buf,
            records,
            store_time: None,
        })
    }

    pub fn len_bytes(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Fills in the fields assigned under the append lock and the checksum.
    pub fn seal(&mut self, i: usize, position: u64, queue_offset: u64, store_ts: i64) {
        let p = self.records[i];
        let h = &mut self.buf[p.start..p.start + HEADER_LEN];
        h[24..32].copy_from_slice(&position.to_le_bytes());
        h[32..40].copy_from_slice(&queue_offset.to_le_bytes());
        h[40..48].copy_from_slice(&store_ts.to_le_bytes());
        let crc = crc32c::crc32c_append(p.tail_crc, &h[8..HEADER_LEN]);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// A record checked and parsed in place.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    pub len: u32,
    pub queue_id: u32,
    pub flags: u32,
    pub position: u64,
    pub queue_offset: u64,
    pub store_ts: i64,
    pub born_ts: i64,
    pub topic: &'a str,
    pub message_id: &'a str,
    pub tag: Option<&'a str>,
    keys: &'a [u8],
    key_count: u16,
    props: &'a [u8],
    prop_count: u16,
    pub body: &'a [u8],
}

/// Reads the length field of the record starting at `buf` (which must hold
/// at least 4 bytes). `None` if it cannot be a record length.
pub fn peek_len(buf: &[u8]) -> Option<u32> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?);
    ((HEADER_LEN as u32 + 7..=MAX_RECORD_LEN).contains(&len)).then_some(len)
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self.at.checked_add(n).ok_or("length overflow")?;
        let s = self
            .buf
            .get(self.at..end)
            .ok_or("field runs past the record")?;
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn str16(&mut self) -> Result<&'a str, &'static str> {
        let n = self.u16()?;
        std::str::from_utf8(self.take(usize::from(n))?).map_err(|_| "string is not UTF-8")
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

impl<'a> RecordView<'a> {
    /// Checks length, version and checksum of the record at the start of
    /// `buf` and parses it. `buf` may extend past the record.
    pub fn parse(buf: &'a [u8]) -> Result<Self, &'static str> {
        let len = peek_len(buf).ok_or("bad length field")?;
        let rec = buf.get(..len as usize).ok_or("record runs past the data")?;
        let stored_crc = le_u32(&rec[4..8]);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[HEADER_LEN..]), &rec[8..HEADER_LEN]);
        if crc != stored_crc {
            return Err("checksum mismatch");
        }
        if rec[8] != FORMAT_VERSION {
            return Err("unknown format version");
        }
        let topic_len = usize::from(u16::from_le_bytes([rec[10], rec[11]]));
        let mut c = Cursor {
            buf: rec,
            at: HEADER_LEN,
        };
        let topic = std::str::from_utf8(c.take(topic_len)?).map_err(|_| "topic is not UTF-8")?;
        let message_id = c.str16()?;
        let tag_len = c.u16()?;
        let tag = if tag_len == NO_TAG {
            None
        } else {
            Some(
                std::str::from_utf8(c.take(usize::from(tag_len))?)
                    .map_err(|_| "tag is not UTF-8")?,
            )
        };
        let key_count = c.u16()?;
        let keys_start = c.at;
        for _ in 0..key_count {
            c.str16()?;
        }
        let keys = &rec[keys_start..c.at];
        let prop_count = c.u16()?;
        let props_start = c.at;
        for _ in 0..prop_count {
            c.str16()?;
            c.str16()?;
        }
        let props = &rec[props_start..c.at];
        let body_len = c.u32()? as usize;
        let body = c.take(body_len)?;
        if c.at != rec.len() {
            return Err("trailing bytes after the body");
        }
        Ok(Self {
            len,
            queue_id: le_u32(&rec[12..16]),
            flags: le_u32(&rec[16..20]),
            position: le_u64(&rec[24..32]),
            queue_offset: le_u64(&rec[32..40]),
            store_ts: le_u64(&rec[40..48]) as i64,
            born_ts: le_u64(&rec[48..56]) as i64,
            topic,
            message_id,
            tag,
            keys,
            key_count,
            props,
            prop_count,
            body,
        })
    }

    /// The message keys.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut c = Cursor {
            buf: self.keys,
            at: 0,
        };
        (0..self.key_count).map_while(move |_| c.str16().ok())
    }

    fn properties(&self) -> BTreeMap<String, String> {
        let mut c = Cursor {
            buf: self.props,
            at: 0,
        };
        (0..self.prop_count)
            .map_while(|_| Some((c.str16().ok()?.to_owned(), c.str16().ok()?.to_owned())))
            .collect()
    }

    /// An owned copy. Fails only if the topic name is not a valid one.
    pub fn to_stored(&self) -> Result<StoredMessage, &'static str> {
        let topic = TopicName::new(self.topic).map_err(|_| "invalid topic name")?;
        Ok(StoredMessage {
            position: self.position,
            size: self.len,
            queue_offset: self.queue_offset,
            store_timestamp_ms: self.store_ts,
            message: Message {
                topic,
                queue_id: self.queue_id,
                message_id: self.message_id.to_owned(),
                tag: self.tag.map(str::to_owned),
                keys: self.keys().map(str::to_owned).collect(),
                properties: self.properties(),
                body: self.body.to_vec(),
                born_timestamp_ms: self.born_ts,
                flags: self.flags,
            },
        })
    }
}

/// A message read back from the store, with where and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Commit-log position of the record.
    pub position: u64,
    /// Record size on disk.
    pub size: u32,
    pub queue_offset: u64,
    pub store_timestamp_ms: i64,
    pub message: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &[u8]) -> Message {
        Message {
            topic: TopicName::new("orders").unwrap(),
            queue_id: 3,
            message_id: "0A0B".into(),
            tag: Some("created".into()),
            keys: vec!["k1".into(), "order-9".into()],
            properties: [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new()),
            ]
            .into_iter()
            .collect(),
            body: body.to_vec(),
            born_timestamp_ms: 1_700_000_000_000,
            flags: 7,
        }
    }

    #[test]
    fn round_trip() {
        let mut b = Batch::default();
        b.push(&msg(b"hello"));
        let mut m2 = msg(b"world!");
        m2.tag = None;
        m2.keys.clear();
        m2.properties.clear();
        b.push(&m2);
        b.seal(0, 4096, 10, 1_700_000_000_001);
        let second = b.records[1];
        b.seal(1, 4096 + u64::from(b.records[0].len), 11, 1_700_000_000_002);

        let v = RecordView::parse(&b.buf).unwrap();
        let s = v.to_stored().unwrap();
        assert_eq!(s.message, msg(b"hello"));
        assert_eq!((s.position, s.queue_offset), (4096, 10));
        assert_eq!(s.store_timestamp_ms, 1_700_000_000_001);

        let v2 = RecordView::parse(&b.buf[second.start..]).unwrap();
        assert_eq!(v2.to_stored().unwrap().message, m2);
        assert_eq!(v2.queue_offset, 11);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut b = Batch::default();
        b.push(&msg(b"payload"));
        b.seal(0, 0, 0, 5);
        for byte in 0..b.buf.len() {
            for bit in 0..8 {
                let mut buf = b.buf.clone();
                buf[byte] ^= 1 << bit;
                assert!(
                    RecordView::parse(&buf).is_err(),
                    "flip of bit {bit} in byte {byte} not detected"
                );
            }
        }
    }

    #[test]
    fn truncation_is_detected() {
        let mut b = Batch::default();
        b.push(&msg(b"payload"));
        b.seal(0, 0, 0, 5);
        for cut in 0..b.buf.len() {
            assert!(RecordView::parse(&b.buf[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest::proptest! {
        /// Whatever bytes are on disk, parsing returns an error, never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = RecordView::parse(&bytes).map(|v| (v.to_stored(), v.keys().count()));
        }

        /// A valid record with any single byte changed is refused.
        #[test]
        fn any_corruption_is_refused(at in 0usize..200, xor in 1u8..=255) {
            let mut b = Batch::default();
            b.push(&msg(b"some body bytes"));
            b.seal(0, 0, 0, 1);
            let at = at % b.buf.len();
            b.buf[at] ^= xor;
            proptest::prop_assert!(RecordView::parse(&b.buf).is_err());
        }
    }
}
