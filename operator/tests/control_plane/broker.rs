//! `Topic` and `ConsumerGroup` resources in a real kube-apiserver, applied
//! by the real `tern-operator` binary to a real `tern standalone` broker on
//! a loopback port (`--admin-endpoint`, as for an operator run outside its
//! cluster). The broker is read and changed behind the operator's back
//! through its own admin API (tern-protocol's generated client, not the
//! operator's adapter): the topic and the group appear with the settings
//! of their resources, drift in the broker is reverted at the next resync,
//! growing the queues reaches the broker, and deleting the resources
//! deletes them from the broker before their finalizers are released.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tern_harness::TernProcess;
use tern_operator::controller::managed::Managed;
use tern_operator::crd::{BrokerCluster, ConsumerGroup, Topic};
use tern_protocol::admin as pb;
use tern_protocol::admin::tern_admin_client::TernAdminClient;
use tonic::transport::Channel;

use super::cluster::{REACT, cluster, http_get, start_operator};
use super::harness::{ControlPlane, eventually, free_ports};

/// Seconds between the operator's comparisons with the broker.
const RESYNC_SECS: u64 = 2;
/// The broker-side topic name (not a valid Kubernetes name: it needs
/// `spec.topicName`).
const TOPIC: &str = "Orders_v1";
/// The broker-side group name (the resource's own name).
const GROUP: &str = "billing";

/// The `tern` binary: `TERN_BIN`, else the one beside `tern-operator` in
/// this build's target folder (whatever `CARGO_TARGET_DIR` was), else what
/// `tern_harness::tern_bin` finds.
pub(super) fn tern_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TERN_BIN") {
        return PathBuf::from(bin);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_tern-operator")).with_file_name("tern");
    if beside.is_file() {
        return beside;
    }
    tern_harness::tern_bin().unwrap_or_else(|e| {
        panic!(
            "no tern binary beside {} either ({e}): run `cargo build -p tern-cli` with the \
             same CARGO_TARGET_DIR as the tests, or set TERN_BIN",
            beside.display()
        )
    })
}

/// The broker's admin API, read and written as a person with the CLI
/// would, independently of the operator.
struct Broker {
    client: TernAdminClient<Channel>,
}

impl Broker {
    async fn connect(endpoint: &str) -> Self {
        let url = format!("http://{endpoint}");
        let client = eventually("the broker's admin API", REACT, || async {
            TernAdminClient::connect(url.clone()).await.ok()
        })
        .await;
        Self { client }
    }

    async fn topic(&self, name: &str) -> Option<pb::Topic> {
        let req = pb::DescribeTopicRequest {
            name: name.to_owned(),
        };
        match self.client.clone().describe_topic(req).await {
            Ok(r) => Some(r.into_inner().topic.expect("DescribeTopic answers a topic")),
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => panic!("DescribeTopic {name}: {s}"),
        }
    }

    async fn group(&self, name: &str) -> Option<pb::Group> {
        let req = pb::DescribeGroupRequest {
            name: name.to_owned(),
        };
        match self.client.clone().describe_group(req).await {
            Ok(r) => Some(r.into_inner().group.expect("DescribeGroup answers a group")),
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => panic!("DescribeGroup {name}: {s}"),
        }
    }

    /// Waits until the broker's topic is `want`.
    async fn wait_topic(&self, what: &str, want: &pb::Topic) {
        eventually(what, REACT, || async {
            (self.topic(&want.name).await.as_ref() == Some(want)).then_some(())
        })
        .await;
    }

    /// Waits until the broker's group is `want`.
    async fn wait_group(&self, what: &str, want: &pb::Group) {
        eventually(what, REACT, || async {
            (self.group(&want.name).await.as_ref() == Some(want)).then_some(())
        })
        .await;
    }
}

fn broker_topic(queues: i32) -> pb::Topic {
    pb::Topic {
        name: TOPIC.to_owned(),
        queue_count: queues,
        message_type: pb::MessageType::Normal.into(),
        permission: pb::Permission::ReadWrite.into(),
    }
}

fn broker_group() -> pb::Group {
    pb::Group {
        name: GROUP.to_owned(),
        fifo: true,
        max_retries: 5,
    }
}

