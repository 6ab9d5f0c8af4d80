//! The generated services answer at the right gRPC method paths.
//!
//! A probe implements every method of each generated trait (so a method
//! missing from, or extra in, the .proto fails to compile here) and answers
//! each call with a status naming the method. Each path is then called
//! through the generated tower service with a real gRPC request, and the
//! answer must come from the method of the same name.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::pin::Pin;

use http_body_util::Full;
use tonic::codegen::tokio_stream::Stream;
use tonic::codegen::{Bytes, Service, http};
use tonic::{Request, Response, Status, Streaming};

use tern_protocol::admin;
use tern_protocol::admin::tern_admin_server::{TernAdmin, TernAdminServer};
use tern_protocol::v2;
use tern_protocol::v2::messaging_service_server::{MessagingService, MessagingServiceServer};

/// The 17 RPCs of apache.rocketmq.v2.MessagingService (release v2.1.2).
const MESSAGING_RPCS: [&str; 17] = [
    "QueryRoute",
    "Heartbeat",
    "SendMessage",
    "QueryAssignment",
    "ReceiveMessage",
    "AckMessage",
    "ForwardMessageToDeadLetterQueue",
    "PullMessage",
    "UpdateOffset",
    "GetOffset",
    "QueryOffset",
    "EndTransaction",
    "Telemetry",
    "NotifyClientTermination",
    "ChangeInvisibleDuration",
    "RecallMessage",
    "SyncLiteSubscription",
];

const ADMIN_RPCS: [&str; 20] = [
    "CreateTopic",
    "UpdateTopic",
    "DescribeTopic",
    "ListTopics",
    "DeleteTopic",
    "CreateGroup",
    "UpdateGroup",
    "DescribeGroup",
    "ListGroups",
    "DeleteGroup",
    "ClusterStatus",
    "GetMessage",
    "QueryMessages",
    "CreateUser",
    "ListUsers",
    "UpdateUser",
    "DeleteUser",
    "GrantAccess",
    "RevokeAccess",
    "ListAccess",
];

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Answers every call with `UNIMPLEMENTED` and the method's name.
#[derive(Debug)]
struct Probe;

fn named<T>(method: &str) -> Result<T, Status> {
    Err(Status::unimplemented(method))
}

#[tonic::async_trait]
impl MessagingService for Probe {
    type ReceiveMessageStream = BoxStream<v2::ReceiveMessageResponse>;
    type PullMessageStream = BoxStream<v2::PullMessageResponse>;
    type TelemetryStream = BoxStream<v2::TelemetryCommand>;

