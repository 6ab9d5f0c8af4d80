//! Configuration files of `tern broker`, `tern standalone` and
//! `tern nameserver`, and the rule that merges them with flags and
//! environment variables.
//!
//! A file is TOML with the keys named like the flags (`data_dir` for
//! `--data-dir`); the broker's storage keys live in a `[store]` table
//! (`--store-segment-bytes` is `segment_bytes` there), its back-pressure
//! and lease keys in `[limits]` (`--limits-max-pending-sends`), its
//! delayed delivery in `[delay]` (`--delay-precision-ms`), its
//! transaction checks in `[transaction]` (`--transaction-max-checks`), TLS
//! in `[tls]` (`--tls-mode` is `mode` there), request checks in `[auth]`. An
//! unknown key is an error that names it, so a typo never goes unnoticed.
//! `tern standalone` reads the broker's file format and refuses its
//! cluster keys ([`BrokerFile::cluster_keys`]).
//!
//! Precedence, highest first: the flag, its `TERN_*` environment variable
//! (clap reads both), the file, the default. Every value here is optional;
//! a key left unset everywhere keeps the default of the config type it
//! lands in (`tern_broker::BrokerConfig`, `tern_store::StoreConfig`,
//! `tern_nameserver::NameserverConfig`) or of `node` and `nameserver` for
//! the data directory and listen addresses; `docs/configuration.md` lists them all.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The keys of a broker's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BrokerFile {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub advertised_address: Option<String>,
    pub name: Option<String>,
    pub cluster: Option<String>,
    pub nameservers: Option<Vec<String>>,
    pub flush: Option<tern_store::FlushPolicy>,
    pub metrics_listen: Option<String>,
    pub heartbeat_interval_secs: Option<u64>,
    pub nameservers_tls: Option<bool>,
    pub nameservers_ca_file: Option<PathBuf>,
    pub nameservers_insecure_skip_verify: Option<bool>,
    pub replica_id: Option<u64>,
    pub replicas: Option<Vec<String>>,
    pub replication_listen: Option<String>,
    pub replication_tls: Option<bool>,
    pub replication_ca_file: Option<PathBuf>,
    pub replication_insecure_skip_verify: Option<bool>,
    #[serde(default)]
    pub store: StoreFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub transaction: TransactionFile,
    #[serde(default)]
    pub delay: DelayFile,
    #[serde(default)]
    pub tls: super::tls::TlsFile,
    #[serde(default)]
    pub auth: super::auth::AuthFile,
}

impl BrokerFile {
    /// The cluster keys set in the file (`tern broker` only), by name.
    pub(crate) fn cluster_keys(&self) -> Vec<&'static str> {
        [
            ("cluster", self.cluster.is_some()),
            ("nameservers", self.nameservers.is_some()),
            (
                "heartbeat_interval_secs",
                self.heartbeat_interval_secs.is_some(),
            ),
            ("nameservers_tls", self.nameservers_tls.is_some()),
            ("nameservers_ca_file", self.nameservers_ca_file.is_some()),
            (
                "nameservers_insecure_skip_verify",
                self.nameservers_insecure_skip_verify.is_some(),
            ),
            ("replica_id", self.replica_id.is_some()),
            ("replicas", self.replicas.is_some()),
            ("replication_listen", self.replication_listen.is_some()),
            ("replication_tls", self.replication_tls.is_some()),
            ("replication_ca_file", self.replication_ca_file.is_some()),
            (
                "replication_insecure_skip_verify",
                self.replication_insecure_skip_verify.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// The `[delay]` table of a broker's configuration file: delayed
/// messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelayFile {
    pub precision_ms: Option<u64>,
    pub max_secs: Option<u64>,
    pub stage_max_bytes: Option<u64>,
}

/// The `[transaction]` table of a broker's configuration file: checks of
/// unresolved half messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransactionFile {
    pub first_check_secs: Option<u64>,
    pub check_interval_secs: Option<u64>,
    pub max_checks: Option<u32>,
    pub default_resolution: Option<tern_broker::txn::Resolution>,
}

/// The `[limits]` table of a broker's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    pub max_unflushed_bytes: Option<u64>,
    pub max_pending_sends: Option<usize>,
    pub max_connections: Option<usize>,
    pub auto_renew_secs: Option<u64>,
    pub dedup_window_secs: Option<u64>,
    pub dedup_max_entries: Option<usize>,
    pub max_topics: Option<usize>,
    pub max_groups: Option<usize>,
}

