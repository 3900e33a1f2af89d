//! `pushgate demo`: the whole product on one machine in under a minute. It starts the sandbox
//! (gateway and in-process emulator), registers virtual devices through the C2DM-era flow and
//! through the REST API, sends a broadcast, a topic message and a condition message while some
//! devices are uninstalled and some rotate their tokens, has some devices send upstream
//! messages over CCS, and prints what happened — checked against the emulator's own counts.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use indicatif::MultiProgress;
use pushgate_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use pushgate_gateway::config::{Secret, ServiceSettings};
use pushgate_gateway::sandbox::{SANDBOX_APP, sandbox_spec};
use pushgate_gateway::{Gateway, RunningGateway};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::gateway_client::{GatewayClient, MessageStatus};
use crate::support::progress;

/// Flags of `pushgate demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Virtual devices (a quarter register through the C2DM-era flow, the rest through the API).
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Of the API devices, the share (in %) uninstalled from the emulator mid-run.
    #[arg(long, default_value_t = 2)]
    uninstall_percent: usize,
    /// Of the legacy devices, the share (in %) whose token rotates mid-run.
    #[arg(long, default_value_t = 10)]
    rotate_percent: usize,
    /// Devices that send an upstream message over CCS.
    #[arg(long, default_value_t = 50)]
    upstream: usize,
    /// Longest the demo may take before it gives up.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// How the API devices are spread over the sandbox's channels, in tenths.
const V1_TENTHS: usize = 6;
const LEGACY_TENTHS: usize = 3;

/// One API device of the demo.
struct Planned {
    device_id: String,
    token: String,
    channel: &'static str,
    topics: Vec<&'static str>,
}

/// Where every part runs.
struct Demo {
    emulator: RunningEmulator,
    gateway: RunningGateway,
    client: GatewayClient,
    http: reqwest::Client,
    emu: String,
    started: Instant,
    deadline: Instant,
    _dir: tempfile::TempDir,
}

/// Runs the demo.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.devices < 40 {
        bail!("--devices must be at least 40");
    }
    let demo = start(&args).await?;
    let outcome = script(&demo, &args).await;
    demo.gateway.shutdown().await;
    demo.emulator.shutdown().await;
    outcome
}

async fn start(args: &Args) -> anyhow::Result<Demo> {
    let started = Instant::now();
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let emulator = Emulator::start(EmulatorConfig {
        http: any,
        xmpp: Some(any),
        inbox_limit: 16,
        ..EmulatorConfig::default()
    })
    .await
    .context("cannot start the emulator")?;
    let emu = emulator.base_url();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let described = crate::support::sandbox_emulator::describe(
        &http,
        &emu,
        emulator.xmpp_addr(),
        emulator.tls_cert_pem().map(str::to_string),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let key = format!("demo-{}", uuid_like());
    let service = ServiceSettings {
        listen: any,
        database: dir.path().join("demo.db").to_string_lossy().into_owned(),
        ..ServiceSettings::default()
    };
    let mut spec = sandbox_spec(service, Secret::new(key.clone(), "demo"), &described);
    spec.delivery.idle_poll = Duration::from_millis(100);
    let gateway = Gateway::start(&spec).await?;
    let client = GatewayClient::new(&gateway.base_url(), &key, Duration::from_secs(30), None)?;
    Ok(Demo {
        emulator,
        gateway,
        client,
        http,
        emu,
        started,
        deadline: started + args.timeout,
        _dir: dir,
    })
}

fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Demo {
    async fn emu_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.emu))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("emulator {path}: {status} {v}");
        }
        Ok(v)
    }

    async fn emu_get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.emu))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    fn check_time(&self) -> anyhow::Result<()> {
        if Instant::now() > self.deadline {
            bail!("the demo ran out of time");
        }
        Ok(())
    }

    /// Events of one type, all of them.
    async fn events(&self, kind: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .client
                .events(SANDBOX_APP, after, Some(kind), 1000)
                .await?;
            if page.events.is_empty() {
                return Ok(out);
            }
            after = page.next_cursor;
            out.extend(page.events);
        }
    }
}

