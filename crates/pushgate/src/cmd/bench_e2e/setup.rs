//! Setup and teardown of a run's pieces: the side runtimes, the work directory, the emulator
//! side, and for each scenario a fresh gateway and database with the devices registered
//! (and the gateway's stop).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_emulator::{DEFAULT_PROJECT_ID, Emulator, EmulatorConfig, RunningEmulator};
use pushgate_gateway::config::{DeliverySettings, Secret, ServiceSettings, StorageSettings};
use pushgate_gateway::sandbox::{SANDBOX_APP, sandbox_spec};
use pushgate_gateway::worker::ChannelStatus;
use pushgate_gateway::{Gateway, RunningGateway};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::runtime::{Handle, Runtime};

use super::api::{CreatedDevices, Imported, expect_json};
use super::summary::progress;
use super::{API_KEY, BenchChannel, Ctx, E2eArgs, IMPORT_CHUNK};

/// Most virtual devices per `POST /emulator/devices`.
const EMULATOR_CHUNK: usize = 100_000;

/// A runtime of its own whose threads carry a name; shut down in the background when
/// dropped (a runtime may not be dropped inside another one).
pub(super) struct SideRuntime {
    /// Where to spawn work on it.
    pub(super) handle: Handle,
    runtime: Option<Runtime>,
}

impl SideRuntime {
    /// Starts a multi-thread runtime whose threads are called `name`.
    pub(super) fn new(name: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name(name)
            .build()
            .with_context(|| format!("cannot start the {name} runtime"))?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }
}

impl Drop for SideRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The temporary directory of the databases; removed when dropped unless kept.
pub(super) struct WorkDir {
    /// The directory.
    pub(super) path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub(super) fn create(keep: bool) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "pushgate-bench-e2e-{}-{nanos:08x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path, keep })
    }

    /// Path of the database file `name` in the directory.
    pub(super) fn database(&self, name: &str) -> String {
        self.path.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The emulator under load and how the sandbox reaches it.
pub(super) struct EmulatorSide {
    /// Base URL of its HTTP API (no trailing `/`).
    pub(super) base: String,
    /// Its CCS (XMPP) address, if it listens for one.
    pub(super) xmpp: Option<SocketAddr>,
    cert_pem: Option<String>,
    /// The in-process one (and the runtime it runs on), if it is ours.
    pub(super) local: Option<(RunningEmulator, SideRuntime)>,
}

impl EmulatorSide {
    /// Uses the emulator named by `--emulator`, or starts one in-process on a runtime of
    /// its own.
    pub(super) async fn start(args: &E2eArgs) -> anyhow::Result<Self> {
        if let Some(url) = &args.emulator {
            let cert_pem = match &args.emulator_ca {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                ),
                None => None,
            };
            return Ok(Self {
                base: url.trim_end_matches('/').to_string(),
                xmpp: args.emulator_xmpp,
                cert_pem,
                local: None,
            });
        }
        let runtime = SideRuntime::new("bench-emulator")?;
        let config = EmulatorConfig {
            http: "127.0.0.1:0".parse()?,
            xmpp: (args.channel == BenchChannel::Xmpp)
                .then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            // Each device gets one or a few messages; small inboxes keep memory for the gateway.
            inbox_limit: 4,
            ..EmulatorConfig::default()
        };
        let running = runtime
            .handle
            .spawn(Emulator::start(config))
            .await
            .context("the emulator's start stopped abnormally")?
            .context("cannot start the in-process emulator")?;
        Ok(Self {
            base: running.base_url(),
            xmpp: running.xmpp_addr(),
            cert_pem: running.tls_cert_pem().map(str::to_string),
            local: Some((running, runtime)),
        })
    }

    /// Shuts the in-process emulator down (a separate one is left running).
    pub(super) async fn stop(self) {
        if let Some((running, runtime)) = self.local {
            let _ = runtime.handle.spawn(running.shutdown()).await;
        }
    }
}
/// Delivery settings of the benchmark's gateway: the defaults with a shorter idle poll and
/// retry schedule, so that a retried delivery or an idle period does not stretch a run.
pub(super) fn bench_delivery() -> DeliverySettings {
    DeliverySettings {
        idle_poll: Duration::from_millis(100),
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(5),
        ..DeliverySettings::default()
    }
}

/// A registered population on a fresh gateway.
pub(super) struct Prepared {
    /// The running gateway.
    pub(super) gw: RunningGateway,
    /// Its base URL.
    pub(super) base: String,
    /// Counters of the benchmarked channel's worker.
    pub(super) status: Arc<ChannelStatus>,
    /// The registered device ids, in order (`bench-0000000`, …).
    pub(super) device_ids: Arc<Vec<String>>,
    /// Time the emulator took to create its devices.
    pub(super) emulator_devices: Duration,
    /// Time of the whole registration through `devices:import`.
    pub(super) registration: Duration,
    /// Number of `devices:import` calls.
    pub(super) imports: usize,
}

