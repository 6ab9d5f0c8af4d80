//! Users and their access policies, kept in the registry (and so in its
//! metadata log) next to topics and groups.
//!
//! The shape follows RocketMQ 5.3's ACL 2.0: a user is an access key with
//! a secret key (the SDKs sign each request with it) and a kind, super or
//! normal; a normal user's policies each name a resource kind (topic or
//! group), a name pattern (literal, prefixed `name*`, or any `*`), actions
//! (Pub, Sub, Create, Update, Delete, Get, List), a decision (allow or
//! deny) and optionally the source networks it applies to. A request is
//! allowed when a policy allows it and none denies it (deny wins); with no
//! policy that applies, it is denied. Super users may do everything.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

/// Longest access key (user name).
pub const MAX_ACCESS_KEY_LEN: usize = 128;
/// Shortest and longest secret key.
pub const SECRET_KEY_LEN: std::ops::RangeInclusive<usize> = 8..=256;

/// What a request does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send (and end transactions, recall) to a topic.
    Pub,
    /// Receive, acknowledge, pull from a topic, as a group.
    Sub,
    Create,
    Update,
    Delete,
    /// Read one resource's description, lag or messages.
    Get,
    /// List resources.
    List,
}

impl Action {
    pub const ALL: [Self; 7] = [
        Self::Pub,
        Self::Sub,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Get,
        Self::List,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::Sub => "sub",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Get => "get",
            Self::List => "list",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = BrokerError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                BrokerError::Invalid(format!(
                    "`{s}` is not an action (pub, sub, create, update, delete, get, list)"
                ))
            })
    }
}

/// The kind of resource a policy is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Topic,
    Group,
}

impl ResourceKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Topic => "topic",
            Self::Group => "group",
        }
    }
}

/// Which names of a kind a policy covers: written `name` (that one),
/// `prefix*` (those starting with it) or `*` (all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pattern {
    Any,
    Literal(String),
    Prefixed(String),
}

impl Pattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Literal(n) => n == name,
            Self::Prefixed(p) => name.starts_with(p.as_str()),
        }
    }
}

impl FromStr for Pattern {
    type Err = BrokerError;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = |why: &str| BrokerError::Invalid(format!("resource pattern `{s}`: {why}"));
        if s == "*" {
            return Ok(Self::Any);
        }
        let (body, prefixed) = match s.strip_suffix('*') {
            Some(b) => (b, true),
            None => (s, false),
        };
        if body.is_empty() {
            return Err(bad("empty"));
        }
        if body.len() > 255
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_%|.".contains(&b))
        {
            return Err(bad(
                "a name, `prefix*` or `*`, of letters, digits and -_%|.",
            ));
        }
        Ok(if prefixed {
            Self::Prefixed(body.to_owned())
        } else {
            Self::Literal(body.to_owned())
        })
    }
}

impl TryFrom<String> for Pattern {
    type Error = BrokerError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> Self {
        p.to_string()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Literal(n) => f.write_str(n),
            Self::Prefixed(p) => write!(f, "{p}*"),
        }
    }
}

/// An IP network, `10.0.0.0/8` or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on an IPv6 socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xff_u8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl FromStr for Network {
    type Err = BrokerError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            BrokerError::Invalid(format!(
                "`{s}` is not an IP address or network (10.0.0.0/8)"
            ))
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for Network {
    type Error = BrokerError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Network> for String {
    fn from(n: Network) -> Self {
        n.to_string()
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

/// One rule of a user's access.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub kind: ResourceKind,
    pub pattern: Pattern,
    pub actions: BTreeSet<Action>,
    pub decision: Decision,
    /// Networks the rule applies to; empty: any.
    #[serde(default)]
    pub sources: Vec<Network>,
}

impl Policy {
    /// Whether the rule covers `action` on the `kind` named `name` from
    /// `source` (a rule with networks never covers an unknown source).
    fn covers(
        &self,
        kind: ResourceKind,
        name: &str,
        action: Action,
        source: Option<IpAddr>,
    ) -> bool {
        self.kind == kind
            && self.actions.contains(&action)
            && self.pattern.matches(name)
            && (self.sources.is_empty()
                || source.is_some_and(|ip| self.sources.iter().any(|n| n.contains(ip))))
    }

    /// Whether this rule names the same resources, decision and networks
    /// as `other` (the actions aside): what `revoke` removes.
    pub fn same_target(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.pattern == other.pattern
            && self.decision == other.decision
            && self.sources == other.sources
    }
}

/// Super users may do everything; normal ones what their policies allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    Super,
    Normal,
}

/// A user: access key, secret key, kind and policies.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    name: String,
    secret: String,
    kind: UserKind,
    #[serde(default)]
    policies: Vec<Policy>,
}

