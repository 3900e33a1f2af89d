//! `pushgate serve`: the gateway. With a configuration (`--config`, or `./pushgate.toml`
//! when it exists) it serves the configured apps; without one it is the sandbox: an
//! in-process emulator and an app `sandbox` whose channels point at it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pushgate_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use pushgate_gateway::config::{ConfigError, ConfigFile, GatewaySpec, Secret};
use pushgate_gateway::reload::ConfigSource;
use pushgate_gateway::sandbox::{SANDBOX_APP, sandbox_spec};
use pushgate_gateway::{Gateway, RunningGateway};
use rand::distr::{Alphanumeric, SampleString};

/// The configuration file looked for in the working directory.
pub(crate) const DEFAULT_CONFIG: &str = "pushgate.toml";
/// The variable that fixes the sandbox's API key.
const SANDBOX_KEY_VAR: &str = "PUSHGATE_SANDBOX_API_KEY";

/// Flags of `pushgate serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (default: ./pushgate.toml if it exists, else the sandbox).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run the sandbox even if ./pushgate.toml exists.
    #[arg(long, conflicts_with = "config")]
    sandbox: bool,
    /// Address of the HTTP API (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The database: a SQLite file (default ./pushgate.db), a `sqlite:` URL or a
    /// `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    database: Option<String>,
    /// Sandbox: the in-process emulator's HTTP address (its control API is under /emulator/).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8085")]
    emulator_http: SocketAddr,
    /// Sandbox: the in-process emulator's CCS address (default: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    emulator_xmpp: SocketAddr,
}

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match (&args.config, args.sandbox) {
        (Some(path), _) => Some(path.clone()),
        (None, false) if Path::new(DEFAULT_CONFIG).exists() => Some(PathBuf::from(DEFAULT_CONFIG)),
        _ => None,
    };
    match config {
        Some(path) => serve_configured(&args, &path).await,
        None => serve_sandbox(&args).await,
    }
}

/// Reads `path` and the environment, with the command line's `--listen` and `--database`
/// over them: at start, and again at each reload.
fn configured_spec(
    path: &Path,
    listen: Option<SocketAddr>,
    database: Option<&str>,
) -> Result<GatewaySpec, ConfigError> {
    let mut spec = ConfigFile::load(Some(path))?.resolve()?;
    if let Some(listen) = listen {
        spec.listen = listen;
    }
    if let Some(db) = database {
        spec.database = db.to_string();
    }
    Ok(spec)
}

async fn serve_configured(args: &Args, path: &Path) -> anyhow::Result<ExitCode> {
    let (file, listen, database) = (path.to_path_buf(), args.listen, args.database.clone());
    let source: ConfigSource =
        Arc::new(move || configured_spec(&file, listen, database.as_deref()));
    let spec = source()?;
    let gateway = Gateway::start_reloadable(&spec, Some(source)).await?;
    println!(
        "pushgate listening on {} ({} app(s) from {}, database {})",
        gateway.base_url(),
        spec.apps.len(),
        path.display(),
        pushgate_store::redacted(&spec.database)
    );
    wait_and_stop(gateway, None).await
}

async fn serve_sandbox(args: &Args) -> anyhow::Result<ExitCode> {
    let (key, key_from_env) = match std::env::var(SANDBOX_KEY_VAR) {
        Ok(k) if k.len() >= 16 => (k, true),
        Ok(_) => anyhow::bail!("{SANDBOX_KEY_VAR} must be at least 16 characters"),
        Err(_) => (
            format!("sbx_{}", Alphanumeric.sample_string(&mut rand::rng(), 32)),
            false,
        ),
    };
    // Service settings (delivery, limits, ...) still come from PUSHGATE_* variables.
    let mut service = ConfigFile::load(None)?.resolve_service()?;
    if let Some(listen) = args.listen {
        service.listen = listen;
    }
    if let Some(db) = &args.database {
        service.database = db.clone();
    }
    let emulator = Emulator::start(EmulatorConfig {
        http: args.emulator_http,
        xmpp: Some(args.emulator_xmpp),
        ..EmulatorConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the sandbox emulator on {}",
            args.emulator_http
        )
    })?;
    let emu_base = emulator.base_url();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let emu = crate::support::sandbox_emulator::describe(
        &http,
        &emu_base,
        emulator.xmpp_addr(),
        emulator.tls_cert_pem().map(str::to_string),
    )
    .await?;
    let reference = if key_from_env {
        SANDBOX_KEY_VAR
    } else {
        "generated"
    };
    let spec = sandbox_spec(service, Secret::new(key.clone(), reference), &emu);
    let gateway = Gateway::start(&spec).await?;
    let shown_key = if key_from_env {
        format!("${SANDBOX_KEY_VAR}")
    } else {
        key
    };
    print_banner(
        &gateway,
        &pushgate_store::redacted(&spec.database),
        &emu_base,
        &shown_key,
        key_from_env,
    );
    wait_and_stop(gateway, Some(emulator)).await
}

fn print_banner(gw: &RunningGateway, database: &str, emu: &str, key: &str, from_env: bool) {
    let base = gw.base_url();
    let key_line = if from_env {
        format!("from {SANDBOX_KEY_VAR}")
    } else {
        key.to_string()
    };
    println!(
        r#"pushgate sandbox
  API        {base}   (app "{SANDBOX_APP}", the default; channels fcm, legacy, xmpp, c2dm)
  API key    {key_line}
  console    {base}/admin   (the admin console: sign in with the API key)
  database   {database}
  emulator   {emu}   (Google's push servers; control API under /emulator/)

Try it:
  # 1. Create a virtual device in the emulator; it registers itself with the gateway
  #    through the C2DM-era flow and confirms its registration:
  curl -s -XPOST {emu}/emulator/devices -H 'content-type: application/json' \
       -d '{{"protocol":"c2dm","confirm_via":"{base}","device_ids":["my-phone-1"]}}'
  # 2. Send it a message (see it with GET {emu}/emulator/devices/<token>/messages):
  curl -s -XPOST {base}/v1/apps/{SANDBOX_APP}/messages -H "authorization: Bearer {key}" \
       -H 'content-type: application/json' \
       -d '{{"targets":{{"device_ids":["my-phone-1"]}},"collapse_key":"hello","data":{{"text":"hello"}}}}'
"#
    );
}

async fn wait_and_stop(
    gateway: RunningGateway,
    emulator: Option<RunningEmulator>,
) -> anyhow::Result<ExitCode> {
    crate::shutdown::signal().await;
    tracing::info!("stop signal received: finishing in-flight deliveries");
    gateway.shutdown().await;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}
