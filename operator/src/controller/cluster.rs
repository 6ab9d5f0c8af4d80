//! The `BrokerCluster` controller: applies what [`crate::build`] returns,
//! rolls broker groups one at a time ([`super::rollout`]) and reports
//! conditions ([`super::status`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use super::admin::BrokerAdmin;
use super::rollout::{self, GroupState, Plan};
use super::status::{self, Observed};
use super::{Context, FIELD_MANAGER, apply, apply_status, is_paused};
use crate::build::names::{LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY};
use crate::build::{self, Desired, Owner, auth};
use crate::crd::common::{DEGRADED, Wanted, merge_conditions};
use crate::crd::{BrokerCluster, BrokerClusterStatus};
use crate::error::{Error, Result};

/// Label value of this controller in metrics.
pub const CONTROLLER: &str = "brokercluster";

/// Runs the controller until SIGTERM or Ctrl-C. Children are watched through the
/// `managed-by` label, so a change to any of them (a StatefulSet becoming
/// ready, a Service edited by hand) triggers a reconcile of its owner.
pub async fn run<A: BrokerAdmin>(ctx: Arc<Context<A>>) {
    let client = ctx.client.clone();
    let children = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}=tern-operator"));
    Controller::new(
        Api::<BrokerCluster>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<StatefulSet>::all(client.clone()), children.clone())
    .owns(Api::<Service>::all(client.clone()), children.clone())
    .owns(Api::<ConfigMap>::all(client.clone()), children)
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "brokercluster reconcile did not complete");
        }
    })
    .await;
}

/// Reconciles one `BrokerCluster`.
pub async fn reconcile<A: BrokerAdmin>(
    cluster: Arc<BrokerCluster>,
    ctx: Arc<Context<A>>,
) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if cluster.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the children; volumes follow the
        // StatefulSets' retention policy.
        return Ok(Action::await_change());
    }
    let owner = Owner::new(&cluster)?;
    let desired = build::desired(&cluster)?;
    let names = &owner.names;
    let uid = cluster.uid().unwrap_or_default();
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), names.namespace());

    let selector = format!(
        "{LABEL_INSTANCE}={},{LABEL_COMPONENT}=broker",
        names.cluster()
    );
    let listed = sts_api
        .list(&ListParams::default().labels(&selector))
        .await?;
    let observed: BTreeMap<i32, GroupState> = listed
        .items
        .iter()
        .filter(|s| s.owner_references().iter().any(|o| o.uid == uid))
        .filter_map(GroupState::from_stateful_set)
        .collect();
    let nameservers = sts_api.get_opt(&names.nameserver()).await?;

    let wanted: Vec<(i32, String)> = desired
        .groups
        .iter()
        .map(|g| (g.group, g.template_hash.clone()))
        .collect();
    let plan = rollout::plan(&wanted, &observed);
    let paused = is_paused(&cluster.metadata);
    let applied = if paused {
        Ok(())
    } else {
        match ensure_admin_secret(&ctx.client, &owner).await {
            Ok(()) => apply_children(&ctx.client, &desired, &plan).await,
            Err(e) => Err(e),
        }
    };

    let groups_ready = desired
        .groups
        .iter()
        .filter(|g| {
            observed
                .get(&g.group)
                .is_some_and(|s| s.ready && s.template_hash.as_ref() == Some(&g.template_hash))
        })
        .count();
    let nameservers_ready = nameservers
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let seen = Observed {
        paused,
        nameservers_wanted: cluster.spec.nameserver.replicas,
        nameservers_ready,
        groups_wanted: cluster.spec.broker.groups,
        groups_ready: i32::try_from(groups_ready).unwrap_or(i32::MAX),
        groups_waiting: plan.waiting.len(),
        surplus: plan.surplus.clone(),
        error: applied.as_ref().err().map(ToString::to_string),
    };
    let wanted_conditions = status::conditions(&seen);
    let old = cluster.status.clone().unwrap_or_default();
    publish_changes(&ctx, &cluster, &old, &wanted_conditions, &plan).await;
    let new = BrokerClusterStatus {
        observed_generation: cluster.metadata.generation,
        conditions: merge_conditions(
            &old.conditions,
            &wanted_conditions,
            cluster.metadata.generation,
            Timestamp::now(),
        ),
        ready_nameservers: nameservers_ready,
        ready_broker_groups: seen.groups_ready,
        broker_groups: i32::try_from(existing_groups(
            &observed,
            &plan,
            !paused && applied.is_ok(),
        ))
        .unwrap_or(i32::MAX),
        client_endpoint: Some(names.client_endpoint()),
    };
    if new != old {
        apply_status(&ctx.client, cluster.as_ref(), &new).await?;
    }
    applied?;
    let settled =
        seen.groups_ready >= seen.groups_wanted && nameservers_ready >= seen.nameservers_wanted;
    Ok(Action::requeue(Duration::from_secs(if settled {
        300
    } else {
        15
    })))
}

