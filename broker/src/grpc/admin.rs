//! `TernAdmin`: topics, consumer groups, cluster status and message query
//! (lag and the lookups themselves are in [`crate::consume`]).
//!
//! Unlike the RocketMQ service, this one reports failures as gRPC
//! statuses: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT and so on. Each
//! RPC first checks its caller (`admin_access`: what each needs, and the
//! audit line of each change); users and access rules are in `users`.

use std::sync::Arc;

use tern_model::{GroupName, TopicName};
use tern_protocol::admin::tern_admin_server::TernAdmin;
use tern_protocol::admin::{self as pb, *};
use tern_store::Store;
use tonic::{Request, Response, Status};

use super::admin_access::{self as needs, CREATE, DELETE, EVERY, GET, LIST, UPDATE};
use super::users;
use crate::auth::Access;
use crate::consume::{self, Consume, Query};
use crate::error::BrokerError;
use crate::meta::{GroupConfig, MessageType, Permission, Registry, TopicConfig};
use crate::replica::Replicated;
use crate::task::blocking;
use crate::wire::topic_out;

/// Queues of a topic created without a queue count.
pub const DEFAULT_QUEUES: u32 = 8;

pub(super) type Reply<T> = Result<Response<T>, Status>;

/// The admin service over the broker core. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    pub(super) access: Arc<Access>,
    store: Arc<Store>,
    pub(super) registry: Arc<Registry>,
    consume: Arc<Consume>,
    /// The broker's name and addresses, for ClusterStatus.
    name: String,
    endpoints: Vec<String>,
    /// Its replica of a replicated group, if it is one.
    replica: Option<Arc<Replicated>>,
}

impl Admin {
    pub fn new(
        access: Arc<Access>,
        store: Arc<Store>,
        registry: Arc<Registry>,
        consume: Arc<Consume>,
        name: String,
        endpoints: Vec<String>,
    ) -> Self {
        Self {
            access,
            store,
            registry,
            consume,
            name,
            endpoints,
            replica: None,
        }
    }

    /// The admin service of a replica: ClusterStatus shows its group.
    pub fn with_replica(mut self, replica: Arc<Replicated>) -> Self {
        self.replica = Some(replica);
        self
    }
}

