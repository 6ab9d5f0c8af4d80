//! The Tern Kubernetes operator.
//!
//! This crate is a placeholder; nothing in it runs yet. It will hold a
//! kube-rs controller for three custom resources in the API group `tern.dev`:
//!
//! - `BrokerCluster`: a set of Tern brokers and name servers, reconciled into
//!   StatefulSets, Services and their configuration, with status reporting the
//!   ready replicas;
//! - `Topic`: a topic with its queue count and message type, created on and
//!   kept in step with a `BrokerCluster` through the broker's admin service;
//! - `ConsumerGroup`: a consumer group with its delivery and retry settings.
//!
//! Each reconciler cleans up through a finalizer, and the CRD manifests are
//! generated from the Rust types of these resources by a `crdgen` binary.
#![forbid(unsafe_code)]
