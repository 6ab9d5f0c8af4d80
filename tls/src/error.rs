//! The errors of setting TLS up.

use std::path::PathBuf;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file named in the configuration could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file held no usable PEM item of the kind expected.
    #[error("{what} {}: {reason}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The settings contradict each other.
    #[error("TLS settings: {0}")]
    Settings(String),
    /// Generating a certificate failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration (a key that does not match its
    /// certificate, an unsupported key type, an empty CA file).
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Rustls(e.to_string())
    }
}
