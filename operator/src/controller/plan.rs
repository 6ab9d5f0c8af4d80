//! What to change inside a broker so it matches a `Topic`,
//! `ConsumerGroup` or `TernUser`, and which resource owns a name. Pure
//! functions.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use tern_client::{AccessRule, Action as AclAction, Decision, ResourceKind};
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

/// A user as the broker lists it (or as a `TernUser` wants it), without
/// its secret key, which the broker never shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUser {
    /// Name (access key).
    pub name: String,
    /// A super user.
    pub super_user: bool,
    /// Its access rules.
    pub rules: Vec<AccessRule>,
}

/// What makes rules the same rule in the broker: grants and revokes add
/// or remove actions of the rule with the same resource, pattern,
/// decision and sources.
type RuleKey = (u8, String, u8, Vec<String>);

fn rule_key(r: &AccessRule) -> RuleKey {
    let resource = match r.resource {
        ResourceKind::Topic => 0,
        ResourceKind::Group => 1,
    };
    let decision = match r.decision {
        Decision::Allow => 0,
        Decision::Deny => 1,
    };
    let mut sources = r.sources.clone();
    sources.sort();
    (resource, r.pattern.clone(), decision, sources)
}

/// The actions of each rule, merged by [`rule_key`]; the first rule of a
/// key is kept as its template.
fn by_key(rules: &[AccessRule]) -> BTreeMap<RuleKey, (AccessRule, BTreeSet<AclAction>)> {
    let mut out: BTreeMap<RuleKey, (AccessRule, BTreeSet<AclAction>)> = BTreeMap::new();
    for r in rules {
        out.entry(rule_key(r))
            .or_insert_with(|| (r.clone(), BTreeSet::new()))
            .1
            .extend(r.actions.iter().copied());
    }
    out
}

/// The rule changes that make a broker's rules exactly the wanted ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclPlan {
    /// Rules whose listed actions are missing in the broker.
    pub grant: Vec<AccessRule>,
    /// Rules whose listed actions the broker has but the spec does not.
    pub revoke: Vec<AccessRule>,
}

impl AclPlan {
    /// Whether nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty() && self.revoke.is_empty()
    }
}

/// Plans the rules: grant the wanted actions the broker lacks, revoke the
/// ones it has beyond the spec (rules compared by resource, pattern,
/// decision and sources, in any order).
pub fn plan_acls(want: &[AccessRule], have: &[AccessRule]) -> AclPlan {
    let want = by_key(want);
    let have = by_key(have);
    let with_actions = |template: &AccessRule, actions: Vec<AclAction>| AccessRule {
        actions,
        ..template.clone()
    };
    let mut plan = AclPlan::default();
    for (key, (template, actions)) in &want {
        let missing: Vec<AclAction> = match have.get(key) {
            Some((_, present)) => actions.difference(present).copied().collect(),
            None => actions.iter().copied().collect(),
        };
        if !missing.is_empty() {
            plan.grant.push(with_actions(template, missing));
        }
    }
    for (key, (template, actions)) in &have {
        let extra: Vec<AclAction> = match want.get(key) {
            Some((_, wanted)) => actions.difference(wanted).copied().collect(),
            None => actions.iter().copied().collect(),
        };
        if !extra.is_empty() {
            plan.revoke.push(with_actions(template, extra));
        }
    }
    plan
}

/// The plan for a user in one broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPlan {
    /// Create the user (with the Secret's key).
    pub create: bool,
    /// Give the broker the Secret's key (it differs from the one the
    /// brokers were last given, or was rotated).
    pub set_secret: bool,
    /// Set the kind: `Some(true)` super, `Some(false)` normal.
    pub set_super: Option<bool>,
    /// The rule changes.
    pub acls: AclPlan,
}

