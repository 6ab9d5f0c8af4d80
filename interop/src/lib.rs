//! Interoperability tests of Tern with the official Apache RocketMQ 5 Rust
//! SDK (crates.io `rocketmq` 5.0.0). This crate has no code of its own: the
//! tests are in `tests/`, and the SDK is a dev-dependency of this crate only,
//! so that its old dependency tree (tonic 0.9, ring 0.16, opentelemetry) is
//! built for nothing else.
//!
//! The tests start the `tern` binary found by [`tern_harness::tern_bin`]:
//! `TERN_BIN` if set, else the newest of `target/debug/tern` and
//! `target/release/tern`. Build it first (`cargo build -p tern-cli`), as
//! `scripts/test` does before it runs the tests.
//!
//! Two traps of SDK 5.0.0: it does not compile unless the crate using it
//! enables `time`'s `local-offset` feature (done in `Cargo.toml`), and it
//! panics building a message id on a host whose only network interface is
//! the loopback one (it needs a MAC address).
#![forbid(unsafe_code)]
