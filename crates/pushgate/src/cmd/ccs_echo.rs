//! `pushgate ccs-echo`: the classic CCS echo app server, until SIGINT/SIGTERM.
//!
//! Logs in as a sender, acks every upstream message and answers the sending device with a
//! downstream message carrying the same data (`pushgate_client::ccs::echo`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pushgate_client::ccs::{CcsClient, CcsConfig, echo};

/// Flags of `pushgate ccs-echo`.
#[derive(clap::Args)]
pub struct Args {
    /// CCS host (the emulator: 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// CCS port (the emulator's default is 5235).
    #[arg(long, default_value_t = 5235)]
    port: u16,
    /// Sender id (project number).
    #[arg(long)]
    sender_id: String,
    /// Server key (or set PUSHGATE_CCS_API_KEY).
    #[arg(long, env = "PUSHGATE_CCS_API_KEY", hide_env_values = true)]
    api_key: String,
    /// CA certificate (PEM) to trust: the emulator's `--tls-cert-out` file.
    #[arg(long, value_name = "PEM")]
    ca: PathBuf,
    /// Connections to keep open.
    #[arg(long, default_value_t = 1)]
    connections: usize,
}

/// Echoes until a stop signal, then prints what it did.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ca = std::fs::read_to_string(&args.ca)
        .with_context(|| format!("cannot read {}", args.ca.display()))?;
    let config = CcsConfig::new(args.host, args.port, args.sender_id, args.api_key)
        .with_ca_pem(ca)
        .with_connections(args.connections);
    let (client, upstream) = CcsClient::connect(config)
        .await
        .context("cannot log in to CCS")?;
    tracing::info!("logged in; echoing upstream messages until Ctrl-C");
    let closer = client.clone();
    let echoing = echo::run(client, upstream);
    tokio::pin!(echoing);
    let summary = tokio::select! {
        summary = &mut echoing => summary,
        _ = crate::shutdown::signal() => {
            closer.close();
            echoing.await
        }
    };
    println!(
        "echoed {} upstream messages, acked {} receipts",
        summary.echoed, summary.receipts
    );
    Ok(ExitCode::SUCCESS)
}
