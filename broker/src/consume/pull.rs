//! Offset-based consumption: pull, and the offsets a puller keeps.
//!
//! A pull reads a queue from the offset the client names; nothing is
//! leased, and the client keeps its place with [`Consume::set_offset`].
//! Offsets are the store's consumer offsets (`offsets.json`), the same
//! entries POP consumption keeps as a group's committed offset: reading
//! one shows where a POP group stands, and a group that switches from
//! pulling to receiving starts where its last offset left it. A queue
//! that the group already consumes with receives refuses a new offset
//! (PRECONDITION_FAILED): POP owns that offset. A new offset is made
//! durable (write, fsync, rename) before it is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_model::{GroupName, TopicName};
use tern_store::{Store, StoredMessage};

use super::Consume;
use crate::error::{BrokerError, Result};
use crate::filter::Filter;
use crate::meta::TopicConfig;
use crate::task::blocking;
use crate::wake::wait;

/// Most messages one pull returns.
const MAX_PULL: usize = 1024;
/// Most messages one pull looks at when a filter skips some.
const MAX_SCAN: usize = 1024;
/// Bytes read from the store at once.
const READ_BYTES: usize = 4 << 20;

/// A pull, validated at the edge.
#[derive(Debug, Clone)]
pub struct Pull {
    pub group: GroupName,
    pub topic: TopicName,
    /// The queue, as the client named it (checked against the topic).
    pub queue: i64,
    /// Where to read from, as the client named it (negative is refused).
    pub offset: i64,
    /// Messages wanted (clamped to 1..=1024).
    pub batch: usize,
    pub filter: Filter,
    /// How long to wait for messages ([`super::pull_polling_time`]).
    pub poll: Duration,
}

/// What a pull found.
#[derive(Debug)]
pub enum Pulled {
    /// Messages the filter accepts, and the offset to pull from next.
    Messages {
        messages: Vec<StoredMessage>,
        next: u64,
    },
    /// Nothing (new, or that the filter accepts) within the polling
    /// time; the offset to pull from next.
    Nothing { next: u64 },
    /// The offset is outside the stored range; the nearest valid one.
    OutOfRange { queue: u32, next: u64 },
}

/// Where [`Consume::find_offset`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetPolicy {
    /// The first offset still stored.
    Beginning,
    /// The offset the next message will get.
    End,
    /// The first message stored at or after this time (ms).
    Timestamp(i64),
}

/// What one look at a queue found.
enum Look {
    Messages(Vec<StoredMessage>, u64),
    /// Nothing the filter accepts up to the next offset to pull; whether
    /// messages follow it (the scan stopped at its limit).
    Nothing(u64, bool),
    OutOfRange(u64),
}

fn negative(offset: i64) -> BrokerError {
    BrokerError::IllegalOffset(format!("offset {offset} is negative"))
}

impl Consume {
    /// The topic and queue `queue` of it, checked.
    pub fn topic_queue(&self, topic: &TopicName, queue: i64) -> Result<(TopicConfig, u32)> {
        let t = self.registry.topic(topic.as_str())?;
        let q = u32::try_from(queue)
            .ok()
            .filter(|&q| q < t.queues())
            .ok_or_else(|| {
                BrokerError::Invalid(format!(
                    "topic {topic} has no queue {queue} (it has {})",
                    t.queues()
                ))
            })?;
        Ok((t, q))
    }

    /// Reads `p.queue` from `p.offset`: the messages its filter accepts,
    /// waiting up to `p.poll` for some to arrive.
    pub async fn pull(&self, p: Pull) -> Result<Pulled> {
        let started = Instant::now();
        let (topic, queue) = self.topic_queue(&p.topic, p.queue)?;
        if !topic.permission().readable() {
            return Err(BrokerError::Forbidden(format!(
                "topic {} is not readable",
                topic.name()
            )));
        }
        let group = self.group(p.group).await?;
        let max = p.batch.clamp(1, MAX_PULL);
        let mut offset = u64::try_from(p.offset).map_err(|_| negative(p.offset))?;
        let tname = topic.name().to_string();
        let mut woken = self.wakers.subscribe(&tname);
        loop {
            self.still_there(&tname, None)?;
            woken.borrow_and_update();
            let (store, t, f) = (Arc::clone(&self.store), tname.clone(), p.filter.clone());
            let found = blocking(move || Ok(look(&store, &t, queue, offset, max, &f)?)).await?;
            match found {
                Look::Messages(messages, next) => {
                    for m in &messages {
                        self.metrics
                            .delivered(group.name().as_str(), &tname, m.message.body.len());
                    }
                    return Ok(Pulled::Messages { messages, next });
                }
                Look::OutOfRange(next) => return Ok(Pulled::OutOfRange { queue, next }),
                Look::Nothing(next, more) => {
                    offset = next;
                    if more && started.elapsed() < p.poll {
                        continue;
                    }
                    let left = p.poll.saturating_sub(started.elapsed());
                    if left.is_zero() || !wait(&mut woken, left, &self.closing).await {
                        return Ok(Pulled::Nothing { next });
                    }
                }
            }
        }
    }

