//! Offset-based consumption: PullMessage, UpdateOffset, GetOffset and
//! QueryOffset.
//!
//! A pull reads a queue from the offset the client names; nothing is
//! leased, and the client keeps its place with UpdateOffset. Offsets are
//! the store's consumer offsets (`offsets.json`), the same entries POP
//! consumption keeps as a group's committed offset: GetOffset shows where
//! a POP group stands, and a group that switches from pulling to
//! receiving starts where its last UpdateOffset left it. A queue that the
//! group already consumes with ReceiveMessage refuses UpdateOffset
//! (PRECONDITION_FAILED): POP owns that offset. UpdateOffset is made
//! durable (write, fsync, rename) before it is answered.

use std::time::{Duration, Instant};

use tern_protocol::v2::{
    Code, GetOffsetRequest, MessageQueue, PullMessageRequest, PullMessageResponse,
    QueryOffsetPolicy, QueryOffsetRequest, Status, UpdateOffsetRequest,
    pull_message_response::Content,
};
use tern_store::StoredMessage;

use super::convert::{duration_ms, group_name, message_out, now_ms, topic_name};
use super::receive::filter;
use super::status::{Client, ok};
use super::{MAX_LONG_POLLING, Messaging, blocking};
use crate::filter::Filter;
use crate::meta::{GroupConfig, TopicConfig};
use crate::pop::Delivery;

/// Most messages one pull returns.
const MAX_PULL: usize = 1024;
/// Most messages one pull looks at when a filter skips some.
const MAX_SCAN: usize = 1024;
/// Bytes read from the store at once.
const READ_BYTES: usize = 4 << 20;

