//! What the run prints besides the scenarios' own reports: the header, the final table, and
//! the small output helpers the reports share (progress bars, verdicts, state counts).

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pushgate_gateway::sandbox::SANDBOX_APP;

use super::Ctx;
use super::fanout::FanoutReport;
use super::measure::mib;
use super::raw::{RawFigure, ratio_of};
use super::singles::SinglesReport;
use super::timing::{ms_f, percentile};

/// Prints what runs where and with which settings, before the scenarios.
pub(super) fn print_header(ctx: &Ctx, probe: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let args = &ctx.args;
    let d = &ctx.delivery;
    println!("pushgate bench e2e");
    println!(
        "  processes  gateway, emulator and driver are separate processes on {cores} core(s); CPU and RSS are each process's own"
    );
    println!(
        "  channel    {} ({})",
        args.channel.name(),
        args.channel.describe()
    );
    match ctx.emu.pid() {
        Some(pid) => println!(
            "  emulator   `pushgate emulator` at {} (pid {pid}, started by the benchmark)",
            ctx.emu.base
        ),
        None => println!(
            "  emulator   running at {} (not started here)",
            ctx.emu.base
        ),
    }
    match &args.gateway {
        Some(url) => println!(
            "  gateway    running at {url} (pid {}), app \"{SANDBOX_APP}\"; devices tagged {}",
            args.gateway_pid.map_or("unknown".into(), |p| p.to_string()),
            ctx.shared_tag.as_deref().unwrap_or("-")
        ),
        None => {
            let database = match &args.database {
                Some(db) => format!(
                    "{} (shared by both scenarios; devices tagged {})",
                    pushgate_store::redacted(db),
                    ctx.shared_tag.as_deref().unwrap_or("-")
                ),
                None => format!(
                    "a fresh SQLite file per scenario in {}",
                    ctx.dir.path.display()
                ),
            };
            let processes = match args.instances {
                1 => "`pushgate serve --config` per scenario".to_string(),
                n => format!("{n} `pushgate serve --config` instances per scenario"),
            };
            println!(
                "  gateway    {processes} (the sandbox's app \"{SANDBOX_APP}\" and channels), database {database}"
            );
        }
    }
    println!(
        "  storage    durable commits {}",
        if args.durable_commits {
            "on (synchronous=FULL)"
        } else {
            "off (synchronous=NORMAL)"
        }
    );
    println!(
        "  delivery   idle_poll {} ms (default 1000), retry {} ms..{} s, lease {} s, claim_batch {}",
        d.idle_poll.as_millis(),
        d.retry_initial.as_millis(),
        d.retry_max.as_secs(),
        d.lease.as_secs(),
        d.claim_batch
    );
    if args.sole_channel {
        println!(
            "  DIAGNOSTIC --sole-channel: the gateway keeps only channel {} (not the plain sandbox)",
            args.channel.name()
        );
    }
    println!("  emulator   v1 project quota raised to 1e9/min after each reset");
    let singles = match args.rate {
        Some(rate) => format!(
            "singles offered at {rate:.0}/s (open loop, ≤{} outstanding)",
            args.max_outstanding
        ),
        None => format!("{} closed-loop senders", args.senders),
    };
    println!(
        "  driver     pid {}, reqwest keep-alive, {singles}, {} concurrent imports",
        std::process::id(),
        args.import_concurrency
    );
    println!("  disk       {probe}");
    println!();
}

