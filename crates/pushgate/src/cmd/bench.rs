//! `pushgate bench`: throughput against the emulator (in-process or a separate one). The
//! raw loops of `bench v1` and `bench legacy` are public functions: `bench e2e` measures the
//! provider's raw rate with them.
//!
//! Speed lives here and in `cargo bench`, never in timed tests. Every run prints what it
//! measured and checks the emulator's own delivery count against what was sent.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_client::HttpConfig;
use pushgate_client::legacy::{JsonMessage, LegacySender};
use pushgate_client::v1::FcmV1Sender;
use pushgate_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RunningEmulator};
use pushgate_proto::v1::oauth::ServiceAccountKey;
use serde::Deserialize;

/// Flags of `pushgate bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Legacy HTTP: tokens/s in 1000-id multicasts, then requests/s of single-token sends.
    Legacy(LegacyArgs),
    /// FCM v1: messages/s and latency over HTTP/2 (h2c), then over HTTP/1.1.
    V1(V1Args),
    /// CCS: downstream messages/s over 1 and over 4 XMPP connections (in-process emulator).
    Ccs(CcsArgs),
    /// The gateway alone, as its own process, through its HTTP API: the raw provider rate,
    /// a 100,000-device fan-out, then 100,000 single-device messages (accepted/s,
    /// deliveries/s, accept-to-delivery latency, the gateway's CPU and RSS).
    E2e(Box<super::bench_e2e::E2eArgs>),
    /// A steady load for a long time with retention set to minutes: once a minute the
    /// database's size, the gateway's RSS, the queue depth and the `/metrics` scrape time,
    /// which should all level off.
    Soak(super::bench_e2e::SoakArgs),
}

/// Flags of `pushgate bench ccs`.
#[derive(clap::Args)]
pub struct CcsArgs {
    /// Downstream messages per run.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Virtual devices to create.
    #[arg(long, default_value_t = 5000)]
    devices: usize,
    /// Unacked messages allowed per connection (CCS allows 100).
    #[arg(long, default_value_t = 100)]
    window: usize,
}

/// Flags of `pushgate bench v1`.
#[derive(clap::Args)]
pub struct V1Args {
    /// Base URL of a running emulator; by default one is started in-process.
    #[arg(long)]
    emulator: Option<String>,
    /// Messages to send per protocol run.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Virtual devices to create.
    #[arg(long, default_value_t = 5000)]
    devices: usize,
    /// Sends in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// HTTP/2 connections the sender spreads its streams over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Which protocol runs: both (h2c, then HTTP/1.1), or one of them (e.g. to profile it).
    #[arg(long, value_enum, default_value_t = V1Protocol::Both)]
    protocol: V1Protocol,
}

/// The protocols `pushgate bench v1` runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum V1Protocol {
    /// h2c, then HTTP/1.1.
    Both,
    /// HTTP/2 without TLS only.
    H2c,
    /// HTTP/1.1 keep-alive only.
    Http1,
}

/// Flags of `pushgate bench legacy`.
#[derive(clap::Args)]
pub struct LegacyArgs {
    /// Base URL of a running emulator; by default one is started in-process.
    #[arg(long)]
    emulator: Option<String>,
    /// Tokens to send in 1000-id multicasts.
    #[arg(long, default_value_t = 1_000_000)]
    tokens: usize,
    /// Single-token requests to send.
    #[arg(long, default_value_t = 100_000)]
    singles: usize,
    /// Virtual devices to create (tokens are reused across requests).
    #[arg(long, default_value_t = 5000)]
    devices: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Speak h2c (HTTP/2 without TLS) instead of HTTP/1.1 keep-alive.
    #[arg(long)]
    h2c: bool,
}

/// Runs the chosen benchmark.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Which::Legacy(args) => legacy(args).await,
        Which::V1(args) => v1(args).await,
        Which::Ccs(args) => ccs(args).await,
        Which::E2e(args) => super::bench_e2e::run(*args).await,
        Which::Soak(args) => super::bench_e2e::run_soak(args).await,
    }
}

#[derive(Deserialize)]
struct Devices {
    devices: Vec<Device>,
}

#[derive(Deserialize)]
struct Device {
    token: String,
}

#[derive(Deserialize)]
struct Stats {
    delivered: u64,
}

