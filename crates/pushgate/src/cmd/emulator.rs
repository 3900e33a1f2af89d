//! `pushgate emulator`: the fake Google push servers, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use pushgate_emulator::{Emulator, EmulatorConfig};

/// Flags of `pushgate emulator`.
#[derive(clap::Args)]
pub struct Args {
    /// Address of the plain HTTP listener (HTTP/1.1 and h2c): legacy, control API.
    #[arg(long, default_value = "127.0.0.1:8085")]
    http: SocketAddr,
    /// Messages kept per virtual device inbox (oldest dropped beyond it).
    #[arg(long, default_value_t = 1000)]
    inbox_limit: usize,
}

/// Starts the emulator and serves until a stop signal.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = EmulatorConfig {
        http: args.http,
        inbox_limit: args.inbox_limit,
        ..EmulatorConfig::default()
    };
    let running = Emulator::start(config)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    crate::shutdown::signal().await;
    tracing::info!("stop signal received, shutting down");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
