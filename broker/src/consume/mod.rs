//! The read path: everything a consumer asks of the broker, over POP
//! consumption ([`crate::pop`]) and the store.
//!
//! - [`Consume::receive`]: POP receive with long polling: look, and if
//!   nothing is there, sleep until the dispatcher reports new messages of
//!   the topic, an in-flight message becomes visible again, or the
//!   polling time is over; deliveries of an `auto_renew` receive are
//!   renewed while their client lives (`renew.rs`);
//! - ack, change of invisibility and dead-letter forwarding, each checked
//!   against the group and topic the handle was issued to;
//! - `pull.rs`: offset-based consumption (pull, offsets);
//! - `poll.rs`: how long a receive or pull may wait;
//! - `query.rs`: messages by id, key and store time (admin API);
//! - `lag.rs`: where each group stands in each queue;
//! - `delete.rs`: deleting a topic or group, and forgetting what the
//!   broker kept for it in memory.

mod delete;
mod lag;
mod poll;
mod pull;
mod query;
mod renew;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_model::{GroupName, TopicName, now_ms};
use tern_store::Store;

pub use lag::{QueueLag, TopicLag};
pub use poll::{
    DEADLINE_MARGIN, DEFAULT_INVISIBLE, MAX_LONG_POLLING, MIN_LONG_POLLING, polling_time,
    pull_polling_time,
};
pub use pull::{OffsetPolicy, Pull, Pulled};
pub use query::{DEFAULT_MAX_MESSAGES, MAX_MESSAGES, Query};
pub use renew::{Renewals, StreamGuard};

use crate::closing::Closing;
use crate::error::{BrokerError, Result};
use crate::filter::Filter;
use crate::meta::{GroupConfig, Registry};
use crate::metrics::Metrics;
use crate::pop::{Delivery, Pop};
use crate::task::blocking;
use crate::wake::{Wakers, wait_turn};

/// Most messages one receive returns.
const MAX_BATCH: usize = 1024;

/// A receive, validated at the edge.
#[derive(Debug, Clone)]
pub struct Receive {
    /// The client, for `auto_renew`.
    pub client: String,
    pub group: GroupName,
    pub topic: TopicName,
    pub filter: Filter,
    /// Messages wanted (clamped to 1..=1024).
    pub batch: usize,
    /// How long delivered messages stay invisible; `None`: the
    /// `auto_renew` period, or [`DEFAULT_INVISIBLE`].
    pub invisible_ms: Option<i64>,
    /// Keep the deliveries invisible while the client lives.
    pub auto_renew: bool,
    /// How long to wait for messages ([`polling_time`]).
    pub poll: Duration,
}

/// What a receive got: the deliveries (none if nothing arrived within
/// the polling time) and when they were made.
#[derive(Debug)]
pub struct Received {
    pub deliveries: Vec<Delivery>,
    pub at_ms: i64,
}

/// The read path of one broker. Shared behind an `Arc`.
#[derive(Debug)]
pub struct Consume {
    store: Arc<Store>,
    registry: Arc<Registry>,
    pop: Arc<Pop>,
    metrics: Arc<Metrics>,
    wakers: Arc<Wakers>,
    renewals: Arc<Renewals>,
    closing: Closing,
}

impl Consume {
    /// The read path over `pop`, woken by `wakers`, with `auto_renew`
    /// leases of `auto_renew_invisible`; long polls end when `closing`
    /// closes.
    pub fn new(
        store: Arc<Store>,
        registry: Arc<Registry>,
        pop: Arc<Pop>,
        metrics: Arc<Metrics>,
        wakers: Arc<Wakers>,
        auto_renew_invisible: Duration,
        closing: Closing,
    ) -> Self {
        let swept = Arc::clone(&wakers);
        pop.on_swept(move |topic| swept.wake(topic));
        Self {
            store,
            registry,
            pop,
            metrics,
            wakers,
            renewals: Arc::new(Renewals::new(auto_renew_invisible)),
            closing,
        }
    }

    /// The clients whose deliveries are renewed.
    pub fn renewals(&self) -> &Arc<Renewals> {
        &self.renewals
    }

    /// The group, created with the defaults if it does not exist yet (a
    /// consumer may start before its group is declared).
    async fn group(&self, name: GroupName) -> Result<GroupConfig> {
        if let Ok(g) = self.registry.group(name.as_str()) {
            return Ok(g);
        }
        let registry = Arc::clone(&self.registry);
        blocking(move || registry.ensure_group(GroupConfig::with_defaults(name)?)).await
    }

