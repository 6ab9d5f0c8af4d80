//! Parking: messages held back from their topic until they are released
//! (a delayed message falls due, a transaction commits) or discarded (a
//! transaction rolls back, a delayed message is recalled).
//!
//! A parked message is an ordinary commit-log record in a system topic of
//! its own (`%PARK%<name>`, one queue, never a registered topic), so it is exactly as durable as any
//! message under the store's flush policy; its real topic rides along in
//! the reserved property [`system::REAL_TOPIC`]. Releasing writes a copy to
//! the real topic. Which parked messages are finished is kept in the park
//! journal (`<name>.journal`, see [`record`]):
//!
//! - before writing copies, `Intent` records are fsynced; after, `Done`
//!   ranges. A restart that finds an intent without its `Done` looks the
//!   message id up in the store's index and writes the copy only if it is
//!   not there, so a crash neither loses nor duplicates a release;
//! - at open, the park topic is scanned from the first unfinished offset;
//!   everything not finished is pending again ([`Park::pending`]), and the
//!   journal is rewritten as a snapshot.
//!
//! Memory: the offset and commit-log position of each unfinished message.
//! Retention is held at the oldest unfinished message's position
//! ([`Store::hold_retention`]), so a message parked for days keeps the
//! commit-log segments from it onwards on disk.

mod record;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use tern_model::{Message, TopicName, system};
use tern_store::{CopyOf, PreparedCopies, Store, StoredMessage};

use crate::error::{BrokerError, Result};
use crate::journal::{Journal, encode_frame};
use record::Record;

/// Bytes read from the store at once.
const READ_BYTES: usize = 8 << 20;
/// Messages read from the store at once.
const READ_COUNT: usize = 4096;
/// Longest wait at open for the store's dispatcher.
const DISPATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// The journal is rewritten once past this size and twice its snapshot.
const COMPACT_BYTES: u64 = 4 << 20;

/// A parked message as its owner sees it: `message` carries its real topic.
#[derive(Debug, Clone)]
pub(crate) struct Parked {
    /// Its offset in the park topic: the handle to release or discard it.
    pub offset: u64,
    pub message: Message,
    pub store_timestamp_ms: i64,
    /// The owner's counter ([`Park::note`]), 0 at first.
    pub note: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    position: u64,
    note: u32,
    /// Being released or discarded right now.
    busy: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Unfinished offsets; every other offset below `end` is finished.
    unfinished: BTreeMap<u64, Entry>,
    end: u64,
}

impl State {
    /// The journal snapshot of this state.
    fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = self.unfinished.keys().next().copied().unwrap_or(self.end);
        encode_frame(&Record::Low { offset: at }, &mut out);
        for (&o, e) in &self.unfinished {
            if o > at {
                encode_frame(&Record::Done { from: at, to: o }, &mut out);
            }
            if e.note > 0 {
                encode_frame(
                    &Record::Note {
                        offset: o,
                        value: e.note,
                    },
                    &mut out,
                );
            }
            at = o + 1;
        }
        if self.end > at {
            encode_frame(
                &Record::Done {
                    from: at,
                    to: self.end,
                },
                &mut out,
            );
        }
        out
    }
}

/// Copies of parked messages read and laid out ahead of their release
/// ([`Park::stage_copies`]).
#[derive(Debug)]
pub(crate) struct Staged {
    /// The park offsets, ascending.
    offsets: Vec<u64>,
    copies: PreparedCopies,
}

impl Staged {
    /// Messages staged.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Bytes the staged copies hold in memory.
    pub fn bytes(&self) -> u64 {
        self.copies.bytes()
    }
}

/// One park: a system topic and its journal.
#[derive(Debug)]
pub(crate) struct Park {
    store: Arc<Store>,
    topic: TopicName,
    holder: String,
    journal: Journal<Record>,
    state: Mutex<State>,
}

