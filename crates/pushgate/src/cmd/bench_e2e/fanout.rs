//! Scenario 1, the fan-out: one message to `{"all": true}` over every registered device (to
//! the run's tag on a shared database), its delivery and latency figures read back from the
//! message's result pages (each page timed), and its report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pushgate_gateway::sandbox::SANDBOX_APP;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::api::{Accepted, EmuStats, MessageView, emu_stats, expect_json};
use super::measure::{
    CpuReport, CpuSnapshot, Sample, Sampler, memory_sum, mib, print_timeline, recorded_per_second,
    wait_recorded,
};
use super::raw::{RawFigure, ratio_of};
use super::setup::{GatewaySide, prepare};
use super::store_steps::{StepsProbe, StoreSteps};
use super::summary::{progress, states_line, verdict};
use super::timing::{ms_f, now_ms, parse_rfc3339_ms, percentile};
use super::{Ctx, IMPORT_CHUNK};

/// Largest page of `GET /v1/messages/{id}`.
const RESULTS_PAGE: usize = 1000;

/// Figures of the fan-out.
pub(super) struct FanoutReport {
    /// Devices registered (the audience).
    pub(super) devices: usize,
    emulator_devices: Duration,
    /// Time of the registration through `devices:import`.
    pub(super) registration: Duration,
    imports: usize,
    /// Round trip of the message's POST.
    pub(super) accept: Duration,
    deliveries: u64,
    /// 202 received to the last delivery's final `updated_at`.
    delivery_window_ms: i64,
    /// From `created_at` to the first and last final `updated_at`.
    first_ms: i64,
    last_ms: i64,
    /// `created_at` to final `updated_at` of every delivery, ms, sorted.
    pub(super) latency: Vec<i64>,
    states: BTreeMap<String, u64>,
    results_read: Duration,
    /// Round trip of every result page read, in order.
    pub(super) pages: Vec<Duration>,
    /// The emulator's counts after the scenario.
    pub(super) emu: EmuStats,
    /// CPU of the three processes from the POST to the last answer recorded.
    pub(super) cpu: CpuReport,
    /// What the channel's loop waited for the store meanwhile (when `/metrics` was readable).
    steps: Option<StoreSteps>,
    samples: Vec<Sample>,
    shutdown: Duration,
    /// The gateway instances' pids, when known.
    pub(super) gateway_pids: Vec<u32>,
    /// Answers each instance recorded over the scenario: how the work was shared.
    pub(super) recorded_by_instance: Vec<u64>,
    /// The gateway's `VmHWM` and `VmRSS` after the scenario, KiB, summed over its instances
    /// (zeros when unknown).
    pub(super) memory: (u64, u64),
    /// The gateway's `VmRSS` once the devices were registered, before the POST, KiB.
    pub(super) idle_rss: u64,
}

impl FanoutReport {
    /// Deliveries per second, 202 to the last final delivery.
    pub(super) fn rate(&self) -> f64 {
        self.deliveries as f64 / (self.delivery_window_ms.max(1) as f64 / 1e3)
    }

    /// Whether the emulator got every delivery exactly once and every one is `sent`.
    pub(super) fn ok(&self) -> bool {
        let expected = self.devices as u64;
        self.deliveries == expected
            && self.emu.delivered == expected
            && self.emu.duplicates == 0
            && self.states.get("sent").copied() == Some(expected)
    }

