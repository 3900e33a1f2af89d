//! Scenario 2, the singles: single-device messages posted by concurrent senders (closed
//! loop) or offered at a fixed rate (open loop, `--rate`), their acceptance, delivery and
//! latency figures read back per message, and its report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_gateway::sandbox::SANDBOX_APP;
use reqwest::StatusCode;
use serde_json::json;

use super::Ctx;
use super::api::{Accepted, EmuStats, MessageView, emu_stats, expect_json};
use super::measure::{
    CpuReport, CpuSnapshot, Sample, Sampler, memory_sum, mib, print_timeline, recorded_per_second,
    wait_recorded,
};
use super::raw::{RawFigure, ratio_of};
use super::setup::{GatewaySide, Prepared, prepare};
use super::store_steps::{StepsProbe, StoreSteps};
use super::summary::{progress, states_line, verdict};
use super::timing::{ms_f, now_ms, parse_rfc3339_ms, percentile};

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
    /// Paced mode: the offered rate, and from each POST's due time to its 202, sorted.
    pub(super) paced: Option<(f64, Vec<Duration>)>,
    /// Paced mode: POSTs that left later than due because `--max-outstanding` were
    /// unanswered.
    late: usize,
    /// First 202 received to the last delivery's final `updated_at`.
    delivery_window_ms: i64,
    /// `created_at` to final `updated_at` per message, ms, sorted.
    pub(super) latency: Vec<i64>,
    states: BTreeMap<String, u64>,
    results_read: Duration,
    /// The emulator's counts after the scenario.
    pub(super) emu: EmuStats,
    /// CPU of the three processes from the first POST to the last answer recorded.
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
    pub(super) fn print(&self, ctx: &Ctx, raw: Option<&RawFigure>) {
        let m = self.messages;
        match &self.paced {
            Some((rate, _)) => println!(
                "singles: {m} single-device messages over {} devices, offered at {rate:.0}/s (open loop, at most {} outstanding)",
                self.devices, ctx.args.max_outstanding
            ),
            None => println!(
                "singles: {m} single-device messages over {} devices, {} concurrent senders (closed loop)",
                self.devices, ctx.args.senders
            ),
        }
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
        if let Some((_, from_due)) = &self.paced {
            println!(
                "             from each POST's due time to its 202: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} POSTs waited for a free slot (--max-outstanding)",
                ms_f(percentile(from_due, 0.5)),
                ms_f(percentile(from_due, 0.99)),
                ms_f(from_due.last().copied().unwrap_or_default()),
                self.late
            );
        }
        if let Some(raw) = raw {
            println!(
                "             accepted/s is {} of {:.0}/s",
                raw.ratio(self.accepted_rate()),
                raw.per_sec()
            );
        }
        println!(
            "  deliver    first 202 -> last delivery final: {:.2} s = {:.0} deliveries/s{}",
            self.delivery_window_ms as f64 / 1e3,
            self.delivery_rate(),
            ratio_of(raw, self.delivery_rate())
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
        self.cpu.print();
        StoreSteps::print(self.steps.as_ref(), self.delivery_window_ms);
        println!(
            "  reads      {m} GET /v1/messages/{{id}} ({} concurrent) in {:.2} s",
            ctx.args.senders,
            self.results_read.as_secs_f64(),
        );
        println!(
            "  memory     gateway ({}) peak RSS (VmHWM) {:.0} MiB, at the end {:.0} MiB; shutdown {:.2} s",
            GatewaySide::describe_pids(&self.gateway_pids),
            mib(self.memory.0),
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

/// One accepted message as its sender saw it.
struct Posted {
    id: String,
    rtt: Duration,
    /// From the time it was due (paced mode) to its 202; the round trip otherwise.
    from_due: Duration,
    accepted_at_ms: i64,
}

/// POSTs message `i` (to device `i` round-robin) and checks the 202.
pub(super) async fn post_one(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    ids: &[String],
    i: usize,
) -> anyhow::Result<(String, Duration)> {
    let body = json!({
        "targets": {"device_ids": [ids[i % ids.len()]]},
        "data": {"seq": i.to_string()},
    });
    let sent = Instant::now();
    let out: Accepted = expect_json(
        http.post(url).bearer_auth(key).json(&body),
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
    Ok((out.id, rtt))
}

/// The messages endpoint of the instance that takes sender (or message) `i`.
fn messages_url(gw: &GatewaySide, i: usize) -> String {
    format!("{}/v1/apps/{SANDBOX_APP}/messages", gw.base_for(i))
}

/// Closed loop: `--senders` tasks, each posting the next message once its last one was
/// answered.
async fn post_closed(
    ctx: &Ctx,
    p: &Prepared,
    accepted: &Arc<AtomicU64>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Posted>> {
    let m = ctx.args.messages;
    let next = Arc::new(AtomicUsize::new(0));
    let key = Arc::new(p.gw.api_key.clone());
    let mut senders = Vec::with_capacity(ctx.args.senders.max(1));
    for sender in 0..ctx.args.senders.max(1) {
        // Each sender keeps to one instance; the senders are spread over them.
        let url = messages_url(&p.gw, sender);
        let (http, key, next, ids, accepted, bar) = (
            ctx.http.clone(),
            key.clone(),
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
                let (id, rtt) = post_one(&http, &url, &key, &ids, i).await?;
                accepted.fetch_add(1, Ordering::Relaxed);
                bar.inc(1);
                posted.push(Posted {
                    id,
                    rtt,
                    from_due: rtt,
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
    Ok(posted)
}

/// Open loop: message `i` is due `i / rate` seconds after the start and leaves then, whether
/// or not earlier ones were answered (at most `--max-outstanding` unanswered); returns the
/// posted messages and how many had to wait for a free slot.
async fn post_paced(
    ctx: &Ctx,
    p: &Prepared,
    rate: f64,
    accepted: &Arc<AtomicU64>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(Vec<Posted>, usize)> {
    let m = ctx.args.messages;
    let urls: Vec<String> = (0..p.gw.bases.len())
        .map(|i| messages_url(&p.gw, i))
        .collect();
    let key = Arc::new(p.gw.api_key.clone());
    let outstanding = Arc::new(tokio::sync::Semaphore::new(ctx.args.max_outstanding.max(1)));
    let start = tokio::time::Instant::now();
    let mut late = 0;
    let mut tasks = Vec::with_capacity(m);
    for i in 0..m {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        // A POST that finds every slot taken waits for one, and counts as late.
        let permit = match outstanding.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                late += 1;
                outstanding
                    .clone()
                    .acquire_owned()
                    .await
                    .context("the pacing semaphore closed")?
            }
        };
        let url = urls[i % urls.len()].clone();
        let (http, key, ids, accepted, bar) = (
            ctx.http.clone(),
            key.clone(),
            p.device_ids.clone(),
            accepted.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (id, rtt) = post_one(&http, &url, &key, &ids, i).await?;
            let from_due = due.elapsed();
            drop(permit);
            accepted.fetch_add(1, Ordering::Relaxed);
            bar.inc(1);
            anyhow::Ok(Posted {
                id,
                rtt,
                from_due,
                accepted_at_ms: now_ms(),
            })
        }));
    }
    let mut posted = Vec::with_capacity(m);
    for task in tasks {
        posted.push(task.await.context("a paced POST stopped abnormally")??);
    }
    Ok((posted, late))
}

/// Runs the singles on a fresh gateway and database.
pub(super) async fn singles_scenario(ctx: &Ctx) -> anyhow::Result<SinglesReport> {
    eprintln!("singles: preparing {} devices", ctx.args.devices);
    let p = prepare(ctx, "singles.db").await?;
    let m = ctx.args.messages;
    let gateway_pids = p.gw.pids.clone();
    let accepted = Arc::new(AtomicU64::new(0));
    let steps = StepsProbe::start(ctx, &p.gw).await;
    let cpu_before = CpuSnapshot::take(&gateway_pids, ctx.emu.pid());
    let sampler = Sampler::start(ctx, p.status.clone(), accepted.clone());
    let deadline = Instant::now() + Duration::from_secs(ctx.args.timeout);

    eprintln!("singles: posting {m} messages");
    let bar = progress(m as u64, "messages accepted");
    let posting_started = Instant::now();
    let (posted, late) = match ctx.args.rate {
        Some(rate) => post_paced(ctx, &p, rate, &accepted, &bar).await?,
        None => (post_closed(ctx, &p, &accepted, &bar).await?, 0),
    };
    let posting = posting_started.elapsed();
    let recorded_at_last_accept = p.status.read().await?.completed;
    bar.finish_and_clear();
    eprintln!(
        "singles: {m} accepted in {:.2} s, waiting for deliveries",
        posting.as_secs_f64()
    );

    let bar = progress(m as u64, "deliveries recorded");
    wait_recorded(ctx, &p.status, m as u64, &bar, deadline).await?;
    let drain = posting_started.elapsed().saturating_sub(posting);
    bar.finish_and_clear();
    let cpu = cpu_before.since();
    let samples = sampler.finish().await;
    let steps = steps.since().await;

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
                    .get(format!("{}/v1/messages/{}", p.gw.base(), posted[i].id))
                    .bearer_auth(&p.gw.api_key);
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
    let paced = ctx.args.rate.map(|rate| {
        let mut from_due: Vec<Duration> = posted.iter().map(|p| p.from_due).collect();
        from_due.sort_unstable();
        (rate, from_due)
    });
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
    Ok(SinglesReport {
        devices: ctx.args.devices,
        messages: m,
        registration: p.registration,
        posting,
        recorded_at_last_accept,
        drain,
        rtt,
        paced,
        late,
        delivery_window_ms: last.saturating_sub(first_accept),
        latency,
        states,
        results_read,
        emu,
        cpu,
        steps,
        samples,
        shutdown,
        gateway_pids,
        recorded_by_instance,
        memory,
    })
}
