//! A thin layer between a connection's bytes and hyper, for HTTP/2 only (HTTP/1.1 bytes are
//! recognised by their first bytes and pass straight through):
//!
//! * it accepts `:scheme: https:` (and `http:`), as Google does. firebase-admin for Node
//!   sends `https:` on its HTTP/2 batch path (`sendEach`); h2 hands the value to
//!   `http::uri::Scheme`, which refuses the colon, and resets the stream with
//!   PROTOCOL_ERROR (`h2::server::Peer::convert_poll_message`). Neither hyper nor h2 has a
//!   setting for this, and the check runs before any service sees the request, so the value
//!   has to be fixed in the HEADERS frame itself. Header blocks are HPACK-compressed and the
//!   client's encoder may keep the value in its dynamic table and refer to it later by
//!   index, so swapping bytes in place is not enough (the entry sizes, hence the evictions,
//!   would differ between the client's table and h2's): the layer decodes every block and
//!   re-encodes the ones it changes (see [`inbound`]);
//! * it logs, with the reason, every stream or connection the emulator refuses over HTTP/2
//!   (the RST_STREAM and GOAWAY frames it sends, see [`outbound`]), which h2 only reports at
//!   its own debug level.

mod hpack;
mod huffman;
mod inbound;
mod outbound;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use inbound::Inbound;
use outbound::{Outbound, Refusal, reason_name};

/// Read size from the underlying connection while it speaks HTTP/2.
const READ_CHUNK: usize = 16 * 1024;

/// A connection's I/O as hyper should see it: HTTP/2 header blocks fixed, refusals logged.
#[derive(Debug)]
pub(crate) struct H2Fix<IO> {
    io: IO,
    peer: SocketAddr,
    inbound: Inbound,
    outbound: Outbound,
    /// Bytes ready for hyper, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    scratch: Box<[u8]>,
}

impl<IO> H2Fix<IO> {
    /// Wraps the connection from `peer` (named in log lines).
    pub(crate) fn new(io: IO, peer: SocketAddr) -> Self {
        Self {
            io,
            peer,
            inbound: Inbound::new(),
            outbound: Outbound::default(),
            ready: Vec::new(),
            ready_at: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// Looks at bytes the server wrote and logs the refusals among them.
    fn watch_written(&mut self, written: &[u8]) {
        if !self.inbound.is_h2() {
            return;
        }
        for refusal in self.outbound.observe(written) {
            log_refusal(self.peer, &self.inbound, refusal);
        }
    }
}

fn log_refusal(peer: SocketAddr, inbound: &Inbound, refusal: Refusal) {
    match refusal {
        Refusal::Reset { stream, code } => {
            let reason = reason_name(code);
            let seen = inbound.request(stream);
            let request = seen.map(|r| r.summary.as_str()).unwrap_or("");
            let problem = seen.and_then(|r| r.problem.as_deref()).unwrap_or("");
            if code == 0x8 {
                // CANCEL: the answer was no longer wanted; routine.
                tracing::debug!(%peer, stream, reason, request, "HTTP/2 stream cancelled by the emulator");
            } else {
                tracing::warn!(%peer, stream, reason, problem, request, "HTTP/2 stream refused by the emulator");
            }
        }
        Refusal::GoAway {
            last_stream,
            code,
            debug: debug_data,
        } => {
            tracing::warn!(%peer, last_stream, reason = reason_name(code), debug_data = %debug_data, "HTTP/2 connection refused by the emulator (GOAWAY)");
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for H2Fix<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_at < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_at);
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                return Poll::Ready(Ok(()));
            }
            this.ready.clear();
            this.ready_at = 0;
            if this.inbound.is_other() {
                // HTTP/1.1: nothing to look at.
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let mut scratch = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut scratch))?;
            let read = scratch.filled();
            if read.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.inbound.feed(read, &mut this.ready) {
                tracing::warn!(peer = %this.peer, error = %e, "HTTP/2 connection refused by the emulator");
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for H2Fix<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.watch_written(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for slice in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(slice.len());
            this.watch_written(&slice[..take]);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