    /// Page read times: first, p50, p99, last (zeros without pages).
    pub(super) fn page_times(&self) -> [Duration; 4] {
        let mut sorted = self.pages.clone();
        sorted.sort_unstable();
        [
            self.pages.first().copied().unwrap_or_default(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            self.pages.last().copied().unwrap_or_default(),
        ]
    }

    /// Prints the scenario's report.
    pub(super) fn print(&self, ctx: &Ctx, raw: Option<&RawFigure>) {
        let n = self.devices;
        println!("fan-out: {n} devices, one message to {{\"all\": true}}");
        println!(
            "  devices    emulator created {n} in {:.2} s",
            self.emulator_devices.as_secs_f64()
        );
        println!(
            "  register   {n} devices in {:.2} s = {:.0} devices/s ({} imports of ≤{IMPORT_CHUNK}, {} concurrent)",
            self.registration.as_secs_f64(),
            n as f64 / self.registration.as_secs_f64().max(1e-9),
            self.imports,
            ctx.args.import_concurrency
        );
        println!(
            "  accept     POST answered 202 in {:.0} ms (deliveries {})",
            ms_f(self.accept),
            self.deliveries
        );
        println!(
            "  deliver    202 -> last delivery final: {:.2} s = {:.0} deliveries/s{}",
            self.delivery_window_ms as f64 / 1e3,
            self.rate(),
            ratio_of(raw, self.rate())
        );
        let (median, max) = recorded_per_second(&self.samples, self.deliveries);
        println!("             answers recorded per 1-s sample: median {median}, max {max}");
        println!(
            "  latency    created_at -> final updated_at over {} deliveries: p50 {} ms, p99 {} ms (first {} ms, last {} ms)",
            self.latency.len(),
            percentile(&self.latency, 0.5),
            percentile(&self.latency, 0.99),
            self.first_ms,
            self.last_ms
        );
        println!("  states     {}", states_line(&self.states));
        println!(
            "  emulator   delivered {} (expected {n}), duplicates {}, requests {}  {}",
            self.emu.delivered,
            self.emu.duplicates,
            self.emu.requests,
            verdict(self.ok())
        );
        self.cpu.print();
        StoreSteps::print(self.steps.as_ref(), self.delivery_window_ms);
        let [first, p50, p99, last] = self.page_times();
        println!(
            "  reads      {} result pages of ≤{RESULTS_PAGE} read in {:.2} s: page first {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, last {:.1} ms",
            self.pages.len(),
            self.results_read.as_secs_f64(),
            ms_f(first),
            ms_f(p50),
            ms_f(p99),
            ms_f(last),
        );
        println!(
            "  memory     gateway ({}) peak RSS (VmHWM) {:.0} MiB, idle with {n} devices {:.0} MiB, at the end {:.0} MiB; shutdown {:.2} s",
            GatewaySide::describe_pids(&self.gateway_pids),
            mib(self.memory.0),
            mib(self.idle_rss),
            mib(self.memory.1),
            self.shutdown.as_secs_f64()
        );
        if self.recorded_by_instance.len() > 1 {
            println!(
                "  shares     answers recorded by each instance: {:?}",
                self.recorded_by_instance
            );
        }
        if ctx.args.timeline {
            print_timeline(&self.samples);
        }
        println!();
    }
}

/// Runs the fan-out on a fresh gateway and database.
pub(super) async fn fan_out(ctx: &Ctx) -> anyhow::Result<FanoutReport> {
    eprintln!("fan-out: preparing {} devices", ctx.args.devices);
    let p = prepare(ctx, "fanout.db").await?;
    let n = ctx.args.devices as u64;
    let (base, key) = (p.gw.base().to_string(), p.gw.api_key.clone());
    let gateway_pids = p.gw.pids.clone();
    let idle_rss = memory_sum(&gateway_pids).1;
    let accepted = Arc::new(AtomicU64::new(0));
    let steps = StepsProbe::start(ctx, &p.gw).await;
    let cpu_before = CpuSnapshot::take(&gateway_pids, ctx.emu.pid());
    let sampler = Sampler::start(ctx, p.status.clone(), accepted.clone());
    let deadline = Instant::now() + Duration::from_secs(ctx.args.timeout);
    let targets = match &ctx.shared_tag {
        Some(tag) => json!({ "tags": [tag] }),
        None => json!({ "all": true }),
    };

    let posted = Instant::now();
    let out: Accepted = expect_json(
        ctx.http
            .post(format!("{base}/v1/apps/{SANDBOX_APP}/messages"))
            .bearer_auth(&key)
            .json(&json!({
                "targets": targets,
                "data": {"bench": "fan-out"},
            })),
        StatusCode::ACCEPTED,
        "POST message (all)",
    )
    .await?;
    let accept = posted.elapsed();
    let accepted_at = now_ms();
    accepted.store(1, Ordering::Relaxed);
    // A fan-out larger than the gateway's chunk is answered with its first chunk stored.
    let complete = out.deliveries == n && out.queued == n && !out.expanding;
    let first_chunk = out.expanding && out.queued == out.deliveries && out.deliveries < n;
    if !complete && !first_chunk {
        bail!(
            "the fan-out was accepted with {} deliveries ({} queued, expanding {}), not {n}",
            out.deliveries,
            out.queued,
            out.expanding
        );
    }
    eprintln!("fan-out: accepted in {:.0} ms, delivering", ms_f(accept));

    let bar = progress(n, "deliveries recorded");
    wait_recorded(ctx, &p.status, n, &bar, deadline).await?;
    bar.finish_and_clear();
    // Every answer is recorded; a retried one may still be pending: wait for `done`.
    let url = format!("{base}/v1/messages/{}", out.id);
    loop {
        let view: MessageView = expect_json(
            ctx.http
                .get(&url)
                .query(&[("limit", "1")])
                .bearer_auth(&key),
            StatusCode::OK,
            "GET message",
        )
        .await?;
        if view.done {
            if view.deliveries != n {
                bail!("the fan-out stored {} deliveries, not {n}", view.deliveries);
            }
            break;
        }
        if Instant::now() > deadline {
            bail!("timed out: the fan-out is not done: {:?}", view.counts);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_before.since();
    let samples = sampler.finish().await;
    let steps = steps.since().await;

    eprintln!("fan-out: reading the results");
    let read_started = Instant::now();
    let mut cursor: Option<String> = None;
    let mut latency = Vec::with_capacity(n as usize);
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut created = None;
    let mut pages = Vec::with_capacity((n as usize).div_ceil(RESULTS_PAGE));
    let bar = progress(n, "results read");
    loop {
        let mut req = ctx
            .http
            .get(&url)
            .query(&[("limit", RESULTS_PAGE.to_string())])
            .bearer_auth(&key);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let asked = Instant::now();
        let page: MessageView = expect_json(req, StatusCode::OK, "GET message results").await?;
        pages.push(asked.elapsed());
        bar.inc(page.results.len() as u64);
        let created_ms = match created {
            Some(c) => c,
            None => {
                let c = parse_rfc3339_ms(&page.created_at)
                    .with_context(|| format!("bad created_at {:?}", page.created_at))?;
                created = Some(c);
                c
            }
        };
        for r in &page.results {
            *states.entry(r.state.clone()).or_default() += 1;
            let updated = parse_rfc3339_ms(&r.updated_at)
                .with_context(|| format!("bad updated_at {:?}", r.updated_at))?;
            first = first.min(updated);
            last = last.max(updated);
            latency.push(updated - created_ms);
        }
        cursor = match page.next_cursor {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        };
        if cursor.is_none() || page.results.is_empty() {
            break;
        }
    }
    bar.finish_and_clear();
    let results_read = read_started.elapsed();
    latency.sort_unstable();
    let created_ms = created.unwrap_or(accepted_at);
    let emu = emu_stats(ctx).await?;
    let recorded_by_instance = p
        .status
        .read_each()
        .await?
        .into_iter()
        .map(|c| c.completed)
        .collect();
    let memory = memory_sum(&gateway_pids);
    let shutdown = p.gw.stop().await;
    Ok(FanoutReport {
        devices: ctx.args.devices,
        emulator_devices: p.emulator_devices,
        registration: p.registration,
        imports: p.imports,
        accept,
        deliveries: n,
        delivery_window_ms: last.saturating_sub(accepted_at),
        first_ms: first.saturating_sub(created_ms),
        last_ms: last.saturating_sub(created_ms),
        latency,
        states,
        results_read,
        pages,
        emu,
        cpu,
        steps,
        samples,
        shutdown,
        gateway_pids,
        recorded_by_instance,
        memory,
        idle_rss,
    })
}