/// Waits until `name`'s status was written for `generation`, `Ready=True`
/// reason `Synced` with one broker group in step, and its finalizer is
/// set; `observed` reads the status's `observedGeneration` and
/// `syncedBrokerGroups`.
async fn wait_synced<K>(
    api: &Api<K>,
    name: &str,
    generation: i64,
    observed: impl Fn(&K) -> Option<(Option<i64>, i32)>,
) -> Condition
where
    K: Managed,
{
    let what = format!("{} {name} Synced at generation {generation}", K::kind(&()));
    eventually(&what, REACT, || async {
        let obj = api.get(name).await.ok()?;
        let ready = obj
            .conditions()
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        let finalized = obj
            .meta()
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == K::FINALIZER));
        let ok = observed(&obj) == Some((Some(generation), 1))
            && ready.observed_generation == Some(generation)
            && (ready.status.as_str(), ready.reason.as_str()) == ("True", "Synced")
            && finalized;
        ok.then_some(ready)
    })
    .await
}

/// Waits for an Event `reason` about `name` whose note contains `note`.
async fn wait_event(events: &Api<Event>, name: &str, reason: &str, note: &str) {
    let what = format!("an Event {reason} about {name} saying {note:?}");
    eventually(&what, REACT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
                    && e.note.as_deref().is_some_and(|n| n.contains(note))
            })
            .then_some(())
    })
    .await;
}

