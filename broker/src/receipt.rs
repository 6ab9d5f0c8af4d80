//! Receipt handles: the opaque strings a consumer presents to acknowledge
//! a delivery, change its invisibility or send it to the dead-letter queue.
//!
//! A handle carries everything needed to find the delivery again, so the
//! broker keeps no handle table: group, topic, queue id, queue offset,
//! delivery attempt, invisible-until time and the delivery's sequence
//! number. An HMAC-SHA256 tag, truncated to 16 bytes and keyed by a 32-byte
//! secret of this broker, makes it unforgeable. Whether a genuine handle is
//! still *current* is decided by the consumption state (its sequence
//! number must match the live delivery), not here.
//!
//! Layout before base64url (no padding): a version byte (1), group and
//! topic (varint length + UTF-8), queue id, queue offset and attempt
//! (LEB128 varints), invisible-until ms (zigzag varint), sequence number
//! (varint), then the 16-byte tag over everything before it.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tern_model::{GroupName, TopicName};

use crate::codec::{Reader, Writer};
pub use crate::error::ReceiptError;
use crate::error::{BrokerError, Result, corrupt, io_err};
use crate::fsutil::{ensure_dir, read_optional, write_atomic};

/// What a receipt handle says about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub group: GroupName,
    pub topic: TopicName,
    pub queue_id: u32,
    pub offset: u64,
    /// Delivery attempt, from 1.
    pub attempt: u32,
    pub invisible_until_ms: i64,
    /// Unique per delivery (and per invisibility change).
    pub seq: u64,
}

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Longest handle accepted, in characters (a real one is well under 500).
const MAX_HANDLE_CHARS: usize = 1024;

/// Issues and checks receipt handles with this broker's secret.
#[derive(Clone)]
pub struct ReceiptCodec {
    /// Keyed once; cloned for each handle.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for ReceiptCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiptCodec { key: <redacted> }")
    }
}

impl ReceiptCodec {
    /// The secret's file name inside the data directory.
    pub const KEY_FILE: &'static str = "receipt.key";

