//! The commands a group's Raft log carries and how each replica applies
//! them to its own store, so every replica's commit log holds the same
//! bytes at the same positions.
//!
//! Restart: a replica applies commands to its store under the store's own
//! flush policy and remembers, for recent commands, where the log ended
//! after each (`Mark`). `MarkKeeper::persist` writes the newest mark the store has
//! fsynced to `DATA_DIR/replica/applied.json`; at open the store keeps
//! nothing past that mark (`StoreConfig::recover_until`) and the commands
//! after it are applied again from the Raft log, writing the same bytes.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tern_replication::Machine;
use tern_store::{Appended, Encoded, Store, StoreConfig};

use crate::error::BrokerError;
use crate::meta::Registry;

const APPEND: u8 = 1;
const META: u8 = 2;

/// A change every replica of a group applies in the same order.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Messages for topics: an encoded batch and the store time to write.
    Append { store_time_ms: i64, batch: Vec<u8> },
    /// A change of the registry (topics, groups, users), as the leader's
    /// registry encoded it.
    Meta(Vec<u8>),
}

impl Command {
    /// The command's bytes in the Raft log.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command::Append {
                store_time_ms,
                batch,
            } => Self::append(*store_time_ms, batch),
            Command::Meta(change) => Self::meta(change),
        }
    }

    /// The bytes of an `Append` of `batch` (copied once, straight from
    /// the encoded batch).
    pub fn append(store_time_ms: i64, batch: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + batch.len());
        out.push(APPEND);
        out.extend_from_slice(&store_time_ms.to_le_bytes());
        out.extend_from_slice(batch);
        out
    }

    /// The bytes of a `Meta` of `change`.
    pub fn meta(change: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + change.len());
        out.push(META);
        out.extend_from_slice(change);
        out
    }

    /// A command from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&APPEND, rest)) if rest.len() >= 8 => {
                let (time, batch) = rest.split_at(8);
                let mut t = [0u8; 8];
                t.copy_from_slice(time);
                Ok(Command::Append {
                    store_time_ms: i64::from_le_bytes(t),
                    batch: batch.to_vec(),
                })
            }
            Some((&META, change)) => Ok(Command::Meta(change.to_vec())),
            Some((kind, _)) => Err(format!("unknown or short command of kind {kind}")),
            None => Err("empty command".into()),
        }
    }
}

/// Where each message of an `Append` went, as the answer's bytes: 28 bytes
/// per message (position, size, queue offset, store time).
pub fn encode_appended(appended: &[Appended]) -> Vec<u8> {
    let mut out = Vec::with_capacity(appended.len() * 28);
    for a in appended {
        out.extend_from_slice(&a.position.to_le_bytes());
        out.extend_from_slice(&a.size.to_le_bytes());
        out.extend_from_slice(&a.queue_offset.to_le_bytes());
        out.extend_from_slice(&a.store_timestamp_ms.to_le_bytes());
    }
    out
}

/// The answer of an `Append` read back.
pub fn decode_appended(bytes: &[u8]) -> Result<Vec<Appended>, String> {
    if !bytes.len().is_multiple_of(28) {
        return Err(format!("an append's answer of {} bytes", bytes.len()));
    }
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        w
    };
    Ok(bytes
        .chunks_exact(28)
        .map(|c| Appended {
            position: u64::from_le_bytes(word(&c[0..8])),
            size: u32::from_le_bytes([c[8], c[9], c[10], c[11]]),
            queue_offset: u64::from_le_bytes(word(&c[12..20])),
            store_timestamp_ms: i64::from_le_bytes(word(&c[20..28])),
        })
        .collect())
}

/// A Raft index and where the commit log ended once it was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub index: u64,
    pub end: u64,
}

fn mark_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("replica")
}

/// Opens a replica's store: `cfg` with `recover_until` set from the
/// replica's applied mark (0 when it has none: everything in its store
/// came from the group's log, which still holds it), and the mark.
pub fn open_store(
    mut cfg: StoreConfig,
    data_dir: &Path,
) -> Result<(Store, Option<Mark>), BrokerError> {
    let path = mark_dir(data_dir).join("applied.json");
    let mark: Option<Mark> = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| BrokerError::Corrupt {
                path: path.clone(),
                detail: e.to_string(),
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(BrokerError::Io { path, source }),
    };
    cfg.recover_until = Some(mark.map_or(0, |m| m.end));
    Ok((Store::open(cfg)?, mark))
}

#[derive(Debug, Default)]
struct Marks {
    durable: Option<Mark>,
    /// Marks of commands applied since, oldest first.
    recent: VecDeque<Mark>,
}

/// Writes a replica's applied mark as its store fsyncs (shared by the
/// machine, which records marks, and the task that persists them, so that
/// task never holds the machine).
#[derive(Debug, Clone)]
pub struct MarkKeeper {
    store: Arc<Store>,
    dir: PathBuf,
    marks: Arc<Mutex<Marks>>,
}

