//! `pushgate db …`: maintenance of the configured database, run beside (or before) the
//! gateway instances. Each subcommand has a module of its own.

mod migrate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pushgate_gateway::config::{ConfigFile, ServiceSettings};

/// Flags of `pushgate db`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Bring the database's schema up to date and exit (instances also migrate at start,
    /// under a lock, so this is for upgrades done ahead of a rollout).
    Migrate(migrate::Args),
}

/// Which database a `db` subcommand works on: the configuration's, unless overridden.
#[derive(clap::Args)]
struct DatabaseOpts {
    /// Configuration file (default: ./pushgate.toml if it exists; PUSHGATE_* variables apply
    /// either way).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The database instead of the configuration's: a SQLite file, a `sqlite:` URL or a
    /// `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    database: Option<String>,
}

impl DatabaseOpts {
    /// The service settings (database and storage settings) these options name. The apps
    /// are not resolved: maintenance needs no provider credential.
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

/// Runs one `db` subcommand.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Migrate(args) => migrate::run(args).await,
    }
}
