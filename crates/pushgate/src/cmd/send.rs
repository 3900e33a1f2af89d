//! `pushgate send`: one message through one provider protocol, with a per-token result table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pushgate_client::legacy::{JsonMessage, LegacySender, PlainTextMessage};
use pushgate_client::v1::{FcmV1Sender, Message, V1Config};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_proto::v1::{AndroidConfig, ProtoDuration};

use super::output::print_outcomes;

/// Which provider protocol carries the message.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Protocol {
    /// GCM/FCM legacy HTTP (JSON, or form with --plain-text).
    #[arg(long)]
    legacy: bool,
    /// FCM HTTP v1 with a service-account key file.
    #[arg(long = "fcm-v1")]
    fcm_v1: bool,
    /// C2DM (2010–2012): ClientLogin credentials or an auth token.
    #[arg(long)]
    c2dm: bool,
}

/// Flags of `pushgate send`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    protocol: Protocol,
    /// Legacy: provider endpoint, e.g. http://127.0.0.1:8085/gcm/send for the emulator.
    /// FCM v1: base URL, e.g. http://127.0.0.1:8085 (default https://fcm.googleapis.com).
    #[arg(long)]
    endpoint: Option<String>,
    /// Legacy server key (or set PUSHGATE_API_KEY).
    #[arg(long, env = "PUSHGATE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// FCM v1: the service-account JSON key file.
    #[arg(long, value_name = "FILE")]
    service_account: Option<PathBuf>,
    /// A recipient token; repeat for a multicast (any number: split as the protocol needs).
    #[arg(long = "to", value_name = "TOKEN")]
    to: Vec<String>,
    /// Send to the subscribers of a topic instead of tokens.
    #[arg(long, conflicts_with_all = ["to", "condition"])]
    topic: Option<String>,
    /// Send to the instances a topic condition matches.
    #[arg(long, conflicts_with_all = ["to", "topic"])]
    condition: Option<String>,
    /// Legacy: send to a device group (its notification key).
    #[arg(long, value_name = "NOTIFICATION_KEY", conflicts_with_all = ["to", "topic", "condition"])]
    group: Option<String>,
    /// C2DM: the ClientLogin account (with --password).
    #[arg(long)]
    email: Option<String>,
    /// C2DM: the account's password (or set PUSHGATE_C2DM_PASSWORD).
    #[arg(long, env = "PUSHGATE_C2DM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// C2DM: the ClientLogin URL, e.g. http://127.0.0.1:8085/accounts/ClientLogin.
    #[arg(long)]
    login_url: Option<String>,
    /// C2DM: an auth token obtained elsewhere, instead of --email/--password.
    #[arg(long, env = "PUSHGATE_C2DM_AUTH", hide_env_values = true)]
    auth_token: Option<String>,
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
    /// Legacy: use the plain-text (form) protocol: exactly one --to.
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

impl Args {
    fn http_config(&self) -> anyhow::Result<HttpConfig> {
        let mut config = HttpConfig::new().with_timeout(Duration::from_secs(self.timeout));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            config = config.with_extra_ca_pem(pem);
        }
        Ok(config)
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy::new().with_max_attempts(self.attempts.max(1))
    }

    fn check_recipients(&self) -> anyhow::Result<()> {
        if self.to.is_empty()
            && self.topic.is_none()
            && self.condition.is_none()
            && self.group.is_none()
        {
            bail!("give --to TOKEN (repeatable), --topic NAME, --condition EXPR or --group KEY");
        }
        Ok(())
    }
}

/// Sends the message and prints one line per token; a whole-request failure exits non-zero.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.check_recipients()?;
    if args.protocol.fcm_v1 {
        fcm_v1(args).await
    } else if args.protocol.c2dm {
        c2dm(args).await
    } else {
        legacy(args).await
    }
}