impl MarkKeeper {
    /// Fsyncs the store's commit log (so the next mark covers all of it).
    pub fn flush_store(&self) -> Result<(), BrokerError> {
        self.store.flush().map(|_| ()).map_err(BrokerError::from)
    }

    /// Writes the newest mark whose commit-log end is fsynced, if it is
    /// newer than the last one written; returns the mark now durable.
    pub fn persist(&self) -> Result<Option<Mark>, BrokerError> {
        let flushed = self.store.flushed_offset();
        let newest = {
            let mut marks = self.marks.lock();
            let mut newest = None;
            while marks.recent.front().is_some_and(|m| m.end <= flushed) {
                newest = marks.recent.pop_front();
            }
            match newest {
                Some(m) => m,
                None => return Ok(marks.durable),
            }
        };
        let io = |source| BrokerError::Io {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let bytes = serde_json::to_vec(&newest).map_err(|e| BrokerError::Failed(e.to_string()))?;
        tern_store::durable::write_atomic(&self.dir.join("applied.json"), &bytes, 0o600)
            .map_err(io)?;
        self.marks.lock().durable = Some(newest);
        Ok(Some(newest))
    }
}

/// A replica's state machine over its store.
#[derive(Debug)]
pub struct GroupMachine {
    keeper: MarkKeeper,
    /// The registry that `Meta` commands change (`None` in tests of the
    /// message path alone).
    registry: Option<Arc<Registry>>,
}

impl GroupMachine {
    /// The machine over `store` (opened with [`open_store`], which gave
    /// `mark`), keeping its mark under `data_dir`.
    pub fn new(store: Arc<Store>, data_dir: &Path, mark: Option<Mark>) -> Self {
        let marks = Marks {
            durable: mark,
            recent: VecDeque::new(),
        };
        let keeper = MarkKeeper {
            store,
            dir: mark_dir(data_dir),
            marks: Arc::new(Mutex::new(marks)),
        };
        Self {
            keeper,
            registry: None,
        }
    }

    /// The machine applying `Meta` commands to `registry` too.
    pub fn with_registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The replica's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.keeper.store
    }

    /// The keeper of this machine's applied mark.
    pub fn mark_keeper(&self) -> MarkKeeper {
        self.keeper.clone()
    }

    fn append(&self, index: u64, store_time_ms: i64, batch: Vec<u8>) -> Result<Vec<u8>, String> {
        let encoded = Encoded::from_bytes(batch).map_err(|e| format!("entry {index}: {e}"))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.store()
            .append_encoded(encoded, store_time_ms, move |r| {
                let _ = tx.send(r);
            });
        let appended = rx
            .recv()
            .map_err(|_| format!("entry {index}: the store closed"))?
            .map_err(|e| format!("entry {index}: {e}"))?;
        Ok(encode_appended(&appended))
    }
}

impl Machine for GroupMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Result<Vec<u8>, String> {
        // A store that cannot take what the others took (a full disk, a
        // failed fsync) stops this replica rather than let it diverge.
        let answer = match Command::decode(command)? {
            Command::Append {
                store_time_ms,
                batch,
            } => self.append(index, store_time_ms, batch)?,
            Command::Meta(change) => {
                let registry = self
                    .registry
                    .as_ref()
                    .ok_or_else(|| format!("entry {index}: a registry change, and no registry"))?;
                registry
                    .apply_replicated(&change)
                    .map_err(|e| format!("entry {index}: {e}"))?;
                Vec::new()
            }
        };
        let end = self.store().max_offset();
        self.keeper
            .marks
            .lock()
            .recent
            .push_back(Mark { index, end });
        Ok(answer)
    }

    fn applied(&self) -> Option<u64> {
        let marks = self.keeper.marks.lock();
        marks
            .recent
            .back()
            .or(marks.durable.as_ref())
            .map(|m| m.index)
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        Err("a broker group does not take snapshots yet: its Raft log is kept whole".into())
    }

    fn restore(&mut self, _index: u64, _snapshot: &[u8]) -> Result<(), String> {
        Err("a broker group cannot install a snapshot yet: re-create the replica from an empty data directory".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_answers_round_trip() {
        let c = Command::Append {
            store_time_ms: -5,
            batch: vec![1, 2, 3],
        };
        assert_eq!(Command::decode(&c.encode()).unwrap(), c);
        assert!(Command::decode(&[]).is_err());
        assert!(Command::decode(&[APPEND, 1, 2]).is_err());
        assert!(Command::decode(&[99]).is_err());
        let m = Command::Meta(b"[]".to_vec());
        assert_eq!(Command::decode(&m.encode()).unwrap(), m);
        let a = vec![
            Appended {
                position: 7,
                size: 100,
                queue_offset: 3,
                store_timestamp_ms: 42,
            },
            Appended {
                position: 107,
                size: 9,
                queue_offset: 0,
                store_timestamp_ms: 43,
            },
        ];
        assert_eq!(decode_appended(&encode_appended(&a)).unwrap(), a);
        assert!(decode_appended(&[0; 27]).is_err());
    }
}
