//! [`NameserverError`], the crate's one error enum.

/// What can go wrong in the name server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NameserverError {
    /// A broker's registration or a query was malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The gRPC port's TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(#[from] tern_tls::TlsError),
    /// The listener has no local address.
    #[error("listener has no address: {0}")]
    Listener(#[source] std::io::Error),
}

impl From<NameserverError> for tonic::Status {
    fn from(e: NameserverError) -> Self {
        match e {
            NameserverError::Invalid(m) => tonic::Status::invalid_argument(m),
            other => tonic::Status::internal(other.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = NameserverError> = std::result::Result<T, E>;
