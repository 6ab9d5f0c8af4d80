//! What to change inside a broker so it matches a `Topic` or
//! `ConsumerGroup`, and which resource owns a name. Pure functions.

use k8s_openapi::jiff::Timestamp;
use tern_model::{MessageType, Permission};

/// A topic as the broker stores it (or as a `Topic` wants it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerTopic {
    /// Name in the broker.
    pub name: String,
    /// Queue count.
    pub queues: i32,
    /// Accepted message type.
    pub message_type: MessageType,
    /// Client permission.
    pub permission: Permission,
}

/// A consumer group as the broker stores it (or as a `ConsumerGroup`
/// wants it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerGroup {
    /// Name in the broker.
    pub name: String,
    /// Ordered delivery per message group.
    pub fifo: bool,
    /// Redeliveries before dead-lettering.
    pub max_retries: i32,
}

/// What to do in one broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: the broker matches.
    InSync,
    /// Create it.
    Create,
    /// Update it; the fields listed differ (for people and Events).
    Update(Vec<&'static str>),
}

/// The plan for a topic in one broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPlan {
    /// What to do.
    pub action: Action,
    /// The broker has more queues than wanted: `(have, want)`. Queues are
    /// never removed (their messages would be lost), so the broker keeps
    /// its count and the resource reports `NotSupported`.
    pub shrink_refused: Option<(i32, i32)>,
}

/// Plans a topic: create it when missing; otherwise update the fields that
/// differ, growing queues but never shrinking them.
pub fn plan_topic(want: &BrokerTopic, have: Option<&BrokerTopic>) -> TopicPlan {
    let Some(have) = have else {
        return TopicPlan {
            action: Action::Create,
            shrink_refused: None,
        };
    };
    let mut fields = Vec::new();
    if want.queues > have.queues {
        fields.push("queues");
    }
    if want.message_type != have.message_type {
        fields.push("messageType");
    }
    if want.permission != have.permission {
        fields.push("permission");
    }
    TopicPlan {
        action: if fields.is_empty() {
            Action::InSync
        } else {
            Action::Update(fields)
        },
        shrink_refused: (want.queues < have.queues).then_some((have.queues, want.queues)),
    }
}

/// Plans a consumer group: create it when missing, update what differs.
pub fn plan_group(want: &BrokerGroup, have: Option<&BrokerGroup>) -> Action {
    let Some(have) = have else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if want.fifo != have.fifo {
        fields.push("fifo");
    }
    if want.max_retries != have.max_retries {
        fields.push("retryPolicy.maxRetries");
    }
    if fields.is_empty() {
        Action::InSync
    } else {
        Action::Update(fields)
    }
}

/// One resource that asks for a broker-side name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.creationTimestamp`.
    pub created: Option<Timestamp>,
}

/// The claim that owns a name: the oldest, ties broken by resource name.
/// The others are conflicts and leave the broker alone.
pub fn owner(claims: &[Claim]) -> Option<&Claim> {
    claims.iter().min_by(|a, b| {
        let key = |c: &Claim| (c.created.is_none(), c.created, c.name.clone());
        key(a).cmp(&key(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(queues: i32) -> BrokerTopic {
        BrokerTopic {
            name: "orders".to_owned(),
            queues,
            message_type: MessageType::Normal,
            permission: Permission::ReadWrite,
        }
    }

    #[test]
    fn a_missing_topic_is_created() {
        assert_eq!(plan_topic(&topic(8), None).action, Action::Create);
    }

    #[test]
    fn drift_is_reverted() {
        let mut have = topic(8);
        have.permission = Permission::Read;
        have.message_type = MessageType::Fifo;
        let p = plan_topic(&topic(8), Some(&have));
        assert_eq!(p.action, Action::Update(vec!["messageType", "permission"]));
        assert_eq!(p.shrink_refused, None);
        assert_eq!(
            plan_topic(&topic(8), Some(&topic(8))).action,
            Action::InSync
        );
    }

    #[test]
    fn queues_grow_but_never_shrink() {
        assert_eq!(
            plan_topic(&topic(16), Some(&topic(8))).action,
            Action::Update(vec!["queues"])
        );
        let p = plan_topic(&topic(4), Some(&topic(8)));
        assert_eq!(p.action, Action::InSync);
        assert_eq!(p.shrink_refused, Some((8, 4)));
        // Other drift is still reverted while the shrink is refused.
        let mut have = topic(8);
        have.permission = Permission::Write;
        let p = plan_topic(&topic(4), Some(&have));
        assert_eq!(p.action, Action::Update(vec!["permission"]));
        assert_eq!(p.shrink_refused, Some((8, 4)));
    }

    #[test]
    fn groups_follow_the_resource() {
        let want = BrokerGroup {
            name: "g".to_owned(),
            fifo: true,
            max_retries: 3,
        };
        assert_eq!(plan_group(&want, None), Action::Create);
        assert_eq!(plan_group(&want, Some(&want)), Action::InSync);
        let have = BrokerGroup {
            fifo: false,
            max_retries: 16,
            ..want.clone()
        };
        assert_eq!(
            plan_group(&want, Some(&have)),
            Action::Update(vec!["fifo", "retryPolicy.maxRetries"])
        );
    }

    #[test]
    fn the_oldest_claim_owns_the_name() {
        let at = |s| Some(Timestamp::from_second(s).expect("valid"));
        let claim = |uid: &str, name: &str, created| Claim {
            uid: uid.into(),
            name: name.into(),
            created,
        };
        let claims = vec![
            claim("u1", "b", at(20)),
            claim("u2", "a", at(10)),
            claim("u3", "c", None),
        ];
        assert_eq!(owner(&claims).map(|c| c.uid.as_str()), Some("u2"));
        // Same second: the name decides, so every replica of the operator agrees.
        let tie = vec![claim("u1", "zeta", at(10)), claim("u2", "alpha", at(10))];
        assert_eq!(owner(&tie).map(|c| c.uid.as_str()), Some("u2"));
        assert_eq!(owner(&[]), None);
    }
}
