//! The broker's shutdown signal, shared by long polls, telemetry streams
//! and the background loops: once closed they finish, so the server can
//! drain its connections.

use std::sync::Arc;

use tokio::sync::watch;

/// A one-way switch from open to closed. Cheap to clone; every clone
/// sees the same switch.
#[derive(Debug, Clone)]
pub struct Closing(Arc<watch::Sender<bool>>);

impl Default for Closing {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Closing {
    /// Closes: every [`Closing::closed`] resolves, now and later.
    pub fn close(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Closing::close`] has been called.
    pub fn is_closed(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once [`Closing::close`] has been called.
    pub async fn closed(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_close() {
        let c = Closing::default();
        let d = c.clone();
        assert!(!d.is_closed());
        let waiter = tokio::spawn(async move { d.closed().await });
        c.close();
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .is_ok()
        );
        assert!(c.is_closed());
        // Already closed: resolves at once.
        c.closed().await;
    }
}
