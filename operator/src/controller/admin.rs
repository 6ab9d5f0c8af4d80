//! The broker admin API (`tern.admin.v1.TernAdmin`) as the topic and group
//! controllers need it, behind [`BrokerAdmin`] so the reconcile logic does
//! not depend on the transport.
//!
//! [`AdminClients`] implements it with tern-client's [`AdminClient`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tern_client::{AdminClient, ClientError, Endpoints, GroupSpec, TopicSpec};
use tern_model::{GroupName, TopicName};

use super::plan::{BrokerGroup, BrokerTopic};
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

/// How long connecting to a broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one admin call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// [`BrokerAdmin`] over tern-client's [`AdminClient`]: one client per
/// broker, connected on first use and then kept (its channel reconnects by
/// itself). A broker that cannot be reached fails the call, and the next
/// call tries again.
#[derive(Clone, Debug, Default)]
pub struct AdminClients {
    clients: Arc<Mutex<HashMap<String, AdminClient>>>,
}

impl AdminClients {
    async fn client(&self, endpoint: &str) -> Result<AdminClient> {
        let cached = self.clients.lock().get(endpoint).cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        let endpoints = Endpoints::parse(endpoint).map_err(|source| Error::Connect {
            endpoint: endpoint.to_owned(),
            source: Box::new(source),
        })?;
        let client = AdminClient::connect_with(&endpoints, CONNECT_TIMEOUT, CALL_TIMEOUT)
            .await
            .map_err(|e| admin_error(endpoint, e))?;
        self.clients
            .lock()
            .insert(endpoint.to_owned(), client.clone());
        Ok(client)
    }
}

fn admin_error(endpoint: &str, source: ClientError) -> Error {
    Error::Admin {
        endpoint: endpoint.to_owned(),
        source: Box::new(source),
    }
}

/// `Ok(None)` for NOT_FOUND, the error otherwise.
fn found<T>(endpoint: &str, r: Result<T, ClientError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.grpc_code() == Some(tonic::Code::NotFound) => Ok(None),
        Err(e) => Err(admin_error(endpoint, e)),
    }
}

impl BrokerAdmin for AdminClients {
    async fn describe_topic(&self, endpoint: &str, name: &str) -> Result<Option<BrokerTopic>> {
        let name = topic_name(endpoint, name)?;
        let client = self.client(endpoint).await?;
        let details = found(endpoint, client.describe_topic(&name).await)?;
        Ok(details.map(|d| BrokerTopic {
            name: d.topic.name.to_string(),
            queues: i32::try_from(d.topic.queues).unwrap_or(i32::MAX),
            message_type: d.topic.message_type,
            permission: d.topic.permission,
        }))
    }

    async fn create_topic(&self, endpoint: &str, topic: &BrokerTopic) -> Result<()> {
        let spec = topic_spec(endpoint, topic)?;
        let client = self.client(endpoint).await?;
        client
            .create_topic(&spec)
            .await
            .map_err(|e| admin_error(endpoint, e))?;
        Ok(())
    }

    async fn update_topic(&self, endpoint: &str, topic: &BrokerTopic) -> Result<()> {
        let spec = topic_spec(endpoint, topic)?;
        let client = self.client(endpoint).await?;
        client
            .update_topic(&spec)
            .await
            .map_err(|e| admin_error(endpoint, e))?;
        Ok(())
    }

    async fn delete_topic(&self, endpoint: &str, name: &str) -> Result<()> {
        let name = topic_name(endpoint, name)?;
        let client = self.client(endpoint).await?;
        found(endpoint, client.delete_topic(&name).await)?;
        Ok(())
    }

    async fn describe_group(&self, endpoint: &str, name: &str) -> Result<Option<BrokerGroup>> {
        let name = group_name(endpoint, name)?;
        let client = self.client(endpoint).await?;
        let details = found(endpoint, client.describe_group(&name).await)?;
        Ok(details.map(|d| BrokerGroup {
            name: d.group.name.to_string(),
            fifo: d.group.fifo,
            max_retries: i32::try_from(d.group.max_retries).unwrap_or(i32::MAX),
        }))
    }

