//! QueryAssignment for push consumers: one any-queue assignment for a
//! normal group, one per queue for a FIFO group.

use tern_protocol::admin::{CreateGroupRequest, Group};

use super::*;

async fn assignments(c: &mut Client, topic: &str, group: &str) -> (i32, Vec<i32>) {
    let r = c
        .query_assignment(req(QueryAssignmentRequest {
            topic: res(topic),
            group: res(group),
            endpoints: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let ids = r
        .assignments
        .iter()
        .map(|a| a.message_queue.as_ref().unwrap().id)
        .collect();
    (code(r.status.as_ref()), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn normal_and_fifo_groups() {
    let server = Server::start().await;
    server.create_topic("assigned", 3).await;
    server
        .admin()
        .await
        .create_group(CreateGroupRequest {
            group: Some(Group {
                name: "ordered".into(),
                fifo: true,
                max_retries: 0,
            }),
        })
        .await
        .unwrap();
    let mut c = server.client().await;
    assert_eq!(
        assignments(&mut c, "assigned", "plain").await,
        (20000, vec![-1])
    );
    assert_eq!(
        assignments(&mut c, "assigned", "ordered").await,
        (20000, vec![0, 1, 2])
    );
    assert_eq!(
        assignments(&mut c, "missing", "plain").await.0,
        Code::TopicNotFound as i32
    );
    server.stop().await;
}
