//! The Telemetry stream: the settings handshake every client waits for.

use std::time::Duration;

use tern_protocol::v2::{
    CustomizedBackoff, ExponentialBackoff, Metric, Publishing, RetryPolicy, Settings, Subscription,
    TelemetryCommand, retry_policy::Strategy, settings::PubSub, telemetry_command::Command,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Streaming};

use super::convert::{duration, group_name};
use super::status::{Client, ok};
use super::{MAX_LONG_POLLING, Messaging};
use crate::meta::GroupConfig;

/// Messages a consumer receives at once, as told to clients.
const RECEIVE_BATCH_SIZE: i32 = 32;
/// Delays before redelivery 1, 2, ...: RocketMQ's customized schedule.
const RETRY_SCHEDULE_SECS: [u64; 18] = [
    1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

pub(super) type TelemetryStream = ReceiverStream<Result<TelemetryCommand, tonic::Status>>;

impl Messaging {
    /// Answers each `settings` command at once with the merged settings;
    /// keeps the stream open until the client closes it or the server
    /// shuts down.
    pub(super) fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Response<TelemetryStream> {
        let client = Client::of(&req);
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(8);
        let this = self.clone();
        tokio::spawn(async move {
            let client = match client {
                Ok(c) => c,
                Err(status) => {
                    let cmd = TelemetryCommand {
                        status: Some(status),
                        command: None,
                    };
                    let _ = tx.send(Ok(cmd)).await;
                    return;
                }
            };
            loop {
                tokio::select! {
                    () = this.closed() => break,
                    next = inbound.message() => match next {
                        Ok(Some(cmd)) => {
                            let Some(Command::Settings(s)) = cmd.command else {
                                continue;
                            };
                            let reply = TelemetryCommand {
                                status: Some(ok()),
                                command: Some(Command::Settings(this.settings(&client, s))),
                            };
                            if tx.send(Ok(reply)).await.is_err() {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(client = %client.id, error = %e, "telemetry stream ended");
                            break;
                        }
                    },
                }
            }
        });
        Response::new(ReceiverStream::new(rx))
    }

    /// The client's settings merged with the broker's.
    fn settings(&self, client: &Client, s: Settings) -> Settings {
        let (pub_sub, backoff) = match s.pub_sub {
            Some(PubSub::Publishing(p)) => (
                Some(PubSub::Publishing(Publishing {
                    topics: p.topics,
                    max_body_size: i32::try_from(self.shared.cfg.max_body_bytes)
                        .unwrap_or(i32::MAX),
                    validate_message_type: true,
                })),
                Some(producer_backoff()),
            ),
            Some(PubSub::Subscription(sub)) => {
                let group = group_name(client, sub.group.as_ref())
                    .ok()
                    .and_then(|g| self.shared.registry.group(g.as_str()).ok());
                let (fifo, retries) = group
                    .map_or((false, GroupConfig::DEFAULT_MAX_RETRIES), |g| {
                        (g.fifo(), g.max_retries())
                    });
                let out = Subscription {
                    group: sub.group,
                    subscriptions: sub.subscriptions,
                    fifo: Some(fifo),
                    receive_batch_size: Some(RECEIVE_BATCH_SIZE),
                    long_polling_timeout: Some(duration(MAX_LONG_POLLING)),
                    ..Default::default()
                };
                (
                    Some(PubSub::Subscription(out)),
                    Some(consumer_backoff(retries)),
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
}

/// Producers: 3 attempts, exponential 10 ms to 1 s, times 2.
fn producer_backoff() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        strategy: Some(Strategy::ExponentialBackoff(ExponentialBackoff {
            initial: Some(duration(Duration::from_millis(10))),
            max: Some(duration(Duration::from_secs(1))),
            multiplier: 2.0,
        })),
    }
}

/// Consumers: the group's deliveries, with the customized schedule.
fn consumer_backoff(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: i32::try_from(max_retries + 1).unwrap_or(i32::MAX),
        strategy: Some(Strategy::CustomizedBackoff(CustomizedBackoff {
            next: RETRY_SCHEDULE_SECS
                .iter()
                .map(|&s| duration(Duration::from_secs(s)))
                .collect(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
