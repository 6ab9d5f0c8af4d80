//! The HTTP/2 limits of the broker's and the name server's gRPC ports,
//! set deliberately (tonic and hyper leave most unbounded), in one place.
//!
//! | limit | value | why |
//! |---|---|---|
//! | concurrent streams per connection | 1,024 | an SDK multiplexes its sends, long polls and telemetry stream on one connection per endpoint; a thousand in flight is far beyond what one client needs, and bounds what one connection can hold |
//! | header list size | 64 KiB | RocketMQ metadata is a dozen short headers; a client cannot make the server buffer megabytes of headers |
//! | pending accept reset streams | 200 | streams a client opens and resets at once (the HTTP/2 "rapid reset" attack) past this close the connection |
//! | keepalive | ping every 60 s, 20 s to answer | a peer that vanished without a FIN (a dead node, a cut network) is noticed and its streams and state released |
//!
//! No per-request timeout: long polls and telemetry streams are meant to
//! stay open, and each request carries its own deadline. The number of
//! connections is bounded by the port's accept loop (`tern-tls`).

use std::time::Duration;

use tonic::transport::Server;

/// Most streams open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;
/// Largest header list a request may carry.
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// Streams reset by the client before they were accepted, past which the
/// connection is closed.
pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 200;
/// Time between the server's keepalive pings.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Time a client has to answer a keepalive ping before its connection is
/// closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A server builder with the limits above.
pub fn builder() -> Server {
    Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESET_STREAMS))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}
