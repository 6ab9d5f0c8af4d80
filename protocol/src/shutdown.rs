//! A bounded graceful shutdown for the gRPC servers of the broker and the
//! name server.
//!
//! tonic stops a server gracefully: it stops accepting, tells each HTTP/2
//! connection to go away and waits until every one has closed. A client
//! that never answers (frozen, gone without a FIN, or hostile) would hold
//! that wait, and the process, forever. [`bounded`] gives the connections
//! a grace period after the shutdown signal and then drops the server,
//! closing whatever is still open.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How long connections get to close after the shutdown signal.
pub const GRACE: Duration = Duration::from_secs(5);

/// `signal`, which also starts the grace period of [`bounded`] when it
/// resolves.
pub fn signal_with_grace(
    signal: impl Future<Output = ()> + Send,
) -> (impl Future<Output = ()> + Send, Arc<Notify>) {
    let fired = Arc::new(Notify::new());
    let notify = Arc::clone(&fired);
    (
        async move {
            signal.await;
            notify.notify_one();
        },
        fired,
    )
}

/// Runs `serve` to its end, or until `grace` has passed since `fired`
/// (the signal of [`signal_with_grace`]): then drops it, closing the
/// connections still open, and returns `None`.
pub async fn bounded<F: Future>(
    serve: F,
    fired: Arc<Notify>,
    grace: Duration,
) -> Option<F::Output> {
    tokio::select! {
        out = serve => Some(out),
        () = async {
            fired.notified().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(
                grace = ?grace,
                "connections still open after the shutdown grace period; closing them"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_does_not_end_is_dropped_after_the_grace() {
        let (signal, fired) = signal_with_grace(async {});
        let never = async {
            signal.await;
            std::future::pending::<()>().await;
        };
        let started = std::time::Instant::now();
        assert_eq!(bounded(never, fired, Duration::from_millis(50)).await, None);
        assert!(started.elapsed() < Duration::from_secs(5));

        let (signal, fired) = signal_with_grace(async {});
        let ends = async {
            signal.await;
            7
        };
        assert_eq!(bounded(ends, fired, Duration::from_secs(60)).await, Some(7));
    }
}
