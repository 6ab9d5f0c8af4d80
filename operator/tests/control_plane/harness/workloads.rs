//! What makes pods happen on a test control plane: kube-controller-manager
//! (StatefulSet, garbage collector, namespace, volume binding and
//! protection, Deployment and ReplicaSet controllers), kube-scheduler, and
//! kwok faking one node and the pods placed on it (Running and Ready, with
//! no container behind them). Pre-created `hostPath` PersistentVolumes
//! stand in for a provisioner, so volume claim templates bind.

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::{ControlPlane, Process, STARTUP, free_ports};

/// The fake node's name.
pub const NODE: &str = "kwok-node-0";

/// kwok's behaviour, as its Stage resources: a node becomes Ready; a pod
/// placed on it becomes Running and Ready at once; a deleted pod goes away
/// (there is no kubelet to confirm it stopped).
const KWOK_STAGES: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: tern-test-node-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      conditions:
      - type: Ready
        status: "True"
        reason: FakeNodeReady
        message: kwok fakes this node
        lastHeartbeatTime: {{ Now | Quote }}
        lastTransitionTime: {{ Now | Quote }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: tern-test-pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - type: Initialized
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: ContainersReady
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      - type: Ready
        status: "True"
        lastTransitionTime: {{ $now | Quote }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: tern-test-pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: Exists
  next:
    delete: true
"#;

/// The controllers the tests need, and no more (no node lifecycle: kwok's
/// node has no kubelet to taint it for).
const CONTROLLERS: &str = "garbage-collector-controller,statefulset-controller,\
namespace-controller,serviceaccount-controller,serviceaccount-token-controller,\
persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,\
persistentvolume-protection-controller,deployment-controller,replicaset-controller,\
disruption-controller";

impl ControlPlane {
    /// Starts kube-controller-manager, kube-scheduler and kwok, registers
    /// one fake node and `volumes` unclaimed 1 GiB volumes, and waits until
    /// kwok reports the node Ready.
    pub async fn start_workloads(&mut self, volumes: usize) {
        let kubeconfig = self.kubeconfig.display().to_string();
        let [kwok_port] = free_ports();

        let mut kcm = Command::new(self.tool("kube-controller-manager"));
        kcm.arg(format!("--kubeconfig={kubeconfig}"))
            .arg("--leader-elect=false")
            .arg("--secure-port=0")
            .arg(format!("--controllers={CONTROLLERS}"))
            .arg(format!(
                "--service-account-private-key-file={}",
                self.certs.service_account_key.display()
            ))
            .arg(format!("--root-ca-file={}", self.certs.ca.display()))
            .arg("--concurrent-gc-syncs=5");
        self.workloads.push(Process::spawn(
            "kube-controller-manager",
            kcm,
            self.dir.path(),
        ));

        let mut scheduler = Command::new(self.tool("kube-scheduler"));
        scheduler
            .arg(format!("--kubeconfig={kubeconfig}"))
            .arg("--leader-elect=false")
            .arg("--secure-port=0");
        self.workloads
            .push(Process::spawn("kube-scheduler", scheduler, self.dir.path()));

        let stages = self.dir.path().join("kwok-stages.yaml");
        std::fs::write(&stages, KWOK_STAGES).expect("write kwok's stages");
        let mut kwok = Command::new(self.tool("kwok"));
        kwok.arg(format!("--kubeconfig={kubeconfig}"))
            .arg(format!("--config={}", stages.display()))
            .arg("--manage-all-nodes=false")
            .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
            .arg("--cidr=10.0.1.0/24")
            .arg("--node-ip=127.0.0.1")
            .arg(format!("--server-address=127.0.0.1:{kwok_port}"))
            // kwok reads its configuration from $HOME/.kwok; keep it in the run.
            .env("HOME", self.dir.path());
        self.workloads
            .push(Process::spawn("kwok", kwok, self.dir.path()));

        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": NODE,
                "annotations": { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
                "labels": { "kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "type": "kwok" },
            },
            "status": {
                "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "110" },
                "capacity": { "cpu": "32", "memory": "256Gi", "pods": "110" },
            },
        }))
        .expect("a Node");
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("registering the fake node: {e}"));
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        for i in 0..volumes {
            let pv: PersistentVolume = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": { "name": format!("test-volume-{i}") },
                "spec": {
                    "capacity": { "storage": "1Gi" },
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": { "path": format!("/tmp/tern-test-volume-{i}") },
                },
            }))
            .expect("a PersistentVolume");
            pvs.create(&PostParams::default(), &pv)
                .await
                .unwrap_or_else(|e| panic!("creating a volume: {e}"));
        }

        let deadline = Instant::now() + STARTUP;
        loop {
            for p in &mut self.workloads {
                p.assert_running();
            }
            let ready = nodes.get(NODE).await.ok().and_then(|n| {
                n.status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.type_ == "Ready")
            });
            if ready.is_some_and(|c| c.status == "True") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kwok did not make {NODE} Ready within {STARTUP:?}\n{}",
                self.workloads
                    .iter()
                    .map(Process::log_tail)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The API server taints a new node not-ready; the node lifecycle
        // controller, which would lift it, does not run (it would also
        // want kubelet heartbeats). Lift it as it would.
        nodes
            .patch(
                NODE,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "taints": null } })),
            )
            .await
            .unwrap_or_else(|e| panic!("untainting the fake node: {e}"));
    }

    /// The last log lines of the controller-manager, scheduler and kwok.
    pub fn workload_logs(&self) -> String {
        self.workloads
            .iter()
            .map(Process::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}
