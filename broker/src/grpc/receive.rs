//! ReceiveMessage: POP-style receive with long polling.

use std::time::{Duration, Instant};

use tern_protocol::v2::{
    Code, FilterType, ReceiveMessageRequest, ReceiveMessageResponse, Status,
    receive_message_response::Content,
};
use tokio::sync::watch;
use tonic::metadata::MetadataMap;

use super::convert::{duration_ms, group_name, message_out, now_ms, timestamp, topic_name};
use super::status::{Client, ok};
use super::{DEFAULT_INVISIBLE, MAX_LONG_POLLING, MIN_LONG_POLLING, Messaging, blocking};
use crate::filter::{Filter, SqlFilter, TagFilter};
use crate::meta::GroupConfig;

/// Part of the client's deadline kept for the answer to reach it.
pub(super) const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Most messages one receive returns.
const MAX_BATCH: usize = 1024;

/// The stream items of one receive.
pub(super) type Items = Vec<ReceiveMessageResponse>;

fn item(content: Content) -> ReceiveMessageResponse {
    ReceiveMessageResponse {
        content: Some(content),
    }
}

fn failed(status: Status) -> Items {
    vec![item(Content::Status(status))]
}

impl Messaging {
    /// Receives for `req`: `status OK`, one item per message and a
    /// `delivery_timestamp`; a single `MESSAGE_NOT_FOUND` status if
    /// nothing arrived within the long-polling time; a single status on
    /// any failure.
    pub(super) async fn receive(
        &self,
        c: &Client,
        req: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Items {
        match self.try_receive(c, req, deadline).await {
            Ok(items) => items,
            Err(status) => failed(status),
        }
    }

    async fn try_receive(
        &self,
        c: &Client,
        req: ReceiveMessageRequest,
        deadline: Option<Duration>,
    ) -> Result<Items, Status> {
        let started = Instant::now();
        let sh = &self.shared;
        let group = group_name(c, req.group.as_ref())?;
        let mq = req.message_queue.unwrap_or_default();
        let topic = topic_name(c, mq.topic.as_ref())?;
        let topic = sh.registry.topic(topic.as_str()).map_err(|e| c.error(&e))?;
        let registry = sh.registry.clone();
        let group = blocking(move || registry.ensure_group(GroupConfig::with_defaults(group)?))
            .await
            .map_err(|e| c.error(&e))?;
        let filter = filter(c, req.filter_expression.as_ref())?;
        let max = usize::try_from(req.batch_size)
            .unwrap_or(0)
            .clamp(1, MAX_BATCH);
        let renew = req.auto_renew;
        let invisible_ms = match &req.invisible_duration {
            Some(d) if duration_ms(d) > 0 => duration_ms(d),
            Some(d) => {
                return Err(c.status(
                    Code::IllegalInvisibleTime,
                    format!(
                        "invisible duration must be positive, not {} ms",
                        duration_ms(d)
                    ),
                ));
            }
            None if renew => i64::try_from(sh.renewals.period().as_millis()).unwrap_or(60_000),
            None => i64::try_from(DEFAULT_INVISIBLE.as_millis()).unwrap_or(60_000),
        };
        // Every queue of the topic on this broker, whichever one the client
        // named (as the reference proxy pops with queue -1): sends are
        // spread over all queues, and a client polling one queue at a time
        // must not wait on an empty one while others hold messages.
        let queue = None;
        let poll = polling_time(c, req.long_polling_timeout.as_ref(), deadline)?;
        let tname = topic.name().to_string();
        let gname = group.name().to_string();
        let mut woken = sh.wakers.subscribe(&tname);
        loop {
            woken.borrow_and_update();
            let (pop, g, t, f) = (sh.pop.clone(), group.clone(), topic.clone(), filter.clone());
            let now = now_ms();
            let (got, expiry) = blocking(move || {
                let got = pop.receive(&g, &t, queue, max, invisible_ms, &f, now)?;
                let expiry = if got.is_empty() {
                    pop.next_expiry(g.name().as_str(), t.name().as_str())
                } else {
                    None
                };
                Ok((got, expiry))
            })
            .await
            .map_err(|e| c.error(&e))?;
            if !got.is_empty() {
                if renew {
                    sh.renewals
                        .track(&c.id, got.iter().map(|d| d.receipt.clone()));
                }
                let mut items = Vec::with_capacity(got.len() + 2);
                items.push(item(Content::Status(ok())));
                for d in got {
                    sh.metrics
                        .delivered(&gname, &tname, d.message.message.body.len());
                    items.push(item(Content::Message(message_out(d, now))));
                }
                items.push(item(Content::DeliveryTimestamp(timestamp(now))));
                return Ok(items);
            }
            let mut left = poll.saturating_sub(started.elapsed());
            // An in-flight message becoming visible again also ends the wait.
            // (At least 100 ms: a FIFO queue may hold an expired message
            // back behind an earlier one.)
            if let Some(at) = expiry {
                let ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                left = left.min(Duration::from_millis(ms.max(100)));
            }
            if left.is_zero() || !self.wait(&mut woken, left).await {
                return Err(c.status(Code::MessageNotFound, "no new message"));
            }
        }
    }

    /// Waits until `woken` changes or `most` passes: `true`; `false` if
    /// the broker is shutting down.
    pub(super) async fn wait(&self, woken: &mut watch::Receiver<u64>, most: Duration) -> bool {
        tokio::select! {
            r = woken.changed() => {
                if r.is_err() {
                    // Cannot happen (the broker keeps every sender), but
                    // never spin.
                    tokio::time::sleep(most).await;
                }
                true
            }
            () = tokio::time::sleep(most) => true,
            () = self.closed() => false,
        }
    }
}

/// The long-polling time of a receive, as the reference server has it:
/// the requested time (20 s if none) clamped to 5..=20 s, then cut to the
/// client's remaining gRPC deadline (less a margin for the answer to
/// travel); `ILLEGAL_POLLING_TIME` if that leaves less than 5 s.
fn polling_time(
    c: &Client,
    asked: Option<&prost_types::Duration>,
    deadline: Option<Duration>,
) -> Result<Duration, Status> {
    let asked = asked.map_or(MAX_LONG_POLLING, |d| {
        Duration::from_millis(u64::try_from(duration_ms(d)).unwrap_or(0))
    });
    let poll = asked.clamp(MIN_LONG_POLLING, MAX_LONG_POLLING);
    let Some(left) = deadline.map(|d| d.saturating_sub(DEADLINE_MARGIN)) else {
        return Ok(poll);
    };
    if left >= poll {
        Ok(poll)
    } else if left >= MIN_LONG_POLLING {
        Ok(left)
    } else {
        Err(c.status(
            Code::IllegalPollingTime,
            format!(
                "the call's deadline leaves {} ms for long polling; at least {} ms are needed",
                left.as_millis(),
                MIN_LONG_POLLING.as_millis()
            ),
        ))
    }
}

/// The filter of a request: its tag expression (`*` when none is given
/// or it is blank) or its SQL92 expression; `ILLEGAL_FILTER_EXPRESSION`
/// naming the problem if it does not parse.
pub(super) fn filter(
    c: &Client,
    f: Option<&tern_protocol::v2::FilterExpression>,
) -> Result<Filter, Status> {
    let Some(f) = f else {
        return Ok(Filter::ALL);
    };
    let parsed = if f.r#type == FilterType::Sql as i32 {
        SqlFilter::parse(&f.expression).map(Filter::Sql)
    } else {
        TagFilter::parse(&f.expression).map(Filter::Tag)
    };
    parsed.map_err(|e| {
        tracing::debug!(client = %c.id, error = %e, "refused a filter expression");
        c.status(Code::IllegalFilterExpression, e.to_string())
    })
}