/// The operator's count of finished `controller` reconciles.
async fn reconciles(http: u16, controller: &str) -> f64 {
    let metrics = http_get(http, "/metrics").await;
    let prefix = format!("tern_operator_reconciles_total{{controller=\"{controller}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {controller} reconcile count:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_and_groups_are_applied_to_a_real_broker_kept_in_step_and_deleted() {
    let Some(plane) = ControlPlane::start("the topic and group broker test").await else {
        return;
    };
    plane.install_crds().await;
    plane.namespace("mq").await;

    let [port] = free_ports();
    let endpoint = format!("127.0.0.1:{port}");
    let data = plane.dir().join("broker-data");
    let mut tern =
        TernProcess::standalone_with(tern_binary(), &data, &["--listen", endpoint.as_str()])
            .unwrap_or_else(|e| panic!("starting tern standalone on {endpoint}: {e}"));
    let broker = Broker::connect(&endpoint).await;
    assert_eq!(broker.topic(TOPIC).await, None, "a fresh broker");

    let admin_endpoint = format!("--admin-endpoint={endpoint}");
    let resync = format!("--resync-secs={RESYNC_SECS}");
    let (mut operator, http) = start_operator(
        &plane,
        plane.kubeconfig(),
        &[admin_endpoint.as_str(), resync.as_str()],
    );
    let client = plane.client.clone();
    let post = PostParams::default();
    Api::<BrokerCluster>::namespaced(client.clone(), "mq")
        .create(&post, &cluster("demo", 1))
        .await
        .expect("create the cluster");
    let events: Api<Event> = Api::namespaced(client.clone(), "mq");

    // 1. A Topic becomes a topic in the broker with its queues and type.
    let topics: Api<Topic> = Api::namespaced(client.clone(), "mq");
    let topic: Topic = serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
        "metadata": { "name": "orders" },
        "spec": {
            "clusterRef": { "name": "demo" }, "topicName": TOPIC,
            "queues": 4, "messageType": "Normal",
        },
    }))
    .expect("a Topic");
    topics
        .create(&post, &topic)
        .await
        .expect("create the Topic");
    broker
        .wait_topic("the topic in the broker with 4 queues", &broker_topic(4))
        .await;
    let topic_status = |t: &Topic| {
        let s = t.status.as_ref()?;
        assert_eq!(s.topic_name.as_deref(), Some(TOPIC));
        Some((s.observed_generation, s.synced_broker_groups))
    };
    let ready = wait_synced(&topics, "orders", 1, topic_status).await;
    assert_eq!(ready.message, "in step with 1 broker groups");
    wait_event(&events, "orders", "Created", &endpoint).await;

    // 2. Drift inside the broker is reverted at the next resync.
    let drifted = pb::Topic {
        message_type: pb::MessageType::Fifo.into(),
        permission: pb::Permission::Read.into(),
        ..broker_topic(0)
    };
    // The answer is the topic as stored (reading it again could race the
    // operator's next resync).
    let changed = broker
        .client
        .clone()
        .update_topic(pb::UpdateTopicRequest {
            topic: Some(drifted),
        })
        .await
        .expect("change the topic behind the operator's back")
        .into_inner()
        .topic
        .expect("the stored topic");
    assert_eq!(
        (changed.message_type(), changed.permission()),
        (pb::MessageType::Fifo, pb::Permission::Read),
        "the broker took the drifting change"
    );
    broker
        .wait_topic("the drifted topic restored", &broker_topic(4))
        .await;
    wait_event(&events, "orders", "Updated", "set messageType, permission").await;
    // A topic deleted by hand comes back.
    broker
        .client
        .clone()
        .delete_topic(pb::DeleteTopicRequest {
            name: TOPIC.to_owned(),
        })
        .await
        .expect("delete the topic behind the operator's back");
    broker
        .wait_topic("the deleted topic re-created", &broker_topic(4))
        .await;

    // 3. More queues reach the broker; fewer are refused by the API server.
    topics
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "queues": 8 } })),
        )
        .await
        .expect("raise the queue count");
    broker
        .wait_topic("the topic grown to 8 queues", &broker_topic(8))
        .await;
    wait_synced(&topics, "orders", 2, topic_status).await;
    let refused = topics
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "queues": 2 } })),
        )
        .await
        .expect_err("the CEL rule refuses fewer queues");
    assert!(
        matches!(&refused, kube::Error::Api(e) if e.code == 422),
        "{refused}"
    );
    // Two more reconciles (a full resync) later, the broker still has 8.
    let before = reconciles(http, "topic").await;
    eventually("two more topic reconciles", REACT, || async {
        (reconciles(http, "topic").await >= before + 2.0).then_some(())
    })
    .await;
    assert_eq!(broker.topic(TOPIC).await, Some(broker_topic(8)));

    // 4. A ConsumerGroup becomes a group with its FIFO flag and retries.
    let groups: Api<ConsumerGroup> = Api::namespaced(client.clone(), "mq");
    let group: ConsumerGroup = serde_json::from_value(json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "ConsumerGroup",
        "metadata": { "name": GROUP },
        "spec": {
            "clusterRef": { "name": "demo" }, "fifo": true,
            "retryPolicy": { "maxRetries": 5 },
        },
    }))
    .expect("a ConsumerGroup");
    groups
        .create(&post, &group)
        .await
        .expect("create the ConsumerGroup");
    broker
        .wait_group("the group in the broker", &broker_group())
        .await;
    let group_status = |g: &ConsumerGroup| {
        let s = g.status.as_ref()?;
        assert_eq!(s.group_name.as_deref(), Some(GROUP));
        Some((s.observed_generation, s.synced_broker_groups))
    };
    wait_synced(&groups, GROUP, 1, group_status).await;
    let changed = broker
        .client
        .clone()
        .update_group(pb::UpdateGroupRequest {
            group: Some(pb::Group {
                name: GROUP.to_owned(),
                fifo: false,
                max_retries: 3,
            }),
        })
        .await
        .expect("change the group behind the operator's back")
        .into_inner()
        .group
        .expect("the stored group");
    assert_eq!((changed.fifo, changed.max_retries), (false, 3));
    broker
        .wait_group("the drifted group restored", &broker_group())
        .await;
    wait_event(
        &events,
        GROUP,
        "Updated",
        "set fifo, retryPolicy.maxRetries",
    )
    .await;
    broker
        .client
        .clone()
        .delete_group(pb::DeleteGroupRequest {
            name: GROUP.to_owned(),
        })
        .await
        .expect("delete the group behind the operator's back");
    broker
        .wait_group("the deleted group re-created", &broker_group())
        .await;

    // 5. Deleting the resources deletes the topic and the group from the
    // broker; only then do the finalizers let the resources go.
    topics
        .delete("orders", &DeleteParams::default())
        .await
        .expect("delete the Topic");
    groups
        .delete(GROUP, &DeleteParams::default())
        .await
        .expect("delete the ConsumerGroup");
    eventually("the Topic and ConsumerGroup gone", REACT, || async {
        let topic_gone = topics.get_opt("orders").await.ok()?.is_none();
        let group_gone = groups.get_opt(GROUP).await.ok()?.is_none();
        (topic_gone && group_gone).then_some(())
    })
    .await;
    assert_eq!(broker.topic(TOPIC).await, None, "the topic left the broker");
    assert_eq!(broker.group(GROUP).await, None, "the group left the broker");
    wait_event(&events, "orders", "Deleted", TOPIC).await;

    // Nothing brings them back.
    tokio::time::sleep(Duration::from_secs(2 * RESYNC_SECS)).await;
    assert_eq!(broker.topic(TOPIC).await, None);
    assert_eq!(broker.group(GROUP).await, None);
    operator.assert_running();
    assert!(
        tern.try_wait().expect("poll tern").is_none(),
        "tern standalone exited:\n{}",
        tern.log().unwrap_or_default()
    );
}
