//! The registry's change log, `metadata.log`: one record per change,
//! appended and fsynced before the change is published.
//!
//! A record is one line: the CRC32C of the JSON (8 hex digits), a space,
//! the JSON array of [`Op`]s of the change, a newline. Each op sets the
//! final state of one topic or group, so replaying a log over a snapshot
//! that already holds some of its changes gives the same result: the
//! registry can write a snapshot and only then empty the log.
//!
//! At open, a damaged last record (a crash while appending, before the
//! change was acknowledged) is cut off; damage anywhere before the last
//! record is refused as corruption.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{GroupConfig, TopicConfig};
use crate::error::{Result, corrupt, io_err};
use crate::fsutil::sync_dir;

/// One step of a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Op {
    PutTopic(TopicConfig),
    DeleteTopic(String),
    PutGroup(GroupConfig),
    DeleteGroup(String),
    PutUser(super::acl::User),
    DeleteUser(String),
}

/// The open change log.
#[derive(Debug)]
pub(super) struct ChangeLog {
    path: PathBuf,
    file: File,
    /// Bytes of whole records.
    len: u64,
    records: u64,
    /// Set when a failed append could not be undone: later appends are
    /// refused rather than written after a partial record.
    broken: bool,
}

impl ChangeLog {
    /// Opens (creating) the log at `path` and returns it with the changes
    /// it holds, oldest first. A damaged last record is cut off.
    pub(super) fn open(path: &Path) -> Result<(Self, Vec<Vec<Op>>)> {
        let existed = path.exists();
        // Owner only: the log may hold users' secret keys.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        if !existed {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err(path))?;

        let mut changes = Vec::new();
        let mut good = 0_usize;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let end = rest.iter().position(|&b| b == b'\n');
            let decoded = end.and_then(|e| decode(&rest[..e]));
            match (end, decoded) {
                (Some(e), Some(ops)) => {
                    changes.push(ops);
                    good += e + 1;
                    rest = &rest[e + 1..];
                }
                (end, _) => {
                    // Damaged: acceptable only as the last record.
                    let after = end.map_or(&[][..], |e| &rest[e + 1..]);
                    if !after.is_empty() {
                        return Err(corrupt(
                            path,
                            format!("damaged record at byte {good} followed by more records"),
                        ));
                    }
                    tracing::warn!(
                        path = %path.display(),
                        offset = good,
                        bytes = rest.len(),
                        "cutting off a torn last record of the registry log"
                    );
                    file.set_len(good as u64).map_err(io_err(path))?;
                    file.sync_all().map_err(io_err(path))?;
                    break;
                }
            }
        }
        let log = Self {
            path: path.to_path_buf(),
            file,
            len: good as u64,
            records: changes.len() as u64,
            broken: false,
        };
        Ok((log, changes))
    }

    /// Appends one change and makes it durable. On failure the log is as
    /// before.
    pub(super) fn append(&mut self, ops: &[Op]) -> Result<()> {
        if self.broken {
            return Err(corrupt(
                &self.path,
                "an earlier append failed and could not be undone; restart the broker",
            ));
        }
        let line = encode(ops).map_err(|e| corrupt(&self.path, e))?;
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(io_err(&self.path)(e));
        }
        self.len += line.len() as u64;
        self.records += 1;
        Ok(())
    }

    /// Empties the log, once a snapshot holds all of it.
    pub(super) fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        self.len = 0;
        self.records = 0;
        Ok(())
    }

    /// Changes in the log.
    pub(super) fn records(&self) -> u64 {
        self.records
    }
}

fn encode(ops: &[Op]) -> std::result::Result<Vec<u8>, String> {
    let json = serde_json::to_vec(ops).map_err(|e| format!("cannot encode a change: {e}"))?;
    let mut line = format!("{:08x} ", crc32c::crc32c(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

fn decode(line: &[u8]) -> Option<Vec<Op>> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line.get(8) != Some(&b' ') || crc32c::crc32c(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use tern_model::TopicName;

    use super::*;
    use crate::meta::{MessageType, Permission};

    fn put(name: &str) -> Op {
        Op::PutTopic(
            TopicConfig::new(
                TopicName::new(name).unwrap(),
                1,
                MessageType::Normal,
                Permission::ReadWrite,
            )
            .unwrap(),
        )
    }

    fn names(changes: &[Vec<Op>]) -> Vec<String> {
        changes
            .iter()
            .flatten()
            .map(|op| match op {
                Op::PutTopic(t) => t.name().to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn appends_replay_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.log");
        let (mut log, changes) = ChangeLog::open(&path).unwrap();
        assert!(changes.is_empty());
        log.append(&[put("a")]).unwrap();
        log.append(&[put("b"), put("c")]).unwrap();
        drop(log);
        let whole = std::fs::metadata(&path).unwrap().len();

        // A crash in the middle of a third append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0badc0de [{\"put_to").unwrap();
        drop(f);
        let (mut log, changes) = ChangeLog::open(&path).unwrap();
        assert_eq!(names(&changes), ["a", "b", "c"]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        log.append(&[put("d")]).unwrap();
        assert_eq!(log.records(), 3);
        drop(log);
        let (mut log, changes) = ChangeLog::open(&path).unwrap();
        assert_eq!(names(&changes), ["a", "b", "c", "d"]);
        log.reset().unwrap();
        drop(log);
        assert!(ChangeLog::open(&path).unwrap().1.is_empty());
    }

    #[test]
    fn damage_before_the_last_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.log");
        let (mut log, _) = ChangeLog::open(&path).unwrap();
        log.append(&[put("a")]).unwrap();
        log.append(&[put("b")]).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 0x20; // inside the first record's JSON
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ChangeLog::open(&path),
            Err(crate::BrokerError::Corrupt { .. })
        ));
    }

    proptest::proptest! {
        /// Fuzzing: arbitrary lines, and lines whose checksum is right
        /// over arbitrary (or JSON-looking) text, never panic the decoder.
        #[test]
        fn fuzz_registry_log_lines(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            text in r#"\[\{"(put_topic|delete_topic|put_group|delete_group|put_user|delete_user)":[\PC]{0,120}"#,
        ) {
            let _ = decode(&bytes);
            for body in [bytes.clone(), text.into_bytes()] {
                let mut line = format!("{:08x} ", crc32c::crc32c(&body)).into_bytes();
                line.extend_from_slice(&body);
                let _ = decode(&line);
            }
        }
    }
}
