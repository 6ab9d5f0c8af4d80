//! Where a topic's queues are, for clients: routes (QueryRoute) and
//! push-consumer assignments (QueryAssignment).
//!
//! Without name servers a broker answers with its own queues. With them,
//! it answers with every live broker's queues as the name servers know
//! them, its own from its registry (each broker at its advertised
//! address, since clients ask any broker of the route); if no name
//! server answers, with its own queues alone.

use std::sync::Arc;

use tern_model::{GroupName, TopicName};

use crate::cluster::ClusterRoutes;
use crate::error::{BrokerError, Result};
use crate::meta::{Registry, TopicConfig};

/// Which broker serves a queue, and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// This broker: at the address the client dialled (`dialled`), or at
    /// its advertised address.
    Local { dialled: bool },
    /// Another broker, by name, at the first address the name servers
    /// gave for it (`None` if they gave none).
    Remote {
        broker: String,
        endpoint: Option<String>,
    },
}

/// One entry of a route or an assignment: a queue of `topic` (`-1`: the
/// whole broker, for a push consumer that is not FIFO).
#[derive(Debug, Clone)]
pub struct RouteQueue {
    pub place: Place,
    pub topic: TopicConfig,
    pub queue_id: i32,
}

/// Routes and assignments of one broker.
#[derive(Debug)]
pub struct Routes {
    registry: Arc<Registry>,
    /// The broker's own name in the name servers' answers.
    broker_name: String,
    /// `None`: no name servers; answers from this broker alone.
    cluster: Option<Arc<ClusterRoutes>>,
}

impl Routes {
    pub fn new(
        registry: Arc<Registry>,
        broker_name: String,
        cluster: Option<Arc<ClusterRoutes>>,
    ) -> Self {
        Self {
            registry,
            broker_name,
            cluster,
        }
    }

    /// The name servers' routes of `topic` without this broker's part;
    /// `None` without name servers or if none answered.
    async fn others(&self, topic: &TopicName) -> Option<Vec<(Place, TopicConfig)>> {
        let remote = self.cluster.as_ref()?.route(topic.as_str()).await?;
        Some(
            remote
                .iter()
                .filter(|r| r.broker != self.broker_name)
                .map(|r| {
                    let place = Place::Remote {
                        broker: r.broker.clone(),
                        endpoint: r.endpoints.first().cloned(),
                    };
                    (place, r.topic.clone())
                })
                .collect(),
        )
    }

    /// Every queue of `topic` on every broker that serves it.
    pub async fn route(&self, topic: &TopicName) -> Result<Vec<RouteQueue>> {
        let local = self.registry.topic(topic.as_str());
        let Some(others) = self.others(topic).await else {
            return Ok(all_queues(Place::Local { dialled: true }, &local?));
        };
        let mut queues = match &local {
            Ok(t) => all_queues(Place::Local { dialled: false }, t),
            Err(_) => Vec::new(),
        };
        for (place, t) in others {
            queues.extend(all_queues(place, &t));
        }
        match local {
            Err(e) if queues.is_empty() => Err(e),
            _ => Ok(queues),
        }
    }

    /// What a push consumer of `group` reads of `topic`: each readable
    /// broker as a whole (queue -1), or each of its queues for a FIFO
    /// group (so one member reads a queue in order).
    pub async fn assignment(
        &self,
        topic: &TopicName,
        group: &GroupName,
    ) -> Result<Vec<RouteQueue>> {
        let fifo = self.registry.group(group.as_str()).is_ok_and(|g| g.fifo());
        let Some(others) = self.others(topic).await else {
            return self.local_assignment(topic, fifo, true);
        };
        let (mut out, refused) = match self.local_assignment(topic, fifo, false) {
            Ok(q) => (q, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        for (place, t) in others
            .into_iter()
            .filter(|(_, t)| t.permission().readable())
        {
            out.extend(assigned(place, &t, fifo));
        }
        match refused {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    fn local_assignment(
        &self,
        topic: &TopicName,
        fifo: bool,
        dialled: bool,
    ) -> Result<Vec<RouteQueue>> {
        let t = self.registry.topic(topic.as_str())?;
        if !t.permission().readable() {
            return Err(BrokerError::Forbidden(format!(
                "topic {topic} is not readable"
            )));
        }
        Ok(assigned(Place::Local { dialled }, &t, fifo))
    }
}

/// Every queue of `topic` at `place`.
fn all_queues(place: Place, topic: &TopicConfig) -> Vec<RouteQueue> {
    queue_ids(topic)
        .map(|queue_id| RouteQueue {
            place: place.clone(),
            topic: topic.clone(),
            queue_id,
        })
        .collect()
}

/// What a push consumer is assigned of `topic` at `place`.
fn assigned(place: Place, topic: &TopicConfig, fifo: bool) -> Vec<RouteQueue> {
    if fifo {
        all_queues(place, topic)
    } else {
        vec![RouteQueue {
            place,
            topic: topic.clone(),
            queue_id: -1,
        }]
    }
}

fn queue_ids(topic: &TopicConfig) -> impl Iterator<Item = i32> {
    (0..topic.queues()).map(|q| i32::try_from(q).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::meta::{GroupConfig, MessageType, Permission};

    fn routes(perm: Permission) -> (tempfile::TempDir, Routes) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(dir.path()).unwrap());
        let t =
            TopicConfig::new(TopicName::new("t").unwrap(), 3, MessageType::Normal, perm).unwrap();
        registry.create_topic(t).unwrap();
        let g = GroupConfig::new(GroupName::new("ordered").unwrap(), true, 16).unwrap();
        registry.create_group(g).unwrap();
        (dir, Routes::new(registry, "b0".into(), None))
    }

    fn ids(q: &[RouteQueue]) -> Vec<i32> {
        q.iter().map(|q| q.queue_id).collect()
    }

    #[tokio::test]
    async fn a_lone_broker_routes_its_own_queues_where_it_was_dialled() {
        let (_d, r) = routes(Permission::ReadWrite);
        let t = TopicName::new("t").unwrap();
        let q = r.route(&t).await.unwrap();
        assert_eq!(ids(&q), [0, 1, 2]);
        assert!(q.iter().all(|q| q.place == Place::Local { dialled: true }));
        let missing = r.route(&TopicName::new("u").unwrap()).await;
        assert!(matches!(missing, Err(BrokerError::TopicNotFound(_))));
    }

    #[tokio::test]
    async fn push_consumers_get_the_broker_or_each_queue_when_fifo() {
        let (_d, r) = routes(Permission::ReadWrite);
        let t = TopicName::new("t").unwrap();
        let plain = r.assignment(&t, &GroupName::new("any").unwrap()).await;
        assert_eq!(ids(&plain.unwrap()), [-1]);
        let fifo = r.assignment(&t, &GroupName::new("ordered").unwrap()).await;
        assert_eq!(ids(&fifo.unwrap()), [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_write_only_topic_is_assigned_to_nobody() {
        let (_d, r) = routes(Permission::Write);
        let t = TopicName::new("t").unwrap();
        let e = r.assignment(&t, &GroupName::new("any").unwrap()).await;
        assert!(matches!(e, Err(BrokerError::Forbidden(_))), "{e:?}");
        // Producers still find it.
        assert_eq!(ids(&r.route(&t).await.unwrap()), [0, 1, 2]);
    }
}
