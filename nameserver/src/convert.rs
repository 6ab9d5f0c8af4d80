//! Protobuf to domain at the edge: a broker's registration becomes
//! validated [`TopicEntry`] and [`GroupEntry`] values here, once; and
//! registry values become protobuf again for answers.

use tern_model::{GroupName, TopicName};
use tern_protocol::admin;
use tern_protocol::convert;
use tern_protocol::endpoints::endpoints;
use tern_protocol::nameserver as ns;

use crate::error::{NameserverError, Result};
use crate::registry::{BrokerRoute, GroupEntry, TopicEntry};

/// Most queues one topic may have in a registration.
pub const MAX_QUEUES: i32 = 65_536;

fn invalid(m: String) -> NameserverError {
    NameserverError::Invalid(m)
}

/// A registered topic, validated: a valid name, 1..=[`MAX_QUEUES`]
/// queues, a message type and a permission.
pub fn topic_in(t: admin::Topic) -> Result<TopicEntry> {
    let name = TopicName::new(t.name).map_err(|e| invalid(format!("topic name: {e}")))?;
    if !(1..=MAX_QUEUES).contains(&t.queue_count) {
        return Err(invalid(format!(
            "topic {name}: queue count {} is outside 1..={MAX_QUEUES}",
            t.queue_count
        )));
    }
    let message_type = convert::message_type(t.message_type)
        .ok()
        .flatten()
        .ok_or_else(|| invalid(format!("topic {name}: no valid message type")))?;
    let permission = convert::permission(t.permission)
        .ok()
        .flatten()
        .ok_or_else(|| invalid(format!("topic {name}: no valid permission")))?;
    Ok(TopicEntry {
        queues: t.queue_count.unsigned_abs(),
        name,
        message_type,
        permission,
    })
}

/// A registered group, validated.
pub fn group_in(g: admin::Group) -> Result<GroupEntry> {
    let name = GroupName::new(g.name).map_err(|e| invalid(format!("group name: {e}")))?;
    let max_retries = u32::try_from(g.max_retries)
        .map_err(|_| invalid(format!("group {name}: negative max retries")))?;
    Ok(GroupEntry {
        name,
        fifo: g.fifo,
        max_retries,
    })
}

/// A broker name: 1 to 255 characters, no control characters.
pub fn broker_name_in(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "broker name {name:?} must have 1 to 255 characters and no control characters"
        )));
    }
    Ok(())
}

/// Broker endpoints: at least one, each `host:port`.
pub fn endpoints_in(addresses: &[String]) -> Result<()> {
    if addresses.is_empty() {
        return Err(invalid("a broker needs at least one endpoint".to_owned()));
    }
    for e in addresses {
        if endpoints(e).is_none() {
            return Err(invalid(format!("endpoint {e:?} is not host:port")));
        }
    }
    Ok(())
}

pub fn topic_out(t: &TopicEntry) -> admin::Topic {
    admin::Topic {
        name: t.name.as_str().to_owned(),
        queue_count: i32::try_from(t.queues).unwrap_or(i32::MAX),
        message_type: t.message_type as i32,
        permission: t.permission as i32,
    }
}

pub fn route_out(r: BrokerRoute) -> ns::BrokerRoute {
    ns::BrokerRoute {
        topic: Some(topic_out(&r.topic)),
        broker_name: r.broker,
        endpoints: r.endpoints,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tern_protocol::admin::{MessageType, Permission};

    use super::*;

    fn topic(name: &str, queues: i32, mt: MessageType, p: Permission) -> admin::Topic {
        admin::Topic {
            name: name.to_owned(),
            queue_count: queues,
            message_type: mt as i32,
            permission: p as i32,
        }
    }

    #[test]
    fn registrations_are_validated() {
        let ok = topic("t", 4, MessageType::Mixed, Permission::Read);
        let t = topic_in(ok).unwrap();
        assert_eq!((t.queues, t.readable()), (4, true));
        for bad in [
            topic("bad name", 4, MessageType::Normal, Permission::Read),
            topic("t", 0, MessageType::Normal, Permission::Read),
            topic("t", 4, MessageType::Unspecified, Permission::Read),
            topic("t", 4, MessageType::Normal, Permission::Unspecified),
        ] {
            assert!(topic_in(bad).is_err());
        }
        let mut g = admin::Group {
            name: "g".to_owned(),
            fifo: true,
            max_retries: -1,
        };
        assert!(group_in(g.clone()).is_err());
        g.max_retries = 2;
        assert_eq!(group_in(g).unwrap().max_retries, 2);
        assert!(broker_name_in("").is_err() && broker_name_in("b-0").is_ok());
        assert!(endpoints_in(&[]).is_err());
        assert!(endpoints_in(&["h:x".to_owned()]).is_err());
        assert!(endpoints_in(&["[::1]:1".to_owned(), "b.svc:8081".to_owned()]).is_ok());
    }
}
