//! `pushgate bench soak`: a gateway under a steady load for a long time, with retention set
//! to minutes, to show that what it holds levels off instead of growing with its history.
//!
//! One gateway process (on a fresh SQLite file unless `--database` names one) and one
//! emulator, as in `bench e2e`; single-device messages offered at `--rate` per second for
//! `--duration`. Once per `--every` it prints the database's size (file, write-ahead log, free
//! pages), the rows it holds, the gateway's RSS, the queue depth, the time of a `/metrics`
//! scrape and the POSTs' p99 over the interval; at the end, the last interval against the
//! first one after retention began to delete (all should stay flat), and it checks that the
//! emulator got every accepted message.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pushgate_gateway::sandbox::SANDBOX_APP;
use serde_json::json;
use std::sync::Mutex;

use super::api::emu_stats;
use super::measure::{memory_kib, mib};
use super::setup::{EmulatorSide, GatewaySide, WorkDir, bench_delivery, prepare, run_id};
use super::singles::post_one;
use super::timing::percentile;
use super::{BenchChannel, Ctx, E2eArgs, Scenarios};

/// Flags of `pushgate bench soak`.
#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// How long to send.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Single-device messages offered per second, whatever the answers.
    #[arg(long, default_value_t = 200.0, value_name = "MSGS_PER_SEC")]
    rate: f64,
    /// Virtual devices the messages go to, round-robin.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// The gateway's retention of finished messages, their deliveries and events.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// How often retention runs, and deletes per transaction.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    retention_interval: Duration,
    /// Print one line per interval of this length.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Sandbox channel of the devices.
    #[arg(long, value_enum, default_value_t = BenchChannel::Fcm)]
    channel: BenchChannel,
    /// Base URL of a running emulator; by default one is started as a process of its own.
    #[arg(long, value_name = "URL")]
    emulator: Option<String>,
    /// The gateway's database (a SQLite path or a PostgreSQL URL); by default a fresh SQLite
    /// file in a temporary directory.
    #[arg(long, value_name = "PATH|URL")]
    database: Option<String>,
    /// Flush every commit (SQLite synchronous=FULL); `false`: synchronous=NORMAL.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    durable_commits: bool,
    /// Write the samples as JSON to this file too.
    #[arg(long, value_name = "PATH")]
    report_json: Option<PathBuf>,
    /// Keep the temporary directory with the database.
    #[arg(long)]
    keep: bool,
}

impl SoakArgs {
    /// The `bench e2e` settings its setup code reads (devices, channel, emulator, database).
    fn as_e2e(&self) -> E2eArgs {
        E2eArgs {
            devices: self.devices,
            messages: 0,
            senders: 1,
            import_concurrency: 4,
            channel: self.channel,
            emulator: self.emulator.clone(),
            gateway: None,
            api_key: None,
            gateway_pid: None,
            database: self.database.clone(),
            instances: 1,
            emulator_xmpp: None,
            emulator_ca: None,
            durable_commits: self.durable_commits,
            rate: Some(self.rate),
            max_outstanding: 4096,
            raw_units: Some(0),
            report_json: None,
            scenario: Scenarios::Singles,
            sole_channel: false,
            keep: self.keep,
            timeout: 120,
            timeline: false,
        }
    }
}

/// The `[retention]` table of the soak's gateway.
fn retention_toml(retention: Duration, interval: Duration) -> String {
    let d = |d: Duration| format!("\"{}ms\"", d.as_millis());
    format!(
        "[retention]\nmessages = {}\nevents = {}\ninterval = {}\nbatch = 500\n",
        d(retention),
        d(retention),
        d(interval)
    )
}

/// What one interval looked like.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    /// Seconds since the first POST.
    at_s: f64,
    /// Whether the load was still being offered when the sample was taken.
    sending: bool,
    accepted: u64,
    accepted_per_s: f64,
    errors: u64,
    post_p99_ms: f64,
    delivered: u64,
    queue_pending: u64,
    scrape_ms: f64,
    db_bytes: u64,
    wal_bytes: u64,
    free_bytes: u64,
    messages: u64,
    deliveries: u64,
    events: u64,
    rss_kib: u64,
}

/// Runs the soak; fails when a message accepted was not delivered.
pub async fn run_soak(args: SoakArgs) -> anyhow::Result<ExitCode> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of messages per second");
    }
    if args.every.is_zero() || args.duration.is_zero() {
        bail!("--every and --duration must be longer than zero");
    }
    let e2e = args.as_e2e();
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    let dir = WorkDir::create(args.keep)?;
    let emu = EmulatorSide::start(&e2e, &http, &dir).await?;
    let shared = e2e.database.is_some();
    let run = run_id();
    let ctx = Ctx {
        device_prefix: if shared {
            format!("soak-{run}-")
        } else {
            "soak-".to_string()
        },
        shared_tag: shared.then(|| format!("soak-{run}")),
        args: e2e,
        http,
        emu,
        dir,
        delivery: bench_delivery(),
        gateway_extra: retention_toml(args.retention, args.retention_interval),
    };
    let outcome = soak(&ctx, &args).await;
    let Ctx { emu, dir, .. } = ctx;
    emu.stop().await;
    drop(dir);
    outcome
}

