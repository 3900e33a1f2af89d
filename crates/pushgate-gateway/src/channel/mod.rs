//! Channels: one provider credential each, with its own connections, in-flight limit and
//! pacing, so that one broken credential cannot starve the others. Every protocol is behind
//! the one [`Channel`] trait: check a payload, send it to a batch of tokens, get one
//! [`Outcome`] per token.

mod c2dm;
mod ccs;
mod convert;
mod error;
mod legacy;
mod v1;

use std::sync::Arc;

use async_trait::async_trait;
use pushgate_proto::{Outcome, ValidationError};

use crate::config::{ChannelKind, ChannelSettings, ChannelSpec};
use crate::message::Payload;

pub use error::{BuildProblem, ChannelError};

/// A provider channel as the workers and the send API see it.
#[async_trait]
pub trait Channel: Send + Sync {
    /// The protocol.
    fn kind(&self) -> ChannelKind;

    /// Most tokens one [`send`](Channel::send) call carries (1000 for a legacy multicast).
    fn batch_size(&self) -> usize;

    /// The channel's in-flight limit, in permits: requests for a multicast protocol (legacy
    /// JSON: one request carries up to 1000 tokens), tokens for one-request-per-token
    /// protocols (v1, plain text, C2DM) and for CCS (the unacked window).
    fn capacity(&self) -> usize;

    /// The permits one batch of `tokens` takes (never more than [`capacity`](Channel::capacity)).
    fn cost(&self, tokens: usize) -> usize {
        tokens.clamp(1, self.capacity().max(1))
    }

    /// Checks that the protocol can carry `payload` (size, keys, required fields); the error
    /// names the field as the send API names it.
    fn check(&self, payload: &Payload) -> Result<(), ValidationError>;

    /// Sends `payload` to every token once (no retries: the queue retries) and returns one
    /// outcome per token, in order.
    async fn send(&self, payload: &Payload, tokens: &[String]) -> Vec<Outcome>;

    /// Opens the channel's long-lived connections now (CCS, which also receives upstream
    /// messages); channels that connect per request have nothing to open.
    async fn open(&self) -> Result<(), String> {
        Ok(())
    }

    /// Shares the channel's provider budget (a per-project rate) with the other `instances`
    /// sending for it; channels without such a budget ignore it.
    fn share_budget(&self, _instances: u32) {}

    /// True when the channel keeps connections open while the gateway runs.
    fn is_persistent(&self) -> bool {
        self.kind() == ChannelKind::Ccs
    }
}

/// What a channel hands back to the gateway besides outcomes.
#[derive(Debug, Default, Clone)]
pub struct ChannelHooks {
    /// Upstream messages and receipts (CCS).
    pub upstream: Option<tokio::sync::mpsc::Sender<pushgate_client::ccs::Upstream>>,
}

/// Builds the sender of a channel. CCS connects lazily, so a provider that is down at start
/// does not stop the gateway.
pub fn build(spec: &ChannelSpec, hooks: ChannelHooks) -> Result<Arc<dyn Channel>, ChannelError> {
    let fail = |problem: BuildProblem| ChannelError {
        channel: spec.name.clone(),
        problem,
    };
    Ok(match &spec.settings {
        ChannelSettings::FcmV1 { .. } => Arc::new(v1::V1Channel::new(spec).map_err(fail)?),
        ChannelSettings::Legacy { .. } => Arc::new(legacy::LegacyChannel::new(spec).map_err(fail)?),
        ChannelSettings::Ccs { .. } => Arc::new(ccs::CcsChannel::new(spec, hooks.upstream)),
        ChannelSettings::C2dm { .. } => Arc::new(c2dm::C2dmChannel::new(spec).map_err(fail)?),
    })
}

/// The same outcome for every token of a batch (a whole-request failure).
fn all(outcome: Outcome, n: usize) -> Vec<Outcome> {
    vec![outcome; n]
}

/// A token the protocol checks stand in for (checks do not look at the token's value).
const PLACEHOLDER_TOKEN: &str = "pushgate-check-token";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use pushgate_client::HttpConfig;

    const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n";

    fn spec(credential: &str, settings: ChannelSettings) -> ChannelSpec {
        ChannelSpec {
            name: "main".into(),
            endpoint: "-".into(),
            credential: Secret::new(credential, "inline"),
            max_in_flight: 1,
            settings,
        }
    }

    fn error(spec: &ChannelSpec) -> ChannelError {
        match build(spec, ChannelHooks::default()) {
            Ok(_) => panic!("built"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_bad_service_account_file_is_named_without_its_key() {
        // A key file without `client_email`: refused, and the message must not quote it.
        let key = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": PRIVATE_KEY,
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string();
        let v1 = ChannelSettings::FcmV1 {
            project_id: None,
            http: HttpConfig::new(),
            connections: 1,
            rate_per_minute: None,
        };
        let e = error(&spec(&key, v1));
        assert!(
            matches!(e.problem, BuildProblem::ServiceAccount(_)),
            "{e:?}"
        );
        assert_eq!(e.channel, "main");
        let text = format!("{e} {e:?}");
        assert!(text.contains("client_email"), "{text}");
        assert!(!text.contains("MIIsecret"), "{text}");
    }

    #[test]
    fn a_bad_url_or_key_is_an_http_settings_problem_without_the_key() {
        let legacy = |url: &str| ChannelSettings::Legacy {
            http: HttpConfig::new().with_endpoint(url),
            format: crate::config::LegacyFormat::Json,
        };
        let e = error(&spec("AIza-key", legacy("ftp://example.com/send")));
        assert!(matches!(e.problem, BuildProblem::Http(_)), "{e:?}");
        assert!(e.to_string().contains("ftp://example.com/send"), "{e}");
        // A key with a line break cannot go in a header; the key itself is never shown.
        let e = error(&spec("AIza\nsecret", legacy("https://example.com/send")));
        assert!(matches!(e.problem, BuildProblem::Http(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("secret"), "{e:?}");
    }
}