async fn tokens(demo: &Demo, n: usize, spec: Value) -> anyhow::Result<Vec<String>> {
    let mut body = spec;
    body["count"] = json!(n);
    let created = demo.emu_post("/emulator/devices", body).await?;
    Ok(created["devices"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|x| x["token"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The whole story; every figure printed at the end is checked.
async fn script(demo: &Demo, args: &Args) -> anyhow::Result<ExitCode> {
    let bars = MultiProgress::new();
    let flow_n = args.devices / 4;
    let api_n = args.devices - flow_n;

    // 1. C2DM-era devices register themselves (the emulator runs the device side).
    let reg = bars.add(progress::bar(flow_n as u64, "C2DM-era devices confirmed"));
    let base = demo.gateway.base_url();
    let mut flow_tokens = Vec::new();
    for chunk in (0..flow_n).collect::<Vec<_>>().chunks(2500) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|i| format!("legacy-phone-{i:05}"))
            .collect();
        let created = demo
            .emu_post(
                "/emulator/devices",
                json!({"protocol": "c2dm", "confirm_via": base, "device_ids": ids, "count": ids.len()}),
            )
            .await?;
        for d in created["devices"].as_array().into_iter().flatten() {
            if d["registration_status"] != 200 {
                bail!("a C2DM-era registration was refused: {d}");
            }
            flow_tokens.push(d["token"].as_str().unwrap_or_default().to_string());
        }
    }
    // 2. The rest register through the API, spread over v1, legacy and CCS, with topics.
    let api_tokens = tokens(demo, api_n, json!({})).await?;
    let planned: Vec<Planned> = api_tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| Planned {
            device_id: format!("phone-{i:05}"),
            token,
            channel: match i % 10 {
                x if x < V1_TENTHS => "fcm",
                x if x < V1_TENTHS + LEGACY_TENTHS => "legacy",
                _ => "xmpp",
            },
            topics: match i % 4 {
                0 => vec!["news"],
                1 => vec!["news", "sport"],
                2 => vec!["sport"],
                _ => vec![],
            },
        })
        .collect();
    let imp = bars.add(progress::bar(api_n as u64, "API devices imported"));
    let batches: Vec<Vec<Value>> = planned
        .chunks(1000)
        .map(|c| {
            c.iter()
                .map(|p| json!({"device_id": p.device_id, "token": p.token, "channel": p.channel, "topics": p.topics, "tags": ["demo"]}))
                .collect()
        })
        .collect();
    let mut imports = stream::iter(batches)
        .map(|b| async move { (b.len(), demo.client.import(SANDBOX_APP, &b).await) })
        .buffer_unordered(2);
    while let Some((n, result)) = imports.next().await {
        result?;
        imp.inc(n as u64);
    }
    imp.finish();
    loop {
        let stats = demo.emu_get("/emulator/stats").await?;
        let confirmed = stats["confirm_via"]["confirmed"].as_u64().unwrap_or(0);
        reg.set_position(confirmed);
        if confirmed as usize >= flow_n {
            break;
        }
        demo.check_time()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reg.finish();

    // 3. Mid-run churn: some apps uninstalled, some legacy tokens rotated.
    let uninstall: Vec<&Planned> = planned
        .iter()
        .step_by((100 / args.uninstall_percent.clamp(1, 100)).max(1))
        .collect();
    for p in &uninstall {
        demo.emu_post(
            &format!("/emulator/devices/{}/uninstall", p.token),
            json!({}),
        )
        .await?;
    }
    let legacy: Vec<&Planned> = planned
        .iter()
        .filter(|p| p.channel == "legacy" && !uninstall.iter().any(|u| u.token == p.token))
        .collect();
    let rotate: Vec<&Planned> = legacy
        .iter()
        .copied()
        .step_by((100 / args.rotate_percent.clamp(1, 100)).max(1))
        .collect();
    for p in &rotate {
        demo.emu_post(&format!("/emulator/devices/{}/rotate", p.token), json!({}))
            .await?;
    }

    // 4. Three messages: everyone, a topic, a condition.
    let sends = [
        ("broadcast", json!({"all": true})),
        ("topic news", json!({"topic": "news"})),
        (
            "condition",
            json!({"condition": "'sport' in topics && !('news' in topics)"}),
        ),
    ];
    let mut accepted = Vec::new();
    for (what, targets) in &sends {
        let body = json!({"targets": targets, "collapse_key": "demo", "data": {"demo": what}});
        let a = demo.client.send(SANDBOX_APP, &body, None).await?;
        accepted.push((*what, a));
    }
    let total: u64 = accepted.iter().map(|(_, a)| a.deliveries).sum();
    let del = bars.add(progress::bar(total, "deliveries final"));
    let mut statuses: Vec<MessageStatus>;
    loop {
        statuses = Vec::new();
        for (_, a) in &accepted {
            statuses.push(demo.client.message(&a.id, None, 1).await?);
        }
        del.set_position(statuses.iter().map(|s| s.finished()).sum());
        if statuses.iter().all(|s| s.done) {
            break;
        }
        demo.check_time()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    del.finish();

    // 5. Upstream messages from devices on CCS.
    let xmpp: Vec<&Planned> = planned
        .iter()
        .filter(|p| p.channel == "xmpp" && !uninstall.iter().any(|u| u.token == p.token))
        .take(args.upstream)
        .collect();
    for (i, p) in xmpp.iter().enumerate() {
        demo.emu_post(
            &format!("/emulator/devices/{}/upstream", p.token),
            json!({"data": {"hello": format!("from device {i}")}, "message_id": format!("demo-up-{i}")}),
        )
        .await?;
    }
    let up = bars.add(progress::bar(
        xmpp.len() as u64,
        "upstream messages recorded",
    ));
    let upstream = loop {
        let got = demo.events("upstream_message").await?;
        up.set_position(got.len() as u64);
        if got.len() >= xmpp.len() {
            break got;
        }
        demo.check_time()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    up.finish();
    bars.clear().ok();

    // 6. What happened, and whether the emulator agrees.
    let mut latencies = Vec::new();
    let mut sent = 0u64;
    for (_, a) in &accepted {
        let mut cursor: Option<Value> = None;
        loop {
            let page = demo.client.message(&a.id, cursor.as_ref(), 1000).await?;
            let created = page
                .created_at
                .as_deref()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
            for r in &page.results {
                if r.state != "sent" {
                    continue;
                }
                sent += 1;
                let done = r
                    .updated_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
                if let (Some(c), Some(d)) = (created, done) {
                    latencies.push((d - c).as_seconds_f64());
                }
            }
            match page.next_cursor {
                Some(c) if !page.results.is_empty() => cursor = Some(c),
                _ => break,
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    let rotated = demo.events("token_rotated").await?;
    let invalidated = demo.events("device_invalidated").await?;
    let stats = demo.emu_get("/emulator/stats").await?;
    let emu_delivered = stats["delivered"].as_u64().unwrap_or(0);
    let emu_duplicates = stats["duplicates"].as_u64().unwrap_or(0);
    // The emulator also delivered one confirmation message per C2DM-era device.
    let expected_emu = sent + flow_n as u64;
    let expected_rotated = rotate.len();
    let expected_invalidated = uninstall.len();
    let elapsed = demo.started.elapsed();
    println!(
        "pushgate demo: {} devices ({flow_n} C2DM-era flow, {api_n} API), {:.1} s",
        args.devices,
        elapsed.as_secs_f64()
    );
    for ((what, a), s) in accepted.iter().zip(&statuses) {
        println!(
            "  {what:<12} {:>6} deliveries: {}",
            a.deliveries,
            s.counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "  delivered    {sent:>6}   (emulator received {emu_delivered}, of which {flow_n} confirmations; {emu_duplicates} duplicates)"
    );
    println!(
        "  rotated      {:>6}   (tokens rotated in the emulator: {expected_rotated})",
        rotated.len()
    );
    println!(
        "  invalidated  {:>6}   (devices uninstalled in the emulator: {expected_invalidated})",
        invalidated.len()
    );
    println!(
        "  upstream     {:>6}   (sent by devices: {})",
        upstream.len(),
        xmpp.len()
    );
    println!(
        "  latency      p50 {:.1} ms, p99 {:.1} ms (accepted to answer recorded)",
        pct(0.5),
        pct(0.99)
    );
    let mut problems = Vec::new();
    if emu_delivered != expected_emu || emu_duplicates != 0 {
        problems.push(format!("the emulator received {emu_delivered} messages ({emu_duplicates} duplicates), the gateway reports {sent} sent + {flow_n} confirmations"));
    }
    if rotated.len() != expected_rotated {
        problems.push(format!(
            "{} rotations reported, {expected_rotated} made",
            rotated.len()
        ));
    }
    if invalidated.len() != expected_invalidated {
        problems.push(format!(
            "{} invalidations reported, {expected_invalidated} devices uninstalled",
            invalidated.len()
        ));
    }
    if upstream.len() != xmpp.len() {
        problems.push(format!(
            "{} upstream messages recorded, {} sent",
            upstream.len(),
            xmpp.len()
        ));
    }
    if problems.is_empty() {
        println!("  every figure agrees with the emulator's own counts");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            eprintln!("mismatch: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