/// Prints the table of both scenarios; true when every scenario was delivered in full.
pub(super) fn print_summary(
    ctx: &Ctx,
    raw: Option<&RawFigure>,
    fanout: Option<&FanoutReport>,
    singles: Option<&SinglesReport>,
) -> bool {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut ok = true;
    if let Some(r) = raw {
        rows.push((
            "raw provider rate (same emulator, no gateway)".into(),
            format!("{:.0} {}/s", r.per_sec(), r.rate.unit),
        ));
    }
    let cpu = |c: &super::measure::CpuReport| {
        c.gateway_cores().map_or("unknown".into(), |(secs, cores)| {
            format!("{secs:.1} s = {cores:.2} cores")
        })
    };
    if let Some(f) = fanout {
        let n = f.devices;
        rows.push((
            "fan-out registration".into(),
            format!(
                "{:.0} devices/s",
                n as f64 / f.registration.as_secs_f64().max(1e-9)
            ),
        ));
        rows.push((
            "fan-out accept (POST, N deliveries)".into(),
            format!("{:.0} ms", ms_f(f.accept)),
        ));
        rows.push((
            "fan-out deliveries/s (202 -> last final)".into(),
            format!("{:.0}{}", f.rate(), ratio_of(raw, f.rate())),
        ));
        rows.push((
            "fan-out latency p50 / p99".into(),
            format!(
                "{} / {} ms",
                percentile(&f.latency, 0.5),
                percentile(&f.latency, 0.99)
            ),
        ));
        let [first, p50, _, last] = f.page_times();
        rows.push((
            "fan-out result page of 1000: first / p50 / last".into(),
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                ms_f(first),
                ms_f(p50),
                ms_f(last)
            ),
        ));
        rows.push((
            "fan-out emulator delivered / dup".into(),
            format!(
                "{} of {n} / {}  {}",
                f.emu.delivered,
                f.emu.duplicates,
                verdict(f.ok())
            ),
        ));
        rows.push(("fan-out gateway CPU".into(), cpu(&f.cpu)));
        rows.push((
            "fan-out gateway RSS idle / peak".into(),
            format!("{:.0} / {:.0} MiB", mib(f.idle_rss), mib(f.memory.0)),
        ));
        ok &= f.ok();
    }
    if let Some(s) = singles {
        rows.push((
            "singles registration".into(),
            format!(
                "{:.0} devices/s",
                s.devices as f64 / s.registration.as_secs_f64().max(1e-9)
            ),
        ));
        let label = match &s.paced {
            Some((rate, _)) => format!("singles accepted messages/s (offered {rate:.0}/s)"),
            None => "singles accepted messages/s".into(),
        };
        rows.push((
            label,
            format!(
                "{:.0}{}",
                s.accepted_rate(),
                ratio_of(raw, s.accepted_rate())
            ),
        ));
        rows.push((
            "singles POST round trip p50 / p99".into(),
            format!(
                "{:.1} / {:.1} ms",
                ms_f(percentile(&s.rtt, 0.5)),
                ms_f(percentile(&s.rtt, 0.99))
            ),
        ));
        if let Some((_, from_due)) = &s.paced {
            rows.push((
                "singles due -> 202 p50 / p99".into(),
                format!(
                    "{:.1} / {:.1} ms",
                    ms_f(percentile(from_due, 0.5)),
                    ms_f(percentile(from_due, 0.99))
                ),
            ));
        }
        rows.push((
            "singles deliveries/s (first 202 -> last final)".into(),
            format!(
                "{:.0}{}",
                s.delivery_rate(),
                ratio_of(raw, s.delivery_rate())
            ),
        ));
        rows.push((
            "singles latency p50 / p99".into(),
            format!(
                "{} / {} ms",
                percentile(&s.latency, 0.5),
                percentile(&s.latency, 0.99)
            ),
        ));
        rows.push((
            "singles emulator delivered / dup".into(),
            format!(
                "{} of {} / {}  {}",
                s.emu.delivered,
                s.messages,
                s.emu.duplicates,
                verdict(s.ok())
            ),
        ));
        rows.push(("singles gateway CPU".into(), cpu(&s.cpu)));
        rows.push((
            "singles gateway peak RSS".into(),
            format!("{:.0} MiB", mib(s.memory.0)),
        ));
        ok &= s.ok();
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "summary (channel {}, durable commits {}, {} devices{})",
        ctx.args.channel.name(),
        ctx.args.durable_commits,
        ctx.args.devices,
        match (singles.is_some(), ctx.args.rate) {
            (false, _) => String::new(),
            (true, Some(rate)) =>
                format!(", {} messages offered at {rate:.0}/s", ctx.args.messages),
            (true, None) => format!(
                ", {} messages from {} senders",
                ctx.args.messages, ctx.args.senders
            ),
        }
    );
    println!("  {:-<width$}  {:-<24}", "", "");
    for (k, v) in &rows {
        println!("  {k:<width$}  {v}");
    }
    println!("  {:-<width$}  {:-<24}", "", "");
    if ok {
        println!("result: OK, the emulator counted every delivery exactly once");
    } else {
        println!(
            "result: FAILED, the emulator's count or the delivery states do not match (see above)"
        );
    }
    ok
}

/// A progress bar on stderr (drawn only on a terminal).
pub(super) fn progress(total: u64, what: &str) -> ProgressBar {
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
    );
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(total).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `OK` or `MISMATCH`, for the reports.
pub(super) fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISMATCH" }
}

/// Deliveries per state, as `sent 2000, failed 3`.
pub(super) fn states_line(states: &BTreeMap<String, u64>) -> String {
    states
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
