//! The TOML configuration files of the brokers and name servers, rendered
//! from the spec with the keys `tern broker --config` and
//! `tern nameserver --config` read.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::names::{BROKER_PORT, HTTP_PORT, NAMESERVER_PORT, Names};
use super::{auth, tls};
use crate::crd::cluster::{BrokerClusterSpec, FlushPolicy, TlsMode};
use crate::error::Result;

/// Where the broker's volume is mounted.
pub const DATA_DIR: &str = "/var/lib/tern";
/// Where the configuration ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/tern";
/// File name of the broker configuration.
pub const BROKER_FILE: &str = "broker.toml";
/// File name of the name server configuration.
pub const NAMESERVER_FILE: &str = "nameserver.toml";

/// Shortest time a name server keeps a broker that stopped sending
/// heartbeats; the broker's own default.
const MIN_BROKER_EXPIRY_SECS: i32 = 120;

#[derive(Serialize)]
struct BrokerFile {
    data_dir: &'static str,
    listen: String,
    advertised_address: String,
    name: String,
    cluster: String,
    nameservers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers_ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers_insecure_skip_verify: Option<bool>,
    flush: &'static str,
    metrics_listen: String,
    heartbeat_interval_secs: i32,
    store: StoreSection,
    tls: TlsSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<AuthSection>,
}

/// The `[auth]` table of a broker with authentication `Acl`. The bootstrap
/// user's keys come from the admin Secret through the environment, never
/// through this file (a ConfigMap).
#[derive(Serialize)]
struct AuthSection {
    enabled: bool,
}

/// The `[tls]` table both files share.
#[derive(Serialize)]
struct TlsSection {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ca_file: Option<String>,
}

impl TlsSection {
    /// The mode; the Secret's files when there is one (re-read every 10 s,
    /// `tern`'s default, so a renewed Secret is served without a restart);
    /// its CA for client certificates when they are asked for.
    fn new(spec: &BrokerClusterSpec) -> Self {
        let secret = tls::secret(spec).is_some();
        Self {
            mode: spec.tls.mode.as_config(),
            cert_file: secret.then(|| tls::file(tls::CERT_KEY)),
            key_file: secret.then(|| tls::file(tls::KEY_KEY)),
            client_ca_file: tls::client_authentication(spec).then(|| tls::file(tls::CA_KEY)),
        }
    }
}

/// How a broker dials the name servers: in plaintext unless they enforce
/// TLS; then checked against the Secret's `ca.crt` when there is a Secret,
/// else unchecked (generated certificates have no CA the broker could know).
struct NameserverDial {
    tls: Option<bool>,
    ca_file: Option<String>,
    insecure_skip_verify: Option<bool>,
}

impl NameserverDial {
    fn new(spec: &BrokerClusterSpec) -> Self {
        if spec.tls.mode != TlsMode::Enforcing {
            return Self {
                tls: None,
                ca_file: None,
                insecure_skip_verify: None,
            };
        }
        let secret = tls::secret(spec).is_some();
        Self {
            tls: Some(true),
            ca_file: secret.then(|| tls::file(tls::CA_KEY)),
            insecure_skip_verify: (!secret).then_some(true),
        }
    }
}

#[derive(Serialize)]
struct StoreSection {
    segment_bytes: i64,
    retention_hours: i32,
    disk_high_water: f64,
    disk_hard_limit: f64,
    max_body_bytes: i64,
}

#[derive(Serialize)]
struct NameserverFile {
    listen: String,
    broker_expiry_secs: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    tls: TlsSection,
}

fn header(names: &Names) -> String {
    format!(
        "# Rendered by the Tern operator from BrokerCluster {}/{}.\n\
         # Edit the BrokerCluster, not this file: the operator overwrites it.\n",
        names.namespace(),
        names.cluster()
    )
}

/// `broker.toml` of broker group `group`.
///
/// The HTTP port is always on: the kubelet probes `/readyz` and `/healthz`
/// on it, whether or not metrics are scraped.
pub fn broker_toml(spec: &BrokerClusterSpec, names: &Names, group: i32) -> Result<String> {
    let config = &spec.broker.config;
    let dial = NameserverDial::new(spec);
    let file = BrokerFile {
        data_dir: DATA_DIR,
        listen: format!("0.0.0.0:{BROKER_PORT}"),
        // One pod per group for now, so the group's pod 0 is the broker.
        advertised_address: names.broker_address(group, 0),
        name: names.broker_group(group),
        cluster: names.cluster().to_owned(),
        nameservers: (0..spec.nameserver.replicas)
            .map(|i| names.nameserver_address(i))
            .collect(),
        nameservers_tls: dial.tls,
        nameservers_ca_file: dial.ca_file,
        nameservers_insecure_skip_verify: dial.insecure_skip_verify,
        flush: match config.flush {
            FlushPolicy::Async => "async",
            FlushPolicy::Sync => "sync",
        },
        metrics_listen: format!("0.0.0.0:{HTTP_PORT}"),
        heartbeat_interval_secs: config.heartbeat_interval_secs,
        store: StoreSection {
            segment_bytes: config.segment_bytes,
            retention_hours: config.retention_hours,
            disk_high_water: config.disk_high_water,
            disk_hard_limit: config.disk_hard_limit,
            max_body_bytes: config.max_body_bytes,
        },
        tls: TlsSection::new(spec),
        auth: auth::enabled(spec).then_some(AuthSection { enabled: true }),
    };
    Ok(header(names) + &toml::to_string(&file)?)
}

