//! The server side: which connections get TLS, with which certificate.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::cert::{self, Current};
use crate::{Conn, TlsError};

/// How long a new connection has to send its first bytes and finish its
/// TLS handshake before it is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a plaintext connection refused under `enforcing` is kept to
/// answer its calls with the reason.
const REFUSAL_LINGER: Duration = Duration::from_secs(5);

/// Connections the kernel queues for a port before it takes them: room
/// for a burst of clients (pods restarting together) while the accept
/// loop is busy, instead of their handshakes being dropped and retried a
/// second later. The kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket for a gRPC port at `address` (`host:port`; the
/// first address it resolves to that binds), with [`LISTEN_BACKLOG`].
pub async fn bind(address: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address} resolves to no address"),
        )
    }))
}

/// Connections a port takes at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Accepted connections waiting for the server to take them.
const ACCEPT_QUEUE: usize = 256;

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Which connections a port serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext only: no certificate is loaded or generated.
    Disabled,
    /// TLS and plaintext on the same port, told apart by the first byte.
    #[default]
    Permissive,
    /// TLS only: a plaintext gRPC call is answered with UNAUTHENTICATED
    /// and a message saying TLS is required.
    Enforcing,
}

impl TlsMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Permissive => "permissive",
            Self::Enforcing => "enforcing",
        }
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disabled" => Ok(Self::Disabled),
            "permissive" => Ok(Self::Permissive),
            "enforcing" => Ok(Self::Enforcing),
            other => Err(format!(
                "`{other}` is not a TLS mode (disabled, permissive, enforcing)"
            )),
        }
    }
}

/// TLS settings of one listening port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsConfig {
    /// Default `permissive`.
    pub mode: TlsMode,
    /// PEM certificate chain (leaf first). With `key_file`; without both,
    /// a certificate is generated at start.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates: when set, TLS clients must present a
    /// certificate signed by one of them (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// How often `cert_file` and `key_file` are read again. Default 10 s.
    pub reload_interval: Duration,
    /// Where the CA that signs generated certificates is kept (`ca.crt`,
    /// `ca.key`), so clients can trust one CA across restarts. Default
    /// unset: a CA made for the process only.
    pub generated_ca_dir: Option<PathBuf>,
    /// Names (DNS or IP) a generated certificate is valid for, besides
    /// `localhost`, 127.0.0.1, ::1 and the machine's host name.
    pub names: Vec<String>,
}

impl Default for ServerTlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::default(),
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            reload_interval: Duration::from_secs(10),
            generated_ca_dir: None,
            names: Vec::new(),
        }
    }
}

/// What became of one accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Served in plaintext.
    Plaintext,
    /// Served after a TLS handshake.
    Tls,
    /// Plaintext under `enforcing`: answered UNAUTHENTICATED, closed.
    RefusedPlaintext,
    /// The TLS handshake failed (an untrusted or missing client
    /// certificate, a client that does not trust the server, no common
    /// protocol).
    HandshakeFailed,
    /// Closed before sending anything, or without finishing its
    /// handshake within 10 s.
    Silent,
    /// Closed at once: the port had as many connections as it takes.
    OverLimit,
}

impl Accepted {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Tls => "tls",
            Self::RefusedPlaintext => "refused_plaintext",
            Self::HandshakeFailed => "handshake_failed",
            Self::Silent => "silent",
            Self::OverLimit => "over_limit",
        }
    }
}

/// Told of every accepted connection's outcome (for metrics).
pub trait ConnectionObserver: Send + Sync + 'static {
    fn accepted(&self, outcome: Accepted);
}

