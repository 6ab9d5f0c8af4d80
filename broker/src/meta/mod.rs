//! The topic and consumer-group registry.
//!
//! Every topic and group the broker serves is registered here, validated
//! when its config is built ([`TopicConfig::new`], [`GroupConfig::new`]).
//! The registry is one JSON file, `<dir>/metadata.json`, rewritten whole
//! on each change (write a
//! temporary file, fsync, rename, fsync the directory), so a crash leaves
//! the old or the new version, never a mix. Changes are rare admin
//! operations; reads are frequent and take only a shared lock. An
//! exclusive `flock` on `<dir>/metadata.lock` keeps a second process out.

mod config;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use config::{GroupConfig, MessageType, Permission, TopicConfig, dlq_topic_name};

use crate::error::{BrokerError, Result, corrupt};
use crate::fsutil::{ensure_dir, lock, lock_file, read, read_optional, write, write_atomic};

#[derive(Debug, Clone, Default)]
struct Contents {
    topics: BTreeMap<String, TopicConfig>,
    groups: BTreeMap<String, GroupConfig>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    version: u32,
    topics: Vec<TopicConfig>,
    groups: Vec<GroupConfig>,
}

const FILE_NAME: &str = "metadata.json";
const FILE_VERSION: u32 = 1;
const LOCK_NAME: &str = "metadata.lock";

/// The registry of topics and consumer groups. Thread-safe; reads take a
/// shared lock and clone one small config.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    contents: RwLock<Contents>,
    /// Serializes writers so each change is persisted before the next
    /// starts, without blocking readers during the write.
    writer: Mutex<()>,
    /// One process per registry file.
    _lock: File,
}

