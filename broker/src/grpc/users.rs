//! The `TernAdmin` RPCs of users and their access rules
//! ([`crate::meta::acl`]): create, list, update, delete users; grant,
//! revoke and list rules. Each needs a super user when checks are on, and
//! each change writes an audit line. A secret key is returned once, by
//! CreateUser (generated when none is given); never by the others.

use std::collections::BTreeSet;

use tern_protocol::admin::{self as pb, *};
use tonic::{Request, Response, Status};

use super::admin::{Admin, Reply, grpc};
use crate::meta::acl::{self, Decision, Network, Policy, ResourceKind, User};
use crate::task::blocking;

/// Length of a generated secret key.
const GENERATED_SECRET_LEN: usize = 32;

/// `GENERATED_SECRET_LEN` random letters and digits.
fn generate_secret() -> Result<String, Status> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(GENERATED_SECRET_LEN);
    while out.len() < GENERATED_SECRET_LEN {
        let mut buf = [0_u8; 64];
        getrandom::fill(&mut buf)
            .map_err(|e| Status::internal(format!("no random numbers for a secret key: {e}")))?;
        // 248 = 4 * 62: below it, every letter is as likely.
        for b in buf.into_iter().filter(|&b| b < 248) {
            if out.len() == GENERATED_SECRET_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

fn kind_in(kind: i32) -> Result<Option<acl::UserKind>, Status> {
    match pb::UserKind::try_from(kind) {
        Ok(pb::UserKind::Unspecified) => Ok(None),
        Ok(pb::UserKind::Normal) => Ok(Some(acl::UserKind::Normal)),
        Ok(pb::UserKind::Super) => Ok(Some(acl::UserKind::Super)),
        Err(_) => Err(Status::invalid_argument(format!(
            "unknown user kind {kind}"
        ))),
    }
}

fn kind_out(kind: acl::UserKind) -> pb::UserKind {
    match kind {
        acl::UserKind::Normal => pb::UserKind::Normal,
        acl::UserKind::Super => pb::UserKind::Super,
    }
}

fn action_in(a: i32) -> Result<acl::Action, Status> {
    Ok(match pb::Action::try_from(a) {
        Ok(pb::Action::Pub) => acl::Action::Pub,
        Ok(pb::Action::Sub) => acl::Action::Sub,
        Ok(pb::Action::Create) => acl::Action::Create,
        Ok(pb::Action::Update) => acl::Action::Update,
        Ok(pb::Action::Delete) => acl::Action::Delete,
        Ok(pb::Action::Get) => acl::Action::Get,
        Ok(pb::Action::List) => acl::Action::List,
        Ok(pb::Action::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument(format!("unknown action {a}")));
        }
    })
}

fn action_out(a: acl::Action) -> pb::Action {
    match a {
        acl::Action::Pub => pb::Action::Pub,
        acl::Action::Sub => pb::Action::Sub,
        acl::Action::Create => pb::Action::Create,
        acl::Action::Update => pb::Action::Update,
        acl::Action::Delete => pb::Action::Delete,
        acl::Action::Get => pb::Action::Get,
        acl::Action::List => pb::Action::List,
    }
}

/// A rule from the protocol; `need_actions`: refuse one naming none.
fn rule_in(rule: Option<AccessRule>, need_actions: bool) -> Result<Policy, Status> {
    let r = rule.ok_or_else(|| Status::invalid_argument("the rule is required"))?;
    let kind = match pb::ResourceKind::try_from(r.resource_kind) {
        Ok(pb::ResourceKind::Topic) => ResourceKind::Topic,
        Ok(pb::ResourceKind::Group) => ResourceKind::Group,
        _ => {
            return Err(Status::invalid_argument(
                "the rule's resource kind must be topic or group",
            ));
        }
    };
    let actions = r
        .actions
        .iter()
        .map(|&a| action_in(a))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if need_actions && actions.is_empty() {
        return Err(Status::invalid_argument("name at least one action"));
    }
    let decision = match pb::Decision::try_from(r.decision) {
        Ok(pb::Decision::Unspecified | pb::Decision::Allow) => Decision::Allow,
        Ok(pb::Decision::Deny) => Decision::Deny,
        Err(_) => return Err(Status::invalid_argument("unknown decision")),
    };
    let sources = r
        .sources
        .iter()
        .map(|s| s.parse::<Network>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(grpc)?;
    Ok(Policy {
        kind,
        pattern: r.pattern.parse().map_err(grpc)?,
        actions,
        decision,
        sources,
    })
}

fn rule_out(p: &Policy) -> AccessRule {
    AccessRule {
        resource_kind: match p.kind {
            ResourceKind::Topic => pb::ResourceKind::Topic,
            ResourceKind::Group => pb::ResourceKind::Group,
        }
        .into(),
        pattern: p.pattern.to_string(),
        actions: p.actions.iter().map(|&a| action_out(a).into()).collect(),
        decision: match p.decision {
            Decision::Allow => pb::Decision::Allow,
            Decision::Deny => pb::Decision::Deny,
        }
        .into(),
        sources: p.sources.iter().map(ToString::to_string).collect(),
    }
}

/// A user as the protocol carries it, without its secret key.
fn user_out(u: &User) -> pb::User {
    pb::User {
        name: u.name().to_owned(),
        kind: kind_out(u.kind()).into(),
        secret_key: String::new(),
        rules: u.policies().iter().map(rule_out).collect(),
    }
}

/// `what` of a rule, for the audit line: `allow pub,sub on topic orders*`.
fn rule_target(user: &str, p: &Policy) -> String {
    let actions: Vec<&str> = p.actions.iter().map(|a| a.as_str()).collect();
    format!(
        "user {user}: {} {} on {} {}{}",
        match p.decision {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        },
        if actions.is_empty() {
            "all".to_owned()
        } else {
            actions.join(",")
        },
        p.kind.as_str(),
        p.pattern,
        if p.sources.is_empty() {
            String::new()
        } else {
            let s: Vec<String> = p.sources.iter().map(ToString::to_string).collect();
            format!(" from {}", s.join(","))
        }
    )
}

/// A missing user as NOT_FOUND (the registry says INVALID_ARGUMENT).
fn exists(admin: &Admin, name: &str) -> Result<(), Status> {
    match admin.registry.user(name) {
        Some(_) => Ok(()),
        None => Err(Status::not_found(format!("no user `{name}`"))),
    }
}

pub(super) async fn create(
    admin: &Admin,
    req: Request<CreateUserRequest>,
) -> Reply<CreateUserResponse> {
    let who = admin.admit_super(&req, "CreateUser")?;
    let r = req.into_inner();
    let kind = kind_in(r.kind)?.unwrap_or(acl::UserKind::Normal);
    let secret = if r.secret_key.is_empty() {
        generate_secret()?
    } else {
        r.secret_key
    };
    let user = User::new(&r.name, &secret, kind).map_err(grpc)?;
    if admin.registry.user(user.name()).is_some() {
        return Err(Status::already_exists(format!(
            "user `{}` exists already",
            user.name()
        )));
    }
    let mut out = user_out(&user);
    out.secret_key = secret;
    let registry = admin.registry.clone();
    blocking(move || registry.create_user(user))
        .await
        .map_err(grpc)?;
    who.audit(&format!(
        "user {} ({})",
        out.name,
        match kind {
            acl::UserKind::Super => "super",
            acl::UserKind::Normal => "normal",
        }
    ));
    Ok(Response::new(CreateUserResponse { user: Some(out) }))
}

pub(super) fn list(admin: &Admin, req: Request<ListUsersRequest>) -> Reply<ListUsersResponse> {
    admin.admit_super(&req, "ListUsers")?;
    let users = admin.registry.users().iter().map(user_out).collect();
    Ok(Response::new(ListUsersResponse { users }))
}

pub(super) async fn update(
    admin: &Admin,
    req: Request<UpdateUserRequest>,
) -> Reply<UpdateUserResponse> {
    let who = admin.admit_super(&req, "UpdateUser")?;
    let r = req.into_inner();
    let kind = kind_in(r.kind)?;
    if r.secret_key.is_none() && kind.is_none() {
        return Err(Status::invalid_argument(
            "nothing to change: give a secret key, a kind or both",
        ));
    }
    exists(admin, &r.name)?;
    let registry = admin.registry.clone();
    let name = r.name.clone();
    let secret = r.secret_key.clone();
    let user = blocking(move || {
        registry.update_user(&name, |u| {
            let u = match &secret {
                Some(s) => u.with_secret(s)?,
                None => u,
            };
            Ok(match kind {
                Some(k) => u.with_kind(k),
                None => u,
            })
        })
    })
    .await
    .map_err(grpc)?;
    let mut changed = Vec::new();
    if r.secret_key.is_some() {
        changed.push("secret key".to_owned());
    }
    if let Some(k) = kind {
        changed.push(format!(
            "kind {}",
            match k {
                acl::UserKind::Super => "super",
                acl::UserKind::Normal => "normal",
            }
        ));
    }
    who.audit(&format!("user {}: {}", r.name, changed.join(", ")));
    Ok(Response::new(UpdateUserResponse {
        user: Some(user_out(&user)),
    }))
}

pub(super) async fn delete(
    admin: &Admin,
    req: Request<DeleteUserRequest>,
) -> Reply<DeleteUserResponse> {
    let who = admin.admit_super(&req, "DeleteUser")?;
    let name = req.into_inner().name;
    exists(admin, &name)?;
    let registry = admin.registry.clone();
    let target = format!("user {name}");
    blocking(move || registry.delete_user(&name))
        .await
        .map_err(grpc)?;
    who.audit(&target);
    Ok(Response::new(DeleteUserResponse {}))
}

pub(super) async fn grant(
    admin: &Admin,
    req: Request<GrantAccessRequest>,
) -> Reply<GrantAccessResponse> {
    let who = admin.admit_super(&req, "GrantAccess")?;
    let r = req.into_inner();
    let policy = rule_in(r.rule, true)?;
    exists(admin, &r.user)?;
    let target = rule_target(&r.user, &policy);
    let registry = admin.registry.clone();
    let name = r.user;
    let user = blocking(move || registry.grant(&name, policy))
        .await
        .map_err(grpc)?;
    who.audit(&target);
    Ok(Response::new(GrantAccessResponse {
        user: Some(user_out(&user)),
    }))
}

pub(super) async fn revoke(
    admin: &Admin,
    req: Request<RevokeAccessRequest>,
) -> Reply<RevokeAccessResponse> {
    let who = admin.admit_super(&req, "RevokeAccess")?;
    let r = req.into_inner();
    let policy = rule_in(r.rule, false)?;
    exists(admin, &r.user)?;
    let target = rule_target(&r.user, &policy);
    let registry = admin.registry.clone();
    let name = r.user;
    let user = blocking(move || registry.revoke(&name, &policy))
        .await
        .map_err(grpc)?;
    who.audit(&target);
    Ok(Response::new(RevokeAccessResponse {
        user: Some(user_out(&user)),
    }))
}

pub(super) fn list_access(
    admin: &Admin,
    req: Request<ListAccessRequest>,
) -> Reply<ListAccessResponse> {
    admin.admit_super(&req, "ListAccess")?;
    let users = match req.get_ref().user.as_deref() {
        Some(name) => vec![
            admin
                .registry
                .user(name)
                .ok_or_else(|| Status::not_found(format!("no user `{name}`")))?,
        ],
        None => admin.registry.users(),
    };
    Ok(Response::new(ListAccessResponse {
        users: users.iter().map(user_out).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_random_and_valid() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), GENERATED_SECRET_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(User::new("app", &a, acl::UserKind::Normal).is_ok());
    }

    #[test]
    fn rules_convert_both_ways() {
        let rule = AccessRule {
            resource_kind: pb::ResourceKind::Topic.into(),
            pattern: "orders*".into(),
            actions: vec![pb::Action::Pub.into(), pb::Action::Sub.into()],
            decision: pb::Decision::Deny.into(),
            sources: vec!["10.0.0.0/8".into()],
        };
        let p = rule_in(Some(rule.clone()), true).unwrap();
        assert_eq!(p.decision, Decision::Deny);
        assert_eq!(rule_out(&p), rule);
        assert_eq!(
            rule_target("app", &p),
            "user app: deny pub,sub on topic orders* from 10.0.0.0/8"
        );
        let none = AccessRule {
            actions: Vec::new(),
            ..rule.clone()
        };
        assert!(rule_in(Some(none.clone()), true).is_err());
        assert!(rule_in(Some(none), false).is_ok());
        let bad = AccessRule {
            resource_kind: 0,
            ..rule
        };
        assert_eq!(
            rule_in(Some(bad), true).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