/// A port's TLS, ready to accept connections with.
pub struct ServerTls {
    mode: TlsMode,
    /// `None` when disabled.
    acceptor: Option<(TlsAcceptor, Arc<Current>)>,
    reload_interval: Duration,
    /// Cancelled to close every connection accepted.
    closed: CancellationToken,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mode", &self.mode)
            .field("certificate", &self.acceptor.as_ref().map(|(_, c)| c))
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads (or generates) the certificate `cfg` asks for. Logs where
    /// the certificate came from.
    pub fn new(cfg: &ServerTlsConfig) -> Result<Self, TlsError> {
        if cfg.mode == TlsMode::Disabled {
            return Ok(Self {
                mode: cfg.mode,
                acceptor: None,
                reload_interval: cfg.reload_interval,
                closed: CancellationToken::new(),
            });
        }
        if cfg.reload_interval.is_zero() {
            return Err(TlsError::Settings(
                "the certificate reload interval must be above zero".into(),
            ));
        }
        let current = match (&cfg.cert_file, &cfg.key_file) {
            (Some(cert), Some(key)) => {
                let current = Current::from_files(cert, key)?;
                tracing::info!(
                    mode = %cfg.mode,
                    cert = %cert.display(),
                    key = %key.display(),
                    reload_interval = ?cfg.reload_interval,
                    "TLS certificate loaded from files"
                );
                current
            }
            (None, None) => {
                let names = generated_names(&cfg.names);
                let generated = cert::generate(&names, cfg.generated_ca_dir.as_deref())?;
                match &generated.ca_file {
                    Some(ca) => tracing::info!(
                        mode = %cfg.mode,
                        names = ?names,
                        ca = %ca.display(),
                        "TLS certificate generated (self-signed: clients must skip verification or trust the CA file named)"
                    ),
                    None => tracing::info!(
                        mode = %cfg.mode,
                        names = ?names,
                        "TLS certificate generated (self-signed, for this process only: clients must skip verification)"
                    ),
                }
                Current::fixed(generated.key)
            }
            _ => {
                return Err(TlsError::Settings(
                    "a certificate file and a key file go together: set both or neither".into(),
                ));
            }
        };
        let current = Arc::new(current);
        let builder = rustls::ServerConfig::builder_with_provider(crate::provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let builder = match &cfg.client_ca_file {
            Some(path) => {
                let pem = cert::read("client CA file", path)?;
                let mut roots = RootCertStore::empty();
                for c in cert::read_certs(path, &pem, "client CA file")? {
                    roots.add(c)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::provider())
                        .build()
                        .map_err(|e| TlsError::Rustls(e.to_string()))?;
                if cfg.mode == TlsMode::Permissive {
                    tracing::warn!(
                        "client certificates are checked on TLS connections, but plaintext ones are still served (mode permissive); use enforcing to require them"
                    );
                }
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut server = builder.with_cert_resolver(Arc::clone(&current) as _);
        // gRPC clients insist on HTTP/2 being agreed in the handshake.
        server.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: every handshake is shown (and checks) the
        // certificate served now, so a replaced one takes effect for every
        // new connection. gRPC connections are long-lived; a full
        // handshake per connection costs little.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        Ok(Self {
            mode: cfg.mode,
            acceptor: Some((TlsAcceptor::from(Arc::new(server)), current)),
            reload_interval: cfg.reload_interval,
            closed: CancellationToken::new(),
        })
    }

    /// A port with TLS disabled.
    pub fn disabled() -> Self {
        Self {
            mode: TlsMode::Disabled,
            acceptor: None,
            reload_interval: Duration::from_secs(10),
            closed: CancellationToken::new(),
        }
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Makes every connection accepted so far, and from now on, fail its
    /// pending reads and writes: for a shutdown whose grace has run out
    /// (clients that do not close).
    pub fn close_connections(&self) {
        self.closed.cancel();
    }

    /// Accepts connections on `listener` until the returned stream is
    /// dropped, each classified (and, for TLS, its handshake done) on its
    /// own task so a slow client holds up no other. Needs a Tokio runtime.
    pub fn incoming(self: Arc<Self>, listener: TcpListener) -> Incoming {
        self.incoming_observed(listener, None, DEFAULT_MAX_CONNECTIONS)
    }

    /// [`ServerTls::incoming`], telling `observer` what became of each
    /// connection, and taking at most `max_connections` at once: past
    /// that, a new connection is closed as soon as it is accepted (and
    /// counted), so thousands of clients cannot exhaust memory or file
    /// descriptors while those already connected are served.
    pub fn incoming_observed(
        self: Arc<Self>,
        listener: TcpListener,
        observer: Option<Arc<dyn ConnectionObserver>>,
        max_connections: usize,
    ) -> Incoming {
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        if let Some((_, current)) = &self.acceptor
            && current.reloads()
        {
            tokio::spawn(cert::watch(Arc::downgrade(current), self.reload_interval));
        }
        let permits = Arc::new(Semaphore::new(max_connections.max(1)));
        tokio::spawn(accept_loop(listener, self, tx, observer, permits));
        ReceiverStream::new(rx)
    }

    /// What `stream` turns out to be: a plaintext connection to serve, a
    /// TLS one after its handshake, or nothing (closed, refused, too
    /// slow).
    async fn classify(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> (Option<Conn>, Accepted) {
        let Some((acceptor, _)) = &self.acceptor else {
            return (
                Some(Conn::plain(stream, &self.closed, permit)),
                Accepted::Plaintext,
            );
        };
        let work = async {
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(1) => {}
                _ => return (None, Accepted::Silent),
            }
            if first[0] == TLS_HANDSHAKE_RECORD {
                return match acceptor.accept(stream).await {
                    Ok(tls) => (Some(Conn::tls(tls, &self.closed, permit)), Accepted::Tls),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        (None, Accepted::HandshakeFailed)
                    }
                };
            }
            match self.mode {
                TlsMode::Enforcing => {
                    tracing::debug!(%peer, "plaintext connection refused: TLS is enforced");
                    tokio::spawn(async move {
                        refuse_plaintext(stream).await;
                        drop(permit);
                    });
                    (None, Accepted::RefusedPlaintext)
                }
                _ => (
                    Some(Conn::plain(stream, &self.closed, permit)),
                    Accepted::Plaintext,
                ),
            }
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, work).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::debug!(%peer, "connection closed: no TLS handshake or request in time");
                (None, Accepted::Silent)
            }
        }
    }
}

