//! Shared set-up for the official-SDK interoperability tests (`sdk_*.rs`
//! and the SDK cases of the others): where `scripts/test` installed each
//! SDK ([`sdk`]), a real `tern standalone` process on a free port, topics
//! created through the admin API, and a runner that checks a client
//! script's verdict line.
// Each test crate includes this module and uses only part of it.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tern_harness::TernProcess;
pub use tern_harness::free_port;
pub use tern_protocol::admin::MessageType;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tern_protocol::admin::{CreateTopicRequest, Permission, Topic};

const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// Set (to anything but empty or `0`) by `scripts/test`: an SDK that is
/// missing fails its tests instead of skipping them.
const REQUIRE_SDKS: &str = "TERN_REQUIRE_SDKS";

/// The SDK that `variable` (`TERN_PYTHON`, `TERN_NODE_SDK_DIR`,
/// `TERN_GO_SDK_BIN`, `TERN_JAVA_SDK_JAR`) names, for the test described by
/// `what`; `None` when the test is to be skipped.
///
/// `scripts/test` installs every SDK and sets these variables. When one is
/// unset or names a file that does not exist (nor, for a bare command
/// name, a program on `PATH`), the test is skipped with a `skipped:` line
/// on standard error; under `TERN_REQUIRE_SDKS=1`, which `scripts/test`
/// sets, it fails instead, so a broken install step cannot pass unseen.
#[track_caller]
pub fn sdk(variable: &str, what: &str) -> Option<String> {
    let value = std::env::var(variable).ok().filter(|v| !v.is_empty());
    let problem = match &value {
        None => format!("{variable} is not set"),
        Some(v) if !present(v) => format!("{variable}={v} does not exist"),
        Some(v) => return Some(v.clone()),
    };
    let required = std::env::var(REQUIRE_SDKS).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{what}: {problem}, and {REQUIRE_SDKS} is set, so this test may not be skipped; \
         scripts/test installs the SDK under ~/.cache/tern and sets {variable}"
    );
    // Written to the process's standard error rather than with eprintln!,
    // which the test harness would capture and hide for a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {what}: {problem} (scripts/test installs the SDK and sets it; \
         {REQUIRE_SDKS}=1 makes this a failure)"
    );
    None
}

/// Whether `program` is a file, or a bare command name found on `PATH`.
fn present(program: &str) -> bool {
    let path = Path::new(program);
    if path.exists() {
        return true;
    }
    path.components().count() == 1
        && std::env::var_os("PATH")
            .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| d.join(path).is_file()))
}

/// Creates a NORMAL, read-write topic through the admin API on `port`.
#[allow(dead_code, reason = "each test crate uses part of this module")]
pub async fn create_topic(port: u16, name: &str, queues: i32) {
    create_typed_topic(port, name, queues, MessageType::Normal).await;
}

/// Creates a read-write topic of type `kind` through the admin API on
/// `port`.
pub async fn create_typed_topic(port: u16, name: &str, queues: i32, kind: MessageType) {
    let mut admin = TernAdminClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    admin
        .create_topic(CreateTopicRequest {
            topic: Some(Topic {
                name: name.to_owned(),
                queue_count: queues,
                message_type: kind as i32,
                permission: Permission::ReadWrite as i32,
            }),
        })
        .await
        .unwrap();
}

/// A running `tern standalone` with its data in a temporary directory.
pub struct Standalone {
    pub tern: TernProcess,
    pub port: u16,
    /// `127.0.0.1:<port>`, the access point for clients.
    pub listen: String,
    /// Settings given after `--data-dir` and `--listen`, again on restart.
    args: Vec<String>,
    _tmp: tempfile::TempDir,
}

impl Standalone {
    /// Starts `tern standalone` on a free port and waits until it listens.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `tern standalone` on a free port with the settings `args`
    /// (flags of `tern standalone`, e.g. `--transaction-max-checks 2`) and
    /// waits until it listens.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let tern = spawn(tmp.path(), &listen, &args);
        Self {
            tern,
            port,
            listen,
            args,
            _tmp: tmp,
        }
    }

    /// Creates a NORMAL, read-write topic with `queues` queues.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn create_topic(&self, name: &str, queues: i32) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(create_topic(self.port, name, queues));
    }

    /// Creates a read-write topic of type `kind` with `queues` queues.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn create_typed(&self, name: &str, queues: i32, kind: MessageType) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(create_typed_topic(self.port, name, queues, kind));
    }

    /// The CA that signed the broker's generated TLS certificate (written
    /// before it listens).
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn generated_ca(&self) -> std::path::PathBuf {
        self._tmp.path().join("data/tls/ca.crt")
    }

    /// Kills the broker with SIGKILL and starts it again on the same data
    /// directory, port and settings.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn kill9_restart(&mut self) {
        self.tern.kill9().unwrap();
        self.tern = spawn(self._tmp.path(), &self.listen, &self.args);
    }

    /// Stops the broker with SIGTERM and starts it again on the same data
    /// directory and port with the settings `args` instead.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    pub fn restart_with(&mut self, args: &[&str]) {
        self.tern.terminate().unwrap();
        self.args = args.iter().map(|&a| a.to_owned()).collect();
        self.tern = spawn(self._tmp.path(), &self.listen, &self.args);
    }

    /// Runs a client, asserts it succeeded and printed `expected`, and
    /// shows its output and the broker log otherwise. Returns its standard
    /// output.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    #[track_caller]
    pub fn run_client(&self, what: &str, command: &mut Command, expected: &str) -> String {
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Shown with `--nocapture`, and kept by the harness if an assertion fails.
        eprintln!("{what} output:\n{stdout}{stderr}");
        assert!(
            out.status.success(),
            "{what} run failed ({}):\n{stdout}\n{stderr}\nbroker log:\n{}",
            out.status,
            self.tern.log().unwrap_or_default()
        );
        assert!(stdout.contains(expected), "{what}: {stdout}\n{stderr}");
        stdout.into_owned()
    }

    /// Runs `tern ARGS --endpoint <this broker>` (the admin commands),
    /// asserts it succeeded, and returns its standard output.
    #[allow(dead_code, reason = "each test crate uses part of this module")]
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(TERN)
            .args(args)
            .args(["--endpoint", &self.listen])
            .env_remove("TERN_ENDPOINT")
            .env_remove("TERN_OUTPUT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tern {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stops the broker with SIGTERM.
    pub fn stop(mut self) {
        self.tern.terminate().unwrap();
    }
}

/// Starts `tern standalone` with its data in `dir`, on `listen`, with the
/// settings `args`, and waits until it listens.
fn spawn(dir: &Path, listen: &str, args: &[String]) -> TernProcess {
    let mut all = vec!["--listen", listen];
    all.extend(args.iter().map(String::as_str));
    let mut tern = TernProcess::standalone_with(TERN, dir.join("data"), &all).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    tern
}
