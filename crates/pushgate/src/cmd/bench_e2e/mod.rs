//! `pushgate bench e2e`: the gateway alone, driven through its HTTP API.
//!
//! Three processes: the gateway (`pushgate serve --config` on a generated `pushgate.toml`,
//! started from this very executable, or `--gateway URL` for one already running), the
//! emulator (`pushgate emulator`, started the same way, or `--emulator URL`) and this one, the
//! driver (a reqwest client with keep-alive and several tokio tasks). The gateway's CPU and
//! memory figures come from its own `/proc/PID`; the emulator's and the driver's CPU are
//! reported beside them, so a run shows who was busy.
//!
//! Before the scenarios, the raw provider rate of the benchmarked channel is measured against
//! the same emulator process with the loops of `pushgate bench v1` / `legacy`; every gateway
//! rate is printed with its ratio to it.
//!
//! Two scenarios run one after the other, each on a fresh gateway process with a fresh
//! database (SQLite in a temporary directory unless `--database` names one) and a reset
//! emulator:
//!
//! With `--instances N` (and a PostgreSQL `--database`), each scenario starts N gateway
//! processes on the one database; imports and senders are spread over them round-robin,
//! the channel's counters are read from every instance and summed, and so are their CPU and
//! RSS.
//!
//! 1. fan-out: N virtual devices registered through `devices:import`, then one message to
//!    `{"all": true}` (to the run's tag when the database is shared); accept time,
//!    deliveries/s, accept-to-delivery latency over every delivery (read back from the
//!    message's result pages, each page timed);
//! 2. singles: M single-device messages posted by C concurrent senders (closed loop), or
//!    offered at `--rate` messages/s whatever the answers (open loop: latency at a given
//!    load); accepted/s, POST round trip, deliveries/s and accept-to-delivery latency.
//!
//! Every scenario checks the emulator's own delivery count; a short count fails the run.
//!
//! One file per job: [`process`] starts and stops child processes, [`config`] writes the
//! gateway's configuration, [`setup`] brings up the emulator and a scenario's gateway with its
//! devices, [`raw`] measures the provider's raw rate, [`api`] reads the JSON answers,
//! [`measure`] takes the figures while a scenario runs, [`timing`] does the time arithmetic,
//! [`fanout`] and [`singles`] run the two scenarios and print their reports, [`summary`]
//! prints the header and the final table, and [`report`] writes the JSON report.

mod api;
mod config;
mod fanout;
mod measure;
mod process;
mod raw;
mod report;
mod setup;
mod singles;
mod soak;
mod store_steps;
mod summary;
mod timing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pushgate_gateway::config::DeliverySettings;

use self::fanout::fan_out;
use self::measure::disk_probe;
use self::raw::{RawFigure, measure_raw};
use self::setup::{EmulatorSide, WorkDir, bench_delivery, run_id};
use self::singles::singles_scenario;
pub use self::soak::{SoakArgs, run_soak};
use self::summary::{print_header, print_summary};

/// Devices per `devices:import` call (the API's maximum).
const IMPORT_CHUNK: usize = 1000;

/// Sandbox channel the benchmark's devices use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchChannel {
    /// FCM HTTP v1 over h2c, one request per token (the sandbox default).
    Fcm,
    /// GCM/FCM legacy HTTP (JSON), 1000-id multicasts.
    Legacy,
    /// CCS (XMPP over TLS), a window of 100 messages per connection.
    Xmpp,
}

impl BenchChannel {
    /// The sandbox channel's name.
    fn name(self) -> &'static str {
        match self {
            BenchChannel::Fcm => "fcm",
            BenchChannel::Legacy => "legacy",
            BenchChannel::Xmpp => "xmpp",
        }
    }

    /// What it speaks, for the report.
    fn describe(self) -> &'static str {
        match self {
            BenchChannel::Fcm => "FCM v1 over h2c, one request per token",
            BenchChannel::Legacy => "legacy HTTP JSON, up to 1000 ids per multicast",
            BenchChannel::Xmpp => "CCS over TLS, 100-message window",
        }
    }
}

