//! [`Credentials`]: signing requests the way the RocketMQ 5 SDKs do, for a
//! broker with authentication on.
//!
//! Every request carries `x-mq-date-time: yyyyMMddTHHmmssZ` (UTC now) and
//! `authorization: MQv2-HMAC-SHA1 Credential=<access key>,
//! SignedHeaders=x-mq-date-time, Signature=<hex HMAC-SHA1(secret key,
//! date)>`. The broker refuses a date too far from its clock, so a captured
//! request cannot be replayed later.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::ClientError;

/// The header holding the signature.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// The header holding the signed date.
pub const DATE_TIME_HEADER: &str = "x-mq-date-time";

/// A user's access key and secret key. Its `Debug` never shows the
/// secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Checks that both keys are non-empty printable ASCII without spaces
    /// or commas (they go into a header).
    pub fn new(
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self, ClientError> {
        let (access_key, secret_key) = (access_key.into(), secret_key.into());
        let fits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !fits(&access_key) {
            return Err(ClientError::InvalidArgument(format!(
                "access key `{access_key}`: printable characters without spaces or commas"
            )));
        }
        if !fits(&secret_key) {
            return Err(ClientError::InvalidArgument(
                "the secret key must be printable characters without spaces or commas".into(),
            ));
        }
        Ok(Self {
            access_key,
            secret_key,
        })
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Puts the date and signature of a request made at `now` into `md`.
    pub(crate) fn sign(&self, md: &mut MetadataMap, now: SystemTime) {
        let date = date_time(now);
        let header = format!(
            "MQv2-HMAC-SHA1 Credential={}, SignedHeaders={DATE_TIME_HEADER}, Signature={}",
            self.access_key,
            signature(&self.secret_key, &date)
        );
        // Both are ASCII: checked by `new`, made by `date_time`.
        if let (Ok(h), Ok(d)) = (
            MetadataValue::try_from(header.as_str()),
            MetadataValue::try_from(date.as_str()),
        ) {
            md.insert(AUTHORIZATION_HEADER, h);
            md.insert(DATE_TIME_HEADER, d);
        }
    }
}

/// Upper-case hex HMAC-SHA1 of `date_time` under `secret`.
fn signature(secret: &str, date_time: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(date_time.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `now` as `yyyyMMddTHHmmssZ` in UTC.
fn date_time(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn signatures_match_the_brokers() {
        // What tern-broker's auth::sign::signature gives for the same
        // secret key and date (and any HMAC-SHA1).
        assert_eq!(
            signature("app-secret", "20261203T211530Z"),
            "90E49B4B984E9C922EE88650351A9CC271BFADA9"
        );
    }

    #[test]
    fn dates_are_utc_in_the_sdks_format() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(date_time(at(0)), "19700101T000000Z");
        assert_eq!(date_time(at(1_796_332_530)), "20261203T211530Z");
        assert_eq!(date_time(at(1_709_251_199)), "20240229T235959Z");
        assert_eq!(date_time(at(1_709_251_200)), "20240301T000000Z");
    }

    #[test]
    fn requests_carry_the_date_and_its_signature() {
        let c = Credentials::new("app", "app-secret").unwrap();
        let mut md = MetadataMap::new();
        c.sign(&mut md, UNIX_EPOCH + Duration::from_secs(1_796_332_530));
        assert_eq!(md.get(DATE_TIME_HEADER).unwrap(), "20261203T211530Z");
        assert_eq!(
            md.get(AUTHORIZATION_HEADER).unwrap(),
            "MQv2-HMAC-SHA1 Credential=app, SignedHeaders=x-mq-date-time, \
             Signature=90E49B4B984E9C922EE88650351A9CC271BFADA9"
        );
        assert!(!format!("{c:?}").contains("app-secret"));
    }

    #[test]
    fn keys_are_checked() {
        assert!(Credentials::new("", "secret").is_err());
        assert!(Credentials::new("a b", "secret").is_err());
        assert!(Credentials::new("app", "").is_err());
        assert!(Credentials::new("app", "has,comma").is_err());
        assert!(Credentials::new("app", "sécret").is_err());
    }
}
