//! tern-tls against real sockets on 127.0.0.1 and real files: the three
//! modes, generated certificates and their CA directory, client
//! certificates, and a slow client not holding up others. Certificate
//! files and their reloading are in `reload.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rcgen::ExtendedKeyUsagePurpose;
use tern_tls::{ClientTls, ClientTlsConfig, ServerTls, ServerTlsConfig, TlsMode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use common::{
    Ca, assert_none_for, assert_rejected, exchange, insecure, next_conn, serve, serve_with,
    trusting, within,
};

/// What an HTTP/2 client sends first; its first byte is `P`, not 0x16.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[tokio::test]
async fn permissive_serves_plaintext_and_tls_on_one_port() {
    let (port, mut incoming) = serve(&ServerTlsConfig::default()).await;

    // Plaintext: the server gets every byte, the first one included (the
    // classification only peeks at it).
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(H2_PREFACE).await.unwrap();
    let mut conn = next_conn(&mut incoming).await;
    assert!(!conn.is_tls(), "a plaintext client was handed over as TLS");
    let mut preface = vec![0u8; H2_PREFACE.len()];
    within(conn.read_exact(&mut preface)).await.unwrap();
    assert_eq!(preface, H2_PREFACE);
    exchange(&mut plain, &mut conn).await;

    // TLS with a generated certificate, on the same port.
    let mut tls = within(insecure().connect("127.0.0.1", port)).await.unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "HTTP/2 not agreed in the handshake"
    );
    let mut conn = next_conn(&mut incoming).await;
    assert!(conn.is_tls(), "a TLS client was handed over as plaintext");
    exchange(&mut tls, &mut conn).await;

    // And plaintext again after it.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn_after(&mut plain, &mut incoming).await;
    assert!(!conn.is_tls());
    exchange(&mut plain, &mut conn).await;
}

/// Sends the HTTP/2 preface on `plain` and takes the connection it makes.
async fn next_conn_after(
    plain: &mut TcpStream,
    incoming: &mut tern_tls::Incoming,
) -> tern_tls::Conn {
    plain.write_all(H2_PREFACE).await.unwrap();
    let mut conn = next_conn(incoming).await;
    let mut preface = vec![0u8; H2_PREFACE.len()];
    within(conn.read_exact(&mut preface)).await.unwrap();
    assert_eq!(preface, H2_PREFACE);
    conn
}

#[tokio::test]
async fn disabled_hands_tls_clients_over_as_plaintext() {
    // No certificate is loaded when disabled: files that do not exist
    // are no error.
    let cfg = ServerTlsConfig {
        mode: TlsMode::Disabled,
        cert_file: Some("/nonexistent/tern/server.crt".into()),
        key_file: Some("/nonexistent/tern/server.key".into()),
        ..Default::default()
    };
    let tls = Arc::new(ServerTls::new(&cfg).unwrap());
    assert_eq!(tls.mode(), TlsMode::Disabled);
    let (port, mut incoming) = serve_with(tls).await;

    let client = insecure();
    let handshake = tokio::spawn(async move { client.connect("127.0.0.1", port).await.map(drop) });
    let mut conn = next_conn(&mut incoming).await;
    assert!(!conn.is_tls(), "disabled mode did a TLS handshake");
    // What the server reads is the ClientHello, as plaintext bytes: a TLS
    // handshake record.
    let mut header = [0u8; 5];
    within(conn.read_exact(&mut header)).await.unwrap();
    assert_eq!(header[0], 0x16, "not a TLS handshake record: {header:?}");
    assert_eq!(header[1], 3, "not a TLS record version: {header:?}");
    drop(conn);
    let result = within(handshake).await.unwrap();
    assert!(
        result.is_err(),
        "a TLS handshake succeeded in disabled mode"
    );

    // Plaintext is served.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn_after(&mut plain, &mut incoming).await;
    assert!(!conn.is_tls());
    exchange(&mut plain, &mut conn).await;

    assert_eq!(ServerTls::disabled().mode(), TlsMode::Disabled);
}

