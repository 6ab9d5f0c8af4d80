//! The type configuration of Tern's Raft groups and the one binary form of
//! a log entry, used both in the log's segment files and in AppendEntries
//! messages (a follower writes what it received without re-encoding it).
//!
//! An entry's frame, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | length of what follows the checksum |
//! | 4 | CRC32C of what follows the checksum |
//! | 8 | log index |
//! | 8 | term of the leader that made the entry |
//! | 8 | node id of that leader |
//! | 1 | kind: 0 blank, 1 command, 2 membership |
//! | rest | the command's bytes, or the membership as JSON |

use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};

use crate::error::Error;

openraft::declare_raft_types!(
    /// Tern's Raft types: node ids are the replica numbers of the group
    /// (0, 1, 2, ...), a node is known by its replication address, and a
    /// command and its answer are opaque bytes the state machine gives a
    /// meaning to.
    pub TypeConfig:
        D = Vec<u8>,
        R = Vec<u8>,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// A log entry of a Tern Raft group.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index) of a Tern Raft group.
pub type Id = LogId<u64>;

/// Bytes before an entry's body: length and checksum.
pub(crate) const FRAME_HEADER: usize = 8;
/// Bytes of a body before its payload.
const BODY_HEADER: usize = 8 + 8 + 8 + 1;
/// Largest body accepted when decoding (a command is at most a few batches
/// of messages; this bounds what a corrupt length can make us allocate).
pub(crate) const MAX_BODY: usize = 256 * 1024 * 1024;

const KIND_BLANK: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

/// A log id from its parts.
pub fn log_id(term: u64, leader: u64, index: u64) -> Id {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

/// Appends `entry`'s frame to `out`.
pub fn encode(entry: &Entry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.extend_from_slice(&entry.log_id.index.to_le_bytes());
    out.extend_from_slice(&entry.log_id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&entry.log_id.leader_id.node_id.to_le_bytes());
    match &entry.payload {
        EntryPayload::Blank => out.push(KIND_BLANK),
        EntryPayload::Normal(command) => {
            out.push(KIND_COMMAND);
            out.extend_from_slice(command);
        }
        EntryPayload::Membership(membership) => {
            out.push(KIND_MEMBERSHIP);
            // A BTreeMap/BTreeSet of integers and strings cannot fail to
            // serialize.
            let json = serde_json::to_vec(membership).unwrap_or_default();
            out.extend_from_slice(&json);
        }
    }
    let body = &out[start + FRAME_HEADER..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The length of the frame at the start of `bytes` (header included), or
/// `None` if `bytes` does not hold a whole frame header yet.
pub(crate) fn frame_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..FRAME_HEADER)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    Some(FRAME_HEADER + len)
}

/// Decodes the frame at the start of `bytes`, returning the entry and the
/// frame's length.
pub fn decode(bytes: &[u8]) -> Result<(Entry, usize), Error> {
    let total = frame_len(bytes).ok_or(Error::Truncated)?;
    if total - FRAME_HEADER > MAX_BODY || total - FRAME_HEADER < BODY_HEADER {
        return Err(Error::BadLength(total - FRAME_HEADER));
    }
    let frame = bytes.get(..total).ok_or(Error::Truncated)?;
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let body = &frame[FRAME_HEADER..];
    if crc32c::crc32c(body) != crc {
        return Err(Error::Checksum { index: None });
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let id = log_id(word(8), word(16), word(0));
    let payload = &body[BODY_HEADER..];
    let payload = match body[24] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_COMMAND => EntryPayload::Normal(payload.to_vec()),
        KIND_MEMBERSHIP => {
            let membership: Membership<u64, openraft::BasicNode> =
                serde_json::from_slice(payload).map_err(|e| Error::Membership(e.to_string()))?;
            EntryPayload::Membership(membership)
        }
        other => return Err(Error::Kind(other)),
    };
    Ok((
        Entry {
            log_id: id,
            payload,
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn entries() -> Vec<Entry> {
        let nodes: BTreeMap<u64, openraft::BasicNode> = (0..3)
            .map(|i| {
                (
                    i,
                    openraft::BasicNode::new(format!("127.0.0.1:{}", 9000 + i)),
                )
            })
            .collect();
        let voters = BTreeSet::from([0, 1, 2]);
        vec![
            Entry {
                log_id: log_id(1, 0, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(1, 0, 2),
                payload: EntryPayload::Normal(b"hello".to_vec()),
            },
            Entry {
                log_id: log_id(2, 1, 3),
                payload: EntryPayload::Normal(Vec::new()),
            },
            Entry {
                log_id: log_id(3, 2, 4),
                payload: EntryPayload::Membership(Membership::new(vec![voters], nodes)),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let mut buf = Vec::new();
        for e in entries() {
            encode(&e, &mut buf);
        }
        let mut at = 0;
        for want in entries() {
            let (got, used) = decode(&buf[at..]).unwrap();
            assert_eq!(got, want);
            at += used;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn a_flipped_bit_or_a_short_frame_is_refused() {
        let mut buf = Vec::new();
        encode(&entries()[1], &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "a frame cut at {cut} decoded");
        }
        for at in FRAME_HEADER..buf.len() {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            assert!(
                matches!(decode(&bad), Err(Error::Checksum { .. })),
                "flip at {at}"
            );
        }
    }
}
