//! `pushgate db migrate`: applies the migrations the configured database lacks and exits.

use std::process::ExitCode;

use anyhow::Context;
use pushgate_gateway::config::ServiceSettings;

/// Migrates and prints the schema version before and after.
pub async fn run(service: &ServiceSettings) -> anyhow::Result<ExitCode> {
    let shown = pushgate_store::redacted(&service.database);
    let done = pushgate_store::migrate(&service.database, &service.storage.store_settings())
        .await
        .with_context(|| format!("database {shown}"))?;
    match done.from {
        Some(from) if from == done.to => {
            println!("database {shown}: schema already at version {}", done.to)
        }
        Some(from) => println!(
            "database {shown}: schema migrated from version {from} to {}",
            done.to
        ),
        None => println!("database {shown}: schema at version {}", done.to),
    }
    Ok(ExitCode::SUCCESS)
}
