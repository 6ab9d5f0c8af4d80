//! The pop journal: the records that make consumption state survive a
//! restart, in a [`crate::journal`] file (magic `TERNPOP1`). Each record's
//! payload is a kind byte and its fields as varints (see [`Record`]).
//! Records are set operations keyed by queue offset (last writer wins) or
//! monotone maxima, as compaction requires.

use std::path::Path;

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::journal::{Frame, Replay};

/// The open pop journal.
pub(crate) type Journal = crate::journal::Journal<Record>;

/// Reads the pop journal at `path` (an empty replay if there is none).
pub(crate) fn read(path: &Path) -> Result<Replay<Record>> {
    crate::journal::read(path)
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A broker start; sequence numbers of this run begin at
    /// `epoch << SEQ_EPOCH_SHIFT`.
    Boot { epoch: u64 },
    /// Declares journal id `id` for a (group, topic, queue) and raises its
    /// next offset to `next`.
    Open {
        id: u32,
        group: String,
        topic: String,
        queue: u32,
        next: u64,
    },
    /// `offset` is in flight with this lease.
    Lease {
        id: u32,
        offset: u64,
        attempt: u32,
        until: i64,
        seq: u64,
    },
    /// `offset` is done (acknowledged, filtered, dead-lettered, gone).
    Done { id: u32, offset: u64 },
    /// The next offset is at least `next` (offsets skipped below it are
    /// done).
    Advance { id: u32, next: u64 },
    /// Queue `id` is gone: its topic or group was deleted.
    Forget { id: u32 },
}

const BOOT: u8 = 1;
const OPEN: u8 = 2;
const LEASE: u8 = 3;
const DONE: u8 = 4;
const ADVANCE: u8 = 5;
const FORGET: u8 = 6;

impl Record {
    /// Appends this record's frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        crate::journal::encode_frame(self, out);
    }
}

impl Frame for Record {
    const MAGIC: &'static [u8; 8] = b"TERNPOP1";
    const WHAT: &'static str = "pop journal";

    fn encode(&self, w: &mut Writer) {
        match self {
            Record::Boot { epoch } => {
                w.u8(BOOT).uvar(*epoch);
            }
            Record::Open {
                id,
                group,
                topic,
                queue,
                next,
            } => {
                w.u8(OPEN)
                    .uvar(u64::from(*id))
                    .str(group)
                    .str(topic)
                    .uvar(u64::from(*queue))
                    .uvar(*next);
            }
            Record::Lease {
                id,
                offset,
                attempt,
                until,
                seq,
            } => {
                w.u8(LEASE)
                    .uvar(u64::from(*id))
                    .uvar(*offset)
                    .uvar(u64::from(*attempt))
                    .ivar(*until)
                    .uvar(*seq);
            }
            Record::Done { id, offset } => {
                w.u8(DONE).uvar(u64::from(*id)).uvar(*offset);
            }
            Record::Advance { id, next } => {
                w.u8(ADVANCE).uvar(u64::from(*id)).uvar(*next);
            }
            Record::Forget { id } => {
                w.u8(FORGET).uvar(u64::from(*id));
            }
        }
        // Names are at most a few hundred bytes: every payload fits.
    }

    fn decode(r: &mut Reader<'_>) -> Option<Record> {
        let rec = match r.u8()? {
            BOOT => Record::Boot { epoch: r.uvar()? },
            OPEN => Record::Open {
                id: r.u32var()?,
                group: r.str()?.to_owned(),
                topic: r.str()?.to_owned(),
                queue: r.u32var()?,
                next: r.uvar()?,
            },
            LEASE => Record::Lease {
                id: r.u32var()?,
                offset: r.uvar()?,
                attempt: r.u32var()?,
                until: r.ivar()?,
                seq: r.uvar()?,
            },
            DONE => Record::Done {
                id: r.u32var()?,
                offset: r.uvar()?,
            },
            ADVANCE => Record::Advance {
                id: r.u32var()?,
                next: r.uvar()?,
            },
            FORGET => Record::Forget { id: r.u32var()? },
            _ => return None,
        };
        Some(rec)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::journal::{encode_frame, parse};

    fn sample() -> Vec<Record> {
        vec![
            Record::Boot { epoch: 3 },
            Record::Open {
                id: 1,
                group: "g".into(),
                topic: "t".into(),
                queue: 2,
                next: 10,
            },
            Record::Lease {
                id: 1,
                offset: 10,
                attempt: 1,
                until: 1_700_000_000_000,
                seq: 3 << 40,
            },
            Record::Done { id: 1, offset: 10 },
            Record::Advance { id: 1, next: 12 },
            Record::Forget { id: 1 },
        ]
    }

    #[test]
    fn records_round_trip_and_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::create(&path, &[]).unwrap();
        for r in sample() {
            j.append(&r);
        }
        j.flush().unwrap();
        assert_eq!(read(&path).unwrap().records, sample());

        // Any cut inside the last frame drops exactly that frame.
        let full = fs::read(&path).unwrap();
        let mut last = Vec::new();
        encode_frame(&sample()[5], &mut last);
        for cut in 1..last.len() {
            let r = parse::<Record>(&path, &full[..full.len() - cut]).unwrap();
            assert_eq!(r.records, sample()[..5]);
            assert_eq!(r.dropped.len(), last.len() - cut);
        }
        // A flipped bit in a frame stops replay there.
        let mut bad = full.clone();
        let at = full.len() - last.len() - 2;
        bad[at] ^= 0x10;
        assert_eq!(parse::<Record>(&path, &bad).unwrap().records, sample()[..4]);
        assert!(parse::<Record>(&path, b"NOTAJRNL").is_err());
    }

    #[test]
    fn compaction_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::create(&path, &[]).unwrap();
        for _ in 0..100 {
            j.append(&Record::Advance { id: 1, next: 5 });
        }
        j.flush().unwrap();
        assert!(j.wants_compaction(100));
        j.compact(|| {
            // Something recorded while the snapshot is taken.
            j.append(&Record::Done { id: 1, offset: 9 });
            let mut b = Vec::new();
            encode_frame(&Record::Boot { epoch: 1 }, &mut b);
            b
        })
        .unwrap();
        j.append(&Record::Advance { id: 1, next: 6 });
        j.flush().unwrap();
        assert!(!j.wants_compaction(100));
        assert_eq!(
            read(&path).unwrap().records,
            [
                Record::Boot { epoch: 1 },
                Record::Done { id: 1, offset: 9 },
                Record::Advance { id: 1, next: 6 }
            ]
        );
        assert_eq!(j.len(), fs::metadata(&path).unwrap().len());
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Fuzzing (more cases: `PROPTEST_CASES=100000 cargo test -p
        /// tern-broker --lib fuzz_`): well-framed arbitrary payloads and
        /// arbitrary tails reach the decoder without a panic, and what it
        /// accepts is exactly what it would have written.
        #[test]
        fn fuzz_pop_journal_frames(
            payloads in proptest::collection::vec((0u8..8, proptest::collection::vec(proptest::num::u8::ANY, 0..80)).prop_map(|(tag, mut rest)| { rest.insert(0, tag); rest }), 0..8),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            crate::journal::fuzz::check::<Record>(&payloads, &tail);
        }
    }
}