    async fn query_route(
        &self,
        _: Request<v2::QueryRouteRequest>,
    ) -> Result<Response<v2::QueryRouteResponse>, Status> {
        named("QueryRoute")
    }
    async fn heartbeat(
        &self,
        _: Request<v2::HeartbeatRequest>,
    ) -> Result<Response<v2::HeartbeatResponse>, Status> {
        named("Heartbeat")
    }
    async fn send_message(
        &self,
        _: Request<v2::SendMessageRequest>,
    ) -> Result<Response<v2::SendMessageResponse>, Status> {
        named("SendMessage")
    }
    async fn query_assignment(
        &self,
        _: Request<v2::QueryAssignmentRequest>,
    ) -> Result<Response<v2::QueryAssignmentResponse>, Status> {
        named("QueryAssignment")
    }
    async fn receive_message(
        &self,
        _: Request<v2::ReceiveMessageRequest>,
    ) -> Result<Response<Self::ReceiveMessageStream>, Status> {
        named("ReceiveMessage")
    }
    async fn ack_message(
        &self,
        _: Request<v2::AckMessageRequest>,
    ) -> Result<Response<v2::AckMessageResponse>, Status> {
        named("AckMessage")
    }
    async fn forward_message_to_dead_letter_queue(
        &self,
        _: Request<v2::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<Response<v2::ForwardMessageToDeadLetterQueueResponse>, Status> {
        named("ForwardMessageToDeadLetterQueue")
    }
    async fn pull_message(
        &self,
        _: Request<v2::PullMessageRequest>,
    ) -> Result<Response<Self::PullMessageStream>, Status> {
        named("PullMessage")
    }
    async fn update_offset(
        &self,
        _: Request<v2::UpdateOffsetRequest>,
    ) -> Result<Response<v2::UpdateOffsetResponse>, Status> {
        named("UpdateOffset")
    }
    async fn get_offset(
        &self,
        _: Request<v2::GetOffsetRequest>,
    ) -> Result<Response<v2::GetOffsetResponse>, Status> {
        named("GetOffset")
    }
    async fn query_offset(
        &self,
        _: Request<v2::QueryOffsetRequest>,
    ) -> Result<Response<v2::QueryOffsetResponse>, Status> {
        named("QueryOffset")
    }
    async fn end_transaction(
        &self,
        _: Request<v2::EndTransactionRequest>,
    ) -> Result<Response<v2::EndTransactionResponse>, Status> {
        named("EndTransaction")
    }
    async fn telemetry(
        &self,
        _: Request<Streaming<v2::TelemetryCommand>>,
    ) -> Result<Response<Self::TelemetryStream>, Status> {
        named("Telemetry")
    }
    async fn notify_client_termination(
        &self,
        _: Request<v2::NotifyClientTerminationRequest>,
    ) -> Result<Response<v2::NotifyClientTerminationResponse>, Status> {
        named("NotifyClientTermination")
    }
    async fn change_invisible_duration(
        &self,
        _: Request<v2::ChangeInvisibleDurationRequest>,
    ) -> Result<Response<v2::ChangeInvisibleDurationResponse>, Status> {
        named("ChangeInvisibleDuration")
    }
    async fn recall_message(
        &self,
        _: Request<v2::RecallMessageRequest>,
    ) -> Result<Response<v2::RecallMessageResponse>, Status> {
        named("RecallMessage")
    }
    async fn sync_lite_subscription(
        &self,
        _: Request<v2::SyncLiteSubscriptionRequest>,
    ) -> Result<Response<v2::SyncLiteSubscriptionResponse>, Status> {
        named("SyncLiteSubscription")
    }
}

#[tonic::async_trait]
impl TernAdmin for Probe {
    async fn create_topic(
        &self,
        _: Request<admin::CreateTopicRequest>,
    ) -> Result<Response<admin::CreateTopicResponse>, Status> {
        named("CreateTopic")
    }
    async fn update_topic(
        &self,
        _: Request<admin::UpdateTopicRequest>,
    ) -> Result<Response<admin::UpdateTopicResponse>, Status> {
        named("UpdateTopic")
    }
    async fn describe_topic(
        &self,
        _: Request<admin::DescribeTopicRequest>,
    ) -> Result<Response<admin::DescribeTopicResponse>, Status> {
        named("DescribeTopic")
    }
    async fn list_topics(
        &self,
        _: Request<admin::ListTopicsRequest>,
    ) -> Result<Response<admin::ListTopicsResponse>, Status> {
        named("ListTopics")
    }
    async fn delete_topic(
        &self,
        _: Request<admin::DeleteTopicRequest>,
    ) -> Result<Response<admin::DeleteTopicResponse>, Status> {
        named("DeleteTopic")
    }
    async fn create_group(
        &self,
        _: Request<admin::CreateGroupRequest>,
    ) -> Result<Response<admin::CreateGroupResponse>, Status> {
        named("CreateGroup")
    }
    async fn update_group(
        &self,
        _: Request<admin::UpdateGroupRequest>,
    ) -> Result<Response<admin::UpdateGroupResponse>, Status> {
        named("UpdateGroup")
    }
    async fn describe_group(
        &self,
        _: Request<admin::DescribeGroupRequest>,
    ) -> Result<Response<admin::DescribeGroupResponse>, Status> {
        named("DescribeGroup")
    }
    async fn list_groups(
        &self,
        _: Request<admin::ListGroupsRequest>,
    ) -> Result<Response<admin::ListGroupsResponse>, Status> {
        named("ListGroups")
    }
    async fn delete_group(
        &self,
        _: Request<admin::DeleteGroupRequest>,
    ) -> Result<Response<admin::DeleteGroupResponse>, Status> {
        named("DeleteGroup")
    }
    async fn cluster_status(
        &self,
        _: Request<admin::ClusterStatusRequest>,
    ) -> Result<Response<admin::ClusterStatusResponse>, Status> {
        named("ClusterStatus")
    }
    async fn get_message(
        &self,
        _: Request<admin::GetMessageRequest>,
    ) -> Result<Response<admin::GetMessageResponse>, Status> {
        named("GetMessage")
    }
    async fn query_messages(
        &self,
        _: Request<admin::QueryMessagesRequest>,
    ) -> Result<Response<admin::QueryMessagesResponse>, Status> {
        named("QueryMessages")
    }
    async fn create_user(
        &self,
        _: Request<admin::CreateUserRequest>,
    ) -> Result<Response<admin::CreateUserResponse>, Status> {
        named("CreateUser")
    }
    async fn list_users(
        &self,
        _: Request<admin::ListUsersRequest>,
    ) -> Result<Response<admin::ListUsersResponse>, Status> {
        named("ListUsers")
    }
    async fn update_user(
        &self,
        _: Request<admin::UpdateUserRequest>,
    ) -> Result<Response<admin::UpdateUserResponse>, Status> {
        named("UpdateUser")
    }
    async fn delete_user(
        &self,
        _: Request<admin::DeleteUserRequest>,
    ) -> Result<Response<admin::DeleteUserResponse>, Status> {
        named("DeleteUser")
    }
    async fn grant_access(
        &self,
        _: Request<admin::GrantAccessRequest>,
    ) -> Result<Response<admin::GrantAccessResponse>, Status> {
        named("GrantAccess")
    }
    async fn revoke_access(
        &self,
        _: Request<admin::RevokeAccessRequest>,
    ) -> Result<Response<admin::RevokeAccessResponse>, Status> {
        named("RevokeAccess")
    }
    async fn list_access(
        &self,
        _: Request<admin::ListAccessRequest>,
    ) -> Result<Response<admin::ListAccessResponse>, Status> {
        named("ListAccess")
    }
}

/// A gRPC request at `path` carrying one empty message (a zero-length
/// frame: no compression flag, length 0), which every request type accepts.
fn grpc_request(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://localhost{path}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap()
}

/// The gRPC status code and message of a trailers-only response.
fn status_of(response: &http::Response<tonic::body::Body>) -> (String, Option<String>) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        header("grpc-status").expect("grpc-status header"),
        header("grpc-message"),
    )
}

