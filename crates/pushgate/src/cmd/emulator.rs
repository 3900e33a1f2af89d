//! `pushgate emulator`: the fake Google push servers, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use pushgate_emulator::{Emulator, EmulatorConfig};

/// Flags of `pushgate emulator`.
#[derive(clap::Args)]
pub struct Args {
    /// Address of the plain HTTP listener (HTTP/1.1 and h2c): legacy, control API.
    #[arg(long, default_value = "127.0.0.1:8085")]
    http: SocketAddr,
    /// Address of the TLS listener (ALPN h2 and http/1.1) serving every HTTP endpoint.
    #[arg(long)]
    https: Option<SocketAddr>,
    /// Address of the CCS (XMPP over direct TLS) listener.
    #[arg(long, default_value = "127.0.0.1:5235")]
    xmpp: SocketAddr,
    /// Do not open the CCS listener.
    #[arg(long)]
    no_xmpp: bool,
    /// Write the emulator's self-signed certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "PATH")]
    tls_cert_out: Option<PathBuf>,
    /// Lifetime of the OAuth access tokens it issues, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// Messages kept per virtual device inbox (oldest dropped beyond it).
    #[arg(long, default_value_t = 1000)]
    inbox_limit: usize,
}

/// Starts the emulator and serves until a stop signal.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = EmulatorConfig {
        http: args.http,
        https: args.https,
        xmpp: (!args.no_xmpp).then_some(args.xmpp),
        access_token_lifetime: Duration::from_secs(args.token_lifetime.max(1)),
        inbox_limit: args.inbox_limit,
        ..EmulatorConfig::default()
    };
    let running = Emulator::start(config)
        .await
        // The error names the listener and address that failed (HTTP, HTTPS or CCS).
        .context("cannot start the emulator")?;
    if let Some(path) = &args.tls_cert_out {
        let pem = running
            .tls_cert_pem()
            .context("--tls-cert-out needs a TLS listener (--https or --xmpp)")?;
        std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the emulator's TLS certificate");
    }
    crate::shutdown::signal().await;
    tracing::info!("stop signal received, shutting down");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
