//! Consumer-group offsets: the next queue offset each group will consume,
//! per topic and queue. Kept in memory and written to `offsets.json` with
//! write, fsync, rename, so a crash leaves either the old or the new file.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Result, corrupt};
use crate::fsutil::{read_optional, write_atomic};

#[derive(Debug, Default, Serialize, Deserialize)]
struct OffsetFile {
    version: u32,
    /// group -> topic -> queue id -> next offset
    groups: BTreeMap<String, BTreeMap<String, BTreeMap<u32, u64>>>,
}

#[derive(Debug)]
pub(crate) struct Offsets {
    path: PathBuf,
    state: Mutex<(OffsetFile, bool)>,
}

impl Offsets {
    pub fn open(path: PathBuf) -> Result<Self> {
        let file = match read_optional(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| corrupt(&path, format!("consumer offsets unreadable: {e}")))?,
            None => OffsetFile {
                version: 1,
                ..OffsetFile::default()
            },
        };
        Ok(Self {
            path,
            state: Mutex::new((file, false)),
        })
    }

    pub fn commit(&self, group: &str, topic: &str, queue: u32, offset: u64) {
        let mut st = self.state.lock();
        st.0.groups
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default()
            .insert(queue, offset);
        st.1 = true;
    }

    pub fn get(&self, group: &str, topic: &str, queue: u32) -> Option<u64> {
        self.state
            .lock()
            .0
            .groups
            .get(group)?
            .get(topic)?
            .get(&queue)
            .copied()
    }

    /// Every offset of `group`: topic -> queue -> offset.
    pub fn group(&self, group: &str) -> BTreeMap<String, BTreeMap<u32, u64>> {
        self.state
            .lock()
            .0
            .groups
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    pub fn is_dirty(&self) -> bool {
        self.state.lock().1
    }

    /// Writes the offsets out if they changed since the last write.
    pub fn persist(&self) -> Result<()> {
        let mut st = self.state.lock();
        if !st.1 {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&st.0)
            .map_err(|e| corrupt(&self.path, format!("cannot encode offsets: {e}")))?;
        write_atomic(&self.path, &bytes)?;
        st.1 = false;
        Ok(())
    }
}
