//! The broker's HTTP port (`metrics_listen`): `GET /metrics` (the
//! OpenMetrics text exposition), `/healthz` (200 while the process runs)
//! and `/readyz` (200 while the gRPC listener serves; 503 while starting
//! or shutting down).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tern_store::Store;
use tokio::net::TcpListener;

use super::Metrics;
use crate::meta::Registry;
use crate::pop::Pop;
use crate::timer::Timer;
use crate::txn::Transactions;

/// Whether the broker is ready for clients, as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the broker ready (`true`) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// What the HTTP port reads.
#[derive(Debug)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    pub pop: Arc<Pop>,
    pub timer: Arc<Timer>,
    pub txn: Arc<Transactions>,
    pub health: Arc<Health>,
    /// The broker's replica of a replicated group, if it is one.
    pub replica: Option<Arc<crate::replica::Replicated>>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until
/// `shutdown` resolves.
pub async fn serve_http(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(state);
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_page(State(h): State<Arc<HttpState>>) -> impl IntoResponse {
    if let Some(replica) = &h.replica {
        h.metrics.replication(&replica.status());
    }
    let body = h
        .metrics
        .scrape(&h.store, &h.registry, &h.pop, (&h.timer, &h.txn));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn ready(State(h): State<Arc<HttpState>>) -> impl IntoResponse {
    if h.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
