//! SendMessage: validation at the edge, one store batch per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tern_model::{Message, MessageKind, now_ms};
use tern_protocol::v2::{Code, SendMessageRequest, SendMessageResponse, SendResultEntry};

use super::Messaging;
use super::convert::{Limits, message_in};
use super::status::{Client, ok, overall};
use crate::dedup::{self, Begin, Claim, Outcome, ParkKind, ParkedAt, Stored};
use crate::error::BrokerError;
use crate::meta::TopicConfig;
use crate::timer::recall_handle;
use crate::txn::transaction_id;

impl Messaging {
    /// Sends every valid message of `req` in one batch; invalid ones get
    /// their own status.
    pub(super) async fn send(&self, c: &Client, req: SendMessageRequest) -> SendMessageResponse {
        if req.messages.is_empty() {
            return SendMessageResponse {
                status: Some(c.status(Code::BadRequest, "no message to send")),
                entries: Vec::new(),
            };
        }
        let sh = &self.shared;
        let mut entries = Vec::with_capacity(req.messages.len());
        let mut topics: HashMap<String, Result<TopicConfig, BrokerError>> = HashMap::new();
        // The broker chooses the queue, as the reference proxy does: Go
        // and Python clients leave `queue_id` unset, so it cannot be
        // trusted to spread load. All messages of one request go to one
        // queue; successive requests take turns.
        let turn = sh.next_queue.fetch_add(1, Ordering::Relaxed);
        let limits = Limits {
            max_body: sh.cfg.max_body_bytes,
            max_delay_ms: sh.timer.max_delay_ms(),
        };
        let mut todo = Vec::new();
        let now = now_ms();
        let transactions = self.transactions();
        for m in req.messages {
            let id = m
                .system_properties
                .as_ref()
                .map(|s| s.message_id.clone())
                .unwrap_or_default();
            let checked = message_in(c, m, limits).and_then(|msg| {
                let topic = topics
                    .entry(msg.topic.to_string())
                    .or_insert_with(|| sh.registry.topic(msg.topic.as_str()));
                let topic = topic.as_ref().map_err(|e| c.error(e))?;
                if !topic.permission().writable() {
                    return Err(c.status(
                        Code::Forbidden,
                        format!("topic {} is not writable", msg.topic),
                    ));
                }
                if !topic.message_type().accepts(msg.kind()) {
                    return Err(c.status(
                        Code::MessagePropertyConflictWithType,
                        format!(
                            "topic {} is a {} topic; it does not accept {} messages",
                            msg.topic,
                            format!("{:?}", topic.message_type()).to_uppercase(),
                            kind_name(msg.kind())
                        ),
                    ));
                }
                Ok((msg, topic.clone()))
            });
            let status = match checked {
                Ok((mut msg, topic)) => {
                    // A message group always maps to the same queue, so
                    // its messages keep their order in one queue.
                    msg.queue_id = match msg.message_group() {
                        Some(g) => topic.queue_of(g),
                        None => pick_queue(turn, topic.queues()),
                    };
                    // Delayed and half messages are parked until due or
                    // committed.
                    let park = match msg.kind() {
                        MessageKind::Delay if msg.deliver_at_ms().is_some_and(|at| at > now) => {
                            Some(ParkKind::Timer)
                        }
                        MessageKind::Transaction => Some(ParkKind::Half),
                        _ => None,
                    };
                    if park == Some(ParkKind::Half) && transactions.is_none() {
                        c.status(
                            Code::Unsupported,
                            "transaction messages are not enabled on this broker",
                        )
                    } else {
                        if park == Some(ParkKind::Half) {
                            sh.producers.publishes(&c.id, msg.topic.as_str());
                        }
                        todo.push((entries.len(), msg, park));
                        ok()
                    }
                }
                Err(s) => s,
            };
            entries.push(SendResultEntry {
                status: Some(status),
                message_id: id,
                ..Default::default()
            });
        }
        // Rounds: a message whose id another send is writing waits for
        // that outcome and is looked at again (stored, or written if that
        // write failed).
        while !todo.is_empty() {
            todo = self.send_round(c, todo, &mut entries).await;
        }
        SendMessageResponse {
            status: Some(overall(entries.iter().filter_map(|e| e.status.as_ref()))),
            entries,
        }
    }

