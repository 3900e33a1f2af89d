//! `pushgate send`: one message through one provider protocol, with a per-token result table;
//! or, with `--gateway URL`, through a running gateway, following its deliveries to the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use pushgate_client::legacy::{JsonMessage, LegacySender, PlainTextMessage};
use pushgate_client::v1::{FcmV1Sender, Message, V1Config};
use pushgate_client::{HttpConfig, RetryPolicy};
use pushgate_proto::v1::{AndroidConfig, ProtoDuration};

use crate::support::output::print_outcomes;

/// The variable that holds the legacy server key when `--api-key` is not given.
const LEGACY_KEY_VAR: &str = "PUSHGATE_API_KEY";

/// Which provider protocol carries the message, or which gateway does.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Protocol {
    /// Send through a running pushgate gateway at this base URL (e.g. http://127.0.0.1:8080)
    /// instead of talking to a provider directly; needs --app.
    #[arg(long, value_name = "URL", requires = "app")]
    gateway: Option<String>,
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
    #[arg(long, conflicts_with = "gateway")]
    endpoint: Option<String>,
    /// Legacy: the server key (or set PUSHGATE_API_KEY). --gateway: the app's API key (or set
    /// PUSHGATE_GATEWAY_KEY). Each mode reads only its own variable.
    #[arg(long)]
    api_key: Option<String>,
    /// FCM v1: the service-account JSON key file.
    #[arg(long, value_name = "FILE", conflicts_with = "gateway")]
    service_account: Option<PathBuf>,
    /// A recipient token; repeat for a multicast (any number: split as the protocol needs).
    #[arg(
        long = "to",
        value_name = "TOKEN",
        conflicts_with = "gateway",
        allow_hyphen_values = true
    )]
    to: Vec<String>,
    /// Send to the subscribers of a topic instead of tokens.
    #[arg(long, conflicts_with_all = ["to", "condition"])]
    topic: Option<String>,
    /// Send to the instances a topic condition matches.
    #[arg(long, conflicts_with_all = ["to", "topic"])]
    condition: Option<String>,
    /// Legacy: send to a device group (its notification key).
    #[arg(long, value_name = "NOTIFICATION_KEY", conflicts_with_all = ["to", "topic", "condition", "gateway"])]
    group: Option<String>,
    /// C2DM: the ClientLogin account (with --password).
    #[arg(long, conflicts_with = "gateway")]
    email: Option<String>,
    /// C2DM: the account's password (or set PUSHGATE_C2DM_PASSWORD).
    #[arg(long, env = "PUSHGATE_C2DM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// C2DM: the ClientLogin URL, e.g. http://127.0.0.1:8085/accounts/ClientLogin.
    #[arg(long, conflicts_with = "gateway")]
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
    #[arg(long, conflicts_with = "gateway")]
    plain_text: bool,
    /// Extra CA certificate (PEM) to trust, e.g. the emulator's (or an https gateway's).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Attempts in all, retrying only what can be retried (1 = no retry).
    #[arg(long, default_value_t = 1, conflicts_with = "gateway")]
    attempts: u32,
    #[command(flatten)]
    via: GatewaySend,
}

/// The flags only `--gateway` takes: the app, the gateway's targets and message options.
#[derive(clap::Args)]
struct GatewaySend {
    /// --gateway: the app to send for.
    #[arg(long, requires = "gateway")]
    app: Option<String>,
    /// --gateway: every device of the app.
    #[arg(long, requires = "gateway", conflicts_with_all = ["device", "token", "user", "tag", "topic", "condition"])]
    all: bool,
    /// --gateway: registered devices by id (several values, or repeat).
    #[arg(long, value_name = "ID", num_args = 1.., requires = "gateway")]
    device: Vec<String>,
    /// --gateway: raw provider tokens (several values, or repeat).
    #[arg(long, value_name = "TOKEN", num_args = 1.., requires = "gateway")]
    token: Vec<String>,
    /// --gateway: every device of these users (several values, or repeat).
    #[arg(long, value_name = "USER", num_args = 1.., requires = "gateway")]
    user: Vec<String>,
    /// --gateway: every device with any of these tags (several values, or repeat).
    #[arg(long, value_name = "TAG", num_args = 1.., requires = "gateway")]
    tag: Vec<String>,
    /// --gateway: notification title.
    #[arg(long, requires = "gateway")]
    title: Option<String>,
    /// --gateway: notification body text.
    #[arg(long, requires = "gateway")]
    body: Option<String>,
    /// --gateway: delivery priority.
    #[arg(long, value_enum, requires = "gateway")]
    priority: Option<Priority>,
    /// --gateway: send over this channel of the app, whatever the devices' own channels.
    #[arg(long, value_name = "NAME", requires = "gateway")]
    channel: Option<String>,
    /// --gateway: a key that makes a retried request return the first one's message.
    #[arg(long, value_name = "KEY", requires = "gateway")]
    idempotency_key: Option<String>,
    /// --gateway: print the message id and return, without following the deliveries.
    #[arg(long, requires = "gateway")]
    no_wait: bool,
    /// --gateway: stop following after this many seconds (exit 1 if deliveries are pending).
    #[arg(
        long,
        value_name = "SECS",
        requires = "gateway",
        conflicts_with = "no_wait"
    )]
    wait_timeout: Option<u64>,
}

