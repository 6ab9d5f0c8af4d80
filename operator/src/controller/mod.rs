//! The controllers: `BrokerCluster` ([`cluster`]), `Topic` and
//! `ConsumerGroup` ([`managed`], one generic reconcile for both), and
//! `TernUser` ([`user`]). The
//! decisions live in pure modules ([`rollout`], [`status`], [`plan`]); this
//! module wires them to the Kubernetes API.

pub mod admin;
pub mod cluster;
pub mod group;
pub mod managed;
pub mod plan;
pub mod rollout;
pub mod status;
pub mod topic;
pub mod user;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::names::Names;
use crate::crd::BrokerCluster;
use crate::crd::cluster::TlsMode;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use admin::BrokerAdmin;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "tern-operator";
/// Set this annotation to `"true"` on a `BrokerCluster` to stop the
/// operator from changing its children (status is still reported).
pub const PAUSED_ANNOTATION: &str = "tern.dev/paused";

/// Operator-wide settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Send every admin call to this `host:port` instead of each broker
    /// group's DNS name (for an operator run outside the cluster).
    pub admin_endpoint_override: Option<String>,
    /// How often topics and groups are compared with the brokers.
    pub resync: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            admin_endpoint_override: None,
            resync: Duration::from_secs(60),
        }
    }
}

/// What every reconcile gets.
pub struct Context<A> {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// The broker admin API.
    pub admin: A,
    /// Settings.
    pub settings: Settings,
}

impl<A> Debug for Context<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<A: BrokerAdmin> Context<A> {
    /// Publishes an Event about `obj`; a failure is logged, not returned,
    /// since Events are a courtesy.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish an Event");
        }
    }

    /// The admin API as `cluster`'s brokers want it called: signed with
    /// the credentials of the admin Secret (`c-tern-admin`, read through
    /// the API at each call, so a replaced Secret is used at once) when
    /// the cluster has authentication `Acl`; unsigned otherwise.
    pub async fn admin_for(&self, cluster: &BrokerCluster) -> Result<A> {
        if !crate::build::auth::enabled(&cluster.spec) {
            return Ok(self.admin.authenticated(None));
        }
        let names = Names::new(cluster.name_any(), cluster.namespace().unwrap_or_default());
        let name = names.admin_secret();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), names.namespace());
        let secret = secrets
            .get_opt(&name)
            .await?
            .ok_or_else(|| Error::Credentials {
                secret: name.clone(),
                reason: "not found (the BrokerCluster's reconcile creates it)".to_owned(),
            })?;
        let credentials = crate::build::auth::credentials_of(&secret)?;
        Ok(self.admin.authenticated(Some(credentials)))
    }

    /// The admin endpoints of `cluster`'s broker groups ([`admin_endpoints`]).
    pub fn admin_endpoints(&self, cluster: &BrokerCluster) -> Vec<String> {
        admin_endpoints(cluster, self.settings.admin_endpoint_override.as_deref())
    }
}

/// The admin endpoints of `cluster`'s broker groups, one per group (pod 0),
/// including groups kept after a refused scale-down; or only `override_`
/// when it is set. Under TLS mode `Enforcing` they are `https://`
/// endpoints (dialled with TLS, see [`admin`]); otherwise plaintext, which
/// `Permissive` and `Disabled` ports serve.
pub fn admin_endpoints(cluster: &BrokerCluster, override_: Option<&str>) -> Vec<String> {
    let tls = cluster.spec.tls.mode == TlsMode::Enforcing;
    if let Some(e) = override_ {
        return vec![admin::endpoint(e, tls)];
    }
    let names = Names::new(cluster.name_any(), cluster.namespace().unwrap_or_default());
    let existing = cluster.status.as_ref().map_or(0, |s| s.broker_groups);
    (0..cluster.spec.broker.groups.max(existing))
        .map(|g| admin::endpoint(&names.broker_address(g, 0), tls))
        .collect()
}

/// Runs the four controllers until SIGTERM or Ctrl-C.
pub async fn run_all<A: BrokerAdmin>(ctx: Arc<Context<A>>) {
    futures::join!(
        cluster::run(ctx.clone()),
        managed::run::<crate::crd::Topic, A>(ctx.clone()),
        managed::run::<crate::crd::ConsumerGroup, A>(ctx.clone()),
        user::run(ctx),
    );
}

