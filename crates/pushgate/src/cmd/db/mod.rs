//! `pushgate db`: operator tools on the gateway's database, run beside (or before) the
//! gateway instances. One module per sub-command; [`DatabaseArgs`] finds the database the way
//! `pushgate serve` does.

mod backup;
mod check;
mod migrate;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use pushgate_gateway::config::{ConfigFile, ServiceSettings};
use pushgate_store::Maintenance;

/// Flags of `pushgate db`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write a consistent copy of the database while the gateway keeps serving (SQLite).
    Backup(backup::Args),
    /// Verify the schema version and the database's integrity (exit 1 when not healthy).
    Check,
    /// Print each table's rows, size and oldest row.
    Stats,
    /// Bring the database's schema up to date and exit (instances also migrate at start,
    /// under a lock, so this is for upgrades done ahead of a rollout).
    Migrate,
}

/// Which database: `--database`, else the `database` of `--config` (or `./pushgate.toml`),
/// with `PUSHGATE_DATABASE` over it, else `pushgate.db`.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// The database instead of the configuration's: a SQLite file, a `sqlite:` URL or a
    /// `postgres://` URL.
    #[arg(long, global = true, value_name = "PATH|URL")]
    database: Option<String>,
    /// Configuration file (default: ./pushgate.toml if it exists; PUSHGATE_* variables apply
    /// either way).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The service settings (database and storage settings) these flags name. The apps are
    /// not resolved: maintenance needs no provider credential.
    fn service(&self) -> anyhow::Result<ServiceSettings> {
        let path = match &self.config {
            Some(path) => Some(path.clone()),
            None => {
                Some(PathBuf::from(super::serve::DEFAULT_CONFIG)).filter(|p| Path::new(p).exists())
            }
        };
        let mut service = ConfigFile::load(path.as_deref())?.resolve_service()?;
        if let Some(db) = &self.database {
            service.database = db.clone();
        }
        Ok(service)
    }
}

/// Runs the sub-command against the database the flags name.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let service = args.database.service()?;
    match args.action {
        Action::Migrate => migrate::run(&service).await,
        Action::Backup(a) => maintain(&service, async |db, _| backup::run(db, &a).await).await,
        Action::Check => maintain(&service, check::run).await,
        Action::Stats => maintain(&service, stats::run).await,
    }
}

/// Opens the database for maintenance (never creating or migrating it), runs `work` with it
/// and the database's name as it may be shown, and closes it.
async fn maintain(
    service: &ServiceSettings,
    work: impl AsyncFnOnce(&dyn Maintenance, &str) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let shown = pushgate_store::redacted(&service.database);
    let db = pushgate_store::open_maintenance(&service.database)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    let result = work(db.as_ref(), &shown).await;
    db.close().await;
    result
}