#[tokio::test]
async fn enforcing_refuses_plaintext_grpc_with_unauthenticated() {
    let cfg = ServerTlsConfig {
        mode: TlsMode::Enforcing,
        ..Default::default()
    };
    let (port, mut incoming) = serve(&cfg).await;

    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (h2c, connection) = within(h2::client::handshake(tcp)).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut h2c = within(h2c.ready()).await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://127.0.0.1:{port}/apache.rocketmq.v2.MessagingService/QueryRoute"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = h2c.send_request(request, false).unwrap();
    // An empty gRPC message: not compressed, length 0.
    let _ = body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true);
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let headers = response.headers();
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/grpc",
        "{headers:?}"
    );
    assert_eq!(
        headers.get("grpc-status").unwrap(),
        "16",
        "not UNAUTHENTICATED: {headers:?}"
    );
    let message = headers.get("grpc-message").unwrap().to_str().unwrap();
    assert!(message.contains("TLS"), "{message:?}");
    // Trailers-only: the headers end the stream.
    assert!(
        response.body().is_end_stream(),
        "the refusal is not a trailers-only response"
    );
    drop(h2c);
    driver.abort();

    // TLS still gets through, and the plaintext connection before it was
    // never handed over.
    let mut tls = within(insecure().connect("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn(&mut incoming).await;
    assert!(
        conn.is_tls(),
        "enforcing mode handed over a plaintext connection"
    );
    exchange(&mut tls, &mut conn).await;

    // Plaintext that is not even HTTP/2 is not handed over either.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_none_for(&mut incoming, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn generated_ca_is_kept_in_its_directory_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory that does not exist yet.
    let dir = tmp.path().join("tls").join("ca");
    let cfg = ServerTlsConfig {
        generated_ca_dir: Some(dir.clone()),
        ..Default::default()
    };
    let (port, mut incoming) = serve(&cfg).await;
    let ca_crt = dir.join("ca.crt");
    let ca_key = dir.join("ca.key");
    let crt_bytes = std::fs::read(&ca_crt).unwrap();
    let key_bytes = std::fs::read(&ca_key).unwrap();
    assert!(String::from_utf8_lossy(&crt_bytes).contains("BEGIN CERTIFICATE"));
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "ca.key mode {mode:o}");

    let client = trusting(&ca_crt);
    for host in ["localhost", "127.0.0.1"] {
        let mut tls = within(client.connect(host, port))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let mut conn = next_conn(&mut incoming).await;
        assert!(conn.is_tls());
        exchange(&mut tls, &mut conn).await;
    }
    drop(incoming);

    // A second server from the same directory: same CA, new leaf, and
    // the client made before verifies it.
    let (port, mut incoming) = serve(&cfg).await;
    assert_eq!(
        std::fs::read(&ca_crt).unwrap(),
        crt_bytes,
        "ca.crt rewritten"
    );
    assert_eq!(
        std::fs::read(&ca_key).unwrap(),
        key_bytes,
        "ca.key rewritten"
    );
    let mut tls = within(client.connect("localhost", port)).await.unwrap();
    let mut conn = next_conn(&mut incoming).await;
    exchange(&mut tls, &mut conn).await;

    // A client trusting another CA refuses the certificate.
    let other = Ca::new("Some other CA");
    let other_file = other.write(tmp.path(), "other.crt");
    let result = within(trusting(&other_file).connect("localhost", port)).await;
    assert_rejected(result, "a client trusting another CA");
    // And so does one trusting the system's bundle (or finding none).
    if let Ok(system) = ClientTls::new(ClientTlsConfig::default()) {
        let result = within(system.connect("127.0.0.1", port)).await;
        assert_rejected(result, "a client trusting the system's CAs");
    }
    assert_none_for(&mut incoming, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let client_ca = Ca::new("Test client CA C");
    let client_ca_file = client_ca.write(tmp.path(), "clients.crt");
    let cfg = ServerTlsConfig {
        client_ca_file: Some(client_ca_file),
        ..Default::default()
    };
    let (port, mut incoming) = serve(&cfg).await;

    // No client certificate: the handshake, or the first read after it
    // (TLS 1.3 checks the client's certificate after the client is done),
    // fails.
    let refused = |client: ClientTls| async move {
        let mut tls = client.connect("127.0.0.1", port).await?;
        tls.write_all(b"hello").await?;
        tls.flush().await?;
        let mut buf = [0u8; 1];
        tls.read(&mut buf).await
    };
    match within(refused(insecure())).await {
        Err(_) | Ok(0) => {}
        Ok(n) => panic!("a client without a certificate read {n} bytes"),
    }
    assert_none_for(&mut incoming, Duration::from_millis(300)).await;

    // A certificate signed by another CA: refused too.
    let stranger = Ca::new("Test stranger CA D");
    let (cert, key) = stranger.leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let cert_file = tmp.path().join("stranger.crt");
    let key_file = tmp.path().join("stranger.key");
    std::fs::write(&cert_file, cert + &stranger.pem).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let stranger = ClientTls::new(ClientTlsConfig {
        insecure_skip_verify: true,
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        ..Default::default()
    })
    .unwrap();
    match within(refused(stranger)).await {
        Err(_) | Ok(0) => {}
        Ok(n) => panic!("a client with a certificate from another CA read {n} bytes"),
    }
    assert_none_for(&mut incoming, Duration::from_millis(300)).await;

    // A certificate signed by C gets through.
    let (cert, key) = client_ca.leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let cert_file = tmp.path().join("client.crt");
    let key_file = tmp.path().join("client.key");
    std::fs::write(&cert_file, cert + &client_ca.pem).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let client = ClientTls::new(ClientTlsConfig {
        insecure_skip_verify: true,
        cert_file: Some(cert_file.clone()),
        key_file: Some(key_file),
        ..Default::default()
    })
    .unwrap();
    let mut tls = within(client.connect("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn(&mut incoming).await;
    assert!(conn.is_tls());
    exchange(&mut tls, &mut conn).await;

    // A client certificate without its key is a settings error.
    let half = ClientTls::new(ClientTlsConfig {
        insecure_skip_verify: true,
        cert_file: Some(cert_file),
        ..Default::default()
    });
    assert!(
        matches!(half, Err(tern_tls::TlsError::Settings(_))),
        "{half:?}"
    );
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_the_next() {
    let (port, mut incoming) = serve(&ServerTlsConfig::default()).await;

    // One connection that sends nothing, one that stops halfway through
    // a TLS record header.
    let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    half.write_all(&[0x16, 0x03]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Both are still waited for (well under the 10 s handshake timeout),
    // yet a TLS client and a plaintext one get through at once.
    let mut tls = within(insecure().connect("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn(&mut incoming).await;
    assert!(conn.is_tls());
    exchange(&mut tls, &mut conn).await;

    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut conn = next_conn_after(&mut plain, &mut incoming).await;
    assert!(!conn.is_tls());
    exchange(&mut plain, &mut conn).await;

    assert_none_for(&mut incoming, Duration::from_millis(200)).await;
}

#[test]
fn modes_parse_and_print() {
    for mode in [TlsMode::Disabled, TlsMode::Permissive, TlsMode::Enforcing] {
        assert_eq!(mode.to_string().parse::<TlsMode>().unwrap(), mode);
    }
    assert_eq!(TlsMode::default(), TlsMode::Permissive);
    assert!("strict".parse::<TlsMode>().is_err());
}