/// The emulator under load: a running one, or one started here (kept alive by the guard).
async fn emulator(url: Option<String>) -> anyhow::Result<(String, Option<RunningEmulator>)> {
    match url {
        Some(url) => Ok((url.trim_end_matches('/').to_string(), None)),
        None => {
            let running = Emulator::start(EmulatorConfig {
                http: "127.0.0.1:0".parse()?,
                inbox_limit: 4,
                ..EmulatorConfig::default()
            })
            .await
            .context("cannot start the in-process emulator")?;
            Ok((running.base_url(), Some(running)))
        }
    }
}

async fn control<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> anyhow::Result<T> {
    let mut request = http.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?.error_for_status()?;
    Ok(response.json().await?)
}

/// The emulator's counters.
async fn stats(http: &reqwest::Client, base: &str) -> anyhow::Result<Stats> {
    control(
        http,
        reqwest::Method::GET,
        format!("{base}/emulator/stats"),
        None,
    )
    .await
}

/// Creates virtual devices as `spec` says and returns their tokens.
pub async fn create_devices(
    http: &reqwest::Client,
    base: &str,
    spec: serde_json::Value,
) -> anyhow::Result<Vec<String>> {
    let devices: Devices = control(
        http,
        reqwest::Method::POST,
        format!("{base}/emulator/devices"),
        Some(spec),
    )
    .await?;
    Ok(devices.devices.into_iter().map(|d| d.token).collect())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// Runs `count` operations with `concurrency` in flight; returns sorted per-op latencies.
/// An operation fails the benchmark by returning an error (e.g. a token not delivered).
async fn drive<F, Fut>(count: usize, concurrency: usize, op: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut latencies = Vec::with_capacity(count);
    let mut stream = futures_util::stream::iter(0..count)
        .map(|i| {
            let fut = op(i);
            async move {
                let started = Instant::now();
                let result = fut.await;
                (started.elapsed(), result)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((elapsed, result)) = stream.next().await {
        result?;
        latencies.push(elapsed);
    }
    latencies.sort();
    Ok(latencies)
}

/// Sends one legacy message and fails unless every token was delivered.
async fn send_legacy(sender: &LegacySender, message: JsonMessage) -> anyhow::Result<()> {
    let result = sender
        .send(&message)
        .await
        .context("a benchmark request failed")?;
    // Tokens are paired with their outcomes (a copy of each) only to name a failure.
    if let Some(i) = result.outcome_list().iter().position(|o| !o.is_success()) {
        let (token, outcome) = &result.outcomes()[i];
        bail!("token {token} was not delivered: {outcome:?}");
    }
    Ok(())
}

fn report(label: &str, units: usize, unit: &str, elapsed: Duration, latencies: &[Duration]) {
    println!(
        "{label}: {units} {unit} in {:.2} s = {:.0} {unit}/s; request latency p50 {:.1} ms, p99 {:.1} ms ({} requests)",
        elapsed.as_secs_f64(),
        units as f64 / elapsed.as_secs_f64(),
        percentile(latencies, 0.50).as_secs_f64() * 1e3,
        percentile(latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
    );
}

async fn legacy(args: LegacyArgs) -> anyhow::Result<ExitCode> {
    let (base, _guard) = emulator(args.emulator).await?;
    let control_http = reqwest::Client::new();
    let tokens = create_devices(
        &control_http,
        &base,
        serde_json::json!({"count": args.devices.max(1)}),
    )
    .await?;
    let before: Stats = stats(&control_http, &base).await?;
    let sender = legacy_sender(&base, args.h2c)?;
    let protocol = if args.h2c { "h2c" } else { "HTTP/1.1" };
    println!(
        "bench legacy: emulator {base}, {} devices, concurrency {}, {protocol}",
        tokens.len(),
        args.concurrency
    );

    // 1. Multicasts of 1000 ids.
    let rate = legacy_multicasts(&sender, &tokens, args.tokens, args.concurrency).await?;
    rate.report("multicast (1000 ids)");

    // 2. Single-token requests.
    let started = Instant::now();
    let latencies = drive(args.singles, args.concurrency, |i| {
        let message =
            JsonMessage::new([tokens[i % tokens.len()].clone()]).data("seq", i.to_string());
        send_legacy(&sender, message)
    })
    .await?;
    report(
        "single-token",
        args.singles,
        "requests",
        started.elapsed(),
        &latencies,
    );

    let after: Stats = stats(&control_http, &base).await?;
    let delivered = after.delivered - before.delivered;
    let expected = (args.tokens + args.singles) as u64;
    println!("emulator counted {delivered} deliveries (expected {expected})");
    if delivered != expected {
        bail!("the emulator counted {delivered} deliveries, not {expected}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What one of the raw provider loops measured: `units` sent in `elapsed`, and the sorted
/// latency of every request.
pub struct RawRate {
    /// Messages (v1) or tokens (legacy multicasts) delivered.
    pub units: usize,
    /// The unit's name, for the reports.
    pub unit: &'static str,
    /// First request sent to the last answer received.
    pub elapsed: Duration,
    /// Round trip of every request, sorted.
    pub latencies: Vec<Duration>,
}

impl RawRate {
    /// Units per second.
    pub fn per_sec(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints the figure as `bench legacy` / `bench v1` always have.
    pub fn report(&self, label: &str) {
        report(label, self.units, self.unit, self.elapsed, &self.latencies);
    }
}

/// The legacy sender of the benchmarks: the emulator's default server key, HTTP/1.1
/// keep-alive or h2c.
pub fn legacy_sender(base: &str, h2c: bool) -> anyhow::Result<LegacySender> {
    let config = HttpConfig::new()
        .with_endpoint(format!("{base}/gcm/send"))
        .with_http2_prior_knowledge(h2c);
    Ok(LegacySender::new(DEFAULT_API_KEY, config)?)
}

/// The token lists `bench legacy` has built, by (first token's index, length).
type TokenLists = HashMap<(usize, usize), Arc<[String]>>;

/// The `bench legacy` multicast loop: `total` tokens (cycling through `tokens`) in 1000-id
/// multicasts, `concurrency` requests in flight; fails unless every token was delivered.
///
/// Each distinct list of 1000 tokens is built once and shared by the requests that send it
/// (as h2load sends one body file), so that the figure is the client's cost, not the
/// driver's copying of tokens.
pub async fn legacy_multicasts(
    sender: &LegacySender,
    tokens: &[String],
    total: usize,
    concurrency: usize,
) -> anyhow::Result<RawRate> {
    if tokens.is_empty() {
        bail!("no device tokens to send to");
    }
    let chunks = total.div_ceil(1000);
    let lists: Mutex<TokenLists> = Mutex::default();
    let started = Instant::now();
    let latencies = drive(chunks, concurrency, |c| {
        let n = (total - c * 1000).min(1000);
        let first = (c * 1000) % tokens.len();
        let ids = lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((first, n))
            .or_insert_with(|| {
                (0..n)
                    .map(|i| tokens[(first + i) % tokens.len()].clone())
                    .collect()
            })
            .clone();
        send_legacy(
            sender,
            JsonMessage::to_shared_tokens(ids).data("seq", c.to_string()),
        )
    })
    .await?;
    Ok(RawRate {
        units: total,
        unit: "tokens",
        elapsed: started.elapsed(),
        latencies,
    })
}

async fn v1(args: V1Args) -> anyhow::Result<ExitCode> {
    let (base, _guard) = emulator(args.emulator).await?;
    let control_http = reqwest::Client::new();
    let (key, tokens) = v1_setup(&control_http, &base, args.devices).await?;
    println!(
        "bench v1: emulator {base}, {} devices, {} in flight, {} connections",
        tokens.len(),
        args.concurrency,
        args.connections
    );
    let runs = [("HTTP/2 (h2c)", true), ("HTTP/1.1", false)]
        .into_iter()
        .filter(|(_, h2c)| match args.protocol {
            V1Protocol::Both => true,
            V1Protocol::H2c => *h2c,
            V1Protocol::Http1 => !*h2c,
        });
    for (label, h2c) in runs {
        let sender = v1_sender(&base, &key, h2c, args.connections, args.concurrency)?;
        let before: Stats = stats(&control_http, &base).await?;
        let rate = v1_sends(&sender, &tokens, args.messages, args.concurrency).await?;
        rate.report(label);
        let after: Stats = stats(&control_http, &base).await?;
        let delivered = after.delivered - before.delivered;
        if delivered != args.messages as u64 {
            bail!(
                "the emulator counted {delivered} deliveries, not {}",
                args.messages
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Readies the emulator at `base` for `bench v1`: fetches its default project's key, lifts
/// the project's quota (the benchmark measures throughput, not the quota) and creates
/// `devices` virtual devices of that project; returns the key and the devices' tokens.
pub async fn v1_setup(
    http: &reqwest::Client,
    base: &str,
    devices: usize,
) -> anyhow::Result<(ServiceAccountKey, Vec<String>)> {
    let project = pushgate_emulator::DEFAULT_PROJECT_ID;
    let key: serde_json::Value = control(
        http,
        reqwest::Method::GET,
        format!("{base}/emulator/projects/{project}/key"),
        None,
    )
    .await?;
    control::<serde_json::Value>(
        http,
        reqwest::Method::PUT,
        format!("{base}/emulator/projects/{project}/quota"),
        Some(serde_json::json!({"per_minute": 1_000_000_000u64})),
    )
    .await?;
    let tokens = create_devices(
        http,
        base,
        serde_json::json!({"count": devices.max(1), "project_id": project}),
    )
    .await?;
    let key = pushgate_client::oauth::key_from_json(&key.to_string())?;
    Ok((key, tokens))
}

/// The v1 sender of the benchmarks: no client-side pacing, `connections` pooled
/// connections (h2c or HTTP/1.1), `in_flight` requests at once.
pub fn v1_sender(
    base: &str,
    key: &ServiceAccountKey,
    h2c: bool,
    connections: usize,
    in_flight: usize,
) -> anyhow::Result<FcmV1Sender> {
    let config = pushgate_client::v1::V1Config::new()
        // The base URL lives in the HTTP config: set it after `with_http`.
        .with_http(HttpConfig::new().with_http2_prior_knowledge(h2c))
        .with_base_url(base.to_string())
        .with_connections(connections)
        .with_max_in_flight(in_flight)
        .with_rate_limit(None);
    Ok(FcmV1Sender::from_service_account(key.clone(), config)?)
}

/// The `bench v1` loop: `messages` single-token sends (cycling through `tokens`),
/// `concurrency` in flight; fails unless every one was delivered.
pub async fn v1_sends(
    sender: &FcmV1Sender,
    tokens: &[String],
    messages: usize,
    concurrency: usize,
) -> anyhow::Result<RawRate> {
    if tokens.is_empty() {
        bail!("no device tokens to send to");
    }
    let started = Instant::now();
    let latencies = drive(messages, concurrency, |i| {
        let message = pushgate_client::v1::Message {
            token: Some(tokens[i % tokens.len()].clone()),
            data: Some([("seq".to_string(), i.to_string())].into()),
            ..Default::default()
        };
        async move {
            let outcome = sender.send(&message).await;
            if !outcome.is_success() {
                bail!("message {i} was not delivered: {outcome:?}");
            }
            Ok(())
        }
    })
    .await?;
    Ok(RawRate {
        units: messages,
        unit: "messages",
        elapsed: started.elapsed(),
        latencies,
    })
}

async fn ccs(args: CcsArgs) -> anyhow::Result<ExitCode> {
    let running = Emulator::start(EmulatorConfig {
        http: "127.0.0.1:0".parse()?,
        xmpp: Some("127.0.0.1:0".parse()?),
        inbox_limit: 4,
        ..EmulatorConfig::default()
    })
    .await
    .context("cannot start the in-process emulator")?;
    let base = running.base_url();
    let xmpp = running
        .xmpp_addr()
        .context("the emulator has no XMPP listener")?;
    let ca = running
        .tls_cert_pem()
        .context("the emulator has no certificate")?
        .to_string();
    let control_http = reqwest::Client::new();
    let tokens = create_devices(
        &control_http,
        &base,
        serde_json::json!({"count": args.devices.max(1)}),
    )
    .await?;
    println!(
        "bench ccs: emulator {xmpp}, {} devices, window {} per connection",
        tokens.len(),
        args.window
    );
    for connections in [1usize, 4] {
        let config = pushgate_client::ccs::CcsConfig::new(
            xmpp.ip().to_string(),
            xmpp.port(),
            pushgate_emulator::DEFAULT_SENDER_ID,
            DEFAULT_API_KEY,
        )
        .with_ca_pem(ca.clone())
        .with_connections(connections)
        .with_window(args.window);
        let (client, _upstream) = pushgate_client::ccs::CcsClient::connect(config).await?;
        let started = Instant::now();
        let latencies = drive(args.messages, connections * args.window, |i| {
            let message = pushgate_client::ccs::CcsMessage::to(tokens[i % tokens.len()].clone())
                .data("seq", i.to_string());
            let client = &client;
            async move {
                let outcome = client.send(message).await?;
                if !outcome.is_success() {
                    bail!("message {i} was not delivered: {outcome:?}");
                }
                Ok(())
            }
        })
        .await?;
        report(
            &format!("{connections} connection(s)"),
            args.messages,
            "messages",
            started.elapsed(),
            &latencies,
        );
        client.close();
    }
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
