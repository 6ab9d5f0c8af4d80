//! What the test files share: a server on 127.0.0.1, clients, CAs made
//! with rcgen, and bounded waits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tern_tls::{ClientTls, ClientTlsConfig, Conn, Incoming, ServerTls, ServerTlsConfig};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;

/// The bound on every wait that should succeed.
pub const WAIT: Duration = Duration::from_secs(5);

/// `f`, which must finish within [`WAIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .expect("timed out waiting")
}

/// A server with `cfg` on a free port of 127.0.0.1.
pub async fn serve(cfg: &ServerTlsConfig) -> (u16, Incoming) {
    serve_with(Arc::new(ServerTls::new(cfg).unwrap())).await
}

pub async fn serve_with(tls: Arc<ServerTls>) -> (u16, Incoming) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, tls.incoming(listener))
}

/// The next connection the server hands over.
pub async fn next_conn(incoming: &mut Incoming) -> Conn {
    within(incoming.next())
        .await
        .expect("the stream of connections ended")
        .expect("accepting failed")
}

/// Fails if the server hands a connection over within `d`.
pub async fn assert_none_for(incoming: &mut Incoming, d: Duration) {
    if let Ok(item) = tokio::time::timeout(d, incoming.next()).await {
        let what = item.map(|r| r.map(|c| if c.is_tls() { "TLS" } else { "plaintext" }));
        panic!("a connection was handed over: {what:?}");
    }
}

/// Bytes both ways: the client's reach the server and the server's
/// answer reaches the client.
pub async fn exchange<C, S>(client: &mut C, server: &mut S)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ping = b"ping from the client";
    let pong = b"pong from the server";
    within(async {
        client.write_all(ping).await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 20];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, ping);
        server.write_all(pong).await.unwrap();
        server.flush().await.unwrap();
        let mut got = [0u8; 20];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, pong);
    })
    .await;
}

/// A client that accepts any server certificate.
pub fn insecure() -> ClientTls {
    ClientTls::new(ClientTlsConfig {
        insecure_skip_verify: true,
        ..Default::default()
    })
    .unwrap()
}

/// A client that trusts the CAs in `ca_file` only.
pub fn trusting(ca_file: &Path) -> ClientTls {
    ClientTls::new(ClientTlsConfig {
        ca_file: Some(ca_file.to_owned()),
        ..Default::default()
    })
    .unwrap()
}

/// Fails unless `result` is a refused server certificate (not, say, a
/// refused TCP connection).
pub fn assert_rejected<T>(result: std::io::Result<T>, who: &str) {
    match result {
        Ok(_) => panic!("{who} accepted the server's certificate"),
        Err(e) => {
            let text = e.to_string();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{who}: {text}");
            assert!(text.contains("certificate"), "{who}: {text}");
        }
    }
}

/// A CA made with rcgen.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// Its certificate, PEM.
    pub pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    /// A certificate for `names` signed by this CA, and its key (PEM).
    pub fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "tern test leaf");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server_leaf(&self) -> (String, String) {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// Writes the CA certificate to `dir/name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}
