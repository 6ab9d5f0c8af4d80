//! Delayed messages at the edge: SendMessage parks them with the timer;
//! RecallMessage cancels one before it is due.

use tern_model::Message;
use tern_protocol::v2::{RecallMessageRequest, RecallMessageResponse, SendResultEntry};

use super::Messaging;
use super::convert::topic_name;
use super::send::{Claimed, answer};
use super::status::{Client, ok};
use crate::dedup::{Claim, Outcome, ParkKind, ParkedAt};
use crate::error::BrokerError;

impl Messaging {
    /// Parks delayed messages (`(slot, message, claim)`, each due in the
    /// future) until their time; each entry gets its park offset and the
    /// recall handle. Answered once stored, under the flush policy; the
    /// claims are completed when the park has them (even if the client
    /// gave up before).
    pub(super) async fn send_delayed(
        &self,
        c: &Client,
        msgs: Vec<Claimed>,
        entries: &mut [SendResultEntry],
    ) {
        let sh = &self.shared;
        let (slots, msgs, claims) = unzip_claimed(msgs);
        let result = match self.admit() {
            Ok(pending) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                sh.timer.schedule(msgs, move |r| {
                    if let Ok(offsets) = &r {
                        complete_parked(claims, offsets, ParkKind::Timer);
                    }
                    drop(pending);
                    let _ = tx.send(r);
                });
                rx.await
                    .unwrap_or_else(|_| Err(BrokerError::Failed("timer went away".into())))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(offsets) => {
                for (slot, offset) in slots.into_iter().zip(offsets) {
                    let parked = ParkedAt {
                        park: ParkKind::Timer,
                        offset,
                    };
                    answer(&mut entries[slot], Outcome::Parked(parked));
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

    /// RecallMessage: cancels a delayed message that is not yet due.
    pub(super) async fn recall_delayed(
        &self,
        c: &Client,
        req: RecallMessageRequest,
    ) -> RecallMessageResponse {
        let refused = |status| RecallMessageResponse {
            status: Some(status),
            message_id: String::new(),
        };
        let topic = match topic_name(c, req.topic.as_ref()) {
            Ok(t) => t,
            Err(s) => return refused(s),
        };
        if let Err(e) = self.shared.registry.topic(topic.as_str()) {
            return refused(c.error(&e));
        }
        let timer = std::sync::Arc::clone(&self.shared.timer);
        let handle = req.recall_handle;
        match super::blocking(move || timer.recall(&topic, &handle)).await {
            Ok(message_id) => RecallMessageResponse {
                status: Some(ok()),
                message_id,
            },
            Err(e) => refused(c.error(&e)),
        }
    }
}

/// The slots, messages and claims of messages to park.
pub(super) fn unzip_claimed(msgs: Vec<Claimed>) -> (Vec<usize>, Vec<Message>, Vec<Option<Claim>>) {
    let mut slots = Vec::with_capacity(msgs.len());
    let mut messages = Vec::with_capacity(msgs.len());
    let mut claims = Vec::with_capacity(msgs.len());
    for (slot, m, claim) in msgs {
        slots.push(slot);
        messages.push(m);
        claims.push(claim);
    }
    (slots, messages, claims)
}

/// Completes the claims of messages parked in `park` at `offsets`.
pub(super) fn complete_parked(claims: Vec<Option<Claim>>, offsets: &[u64], park: ParkKind) {
    for (claim, &offset) in claims.into_iter().zip(offsets) {
        if let Some(claim) = claim {
            claim.parked(ParkedAt { park, offset });
        }
    }
}
