//! Scenario 2, the singles: single-device messages posted by concurrent senders, their
//! acceptance, delivery and latency figures read back per message, and its report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_gateway::sandbox::SANDBOX_APP;
use reqwest::StatusCode;
use serde_json::json;

use super::api::{Accepted, EmuStats, MessageView, emu_stats, expect_json};
use super::measure::{
    CpuUse, Sample, Sampler, memory_kib, mib, print_timeline, recorded_per_second, thread_ticks,
    wait_recorded,
};
use super::setup::{prepare, stop_gateway};
use super::summary::{progress, states_line, verdict};
use super::timing::{ms_f, now_ms, parse_rfc3339_ms, percentile};
use super::{API_KEY, Ctx};

/// Figures of the singles.
pub(super) struct SinglesReport {
    /// Devices registered.
    pub(super) devices: usize,
    /// Messages posted.
    pub(super) messages: usize,
    /// Time of the registration through `devices:import`.
    pub(super) registration: Duration,
    /// First POST sent to the last 202 received.
    posting: Duration,
    /// Answers recorded when the last 202 was received.
    recorded_at_last_accept: u64,
    /// From the last 202 until every answer was recorded.
    drain: Duration,
    /// Round trip of every POST, sorted.
    pub(super) rtt: Vec<Duration>,
    /// First 202 received to the last delivery's final `updated_at`.
    delivery_window_ms: i64,
    /// `created_at` to final `updated_at` per message, ms, sorted.
    pub(super) latency: Vec<i64>,
    states: BTreeMap<String, u64>,
    results_read: Duration,
    /// The emulator's counts after the scenario.
    pub(super) emu: EmuStats,
    cpu: CpuUse,
    samples: Vec<Sample>,
    shutdown: Duration,
    /// `VmHWM` and `VmRSS` after the scenario, KiB.
    pub(super) memory: (u64, u64),
}

impl SinglesReport {
    /// Accepted messages per second, first POST to last 202.
    pub(super) fn accepted_rate(&self) -> f64 {
        self.messages as f64 / self.posting.as_secs_f64().max(1e-9)
    }

    /// Deliveries per second, first 202 to the last final delivery.
    pub(super) fn delivery_rate(&self) -> f64 {
        self.messages as f64 / (self.delivery_window_ms.max(1) as f64 / 1e3)
    }

    /// Whether the emulator got every message exactly once and every one is `sent`.
    pub(super) fn ok(&self) -> bool {
        let expected = self.messages as u64;
        self.emu.delivered == expected
            && self.emu.duplicates == 0
            && self.states.get("sent").copied() == Some(expected)
    }

    /// Prints the scenario's report.
    pub(super) fn print(&self, ctx: &Ctx) {
        let m = self.messages;
        println!(
            "singles: {m} single-device messages over {} devices, {} concurrent senders",
            self.devices, ctx.args.senders
        );
        println!(
            "  register   {} devices in {:.2} s = {:.0} devices/s",
            self.devices,
            self.registration.as_secs_f64(),
            self.devices as f64 / self.registration.as_secs_f64().max(1e-9)
        );
        println!(
            "  accept     {m} POSTs in {:.2} s = {:.0} accepted messages/s; POST round trip p50 {:.1} ms, p99 {:.1} ms",
            self.posting.as_secs_f64(),
            self.accepted_rate(),
            ms_f(percentile(&self.rtt, 0.5)),
            ms_f(percentile(&self.rtt, 0.99))
        );
        println!(
            "  deliver    first 202 -> last delivery final: {:.2} s = {:.0} deliveries/s",
            self.delivery_window_ms as f64 / 1e3,
            self.delivery_rate()
        );
        let (median, max) = recorded_per_second(&self.samples, m as u64);
        println!("             answers recorded per 1-s sample: median {median}, max {max}");
        println!(
            "             at the last 202, {} of {m} answers were recorded; the other {} took {:.2} s more",
            self.recorded_at_last_accept,
            (m as u64).saturating_sub(self.recorded_at_last_accept),
            self.drain.as_secs_f64()
        );
        println!(
            "  latency    created_at -> final updated_at per message: p50 {} ms, p99 {} ms, max {} ms",
            percentile(&self.latency, 0.5),
            percentile(&self.latency, 0.99),
            self.latency.last().copied().unwrap_or(0)
        );
        println!("  states     {}", states_line(&self.states));
        println!(
            "  emulator   delivered {} (expected {m}), duplicates {}, requests {}  {}",
            self.emu.delivered,
            self.emu.duplicates,
            self.emu.requests,
            verdict(self.ok())
        );
        println!("  cpu        {}", self.cpu.describe());
        println!(
            "  reads      {m} GET /v1/messages/{{id}} ({} concurrent) in {:.2} s; gateway shutdown {:.2} s",
            ctx.args.senders,
            self.results_read.as_secs_f64(),
            self.shutdown.as_secs_f64()
        );
        println!(
            "  memory     peak RSS (VmHWM) of the process so far {:.0} MiB, current {:.0} MiB",
            mib(self.memory.0),
            mib(self.memory.1)
        );
        if ctx.args.timeline {
            print_timeline(&self.samples);
        }
        println!();
    }
}

/// One accepted message as its sender saw it.
struct Posted {
    id: String,
    rtt: Duration,
    accepted_at_ms: i64,
}

