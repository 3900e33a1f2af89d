//! Every stream or connection the emulator refuses is logged with its reason: TLS
//! handshake failures (HTTPS and CCS), HTTP/1 parse errors, HTTP/2 stream resets, GOAWAYs
//! and broken header compression. The emulator's logs are captured by a global `tracing`
//! subscriber (its tasks run on any runtime thread) and searched for the client's address.

mod common;
#[path = "common/h2raw.rs"]
mod h2raw;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use h2raw::*;
use pushgate_emulator::EmulatorConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the emulator logged so far, at debug and above.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("pushgate_emulator=debug")
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits (up to 5 s) for a log line that mentions `peer` and every one of `needles`.
async fn logged(peer: SocketAddr, needles: &[&str]) -> String {
    let peer = format!("peer={peer}");
    for _ in 0..100 {
        let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains(&peer) && needles.iter().all(|n| l.contains(n)))
        {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    panic!("no log line with {peer} and {needles:?} in:\n{text}");
}

/// Writes `bytes` and reads until the emulator closes the connection.
async fn write_and_drain(tcp: &mut TcpStream, bytes: &[u8]) {
    tcp.write_all(bytes).await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
}

async fn emulator() -> common::Emu {
    logs();
    common::start_with(EmulatorConfig {
        https: Some("127.0.0.1:0".parse().unwrap()),
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await
}

#[tokio::test]
async fn plain_http_to_the_https_port_is_a_logged_tls_failure() {
    let emu = emulator().await;
    let mut tcp = TcpStream::connect(emu.running.https_addr().unwrap())
        .await
        .unwrap();
    let peer = tcp.local_addr().unwrap();
    write_and_drain(&mut tcp, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let line = logged(peer, &["WARN", "TLS handshake failed", "listener=HTTPS"]).await;
    assert!(
        line.contains("corrupt message"),
        "the reason is named: {line}"
    );
}

#[tokio::test]
async fn plain_bytes_to_the_ccs_port_are_a_logged_tls_failure() {
    let emu = emulator().await;
    let mut tcp = TcpStream::connect(emu.running.xmpp_addr().unwrap())
        .await
        .unwrap();
    let peer = tcp.local_addr().unwrap();
    write_and_drain(&mut tcp, b"<stream:stream to='gcm.googleapis.com'>").await;
    let line = logged(
        peer,
        &["WARN", "TLS handshake failed", "listener=CCS (XMPP)"],
    )
    .await;
    assert!(
        line.contains("corrupt message"),
        "the reason is named: {line}"
    );
}

#[tokio::test]
async fn unparsable_http1_request_is_logged_with_the_parse_error() {
    let emu = emulator().await;
    let mut tcp = TcpStream::connect(emu.running.http_addr()).await.unwrap();
    let peer = tcp.local_addr().unwrap();
    write_and_drain(&mut tcp, b"GET / HTTP/9.9\r\nHost: x\r\n\r\n").await;
    logged(
        peer,
        &[
            "WARN",
            "HTTP/1 request refused",
            "listener=HTTP",
            "invalid HTTP version",
        ],
    )
    .await;
}

#[tokio::test]
async fn reset_http2_stream_is_logged_with_the_malformed_header() {
    let emu = emulator().await;
    let mut tcp = TcpStream::connect(emu.running.http_addr()).await.unwrap();
    let peer = tcp.local_addr().unwrap();
    let mut block = vec![0x82, 0x47, 4];
    block.extend_from_slice(b"ftp:");
    literal(&mut block, ":path", "/emulator/devices");
    let mut bytes = preface();
    bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    let outcome = exchange(&mut tcp, &bytes, 1).await;
    assert_eq!(outcome.reset, Some(0x1));
    logged(
        peer,
        &[
            "WARN",
            "HTTP/2 stream refused",
            "PROTOCOL_ERROR",
            "malformed :scheme",
            "ftp:",
            "GET /emulator/devices",
        ],
    )
    .await;
}

#[tokio::test]
async fn http2_connection_error_is_logged_with_its_goaway_reason() {
    let emu = emulator().await;
    let mut tls = connect_tls(
        emu.running.https_addr().unwrap(),
        emu.running.tls_cert_pem().unwrap(),
    )
    .await;
    let peer = tls.get_ref().0.local_addr().unwrap();
    // DATA on stream 0 is a connection error.
    let mut bytes = preface();
    bytes.extend(frame(DATA, 0, 0, b"x"));
    let outcome = exchange(&mut tls, &bytes, 1).await;
    assert_eq!(outcome.goaway, Some(0x1));
    logged(peer, &["WARN", "GOAWAY", "PROTOCOL_ERROR"]).await;
}

#[tokio::test]
async fn broken_header_compression_is_logged() {
    let emu = emulator().await;
    let mut tcp = TcpStream::connect(emu.running.http_addr()).await.unwrap();
    let peer = tcp.local_addr().unwrap();
    let mut bytes = preface();
    // Index 64 with an empty dynamic table.
    bytes.extend(frame(HEADERS, END_HEADERS, 1, &[0xc0]));
    write_and_drain(&mut tcp, &bytes).await;
    logged(
        peer,
        &["WARN", "HTTP/2 connection refused", "HPACK", "index beyond"],
    )
    .await;
}
