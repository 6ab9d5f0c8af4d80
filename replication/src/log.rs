//! A replica's Raft log on disk: segment files of entry frames
//! (`entry.rs`), the vote, and the id of the last purged entry.
//!
//! `DIR/log/<first index, 20 digits>.seg` hold the entries in index order,
//! a new segment begun when one passes `segment_bytes`; `DIR/vote.json`
//! and `DIR/purged.json` are replaced whole (written aside, synced,
//! renamed, directory synced). Entries are written with positional writes
//! under a lock and read with positional reads, so the log's readers never
//! wait on a sync. Under `sync` flushing an append is reported flushed to
//! Raft only after `fdatasync` (on a flusher thread that serves many
//! appends with one sync); otherwise at once, when the bytes are in the
//! page cache. On open, a torn or corrupt tail of the last segment (a crash
//! mid-write) is cut off; damage anywhere else is an error.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::RwLock;

use crate::entry::{self, Entry, Id, TypeConfig};
use crate::error::Error;

/// Default size past which a new segment is begun.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Where an entry is: its segment (by first index), offset, frame length,
/// and its log id's term and leader (so ids are known without a read).
#[derive(Clone, Copy, Debug)]
struct Position {
    segment: u64,
    offset: u64,
    len: u32,
    term: u64,
    leader: u64,
}

struct Segment {
    file: Arc<File>,
    path: PathBuf,
    len: u64,
}

#[derive(Default)]
struct State {
    segments: BTreeMap<u64, Segment>,
    /// Positions of the entries `first..first + positions.len()`.
    positions: VecDeque<Position>,
    first: u64,
    purged: Option<Id>,
    vote: Option<Vote<u64>>,
}

impl State {
    fn id_at(&self, index: u64) -> Option<Id> {
        let at = index.checked_sub(self.first)?;
        let p = self.positions.get(usize::try_from(at).ok()?)?;
        Some(entry::log_id(p.term, p.leader, index))
    }

    fn last_id(&self) -> Option<Id> {
        match self.positions.len() {
            0 => self.purged,
            n => self.id_at(self.first + n as u64 - 1),
        }
    }

    fn next_index(&self) -> u64 {
        self.first + self.positions.len() as u64
    }
}

struct Shared {
    dir: PathBuf,
    segment_bytes: u64,
    state: RwLock<State>,
}

/// Work for the flusher thread: sync `file`, then report `callback`.
struct Flush {
    file: Arc<File>,
    callback: LogFlushed<TypeConfig>,
}

/// The Raft log of one replica (openraft's `RaftLogStorage`).
pub struct LogStore {
    shared: Arc<Shared>,
    /// Set under `sync` flushing: the flusher thread's queue.
    flusher: Option<mpsc::Sender<Flush>>,
}

