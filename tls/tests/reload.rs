//! Server certificates from PEM files: loading, the settings that are
//! refused, and reloading while connections are served.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tern_tls::{ClientTls, ServerTls, ServerTlsConfig, TlsError};

use common::{Ca, assert_rejected, exchange, next_conn, serve, trusting, within};

const INTERVAL: Duration = Duration::from_millis(100);

/// The server's certificate and key files in `dir`.
fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("server.crt"), dir.join("server.key"))
}

/// Writes a certificate from `ca` (chain: leaf, then the CA) and its key.
fn write_pair(dir: &Path, ca: &Ca) {
    let (leaf, key) = ca.server_leaf();
    let (cert_file, key_file) = files(dir);
    std::fs::write(cert_file, leaf + &ca.pem).unwrap();
    std::fs::write(key_file, key).unwrap();
}

fn config(dir: &Path) -> ServerTlsConfig {
    let (cert_file, key_file) = files(dir);
    ServerTlsConfig {
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        reload_interval: INTERVAL,
        ..Default::default()
    }
}

/// Whether `client` completes a handshake with the server on `port`.
async fn connects(client: &ClientTls, port: u16) -> bool {
    within(client.connect("localhost", port)).await.is_ok()
}

#[tokio::test]
async fn certificate_files_are_served_and_reloaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = Ca::new("Test CA A");
    let b = Ca::new("Test CA B");
    // Clients are made anew for each connection: one that resumes a TLS
    // session is not shown the certificate again.
    let a_file = a.write(dir, "a.crt");
    let b_file = b.write(dir, "b.crt");
    let trust_a = || trusting(&a_file);
    let trust_b = || trusting(&b_file);

    write_pair(dir, &a);
    let (port, mut incoming) = serve(&config(dir)).await;
    for host in ["localhost", "127.0.0.1"] {
        let mut tls = within(trust_a().connect(host, port))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        let mut conn = next_conn(&mut incoming).await;
        assert!(conn.is_tls());
        exchange(&mut tls, &mut conn).await;
    }
    assert_rejected(
        within(trust_b().connect("localhost", port)).await,
        "a client trusting B before the swap",
    );

    // New files, signed by B (written in place, one after the other, so
    // the server may see the new certificate with the old key for a
    // moment).
    write_pair(dir, &b);
    let swapped = Instant::now();
    let mut tls = loop {
        if let Ok(tls) = within(trust_b().connect("localhost", port)).await {
            break tls;
        }
        assert!(
            swapped.elapsed() < Duration::from_secs(5),
            "the certificate signed by B is still not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The connection after the reload carries data as before (the
    // handshakes refused while polling were not handed over).
    let mut conn = next_conn(&mut incoming).await;
    assert!(conn.is_tls());
    exchange(&mut tls, &mut conn).await;
    assert_rejected(
        within(trust_a().connect("localhost", port)).await,
        "a client trusting A after the swap",
    );

    // A garbage key: the certificate signed by B stays.
    let (_, key_file) = files(dir);
    std::fs::write(
        &key_file,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    tokio::time::sleep(INTERVAL * 4).await;
    assert!(
        connects(&trust_b(), port).await,
        "a garbage key file replaced the certificate served"
    );
    assert_rejected(
        within(trust_a().connect("localhost", port)).await,
        "a client trusting A after a garbage key",
    );

    // A well-formed key that does not match the certificate: the same.
    let (_, other_key) = b.server_leaf();
    std::fs::write(&key_file, other_key).unwrap();
    tokio::time::sleep(INTERVAL * 4).await;
    assert!(
        connects(&trust_b(), port).await,
        "a key not matching the certificate replaced the pair served"
    );

    // Valid files again (signed by A): served, the errors before
    // notwithstanding.
    write_pair(dir, &a);
    let restored = Instant::now();
    while !connects(&trust_a(), port).await {
        assert!(
            restored.elapsed() < Duration::from_secs(5),
            "valid files after invalid ones are not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_certificate_settings_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = Ca::new("Test CA A");
    write_pair(dir, &a);
    let (cert_file, key_file) = files(dir);

    // A certificate without its key, or a key without its certificate.
    let cert_only = ServerTlsConfig {
        key_file: None,
        ..config(dir)
    };
    let result = ServerTls::new(&cert_only);
    assert!(matches!(result, Err(TlsError::Settings(_))), "{result:?}");
    let key_only = ServerTlsConfig {
        cert_file: None,
        ..config(dir)
    };
    let result = ServerTls::new(&key_only);
    assert!(matches!(result, Err(TlsError::Settings(_))), "{result:?}");

    // A reload interval of zero.
    let zero = ServerTlsConfig {
        reload_interval: Duration::ZERO,
        ..config(dir)
    };
    let result = ServerTls::new(&zero);
    assert!(matches!(result, Err(TlsError::Settings(_))), "{result:?}");

    // The valid pair loads.
    ServerTls::new(&config(dir)).unwrap();

    // A key that does not match the certificate.
    let (_, other_key) = a.server_leaf();
    std::fs::write(&key_file, other_key).unwrap();
    let result = ServerTls::new(&config(dir));
    assert!(matches!(result, Err(TlsError::Rustls(_))), "{result:?}");

    // No key in the key file.
    std::fs::write(&key_file, "not a key\n").unwrap();
    let result = ServerTls::new(&config(dir));
    assert!(matches!(result, Err(TlsError::Pem { .. })), "{result:?}");

    // No certificate in the certificate file.
    let (_, key) = a.server_leaf();
    std::fs::write(&key_file, key).unwrap();
    std::fs::write(&cert_file, "not a certificate\n").unwrap();
    let result = ServerTls::new(&config(dir));
    assert!(matches!(result, Err(TlsError::Pem { .. })), "{result:?}");

    // A file that is not there.
    std::fs::remove_file(&cert_file).unwrap();
    let result = ServerTls::new(&config(dir));
    assert!(matches!(result, Err(TlsError::File { .. })), "{result:?}");

    // A client CA file without a certificate.
    write_pair(dir, &a);
    let empty = dir.join("empty.crt");
    std::fs::write(&empty, "").unwrap();
    let result = ServerTls::new(&ServerTlsConfig {
        client_ca_file: Some(empty),
        ..config(dir)
    });
    assert!(matches!(result, Err(TlsError::Pem { .. })), "{result:?}");
}
