//! `pushgate topics`: subscribe and unsubscribe tokens, and look an instance up (Instance ID).

use std::process::ExitCode;

use anyhow::Context;
use pushgate_client::HttpConfig;
use pushgate_client::iid::{IidAuth, TopicManager};

/// Flags of `pushgate topics`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    /// Instance ID base URL, e.g. http://127.0.0.1:8085 for the emulator
    /// (default https://iid.googleapis.com).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Server key (or set PUSHGATE_API_KEY).
    #[arg(long, global = true, env = "PUSHGATE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Subscribe tokens to a topic (any number: 1000 per request).
    Subscribe(Change),
    /// Unsubscribe tokens from a topic.
    Unsubscribe(Change),
    /// Show what the service knows of one token, with its topics.
    Info {
        /// The registration token.
        token: String,
    },
}

#[derive(clap::Args)]
struct Change {
    /// Topic name, with or without `/topics/`.
    #[arg(long)]
    topic: String,
    /// A token; repeat for more.
    #[arg(
        long = "to",
        value_name = "TOKEN",
        required = true,
        allow_hyphen_values = true
    )]
    to: Vec<String>,
}

/// Runs the action and prints its per-token result.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = args
        .api_key
        .context("pushgate topics needs --api-key KEY (or PUSHGATE_API_KEY)")?;
    let mut config = HttpConfig::new();
    if let Some(endpoint) = args.endpoint {
        config = config.with_endpoint(endpoint);
    }
    let manager = TopicManager::new(IidAuth::ApiKey(key), config)?;
    let (result, tokens) = match args.action {
        Action::Info { token } => {
            let info = manager.info(&token, true).await?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            return Ok(ExitCode::SUCCESS);
        }
        Action::Subscribe(change) => (
            manager.subscribe(&change.topic, &change.to).await?,
            change.to,
        ),
        Action::Unsubscribe(change) => (
            manager.unsubscribe(&change.topic, &change.to).await?,
            change.to,
        ),
    };
    println!(
        "{} succeeded, {} failed",
        result.success_count, result.failure_count
    );
    for error in &result.errors {
        let token = tokens.get(error.index).map(String::as_str).unwrap_or("?");
        println!(
            "  #{} {}: {}",
            error.index,
            pushgate_proto::token::short_token(token),
            error.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}
