//! The RocketMQ 5 SDKs' request signature: the `authorization` header
//! `MQv2-HMAC-SHA1 Credential=<access key>[/...], SignedHeaders=x-mq-date-time,
//! Signature=<hex HMAC-SHA1(secret key, x-mq-date-time)>`, and the
//! `x-mq-date-time` it signs (`yyyyMMdd'T'HHmmss'Z'`, or RFC 3339 from the
//! Rust SDK).

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

/// The only algorithm the SDKs use.
const ALGORITHM: &str = "MQv2-HMAC-SHA1";

/// The parts of an `authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Signed<'a> {
    /// The access key (the credential up to its first `/`).
    pub access_key: &'a str,
    /// The signature's bytes.
    pub signature: Vec<u8>,
}

/// Parses an `authorization` header; `Ok(None)` when it names no access
/// key (the Python SDK sends one with an empty credential when it has
/// none), `Err` with the reason when it is malformed.
pub(crate) fn parse(header: &str) -> Result<Option<Signed<'_>>, &'static str> {
    let rest = header
        .trim()
        .strip_prefix(ALGORITHM)
        .ok_or("the authorization header does not start with MQv2-HMAC-SHA1")?;
    let (mut credential, mut signature, mut signed_headers) = (None, None, None);
    for part in rest.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "Credential" => credential = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            _ => {}
        }
    }
    let access_key = credential.unwrap_or("").split('/').next().unwrap_or("");
    if access_key.is_empty() {
        return Ok(None);
    }
    if signed_headers.is_some_and(|h| !h.eq_ignore_ascii_case("x-mq-date-time")) {
        return Err("the signature must sign x-mq-date-time");
    }
    let signature = decode_hex(signature.ok_or("the authorization header has no Signature")?)
        .ok_or("the Signature is not hexadecimal")?;
    Ok(Some(Signed {
        access_key,
        signature,
    }))
}

/// Whether `signature` is HMAC-SHA1 of `date_time` under `secret`
/// (compared in constant time).
pub(crate) fn verify(secret: &str, date_time: &str, signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(date_time.as_bytes());
    mac.verify_slice(signature).is_ok()
}

/// The hex signature the SDKs send for `date_time` under `secret` (tests
/// and the Tern client).
pub fn signature(secret: &str, date_time: &str) -> String {
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

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Seconds since the Unix epoch of an `x-mq-date-time` value: the SDKs'
/// `20261203T211530Z`, or RFC 3339 (`2026-12-03T21:15:30.123+08:00`).
pub(crate) fn parse_date_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() == 16 && b[8] == b'T' && b[15] == b'Z' {
        return civil(
            num(0, 4)?,
            num(4, 2)?,
            num(6, 2)?,
            num(9, 2)?,
            num(11, 2)?,
            num(13, 2)?,
        );
    }
    // RFC 3339.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let local = civil(
        num(0, 4)?,
        num(5, 2)?,
        num(8, 2)?,
        num(11, 2)?,
        num(14, 2)?,
        num(17, 2)?,
    )?;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest[1..].split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    Some(local - offset)
}

/// Seconds since the epoch of a UTC calendar time; `None` when a field is
/// out of range.
fn civil(year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 (the proleptic Gregorian calendar, shifted so
    // the year starts in March).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_each_sdk_sends_them() {
        let sig = signature("secret", "20261203T211530Z");
        let java =
            format!("MQv2-HMAC-SHA1 Credential=ak, SignedHeaders=x-mq-date-time, Signature={sig}");
        let parsed = parse(&java).unwrap().unwrap();
        assert_eq!(parsed.access_key, "ak");
        assert!(verify("secret", "20261203T211530Z", &parsed.signature));
        assert!(!verify("other", "20261203T211530Z", &parsed.signature));
        assert!(!verify("secret", "20261203T211531Z", &parsed.signature));
        // Go appends a scope to the credential; lower-case hex is fine.
        let go = format!(
            "MQv2-HMAC-SHA1 Credential=ak//Rocketmq, SignedHeaders=x-mq-date-time, Signature={}",
            sig.to_lowercase()
        );
        let parsed = parse(&go).unwrap().unwrap();
        assert_eq!(parsed.access_key, "ak");
        assert!(verify("secret", "20261203T211530Z", &parsed.signature));
        // Python without credentials.
        let none = "MQv2-HMAC-SHA1 Credential=, SignedHeaders=x-mq-date-time, Signature=";
        assert_eq!(parse(none), Ok(None));
        assert!(parse("Basic abc").is_err());
        assert!(parse("MQv2-HMAC-SHA1 Credential=ak, Signature=xyz").is_err());
        assert!(parse("MQv2-HMAC-SHA1 Credential=ak").is_err());
    }

    #[test]
    fn dates_of_both_formats() {
        // 2026-12-03T21:15:30Z
        let t = 1_796_332_530;
        assert_eq!(parse_date_time("20261203T211530Z"), Some(t));
        assert_eq!(parse_date_time("2026-12-03T21:15:30Z"), Some(t));
        assert_eq!(parse_date_time("2026-12-03T21:15:30.123456Z"), Some(t));
        assert_eq!(parse_date_time("2026-12-04T05:15:30.5+08:00"), Some(t));
        assert_eq!(parse_date_time("2026-12-03T20:15:30-01:00"), Some(t));
        assert_eq!(parse_date_time("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "",
            "2026",
            "20261303T211530Z",
            "2026-12-03 21:15",
            "2026-12-03T21:15:30+8",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// Fuzzing: any header and date a client sends is parsed or
        /// refused, never a panic; a signature checks only with its key.
        #[test]
        fn fuzz_authorization_headers_and_dates(
            header in "\\PC{0,200}",
            signed in "MQv2-HMAC-SHA1 (Credential=[a-z/]{0,12}|Signature=[0-9A-Fa-f]{0,44}|SignedHeaders=[a-z-]{0,16}|, ){0,6}",
            date in "[0-9T:+.Z -]{0,40}",
        ) {
            let _ = parse(&header);
            if let Ok(Some(s)) = parse(&signed) {
                proptest::prop_assert!(!verify("secret", &date, &s.signature) || s.signature.len() == 20);
            }
            let _ = parse_date_time(&date);
            let _ = parse_date_time(&header);
        }
    }
}
