//! TLS of the gRPC ports: the certificate Secret's volume and the `[tls]`
//! table (and, for brokers, how they dial the name servers) rendered into
//! the configuration files.
//!
//! Only the Secret's name reaches the pod template, never its content: a
//! certificate renewed in place (by cert-manager) is picked up by the pods,
//! which re-read the files, without a rolling restart; a change of mode or
//! of Secret name changes the files or the template and rolls the pods.

use k8s_openapi::api::core::v1::{SecretVolumeSource, Volume, VolumeMount};

use crate::crd::cluster::{BrokerClusterSpec, TlsMode};

/// Where the certificate Secret is mounted.
pub const TLS_DIR: &str = "/etc/tern/tls";
/// Name of the certificate volume.
pub const TLS_VOLUME: &str = "tls";
/// Keys of a `kubernetes.io/tls` Secret (and cert-manager's `ca.crt`).
pub const CERT_KEY: &str = "tls.crt";
/// The private key.
pub const KEY_KEY: &str = "tls.key";
/// The CA certificate.
pub const CA_KEY: &str = "ca.crt";

/// The certificate Secret the pods use: the spec's `certificateSecret`,
/// unless TLS is disabled (a disabled port loads no certificate, and
/// `tern` refuses certificate files then).
pub fn secret(spec: &BrokerClusterSpec) -> Option<&str> {
    let tls = &spec.tls;
    match tls.mode {
        TlsMode::Disabled => None,
        TlsMode::Permissive | TlsMode::Enforcing => tls.certificate_secret.as_deref(),
    }
}

/// Whether client certificates are checked: asked for, and there is a
/// Secret whose `ca.crt` checks them (the CRD refuses the request without
/// one; this keeps the builders safe with an API server that skipped it).
pub fn client_authentication(spec: &BrokerClusterSpec) -> bool {
    spec.tls.client_authentication && secret(spec).is_some()
}

/// Path of a file of the mounted Secret.
pub fn file(key: &str) -> String {
    format!("{TLS_DIR}/{key}")
}

/// The Secret's volume, when there is one. The files are readable by the
/// pods' group only (the kubelet gives the volume the pods' `fsGroup`).
pub fn volume(spec: &BrokerClusterSpec) -> Option<Volume> {
    secret(spec).map(|name| Volume {
        name: TLS_VOLUME.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(name.to_owned()),
            default_mode: Some(0o440),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// The read-only mount of [`volume`]. A whole-volume mount (no `subPath`),
/// so the kubelet updates the files when the Secret changes.
pub fn mount(spec: &BrokerClusterSpec) -> Option<VolumeMount> {
    secret(spec).map(|_| VolumeMount {
        name: TLS_VOLUME.to_owned(),
        mount_path: TLS_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    })
}
