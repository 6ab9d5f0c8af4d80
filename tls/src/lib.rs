//! TLS on Tern's gRPC ports, and on the connections the CLI and the
//! client library open to them.
//!
//! Server side ([`ServerTls`]): one listening port serves TLS and
//! plaintext together by looking at each connection's first byte (a TLS
//! ClientHello starts with 0x16, an HTTP/2 preface with `P`), the way the
//! RocketMQ 5 proxy does, so the official SDKs work with their default
//! settings (Java and Go dial TLS, Python, Node and Rust plaintext). Three
//! modes: `disabled` (plaintext only), `permissive` (both, the default),
//! `enforcing` (TLS only; a plaintext gRPC call is answered with
//! UNAUTHENTICATED and a message saying TLS is required). The certificate
//! and key come from PEM files, read again when they change, or, when none
//! are configured, are generated at start: a certificate signed by a
//! generated CA, whose certificate is written where clients can be told to
//! trust it. A CA file for client certificates turns on mutual TLS.
//!
//! Client side ([`ClientTls`]): a connector that trusts a CA file, the
//! system's bundle, or (for tests and generated certificates) anything.
//!
//! rustls with the ring provider throughout; no OpenSSL.

mod cert;
mod client;
mod conn;
mod error;
mod server;

pub use client::{ClientTls, ClientTlsConfig, Connector};
pub use conn::Conn;
pub use error::TlsError;
pub use server::{
    Accepted, ConnectionObserver, DEFAULT_MAX_CONNECTIONS, Incoming, LISTEN_BACKLOG, ServerTls,
    ServerTlsConfig, TlsMode, bind,
};

/// The crypto provider every configuration here is built with.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