fn item(c: Content) -> PullMessageResponse {
    PullMessageResponse { content: Some(c) }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What one look at a queue found.
enum Pulled {
    Messages(Vec<StoredMessage>, u64),
    /// Nothing the filter accepts up to the next offset to pull; whether
    /// messages follow it (the scan stopped at its limit).
    Nothing(u64, bool),
    /// The offset is outside the stored range; where to pull instead.
    OutOfRange(u64),
}

impl Messaging {
    /// The topic and queue id of a request's message queue, checked.
    fn topic_queue(
        &self,
        c: &Client,
        mq: Option<&MessageQueue>,
    ) -> Result<(TopicConfig, u32), Status> {
        let mq = mq.ok_or_else(|| c.status(Code::BadRequest, "message_queue is required"))?;
        let name = topic_name(c, mq.topic.as_ref())?;
        let topic = self
            .shared
            .registry
            .topic(name.as_str())
            .map_err(|e| c.error(&e))?;
        let queue = u32::try_from(mq.id)
            .ok()
            .filter(|&q| q < topic.queues())
            .ok_or_else(|| {
                c.status(
                    Code::BadRequest,
                    format!(
                        "topic {name} has no queue {} (it has {})",
                        mq.id,
                        topic.queues()
                    ),
                )
            })?;
        Ok((topic, queue))
    }

    /// PullMessage: `status`, the messages, then `next_offset`. Nothing
    /// new within the long-polling time: `MESSAGE_NOT_FOUND` and
    /// `next_offset`. An offset outside the stored range: `ILLEGAL_OFFSET`
    /// and the nearest valid `next_offset`. Other failures: one status.
    pub(super) async fn pull(
        &self,
        c: &Client,
        req: PullMessageRequest,
        deadline: Option<Duration>,
    ) -> Vec<PullMessageResponse> {
        match self.try_pull(c, req, deadline).await {
            Ok(items) => items,
            Err(s) => vec![item(Content::Status(s))],
        }
    }

    async fn try_pull(
        &self,
        c: &Client,
        req: PullMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Vec<PullMessageResponse>, Status> {
        let started = Instant::now();
        let sh = &self.shared;
        let group = group_name(c, req.group.as_ref())?;
        let (topic, queue) = self.topic_queue(c, req.message_queue.as_ref())?;
        if !topic.permission().readable() {
            return Err(c.status(
                Code::Forbidden,
                format!("topic {} is not readable", topic.name()),
            ));
        }
        let registry = sh.registry.clone();
        let group = blocking(move || registry.ensure_group(GroupConfig::with_defaults(group)?))
            .await
            .map_err(|e| c.error(&e))?;
        let filter = filter(c, req.filter_expression.as_ref())?;
        let max = usize::try_from(req.batch_size)
            .unwrap_or(0)
            .clamp(1, MAX_PULL);
        let Ok(mut offset) = u64::try_from(req.offset) else {
            return Err(c.status(
                Code::IllegalOffset,
                format!("offset {} is negative", req.offset),
            ));
        };
        let mut poll = req
            .long_polling_timeout
            .as_ref()
            .map_or(Duration::ZERO, |d| {
                Duration::from_millis(u64::try_from(duration_ms(d)).unwrap_or(0))
            })
            .min(MAX_LONG_POLLING);
        if let Some(d) = deadline {
            poll = poll.min(d.saturating_sub(super::receive::DEADLINE_MARGIN));
        }
        let tname = topic.name().to_string();
        let mut woken = sh.wakers.subscribe(&tname);
        loop {
            woken.borrow_and_update();
            let (store, t, f) = (sh.store.clone(), tname.clone(), filter.clone());
            let found = blocking(move || Ok(look(&store, &t, queue, offset, max, &f)?))
                .await
                .map_err(|e| c.error(&e))?;
            match found {
                Pulled::Messages(msgs, next) => {
                    let now = now_ms();
                    let mut items = Vec::with_capacity(msgs.len() + 2);
                    items.push(item(Content::Status(ok())));
                    for m in msgs {
                        sh.metrics
                            .delivered(group.name().as_str(), &tname, m.message.body.len());
                        items.push(item(Content::Message(pulled(m, now))));
                    }
                    items.push(item(Content::NextOffset(as_i64(next))));
                    return Ok(items);
                }
                Pulled::OutOfRange(next) => {
                    return Ok(vec![
                        item(Content::Status(c.status(
                            Code::IllegalOffset,
                            format!(
                                "offset {offset} is outside the stored range of queue {queue}; pull from {next}"
                            ),
                        ))),
                        item(Content::NextOffset(as_i64(next))),
                    ]);
                }
                Pulled::Nothing(next, more) => {
                    offset = next;
                    if more && started.elapsed() < poll {
                        continue;
                    }
                    let left = poll.saturating_sub(started.elapsed());
                    if left.is_zero() || !self.wait(&mut woken, left).await {
                        return Ok(vec![
                            item(Content::Status(
                                c.status(Code::MessageNotFound, "no new message"),
                            )),
                            item(Content::NextOffset(as_i64(next))),
                        ]);
                    }
                }
            }
        }
    }

    pub(super) async fn set_offset(&self, c: &Client, req: UpdateOffsetRequest) -> Status {
        let group = match group_name(c, req.group.as_ref()) {
            Ok(g) => g,
            Err(s) => return s,
        };
        let (topic, queue) = match self.topic_queue(c, req.message_queue.as_ref()) {
            Ok(t) => t,
            Err(s) => return s,
        };
        let Ok(offset) = u64::try_from(req.offset) else {
            return c.status(
                Code::IllegalOffset,
                format!("offset {} is negative", req.offset),
            );
        };
        let sh = &self.shared;
        let (store, registry, pop) = (sh.store.clone(), sh.registry.clone(), sh.pop.clone());
        let client = c.clone();
        let r = blocking(move || {
            let group = registry.ensure_group(GroupConfig::with_defaults(group)?)?;
            let (g, t) = (group.name().as_str(), topic.name().as_str());
            if pop.stats(g, t).iter().any(|s| s.queue_id == queue) {
                return Ok(client.status(
                    Code::PreconditionFailed,
                    format!("group {g} consumes queue {queue} of {t} with ReceiveMessage; UpdateOffset does not move it"),
                ));
            }
            let (_, end) = store.queue_range(t, queue);
            if offset > end {
                return Ok(client.status(
                    Code::IllegalOffset,
                    format!("offset {offset} is past the end ({end}) of queue {queue} of {t}"),
                ));
            }
            store.commit_offset(g, t, queue, offset);
            store.flush_offsets()?;
            Ok(ok())
        })
        .await;
        r.unwrap_or_else(|e| c.error(&e))
    }

    pub(super) fn read_offset(&self, c: &Client, req: &GetOffsetRequest) -> Result<i64, Status> {
        let group = group_name(c, req.group.as_ref())?;
        let (topic, queue) = self.topic_queue(c, req.message_queue.as_ref())?;
        let sh = &self.shared;
        sh.registry.group(group.as_str()).map_err(|e| c.error(&e))?;
        sh.store
            .committed_offset(group.as_str(), topic.name().as_str(), queue)
            .map(as_i64)
            .ok_or_else(|| {
                c.status(
                    Code::OffsetNotFound,
                    format!(
                        "group {group} has no offset in queue {queue} of {}",
                        topic.name()
                    ),
                )
            })
    }

    pub(super) async fn find_offset(
        &self,
        c: &Client,
        req: QueryOffsetRequest,
    ) -> Result<i64, Status> {
        let (topic, queue) = self.topic_queue(c, req.message_queue.as_ref())?;
        let store = self.shared.store.clone();
        let t = topic.name().to_string();
        let policy = QueryOffsetPolicy::try_from(req.query_offset_policy).map_err(|_| {
            c.status(
                Code::BadRequest,
                format!("unknown query offset policy {}", req.query_offset_policy),
            )
        })?;
        match policy {
            QueryOffsetPolicy::Beginning => Ok(as_i64(store.queue_range(&t, queue).0)),
            QueryOffsetPolicy::End => Ok(as_i64(store.queue_range(&t, queue).1)),
            QueryOffsetPolicy::Timestamp => {
                let ts = req
                    .timestamp
                    .ok_or_else(|| c.status(Code::BadRequest, "TIMESTAMP needs a timestamp"))?;
                let ms = ts
                    .seconds
                    .saturating_mul(1000)
                    .saturating_add(i64::from(ts.nanos / 1_000_000));
                blocking(move || Ok(store.offset_for_timestamp(&t, queue, ms)?))
                    .await
                    .map(as_i64)
                    .map_err(|e| c.error(&e))
            }
        }
    }
}

/// One look at a queue from `offset`: up to `max` messages `filter`
/// accepts (looking at most at [`MAX_SCAN`]).
fn look(
    store: &tern_store::Store,
    topic: &str,
    queue: u32,
    offset: u64,
    max: usize,
    filter: &Filter,
) -> tern_store::Result<Pulled> {
    let (min, end) = store.queue_range(topic, queue);
    if offset < min {
        return Ok(Pulled::OutOfRange(min));
    }
    if offset > end {
        return Ok(Pulled::OutOfRange(end));
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
        Ok(Pulled::Nothing(from, from < end))
    } else {
        Ok(Pulled::Messages(out, from))
    }
}

/// A pulled message: as delivered, without a receipt handle or
/// invisibility (nothing is leased).
fn pulled(m: StoredMessage, now: i64) -> tern_protocol::v2::Message {
    let mut out = message_out(
        Delivery {
            message: m,
            receipt: String::new(),
            attempt: 1,
            invisible_until_ms: now,
        },
        now,
    );
    if let Some(sp) = out.system_properties.as_mut() {
        sp.receipt_handle = None;
        sp.invisible_duration = None;
        sp.delivery_attempt = None;
    }
    out
}
