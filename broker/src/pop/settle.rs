//! Settling deliveries: acknowledge, change invisibility, dead-letter.

use std::sync::Arc;

use tern_model::Message;
use tern_store::StoreError;

use super::receive::DeadLetter;
use super::state::Lease;
use super::{DLQ_HOLD_MS, Inner, Pop, QueueRef, Sub, dlq};
use crate::error::{BrokerError, Result};
use crate::meta::{MessageType, Permission, TopicConfig, dlq_topic_name};
use crate::receipt::{Receipt, ReceiptError};

impl Pop {
    /// Checks that `receipt` was issued to `group` for `topic`, so one
    /// group cannot settle another group's deliveries.
    /// [`BrokerError::InvalidReceiptHandle`] if the handle is malformed,
    /// forged or issued to someone else.
    pub fn check_owner(&self, receipt: &str, group: &str, topic: &str) -> Result<()> {
        let r = self.inner.codec.decode(receipt)?;
        if r.group.as_str() != group || r.topic.as_str() != topic {
            return Err(ReceiptError::NotOwner {
                group: r.group.to_string(),
                topic: r.topic.to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Acknowledges the delivery `receipt` names: the message is done for
    /// its group. [`BrokerError::InvalidReceiptHandle`] if the handle is
    /// malformed or forged, or stale: the message was acknowledged,
    /// redelivered or its invisibility changed since it was issued.
    pub fn ack(&self, receipt: &str) -> Result<()> {
        let inner = &self.inner;
        inner.journal.check()?;
        let (r, sub, q) = inner.locate(receipt)?;
        let mut st = q.lock();
        if st.current(r.offset, r.seq).is_none() {
            return Err(ReceiptError::Stale.into());
        }
        inner.done(&mut st, r.offset);
        inner.commit(&sub, r.queue_id, &mut st);
        Ok(())
    }

    /// Makes the delivery `receipt` names invisible until `now_ms +
    /// invisible_ms` and returns its new handle; the old one becomes
    /// stale. The attempt number does not change.
    pub fn change_invisible(
        &self,
        receipt: &str,
        invisible_ms: i64,
        now_ms: i64,
    ) -> Result<String> {
        let inner = &self.inner;
        inner.journal.check()?;
        if invisible_ms <= 0 {
            return Err(BrokerError::Invalid(format!(
                "invisible duration must be positive, not {invisible_ms} ms"
            )));
        }
        let (r, _sub, q) = inner.locate(receipt)?;
        let mut st = q.lock();
        let old = st.current(r.offset, r.seq).ok_or(ReceiptError::Stale)?;
        let lease = Lease {
            attempt: old.attempt,
            until: now_ms.saturating_add(invisible_ms),
            seq: inner.next_seq(),
        };
        inner.lease(&mut st, r.offset, lease);
        drop(st);
        Ok(inner.codec.encode(&Receipt {
            invisible_until_ms: lease.until,
            seq: lease.seq,
            ..r
        }))
    }

    /// Extends the invisibility of the delivery `receipt` names to
    /// `until_ms` without changing its handle or attempt: the broker's own
    /// renewal for push consumers (`auto_renew`), whose handle must stay
    /// valid for their ack. Never shortens a lease. Stale if the delivery
    /// was settled or redelivered since.
    pub fn renew(&self, receipt: &str, until_ms: i64) -> Result<()> {
        let inner = &self.inner;
        inner.journal.check()?;
        let (r, _sub, q) = inner.locate(receipt)?;
        let mut st = q.lock();
        let old = st.current(r.offset, r.seq).ok_or(ReceiptError::Stale)?;
        if old.until < until_ms {
            inner.lease(
                &mut st,
                r.offset,
                Lease {
                    until: until_ms,
                    ..old
                },
            );
        }
        Ok(())
    }

    /// Moves the message `receipt` names to its group's dead-letter topic
    /// now (the client decided it cannot be processed) and finishes it.
    pub fn forward_to_dlq(&self, receipt: &str, now_ms: i64) -> Result<()> {
        let inner = &self.inner;
        inner.journal.check()?;
        let (r, sub, q) = inner.locate(receipt)?;
        // Hold the message invisible while it is copied, so a failed copy
        // is retried by redelivery rather than lost.
        let mut st = q.lock();
        let old = st.current(r.offset, r.seq).ok_or(ReceiptError::Stale)?;
        let seq = inner.next_seq();
        let hold = Lease {
            attempt: old.attempt,
            until: now_ms.saturating_add(DLQ_HOLD_MS),
            seq,
        };
        inner.lease(&mut st, r.offset, hold);
        drop(st);
        let message = match inner.store.get(sub.topic.as_str(), r.queue_id, r.offset) {
            Ok(m) => m,
            Err(e) => {
                let mut st = q.lock();
                if st.current(r.offset, seq).is_some() {
                    return inner.unreadable(&sub, r.queue_id, &mut st, r.offset, e);
                }
                return Ok(());
            }
        };
        inner.dead_letter(
            &sub,
            vec![DeadLetter {
                queue: r.queue_id,
                offset: r.offset,
                seq,
                attempts: old.attempt,
                message,
            }],
        )
    }
}

impl Inner {
    /// Decodes a handle and finds the state of its queue. A genuine handle
    /// for a queue this broker has no state for is stale.
    fn locate(&self, handle: &str) -> Result<(Receipt, Arc<Sub>, QueueRef)> {
        let r = self.codec.decode(handle)?;
        let sub = self
            .find_sub(r.group.as_str(), r.topic.as_str())
            .ok_or(ReceiptError::Stale)?;
        let q = sub
            .queues
            .read()
            .get(&r.queue_id)
            .cloned()
            .ok_or(ReceiptError::Stale)?;
        Ok((r, sub, q))
    }

    /// Appends copies of `items` to the group's dead-letter topic
    /// (registering it, one queue, if missing), then finishes the
    /// originals whose hold is still current. If the append fails, nothing
    /// is finished: the holds expire and the messages come back.
    pub(super) fn dead_letter(&self, sub: &Sub, items: Vec<DeadLetter>) -> Result<()> {
        let name = dlq_topic_name(sub.group.as_str())?;
        let topic = self.registry.ensure_topic(TopicConfig::new(
            name,
            1,
            MessageType::Mixed,
            Permission::ReadWrite,
        )?)?;
        let copies: Vec<Message> = items
            .iter()
            .map(|d| dlq::copy(topic.name(), &d.message, d.attempts))
            .collect();
        match self.store.append(&copies) {
            Ok(_) => {}
            Err(StoreError::InvalidMessage(e)) => {
                // Cannot happen for a copy of a stored message; never
                // retry it forever either.
                tracing::error!(group = %sub.group, error = %e, "dead-letter copy refused; dropping it");
            }
            Err(e) => return Err(e.into()),
        }
        for d in &items {
            let q = self.queue(sub, d.queue);
            let mut st = q.lock();
            if st.current(d.offset, d.seq).is_some() {
                self.done(&mut st, d.offset);
                self.commit(sub, d.queue, &mut st);
            }
        }
        tracing::info!(group = %sub.group, topic = %sub.topic, count = items.len(),
            dlq = %topic.name(), "moved messages to the dead-letter queue");
        Ok(())
    }
}
