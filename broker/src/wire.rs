//! The protobuf form of a topic's configuration, shared by the admin
//! service and the registration with name servers (which both speak
//! `tern.admin.v1.Topic`).

use tern_protocol::admin;

use crate::meta::TopicConfig;

/// `t` as `tern.admin.v1.Topic`.
pub(crate) fn topic_out(t: &TopicConfig) -> admin::Topic {
    admin::Topic {
        name: t.name().to_string(),
        queue_count: i32::try_from(t.queues()).unwrap_or(i32::MAX),
        message_type: admin::MessageType::from(t.message_type()) as i32,
        permission: admin::Permission::from(t.permission()) as i32,
    }
}
