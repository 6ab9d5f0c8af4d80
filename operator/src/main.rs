//! `tern-operator`: runs Tern on Kubernetes from `BrokerCluster`, `Topic`
//! and `ConsumerGroup` resources. The work is in the library; this wires
//! the Kubernetes client, leader election, the HTTP endpoint and the
//! controllers together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use tern_operator::controller::admin::AdminClients;
use tern_operator::controller::{self, Context, Settings};
use tern_operator::metrics::Metrics;

/// The Tern Kubernetes operator.
///
/// Watches BrokerCluster, Topic and ConsumerGroup resources (API group
/// tern.dev) in every namespace it may read, and reconciles them: a
/// BrokerCluster into name server and broker StatefulSets, Services,
/// ConfigMaps and disruption budgets; Topics and ConsumerGroups into the
/// brokers through their admin API. It talks to the cluster of the current
/// kubeconfig, or to its own cluster when run in a pod. Install the CRDs
/// first (`crds/` in the repository, or the Helm chart).
#[derive(Debug, Parser)]
#[command(name = "tern-operator", version, about, long_about)]
struct Args {
    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "TERN_OPERATOR_HTTP_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    http_listen: SocketAddr,
    /// Run the controllers only while holding a Lease, so that several
    /// replicas can run with one active.
    #[arg(long, env = "TERN_OPERATOR_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Send every broker admin call to this host:port instead of each broker
    /// group's in-cluster DNS name. For running the operator outside the
    /// cluster against a port-forwarded or local broker.
    #[arg(long, env = "TERN_OPERATOR_ADMIN_ENDPOINT")]
    admin_endpoint: Option<String>,
    /// Seconds between comparisons of Topics and ConsumerGroups with the
    /// brokers (drift correction).
    #[arg(long, env = "TERN_OPERATOR_RESYNC_SECS", default_value_t = 60)]
    resync_secs: u64,
    /// Log as JSON lines instead of text. The level comes from RUST_LOG
    /// (default info).
    #[arg(long, env = "TERN_OPERATOR_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_json {
        logs.json().init();
    } else {
        logs.init();
    }

    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let listener = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("binding {}", args.http_listen))?;
    tracing::info!(address = %args.http_listen, "serving /metrics, /healthz and /readyz");
    let http = tokio::spawn(tern_operator::http::serve(listener, Arc::new(registry)));

    let reporter = Reporter {
        controller: "tern-operator".to_owned(),
        instance: args.identity.clone(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        admin: AdminClients::default(),
        settings: Settings {
            admin_endpoint_override: args.admin_endpoint.clone(),
            resync: Duration::from_secs(args.resync_secs.max(1)),
        },
    });

    if !args.leader_election {
        controller::run_all(ctx).await;
        http.abort();
        return Ok(());
    }

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("tern-operator-{}", std::process::id()));
    let lease = LeaseManagerBuilder::new(client, "tern-operator")
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(%identity, namespace = %args.lease_namespace, "waiting for the leader lease");
    while !*leader.borrow_and_update() {
        leader.changed().await.context("leader election stopped")?;
    }
    tracing::info!(%identity, "holding the leader lease; starting the controllers");
    let lost = async {
        while *leader.borrow_and_update() {
            if leader.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = controller::run_all(ctx) => {}
        () = lost => bail!("lost the leader lease; exiting so that a fresh start competes again"),
    }
    drop(leader);
    // Closing the channel makes the lease task release the lease.
    lease_task
        .await
        .context("leader election task")?
        .context("releasing the lease")?;
    http.abort();
    Ok(())
}
