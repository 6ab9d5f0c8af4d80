//! [`MessagingClient`]: a small client of the RocketMQ 5 messaging service
//! (`apache.rocketmq.v2.MessagingService`), enough to send, receive and
//! acknowledge from the command line. Applications should use an official
//! RocketMQ 5 SDK.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tern_model::{GroupName, TopicName};
use tern_protocol::v2::{self as pb, messaging_service_client::MessagingServiceClient};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::ClientError;
use crate::credentials::Credentials;
use crate::endpoint::{DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoints};
use crate::message_id::MessageIdGenerator;
use crate::messages::{OutgoingMessage, ReceiveOptions, ReceivedMessage, SendReceipt};
use crate::route::{QueueRef, Route};
use crate::wire::{
    address_scheme, check, check_message, duration, hostname, outgoing, received, resource, sent,
};

/// Metadata header naming the client (the broker requires it).
pub const CLIENT_ID_HEADER: &str = "x-mq-client-id";
/// Metadata header naming the client's language.
pub const LANGUAGE_HEADER: &str = "x-mq-language";
/// Metadata header naming the protocol version.
pub const PROTOCOL_HEADER: &str = "x-mq-protocol";
/// Metadata header with the `apache.rocketmq.v2` release this client was
/// built against; from 2.1 on, a broker answers a RUST client with the
/// newer status codes (older Rust SDKs get older, more general ones).
pub const PROTOCOL_VERSION_HEADER: &str = "x-mq-protocol-version";

/// Longest a broker holds a receive (RocketMQ's reference server and Tern
/// both clamp long polling to 20 s).
const MAX_BROKER_LONG_POLLING: Duration = Duration::from_secs(20);

/// Largest response message accepted: a delivered message carries a body
/// of up to the broker's limit (4 MiB by default) plus its properties, more
/// than tonic's default 4 MiB cap.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A client of the RocketMQ 5 messaging service.
///
/// It connects to an access point (a broker, or a name server that answers
/// routes), asks it for each topic's route, and then talks to the broker
/// holding each queue: sends go to the broker of the queue picked
/// (round-robin over the topic's writable queues), receives go to each
/// broker with readable queues in turn, and acknowledgements go to the
/// broker that delivered the message.
#[derive(Debug)]
pub struct MessagingClient {
    /// `host:port` of the access point connected to.
    access_point: String,
    client_id: String,
    ids: MessageIdGenerator,
    connect_timeout: Duration,
    call_timeout: Duration,
    /// How brokers named by routes are dialled: as the access point was.
    tls: Option<tern_tls::ClientTls>,
    /// One client per broker address (the access point's included).
    brokers: Mutex<HashMap<String, MessagingServiceClient<Channel>>>,
    /// Each topic's route, asked once.
    routes: Mutex<HashMap<TopicName, Arc<Route>>>,
    /// Round-robin position over a topic's queues.
    next_queue: AtomicUsize,
    /// Round-robin position over the brokers to receive from.
    next_broker: AtomicUsize,
    /// Signs every request when set.
    credentials: Option<Credentials>,
}

impl MessagingClient {
    /// Connects to `endpoints` (see [`Endpoints`]) with the default
    /// timeouts.
    pub async fn connect(endpoints: &str) -> Result<Self, ClientError> {
        Self::connect_with(
            Endpoints::parse(endpoints)?,
            DEFAULT_CONNECT_TIMEOUT,
            DEFAULT_CALL_TIMEOUT,
        )
        .await
    }

    /// Connects to the first of `endpoints` that answers within
    /// `connect_timeout`; calls other than receive then fail after
    /// `call_timeout` (a receive may take its long-polling time more).
    /// Brokers the routes name are connected to when first needed.
    pub async fn connect_with(
        endpoints: Endpoints,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let (channel, access_point) = endpoints.connect(connect_timeout).await?;
        let tls = endpoints.tls().cloned();
        let brokers = HashMap::from([(access_point.clone(), service(channel))]);
        Ok(Self {
            access_point,
            client_id: client_id(),
            ids: MessageIdGenerator::new(),
            connect_timeout,
            call_timeout,
            tls,
            brokers: Mutex::new(brokers),
            routes: Mutex::new(HashMap::new()),
            next_queue: AtomicUsize::new(0),
            next_broker: AtomicUsize::new(0),
            credentials: None,
        })
    }

