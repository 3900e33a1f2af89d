//! Slow and idle clients cannot exhaust the gateway: a `pushgate serve` with a low open-file
//! limit is held by more half-sent requests than it has file descriptors, and still answers
//! every normal request; the half-sent connections are closed once their deadline passes.

mod support;

use std::time::Duration;

use support::{TempDir, sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gateway's open-file limit.
const NOFILE: u32 = 256;
/// Half-sent requests held open at once: more than the gateway has descriptors.
const SLOW: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_beyond_the_file_limit_do_not_lock_out_normal_clients() {
    let dir = TempDir::new("slow-clients");
    // The deadline for a request head, short so that the test sees it pass.
    let env = [("PUSHGATE_LIMITS__HEADER_READ_TIMEOUT", "2s")];
    let (mut gw, base) = sandbox(&dir.0, "gw", NOFILE, &[], &env).await;
    let api_port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();

    // Hundreds of clients that start a request and never finish its head.
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(("127.0.0.1", api_port))
            .await
            .expect("the listener takes the connection");
        let _ = s.write_all(b"GET /v1/apps/sandbox/devi").await;
        slow.push(s);
    }
    // Normal clients, each on a new connection, are all answered meanwhile.
    for n in 0..20 {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let r = fresh
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("normal request {n} failed: {e}\n{}", gw.logs()));
        assert_eq!(r.status(), 200, "normal request {n}");
    }
    gw.check_alive();

    // Every half-sent connection is closed by the gateway within its deadline (2 s), either
    // to make room or when the deadline passed.
    let mut closed = 0;
    for mut s in slow {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, SLOW, "half-sent connections still open after 10 s");
    gw.check_alive();
}
