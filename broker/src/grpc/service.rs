//! `impl MessagingService for Messaging`: the 17 RPCs.

use std::pin::Pin;
use std::task::{Context, Poll};
use tern_protocol::v2::messaging_service_server::MessagingService;
use tern_protocol::v2::*;

use tokio_stream::{Iter, Stream};
use tonic::{Request, Response, Streaming};

use tern_model::{GroupName, TopicName};

use super::Messaging;
use super::convert::{accepted_types, duration_ms, endpoints, group_name, permission, topic_name};
use super::receive::grpc_deadline;
use super::status::{Client, ok, overall};
use super::telemetry::TelemetryStream;
use crate::consume::StreamGuard;
use crate::routes::{Place, RouteQueue};

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

/// The validated group and topic a settling request (ack, change
/// invisibility, dead-letter) names; its receipt handles must have been
/// issued to them.
fn owner(
    c: &Client,
    group: Option<&Resource>,
    topic: Option<&Resource>,
) -> Result<(GroupName, TopicName), Status> {
    Ok((group_name(c, group)?, topic_name(c, topic)?))
}

/// Evaluates to the caller, or returns the response `$make(status)`: a
/// missing client id, or a caller refused by the access checks for what
/// the request touches.
macro_rules! client {
    ($self:ident, $rpc:literal, $req:expr, $make:expr) => {
        match Client::of(&$req).and_then(|c| $self.admit(&$req, $rpc).map(|()| c)) {
            Ok(c) => c,
            Err(s) => return reply($make(s)),
        }
    };
}

impl Messaging {
    /// The topic's route ([`crate::routes::Routes::route`]).
    async fn route(
        &self,
        c: &Client,
        req: &QueryRouteRequest,
    ) -> Result<Vec<MessageQueue>, Status> {
        let name = topic_name(c, req.topic.as_ref())?;
        let queues = self
            .shared
            .routes
            .route(&name)
            .await
            .map_err(|e| c.error(&e))?;
        Ok(queues
            .into_iter()
            .map(|q| self.queue(q, req.endpoints.as_ref()))
            .collect())
    }

    /// Assignments for a push consumer
    /// ([`crate::routes::Routes::assignment`]).
    async fn assignment(
        &self,
        c: &Client,
        req: &QueryAssignmentRequest,
    ) -> Result<Vec<Assignment>, Status> {
        let name = topic_name(c, req.topic.as_ref())?;
        let group = group_name(c, req.group.as_ref())?;
        let queues = self
            .shared
            .routes
            .assignment(&name, &group)
            .await
            .map_err(|e| c.error(&e))?;
        Ok(queues
            .into_iter()
            .map(|q| Assignment {
                message_queue: Some(self.queue(q, req.endpoints.as_ref())),
            })
            .collect())
    }

    /// A route entry as the protocol carries it; this broker is at the
    /// endpoints the client `dialled` where the entry says so, else at
    /// its advertised address.
    fn queue(&self, q: RouteQueue, dialled: Option<&Endpoints>) -> MessageQueue {
        let cfg = &self.shared.cfg;
        let broker = match q.place {
            Place::Local {
                dialled: at_dialled,
            } => Broker {
                name: cfg.broker_name.clone(),
                id: 0,
                endpoints: dialled
                    .filter(|e| at_dialled && !e.addresses.is_empty())
                    .cloned()
                    .or_else(|| endpoints(&cfg.advertised_address)),
            },
            Place::Remote { broker, endpoint } => Broker {
                name: broker,
                id: 0,
                endpoints: endpoint.and_then(|e| endpoints(&e)),
            },
        };
        MessageQueue {
            topic: Some(Resource {
                resource_namespace: String::new(),
                name: q.topic.name().to_string(),
            }),
            id: q.queue_id,
            permission: permission(q.topic.permission()) as i32,
            broker: Some(broker),
            accept_message_types: accepted_types(q.topic.message_type()),
        }
    }