/// How many broker groups exist after this pass: those seen before it,
/// and the ones it created when it applied children and that succeeded.
fn existing_groups(observed: &BTreeMap<i32, GroupState>, plan: &Plan, applied: bool) -> usize {
    let created = if applied {
        plan.apply
            .iter()
            .filter(|g| !observed.contains_key(g))
            .count()
    } else {
        0
    };
    observed.len() + created
}

/// Creates the admin Secret of a cluster with authentication `Acl` when
/// it does not exist yet, with a new random secret key. Never overwritten:
/// brokers that started with a key keep it as their bootstrap user's until
/// they restart. Comes before the StatefulSets, whose pods read it.
async fn ensure_admin_secret(client: &Client, owner: &Owner<'_>) -> Result<()> {
    if !auth::enabled(owner.spec) {
        return Ok(());
    }
    let names = &owner.names;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), names.namespace());
    if secrets.get_opt(&names.admin_secret()).await?.is_some() {
        return Ok(());
    }
    let secret = auth::admin_secret(owner, &auth::generate_secret_key()?);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match secrets.create(&params, &secret).await {
        Ok(_) => {
            tracing::info!(secret = %names.admin_secret(), namespace = %names.namespace(), "created the admin Secret");
            Ok(())
        }
        // Another pass (or replica) was first: keep its key.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Applies the cluster-wide objects, then the broker groups the plan lets
/// through. Groups waiting for their turn and surplus groups are not
/// touched.
async fn apply_children(client: &Client, desired: &Desired, plan: &Plan) -> Result<()> {
    apply::<ServiceAccount>(client, &desired.service_account).await?;
    apply::<ConfigMap>(client, &desired.nameserver.config_map).await?;
    apply::<Service>(client, &desired.nameserver.service).await?;
    apply::<StatefulSet>(client, &desired.nameserver.stateful_set).await?;
    for group in desired
        .groups
        .iter()
        .filter(|g| plan.apply.contains(&g.group))
    {
        // The ConfigMap moves with its StatefulSet, so a waiting group's
        // pods keep reading the file they were started with.
        apply::<ConfigMap>(client, &group.config_map).await?;
        apply::<Service>(client, &group.service).await?;
        apply::<StatefulSet>(client, &group.stateful_set).await?;
    }
    apply::<Service>(client, &desired.client_service).await?;
    for budget in &desired.budgets {
        apply::<PodDisruptionBudget>(client, budget).await?;
    }
    Ok(())
}

/// Publishes an Event for each condition whose reason changed, and one for
/// a group that starts rolling.
async fn publish_changes<A: BrokerAdmin>(
    ctx: &Context<A>,
    cluster: &BrokerCluster,
    old: &BrokerClusterStatus,
    wanted: &[Wanted],
    plan: &Plan,
) {
    for w in wanted {
        let before = old.conditions.iter().find(|c| c.type_ == w.type_);
        let degraded = w.type_ == DEGRADED;
        // Unchanged, or a new cluster that is simply not degraded: no news.
        if before.is_some_and(|c| c.reason == w.reason)
            || (before.is_none() && degraded && !w.status)
        {
            continue;
        }
        let warning = degraded && w.status;
        ctx.event(cluster, warning, w.reason, w.message.clone())
            .await;
    }
    if let Some(g) = plan.rolling {
        ctx.event(
            cluster,
            false,
            "RollingBrokerGroup",
            format!("broker group {g} takes the new pod template"),
        )
        .await;
    }
}

/// Counts the failure and retries after a pause; the status already holds
/// the error (condition `Degraded`, reason `ReconcileFailed`) when it came
/// from applying children.
pub fn error_policy<A: BrokerAdmin>(
    cluster: Arc<BrokerCluster>,
    error: &Error,
    ctx: Arc<Context<A>>,
) -> Action {
    ctx.metrics.failure(CONTROLLER, error.reason());
    tracing::warn!(cluster = %cluster.name_any(), error = %error, "brokercluster reconcile failed");
    Action::requeue(Duration::from_secs(30))
}