    /// One round of a send: answers ids accepted before from memory (or,
    /// just after a restart, from the index), writes or parks the rest,
    /// and only then waits for ids other sends are writing (so two
    /// requests sharing ids never wait for each other), returning those
    /// to look at again.
    async fn send_round(
        &self,
        c: &Client,
        todo: Vec<Routed>,
        entries: &mut [SendResultEntry],
    ) -> Vec<Routed> {
        let sh = &self.shared;
        let mut write = Vec::with_capacity(todo.len());
        let mut waiting = Vec::new();
        let mut recall = false;
        for (slot, msg, park) in todo {
            if !sh.dedup.enabled() || msg.message_id.is_empty() {
                write.push(((slot, msg, None), park));
                continue;
            }
            let outcome = match sh.dedup.begin(msg.topic.as_str(), &msg.message_id) {
                Begin::Stored(s) => Outcome::Stored(s),
                Begin::Parked(p) => Outcome::Parked(p),
                Begin::Claimed(claim) => {
                    recall = recall || sh.dedup.recalling();
                    write.push(((slot, msg, Some(claim)), park));
                    continue;
                }
                Begin::Wait(rx) => {
                    waiting.push((slot, msg, park, rx));
                    continue;
                }
            };
            tracing::debug!(topic = %msg.topic, message_id = %msg.message_id, ?outcome,
                "repeated send answered with the original result");
            answer(&mut entries[slot], outcome);
        }
        if recall {
            write = self.recall(c, write, entries).await;
        }
        let (mut topic, mut delayed, mut half) = (Vec::new(), Vec::new(), Vec::new());
        for (w, park) in write {
            match park {
                None => topic.push(w),
                Some(ParkKind::Timer) => delayed.push(w),
                Some(ParkKind::Half) => half.push(w),
            }
        }
        if !topic.is_empty() {
            self.append(c, topic, entries).await;
        }
        if !delayed.is_empty() {
            self.send_delayed(c, delayed, entries).await;
        }
        if !half.is_empty() {
            self.send_half(c, half, entries).await;
        }
        let mut again = Vec::with_capacity(waiting.len());
        for (slot, msg, park, rx) in waiting {
            dedup::wait(rx).await;
            again.push((slot, msg, park));
        }
        again
    }

    /// Just after a restart: answers the claimed ids the previous run
    /// accepted within the window from the store's message-id index, and
    /// returns the rest to write.
    async fn recall(
        &self,
        c: &Client,
        write: Vec<(Claimed, Option<ParkKind>)>,
        entries: &mut [SendResultEntry],
    ) -> Vec<(Claimed, Option<ParkKind>)> {
        let slots: Vec<usize> = write.iter().map(|((slot, _, _), _)| *slot).collect();
        let sh = Arc::clone(&self.shared);
        let found = super::blocking(move || {
            let mut rest = Vec::with_capacity(write.len());
            let mut found = Vec::new();
            for ((slot, msg, claim), park) in write {
                let hit = claim.as_ref().and_then(|_| {
                    sh.dedup
                        .recall(&sh.store, msg.topic.as_str(), &msg.message_id)
                });
                match (hit, claim) {
                    (Some((outcome, age)), Some(claim)) => {
                        tracing::info!(topic = %msg.topic, message_id = %msg.message_id, ?outcome,
                            "send repeated after a restart answered with the original result");
                        claim.complete(outcome, age);
                        found.push((slot, outcome));
                    }
                    (_, claim) => rest.push(((slot, msg, claim), park)),
                }
            }
            Ok((rest, found))
        })
        .await;
        match found {
            Ok((rest, found)) => {
                for (slot, outcome) in found {
                    answer(&mut entries[slot], outcome);
                }
                rest
            }
            // The blocking pool failed: the claims are dropped, and the
            // client's retry looks again.
            Err(e) => {
                let s = c.error(&e);
                for slot in slots {
                    entries[slot].status = Some(s.clone());
                }
                Vec::new()
            }
        }
    }

