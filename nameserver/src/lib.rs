//! The Tern name server: where brokers announce themselves and clients learn
//! which broker serves which topic.
//!
//! This crate is a placeholder; nothing in it runs yet. It will hold:
//!
//! - the route registry: for each topic, the brokers that serve it, their
//!   endpoints and their queue counts and permissions;
//! - broker registration: a broker registers its address and topics when it
//!   starts and re-registers when they change;
//! - heartbeats and expiry: brokers heartbeat on an interval, and a broker
//!   whose heartbeats stop for longer than the expiry window is dropped from
//!   every route it appeared in;
//! - the queries that the broker's route service answers clients from.
#![forbid(unsafe_code)]
