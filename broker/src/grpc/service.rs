//! `impl MessagingService for Messaging`: the 17 RPCs.

use tern_protocol::v2::messaging_service_server::MessagingService;
use tern_protocol::v2::*;
use tokio_stream::Iter;
use tonic::{Request, Response, Streaming};

use super::convert::{accepted_types, endpoints, group_name, now_ms, permission, topic_name};
use super::receive::grpc_deadline;
use super::status::{Client, ok, overall};
use super::telemetry::TelemetryStream;
use super::{Messaging, blocking};
use crate::meta::TopicConfig;

type Reply<T> = Result<Response<T>, tonic::Status>;
type Items<T> = Iter<std::vec::IntoIter<Result<T, tonic::Status>>>;

fn reply<T>(t: T) -> Reply<T> {
    Ok(Response::new(t))
}

fn stream<T>(items: Vec<T>) -> Reply<Items<T>> {
    reply(tokio_stream::iter(
        items.into_iter().map(Ok).collect::<Vec<_>>(),
    ))
}

/// The answer of an RPC this broker does not implement yet.
fn not_implemented(rpc: &str) -> Status {
    super::status::status(
        Code::NotImplemented,
        format!("{rpc} is not implemented by this broker yet"),
    )
}

/// Evaluates to the caller, or returns the response `$make(status)`.
macro_rules! client {
    ($req:expr, $make:expr) => {
        match Client::of(&$req) {
            Ok(c) => c,
            Err(s) => return reply($make(s)),
        }
    };
}

impl Messaging {
    fn route(&self, c: &Client, req: &QueryRouteRequest) -> Result<Vec<MessageQueue>, Status> {
        let name = topic_name(c, req.topic.as_ref())?;
        let topic = self
            .shared
            .registry
            .topic(name.as_str())
            .map_err(|e| c.error(&e))?;
        let broker = self.broker(req.endpoints.as_ref());
        Ok((0..topic.queues())
            .map(|id| self.queue(&topic, i32::try_from(id).unwrap_or(i32::MAX), &broker))
            .collect())
    }

    /// This broker, reachable at the endpoints the client dialled, else
    /// at the advertised address.
    fn broker(&self, dialled: Option<&Endpoints>) -> Broker {
        let cfg = &self.shared.cfg;
        let endpoints = dialled
            .filter(|e| !e.addresses.is_empty())
            .cloned()
            .or_else(|| endpoints(&cfg.advertised_address));
        Broker {
            name: cfg.broker_name.clone(),
            id: 0,
            endpoints,
        }
    }

    fn queue(&self, topic: &TopicConfig, id: i32, broker: &Broker) -> MessageQueue {
        MessageQueue {
            topic: Some(Resource {
                resource_namespace: String::new(),
                name: topic.name().to_string(),
            }),
            id,
            permission: permission(topic.permission()) as i32,
            broker: Some(broker.clone()),
            accept_message_types: accepted_types(topic.message_type()),
        }
    }

    fn assignment(
        &self,
        c: &Client,
        req: &QueryAssignmentRequest,
    ) -> Result<Vec<Assignment>, Status> {
        let name = topic_name(c, req.topic.as_ref())?;
        let group = group_name(c, req.group.as_ref())?;
        let sh = &self.shared;
        let topic = sh.registry.topic(name.as_str()).map_err(|e| c.error(&e))?;
        if !topic.permission().readable() {
            return Err(c.status(Code::Forbidden, format!("topic {name} is not readable")));
        }
        let fifo = sh.registry.group(group.as_str()).is_ok_and(|g| g.fifo());
        let broker = self.broker(req.endpoints.as_ref());
        let ids: Vec<i32> = if fifo {
            (0..topic.queues())
                .map(|q| i32::try_from(q).unwrap_or(i32::MAX))
                .collect()
        } else {
            vec![-1]
        };
        Ok(ids
            .into_iter()
            .map(|id| Assignment {
                message_queue: Some(self.queue(&topic, id, &broker)),
            })
            .collect())
    }

    async fn ack(&self, c: &Client, req: AckMessageRequest) -> AckMessageResponse {
        let pop = self.shared.pop.clone();
        let handles: Vec<String> = req
            .entries
            .iter()
            .map(|e| e.receipt_handle.clone())
            .collect();
        let results = blocking(move || Ok(handles.iter().map(|h| pop.ack(h)).collect::<Vec<_>>()))
            .await
            .unwrap_or_else(|e| vec![Err(e)]);
        let entries: Vec<AckMessageResultEntry> = req
            .entries
            .into_iter()
            .zip(results.iter().chain(std::iter::repeat(&Ok(()))))
            .map(|(e, r)| AckMessageResultEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                status: Some(r.as_ref().map_or_else(|e| c.error(e), |()| ok())),
            })
            .collect();
        AckMessageResponse {
            status: Some(overall(entries.iter().filter_map(|e| e.status.as_ref()))),
            entries,
        }
    }

    async fn change_invisible(
        &self,
        c: &Client,
        req: ChangeInvisibleDurationRequest,
    ) -> ChangeInvisibleDurationResponse {
        let ms = req
            .invisible_duration
            .as_ref()
            .map_or(0, super::convert::duration_ms);
        if ms <= 0 {
            return ChangeInvisibleDurationResponse {
                status: Some(c.status(
                    Code::IllegalInvisibleTime,
                    "invisible duration must be positive",
                )),
                receipt_handle: String::new(),
            };
        }
        let pop = self.shared.pop.clone();
        let handle = req.receipt_handle;
        match blocking(move || pop.change_invisible(&handle, ms, now_ms())).await {
            Ok(new) => ChangeInvisibleDurationResponse {
                status: Some(ok()),
                receipt_handle: new,
            },
            Err(e) => ChangeInvisibleDurationResponse {
                status: Some(c.error(&e)),
                receipt_handle: String::new(),
            },
        }
    }
}