/// Runs the singles on a fresh gateway and database.
pub(super) async fn singles_scenario(ctx: &Ctx) -> anyhow::Result<SinglesReport> {
    eprintln!("singles: preparing {} devices", ctx.args.devices);
    let p = prepare(ctx, "singles.db").await?;
    let m = ctx.args.messages;
    let accepted = Arc::new(AtomicU64::new(0));
    let cpu_before = thread_ticks();
    let started = Instant::now();
    let sampler = Sampler::start(ctx, p.status.clone(), accepted.clone());
    let deadline = Instant::now() + Duration::from_secs(ctx.args.timeout);

    eprintln!("singles: posting {m} messages");
    let bar = progress(m as u64, "messages accepted");
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(format!("{}/v1/apps/{SANDBOX_APP}/messages", p.base));
    let posting_started = Instant::now();
    let mut senders = Vec::with_capacity(ctx.args.senders.max(1));
    for _ in 0..ctx.args.senders.max(1) {
        let (http, url, next, ids, accepted, bar) = (
            ctx.http.clone(),
            url.clone(),
            next.clone(),
            p.device_ids.clone(),
            accepted.clone(),
            bar.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut posted = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= m {
                    break;
                }
                let body = json!({
                    "targets": {"device_ids": [ids[i % ids.len()]]},
                    "data": {"seq": i.to_string()},
                });
                let sent = Instant::now();
                let out: Accepted = expect_json(
                    http.post(url.as_str()).bearer_auth(API_KEY).json(&body),
                    StatusCode::ACCEPTED,
                    "POST message",
                )
                .await?;
                let rtt = sent.elapsed();
                if out.queued != 1 {
                    bail!(
                        "message {i} was accepted with {} queued deliveries, not 1",
                        out.queued
                    );
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                bar.inc(1);
                posted.push(Posted {
                    id: out.id,
                    rtt,
                    accepted_at_ms: now_ms(),
                });
            }
            anyhow::Ok(posted)
        }));
    }
    let mut posted = Vec::with_capacity(m);
    for sender in senders {
        posted.extend(sender.await.context("a sender stopped abnormally")??);
    }
    let posting = posting_started.elapsed();
    let recorded_at_last_accept = p.status.completed.load(Ordering::Relaxed);
    bar.finish_and_clear();
    eprintln!(
        "singles: {m} accepted in {:.2} s, waiting for deliveries",
        posting.as_secs_f64()
    );

    let bar = progress(m as u64, "deliveries recorded");
    wait_recorded(ctx, &p.status, m as u64, &bar, deadline).await?;
    let drain = posting_started.elapsed().saturating_sub(posting);
    bar.finish_and_clear();
    let cpu = CpuUse::between(&cpu_before, &thread_ticks(), started.elapsed());
    let samples = sampler.finish().await;

    eprintln!("singles: reading {m} messages");
    let read_started = Instant::now();
    let bar = progress(m as u64, "messages read");
    let mut latency = Vec::with_capacity(m);
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut last = i64::MIN;
    let mut pending: Vec<usize> = (0..posted.len()).collect();
    while !pending.is_empty() {
        let mut not_done = Vec::new();
        let mut reads = futures_util::stream::iter(pending)
            .map(|i| {
                let req = ctx
                    .http
                    .get(format!("{}/v1/messages/{}", p.base, posted[i].id))
                    .bearer_auth(API_KEY);
                async move {
                    let view: MessageView = expect_json(req, StatusCode::OK, "GET message").await?;
                    anyhow::Ok((i, view))
                }
            })
            .buffer_unordered(ctx.args.senders.max(1));
        while let Some(read) = reads.next().await {
            let (i, view) = read?;
            let Some(result) = view.results.first().filter(|_| view.done) else {
                not_done.push(i);
                continue;
            };
            bar.inc(1);
            *states.entry(result.state.clone()).or_default() += 1;
            let created = parse_rfc3339_ms(&view.created_at)
                .with_context(|| format!("bad created_at {:?}", view.created_at))?;
            let updated = parse_rfc3339_ms(&result.updated_at)
                .with_context(|| format!("bad updated_at {:?}", result.updated_at))?;
            last = last.max(updated);
            latency.push(updated - created);
        }
        if !not_done.is_empty() {
            if Instant::now() > deadline {
                bail!(
                    "timed out: {} messages are not done (e.g. {})",
                    not_done.len(),
                    posted[not_done[0]].id
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        pending = not_done;
    }
    bar.finish_and_clear();
    let results_read = read_started.elapsed();
    latency.sort_unstable();
    let first_accept = posted
        .iter()
        .map(|p| p.accepted_at_ms)
        .min()
        .unwrap_or_else(now_ms);
    let mut rtt: Vec<Duration> = posted.iter().map(|p| p.rtt).collect();
    rtt.sort_unstable();
    let emu = emu_stats(ctx).await?;
    let shutdown = stop_gateway(ctx, p.gw).await;
    Ok(SinglesReport {
        devices: ctx.args.devices,
        messages: m,
        registration: p.registration,
        posting,
        recorded_at_last_accept,
        drain,
        rtt,
        delivery_window_ms: last.saturating_sub(first_accept),
        latency,
        states,
        results_read,
        emu,
        cpu,
        samples,
        shutdown,
        memory: memory_kib(),
    })
}