    async fn create_group(&self, endpoint: &str, group: &BrokerGroup) -> Result<()> {
        let spec = group_spec(endpoint, group)?;
        let client = self.client(endpoint).await?;
        client
            .create_group(&spec)
            .await
            .map_err(|e| admin_error(endpoint, e))?;
        Ok(())
    }

    async fn update_group(&self, endpoint: &str, group: &BrokerGroup) -> Result<()> {
        let spec = group_spec(endpoint, group)?;
        let client = self.client(endpoint).await?;
        client
            .update_group(&spec)
            .await
            .map_err(|e| admin_error(endpoint, e))?;
        Ok(())
    }

    async fn delete_group(&self, endpoint: &str, name: &str) -> Result<()> {
        let name = group_name(endpoint, name)?;
        let client = self.client(endpoint).await?;
        found(endpoint, client.delete_group(&name).await)?;
        Ok(())
    }
}

fn topic_name(endpoint: &str, name: &str) -> Result<TopicName> {
    TopicName::new(name).map_err(|e| admin_error(endpoint, e.into()))
}

fn group_name(endpoint: &str, name: &str) -> Result<GroupName> {
    GroupName::new(name).map_err(|e| admin_error(endpoint, e.into()))
}

/// A count the admin protocol leaves unset at 0 (the broker then keeps
/// the current value, or uses its default).
fn count(endpoint: &str, what: &str, n: i32) -> Result<Option<u32>> {
    match u32::try_from(n) {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(admin_error(
            endpoint,
            ClientError::InvalidArgument(format!("{what} must not be negative")),
        )),
    }
}

/// Every field of `t` set, but a queue count of 0.
fn topic_spec(endpoint: &str, t: &BrokerTopic) -> Result<TopicSpec> {
    let mut spec = TopicSpec::new(topic_name(endpoint, &t.name)?);
    spec.queues = count(endpoint, "queue count", t.queues)?;
    spec.message_type = Some(t.message_type);
    spec.permission = Some(t.permission);
    Ok(spec)
}

/// Every field of `g` set, but a retry count of 0.
fn group_spec(endpoint: &str, g: &BrokerGroup) -> Result<GroupSpec> {
    let mut spec = GroupSpec::new(group_name(endpoint, &g.name)?);
    spec.fifo = Some(g.fifo);
    spec.max_retries = count(endpoint, "max retries", g.max_retries)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use tern_model::{MessageType, Permission};

    use super::*;

    #[test]
    fn specs_set_every_field_but_zero_counts() {
        let t = BrokerTopic {
            name: "Orders_v1".to_owned(),
            queues: 3,
            message_type: MessageType::Fifo,
            permission: Permission::Read,
        };
        let spec = topic_spec("b:1", &t).expect("a valid topic");
        assert_eq!(spec.name.as_str(), "Orders_v1");
        assert_eq!(
            (spec.queues, spec.message_type, spec.permission),
            (Some(3), Some(MessageType::Fifo), Some(Permission::Read))
        );
        let keep = topic_spec(
            "b:1",
            &BrokerTopic {
                queues: 0,
                ..t.clone()
            },
        )
        .expect("valid");
        assert_eq!(keep.queues, None);
        let err = topic_spec("b:1", &BrokerTopic { queues: -1, ..t }).expect_err("negative");
        assert_eq!(err.reason(), "BrokerAdmin");

        let g = BrokerGroup {
            name: "billing".to_owned(),
            fifo: false,
            max_retries: 0,
        };
        let spec = group_spec("b:1", &g).expect("a valid group");
        assert_eq!((spec.fifo, spec.max_retries), (Some(false), None));
        let bad = BrokerGroup {
            name: "no spaces".to_owned(),
            ..g
        };
        assert_eq!(
            group_spec("b:1", &bad).expect_err("bad name").reason(),
            "BrokerAdmin"
        );
    }
}
