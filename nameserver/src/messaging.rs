//! The part of `apache.rocketmq.v2.MessagingService` a RocketMQ client
//! needs to use a name server as its access point: routes merged across
//! the live brokers, the Telemetry settings handshake, assignments,
//! heartbeats and termination notices. Messages themselves go to brokers:
//! every other RPC answers `BAD_REQUEST` saying so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tern_model::{GroupName, TopicName};
use tern_protocol::convert::accepted_types;
use tern_protocol::endpoints::endpoints;
use tern_protocol::settings::{self, ServerLimits};
use tern_protocol::status::{ok, status};
use tern_protocol::telemetry;
use tern_protocol::v2::messaging_service_server::MessagingService;
use tern_protocol::v2::*;
use tokio::sync::watch;
use tokio_stream::Iter;
use tonic::{Request, Response, Streaming};

use crate::registry::{BrokerRoute, Registry};

/// Longest long-polling wait of one receive, as told to consumers (the
/// broker's limit).
const LONG_POLLING: Duration = Duration::from_secs(20);

type Reply<T> = Result<Response<T>, tonic::Status>;
type Items<T> = Iter<std::vec::IntoIter<Result<T, tonic::Status>>>;

/// The client-facing service of a name server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Messaging {
    registry: Arc<Registry>,
    closing: watch::Receiver<bool>,
}

impl Messaging {
    /// Serves routes from `registry`; open Telemetry streams end once
    /// `closing` turns true.
    pub fn new(registry: Arc<Registry>, closing: watch::Receiver<bool>) -> Self {
        Self { registry, closing }
    }

    fn route(&self, req: &QueryRouteRequest) -> Result<Vec<MessageQueue>, Status> {
        let (resource, brokers) = self.brokers_of(req.topic.as_ref())?;
        let resource = &resource;
        Ok(brokers
            .iter()
            .flat_map(|b| (0..b.topic.queues).map(move |q| queue(resource, b, id(q))))
            .collect())
    }

    fn assignment(&self, req: &QueryAssignmentRequest) -> Result<Vec<Assignment>, Status> {
        let (resource, brokers) = self.brokers_of(req.topic.as_ref())?;
        let group = req.group.as_ref().map(|g| g.name.as_str()).unwrap_or("");
        let group = GroupName::new(group)
            .map_err(|e| status(Code::IllegalConsumerGroup, format!("group: {e}")))?;
        let fifo = self
            .registry
            .group(group.as_str(), Instant::now())
            .is_some_and(|g| g.fifo);
        let readable: Vec<&BrokerRoute> = brokers.iter().filter(|b| b.topic.readable()).collect();
        if readable.is_empty() {
            return Err(status(
                Code::Forbidden,
                format!("no broker lets topic {} be read", resource.name),
            ));
        }
        // Per readable broker: the whole broker (queue -1) for a normal
        // group, each queue for a FIFO group.
        Ok(readable
            .into_iter()
            .flat_map(|b| {
                let ids: Vec<i32> = if fifo {
                    (0..b.topic.queues).map(id).collect()
                } else {
                    vec![-1]
                };
                let resource = &resource;
                ids.into_iter().map(move |i| Assignment {
                    message_queue: Some(queue(resource, b, i)),
                })
            })
            .collect())
    }

    fn brokers_of(&self, r: Option<&Resource>) -> Result<(Resource, Vec<BrokerRoute>), Status> {
        let resource = r.cloned().unwrap_or_default();
        let name = TopicName::new(resource.name.as_str())
            .map_err(|e| status(Code::IllegalTopic, format!("topic: {e}")))?;
        let brokers = self.registry.route(name.as_str(), Instant::now());
        if brokers.is_empty() {
            return Err(status(
                Code::TopicNotFound,
                format!("no live broker serves topic {name}"),
            ));
        }
        Ok((resource, brokers))
    }

    fn settings(&self, s: Settings) -> Settings {
        let limits = ServerLimits {
            max_body_bytes: tern_model::DEFAULT_MAX_BODY_BYTES,
            long_polling: LONG_POLLING,
        };
        settings::merge(s, limits, |group| {
            self.registry.group(group, Instant::now())
        })
    }
}

fn id(q: u32) -> i32 {
    i32::try_from(q).unwrap_or(i32::MAX)
}

fn queue(resource: &Resource, b: &BrokerRoute, id: i32) -> MessageQueue {
    MessageQueue {
        topic: Some(resource.clone()),
        id,
        permission: Permission::from(b.topic.permission) as i32,
        broker: Some(Broker {
            name: b.broker.clone(),
            id: 0,
            endpoints: b.endpoints.first().and_then(|e| endpoints(e)),
        }),
        accept_message_types: accepted_types(b.topic.message_type),
    }
}

/// `CLIENT_ID_REQUIRED` unless the request names its client.
fn client_id<T>(req: &Request<T>) -> Result<String, Status> {
    tern_protocol::status::client_id(req.metadata())
}

/// The answer to an RPC that only brokers serve.
fn broker_only(rpc: &str) -> Status {
    status(
        Code::BadRequest,
        format!(
            "this is a Tern name server: it serves routes, not messages; send {rpc} to a broker \
             endpoint of the topic's route"
        ),
    )
}

