//! Message query for `TernAdmin`: by message id, by key, by store time.
//!
//! Lookups by id and key use the store's index; a time range is found in
//! each queue by a binary search on the store times of its consume-queue
//! entries. Every query first waits briefly for the messages already
//! written to be dispatched, so a message whose send was answered is found.

use std::sync::Arc;
use std::time::Duration;

use tern_store::{Store, StoredMessage};

use super::Consume;
use crate::error::{BrokerError, Result};
use crate::meta::TopicConfig;
use crate::task::blocking;

/// Messages of one answer when the request does not say.
pub const DEFAULT_MAX_MESSAGES: u32 = 32;
/// Most messages of one answer.
pub const MAX_MESSAGES: u32 = 1024;
/// Stored bytes of the messages of one answer, at most (at least one
/// message is always returned): well under what the clients accept.
const MAX_ANSWER_BYTES: u64 = 8 << 20;
/// Candidates read from the key index for a key query with a time range.
const KEY_SCAN: usize = 4 * MAX_MESSAGES as usize;
/// Messages stored with one id that a lookup returns at most.
const SAME_ID_LIMIT: usize = 16;
/// Longest wait for written messages to reach the index.
const DISPATCH_WAIT: Duration = Duration::from_millis(500);

/// A message query by key or store time, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    key: Option<String>,
    /// Stored at or after this time (ms since the epoch).
    since_ms: Option<i64>,
    /// Stored before this time (ms since the epoch).
    until_ms: Option<i64>,
    limit: usize,
}

impl Query {
    /// Messages with `key` (any, if `None`) stored in
    /// `since_ms..until_ms`, at most `max_messages` (0:
    /// [`DEFAULT_MAX_MESSAGES`]).
    pub fn new(
        key: Option<String>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        max_messages: u32,
    ) -> Result<Self> {
        let limit = match max_messages {
            0 => DEFAULT_MAX_MESSAGES,
            n if n > MAX_MESSAGES => {
                return Err(BrokerError::Invalid(format!(
                    "max_messages {n} is more than {MAX_MESSAGES}"
                )));
            }
            n => n,
        };
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && until <= since
        {
            return Err(BrokerError::Invalid(format!(
                "until_ms ({until}) must be later than since_ms ({since})"
            )));
        }
        if key.as_deref() == Some("") {
            return Err(BrokerError::Invalid("key must not be empty".into()));
        }
        Ok(Self {
            key,
            since_ms,
            until_ms,
            limit: limit as usize,
        })
    }

    fn in_range(&self, ts: i64) -> bool {
        self.since_ms.is_none_or(|s| ts >= s) && self.until_ms.is_none_or(|u| ts < u)
    }
}

/// Waits (briefly) until what is written is indexed.
fn settle(store: &Store) {
    if !store.wait_dispatched(store.max_offset(), DISPATCH_WAIT) {
        tracing::debug!("query runs before the newest messages are dispatched");
    }
}

/// The messages stored with `message_id`, oldest first.
fn by_id(store: &Store, message_id: &str) -> Result<Vec<StoredMessage>> {
    settle(store);
    let mut found = store.find_by_message_id(message_id, SAME_ID_LIMIT)?;
    found.sort_by_key(|m| (m.store_timestamp_ms, m.position));
    Ok(found)
}

/// The messages of `topic` matching `q`, oldest first, and whether more
/// matched (or, for a key with a time range, may match) than are returned.
fn find(store: &Store, topic: &TopicConfig, q: &Query) -> Result<(Vec<StoredMessage>, bool)> {
    settle(store);
    let name = topic.name().as_str();
    let (mut found, mut truncated) = match &q.key {
        Some(key) => {
            let timed = q.since_ms.is_some() || q.until_ms.is_some();
            let scan = if timed { KEY_SCAN } else { q.limit + 1 };
            // Newest first.
            let candidates = store.find_by_key(name, key, scan)?;
            let scanned_all = candidates.len() < scan;
            let mut hits: Vec<_> = candidates
                .into_iter()
                .filter(|m| q.in_range(m.store_timestamp_ms))
                .collect();
            let more = hits.len() > q.limit || (timed && !scanned_all);
            hits.truncate(q.limit);
            (hits, more)
        }
        None => by_time(store, name, topic.queues(), q)?,
    };
    found.sort_by_key(|m| (m.store_timestamp_ms, m.position));
    let mut bytes = 0u64;
    let keep = found
        .iter()
        .take_while(|m| {
            bytes += u64::from(m.size);
            bytes <= MAX_ANSWER_BYTES
        })
        .count()
        .max(1);
    if keep < found.len() {
        found.truncate(keep);
        truncated = true;
    }
    Ok((found, truncated))
}

/// The oldest `q.limit` messages of the topic stored in the time range.
fn by_time(
    store: &Store,
    topic: &str,
    queues: u32,
    q: &Query,
) -> Result<(Vec<StoredMessage>, bool)> {
    let mut matched = 0u64;
    let mut found = Vec::new();
    // Where the first queue whose read stopped at the byte limit stopped:
    // its unread messages lie beyond this commit-log position.
    let mut cut: Option<u64> = None;
    for queue in 0..queues {
        let (min, max) = store.queue_range(topic, queue);
        let start = match q.since_ms {
            Some(ts) => store.offset_for_timestamp(topic, queue, ts)?,
            None => min,
        }
        .max(min);
        let end = match q.until_ms {
            Some(ts) => store.offset_for_timestamp(topic, queue, ts)?,
            None => max,
        };
        if end <= start {
            continue;
        }
        matched += end - start;
        // The oldest of the answer come from the oldest of each queue.
        let want = usize::try_from(end - start)
            .unwrap_or(usize::MAX)
            .min(q.limit);
        let read = store.read_queue(topic, queue, start, want, MAX_ANSWER_BYTES as usize)?;
        let got: Vec<_> = read
            .messages
            .into_iter()
            .filter(|m| m.queue_offset < end)
            .collect();
        if got.len() < want
            && let Some(last) = got.last()
        {
            cut = Some(cut.map_or(last.position, |c| c.min(last.position)));
        }
        found.extend(got);
    }
    // The commit log is in store-time order: past the cut, a message of
    // the stopped queue may be missing, so nothing there is returned.
    if let Some(cut) = cut {
        found.retain(|m| m.position <= cut);
    }
    found.sort_by_key(|m| (m.store_timestamp_ms, m.position));
    found.truncate(q.limit);
    let truncated = matched > found.len() as u64;
    Ok((found, truncated))
}

impl Consume {
    /// The messages stored with `message_id`, oldest first.
    pub async fn message(&self, message_id: String) -> Result<Vec<StoredMessage>> {
        let store = Arc::clone(&self.store);
        blocking(move || by_id(&store, &message_id)).await
    }

    /// The messages of `topic` matching `q`, oldest first, and whether
    /// more matched than are returned.
    pub async fn query(&self, topic: &str, q: Query) -> Result<(Vec<StoredMessage>, bool)> {
        let topic = self.registry.topic(topic)?;
        let store = Arc::clone(&self.store);
        blocking(move || find(&store, &topic, &q)).await
    }
}
