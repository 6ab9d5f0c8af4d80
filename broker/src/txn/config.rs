//! [`TransactionConfig`]: when unresolved half messages are checked and
//! how they end when nobody answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a half message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Delivered to its topic.
    Commit,
    /// Discarded: never delivered.
    Rollback,
}

impl Resolution {
    /// `commit` or `rollback`, as logs and configuration spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Rollback => "rollback",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "commit" => Ok(Self::Commit),
            "rollback" => Ok(Self::Rollback),
            other => Err(format!(
                "unknown transaction resolution {other:?}: commit or rollback"
            )),
        }
    }
}

/// Checks of unresolved half messages. A half message neither committed
/// nor rolled back is checked `first_check` after it was stored, then
/// every `check_interval`: the broker asks a live producer of its topic
/// (on that producer's Telemetry stream) to resolve it. After
/// `max_checks` checks without an answer it ends by
/// `default_resolution`, which is logged and counted. A check counts
/// whether or not a producer of the topic was connected to ask, so every
/// half message ends within `first_check + max_checks * check_interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionConfig {
    /// From the half message's store time to its first check. Default
    /// 6 s. Serialized as `first_check_ms`.
    #[serde(rename = "first_check_ms", with = "millis")]
    pub first_check: Duration,
    /// Between two checks. Default 30 s. Serialized as
    /// `check_interval_ms`.
    #[serde(rename = "check_interval_ms", with = "millis")]
    pub check_interval: Duration,
    /// Checks before the default resolution applies. Default 15.
    pub max_checks: u32,
    /// How a half message ends after `max_checks` unanswered checks.
    /// Default rollback.
    pub default_resolution: Resolution,
}

impl TransactionConfig {
    /// Default [`TransactionConfig::first_check`].
    pub const DEFAULT_FIRST_CHECK: Duration = Duration::from_secs(6);
    /// Default [`TransactionConfig::check_interval`].
    pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(30);
    /// Default [`TransactionConfig::max_checks`].
    pub const DEFAULT_MAX_CHECKS: u32 = 15;
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            first_check: Self::DEFAULT_FIRST_CHECK,
            check_interval: Self::DEFAULT_CHECK_INTERVAL,
            max_checks: Self::DEFAULT_MAX_CHECKS,
            default_resolution: Resolution::Rollback,
        }
    }
}

/// A [`Duration`] as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_fill_what_is_missing_and_round_trip() {
        let cfg: TransactionConfig =
            serde_json::from_str(r#"{"first_check_ms": 1500, "default_resolution": "commit"}"#)
                .unwrap();
        assert_eq!(cfg.first_check, Duration::from_millis(1500));
        assert_eq!(cfg.check_interval, Duration::from_secs(30));
        assert_eq!(cfg.max_checks, 15);
        assert_eq!(cfg.default_resolution, Resolution::Commit);
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            serde_json::from_str::<TransactionConfig>(&text).unwrap(),
            cfg
        );
        assert!(serde_json::from_str::<TransactionConfig>(r#"{"first_check": 1}"#).is_err());
        assert_eq!(
            TransactionConfig::default().first_check,
            Duration::from_secs(6)
        );
    }

    #[test]
    fn resolutions_parse_by_name() {
        assert_eq!("Commit".parse::<Resolution>(), Ok(Resolution::Commit));
        assert_eq!(" rollback".parse::<Resolution>(), Ok(Resolution::Rollback));
        assert!("maybe".parse::<Resolution>().unwrap_err().contains("maybe"));
        assert_eq!(Resolution::Rollback.as_str(), "rollback");
    }
}
