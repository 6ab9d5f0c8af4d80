//! The settings a server answers a client's Telemetry handshake with.
//!
//! Every RocketMQ 5 client opens a Telemetry stream to each endpoint it
//! uses and sends its [`Settings`] first; it waits for the server's merged
//! settings before it starts. Brokers and name servers answer alike, so the
//! rules live here once, as pure functions over plain parameters:
//!
//! - producers: 3 attempts with exponential back-off (10 ms to 1 s, times
//!   2), the largest body accepted, and message-type validation on;
//! - consumers: the group's FIFO flag, receive batches of 32, long polling
//!   up to the server's limit, and `max_retries + 1` attempts with
//!   RocketMQ's customized retry schedule (1 s, 5 s, ... 2 h);
//! - metrics off.

use std::time::Duration;

use crate::v2::{
    CustomizedBackoff, ExponentialBackoff, Metric, Publishing, RetryPolicy, Settings, Subscription,
    retry_policy::Strategy, settings::PubSub,
};

/// Messages a consumer receives at once, as told to clients.
pub const RECEIVE_BATCH_SIZE: i32 = 32;

/// Redeliveries of a group that no server knows (RocketMQ's default).
pub const DEFAULT_MAX_RETRIES: u32 = 16;

/// Delays before redelivery 1, 2, ...: RocketMQ's customized schedule.
pub const RETRY_SCHEDULE_SECS: [u64; 18] = [
    1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// What the server says about a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Messages of one message group are delivered in order.
    pub fifo: bool,
    /// Redeliveries before a message goes to the dead-letter queue.
    pub max_retries: u32,
}

impl Default for GroupPolicy {
    /// A non-FIFO group with [`DEFAULT_MAX_RETRIES`].
    fn default() -> Self {
        Self {
            fifo: false,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

/// What the server imposes on every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest message body accepted.
    pub max_body_bytes: usize,
    /// Longest long-polling wait of one receive.
    pub long_polling: Duration,
}

/// The client's settings `s` merged with the server's. `group` is asked
/// for the policy of the consumer group the client names (its resource
/// name as sent); `None` gives [`GroupPolicy::default`].
pub fn merge(
    s: Settings,
    limits: ServerLimits,
    group: impl FnOnce(&str) -> Option<GroupPolicy>,
) -> Settings {
    let (pub_sub, backoff) = match s.pub_sub {
        Some(PubSub::Publishing(p)) => (
            Some(PubSub::Publishing(Publishing {
                topics: p.topics,
                max_body_size: i32::try_from(limits.max_body_bytes).unwrap_or(i32::MAX),
                validate_message_type: true,
            })),
            Some(producer_backoff()),
        ),
        Some(PubSub::Subscription(sub)) => {
            let name = sub.group.as_ref().map(|g| g.name.as_str()).unwrap_or("");
            let policy = group(name).unwrap_or_default();
            let out = Subscription {
                group: sub.group,
                subscriptions: sub.subscriptions,
                fifo: Some(policy.fifo),
                receive_batch_size: Some(RECEIVE_BATCH_SIZE),
                long_polling_timeout: Some(duration(limits.long_polling)),
                ..Default::default()
            };
            (
                Some(PubSub::Subscription(out)),
                Some(consumer_backoff(policy.max_retries)),
            )
        }
        None => (None, s.backoff_policy),
    };
    Settings {
        client_type: s.client_type,
        access_point: s.access_point,
        backoff_policy: backoff,
        request_timeout: s.request_timeout,
        pub_sub,
        user_agent: s.user_agent,
        metric: Some(Metric {
            on: false,
            endpoints: None,
        }),
    }
}

/// Producers: 3 attempts, exponential 10 ms to 1 s, times 2.
pub fn producer_backoff() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        strategy: Some(Strategy::ExponentialBackoff(ExponentialBackoff {
            initial: Some(duration(Duration::from_millis(10))),
            max: Some(duration(Duration::from_secs(1))),
            multiplier: 2.0,
        })),
    }
}

/// Consumers: the group's deliveries (`max_retries + 1`), with the
/// customized schedule.
pub fn consumer_backoff(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: i32::try_from(max_retries.saturating_add(1)).unwrap_or(i32::MAX),
        strategy: Some(Strategy::CustomizedBackoff(CustomizedBackoff {
            next: RETRY_SCHEDULE_SECS
                .iter()
                .map(|&s| duration(Duration::from_secs(s)))
                .collect(),
        })),
    }
}

/// A protobuf duration.
pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::v2::Resource;

    const LIMITS: ServerLimits = ServerLimits {
        max_body_bytes: 4 << 20,
        long_polling: Duration::from_secs(20),
    };

    #[test]
    fn backoffs() {
        let p = producer_backoff();
        assert_eq!(p.max_attempts, 3);
        assert!(matches!(p.strategy, Some(Strategy::ExponentialBackoff(_))));
        let c = consumer_backoff(16);
        assert_eq!(c.max_attempts, 17);
        let Some(Strategy::CustomizedBackoff(b)) = c.strategy else {
            panic!("customized expected");
        };
        assert_eq!(b.next.len(), 18);
        assert_eq!(b.next[17].seconds, 7200);
    }

    #[test]
    fn producer_settings() {
        let s = Settings {
            pub_sub: Some(PubSub::Publishing(Publishing::default())),
            ..Default::default()
        };
        let out = merge(s, LIMITS, |_| panic!("a producer names no group"));
        let Some(PubSub::Publishing(p)) = out.pub_sub else {
            panic!("publishing expected");
        };
        assert_eq!(p.max_body_size, 4 << 20);
        assert!(p.validate_message_type);
        assert_eq!(out.backoff_policy.unwrap().max_attempts, 3);
        assert!(!out.metric.unwrap().on);
    }

    #[test]
    fn consumer_settings_follow_the_group() {
        let s = Settings {
            pub_sub: Some(PubSub::Subscription(Subscription {
                group: Some(Resource {
                    resource_namespace: String::new(),
                    name: "g".to_owned(),
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let out = merge(s.clone(), LIMITS, |g| {
            assert_eq!(g, "g");
            Some(GroupPolicy {
                fifo: true,
                max_retries: 3,
            })
        });
        let Some(PubSub::Subscription(sub)) = out.pub_sub else {
            panic!("subscription expected");
        };
        assert_eq!(sub.fifo, Some(true));
        assert_eq!(sub.receive_batch_size, Some(RECEIVE_BATCH_SIZE));
        assert_eq!(sub.long_polling_timeout.unwrap().seconds, 20);
        assert_eq!(out.backoff_policy.unwrap().max_attempts, 4);

        let out = merge(s, LIMITS, |_| None);
        let Some(PubSub::Subscription(sub)) = out.pub_sub else {
            panic!("subscription expected");
        };
        assert_eq!(sub.fifo, Some(false));
        assert_eq!(out.backoff_policy.unwrap().max_attempts, 17);
    }
}