/// Which scenarios to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenarios {
    /// The fan-out, then the singles.
    Both,
    /// Only the fan-out.
    Fanout,
    /// Only the singles.
    Singles,
}

/// Flags of `pushgate bench e2e`.
#[derive(clap::Args, Debug, Clone)]
pub struct E2eArgs {
    /// Virtual devices to create and register (the fan-out's audience; the singles reuse them
    /// round-robin).
    #[arg(long, default_value_t = 100_000)]
    devices: usize,
    /// Single-device messages of the second scenario.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Concurrent senders posting the single-device messages.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Concurrent `devices:import` calls of 1000 devices each.
    #[arg(long, default_value_t = 4)]
    import_concurrency: usize,
    /// Sandbox channel of the devices.
    #[arg(long, value_enum, default_value_t = BenchChannel::Fcm)]
    channel: BenchChannel,
    /// Base URL of a running emulator; by default `pushgate emulator` is started as a
    /// process of its own.
    #[arg(long, value_name = "URL")]
    emulator: Option<String>,
    /// Base URL of a running gateway whose app `sandbox` has a channel named like
    /// `--channel` pointed at `--emulator`; by default `pushgate serve` is started as a
    /// process of its own for each scenario, on a fresh database.
    #[arg(long, value_name = "URL", requires_all = ["api_key", "emulator"])]
    gateway: Option<String>,
    /// With `--gateway`: an API key of its app `sandbox`.
    #[arg(long, value_name = "KEY", requires = "gateway")]
    api_key: Option<String>,
    /// With `--gateway`: its process id, for its CPU and memory figures.
    #[arg(long, value_name = "PID", requires = "gateway")]
    gateway_pid: Option<u32>,
    /// The started gateway's database (a SQLite path, or a database URL the gateway
    /// accepts); by default a fresh SQLite file per scenario in a temporary directory. A
    /// named database is shared by both scenarios: devices get the run's id and tag, and the
    /// fan-out targets that tag.
    #[arg(long, value_name = "PATH|URL", conflicts_with = "gateway")]
    database: Option<String>,
    /// Gateway processes started per scenario, sharing `--database` (which must then be a
    /// PostgreSQL URL); the API load (imports, senders) is spread over them round-robin and
    /// their CPU and RSS are summed.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        conflicts_with = "gateway"
    )]
    instances: usize,
    /// With `--emulator` and `--channel xmpp`: the emulator's CCS address.
    #[arg(long, value_name = "ADDR", requires = "emulator")]
    emulator_xmpp: Option<SocketAddr>,
    /// With `--emulator-xmpp`: the emulator's TLS certificate (PEM, as written by
    /// `pushgate emulator --tls-cert-out`).
    #[arg(long, value_name = "PATH", requires = "emulator_xmpp")]
    emulator_ca: Option<PathBuf>,
    /// Flush every commit (SQLite synchronous=FULL); `false`: synchronous=NORMAL.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    durable_commits: bool,
    /// Offer the single-device messages at this many per second whatever the answers (open
    /// loop: latency at a given load) instead of from `--senders` senders waiting for each
    /// answer (closed loop: the most the gateway accepts).
    #[arg(long, value_name = "MSGS_PER_SEC")]
    rate: Option<f64>,
    /// Most POSTs outstanding at once in the paced mode; beyond it a POST waits (and
    /// counts as late).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    max_outstanding: usize,
    /// Units of the raw provider rate measured first (v1: messages, legacy: tokens in
    /// 1000-id multicasts); 0 skips it.
    #[arg(long, value_name = "N")]
    raw_units: Option<usize>,
    /// Write the figures as JSON to this file too.
    #[arg(long, value_name = "PATH")]
    report_json: Option<PathBuf>,
    /// Run both scenarios or only one.
    #[arg(long, value_enum, default_value_t = Scenarios::Both)]
    scenario: Scenarios,
    /// Diagnostic: keep only the benchmarked channel in the sandbox spec (and make it the
    /// default), so that no idle channel worker shares the database with it.
    #[arg(long, conflicts_with = "gateway")]
    sole_channel: bool,
    /// Keep the temporary directory with the databases.
    #[arg(long)]
    keep: bool,
    /// Give up waiting for a scenario's deliveries after this many seconds.
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    timeout: u64,
    /// Print one line per second of each scenario (accepted, attempted, recorded, and the
    /// emulator's delivered count).
    #[arg(long)]
    timeline: bool,
}