/// Whether the pause annotation is set.
pub fn is_paused(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Server-side applies `obj` (which names its namespace) with the
/// operator's field manager, taking over fields others set.
pub async fn apply<K>(client: &Client, obj: &K) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let missing = |field| Error::MissingField {
        kind: "child object",
        field,
    };
    let ns = obj
        .meta()
        .namespace
        .as_deref()
        .ok_or_else(|| missing("metadata.namespace"))?;
    let name = obj
        .meta()
        .name
        .as_deref()
        .ok_or_else(|| missing("metadata.name"))?;
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    Ok(api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await?)
}

/// Server-side applies `status` to the status subresource of `obj`.
pub async fn apply_status<K>(client: &Client, obj: &K, status: impl Serialize) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), &ns);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn admin_calls_reach_every_broker_group_including_kept_ones() {
        let mut spec = crate::build::tests::sample_spec();
        spec.broker.groups = 2;
        let mut cluster = crate::build::tests::sample_cluster(spec);
        assert_eq!(
            admin_endpoints(&cluster, None),
            [
                "prod-broker-0-0.prod-broker-0.mq.svc:8081",
                "prod-broker-1-0.prod-broker-1.mq.svc:8081"
            ]
        );
        // A refused scale-down left three groups running: all keep topics.
        cluster.status = Some(crate::crd::BrokerClusterStatus {
            broker_groups: 3,
            ..Default::default()
        });
        assert_eq!(admin_endpoints(&cluster, None).len(), 3);
        assert_eq!(
            admin_endpoints(&cluster, Some("127.0.0.1:8081")),
            ["127.0.0.1:8081"]
        );
    }

    #[test]
    fn admin_calls_use_tls_only_when_the_cluster_enforces_it() {
        let mut spec = crate::build::tests::sample_spec();
        spec.tls.mode = TlsMode::Permissive;
        let mut cluster = crate::build::tests::sample_cluster(spec);
        assert_eq!(
            admin_endpoints(&cluster, None),
            ["prod-broker-0-0.prod-broker-0.mq.svc:8081"]
        );
        cluster.spec.tls.mode = TlsMode::Disabled;
        assert_eq!(
            admin_endpoints(&cluster, None),
            ["prod-broker-0-0.prod-broker-0.mq.svc:8081"]
        );
        cluster.spec.tls.mode = TlsMode::Enforcing;
        cluster.spec.tls.certificate_secret = Some("prod-tls".to_owned());
        assert_eq!(
            admin_endpoints(&cluster, None),
            ["https://prod-broker-0-0.prod-broker-0.mq.svc:8081"]
        );
        assert_eq!(
            admin_endpoints(&cluster, Some("127.0.0.1:8081")),
            ["https://127.0.0.1:8081"]
        );
        assert_eq!(
            admin_endpoints(&cluster, Some("https://127.0.0.1:8081")),
            ["https://127.0.0.1:8081"]
        );
        // Dialled with TLS whose certificate is not checked; plaintext
        // otherwise.
        let tls = admin::parse_endpoint("https://b:8081").expect("valid");
        assert!(tls.tls().is_some_and(|t| t.config().insecure_skip_verify));
        let plain = admin::parse_endpoint("b:8081").expect("valid");
        assert!(plain.tls().is_none());
        assert_eq!(
            admin::parse_endpoint("https://")
                .expect_err("no address")
                .reason(),
            "BrokerUnreachable"
        );
    }

    #[test]
    fn only_the_string_true_pauses() {
        let meta = |v: &str| ObjectMeta {
            annotations: Some(BTreeMap::from([(
                PAUSED_ANNOTATION.to_owned(),
                v.to_owned(),
            )])),
            ..ObjectMeta::default()
        };
        assert!(is_paused(&meta("true")));
        assert!(!is_paused(&meta("false")));
        assert!(!is_paused(&meta("yes")));
        assert!(!is_paused(&ObjectMeta::default()));
    }
}
