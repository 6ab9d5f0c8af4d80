//! One accepted connection, TLS or plaintext, as tonic serves it.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An accepted connection: plaintext, or TLS after its handshake. Its
/// reads and writes fail once its port's connections are closed
/// ([`crate::ServerTls::close_connections`]).
pub struct Conn {
    info: TcpConnectInfo,
    io: Io,
    /// Ready once the port's connections are to be closed.
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// This connection's place under the port's connection limit.
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("info", &self.info)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub(crate) fn plain(
        stream: TcpStream,
        closed: &CancellationToken,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            info: info(&stream),
            io: Io::Plain(stream),
            closed: Box::pin(closed.clone().cancelled_owned()),
            _permit: permit,
        }
    }

    pub(crate) fn tls(
        stream: TlsStream<TcpStream>,
        closed: &CancellationToken,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            info: info(stream.get_ref().0),
            io: Io::Tls(Box::new(stream)),
            closed: Box::pin(closed.clone().cancelled_owned()),
            _permit: permit,
        }
    }

    /// `poll` as it is, unless it is pending and the port's connections
    /// have been closed: then an error. (Only a pending operation looks,
    /// so the cost is off the path of reads and writes that proceed.)
    fn unless_closed<T>(
        closed: &mut Pin<Box<WaitForCancellationFutureOwned>>,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_pending() && closed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server closed its connections",
            )));
        }
        poll
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }
}

fn info(stream: &TcpStream) -> TcpConnectInfo {
    TcpConnectInfo {
        local_addr: stream.local_addr().ok(),
        remote_addr: stream.peer_addr().ok(),
    }
}

/// The same connection information as a plain TCP stream's, so a
/// handler's `remote_addr()` works over TLS too.
impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        Self::unless_closed(&mut this.closed, cx, poll)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        Self::unless_closed(&mut this.closed, cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        Self::unless_closed(&mut this.closed, cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        Self::unless_closed(&mut this.closed, cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
