//! The `Topic` and `ConsumerGroup` controllers: one generic reconcile over
//! [`Managed`], which each resource implements.
//!
//! One way, Kubernetes to brokers: every resync the resource is compared
//! with each broker group and the differences are applied. A finalizer
//! deletes the topic or group from the brokers when the resource goes. Two
//! resources naming the same broker-side object: the oldest owns it, the
//! others report `Ready=False`, reason `ResourceConflict`, and never touch
//! the brokers.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::admin::BrokerAdmin;
use super::plan::{self, Action as BrokerAction, Claim};
use super::{Context, apply_status};
use crate::crd::BrokerCluster;
use crate::crd::common::{READY, Wanted, merge_conditions};
use crate::error::{Error, Result};

/// Condition reasons of `Topic` and `ConsumerGroup`.
pub mod reason {
    /// Ready: every broker group matches the resource.
    pub const SYNCED: &str = "Synced";
    /// The referenced `BrokerCluster` does not exist.
    pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
    /// An older resource owns the same broker-side name.
    pub const RESOURCE_CONFLICT: &str = "ResourceConflict";
    /// The change asked for cannot be made (e.g. fewer queues).
    pub const NOT_SUPPORTED: &str = "NotSupported";
    /// The name is not valid in the broker.
    pub const INVALID_NAME: &str = "InvalidName";
    /// A broker could not be reached or refused the change.
    pub const BROKER_UNAVAILABLE: &str = "BrokerUnavailable";
}

/// What syncing one broker did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    /// What was changed.
    pub action: BrokerAction,
    /// Why part of the spec could not be applied, if so.
    pub not_supported: Option<String>,
}

/// A resource mirrored into the brokers.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Controller name in metrics and logs.
    const CONTROLLER: &'static str;
    /// The finalizer that deletes the broker-side object.
    const FINALIZER: &'static str;
    /// Name of the referenced `BrokerCluster`.
    fn cluster_name(&self) -> &str;
    /// Name of the object inside the brokers.
    fn broker_name(&self) -> &str;
    /// Checks the broker-side name; the message says what is wrong.
    fn check_name(&self) -> Result<(), String>;
    /// The current conditions.
    fn conditions(&self) -> &[Condition];
    /// Makes the broker at `endpoint` match the resource.
    fn sync<A: BrokerAdmin>(
        &self,
        admin: &A,
        endpoint: &str,
    ) -> impl Future<Output = Result<Synced>> + Send;
    /// Deletes the object from the broker at `endpoint`.
    fn remove<A: BrokerAdmin>(
        &self,
        admin: &A,
        endpoint: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The status to write.
    fn status(&self, conditions: Vec<Condition>, synced: i32) -> Result<serde_json::Value>;
}

/// A reconcile's context: the shared one plus the cache of all resources
/// of this kind, used to find name conflicts.
pub struct ManagedContext<M: Managed, A> {
    /// Shared context.
    pub base: Arc<Context<A>>,
    /// Every resource of kind `M` the controller has seen.
    pub store: Store<M>,
}

impl<M: Managed, A> Debug for ManagedContext<M, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedContext")
            .field("controller", &M::CONTROLLER)
            .finish_non_exhaustive()
    }
}

/// Runs the controller for `M` until SIGTERM or Ctrl-C. A change to a
/// `BrokerCluster` re-triggers every resource that refers to it.
pub async fn run<M: Managed, A: BrokerAdmin>(base: Arc<Context<A>>) {
    let client = base.client.clone();
    let controller = Controller::new(Api::<M>::all(client.clone()), watcher::Config::default());
    let store = controller.store();
    let mapper_store = store.clone();
    let ctx = Arc::new(ManagedContext { base, store });
    controller
        .watches(Api::<BrokerCluster>::all(client), watcher::Config::default(), move |cluster| {
            let ns = cluster.namespace();
            let name = cluster.name_any();
            mapper_store
                .state()
                .into_iter()
                .filter(|m| m.namespace() == ns && m.cluster_name() == name)
                .map(|m| ObjectRef::from_obj(m.as_ref()))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile::<M, A>, error_policy::<M, A>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(controller = M::CONTROLLER, error = %e, "reconcile did not complete");
            }
        })
        .await;
}

