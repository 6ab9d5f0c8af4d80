//! The receiving side: --receivers loops, each receiving up to
//! --receive-batch messages with long polling and acknowledging them in
//! one AckMessage call before receiving again. A ReceiveMessage names one
//! topic, so with several topics a loop takes its share of them in turn,
//! one receive each, as the official simple consumers do.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tern_client::{GroupName, TopicName};
use tern_protocol::settings::duration;
use tern_protocol::v2 as pb;

use super::plan::Shared;
use super::stats::{Failure, Op, Tally};
use super::topics::ReceiveTarget;
use super::wire::{Client, Ident, SENT_AT, resource};

/// Brokers hold a receive at least this long when nothing arrives (Tern
/// and Apache's proxy clamp long polling to 5..=20 s).
const MIN_BROKER_POLLING: Duration = Duration::from_secs(5);
const MAX_BROKER_POLLING: Duration = Duration::from_secs(20);

/// Pause after a failed receive, so a broker that refuses every call is
/// not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What every receive of a run asks for.
#[derive(Debug)]
pub(super) struct ReceiveSpec {
    pub group: GroupName,
    /// The run's topics; a [`ReceiveTarget`] names one by its index.
    pub topics: Vec<TopicName>,
    pub batch: u32,
    pub invisible: Duration,
    pub long_polling: Duration,
    pub timeout: Duration,
    /// e2e: count only messages this run sent in its measured window
    /// (by their [`SENT_AT`] stamp); otherwise every message received in
    /// the window counts.
    pub e2e: bool,
    /// consume: stop the run once this many measured messages arrived.
    pub count: Option<u64>,
}

impl ReceiveSpec {
    fn request(&self, topic: usize, broker: &str) -> pb::ReceiveMessageRequest {
        pb::ReceiveMessageRequest {
            group: Some(resource(self.group.as_str())),
            message_queue: Some(pb::MessageQueue {
                topic: Some(resource(self.topics[topic].as_str())),
                id: -1,
                permission: pb::Permission::Read as i32,
                broker: Some(pb::Broker {
                    name: broker.to_owned(),
                    id: 0,
                    endpoints: None,
                }),
                accept_message_types: Vec::new(),
            }),
            filter_expression: Some(pb::FilterExpression {
                r#type: pb::FilterType::Tag as i32,
                expression: "*".to_owned(),
            }),
            batch_size: i32::try_from(self.batch).unwrap_or(32),
            invisible_duration: Some(duration(self.invisible)),
            auto_renew: false,
            long_polling_timeout: Some(duration(self.long_polling)),
            attempt_id: None,
        }
    }

    /// The deadline of a receive: the longest the broker may hold it,
    /// plus the call time.
    fn deadline(&self) -> Duration {
        self.long_polling
            .clamp(MIN_BROKER_POLLING, MAX_BROKER_POLLING)
            + self.timeout
    }
}

