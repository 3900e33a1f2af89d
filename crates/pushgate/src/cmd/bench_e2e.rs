//! `pushgate bench e2e`: the whole gateway, driven through its HTTP API.

use std::process::ExitCode;

/// Flags of `pushgate bench e2e`.
#[derive(clap::Args)]
pub struct E2eArgs {}

/// Not written yet.
pub async fn run(_args: E2eArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("pushgate bench e2e is not implemented yet")
}
