//! The send path: one way in for every kind of message.
//!
//! [`Produce::send`] takes the validated messages of one request (the edge
//! has turned protobuf into [`Message`]s) and answers each with a
//! [`Sent`] or the error that refused it. In order:
//!
//! 1. **Route** (`route.rs`): the topic must exist, be writable and take
//!    the message's kind; the broker picks the queue (a message group
//!    always maps to the same queue; other messages of a request share
//!    the next queue of a round robin); delayed messages due in the
//!    future and half messages go to a park instead of their topic.
//! 2. **De-duplicate** ([`crate::dedup`]): an id accepted within the
//!    window is answered with its first result; an id another send is
//!    writing waits for that outcome and is looked at again in the next
//!    round; just after a restart, claimed ids are looked up in the
//!    store's message-id index first.
//! 3. **Admit** (`admit.rs`): back-pressure, the same for every kind: a
//!    write is refused with TOO_MANY_REQUESTS while the disk is behind
//!    or too many writes wait for their completion.
//! 4. **Write**: topic messages in one store batch (`Store::append_then`),
//!    delayed messages to the timer's park, half messages to the
//!    transactions' park; each answered once stored under the flush
//!    policy, and each claim completed even if the client gave up.
//!
//! Transactions are ended and checked in `transaction.rs`; delayed
//! messages are recalled by [`Produce::recall`].

mod admit;
mod route;
mod transaction;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tern_model::{Message, TopicName, now_ms};
use tern_store::Store;

use crate::replica::Replicated;

pub use admit::{Admission, AdmissionLimits, Pending};

use crate::dedup::{self, Begin, Claim, Dedup, DedupConfig, Outcome, ParkKind, ParkedAt, Stored};
use crate::error::{BrokerError, Result};
use crate::meta::{Registry, TopicConfig};
use crate::metrics::Metrics;
use crate::task::blocking;
use crate::timer::{Timer, recall_handle};
use crate::txn::{Producers, Transactions, transaction_id};

/// What became of one sent message: what its send result carries. A
/// repeated send of the same id gets the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Written to its topic.
    Stored { queue_id: u32, queue_offset: u64 },
    /// A delayed message parked until due: its place in the park, and the
    /// handle that recalls it.
    Delayed { offset: u64, recall_handle: String },
    /// A half message parked until its transaction ends: its place in the
    /// park, and the transaction id that ends it.
    Half { offset: u64, transaction_id: String },
}

impl Sent {
    fn of(outcome: Outcome, message_id: &str) -> Self {
        match outcome {
            Outcome::Stored(s) => Self::Stored {
                queue_id: s.queue_id,
                queue_offset: s.queue_offset,
            },
            Outcome::Parked(ParkedAt {
                park: ParkKind::Timer,
                offset,
            }) => Self::Delayed {
                offset,
                recall_handle: recall_handle(offset, message_id),
            },
            Outcome::Parked(ParkedAt {
                park: ParkKind::Half,
                offset,
            }) => Self::Half {
                offset,
                transaction_id: transaction_id(offset),
            },
        }
    }

    /// The offset a send result shows: the queue offset, or the place in
    /// the park.
    pub fn offset(&self) -> u64 {
        match self {
            Self::Stored { queue_offset, .. } => *queue_offset,
            Self::Delayed { offset, .. } | Self::Half { offset, .. } => *offset,
        }
    }
}

/// The answer for one message of a send. One failure can answer several
/// messages of a batch, hence the shared error.
pub type SendResult = std::result::Result<Sent, Arc<BrokerError>>;

/// Settings of the send path.
#[derive(Debug, Clone, Copy)]
pub struct ProduceConfig {
    /// Back-pressure limits.
    pub admission: AdmissionLimits,
    /// How long and how many message ids are remembered.
    pub dedup: DedupConfig,
}

