//! The client side: TLS connections to a Tern port (or any gRPC server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{TlsError, cert};

/// Where system CA bundles usually are, tried in order when no CA file is
/// given (after `SSL_CERT_FILE`).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How a client checks the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// PEM CA certificates to trust. Default: the system's bundle
    /// (`SSL_CERT_FILE`, else the usual paths).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a generated one, in tests). The connection
    /// is encrypted but the server is not authenticated.
    pub insecure_skip_verify: bool,
    /// PEM certificate chain and key shown to servers that check client
    /// certificates (mutual TLS). Default none.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A TLS connector built from a [`ClientTlsConfig`].
#[derive(Clone)]
pub struct ClientTls {
    cfg: ClientTlsConfig,
    connector: TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("cfg", &self.cfg).finish()
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.cfg == other.cfg
    }
}

impl Eq for ClientTls {}

impl ClientTls {
    /// Reads the CA file (or the system bundle) `cfg` names.
    pub fn new(cfg: ClientTlsConfig) -> Result<Self, TlsError> {
        let provider = crate::provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let builder = if cfg.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            let path = match &cfg.ca_file {
                Some(p) => p.clone(),
                None => system_bundle()?,
            };
            let pem = cert::read("CA file", &path)?;
            let mut roots = RootCertStore::empty();
            let (added, _) =
                roots.add_parsable_certificates(cert::read_certs(&path, &pem, "CA file")?);
            if added == 0 {
                return Err(TlsError::Pem {
                    what: "CA file",
                    path,
                    reason: "no usable CA certificate".into(),
                });
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match (&cfg.cert_file, &cfg.key_file) {
            (Some(cert), Some(key)) => {
                let (chain, key) = cert::read_pair(cert, key)?;
                builder.with_client_auth_cert(chain, key)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Settings(
                    "a client certificate file and its key file go together".into(),
                ));
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            cfg,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    pub fn config(&self) -> &ClientTlsConfig {
        &self.cfg
    }

    /// Opens a TCP connection to `host:port` and does the TLS handshake,
    /// checking the certificate against `host` (a DNS name or an IP
    /// address, without brackets).
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{host}` is not a valid TLS server name: {e}"),
            )
        })?;
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        self.connector.connect(name, tcp).await
    }
}

/// Dials TLS for tonic (`Endpoint::connect_with_connector`): the
/// endpoint's URI stays `http://HOST:PORT` and the connection under
/// HTTP/2 is TLS, checked as the [`ClientTls`] says.
#[derive(Debug, Clone)]
pub struct Connector(ClientTls);

impl ClientTls {
    /// This configuration as a connector for tonic.
    pub fn connector(&self) -> Connector {
        Connector(self.clone())
    }
}

type Connecting = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>,
>;

impl tower_service::Service<tonic::transport::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::transport::Uri) -> Connecting {
        let tls = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let stream = tls.connect(host, uri.port_u16().unwrap_or(443)).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

fn system_bundle() -> Result<PathBuf, TlsError> {
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        return Ok(PathBuf::from(p));
    }
    SYSTEM_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            TlsError::Settings(
                "no CA file given and no system CA bundle found: give a CA file (--ca-file)".into(),
            )
        })
}

/// Trusts every certificate, still checking that the server holds the
/// key of the one it shows (so the handshake's signatures are real).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
