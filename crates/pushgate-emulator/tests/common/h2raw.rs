//! A hand-written HTTP/2 client over TLS, for requests no HTTP/2 library will build
//! (`:scheme: https:`) and for broken ones: frames and HPACK literals written byte by byte.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Opens TLS to `addr` trusting `cert_pem`, offering ALPN h2 only, and checks it was chosen.
pub async fn connect_tls(addr: SocketAddr, cert_pem: &str) -> TlsStream<TcpStream> {
    let roots = pushgate_xmpp::tls::roots_from_pem(cert_pem.as_bytes()).unwrap();
    let mut config = pushgate_xmpp::tls::client_config(roots).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("TLS handshake with the emulator");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    tls
}

/// One frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client preface and an empty SETTINGS frame.
pub fn preface() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 127, "short strings only");
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// A header field as a literal with incremental indexing and a literal name (the client's
/// dynamic table keeps it, newest first from index 62).
pub fn indexed_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x40);
    string(out, name.as_bytes());
    string(out, value.as_bytes());
}

/// A header field as a literal without indexing.
pub fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    string(out, name.as_bytes());
    string(out, value.as_bytes());
}

/// A received frame.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// Reads one frame (None at end of stream or after 10 s).
pub async fn read_frame<S: AsyncRead + Unpin>(io: &mut S) -> Option<Frame> {
    let read = async {
        let mut head = [0u8; 9];
        io.read_exact(&mut head).await.ok()?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0; len];
        io.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()
        .flatten()
}

/// What came back on one stream.
#[derive(Debug, Default)]
pub struct Outcome {
    /// First byte of the response header block (0x88 is `:status 200` from the static table).
    pub headers: Option<Vec<u8>>,
    pub body: Vec<u8>,
    /// RST_STREAM error code, if the stream was reset.
    pub reset: Option<u32>,
    /// GOAWAY error code, if the connection was closed.
    pub goaway: Option<u32>,
}

/// Writes `bytes`, then collects frames for `stream` until it ends, is reset, or the
/// connection goes away (acknowledging SETTINGS on the way).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    stream: u32,
) -> Outcome {
    io.write_all(bytes).await.unwrap();
    let mut outcome = Outcome::default();
    while let Some(f) = read_frame(io).await {
        match f.kind {
            SETTINGS if f.flags & 0x1 == 0 => {
                io.write_all(&frame(SETTINGS, 0x1, 0, &[])).await.unwrap();
            }
            GOAWAY => {
                outcome.goaway = Some(u32::from_be_bytes(f.payload[4..8].try_into().unwrap()));
                break;
            }
            RST_STREAM if f.stream == stream => {
                outcome.reset = Some(u32::from_be_bytes(f.payload[..4].try_into().unwrap()));
                break;
            }
            HEADERS if f.stream == stream => {
                outcome.headers = Some(f.payload);
                if f.flags & END_STREAM != 0 {
                    break;
                }
            }
            DATA if f.stream == stream => {
                outcome.body.extend_from_slice(&f.payload);
                if f.flags & END_STREAM != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    outcome
}
