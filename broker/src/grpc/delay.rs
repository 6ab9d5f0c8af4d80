//! Delayed messages at the edge: SendMessage parks them with the timer;
//! RecallMessage cancels one before it is due.

use tern_model::Message;
use tern_protocol::v2::{RecallMessageRequest, RecallMessageResponse, SendResultEntry};

use super::Messaging;
use super::convert::topic_name;
use super::status::{Client, ok};
use crate::error::BrokerError;
use crate::timer::recall_handle;

impl Messaging {
    /// Parks delayed messages (`(slot, message)`, each due in the future)
    /// until their time; each entry gets its park offset and the recall
    /// handle. Answered once stored, under the flush policy.
    pub(super) async fn send_delayed(
        &self,
        c: &Client,
        msgs: Vec<(usize, Message)>,
        entries: &mut [SendResultEntry],
    ) {
        let sh = &self.shared;
        let (slots, msgs): (Vec<usize>, Vec<Message>) = msgs.into_iter().unzip();
        let ids: Vec<String> = msgs.iter().map(|m| m.message_id.clone()).collect();
        let result = match self.admit() {
            Ok(pending) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                sh.timer.schedule(msgs, move |r| {
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
                for ((slot, offset), id) in slots.into_iter().zip(offsets).zip(ids) {
                    entries[slot].offset = i64::try_from(offset).unwrap_or(i64::MAX);
                    entries[slot].recall_handle = recall_handle(offset, &id);
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