impl UserPlan {
    /// The fields changed, for people and Events; empty when in step.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.set_secret && !self.create {
            fields.push("secretKey");
        }
        if self.set_super.is_some() {
            fields.push("superUser");
        }
        if !self.acls.is_empty() {
            fields.push("acls");
        }
        fields
    }

    /// As an [`Action`].
    pub fn action(&self) -> Action {
        if self.create {
            return Action::Create;
        }
        let fields = self.fields();
        if fields.is_empty() {
            Action::InSync
        } else {
            Action::Update(fields)
        }
    }
}

/// Plans a user: create it when missing (with its rules); otherwise set
/// the secret key when `secret_changed`, the kind when it differs, and the
/// rules.
pub fn plan_user(want: &BrokerUser, have: Option<&BrokerUser>, secret_changed: bool) -> UserPlan {
    match have {
        None => UserPlan {
            create: true,
            set_secret: true,
            set_super: None,
            acls: plan_acls(&want.rules, &[]),
        },
        Some(have) => UserPlan {
            create: false,
            set_secret: secret_changed,
            set_super: (want.super_user != have.super_user).then_some(want.super_user),
            acls: plan_acls(&want.rules, &have.rules),
        },
    }
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

    fn rule(pattern: &str, actions: &[AclAction], decision: Decision) -> AccessRule {
        AccessRule {
            resource: ResourceKind::Topic,
            pattern: pattern.to_owned(),
            actions: actions.to_vec(),
            decision,
            sources: Vec::new(),
        }
    }

    #[test]
    fn acls_grant_what_is_missing_and_revoke_what_is_extra() {
        use AclAction::{Get, Pub, Sub};
        use Decision::{Allow, Deny};
        let want = vec![
            rule("orders*", &[Pub, Sub], Allow),
            rule("orders-secret", &[Sub], Deny),
        ];
        // Nothing in the broker: everything is granted.
        let p = plan_acls(&want, &[]);
        assert_eq!(p.grant, want);
        assert!(p.revoke.is_empty());
        // In step, in another order and split over two rules: nothing.
        let have = vec![
            rule("orders-secret", &[Sub], Deny),
            rule("orders*", &[Sub], Allow),
            rule("orders*", &[Pub], Allow),
        ];
        assert!(plan_acls(&want, &have).is_empty());
        // The broker has Get too, lacks the Deny, and has a rule of its own.
        let have = vec![
            rule("orders*", &[Pub, Sub, Get], Allow),
            rule("*", &[Pub], Allow),
        ];
        let p = plan_acls(&want, &have);
        assert_eq!(p.grant, [rule("orders-secret", &[Sub], Deny)]);
        assert_eq!(
            p.revoke,
            [rule("*", &[Pub], Allow), rule("orders*", &[Get], Allow)]
        );
        // The same pattern with another decision or sources is another rule.
        let mut from_net = rule("orders*", &[Pub, Sub], Allow);
        from_net.sources = vec!["10.0.0.0/8".to_owned()];
        let p = plan_acls(std::slice::from_ref(&from_net), &want[..1]);
        assert_eq!(p.grant, [from_net]);
        assert_eq!(p.revoke, want[..1]);
    }

    #[test]
    fn users_are_created_rotated_and_kept_in_step() {
        let want = BrokerUser {
            name: "app".to_owned(),
            super_user: false,
            rules: vec![rule("orders", &[AclAction::Pub], Decision::Allow)],
        };
        let p = plan_user(&want, None, false);
        assert!(p.create && p.set_secret);
        assert_eq!(p.acls.grant, want.rules);
        assert_eq!(p.action(), Action::Create);
        assert_eq!(
            plan_user(&want, Some(&want), false).action(),
            Action::InSync
        );
        assert_eq!(
            plan_user(&want, Some(&want), true).action(),
            Action::Update(vec!["secretKey"])
        );
        let have = BrokerUser {
            super_user: true,
            rules: Vec::new(),
            ..want.clone()
        };
        let p = plan_user(&want, Some(&have), false);
        assert_eq!(p.set_super, Some(false));
        assert_eq!(p.action(), Action::Update(vec!["superUser", "acls"]));
    }

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