async fn call<S>(service: &mut S, path: &str) -> (String, Option<String>)
where
    S: Service<
            http::Request<Full<Bytes>>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        >,
{
    let Ok(response) = service.call(grpc_request(path)).await;
    status_of(&response)
}

const UNIMPLEMENTED: &str = "12";

#[test]
fn service_names() {
    assert_eq!(
        v2::messaging_service_server::SERVICE_NAME,
        "apache.rocketmq.v2.MessagingService"
    );
    assert_eq!(v2::admin_server::SERVICE_NAME, "apache.rocketmq.v2.Admin");
    assert_eq!(
        admin::tern_admin_server::SERVICE_NAME,
        "tern.admin.v1.TernAdmin"
    );
}

#[tokio::test]
async fn messaging_service_routes_all_17_paths() {
    let mut server = MessagingServiceServer::new(Probe);
    for rpc in MESSAGING_RPCS {
        let path = format!("/apache.rocketmq.v2.MessagingService/{rpc}");
        let (code, message) = call(&mut server, &path).await;
        assert_eq!(code, UNIMPLEMENTED, "{path}");
        assert_eq!(
            message.as_deref(),
            Some(rpc),
            "{path} reached another method"
        );
    }
}

#[tokio::test]
async fn messaging_service_rejects_unknown_paths() {
    let mut server = MessagingServiceServer::new(Probe);
    for path in [
        "/apache.rocketmq.v2.MessagingService/NackMessage",
        "/apache.rocketmq.v2.MessagingService/queryRoute",
        "/apache.rocketmq.v1.MessagingService/QueryRoute",
    ] {
        let (code, message) = call(&mut server, path).await;
        assert_eq!(code, UNIMPLEMENTED, "{path}");
        assert_eq!(message, None, "{path} should not reach any method");
    }
}

#[tokio::test]
async fn tern_admin_routes_all_paths() {
    let mut server = TernAdminServer::new(Probe);
    for rpc in ADMIN_RPCS {
        let path = format!("/tern.admin.v1.TernAdmin/{rpc}");
        let (code, message) = call(&mut server, &path).await;
        assert_eq!(code, UNIMPLEMENTED, "{path}");
        assert_eq!(
            message.as_deref(),
            Some(rpc),
            "{path} reached another method"
        );
    }
}
