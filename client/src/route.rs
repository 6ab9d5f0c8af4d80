//! Routes: which brokers hold a topic's queues, and where to reach them.
//!
//! A QueryRoute answer lists every queue of the topic with its broker and
//! that broker's endpoints; in a cluster the queues of one topic live on
//! several brokers. The messaging client sends each message to the broker
//! of the queue it picked, receives from each broker holding readable
//! queues, and acknowledges at the broker that delivered.

use tern_protocol::endpoints::first_address;
use tern_protocol::v2 as pb;

/// One writable queue and the broker holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueRef {
    /// The broker's name.
    pub broker: String,
    /// `host:port` of the broker.
    pub address: String,
    /// The queue's id on that broker.
    pub queue_id: u32,
}

/// A topic's route, reduced to what the client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Route {
    /// Queues that accept messages, in route order.
    pub writable: Vec<QueueRef>,
    /// `host:port` of each broker with a readable queue, once each, in
    /// route order.
    pub readable: Vec<String>,
}

impl Route {
    /// The usable part of `queues`: leader queues (broker id 0, as the
    /// official clients use) with an address and a valid id.
    pub fn from_queues(queues: &[pb::MessageQueue]) -> Self {
        let mut route = Self::default();
        for q in queues {
            let Some(broker) = q.broker.as_ref().filter(|b| b.id == 0) else {
                continue;
            };
            let Some(address) = broker.endpoints.as_ref().and_then(first_address) else {
                continue;
            };
            let Ok(queue_id) = u32::try_from(q.id) else {
                continue;
            };
            let permission = pb::Permission::try_from(q.permission).unwrap_or_default();
            if matches!(
                permission,
                pb::Permission::Write | pb::Permission::ReadWrite
            ) {
                route.writable.push(QueueRef {
                    broker: broker.name.clone(),
                    address: address.clone(),
                    queue_id,
                });
            }
            if matches!(permission, pb::Permission::Read | pb::Permission::ReadWrite)
                && !route.readable.contains(&address)
            {
                route.readable.push(address);
            }
        }
        route
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(broker: &str, host: &str, port: i32, id: i32, p: pb::Permission) -> pb::MessageQueue {
        pb::MessageQueue {
            topic: None,
            id,
            permission: p as i32,
            broker: Some(pb::Broker {
                name: broker.into(),
                id: 0,
                endpoints: Some(pb::Endpoints {
                    scheme: pb::AddressScheme::IPv4 as i32,
                    addresses: vec![pb::Address {
                        host: host.into(),
                        port,
                    }],
                }),
            }),
            accept_message_types: Vec::new(),
        }
    }

    #[test]
    fn splits_queues_by_broker_and_permission() {
        use pb::Permission::{Read, ReadWrite, Write};
        let mut follower = queue("a", "10.0.0.9", 8081, 0, ReadWrite);
        if let Some(b) = follower.broker.as_mut() {
            b.id = 1;
        }
        let route = Route::from_queues(&[
            queue("a", "127.0.0.1", 8081, 0, ReadWrite),
            queue("a", "127.0.0.1", 8081, 1, Write),
            queue("b", "::1", 9000, 0, Read),
            queue("c", "", 9000, 0, ReadWrite),
            queue("d", "127.0.0.1", 0, 0, ReadWrite),
            queue("e", "127.0.0.1", 8082, -1, ReadWrite),
            follower,
        ]);
        let writable: Vec<(&str, &str, u32)> = route
            .writable
            .iter()
            .map(|q| (q.broker.as_str(), q.address.as_str(), q.queue_id))
            .collect();
        assert_eq!(
            writable,
            [("a", "127.0.0.1:8081", 0), ("a", "127.0.0.1:8081", 1)]
        );
        assert_eq!(route.readable, ["127.0.0.1:8081", "[::1]:9000"]);
    }
}