/// The load, the samples and the verdict.
async fn soak(ctx: &Ctx, args: &SoakArgs) -> anyhow::Result<ExitCode> {
    let database = ctx
        .args
        .database
        .clone()
        .unwrap_or_else(|| ctx.dir.path.join("soak.db").to_string_lossy().into_owned());
    println!("pushgate bench soak");
    println!(
        "  load       {} single-device messages/s for {} s to {} devices, channel {}",
        args.rate,
        args.duration.as_secs(),
        args.devices,
        ctx.args.channel.name()
    );
    println!(
        "  retention  messages and events after {} s, a pass every {} s; database {}",
        args.retention.as_secs(),
        args.retention_interval.as_secs(),
        pushgate_store::redacted(&database)
    );
    eprintln!("soak: preparing {} devices", args.devices);
    let p = prepare(ctx, "soak.db").await?;
    let pid = p.gw.pids.first().copied();
    println!(
        "  gateway    pid {}; each line covers {} s",
        pid.map_or("unknown".into(), |p| p.to_string()),
        args.every.as_secs()
    );
    println!(
        "  {:>6} {:>9} {:>8} {:>6} {:>8} {:>9} {:>6} {:>9} {:>7} {:>7} {:>7} {:>9} {:>10} {:>8} {:>7}",
        "t (s)",
        "accepted",
        "acc/s",
        "errors",
        "POST p99",
        "delivered",
        "queue",
        "scrape ms",
        "db MiB",
        "wal MiB",
        "free",
        "messages",
        "deliveries",
        "events",
        "RSS MiB"
    );

    let load = Load::default();
    let posting = tokio::spawn(post_steadily(
        ctx.http.clone(),
        p.gw.bases.clone(),
        p.gw.api_key.clone(),
        p.device_ids.clone(),
        args.rate,
        args.duration,
        load.clone(),
    ));
    let maintenance = pushgate_store::open_maintenance(&database)
        .await
        .with_context(|| {
            format!(
                "opening {} to read its size",
                pushgate_store::redacted(&database)
            )
        })?;
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + args.every, args.every);
    let mut last_accepted = 0;
    loop {
        tick.tick().await;
        let finished = posting.is_finished();
        let sample = take_sample(ctx, &p.gw, pid, &*maintenance, &load, started).await?;
        let interval = args.every.as_secs_f64();
        let sample = Sample {
            accepted_per_s: (sample.accepted - last_accepted) as f64 / interval,
            sending: !finished,
            ..sample
        };
        last_accepted = sample.accepted;
        print_sample(&sample);
        samples.push(sample);
        if finished {
            break;
        }
    }
    posting.await.context("the sender stopped abnormally")?;

    // Let the queue drain, then compare.
    let accepted = load.accepted.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut delivered = emu_stats(ctx).await?.delivered;
    while delivered < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        delivered = emu_stats(ctx).await?.delivered;
    }
    let shutdown = p.gw.stop().await;
    let errors = load.errors.load(Ordering::Relaxed);
    let ok = delivered >= accepted && errors == 0;
    print_verdict(&samples, args, accepted, delivered, errors, shutdown);
    if let Some(path) = &args.report_json {
        let report = json!({
            "rate": args.rate,
            "duration_s": args.duration.as_secs_f64(),
            "retention_s": args.retention.as_secs_f64(),
            "accepted": accepted,
            "delivered": delivered,
            "errors": errors,
            "samples": samples,
            "ok": ok,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What the sender has done so far; the POST times are taken by each sample.
#[derive(Clone, Default)]
struct Load {
    accepted: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    /// POST round trips since the last sample.
    rtts: Arc<Mutex<Vec<Duration>>>,
}

/// Offers message `i` at `i / rate` seconds, spread over the instances, until `duration`;
/// a POST that fails is counted, not retried.
async fn post_steadily(
    http: reqwest::Client,
    bases: Vec<String>,
    key: String,
    ids: Arc<Vec<String>>,
    rate: f64,
    duration: Duration,
    load: Load,
) {
    let urls: Vec<Arc<String>> = bases
        .iter()
        .map(|b| Arc::new(format!("{b}/v1/apps/{SANDBOX_APP}/messages")))
        .collect();
    let key = Arc::new(key);
    let outstanding = Arc::new(tokio::sync::Semaphore::new(4096));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0.. {
        let due = Duration::from_secs_f64(i as f64 / rate);
        if due >= duration {
            break;
        }
        tokio::time::sleep_until(start + due).await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else {
            break;
        };
        let (http, url, key, ids, load) = (
            http.clone(),
            urls[i % urls.len()].clone(),
            key.clone(),
            ids.clone(),
            load.clone(),
        );
        tasks.spawn(async move {
            match post_one(&http, &url, &key, &ids, i).await {
                Ok((_, rtt)) => {
                    load.accepted.fetch_add(1, Ordering::Relaxed);
                    load.rtts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(rtt);
                }
                Err(e) => {
                    if load.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("soak: POST {i} failed: {e:#}");
                    }
                }
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Reads everything a line shows (the rate over the interval is filled in by the caller).
async fn take_sample(
    ctx: &Ctx,
    gw: &GatewaySide,
    pid: Option<u32>,
    maintenance: &dyn pushgate_store::Maintenance,
    load: &Load,
    started: Instant,
) -> anyhow::Result<Sample> {
    let mut rtts = std::mem::take(
        &mut *load
            .rtts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    rtts.sort_unstable();
    let scrape_started = Instant::now();
    let metrics = ctx
        .http
        .get(format!("{}/metrics", gw.base()))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("GET /metrics")?
        .text()
        .await?;
    let scrape = scrape_started.elapsed();
    let stats = maintenance
        .stats()
        .await
        .context("reading the database's size")?;
    let rows = |name: &str| {
        stats
            .tables
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.rows)
    };
    Ok(Sample {
        at_s: started.elapsed().as_secs_f64(),
        sending: true,
        accepted: load.accepted.load(Ordering::Relaxed),
        accepted_per_s: 0.0,
        errors: load.errors.load(Ordering::Relaxed),
        post_p99_ms: percentile(&rtts, 0.99).as_secs_f64() * 1e3,
        delivered: emu_stats(ctx).await?.delivered,
        queue_pending: metric_sum(&metrics, "pushgate_queue_pending"),
        scrape_ms: scrape.as_secs_f64() * 1e3,
        db_bytes: stats.bytes,
        wal_bytes: stats.wal_bytes.unwrap_or(0),
        free_bytes: stats.free_bytes.unwrap_or(0),
        messages: rows("messages"),
        deliveries: rows("deliveries"),
        events: rows("events"),
        rss_kib: pid.map_or(0, |pid| memory_kib(pid).1),
    })
}

/// The sum of every series of the metric `name` in a Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Bytes as MiB.
fn mib_of(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_sample(s: &Sample) {
    println!(
        "  {:>6.0} {:>9} {:>8.0} {:>6} {:>8.1} {:>9} {:>6} {:>9.1} {:>7.1} {:>7.1} {:>7.1} {:>9} {:>10} {:>8} {:>7.0}",
        s.at_s,
        s.accepted,
        s.accepted_per_s,
        s.errors,
        s.post_p99_ms,
        s.delivered,
        s.queue_pending,
        s.scrape_ms,
        mib_of(s.db_bytes),
        mib_of(s.wal_bytes),
        mib_of(s.free_bytes),
        s.messages,
        s.deliveries,
        s.events,
        mib(s.rss_kib)
    );
}

/// The last interval under load against the first one after retention began to delete.
fn print_verdict(
    samples: &[Sample],
    args: &SoakArgs,
    accepted: u64,
    delivered: u64,
    errors: u64,
    shutdown: Duration,
) {
    println!();
    let settled = (args.retention + args.retention_interval + args.every).as_secs_f64();
    let first = samples.iter().find(|s| s.at_s >= settled);
    let last = samples.iter().rev().find(|s| s.sending);
    match (first, last) {
        (Some(first), Some(last)) if last.at_s > first.at_s => {
            let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { f64::NAN };
            let total = |s: &Sample| (s.db_bytes + s.wal_bytes) as f64;
            println!(
                "  levels     from {:.0} s to {:.0} s (retention running): database + WAL {:.1} → {:.1} MiB ({:.2}×), rows of deliveries {} → {} ({:.2}×), RSS {:.0} → {:.0} MiB ({:.2}×), scrape {:.1} → {:.1} ms",
                first.at_s,
                last.at_s,
                mib_of(total(first) as u64),
                mib_of(total(last) as u64),
                ratio(total(first), total(last)),
                first.deliveries,
                last.deliveries,
                ratio(first.deliveries as f64, last.deliveries as f64),
                mib(first.rss_kib),
                mib(last.rss_kib),
                ratio(first.rss_kib as f64, last.rss_kib as f64),
                first.scrape_ms,
                last.scrape_ms,
            );
        }
        _ => println!(
            "  levels     the run ended before retention had run for an interval ({settled:.0} s): run longer than --retention + --retention-interval + --every"
        ),
    }
    println!(
        "  result     {accepted} accepted, {delivered} delivered by the emulator, {errors} POSTs failed; shutdown {:.2} s: {}",
        shutdown.as_secs_f64(),
        if delivered >= accepted && errors == 0 {
            "OK"
        } else {
            "FAILED"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sums_add_every_series_of_one_name_only() {
        let text = "# HELP pushgate_queue_pending x\n\
                    pushgate_queue_pending{app=\"a\",channel=\"fcm\"} 3\n\
                    pushgate_queue_pending{app=\"a\",channel=\"legacy\"} 4\n\
                    pushgate_queue_pending_other{app=\"a\"} 100\n\
                    pushgate_queue_due{app=\"a\",channel=\"fcm\"} 9\n";
        assert_eq!(metric_sum(text, "pushgate_queue_pending"), 7);
        assert_eq!(metric_sum(text, "pushgate_queue_due"), 9);
        assert_eq!(metric_sum(text, "pushgate_missing"), 0);
    }
}
