//! The `pushgate` binary: one entry point for every job (serve, emulator, send, devices,
//! bench, topics, ccs-echo).

mod cmd;
mod logging;
mod shutdown;
mod support;

use clap::{Parser, Subcommand};

/// pushgate: a self-hosted push gateway for Google's push services, and their emulator.
#[derive(Parser)]
#[command(name = "pushgate", version, about)]
struct Cli {
    /// Log lines as text (coloured on a terminal only) or as JSON objects for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "PUSHGATE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (without a configuration: the sandbox, with an in-process emulator).
    ///
    /// Reload without restart: SIGHUP (`systemctl reload pushgate`) or `POST /v1/admin/reload`
    /// with an admin key reads the configuration file again, with the same environment and
    /// flags. Apps, channels, webhooks, API keys and admin keys change in place without
    /// dropping work; a file that does not validate is refused and the running configuration
    /// kept. Settings read only at start (listen, database, TLS files, storage, delivery,
    /// limits, metrics) are reported as needing a restart. SIGHUP also reloads the TLS
    /// certificate.
    Serve(Box<cmd::serve::Args>),
    /// Run the emulator of Google's push servers (legacy HTTP, FCM v1 + OAuth, CCS).
    Emulator(cmd::emulator::Args),
    /// Send one message through a provider protocol and print the per-token results.
    Send(Box<cmd::send::Args>),
    /// The whole product in a minute: sandbox, 10,000 virtual devices, sends, churn, upstream.
    Demo(cmd::demo::Args),
    /// Import or export the device registry of an app through a running gateway.
    Devices(cmd::devices::Args),
    /// Measure throughput against the emulator.
    Bench(cmd::bench::Args),
    /// Manage topic subscriptions through the Instance ID API.
    Topics(cmd::topics::Args),
    /// Run the classic CCS echo app server (ack upstream, answer the device).
    CcsEcho(cmd::ccs_echo::Args),
    /// The gateway's database: migrate, back up, check, measure (safe while it serves).
    Db(cmd::db::Args),
    /// Print the configuration reference (every key, its default and environment variable).
    Config(cmd::config::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo(_) | Command::Devices(_) | Command::Db(_) | Command::Config(_)
    );
    logging::init(if quiet { "warn" } else { "info" }, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Emulator(args) => cmd::emulator::run(args).await,
            Command::Send(args) => cmd::send::run(*args).await,
            Command::Devices(args) => cmd::devices::run(args).await,
            Command::Db(args) => cmd::db::run(args).await,
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
            Command::CcsEcho(args) => cmd::ccs_echo::run(args).await,
            Command::Config(args) => cmd::config::run(args),
            Command::Topics(args) => cmd::topics::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
