//! SendMessage: validation at the edge, one store batch per request.

use std::collections::HashMap;

use tern_protocol::v2::{Code, SendMessageRequest, SendMessageResponse, SendResultEntry};

use super::Messaging;
use super::convert::message_in;
use super::status::{Client, ok, overall};
use crate::error::BrokerError;
use crate::meta::{MessageType, TopicConfig};

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
        let mut batch = Vec::new();
        let mut topics: HashMap<String, Result<TopicConfig, BrokerError>> = HashMap::new();
        for m in req.messages {
            let id = m
                .system_properties
                .as_ref()
                .map(|s| s.message_id.clone())
                .unwrap_or_default();
            let checked = message_in(c, m, sh.cfg.max_body_bytes).and_then(|msg| {
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
                if !topic.message_type().accepts(MessageType::Normal) {
                    return Err(c.status(
                        Code::MessagePropertyConflictWithType,
                        format!("topic {} does not accept NORMAL messages", msg.topic),
                    ));
                }
                if msg.queue_id >= topic.queues() {
                    return Err(c.status(
                        Code::BadRequest,
                        format!("topic {} has no queue {}", msg.topic, msg.queue_id),
                    ));
                }
                Ok(msg)
            });
            let status = match checked {
                Ok(msg) => {
                    batch.push((entries.len(), msg));
                    ok()
                }
                Err(s) => s,
            };
            entries.push(SendResultEntry {
                status: Some(status),
                message_id: id,
                ..Default::default()
            });
        }
        if !batch.is_empty() {
            let (slots, msgs): (Vec<usize>, Vec<_>) = batch.into_iter().unzip();
            let (tx, rx) = tokio::sync::oneshot::channel();
            sh.store.append_then(&msgs, move |r| {
                let _ = tx.send(r);
            });
            let result = rx.await.unwrap_or(Err(tern_store::StoreError::Closed));
            match result {
                Ok(appended) => {
                    for (slot, a) in slots.into_iter().zip(appended) {
                        entries[slot].offset = i64::try_from(a.queue_offset).unwrap_or(i64::MAX);
                    }
                }
                Err(e) => {
                    let s = c.error(&BrokerError::from(e));
                    for slot in slots {
                        entries[slot].status = Some(s.clone());
                    }
                }
            }
        }
        SendMessageResponse {
            status: Some(overall(entries.iter().filter_map(|e| e.status.as_ref()))),
            entries,
        }
    }
}
