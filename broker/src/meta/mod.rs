//! The topic and consumer-group registry.
//!
//! Every topic and group the broker serves is registered here, validated
//! when its config is built ([`TopicConfig::new`], [`GroupConfig::new`]).
//!
//! Persistence scales with the number of changes, not the size of the
//! registry: each change is appended to `<dir>/metadata.log` and fsynced
//! before it is published (see `log`), and once the log holds more changes
//! than the registry holds entries (and at least 1,024), the whole registry
//! is written to `<dir>/metadata.json` (write a temporary file, fsync,
//! rename, fsync the directory) and the log emptied. Opening reads the
//! snapshot, then replays the log. Creating 100,000 topics one by one thus
//! writes each once plus a few snapshots, instead of rewriting a growing
//! file each time. Reads take only a shared lock. An exclusive `flock` on
//! `<dir>/metadata.lock` keeps a second process out.
//!
//! At most [`RegistryLimits`] topics and groups are created (`limits`).
//!
//! [`Registry::version`] counts the changes since the registry was opened,
//! so the broker can tell its name servers when its table changed.

pub mod acl;
mod config;
mod limits;
mod log;
mod users;

use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use config::PARK_PREFIX;
pub use config::{GroupConfig, MessageType, Permission, TopicConfig, dlq_topic_name};
pub use limits::RegistryLimits;

use self::log::{ChangeLog, Op};
use crate::error::{BrokerError, Result, corrupt};
use crate::fsutil::{ensure_dir, lock_file, read_optional, write_atomic};

#[derive(Debug, Clone, Default)]
struct Contents {
    topics: BTreeMap<String, TopicConfig>,
    groups: BTreeMap<String, GroupConfig>,
    users: BTreeMap<String, acl::User>,
    /// Changes published since open.
    version: u64,
}

