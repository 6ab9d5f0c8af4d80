//! The request-check settings of `tern standalone` and `tern broker`:
//! `--auth-*` flags, `TERN_AUTH_*` variables and an `[auth]` table.

use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use tern_broker::AuthConfig;

/// `--help` heading of the authentication options.
const AUTH: &str = "Authentication options";

/// The `--auth-*` flags.
#[derive(Debug, Default, Args)]
pub struct AuthArgs {
    /// Check every request: it must be signed with the access key and
    /// secret key of a user (the SDKs' credentials), and the user's
    /// policies must allow what it does [default: off]
    #[arg(long, env = "TERN_AUTH_ENABLED", help_heading = AUTH)]
    pub auth_enabled: bool,

    /// Access key of a super user made (or whose secret key is set) at
    /// start; with --auth-bootstrap-secret-key [default: none]
    #[arg(long, value_name = "KEY", env = "TERN_AUTH_BOOTSTRAP_ACCESS_KEY", help_heading = AUTH)]
    pub auth_bootstrap_access_key: Option<String>,

    /// Secret key of the bootstrap super user (prefer the environment
    /// variable: a flag shows in the process list)
    #[arg(
        long,
        value_name = "SECRET",
        env = "TERN_AUTH_BOOTSTRAP_SECRET_KEY",
        hide_env_values = true,
        help_heading = AUTH
    )]
    pub auth_bootstrap_secret_key: Option<String>,

    /// Largest difference in seconds between a request's signed date and
    /// the broker's clock; older requests are refused as replays
    /// [default: 900]
    #[arg(long, value_name = "SECS", env = "TERN_AUTH_MAX_SKEW_SECS", help_heading = AUTH)]
    pub auth_max_skew_secs: Option<u64>,
}

/// The `[auth]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFile {
    pub enabled: Option<bool>,
    pub bootstrap_access_key: Option<String>,
    pub bootstrap_secret_key: Option<String>,
    pub max_skew_secs: Option<u64>,
}

impl AuthArgs {
    /// Flags and environment over `file` over the defaults.
    pub(crate) fn resolve(self, file: &AuthFile) -> anyhow::Result<AuthConfig> {
        let mut cfg = AuthConfig {
            enabled: self.auth_enabled || file.enabled.unwrap_or(false),
            ..AuthConfig::default()
        };
        let key = self
            .auth_bootstrap_access_key
            .or_else(|| file.bootstrap_access_key.clone());
        let secret = self
            .auth_bootstrap_secret_key
            .or_else(|| file.bootstrap_secret_key.clone());
        cfg.bootstrap = match (key, secret) {
            (Some(k), Some(s)) => Some((k, s)),
            (None, None) => None,
            _ => anyhow::bail!(
                "auth: the bootstrap access key and secret key go together: set both or neither"
            ),
        };
        if let Some(secs) = self.auth_max_skew_secs.or(file.max_skew_secs) {
            anyhow::ensure!(secs > 0, "auth max_skew_secs must be at least 1");
            cfg.max_skew = Duration::from_secs(secs);
        }
        Ok(cfg)
    }
}