    /// Receives for `r` from every queue of the topic on this broker
    /// (whichever queue the client named, as the reference proxy pops
    /// with queue -1: sends are spread over all queues, and a client
    /// polling one queue at a time must not wait on an empty one while
    /// others hold messages).
    pub async fn receive(&self, r: Receive) -> Result<Received> {
        let started = Instant::now();
        let topic = self.registry.topic(r.topic.as_str())?;
        let group = self.group(r.group).await?;
        let max = r.batch.clamp(1, MAX_BATCH);
        let invisible_ms = match r.invisible_ms {
            Some(ms) if ms > 0 => ms,
            Some(ms) => {
                return Err(BrokerError::InvisibleTime(format!(
                    "invisible duration must be positive, not {ms} ms"
                )));
            }
            None if r.auto_renew => millis(self.renewals.period()),
            None => millis(DEFAULT_INVISIBLE),
        };
        let tname = topic.name().to_string();
        let gname = group.name().to_string();
        let turn = self.wakers.group(&tname, &gname);
        loop {
            // Deleted while this receive waited: nothing of it may be made
            // again (deletion forgot its state and woke this receive).
            self.still_there(&tname, Some(&gname))?;
            let woken = turn.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // On the runtime: a look is memory and page-cache reads; the
            // one store write a receive can cause (moving messages past
            // their delivery limit to the dead-letter queue) goes to the
            // blocking pool.
            let now = now_ms();
            let (got, held) =
                self.pop
                    .receive_held(&group, &topic, None, max, invisible_ms, &r.filter, now)?;
            if let Some(held) = held {
                let pop = Arc::clone(&self.pop);
                if let Err(e) = blocking(move || pop.dead_letter_held(held)).await {
                    tracing::warn!(group = %gname, topic = %tname, error = %e,
                        "could not move messages to the dead-letter queue; will retry");
                }
                // A FIFO group's next message may now go.
                self.wakers.wake_group(&tname, &gname);
            }
            if !got.is_empty() {
                if got.len() >= max {
                    // More may be waiting: another receive of the group
                    // looks too.
                    turn.notify_one();
                }
                if r.auto_renew {
                    self.renewals
                        .track(&r.client, got.iter().map(|d| d.receipt.clone()));
                }
                for d in &got {
                    self.metrics
                        .delivered(&gname, &tname, d.message.message.body.len());
                }
                return Ok(Received {
                    deliveries: got,
                    at_ms: now,
                });
            }
            let expiry = self.pop.next_expiry(&gname, &tname);
            let mut left = r.poll.saturating_sub(started.elapsed());
            // An in-flight message becoming visible again also ends the
            // wait. (At least 100 ms: a FIFO queue may hold an expired
            // message back behind an earlier one.)
            if let Some(at) = expiry {
                let ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                left = left.min(Duration::from_millis(ms.max(100)));
            }
            if left.is_zero() || !wait_turn(woken, left, &self.closing).await {
                return Ok(Received {
                    deliveries: Vec::new(),
                    at_ms: now_ms(),
                });
            }
        }
    }

    /// [`BrokerError::TopicNotFound`] or [`BrokerError::GroupNotFound`]
    /// if `topic` or `group` was deleted.
    fn still_there(&self, topic: &str, group: Option<&str>) -> Result<()> {
        if !self.registry.has_topic(topic) {
            return Err(BrokerError::TopicNotFound(topic.to_owned()));
        }
        match group {
            Some(g) if !self.registry.has_group(g) => Err(BrokerError::GroupNotFound(g.to_owned())),
            _ => Ok(()),
        }
    }

    /// Acknowledges `handles` for `group` and `topic`: one result each.
    pub async fn ack(
        &self,
        group: &GroupName,
        topic: &TopicName,
        handles: Vec<String>,
    ) -> Vec<Result<()>> {
        // In memory: the POP journal is written and fsynced by its own
        // thread.
        let results = handles
            .iter()
            .map(|h| {
                self.pop
                    .check_owner(h, group.as_str(), topic.as_str())
                    .and_then(|()| self.pop.ack(h))
            })
            .collect();
        // An ack may let a FIFO group's next message go.
        if self.registry.group(group.as_str()).is_ok_and(|g| g.fifo()) {
            self.wakers.wake_group(topic.as_str(), group.as_str());
        }
        results
    }

    /// Makes the delivery `handle` names invisible for `ms` from now;
    /// returns its new handle.
    pub async fn change_invisible(
        &self,
        group: &GroupName,
        topic: &TopicName,
        handle: String,
        ms: i64,
    ) -> Result<String> {
        if ms <= 0 {
            return Err(BrokerError::InvisibleTime(
                "invisible duration must be positive".into(),
            ));
        }
        // In memory, as an ack.
        self.pop
            .check_owner(&handle, group.as_str(), topic.as_str())?;
        self.pop.change_invisible(&handle, ms, now_ms())
    }

    /// Moves the delivery `handle` names to the group's dead-letter topic.
    pub async fn forward_to_dlq(
        &self,
        group: &GroupName,
        topic: &TopicName,
        handle: String,
    ) -> Result<()> {
        let pop = Arc::clone(&self.pop);
        let (g, t) = (group.to_string(), topic.to_string());
        blocking(move || {
            pop.check_owner(&handle, &g, &t)?;
            pop.forward_to_dlq(&handle, now_ms())
        })
        .await?;
        // A FIFO group's next message may now be due.
        self.wakers.wake_group(topic.as_str(), group.as_str());
        Ok(())
    }

    /// Renews the deliveries of live `auto_renew` clients until `closing`
    /// closes; spawn it next to the server.
    pub async fn run_renewals(self: Arc<Self>) {
        let every = self.renewals.interval();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.closing.closed() => return,
            }
            let this = Arc::clone(&self);
            let _ = blocking(move || {
                this.renewals.renew_once(&this.pop, now_ms());
                Ok(())
            })
            .await;
        }
    }
}

/// A duration in ms as the POP API takes it.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(60_000)
}