impl Park {
    /// Opens park `name` (`%PARK%<name>` in `store`, journal in `dir`),
    /// recovering what a crash left. Blocking: scans the unfinished part
    /// of the park topic.
    pub fn open(store: Arc<Store>, dir: &Path, name: &str) -> Result<Arc<Park>> {
        let topic = TopicName::new(topic_of(name))
            .map_err(|e| BrokerError::Invalid(format!("park name {name:?}: {e}")))?;
        std::fs::create_dir_all(dir).map_err(crate::error::io_err(dir))?;
        let path = dir.join(format!("{name}.journal"));
        let replay = crate::journal::read::<Record>(&path)?;
        if !replay.dropped.is_empty() {
            tracing::warn!(path = %path.display(), bytes = replay.dropped.len(),
                "park journal ends in a torn record; ignoring it");
        }
        let mut low = 0;
        let mut done = Ranges::default();
        let mut intents = Ranges::default();
        let mut notes = HashMap::new();
        for r in replay.records {
            match r {
                Record::Low { offset } => low = low.max(offset),
                Record::Done { from, to } => done.add(from, to),
                Record::Intent { from, to } => intents.add(from, to),
                Record::Note { offset, value } => {
                    notes.insert(offset, value);
                }
            }
        }
        // Everything appended so far must be in the park topic's queue
        // (after a store open it is; a park reopened on a running store
        // may have to wait for the dispatcher).
        if !store.wait_dispatched(store.max_offset(), DISPATCH_WAIT) {
            return Err(BrokerError::Failed(format!(
                "park {name}: the store did not dispatch its log within {DISPATCH_WAIT:?}"
            )));
        }
        let (min, end) = store.queue_range(topic.as_str(), 0);
        let mut state = State {
            end,
            ..State::default()
        };
        let mut from = low.max(min);
        let mut found_copies = Vec::new();
        while from < end {
            let read = store.read_queue(topic.as_str(), 0, from, READ_COUNT, READ_BYTES)?;
            if read.messages.is_empty() {
                break;
            }
            for m in read.messages {
                let o = m.queue_offset;
                if done.contains(o) {
                    continue;
                }
                if intents.contains(o) && copy_exists(&store, &m)? {
                    found_copies.push(o);
                    continue;
                }
                state.unfinished.insert(
                    o,
                    Entry {
                        position: m.position,
                        note: notes.get(&o).copied().unwrap_or(0),
                        busy: false,
                    },
                );
            }
            from = read.next_offset;
        }
        if !found_copies.is_empty() {
            tracing::info!(
                park = name,
                count = found_copies.len(),
                "releases interrupted by a stop had completed; not writing them again"
            );
        }
        let journal = Journal::create(&path, &state.snapshot())?;
        tracing::info!(
            park = name,
            pending = state.unfinished.len(),
            end,
            "park open"
        );
        let park = Arc::new(Park {
            store,
            holder: topic.to_string(),
            topic,
            journal,
            state: Mutex::new(state),
        });
        park.update_hold();
        Ok(park)
    }

    /// How many parked messages are unfinished.
    pub fn len(&self) -> usize {
        self.state.lock().unfinished.len()
    }

    /// Visits every unfinished parked message, in offset order (after
    /// open: what a restart must schedule again).
    pub fn pending(&self, mut visit: impl FnMut(Parked)) -> Result<()> {
        let offsets: Vec<u64> = self.state.lock().unfinished.keys().copied().collect();
        for chunk in offsets.chunks(READ_COUNT) {
            for p in self.get_many(chunk)? {
                visit(p);
            }
        }
        Ok(())
    }

    /// Parks `msgs` (each with its real topic) and calls `done` with their
    /// offsets once the store has them (after the fsync under `sync`).
    pub fn park(
        self: &Arc<Self>,
        msgs: Vec<Message>,
        done: impl FnOnce(Result<Vec<u64>>) + Send + 'static,
    ) {
        let parked: Vec<Message> = msgs
            .into_iter()
            .map(|mut m| {
                m.properties
                    .insert(system::REAL_TOPIC.to_owned(), m.topic.to_string());
                m.topic = self.topic.clone();
                m.queue_id = 0;
                m
            })
            .collect();
        let this = Arc::clone(self);
        self.store.append_then(&parked, move |r| match r {
            Ok(appended) => {
                let mut st = this.state.lock();
                for a in &appended {
                    st.unfinished.insert(
                        a.queue_offset,
                        Entry {
                            position: a.position,
                            note: 0,
                            busy: false,
                        },
                    );
                    st.end = st.end.max(a.queue_offset + 1);
                }
                drop(st);
                this.update_hold();
                done(Ok(appended.iter().map(|a| a.queue_offset).collect()));
            }
            Err(e) => done(Err(e.into())),
        });
    }

