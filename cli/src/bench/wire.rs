//! Talking to a broker: connections, the headers every call carries, the
//! route of the topic, and the life of one client (its Telemetry settings
//! handshake, heartbeats and termination notice), as the official SDKs
//! do it, so that Apache RocketMQ's proxy accepts the bench as a client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use futures::StreamExt as _;
use tern_client::{GroupName, TopicName, error_chain};
use tern_protocol::endpoints::first_address;
use tern_protocol::settings::duration;
use tern_protocol::v2::{self as pb, messaging_service_client::MessagingServiceClient};
use tokio::task::JoinHandle;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataKey, MetadataValue};

use super::stats::{Errors, Failure, Op};
use super::transport::Http2;

/// A client of one connection's messaging service.
pub(super) type Client = MessagingServiceClient<Http2>;

/// User property carrying a message's intended send time, in microseconds
/// since the Unix epoch.
pub(super) const SENT_AT: &str = "bench-sent-at-us";

/// How often each client heartbeats (the official SDKs: every 10 s).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

/// Largest message accepted or sent: a batch of large bodies exceeds
/// tonic's default 4 MiB.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Identity of one client, and the headers each of its calls carries.
#[derive(Debug)]
pub(super) struct Meta {
    client_id_value: AsciiMetadataValue,
    nonce: u32,
    requests: AtomicU64,
    /// `x-mq-date-time` of the current second, made once per second.
    date: Mutex<(u64, AsciiMetadataValue)>,
    keys: Keys,
}

/// The header names, parsed once.
#[derive(Debug)]
struct Keys {
    client_id: AsciiMetadataKey,
    language: AsciiMetadataKey,
    protocol: AsciiMetadataKey,
    protocol_version: AsciiMetadataKey,
    request_id: AsciiMetadataKey,
    date_time: AsciiMetadataKey,
}

impl Keys {
    fn new() -> Self {
        Self {
            client_id: MetadataKey::from_static(tern_client::CLIENT_ID_HEADER),
            language: MetadataKey::from_static(tern_client::LANGUAGE_HEADER),
            protocol: MetadataKey::from_static(tern_client::PROTOCOL_HEADER),
            protocol_version: MetadataKey::from_static("x-mq-protocol-version"),
            request_id: MetadataKey::from_static("x-mq-request-id"),
            date_time: MetadataKey::from_static("x-mq-date-time"),
        }
    }
}

impl Meta {
    /// A new client identity: `<host>@<pid>@tern-bench-<role><n>-<nonce>`.
    pub(super) fn new(role: &str, n: usize) -> anyhow::Result<Self> {
        let mut nonce = [0u8; 4];
        let nonce = match getrandom::fill(&mut nonce) {
            Ok(()) => u32::from_be_bytes(nonce),
            Err(_) => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        };
        let client_id = format!(
            "{}@{}@tern-bench-{role}{n}-{nonce:08x}",
            hostname(),
            std::process::id()
        );
        let client_id_value = MetadataValue::try_from(client_id.as_str())
            .with_context(|| format!("client id {client_id:?} is not a valid header"))?;
        Ok(Self {
            client_id_value,
            nonce,
            requests: AtomicU64::new(0),
            date: Mutex::new((0, MetadataValue::from_static("19700101T000000Z"))),
            keys: Keys::new(),
        })
    }

    #[cfg(test)]
    fn client_id(&self) -> &str {
        self.client_id_value.to_str().unwrap_or_default()
    }

    /// `message` with the headers of this client: client id, language,
    /// protocol, a request id and the date; with a deadline unless
    /// `timeout` is `None` (a stream that lives as long as the client).
    pub(super) fn request<T>(&self, message: T, timeout: Option<Duration>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        let seq = self.requests.fetch_add(1, Ordering::Relaxed);
        let date = self.date_time();
        let md = request.metadata_mut();
        let k = &self.keys;
        md.insert(k.client_id.clone(), self.client_id_value.clone());
        md.insert(k.language.clone(), MetadataValue::from_static("RUST"));
        md.insert(k.protocol.clone(), MetadataValue::from_static("v2"));
        md.insert(
            k.protocol_version.clone(),
            MetadataValue::from_static("2.1.2"),
        );
        if let Ok(mut id) = MetadataValue::try_from(format!("{:08x}-{seq:x}", self.nonce)) {
            // Never indexed by HPACK: a new value each call would only
            // churn the header tables of both sides.
            id.set_sensitive(true);
            md.insert(k.request_id.clone(), id);
        }
        md.insert(k.date_time.clone(), date);
        request
    }

