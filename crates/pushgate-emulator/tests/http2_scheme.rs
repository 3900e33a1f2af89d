//! HTTP/2 requests whose `:scheme` carries a trailing colon (`https:`, as firebase-admin for
//! Node sends it on its `sendEach` path) get a real answer, as they do from Google, on the
//! HTTPS listener and on the plain one (h2c), also when the client's HPACK encoder refers to
//! the value through its dynamic table.

mod common;
#[path = "common/h2raw.rs"]
mod h2raw;

use h2raw::*;
use pushgate_emulator::EmulatorConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};

/// `:scheme: https:` as nghttp2 writes it: literal with incremental indexing, name from the
/// static table (index 7), so it becomes dynamic entry 62.
fn scheme_indexed(value: &str) -> Vec<u8> {
    let mut out = vec![0x47, value.len() as u8];
    out.extend_from_slice(value.as_bytes());
    out
}

/// A legacy send to `token` on `stream`, with `scheme` (HPACK bytes) as its `:scheme`.
fn legacy_send(stream: u32, scheme: &[u8], token: &str) -> Vec<u8> {
    let body = json!({ "to": token, "data": { "stream": stream } }).to_string();
    let mut block = vec![0x83]; // :method POST
    block.extend_from_slice(scheme);
    literal(&mut block, ":path", "/fcm/send");
    literal(&mut block, ":authority", "fcm.googleapis.com");
    literal(&mut block, "authorization", "key=emulator-key");
    literal(&mut block, "content-type", "application/json");
    literal(&mut block, "content-length", &body.len().to_string());
    let mut out = frame(HEADERS, END_HEADERS, stream, &block);
    out.extend(frame(DATA, END_STREAM, stream, body.as_bytes()));
    out
}

/// Sends on `stream` and checks the answer is the send's 200 with one success.
async fn sent<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, bytes: &[u8], stream: u32) {
    let outcome = exchange(io, bytes, stream).await;
    assert_eq!(
        outcome.reset, None,
        "stream {stream} was reset: {outcome:?}"
    );
    assert_eq!(outcome.goaway, None, "connection refused: {outcome:?}");
    let headers = outcome.headers.expect("response headers");
    assert_eq!(
        headers.first(),
        Some(&0x88),
        ":status 200 expected: {headers:?}"
    );
    let answer: Value = serde_json::from_slice(&outcome.body).unwrap();
    assert_eq!(answer["success"], 1, "{answer}");
}

#[tokio::test]
async fn https_colon_scheme_is_served_over_tls_also_when_indexed() {
    let emu = common::start_with(EmulatorConfig {
        https: Some("127.0.0.1:0".parse().unwrap()),
        ..EmulatorConfig::default()
    })
    .await;
    let token = emu.device(1).await.remove(0);
    let mut tls = connect_tls(
        emu.running.https_addr().unwrap(),
        emu.running.tls_cert_pem().unwrap(),
    )
    .await;
    let mut first = preface();
    first.extend(legacy_send(1, &scheme_indexed("https:"), &token));
    sent(&mut tls, &first, 1).await;
    // Stream 3 names the scheme by its dynamic table index only.
    sent(&mut tls, &legacy_send(3, &[0xbe], &token), 3).await;
    // And a plain one afterwards still works.
    sent(&mut tls, &legacy_send(5, &[0x87], &token), 5).await;
    let inbox = emu.inbox(&token).await;
    assert_eq!(inbox.len(), 3, "{inbox:?}");
}

#[tokio::test]
async fn http_colon_scheme_is_served_over_h2c() {
    let emu = common::start().await;
    let token = emu.device(1).await.remove(0);
    let mut tcp = tokio::net::TcpStream::connect(emu.running.http_addr())
        .await
        .unwrap();
    let mut bytes = preface();
    bytes.extend(legacy_send(1, &scheme_indexed("http:"), &token));
    sent(&mut tcp, &bytes, 1).await;
    assert_eq!(emu.inbox(&token).await.len(), 1);
}

#[tokio::test]
async fn other_bad_schemes_are_still_refused() {
    let emu = common::start().await;
    let token = emu.device(1).await.remove(0);
    let mut tcp = tokio::net::TcpStream::connect(emu.running.http_addr())
        .await
        .unwrap();
    let mut bytes = preface();
    bytes.extend(legacy_send(1, &scheme_indexed("ftp:"), &token));
    let outcome = exchange(&mut tcp, &bytes, 1).await;
    assert_eq!(
        outcome.reset,
        Some(0x1),
        "PROTOCOL_ERROR expected: {outcome:?}"
    );
    assert!(emu.inbox(&token).await.is_empty());
}
