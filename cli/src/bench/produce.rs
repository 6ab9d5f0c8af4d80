//! The sending side: one driver task per connection keeps up to
//! --inflight SendMessage calls going, each carrying --batch messages
//! built from one template (the body is made once), and records what
//! came back in its own tally.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use md5::{Digest as _, Md5};
use tern_client::{MessageIdGenerator, TopicName};
use tern_protocol::v2 as pb;

use super::plan::{Claim, Shared};
use super::stats::{Failure, Op, Tally, micros};
use super::topics::SendTarget;
use super::wire::{Ident, Meta, SENT_AT, hostname, resource};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Message ids in the official clients' layout (see tern-client's
/// `MessageIdGenerator`): its first 13 bytes (version, MAC, pid, the
/// start second), then the message's number in this run as the 4-byte
/// sequence. Unique within a run of up to 2^32 messages; made without
/// formatting machinery.
#[derive(Debug, Clone)]
pub(super) struct Ids {
    prefix: String,
}

impl Ids {
    pub(super) fn new() -> Self {
        let sample = MessageIdGenerator::new().next_id();
        Self {
            prefix: sample[..26].to_owned(),
        }
    }

    pub(super) fn id(&self, n: u64) -> String {
        let mut id = String::with_capacity(34);
        id.push_str(&self.prefix);
        // The sequence field wraps, as the official layout's does.
        let seq = n as u32;
        for shift in (0..8).rev() {
            id.push(char::from(HEX[((seq >> (shift * 4)) & 0xF) as usize]));
        }
        id
    }
}

/// What every send of a run is made of.
#[derive(Debug)]
pub(super) struct SendSpec {
    /// A message with everything but its topic, id, queue and times.
    template: pb::Message,
    /// The run's topics, as messages name them.
    topics: Vec<pb::Resource>,
    ids: Ids,
    size: u64,
    pub batch: u32,
    pub inflight: usize,
    timeout: Duration,
}

impl SendSpec {
    pub(super) fn new(
        topics: &[TopicName],
        tag: &str,
        size: u32,
        batch: u32,
        inflight: u32,
        timeout: Duration,
    ) -> Self {
        let body = body(size as usize);
        let digest = Md5::digest(&body);
        let mut checksum = String::with_capacity(32);
        for b in digest {
            checksum.push(char::from(HEX[usize::from(b >> 4)]));
            checksum.push(char::from(HEX[usize::from(b & 0xF)]));
        }
        let template = pb::Message {
            topic: None,
            user_properties: HashMap::new(),
            system_properties: Some(pb::SystemProperties {
                tag: (!tag.is_empty()).then(|| tag.to_owned()),
                message_id: String::new(),
                body_digest: Some(pb::Digest {
                    r#type: pb::DigestType::Md5 as i32,
                    checksum,
                }),
                body_encoding: pb::Encoding::Identity as i32,
                message_type: pb::MessageType::Normal as i32,
                born_host: hostname(),
                ..Default::default()
            }),
            body,
        };
        Self {
            template,
            topics: topics.iter().map(|t| resource(t.as_str())).collect(),
            ids: Ids::new(),
            size: u64::from(size),
            batch,
            inflight: inflight as usize,
            timeout,
        }
    }

    /// The call for claim `c`, starting at `start`, to `to`: each
    /// message stamped with its intended send time
    /// ([`Claim::intended`]) as born timestamp and in [`SENT_AT`].
    fn request(
        &self,
        shared: &Shared,
        meta: &Meta,
        c: &Claim,
        start: Instant,
        to: SendTarget,
    ) -> tonic::Request<pb::SendMessageRequest> {
        let plan = &shared.plan;
        let mut messages = Vec::with_capacity(c.n as usize);
        for k in 0..u64::from(c.n) {
            let i = c.first + k;
            let stamp = plan.wall_us(plan.stamp_time(c.measured, c.intended(plan, k, start)));
            let mut m = self.template.clone();
            m.topic = Some(self.topics[to.topic].clone());
            if let Some(sp) = m.system_properties.as_mut() {
                sp.message_id = self.ids.id(i);
                sp.queue_id = to.queue;
                sp.born_timestamp = Some(prost_types::Timestamp {
                    seconds: i64::try_from(stamp / 1_000_000).unwrap_or(i64::MAX),
                    nanos: i32::try_from(stamp % 1_000_000 * 1000).unwrap_or(0),
                });
            }
            m.user_properties
                .insert(SENT_AT.to_owned(), stamp.to_string());
            messages.push(m);
        }
        meta.request(pb::SendMessageRequest { messages }, Some(self.timeout))
    }
}

/// A body of `size` bytes: printable, not all the same byte.
fn body(size: usize) -> Vec<u8> {
    const PATTERN: &[u8] = b"tern bench payload 0123456789 abcdefghijklmnopqrstuvwxyz\n";
    PATTERN.iter().copied().cycle().take(size).collect()
}

