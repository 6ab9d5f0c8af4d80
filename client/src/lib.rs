//! A Rust client for Tern.
//!
//! This crate is a placeholder; nothing in it runs yet. It will hold:
//!
//! - a client for the broker's admin API: creating, describing, updating and
//!   deleting topics and consumer groups, and reading cluster and storage
//!   state;
//! - a messaging client speaking the RocketMQ 5 gRPC protocol to send and
//!   receive messages, for the CLI's produce and consume commands.
//!
//! The `tern` command-line tool is built on this crate.
#![forbid(unsafe_code)]