/// Runs the benchmark; fails (non-zero) when the emulator did not get every delivery.
pub async fn run(args: E2eArgs) -> anyhow::Result<ExitCode> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.instances > 1
        && !args
            .database
            .as_deref()
            .is_some_and(|db| db.starts_with("postgres://") || db.starts_with("postgresql://"))
    {
        bail!(
            "--instances {} needs --database postgres://… (instances share one database; SQLite serves one process)",
            args.instances
        );
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of messages per second");
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.senders.max(args.import_concurrency).max(8))
        .timeout(Duration::from_secs(300))
        .build()
        .context("cannot build the HTTP client")?;
    let dir = WorkDir::create(args.keep)?;
    let emu = EmulatorSide::start(&args, &http, &dir).await?;
    if args.channel == BenchChannel::Xmpp && emu.xmpp.is_none() {
        emu.stop().await;
        bail!("--channel xmpp needs the emulator's CCS address (--emulator-xmpp with --emulator)");
    }
    let probe = disk_probe(dir.path.clone()).await;
    let shared = args.gateway.is_some() || args.database.is_some();
    let run = run_id();
    let ctx = Ctx {
        device_prefix: if shared {
            format!("bench-{run}-")
        } else {
            "bench-".to_string()
        },
        shared_tag: shared.then(|| format!("bench-{run}")),
        args,
        http,
        emu,
        dir,
        delivery: bench_delivery(),
        gateway_extra: String::new(),
    };
    let outcome = bench(&ctx, &probe).await;
    let Ctx { emu, dir, .. } = ctx;
    emu.stop().await;
    drop(dir);
    outcome
}

/// What every scenario shares.
struct Ctx {
    args: E2eArgs,
    http: reqwest::Client,
    emu: EmulatorSide,
    dir: WorkDir,
    delivery: DeliverySettings,
    /// Start of every device id (`bench-`, or `bench-<run>-` on a shared database).
    device_prefix: String,
    /// The tag of this run's devices, when the database is shared with other runs.
    shared_tag: Option<String>,
    /// TOML appended to every spawned gateway's configuration (the soak's `[retention]`).
    gateway_extra: String,
}

/// The raw rate, the scenarios and the summary.
async fn bench(ctx: &Ctx, probe: &str) -> anyhow::Result<ExitCode> {
    print_header(ctx, probe);
    let raw: Option<RawFigure> = measure_raw(ctx).await?;
    if let Some(raw) = &raw {
        raw.print();
    }
    let mut fanout = None;
    let mut singles = None;
    if ctx.args.scenario != Scenarios::Singles {
        let report = fan_out(ctx).await?;
        report.print(ctx, raw.as_ref());
        fanout = Some(report);
    }
    if ctx.args.scenario != Scenarios::Fanout {
        let report = singles_scenario(ctx).await?;
        report.print(ctx, raw.as_ref());
        singles = Some(report);
    }
    let ok = print_summary(ctx, raw.as_ref(), fanout.as_ref(), singles.as_ref());
    if let Some(path) = &ctx.args.report_json {
        report::write(path, ctx, raw.as_ref(), fanout.as_ref(), singles.as_ref())?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
