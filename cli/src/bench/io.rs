//! A TCP stream that coalesces writes.
//!
//! The HTTP/2 library under hyper (h2) flushes its socket after every
//! DATA frame larger than 256 bytes, so each SendMessage of a 1 KiB
//! message costs one `writev` system call, and on loopback that call
//! also runs the receiving side's TCP processing: about a quarter of
//! the bench's CPU per message. This stream copies what is written into
//! a buffer and defers a flush to the next time the connection task is
//! polled (it wakes the task itself), so everything the connection
//! produced in between goes out in one call. Reads come first in each
//! poll of h2's connection, so the deferred bytes are written there; a
//! buffer past [`MAX_BUFFERED`] is written at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes held before a write goes to the socket whatever the flushes.
const MAX_BUFFERED: usize = 256 * 1024;

#[derive(Debug)]
pub(super) struct CoalescingStream {
    inner: TcpStream,
    out: Vec<u8>,
    /// How much of `out` the socket has taken.
    written: usize,
    /// A flush was asked for and deferred: write `out` at the next
    /// chance.
    flush_due: bool,
}

impl CoalescingStream {
    pub(super) fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            out: Vec::with_capacity(64 * 1024),
            written: 0,
            flush_due: false,
        }
    }

    fn buffered(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes `out` to the socket, until done or the socket is full.
    fn write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        self.flush_due = false;
        Poll::Ready(Ok(()))
    }

    /// Takes `bufs` into the buffer, after writing it out if it is full.
    fn take(&mut self, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        if self.buffered() >= MAX_BUFFERED {
            ready!(self.write_out(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            self.out.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for CoalescingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.flush_due
            && let Poll::Ready(Err(e)) = this.write_out(cx)
        {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CoalescingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().take(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().take(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Defers: the bytes are written when the task is polled next (it is
    /// woken here), or at once if too many are waiting.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.buffered() >= MAX_BUFFERED {
            return this.write_out(cx);
        }
        if !this.flush_due {
            this.flush_due = true;
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.write_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Flushed bytes arrive once the writer's task reads (or shuts down),
    /// in order, however many writes made them.
    #[tokio::test]
    async fn deferred_bytes_arrive_in_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; 3 + 300_000];
            s.read_exact(&mut got).await.unwrap();
            s.write_all(b"ok").await.unwrap();
            got
        });
        let mut s = CoalescingStream::new(TcpStream::connect(address).await.unwrap());
        s.write_all(b"a").await.unwrap();
        s.write_all(b"bc").await.unwrap();
        s.flush().await.unwrap();
        // Larger than the buffer: written through.
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        s.write_all(&big).await.unwrap();
        s.flush().await.unwrap();
        // Reading writes what the flush deferred.
        let mut answer = [0u8; 2];
        s.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"ok");
        let got = peer.await.unwrap();
        assert_eq!(&got[..3], b"abc");
        assert_eq!(&got[3..], &big[..]);
        s.shutdown().await.unwrap();
    }
}