/// The time left before the client's `grpc-timeout`, if it sent one.
pub(super) fn grpc_deadline(md: &MetadataMap) -> Option<Duration> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 {
        return None;
    }
    let (n, unit) = v.split_at(v.len() - 1);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: i64) -> prost_types::Duration {
        prost_types::Duration {
            seconds: n,
            nanos: 0,
        }
    }

    #[test]
    fn polling_time_is_clamped() {
        let (java, rust) = (
            Client {
                id: "c".into(),
                legacy: false,
            },
            Client {
                id: "c".into(),
                legacy: true,
            },
        );
        let s = Duration::from_secs;
        let poll = |asked: Option<i64>, deadline: Option<u64>| {
            polling_time(&java, asked.map(secs).as_ref(), deadline.map(s))
        };
        assert_eq!(poll(None, None).unwrap(), s(20));
        assert_eq!(poll(Some(1), None).unwrap(), s(5));
        assert_eq!(poll(Some(30), None).unwrap(), s(20));
        assert_eq!(poll(Some(10), Some(40)).unwrap(), s(10));
        // Cut to the deadline less the margin.
        assert_eq!(poll(Some(20), Some(8)).unwrap(), s(8) - DEADLINE_MARGIN);
        let e = poll(Some(20), Some(5)).unwrap_err();
        assert_eq!(e.code, Code::IllegalPollingTime as i32);
        // 40018 is in the Rust SDK's enum: no older code needed.
        let e = polling_time(&rust, None, Some(s(1))).unwrap_err();
        assert_eq!(e.code, Code::IllegalPollingTime as i32);
    }

    #[test]
    fn parses_grpc_timeout() {
        let mut md = MetadataMap::new();
        assert_eq!(grpc_deadline(&md), None);
        md.insert("grpc-timeout", "40000m".parse().unwrap());
        assert_eq!(grpc_deadline(&md), Some(Duration::from_secs(40)));
        md.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(grpc_deadline(&md), Some(Duration::from_secs(3)));
        md.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(grpc_deadline(&md), None);
    }
}
