//! `auto_renew`: a push consumer's messages stay invisible while it is
//! alive, even past their invisibility, and come back once it leaves.

use std::time::{Duration, Instant};

use tern_protocol::v2::settings::PubSub;
use tern_protocol::v2::telemetry_command::Command;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::*;

/// Invisibility of auto-renewed deliveries in these tests.
const PERIOD: Duration = Duration::from_secs(2);

async fn server() -> Server {
    Server::start_with(|cfg| cfg.auto_renew_invisible = PERIOD).await
}

/// Opens client `id`'s Telemetry stream as a push consumer of `group`;
/// it stays open until the returned sender is dropped.
async fn telemetry(c: &mut Client, id: &str, group: &str) -> mpsc::Sender<TelemetryCommand> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(Settings {
            client_type: Some(ClientType::PushConsumer as i32),
            pub_sub: Some(PubSub::Subscription(Subscription {
                group: res(group),
                ..Default::default()
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut replies = c
        .telemetry(req_as(ReceiverStream::new(rx), id, "JAVA"))
        .await
        .unwrap()
        .into_inner();
    let first = replies.message().await.unwrap().unwrap();
    assert_eq!(code(first.status.as_ref()), 20000);
    // Keep reading so the stream stays healthy.
    tokio::spawn(async move { while let Ok(Some(_)) = replies.message().await {} });
    tx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewed_until_the_client_terminates() {
    let server = server().await;
    server.create_topic("push", 1).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    assert_eq!(
        send(&mut a, "push", &[(0, "x"), (0, "y")]).await,
        vec![20000; 2]
    );
    let stream = telemetry(&mut a, "push-a", "pg").await;

    let (status, got) = receive_as(&mut a, "push-a", "pg", "push", None, true, 5_000, None).await;
    assert_eq!((status, got.len()), (Code::Ok as i32, 2));
    let inv = got[0]
        .system_properties
        .as_ref()
        .unwrap()
        .invisible_duration
        .unwrap();
    assert!(
        inv.seconds <= 2,
        "auto-renew lease is the configured period, not {inv:?}"
    );

    // Past the lease: still invisible, and the original handle still acks.
    tokio::time::sleep(PERIOD + Duration::from_millis(1_500)).await;
    let ack = c_ack(&mut a, "pg", "push", &handle(&got[0])).await;
    assert_eq!(ack, 20000);
    let (status, none) = receive_as(
        &mut b,
        "push-b",
        "pg",
        "push",
        Some(10_000),
        false,
        5_000,
        None,
    )
    .await;
    assert_eq!((status, none.len()), (Code::MessageNotFound as i32, 0));

    // The client leaves: its remaining message comes back.
    a.notify_client_termination(req_as(
        NotifyClientTerminationRequest { group: res("pg") },
        "push-a",
        "JAVA",
    ))
    .await
    .unwrap();
    drop(stream);
    let started = Instant::now();
    let (status, back) = receive_as(
        &mut b,
        "push-b",
        "pg",
        "push",
        Some(10_000),
        false,
        10_000,
        None,
    )
    .await;
    assert_eq!((status, back.len()), (Code::Ok as i32, 1));
    assert_eq!(attempt(&back[0]), 2);
    assert_eq!(offset(&back[0]), offset(&got[1]));
    assert!(started.elapsed() < PERIOD + Duration::from_secs(2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewal_stops_when_the_client_vanishes() {
    let server = server().await;
    server.create_topic("vanish", 1).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    assert_eq!(send(&mut a, "vanish", &[(0, "x")]).await, vec![20000]);
    let stream = telemetry(&mut a, "push-a", "vg").await;
    let (_, got) = receive_as(&mut a, "push-a", "vg", "vanish", None, true, 5_000, None).await;
    assert_eq!(got.len(), 1);
    // The client is gone without a word: its Telemetry stream closes and
    // no heartbeat follows.
    drop(stream);
    drop(a);
    let started = Instant::now();
    let (status, back) = receive_as(
        &mut b,
        "push-b",
        "vg",
        "vanish",
        Some(10_000),
        false,
        15_000,
        None,
    )
    .await;
    assert_eq!((status, back.len()), (Code::Ok as i32, 1));
    assert_eq!(attempt(&back[0]), 2);
    // Liveness grace (half a period) plus at most one period of lease.
    assert!(
        started.elapsed() < PERIOD * 3,
        "came back after {:?}",
        started.elapsed()
    );
    server.stop().await;
}

async fn c_ack(c: &mut Client, group: &str, topic: &str, handle: &str) -> i32 {
    let r = c
        .ack_message(req_as(
            AckMessageRequest {
                group: res(group),
                topic: res(topic),
                entries: vec![AckMessageEntry {
                    message_id: String::new(),
                    receipt_handle: handle.to_owned(),
                    lite_topic: None,
                }],
            },
            "push-a",
            "JAVA",
        ))
        .await
        .unwrap()
        .into_inner();
    code(r.entries[0].status.as_ref())
}
