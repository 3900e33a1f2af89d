//! `pushgate devices import|export`: bulk registry operations through a running gateway.

use std::process::ExitCode;

/// Flags of `pushgate devices`.
#[derive(clap::Args)]
pub struct Args {}

/// Not written yet.
pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("pushgate devices is not implemented yet")
}
