//! [`AdminClient`]: Tern's `tern.admin.v1.TernAdmin` service.

use std::time::Duration;

use tern_model::{GroupName, TopicName};
use tern_protocol::admin as pb;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tonic::transport::Channel;

use crate::ClientError;
use crate::credentials::Credentials;
use crate::endpoint::{DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoints};
use crate::types::{
    self, ClusterStatus, Group, GroupDetails, GroupSpec, MessageQuery, MessageQueryResult,
    StoredMessage, Topic, TopicDetails, TopicSpec,
};

/// Largest answer accepted: message queries may carry several MiB of
/// bodies (the broker keeps an answer's records under 8 MiB).
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// A client of the admin service of one Tern endpoint: topics, consumer
/// groups, lag and cluster status. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), tern_client::ClientError> {
/// use tern_client::{AdminClient, TopicSpec};
/// use tern_model::TopicName;
///
/// let admin = AdminClient::connect("127.0.0.1:8081").await?;
/// let mut spec = TopicSpec::new(TopicName::new("orders")?);
/// spec.queues = Some(4);
/// let topic = admin.create_topic(&spec).await?;
/// assert_eq!(topic.queues, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AdminClient {
    inner: TernAdminClient<Channel>,
    call_timeout: Duration,
    /// Signs every request when set.
    credentials: Option<Credentials>,
}

impl AdminClient {
    /// Connects to `endpoints` (see [`Endpoints`]) with the default
    /// timeouts.
    pub async fn connect(endpoints: &str) -> Result<Self, ClientError> {
        Self::connect_with(
            &Endpoints::parse(endpoints)?,
            DEFAULT_CONNECT_TIMEOUT,
            DEFAULT_CALL_TIMEOUT,
        )
        .await
    }

    /// Connects to the first of `endpoints` that answers within
    /// `connect_timeout`; every call then fails after `call_timeout`.
    pub async fn connect_with(
        endpoints: &Endpoints,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let (channel, _) = endpoints.connect(connect_timeout).await?;
        Ok(Self {
            inner: TernAdminClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES),
            call_timeout,
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

    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.call_timeout);
        if let Some(c) = &self.credentials {
            c.sign(request.metadata_mut(), std::time::SystemTime::now());
        }
        request
    }

    pub(crate) fn service(&self) -> TernAdminClient<Channel> {
        self.inner.clone()
    }

