//! `pushgate bench`: throughput against the emulator (in-process or a separate one).
//!
//! Speed lives here and in `cargo bench`, never in timed tests. Every run prints what it
//! measured and checks the emulator's own delivery count against what was sent.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_client::HttpConfig;
use pushgate_client::legacy::{JsonMessage, LegacySender};
use pushgate_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RunningEmulator};
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

/// Sends `requests` (built lazily) with bounded concurrency; returns per-request latencies.
async fn drive(
    sender: &LegacySender,
    messages: impl Iterator<Item = JsonMessage>,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut stream = futures_util::stream::iter(messages)
        .map(|message| async move {
            let started = Instant::now();
            let result = sender.send(&message).await;
            (started.elapsed(), result)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((elapsed, result)) = stream.next().await {
        let result = result.context("a benchmark request failed")?;
        if let Some((token, outcome)) = result.outcomes().iter().find(|(_, o)| !o.is_success()) {
            bail!("token {token} was not delivered: {outcome:?}");
        }
        latencies.push(elapsed);
    }
    latencies.sort();
    Ok(latencies)
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
    let devices: Devices = control(
        &control_http,
        reqwest::Method::POST,
        format!("{base}/emulator/devices"),
        Some(serde_json::json!({"count": args.devices.max(1)})),
    )
    .await?;
    let tokens: Vec<String> = devices.devices.into_iter().map(|d| d.token).collect();
    let before: Stats = control(
        &control_http,
        reqwest::Method::GET,
        format!("{base}/emulator/stats"),
        None,
    )
    .await?;

    let config = HttpConfig::new()
        .with_endpoint(format!("{base}/gcm/send"))
        .with_http2_prior_knowledge(args.h2c);
    let sender = LegacySender::new(DEFAULT_API_KEY, config)?;
    let protocol = if args.h2c { "h2c" } else { "HTTP/1.1" };
    println!(
        "bench legacy: emulator {base}, {} devices, concurrency {}, {protocol}",
        tokens.len(),
        args.concurrency
    );

    // 1. Multicasts of 1000 ids.
    let chunks = args.tokens.div_ceil(1000);
    let multicast = (0..chunks).map(|c| {
        let n = (args.tokens - c * 1000).min(1000);
        let ids: Vec<String> = (0..n)
            .map(|i| tokens[(c * 1000 + i) % tokens.len()].clone())
            .collect();
        JsonMessage::new(ids).data("seq", c.to_string())
    });
    let started = Instant::now();
    let latencies = drive(&sender, multicast, args.concurrency).await?;
    report(
        "multicast (1000 ids)",
        args.tokens,
        "tokens",
        started.elapsed(),
        &latencies,
    );

    // 2. Single-token requests.
    let singles = (0..args.singles)
        .map(|i| JsonMessage::new([tokens[i % tokens.len()].clone()]).data("seq", i.to_string()));
    let started = Instant::now();
    let latencies = drive(&sender, singles, args.concurrency).await?;
    report(
        "single-token",
        args.singles,
        "requests",
        started.elapsed(),
        &latencies,
    );

    let after: Stats = control(
        &control_http,
        reqwest::Method::GET,
        format!("{base}/emulator/stats"),
        None,
    )
    .await?;
    let delivered = after.delivered - before.delivered;
    let expected = (args.tokens + args.singles) as u64;
    println!("emulator counted {delivered} deliveries (expected {expected})");
    if delivered != expected {
        bail!("the emulator counted {delivered} deliveries, not {expected}");
    }
    Ok(ExitCode::SUCCESS)
}
