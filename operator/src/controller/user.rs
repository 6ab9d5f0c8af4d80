//! The `TernUser` controller: a user on every broker group of a cluster
//! with authentication `Acl`, its credentials in a Secret, its rules kept
//! exactly as the resource lists them.
//!
//! The Secret is the truth for the secret key: the operator generates one
//! when the Secret has none, and gives it to the brokers whenever it
//! differs from the one they were last given (the status keeps a digest,
//! never the key: the brokers never show a key back). The annotation
//! `tern.dev/rotate-secret` set to a new value writes a new key to the
//! Secret, which then reaches the brokers the same way. A finalizer
//! deletes the user from the brokers when the resource goes; the Secret
//! follows by garbage collection (it is owned by the resource).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tern_client::{AccessRule, Action as Acl, Decision, ResourceKind};

use super::admin::BrokerAdmin;
use super::managed::reason;
use super::plan::{self, Action as BrokerAction, BrokerUser, Claim, UserPlan};
use super::{Context, apply as apply_object, apply_status};
use crate::build::auth;
use crate::build::config::digest;
use crate::crd::common::{READY, Wanted, merge_conditions};
use crate::crd::user::{AclAction, AclDecision, AclResourceType};
use crate::crd::{BrokerCluster, TernUser, TernUserStatus};
use crate::error::{Error, Result};

/// Label value of this controller in metrics.
pub const CONTROLLER: &str = "ternuser";
/// The finalizer that deletes the user from the brokers.
pub const FINALIZER: &str = "tern.dev/user";
/// Ready=False: the cluster does not check requests, so users mean nothing.
pub const AUTHENTICATION_DISABLED: &str = "AuthenticationDisabled";

impl TernUser {
    /// The user the brokers should have.
    pub fn wanted(&self) -> BrokerUser {
        BrokerUser {
            name: self.user_name().to_owned(),
            super_user: self.spec.super_user,
            rules: self
                .spec
                .acls
                .iter()
                .map(|r| {
                    let mut sources = r.sources.clone();
                    sources.sort();
                    AccessRule {
                        resource: match r.resource.type_ {
                            AclResourceType::Topic => ResourceKind::Topic,
                            AclResourceType::Group => ResourceKind::Group,
                        },
                        pattern: r.resource.name.clone(),
                        actions: r.actions.iter().map(|a| acl_action(*a)).collect(),
                        decision: match r.decision {
                            AclDecision::Allow => Decision::Allow,
                            AclDecision::Deny => Decision::Deny,
                        },
                        sources,
                    }
                })
                .collect(),
        }
    }

    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

fn acl_action(a: AclAction) -> Acl {
    match a {
        AclAction::Pub => Acl::Pub,
        AclAction::Sub => Acl::Sub,
        AclAction::Create => Acl::Create,
        AclAction::Update => Acl::Update,
        AclAction::Delete => Acl::Delete,
        AclAction::Get => Acl::Get,
        AclAction::List => Acl::List,
    }
}

/// Makes the broker at `endpoint` have `want` with `secret_key`: creates
/// the user when missing, sets the key when `secret_changed`, the kind
/// when it differs, and grants and revokes until the rules are exactly
/// the wanted ones. Returns what it did.
pub async fn sync_user<A: BrokerAdmin>(
    admin: &A,
    endpoint: &str,
    want: &BrokerUser,
    secret_key: &str,
    secret_changed: bool,
) -> Result<UserPlan> {
    let have = admin.describe_user(endpoint, &want.name).await?;
    let p = plan::plan_user(want, have.as_ref(), secret_changed);
    if p.create {
        admin
            .create_user(endpoint, &want.name, secret_key, want.super_user)
            .await?;
    } else if p.set_secret || p.set_super.is_some() {
        let key = p.set_secret.then_some(secret_key);
        admin
            .update_user(endpoint, &want.name, key, p.set_super)
            .await?;
    }
    // Grants first: a rule that changes never leaves a gap.
    for rule in &p.acls.grant {
        admin.grant_access(endpoint, &want.name, rule).await?;
    }
    for rule in &p.acls.revoke {
        admin.revoke_access(endpoint, &want.name, rule).await?;
    }
    Ok(p)
}

/// Deletes the user `name` from the broker at `endpoint` (a missing user
/// is fine).
pub async fn remove_user<A: BrokerAdmin>(admin: &A, endpoint: &str, name: &str) -> Result<()> {
    admin.delete_user(endpoint, name).await
}

/// What the Secret should hold, and whether it must be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPlan {
    /// The secret key.
    pub secret_key: String,
    /// Write the Secret (missing, incomplete, or a new key).
    pub write: bool,
    /// The key is new because the rotation annotation asked for it.
    pub rotated: bool,
}

