//! Shared set-up of the Rust SDK tests: a real `tern standalone` on a free
//! port and the SDK's client options for it.
// Each test crate includes this module and uses only part of it.

use std::net::TcpListener;
use std::time::Duration;

use rocketmq::conf::ClientOption;
use tern_harness::TernProcess;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{
    CreateGroupRequest, CreateTopicRequest, Group, MessageType, Permission, Topic,
};

/// A `tern standalone` (the binary [`tern_harness::tern_bin`] finds) on a
/// free port, with its data in a temporary directory.
pub struct Tern {
    process: TernProcess,
    port: u16,
    _tmp: tempfile::TempDir,
}

impl Tern {
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let bin = tern_harness::tern_bin().unwrap();
        let data = tmp.path().join("data");
        let process = tokio::task::spawn_blocking(move || {
            let mut p = TernProcess::standalone_with(bin, data, &["--listen", &listen]).unwrap();
            p.wait_for_log("listening", Duration::from_secs(30))
                .unwrap();
            p
        })
        .await
        .unwrap();
        Self {
            process,
            port,
            _tmp: tmp,
        }
    }

    /// Stops the broker (SIGTERM) and starts it again on the same data
    /// and port with `args` added to its command line. (Blocks the test's
    /// thread while it waits: nothing else runs meanwhile.)
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn restart_with(&mut self, args: &[&str]) {
        self.process.terminate().unwrap();
        let listen = format!("127.0.0.1:{}", self.port);
        let mut all = vec!["--listen", listen.as_str()];
        all.extend_from_slice(args);
        let bin = tern_harness::tern_bin().unwrap();
        self.process =
            TernProcess::standalone_with(bin, self._tmp.path().join("data"), &all).unwrap();
        self.process
            .wait_for_log("listening", Duration::from_secs(30))
            .unwrap();
    }

    async fn admin(&self) -> TernAdminClient<tonic::transport::Channel> {
        TernAdminClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }

    /// Creates a read-write topic of type `kind` through the admin API.
    pub async fn create_topic(&self, name: &str, queues: i32, kind: MessageType) {
        self.admin()
            .await
            .create_topic(CreateTopicRequest {
                topic: Some(Topic {
                    name: name.into(),
                    queue_count: queues,
                    message_type: kind as i32,
                    permission: Permission::ReadWrite as i32,
                }),
            })
            .await
            .unwrap();
    }

    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub async fn create_fifo_group(&self, name: &str) {
        self.admin()
            .await
            .create_group(CreateGroupRequest {
                group: Some(Group {
                    name: name.into(),
                    fifo: true,
                    max_retries: 0,
                }),
            })
            .await
            .unwrap();
    }

    /// The access point for the SDK. It separates several with commas (all
    /// IP addresses, or one host name); give it two, both this broker.
    pub fn access(&self) -> String {
        format!("127.0.0.1:{0},127.0.0.1:{0}", self.port)
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        self.process.log().unwrap_or_default()
    }

    pub async fn stop(mut self) {
        tokio::task::spawn_blocking(move || self.process.terminate().unwrap())
            .await
            .unwrap();
    }
}

/// The SDK's client options for `access_url`: plaintext, 5 s timeout.
pub fn client_option(access_url: &str) -> ClientOption {
    let mut option = ClientOption::default();
    option.set_access_url(access_url);
    option.set_enable_tls(false);
    option.set_timeout(Duration::from_secs(5));
    // Also the receive call's whole gRPC deadline: the broker needs 5 s of
    // long polling left (ILLEGAL_POLLING_TIME otherwise), after a margin.
    option.set_long_polling_timeout(Duration::from_secs(6));
    option
}
