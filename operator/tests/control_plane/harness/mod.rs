//! A real Kubernetes control plane for tests, as controller-runtime's
//! envtest makes one: etcd and kube-apiserver as local processes on free
//! loopback ports, with certificates made for the run, and a kube
//! [`Client`] authenticated as an admin (`system:masters`).
//!
//! The binaries come from `scripts/k8s-tools`, which builds them from the Go
//! module proxy and prints their folder; tests find it in the environment
//! variable [`BIN_ENV`]. When it is unset, [`ControlPlane::start`] prints a
//! skip line and returns `None`, so `cargo test` passes on a machine that
//! has not built them (`scripts/test` always builds them and sets it).
//!
//! Every process writes its output to a log file in the run's temporary
//! folder; a failed wait prints the tail of each log. Dropping the
//! [`ControlPlane`] kills the processes and removes the folder, unless
//! [`KEEP_ENV`] is set.

mod certs;
mod workloads;

pub use workloads::NODE;

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tern_operator::crd::{BrokerCluster, ConsumerGroup, Topic};

/// The environment variable naming the folder with `etcd` and
/// `kube-apiserver` (the last line `scripts/k8s-tools` prints).
pub const BIN_ENV: &str = "TERN_K8S_BIN";

/// Set this environment variable to keep each run's folder (logs,
/// certificates, kubeconfig, etcd data) after the test.
pub const KEEP_ENV: &str = "TERN_K8S_KEEP";

/// Field manager of the tests' own server-side applies.
pub const TEST_MANAGER: &str = "tern-test";

/// How long the control plane may take to start on a busy machine.
const STARTUP: Duration = Duration::from_secs(180);

/// A child process whose output goes to a log file; killed on drop.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command`, its standard output and error appended to
    /// `<dir>/<name>.log`. Where util-linux's `setpriv` is installed, the
    /// process also gets SIGKILL when the test's thread ends, so a test
    /// binary that is killed (and cannot run `Drop`) leaves nothing behind.
    pub fn spawn(name: &str, command: Command, dir: &Path) -> Self {
        let mut command = with_parent_death_signal(command);
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("create a log file");
        let err = out.try_clone().expect("clone the log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, showing the log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("poll a child process") {
            panic!("{} exited ({status})\n{}", self.name, self.log_tail());
        }
    }
}

