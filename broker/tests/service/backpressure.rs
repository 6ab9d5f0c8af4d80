//! Back-pressure: when the store is behind, sends are refused at once with
//! TOO_MANY_REQUESTS instead of waiting.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_while_too_much_is_unflushed() {
    let server = Server::start_with(|cfg| {
        // The flusher only runs once a minute: the first send stays
        // unflushed and is over the tiny limit.
        cfg.store.flush_interval = Duration::from_secs(60);
        cfg.store.flush_dirty_bytes = u64::MAX;
        cfg.max_unflushed_bytes = 1;
    })
    .await;
    server.create_topic("bp", 1).await;
    let mut c = server.client().await;
    assert_eq!(send(&mut c, "bp", &[(0, "a")]).await, vec![20000]);
    let started = Instant::now();
    let r = c
        .send_message(req_as(
            SendMessageRequest {
                messages: vec![msg("bp", 0, "second", b"more")],
            },
            "p",
            "RUST",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refusal was not prompt"
    );
    assert_eq!(code(r.status.as_ref()), Code::TooManyRequests as i32);
    assert_eq!(
        code(r.entries[0].status.as_ref()),
        Code::TooManyRequests as i32
    );
    // Nothing of the refused send was stored.
    let (status, got) = receive(&mut c, "bp", 30_000, 5_000).await;
    assert_eq!((status, got.len()), (Code::Ok as i32, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_while_too_many_sends_wait() {
    let server = Server::start_with(|cfg| cfg.max_pending_sends = 0).await;
    server.create_topic("bp2", 1).await;
    let mut c = server.client().await;
    assert_eq!(
        send(&mut c, "bp2", &[(0, "a"), (0, "b")]).await,
        vec![42900; 2]
    );
    server.stop().await;
}
