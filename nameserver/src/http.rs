//! The name server's HTTP port: `/healthz` (200 while the process runs),
//! `/readyz` (200 while the gRPC services serve, 503 before and while
//! shutting down) and `/metrics` (Prometheus text: live brokers and
//! routed topics).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::registry::Registry;

#[derive(Debug, Clone)]
struct HttpState {
    registry: Arc<Registry>,
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
        .with_state(HttpState { registry, ready });
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
    let brokers = s.registry.brokers(Instant::now());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tern_nameserver_brokers Live brokers registered with this name server.\n\
         # TYPE tern_nameserver_brokers gauge\n\
         tern_nameserver_brokers {}",
        brokers.len()
    );
    let _ = writeln!(
        out,
        "# HELP tern_nameserver_topics Topics served by at least one registered broker.\n\
         # TYPE tern_nameserver_topics gauge\n\
         tern_nameserver_topics {}",
        s.registry.topic_count()
    );
    let _ = writeln!(
        out,
        "# HELP tern_nameserver_broker_last_seen_seconds Time since each broker's last \
         registration or heartbeat.\n\
         # TYPE tern_nameserver_broker_last_seen_seconds gauge"
    );
    for b in brokers {
        let _ = writeln!(
            out,
            "tern_nameserver_broker_last_seen_seconds{{cluster=\"{}\",broker=\"{}\"}} {:.3}",
            escape(&b.cluster),
            escape(&b.name),
            b.last_seen.as_secs_f64()
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// A Prometheus label value, escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
