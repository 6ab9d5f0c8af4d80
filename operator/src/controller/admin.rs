//! The broker admin API (`tern.admin.v1.TernAdmin`) as the topic and group
//! controllers need it, behind [`BrokerAdmin`] so the reconcile logic does
//! not depend on the transport.
//!
//! [`GrpcAdmin`] uses tern-protocol's generated client directly; it can move
//! to tern-client's `AdminClient` once that crate exists.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tern_protocol::admin as pb;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tonic::transport::{Channel, Endpoint};

use super::plan::{BrokerGroup, BrokerTopic};
use crate::crd::topic::{MessageType, Permission};
use crate::error::{Error, Result};

/// Topic and group operations on one broker, addressed as `host:port`.
/// Deleting something that does not exist succeeds.
pub trait BrokerAdmin: Send + Sync + 'static {
    /// The topic `name`, or `None` if the broker has no such topic.
    fn describe_topic(
        &self,
        endpoint: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BrokerTopic>>> + Send;
    /// Creates `topic`.
    fn create_topic(
        &self,
        endpoint: &str,
        topic: &BrokerTopic,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets every field of `topic` (a queue count of 0 keeps the current).
    fn update_topic(
        &self,
        endpoint: &str,
        topic: &BrokerTopic,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the topic `name`.
    fn delete_topic(&self, endpoint: &str, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// The group `name`, or `None`.
    fn describe_group(
        &self,
        endpoint: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BrokerGroup>>> + Send;
    /// Creates `group`.
    fn create_group(
        &self,
        endpoint: &str,
        group: &BrokerGroup,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets every field of `group`.
    fn update_group(
        &self,
        endpoint: &str,
        group: &BrokerGroup,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the group `name`.
    fn delete_group(&self, endpoint: &str, name: &str) -> impl Future<Output = Result<()>> + Send;
}

/// [`BrokerAdmin`] over gRPC, with one lazily connected channel per broker.
#[derive(Clone, Debug, Default)]
pub struct GrpcAdmin {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl GrpcAdmin {
    fn client(&self, endpoint: &str) -> Result<TernAdminClient<Channel>> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ch) = channels.get(endpoint) {
            return Ok(TernAdminClient::new(ch.clone()));
        }
        let ch = Endpoint::from_shared(format!("http://{endpoint}"))
            .map_err(|source| Error::Connect {
                endpoint: endpoint.to_owned(),
                source,
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect_lazy();
        channels.insert(endpoint.to_owned(), ch.clone());
        Ok(TernAdminClient::new(ch))
    }
}

fn admin_error(endpoint: &str, status: tonic::Status) -> Error {
    Error::Admin {
        endpoint: endpoint.to_owned(),
        status: Box::new(status),
    }
}

/// `Ok(None)` for NOT_FOUND, the error otherwise.
fn found<T>(endpoint: &str, r: Result<T, tonic::Status>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(admin_error(endpoint, s)),
    }
}

impl BrokerAdmin for GrpcAdmin {
    async fn describe_topic(&self, endpoint: &str, name: &str) -> Result<Option<BrokerTopic>> {
        let mut c = self.client(endpoint)?;
        let r = c
            .describe_topic(pb::DescribeTopicRequest {
                name: name.to_owned(),
            })
            .await;
        Ok(found(endpoint, r)?
            .and_then(|r| r.into_inner().topic)
            .map(topic_from_pb))
    }

    async fn create_topic(&self, endpoint: &str, topic: &BrokerTopic) -> Result<()> {
        let mut c = self.client(endpoint)?;
        let req = pb::CreateTopicRequest {
            topic: Some(topic_to_pb(topic)),
        };
        c.create_topic(req)
            .await
            .map_err(|s| admin_error(endpoint, s))?;
        Ok(())
    }

    async fn update_topic(&self, endpoint: &str, topic: &BrokerTopic) -> Result<()> {
        let mut c = self.client(endpoint)?;
        let req = pb::UpdateTopicRequest {
            topic: Some(topic_to_pb(topic)),
        };
        c.update_topic(req)
            .await
            .map_err(|s| admin_error(endpoint, s))?;
        Ok(())
    }

    async fn delete_topic(&self, endpoint: &str, name: &str) -> Result<()> {
        let mut c = self.client(endpoint)?;
        found(
            endpoint,
            c.delete_topic(pb::DeleteTopicRequest {
                name: name.to_owned(),
            })
            .await,
        )?;
        Ok(())
    }

    async fn describe_group(&self, endpoint: &str, name: &str) -> Result<Option<BrokerGroup>> {
        let mut c = self.client(endpoint)?;
        let r = c
            .describe_group(pb::DescribeGroupRequest {
                name: name.to_owned(),
            })
            .await;
        Ok(found(endpoint, r)?
            .and_then(|r| r.into_inner().group)
            .map(|g| BrokerGroup {
                name: g.name,
                fifo: g.fifo,
                max_retries: g.max_retries,
            }))
    }

    async fn create_group(&self, endpoint: &str, group: &BrokerGroup) -> Result<()> {
        let mut c = self.client(endpoint)?;
        let req = pb::CreateGroupRequest {
            group: Some(group_to_pb(group)),
        };
        c.create_group(req)
            .await
            .map_err(|s| admin_error(endpoint, s))?;
        Ok(())
    }

    async fn update_group(&self, endpoint: &str, group: &BrokerGroup) -> Result<()> {
        let mut c = self.client(endpoint)?;
        let req = pb::UpdateGroupRequest {
            group: Some(group_to_pb(group)),
        };
        c.update_group(req)
            .await
            .map_err(|s| admin_error(endpoint, s))?;
        Ok(())
    }

    async fn delete_group(&self, endpoint: &str, name: &str) -> Result<()> {
        let mut c = self.client(endpoint)?;
        found(
            endpoint,
            c.delete_group(pb::DeleteGroupRequest {
                name: name.to_owned(),
            })
            .await,
        )?;
        Ok(())
    }
}

fn topic_to_pb(t: &BrokerTopic) -> pb::Topic {
    let message_type = match t.message_type {
        MessageType::Normal => pb::MessageType::Normal,
        MessageType::Fifo => pb::MessageType::Fifo,
        MessageType::Delay => pb::MessageType::Delay,
        MessageType::Transaction => pb::MessageType::Transaction,
        MessageType::Mixed => pb::MessageType::Mixed,
    };
    let permission = match t.permission {
        Permission::ReadWrite => pb::Permission::ReadWrite,
        Permission::Read => pb::Permission::Read,
        Permission::Write => pb::Permission::Write,
    };
    pb::Topic {
        name: t.name.clone(),
        queue_count: t.queues,
        message_type: message_type.into(),
        permission: permission.into(),
    }
}

/// Unknown or unspecified values read as the broker's defaults.
fn topic_from_pb(t: pb::Topic) -> BrokerTopic {
    let message_type = match pb::MessageType::try_from(t.message_type) {
        Ok(pb::MessageType::Fifo) => MessageType::Fifo,
        Ok(pb::MessageType::Delay) => MessageType::Delay,
        Ok(pb::MessageType::Transaction) => MessageType::Transaction,
        Ok(pb::MessageType::Mixed) => MessageType::Mixed,
        _ => MessageType::Normal,
    };
    let permission = match pb::Permission::try_from(t.permission) {
        Ok(pb::Permission::Read) => Permission::Read,
        Ok(pb::Permission::Write) => Permission::Write,
        _ => Permission::ReadWrite,
    };
    BrokerTopic {
        name: t.name,
        queues: t.queue_count,
        message_type,
        permission,
    }
}

fn group_to_pb(g: &BrokerGroup) -> pb::Group {
    pb::Group {
        name: g.name.clone(),
        fifo: g.fifo,
        max_retries: g.max_retries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_survive_the_round_trip_through_protobuf() {
        for message_type in [
            MessageType::Normal,
            MessageType::Fifo,
            MessageType::Delay,
            MessageType::Transaction,
            MessageType::Mixed,
        ] {
            for permission in [Permission::ReadWrite, Permission::Read, Permission::Write] {
                let t = BrokerTopic {
                    name: "t".to_owned(),
                    queues: 3,
                    message_type,
                    permission,
                };
                assert_eq!(topic_from_pb(topic_to_pb(&t)), t);
            }
        }
    }
}
