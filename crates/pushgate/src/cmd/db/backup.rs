//! `pushgate db backup PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pushgate_store::Maintenance;

/// Flags of `pushgate db backup`.
#[derive(clap::Args)]
pub struct Args {
    /// Where the copy goes; it must not exist yet.
    path: PathBuf,
}

/// Writes the copy and says how big it is.
pub async fn run(db: &dyn Maintenance, args: &Args) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let report = db
        .backup(&args.path)
        .await
        .with_context(|| format!("backup to {} failed", args.path.display()))?;
    println!(
        "wrote {} ({} bytes, schema version {}) in {:.1?}",
        args.path.display(),
        report.bytes,
        report.schema_version,
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}