    /// Creates a topic; unset fields take the broker's defaults (8 queues,
    /// normal messages, read-write). Returns the topic as stored.
    pub async fn create_topic(&self, spec: &TopicSpec) -> Result<Topic, ClientError> {
        let action = format!("creating topic {}", spec.name);
        let req = pb::CreateTopicRequest {
            topic: Some(spec.to_pb()?),
        };
        let resp = self
            .inner
            .clone()
            .create_topic(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        topic_of(&action, resp.into_inner().topic)
    }

    /// Changes the fields `spec` sets; the others keep their values.
    /// Returns the topic as stored.
    pub async fn update_topic(&self, spec: &TopicSpec) -> Result<Topic, ClientError> {
        let action = format!("updating topic {}", spec.name);
        let req = pb::UpdateTopicRequest {
            topic: Some(spec.to_pb()?),
        };
        let resp = self
            .inner
            .clone()
            .update_topic(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        topic_of(&action, resp.into_inner().topic)
    }

    /// A topic's settings and the stored range of each queue.
    pub async fn describe_topic(&self, name: &TopicName) -> Result<TopicDetails, ClientError> {
        let action = format!("describing topic {name}");
        let req = pb::DescribeTopicRequest {
            name: name.to_string(),
        };
        let resp = self
            .inner
            .clone()
            .describe_topic(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner();
        let topic = topic_of(&action, resp.topic)?;
        let queues = resp
            .queues
            .iter()
            .map(types::queue_range_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(&action, d))?;
        Ok(TopicDetails { topic, queues })
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<Topic>, ClientError> {
        let action = "listing topics";
        let resp = self
            .inner
            .clone()
            .list_topics(self.request(pb::ListTopicsRequest {}))
            .await
            .map_err(|s| ClientError::grpc(action, &s))?;
        resp.into_inner()
            .topics
            .into_iter()
            .map(types::topic_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(action, d))
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &TopicName) -> Result<(), ClientError> {
        let action = format!("deleting topic {name}");
        let req = pb::DeleteTopicRequest {
            name: name.to_string(),
        };
        self.inner
            .clone()
            .delete_topic(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        Ok(())
    }

    /// Creates a consumer group; unset fields take the broker's defaults
    /// (not FIFO, 16 retries). Returns the group as stored.
    pub async fn create_group(&self, spec: &GroupSpec) -> Result<Group, ClientError> {
        let action = format!("creating group {}", spec.name);
        let req = pb::CreateGroupRequest {
            group: Some(types::group_to_pb(spec)?),
        };
        let resp = self
            .inner
            .clone()
            .create_group(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        group_of(&action, resp.into_inner().group)
    }

    /// Changes the fields `spec` sets; the others keep their values.
    /// Returns the group as stored.
    pub async fn update_group(&self, spec: &GroupSpec) -> Result<Group, ClientError> {
        let action = format!("updating group {}", spec.name);
        let mut group = types::group_to_pb(spec)?;
        if spec.fifo.is_none() {
            // The protocol's flag has no "unset": keep the current value.
            group.fifo = self.describe_group(&spec.name).await?.group.fifo;
        }
        let req = pb::UpdateGroupRequest { group: Some(group) };
        let resp = self
            .inner
            .clone()
            .update_group(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        group_of(&action, resp.into_inner().group)
    }

    /// A group's settings and its lag in every queue it consumes.
    pub async fn describe_group(&self, name: &GroupName) -> Result<GroupDetails, ClientError> {
        let action = format!("describing group {name}");
        let req = pb::DescribeGroupRequest {
            name: name.to_string(),
        };
        let resp = self
            .inner
            .clone()
            .describe_group(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner();
        let group = group_of(&action, resp.group)?;
        let topics = resp
            .topics
            .into_iter()
            .map(types::topic_lag_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(&action, d))?;
        Ok(GroupDetails { group, topics })
    }

    /// Every consumer group, sorted by name.
    pub async fn list_groups(&self) -> Result<Vec<Group>, ClientError> {
        let action = "listing groups";
        let resp = self
            .inner
            .clone()
            .list_groups(self.request(pb::ListGroupsRequest {}))
            .await
            .map_err(|s| ClientError::grpc(action, &s))?;
        resp.into_inner()
            .groups
            .into_iter()
            .map(types::group_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(action, d))
    }

    /// Deletes a consumer group.
    pub async fn delete_group(&self, name: &GroupName) -> Result<(), ClientError> {
        let action = format!("deleting group {name}");
        let req = pb::DeleteGroupRequest {
            name: name.to_string(),
        };
        self.inner
            .clone()
            .delete_group(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        Ok(())
    }

    /// The brokers behind the endpoint and their storage.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        let action = "reading cluster status";
        let resp = self
            .inner
            .clone()
            .cluster_status(self.request(pb::ClusterStatusRequest {}))
            .await
            .map_err(|s| ClientError::grpc(action, &s))?;
        let brokers = resp
            .into_inner()
            .brokers
            .into_iter()
            .map(types::broker_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(action, d))?;
        Ok(ClusterStatus { brokers })
    }

    /// The messages stored with `message_id`, oldest first: normally one,
    /// more if a producer reused the id. None stored is a
    /// [`ClientError::Grpc`] with code NOT_FOUND.
    pub async fn get_message(&self, message_id: &str) -> Result<Vec<StoredMessage>, ClientError> {
        let action = format!("getting message {message_id}");
        if message_id.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the message id is empty".into(),
            ));
        }
        let req = pb::GetMessageRequest {
            message_id: message_id.to_owned(),
        };
        let resp = self
            .inner
            .clone()
            .get_message(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        resp.into_inner()
            .messages
            .into_iter()
            .map(types::stored_message_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(&action, d))
    }

    /// The messages of a topic with a key, in a time range, or both (see
    /// [`MessageQuery`]), oldest first.
    pub async fn query_messages(
        &self,
        query: &MessageQuery,
    ) -> Result<MessageQueryResult, ClientError> {
        let action = format!("querying messages of topic {}", query.topic);
        let req = query.to_pb()?;
        let resp = self
            .inner
            .clone()
            .query_messages(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner();
        let messages = resp
            .messages
            .into_iter()
            .map(types::stored_message_from)
            .collect::<Result<_, _>>()
            .map_err(|d| ClientError::bad_response(&action, d))?;
        Ok(MessageQueryResult {
            messages,
            truncated: resp.truncated,
        })
    }
}

fn topic_of(action: &str, topic: Option<pb::Topic>) -> Result<Topic, ClientError> {
    let topic = topic.ok_or_else(|| ClientError::bad_response(action, "no topic in the answer"))?;
    types::topic_from(topic).map_err(|d| ClientError::bad_response(action, d))
}

fn group_of(action: &str, group: Option<pb::Group>) -> Result<Group, ClientError> {
    let group = group.ok_or_else(|| ClientError::bad_response(action, "no group in the answer"))?;
    types::group_from(group).map_err(|d| ClientError::bad_response(action, d))
}