/// Decides the secret key: the Secret's own, unless it has none (or one
/// that cannot be a key) or `rotate` asks for a new one; `generate` makes
/// a new one.
pub fn plan_secret(
    existing: Option<&Secret>,
    user_name: &str,
    rotate: bool,
    generate: impl FnOnce() -> Result<String>,
) -> Result<SecretPlan> {
    let key = existing
        .and_then(|s| auth::secret_value(s, auth::SECRET_KEY))
        .filter(|k| auth::valid_secret_key(k));
    let access = existing.and_then(|s| auth::secret_value(s, auth::ACCESS_KEY));
    Ok(match key {
        Some(key) if !rotate => SecretPlan {
            write: access.as_deref() != Some(user_name),
            secret_key: key,
            rotated: false,
        },
        had => SecretPlan {
            secret_key: generate()?,
            write: true,
            rotated: had.is_some(),
        },
    })
}

/// A reconcile's context: the shared one plus the cache of all users, to
/// find name conflicts.
pub struct UserContext<A> {
    /// Shared context.
    pub base: Arc<Context<A>>,
    /// Every `TernUser` the controller has seen.
    pub store: Store<TernUser>,
}

impl<A> std::fmt::Debug for UserContext<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserContext").finish_non_exhaustive()
    }
}

/// Runs the controller until SIGTERM or Ctrl-C. A change to a
/// `BrokerCluster` re-triggers its users.
pub async fn run<A: BrokerAdmin>(base: Arc<Context<A>>) {
    let client = base.client.clone();
    let controller = Controller::new(
        Api::<TernUser>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    let mapper_store = store.clone();
    let ctx = Arc::new(UserContext { base, store });
    controller
        .watches(
            Api::<BrokerCluster>::all(client),
            watcher::Config::default(),
            move |cluster| {
                let ns = cluster.namespace();
                let name = cluster.name_any();
                mapper_store
                    .state()
                    .into_iter()
                    .filter(|u| u.namespace() == ns && u.spec.cluster_ref.name == name)
                    .map(|u| ObjectRef::from_obj(u.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(reconcile::<A>, error_policy::<A>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(controller = CONTROLLER, error = %e, "reconcile did not complete");
            }
        })
        .await;
}

/// Reconciles one `TernUser` through its finalizer.
pub async fn reconcile<A: BrokerAdmin>(
    user: Arc<TernUser>,
    ctx: Arc<UserContext<A>>,
) -> Result<Action> {
    let _timer = ctx.base.metrics.reconcile(CONTROLLER);
    let ns = user.namespace().ok_or(Error::MissingField {
        kind: CONTROLLER,
        field: "metadata.namespace",
    })?;
    let api: Api<TernUser> = Api::namespaced(ctx.base.client.clone(), &ns);
    finalizer(&api, FINALIZER, user, |event| async {
        match event {
            Event::Apply(u) => apply(u, &ctx).await,
            Event::Cleanup(u) => cleanup(u, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Checks a user name: usable as an access key, and not the operator's
/// own admin user (whose key only the admin Secret sets).
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name == auth::ADMIN_USER {
        return Err(format!(
            "the user name {name} is reserved for the operator's admin user"
        ));
    }
    tern_client::Credentials::new(name, "x")
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether `user` owns its broker-side name: the oldest resource naming
/// the same user of the same cluster does.
fn owns_name(user: &TernUser, store: &Store<TernUser>) -> std::result::Result<(), String> {
    let claim = |u: &TernUser| Claim {
        uid: u.uid().unwrap_or_default(),
        name: u.name_any(),
        created: u.meta().creation_timestamp.as_ref().map(|t| t.0),
    };
    let mut claims: Vec<Claim> = store
        .state()
        .iter()
        .filter(|u| {
            u.namespace() == user.namespace()
                && u.spec.cluster_ref.name == user.spec.cluster_ref.name
                && u.user_name() == user.user_name()
        })
        .map(|u| claim(u.as_ref()))
        .collect();
    let me = claim(user);
    if !claims.iter().any(|c| c.uid == me.uid) {
        claims.push(me.clone());
    }
    match plan::owner(&claims) {
        Some(o) if o.uid != me.uid => Err(o.name.clone()),
        _ => Ok(()),
    }
}

/// What one pass did, for the status.
struct Outcome {
    ready: Wanted,
    synced: i32,
    secret_digest: Option<String>,
    rotated_for: Option<String>,
}

async fn apply<A: BrokerAdmin>(user: Arc<TernUser>, ctx: &UserContext<A>) -> Result<Action> {
    let base = &ctx.base;
    let old = user.status.clone().unwrap_or_default();
    let mut out = Outcome {
        ready: Wanted::no(READY, reason::SYNCED, String::new()),
        synced: 0,
        secret_digest: old.secret_digest.clone(),
        rotated_for: old.rotated_for.clone(),
    };
    out.ready = if let Err(msg) = check_name(user.user_name()) {
        Wanted::no(READY, reason::INVALID_NAME, msg)
    } else if let Err(older) = owns_name(&user, &ctx.store) {
        Wanted::no(
            READY,
            reason::RESOURCE_CONFLICT,
            format!(
                "user {} is already managed by TernUser {older}, which is older",
                user.user_name()
            ),
        )
    } else {
        sync(&user, base, &mut out).await?
    };

    let before = user.conditions().iter().find(|c| c.type_ == READY);
    let ready = out.ready;
    if !ready.status && before.is_none_or(|c| c.reason != ready.reason) {
        base.event(user.as_ref(), true, ready.reason, ready.message.clone())
            .await;
    }
    let retry = !ready.status;
    let status = TernUserStatus {
        observed_generation: user.metadata.generation,
        conditions: merge_conditions(
            user.conditions(),
            &[ready],
            user.metadata.generation,
            Timestamp::now(),
        ),
        user_name: Some(user.user_name().to_owned()),
        secret_name: Some(user.secret_name().to_owned()),
        synced_broker_groups: out.synced,
        secret_digest: out.secret_digest,
        rotated_for: out.rotated_for,
    };
    apply_status(&base.client, user.as_ref(), &status).await?;
    let after = if retry {
        base.settings.resync.min(Duration::from_secs(15))
    } else {
        base.settings.resync
    };
    Ok(Action::requeue(after))
}

/// The cluster, the Secret, then every broker group.
async fn sync<A: BrokerAdmin>(
    user: &TernUser,
    base: &Context<A>,
    out: &mut Outcome,
) -> Result<Wanted> {
    let ns = user.namespace().unwrap_or_default();
    let clusters: Api<BrokerCluster> = Api::namespaced(base.client.clone(), &ns);
    let cluster_name = &user.spec.cluster_ref.name;
    let Some(cluster) = clusters.get_opt(cluster_name).await? else {
        return Ok(Wanted::no(
            READY,
            reason::CLUSTER_NOT_FOUND,
            format!("BrokerCluster {cluster_name} not found in namespace {ns}"),
        ));
    };
    if !auth::enabled(&cluster.spec) {
        return Ok(Wanted::no(
            READY,
            AUTHENTICATION_DISABLED,
            format!(
                "BrokerCluster {cluster_name} does not check requests: set spec.authentication.type to Acl"
            ),
        ));
    }

    // The Secret first: the key the brokers get is the one pods can read.
    let secrets: Api<Secret> = Api::namespaced(base.client.clone(), &ns);
    let existing = secrets.get_opt(user.secret_name()).await?;
    let rotation = user.rotation().map(str::to_owned);
    let rotate = rotation.is_some() && rotation != out.rotated_for;
    let sp = plan_secret(
        existing.as_ref(),
        user.user_name(),
        rotate,
        auth::generate_secret_key,
    )?;
    if sp.write {
        apply_object(&base.client, &auth::user_secret(user, &sp.secret_key)?).await?;
        let note = if sp.rotated {
            format!("new secret key written to Secret {}", user.secret_name())
        } else {
            format!("credentials written to Secret {}", user.secret_name())
        };
        base.event(user, false, "SecretWritten", note).await;
    }
    // A rotation asked for before the Secret existed is done too.
    if rotate {
        out.rotated_for = rotation;
    }
    let key_digest = digest(&sp.secret_key);
    let secret_changed = out.secret_digest.as_deref() != Some(key_digest.as_str());

    let admin = match base.admin_for(&cluster).await {
        Ok(a) => a,
        Err(e) => {
            return Ok(Wanted::no(
                READY,
                reason::BROKER_UNAVAILABLE,
                format!("no admin credentials yet: {e}"),
            ));
        }
    };
    let want = user.wanted();
    let endpoints = base.admin_endpoints(&cluster);
    let mut failures = Vec::new();
    for endpoint in &endpoints {
        match sync_user(&admin, endpoint, &want, &sp.secret_key, secret_changed).await {
            Ok(p) => {
                out.synced += 1;
                match p.action() {
                    BrokerAction::InSync => {}
                    BrokerAction::Create => {
                        tracing::info!(controller = CONTROLLER, user = %want.name, %endpoint, "created in the broker");
                        base.event(user, false, "Created", format!("created on {endpoint}"))
                            .await;
                    }
                    BrokerAction::Update(fields) => {
                        tracing::info!(controller = CONTROLLER, user = %want.name, %endpoint, fields = %fields.join(","), "updated in the broker");
                        base.event(
                            user,
                            false,
                            "Updated",
                            format!("set {} on {endpoint}", fields.join(", ")),
                        )
                        .await;
                    }
                }
            }
            Err(e) => {
                base.metrics.failure(CONTROLLER, e.reason());
                failures.push(e.to_string());
            }
        }
    }
    Ok(if let Some(first) = failures.first() {
        Wanted::no(
            READY,
            reason::BROKER_UNAVAILABLE,
            format!(
                "{} of {} broker groups in step; {first}",
                out.synced,
                endpoints.len()
            ),
        )
    } else {
        out.secret_digest = Some(key_digest);
        Wanted::yes(
            READY,
            reason::SYNCED,
            format!("in step with {} broker groups", out.synced),
        )
    })
}

async fn cleanup<A: BrokerAdmin>(user: Arc<TernUser>, ctx: &UserContext<A>) -> Result<Action> {
    let base = &ctx.base;
    let ns = user.namespace().unwrap_or_default();
    let clusters: Api<BrokerCluster> = Api::namespaced(base.client.clone(), &ns);
    // A conflicting resource, or one with a name it may not use, never
    // made the user.
    if check_name(user.user_name()).is_err() || owns_name(&user, &ctx.store).is_err() {
        return Ok(Action::await_change());
    }
    let Some(cluster) = clusters.get_opt(&user.spec.cluster_ref.name).await? else {
        return Ok(Action::await_change());
    };
    if cluster.metadata.deletion_timestamp.is_some() || !auth::enabled(&cluster.spec) {
        // The brokers go with their cluster; without authentication the
        // operator never made the user.
        return Ok(Action::await_change());
    }
    let admin = base.admin_for(&cluster).await?;
    for endpoint in base.admin_endpoints(&cluster) {
        remove_user(&admin, &endpoint, user.user_name()).await?;
        tracing::info!(controller = CONTROLLER, user = %user.user_name(), %endpoint, "deleted from the broker");
    }
    base.event(
        user.as_ref(),
        false,
        "Deleted",
        format!("user {} deleted from the brokers", user.user_name()),
    )
    .await;
    Ok(Action::await_change())
}

fn error_policy<A: BrokerAdmin>(
    user: Arc<TernUser>,
    error: &Error,
    ctx: Arc<UserContext<A>>,
) -> Action {
    ctx.base.metrics.failure(CONTROLLER, error.reason());
    tracing::warn!(controller = CONTROLLER, name = %user.name_any(), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn user(spec: serde_json::Value) -> TernUser {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tern.dev/v1alpha1", "kind": "TernUser",
            "metadata": { "name": "orders-app", "namespace": "mq", "uid": "u-1" },
            "spec": spec,
        }))
        .expect("a valid TernUser")
    }

    fn secret(access: &str, key: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([
                (
                    "accessKey".to_owned(),
                    ByteString(access.as_bytes().to_vec()),
                ),
                ("secretKey".to_owned(), ByteString(key.as_bytes().to_vec())),
            ])),
            ..Secret::default()
        }
    }

    #[test]
    fn user_names_must_be_access_keys_and_not_the_admin() {
        assert_eq!(check_name("orders-app"), Ok(()));
        assert!(check_name("tern-operator").is_err_and(|e| e.contains("reserved")));
        assert!(check_name("a,b").is_err());
    }

    #[test]
    fn the_spec_becomes_broker_rules() {
        let u = user(serde_json::json!({
            "clusterRef": { "name": "prod" },
            "userName": "OrdersApp",
            "superUser": true,
            "acls": [
                { "resource": { "type": "Topic", "name": "orders*" }, "actions": ["Pub", "Sub"] },
                { "resource": { "type": "Group", "name": "billing" }, "actions": ["Sub"],
                  "decision": "Deny", "sources": ["10.1.0.0/16", "10.0.0.0/16"] },
            ],
        }));
        let w = u.wanted();
        assert_eq!((w.name.as_str(), w.super_user), ("OrdersApp", true));
        assert_eq!(
            w.rules,
            [
                AccessRule {
                    resource: ResourceKind::Topic,
                    pattern: "orders*".to_owned(),
                    actions: vec![Acl::Pub, Acl::Sub],
                    decision: Decision::Allow,
                    sources: Vec::new(),
                },
                AccessRule {
                    resource: ResourceKind::Group,
                    pattern: "billing".to_owned(),
                    actions: vec![Acl::Sub],
                    decision: Decision::Deny,
                    sources: vec!["10.0.0.0/16".to_owned(), "10.1.0.0/16".to_owned()],
                },
            ]
        );
    }

    #[test]
    fn the_secret_key_is_kept_generated_or_rotated() {
        let new = || Ok("N".repeat(40));
        // No Secret: a new key, written.
        let p = plan_secret(None, "app", false, new).expect("plan");
        assert_eq!(
            (p.secret_key.as_str(), p.write, p.rotated),
            ("N".repeat(40).as_str(), true, false)
        );
        // A complete Secret: its key, nothing written.
        let s = secret("app", "kept-key");
        let p = plan_secret(Some(&s), "app", false, new).expect("plan");
        assert_eq!((p.secret_key.as_str(), p.write), ("kept-key", false));
        // Rotation: a new key, written.
        let p = plan_secret(Some(&s), "app", true, new).expect("plan");
        assert_eq!((p.write, p.rotated), (true, true));
        assert_ne!(p.secret_key, "kept-key");
        // The access key is wrong: rewritten, with the same secret key.
        let p = plan_secret(Some(&secret("other", "kept-key")), "app", false, new).expect("plan");
        assert_eq!((p.secret_key.as_str(), p.write), ("kept-key", true));
        // A key that cannot be one (a space): replaced.
        let p = plan_secret(Some(&secret("app", "a b")), "app", false, new).expect("plan");
        assert!(p.write && p.secret_key != "a b");
    }

    #[test]
    fn the_user_secret_holds_the_credentials_and_is_owned_by_the_user() {
        let u = user(
            serde_json::json!({ "clusterRef": { "name": "prod" }, "secretName": "orders-creds" }),
        );
        let s = auth::user_secret(&u, "k3y").expect("builds");
        assert_eq!(s.metadata.name.as_deref(), Some("orders-creds"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("mq"));
        assert_eq!(
            auth::secret_value(&s, "accessKey").as_deref(),
            Some("orders-app")
        );
        assert_eq!(auth::secret_value(&s, "secretKey").as_deref(), Some("k3y"));
        let owner = &s.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("TernUser", "orders-app", "u-1")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let creds = auth::credentials_of(&s).expect("valid credentials");
        assert_eq!(creds.access_key(), "orders-app");
    }
}