    /// The unfinished message at `offset`, or `None` once it is finished.
    pub fn get(&self, offset: u64) -> Result<Option<Parked>> {
        let Some(e) = self.state.lock().unfinished.get(&offset).copied() else {
            return Ok(None);
        };
        parked(self.store.read(e.position)?, e.note).map(Some)
    }

    /// The unfinished ones of `offsets` (ascending), read in runs.
    pub fn get_many(&self, offsets: &[u64]) -> Result<Vec<Parked>> {
        let entries: Vec<(u64, Entry)> = {
            let st = self.state.lock();
            offsets
                .iter()
                .filter_map(|o| st.unfinished.get(o).map(|e| (*o, *e)))
                .collect()
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut i = 0;
        while i < entries.len() {
            let mut j = i + 1;
            while j < entries.len() && entries[j].0 == entries[j - 1].0 + 1 && j - i < READ_COUNT {
                j += 1;
            }
            let (first, _) = entries[i];
            let read = self
                .store
                .read_queue(self.topic.as_str(), 0, first, j - i, READ_BYTES)?;
            let mut got = read.messages.into_iter().peekable();
            for &(o, e) in &entries[i..j] {
                // Past what one read returned (bytes, or not dispatched
                // yet): by position.
                let m = match got.next_if(|m| m.queue_offset == o) {
                    Some(m) => m,
                    None => self.store.read(e.position)?,
                };
                out.push(parked(m, e.note)?);
            }
            i = j;
        }
        Ok(out)
    }

    /// Writes each message (real topic and queue set by the caller) to its
    /// topic and finishes its offset; returns the offsets released (ones
    /// finished or being finished by another call are skipped). Blocking.
    pub fn release(&self, items: Vec<(u64, Message)>) -> Result<Vec<u64>> {
        let items = self.claim(items, |(o, _)| *o);
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let offsets: Vec<u64> = items.iter().map(|(o, _)| *o).collect();
        let msgs: Vec<Message> = items.into_iter().map(|(_, m)| m).collect();
        self.write_then_finish(offsets, || {
            self.store.append(&msgs)?;
            Ok(())
        })
    }

    /// Releases claimed `offsets` with `write`: intents made durable
    /// first, `Done` after (a lost `Done` costs only an index lookup at
    /// the next open, so it waits for the next fsync, see [`Park::sync`]).
    /// On failure the offsets are idle again.
    fn write_then_finish(
        &self,
        mut offsets: Vec<u64>,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<Vec<u64>> {
        offsets.sort_unstable();
        let written = (|| {
            self.intend(&offsets);
            // Also makes the `Done` records of earlier releases durable.
            self.journal.flush()?;
            write()
        })();
        match written {
            Ok(()) => {
                self.finish(&offsets, false)?;
                Ok(offsets)
            }
            Err(e) => {
                self.unclaim(offsets.iter());
                Err(e)
            }
        }
    }

    /// Appends `Intent` records for `offsets` (ascending); durable with
    /// the next journal flush, which must come before their copies.
    fn intend(&self, offsets: &[u64]) {
        for (from, to) in runs(offsets) {
            self.journal.append(&Record::Intent { from, to });
        }
    }

    /// Like [`Park::release`] for messages that go out unchanged: each
    /// parked record is copied byte for byte (checksum verified, not
    /// decoded) to `topic` and queue (`items`: offset, topic, queue). The
    /// copy keeps the reserved [`system::REAL_TOPIC`] property, which
    /// consumers never see. Blocking.
    pub fn release_copies(&self, items: &[(u64, &TopicName, u32)]) -> Result<Vec<u64>> {
        let items = self.claim(items.to_vec(), |(o, _, _)| *o);
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = match self.prepare(&items) {
            Ok(p) => p,
            Err(e) => {
                self.unclaim(items.iter().map(|(o, _, _)| o));
                return Err(e);
            }
        };
        let offsets: Vec<u64> = items.iter().map(|(o, _, _)| *o).collect();
        self.write_then_finish(offsets, || {
            self.store.append_prepared(prepared)?;
            Ok(())
        })
    }

    /// The slow half of [`Park::release_copies`] done ahead of time: reads
    /// and checks the records of unfinished `items` and lays out their
    /// copies, writing nothing and claiming nothing (they can still be
    /// discarded meanwhile). [`Park::release_staged`] writes them.
    /// Blocking.
    pub fn stage_copies(&self, items: &[(u64, &TopicName, u32)]) -> Result<Staged> {
        let items: Vec<(u64, &TopicName, u32)> = {
            let st = self.state.lock();
            items
                .iter()
                .filter(|(o, _, _)| st.unfinished.get(o).is_some_and(|e| !e.busy))
                .copied()
                .collect()
        };
        let copies = self.prepare(&items)?;
        let mut offsets: Vec<u64> = items.iter().map(|(o, _, _)| *o).collect();
        offsets.sort_unstable();
        Ok(Staged { offsets, copies })
    }

    /// Writes batches staged by [`Park::stage_copies`] and finishes their
    /// offsets, exactly like [`Park::release_copies`] but with one journal
    /// fsync for all of them. Per batch: `Ok(true)` released; `Ok(false)`
    /// nothing written because one of its messages was finished or claimed
    /// since it was staged (release those still unfinished with
    /// [`Park::release_copies`]); `Err` nothing written, idle again.
    /// Blocking.
    pub fn release_staged(&self, batches: Vec<Staged>) -> Vec<Result<bool>> {
        let mut out: Vec<Result<bool>> = batches.iter().map(|_| Ok(false)).collect();
        // Each batch is claimed whole or not at all.
        let mut live = Vec::with_capacity(batches.len());
        for (i, b) in batches.into_iter().enumerate() {
            let claimed = self.claim(b.offsets.clone(), |o| *o);
            if claimed.len() == b.offsets.len() {
                live.push((i, b));
            } else {
                self.unclaim(claimed.iter());
            }
        }
        if live.is_empty() {
            return out;
        }
        for (_, b) in &live {
            self.intend(&b.offsets);
        }
        // Also makes the `Done` records of earlier releases durable.
        if let Err(e) = self.journal.flush() {
            for (i, b) in live {
                self.unclaim(b.offsets.iter());
                out[i] = Err(BrokerError::Failed(format!(
                    "cannot record the release of parked messages: {e}"
                )));
            }
            return out;
        }
        // Every write first, then the bookkeeping: the copies' store times
        // (their lateness) depend only on the writes.
        let mut written = Vec::with_capacity(live.len());
        for (i, b) in live {
            match self.store.append_prepared(b.copies) {
                Ok(_) => written.push((i, b.offsets)),
                Err(e) => {
                    self.unclaim(b.offsets.iter());
                    out[i] = Err(e.into());
                }
            }
        }
        for (i, offsets) in written {
            out[i] = self.finish(&offsets, false).map(|()| true);
        }
        out
    }

    /// Reads and lays out the copies of `items` (unfinished offsets).
    fn prepare(&self, items: &[(u64, &TopicName, u32)]) -> Result<PreparedCopies> {
        let copies: Vec<CopyOf<'_>> = {
            let st = self.state.lock();
            items
                .iter()
                .filter_map(|&(o, topic, queue_id)| {
                    Some(CopyOf {
                        position: st.unfinished.get(&o)?.position,
                        topic,
                        queue_id,
                    })
                })
                .collect()
        };
        Ok(self.store.prepare_copies(&copies)?)
    }

    /// Makes claimed offsets idle again.
    fn unclaim<'a>(&self, offsets: impl Iterator<Item = &'a u64>) {
        let mut st = self.state.lock();
        for o in offsets {
            if let Some(e) = st.unfinished.get_mut(o) {
                e.busy = false;
            }
        }
    }

