//! Message ids in the layout the official RocketMQ 5 clients use.
//!
//! 17 bytes written as 34 upper-case hex digits:
//!
//! | bytes | content |
//! |---|---|
//! | 1 | version, `0x01` |
//! | 6 | a MAC address of this host (random bytes if none is found) |
//! | 2 | the low 16 bits of the process id |
//! | 4 | seconds since 2021-01-01T00:00:00Z, big-endian (wraps) |
//! | 4 | a per-process sequence number, big-endian (wraps) |
//!
//! Ids are unique per process by the sequence, and across hosts and
//! processes by the MAC, pid and time, as far as the official clients'
//! ids are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 2021-01-01T00:00:00Z in seconds since the Unix epoch.
const ID_EPOCH_SECS: u64 = 1_609_459_200;

/// Version byte of the id layout.
const VERSION: u8 = 0x01;

/// Makes message ids for one process.
#[derive(Debug)]
pub struct MessageIdGenerator {
    /// Version, MAC and pid: the first 9 bytes, the same for every id.
    prefix: [u8; 9],
    sequence: AtomicU32,
}

impl MessageIdGenerator {
    /// A generator for this host and process.
    pub fn new() -> Self {
        Self::with_host(host_mac(), std::process::id())
    }

    fn with_host(mac: [u8; 6], pid: u32) -> Self {
        let mut prefix = [0u8; 9];
        prefix[0] = VERSION;
        prefix[1..7].copy_from_slice(&mac);
        prefix[7..9].copy_from_slice(&pid.to_be_bytes()[2..4]);
        Self {
            prefix,
            sequence: AtomicU32::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(ID_EPOCH_SECS);
        self.id_at(secs)
    }

    fn id_at(&self, secs_since_epoch: u64) -> String {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        // Truncation is the layout's rule: the field wraps.
        let secs = (secs_since_epoch & u64::from(u32::MAX)) as u32;
        let mut out = String::with_capacity(34);
        for b in self
            .prefix
            .iter()
            .chain(&secs.to_be_bytes())
            .chain(&seq.to_be_bytes())
        {
            let _ = write!(out, "{b:02X}");
        }
        out
    }
}

impl Default for MessageIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// The first non-zero MAC address under `/sys/class/net` (in name order,
/// so the same one each run), else 6 random bytes.
fn host_mac() -> [u8; 6] {
    let mut names: Vec<_> = std::fs::read_dir("/sys/class/net")
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    for path in names {
        let Ok(text) = std::fs::read_to_string(path.join("address")) else {
            continue;
        };
        if let Some(mac) = parse_mac(text.trim())
            && mac != [0; 6]
        {
            return mac;
        }
    }
    let mut mac = [0u8; 6];
    if getrandom::fill(&mut mac).is_err() {
        // No randomness either: the pid, time and sequence still vary.
        tracing::debug!("no MAC address and no randomness for message ids");
    }
    mac
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_official_clients() {
        let ids = MessageIdGenerator::with_host([0x0A, 0x1B, 0x2C, 0x3D, 0x4E, 0x5F], 0x0012_3456);
        // 2021-01-02T00:00:00Z is 86,400 s past the id epoch.
        let first = ids.id_at(86_400);
        assert_eq!(first, "010A1B2C3D4E5F34560001518000000000");
        assert_eq!(first.len(), 34);
        assert_eq!(ids.id_at(86_400), "010A1B2C3D4E5F34560001518000000001");
    }

    #[test]
    fn ids_differ_and_are_upper_hex() {
        let ids = MessageIdGenerator::new();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert!(a.starts_with("01"), "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
            "{a}"
        );
    }

    #[test]
    fn parses_mac_addresses() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([0x02, 0x42, 0xAC, 0x11, 0x00, 0x02])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:02:03"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
    }
}
