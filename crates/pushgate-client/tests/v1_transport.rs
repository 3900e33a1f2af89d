//! The v1 sender's own HTTP transport (hyper's client, h2 directly for HTTP/2) against the
//! in-process emulator: through an HTTP `CONNECT` proxy and a SOCKS5 proxy (with
//! credentials), h2c and HTTPS with the emulator's CA inside the tunnel, a connection made
//! again after the idle timeout, and secrets kept out of failures.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use common::Emu;
use pushgate_client::oauth::{OAuthConfig, ServiceAccountTokenSource, key_from_json};
use pushgate_client::v1::{FcmV1Sender, Message, V1Config};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_proto::OutcomeKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PROJECT: &str = "transport-project";

/// What a test proxy saw: one entry per tunnel, with its target and credentials.
#[derive(Default)]
struct Seen {
    tunnels: AtomicUsize,
    targets: parking_lot::Mutex<Vec<String>>,
    credentials: parking_lot::Mutex<Vec<Option<String>>>,
    connections: parking_lot::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Seen {
    /// Cuts every connection made through the proxy so far.
    fn cut(&self) {
        for connection in self.connections.lock().drain(..) {
            connection.abort();
        }
    }
}

/// A `CONNECT`-only HTTP proxy on 127.0.0.1 that records each tunnel's target and
/// `Proxy-Authorization`.
async fn connect_proxy() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let handle = tokio::spawn(tunnel(inbound, shared.clone()));
            shared.connections.lock().push(handle.abort_handle());
        }
    });
    (addr, seen)
}

async fn tunnel(mut inbound: TcpStream, seen: Arc<Seen>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        inbound.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.split("\r\n");
    let request_line: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let auth = lines
        .find(|l| l.to_ascii_lowercase().starts_with("proxy-authorization:"))
        .map(|l| l["proxy-authorization:".len()..].trim().to_string());
    if request_line.first() != Some(&"CONNECT") || request_line.len() != 3 {
        inbound
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    }
    seen.tunnels.fetch_add(1, Ordering::SeqCst);
    seen.targets.lock().push(request_line[1].to_string());
    seen.credentials.lock().push(auth);
    let mut outbound = TcpStream::connect(request_line[1]).await?;
    inbound
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    Ok(())
}

/// A SOCKS5 proxy on 127.0.0.1 (no authentication, or username/password) that records
/// each connection's target and `user:password`.
async fn socks5_proxy() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(socks5(inbound, shared.clone()));
        }
    });
    (addr, seen)
}

async fn socks5(mut inbound: TcpStream, seen: Arc<Seen>) -> std::io::Result<()> {
    let mut greeting = [0u8; 2];
    inbound.read_exact(&mut greeting).await?;
    let mut methods = vec![0u8; greeting[1] as usize];
    inbound.read_exact(&mut methods).await?;
    let mut credentials = None;
    if methods.contains(&2) {
        inbound.write_all(&[5, 2]).await?;
        let mut version_and_len = [0u8; 2];
        inbound.read_exact(&mut version_and_len).await?;
        let mut user = vec![0u8; version_and_len[1] as usize];
        inbound.read_exact(&mut user).await?;
        let mut pass_len = [0u8; 1];
        inbound.read_exact(&mut pass_len).await?;
        let mut pass = vec![0u8; pass_len[0] as usize];
        inbound.read_exact(&mut pass).await?;
        credentials = Some(format!(
            "{}:{}",
            String::from_utf8_lossy(&user),
            String::from_utf8_lossy(&pass)
        ));
        inbound.write_all(&[1, 0]).await?;
    } else {
        inbound.write_all(&[5, 0]).await?;
    }
    let mut request = [0u8; 4];
    inbound.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            inbound.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            inbound.read_exact(&mut len).await?;
            let mut name = vec![0u8; len[0] as usize];
            inbound.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).to_string()
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    inbound.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    seen.tunnels.fetch_add(1, Ordering::SeqCst);
    seen.targets.lock().push(target.clone());
    seen.credentials.lock().push(credentials);
    let mut outbound = TcpStream::connect(&target).await?;
    inbound.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    Ok(())
}