    async fn ack(&self, c: &Client, req: AckMessageRequest) -> AckMessageResponse {
        let (group, topic) = match owner(c, req.group.as_ref(), req.topic.as_ref()) {
            Ok(o) => o,
            Err(s) => {
                return AckMessageResponse {
                    status: Some(s),
                    entries: Vec::new(),
                };
            }
        };
        let handles: Vec<String> = req
            .entries
            .iter()
            .map(|e| e.receipt_handle.clone())
            .collect();
        let results = self.shared.consume.ack(&group, &topic, handles).await;
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
        let ms = req.invisible_duration.as_ref().map_or(0, duration_ms);
        let changed = match owner(c, req.group.as_ref(), req.topic.as_ref()) {
            Ok((group, topic)) => self
                .shared
                .consume
                .change_invisible(&group, &topic, req.receipt_handle, ms)
                .await
                .map_err(|e| c.error(&e)),
            Err(s) => Err(s),
        };
        match changed {
            Ok(new) => ChangeInvisibleDurationResponse {
                status: Some(ok()),
                receipt_handle: new,
            },
            Err(s) => ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: String::new(),
            },
        }
    }
}

#[tonic::async_trait]
impl MessagingService for Messaging {
    async fn query_route(&self, req: Request<QueryRouteRequest>) -> Reply<QueryRouteResponse> {
        let c = client!(self, "QueryRoute", req, |s| QueryRouteResponse {
            status: Some(s),
            message_queues: Vec::new(),
        });
        reply(match self.route(&c, req.get_ref()).await {
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
        let c = client!(self, "Heartbeat", req, |s| HeartbeatResponse {
            status: Some(s)
        });
        self.shared.consume.renewals().touch(&c.id);
        reply(HeartbeatResponse { status: Some(ok()) })
    }

    async fn send_message(&self, req: Request<SendMessageRequest>) -> Reply<SendMessageResponse> {
        let c = client!(self, "SendMessage", req, |s| SendMessageResponse {
            status: Some(s),
            entries: Vec::new(),
        });
        reply(self.send(&c, req.into_inner()).await)
    }

    async fn query_assignment(
        &self,
        req: Request<QueryAssignmentRequest>,
    ) -> Reply<QueryAssignmentResponse> {
        let c = client!(self, "QueryAssignment", req, |s| QueryAssignmentResponse {
            status: Some(s),
            assignments: Vec::new(),
        });
        reply(match self.assignment(&c, req.get_ref()).await {
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
        let c = match Client::of(&req).and_then(|c| self.admit(&req, "ReceiveMessage").map(|()| c))
        {
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
        let c = client!(self, "AckMessage", req, |s| AckMessageResponse {
            status: Some(s),
            entries: Vec::new(),
        });
        reply(self.ack(&c, req.into_inner()).await)
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        req: Request<ForwardMessageToDeadLetterQueueRequest>,
    ) -> Reply<ForwardMessageToDeadLetterQueueResponse> {
        let c = client!(self, "ForwardMessageToDeadLetterQueue", req, |s| {
            ForwardMessageToDeadLetterQueueResponse { status: Some(s) }
        });
        let req = req.into_inner();
        let (group, topic) = match owner(&c, req.group.as_ref(), req.topic.as_ref()) {
            Ok(o) => o,
            Err(s) => return reply(ForwardMessageToDeadLetterQueueResponse { status: Some(s) }),
        };
        let r = self
            .shared
            .consume
            .forward_to_dlq(&group, &topic, req.receipt_handle)
            .await;
        reply(ForwardMessageToDeadLetterQueueResponse {
            status: Some(r.map_or_else(|e| c.error(&e), |()| ok())),
        })
    }

    type PullMessageStream = Items<PullMessageResponse>;

    async fn pull_message(
        &self,
        req: Request<PullMessageRequest>,
    ) -> Reply<Self::PullMessageStream> {
        let deadline = grpc_deadline(req.metadata());
        let c = match Client::of(&req).and_then(|c| self.admit(&req, "PullMessage").map(|()| c)) {
            Ok(c) => c,
            Err(s) => {
                return stream(vec![PullMessageResponse {
                    content: Some(pull_message_response::Content::Status(s)),
                }]);
            }
        };
        stream(self.pull(&c, req.into_inner(), deadline).await)
    }

    async fn update_offset(
        &self,
        req: Request<UpdateOffsetRequest>,
    ) -> Reply<UpdateOffsetResponse> {
        let c = client!(self, "UpdateOffset", req, |s| UpdateOffsetResponse {
            status: Some(s)
        });
        reply(UpdateOffsetResponse {
            status: Some(self.set_offset(&c, req.into_inner()).await),
        })
    }

    async fn get_offset(&self, req: Request<GetOffsetRequest>) -> Reply<GetOffsetResponse> {
        let c = client!(self, "GetOffset", req, |s| GetOffsetResponse {
            status: Some(s),
            offset: 0,
        });
        reply(match self.read_offset(&c, req.get_ref()) {
            Ok(offset) => GetOffsetResponse {
                status: Some(ok()),
                offset,
            },
            Err(s) => GetOffsetResponse {
                status: Some(s),
                offset: 0,
            },
        })
    }

    async fn query_offset(&self, req: Request<QueryOffsetRequest>) -> Reply<QueryOffsetResponse> {
        let c = client!(self, "QueryOffset", req, |s| QueryOffsetResponse {
            status: Some(s),
            offset: 0,
        });
        reply(match self.find_offset(&c, req.into_inner()).await {
            Ok(offset) => QueryOffsetResponse {
                status: Some(ok()),
                offset,
            },
            Err(s) => QueryOffsetResponse {
                status: Some(s),
                offset: 0,
            },
        })
    }

    async fn end_transaction(
        &self,
        req: Request<EndTransactionRequest>,
    ) -> Reply<EndTransactionResponse> {
        let c = client!(self, "EndTransaction", req, |s| EndTransactionResponse {
            status: Some(s)
        });
        reply(EndTransactionResponse {
            status: Some(self.end_transaction_status(&c, req.into_inner()).await),
        })
    }

    type TelemetryStream = Tracked<TelemetryStream>;

    async fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> Reply<Self::TelemetryStream> {
        // The settings it will carry are not known yet: the caller is
        // authenticated here, its topics and groups checked by the other
        // RPCs it makes.
        self.shared
            .access
            .check(
                &super::access::caller(&req, "Telemetry"),
                &[],
                std::time::SystemTime::now(),
            )
            .map_err(|d| super::access::grpc_status(&d))?;
        // While the stream is open, the client counts as alive for
        // `auto_renew`.
        let guard = Client::of(&req)
            .ok()
            .map(|c| self.shared.consume.renewals().stream_opened(&c.id));
        Ok(Messaging::telemetry(self, req).map(|inner| Tracked {
            inner,
            _guard: guard,
        }))
    }

    async fn notify_client_termination(
        &self,
        req: Request<NotifyClientTerminationRequest>,
    ) -> Reply<NotifyClientTerminationResponse> {
        let c = client!(self, "NotifyClientTermination", req, |s| {
            NotifyClientTerminationResponse { status: Some(s) }
        });
        self.shared.consume.renewals().terminated(&c.id);
        reply(NotifyClientTerminationResponse { status: Some(ok()) })
    }

    async fn change_invisible_duration(
        &self,
        req: Request<ChangeInvisibleDurationRequest>,
    ) -> Reply<ChangeInvisibleDurationResponse> {
        let c = client!(self, "ChangeInvisibleDuration", req, |s| {
            ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: String::new(),
            }
        });
        reply(self.change_invisible(&c, req.into_inner()).await)
    }

    async fn recall_message(
        &self,
        req: Request<RecallMessageRequest>,
    ) -> Reply<RecallMessageResponse> {
        let c = client!(self, "RecallMessage", req, |s| RecallMessageResponse {
            status: Some(s),
            message_id: String::new(),
        });
        reply(self.recall(&c, req.into_inner()).await)
    }

    async fn sync_lite_subscription(
        &self,
        req: Request<SyncLiteSubscriptionRequest>,
    ) -> Reply<SyncLiteSubscriptionResponse> {
        if let Err(d) = self.shared.access.check(
            &super::access::caller(&req, "SyncLiteSubscription"),
            &[],
            std::time::SystemTime::now(),
        ) {
            return reply(SyncLiteSubscriptionResponse {
                status: Some(super::access::body_status(&d)),
            });
        }
        reply(SyncLiteSubscriptionResponse {
            status: Some(not_implemented("SyncLiteSubscription")),
        })
    }
}

/// A Telemetry stream that holds the client's liveness guard until the
/// stream ends (the client closed it or went away).
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    _guard: Option<StreamGuard>,
}

impl<S: Stream + Unpin> Stream for Tracked<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
