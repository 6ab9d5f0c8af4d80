//! What each request touches, for [`crate::auth::Access`], and its
//! refusals as statuses: in the response body (UNAUTHORIZED, FORBIDDEN) for
//! the RocketMQ service, as gRPC statuses (UNAUTHENTICATED,
//! PERMISSION_DENIED) for the admin service.

use std::time::SystemTime;

use tern_protocol::v2::*;
use tonic::Request;

use crate::auth::{Caller, Denied, Need};
use crate::meta::acl::Action;

/// The header the SDKs sign their requests in.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// The header holding the signed date.
pub const DATE_TIME_HEADER: &str = "x-mq-date-time";

/// The caller of `req`, as the checks need it.
pub(super) fn caller<'a, T>(req: &'a Request<T>, rpc: &'static str) -> Caller<'a> {
    let md = req.metadata();
    let header = |name| md.get(name).and_then(|v| v.to_str().ok());
    Caller {
        rpc,
        authorization: header(AUTHORIZATION_HEADER),
        date_time: header(DATE_TIME_HEADER),
        source: req.remote_addr().map(|a| a.ip()),
    }
}

impl super::Messaging {
    /// Checks `req`'s caller against `needs`; the body status to answer
    /// with when refused.
    pub(super) fn admit<T: Touches>(
        &self,
        req: &Request<T>,
        rpc: &'static str,
    ) -> Result<(), Status> {
        self.shared
            .access
            .check(&caller(req, rpc), &req.get_ref().needs(), SystemTime::now())
            .map(drop)
            .map_err(|d| body_status(&d))
    }
}

/// A refusal as the RocketMQ SDKs expect it in a response body.
pub(super) fn body_status(d: &Denied) -> Status {
    let code = match d {
        Denied::Unauthenticated(_) => Code::Unauthorized,
        Denied::Forbidden { .. } => Code::Forbidden,
    };
    super::status::status(code, d.to_string())
}

/// A refusal as a gRPC status (the admin service).
pub(super) fn grpc_status(d: &Denied) -> tonic::Status {
    match d {
        Denied::Unauthenticated(m) => tonic::Status::unauthenticated(m.clone()),
        Denied::Forbidden { .. } => tonic::Status::permission_denied(d.to_string()),
    }
}

/// What a RocketMQ request touches, as Apache RocketMQ's ACL 2.0 counts
/// it: sends, recalls and transaction ends publish to their topic; route
/// queries may publish or subscribe; everything a consumer does
/// subscribes, to the topic and as the group.
pub(super) trait Touches {
    fn needs(&self) -> Vec<Need>;
}

const PUB: &[Action] = &[Action::Pub];
const SUB: &[Action] = &[Action::Sub];
const PUB_OR_SUB: &[Action] = &[Action::Pub, Action::Sub];

fn name(r: Option<&Resource>) -> &str {
    r.map_or("", |r| r.name.as_str())
}

fn queue_topic(q: Option<&MessageQueue>) -> &str {
    name(q.and_then(|q| q.topic.as_ref()))
}

/// Subscribing as `group` to `topic`.
fn sub(group: &str, topic: &str) -> Vec<Need> {
    vec![Need::group(group, SUB), Need::topic(topic, SUB)]
}

/// `group` subscribes, when named (producers name none).
fn group_sub(group: Option<&Resource>) -> Vec<Need> {
    match name(group) {
        "" => Vec::new(),
        g => vec![Need::group(g, SUB)],
    }
}

impl Touches for QueryRouteRequest {
    fn needs(&self) -> Vec<Need> {
        vec![Need::topic(name(self.topic.as_ref()), PUB_OR_SUB)]
    }
}

impl Touches for HeartbeatRequest {
    fn needs(&self) -> Vec<Need> {
        group_sub(self.group.as_ref())
    }
}

impl Touches for SendMessageRequest {
    fn needs(&self) -> Vec<Need> {
        let mut topics: Vec<&str> = self
            .messages
            .iter()
            .map(|m| name(m.topic.as_ref()))
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics.into_iter().map(|t| Need::topic(t, PUB)).collect()
    }
}

impl Touches for QueryAssignmentRequest {
    fn needs(&self) -> Vec<Need> {
        sub(name(self.group.as_ref()), name(self.topic.as_ref()))
    }
}

impl Touches for ReceiveMessageRequest {
    fn needs(&self) -> Vec<Need> {
        sub(
            name(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        )
    }
}

impl Touches for AckMessageRequest {
    fn needs(&self) -> Vec<Need> {
        sub(name(self.group.as_ref()), name(self.topic.as_ref()))
    }
}

impl Touches for ForwardMessageToDeadLetterQueueRequest {
    fn needs(&self) -> Vec<Need> {
        sub(name(self.group.as_ref()), name(self.topic.as_ref()))
    }
}

impl Touches for PullMessageRequest {
    fn needs(&self) -> Vec<Need> {
        sub(
            name(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        )
    }
}

impl Touches for UpdateOffsetRequest {
    fn needs(&self) -> Vec<Need> {
        sub(
            name(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        )
    }
}

impl Touches for GetOffsetRequest {
    fn needs(&self) -> Vec<Need> {
        sub(
            name(self.group.as_ref()),
            queue_topic(self.message_queue.as_ref()),
        )
    }
}

impl Touches for QueryOffsetRequest {
    fn needs(&self) -> Vec<Need> {
        vec![Need::topic(queue_topic(self.message_queue.as_ref()), SUB)]
    }
}

impl Touches for EndTransactionRequest {
    fn needs(&self) -> Vec<Need> {
        vec![Need::topic(name(self.topic.as_ref()), PUB)]
    }
}

impl Touches for NotifyClientTerminationRequest {
    fn needs(&self) -> Vec<Need> {
        group_sub(self.group.as_ref())
    }
}

impl Touches for ChangeInvisibleDurationRequest {
    fn needs(&self) -> Vec<Need> {
        sub(name(self.group.as_ref()), name(self.topic.as_ref()))
    }
}

impl Touches for RecallMessageRequest {
    fn needs(&self) -> Vec<Need> {
        vec![Need::topic(name(self.topic.as_ref()), PUB)]
    }
}