/// The send path of one broker. Shared behind an `Arc`.
#[derive(Debug)]
pub struct Produce {
    store: Arc<Store>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    dedup: Arc<Dedup>,
    timer: Arc<Timer>,
    /// `None`: half messages are refused (UNSUPPORTED).
    transactions: Option<Arc<Transactions>>,
    /// Live producers, whom transaction checks are sent to.
    producers: Arc<Producers>,
    admission: Admission,
    /// Round-robin counter choosing the queue of each send request.
    next_queue: AtomicUsize,
    /// Set in a replicated group: topic messages are written through the
    /// group's log.
    replicated: Option<Arc<Replicated>>,
}

/// One message on its way: its slot in the answer, where it goes (`None`:
/// its topic), and the claim on its id once de-duplication gave one.
struct Item {
    slot: usize,
    msg: Message,
    park: Option<ParkKind>,
    claim: Option<Claim>,
}

impl Produce {
    /// The send path over `store`, with delayed messages parked by
    /// `timer` and half messages by `transactions` (`None` refuses them).
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        timer: Arc<Timer>,
        transactions: Option<Arc<Transactions>>,
        metrics: Arc<Metrics>,
        cfg: ProduceConfig,
    ) -> Self {
        let dedup = Arc::new(Dedup::new(cfg.dedup, &store));
        let admission = Admission::new(Arc::clone(&store), Arc::clone(&metrics), cfg.admission);
        Self {
            store,
            registry,
            metrics,
            dedup,
            timer,
            transactions,
            producers: Arc::default(),
            admission,
            next_queue: AtomicUsize::new(0),
            replicated: None,
        }
    }

    /// The send path of a replica of a replicated group: topic messages
    /// go through the group's log (`replicated`); delayed and half
    /// messages are refused, as the parks are not replicated yet.
    pub fn replicated(mut self, replicated: Arc<Replicated>) -> Self {
        self.replicated = Some(replicated);
        self
    }

    /// The live producers (their Telemetry streams register there).
    pub(crate) fn producers(&self) -> &Arc<Producers> {
        &self.producers
    }

    /// Whether half messages are taken.
    pub fn transactions_enabled(&self) -> bool {
        self.transactions.is_some()
    }

    /// The longest delay a delayed message may ask for, in ms.
    pub fn max_delay_ms(&self) -> i64 {
        self.timer.max_delay_ms()
    }

    /// Sends `msgs` (the valid messages of one request, from client
    /// `sender`): one answer per message, in order.
    pub async fn send(&self, sender: &str, msgs: Vec<Message>) -> Vec<SendResult> {
        let mut results: Vec<Option<SendResult>> = (0..msgs.len()).map(|_| None).collect();
        // All messages of one request go to one queue; successive
        // requests take turns.
        let turn = self.next_queue.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let mut topics: HashMap<String, Result<TopicConfig>> = HashMap::new();
        let mut todo = Vec::with_capacity(msgs.len());
        for (slot, msg) in msgs.into_iter().enumerate() {
            let topic = topics
                .entry(msg.topic.to_string())
                .or_insert_with(|| self.registry.topic(msg.topic.as_str()));
            match route::route(topic, msg, turn, now, self.transactions_enabled()) {
                Ok((msg, park)) => {
                    if park == Some(ParkKind::Half) {
                        self.producers.publishes(sender, msg.topic.as_str());
                    }
                    todo.push(Item {
                        slot,
                        msg,
                        park,
                        claim: None,
                    });
                }
                Err(e) => results[slot] = Some(Err(Arc::new(e))),
            }
        }
        // Rounds: a message whose id another send is writing waits for
        // that outcome and is looked at again (stored, or written if that
        // write failed).
        while !todo.is_empty() {
            todo = self.round(todo, &mut results).await;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Arc::new(BrokerError::Failed(
                        "a message of the send was left unanswered".into(),
                    )))
                })
            })
            .collect()
    }

    /// One round of a send: answers ids accepted before from memory (or,
    /// just after a restart, from the index), writes or parks the rest,
    /// and only then waits for ids other sends are writing (so two
    /// requests sharing ids never wait for each other), returning those
    /// to look at again.
    async fn round(&self, todo: Vec<Item>, results: &mut [Option<SendResult>]) -> Vec<Item> {
        let mut write = Vec::with_capacity(todo.len());
        let mut waiting = Vec::new();
        let mut recall = false;
        for mut item in todo {
            if !self.dedup.enabled() || item.msg.message_id.is_empty() {
                write.push(item);
                continue;
            }
            let outcome = match self
                .dedup
                .begin(item.msg.topic.as_str(), &item.msg.message_id)
            {
                Begin::Stored(s) => Outcome::Stored(s),
                Begin::Parked(p) => Outcome::Parked(p),
                Begin::Claimed(claim) => {
                    recall = recall || self.dedup.recalling();
                    item.claim = Some(claim);
                    write.push(item);
                    continue;
                }
                Begin::Wait(rx) => {
                    waiting.push((item, rx));
                    continue;
                }
            };
            tracing::debug!(topic = %item.msg.topic, message_id = %item.msg.message_id, ?outcome,
                "repeated send answered with the original result");
            results[item.slot] = Some(Ok(Sent::of(outcome, &item.msg.message_id)));
        }
        if recall {
            write = self.recall_claimed(write, results).await;
        }
        let (mut topic, mut delayed, mut half) = (Vec::new(), Vec::new(), Vec::new());
        for item in write {
            match item.park {
                None => topic.push(item),
                Some(ParkKind::Timer) => delayed.push(item),
                Some(ParkKind::Half) => half.push(item),
            }
        }
        for (park, items) in [
            (None, topic),
            (Some(ParkKind::Timer), delayed),
            (Some(ParkKind::Half), half),
        ] {
            if !items.is_empty() {
                self.write(park, items, results).await;
            }
        }
        let mut again = Vec::with_capacity(waiting.len());
        for (item, rx) in waiting {
            dedup::wait(rx).await;
            again.push(item);
        }
        again
    }

    /// Just after a restart: answers the claimed ids the previous run
    /// accepted within the window from the store's message-id index, and
    /// returns the rest to write.
    async fn recall_claimed(
        &self,
        write: Vec<Item>,
        results: &mut [Option<SendResult>],
    ) -> Vec<Item> {
        let slots: Vec<usize> = write.iter().map(|i| i.slot).collect();
        let (store, dedup) = (Arc::clone(&self.store), Arc::clone(&self.dedup));
        let found = blocking(move || {
            let mut rest = Vec::with_capacity(write.len());
            let mut found = Vec::new();
            for mut item in write {
                let hit = item.claim.as_ref().and_then(|_| {
                    dedup.recall(&store, item.msg.topic.as_str(), &item.msg.message_id)
                });
                match (hit, item.claim.take()) {
                    (Some((outcome, age)), Some(claim)) => {
                        tracing::info!(topic = %item.msg.topic, message_id = %item.msg.message_id, ?outcome,
                            "send repeated after a restart answered with the original result");
                        claim.complete(outcome, age);
                        found.push((item.slot, Sent::of(outcome, &item.msg.message_id)));
                    }
                    (_, claim) => {
                        item.claim = claim;
                        rest.push(item);
                    }
                }
            }
            Ok((rest, found))
        })
        .await;
        match found {
            Ok((rest, found)) => {
                for (slot, sent) in found {
                    results[slot] = Some(Ok(sent));
                }
                rest
            }
            // The blocking pool failed: the claims are dropped, and the
            // client's retry looks again.
            Err(e) => {
                let e = Arc::new(e);
                for slot in slots {
                    results[slot] = Some(Err(Arc::clone(&e)));
                }
                Vec::new()
            }
        }
    }

    /// Writes `items` to their topics (`park` is `None`) or parks them,
    /// once admitted; their claims are completed when the write is (even
    /// if the client gave up before).
    async fn write(
        &self,
        park: Option<ParkKind>,
        items: Vec<Item>,
        results: &mut [Option<SendResult>],
    ) {
        let mut slots = Vec::with_capacity(items.len());
        let mut msgs = Vec::with_capacity(items.len());
        let mut claims = Vec::with_capacity(items.len());
        for item in items {
            slots.push(item.slot);
            claims.push(item.claim);
            msgs.push(item.msg);
        }
        // A delayed message's recall handle names its id.
        let ids: Vec<String> = if park == Some(ParkKind::Timer) {
            msgs.iter().map(|m| m.message_id.clone()).collect()
        } else {
            Vec::new()
        };
        let started = Instant::now();
        let mut appended = None;
        let written = match self.admission.admit() {
            Ok(pending) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let done = move |r: Result<Vec<Outcome>>| {
                    if let Ok(outcomes) = &r {
                        for (claim, &outcome) in claims.into_iter().zip(outcomes) {
                            if let Some(claim) = claim {
                                claim.complete(outcome, std::time::Duration::ZERO);
                            }
                        }
                    }
                    drop(pending);
                    let _ = tx.send(r);
                };
                appended = self.start_write(park, msgs, done);
                rx.await
                    .unwrap_or_else(|_| Err(BrokerError::Failed("the write went away".into())))
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(outcomes) => {
                if let Some(msgs) = appended {
                    self.metrics.appended(started.elapsed());
                    for m in &msgs {
                        self.metrics.stored(m.topic.as_str(), m.body.len());
                    }
                }
                for (i, (slot, outcome)) in slots.into_iter().zip(outcomes).enumerate() {
                    let id = ids.get(i).map_or("", String::as_str);
                    results[slot] = Some(Ok(Sent::of(outcome, id)));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for slot in slots {
                    results[slot] = Some(Err(Arc::clone(&e)));
                }
            }
        }
    }

    /// Starts the write of `msgs` where `park` says; `done` gets each
    /// message's outcome once the flush policy's promise is kept. Gives
    /// back the messages written to their topics (the store only borrows
    /// them), to be counted; parked ones are handed over.
    fn start_write(
        &self,
        park: Option<ParkKind>,
        msgs: Vec<Message>,
        done: impl FnOnce(Result<Vec<Outcome>>) + Send + 'static,
    ) -> Option<Vec<Message>> {
        let parked = move |park, r: Result<Vec<u64>>| {
            r.map(|offsets| {
                offsets
                    .into_iter()
                    .map(|offset| Outcome::Parked(ParkedAt { park, offset }))
                    .collect()
            })
        };
        let stored = |queues: Vec<u32>, r: tern_store::Result<Vec<tern_store::Appended>>| {
            r.map_err(BrokerError::from).map(|appended| {
                appended
                    .iter()
                    .zip(queues)
                    .map(|(a, queue_id)| {
                        Outcome::Stored(Stored {
                            queue_id,
                            queue_offset: a.queue_offset,
                        })
                    })
                    .collect()
            })
        };
        if let Some(replicated) = &self.replicated {
            if park.is_some() {
                done(Err(BrokerError::Unsupported(
                    "delayed and transactional messages are not replicated yet: a replicated broker group takes normal and FIFO messages only".into(),
                )));
                return None;
            }
            let queues: Vec<u32> = msgs.iter().map(|m| m.queue_id).collect();
            match self.store.encode(&msgs) {
                Ok(encoded) => {
                    let replicated = Arc::clone(replicated);
                    tokio::spawn(async move {
                        match replicated.append(encoded, now_ms()).await {
                            Ok(appended) => done(stored(queues, Ok(appended))),
                            Err(e) => done(Err(e)),
                        }
                    });
                }
                Err(e) => done(Err(e.into())),
            }
            return Some(msgs);
        }
        match park {
            None => {
                let queues: Vec<u32> = msgs.iter().map(|m| m.queue_id).collect();
                self.store
                    .append_then(&msgs, move |r| done(stored(queues, r)));
                return Some(msgs);
            }
            Some(ParkKind::Timer) => self
                .timer
                .schedule(msgs, move |r| done(parked(ParkKind::Timer, r))),
            Some(ParkKind::Half) => match &self.transactions {
                Some(txn) => txn.park(msgs, move |r| done(parked(ParkKind::Half, r))),
                None => done(Err(route::transactions_off())),
            },
        }
        None
    }

    /// Cancels the delayed message of `topic` that `handle` names, before
    /// it is due; returns its message id.
    pub async fn recall(&self, topic: TopicName, handle: String) -> Result<String> {
        self.registry.topic(topic.as_str())?;
        let timer = Arc::clone(&self.timer);
        blocking(move || timer.recall(&topic, &handle)).await
    }
}
