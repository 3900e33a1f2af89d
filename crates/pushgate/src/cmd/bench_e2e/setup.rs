//! Setup and teardown of a run's pieces: the work directory, the emulator (a `pushgate
//! emulator` process of its own, or one already running), and for each scenario the gateway
//! (a fresh `pushgate serve` process on a fresh database, or one already running) with the
//! scenario's devices registered, and its stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use pushgate_emulator::DEFAULT_PROJECT_ID;
use pushgate_gateway::config::DeliverySettings;
use pushgate_gateway::sandbox::SANDBOX_APP;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{CreatedDevices, Imported, expect_json};
use super::config::{EmulatorRef, GatewayOptions, gateway_toml};
use super::measure::StatusProbe;
use super::process::{Child, free_port, wait_ready};
use super::summary::progress;
use super::{BenchChannel, Ctx, E2eArgs, IMPORT_CHUNK};

/// Most virtual devices per `POST /emulator/devices`.
const EMULATOR_CHUNK: usize = 100_000;
/// How long a child process has to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child process has to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The API key of a gateway the benchmark starts.
const SPAWNED_API_KEY: &str = "bench-e2e-key-0123456789abcdef";

/// The temporary directory of the databases, configurations and logs; removed when dropped
/// unless kept.
pub(super) struct WorkDir {
    /// The directory.
    pub(super) path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub(super) fn create(keep: bool) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "pushgate-bench-e2e-{}-{:08x}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path, keep })
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

/// The sub-second nanoseconds of the clock: enough to tell runs apart.
fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
}

/// A short id of this run, in the device ids and tag of a gateway whose database outlives
/// the run.
pub(super) fn run_id() -> String {
    format!("{:06x}", nanos() & 0x00ff_ffff)
}

/// The emulator under load and how the gateway reaches it.
pub(super) struct EmulatorSide {
    /// Base URL of its HTTP API (no trailing `/`).
    pub(super) base: String,
    /// Its CCS (XMPP) address, if it listens for one.
    pub(super) xmpp: Option<SocketAddr>,
    /// Its TLS certificate (PEM file), for the CCS channel.
    pub(super) ca: Option<PathBuf>,
    /// Its default project's service-account key file.
    pub(super) key_file: PathBuf,
    /// The process, when the benchmark started it.
    pub(super) child: Option<Child>,
}

impl EmulatorSide {
    /// Uses the emulator named by `--emulator`, or starts `pushgate emulator` (with CCS for
    /// `--channel xmpp`) as a process of its own.
    pub(super) async fn start(
        args: &E2eArgs,
        http: &reqwest::Client,
        dir: &WorkDir,
    ) -> anyhow::Result<Self> {
        let key_file = dir.path.join("emulator-key.json");
        let mut side = if let Some(url) = &args.emulator {
            Self {
                base: url.trim_end_matches('/').to_string(),
                xmpp: args.emulator_xmpp,
                ca: args.emulator_ca.clone(),
                key_file,
                child: None,
            }
        } else {
            Self::spawn(args, http, dir, key_file).await?
        };
        let key = http
            .get(format!(
                "{}/emulator/projects/{DEFAULT_PROJECT_ID}/key",
                side.base
            ))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET the project key of the emulator at {}", side.base))?
            .text()
            .await?;
        std::fs::write(&side.key_file, key)
            .with_context(|| format!("cannot write {}", side.key_file.display()))?;
        if side.xmpp.is_none() {
            side.ca = None;
        }
        Ok(side)
    }