    /// Finishes `offsets` without writing them anywhere; returns the ones
    /// that were unfinished and not being released.
    pub fn discard(&self, offsets: &[u64]) -> Result<Vec<u64>> {
        let mut offsets = self.claim(offsets.to_vec(), |o| *o);
        offsets.sort_unstable();
        if !offsets.is_empty() {
            // Durable before the answer: a lost `Done` would bring the
            // message back.
            self.finish(&offsets, true)?;
        }
        Ok(offsets)
    }

    /// Sets the owner's counter of unfinished `offset` (durable at once).
    pub fn note(&self, offset: u64, value: u32) -> Result<()> {
        let mut st = self.state.lock();
        let Some(e) = st.unfinished.get_mut(&offset) else {
            return Ok(());
        };
        e.note = value;
        drop(st);
        self.journal.append(&Record::Note { offset, value });
        self.journal.flush()
    }

    /// Keeps the items whose offsets are unfinished and idle, marking them
    /// busy.
    fn claim<T>(&self, items: Vec<T>, offset: impl Fn(&T) -> u64) -> Vec<T> {
        let mut st = self.state.lock();
        items
            .into_iter()
            .filter(|it| {
                let o = offset(it);
                st.unfinished
                    .get_mut(&o)
                    .is_some_and(|e| !std::mem::replace(&mut e.busy, true))
            })
            .collect()
    }