    /// A codec keyed by `key`.
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        Self { mac }
    }

    /// A codec with a fresh random key (not persisted).
    pub fn random() -> Result<Self> {
        Ok(Self::new(random_key()?))
    }

    /// Loads the broker's secret from `dir`, creating it (32 random bytes,
    /// mode 0600, written atomically) the first time. Handles stay valid
    /// across restarts because the secret does.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        ensure_dir(dir)?;
        let path = dir.join(Self::KEY_FILE);
        if let Some(bytes) = read_optional(&path)? {
            let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                corrupt(
                    &path,
                    format!("receipt key is {} bytes; expected {KEY_LEN}", bytes.len()),
                )
            })?;
            let meta = fs::metadata(&path).map_err(io_err(&path))?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "receipt key was readable by others; setting mode 0600");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(io_err(&path))?;
            }
            return Ok(Self::new(key));
        }
        let key = random_key()?;
        write_atomic(&path, &key, 0o600)?;
        tracing::info!(path = %path.display(), "created a new receipt-handle key");
        Ok(Self::new(key))
    }

    /// Encodes and signs a handle.
    pub fn encode(&self, r: &Receipt) -> String {
        let mut w = Writer::default();
        w.u8(VERSION)
            .str(r.group.as_str())
            .str(r.topic.as_str())
            .uvar(u64::from(r.queue_id))
            .uvar(r.offset)
            .uvar(u64::from(r.attempt))
            .ivar(r.invisible_until_ms)
            .uvar(r.seq);
        let mut mac = self.mac.clone();
        mac.update(&w.buf);
        let tag = mac.finalize().into_bytes();
        w.bytes(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(&w.buf)
    }

    /// Checks a handle's tag (in constant time) and decodes it. The fields
    /// are parsed only once the tag has proved them authentic.
    pub fn decode(&self, handle: &str) -> Result<Receipt, ReceiptError> {
        if handle.len() > MAX_HANDLE_CHARS {
            return Err(ReceiptError::Malformed("too long"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(handle)
            .map_err(|_| ReceiptError::Malformed("not base64url"))?;
        if raw.len() <= TAG_LEN {
            return Err(ReceiptError::Malformed("too short"));
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| ReceiptError::Forged)?;
        parse(body).ok_or(ReceiptError::Malformed("bad fields"))
    }
}

fn parse(body: &[u8]) -> Option<Receipt> {
    let mut r = Reader::new(body);
    if r.u8()? != VERSION {
        return None;
    }
    let receipt = Receipt {
        group: GroupName::new(r.str()?).ok()?,
        topic: TopicName::new(r.str()?).ok()?,
        queue_id: r.u32var()?,
        offset: r.uvar()?,
        attempt: r.u32var()?,
        invisible_until_ms: r.ivar()?,
        seq: r.uvar()?,
    };
    r.is_empty().then_some(receipt)
}

fn random_key() -> Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)
        .map_err(|e| BrokerError::Failed(format!("no OS randomness for the receipt key: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Receipt {
        Receipt {
            group: GroupName::new("orders-consumers").unwrap(),
            topic: TopicName::new("orders").unwrap(),
            queue_id: 3,
            offset: 123_456,
            attempt: 2,
            invisible_until_ms: 1_700_000_030_000,
            seq: (7 << 40) | 99,
        }
    }

    #[test]
    fn round_trip_and_short() {
        let c = ReceiptCodec::new([7; 32]);
        let h = c.encode(&sample());
        assert!(h.len() < 80, "{} chars: {h}", h.len());
        assert_eq!(c.decode(&h), Ok(sample()));
        let mut odd = sample();
        odd.invisible_until_ms = -5;
        odd.offset = u64::MAX;
        assert_eq!(c.decode(&c.encode(&odd)), Ok(odd));
    }

    #[test]
    fn any_changed_character_is_refused() {
        let c = ReceiptCodec::new([1; 32]);
        let h = c.encode(&sample());
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..h.len() {
            for &ch in alphabet {
                let mut b = h.clone().into_bytes();
                if b[i] == ch {
                    continue;
                }
                b[i] = ch;
                let s = String::from_utf8(b).unwrap();
                assert!(c.decode(&s).is_err(), "accepted {s} (position {i})");
            }
        }
    }

    #[test]
    fn other_secret_and_truncation_are_refused() {
        let a = ReceiptCodec::new([1; 32]);
        let b = ReceiptCodec::new([2; 32]);
        let h = a.encode(&sample());
        assert_eq!(b.decode(&h), Err(ReceiptError::Forged));
        for n in 0..h.len() {
            assert!(a.decode(&h[..n]).is_err(), "accepted a prefix of {n}");
        }
        assert!(a.decode(&format!("{h}A")).is_err());
        assert!(a.decode(&"A".repeat(5000)).is_err());
        assert!(a.decode("").is_err());
    }

    #[test]
    fn key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReceiptCodec::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(ReceiptCodec::KEY_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let h = a.encode(&sample());
        let b = ReceiptCodec::load_or_create(dir.path()).unwrap();
        assert_eq!(b.decode(&h), Ok(sample()));
        assert_eq!(format!("{b:?}"), "ReceiptCodec { key: <redacted> }");

        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            ReceiptCodec::load_or_create(dir.path()),
            Err(BrokerError::Corrupt { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let c = ReceiptCodec::new([3; 32]);
            let _ = c.decode(&s);
            let b64 = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(c.decode(&b64).is_err());
        }

        #[test]
        fn any_receipt_round_trips(queue_id: u32, offset: u64, attempt: u32, until: i64, seq: u64) {
            let c = ReceiptCodec::new([4; 32]);
            let r = Receipt { queue_id, offset, attempt, invisible_until_ms: until, seq, ..sample() };
            prop_assert_eq!(c.decode(&c.encode(&r)), Ok(r));
        }
    }
}