/// An emulator with the test project, its service-account key and one device's token.
async fn one_device() -> (Emu, String, String) {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    (emu, key, token)
}

fn to_token(token: &str) -> Message {
    Message {
        token: Some(token.to_string()),
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

/// A sender whose sends use `http` (its proxy included) while its access tokens are
/// fetched directly, so that the proxy sees only the v1 requests.
fn sender(key_json: &str, base: &str, http: HttpConfig) -> FcmV1Sender {
    let key = key_from_json(key_json).unwrap();
    let tokens = ServiceAccountTokenSource::new(key, OAuthConfig::new()).unwrap();
    FcmV1Sender::new(
        tokens,
        V1Config::new()
            .with_http(http.with_endpoint(base))
            .with_connections(1)
            .with_retry_policy(RetryPolicy::default().with_max_attempts(1)),
    )
    .unwrap()
}

fn emulator_addr(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
async fn h2c_through_a_connect_proxy_with_credentials() {
    let emu = Emu::start().await;
    let key = emu.create_project(PROJECT).await;
    let tokens = emu.project_devices(PROJECT, 20).await;
    let (proxy, seen) = connect_proxy().await;
    let http = HttpConfig::new()
        .with_http2_prior_knowledge(true)
        .with_proxy(format!("http://alice:p%40ss@{proxy}"));
    let sender = sender(&key, &emu.base, http);
    let outcomes = sender
        .send_each(&tokens.iter().map(|t| to_token(t)).collect::<Vec<_>>())
        .await;
    assert!(outcomes.iter().all(|o| o.is_success()), "{outcomes:?}");
    assert_eq!(sender.last_http_version(), Some(http::Version::HTTP_2));
    // 20 concurrent sends share one multiplexed connection: one tunnel.
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.targets.lock(), vec![emulator_addr(&emu.base)]);
    let expected = base64::engine::general_purpose::STANDARD.encode("alice:p@ss");
    assert_eq!(
        *seen.credentials.lock(),
        vec![Some(format!("Basic {expected}"))]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn https_with_the_extra_ca_inside_a_connect_tunnel_negotiates_http2() {
    let emu = Emu::start_with_https().await;
    let https = emu.running.https_base_url().expect("https on");
    let ca = emu.running.tls_cert_pem().unwrap().as_bytes().to_vec();
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let (proxy, seen) = connect_proxy().await;
    let http = HttpConfig::new()
        .with_extra_ca_pem(ca)
        .with_extra_ca_only(true)
        .with_proxy(format!("http://{proxy}"));
    let sender = sender(&key, &https, http);
    let outcome = sender.send(&to_token(&token)).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(sender.last_http_version(), Some(http::Version::HTTP_2));
    assert_eq!(*seen.targets.lock(), vec![emulator_addr(&https)]);
    assert_eq!(*seen.credentials.lock(), vec![None]);
    emu.shutdown().await;
}

#[tokio::test]
async fn https_without_the_emulators_ca_is_refused() {
    let emu = Emu::start_with_https().await;
    let https = emu.running.https_base_url().expect("https on");
    let key = emu.create_project(PROJECT).await;
    let token = emu.project_devices(PROJECT, 1).await.remove(0);
    let sender = sender(&key, &https, HttpConfig::new());
    let outcome = sender.send(&to_token(&token)).await;
    assert_eq!(outcome.kind(), OutcomeKind::RetryLater, "{outcome:?}");
    let reason = outcome.reason().unwrap();
    assert!(reason.starts_with("transport: connect failed"), "{reason}");
    emu.shutdown().await;
}

#[tokio::test]
async fn http1_through_a_socks5_proxy_with_credentials() {
    let (emu, key, token) = one_device().await;
    let (proxy, seen) = socks5_proxy().await;
    let http = HttpConfig::new().with_proxy(format!("socks5://bob:hunter2@{proxy}"));
    let sender = sender(&key, &emu.base, http);
    let outcome = sender.send(&to_token(&token)).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(sender.last_http_version(), Some(http::Version::HTTP_11));
    assert_eq!(*seen.targets.lock(), vec![emulator_addr(&emu.base)]);
    assert_eq!(
        *seen.credentials.lock(),
        vec![Some("bob:hunter2".to_string())]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn h2c_through_a_socks5_proxy() {
    let (emu, key, token) = one_device().await;
    let (proxy, seen) = socks5_proxy().await;
    let http = HttpConfig::new()
        .with_http2_prior_knowledge(true)
        .with_proxy(format!("socks5h://{proxy}"));
    let sender = sender(&key, &emu.base, http);
    let outcome = sender.send(&to_token(&token)).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(sender.last_http_version(), Some(http::Version::HTTP_2));
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.credentials.lock(), vec![None]);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_and_made_again() {
    let (emu, key, token) = one_device().await;
    let (proxy, seen) = connect_proxy().await;
    let mut http = HttpConfig::new()
        .with_http2_prior_knowledge(true)
        .with_proxy(format!("http://{proxy}"));
    http.pool_idle_timeout = Duration::from_millis(100);
    let sender = sender(&key, &emu.base, http);
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 1);
    // Idle for a whole period (closed between one and two periods of idleness).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sender.send(&to_token(&token)).await.is_success());
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_connection_cut_under_the_sender_is_made_again() {
    let (emu, key, token) = one_device().await;
    let (proxy, seen) = connect_proxy().await;
    let http = HttpConfig::new()
        .with_http2_prior_knowledge(true)
        .with_proxy(format!("http://{proxy}"));
    let sender = sender(&key, &emu.base, http);
    assert!(sender.send(&to_token(&token)).await.is_success());
    seen.cut();
    // Give the connection's task a moment to see the close (a send racing it is sent
    // again on a new connection anyway).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let outcome = sender.send(&to_token(&token)).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn proxy_passwords_never_reach_a_failure() {
    // Nothing listens on port 1: the proxy cannot be reached.
    let (emu, key, token) = one_device().await;
    for proxy in [
        "http://alice:s3cr3t-pw@127.0.0.1:1",
        "socks5://alice:s3cr3t-pw@127.0.0.1:1",
    ] {
        let http = HttpConfig::new()
            .with_http2_prior_knowledge(true)
            .with_proxy(proxy);
        let sender = sender(&key, &emu.base, http);
        let outcome = sender.send(&to_token(&token)).await;
        assert_eq!(outcome.kind(), OutcomeKind::RetryLater, "{outcome:?}");
        let shown = format!("{outcome:?} {sender:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            outcome
                .reason()
                .unwrap()
                .starts_with("transport: connect failed"),
            "{outcome:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn requests_waiting_on_a_failed_connect_fail_with_it_not_one_after_another() {
    // A proxy that accepts and never answers CONNECT: every attempt hits the connect
    // timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let (emu, key, token) = one_device().await;
    let http = HttpConfig::new()
        .with_http2_prior_knowledge(true)
        .with_connect_timeout(Duration::from_millis(300))
        .with_proxy(format!("http://{proxy}"));
    let sender = sender(&key, &emu.base, http);
    let messages: Vec<Message> = (0..20).map(|_| to_token(&token)).collect();
    let started = std::time::Instant::now();
    let outcomes = sender.send_each(&messages).await;
    let elapsed = started.elapsed();
    for outcome in &outcomes {
        assert_eq!(outcome.kind(), OutcomeKind::RetryLater, "{outcome:?}");
        assert_eq!(
            outcome.reason(),
            Some("transport: timed out"),
            "{outcome:?}"
        );
    }
    // One attempt for all of them (20 in turn would take 6 s).
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    emu.shutdown().await;
}