/// A replica's view of its group, as ClusterStatus shows it.
fn replica_status(replica: &Replicated) -> pb::ReplicaStatus {
    let s = replica.status();
    let role = serde_json::to_value(s.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    pb::ReplicaStatus {
        id: s.id,
        role,
        term: s.term,
        leader: s.leader,
        last_index: s.last_index.unwrap_or(0),
        applied_index: s.applied_index.unwrap_or(0),
        replicas: replica
            .peers()
            .iter()
            .filter(|_| !s.matched.is_empty())
            .map(|(id, address)| pb::ReplicaProgress {
                id: *id,
                address: address.clone(),
                matched_index: s.matched.get(id).copied().flatten(),
            })
            .collect(),
    }
}

pub(super) fn grpc(e: BrokerError) -> Status {
    let msg = e.to_string();
    match e {
        BrokerError::TopicNotFound(_) | BrokerError::GroupNotFound(_) => Status::not_found(msg),
        BrokerError::TopicExists(_) | BrokerError::GroupExists(_) => Status::already_exists(msg),
        BrokerError::Invalid(_) | BrokerError::InvalidName(_) | BrokerError::QueueShrink { .. } => {
            Status::invalid_argument(msg)
        }
        BrokerError::Forbidden(_) => Status::permission_denied(msg),
        BrokerError::DiskFull(_)
        | BrokerError::TooManyRequests(_)
        | BrokerError::LimitReached(_) => Status::resource_exhausted(msg),
        BrokerError::NotLeader(_) => Status::unavailable(msg),
        _ => Status::internal(msg),
    }
}

/// A topic config from `t`, with unset fields taken from `base`.
fn topic_in(t: Option<Topic>, base: Option<&TopicConfig>) -> Result<TopicConfig, Status> {
    let t = t.ok_or_else(|| Status::invalid_argument("topic is required"))?;
    let name = TopicName::new(t.name).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let queues = match u32::try_from(t.queue_count) {
        Ok(0) => base.map_or(DEFAULT_QUEUES, TopicConfig::queues),
        Ok(n) => n,
        Err(_) => return Err(Status::invalid_argument("queue count must not be negative")),
    };
    let kind = tern_protocol::convert::message_type(t.message_type)
        .map_err(|_| Status::invalid_argument("unknown message type"))?
        .unwrap_or_else(|| base.map_or(MessageType::Normal, TopicConfig::message_type));
    let perm = tern_protocol::convert::permission(t.permission)
        .map_err(|_| Status::invalid_argument("unknown permission"))?
        .unwrap_or_else(|| base.map_or(Permission::ReadWrite, TopicConfig::permission));
    TopicConfig::new(name, queues, kind, perm).map_err(grpc)
}

fn group_out(g: &GroupConfig) -> Group {
    Group {
        name: g.name().to_string(),
        fifo: g.fifo(),
        max_retries: i32::try_from(g.max_retries()).unwrap_or(i32::MAX),
    }
}

/// A group config from `g`; a zero retry count means `retries_if_zero`.
fn group_in(g: Option<Group>, retries_if_zero: u32) -> Result<GroupConfig, Status> {
    let g = g.ok_or_else(|| Status::invalid_argument("group is required"))?;
    let name = GroupName::new(g.name).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let retries = match u32::try_from(g.max_retries) {
        Ok(0) => retries_if_zero,
        Ok(n) => n,
        Err(_) => return Err(Status::invalid_argument("max retries must not be negative")),
    };
    GroupConfig::new(name, g.fifo, retries).map_err(grpc)
}

/// A group's lag in one topic as the admin protocol carries it.
fn lag_out(t: consume::TopicLag) -> TopicLag {
    let queues = t
        .queues
        .into_iter()
        .map(|q| QueueLag {
            queue_id: i32::try_from(q.queue_id).unwrap_or(i32::MAX),
            broker_offset: q.broker_offset,
            consumer_offset: Some(q.consumer_offset),
            lag: q.lag,
            inflight: q.in_flight,
            held: q.held,
        })
        .collect();
    TopicLag {
        topic: t.topic,
        queues,
    }
}

/// A stored message as the admin protocol carries it.
fn message_out(m: tern_store::StoredMessage) -> pb::StoredMessage {
    let msg = m.message;
    pb::StoredMessage {
        message_id: msg.message_id,
        topic: msg.topic.to_string(),
        queue_id: i32::try_from(msg.queue_id).unwrap_or(i32::MAX),
        queue_offset: m.queue_offset,
        store_timestamp_ms: m.store_timestamp_ms,
        born_timestamp_ms: msg.born_timestamp_ms,
        tag: msg.tag,
        keys: msg.keys,
        properties: msg.properties.into_iter().collect(),
        body: msg.body,
        commit_log_offset: m.position,
    }
}

#[tonic::async_trait]
impl TernAdmin for Admin {
    async fn create_topic(&self, req: Request<CreateTopicRequest>) -> Reply<CreateTopicResponse> {
        let name = req.get_ref().topic.as_ref().map_or("", |t| t.name.as_str());
        let who = self.admit(&req, "CreateTopic", &needs::topic(name, CREATE))?;
        let cfg = topic_in(req.into_inner().topic, None)?;
        let registry = self.registry.clone();
        let out = topic_out(&cfg);
        blocking(move || registry.create_topic(cfg))
            .await
            .map_err(grpc)?;
        who.audit(&format!("topic {}", out.name));
        Ok(Response::new(CreateTopicResponse { topic: Some(out) }))
    }

    async fn update_topic(&self, req: Request<UpdateTopicRequest>) -> Reply<UpdateTopicResponse> {
        let name = req.get_ref().topic.as_ref().map_or("", |t| t.name.as_str());
        let who = self.admit(&req, "UpdateTopic", &needs::topic(name, UPDATE))?;
        let t = req.into_inner().topic;
        let name = t.as_ref().map(|t| t.name.clone()).unwrap_or_default();
        let base = self.registry.topic(&name).map_err(grpc)?;
        let cfg = topic_in(t, Some(&base))?;
        let registry = self.registry.clone();
        let out = topic_out(&cfg);
        blocking(move || registry.update_topic(cfg))
            .await
            .map_err(grpc)?;
        who.audit(&format!("topic {name}"));
        Ok(Response::new(UpdateTopicResponse { topic: Some(out) }))
    }

    async fn describe_topic(
        &self,
        req: Request<DescribeTopicRequest>,
    ) -> Reply<DescribeTopicResponse> {
        let name = req.get_ref().name.as_str();
        self.admit(&req, "DescribeTopic", &needs::topic(name, GET))?;
        let t = self.registry.topic(name).map_err(grpc)?;
        let queues = (0..t.queues())
            .map(|q| {
                let (min, max) = self.store.queue_range(t.name().as_str(), q);
                TopicQueue {
                    queue_id: i32::try_from(q).unwrap_or(i32::MAX),
                    min_offset: min,
                    max_offset: max,
                }
            })
            .collect();
        Ok(Response::new(DescribeTopicResponse {
            topic: Some(topic_out(&t)),
            queues,
        }))
    }

    async fn list_topics(&self, req: Request<ListTopicsRequest>) -> Reply<ListTopicsResponse> {
        self.admit(&req, "ListTopics", &needs::topic(EVERY, LIST))?;
        let topics = self.registry.topics().iter().map(topic_out).collect();
        Ok(Response::new(ListTopicsResponse { topics }))
    }

    async fn delete_topic(&self, req: Request<DeleteTopicRequest>) -> Reply<DeleteTopicResponse> {
        let who = self.admit(
            &req,
            "DeleteTopic",
            &needs::topic(&req.get_ref().name, DELETE),
        )?;
        let name = req.into_inner().name;
        let target = format!("topic {name}");
        self.consume.delete_topic(name).await.map_err(grpc)?;
        who.audit(&target);
        Ok(Response::new(DeleteTopicResponse {}))
    }

    async fn create_group(&self, req: Request<CreateGroupRequest>) -> Reply<CreateGroupResponse> {
        let name = req.get_ref().group.as_ref().map_or("", |g| g.name.as_str());
        let who = self.admit(&req, "CreateGroup", &needs::group(name, CREATE))?;
        let cfg = group_in(req.into_inner().group, GroupConfig::DEFAULT_MAX_RETRIES)?;
        let registry = self.registry.clone();
        let out = group_out(&cfg);
        blocking(move || registry.create_group(cfg))
            .await
            .map_err(grpc)?;
        who.audit(&format!("group {}", out.name));
        Ok(Response::new(CreateGroupResponse { group: Some(out) }))
    }

    async fn update_group(&self, req: Request<UpdateGroupRequest>) -> Reply<UpdateGroupResponse> {
        let name = req.get_ref().group.as_ref().map_or("", |g| g.name.as_str());
        let who = self.admit(&req, "UpdateGroup", &needs::group(name, UPDATE))?;
        let g = req.into_inner().group;
        let name = g.as_ref().map(|g| g.name.clone()).unwrap_or_default();
        let base = self.registry.group(&name).map_err(grpc)?;
        let cfg = group_in(g, base.max_retries())?;
        let registry = self.registry.clone();
        let out = group_out(&cfg);
        blocking(move || registry.update_group(cfg))
            .await
            .map_err(grpc)?;
        who.audit(&format!("group {name}"));
        Ok(Response::new(UpdateGroupResponse { group: Some(out) }))
    }

    async fn describe_group(
        &self,
        req: Request<DescribeGroupRequest>,
    ) -> Reply<DescribeGroupResponse> {
        let name = req.get_ref().name.as_str();
        self.admit(&req, "DescribeGroup", &needs::group(name, GET))?;
        let g = self.registry.group(name).map_err(grpc)?;
        Ok(Response::new(DescribeGroupResponse {
            group: Some(group_out(&g)),
            topics: self
                .consume
                .lag(g.name().as_str())
                .into_iter()
                .map(lag_out)
                .collect(),
        }))
    }

    async fn list_groups(&self, req: Request<ListGroupsRequest>) -> Reply<ListGroupsResponse> {
        self.admit(&req, "ListGroups", &needs::group(EVERY, LIST))?;
        let groups = self.registry.groups().iter().map(group_out).collect();
        Ok(Response::new(ListGroupsResponse { groups }))
    }

    async fn delete_group(&self, req: Request<DeleteGroupRequest>) -> Reply<DeleteGroupResponse> {
        let who = self.admit(
            &req,
            "DeleteGroup",
            &needs::group(&req.get_ref().name, DELETE),
        )?;
        let name = req.into_inner().name;
        let target = format!("group {name}");
        self.consume.delete_group(name).await.map_err(grpc)?;
        who.audit(&target);
        Ok(Response::new(DeleteGroupResponse {}))
    }

    async fn cluster_status(
        &self,
        req: Request<ClusterStatusRequest>,
    ) -> Reply<ClusterStatusResponse> {
        self.admit(&req, "ClusterStatus", &needs::topic(EVERY, LIST))?;
        let s = self.store.stats();
        let broker = BrokerStatus {
            name: self.name.clone(),
            endpoints: self.endpoints.clone(),
            topic_count: i32::try_from(self.registry.topics().len()).unwrap_or(i32::MAX),
            store: Some(pb::StoreStats {
                min_offset: s.min_offset,
                max_offset: s.max_offset,
                flushed_offset: s.flushed_offset,
                disk_usage: self.store.disk_usage(),
                disk_full: s.disk_full,
            }),
            replica: self.replica.as_deref().map(replica_status),
        };
        Ok(Response::new(ClusterStatusResponse {
            brokers: vec![broker],
        }))
    }

    async fn get_message(&self, req: Request<GetMessageRequest>) -> Reply<GetMessageResponse> {
        // Who is calling first; what it may see once the topics are known.
        self.admit(&req, "GetMessage", &[])?;
        let id = req.get_ref().message_id.clone();
        if id.is_empty() {
            return Err(Status::invalid_argument("message id is required"));
        }
        let found = self.consume.message(id.clone()).await.map_err(grpc)?;
        if found.is_empty() {
            return Err(Status::not_found(format!(
                "no message with id {id} is stored"
            )));
        }
        let mut topics: Vec<&str> = found.iter().map(|m| m.message.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        let needs: Vec<_> = topics.iter().flat_map(|t| needs::topic(t, GET)).collect();
        self.admit(&req, "GetMessage", &needs)?;
        Ok(Response::new(GetMessageResponse {
            messages: found.into_iter().map(message_out).collect(),
        }))
    }

    async fn query_messages(
        &self,
        req: Request<QueryMessagesRequest>,
    ) -> Reply<QueryMessagesResponse> {
        self.admit(
            &req,
            "QueryMessages",
            &needs::topic(&req.get_ref().topic, GET),
        )?;
        let req = req.into_inner();
        let q = Query::new(req.key, req.since_ms, req.until_ms, req.max_messages).map_err(grpc)?;
        let (found, truncated) = self.consume.query(&req.topic, q).await.map_err(grpc)?;
        Ok(Response::new(QueryMessagesResponse {
            messages: found.into_iter().map(message_out).collect(),
            truncated,
        }))
    }

    async fn create_user(&self, req: Request<CreateUserRequest>) -> Reply<CreateUserResponse> {
        users::create(self, req).await
    }

    async fn list_users(&self, req: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
        users::list(self, req)
    }

    async fn update_user(&self, req: Request<UpdateUserRequest>) -> Reply<UpdateUserResponse> {
        users::update(self, req).await
    }

    async fn delete_user(&self, req: Request<DeleteUserRequest>) -> Reply<DeleteUserResponse> {
        users::delete(self, req).await
    }

    async fn grant_access(&self, req: Request<GrantAccessRequest>) -> Reply<GrantAccessResponse> {
        users::grant(self, req).await
    }

    async fn revoke_access(
        &self,
        req: Request<RevokeAccessRequest>,
    ) -> Reply<RevokeAccessResponse> {
        users::revoke(self, req).await
    }

    async fn list_access(&self, req: Request<ListAccessRequest>) -> Reply<ListAccessResponse> {
        users::list_access(self, req)
    }
}
