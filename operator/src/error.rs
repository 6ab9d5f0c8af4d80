//! The operator's one error type.

/// Everything a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object from the API server lacks a field the operator needs
    /// (name, namespace, uid).
    #[error("{kind} has no {field}")]
    MissingField {
        /// The kind of the object.
        kind: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Rendering a TOML configuration file failed.
    #[error("rendering configuration: {0}")]
    Render(#[from] toml::ser::Error),
    /// Serializing an object failed.
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
    /// A broker's admin endpoint is not a valid `host:port`.
    #[error("connecting to the broker admin API at {endpoint}: {source}")]
    Connect {
        /// The broker's `host:port`.
        endpoint: String,
        /// What is wrong with it.
        #[source]
        source: Box<tern_client::ClientError>,
    },
    /// A call to a broker's admin API failed: the broker could not be
    /// reached, answered with an error, or the request was refused before
    /// it was sent.
    #[error("broker admin API at {endpoint}: {source}")]
    Admin {
        /// The broker's `host:port`.
        endpoint: String,
        /// What went wrong.
        #[source]
        source: Box<tern_client::ClientError>,
    },
    /// Credentials could not be read from their Secret, or made.
    #[error("credentials in Secret {secret}: {reason}")]
    Credentials {
        /// The Secret's name.
        secret: String,
        /// What is wrong.
        reason: String,
    },
    /// A finalizer could not be added, run or removed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A short, stable label for metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingField { .. } => "MissingField",
            Self::Kube(_) => "KubeApi",
            Self::Render(_) => "Render",
            Self::Json(_) => "Serialize",
            Self::Connect { .. } => "BrokerUnreachable",
            Self::Admin { .. } => "BrokerAdmin",
            Self::Credentials { .. } => "Credentials",
            Self::Finalizer(_) => "Finalizer",
        }
    }
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