async fn legacy(args: Args) -> anyhow::Result<ExitCode> {
    let api_key = args
        .api_key
        .clone()
        .context("--legacy needs --api-key KEY (or PUSHGATE_API_KEY)")?;
    let mut config = args.http_config()?;
    if let Some(endpoint) = &args.endpoint {
        config = config.with_endpoint(endpoint.clone());
    }
    let sender = LegacySender::new(api_key, config)?;
    let policy = args.policy();

    if args.plain_text {
        let [token] = args.to.as_slice() else {
            bail!("--plain-text sends to exactly one --to TOKEN");
        };
        let message = with_common_options!(PlainTextMessage::new(token.clone()), args);
        let result = sender.send_plain_with_retries(&message, &policy).await?;
        print_outcomes(result.outcomes().iter().map(|(t, o)| (t.as_str(), o)));
        return Ok(ExitCode::SUCCESS);
    }
    let target = if let Some(topic) = &args.topic {
        JsonMessage::to_topic(topic.clone())
    } else if let Some(condition) = &args.condition {
        JsonMessage::to_condition(condition.clone())
    } else if let Some(key) = &args.group {
        JsonMessage::to_notification_key(key.clone())
    } else {
        JsonMessage::new(args.to.clone())
    };
    let message = with_common_options!(target, args);
    let result = sender.send_with_retries(&message, &policy).await?;
    if let Some(group) = result.group() {
        println!(
            "device group: {} delivered, {} failed {:?}",
            group.success, group.failure, group.failed_registration_ids
        );
    } else if let Some(outcome) = result.topic_outcome() {
        let label = args.topic.as_deref().or(args.condition.as_deref());
        print_outcomes([(label.unwrap_or("topic"), &outcome)]);
    } else {
        print_outcomes(result.outcomes().iter().map(|(t, o)| (t.as_str(), o)));
    }
    Ok(ExitCode::SUCCESS)
}

async fn fcm_v1(args: Args) -> anyhow::Result<ExitCode> {
    let key_file = args
        .service_account
        .as_ref()
        .context("--fcm-v1 needs --service-account FILE")?;
    let mut config = V1Config::new()
        .with_http(args.http_config()?)
        .with_retry_policy(args.policy());
    if let Some(base) = &args.endpoint {
        config = config.with_base_url(base.clone());
    }
    let sender = FcmV1Sender::from_service_account_file(key_file, config)?;
    let data: BTreeMap<String, String> = args.data.iter().cloned().collect();
    let android = (args.collapse_key.is_some() || args.ttl.is_some()).then(|| AndroidConfig {
        collapse_key: args.collapse_key.clone(),
        ttl: args
            .ttl
            .map(|s| ProtoDuration(Duration::from_secs(u64::from(s)))),
        ..AndroidConfig::default()
    });
    let template = Message {
        data: (!data.is_empty()).then_some(data),
        android,
        topic: args.topic.clone(),
        condition: args.condition.clone(),
        ..Message::default()
    };
    let send = |message: Message| {
        let sender = &sender;
        async move {
            if args.dry_run {
                sender.send_validate_only(&message).await
            } else {
                sender.send(&message).await
            }
        }
    };
    let outcomes = if args.to.is_empty() {
        let label = args.topic.as_deref().or(args.condition.as_deref());
        let outcome = send(template).await;
        print_outcomes([(label.unwrap_or("topic"), &outcome)]);
        vec![outcome]
    } else {
        let outcomes = futures_util::future::join_all(args.to.iter().map(|token| {
            send(Message {
                token: Some(token.clone()),
                ..template.clone()
            })
        }))
        .await;
        print_outcomes(args.to.iter().map(String::as_str).zip(outcomes.iter()));
        outcomes
    };
    // v1 has no whole request: credentials refused for every message is the equivalent.
    if outcomes
        .iter()
        .all(|o| o.kind() == pushgate_proto::OutcomeKind::AuthFailed)
    {
        eprintln!("error: the provider refused the credentials");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn c2dm(args: Args) -> anyhow::Result<ExitCode> {
    use pushgate_client::c2dm::{C2dmAuth, C2dmMessage, C2dmSender};
    let auth = match (&args.auth_token, &args.email, &args.password) {
        (Some(token), _, _) => C2dmAuth::Token(token.clone()),
        (None, Some(email), Some(password)) => {
            let auth = C2dmAuth::client_login(email.clone(), password.clone(), "pushgate-cli");
            match &args.login_url {
                Some(url) => auth.with_login_url(url.clone()),
                None => auth,
            }
        }
        _ => bail!("--c2dm needs --auth-token, or --email with --password"),
    };
    let collapse_key = args
        .collapse_key
        .clone()
        .context("--c2dm needs --collapse-key (C2DM requires one)")?;
    let mut config = args.http_config()?;
    if let Some(endpoint) = &args.endpoint {
        config = config.with_endpoint(endpoint.clone());
    }
    let sender = C2dmSender::new(auth, config)?;
    let policy = args.policy();
    let mut outcomes = Vec::with_capacity(args.to.len());
    for token in &args.to {
        let mut message = C2dmMessage::new(token.clone(), collapse_key.clone());
        for (k, v) in &args.data {
            message = message.data(k.clone(), v.clone());
        }
        outcomes.push(sender.send_with_retries(&message, &policy).await?);
    }
    print_outcomes(args.to.iter().map(String::as_str).zip(outcomes.iter()));
    Ok(ExitCode::SUCCESS)
}
