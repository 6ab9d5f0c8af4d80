//! Users and their access rules through the admin API: the
//! [`AdminClient`] methods and their types. Every call needs a super user
//! when the broker checks requests.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tern_protocol::admin as pb;

use crate::AdminClient;
use crate::ClientError;

/// Super users may do everything; normal ones what their rules allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    Normal,
    Super,
}

impl fmt::Display for UserKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Normal => "normal",
            Self::Super => "super",
        })
    }
}

/// The kind of resource a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Topic,
    Group,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Topic => "topic",
            Self::Group => "group",
        })
    }
}

/// What a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send to a topic.
    Pub,
    /// Receive from a topic, as a group.
    Sub,
    Create,
    Update,
    Delete,
    /// Describe, see lag, look up messages.
    Get,
    /// List (needs a rule on the pattern `*`).
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

    fn to_pb(self) -> pb::Action {
        match self {
            Self::Pub => pb::Action::Pub,
            Self::Sub => pb::Action::Sub,
            Self::Create => pb::Action::Create,
            Self::Update => pb::Action::Update,
            Self::Delete => pb::Action::Delete,
            Self::Get => pb::Action::Get,
            Self::List => pb::Action::List,
        }
    }

    fn from_pb(a: i32) -> Result<Self, String> {
        Ok(match pb::Action::try_from(a) {
            Ok(pb::Action::Pub) => Self::Pub,
            Ok(pb::Action::Sub) => Self::Sub,
            Ok(pb::Action::Create) => Self::Create,
            Ok(pb::Action::Update) => Self::Update,
            Ok(pb::Action::Delete) => Self::Delete,
            Ok(pb::Action::Get) => Self::Get,
            Ok(pb::Action::List) => Self::List,
            _ => return Err(format!("unknown action {a}")),
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, ClientError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                ClientError::InvalidArgument(format!(
                    "`{s}` is not an action (pub, sub, create, update, delete, get, list)"
                ))
            })
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// One rule of a user's access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRule {
    pub resource: ResourceKind,
    /// A name, `prefix*`, or `*` for all.
    pub pattern: String,
    /// In a revoke, none means all.
    pub actions: Vec<Action>,
    pub decision: Decision,
    /// IP addresses or networks (`10.0.0.0/8`) it applies to; none: any.
    pub sources: Vec<String>,
}

impl AccessRule {
    fn to_pb(&self) -> pb::AccessRule {
        pb::AccessRule {
            resource_kind: match self.resource {
                ResourceKind::Topic => pb::ResourceKind::Topic,
                ResourceKind::Group => pb::ResourceKind::Group,
            }
            .into(),
            pattern: self.pattern.clone(),
            actions: self.actions.iter().map(|a| a.to_pb().into()).collect(),
            decision: match self.decision {
                Decision::Allow => pb::Decision::Allow,
                Decision::Deny => pb::Decision::Deny,
            }
            .into(),
            sources: self.sources.clone(),
        }
    }

    fn from_pb(r: pb::AccessRule) -> Result<Self, String> {
        Ok(Self {
            resource: match pb::ResourceKind::try_from(r.resource_kind) {
                Ok(pb::ResourceKind::Topic) => ResourceKind::Topic,
                Ok(pb::ResourceKind::Group) => ResourceKind::Group,
                _ => return Err(format!("unknown resource kind {}", r.resource_kind)),
            },
            pattern: r.pattern,
            actions: r
                .actions
                .into_iter()
                .map(Action::from_pb)
                .collect::<Result<_, _>>()?,
            decision: match pb::Decision::try_from(r.decision) {
                Ok(pb::Decision::Deny) => Decision::Deny,
                Ok(_) => Decision::Allow,
                Err(_) => return Err(format!("unknown decision {}", r.decision)),
            },
            sources: r.sources,
        })
    }
}

/// A user as the broker lists it: never its secret key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The access key.
    pub name: String,
    pub kind: UserKind,
    pub rules: Vec<AccessRule>,
}