/// Reads entries of a [`LogStore`] while it takes appends.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (or creates) the log in `dir`. With `sync`, appends are
    /// reported flushed after `fdatasync`.
    pub fn open(dir: &Path, sync: bool, segment_bytes: u64) -> Result<Self, Error> {
        let log_dir = dir.join("log");
        std::fs::create_dir_all(&log_dir).map_err(Error::io("creating", &log_dir))?;
        let mut state = State {
            vote: read_json(&dir.join("vote.json"))?,
            purged: read_json(&dir.join("purged.json"))?,
            ..State::default()
        };
        state.first = state.purged.map_or(0, |p| p.index + 1);
        recover(&log_dir, &mut state)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_bytes,
            state: RwLock::new(state),
        });
        let flusher = sync.then(spawn_flusher);
        Ok(Self { shared, flusher })
    }

    /// A reader of this log.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    fn append_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Result<Arc<File>, Error> {
        let mut state = self.shared.state.write();
        let mut buf = Vec::new();
        let mut pending: Vec<(u64, u32, u64, u64)> = Vec::new();
        for e in entries {
            // An empty log starts where it is told (Raft's first entry is 0,
            // or the one after a snapshot); after that, no gaps.
            if state.positions.is_empty() && pending.is_empty() && e.log_id.index >= state.first {
                state.first = e.log_id.index;
            }
            if e.log_id.index != state.next_index() + pending.len() as u64 {
                return Err(Error::Corrupt {
                    path: self.shared.dir.clone(),
                    why: format!(
                        "append of index {} where {} is next",
                        e.log_id.index,
                        state.next_index() + pending.len() as u64
                    ),
                });
            }
            let at = buf.len();
            entry::encode(&e, &mut buf);
            let len = u32::try_from(buf.len() - at).unwrap_or(u32::MAX);
            pending.push((
                at as u64,
                len,
                e.log_id.leader_id.term,
                e.log_id.leader_id.node_id,
            ));
        }
        let first_new = state.next_index();
        let (segment, file, base) = self.writable_segment(&mut state, first_new)?;
        let path = state.segments[&segment].path.clone();
        file.write_all_at(&buf, base)
            .map_err(Error::io("writing", &path))?;
        if let Some(seg) = state.segments.get_mut(&segment) {
            seg.len = base + buf.len() as u64;
        }
        for (offset, len, term, leader) in pending {
            state.positions.push_back(Position {
                segment,
                offset: base + offset,
                len,
                term,
                leader,
            });
        }
        Ok(file)
    }

    /// The segment new entries go to (a new one, starting at `next`, when
    /// the last is full or none exists), its file and its end.
    fn writable_segment(
        &self,
        state: &mut State,
        next: u64,
    ) -> Result<(u64, Arc<File>, u64), Error> {
        if let Some((&first, seg)) = state.segments.iter().next_back()
            && seg.len < self.shared.segment_bytes
        {
            return Ok((first, seg.file.clone(), seg.len));
        }
        // The full segment is synced before the next one begins, so a
        // sync of the newest file covers everything before it.
        if let Some(seg) = state.segments.values().next_back() {
            seg.file
                .sync_data()
                .map_err(Error::io("syncing", &seg.path))?;
        }
        let path = segment_path(&self.shared.dir.join("log"), next);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(Error::io("creating", &path))?;
        sync_dir(&self.shared.dir.join("log"))?;
        let file = Arc::new(file);
        state.segments.insert(
            next,
            Segment {
                file: file.clone(),
                path,
                len: 0,
            },
        );
        Ok((next, file, 0))
    }

    /// Removes the entries from `index` on, durably.
    fn truncate_from(&self, index: u64) -> Result<(), Error> {
        let mut state = self.shared.state.write();
        let Some(keep) = index.checked_sub(state.first) else {
            return Ok(());
        };
        let Some(&cut) = state.positions.get(keep as usize) else {
            return Ok(());
        };
        state.positions.truncate(keep as usize);
        let later: Vec<u64> = state
            .segments
            .range(cut.segment + 1..)
            .map(|(k, _)| *k)
            .collect();
        for first in later {
            if let Some(seg) = state.segments.remove(&first) {
                std::fs::remove_file(&seg.path).map_err(Error::io("removing", &seg.path))?;
            }
        }
        if let Some(seg) = state.segments.get_mut(&cut.segment) {
            seg.file
                .set_len(cut.offset)
                .map_err(Error::io("truncating", &seg.path))?;
            seg.file
                .sync_all()
                .map_err(Error::io("syncing", &seg.path))?;
            seg.len = cut.offset;
        }
        sync_dir(&self.shared.dir.join("log"))
    }

    /// Forgets the entries up to `id`, durably: the purge mark first, then
    /// the segments that hold nothing later.
    fn purge_to(&self, id: Id) -> Result<(), Error> {
        write_json(&self.shared.dir, "purged.json", &id)?;
        let mut state = self.shared.state.write();
        while state.first <= id.index && !state.positions.is_empty() {
            state.positions.pop_front();
            state.first += 1;
        }
        if state.positions.is_empty() {
            state.first = id.index + 1;
        }
        state.purged = Some(id);
        // A segment can go when the next one starts at or below the first
        // entry kept (all of it is purged).
        let firsts: Vec<u64> = state.segments.keys().copied().collect();
        for pair in firsts.windows(2) {
            if pair[1] <= state.first
                && let Some(seg) = state.segments.remove(&pair[0])
            {
                std::fs::remove_file(&seg.path).map_err(Error::io("removing", &seg.path))?;
            }
        }
        Ok(())
    }
}