#[tonic::async_trait]
impl MessagingService for Messaging {
    async fn query_route(&self, req: Request<QueryRouteRequest>) -> Reply<QueryRouteResponse> {
        let c = client!(req, |s| QueryRouteResponse {
            status: Some(s),
            message_queues: Vec::new(),
        });
        reply(match self.route(&c, req.get_ref()) {
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
        let _c = client!(req, |s| HeartbeatResponse { status: Some(s) });
        reply(HeartbeatResponse { status: Some(ok()) })
    }

    async fn send_message(&self, req: Request<SendMessageRequest>) -> Reply<SendMessageResponse> {
        let c = client!(req, |s| SendMessageResponse {
            status: Some(s),
            entries: Vec::new(),
        });
        reply(self.send(&c, req.into_inner()).await)
    }

    async fn query_assignment(
        &self,
        req: Request<QueryAssignmentRequest>,
    ) -> Reply<QueryAssignmentResponse> {
        let c = client!(req, |s| QueryAssignmentResponse {
            status: Some(s),
            assignments: Vec::new(),
        });
        reply(match self.assignment(&c, req.get_ref()) {
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
        req: Request<ReceiveMessageRequest>,
    ) -> Reply<Self::ReceiveMessageStream> {
        let deadline = grpc_deadline(req.metadata());
        let c = match Client::of(&req) {
            Ok(c) => c,
            Err(s) => {
                return stream(vec![ReceiveMessageResponse {
                    content: Some(receive_message_response::Content::Status(s)),
                }]);
            }
        };
        stream(self.receive(&c, req.into_inner(), deadline).await)
    }

    async fn ack_message(&self, req: Request<AckMessageRequest>) -> Reply<AckMessageResponse> {
        let c = client!(req, |s| AckMessageResponse {
            status: Some(s),
            entries: Vec::new(),
        });
        reply(self.ack(&c, req.into_inner()).await)
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        req: Request<ForwardMessageToDeadLetterQueueRequest>,
    ) -> Reply<ForwardMessageToDeadLetterQueueResponse> {
        let c = client!(req, |s| ForwardMessageToDeadLetterQueueResponse {
            status: Some(s)
        });
        let pop = self.shared.pop.clone();
        let handle = req.into_inner().receipt_handle;
        let r = blocking(move || pop.forward_to_dlq(&handle, now_ms())).await;
        reply(ForwardMessageToDeadLetterQueueResponse {
            status: Some(r.map_or_else(|e| c.error(&e), |()| ok())),
        })
    }

    type PullMessageStream = Items<PullMessageResponse>;

    async fn pull_message(
        &self,
        _req: Request<PullMessageRequest>,
    ) -> Reply<Self::PullMessageStream> {
        stream(vec![PullMessageResponse {
            content: Some(pull_message_response::Content::Status(not_implemented(
                "PullMessage",
            ))),
        }])
    }

    async fn update_offset(&self, _: Request<UpdateOffsetRequest>) -> Reply<UpdateOffsetResponse> {
        reply(UpdateOffsetResponse {
            status: Some(not_implemented("UpdateOffset")),
        })
    }

    async fn get_offset(&self, _: Request<GetOffsetRequest>) -> Reply<GetOffsetResponse> {
        reply(GetOffsetResponse {
            status: Some(not_implemented("GetOffset")),
            offset: 0,
        })
    }

    async fn query_offset(&self, _: Request<QueryOffsetRequest>) -> Reply<QueryOffsetResponse> {
        reply(QueryOffsetResponse {
            status: Some(not_implemented("QueryOffset")),
            offset: 0,
        })
    }

    async fn end_transaction(
        &self,
        _: Request<EndTransactionRequest>,
    ) -> Reply<EndTransactionResponse> {
        reply(EndTransactionResponse {
            status: Some(not_implemented("EndTransaction")),
        })
    }

    type TelemetryStream = TelemetryStream;

    async fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Reply<Self::TelemetryStream> {
        Ok(Messaging::telemetry(self, req))
    }

    async fn notify_client_termination(
        &self,
        req: Request<NotifyClientTerminationRequest>,
    ) -> Reply<NotifyClientTerminationResponse> {
        let _c = client!(req, |s| NotifyClientTerminationResponse { status: Some(s) });
        reply(NotifyClientTerminationResponse { status: Some(ok()) })
    }

    async fn change_invisible_duration(
        &self,
        req: Request<ChangeInvisibleDurationRequest>,
    ) -> Reply<ChangeInvisibleDurationResponse> {
        let c = client!(req, |s| ChangeInvisibleDurationResponse {
            status: Some(s),
            receipt_handle: String::new(),
        });
        reply(self.change_invisible(&c, req.into_inner()).await)
    }

    async fn recall_message(
        &self,
        _: Request<RecallMessageRequest>,
    ) -> Reply<RecallMessageResponse> {
        reply(RecallMessageResponse {
            status: Some(not_implemented("RecallMessage")),
            message_id: String::new(),
        })
    }

    async fn sync_lite_subscription(
        &self,
        _: Request<SyncLiteSubscriptionRequest>,
    ) -> Reply<SyncLiteSubscriptionResponse> {
        reply(SyncLiteSubscriptionResponse {
            status: Some(not_implemented("SyncLiteSubscription")),
        })
    }
}