/// Never prints the secret key.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("policies", &self.policies.len())
            .finish_non_exhaustive()
    }
}

impl User {
    /// A user with no policies; the names and keys checked.
    pub fn new(name: &str, secret: &str, kind: UserKind) -> Result<Self> {
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if name.is_empty()
            || name.len() > MAX_ACCESS_KEY_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(BrokerError::Invalid(format!(
                "user name (access key) `{name}`: 1 to {MAX_ACCESS_KEY_LEN} letters, digits and -_."
            )));
        }
        if !SECRET_KEY_LEN.contains(&secret.len()) || !printable(secret) {
            return Err(BrokerError::Invalid(format!(
                "secret key of `{name}`: {} to {} printable characters without spaces",
                SECRET_KEY_LEN.start(),
                SECRET_KEY_LEN.end()
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            secret: secret.to_owned(),
            kind,
            policies: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn kind(&self) -> UserKind {
        self.kind
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The same user with `secret` as its key.
    pub fn with_secret(mut self, secret: &str) -> Result<Self> {
        let checked = Self::new(&self.name, secret, self.kind)?;
        self.secret = checked.secret;
        Ok(self)
    }

    /// The same user with `kind`.
    #[must_use]
    pub fn with_kind(mut self, kind: UserKind) -> Self {
        self.kind = kind;
        self
    }

    /// Adds `policy`'s actions to the rule with the same target, or adds
    /// the rule.
    pub fn grant(&mut self, policy: Policy) {
        match self.policies.iter_mut().find(|p| p.same_target(&policy)) {
            Some(p) => p.actions.extend(policy.actions),
            None => self.policies.push(policy),
        }
    }

    /// Removes `policy`'s actions from the rule with the same target (the
    /// rule goes when none is left; all its actions when `policy` names
    /// none). Whether anything was removed.
    pub fn revoke(&mut self, policy: &Policy) -> bool {
        let Some(i) = self.policies.iter().position(|p| p.same_target(policy)) else {
            return false;
        };
        let rule = &mut self.policies[i];
        let before = rule.actions.len();
        if policy.actions.is_empty() {
            rule.actions.clear();
        } else {
            rule.actions.retain(|a| !policy.actions.contains(a));
        }
        let removed = rule.actions.len() < before;
        if rule.actions.is_empty() {
            self.policies.remove(i);
        }
        removed
    }

    /// Whether the user may do one of `any_of` on the `kind` named `name`
    /// from `source`: for a normal user, an action is allowed when some
    /// rule allows it and none denies it.
    pub fn may(
        &self,
        kind: ResourceKind,
        name: &str,
        any_of: &[Action],
        source: Option<IpAddr>,
    ) -> bool {
        if self.kind == UserKind::Super {
            return true;
        }
        any_of.iter().any(|&action| {
            let mut allowed = false;
            for p in self
                .policies
                .iter()
                .filter(|p| p.covers(kind, name, action, source))
            {
                match p.decision {
                    Decision::Deny => return false,
                    Decision::Allow => allowed = true,
                }
            }
            allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: ResourceKind, pattern: &str, actions: &[Action], decision: Decision) -> Policy {
        Policy {
            kind,
            pattern: pattern.parse().unwrap(),
            actions: actions.iter().copied().collect(),
            decision,
            sources: Vec::new(),
        }
    }

    #[test]
    fn patterns_and_networks_parse_and_match() {
        assert!("*".parse::<Pattern>().unwrap().matches("anything"));
        let p: Pattern = "orders-*".parse().unwrap();
        assert!(p.matches("orders-eu") && !p.matches("order"));
        let l: Pattern = "orders".parse().unwrap();
        assert!(l.matches("orders") && !l.matches("orders-eu"));
        for bad in ["", "*a*", "a b", "x/y"] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad}");
        }
        let n: Network = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Network = "192.168.1.7".parse().unwrap();
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(
            v6.contains("fd12::1".parse().unwrap()) && !v6.contains("fe80::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "::/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn deny_wins_and_nothing_is_allowed_by_default() {
        let mut u = User::new("app", "secret-123", UserKind::Normal).unwrap();
        assert!(!u.may(ResourceKind::Topic, "orders", &[Action::Pub], None));
        u.grant(policy(
            ResourceKind::Topic,
            "orders*",
            &[Action::Pub, Action::Sub],
            Decision::Allow,
        ));
        u.grant(policy(
            ResourceKind::Topic,
            "orders-secret",
            &[Action::Sub],
            Decision::Deny,
        ));
        assert!(u.may(ResourceKind::Topic, "orders", &[Action::Pub], None));
        assert!(u.may(ResourceKind::Topic, "orders-secret", &[Action::Pub], None));
        assert!(!u.may(ResourceKind::Topic, "orders-secret", &[Action::Sub], None));
        // Any of several actions will do (a route query: pub or sub).
        assert!(u.may(
            ResourceKind::Topic,
            "orders-secret",
            &[Action::Sub, Action::Pub],
            None
        ));
        assert!(!u.may(ResourceKind::Group, "orders", &[Action::Sub], None));
        assert!(!u.may(ResourceKind::Topic, "payments", &[Action::Pub], None));
        let admin = User::new("root", "secret-123", UserKind::Super).unwrap();
        assert!(admin.may(ResourceKind::Group, "x", &[Action::Delete], None));
    }

    #[test]
    fn source_networks_limit_a_rule() {
        let mut u = User::new("app", "secret-123", UserKind::Normal).unwrap();
        let mut p = policy(ResourceKind::Group, "*", &[Action::Sub], Decision::Allow);
        p.sources = vec!["10.0.0.0/8".parse().unwrap()];
        u.grant(p);
        assert!(u.may(
            ResourceKind::Group,
            "g",
            &[Action::Sub],
            Some("10.3.3.3".parse().unwrap())
        ));
        assert!(!u.may(
            ResourceKind::Group,
            "g",
            &[Action::Sub],
            Some("11.3.3.3".parse().unwrap())
        ));
        assert!(!u.may(ResourceKind::Group, "g", &[Action::Sub], None));
    }

    #[test]
    fn grant_merges_and_revoke_removes_actions() {
        let mut u = User::new("app", "secret-123", UserKind::Normal).unwrap();
        u.grant(policy(
            ResourceKind::Topic,
            "t",
            &[Action::Pub],
            Decision::Allow,
        ));
        u.grant(policy(
            ResourceKind::Topic,
            "t",
            &[Action::Sub],
            Decision::Allow,
        ));
        assert_eq!(u.policies().len(), 1);
        assert!(u.revoke(&policy(
            ResourceKind::Topic,
            "t",
            &[Action::Pub],
            Decision::Allow
        )));
        assert!(!u.may(ResourceKind::Topic, "t", &[Action::Pub], None));
        assert!(u.may(ResourceKind::Topic, "t", &[Action::Sub], None));
        assert!(u.revoke(&policy(ResourceKind::Topic, "t", &[], Decision::Allow)));
        assert!(u.policies().is_empty());
        assert!(!u.revoke(&policy(ResourceKind::Topic, "t", &[], Decision::Allow)));
    }

    #[test]
    fn names_and_secrets_are_checked_and_secrets_never_printed() {
        assert!(User::new("", "secret-123", UserKind::Normal).is_err());
        assert!(User::new("a b", "secret-123", UserKind::Normal).is_err());
        assert!(User::new("app", "short", UserKind::Normal).is_err());
        assert!(User::new("app", "has space!", UserKind::Normal).is_err());
        let u = User::new("app", "very-secret-value", UserKind::Normal).unwrap();
        assert!(!format!("{u:?}").contains("very-secret-value"));
    }

    proptest::proptest! {
        /// Fuzzing the policy fields an admin sends.
        #[test]
        fn fuzz_patterns_networks_and_actions(s in "\\PC{0,60}", n in "[0-9a-f.:/]{0,45}") {
            let _ = s.parse::<Pattern>();
            let _ = s.parse::<Network>();
            let _ = n.parse::<Network>().map(|net| net.contains("10.0.0.1".parse().unwrap()));
            let _ = s.parse::<Action>();
        }
    }
}