impl User {
    fn from_pb(u: pb::User) -> Result<Self, String> {
        Ok(Self {
            name: u.name,
            kind: kind_from(u.kind)?,
            rules: u
                .rules
                .into_iter()
                .map(AccessRule::from_pb)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A user just created, with its secret key: the only time it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedUser {
    pub name: String,
    pub kind: UserKind,
    pub secret_key: String,
}

fn kind_from(k: i32) -> Result<UserKind, String> {
    match pb::UserKind::try_from(k) {
        Ok(pb::UserKind::Normal) => Ok(UserKind::Normal),
        Ok(pb::UserKind::Super) => Ok(UserKind::Super),
        _ => Err(format!("unknown user kind {k}")),
    }
}

fn kind_to(k: UserKind) -> i32 {
    match k {
        UserKind::Normal => pb::UserKind::Normal,
        UserKind::Super => pb::UserKind::Super,
    }
    .into()
}

fn user_of(action: &str, user: Option<pb::User>) -> Result<User, ClientError> {
    let u = user.ok_or_else(|| ClientError::bad_response(action, "no user in the answer"))?;
    User::from_pb(u).map_err(|d| ClientError::bad_response(action, d))
}

fn users_of(action: &str, users: Vec<pb::User>) -> Result<Vec<User>, ClientError> {
    users
        .into_iter()
        .map(User::from_pb)
        .collect::<Result<_, _>>()
        .map_err(|d| ClientError::bad_response(action, d))
}

impl AdminClient {
    /// Creates a user; without `secret_key` the broker generates one (32
    /// letters and digits). The answer holds the secret key: it is never
    /// shown again.
    pub async fn create_user(
        &self,
        name: &str,
        secret_key: Option<&str>,
        kind: UserKind,
    ) -> Result<CreatedUser, ClientError> {
        let action = format!("creating user {name}");
        let req = pb::CreateUserRequest {
            name: name.to_owned(),
            secret_key: secret_key.unwrap_or_default().to_owned(),
            kind: kind_to(kind),
        };
        let u = self
            .service()
            .create_user(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?
            .into_inner()
            .user
            .ok_or_else(|| ClientError::bad_response(&action, "no user in the answer"))?;
        let kind = kind_from(u.kind).map_err(|d| ClientError::bad_response(&action, d))?;
        if u.secret_key.is_empty() {
            return Err(ClientError::bad_response(&action, "no secret key"));
        }
        Ok(CreatedUser {
            name: u.name,
            kind,
            secret_key: u.secret_key,
        })
    }

    /// Every user, sorted by name, with its rules.
    pub async fn list_users(&self) -> Result<Vec<User>, ClientError> {
        let action = "listing users";
        let resp = self
            .service()
            .list_users(self.request(pb::ListUsersRequest {}))
            .await
            .map_err(|s| ClientError::grpc(action, &s))?;
        users_of(action, resp.into_inner().users)
    }

    /// Sets a user's secret key, kind or both (`None` keeps it).
    pub async fn update_user(
        &self,
        name: &str,
        secret_key: Option<&str>,
        kind: Option<UserKind>,
    ) -> Result<User, ClientError> {
        let action = format!("updating user {name}");
        let req = pb::UpdateUserRequest {
            name: name.to_owned(),
            secret_key: secret_key.map(str::to_owned),
            kind: kind.map_or(pb::UserKind::Unspecified.into(), kind_to),
        };
        let resp = self
            .service()
            .update_user(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        user_of(&action, resp.into_inner().user)
    }

    /// Deletes a user: its requests are refused from then on.
    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        let action = format!("deleting user {name}");
        let req = pb::DeleteUserRequest {
            name: name.to_owned(),
        };
        self.service()
            .delete_user(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        Ok(())
    }

    /// Adds `rule`'s actions to the user's rule with the same resource,
    /// pattern, decision and sources (or adds the rule); the user after.
    pub async fn grant_access(&self, user: &str, rule: &AccessRule) -> Result<User, ClientError> {
        let action = format!("granting access to user {user}");
        let req = pb::GrantAccessRequest {
            user: user.to_owned(),
            rule: Some(rule.to_pb()),
        };
        let resp = self
            .service()
            .grant_access(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        user_of(&action, resp.into_inner().user)
    }

    /// Removes `rule`'s actions (all when it names none) from the user's
    /// rule with the same resource, pattern, decision and sources; the
    /// user after.
    pub async fn revoke_access(&self, user: &str, rule: &AccessRule) -> Result<User, ClientError> {
        let action = format!("revoking access of user {user}");
        let req = pb::RevokeAccessRequest {
            user: user.to_owned(),
            rule: Some(rule.to_pb()),
        };
        let resp = self
            .service()
            .revoke_access(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        user_of(&action, resp.into_inner().user)
    }

    /// The rules of `user`, or of every user.
    pub async fn list_access(&self, user: Option<&str>) -> Result<Vec<User>, ClientError> {
        let action = match user {
            Some(u) => format!("listing the access of user {u}"),
            None => "listing access rules".to_owned(),
        };
        let req = pb::ListAccessRequest {
            user: user.map(str::to_owned),
        };
        let resp = self
            .service()
            .list_access(self.request(req))
            .await
            .map_err(|s| ClientError::grpc(&action, &s))?;
        users_of(&action, resp.into_inner().users)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_and_actions_parse() {
        let rule = AccessRule {
            resource: ResourceKind::Group,
            pattern: "g*".into(),
            actions: vec![Action::Sub, Action::Get],
            decision: Decision::Deny,
            sources: vec!["10.0.0.0/8".into()],
        };
        assert_eq!(AccessRule::from_pb(rule.to_pb()).unwrap(), rule);
        assert_eq!(" PUB".parse::<Action>().unwrap(), Action::Pub);
        assert!("publish".parse::<Action>().is_err());
        let bad = pb::AccessRule {
            resource_kind: 9,
            ..rule.to_pb()
        };
        assert!(AccessRule::from_pb(bad).is_err());
    }
}