fn storage_err(e: Error) -> StorageError<u64> {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        self.reader().try_get_log_entries(range).await
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        self.read(range)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl LogReader {
    /// The entries of `range` that the log holds.
    pub fn read(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, Error> {
        // Positions and files are taken under the lock; the reads are not.
        let spans: Vec<(Arc<File>, PathBuf, Position)> = {
            let state = self.shared.state.read();
            let start = match range.start_bound() {
                Bound::Included(&s) => s,
                Bound::Excluded(&s) => s + 1,
                Bound::Unbounded => 0,
            }
            .max(state.first);
            let end = match range.end_bound() {
                Bound::Included(&e) => e.saturating_add(1),
                Bound::Excluded(&e) => e,
                Bound::Unbounded => u64::MAX,
            }
            .min(state.next_index());
            (start..end)
                .filter_map(|i| state.positions.get((i - state.first) as usize))
                .filter_map(|p| {
                    state
                        .segments
                        .get(&p.segment)
                        .map(|s| (s.file.clone(), s.path.clone(), *p))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(spans.len());
        let mut i = 0;
        while i < spans.len() {
            // One read for each run of entries in the same segment.
            let (file, path, first) = &spans[i];
            let mut j = i + 1;
            while j < spans.len() && spans[j].2.segment == first.segment {
                j += 1;
            }
            let last = spans[j - 1].2;
            let mut buf = vec![0u8; (last.offset + u64::from(last.len) - first.offset) as usize];
            file.read_exact_at(&mut buf, first.offset)
                .map_err(Error::io("reading", path))?;
            let mut at = 0;
            while at < buf.len() {
                let (e, used) = entry::decode(&buf[at..])?;
                out.push(e);
                at += used;
            }
            i = j;
        }
        Ok(out)
    }

    /// The id of the entry at `index`, if the log holds it.
    pub fn id_at(&self, index: u64) -> Option<Id> {
        self.shared.state.read().id_at(index)
    }

    /// The last entry's id (or the purge mark when none is kept).
    pub fn last_id(&self) -> Option<Id> {
        self.shared.state.read().last_id()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let state = self.shared.state.read();
        Ok(LogState {
            last_purged_log_id: state.purged,
            last_log_id: state.last_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        write_json(&self.shared.dir, "vote.json", vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.shared.state.write().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.shared.state.read().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let file = self.append_entries(entries).map_err(storage_err)?;
        match &self.flusher {
            Some(flusher) => {
                if let Err(mpsc::SendError(job)) = flusher.send(Flush { file, callback }) {
                    job.callback
                        .log_io_completed(Err(std::io::Error::other("log flusher stopped")));
                }
            }
            None => callback.log_io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: Id) -> Result<(), StorageError<u64>> {
        self.truncate_from(log_id.index).map_err(storage_err)
    }

    async fn purge(&mut self, log_id: Id) -> Result<(), StorageError<u64>> {
        self.purge_to(log_id).map_err(storage_err)
    }
}

/// The thread that syncs appended segments under `sync` flushing: it takes
/// every append queued while it synced and reports them after one sync
/// (per distinct file; entries in an older segment were synced when the
/// newer one began).
fn spawn_flusher() -> mpsc::Sender<Flush> {
    let (tx, rx) = mpsc::channel::<Flush>();
    let spawned = std::thread::Builder::new()
        .name("raft-log-flush".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                let file = batch[batch.len() - 1].file.clone();
                let result = file.sync_data();
                for job in batch {
                    let r = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                    };
                    job.callback.log_io_completed(r);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the raft log flusher thread");
    }
    tx
}

fn segment_path(log_dir: &Path, first: u64) -> PathBuf {
    log_dir.join(format!("{first:020}.seg"))
}

/// Reads the segments of `log_dir` into `state`, cutting off a torn tail
/// of the last one.
fn recover(log_dir: &Path, state: &mut State) -> Result<(), Error> {
    let mut firsts: Vec<u64> = Vec::new();
    for item in std::fs::read_dir(log_dir).map_err(Error::io("listing", log_dir))? {
        let item = item.map_err(Error::io("listing", log_dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if let Some(first) = name
            .strip_suffix(".seg")
            .and_then(|n| n.parse::<u64>().ok())
        {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    let count = firsts.len();
    for (n, first) in firsts.into_iter().enumerate() {
        let path = segment_path(log_dir, first);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        let bytes = std::fs::read(&path).map_err(Error::io("reading", &path))?;
        let mut at = 0usize;
        let mut index = first;
        while at < bytes.len() {
            match entry::decode(&bytes[at..]) {
                Ok((e, used)) => {
                    if e.log_id.index != index {
                        return Err(Error::Corrupt {
                            path,
                            why: format!("entry {} where {index} was expected", e.log_id.index),
                        });
                    }
                    if index >= state.first {
                        if state.positions.is_empty() {
                            state.first = index;
                        }
                        if index != state.next_index() {
                            return Err(Error::Corrupt {
                                path,
                                why: format!("entry {index} where {} is next", state.next_index()),
                            });
                        }
                        state.positions.push_back(Position {
                            segment: first,
                            offset: at as u64,
                            len: used as u32,
                            term: e.log_id.leader_id.term,
                            leader: e.log_id.leader_id.node_id,
                        });
                    }
                    at += used;
                    index += 1;
                }
                Err(e) if n + 1 == count => {
                    tracing::warn!(path = %path.display(), offset = at, error = %e, "cutting off a torn tail of the raft log");
                    file.set_len(at as u64)
                        .map_err(Error::io("truncating", &path))?;
                    file.sync_all().map_err(Error::io("syncing", &path))?;
                    break;
                }
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        why: format!("at offset {at}: {e}"),
                    });
                }
            }
        }
        let len = file.metadata().map_err(Error::io("reading", &path))?.len();
        state.segments.insert(
            first,
            Segment {
                file: Arc::new(file),
                path,
                len,
            },
        );
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                why: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path)(e)),
    }
}

/// Replaces `dir/name` with `value` as JSON, durably.
pub(crate) fn write_json<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Message(e.to_string()))?;
    write_file(dir, name, &bytes)
}

/// Replaces `dir/name` with `bytes`, durably.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    {
        let file = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
        file.write_all_at(bytes, 0)
            .map_err(Error::io("writing", &tmp))?;
        file.sync_all().map_err(Error::io("syncing", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(Error::io("renaming", &path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("syncing", dir))
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;

    fn command(term: u64, index: u64, body: &str) -> Entry {
        Entry {
            log_id: entry::log_id(term, 0, index),
            payload: EntryPayload::Normal(body.as_bytes().to_vec()),
        }
    }

    fn bodies(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(b) => String::from_utf8(b.clone()).unwrap(),
                _ => "-".into(),
            })
            .collect()
    }

    #[test]
    fn appends_read_truncate_purge_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        // Tiny segments, so entries spread over many files.
        let store = LogStore::open(dir.path(), false, 100).unwrap();
        // One append's entries stay in one segment: append one by one.
        for i in 1..=20 {
            store
                .append_entries([command(1, i, &format!("m{i}"))])
                .unwrap();
        }
        let reader = store.reader();
        assert_eq!(bodies(&reader.read(5..8).unwrap()), ["m5", "m6", "m7"]);
        assert_eq!(reader.read(..).unwrap().len(), 20);
        assert!(store.shared.state.read().segments.len() > 3);

        store.truncate_from(15).unwrap();
        assert_eq!(reader.last_id(), Some(entry::log_id(1, 0, 14)));
        store
            .append_entries((15..=16).map(|i| command(2, i, &format!("n{i}"))))
            .unwrap();
        store.purge_to(entry::log_id(1, 0, 6)).unwrap();
        let kept = bodies(&reader.read(..).unwrap());
        drop(store);

        let store = LogStore::open(dir.path(), false, 100).unwrap();
        let reader = store.reader();
        assert_eq!(bodies(&reader.read(..).unwrap()), kept);
        assert_eq!(kept.first().map(String::as_str), Some("m7"));
        assert_eq!(kept.last().map(String::as_str), Some("n16"));
        assert_eq!(reader.last_id(), Some(entry::log_id(2, 0, 16)));
        assert_eq!(
            store.shared.state.read().purged,
            Some(entry::log_id(1, 0, 6))
        );
        // Appending goes on from where the log ends.
        store.append_entries([command(2, 17, "n17")]).unwrap();
        assert!(store.append_entries([command(2, 19, "gap")]).is_err());
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), false, DEFAULT_SEGMENT_BYTES).unwrap();
        store
            .append_entries((1..=5).map(|i| command(1, i, "payload")))
            .unwrap();
        drop(store);
        let seg = segment_path(&dir.path().join("log"), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        // A crash in the middle of the last entry's write.
        let file = OpenOptions::new().write(true).open(&seg).unwrap();
        file.set_len(len - 3).unwrap();
        drop(file);
        let store = LogStore::open(dir.path(), false, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(store.reader().last_id(), Some(entry::log_id(1, 0, 4)));
        store.append_entries([command(2, 5, "again")]).unwrap();
        drop(store);
        let store = LogStore::open(dir.path(), false, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(bodies(&store.reader().read(5..).unwrap()), ["again"]);
    }

    #[test]
    fn damage_before_the_last_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), false, 60).unwrap();
        for i in 1..=6 {
            store
                .append_entries([command(1, i, "payload-payload")])
                .unwrap();
        }
        drop(store);
        let seg = segment_path(&dir.path().join("log"), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&seg, bytes).unwrap();
        assert!(matches!(
            LogStore::open(dir.path(), false, 60),
            Err(Error::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn the_vote_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path(), true, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), None);
        let vote = Vote::new(3, 1);
        store.save_vote(&vote).await.unwrap();
        drop(store);
        let mut store = LogStore::open(dir.path(), true, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    }
}
