//! Blocking core work from async code.

use crate::error::{BrokerError, Result};

/// Runs blocking core work (disk reads and writes, fsyncs) on tokio's
/// blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BrokerError::Failed(format!("blocking task failed: {e}"))))
}