/// Reconciles one resource through its finalizer.
pub async fn reconcile<M: Managed, A: BrokerAdmin>(
    obj: Arc<M>,
    ctx: Arc<ManagedContext<M, A>>,
) -> Result<Action> {
    let _timer = ctx.base.metrics.reconcile(M::CONTROLLER);
    let ns = obj.namespace().ok_or(Error::MissingField {
        kind: M::CONTROLLER,
        field: "metadata.namespace",
    })?;
    let api: Api<M> = Api::namespaced(ctx.base.client.clone(), &ns);
    finalizer(&api, M::FINALIZER, obj, |event| async {
        match event {
            Event::Apply(o) => apply(o, &ctx).await,
            Event::Cleanup(o) => cleanup(o, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Whether `obj` owns its broker-side name among the resources in `store`.
fn owns_name<M: Managed>(obj: &M, store: &Store<M>) -> std::result::Result<(), String> {
    let claim = |m: &M| Claim {
        uid: m.uid().unwrap_or_default(),
        name: m.name_any(),
        created: m.meta().creation_timestamp.as_ref().map(|t| t.0),
    };
    let mut claims: Vec<Claim> = store
        .state()
        .iter()
        .filter(|m| {
            m.namespace() == obj.namespace()
                && m.cluster_name() == obj.cluster_name()
                && m.broker_name() == obj.broker_name()
        })
        .map(|m| claim(m.as_ref()))
        .collect();
    let me = claim(obj);
    if !claims.iter().any(|c| c.uid == me.uid) {
        claims.push(me.clone());
    }
    match plan::owner(&claims) {
        Some(o) if o.uid != me.uid => Err(o.name.clone()),
        _ => Ok(()),
    }
}

async fn apply<M: Managed, A: BrokerAdmin>(
    obj: Arc<M>,
    ctx: &ManagedContext<M, A>,
) -> Result<Action> {
    let base = &ctx.base;
    let ns = obj.namespace().unwrap_or_default();
    let clusters: Api<BrokerCluster> = Api::namespaced(base.client.clone(), &ns);
    let mut synced = 0;
    let ready = if let Err(msg) = obj.check_name() {
        Wanted::no(READY, reason::INVALID_NAME, msg)
    } else if let Err(older) = owns_name(obj.as_ref(), &ctx.store) {
        Wanted::no(
            READY,
            reason::RESOURCE_CONFLICT,
            format!(
                "{} is already managed by {} {older}, which is older",
                obj.broker_name(),
                M::kind(&())
            ),
        )
    } else if let Some(cluster) = clusters.get_opt(obj.cluster_name()).await? {
        let endpoints = base.admin_endpoints(&cluster);
        let mut failures = Vec::new();
        let mut refused = None;
        let admin = match base.admin_for(&cluster).await {
            Ok(a) => Some(a),
            Err(e) => {
                failures.push(format!("no admin credentials yet: {e}"));
                None
            }
        };
        for endpoint in &endpoints {
            let Some(admin) = admin.as_ref() else { break };
            match obj.sync(admin, endpoint).await {
                Ok(s) => {
                    synced += 1;
                    if let BrokerAction::Update(fields) = &s.action {
                        let note = format!("set {} on {endpoint}", fields.join(", "));
                        tracing::info!(
                            controller = M::CONTROLLER,
                            name = %obj.name_any(),
                            %endpoint,
                            fields = %fields.join(","),
                            "updated in the broker"
                        );
                        base.event(obj.as_ref(), false, "Updated", note).await;
                    } else if s.action == BrokerAction::Create {
                        tracing::info!(
                            controller = M::CONTROLLER,
                            name = %obj.name_any(),
                            %endpoint,
                            "created in the broker"
                        );
                        base.event(
                            obj.as_ref(),
                            false,
                            "Created",
                            format!("created on {endpoint}"),
                        )
                        .await;
                    }
                    refused = refused.or(s.not_supported);
                }
                Err(e) => {
                    base.metrics.failure(M::CONTROLLER, e.reason());
                    failures.push(e.to_string());
                }
            }
        }
        if let Some(first) = failures.first() {
            let msg = format!(
                "{synced} of {} broker groups in step; {first}",
                endpoints.len()
            );
            Wanted::no(READY, reason::BROKER_UNAVAILABLE, msg)
        } else if let Some(msg) = refused {
            Wanted::no(READY, reason::NOT_SUPPORTED, msg)
        } else {
            Wanted::yes(
                READY,
                reason::SYNCED,
                format!("in step with {synced} broker groups"),
            )
        }
    } else {
        let msg = format!(
            "BrokerCluster {} not found in namespace {ns}",
            obj.cluster_name()
        );
        Wanted::no(READY, reason::CLUSTER_NOT_FOUND, msg)
    };

    let before = obj.conditions().iter().find(|c| c.type_ == READY);
    if !ready.status && before.is_none_or(|c| c.reason != ready.reason) {
        base.event(obj.as_ref(), true, ready.reason, ready.message.clone())
            .await;
    }
    let generation = obj.meta().generation;
    let retry = !ready.status;
    let conditions = merge_conditions(obj.conditions(), &[ready], generation, Timestamp::now());
    apply_status(&base.client, obj.as_ref(), obj.status(conditions, synced)?).await?;
    // Compare again later: drift inside a broker raises no event.
    let after = if retry {
        base.settings.resync.min(Duration::from_secs(15))
    } else {
        base.settings.resync
    };
    Ok(Action::requeue(after))
}

async fn cleanup<M: Managed, A: BrokerAdmin>(
    obj: Arc<M>,
    ctx: &ManagedContext<M, A>,
) -> Result<Action> {
    let base = &ctx.base;
    let ns = obj.namespace().unwrap_or_default();
    let clusters: Api<BrokerCluster> = Api::namespaced(base.client.clone(), &ns);
    // A conflicting resource never owned the broker-side object; with the
    // cluster gone there is nothing left to delete.
    if owns_name(obj.as_ref(), &ctx.store).is_err() {
        return Ok(Action::await_change());
    }
    let Some(cluster) = clusters.get_opt(obj.cluster_name()).await? else {
        return Ok(Action::await_change());
    };
    if cluster.metadata.deletion_timestamp.is_some() {
        // The brokers go with their cluster, and their data with them
        // unless the volumes are retained; nothing to delete one by one.
        return Ok(Action::await_change());
    }
    let admin = base.admin_for(&cluster).await?;
    for endpoint in base.admin_endpoints(&cluster) {
        obj.remove(&admin, &endpoint).await?;
        tracing::info!(
            controller = M::CONTROLLER,
            name = %obj.name_any(),
            %endpoint,
            "deleted from the broker"
        );
    }
    base.event(
        obj.as_ref(),
        false,
        "Deleted",
        format!("{} deleted from the brokers", obj.broker_name()),
    )
    .await;
    Ok(Action::await_change())
}

fn error_policy<M: Managed, A: BrokerAdmin>(
    obj: Arc<M>,
    error: &Error,
    ctx: Arc<ManagedContext<M, A>>,
) -> Action {
    ctx.base.metrics.failure(M::CONTROLLER, error.reason());
    tracing::warn!(controller = M::CONTROLLER, name = %obj.name_any(), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(30))
}
