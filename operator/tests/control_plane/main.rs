//! Tests against a real Kubernetes control plane: etcd and kube-apiserver
//! (and, where noted, more) built by `scripts/k8s-tools` from the Go module
//! proxy and started on loopback for each test ([`harness`]).
//!
//! - [`api`]: the CRDs install and become Established, every manifest
//!   under `examples/kubernetes/` passes a server-side dry run, and the CEL
//!   rules compile and refuse what they should.
//! - [`cluster`]: the `tern-operator` binary, run as a local process,
//!   reconciles `BrokerCluster`s: children, owner references, status,
//!   Events, one-group-at-a-time rollouts, pause, refused scale-down.
//! - [`lifecycle`]: the same with kube-controller-manager, kube-scheduler
//!   and kwok: pods become Ready on a fake node, the cluster Ready, a
//!   rollout goes group by group, deletion garbage-collects the children
//!   and volume claims follow `storage.onDelete`.
//! - [`helm`]: `helm lint` and `helm install` of the chart, then the
//!   operator run as the chart's ServiceAccount (impersonated), so its
//!   RBAC is proven sufficient.
//! - [`broker`]: `Topic` and `ConsumerGroup` resources applied by the
//!   operator to a real `tern standalone` broker: created with their
//!   settings, drift reverted, queues grown, deleted with the resources.
//! - [`users`]: authentication `Acl`: the admin Secret, `TernUser`s with
//!   their Secrets and rules in a real `tern standalone --auth-enabled`,
//!   rotation, deletion (garbage collector included).
//!
//! Every test is skipped, with a line saying so, when `TERN_K8S_BIN` is
//! unset: run `export TERN_K8S_BIN=$(scripts/k8s-tools)` first, or
//! `scripts/test`, which does. One binary holds them all so that the
//! harness is shared without unused code; libtest runs at most as many
//! control planes at once as the machine has cores.

mod api;
mod broker;
mod cluster;
mod harness;
mod helm;
mod lifecycle;
mod users;
