//! Request checks over gRPC against an in-process broker with
//! authentication on: requests signed the way the SDKs sign them pass;
//! a signature dated outside the allowed clock skew (a replayed or
//! pre-made request) is refused, in the past and in the future; both date
//! formats the SDKs send are understood; a refused send stores nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[allow(dead_code, reason = "this test uses part of the shared support")]
mod grpc_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grpc_support::{Server, code, msg, req, res};
use tern_broker::AuthConfig;
use tern_broker::auth::sign::signature;
use tern_protocol::admin::{CreateTopicRequest, DescribeTopicRequest, Topic};
use tern_protocol::v2::{Code, QueryRouteRequest, SendMessageRequest};
use tonic::Request;

const ROOT: &str = "root";
const SECRET: &str = "root-secret-key";

async fn checking_server() -> Server {
    Server::start_with(|cfg| {
        cfg.auth = AuthConfig {
            enabled: true,
            bootstrap: Some((ROOT.into(), SECRET.into())),
            ..AuthConfig::default()
        };
    })
    .await
}

/// `t` as an SDK would send it, signed by `key` with `secret` and dated
/// `date`.
fn signed<T>(t: T, key: &str, secret: &str, date: &str) -> Request<T> {
    let mut r = req(t);
    let header = format!(
        "MQv2-HMAC-SHA1 Credential={key}, SignedHeaders=x-mq-date-time, Signature={}",
        signature(secret, date)
    );
    r.metadata_mut()
        .insert("authorization", header.parse().unwrap());
    r.metadata_mut()
        .insert("x-mq-date-time", date.parse().unwrap());
    r
}

/// `at` as `yyyyMMddTHHmmssZ` (the Java, Go, Python and Node SDKs) or RFC
/// 3339 (the Rust SDK).
fn date(at: SystemTime, rfc3339: bool) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date of a day count (the inverse of days-from-civil).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if rfc3339 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.250Z")
    } else {
        format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }
}

#[tokio::test]
async fn signatures_are_checked_and_dates_must_be_recent() {
    let server = checking_server().await;
    let now = SystemTime::now();
    let today = date(now, false);
    let mut admin = server.admin().await;
    admin
        .create_topic(signed(
            CreateTopicRequest {
                topic: Some(Topic {
                    name: "t".into(),
                    queue_count: 2,
                    ..Default::default()
                }),
            },
            ROOT,
            SECRET,
            &today,
        ))
        .await
        .unwrap();
    let mut client = server.client().await;
    let send = |id: &str| SendMessageRequest {
        messages: vec![msg("t", 0, id, b"x")],
    };
    // Signed now, in either format: stored.
    for (i, d) in [date(now, false), date(now, true)].iter().enumerate() {
        let r = client
            .send_message(signed(send(&format!("ok-{i}")), ROOT, SECRET, d))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(r.status.as_ref()), Code::Ok as i32, "{d}: {r:?}");
    }
    // Twenty minutes off, either way, or unsigned: refused, nothing stored.
    let stale = [
        date(now - Duration::from_secs(20 * 60), false),
        date(now + Duration::from_secs(20 * 60), true),
    ];
    for d in &stale {
        let r = client
            .send_message(signed(send("stale"), ROOT, SECRET, d))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            code(r.status.as_ref()),
            Code::Unauthorized as i32,
            "{d}: {r:?}"
        );
        assert!(r.status.unwrap().message.contains("clock"));
    }
    let r = client
        .send_message(req(send("unsigned")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Unauthorized as i32, "{r:?}");
    // A signature over another date than the one sent.
    let mut forged = signed(send("forged"), ROOT, SECRET, &stale[0]);
    forged
        .metadata_mut()
        .insert("x-mq-date-time", today.parse().unwrap());
    let r = client.send_message(forged).await.unwrap().into_inner();
    assert_eq!(code(r.status.as_ref()), Code::Unauthorized as i32, "{r:?}");
    // Only the two good sends are in the topic.
    let route = client
        .query_route(signed(
            QueryRouteRequest {
                topic: res("t"),
                endpoints: None,
            },
            ROOT,
            SECRET,
            &today,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(route.status.as_ref()), Code::Ok as i32);
    let described = admin
        .describe_topic(signed(
            DescribeTopicRequest { name: "t".into() },
            ROOT,
            SECRET,
            &today,
        ))
        .await
        .unwrap()
        .into_inner();
    let stored: u64 = described.queues.iter().map(|q| q.max_offset).sum();
    assert_eq!(stored, 2, "{described:?}");
    server.stop().await;
}
