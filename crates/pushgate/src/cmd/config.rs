//! `pushgate config reference`: prints the configuration reference generated from the
//! configuration types (what `docs/configuration.md` holds).

use std::process::ExitCode;

/// Flags of `pushgate config`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print every key of pushgate.toml with its type, default and environment variable, as
    /// Markdown.
    Reference,
}

/// Prints what was asked.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Reference => print!("{}", pushgate_gateway::config::reference::markdown()),
    }
    Ok(ExitCode::SUCCESS)
}
