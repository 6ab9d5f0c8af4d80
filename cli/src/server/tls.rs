//! The TLS settings every server command takes: `--tls-*` flags,
//! `TERN_TLS_*` variables and a `[tls]` table in the configuration file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Deserialize;
use tern_tls::{ServerTlsConfig, TlsMode};

/// `--help` heading of the TLS options.
const TLS: &str = "TLS options";

/// Which connections the gRPC port serves, as chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Plaintext only
    Disabled,
    /// TLS and plaintext on the same port, told apart by the first byte
    Permissive,
    /// TLS only: plaintext calls are refused with UNAUTHENTICATED
    Enforcing,
}

impl From<Mode> for TlsMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Disabled => Self::Disabled,
            Mode::Permissive => Self::Permissive,
            Mode::Enforcing => Self::Enforcing,
        }
    }
}

/// The TLS flags of `tern standalone`, `tern broker` and `tern nameserver`.
#[derive(Debug, Default, Args)]
pub struct TlsArgs {
    /// Which connections the gRPC port serves: `disabled` (plaintext),
    /// `permissive` (TLS and plaintext on the same port) or `enforcing`
    /// (TLS only) [default: permissive]
    #[arg(long, value_enum, env = "TERN_TLS_MODE", help_heading = TLS)]
    pub tls_mode: Option<Mode>,

    /// PEM certificate chain served to TLS clients, read again when it
    /// changes; with --tls-key-file. Without both, a certificate is
    /// generated at start, signed by a CA kept in DATA_DIR/tls/ca.crt
    /// (trust that file, or skip verification) [default: generated]
    #[arg(long, value_name = "FILE", env = "TERN_TLS_CERT_FILE", help_heading = TLS)]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --tls-cert-file
    #[arg(long, value_name = "FILE", env = "TERN_TLS_KEY_FILE", help_heading = TLS)]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA certificates: TLS clients must present a certificate signed
    /// by one of them (mutual TLS) [default: no client certificates]
    #[arg(long, value_name = "FILE", env = "TERN_TLS_CLIENT_CA_FILE", help_heading = TLS)]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Seconds between reads of the certificate and key files; a changed
    /// pair is served to new connections [default: 10]
    #[arg(long, value_name = "SECS", env = "TERN_TLS_RELOAD_SECS", help_heading = TLS)]
    pub tls_reload_secs: Option<u64>,
}

/// The `[tls]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub mode: Option<TlsMode>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    pub reload_secs: Option<u64>,
}

impl TlsArgs {
    /// Flags and environment over `file` over the defaults.
    pub(crate) fn resolve(self, file: &TlsFile) -> anyhow::Result<ServerTlsConfig> {
        let mut cfg = ServerTlsConfig::default();
        if let Some(mode) = self.tls_mode.map(Into::into).or(file.mode) {
            cfg.mode = mode;
        }
        cfg.cert_file = self.tls_cert_file.or_else(|| file.cert_file.clone());
        cfg.key_file = self.tls_key_file.or_else(|| file.key_file.clone());
        anyhow::ensure!(
            cfg.cert_file.is_some() == cfg.key_file.is_some(),
            "tls: a certificate file and a key file go together: set both or neither"
        );
        cfg.client_ca_file = self
            .tls_client_ca_file
            .or_else(|| file.client_ca_file.clone());
        if let Some(secs) = self.tls_reload_secs.or(file.reload_secs) {
            anyhow::ensure!(secs > 0, "tls reload_secs must be at least 1");
            cfg.reload_interval = Duration::from_secs(secs);
        }
        if cfg.mode == TlsMode::Disabled
            && (cfg.cert_file.is_some() || cfg.client_ca_file.is_some())
        {
            anyhow::bail!("tls: certificate files are set but the TLS mode is disabled");
        }
        Ok(cfg)
    }
}
