//! The Tern Kubernetes operator.
//!
//! It runs Tern on Kubernetes from three custom resources in the API group
//! `tern.dev`, version `v1alpha1` ([`crd`]):
//!
//! - `BrokerCluster`: name servers and broker groups. The [`build`]
//!   functions turn one into StatefulSets, headless Services, ConfigMaps, a
//!   client Service, disruption budgets and a ServiceAccount; the cluster
//!   controller ([`controller::cluster`]) applies them with server-side apply
//!   and reports conditions in the status.
//! - `Topic` and `ConsumerGroup`: kept in step with every broker group
//!   through the broker's admin API ([`controller::admin`]), one way: the
//!   resource is the truth, drift inside the brokers is reverted, and a
//!   finalizer deletes them from the brokers with the resource.
//!
//! The decisions (conditions, rollout order, what to change in a broker)
//! are pure functions with unit tests; the Kubernetes and gRPC calls sit
//! around them. `docs/operator.md` describes the design.
#![forbid(unsafe_code)]

pub mod build;
pub mod controller;
pub mod crd;
pub mod error;
pub mod http;
pub mod metrics;

pub use error::{Error, Result};