impl Registry {
    /// Opens the registry in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self> {
        ensure_dir(dir)?;
        let lock_file = lock_file(dir, LOCK_NAME)?;
        let path = dir.join(FILE_NAME);
        let mut contents = Contents::default();
        if let Some(bytes) = read_optional(&path)? {
            let file: MetaFile = serde_json::from_slice(&bytes)
                .map_err(|e| corrupt(&path, format!("metadata unreadable: {e}")))?;
            if file.version != FILE_VERSION {
                return Err(corrupt(
                    &path,
                    format!("unsupported metadata version {}", file.version),
                ));
            }
            for t in file.topics {
                contents.topics.insert(t.name().to_string(), t);
            }
            for g in file.groups {
                contents.groups.insert(g.name().to_string(), g);
            }
        }
        Ok(Self {
            path,
            contents: RwLock::new(contents),
            writer: Mutex::new(()),
            _lock: lock_file,
        })
    }

    pub fn topic(&self, name: &str) -> Result<TopicConfig> {
        let c = read(&self.contents);
        c.topics
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::TopicNotFound(name.to_owned()))
    }

    pub fn group(&self, name: &str) -> Result<GroupConfig> {
        let c = read(&self.contents);
        c.groups
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::GroupNotFound(name.to_owned()))
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<TopicConfig> {
        read(&self.contents).topics.values().cloned().collect()
    }

    /// Every group, by name.
    pub fn groups(&self) -> Vec<GroupConfig> {
        read(&self.contents).groups.values().cloned().collect()
    }

    /// Registers a new topic; [`BrokerError::TopicExists`] if the name is
    /// taken.
    pub fn create_topic(&self, cfg: TopicConfig) -> Result<()> {
        self.change(|c| {
            if c.topics.contains_key(cfg.name().as_str()) {
                return Err(BrokerError::TopicExists(cfg.name().to_string()));
            }
            c.topics.insert(cfg.name().to_string(), cfg);
            Ok(())
        })
    }

    /// Returns the topic named like `cfg`, registering `cfg` first if
    /// there is none.
    pub fn ensure_topic(&self, cfg: TopicConfig) -> Result<TopicConfig> {
        if let Ok(t) = self.topic(cfg.name().as_str()) {
            return Ok(t);
        }
        self.change(|c| {
            if let Some(t) = c.topics.get(cfg.name().as_str()) {
                return Ok(t.clone());
            }
            c.topics.insert(cfg.name().to_string(), cfg.clone());
            Ok(cfg)
        })
    }

    /// Replaces a topic's config. The queue count may grow but not shrink
    /// ([`BrokerError::QueueShrink`]).
    pub fn update_topic(&self, cfg: TopicConfig) -> Result<()> {
        self.change(|c| {
            let old = c
                .topics
                .get_mut(cfg.name().as_str())
                .ok_or_else(|| BrokerError::TopicNotFound(cfg.name().to_string()))?;
            if cfg.queues() < old.queues() {
                return Err(BrokerError::QueueShrink {
                    topic: cfg.name().to_string(),
                    current: old.queues(),
                    requested: cfg.queues(),
                });
            }
            *old = cfg;
            Ok(())
        })
    }

    /// Removes a topic from the registry and returns its config. Its
    /// stored messages stay until retention removes them.
    pub fn delete_topic(&self, name: &str) -> Result<TopicConfig> {
        self.change(|c| {
            c.topics
                .remove(name)
                .ok_or_else(|| BrokerError::TopicNotFound(name.to_owned()))
        })
    }

    /// Registers a new group; [`BrokerError::GroupExists`] if the name is
    /// taken.
    pub fn create_group(&self, cfg: GroupConfig) -> Result<()> {
        self.change(|c| {
            if c.groups.contains_key(cfg.name().as_str()) {
                return Err(BrokerError::GroupExists(cfg.name().to_string()));
            }
            c.groups.insert(cfg.name().to_string(), cfg);
            Ok(())
        })
    }

    /// Returns the group named like `cfg`, registering `cfg` first if
    /// there is none.
    pub fn ensure_group(&self, cfg: GroupConfig) -> Result<GroupConfig> {
        if let Ok(g) = self.group(cfg.name().as_str()) {
            return Ok(g);
        }
        self.change(|c| {
            if let Some(g) = c.groups.get(cfg.name().as_str()) {
                return Ok(g.clone());
            }
            c.groups.insert(cfg.name().to_string(), cfg.clone());
            Ok(cfg)
        })
    }

    /// Replaces a group's config.
    pub fn update_group(&self, cfg: GroupConfig) -> Result<()> {
        self.change(|c| {
            let old = c
                .groups
                .get_mut(cfg.name().as_str())
                .ok_or_else(|| BrokerError::GroupNotFound(cfg.name().to_string()))?;
            *old = cfg;
            Ok(())
        })
    }

    /// Removes a group from the registry and returns its config.
    pub fn delete_group(&self, name: &str) -> Result<GroupConfig> {
        self.change(|c| {
            c.groups
                .remove(name)
                .ok_or_else(|| BrokerError::GroupNotFound(name.to_owned()))
        })
    }

    /// Applies `f` to a copy of the contents, persists the copy, then
    /// publishes it. Readers see the old contents until the new ones are
    /// durable; a failed write changes nothing.
    fn change<R>(&self, f: impl FnOnce(&mut Contents) -> Result<R>) -> Result<R> {
        let _w = lock(&self.writer);
        let mut next = read(&self.contents).clone();
        let out = f(&mut next)?;
        let file = MetaFile {
            version: FILE_VERSION,
            topics: next.topics.values().cloned().collect(),
            groups: next.groups.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| corrupt(&self.path, format!("cannot encode metadata: {e}")))?;
        write_atomic(&self.path, &bytes, 0o644)?;
        *write(&self.contents) = next;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use tern_model::{GroupName, TopicName};

    use super::*;

    fn topic(name: &str, queues: u32) -> TopicConfig {
        TopicConfig::new(
            TopicName::new(name).unwrap(),
            queues,
            MessageType::Normal,
            Permission::ReadWrite,
        )
        .unwrap()
    }

    fn group(name: &str) -> GroupConfig {
        GroupConfig::with_defaults(GroupName::new(name).unwrap()).unwrap()
    }

    #[test]
    fn create_get_update_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        assert!(matches!(
            Registry::open(dir.path()),
            Err(BrokerError::Failed(_))
        ));
        r.create_topic(topic("orders", 4)).unwrap();
        assert!(matches!(
            r.create_topic(topic("orders", 8)),
            Err(BrokerError::TopicExists(_))
        ));
        r.update_topic(topic("orders", 8)).unwrap();
        assert!(matches!(
            r.update_topic(topic("orders", 2)),
            Err(BrokerError::QueueShrink {
                current: 8,
                requested: 2,
                ..
            })
        ));
        assert!(matches!(
            r.update_topic(topic("nope", 2)),
            Err(BrokerError::TopicNotFound(_))
        ));
        r.create_topic(topic("audit", 1)).unwrap();
        r.create_group(group("g1")).unwrap();
        assert!(matches!(
            r.create_group(group("g1")),
            Err(BrokerError::GroupExists(_))
        ));
        let fifo = GroupConfig::new(GroupName::new("g1").unwrap(), true, 3).unwrap();
        r.update_group(fifo.clone()).unwrap();
        assert_eq!(r.ensure_topic(topic("audit", 9)).unwrap().queues(), 1);
        assert_eq!(r.ensure_topic(topic("new", 2)).unwrap().queues(), 2);
        assert_eq!(r.delete_topic("new").unwrap().queues(), 2);
        assert!(matches!(
            r.delete_topic("new"),
            Err(BrokerError::TopicNotFound(_))
        ));
        assert!(matches!(
            r.delete_topic("bad name"),
            Err(BrokerError::TopicNotFound(_))
        ));
        drop(r);

        let r = Registry::open(dir.path()).unwrap();
        let names: Vec<_> = r.topics().iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names, ["audit", "orders"]);
        assert_eq!(r.topic("orders").unwrap().queues(), 8);
        assert_eq!(r.group("g1").unwrap(), fifo);
        assert!(matches!(r.topic("x"), Err(BrokerError::TopicNotFound(_))));
        r.delete_group("g1").unwrap();
        assert!(matches!(r.group("g1"), Err(BrokerError::GroupNotFound(_))));
        assert!(r.groups().is_empty());
    }

    #[test]
    fn damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(matches!(
            Registry::open(dir.path()),
            Err(BrokerError::Corrupt { .. })
        ));
    }
}