/// `command` run through `setpriv --pdeathsig KILL` when `setpriv` exists.
fn with_parent_death_signal(command: Command) -> Command {
    const SETPRIV: &str = "/usr/bin/setpriv";
    if !Path::new(SETPRIV).is_file() {
        return command;
    }
    let mut wrapped = Command::new(SETPRIV);
    wrapped
        .args(["--pdeathsig", "KILL", "--"])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

impl Drop for Process {
    fn drop(&mut self) {
        // Already gone, or beyond reach: nothing more to do either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd and kube-apiserver on loopback, and an admin client.
pub struct ControlPlane {
    // Fields drop in order: the API server's clients, the API server, etcd,
    // and the folder last.
    workloads: Vec<Process>,
    apiserver: Process,
    etcd: Process,
    /// A client authenticated as a member of `system:masters`.
    pub client: Client,
    kubeconfig: PathBuf,
    certs: certs::Certs,
    secure: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("apiserver", &self.apiserver)
            .field("etcd", &self.etcd)
            .field("workloads", &self.workloads)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until the API server is
    /// ready; `None` (after printing why) when [`BIN_ENV`] is unset.
    pub async fn start(test: &str) -> Option<Self> {
        let Some(bin) = std::env::var_os(BIN_ENV).map(PathBuf::from) else {
            eprintln!(
                "skipping {test}: {BIN_ENV} is not set (run `export {BIN_ENV}=$(scripts/k8s-tools)`, \
                 or scripts/test, which does)"
            );
            return None;
        };
        for tool in ["etcd", "kube-apiserver"] {
            assert!(
                bin.join(tool).is_file(),
                "{BIN_ENV} is {} but it holds no {tool}: run scripts/k8s-tools",
                bin.display()
            );
        }
        let mut dir = tempfile::Builder::new()
            .prefix("tern-k8s-")
            .tempdir()
            .expect("a temporary folder");
        if std::env::var_os(KEEP_ENV).is_some() {
            dir.disable_cleanup(true);
            eprintln!(
                "{test}: keeping {} ({KEEP_ENV} is set)",
                dir.path().display()
            );
        }
        let certs = certs::write(&dir.path().join("pki"));
        let [etcd_client, etcd_peer, secure] = free_ports();

        let mut etcd = Command::new(bin.join("etcd"));
        let client_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        etcd.arg("--name=tern-test")
            .arg(format!("--data-dir={}", dir.path().join("etcd").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=tern-test={peer_url}"))
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let etcd = Process::spawn("etcd", etcd, dir.path());

        let path = |p: &Path| p.display().to_string();
        let mut apiserver = Command::new(bin.join("kube-apiserver"));
        apiserver
            .arg(format!("--etcd-servers={client_url}"))
            .arg(format!(
                "--cert-dir={}",
                dir.path().join("apiserver").display()
            ))
            .arg(format!("--tls-cert-file={}", path(&certs.serving_cert)))
            .arg(format!(
                "--tls-private-key-file={}",
                path(&certs.serving_key)
            ))
            .arg(format!("--client-ca-file={}", path(&certs.ca)))
            .arg(format!("--secure-port={secure}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--authorization-mode=RBAC")
            .arg("--allow-privileged=true")
            .arg("--endpoint-reconciler-type=none")
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg(format!(
                "--service-account-key-file={}",
                path(&certs.service_account_public)
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                path(&certs.service_account_key)
            ));
        let apiserver = Process::spawn("kube-apiserver", apiserver, dir.path());

        let kubeconfig_text = kubeconfig_yaml(secure, &certs, None);
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, &kubeconfig_text).expect("write the kubeconfig");
        let client = client_from(&kubeconfig_text).await;

        let mut plane = Self {
            workloads: Vec::new(),
            apiserver,
            etcd,
            client,
            kubeconfig,
            certs,
            secure,
            bin,
            dir,
        };
        plane.wait_ready().await;
        Some(plane)
    }

    /// Polls `/readyz` until it answers `ok`, failing early if a process
    /// dies.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            self.etcd.assert_running();
            self.apiserver.assert_running();
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a request");
            let last = match self.client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return,
                Ok(body) => body,
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready after {STARTUP:?}: {last}\n{}\n{}",
                self.etcd.log_tail(),
                self.apiserver.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The admin kubeconfig file, for processes such as the operator.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig file named `name` that authenticates as the admin but
    /// impersonates `user` (for example `system:serviceaccount:ns:sa`), so
    /// that its requests are authorized by that user's RBAC alone.
    pub fn impersonating_kubeconfig(&self, name: &str, user: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, kubeconfig_yaml(self.secure, &self.certs, Some(user)))
            .expect("write a kubeconfig");
        path
    }

    /// The path of the tool `name` from `scripts/k8s-tools`.
    pub fn tool(&self, name: &str) -> PathBuf {
        let path = self.bin.join(name);
        assert!(
            path.is_file(),
            "{} holds no {name}: run scripts/k8s-tools",
            self.bin.display()
        );
        path
    }

    /// The run's temporary folder (logs go here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last log lines of etcd and kube-apiserver, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.etcd.log_tail(), self.apiserver.log_tail())
    }

    /// Installs the CRDs from `crds/` with server-side apply, then waits
    /// until each is `Established` and its resources are served.
    pub async fn install_crds(&self) -> Vec<CustomResourceDefinition> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .expect("read crds/")
            .map(|e| e.expect("a folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            tern_operator::crd::all().len(),
            "crds/ holds one file per kind"
        );
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut installed = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read a CRD file");
            let crd: CustomResourceDefinition =
                serde_norway::from_str(&text).expect("a CRD document");
            let name = crd.metadata.name.clone().expect("a CRD has a name");
            let applied = api
                .patch(
                    &name,
                    &PatchParams::apply(TEST_MANAGER).force(),
                    &Patch::Apply(&crd),
                )
                .await
                .unwrap_or_else(|e| panic!("installing {}: {e}", file.display()));
            installed.push(applied);
        }
        self.wait_crds_served(&installed).await;
        installed
    }

    /// Waits until each of `crds` is `Established` and the `tern.dev`
    /// resources are served.
    pub async fn wait_crds_served(&self, crds: &[CustomResourceDefinition]) {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            eventually(&format!("CRD {name} Established"), STARTUP, || async {
                let c = api.get(&name).await.ok()?;
                let established = c
                    .status?
                    .conditions?
                    .into_iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            })
            .await;
        }
        let served = ListParams::default().limit(1);
        eventually("the tern.dev resources served", STARTUP, || async {
            Api::<BrokerCluster>::all(self.client.clone())
                .list(&served)
                .await
                .ok()?;
            Api::<Topic>::all(self.client.clone())
                .list(&served)
                .await
                .ok()?;
            Api::<ConsumerGroup>::all(self.client.clone())
                .list(&served)
                .await
                .ok()?;
            Some(())
        })
        .await;
    }

    /// Creates the namespace `name`.
    pub async fn namespace(&self, name: &str) {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name }
        }))
        .expect("a namespace");
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    }
}

/// An admin kubeconfig for the API server on `secure`, impersonating
/// `user` when given.
fn kubeconfig_yaml(secure: u16, certs: &certs::Certs, user: Option<&str>) -> String {
    let path = |p: &Path| p.display().to_string();
    let impersonate = user.map_or_else(String::new, |u| format!("    as: {u}\n"));
    format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: tern-test\n  cluster:\n    server: https://127.0.0.1:{secure}\n    certificate-authority: {ca}\n\
         users:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\n{impersonate}\
         contexts:\n- name: tern-test\n  context:\n    cluster: tern-test\n    user: admin\n\
         current-context: tern-test\n",
        ca = path(&certs.ca),
        cert = path(&certs.admin_cert),
        key = path(&certs.admin_key),
    )
}

/// A kube client from a kubeconfig's text.
async fn client_from(kubeconfig: &str) -> Client {
    let parsed = Kubeconfig::from_yaml(kubeconfig).expect("a valid kubeconfig");
    let config = Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .expect("a client configuration from the kubeconfig");
    Client::try_from(config).expect("a Kubernetes client")
}

/// Polls `check` every 200 ms until it returns `Some`, panicking with
/// `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `N` distinct free loopback ports (bound together, then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound address").port())
}
