//! An XMPP stream over any async byte stream (TLS, TCP, or an in-memory duplex in tests):
//! the one read loop both the CCS client and the emulator's CCS server share.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::error::ConnError;
use crate::parser::{ParserConfig, StreamEvent, StreamParser};
use crate::writer;

/// Bytes read from the socket per read call; also the most unscanned input the parser holds.
const READ_CHUNK: usize = 8 * 1024;

/// Reads until the parser yields an event. Cancel-safe: if the future is dropped, no byte that
/// was read is lost (reads go straight into the parser).
async fn read_event<R: AsyncRead + Unpin>(
    io: &mut R,
    parser: &mut StreamParser,
    buf: &mut [u8],
) -> Result<Option<StreamEvent>, ConnError> {
    loop {
        if let Some(ev) = parser.next_event()? {
            return Ok(Some(ev));
        }
        let n = io.read(buf).await?;
        if n == 0 {
            if parser.in_unit() {
                return Err(ConnError::Truncated {
                    buffered: parser.buffered_len(),
                });
            }
            return Ok(None);
        }
        parser.feed(&buf[..n])?;
    }
}

async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, data: &[u8]) -> Result<(), ConnError> {
    io.write_all(data).await?;
    io.flush().await?;
    Ok(())
}

/// A connection speaking XMPP in both directions: a bounded parser on the read side and
/// flushed writes on the write side. Handshakes run on it; afterwards it can be split so one
/// task reads while another writes.
#[derive(Debug)]
pub struct XmppStream<S> {
    io: S,
    parser: StreamParser,
    buf: Box<[u8]>,
}

impl<S> XmppStream<S> {
    /// Wraps a connected byte stream with default parser limits.
    pub fn new(io: S) -> Self {
        Self::with_config(io, ParserConfig::default())
    }

    /// Wraps a connected byte stream with explicit parser limits.
    pub fn with_config(io: S, cfg: ParserConfig) -> Self {
        XmppStream {
            io,
            parser: StreamParser::with_config(cfg),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// Restarts the incoming stream (after SASL success); see [`StreamParser::reset`].
    pub fn reset(&mut self) {
        self.parser.reset();
    }

    /// The parser, e.g. to check whether the peer's stream is open.
    pub fn parser(&self) -> &StreamParser {
        &self.parser
    }

    /// The underlying byte stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying byte stream, mutably (bytes written here bypass nothing: there is no
    /// write buffer).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> XmppStream<S> {
    /// The next event from the peer; `Ok(None)` when the connection ended cleanly between
    /// units. Cancel-safe, so it can sit in a `select!`.
    pub async fn next_event(&mut self) -> Result<Option<StreamEvent>, ConnError> {
        read_event(&mut self.io, &mut self.parser, &mut self.buf).await
    }

    /// Writes and flushes serialised XML (a header, stanza, or several).
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> Result<(), ConnError> {
        write_all(&mut self.io, data.as_ref()).await
    }

    /// Sends `</stream:stream>` and shuts down the write side.
    pub async fn close(&mut self) -> Result<(), ConnError> {
        self.send(writer::CLOSE).await?;
        self.io.shutdown().await?;
        Ok(())
    }

    /// Splits into a reader and a writer usable from different tasks. The parser (with any
    /// bytes already received) moves to the reader.
    pub fn into_split(self) -> (XmppReader<ReadHalf<S>>, XmppWriter<WriteHalf<S>>) {
        let (r, w) = tokio::io::split(self.io);
        (
            XmppReader {
                io: r,
                parser: self.parser,
                buf: self.buf,
            },
            XmppWriter { io: w },
        )
    }
}

/// The read half of a split [`XmppStream`].
#[derive(Debug)]
pub struct XmppReader<R> {
    io: R,
    parser: StreamParser,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> XmppReader<R> {
    /// Wraps a read-only byte stream with explicit parser limits.
    pub fn new(io: R, cfg: ParserConfig) -> Self {
        XmppReader {
            io,
            parser: StreamParser::with_config(cfg),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The next event from the peer; `Ok(None)` at a clean end of connection. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Option<StreamEvent>, ConnError> {
        read_event(&mut self.io, &mut self.parser, &mut self.buf).await
    }

    /// Restarts the incoming stream; see [`StreamParser::reset`].
    pub fn reset(&mut self) {
        self.parser.reset();
    }

    /// The parser.
    pub fn parser(&self) -> &StreamParser {
        &self.parser
    }

    /// The underlying read half.
    pub fn into_inner(self) -> R {
        self.io
    }
}

/// The write half of a split [`XmppStream`].
#[derive(Debug)]
pub struct XmppWriter<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> XmppWriter<W> {
    /// Wraps a write-only byte stream.
    pub fn new(io: W) -> Self {
        XmppWriter { io }
    }

    /// Writes and flushes serialised XML.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> Result<(), ConnError> {
        write_all(&mut self.io, data.as_ref()).await
    }

    /// Sends `</stream:stream>` and shuts down the write side.
    pub async fn close(&mut self) -> Result<(), ConnError> {
        self.send(writer::CLOSE).await?;
        self.io.shutdown().await?;
        Ok(())
    }

    /// The underlying write half.
    pub fn into_inner(self) -> W {
        self.io
    }
}
