//! The provider's raw rate: what pushgate's own client moves against the same emulator
//! process without the gateway, measured with the loops of `pushgate bench v1` / `legacy`
//! before the scenarios. Every gateway rate is printed as a ratio of it.

use std::time::Duration;

use super::measure::{CpuUse, thread_ticks};
use super::timing::{ms_f, percentile};
use super::{BenchChannel, Ctx};
use crate::cmd::bench::{
    RawRate, create_devices, legacy_multicasts, legacy_sender, v1_sender, v1_sends, v1_setup,
};

/// Virtual devices of the raw loops (as `pushgate bench`).
const RAW_DEVICES: usize = 5000;
/// v1: HTTP/2 connections and requests in flight (`pushgate bench v1`'s defaults).
const V1_CONNECTIONS: usize = 4;
const V1_IN_FLIGHT: usize = 256;
/// Legacy: multicasts in flight (`pushgate bench legacy`'s default), HTTP/1.1 as the
/// gateway's legacy channel.
const LEGACY_IN_FLIGHT: usize = 32;

/// The raw rate and how it was taken.
pub(super) struct RawFigure {
    /// What was measured, for the reports.
    pub(super) what: String,
    /// The rate.
    pub(super) rate: RawRate,
    /// CPU of the emulator process meanwhile, when it is ours.
    pub(super) emulator_cpu: Option<CpuUse>,
}

impl RawFigure {
    /// Units (deliveries) per second.
    pub(super) fn per_sec(&self) -> f64 {
        self.rate.per_sec()
    }

    /// `rate` as a ratio of the raw rate, for the reports (`0.42× raw`).
    pub(super) fn ratio(&self, rate: f64) -> String {
        format!("{:.2}× raw", rate / self.per_sec().max(1e-9))
    }

    /// Prints the figure.
    pub(super) fn print(&self) {
        let r = &self.rate;
        println!("raw provider rate: {}", self.what);
        println!(
            "  rate       {} {} in {:.2} s = {:.0} {}/s; request p50 {:.1} ms, p99 {:.1} ms",
            r.units,
            r.unit,
            r.elapsed.as_secs_f64(),
            r.per_sec(),
            r.unit,
            ms_f(percentile(&r.latencies, 0.5)),
            ms_f(percentile(&r.latencies, 0.99)),
        );
        if let Some(cpu) = &self.emulator_cpu {
            println!("  emulator   {}", cpu.describe());
        }
        println!();
    }
}

/// A ratio column for an optional raw figure (empty without one).
pub(super) fn ratio_of(raw: Option<&RawFigure>, rate: f64) -> String {
    raw.map(|r| format!(" ({})", r.ratio(rate)))
        .unwrap_or_default()
}

/// Measures the raw rate of the benchmarked channel (none for CCS, or with `--raw-units 0`).
pub(super) async fn measure_raw(ctx: &Ctx) -> anyhow::Result<Option<RawFigure>> {
    let base = &ctx.emu.base;
    let default_units = match ctx.args.channel {
        BenchChannel::Fcm => 100_000,
        BenchChannel::Legacy => 1_000_000,
        BenchChannel::Xmpp => 0,
    };
    let units = ctx.args.raw_units.unwrap_or(default_units);
    if units == 0 {
        return Ok(None);
    }
    eprintln!(
        "raw provider rate: {units} units on channel {}",
        ctx.args.channel.name()
    );
    let emulator_pid = ctx.emu.pid();
    let started = std::time::Instant::now();
    let before = emulator_pid.map(thread_ticks);
    let (what, rate) = match ctx.args.channel {
        BenchChannel::Fcm => {
            let (key, tokens) = v1_setup(&ctx.http, base, RAW_DEVICES).await?;
            let sender = v1_sender(base, &key, true, V1_CONNECTIONS, V1_IN_FLIGHT)?;
            let what = format!(
                "`pushgate bench v1` loop, h2c, {V1_CONNECTIONS} connections, {V1_IN_FLIGHT} in flight, same emulator"
            );
            (what, v1_sends(&sender, &tokens, units, V1_IN_FLIGHT).await?)
        }
        BenchChannel::Legacy => {
            let tokens =
                create_devices(&ctx.http, base, serde_json::json!({"count": RAW_DEVICES})).await?;
            let sender = legacy_sender(base, false)?;
            let what = format!(
                "`pushgate bench legacy` loop, 1000-id multicasts, HTTP/1.1, {LEGACY_IN_FLIGHT} in flight, same emulator"
            );
            (
                what,
                legacy_multicasts(&sender, &tokens, units, LEGACY_IN_FLIGHT).await?,
            )
        }
        BenchChannel::Xmpp => return Ok(None),
    };
    let emulator_cpu = emulator_pid
        .zip(before)
        .map(|(pid, before)| CpuUse::between(&before, &thread_ticks(pid), started.elapsed()));
    // Let the emulator settle before the scenarios reset it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Some(RawFigure {
        what,
        rate,
        emulator_cpu,
    }))
}
