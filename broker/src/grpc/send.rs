//! SendMessage: validation at the edge, one store batch per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
        // The broker chooses the queue, as the reference proxy does: Go
        // and Python clients leave `queue_id` unset, so it cannot be
        // trusted to spread load. All messages of one request go to one
        // queue; successive requests take turns.
        let turn = sh.next_queue.fetch_add(1, Ordering::Relaxed);
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
                Ok((msg, topic.queues()))
            });
            let status = match checked {
                Ok((mut msg, queues)) => {
                    msg.queue_id = pick_queue(turn, queues);
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
            let result = match self.admit() {
                Ok(pending) => {
                    let started = Instant::now();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    // Pending until the store completes it, even if the
                    // client gives up first.
                    sh.store.append_then(&msgs, move |r| {
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
                    for (slot, a) in slots.into_iter().zip(appended) {
                        entries[slot].offset = i64::try_from(a.queue_offset).unwrap_or(i64::MAX);
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
        SendMessageResponse {
            status: Some(overall(entries.iter().filter_map(|e| e.status.as_ref()))),
            entries,
        }
    }

    /// Back-pressure: lets a send append unless the store is behind (too
    /// many bytes waiting for an fsync, or too many sends waiting for
    /// their append), in which case the send is refused at once with
    /// TOO_MANY_REQUESTS rather than queued. The guard counts the send as
    /// pending until dropped.
    fn admit(&self) -> Result<Pending, BrokerError> {
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

/// The queue a request's messages go to on its `turn` of the round robin.
fn pick_queue(turn: usize, queues: u32) -> u32 {
    let queues = usize::try_from(queues.max(1)).unwrap_or(usize::MAX);
    u32::try_from(turn % queues).unwrap_or(0)
}

/// One send counted as pending until dropped.
#[derive(Debug)]
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