/// One connection's sender: keeps up to `spec.inflight` calls in flight
/// until the run hands out no more messages, then waits for the calls
/// still out. Each call goes to the next of `targets` (topic and queue),
/// round-robin, starting at `first_target`.
pub(super) async fn drive(
    ident: Ident,
    targets: Vec<SendTarget>,
    first_target: usize,
    spec: Arc<SendSpec>,
    shared: Arc<Shared>,
) -> Tally {
    let mut tally = Tally::new();
    let mut calls = FuturesUnordered::new();
    let mut more = !targets.is_empty();
    let mut next_target = first_target;
    loop {
        while more && calls.len() < spec.inflight {
            let Some(c) = shared.claim(spec.batch) else {
                more = false;
                break;
            };
            let to = targets[next_target % targets.len()];
            next_target = next_target.wrapping_add(1);
            let mut client = ident.client.clone();
            let meta = Arc::clone(&ident.meta);
            let spec = Arc::clone(&spec);
            let shared = Arc::clone(&shared);
            calls.push(async move {
                if let Some(due) = c.due
                    && due > Instant::now()
                {
                    tokio::time::sleep_until(due.into()).await;
                }
                // Built when sent, so the stamps know the real start.
                let start = Instant::now();
                let request = spec.request(&shared, &meta, &c, start, to);
                let result = client.send_message(request).await;
                (c, start, result, Instant::now())
            });
        }
        let Some((c, start, result, done)) = calls.next().await else {
            break;
        };
        record(&mut tally, &shared, &spec, c, start, result, done);
    }
    tally
}

/// Counts the outcome of one call.
fn record(
    tally: &mut Tally,
    shared: &Shared,
    spec: &SendSpec,
    c: Claim,
    start: Instant,
    result: Result<tonic::Response<pb::SendMessageResponse>, tonic::Status>,
    done: Instant,
) {
    let plan = &shared.plan;
    let n = u64::from(c.n);
    let mut ok = 0u64;
    let mut failed = 0u64;
    match result {
        Ok(resp) => {
            let resp = resp.into_inner();
            // One entry per message (Tern), or one for the whole batch:
            // Apache RocketMQ's proxy stores a batch as one message batch
            // and answers it with a single entry (its message id lists
            // the batch's ids, comma-separated).
            let per_message = resp.entries.len() == c.n as usize;
            let whole_batch = resp.entries.len() == 1 && c.n > 1;
            if per_message || whole_batch {
                let entries =
                    (0..c.n as usize).map(|k| &resp.entries[if per_message { k } else { 0 }]);
                for (k, e) in (0u64..).zip(entries) {
                    match &e.status {
                        Some(s) if s.code != pb::Code::Ok as i32 => {
                            tally.error(c.measured, Op::Send, Failure::Status(s.code), 1);
                            failed += 1;
                        }
                        _ => {
                            ok += 1;
                            if c.measured {
                                let from = c.intended(plan, k, start);
                                tally.latency.saturating_record(micros(
                                    done.saturating_duration_since(from),
                                ));
                            }
                        }
                    }
                }
            } else {
                // A refusal of the whole call carries no entries.
                let failure = match resp.status {
                    Some(s) if s.code != pb::Code::Ok as i32 => Failure::Status(s.code),
                    _ => Failure::Response,
                };
                tally.error(c.measured, Op::Send, failure, n);
                failed = n;
            }
        }
        Err(status) => {
            tally.error(c.measured, Op::Send, Failure::grpc(&status), n);
            failed = n;
        }
    }
    if c.measured {
        tally.messages += ok;
        tally.bytes += ok * spec.size;
        tally.done_at(done);
    }
    shared.live.sent.fetch_add(ok, Ordering::Relaxed);
    if failed > 0 {
        shared.live.errors.fetch_add(failed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_follow_the_official_layout() {
        let ids = Ids::new();
        let a = ids.id(0);
        let b = ids.id(0x1234_ABCD);
        assert_eq!(a.len(), 34);
        assert!(a.starts_with("01"), "{a}");
        assert!(a.ends_with("00000000"), "{a}");
        assert!(b.ends_with("1234ABCD"), "{b}");
        assert_eq!(a[..26], b[..26]);
        assert!(
            b.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
        );
    }

    #[test]
    fn bodies_have_the_asked_size() {
        assert_eq!(body(1).len(), 1);
        assert_eq!(body(1024).len(), 1024);
        assert_eq!(body(100_000).len(), 100_000);
    }

    #[test]
    fn the_template_carries_the_digest_of_its_body() {
        let topic = TopicName::new("bench").unwrap();
        let spec = SendSpec::new(&[topic], "bench", 0x100, 1, 1, Duration::from_secs(1));
        let sp = spec.template.system_properties.as_ref().unwrap();
        let expected: String = Md5::digest(&spec.template.body)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(sp.body_digest.as_ref().unwrap().checksum, expected);
        assert_eq!(sp.tag.as_deref(), Some("bench"));
    }
}
