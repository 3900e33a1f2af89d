//! Several `pushgate serve` processes on one PostgreSQL database, against one emulator process:
//! every delivery made once while all live, a SIGKILLed instance's work taken over with at most
//! its unrecorded window sent twice, an instance started mid-run taking a share, and the
//! database going away and coming back without losing an accepted message.
//!
//! PostgreSQL comes from `PUSHGATE_TEST_POSTGRES` (see `pushgate_testkit::postgres`): without
//! it these tests fail when `CI` is set and say `skipped` loudly otherwise.

mod cluster {
    pub mod proxy;
}
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cluster::proxy::Proxy;
use pushgate_testkit::postgres::{Schema, fresh_schema};
use pushgate_testkit::{eventually, eventually_ok};
use serde_json::{Value, json};
use support::{GatewayProcess, TempDir, client, free_port};

const KEY: &str = "cluster-test-key-0123456789";
/// Ids per legacy request: a claim is cut into multicasts of at most this many.
const CLAIM_BATCH: u64 = 1000;
/// Legacy requests one instance has in flight at once.
const IN_FLIGHT: u64 = 2;

/// The emulator, a process of its own.
struct Emulator {
    _process: GatewayProcess,
    base: String,
}

impl Emulator {
    async fn start(dir: &Path) -> Emulator {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        command
            .arg("emulator")
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--no-xmpp");
        let mut process = GatewayProcess::spawn_command(command, dir, "emulator");
        let base = format!("http://127.0.0.1:{port}");
        let http = client();
        eventually_ok(
            "the emulator to answer",
            Duration::from_secs(30),
            async || {
                process.check_alive();
                support::answers(&http, &base, "/emulator/stats", &process).await
            },
        )
        .await;
        Emulator {
            _process: process,
            base,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = client()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// `n` virtual devices; their tokens.
    async fn devices(&self, n: usize) -> Vec<String> {
        let answer = self.post("/emulator/devices", json!({"count": n})).await;
        answer["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["token"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every legacy request answers `delay_ms` later (a slow provider keeps work in flight),
    /// instead of any delay set before.
    async fn slow_down(&self, delay_ms: u64) {
        let cleared = client()
            .delete(format!("{}/emulator/faults", self.base))
            .send()
            .await
            .unwrap();
        assert!(cleared.status().is_success(), "{}", cleared.status());
        self.post(
            "/emulator/faults",
            json!({"path": "/fcm/send", "delay_ms": delay_ms, "count": 1_000_000}),
        )
        .await;
    }

    /// (delivered, duplicates): payloads stored in inboxes, and those stored twice.
    async fn counts(&self) -> (u64, u64) {
        let stats: Value = client()
            .get(format!("{}/emulator/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            stats["delivered"].as_u64().unwrap(),
            stats["duplicates"].as_u64().unwrap(),
        )
    }
}

/// One gateway instance.
struct Instance {
    process: GatewayProcess,
    base: String,
}

impl Instance {
    /// `pushgate serve` on `database` with the legacy channel pointing at the emulator.
    async fn start(dir: &Path, name: &'static str, database: &str, emulator: &Emulator) -> Self {
        let channel = format!(
            r#"[apps.shop.channels.legacy]
kind = "legacy"
endpoint = "{emu}/fcm/send"
api_key = "emulator-key"
max_in_flight = {IN_FLIGHT}
timeout = "2s"
"#,
            emu = emulator.base
        );
        Self::start_with(dir, name, database, &channel).await
    }

    /// `pushgate serve` on `database` with the app's channel as `channel` (TOML).
    async fn start_with(dir: &Path, name: &'static str, database: &str, channel: &str) -> Self {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"database = "{database}"
instance_id = "{name}"
[delivery]
lease = "3s"
claim_batch = {CLAIM_BATCH}
idle_poll = "200ms"
retry_initial = "200ms"
[apps.shop]
default = true
api_keys = ["{KEY}"]
{channel}"#
            ),
        )
        .unwrap();
        let port = free_port();
        let mut serve = Command::new(env!("CARGO_BIN_EXE_pushgate"));
        serve
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env(
                "RUST_LOG",
                "warn,pushgate_gateway::service=info,pushgate_gateway::cluster=info",
            );
        let mut process = GatewayProcess::spawn_command(serve, dir, name);
        let base = format!("http://127.0.0.1:{port}");
        let http = client();
        let what = format!("{name} to be ready");
        eventually_ok(&what, Duration::from_secs(60), async || {
            process.check_alive();
            support::answers(&http, &base, "/readyz", &process).await
        })
        .await;
        Instance { process, base }
    }

    /// Posts one message to `tokens`; the answer's status and body.
    async fn send(&self, tokens: &[String]) -> (u16, Value) {
        let r = client()
            .post(format!("{}/v1/apps/shop/messages", self.base))
            .bearer_auth(KEY)
            .json(&json!({"targets": {"tokens": tokens}, "data": {"n": "1"}}))
            .send()
            .await;
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Deliveries this instance recorded as delivered (its own `/metrics`).
    async fn delivered(&self) -> u64 {
        self.series(|l| {
            l.starts_with("pushgate_provider_outcomes_total{")
                && l.contains(r#"outcome="delivered""#)
        })
        .await
        .iter()
        .sum::<f64>() as u64
    }

    /// The first series of this instance's `/metrics` whose line starts with `prefix`.
    async fn metric(&self, prefix: &str) -> Option<f64> {
        self.series(|l| l.starts_with(prefix))
            .await
            .first()
            .copied()
    }

    /// The values of the `/metrics` lines `pick` chooses (none when the scrape fails).
    async fn series(&self, pick: impl Fn(&str) -> bool) -> Vec<f64> {
        let Ok(answer) = client().get(format!("{}/metrics", self.base)).send().await else {
            return Vec::new();
        };
        let text = answer.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| pick(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect()
    }

    async fn ready_status(&self) -> Option<u16> {
        client()
            .get(format!("{}/readyz", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }
}

/// A schema of its own on the test server, or `None` (skipped outside CI).
async fn database() -> Option<Schema> {
    fresh_schema().await
}

/// Sends `tokens` in messages of 5,000 (152-character tokens: under the 1 MiB body limit) spread over `instances`; the accepted token count.
async fn send_all(instances: &[&Instance], tokens: &[String]) -> u64 {
    let mut accepted = 0;
    for (i, chunk) in tokens.chunks(5_000).enumerate() {
        let (status, body) = instances[i % instances.len()].send(chunk).await;
        assert_eq!(status, 202, "{body}");
        accepted += chunk.len() as u64;
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_100k_each_exactly_once() {
    let Some(schema) = database().await else {
        return;
    };
    let dir = TempDir::new("cluster-three");
    let emulator = Emulator::start(&dir.0).await;
    emulator.slow_down(50).await;
    let a = Instance::start(&dir.0, "a", schema.url(), &emulator).await;
    let b = Instance::start(&dir.0, "b", schema.url(), &emulator).await;
    let c = Instance::start(&dir.0, "c", schema.url(), &emulator).await;
    let tokens = emulator.devices(100_000).await;
    let accepted = send_all(&[&a, &b, &c], &tokens).await;

    eventually("100,000 deliveries", Duration::from_secs(240), async || {
        let (delivered, _) = emulator.counts().await;
        (delivered >= accepted).then_some(())
    })
    .await;
    // Give a late duplicate the time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (delivered, duplicates) = emulator.counts().await;
    assert_eq!(
        duplicates, 0,
        "no delivery was made twice while all three lived"
    );
    assert_eq!(delivered, 100_000);
    let shares = [
        a.delivered().await,
        b.delivered().await,
        c.delivered().await,
    ];
    assert_eq!(shares.iter().sum::<u64>(), 100_000, "{shares:?}");
    assert!(
        shares.iter().all(|s| *s > 0),
        "every instance took a share: {shares:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_work_is_taken_over_and_a_new_one_takes_a_share() {
    let Some(schema) = database().await else {
        return;
    };
    let dir = TempDir::new("cluster-kill");
    let emulator = Emulator::start(&dir.0).await;
    // Slow answers keep work in flight when the instance dies, and the run long enough for a
    // fourth instance to join.
    emulator.slow_down(400).await;
    let a = Instance::start(&dir.0, "a", schema.url(), &emulator).await;
    let mut b = Instance::start(&dir.0, "b", schema.url(), &emulator).await;
    let c = Instance::start(&dir.0, "c", schema.url(), &emulator).await;
    let tokens = emulator.devices(100_000).await;
    let accepted = send_all(&[&a, &b, &c], &tokens).await;

    eventually(
        "the first 20,000 deliveries",
        Duration::from_secs(120),
        async || {
            let (delivered, _) = emulator.counts().await;
            (delivered >= 20_000).then_some(())
        },
    )
    .await;
    let b_delivered = b.delivered().await;
    assert!(b_delivered > 0, "b worked before it died");
    b.process.kill(); // SIGKILL: no graceful release
    // Slower answers while the fourth instance starts (under the channel's 2 s timeout): a
    // and c cannot drain the queue before it claims, however slowly it starts on a busy
    // machine.
    emulator.slow_down(1500).await;
    let d = Instance::start(&dir.0, "d", schema.url(), &emulator).await;
    emulator.slow_down(400).await;

    eventually(
        "every accepted delivery",
        Duration::from_secs(240),
        async || {
            let (delivered, duplicates) = emulator.counts().await;
            (delivered - duplicates >= accepted).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await; // past a lease: any late resend shows
    let (delivered, duplicates) = emulator.counts().await;
    assert_eq!(
        delivered - duplicates,
        100_000,
        "every token got the message"
    );
    // What b had claimed but not recorded: at most its unrecorded window (its requests in
    // flight and one more batch whose answers await their commit) and one claim waiting for
    // a slot.
    let window = CLAIM_BATCH * (IN_FLIGHT + 2);
    assert!(
        duplicates <= window,
        "{duplicates} duplicates, more than the killed instance's window of {window}"
    );
    assert!(
        d.delivered().await > 0,
        "the instance started mid-run took a share"
    );
    let (mut a, mut c) = (a, c);
    a.process.check_alive();
    c.process.check_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_wait_out_a_lost_database_and_lose_nothing_accepted() {
    let Some(schema) = database().await else {
        return;
    };
    let dir = TempDir::new("cluster-db-away");
    let server = reqwest::Url::parse(schema.url()).unwrap();
    let upstream: SocketAddr = format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port().unwrap_or(5432)
    )
    .parse()
    .unwrap();
    let proxy = Proxy::start(upstream).await;
    let mut through = server.clone();
    through.set_port(Some(proxy.addr.port())).unwrap();
    let database = through.to_string();

    let emulator = Emulator::start(&dir.0).await;
    let a = Instance::start(&dir.0, "a", &database, &emulator).await;
    let b = Instance::start(&dir.0, "b", &database, &emulator).await;
    let tokens = emulator.devices(20_000).await;
    let mut accepted = send_all(&[&a, &b], &tokens[..10_000]).await;

    proxy.down();
    for instance in [&a, &b] {
        eventually(
            "readiness to say the database is away",
            Duration::from_secs(60),
            async || (instance.ready_status().await == Some(503)).then_some(()),
        )
        .await;
    }
    // While it is away nothing is accepted (the API says so), and nothing crashes.
    let (status, _) = a.send(&tokens[10_000..10_010]).await;
    assert_ne!(status, 202, "a message was accepted with no database");

    proxy.up();
    for instance in [&a, &b] {
        eventually(
            "readiness to come back",
            Duration::from_secs(60),
            async || (instance.ready_status().await == Some(200)).then_some(()),
        )
        .await;
    }
    accepted += send_all(&[&b, &a], &tokens[10_000..]).await;
    eventually(
        "every accepted delivery",
        Duration::from_secs(120),
        async || {
            let (delivered, duplicates) = emulator.counts().await;
            (delivered - duplicates >= accepted).then_some(())
        },
    )
    .await;
    let (delivered, duplicates) = emulator.counts().await;
    assert_eq!(delivered - duplicates, 20_000);
    let mut a = a;
    let mut b = b;
    a.process.check_alive();
    b.process.check_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_a_v1_project_rate_and_name_themselves() {
    let Some(schema) = database().await else {
        return;
    };
    let dir = TempDir::new("cluster-rate");
    let emulator = Emulator::start(&dir.0).await;
    let key = client()
        .get(format!(
            "{}/emulator/projects/pushgate-emulator/key",
            emulator.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key_file = dir.0.join("service-account.json");
    std::fs::write(&key_file, key).unwrap();
    // 600 per minute for the project: 10/s with a burst of 10, whatever the instances.
    let channel = format!(
        r#"[apps.shop.channels.fcm]
kind = "fcm_v1"
service_account = "{}"
base_url = "{}"
http2_prior_knowledge = true
rate_per_minute = 600
"#,
        key_file.display(),
        emulator.base
    );
    let a = Instance::start_with(&dir.0, "a", schema.url(), &channel).await;
    let b = Instance::start_with(&dir.0, "b", schema.url(), &channel).await;
    for instance in [&a, &b] {
        eventually(
            "both instances to count each other",
            Duration::from_secs(30),
            async || (instance.metric("pushgate_instances_alive").await == Some(2.0)).then_some(()),
        )
        .await;
    }
    assert_eq!(
        a.metric(r#"pushgate_instance_info{instance_id="a"}"#).await,
        Some(1.0),
        "each instance names itself in its metrics"
    );
    assert!(
        a.process.stderr().contains("instance=a"),
        "the start-up log line names the instance\n{}",
        a.process.stderr()
    );

    let tokens = emulator.devices(300).await;
    let started = std::time::Instant::now();
    for (i, chunk) in tokens.chunks(10).enumerate() {
        let (status, body) = [&a, &b][i % 2].send(chunk).await;
        assert_eq!(status, 202, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(started.elapsed())).await;
    let window = started.elapsed().as_secs_f64();
    let (delivered, _) = emulator.counts().await;
    // One project budget for the cluster: at most 10/s plus one burst of 10 (two instances
    // each pacing at the full rate would send twice that).
    let budget = (10.0 * window + 10.0).ceil() as u64;
    assert!(
        delivered <= budget,
        "{delivered} sent in {window:.1}s, over the project's {budget}"
    );
    eventually(
        "the paced sends to go on",
        Duration::from_secs(30),
        async || (emulator.counts().await.0 > delivered).then_some(()),
    )
    .await;
}
