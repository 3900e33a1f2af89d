//! `--report-json PATH`: the run's figures as one JSON object, for scripts and the
//! benchmark's own process test. Field names say their units.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::Ctx;
use super::fanout::FanoutReport;
use super::measure::CpuReport;
use super::raw::RawFigure;
use super::singles::SinglesReport;
use super::timing::{ms_f, percentile};

/// The CPU of each process, seconds.
fn cpu(c: &CpuReport) -> Value {
    json!({
        "gateway_cpu_s": c.gateway.as_ref().map(|g| g.total()),
        "emulator_cpu_s": c.emulator.as_ref().map(|e| e.total()),
        "driver_cpu_s": c.driver.total(),
    })
}

/// Writes the report to `path`.
pub(super) fn write(
    path: &Path,
    ctx: &Ctx,
    raw: Option<&RawFigure>,
    fanout: Option<&FanoutReport>,
    singles: Option<&SinglesReport>,
) -> anyhow::Result<()> {
    let raw = raw.map(|r| {
        json!({
            "what": r.what,
            "units": r.rate.units,
            "unit": r.rate.unit,
            "per_s": r.per_sec(),
        })
    });
    let fanout = fanout.map(|f| {
        let [first, p50, p99, last] = f.page_times();
        json!({
            "devices": f.devices,
            "gateway_pids": f.gateway_pids,
            "recorded_by_instance": f.recorded_by_instance,
            "registration_devices_per_s": f.devices as f64 / f.registration.as_secs_f64().max(1e-9),
            "accept_ms": ms_f(f.accept),
            "deliveries_per_s": f.rate(),
            "latency_p50_ms": percentile(&f.latency, 0.5),
            "latency_p99_ms": percentile(&f.latency, 0.99),
            "result_pages": f.pages.len(),
            "result_page_ms": {"first": ms_f(first), "p50": ms_f(p50), "p99": ms_f(p99), "last": ms_f(last)},
            "emulator_delivered": f.emu.delivered,
            "emulator_duplicates": f.emu.duplicates,
            "gateway_peak_rss_kib": f.memory.0,
            "gateway_idle_rss_kib": f.idle_rss,
            "cpu": cpu(&f.cpu),
            "ok": f.ok(),
        })
    });
    let singles = singles.map(|s| {
        json!({
            "devices": s.devices,
            "messages": s.messages,
            "gateway_pids": s.gateway_pids,
            "recorded_by_instance": s.recorded_by_instance,
            "offered_per_s": s.paced.as_ref().map(|(rate, _)| *rate),
            "accepted_per_s": s.accepted_rate(),
            "post_p50_ms": ms_f(percentile(&s.rtt, 0.5)),
            "post_p99_ms": ms_f(percentile(&s.rtt, 0.99)),
            "due_to_202_p99_ms": s.paced.as_ref().map(|(_, d)| ms_f(percentile(d, 0.99))),
            "deliveries_per_s": s.delivery_rate(),
            "latency_p50_ms": percentile(&s.latency, 0.5),
            "latency_p99_ms": percentile(&s.latency, 0.99),
            "emulator_delivered": s.emu.delivered,
            "emulator_duplicates": s.emu.duplicates,
            "gateway_peak_rss_kib": s.memory.0,
            "cpu": cpu(&s.cpu),
            "ok": s.ok(),
        })
    });
    let report = json!({
        "bench_pid": std::process::id(),
        "emulator_pid": ctx.emu.pid(),
        "channel": ctx.args.channel.name(),
        "instances": ctx.args.instances,
        "database": ctx.args.database.as_deref().map(pushgate_store::redacted),
        "durable_commits": ctx.args.durable_commits,
        "raw": raw,
        "fanout": fanout,
        "singles": singles,
    });
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