    /// Signs every request with `credentials` (a broker with
    /// authentication on refuses unsigned ones); `None` signs none.
    #[must_use]
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The id this client gives itself in every call's metadata.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let md = request.metadata_mut();
        if let Ok(id) = MetadataValue::try_from(self.client_id.as_str()) {
            md.insert(CLIENT_ID_HEADER, id);
        }
        md.insert(LANGUAGE_HEADER, MetadataValue::from_static("RUST"));
        md.insert(PROTOCOL_HEADER, MetadataValue::from_static("v2"));
        md.insert(PROTOCOL_VERSION_HEADER, MetadataValue::from_static("2.1.2"));
        if let Some(c) = &self.credentials {
            c.sign(md, std::time::SystemTime::now());
        }
        request
    }

    /// The client of the broker at `address`, connecting if new.
    async fn broker(&self, address: &str) -> Result<MessagingServiceClient<Channel>, ClientError> {
        if let Some(c) = self.brokers.lock().get(address) {
            return Ok(c.clone());
        }
        let (channel, _) = Endpoints::parse(address)?
            .with_tls(self.tls.clone())
            .connect(self.connect_timeout)
            .await?;
        let client = service(channel);
        self.brokers
            .lock()
            .insert(address.to_owned(), client.clone());
        Ok(client)
    }

    /// The route of `topic`, asked once and then remembered.
    async fn route(&self, topic: &TopicName) -> Result<Arc<Route>, ClientError> {
        if let Some(r) = self.routes.lock().get(topic) {
            return Ok(Arc::clone(r));
        }
        let action = format!("looking up the route of topic {topic}");
        let endpoints = Endpoints::parse(&self.access_point)?;
        let req = pb::QueryRouteRequest {
            topic: Some(resource(topic.as_str())),
            endpoints: Some(dialled(&endpoints)),
        };
        let resp = self
            .broker(&self.access_point)
            .await?
            .query_route(self.request(req, self.call_timeout))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner();
        check(&action, resp.status.as_ref())?;
        let route = Arc::new(Route::from_queues(&resp.message_queues));
        self.routes.lock().insert(topic.clone(), Arc::clone(&route));
        Ok(route)
    }

    /// Sends `messages` to `topic`, spread round-robin over the topic's
    /// writable queues (one request per broker involved). The outer error
    /// is for the call as a whole; each message also has its own outcome,
    /// in order.
    pub async fn send(
        &self,
        topic: &TopicName,
        messages: &[OutgoingMessage],
    ) -> Result<Vec<Result<SendReceipt, ClientError>>, ClientError> {
        let action = format!("sending to topic {topic}");
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let route = self.route(topic).await?;
        if route.writable.is_empty() {
            return Err(ClientError::Broker {
                action,
                code: pb::Code::Forbidden as i32,
                message: format!("topic {topic} has no writable queue"),
            });
        }
        let born = prost_types::Timestamp::from(std::time::SystemTime::now());
        // Messages for each broker address: (index in `messages`, queue, message).
        let mut by_broker: BTreeMap<&str, Vec<(usize, &QueueRef, pb::Message)>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            let n = self.next_queue.fetch_add(1, Ordering::Relaxed);
            let queue = &route.writable[n % route.writable.len()];
            let id = self.ids.next_id();
            check_message(topic, m, &id)?;
            by_broker.entry(queue.address.as_str()).or_default().push((
                i,
                queue,
                outgoing(topic, m, id, queue.queue_id, born),
            ));
        }
        let mut results: Vec<Option<Result<SendReceipt, ClientError>>> =
            messages.iter().map(|_| None).collect();
        for (address, batch) in by_broker {
            let (slots, msgs): (Vec<(usize, &QueueRef)>, Vec<pb::Message>) =
                batch.into_iter().map(|(i, q, m)| ((i, q), m)).unzip();
            let resp = self
                .broker(address)
                .await?
                .send_message(
                    self.request(pb::SendMessageRequest { messages: msgs }, self.call_timeout),
                )
                .await
                .map_err(|s| ClientError::grpc(&action, &s))?
                .into_inner();
            if resp.entries.len() != slots.len() {
                // A refusal of the whole request carries no entries.
                check(&action, resp.status.as_ref())?;
                return Err(ClientError::bad_response(
                    &action,
                    format!(
                        "{} results for {} messages",
                        resp.entries.len(),
                        slots.len()
                    ),
                ));
            }
            for ((i, queue), e) in slots.into_iter().zip(resp.entries) {
                results[i] = Some(sent(&action, queue, e));
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClientError::bad_response(&action, "no result"))))
            .collect())
    }

    /// Receives up to `opts.batch_size` messages, waiting up to
    /// `opts.long_polling` for the first; an empty list if none arrived.
    /// Brokers clamp the wait (Tern and the reference server to 5..=20 s).
    /// When several brokers hold the topic, each is asked in turn until
    /// one has messages, so an empty round waits once per broker.
    pub async fn receive(
        &self,
        opts: &ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>, ClientError> {
        let route = self.route(&opts.topic).await?;
        let n = route.readable.len();
        if n == 0 {
            return Err(ClientError::Broker {
                action: format!("receiving from topic {}", opts.topic),
                code: pb::Code::Forbidden as i32,
                message: format!("topic {} has no readable queue", opts.topic),
            });
        }
        let first = self.next_broker.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let address = &route.readable[(first + i) % n];
            let messages = self.receive_from(address, opts).await?;
            if !messages.is_empty() {
                return Ok(messages);
            }
        }
        Ok(Vec::new())
    }

    async fn receive_from(
        &self,
        address: &str,
        opts: &ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>, ClientError> {
        let action = format!(
            "receiving from topic {} as group {}",
            opts.topic, opts.group
        );
        let batch_size = i32::try_from(opts.batch_size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ClientError::InvalidArgument("batch size must be 1 or more".into()))?;
        let req = pb::ReceiveMessageRequest {
            group: Some(resource(opts.group.as_str())),
            message_queue: Some(pb::MessageQueue {
                topic: Some(resource(opts.topic.as_str())),
                id: -1,
                permission: pb::Permission::Read as i32,
                broker: None,
                accept_message_types: Vec::new(),
            }),
            filter_expression: Some(pb::FilterExpression {
                r#type: pb::FilterType::Tag as i32,
                expression: opts.filter.clone(),
            }),
            batch_size,
            invisible_duration: Some(duration(opts.invisible)),
            auto_renew: false,
            long_polling_timeout: Some(duration(opts.long_polling)),
            attempt_id: None,
        };
        // A broker may hold a receive longer than asked (the reference
        // server waits at least 5 s) and refuses one whose deadline leaves
        // it less: give it the longest wait it may take, plus the call time.
        let timeout = opts.long_polling.max(MAX_BROKER_LONG_POLLING) + self.call_timeout;
        let mut stream = self
            .broker(address)
            .await?
            .receive_message(self.request(req, timeout))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner();
        let mut messages = Vec::new();
        while let Some(item) = stream
            .message()
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
        {
            match item.content {
                Some(pb::receive_message_response::Content::Status(s)) => {
                    if s.code == pb::Code::MessageNotFound as i32 {
                        return Ok(Vec::new());
                    }
                    check(&action, Some(&s))?;
                }
                Some(pb::receive_message_response::Content::Message(m)) => {
                    messages.push(received(&action, address, m)?);
                }
                Some(pb::receive_message_response::Content::DeliveryTimestamp(_)) | None => {}
            }
        }
        Ok(messages)
    }

    /// Acknowledges `messages`, received by `group`: they are done and
    /// will not be delivered to the group again. Each goes to the broker
    /// that delivered it. Fails on the first message the broker refused
    /// (an expired or stale receipt, say).
    pub async fn ack(
        &self,
        group: &GroupName,
        messages: &[ReceivedMessage],
    ) -> Result<(), ClientError> {
        let mut batches: BTreeMap<(&str, &TopicName), Vec<pb::AckMessageEntry>> = BTreeMap::new();
        for m in messages {
            batches
                .entry((m.broker_address.as_str(), &m.topic))
                .or_default()
                .push(pb::AckMessageEntry {
                    message_id: m.message_id.clone(),
                    receipt_handle: m.receipt_handle.clone(),
                    lite_topic: None,
                });
        }
        for ((address, topic), entries) in batches {
            let action = format!("acknowledging messages of topic {topic} as group {group}");
            let req = pb::AckMessageRequest {
                group: Some(resource(group.as_str())),
                topic: Some(resource(topic.as_str())),
                entries,
            };
            let resp = self
                .broker(address)
                .await?
                .ack_message(self.request(req, self.call_timeout))
                .await
                .map_err(|s| ClientError::grpc(&action, &s))?
                .into_inner();
            for e in &resp.entries {
                check(
                    &format!("{action} (message {})", e.message_id),
                    e.status.as_ref(),
                )?;
            }
            check(&action, resp.status.as_ref())?;
        }
        Ok(())
    }
}

fn service(channel: Channel) -> MessagingServiceClient<Channel> {
    MessagingServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES)
}

/// The access point as QueryRoute's `endpoints`: what the client dialled.
fn dialled(endpoints: &Endpoints) -> pb::Endpoints {
    let addresses: Vec<pb::Address> = endpoints
        .hosts()
        .map(|(host, port)| pb::Address {
            host: host.to_owned(),
            port: i32::from(port),
        })
        .collect();
    let scheme = addresses
        .first()
        .map_or(pb::AddressScheme::DomainName, |a| address_scheme(&a.host));
    pb::Endpoints {
        scheme: scheme as i32,
        addresses,
    }
}

/// `<host>@<pid>@<random>`: unique per process run, readable in broker
/// logs.
fn client_id() -> String {
    let mut nonce = [0u8; 4];
    let nonce = match getrandom::fill(&mut nonce) {
        Ok(()) => u32::from_be_bytes(nonce),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    };
    format!("{}@{}@tern-cli-{nonce:08x}", hostname(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_name_the_process() {
        let id = client_id();
        assert!(
            id.contains(&format!("@{}@tern-cli-", std::process::id())),
            "{id}"
        );
        assert_ne!(id, client_id());
    }
}