/// The `[store]` table of a broker's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreFile {
    pub segment_bytes: Option<u64>,
    pub retention_hours: Option<u64>,
    pub disk_high_water: Option<f64>,
    pub disk_hard_limit: Option<f64>,
    pub max_body_bytes: Option<usize>,
}

/// The keys of a name server's configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameserverFile {
    pub listen: Option<String>,
    pub broker_expiry_secs: Option<u64>,
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub tls: super::tls::TlsFile,
}

/// Reads the file at `path`, or the empty configuration without one.
pub(crate) fn load<T: DeserializeOwned + Default>(path: Option<&Path>) -> anyhow::Result<T> {
    let Some(path) = path else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    parse(&text).with_context(|| format!("in the configuration file {}", path.display()))
}

fn parse<T: DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}

/// Checks that `value`, the setting `key`, has the shape `HOST:PORT`.
pub(crate) fn check_address(key: &str, value: &str) -> anyhow::Result<()> {
    super::addr::parse_listen(value).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broker_key_parses() {
        let f: BrokerFile = parse(
            r#"
            data_dir = "/var/lib/tern"
            listen = "0.0.0.0:8081"
            advertised_address = "broker-0.tern:8081"
            name = "broker-0"
            cluster = "prod"
            nameservers = ["ns-0:9876", "ns-1:9876"]
            flush = "sync"
            metrics_listen = "0.0.0.0:9090"
            heartbeat_interval_secs = 10

            [store]
            segment_bytes = 1073741824
            retention_hours = 48
            disk_high_water = 0.8
            disk_hard_limit = 0.9
            max_body_bytes = 1048576

            [limits]
            max_unflushed_bytes = 134217728
            max_pending_sends = 5000
            auto_renew_secs = 30
            dedup_window_secs = 600
            dedup_max_entries = 2000000
            max_topics = 5000
            max_groups = 300

            [transaction]
            first_check_secs = 3
            check_interval_secs = 20
            max_checks = 5
            default_resolution = "commit"
            "#,
        )
        .unwrap();
        assert_eq!(f.nameservers.unwrap().len(), 2);
        assert_eq!(f.flush, Some(tern_store::FlushPolicy::Sync));
        assert_eq!(f.store.retention_hours, Some(48));
        assert_eq!(f.limits.max_pending_sends, Some(5000));
        assert_eq!(f.limits.dedup_window_secs, Some(600));
        assert_eq!(f.limits.dedup_max_entries, Some(2_000_000));
        assert_eq!(f.limits.max_topics, Some(5000));
        assert_eq!(f.limits.max_groups, Some(300));
        assert_eq!(f.transaction.first_check_secs, Some(3));
        assert_eq!(f.transaction.check_interval_secs, Some(20));
        assert_eq!(f.transaction.max_checks, Some(5));
        assert_eq!(
            f.transaction.default_resolution,
            Some(tern_broker::txn::Resolution::Commit)
        );
        let empty: BrokerFile = parse("").unwrap();
        assert!(empty.listen.is_none() && empty.store.segment_bytes.is_none());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse::<BrokerFile>("listen = \"h:1\"\nlisten_addr = \"h:2\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
        let err = parse::<BrokerFile>("[store]\nsegment_size = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment_size"), "{err}");
        let err = parse::<NameserverFile>("broker_expiry = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("broker_expiry"), "{err}");
        assert!(parse::<BrokerFile>("flush = \"sometimes\"\n").is_err());
        assert!(parse::<BrokerFile>("[transaction]\ndefault_resolution = \"maybe\"\n").is_err());
    }
}