/// Resets the emulator, creates its devices, starts a gateway on a fresh database and
/// registers the devices through `devices:import`.
pub(super) async fn prepare(ctx: &Ctx, db_name: &str) -> anyhow::Result<Prepared> {
    let emu = &ctx.emu.base;
    let _: Value = expect_json(
        ctx.http.post(format!("{emu}/emulator/reset")),
        StatusCode::OK,
        "POST /emulator/reset",
    )
    .await?;
    let _: Value = expect_json(
        ctx.http
            .put(format!(
                "{emu}/emulator/projects/{DEFAULT_PROJECT_ID}/quota"
            ))
            .json(&json!({"per_minute": 1_000_000_000u64})),
        StatusCode::OK,
        "PUT /emulator/projects/…/quota",
    )
    .await?;
    let sandbox_emu = crate::support::sandbox_emulator::describe(
        &ctx.http,
        emu,
        ctx.emu.xmpp,
        ctx.emu.cert_pem.clone(),
    )
    .await
    .context("GET the emulator's project key")?;

    let n = ctx.args.devices;
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(n);
    while tokens.len() < n {
        let count = (n - tokens.len()).min(EMULATOR_CHUNK);
        let created: CreatedDevices = expect_json(
            ctx.http
                .post(format!("{emu}/emulator/devices"))
                .json(&json!({"count": count})),
            StatusCode::CREATED,
            "POST /emulator/devices",
        )
        .await?;
        if created.devices.len() != count {
            bail!(
                "the emulator created {} devices, not {count}",
                created.devices.len()
            );
        }
        tokens.extend(created.devices.into_iter().map(|d| d.token));
    }
    let emulator_devices = started.elapsed();

    let service = ServiceSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database: ctx.dir.database(db_name),
        storage: StorageSettings {
            durable_commits: ctx.args.durable_commits,
            ..StorageSettings::default()
        },
        delivery: ctx.delivery.clone(),
        ..ServiceSettings::default()
    };
    let mut spec = sandbox_spec(service, Secret::new(API_KEY, "bench"), &sandbox_emu);
    if ctx.args.sole_channel {
        let name = ctx.args.channel.name();
        for app in &mut spec.apps {
            app.channels.retain(|c| c.name == name);
            app.default_channel = name.to_string();
        }
    }
    let gw = ctx
        .gateway_rt
        .spawn(async move { Gateway::start(&spec).await })
        .await
        .context("the gateway's start stopped abnormally")?
        .context("cannot start the gateway")?;
    let base = gw.base_url();
    let channel = ctx.args.channel.name();
    let status = gw
        .channels()
        .get(SANDBOX_APP, channel)
        .with_context(|| format!("the sandbox has no channel {channel:?}"))?
        .status
        .clone();

    let device_ids: Vec<String> = (0..n).map(|i| format!("bench-{i:07}")).collect();
    let chunks = n.div_ceil(IMPORT_CHUNK);
    let bar = progress(n as u64, "devices registered");
    let started = Instant::now();
    let url = format!("{base}/v1/apps/{SANDBOX_APP}/devices:import");
    let mut calls = futures_util::stream::iter(0..chunks)
        .map(|c| {
            let range = c * IMPORT_CHUNK..((c + 1) * IMPORT_CHUNK).min(n);
            let len = range.len();
            let devices: Vec<Value> = range
                .map(
                    |i| json!({"device_id": device_ids[i], "token": tokens[i], "channel": channel}),
                )
                .collect();
            let req = ctx
                .http
                .post(&url)
                .bearer_auth(API_KEY)
                .json(&json!({ "devices": devices }));
            async move {
                let out: Imported = expect_json(req, StatusCode::OK, "POST devices:import").await?;
                if out.imported != len as u64 {
                    bail!("devices:import imported {} of {len}", out.imported);
                }
                anyhow::Ok(len)
            }
        })
        .buffer_unordered(ctx.args.import_concurrency.max(1));
    while let Some(done) = calls.next().await {
        bar.inc(done? as u64);
    }
    drop(calls);
    let registration = started.elapsed();
    bar.finish_and_clear();
    Ok(Prepared {
        gw,
        base,
        status,
        device_ids: Arc::new(device_ids),
        emulator_devices,
        registration,
        imports: chunks,
    })
}

/// Stops a scenario's gateway (on the runtime it runs on).
pub(super) async fn stop_gateway(ctx: &Ctx, gw: RunningGateway) -> Duration {
    let started = Instant::now();
    let _ = ctx.gateway_rt.spawn(gw.shutdown()).await;
    started.elapsed()
}