/// Connections accepted by [`ServerTls::incoming`], for tonic's
/// `serve_with_incoming`.
pub type Incoming = ReceiverStream<io::Result<Conn>>;

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    tx: mpsc::Sender<io::Result<Conn>>,
    observer: Option<Arc<dyn ConnectionObserver>>,
    permits: Arc<Semaphore>,
) {
    let mut last_warned: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it
                // was taken: the listener itself is fine; pause a moment so
                // a persistent condition does not spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if let Some(o) = &observer {
                o.accepted(Accepted::OverLimit);
            }
            if last_warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                last_warned = Some(tokio::time::Instant::now());
                tracing::warn!(%peer, "connection refused: the port has as many connections as it takes (max_connections)");
            }
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        if tls.acceptor.is_none() {
            if let Some(o) = &observer {
                o.accepted(Accepted::Plaintext);
            }
            if tx
                .send(Ok(Conn::plain(stream, &tls.closed, permit)))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let tls = Arc::clone(&tls);
        let tx = tx.clone();
        let observer = observer.clone();
        tokio::spawn(async move {
            let (conn, outcome) = tls.classify(stream, peer, permit).await;
            if let Some(o) = &observer {
                o.accepted(outcome);
            }
            if let Some(conn) = conn {
                let _ = tx.send(Ok(conn)).await;
            }
        });
    }
}

/// Answers each gRPC call of a plaintext HTTP/2 connection with
/// UNAUTHENTICATED and the reason, for a short while, then closes it.
async fn refuse_plaintext(stream: TcpStream) {
    let answer = async {
        let mut conn = h2::server::handshake(stream).await.ok()?;
        while let Some(Ok((_, mut respond))) = conn.accept().await {
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .header("grpc-status", "16")
                .header(
                    "grpc-message",
                    "this port requires TLS (tls mode enforcing): connect with TLS",
                )
                .body(())
                .ok()?;
            let _ = respond.send_response(response, true);
        }
        Some(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
}

/// `extra` and the names every generated certificate has.
fn generated_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_owned());
    }
    names.extend(extra.iter().cloned());
    names.retain(|n| !n.is_empty() && n != "0.0.0.0" && n != "::");
    names.sort();
    names.dedup();
    names
}
