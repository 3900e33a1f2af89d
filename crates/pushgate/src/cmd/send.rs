//! `pushgate send`: one message through one provider protocol, with a per-token result table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pushgate_client::legacy::{JsonMessage, LegacySender, PlainTextMessage};
use pushgate_client::{HttpConfig, RetryPolicy};

use super::output::print_outcomes;

/// Flags of `pushgate send`.
#[derive(clap::Args)]
pub struct Args {
    /// Send over GCM/FCM legacy HTTP (JSON, or form with --plain-text).
    #[arg(long, required = true)]
    legacy: bool,
    /// Provider endpoint, e.g. http://127.0.0.1:8085/gcm/send for the emulator.
    #[arg(long)]
    endpoint: Option<String>,
    /// Legacy server key (or set PUSHGATE_API_KEY).
    #[arg(long, env = "PUSHGATE_API_KEY", hide_env_values = true)]
    api_key: String,
    /// A recipient token; repeat for a multicast (any number: split into 1000-id requests).
    #[arg(long = "to", value_name = "TOKEN")]
    to: Vec<String>,
    /// A data key/value pair `k=v`; repeat for more.
    #[arg(long = "data", value_name = "K=V", value_parser = parse_pair)]
    data: Vec<(String, String)>,
    /// Collapse key.
    #[arg(long)]
    collapse_key: Option<String>,
    /// Time to live in seconds (0..=2419200).
    #[arg(long)]
    ttl: Option<u32>,
    /// Validate without delivering.
    #[arg(long)]
    dry_run: bool,
    /// Use the plain-text (form) protocol: exactly one --to.
    #[arg(long)]
    plain_text: bool,
    /// Extra CA certificate (PEM) to trust, e.g. the emulator's.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Attempts in all, retrying only what can be retried (1 = no retry).
    #[arg(long, default_value_t = 1)]
    attempts: u32,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got {text:?}")),
    }
}

/// Applies the flags both legacy message kinds share (their builders have the same names).
macro_rules! with_common_options {
    ($message:expr, $args:expr) => {{
        let mut message = $message.dry_run($args.dry_run);
        for (k, v) in &$args.data {
            message = message.data(k.clone(), v.clone());
        }
        if let Some(key) = &$args.collapse_key {
            message = message.collapse_key(key.clone());
        }
        if let Some(ttl) = $args.ttl {
            message = message.time_to_live(ttl);
        }
        message
    }};
}

/// Sends the message and prints one line per token; a whole-request failure exits non-zero.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    debug_assert!(args.legacy);
    if args.to.is_empty() {
        bail!("give at least one --to TOKEN");
    }
    let mut config = HttpConfig::new().with_timeout(Duration::from_secs(args.timeout));
    if let Some(endpoint) = &args.endpoint {
        config = config.with_endpoint(endpoint.clone());
    }
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        config = config.with_extra_ca_pem(pem);
    }
    let sender = LegacySender::new(args.api_key.clone(), config)?;
    let policy = RetryPolicy::new().with_max_attempts(args.attempts.max(1));

    if args.plain_text {
        let [token] = args.to.as_slice() else {
            bail!("--plain-text sends to exactly one --to TOKEN");
        };
        let message = with_common_options!(PlainTextMessage::new(token.clone()), args);
        let result = sender.send_plain_with_retries(&message, &policy).await?;
        print_outcomes(result.outcomes().iter().map(|(t, o)| (t.as_str(), o)));
    } else {
        let message = with_common_options!(JsonMessage::new(args.to.clone()), args);
        let result = sender.send_with_retries(&message, &policy).await?;
        print_outcomes(result.outcomes().iter().map(|(t, o)| (t.as_str(), o)));
    }
    Ok(ExitCode::SUCCESS)
}
