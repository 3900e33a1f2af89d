//! `pushgate bench e2e`: the whole gateway, driven through its HTTP API.
//!
//! A sandbox gateway (app `sandbox`, SQLite file in a temporary directory) is started in this
//! process on the main runtime; the emulator is started in-process on a runtime of its own
//! (threads `bench-emulator`) unless `--emulator URL` names a running one; the driver (a
//! reqwest client with keep-alive and several tokio tasks) runs on a third runtime (threads
//! `bench-driver`). The three share the process and the machine's cores; the separate
//! runtimes only let the CPU time of each be told apart (per-thread counters of `/proc`).
//!
//! Two scenarios run one after the other, each on a fresh database and a reset emulator:
//!
//! 1. fan-out: N virtual devices registered through `devices:import`, then one message to
//!    `{"all": true}`; accept time, deliveries/s, accept-to-delivery latency over every
//!    delivery (read back from the message's result pages);
//! 2. singles: M single-device messages posted by C concurrent senders; accepted/s, POST
//!    round trip, deliveries/s and accept-to-delivery latency per message.
//!
//! Every scenario checks the emulator's own delivery count; a short count fails the run.
//!
//! One file per job: [`setup`] starts and stops the pieces (side runtimes, work directory,
//! emulator, a fresh gateway with its devices registered), [`api`] reads the JSON answers,
//! [`measure`] takes the figures while a scenario runs, [`timing`] does the time arithmetic,
//! [`fanout`] and [`singles`] run the two scenarios and print their reports, and
//! [`summary`] prints the header and the final table.

mod api;
mod fanout;
mod measure;
mod setup;
mod singles;
mod summary;
mod timing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pushgate_gateway::config::DeliverySettings;
use tokio::runtime::Handle;

use self::fanout::fan_out;
use self::measure::disk_probe;
use self::setup::{EmulatorSide, SideRuntime, WorkDir, bench_delivery};
use self::singles::singles_scenario;
use self::summary::{print_header, print_summary};

/// The sandbox app's API key during the benchmark.
const API_KEY: &str = "bench-e2e-key-0123456789abcdef";
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
    /// Base URL of a running emulator (e.g. `pushgate emulator` in another process); by
    /// default one is started in-process.
    #[arg(long, value_name = "URL")]
    emulator: Option<String>,
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
    /// Run both scenarios or only one.
    #[arg(long, value_enum, default_value_t = Scenarios::Both)]
    scenario: Scenarios,
    /// Diagnostic: keep only the benchmarked channel in the sandbox spec (and make it the
    /// default), so that no idle channel worker shares the database with it.
    #[arg(long)]
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
    let gateway_rt = Handle::current();
    let driver = SideRuntime::new("bench-driver")?;
    let outcome = driver
        .handle
        .spawn(bench(args, gateway_rt))
        .await
        .context("the benchmark driver stopped abnormally")?;
    drop(driver);
    outcome
}

/// What every scenario shares.
struct Ctx {
    args: E2eArgs,
    gateway_rt: Handle,
    http: reqwest::Client,
    emu: EmulatorSide,
    dir: WorkDir,
    delivery: DeliverySettings,
}

/// The benchmark proper, on the driver's runtime: starts the shared pieces, runs the
/// scenarios and prints the summary.
async fn bench(args: E2eArgs, gateway_rt: Handle) -> anyhow::Result<ExitCode> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.senders.max(args.import_concurrency).max(8))
        .timeout(Duration::from_secs(300))
        .build()
        .context("cannot build the HTTP client")?;
    let emu = EmulatorSide::start(&args).await?;
    if args.channel == BenchChannel::Xmpp && emu.xmpp.is_none() {
        bail!("--channel xmpp needs the emulator's CCS address (--emulator-xmpp with --emulator)");
    }
    let dir = WorkDir::create(args.keep)?;
    let probe = disk_probe(dir.path.clone()).await;
    let ctx = Ctx {
        args,
        gateway_rt,
        http,
        emu,
        dir,
        delivery: bench_delivery(),
    };
    print_header(&ctx, &probe);

    let mut fanout = None;
    let mut singles = None;
    if ctx.args.scenario != Scenarios::Singles {
        let report = fan_out(&ctx).await?;
        report.print(&ctx);
        fanout = Some(report);
    }
    if ctx.args.scenario != Scenarios::Fanout {
        let report = singles_scenario(&ctx).await?;
        report.print(&ctx);
        singles = Some(report);
    }
    let ok = print_summary(&ctx, fanout.as_ref(), singles.as_ref());
    let Ctx { emu, dir, .. } = ctx;
    emu.stop().await;
    drop(dir);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