/// `nameserver.toml`. A broker expires after four missed heartbeats, and
/// never sooner than the name server's default.
pub fn nameserver_toml(spec: &BrokerClusterSpec, names: &Names) -> Result<String> {
    let heartbeat = spec.broker.config.heartbeat_interval_secs;
    let file = NameserverFile {
        listen: format!("0.0.0.0:{NAMESERVER_PORT}"),
        broker_expiry_secs: heartbeat.saturating_mul(4).max(MIN_BROKER_EXPIRY_SECS),
        metrics_listen: spec.metrics.enabled.then(|| format!("0.0.0.0:{HTTP_PORT}")),
        tls: TlsSection::new(spec),
    };
    Ok(header(names) + &toml::to_string(&file)?)
}

/// A short hex digest of `text`, for annotations.
pub fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::sample_spec;

    #[test]
    fn broker_file_has_the_agreed_keys_and_stable_addresses() {
        let mut spec = sample_spec();
        spec.nameserver.replicas = 3;
        spec.broker.config.flush = FlushPolicy::Sync;
        spec.broker.config.retention_hours = 24;
        let text = broker_toml(&spec, &Names::new("prod", "mq"), 1).expect("renders");
        let v: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(v["listen"].as_str(), Some("0.0.0.0:8081"));
        assert_eq!(
            v["advertised_address"].as_str(),
            Some("prod-broker-1-0.prod-broker-1.mq.svc:8081")
        );
        assert_eq!(v["name"].as_str(), Some("prod-broker-1"));
        assert_eq!(v["cluster"].as_str(), Some("prod"));
        assert_eq!(v["data_dir"].as_str(), Some("/var/lib/tern"));
        assert_eq!(v["flush"].as_str(), Some("sync"));
        assert_eq!(v["metrics_listen"].as_str(), Some("0.0.0.0:8080"));
        let ns: Vec<_> = v["nameservers"]
            .as_array()
            .expect("an array")
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        assert_eq!(
            ns,
            [
                "prod-nameserver-0.prod-nameserver.mq.svc:9876",
                "prod-nameserver-1.prod-nameserver.mq.svc:9876",
                "prod-nameserver-2.prod-nameserver.mq.svc:9876"
            ]
        );
        let store = v["store"].as_table().expect("a [store] table");
        assert_eq!(store["retention_hours"].as_integer(), Some(24));
        assert_eq!(store["disk_high_water"].as_float(), Some(0.85));
        assert_eq!(store["max_body_bytes"].as_integer(), Some(4 * 1024 * 1024));
        assert_eq!(store["segment_bytes"].as_integer(), Some(1 << 30));
    }

    #[test]
    fn broker_http_port_stays_on_when_metrics_are_off() {
        let mut spec = sample_spec();
        spec.metrics.enabled = false;
        let text = broker_toml(&spec, &Names::new("c", "ns"), 0).expect("renders");
        assert!(text.contains("metrics_listen = \"0.0.0.0:8080\""), "{text}");
        let ns = nameserver_toml(&spec, &Names::new("c", "ns")).expect("renders");
        assert!(!ns.contains("metrics_listen"), "{ns}");
    }

    #[test]
    fn nameserver_expiry_follows_the_heartbeat() {
        let mut spec = sample_spec();
        let names = Names::new("c", "ns");
        let v: toml::Table = nameserver_toml(&spec, &names)
            .expect("renders")
            .parse()
            .expect("TOML");
        assert_eq!(v["broker_expiry_secs"].as_integer(), Some(120));
        assert_eq!(v["listen"].as_str(), Some("0.0.0.0:9876"));
        assert_eq!(v["metrics_listen"].as_str(), Some("0.0.0.0:8080"));
        spec.broker.config.heartbeat_interval_secs = 60;
        let v: toml::Table = nameserver_toml(&spec, &names)
            .expect("renders")
            .parse()
            .expect("TOML");
        assert_eq!(v["broker_expiry_secs"].as_integer(), Some(240));
    }

    #[test]
    fn digest_changes_with_the_text() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a").len(), 20);
    }
}