    /// Records `offsets` (busy, ascending) as finished; fsyncs the
    /// journal if `sync`.
    fn finish(&self, offsets: &[u64], sync: bool) -> Result<()> {
        for (from, to) in runs(offsets) {
            self.journal.append(&Record::Done { from, to });
        }
        let mut st = self.state.lock();
        for o in offsets {
            st.unfinished.remove(o);
        }
        drop(st);
        self.update_hold();
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every journal record so far durable, and compacts the
    /// journal when it has grown.
    pub fn sync(&self) -> Result<()> {
        self.journal.flush()?;
        if self.journal.wants_compaction(COMPACT_BYTES) {
            self.journal.compact(|| self.state.lock().snapshot())?;
        }
        Ok(())
    }

    /// Holds retention at the oldest unfinished message.
    fn update_hold(&self) {
        let first = self
            .state
            .lock()
            .unfinished
            .first_key_value()
            .map(|(_, e)| e.position);
        self.store.hold_retention(&self.holder, first);
    }
}

/// The system topic of park `name`, which is also the name it holds the
/// store's retention under (list it in
/// [`tern_store::StoreConfig::retention_holders`]).
pub(crate) fn topic_of(name: &str) -> String {
    format!("{}{name}", crate::meta::PARK_PREFIX)
}

/// The runs of consecutive values of ascending `offsets`, as `from..to`.
fn runs(offsets: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let from = *offsets.get(i)?;
        let mut to = from + 1;
        i += 1;
        while offsets.get(i) == Some(&to) {
            to += 1;
            i += 1;
        }
        Some((from, to))
    })
}

/// The parked message stored as `m`, with its real topic back.
fn parked(m: StoredMessage, note: u32) -> Result<Parked> {
    let mut message = m.message;
    let topic = message
        .properties
        .remove(system::REAL_TOPIC)
        .and_then(|t| TopicName::new(&t).ok())
        .ok_or_else(|| {
            BrokerError::Failed(format!(
                "parked record at {} names no valid topic",
                m.position
            ))
        })?;
    message.topic = topic;
    Ok(Parked {
        offset: m.queue_offset,
        message,
        store_timestamp_ms: m.store_timestamp_ms,
        note,
    })
}

/// Whether the release copy of parked record `m` is in the store: a
/// record of its real topic with its message id, stored after it.
fn copy_exists(store: &Store, m: &StoredMessage) -> Result<bool> {
    let Some(real) = m.message.properties.get(system::REAL_TOPIC) else {
        return Ok(false);
    };
    Ok(store
        .find_by_message_id(&m.message.message_id, 64)?
        .iter()
        .any(|c| c.message.topic.as_str() == real && c.store_timestamp_ms >= m.store_timestamp_ms))
}

/// Finished offset ranges read back from the journal.
#[derive(Debug, Default)]
struct Ranges(BTreeMap<u64, u64>);

impl Ranges {
    /// Adds `from..to`, merging it with the ranges it overlaps or touches.
    fn add(&mut self, mut from: u64, mut to: u64) {
        if from >= to {
            return;
        }
        if let Some((&f, &t)) = self.0.range(..=from).next_back()
            && t >= from
        {
            from = f;
            to = to.max(t);
        }
        let inside: Vec<u64> = self.0.range(from..=to).map(|(&f, _)| f).collect();
        for f in inside {
            if let Some(t) = self.0.remove(&f) {
                to = to.max(t);
            }
        }
        self.0.insert(from, to);
    }

    fn contains(&self, o: u64) -> bool {
        self.0
            .range(..=o)
            .next_back()
            .is_some_and(|(_, &to)| o < to)
    }
}

#[cfg(test)]
mod tests;
