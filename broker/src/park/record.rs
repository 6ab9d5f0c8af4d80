//! The park journal's records (a [`crate::journal`] file, magic
//! `TERNPRK1`): which parked messages are finished, which are being
//! released, and their small counters. Every record is a set operation or
//! a monotone maximum, as compaction requires.

use crate::codec::{Reader, Writer};
use crate::journal::Frame;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// Every parked offset below `offset` is finished.
    Low { offset: u64 },
    /// Offsets `from..to` are finished (released or discarded).
    Done { from: u64, to: u64 },
    /// Offsets `from..to` (those of them unfinished) are about to be
    /// written to their topics: if the broker stops before their `Done`,
    /// recovery looks for each copy before writing it again.
    Intent { from: u64, to: u64 },
    /// The counter of unfinished `offset` is `value`.
    Note { offset: u64, value: u32 },
}

const LOW: u8 = 1;
const DONE: u8 = 2;
const INTENT: u8 = 3;
const NOTE: u8 = 4;

impl Frame for Record {
    const MAGIC: &'static [u8; 8] = b"TERNPRK1";
    const WHAT: &'static str = "park journal";

    fn encode(&self, w: &mut Writer) {
        match *self {
            Record::Low { offset } => {
                w.u8(LOW).uvar(offset);
            }
            Record::Done { from, to } => {
                w.u8(DONE).uvar(from).uvar(to);
            }
            Record::Intent { from, to } => {
                w.u8(INTENT).uvar(from).uvar(to);
            }
            Record::Note { offset, value } => {
                w.u8(NOTE).uvar(offset).uvar(u64::from(value));
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Option<Self> {
        Some(match r.u8()? {
            LOW => Record::Low { offset: r.uvar()? },
            DONE => Record::Done {
                from: r.uvar()?,
                to: r.uvar()?,
            },
            INTENT => Record::Intent {
                from: r.uvar()?,
                to: r.uvar()?,
            },
            NOTE => Record::Note {
                offset: r.uvar()?,
                value: r.u32var()?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Journal, read};

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("park.journal");
        let all = vec![
            Record::Low { offset: 7 },
            Record::Done { from: 9, to: 12 },
            Record::Intent { from: 12, to: 13 },
            Record::Note {
                offset: 13,
                value: 4,
            },
        ];
        let j = Journal::<Record>::create(&path, &[]).unwrap();
        for r in &all {
            j.append(r);
        }
        j.flush().unwrap();
        assert_eq!(read::<Record>(&path).unwrap().records, all);
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Fuzzing, as for the consumption journal.
        #[test]
        fn fuzz_park_journal_frames(
            payloads in proptest::collection::vec((0u8..8, proptest::collection::vec(proptest::num::u8::ANY, 0..40)).prop_map(|(tag, mut rest)| { rest.insert(0, tag); rest }), 0..8),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        ) {
            crate::journal::fuzz::check::<Record>(&payloads, &tail);
        }
    }
}