/// Resolves once `closing` turns true (or its sender is gone).
async fn closed(mut closing: watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

fn reply<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

fn stream<T>(item: T) -> Reply<Items<T>> {
    reply(tokio_stream::iter(vec![Ok(item)]))
}

#[tonic::async_trait]
impl MessagingService for Messaging {
    async fn query_route(&self, req: Request<QueryRouteRequest>) -> Reply<QueryRouteResponse> {
        let answer = client_id(&req).and_then(|_| self.route(req.get_ref()));
        reply(match answer {
            Ok(message_queues) => QueryRouteResponse {
                status: Some(ok()),
                message_queues,
            },
            Err(s) => QueryRouteResponse {
                status: Some(s),
                message_queues: Vec::new(),
            },
        })
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Reply<HeartbeatResponse> {
        let s = client_id(&req).map_or_else(|s| s, |_| ok());
        reply(HeartbeatResponse { status: Some(s) })
    }

    async fn send_message(&self, _: Request<SendMessageRequest>) -> Reply<SendMessageResponse> {
        reply(SendMessageResponse {
            status: Some(broker_only("SendMessage")),
            entries: Vec::new(),
        })
    }

    async fn query_assignment(
        &self,
        req: Request<QueryAssignmentRequest>,
    ) -> Reply<QueryAssignmentResponse> {
        let answer = client_id(&req).and_then(|_| self.assignment(req.get_ref()));
        reply(match answer {
            Ok(assignments) => QueryAssignmentResponse {
                status: Some(ok()),
                assignments,
            },
            Err(s) => QueryAssignmentResponse {
                status: Some(s),
                assignments: Vec::new(),
            },
        })
    }

    type ReceiveMessageStream = Items<ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        _: Request<ReceiveMessageRequest>,
    ) -> Reply<Self::ReceiveMessageStream> {
        stream(ReceiveMessageResponse {
            content: Some(receive_message_response::Content::Status(broker_only(
                "ReceiveMessage",
            ))),
        })
    }

    async fn ack_message(&self, _: Request<AckMessageRequest>) -> Reply<AckMessageResponse> {
        reply(AckMessageResponse {
            status: Some(broker_only("AckMessage")),
            entries: Vec::new(),
        })
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        _: Request<ForwardMessageToDeadLetterQueueRequest>,
    ) -> Reply<ForwardMessageToDeadLetterQueueResponse> {
        reply(ForwardMessageToDeadLetterQueueResponse {
            status: Some(broker_only("ForwardMessageToDeadLetterQueue")),
        })
    }

    type PullMessageStream = Items<PullMessageResponse>;

    async fn pull_message(&self, _: Request<PullMessageRequest>) -> Reply<Self::PullMessageStream> {
        stream(PullMessageResponse {
            content: Some(pull_message_response::Content::Status(broker_only(
                "PullMessage",
            ))),
        })
    }

    async fn update_offset(&self, _: Request<UpdateOffsetRequest>) -> Reply<UpdateOffsetResponse> {
        reply(UpdateOffsetResponse {
            status: Some(broker_only("UpdateOffset")),
        })
    }

    async fn get_offset(&self, _: Request<GetOffsetRequest>) -> Reply<GetOffsetResponse> {
        reply(GetOffsetResponse {
            status: Some(broker_only("GetOffset")),
            offset: 0,
        })
    }

    async fn query_offset(&self, _: Request<QueryOffsetRequest>) -> Reply<QueryOffsetResponse> {
        reply(QueryOffsetResponse {
            status: Some(broker_only("QueryOffset")),
            offset: 0,
        })
    }

    async fn end_transaction(
        &self,
        _: Request<EndTransactionRequest>,
    ) -> Reply<EndTransactionResponse> {
        reply(EndTransactionResponse {
            status: Some(broker_only("EndTransaction")),
        })
    }

    type TelemetryStream = telemetry::TelemetryStream;

    /// Answers each `settings` command at once with the merged settings
    /// (the consumer group's policy as its brokers registered it); keeps
    /// the stream open until the client closes it or the server stops.
    async fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Reply<Self::TelemetryStream> {
        let client = client_id(&req);
        let closed = closed(self.closing.clone());
        let this = self.clone();
        reply(telemetry::serve(
            client,
            req.into_inner(),
            closed,
            move |s| this.settings(s),
            tokio_stream::pending(),
        ))
    }

    async fn notify_client_termination(
        &self,
        req: Request<NotifyClientTerminationRequest>,
    ) -> Reply<NotifyClientTerminationResponse> {
        let s = client_id(&req).map_or_else(|s| s, |_| ok());
        reply(NotifyClientTerminationResponse { status: Some(s) })
    }

    async fn change_invisible_duration(
        &self,
        _: Request<ChangeInvisibleDurationRequest>,
    ) -> Reply<ChangeInvisibleDurationResponse> {
        reply(ChangeInvisibleDurationResponse {
            status: Some(broker_only("ChangeInvisibleDuration")),
            receipt_handle: String::new(),
        })
    }

    async fn recall_message(
        &self,
        _: Request<RecallMessageRequest>,
    ) -> Reply<RecallMessageResponse> {
        reply(RecallMessageResponse {
            status: Some(broker_only("RecallMessage")),
            message_id: String::new(),
        })
    }

    async fn sync_lite_subscription(
        &self,
        _: Request<SyncLiteSubscriptionRequest>,
    ) -> Reply<SyncLiteSubscriptionResponse> {
        reply(SyncLiteSubscriptionResponse {
            status: Some(broker_only("SyncLiteSubscription")),
        })
    }
}