    async fn spawn(
        args: &E2eArgs,
        http: &reqwest::Client,
        dir: &WorkDir,
        key_file: PathBuf,
    ) -> anyhow::Result<Self> {
        let with_ccs = args.channel == BenchChannel::Xmpp;
        let ca = dir.path.join("emulator.pem");
        for attempt in 1..=3 {
            let port = free_port()?;
            // Each device gets one or a few messages; small inboxes keep the emulator small.
            let mut argv: Vec<String> = [
                "emulator",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--inbox-limit",
                "4",
            ]
            .map(String::from)
            .to_vec();
            let xmpp = if with_ccs {
                let xmpp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
                argv.extend([
                    "--xmpp".into(),
                    xmpp.to_string(),
                    "--tls-cert-out".into(),
                    ca.to_string_lossy().into_owned(),
                ]);
                Some(xmpp)
            } else {
                argv.push("--no-xmpp".into());
                None
            };
            let mut child = Child::spawn("emulator", &argv, &dir.path, &[])?;
            let base = format!("http://127.0.0.1:{port}");
            let url = format!("{base}/emulator/stats");
            if wait_ready(http, &url, port, &mut child, START_TIMEOUT).await? {
                if with_ccs {
                    // The certificate is written right after the listeners are up.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while !ca.exists() && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                return Ok(Self {
                    base,
                    xmpp,
                    ca: with_ccs.then(|| ca.clone()),
                    key_file,
                    child: Some(child),
                });
            }
            if attempt == 3 {
                bail!(
                    "the emulator exited at start three times\n{}",
                    child.log_tail()
                );
            }
        }
        unreachable!("the loop returns or fails")
    }

    /// The emulator's process id, when the benchmark started it.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// Stops the emulator the benchmark started (a separate one is left running).
    pub(super) async fn stop(self) {
        if let Some(child) = self.child {
            child.stop(STOP_GRACE).await;
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

/// The gateway of one scenario: one instance, or several sharing one database.
pub(super) struct GatewaySide {
    /// Base URL of each instance's API (the first also serves the scenario's reads).
    pub(super) bases: Vec<String>,
    /// Its API key.
    pub(super) api_key: String,
    /// The instances' process ids, when known (started here, or `--gateway-pid`).
    pub(super) pids: Vec<u32>,
    /// The processes, when the benchmark started them.
    children: Vec<Child>,
}

impl GatewaySide {
    /// Starts `--instances` `pushgate serve` processes on a fresh database (`db_name` in the
    /// work directory, unless `--database` names one), one after the other so that the first
    /// migrates it; or uses the gateway of `--gateway`.
    async fn start(ctx: &Ctx, db_name: &str) -> anyhow::Result<Self> {
        if let Some(url) = &ctx.args.gateway {
            return Ok(Self {
                bases: vec![url.trim_end_matches('/').to_string()],
                api_key: ctx.args.api_key.clone().unwrap_or_default(),
                pids: ctx.args.gateway_pid.into_iter().collect(),
                children: Vec::new(),
            });
        }
        let mut side = Self {
            bases: Vec::new(),
            api_key: SPAWNED_API_KEY.to_string(),
            pids: Vec::new(),
            children: Vec::new(),
        };
        let stem = db_name.trim_end_matches(".db");
        for instance in 1..=ctx.args.instances.max(1) {
            let name = match ctx.args.instances {
                1 => format!("gateway-{stem}"),
                _ => format!("gateway-{stem}-{instance}"),
            };
            match Self::spawn(ctx, db_name, &name).await {
                Ok((base, child)) => {
                    side.bases.push(base);
                    side.pids.push(child.pid);
                    side.children.push(child);
                }
                Err(e) => {
                    side.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(side)
    }

    /// Starts one `pushgate serve` process called `name` and waits until it answers.
    async fn spawn(ctx: &Ctx, db_name: &str, name: &str) -> anyhow::Result<(String, Child)> {
        let database = match &ctx.args.database {
            Some(db) => db.clone(),
            None => ctx.dir.path.join(db_name).to_string_lossy().into_owned(),
        };
        let api_key_file = ctx.dir.path.join("api-key");
        std::fs::write(&api_key_file, SPAWNED_API_KEY)
            .with_context(|| format!("cannot write {}", api_key_file.display()))?;
        let config_path = ctx.dir.path.join(format!("{name}.toml"));
        for attempt in 1..=3 {
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let text = gateway_toml(
                &EmulatorRef {
                    base: &ctx.emu.base,
                    xmpp: ctx.emu.xmpp,
                    ca: ctx.emu.ca.as_deref(),
                    key_file: &ctx.emu.key_file,
                },
                &GatewayOptions {
                    listen,
                    database: &database,
                    api_key_file: &api_key_file,
                    durable_commits: ctx.args.durable_commits,
                    delivery: &ctx.delivery,
                    sole_channel: ctx.args.sole_channel.then(|| ctx.args.channel.name()),
                    extra: &ctx.gateway_extra,
                },
            );
            std::fs::write(&config_path, text)
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            let argv = vec![
                "serve".to_string(),
                "--config".to_string(),
                config_path.to_string_lossy().into_owned(),
            ];
            let mut child = Child::spawn(name, &argv, &ctx.dir.path, &[])?;
            let base = format!("http://{listen}");
            if wait_ready(
                &ctx.http,
                &format!("{base}/healthz"),
                listen.port(),
                &mut child,
                START_TIMEOUT,
            )
            .await?
            {
                return Ok((base, child));
            }
            if attempt == 3 {
                bail!(
                    "the gateway exited at start three times\n{}",
                    child.log_tail()
                );
            }
        }
        unreachable!("the loop returns or fails")
    }

    /// The instance that serves the scenario's single requests (the fan-out's POST, the
    /// result reads).
    pub(super) fn base(&self) -> &str {
        &self.bases[0]
    }

    /// The instance that takes request number `i` when the load is spread over them.
    pub(super) fn base_for(&self, i: usize) -> &str {
        &self.bases[i % self.bases.len()]
    }

    /// How the instances are named in a report: `pid 123`, `pids 123+124`, or `pid unknown`.
    pub(super) fn describe_pids(pids: &[u32]) -> String {
        match pids {
            [] => "pid unknown".to_string(),
            [one] => format!("pid {one}"),
            many => format!(
                "{} instances, pids {}, summed",
                many.len(),
                many.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join("+")
            ),
        }
    }

    /// Stops the gateway processes the benchmark started (SIGTERM, then the graceful
    /// shutdown, all at once) and says how long the slowest took; a gateway of `--gateway`
    /// is left running.
    pub(super) async fn stop(self) -> Duration {
        let stops = self.children.into_iter().map(|c| c.stop(STOP_GRACE));
        futures_util::future::join_all(stops)
            .await
            .into_iter()
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// A registered population on a fresh gateway.
pub(super) struct Prepared {
    /// The gateway.
    pub(super) gw: GatewaySide,
    /// Counters of the benchmarked channel's worker.
    pub(super) status: StatusProbe,
    /// The registered device ids, in order (`bench-0000000`, …).
    pub(super) device_ids: Arc<Vec<String>>,
    /// Time the emulator took to create its devices.
    pub(super) emulator_devices: Duration,
    /// Time of the whole registration through `devices:import`.
    pub(super) registration: Duration,
    /// Number of `devices:import` calls.
    pub(super) imports: usize,
}

/// One device of a `devices:import` body.
#[derive(Serialize)]
struct ImportDevice<'a> {
    device_id: &'a str,
    token: &'a str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<[&'a str; 1]>,
}

/// A `devices:import` body.
#[derive(Serialize)]
struct ImportBody<'a> {
    devices: Vec<ImportDevice<'a>>,
}

/// Resets the emulator, creates its devices, starts a gateway (on a fresh database unless
/// one is shared) and registers the devices through `devices:import`.
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

    let gw = GatewaySide::start(ctx, db_name).await?;
    let channel = ctx.args.channel.name();
    let status = StatusProbe::new(&ctx.http, &gw.bases, SANDBOX_APP, channel).await?;

    let device_ids: Vec<String> = (0..n)
        .map(|i| format!("{}{i:07}", ctx.device_prefix))
        .collect();
    let tag = ctx.shared_tag.as_deref();
    let chunks = n.div_ceil(IMPORT_CHUNK);
    let bar = progress(n as u64, "devices registered");
    let started = Instant::now();
    let mut calls = futures_util::stream::iter(0..chunks)
        .map(|c| {
            let range = c * IMPORT_CHUNK..((c + 1) * IMPORT_CHUNK).min(n);
            let len = range.len();
            let body = ImportBody {
                devices: range
                    .map(|i| ImportDevice {
                        device_id: &device_ids[i],
                        token: &tokens[i],
                        channel,
                        tags: tag.map(|t| [t]),
                    })
                    .collect(),
            };
            let body = serde_json::to_vec(&body);
            // Spread over the instances, like the API load of the scenarios.
            let url = format!("{}/v1/apps/{SANDBOX_APP}/devices:import", gw.base_for(c));
            let (http, key) = (&ctx.http, &gw.api_key);
            async move {
                let req = http
                    .post(&url)
                    .bearer_auth(key)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body?);
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
        status,
        device_ids: Arc::new(device_ids),
        emulator_devices,
        registration,
        imports: chunks,
    })
}
