//! The HTTP port: /healthz, /readyz and /metrics, scraped over real TCP.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A free local port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path`: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// The value of the sample line that starts with `series ` (a metric
/// name with its labels), if any.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_move_with_sends_and_receives() {
    let port = free_port();
    let server = Server::start_with(move |cfg| {
        cfg.metrics_listen = Some(format!("127.0.0.1:{port}"));
    })
    .await;
    // The HTTP port may come up a moment after the gRPC one.
    let mut tries = 0;
    let health = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => break get(port, "/healthz").await,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("metrics port never opened: {e}"),
        }
    };
    assert_eq!(health.0, 200);
    assert_eq!(get(port, "/readyz").await.0, 200);
    assert_eq!(get(port, "/nope").await.0, 404);

    server.create_topic("m", 1).await;
    let mut c = server.client().await;
    let (_, page) = get(port, "/metrics").await;
    assert_eq!(value(&page, r#"tern_messages_in_total{topic="m"}"#), None);

    assert_eq!(
        send(&mut c, "m", &[(0, "a"), (0, "b"), (0, "c")]).await,
        vec![20000; 3]
    );
    let (_, got) = receive(&mut c, "m", 30_000, 5_000).await;
    assert_eq!(got.len(), 3);
    let body_bytes: usize = got.iter().map(|m| m.body.len()).sum();
    // Ack the last one only: the committed offset stays at 0.
    assert_eq!(ack(&mut c, "m", &[handle(&got[2])]).await, vec![20000]);

    let (status, page) = get(port, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        value(&page, r#"tern_messages_in_total{topic="m"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(&page, r#"tern_message_in_bytes_total{topic="m"}"#),
        Some(body_bytes as f64)
    );
    assert_eq!(
        value(&page, r#"tern_messages_out_total{group="g1",topic="m"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(
            &page,
            r#"tern_message_out_bytes_total{group="g1",topic="m"}"#
        ),
        Some(body_bytes as f64)
    );
    assert_eq!(
        value(&page, r#"tern_consumer_lag{group="g1",topic="m"}"#),
        Some(3.0)
    );
    // The admin API agrees, though nothing was committed to the store yet.
    let described = server
        .admin()
        .await
        .describe_group(tern_protocol::admin::DescribeGroupRequest { name: "g1".into() })
        .await
        .unwrap()
        .into_inner();
    let q = &described.topics[0].queues[0];
    assert_eq!((q.lag, q.consumer_offset, q.inflight), (3, Some(0), 2));
    assert_eq!(value(&page, "tern_append_latency_seconds_count"), Some(1.0));
    assert!(value(&page, "tern_store_log_bytes").unwrap() > 0.0);
    assert!(page.contains("tern_flush_latency_seconds_bucket"));
    assert!(page.contains("tern_disk_usage_ratio"));

    // Acking the rest brings the lag to 0; the flusher has run by now.
    assert_eq!(
        ack(&mut c, "m", &[handle(&got[0]), handle(&got[1])]).await,
        vec![20000; 2]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, page) = get(port, "/metrics").await;
    assert_eq!(
        value(&page, r#"tern_consumer_lag{group="g1",topic="m"}"#),
        Some(0.0)
    );
    assert!(value(&page, "tern_flush_latency_seconds_count").unwrap() >= 1.0);
    assert!(value(&page, "tern_flushed_bytes_total").unwrap() > 0.0);
    server.stop().await;
}