/// `--priority`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Priority {
    /// Wake the device.
    High,
    /// May wait for a maintenance window.
    Normal,
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
/// With `--gateway`: see [`via_gateway::run`].
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(base) = args.protocol.gateway.clone() {
        return via_gateway::run(&args, &base).await;
    }
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
        .or_else(|| std::env::var(LEGACY_KEY_VAR).ok().filter(|k| !k.is_empty()))
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

/// `pushgate send --gateway URL`: the message goes to `POST /v1/apps/{app}/messages`; then
/// `GET /v1/messages/{id}` is polled until no delivery is pending.
mod via_gateway {
    use std::time::Instant;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::support::gateway_client::{GatewayClient, KEY_VAR, MessageStatus, api_error};
    use crate::support::progress;

    /// Exit code of a request the gateway refused.
    const REFUSED: u8 = 2;
    /// First and longest wait between two polls.
    const POLL: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));
    /// Deliveries that did not end `sent` listed at the end, at most.
    const MAX_LISTED: usize = 20;
    /// Pages of results read to find them, at most.
    const MAX_PAGES: usize = 10;
    /// The final states, in the order they are printed (others follow by name).
    const STATE_ORDER: &[&str] = &[
        "sent",
        "failed",
        "token_dead",
        "expired",
        "queued",
        "in_flight",
        "retry_wait",
    ];

    /// Sends, prints the id and delivery count, follows the deliveries (unless `--no-wait`)
    /// and prints the counts by state. Exit 0 when every delivery was sent, 1 when not,
    /// 2 when the gateway refused the request.
    pub async fn run(args: &Args, base: &str) -> anyhow::Result<ExitCode> {
        let via = &args.via;
        let app = via.app.as_deref().context("--gateway needs --app APP")?;
        let key = args
            .api_key
            .clone()
            .or_else(|| std::env::var(KEY_VAR).ok().filter(|k| !k.is_empty()))
            .context("--gateway needs the app's API key: --api-key KEY or PUSHGATE_GATEWAY_KEY")?;
        if let Some(k) = &via.idempotency_key
            && (k.is_empty() || !k.bytes().all(|b| (0x20..0x7f).contains(&b)))
        {
            bail!("--idempotency-key must be visible ASCII characters");
        }
        let body = body(args)?;
        let timeout = Duration::from_secs(args.timeout.max(1));
        let client = GatewayClient::new(base, &key, timeout, args.ca.as_deref())?;
        let accepted = match client
            .send(app, &body, via.idempotency_key.as_deref())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                let Some(api) = api_error(&e).filter(|a| a.is_refusal()) else {
                    return Err(e);
                };
                eprintln!(
                    "error: the gateway refused the message (HTTP {} {}): {}",
                    api.status, api.code, api.message
                );
                if let Some(field) = &api.field {
                    eprintln!("  field: {field}");
                }
                if let Some(id) = &api.request_id {
                    eprintln!("  request id: {id}");
                }
                return Ok(ExitCode::from(REFUSED));
            }
        };
        println!("message {}", accepted.id);
        println!(
            "deliveries {} ({} queued){}",
            accepted.deliveries,
            accepted.queued,
            if accepted.expanding {
                " so far: the rest of the audience is being stored"
            } else {
                ""
            }
        );
        if accepted.replayed {
            println!("(an earlier request with this idempotency key made this message)");
        }
        if via.no_wait {
            return Ok(ExitCode::SUCCESS);
        }
        if accepted.deliveries == 0 {
            println!("no device matched the targets");
            return Ok(ExitCode::SUCCESS);
        }
        let (status, timed_out) = follow(&client, &accepted.id, accepted.deliveries, via).await?;
        print_counts(&status);
        if timed_out {
            eprintln!(
                "gave up waiting: {} of {} deliveries are still pending",
                status.deliveries.saturating_sub(status.finished()),
                status.deliveries
            );
            return Ok(ExitCode::FAILURE);
        }
        if status.count("sent") == status.deliveries {
            return Ok(ExitCode::SUCCESS);
        }
        print_unsent(&client, &accepted.id).await?;
        Ok(ExitCode::FAILURE)
    }

    /// The request body the flags describe.
    fn body(args: &Args) -> anyhow::Result<Value> {
        let via = &args.via;
        let mut targets = Map::new();
        if via.all {
            targets.insert("all".into(), json!(true));
        }
        for (name, list) in [
            ("device_ids", &via.device),
            ("tokens", &via.token),
            ("users", &via.user),
            ("tags", &via.tag),
        ] {
            if !list.is_empty() {
                targets.insert(name.into(), json!(list));
            }
        }
        if let Some(topic) = &args.topic {
            targets.insert("topic".into(), json!(topic));
        }
        if let Some(condition) = &args.condition {
            targets.insert("condition".into(), json!(condition));
        }
        if targets.is_empty() {
            bail!(
                "give the recipients: --all, --device ID, --token T, --user U, --tag T, \
                 --topic NAME or --condition EXPR"
            );
        }
        let mut body = Map::new();
        body.insert("targets".into(), Value::Object(targets));
        if !args.data.is_empty() {
            let data: Map<String, Value> = args
                .data
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            body.insert("data".into(), Value::Object(data));
        }
        let mut notification = Map::new();
        for (name, value) in [("title", &via.title), ("body", &via.body)] {
            if let Some(v) = value {
                notification.insert(name.into(), json!(v));
            }
        }
        if !notification.is_empty() {
            body.insert("notification".into(), Value::Object(notification));
        }
        if let Some(key) = &args.collapse_key {
            body.insert("collapse_key".into(), json!(key));
        }
        if let Some(ttl) = args.ttl {
            body.insert("ttl".into(), json!(ttl));
        }
        if let Some(p) = via.priority {
            let name = match p {
                Priority::High => "high",
                Priority::Normal => "normal",
            };
            body.insert("priority".into(), json!(name));
        }
        if args.dry_run {
            body.insert("dry_run".into(), json!(true));
        }
        if let Some(channel) = &via.channel {
            body.insert("channel".into(), json!(channel));
        }
        Ok(Value::Object(body))
    }

    /// Polls until the message is done (or `--wait-timeout` passes), with a bar of final
    /// deliveries; returns the last status and whether it gave up.
    async fn follow(
        client: &GatewayClient,
        id: &str,
        total: u64,
        via: &GatewaySend,
    ) -> anyhow::Result<(MessageStatus, bool)> {
        let deadline = via
            .wait_timeout
            .map(|s| Instant::now() + Duration::from_secs(s));
        let bar = progress::bar(total, "deliveries done");
        let mut wait = POLL.0;
        let result = loop {
            let status = match client.message(id, None, 1).await {
                Ok(s) => s,
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            bar.set_length(status.deliveries);
            bar.set_position(status.finished());
            bar.set_message(format!("({} sent)", status.count("sent")));
            if status.done {
                break (status, false);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break (status, true);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(POLL.1);
        };
        bar.finish_and_clear();
        Ok(result)
    }

    /// One line per state: the final ones first.
    fn print_counts(status: &MessageStatus) {
        let known = STATE_ORDER
            .iter()
            .filter_map(|s| status.counts.get(*s).map(|n| (*s, *n)));
        let others = status
            .counts
            .iter()
            .filter(|(s, _)| !STATE_ORDER.contains(&s.as_str()))
            .map(|(s, n)| (s.as_str(), *n));
        for (state, n) in known.chain(others) {
            println!("  {state:<11} {n}");
        }
    }

    /// Lists the first deliveries that did not end `sent`.
    async fn print_unsent(client: &GatewayClient, id: &str) -> anyhow::Result<()> {
        let mut cursor: Option<Value> = None;
        let mut listed = 0;
        for _ in 0..MAX_PAGES {
            let page = client.message(id, cursor.as_ref(), 1000).await?;
            for r in page.results.iter().filter(|r| r.state != "sent") {
                if listed == 0 {
                    println!("not sent:");
                }
                if listed == MAX_LISTED {
                    println!("  ...");
                    return Ok(());
                }
                listed += 1;
                let token = r
                    .token
                    .as_deref()
                    .map(pushgate_proto::token::short_token)
                    .unwrap_or_default();
                println!(
                    "  {:<20} {:<10} {:<11} {} (attempts {})",
                    r.device_id.as_deref().unwrap_or("-"),
                    token,
                    r.state,
                    r.error.as_deref().unwrap_or(""),
                    r.attempts
                );
            }
            match page.next_cursor {
                Some(c) if !c.is_null() && !page.results.is_empty() => cursor = Some(c),
                _ => break,
            }
        }
        Ok(())
    }
}