impl Contents {
    fn apply(&mut self, op: Op) {
        match op {
            Op::PutTopic(t) => {
                self.topics.insert(t.name().to_string(), t);
            }
            Op::DeleteTopic(name) => {
                self.topics.remove(&name);
            }
            Op::PutGroup(g) => {
                self.groups.insert(g.name().to_string(), g);
            }
            Op::DeleteGroup(name) => {
                self.groups.remove(&name);
            }
            Op::PutUser(u) => {
                self.users.insert(u.name().to_owned(), u);
            }
            Op::DeleteUser(name) => {
                self.users.remove(&name);
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    version: u32,
    topics: Vec<TopicConfig>,
    groups: Vec<GroupConfig>,
    /// Users and their policies (secret keys included: the file is
    /// readable by its owner only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    users: Vec<acl::User>,
}

const FILE_NAME: &str = "metadata.json";
const LOG_NAME: &str = "metadata.log";
const FILE_VERSION: u32 = 1;
const LOCK_NAME: &str = "metadata.lock";
/// The log is folded into the snapshot once it holds more changes than
/// this and than the registry has entries.
const COMPACT_MIN_RECORDS: u64 = 1024;

/// The registry of topics and consumer groups. Thread-safe; reads take a
/// shared lock and clone one small config.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    contents: RwLock<Contents>,
    /// Serializes writers so each change is persisted before the next
    /// starts, without blocking readers during the write.
    writer: Mutex<ChangeLog>,
    /// The most topics and groups created.
    limits: RegistryLimits,
    /// Set on a replica of a replicated group: changes are decided here
    /// and applied on every replica through the group's log.
    replicator: std::sync::OnceLock<std::sync::Arc<dyn MetaReplicator>>,
    /// Serializes a replica's proposals, so each is decided on the
    /// contents its predecessor left.
    proposing: Mutex<()>,
    /// One process per registry file.
    _lock: File,
}

/// Where a replicated group's registry changes go
/// ([`Registry::replicate_with`]): the group's log, whose every replica
/// applies them with [`Registry::apply_replicated`].
pub trait MetaReplicator: Send + Sync + std::fmt::Debug {
    /// Replicates `change` (encoded by the registry) and returns once it
    /// is applied on this replica. Blocking; an error leaves the registry
    /// unchanged here (a replica that is not the leader refuses).
    fn replicate(&self, change: Vec<u8>) -> Result<()>;
}

/// A consistent copy of the whole registry.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// [`Registry::version`] when the copy was taken.
    pub version: u64,
    pub topics: Vec<TopicConfig>,
    pub groups: Vec<GroupConfig>,
}

impl Registry {
    /// Opens the registry in `dir` (created if missing), with the default
    /// [`RegistryLimits`].
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
            for u in file.users {
                contents.users.insert(u.name().to_owned(), u);
            }
        }
        let (log, changes) = ChangeLog::open(&dir.join(LOG_NAME))?;
        for op in changes.into_iter().flatten() {
            contents.apply(op);
        }
        Ok(Self {
            path,
            contents: RwLock::new(contents),
            writer: Mutex::new(log),
            limits: RegistryLimits::default(),
            replicator: std::sync::OnceLock::new(),
            proposing: Mutex::new(()),
            _lock: lock_file,
        })
    }

    /// Sends every change from now on through `replicator` (a replica of a
    /// replicated group); `false` if one was set already.
    pub fn replicate_with(&self, replicator: std::sync::Arc<dyn MetaReplicator>) -> bool {
        self.replicator.set(replicator).is_ok()
    }

    /// Applies a change that came through the group's log (encoded by
    /// [`Registry::change`] on the leader): durable in this registry's log,
    /// then published. Changes set final states, so one applied twice
    /// (replayed after a restart) changes nothing more.
    pub fn apply_replicated(&self, change: &[u8]) -> Result<()> {
        let ops: Vec<Op> = serde_json::from_slice(change)
            .map_err(|e| BrokerError::Invalid(format!("a replicated registry change: {e}")))?;
        let mut log = self.writer.lock();
        self.commit(&mut log, ops)
    }

    /// The registry with `limits` on what it creates from now on (what it
    /// holds beyond them stays).
    pub fn with_limits(mut self, limits: RegistryLimits) -> Self {
        let (topics, groups) = {
            let c = self.contents.read();
            (c.topics.len(), c.groups.len())
        };
        if topics > limits.max_topics || groups > limits.max_groups {
            tracing::warn!(
                topics,
                groups,
                max_topics = limits.max_topics,
                max_groups = limits.max_groups,
                "the registry holds more than its limits; no topic or group is created until it holds fewer"
            );
        }
        self.limits = limits;
        self
    }

    /// Changes published since the registry was opened; any change to a
    /// topic or group raises it.
    pub fn version(&self) -> u64 {
        self.contents.read().version
    }

    /// Every topic and group, with the version they are at.
    pub fn snapshot(&self) -> Snapshot {
        let c = self.contents.read();
        Snapshot {
            version: c.version,
            topics: c.topics.values().cloned().collect(),
            groups: c.groups.values().cloned().collect(),
        }
    }

    pub fn topic(&self, name: &str) -> Result<TopicConfig> {
        let c = self.contents.read();
        c.topics
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::TopicNotFound(name.to_owned()))
    }

    pub fn group(&self, name: &str) -> Result<GroupConfig> {
        let c = self.contents.read();
        c.groups
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::GroupNotFound(name.to_owned()))
    }

    /// Whether topic `name` exists.
    pub fn has_topic(&self, name: &str) -> bool {
        self.contents.read().topics.contains_key(name)
    }

    /// Whether group `name` exists.
    pub fn has_group(&self, name: &str) -> bool {
        self.contents.read().groups.contains_key(name)
    }

    /// How many topics and groups there are.
    pub fn counts(&self) -> (usize, usize) {
        let c = self.contents.read();
        (c.topics.len(), c.groups.len())
    }

    /// Every topic, by name.
    pub fn topics(&self) -> Vec<TopicConfig> {
        self.contents.read().topics.values().cloned().collect()
    }

    /// Every group, by name.
    pub fn groups(&self) -> Vec<GroupConfig> {
        self.contents.read().groups.values().cloned().collect()
    }

    /// Registers a new topic; [`BrokerError::TopicExists`] if the name is
    /// taken, [`BrokerError::LimitReached`] if there are `max_topics`.
    pub fn create_topic(&self, cfg: TopicConfig) -> Result<()> {
        self.change(|c| {
            if c.topics.contains_key(cfg.name().as_str()) {
                return Err(BrokerError::TopicExists(cfg.name().to_string()));
            }
            self.limits
                .check_topics(c.topics.len(), 1, cfg.name().as_str())?;
            Ok((vec![Op::PutTopic(cfg)], ()))
        })
    }

    /// Registers many new topics as one change: all of them, or none
    /// ([`BrokerError::TopicExists`] if a name is taken or repeated,
    /// [`BrokerError::LimitReached`] if they would be more than
    /// `max_topics`).
    pub fn create_topics(&self, cfgs: Vec<TopicConfig>) -> Result<()> {
        self.change(|c| {
            let mut seen = std::collections::HashSet::new();
            for cfg in &cfgs {
                let name = cfg.name().as_str();
                if c.topics.contains_key(name) || !seen.insert(name) {
                    return Err(BrokerError::TopicExists(name.to_owned()));
                }
            }
            if let Some(first) = cfgs.first() {
                self.limits
                    .check_topics(c.topics.len(), cfgs.len(), first.name().as_str())?;
            }
            Ok((cfgs.into_iter().map(Op::PutTopic).collect(), ()))
        })
    }

    /// Returns the topic named like `cfg`, registering `cfg` first if
    /// there is none. Not limited by `max_topics`: the broker makes its
    /// dead-letter topics this way, at most one per group, and moving a
    /// message there must not fail.
    pub fn ensure_topic(&self, cfg: TopicConfig) -> Result<TopicConfig> {
        if let Ok(t) = self.topic(cfg.name().as_str()) {
            return Ok(t);
        }
        self.change(|c| match c.topics.get(cfg.name().as_str()) {
            Some(t) => Ok((Vec::new(), t.clone())),
            None => Ok((vec![Op::PutTopic(cfg.clone())], cfg)),
        })
    }

    /// Replaces a topic's config. The queue count may grow but not shrink
    /// ([`BrokerError::QueueShrink`]).
    pub fn update_topic(&self, cfg: TopicConfig) -> Result<()> {
        self.change(|c| {
            let old = c
                .topics
                .get(cfg.name().as_str())
                .ok_or_else(|| BrokerError::TopicNotFound(cfg.name().to_string()))?;
            if cfg.queues() < old.queues() {
                return Err(BrokerError::QueueShrink {
                    topic: cfg.name().to_string(),
                    current: old.queues(),
                    requested: cfg.queues(),
                });
            }
            Ok((vec![Op::PutTopic(cfg)], ()))
        })
    }

    /// Removes a topic from the registry and returns its config. Its
    /// stored messages stay until retention removes them.
    pub fn delete_topic(&self, name: &str) -> Result<TopicConfig> {
        self.change(|c| {
            let old = c
                .topics
                .get(name)
                .cloned()
                .ok_or_else(|| BrokerError::TopicNotFound(name.to_owned()))?;
            Ok((vec![Op::DeleteTopic(name.to_owned())], old))
        })
    }

    /// Registers a new group; [`BrokerError::GroupExists`] if the name is
    /// taken, [`BrokerError::LimitReached`] if there are `max_groups`.
    pub fn create_group(&self, cfg: GroupConfig) -> Result<()> {
        self.change(|c| {
            if c.groups.contains_key(cfg.name().as_str()) {
                return Err(BrokerError::GroupExists(cfg.name().to_string()));
            }
            self.limits
                .check_group(c.groups.len(), cfg.name().as_str())?;
            Ok((vec![Op::PutGroup(cfg)], ()))
        })
    }

    /// Returns the group named like `cfg`, registering `cfg` first if
    /// there is none ([`BrokerError::LimitReached`] if there are
    /// `max_groups`).
    pub fn ensure_group(&self, cfg: GroupConfig) -> Result<GroupConfig> {
        if let Ok(g) = self.group(cfg.name().as_str()) {
            return Ok(g);
        }
        self.change(|c| match c.groups.get(cfg.name().as_str()) {
            Some(g) => Ok((Vec::new(), g.clone())),
            None => {
                self.limits
                    .check_group(c.groups.len(), cfg.name().as_str())?;
                Ok((vec![Op::PutGroup(cfg.clone())], cfg))
            }
        })
    }

    /// Replaces a group's config.
    pub fn update_group(&self, cfg: GroupConfig) -> Result<()> {
        self.change(|c| {
            if !c.groups.contains_key(cfg.name().as_str()) {
                return Err(BrokerError::GroupNotFound(cfg.name().to_string()));
            }
            Ok((vec![Op::PutGroup(cfg)], ()))
        })
    }

    /// Removes a group from the registry and returns its config.
    pub fn delete_group(&self, name: &str) -> Result<GroupConfig> {
        self.change(|c| {
            let old = c
                .groups
                .get(name)
                .cloned()
                .ok_or_else(|| BrokerError::GroupNotFound(name.to_owned()))?;
            Ok((vec![Op::DeleteGroup(name.to_owned())], old))
        })
    }

    /// Decides a change with `f` (the ops to apply and the result), makes
    /// it durable in the log, then publishes it. Readers see the old
    /// contents until the change is durable; a failed write changes
    /// nothing.
    fn change<R>(&self, f: impl FnOnce(&Contents) -> Result<(Vec<Op>, R)>) -> Result<R> {
        if let Some(replicator) = self.replicator.get() {
            let _turn = self.proposing.lock();
            let (ops, out) = f(&self.contents.read())?;
            if ops.is_empty() {
                return Ok(out);
            }
            let change = serde_json::to_vec(&ops).map_err(|e| {
                BrokerError::Failed(format!("cannot encode a registry change: {e}"))
            })?;
            replicator.replicate(change)?;
            return Ok(out);
        }
        let mut log = self.writer.lock();
        let (ops, out) = f(&self.contents.read())?;
        if ops.is_empty() {
            return Ok(out);
        }
        self.commit(&mut log, ops)?;
        Ok(out)
    }

    /// Makes `ops` durable in the log, publishes them, and folds the log
    /// into the snapshot when it has grown.
    fn commit(&self, log: &mut ChangeLog, ops: Vec<Op>) -> Result<()> {
        log.append(&ops)?;
        let entries = {
            let mut c = self.contents.write();
            for op in ops {
                c.apply(op);
            }
            c.version += 1;
            (c.topics.len() + c.groups.len() + c.users.len()) as u64
        };
        if log.records() > entries.max(COMPACT_MIN_RECORDS) {
            // The change is durable in the log already; a failed snapshot
            // only leaves the log longer.
            if let Err(e) = self.compact(log) {
                tracing::warn!(error = %e, "could not fold the registry log into a snapshot");
            }
        }
        Ok(())
    }

    /// Folds the log into the snapshot now (tests).
    #[cfg(test)]
    fn compact_now(&self) -> Result<()> {
        let mut log = self.writer.lock();
        self.compact(&mut log)
    }

    /// Writes the whole registry as the snapshot, then empties the log.
    fn compact(&self, log: &mut ChangeLog) -> Result<()> {
        let file = {
            let c = self.contents.read();
            MetaFile {
                version: FILE_VERSION,
                topics: c.topics.values().cloned().collect(),
                groups: c.groups.values().cloned().collect(),
                users: c.users.values().cloned().collect(),
            }
        };
        let bytes = serde_json::to_vec(&file)
            .map_err(|e| corrupt(&self.path, format!("cannot encode metadata: {e}")))?;
        write_atomic(&self.path, &bytes, 0o600)?;
        log.reset()
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

    /// A group's log in miniature: every change is applied to each of
    /// `replicas` (the proposing registry among them), or refused.
    #[derive(Debug)]
    struct Loopback {
        replicas: parking_lot::Mutex<Vec<std::sync::Weak<Registry>>>,
        refuse: bool,
    }

    impl MetaReplicator for Loopback {
        fn replicate(&self, change: Vec<u8>) -> Result<()> {
            if self.refuse {
                return Err(BrokerError::NotLeader("not the leader".into()));
            }
            for r in self
                .replicas
                .lock()
                .iter()
                .filter_map(std::sync::Weak::upgrade)
            {
                r.apply_replicated(&change)?;
            }
            Ok(())
        }
    }

    #[test]
    fn a_replicated_registry_changes_only_through_its_log() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = std::sync::Arc::new(Registry::open(a_dir.path()).unwrap());
        let b = std::sync::Arc::new(Registry::open(b_dir.path()).unwrap());
        let log = std::sync::Arc::new(Loopback {
            replicas: parking_lot::Mutex::new(vec![
                std::sync::Arc::downgrade(&a),
                std::sync::Arc::downgrade(&b),
            ]),
            refuse: false,
        });
        assert!(a.replicate_with(log.clone()));
        assert!(!a.replicate_with(log));
        a.create_topic(topic("orders", 4)).unwrap();
        a.create_group(group("billing")).unwrap();
        // Decided on the leader's contents: a second create is refused
        // before anything is replicated.
        assert!(matches!(
            a.create_topic(topic("orders", 2)),
            Err(BrokerError::TopicExists(_))
        ));
        for r in [&a, &b] {
            assert_eq!(r.topic("orders").unwrap().queues(), 4);
            assert!(r.has_group("billing"));
        }
        // Applied twice (a replay after a restart), a change changes nothing more.
        let again = serde_json::to_vec(&vec![Op::PutTopic(topic("orders", 4))]).unwrap();
        b.apply_replicated(&again).unwrap();
        assert_eq!(b.counts(), (1, 1));
        // The follower's changes persist like the leader's.
        drop(b);
        let b = Registry::open(b_dir.path()).unwrap();
        assert_eq!(b.topic("orders").unwrap().queues(), 4);
        // A replicator that refuses (not the leader) leaves everything as it was.
        let c_dir = tempfile::tempdir().unwrap();
        let c = Registry::open(c_dir.path()).unwrap();
        c.replicate_with(std::sync::Arc::new(Loopback {
            replicas: parking_lot::Mutex::new(Vec::new()),
            refuse: true,
        }));
        assert!(matches!(
            c.create_topic(topic("orders", 4)),
            Err(BrokerError::NotLeader(_))
        ));
        assert!(!c.has_topic("orders"));
        assert!(b.apply_replicated(b"not json").is_err());
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
    fn changes_survive_compaction_and_reopen_and_raise_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.version(), 0);
        // Enough changes for a few snapshots, with deletes and updates
        // on both sides of them.
        for i in 0..3000 {
            r.create_topic(topic(&format!("t{i}"), 1)).unwrap();
            if i % 3 == 0 {
                r.delete_topic(&format!("t{i}")).unwrap();
            }
        }
        r.update_topic(topic("t1", 4)).unwrap();
        r.create_group(group("g")).unwrap();
        let v = r.version();
        assert_eq!(v, 3000 + 1000 + 2);
        // A change that changes nothing keeps the version.
        r.ensure_topic(topic("t1", 9)).unwrap();
        assert_eq!(r.version(), v);
        let snap = r.snapshot();
        assert_eq!(
            (snap.version, snap.topics.len(), snap.groups.len()),
            (v, 2000, 1)
        );
        assert!(dir.path().join(FILE_NAME).exists());
        drop(r);

        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.topics().len(), 2000);
        assert_eq!(r.topic("t1").unwrap().queues(), 4);
        assert!(r.topic("t3").is_err() && r.topic("t2997").is_err() && r.topic("t2998").is_ok());
        assert!(r.group("g").is_ok());
    }

    /// Creating topics one by one costs each one appended line, not a
    /// rewrite of everything before it (which made 100,000 take hours).
    /// 20,000 here keep the test short: each create is an fsync, so the
    /// time depends on the disk (100,000 took 14 s on an idle CI machine,
    /// 90 s while other tests fsynced too) and is printed, not asserted.
    #[test]
    fn many_topics_one_by_one_append_a_line_each() {
        const N: usize = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        for i in 0..N {
            r.create_topic(topic(&format!("topic-{i:06}"), 2)).unwrap();
        }
        eprintln!("{N} topics created one by one in {:?}", started.elapsed());
        drop(r);
        // Only creates: the log never outgrows the registry, so it holds
        // them all, a line each, and no snapshot was written.
        assert!(!dir.path().join(FILE_NAME).exists());
        let log = std::fs::read(dir.path().join(LOG_NAME)).unwrap();
        assert_eq!(log.iter().filter(|&&b| b == b'\n').count(), N);
        assert!(log.len() < N * 200, "{} bytes", log.len());
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.topics().len(), N);
        assert_eq!(r.topic("topic-019999").unwrap().queues(), 2);
    }

    #[test]
    fn topics_created_in_one_batch_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        r.create_topic(topic("taken", 1)).unwrap();
        for bad in [
            vec![topic("a", 1), topic("taken", 2)],
            vec![topic("a", 1), topic("a", 2)],
        ] {
            assert!(matches!(
                r.create_topics(bad),
                Err(BrokerError::TopicExists(_))
            ));
            assert_eq!(r.topics().len(), 1);
        }
        let v = r.version();
        r.create_topics((0..5000).map(|i| topic(&format!("b{i}"), 1)).collect())
            .unwrap();
        assert_eq!(r.version(), v + 1);
        drop(r);
        let r = Registry::open(dir.path()).unwrap();
        assert_eq!(r.topics().len(), 5001);
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
