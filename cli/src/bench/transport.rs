//! The transport under the generated gRPC client: one HTTP/2 connection
//! of hyper, used as is. tonic's own `Channel` adds a request queue with
//! a worker task (tower's `Buffer`) and reconnection in front of the same
//! connection; a load generator has no use for them and pays for them on
//! every call. A broken connection fails its calls (they are counted as
//! errors), it is not reopened.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::body::Body;
use tonic::codegen::http::{Request, Response};

use super::io::CoalescingStream;

/// Sends each call on one HTTP/2 connection.
#[derive(Debug, Clone)]
pub(super) struct Http2 {
    send: http2::SendRequest<Body>,
}

impl Http2 {
    /// Connects to `address` (`host:port`): TCP without Nagle's
    /// algorithm, writes coalesced ([`CoalescingStream`]), large flow
    /// control windows (many 32 KiB receive answers in flight at once must
    /// not wait for window updates), keep-alive pings every 30 s. The
    /// connection is driven by a task of its own until it closes.
    pub(super) async fn connect(address: &str) -> std::io::Result<Self> {
        let tcp = tokio::net::TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        let io = TokioIo::new(CoalescingStream::new(tcp));
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(4 * 1024 * 1024)
            .initial_connection_window_size(32 * 1024 * 1024)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .handshake(io)
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            // A closed connection fails the calls still on it; nothing
            // else to do here.
            let _ = connection.await;
        });
        Ok(Self { send })
    }
}

impl tonic::codegen::Service<Request<Body>> for Http2 {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        Box::pin(self.send.send_request(request))
    }
}
