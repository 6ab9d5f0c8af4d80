//! A real Tern broker serving gRPC (messaging and admin) on a loopback port,
//! in this process, on a temporary data directory.

use std::net::SocketAddr;

use tern_broker::{Broker, BrokerConfig};
use tokio::sync::oneshot;

/// A running broker; [`RunningBroker::stop`] shuts it down cleanly.
pub struct RunningBroker {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<tern_broker::Result<()>>,
    _dir: tempfile::TempDir,
}

impl RunningBroker {
    /// Opens a broker on a fresh directory and serves it on a free port
    /// (TLS mode permissive, with a generated certificate).
    pub async fn start() -> Self {
        Self::start_with_tls(tern_tls::TlsMode::Permissive).await
    }

    /// The same with the TLS mode `mode`.
    pub async fn start_with_tls(mode: tern_tls::TlsMode) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = tern_harness::small_store_config(dir.path(), tern_store::FlushPolicy::Async);
        let mut cfg = BrokerConfig::new(store);
        cfg.tls.mode = mode;
        let broker = tokio::task::spawn_blocking(move || Broker::open(cfg))
            .await
            .expect("the open task runs")
            .expect("the broker opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(broker.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// `host:port` of its gRPC services.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Stops it and checks that it shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .expect("the serve task ends")
            .expect("the broker shuts down cleanly");
    }
}
