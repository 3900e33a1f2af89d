//! `pushgate db`: operator tools on the gateway's database, safe to run next to a live
//! gateway. One file per sub-command; [`DatabaseArgs`] finds the database the way
//! `pushgate serve` does.

mod backup;
mod check;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use pushgate_gateway::config::{ConfigFile, DEFAULT_DATABASE};

/// The configuration file looked for in the working directory (as `pushgate serve` does).
const DEFAULT_CONFIG: &str = "pushgate.toml";

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
    /// Write a consistent copy of the database while the gateway keeps serving.
    Backup(backup::Args),
    /// Verify the schema version and the database's integrity (exit 1 when not healthy).
    Check,
    /// Print each table's rows, size and oldest row.
    Stats,
}

/// Which database: `--database`, else the `database` of `--config` (or `./pushgate.toml`),
/// with `PUSHGATE_DATABASE` over it, else `pushgate.db`.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// SQLite file path or URL (default: the configuration's `database`).
    #[arg(long, global = true, value_name = "PATH_OR_URL")]
    database: Option<String>,
    /// Configuration file to read `database` from (default ./pushgate.toml if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The database setting these flags, the configuration and the environment name.
    pub fn resolve(&self) -> anyhow::Result<String> {
        if let Some(db) = &self.database {
            return Ok(db.clone());
        }
        let config = match &self.config {
            Some(path) => Some(path.as_path()),
            None => Some(Path::new(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        let file = ConfigFile::load(config)?;
        Ok(file
            .database
            .unwrap_or_else(|| DEFAULT_DATABASE.to_string()))
    }
}

/// Runs the sub-command against the database the flags name.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let database = args.database.resolve()?;
    let db = pushgate_store::open_maintenance(&database)
        .await
        .with_context(|| format!("cannot open the database {database}"))?;
    let result = match args.action {
        Action::Backup(a) => backup::run(db.as_ref(), &a).await,
        Action::Check => check::run(db.as_ref(), &database).await,
        Action::Stats => stats::run(db.as_ref(), &database).await,
    };
    db.close().await;
    result
}
