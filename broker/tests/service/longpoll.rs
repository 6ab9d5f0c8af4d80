//! Long polling: a waiting receive wakes when a message arrives or an
//! in-flight one becomes visible again, and the polling time follows the
//! client's deadline.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receive_wakes_on_send() {
    let server = Server::start().await;
    server.create_topic("wake", 2).await;
    let mut waiter = server.client().await;
    let mut sender = server.client().await;
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        receive_as(
            &mut waiter,
            "w",
            "g",
            "wake",
            Some(30_000),
            false,
            15_000,
            None,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the receive did not wait");
    assert_eq!(send(&mut sender, "wake", &[(1, "a")]).await, vec![20000]);
    let (status, got) = waiting.await.unwrap();
    let took = started.elapsed();
    assert_eq!((status, got.len()), (Code::Ok as i32, 1));
    // Woken by the send, well before the 15 s polling time.
    assert!(took < Duration::from_secs(5), "woke after {took:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receive_wakes_when_invisibility_ends() {
    let server = Server::start().await;
    server.create_topic("again", 1).await;
    let mut c = server.client().await;
    assert_eq!(send(&mut c, "again", &[(0, "a")]).await, vec![20000]);
    let (_, first) = receive_as(&mut c, "w", "g", "again", Some(1_500), false, 5_000, None).await;
    assert_eq!(first.len(), 1);
    let started = Instant::now();
    let (status, again) =
        receive_as(&mut c, "w", "g", "again", Some(30_000), false, 15_000, None).await;
    let took = started.elapsed();
    assert_eq!((status, again.len()), (Code::Ok as i32, 1));
    assert_eq!(attempt(&again[0]), 2);
    assert!(took < Duration::from_secs(5), "redelivered after {took:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deadline_too_short_for_polling() {
    let server = Server::start().await;
    server.create_topic("short", 1).await;
    let mut c = server.client().await;
    let (status, got) = receive_as(
        &mut c,
        "w",
        "g",
        "short",
        Some(30_000),
        false,
        20_000,
        Some(Duration::from_secs(3)),
    )
    .await;
    assert_eq!((status, got.len()), (Code::IllegalPollingTime as i32, 0));
    // Enough deadline: polling is cut to it and answers before it ends.
    let started = Instant::now();
    let (status, _) = receive_as(
        &mut c,
        "w",
        "g",
        "short",
        Some(30_000),
        false,
        20_000,
        Some(Duration::from_secs(7)),
    )
    .await;
    assert_eq!(status, Code::MessageNotFound as i32);
    assert!(started.elapsed() < Duration::from_secs(7));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_ends_long_polls_and_finishes() {
    let server = Server::start().await;
    server.create_topic("closing", 1).await;
    let mut c = server.client().await;
    let waiting = tokio::spawn(async move {
        receive_as(
            &mut c,
            "w",
            "g",
            "closing",
            Some(30_000),
            false,
            20_000,
            None,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    // Graceful: the open long poll is answered, then the store closes.
    server.stop().await;
    let (status, got) = waiting.await.unwrap();
    assert_eq!((status, got.len()), (Code::MessageNotFound as i32, 0));
    assert!(started.elapsed() < Duration::from_secs(5));
}