    /// Appends `write` in one batch; its claims are completed when the
    /// append is (even if the client gave up before).
    async fn append(&self, c: &Client, write: Vec<Claimed>, entries: &mut [SendResultEntry]) {
        let sh = &self.shared;
        let mut slots = Vec::with_capacity(write.len());
        let mut msgs = Vec::with_capacity(write.len());
        let mut claims = Vec::with_capacity(write.len());
        let mut queues = Vec::with_capacity(write.len());
        for (slot, msg, claim) in write {
            slots.push(slot);
            queues.push(msg.queue_id);
            claims.push(claim.map(|cl| (cl, msg.queue_id)));
            msgs.push(msg);
        }
        let result = match self.admit() {
            Ok(pending) => {
                let started = Instant::now();
                let (tx, rx) = tokio::sync::oneshot::channel();
                // Pending until the store completes it, even if the
                // client gives up first.
                sh.store.append_then(&msgs, move |r| {
                    if let Ok(appended) = &r {
                        for (claim, a) in claims.into_iter().zip(appended) {
                            if let Some((claim, queue_id)) = claim {
                                claim.stored(Stored {
                                    queue_id,
                                    queue_offset: a.queue_offset,
                                });
                            }
                        }
                    }
                    drop(pending);
                    let _ = tx.send(r);
                });
                let r = rx.await.unwrap_or(Err(tern_store::StoreError::Closed));
                sh.metrics.appended(started.elapsed());
                r.map_err(BrokerError::from)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(appended) => {
                for m in &msgs {
                    sh.metrics.stored(m.topic.as_str(), m.body.len());
                }
                for ((slot, queue_id), a) in slots.into_iter().zip(queues).zip(appended) {
                    let stored = Stored {
                        queue_id,
                        queue_offset: a.queue_offset,
                    };
                    answer(&mut entries[slot], Outcome::Stored(stored));
                }
            }
            Err(e) => {
                let s = c.error(&e);
                for slot in slots {
                    entries[slot].status = Some(s.clone());
                }
            }
        }
    }

    /// Back-pressure: lets a send append unless the store is behind (too
    /// many bytes waiting for an fsync, or too many sends waiting for
    /// their append), in which case the send is refused at once with
    /// TOO_MANY_REQUESTS rather than queued. The guard counts the send as
    /// pending until dropped.
    pub(super) fn admit(&self) -> Result<Pending, BrokerError> {
        let sh = &self.shared;
        let unflushed = sh.store.unflushed_bytes();
        if unflushed >= sh.cfg.max_unflushed_bytes {
            sh.metrics.refused("unflushed_bytes");
            return Err(BrokerError::TooManyRequests(format!(
                "{unflushed} bytes are waiting to be flushed to disk (limit {}); retry later",
                sh.cfg.max_unflushed_bytes
            )));
        }
        let before = sh.pending_sends.fetch_add(1, Ordering::AcqRel);
        let guard = Pending(Arc::clone(&sh.pending_sends));
        if before >= sh.cfg.max_pending_sends {
            sh.metrics.refused("pending_sends");
            return Err(BrokerError::TooManyRequests(format!(
                "{before} sends are waiting for the store (limit {}); retry later",
                sh.cfg.max_pending_sends
            )));
        }
        Ok(guard)
    }
}

/// A valid message: its slot in the response, and the park it waits in
/// (`None`: it is written to its topic now).
type Routed = (usize, Message, Option<ParkKind>);

/// A message to write or park: its slot in the response, and the claim
/// on its id when de-duplicated.
pub(super) type Claimed = (usize, Message, Option<Claim>);

/// Fills a send's result entry from the outcome of its message: the
/// queue offset, or the park offset with the recall handle (delayed) or
/// transaction id (half). A repeated send gets the same fields.
pub(super) fn answer(e: &mut SendResultEntry, outcome: Outcome) {
    match outcome {
        Outcome::Stored(s) => e.offset = offset_of(s.queue_offset),
        Outcome::Parked(ParkedAt { park, offset }) => {
            e.offset = offset_of(offset);
            match park {
                ParkKind::Timer => e.recall_handle = recall_handle(offset, &e.message_id),
                ParkKind::Half => e.transaction_id = transaction_id(offset),
            }
        }
    }
}

/// An offset as the protocol carries it.
fn offset_of(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// The queue a request's messages go to on its `turn` of the round robin.
fn pick_queue(turn: usize, queues: u32) -> u32 {
    let queues = usize::try_from(queues.max(1)).unwrap_or(usize::MAX);
    u32::try_from(turn % queues).unwrap_or(0)
}

/// The protocol's name of a message kind.
fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Normal => "NORMAL",
        MessageKind::Fifo => "FIFO",
        MessageKind::Delay => "DELAY",
        MessageKind::Transaction => "TRANSACTION",
    }
}

/// One send counted as pending until dropped.
#[derive(Debug)]
pub(super) struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
