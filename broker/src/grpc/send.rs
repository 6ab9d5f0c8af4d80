//! SendMessage and RecallMessage: protobuf in, [`crate::produce`], send
//! results out.

use tern_protocol::v2::{
    Code, RecallMessageRequest, RecallMessageResponse, SendMessageRequest, SendMessageResponse,
    SendResultEntry,
};

use super::Messaging;
use super::convert::{Limits, message_in, topic_name};
use super::status::{Client, ok, overall};
use crate::produce::Sent;

impl Messaging {
    /// Sends every valid message of `req` through the send path; invalid
    /// ones get their own status.
    pub(super) async fn send(&self, c: &Client, req: SendMessageRequest) -> SendMessageResponse {
        if req.messages.is_empty() {
            return SendMessageResponse {
                status: Some(c.status(Code::BadRequest, "no message to send")),
                entries: Vec::new(),
            };
        }
        let produce = &self.shared.produce;
        let limits = Limits {
            max_body: self.shared.cfg.max_body_bytes,
            max_delay_ms: produce.max_delay_ms(),
        };
        let mut entries = Vec::with_capacity(req.messages.len());
        let (mut slots, mut valid) = (Vec::new(), Vec::new());
        for m in req.messages {
            let message_id = m
                .system_properties
                .as_ref()
                .map(|s| s.message_id.clone())
                .unwrap_or_default();
            let status = match message_in(c, m, limits) {
                Ok(msg) => {
                    slots.push(entries.len());
                    valid.push(msg);
                    ok()
                }
                Err(s) => s,
            };
            entries.push(SendResultEntry {
                status: Some(status),
                message_id,
                ..Default::default()
            });
        }
        let results = produce.send(&c.id, valid).await;
        for (slot, result) in slots.into_iter().zip(results) {
            let e = &mut entries[slot];
            match result {
                Ok(sent) => {
                    e.offset = i64::try_from(sent.offset()).unwrap_or(i64::MAX);
                    match sent {
                        Sent::Stored { .. } => {}
                        Sent::Delayed { recall_handle, .. } => e.recall_handle = recall_handle,
                        Sent::Half { transaction_id, .. } => {
                            tracing::debug!(client = %c.id, message_id = %e.message_id,
                                %transaction_id, "half message parked");
                            e.transaction_id = transaction_id;
                        }
                    }
                }
                Err(err) => e.status = Some(c.error(&err)),
            }
        }
        SendMessageResponse {
            status: Some(overall(entries.iter().filter_map(|e| e.status.as_ref()))),
            entries,
        }
    }

    /// RecallMessage: cancels a delayed message that is not yet due.
    pub(super) async fn recall(
        &self,
        c: &Client,
        req: RecallMessageRequest,
    ) -> RecallMessageResponse {
        let recalled = match topic_name(c, req.topic.as_ref()) {
            Ok(topic) => self
                .shared
                .produce
                .recall(topic, req.recall_handle)
                .await
                .map_err(|e| c.error(&e)),
            Err(s) => Err(s),
        };
        match recalled {
            Ok(message_id) => RecallMessageResponse {
                status: Some(ok()),
                message_id,
            },
            Err(status) => RecallMessageResponse {
                status: Some(status),
                message_id: String::new(),
            },
        }
    }
}
