//! Transactional messages at the edge: half messages parked by
//! SendMessage, EndTransaction, and the checker that asks live producers
//! about unresolved half messages and ends the ones nobody resolves (see
//! [`crate::txn`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tern_protocol::v2::telemetry_command::Command;
use tern_protocol::v2::{
    self, Code, EndTransactionRequest, RecoverOrphanedTransactionCommand, SendResultEntry, Status,
    TelemetryCommand, TransactionResolution, TransactionSource,
};

use super::convert::{now_ms, stored_message_out, topic_name};
use super::delay::{complete_parked, unzip_claimed};
use super::send::{Claimed, answer};
use super::status::{Client, ok};
use super::{Messaging, blocking};
use crate::dedup::{Outcome, ParkKind, ParkedAt};
use crate::error::BrokerError;
use crate::park::Parked;
use crate::txn::{Due, Pending, Resolution, Transactions, parse_transaction_id, transaction_id};

/// Most due items handled in one round of the checker.
const ROUND: usize = 256;

impl Messaging {
    pub(super) fn transactions(&self) -> Option<Arc<Transactions>> {
        self.shared.cfg.transactions.clone()
    }

    /// Parks the half messages `msgs` (validated, each with the slot of
    /// its entry and the claim on its id) and fills their entries: the
    /// park offset as the offset and the transaction id, or the status
    /// that refused them. The claims are completed when the park has the
    /// messages (even if the client gave up before).
    pub(super) async fn send_half(
        &self,
        c: &Client,
        msgs: Vec<Claimed>,
        entries: &mut [SendResultEntry],
    ) {
        let Some(txn) = self.transactions() else {
            // `send` refuses half messages first on such a broker.
            let s = c.status(
                Code::Unsupported,
                "transaction messages are not enabled on this broker",
            );
            for (slot, _, _) in msgs {
                entries[slot].status = Some(s.clone());
            }
            return;
        };
        let (slots, msgs, claims) = unzip_claimed(msgs);
        let (tx, rx) = tokio::sync::oneshot::channel();
        txn.park(msgs, move |r| {
            if let Ok(offsets) = &r {
                complete_parked(claims, offsets, ParkKind::Half);
            }
            let _ = tx.send(r);
        });
        let parked = rx.await.unwrap_or_else(|_| {
            Err(BrokerError::Failed(
                "the half message store went away".into(),
            ))
        });
        match parked {
            Ok(offsets) => {
                for (slot, offset) in slots.into_iter().zip(offsets) {
                    let e = &mut entries[slot];
                    let parked = ParkedAt {
                        park: ParkKind::Half,
                        offset,
                    };
                    answer(e, Outcome::Parked(parked));
                    tracing::debug!(client = %c.id, message_id = %e.message_id,
                        transaction_id = %e.transaction_id, "half message parked");
                }
            }
            Err(e) => {
                let status = c.error(&e);
                for slot in slots {
                    entries[slot].status = Some(status.clone());
                }
            }
        }
    }

    /// EndTransaction: the transaction id must name a pending half message
    /// of the request's topic and message id; COMMIT delivers it to its
    /// topic, ROLLBACK discards it.
    pub(super) async fn end_transaction_status(
        &self,
        c: &Client,
        req: EndTransactionRequest,
    ) -> Status {
        let Some(txn) = self.transactions() else {
            return c.status(
                Code::Unsupported,
                "transaction messages are not enabled on this broker",
            );
        };
        let topic = match topic_name(c, req.topic.as_ref()) {
            Ok(t) => t,
            Err(s) => return s,
        };
        let resolution = match TransactionResolution::try_from(req.resolution) {
            Ok(TransactionResolution::Commit) => Resolution::Commit,
            Ok(TransactionResolution::Rollback) => Resolution::Rollback,
            _ => {
                return c.status(
                    Code::BadRequest,
                    format!(
                        "transaction resolution {} is neither COMMIT nor ROLLBACK",
                        req.resolution
                    ),
                );
            }
        };
        let id = &req.transaction_id;
        let Some(offset) = parse_transaction_id(id) else {
            return c.status(
                Code::InvalidTransactionId,
                format!("{id:?} is not a transaction id of this broker"),
            );
        };
        let Some(pending) = txn.pending(offset) else {
            return c.status(
                Code::NotFound,
                format!(
                    "transaction {id} is not pending: it was committed, rolled back or resolved by default already"
                ),
            );
        };
        if pending.topic != topic.as_str() || pending.message_id != req.message_id {
            return c.status(
                Code::InvalidTransactionId,
                format!(
                    "transaction {id} is message {} of topic {}, not message {} of topic {topic}",
                    pending.message_id, pending.topic, req.message_id
                ),
            );
        }
        // Whoever takes it from the schedule ends it: the checker's
        // default resolution cannot end it at the same time.
        let Some(pending) = txn.take(offset) else {
            return c.status(
                Code::NotFound,
                format!("transaction {id} was ended at the same time by another request"),
            );
        };
        let source = TransactionSource::try_from(req.source).unwrap_or_default();
        match self.end_half(&txn, offset, pending, resolution).await {
            Ok(true) => {
                tracing::debug!(client = %c.id, transaction_id = %id, resolution = resolution.as_str(),
                    source = source.as_str_name(), "transaction ended");
                ok()
            }
            Ok(false) => c.status(
                Code::NotFound,
                format!("transaction {id} is not pending: it has ended already"),
            ),
            Err(e) => c.error(&e),
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
    ) -> crate::Result<bool> {
        let sh = Arc::clone(&self.shared);
        let t = Arc::clone(txn);
        let ended = blocking(move || {
            let release = match resolution {
                Resolution::Rollback => None,
                Resolution::Commit => {
                    let Some(parked) = t.get(offset)? else {
                        return Ok(false);
                    };
                    let mut m = parked.message;
                    match sh.registry.topic(m.topic.as_str()) {
                        Ok(topic) => {
                            let queues = topic.queues().max(1);
                            let turn = sh.next_queue.fetch_add(1, Ordering::Relaxed);
                            m.queue_id = u32::try_from(turn % queues as usize).unwrap_or(0);
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

    /// Checks unresolved half messages as they fall due, until
    /// [`Messaging::close_streams`]; spawn it next to the server. Does
    /// nothing on a broker without transactions.
    pub async fn run_transaction_checks(self) {
        let Some(txn) = self.transactions() else {
            return;
        };
        let cfg = txn.config();
        let tick = (cfg.first_check.min(cfg.check_interval) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = self.closed() => return,
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
                                .await
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
        let Some(producer) = self.shared.producers.pick(&pending.topic, turn) else {
            tracing::debug!(topic = %pending.topic, message_id = %pending.message_id, check = checks,
                "no live producer of the topic to check a half message with");
            return;
        };
        let cmd = TelemetryCommand {
            status: Some(ok()),
            command: Some(Command::RecoverOrphanedTransactionCommand(
                RecoverOrphanedTransactionCommand {
                    message: Some(check_message(parked)),
                    transaction_id: transaction_id(offset),
                },
            )),
        };
        match producer.push.try_send(cmd) {
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

/// The half message as a check shows it to the producer: its real topic,
/// user properties and system properties, as a delivery would (its queue
/// offset is its place in the park).
fn check_message(p: Parked) -> v2::Message {
    stored_message_out(p.message, p.store_timestamp_ms, p.offset)
}
