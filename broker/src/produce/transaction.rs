//! Ending transactions: EndTransaction from a producer, and the checker
//! that asks live producers about unresolved half messages and ends the
//! ones nobody resolves by the default resolution (see [`crate::txn`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tern_model::{TopicName, now_ms};

use super::Produce;
use super::route::{pick_queue, transactions_off};
use crate::closing::Closing;
use crate::error::{BrokerError, Result};
use crate::task::blocking;
use crate::txn::{
    Check, Due, Pending, Resolution, Transactions, parse_transaction_id, transaction_id,
};

/// Most due items handled in one round of the checker.
const ROUND: usize = 256;

impl Produce {
    fn txn(&self) -> Result<&Arc<Transactions>> {
        self.transactions.as_ref().ok_or_else(transactions_off)
    }

    /// Ends the transaction `id`, which must name a pending half message
    /// of `topic` with `message_id`: COMMIT delivers it to its topic,
    /// ROLLBACK discards it.
    pub async fn end_transaction(
        &self,
        topic: &TopicName,
        message_id: &str,
        id: &str,
        resolution: Resolution,
    ) -> Result<()> {
        let txn = self.txn()?;
        let Some(offset) = parse_transaction_id(id) else {
            return Err(BrokerError::InvalidTransactionId(format!(
                "{id:?} is not a transaction id of this broker"
            )));
        };
        let Some(pending) = txn.pending(offset) else {
            return Err(BrokerError::TransactionEnded(format!(
                "transaction {id} is not pending: it was committed, rolled back or resolved by default already"
            )));
        };
        if pending.topic != topic.as_str() || pending.message_id != message_id {
            return Err(BrokerError::InvalidTransactionId(format!(
                "transaction {id} is message {} of topic {}, not message {message_id} of topic {topic}",
                pending.message_id, pending.topic
            )));
        }
        // Whoever takes it from the schedule ends it: the checker's
        // default resolution cannot end it at the same time.
        let Some(pending) = txn.take(offset) else {
            return Err(BrokerError::TransactionEnded(format!(
                "transaction {id} was ended at the same time by another request"
            )));
        };
        if self.end_half(txn, offset, pending, resolution).await? {
            Ok(())
        } else {
            Err(BrokerError::TransactionEnded(format!(
                "transaction {id} is not pending: it has ended already"
            )))
        }
    }

    /// Ends the half message at `offset`, taken from the schedule: commit
    /// writes it to the next queue of its topic (or drops it, with a
    /// warning, if the topic was deleted), rollback discards it. If that
    /// fails, it goes back to the schedule. `Ok(false)`: it had ended
    /// already.
    async fn end_half(
        &self,
        txn: &Arc<Transactions>,
        offset: u64,
        pending: Pending,
        resolution: Resolution,
    ) -> Result<bool> {
        let t = Arc::clone(txn);
        let registry = Arc::clone(&self.registry);
        let turn = self.next_queue.fetch_add(1, Ordering::Relaxed);
        let ended = blocking(move || {
            let release = match resolution {
                Resolution::Rollback => None,
                Resolution::Commit => {
                    let Some(parked) = t.get(offset)? else {
                        return Ok(false);
                    };
                    let mut m = parked.message;
                    match registry.topic(m.topic.as_str()) {
                        Ok(topic) => {
                            m.queue_id = pick_queue(turn, topic.queues());
                            Some(m)
                        }
                        // Nowhere to deliver it, now or later: ended like
                        // a delayed message whose topic went away.
                        Err(BrokerError::TopicNotFound(_)) => {
                            tracing::warn!(topic = %m.topic, message_id = %m.message_id,
                                transaction_id = %transaction_id(offset),
                                "committed transaction's topic no longer exists; its message is dropped");
                            None
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            t.end(offset, release)
        })
        .await;
        if ended.is_err() {
            txn.restore(offset, pending, now_ms());
        }
        ended
    }

    /// Checks unresolved half messages as they fall due, until `closing`
    /// closes; spawn it next to the server. Does nothing on a broker
    /// without transactions.
    pub async fn run_transaction_checks(self: Arc<Self>, closing: Closing) {
        let Ok(txn) = self.txn().cloned() else {
            return;
        };
        let cfg = txn.config();
        let tick = (cfg.first_check.min(cfg.check_interval) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = closing.closed() => return,
            }
            loop {
                let due = txn.due(now_ms(), ROUND);
                if due.is_empty() {
                    break;
                }
                for d in due {
                    match d {
                        Due::Check { offset, pending } => self.check(&txn, offset, pending).await,
                        Due::Resolve {
                            offset,
                            pending,
                            resolution,
                        } => {
                            self.resolve_by_default(&txn, offset, pending, resolution)
                                .await;
                        }
                    }
                }
            }
        }
    }

    /// One check: counts it durably, then asks a live producer of the
    /// topic (taking turns between checks) to resolve the half message.
    async fn check(&self, txn: &Arc<Transactions>, offset: u64, pending: Pending) {
        let t = Arc::clone(txn);
        let checks = pending.checks;
        let parked = blocking(move || {
            t.note_check(offset, checks)?;
            t.get(offset)
        })
        .await;
        let parked = match parked {
            Ok(Some(p)) => p,
            Ok(None) => {
                // Ended meanwhile (by a request that took it first).
                let _ = txn.take(offset);
                return;
            }
            Err(e) => {
                tracing::warn!(offset, topic = %pending.topic, error = %e,
                    "cannot read a half message to check it");
                return;
            }
        };
        let turn = usize::try_from(checks.saturating_sub(1)).unwrap_or(0);
        let Some(producer) = self.producers.pick(&pending.topic, turn) else {
            tracing::debug!(topic = %pending.topic, message_id = %pending.message_id, check = checks,
                "no live producer of the topic to check a half message with");
            return;
        };
        let check = Check {
            transaction_id: transaction_id(offset),
            parked,
        };
        match producer.push.try_send(check) {
            Ok(()) => {
                txn.check_sent();
                tracing::debug!(client = %producer.client, topic = %pending.topic,
                    message_id = %pending.message_id, check = checks, "asked a producer to resolve a half message");
            }
            Err(e) => tracing::debug!(client = %producer.client, error = %e,
                "could not push a transaction check; the next one follows"),
        }
    }

    /// Ends a half message whose checks are used up by the default
    /// resolution; logged (warn) and counted.
    async fn resolve_by_default(
        &self,
        txn: &Arc<Transactions>,
        offset: u64,
        pending: Pending,
        resolution: Resolution,
    ) {
        let (topic, id, checks) = (
            pending.topic.clone(),
            pending.message_id.clone(),
            pending.checks,
        );
        match self.end_half(txn, offset, pending, resolution).await {
            Ok(true) => {
                txn.defaulted();
                tracing::warn!(%topic, message_id = %id, transaction_id = %transaction_id(offset), checks,
                    resolution = resolution.as_str(),
                    "transaction unresolved after its last check; ended by the default resolution");
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(%topic, message_id = %id, error = %e,
                "cannot end an unresolved transaction by default; trying again later"),
        }
    }
}