    /// Sets `group`'s offset in `queue` of `topic` to `offset`, durably.
    pub async fn set_offset(
        &self,
        group: GroupName,
        topic: &TopicName,
        queue: i64,
        offset: i64,
    ) -> Result<()> {
        let (topic, queue) = self.topic_queue(topic, queue)?;
        let offset = u64::try_from(offset).map_err(|_| negative(offset))?;
        let (store, registry, pop) = (
            Arc::clone(&self.store),
            Arc::clone(&self.registry),
            Arc::clone(&self.pop),
        );
        blocking(move || {
            let group = registry.ensure_group(crate::meta::GroupConfig::with_defaults(group)?)?;
            let (g, t) = (group.name().as_str(), topic.name().as_str());
            if pop.stats(g, t).iter().any(|s| s.queue_id == queue) {
                return Err(BrokerError::Precondition(format!(
                    "group {g} consumes queue {queue} of {t} with ReceiveMessage; UpdateOffset does not move it"
                )));
            }
            let (_, end) = store.queue_range(t, queue);
            if offset > end {
                return Err(BrokerError::IllegalOffset(format!(
                    "offset {offset} is past the end ({end}) of queue {queue} of {t}"
                )));
            }
            store.commit_offset(g, t, queue, offset);
            store.flush_offsets()?;
            Ok(())
        })
        .await
    }

    /// `group`'s offset in `queue` of `topic`.
    pub fn offset(&self, group: &GroupName, topic: &TopicName, queue: i64) -> Result<u64> {
        let (topic, queue) = self.topic_queue(topic, queue)?;
        self.registry.group(group.as_str())?;
        self.store
            .committed_offset(group.as_str(), topic.name().as_str(), queue)
            .ok_or_else(|| {
                BrokerError::OffsetNotFound(format!(
                    "group {group} has no offset in queue {queue} of {}",
                    topic.name()
                ))
            })
    }

    /// The offset in `queue` of `topic` that `policy` names.
    pub async fn find_offset(
        &self,
        topic: &TopicName,
        queue: i64,
        policy: OffsetPolicy,
    ) -> Result<u64> {
        let (topic, queue) = self.topic_queue(topic, queue)?;
        let store = Arc::clone(&self.store);
        let t = topic.name().to_string();
        match policy {
            OffsetPolicy::Beginning => Ok(store.queue_range(&t, queue).0),
            OffsetPolicy::End => Ok(store.queue_range(&t, queue).1),
            OffsetPolicy::Timestamp(ms) => {
                blocking(move || Ok(store.offset_for_timestamp(&t, queue, ms)?)).await
            }
        }
    }
}

/// One look at a queue from `offset`: up to `max` messages `filter`
/// accepts (looking at most at [`MAX_SCAN`]).
fn look(
    store: &Store,
    topic: &str,
    queue: u32,
    offset: u64,
    max: usize,
    filter: &Filter,
) -> tern_store::Result<Look> {
    let (min, end) = store.queue_range(topic, queue);
    if offset < min {
        return Ok(Look::OutOfRange(min));
    }
    if offset > end {
        return Ok(Look::OutOfRange(end));
    }
    let mut from = offset;
    let mut out = Vec::new();
    let mut scanned = 0;
    while out.len() < max && scanned < MAX_SCAN && from < end {
        let count = if filter.selects_all() {
            max - out.len()
        } else {
            (max - out.len()).max(64)
        }
        .min(MAX_SCAN - scanned);
        let read = store.read_queue(topic, queue, from, count, READ_BYTES)?;
        if read.messages.is_empty() {
            // Retention moved the start past `from`.
            from = read.next_offset.max(from);
            break;
        }
        for m in read.messages {
            if out.len() >= max {
                break;
            }
            scanned += 1;
            from = m.queue_offset + 1;
            if filter.matches(&m.message) {
                out.push(m);
            }
        }
    }
    if out.is_empty() {
        Ok(Look::Nothing(from, from < end))
    } else {
        Ok(Look::Messages(out, from))
    }
}