    /// The current second as `yyyyMMddTHHmmssZ` (UTC), the form the
    /// official SDKs send.
    fn date_time(&self) -> AsciiMetadataValue {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut cached = self.date.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != secs {
            let value = MetadataValue::try_from(format_date_time(secs))
                .unwrap_or_else(|_| MetadataValue::from_static("19700101T000000Z"));
            *cached = (secs, value);
        }
        cached.1.clone()
    }
}

/// `secs` since the Unix epoch as `yyyyMMddTHHmmssZ`.
fn format_date_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month and day of `days` since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Days since 0000-03-01, in 400-year eras of 146 097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

pub(super) fn resource(name: &str) -> pb::Resource {
    pb::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    }
}

/// Opens one HTTP/2 connection to `address` (`host:port`).
pub(super) async fn connect(address: &str, timeout: Duration) -> anyhow::Result<Client> {
    let origin: tonic::codegen::http::Uri = format!("http://{address}")
        .parse()
        .with_context(|| format!("{address} is not a valid address"))?;
    let transport = match tokio::time::timeout(timeout, Http2::connect(address)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => bail!("cannot connect to {address}: {}", error_chain(&e)),
        Err(_) => bail!("cannot connect to {address}: no answer within {timeout:?}"),
    };
    Ok(MessagingServiceClient::with_origin(transport, origin)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A gRPC failure as one line.
fn grpc_line(s: &tonic::Status) -> String {
    let name = tern_client::grpc_code_name(s.code());
    if s.message().is_empty() {
        name.to_owned()
    } else {
        format!("{name}: {}", s.message())
    }
}

/// A RocketMQ status as one line: `TOPIC_NOT_FOUND (40402): message`.
fn status_line(s: &pb::Status) -> String {
    let name = tern_client::code_name(s.code);
    if s.message.is_empty() {
        format!("{name} ({})", s.code)
    } else {
        format!("{name} ({}): {}", s.code, s.message)
    }
}

/// The writable queues of one broker.
#[derive(Debug, Clone)]
pub(super) struct WriteTarget {
    /// `host:port` of the broker.
    pub address: String,
    pub queues: Vec<i32>,
}

/// One broker with readable queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReadTarget {
    pub address: String,
    /// The broker's name, sent in ReceiveMessage so that a proxy in front
    /// of several brokers receives from this one.
    pub broker: String,
}

/// A topic's route, reduced to what the bench uses.
#[derive(Debug, Clone, Default)]
pub(super) struct Route {
    pub writable: Vec<WriteTarget>,
    pub readable: Vec<ReadTarget>,
    /// Readable queues, all brokers together.
    pub readable_queues: usize,
}

impl Route {
    /// Leader queues (broker id 0, as the official clients use) with an
    /// address and a valid id, split by permission.
    fn from_queues(queues: &[pb::MessageQueue]) -> Self {
        let mut route = Self::default();
        for q in queues {
            let Some(broker) = q.broker.as_ref().filter(|b| b.id == 0) else {
                continue;
            };
            let Some(address) = broker.endpoints.as_ref().and_then(first_address) else {
                continue;
            };
            if q.id < 0 {
                continue;
            }
            let permission = pb::Permission::try_from(q.permission).unwrap_or_default();
            if matches!(
                permission,
                pb::Permission::Write | pb::Permission::ReadWrite
            ) {
                match route.writable.iter_mut().find(|w| w.address == address) {
                    Some(w) => w.queues.push(q.id),
                    None => route.writable.push(WriteTarget {
                        address: address.clone(),
                        queues: vec![q.id],
                    }),
                }
            }
            let target = ReadTarget {
                address,
                broker: broker.name.clone(),
            };
            if matches!(permission, pb::Permission::Read | pb::Permission::ReadWrite) {
                route.readable_queues += 1;
                if !route.readable.contains(&target) {
                    route.readable.push(target);
                }
            }
        }
        route
    }

    /// Only the first `n` writable queues, in route order.
    pub(super) fn limit_writable(&mut self, n: usize) {
        let mut left = n;
        for w in &mut self.writable {
            w.queues.truncate(left);
            left -= w.queues.len();
        }
        self.writable.retain(|w| !w.queues.is_empty());
    }

    pub(super) fn writable_queues(&self) -> usize {
        self.writable.iter().map(|w| w.queues.len()).sum()
    }
}

/// Asks `client` (connected to `address`) for the route of `topic`.
pub(super) async fn query_route(
    client: &mut Client,
    address: &str,
    topic: &TopicName,
    timeout: Duration,
) -> anyhow::Result<Route> {
    let meta = Meta::new("route", 0)?;
    let req = pb::QueryRouteRequest {
        topic: Some(resource(topic.as_str())),
        endpoints: tern_protocol::endpoints::endpoints(address),
    };
    let resp = client
        .query_route(meta.request(req, Some(timeout)))
        .await
        .map_err(|s| anyhow!("looking up topic {topic} at {address}: {}", grpc_line(&s)))?
        .into_inner();
    if let Some(s) = resp
        .status
        .as_ref()
        .filter(|s| s.code != pb::Code::Ok as i32)
    {
        if s.code == pb::Code::TopicNotFound as i32 {
            bail!(
                "topic {topic} does not exist at {address} ({}); create it first, \
                 e.g. `tern topic create {topic}`",
                status_line(s)
            );
        }
        bail!("looking up topic {topic} at {address}: {}", status_line(s));
    }
    Ok(Route::from_queues(&resp.message_queues))
}

/// What a client does, as told to the broker in its settings and
/// heartbeats.
#[derive(Debug, Clone)]
pub(super) enum Role {
    Producer,
    Consumer {
        group: GroupName,
        long_polling: Duration,
    },
}

/// A client's connection, identity and role: what a call needs.
#[derive(Debug, Clone)]
pub(super) struct Ident {
    pub client: Client,
    pub meta: Arc<Meta>,
    role: Role,
    timeout: Duration,
}

impl Ident {
    async fn heartbeat(&self) -> Result<(), Failure> {
        let (group, client_type) = match &self.role {
            Role::Producer => (None, pb::ClientType::Producer),
            Role::Consumer { group, .. } => (
                Some(resource(group.as_str())),
                pb::ClientType::SimpleConsumer,
            ),
        };
        let req = pb::HeartbeatRequest {
            group,
            client_type: client_type as i32,
        };
        let resp = self
            .client
            .clone()
            .heartbeat(self.meta.request(req, Some(self.timeout)))
            .await
            .map_err(|s| Failure::grpc(&s))?
            .into_inner();
        match resp.status {
            Some(s) if s.code != pb::Code::Ok as i32 => Err(Failure::Status(s.code)),
            _ => Ok(()),
        }
    }
}

/// One client on one connection: its identity, its open Telemetry stream
/// and its heartbeats.
#[derive(Debug)]
pub(super) struct Link {
    pub ident: Ident,
    pub address: String,
    background: Vec<JoinHandle<()>>,
}

impl Link {
    /// Connects to `address`, sends the client's settings on a Telemetry
    /// stream and waits for the broker's answer (Apache's proxy refuses a
    /// consumer's receive until then), sends a first heartbeat, and keeps
    /// the stream open and heartbeats going until [`Link::close`].
    /// Failures of later heartbeats go to `incidents`.
    pub(super) async fn open(
        address: &str,
        n: usize,
        role: Role,
        topics: &[TopicName],
        timeout: Duration,
        incidents: Arc<Mutex<Errors>>,
    ) -> anyhow::Result<Self> {
        let mut client = connect(address, timeout).await?;
        let meta = Arc::new(Meta::new(
            match role {
                Role::Producer => "producer",
                Role::Consumer { .. } => "consumer",
            },
            n,
        )?);
        let settings = settings(&role, address, topics, timeout);
        let first = pb::TelemetryCommand {
            status: None,
            command: Some(pb::telemetry_command::Command::Settings(settings)),
        };
        // The settings, then nothing until the stream is dropped: an open
        // stream is how the broker knows the client is alive.
        let outbound = futures::stream::iter([first]).chain(futures::stream::pending());
        let what = format!("sending client settings to {address}");
        let mut inbound =
            match tokio::time::timeout(timeout, client.telemetry(meta.request(outbound, None)))
                .await
            {
                Ok(Ok(r)) => r.into_inner(),
                Ok(Err(s)) => bail!("{what}: {}", grpc_line(&s)),
                Err(_) => bail!("{what}: no answer within {timeout:?}"),
            };
        match tokio::time::timeout(timeout, inbound.message()).await {
            Ok(Ok(Some(cmd))) => {
                if let Some(s) = cmd
                    .status
                    .as_ref()
                    .filter(|s| s.code != pb::Code::Ok as i32)
                {
                    bail!("{what}: refused: {}", status_line(s));
                }
            }
            Ok(Ok(None)) => bail!("{what}: the broker closed the stream without answering"),
            Ok(Err(s)) => bail!("{what}: {}", grpc_line(&s)),
            Err(_) => bail!("{what}: no settings back within {timeout:?}"),
        }
        let ident = Ident {
            client,
            meta,
            role,
            timeout,
        };
        if let Err(f) = ident.heartbeat().await {
            bail!(
                "first heartbeat to {address} failed: {}{}",
                f.name(),
                f.code().map(|c| format!(" ({c})")).unwrap_or_default()
            );
        }
        let mut background = Vec::new();
        // Whatever the broker pushes later (settings, checks) is read and
        // dropped, so the stream never stalls.
        background.push(tokio::spawn(async move {
            while let Ok(Some(_)) = inbound.message().await {}
        }));
        let beat = ident.clone();
        background.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Err(f) = beat.heartbeat().await {
                    incidents
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .add(Op::Heartbeat, f, 1);
                }
            }
        }));
        Ok(Self {
            ident,
            address: address.to_owned(),
            background,
        })
    }

    /// Tells the broker this client is going away (as the SDKs do on
    /// shutdown), then stops heartbeats and closes the Telemetry stream.
    pub(super) async fn close(mut self) {
        let id = &self.ident;
        let group = match &id.role {
            Role::Producer => None,
            Role::Consumer { group, .. } => Some(resource(group.as_str())),
        };
        let req = pb::NotifyClientTerminationRequest { group };
        let _ = tokio::time::timeout(
            id.timeout,
            id.client
                .clone()
                .notify_client_termination(id.meta.request(req, Some(id.timeout))),
        )
        .await;
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

/// The settings a client sends first on its Telemetry stream: what the
/// official SDKs send for a producer publishing `topics` or a simple
/// consumer of a group subscribed to each of `topics` with filter `*`.
fn settings(role: &Role, address: &str, topics: &[TopicName], timeout: Duration) -> pb::Settings {
    let (client_type, pub_sub, backoff) = match role {
        Role::Producer => (
            pb::ClientType::Producer,
            pb::settings::PubSub::Publishing(pb::Publishing {
                topics: topics.iter().map(|t| resource(t.as_str())).collect(),
                max_body_size: 0,
                validate_message_type: false,
            }),
            // The bench never retries a send; a failure is counted.
            Some(pb::RetryPolicy {
                max_attempts: 1,
                strategy: Some(pb::retry_policy::Strategy::ExponentialBackoff(
                    pb::ExponentialBackoff {
                        initial: Some(duration(Duration::from_millis(10))),
                        max: Some(duration(Duration::from_secs(1))),
                        multiplier: 2.0,
                    },
                )),
            }),
        ),
        Role::Consumer {
            group,
            long_polling,
        } => (
            pb::ClientType::SimpleConsumer,
            pb::settings::PubSub::Subscription(pb::Subscription {
                group: Some(resource(group.as_str())),
                subscriptions: topics
                    .iter()
                    .map(|t| pb::SubscriptionEntry {
                        topic: Some(resource(t.as_str())),
                        expression: Some(pb::FilterExpression {
                            r#type: pb::FilterType::Tag as i32,
                            expression: "*".to_owned(),
                        }),
                    })
                    .collect(),
                fifo: None,
                receive_batch_size: None,
                long_polling_timeout: Some(duration(*long_polling)),
                lite_subscription_quota: None,
                max_lite_topic_size: None,
            }),
            None,
        ),
    };
    pb::Settings {
        client_type: Some(client_type as i32),
        access_point: tern_protocol::endpoints::endpoints(address),
        backoff_policy: backoff,
        request_timeout: Some(duration(timeout)),
        pub_sub: Some(pub_sub),
        user_agent: Some(pb::Ua {
            language: pb::Language::Rust as i32,
            version: format!("tern-bench {}", env!("CARGO_PKG_VERSION")),
            platform: std::env::consts::OS.to_owned(),
            hostname: hostname(),
        }),
        metric: Some(pb::Metric {
            on: false,
            endpoints: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn dates_are_formatted_as_the_sdks_do() {
        assert_eq!(format_date_time(0), "19700101T000000Z");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(format_date_time(1_709_251_199), "20240229T235959Z");
        // 2026-12-03T13:43:18Z.
        assert_eq!(format_date_time(1_796_305_398), "20261203T134318Z");
    }

    #[test]
    fn requests_carry_the_client_headers() {
        let meta = Meta::new("producer", 3).unwrap();
        assert!(meta.client_id().contains("@tern-bench-producer3-"));
        let r = meta.request((), Some(Duration::from_secs(2)));
        let md = r.metadata();
        assert_eq!(md.get("x-mq-client-id").unwrap(), meta.client_id());
        assert_eq!(md.get("x-mq-language").unwrap(), "RUST");
        assert_eq!(md.get("x-mq-protocol").unwrap(), "v2");
        assert_eq!(md.get("x-mq-date-time").unwrap().len(), 16);
        let a = md.get("x-mq-request-id").unwrap().clone();
        let r = meta.request((), None);
        assert_ne!(r.metadata().get("x-mq-request-id").unwrap(), &a);
    }

    fn queue(broker: &str, host: &str, id: i32, p: pb::Permission) -> pb::MessageQueue {
        pb::MessageQueue {
            topic: None,
            id,
            permission: p as i32,
            broker: Some(pb::Broker {
                name: broker.into(),
                id: 0,
                endpoints: tern_protocol::endpoints::endpoints(host),
            }),
            accept_message_types: Vec::new(),
        }
    }

    #[test]
    fn routes_split_by_broker_and_permission() {
        use pb::Permission::{Read, ReadWrite, Write};
        let mut route = Route::from_queues(&[
            queue("a", "127.0.0.1:8081", 0, ReadWrite),
            queue("a", "127.0.0.1:8081", 1, ReadWrite),
            queue("b", "127.0.0.1:9000", 0, Write),
            queue("c", "[::1]:9001", 0, Read),
            queue("d", "127.0.0.1:9002", -1, ReadWrite),
        ]);
        assert_eq!(route.writable.len(), 2);
        assert_eq!(route.writable[0].queues, [0, 1]);
        assert_eq!(route.writable[1].address, "127.0.0.1:9000");
        assert_eq!(route.writable_queues(), 3);
        let readable: Vec<_> = route.readable.iter().map(|r| r.broker.as_str()).collect();
        assert_eq!(readable, ["a", "c"]);
        assert_eq!(route.readable[1].address, "[::1]:9001");
        assert_eq!(route.readable_queues, 3);
        route.limit_writable(1);
        assert_eq!(route.writable_queues(), 1);
        assert_eq!(route.writable.len(), 1);
    }
}
