//! The name server's HTTP port: `/healthz` (200 while the process runs),
//! `/readyz` (200 while the gRPC services serve, 503 before and while
//! shutting down) and `/metrics` (Prometheus text, see `metrics`: live
//! brokers, routed topics, time since each broker was heard from).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics::{self, Metrics};
use crate::registry::Registry;

#[derive(Debug, Clone)]
struct HttpState {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

/// Serves the HTTP endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState {
            registry,
            metrics: Arc::new(Metrics::new()),
            ready,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let text = s.metrics.scrape(&s.registry, Instant::now());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}