/// One receive loop until the run stops: it receives from each of
/// `sources` (a topic on a broker, and a connection to that broker) in
/// turn, one receive each.
pub(super) async fn receive_loop(
    sources: Vec<(Ident, ReceiveTarget)>,
    spec: Arc<ReceiveSpec>,
    shared: Arc<Shared>,
) -> Tally {
    let mut tally = Tally::new();
    let mut stop = shared.stop_signal();
    let sources: Vec<(Ident, usize, pb::ReceiveMessageRequest)> = sources
        .into_iter()
        .map(|(ident, t)| {
            let request = spec.request(t.topic, &t.read.broker);
            (ident, t.topic, request)
        })
        .collect();
    let mut turn = 0usize;
    let deadline = spec.deadline();
    let plan = &shared.plan;
    let window_start_us = plan.wall_us(plan.window_start);
    let end_us = plan.end.map(|e| plan.wall_us(e));
    loop {
        if *stop.borrow() || sources.is_empty() {
            break;
        }
        let (ident, topic, template) = &sources[turn % sources.len()];
        turn = turn.wrapping_add(1);
        let call = receive(
            ident.client.clone(),
            ident.meta.request(template.clone(), Some(deadline)),
        );
        let outcome = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = call => r,
        };
        let now = Instant::now();
        let in_window = now >= plan.window_start;
        let messages = match outcome {
            Ok(m) => m,
            Err(f) => {
                tally.error(in_window, Op::Receive, f, 1);
                shared.live.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        if messages.is_empty() {
            if in_window {
                tally.empty_receives += 1;
            }
            continue;
        }
        let now_us = plan.wall_us(now);
        let mut counted = 0u64;
        let mut entries = Vec::with_capacity(messages.len());
        for m in messages {
            let stamp = m
                .user_properties
                .get(SENT_AT)
                .and_then(|v| v.parse::<u64>().ok());
            let measured = if spec.e2e {
                match stamp {
                    Some(s) if s >= plan.wall0_us => {
                        s >= window_start_us && end_us.is_none_or(|e| s < e)
                    }
                    _ => {
                        tally.stale += 1;
                        false
                    }
                }
            } else {
                in_window
            };
            if measured {
                counted += 1;
                tally.bytes += m.body.len() as u64;
                if let Some(s) = stamp {
                    tally.e2e.saturating_record(now_us.saturating_sub(s).max(1));
                }
            }
            if let Some(sp) = m.system_properties {
                entries.push(pb::AckMessageEntry {
                    message_id: sp.message_id,
                    receipt_handle: sp.receipt_handle.unwrap_or_default(),
                    lite_topic: None,
                });
            }
        }
        shared
            .live
            .received
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        if counted > 0 {
            tally.messages += counted;
            tally.done_at(now);
            let total = shared
                .received_measured
                .fetch_add(counted, Ordering::Relaxed)
                + counted;
            if spec.count.is_some_and(|c| total >= c) {
                shared.stop();
            }
        }
        let failed = ack(ident, &spec, &spec.topics[*topic], entries).await;
        for (f, n) in failed {
            tally.error(in_window, Op::Ack, f, n);
            shared.live.errors.fetch_add(n, Ordering::Relaxed);
        }
    }
    tally
}

/// One ReceiveMessage call: its messages (none when the broker had
/// nothing), or the failure.
async fn receive(
    mut client: Client,
    request: tonic::Request<pb::ReceiveMessageRequest>,
) -> Result<Vec<pb::Message>, Failure> {
    use pb::receive_message_response::Content;
    let mut stream = client
        .receive_message(request)
        .await
        .map_err(|s| Failure::grpc(&s))?
        .into_inner();
    let mut messages = Vec::new();
    let mut failure = None;
    while let Some(item) = stream.message().await.map_err(|s| Failure::grpc(&s))? {
        match item.content {
            Some(Content::Message(m)) => messages.push(m),
            Some(Content::Status(s))
                if s.code != pb::Code::Ok as i32 && s.code != pb::Code::MessageNotFound as i32 =>
            {
                failure = Some(Failure::Status(s.code));
            }
            Some(Content::Status(_) | Content::DeliveryTimestamp(_)) | None => {}
        }
    }
    match failure {
        Some(f) if messages.is_empty() => Err(f),
        _ => Ok(messages),
    }
}

/// Acknowledges `entries` in one call; the failures with their counts.
async fn ack(
    ident: &Ident,
    spec: &ReceiveSpec,
    topic: &TopicName,
    entries: Vec<pb::AckMessageEntry>,
) -> Vec<(Failure, u64)> {
    let n = entries.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let req = pb::AckMessageRequest {
        group: Some(resource(spec.group.as_str())),
        topic: Some(resource(topic.as_str())),
        entries,
    };
    let resp = match ident
        .client
        .clone()
        .ack_message(ident.meta.request(req, Some(spec.timeout)))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return vec![(Failure::grpc(&s), n)],
    };
    let mut failed: Vec<(Failure, u64)> = Vec::new();
    let mut add = |f: Failure| match failed.iter_mut().find(|(g, _)| *g == f) {
        Some((_, k)) => *k += 1,
        None => failed.push((f, 1)),
    };
    if resp.entries.is_empty()
        && let Some(s) = resp.status.filter(|s| s.code != pb::Code::Ok as i32)
    {
        return vec![(Failure::Status(s.code), n)];
    }
    for e in &resp.entries {
        if let Some(s) = e.status.as_ref().filter(|s| s.code != pb::Code::Ok as i32) {
            add(Failure::Status(s.code));
        }
    }
    failed
}
