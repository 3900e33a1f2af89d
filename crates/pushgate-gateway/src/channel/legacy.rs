//! Legacy HTTP: JSON multicasts of up to 1000 tokens, or plain text one token per request.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use pushgate_client::legacy::{JsonMessage, LegacySender, PlainTextMessage};
use pushgate_proto::legacy::limits::MAX_REGISTRATION_IDS;
use pushgate_proto::{FailureScope, Outcome, ValidationError};

use super::convert::{legacy_notification, legacy_priority};
use super::{BuildProblem, Channel, PLACEHOLDER_TOKEN, all};
use crate::config::{ChannelKind, ChannelSettings, ChannelSpec, LegacyFormat};
use crate::message::Payload;

/// A legacy channel: one server key, one keep-alive pool.
pub(super) struct LegacyChannel {
    sender: LegacySender,
    format: LegacyFormat,
    max_in_flight: usize,
}

impl LegacyChannel {
    pub(super) fn new(spec: &ChannelSpec) -> Result<Self, BuildProblem> {
        let ChannelSettings::Legacy { http, format } = &spec.settings else {
            return Err(BuildProblem::WrongProtocol { expected: "legacy" });
        };
        let sender = LegacySender::new(spec.credential.expose(), http.clone())
            .map_err(BuildProblem::Http)?
            .with_max_concurrent_chunks(1);
        Ok(Self {
            sender,
            format: *format,
            max_in_flight: spec.max_in_flight.max(1),
        })
    }
}

/// The JSON message of a payload to these tokens.
fn json_message(p: &Payload, tokens: &[String]) -> JsonMessage {
    let mut m = JsonMessage::new(tokens.iter().cloned());
    for (k, v) in &p.data {
        m = m.data(k.clone(), v.clone());
    }
    if let Some(key) = &p.collapse_key {
        m = m.collapse_key(key.clone());
    }
    if let Some(pr) = p.priority {
        m = m.priority(legacy_priority(pr));
    }
    if let Some(n) = &p.notification {
        m = m.notification(legacy_notification(n));
    }
    m.time_to_live(p.ttl_secs)
        .delay_while_idle(p.delay_while_idle)
        .dry_run(p.dry_run)
}

/// The plain-text message of a payload to one token.
fn plain_message(p: &Payload, token: &str) -> PlainTextMessage {
    let mut m = PlainTextMessage::new(token);
    for (k, v) in &p.data {
        m = m.data(k.clone(), v.clone());
    }
    if let Some(key) = &p.collapse_key {
        m = m.collapse_key(key.clone());
    }
    m.time_to_live(p.ttl_secs)
        .delay_while_idle(p.delay_while_idle)
        .dry_run(p.dry_run)
}

#[async_trait]
impl Channel for LegacyChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Legacy
    }

    fn batch_size(&self) -> usize {
        match self.format {
            LegacyFormat::Json => MAX_REGISTRATION_IDS,
            LegacyFormat::PlainText => self.max_in_flight,
        }
    }

    fn capacity(&self) -> usize {
        self.max_in_flight
    }

    fn cost(&self, tokens: usize) -> usize {
        match self.format {
            // One request, whatever its number of tokens.
            LegacyFormat::Json => 1,
            LegacyFormat::PlainText => tokens.clamp(1, self.max_in_flight),
        }
    }

    fn check(&self, p: &Payload) -> Result<(), ValidationError> {
        let token = [PLACEHOLDER_TOKEN.to_string()];
        match self.format {
            LegacyFormat::Json => json_message(p, &token).validate(),
            LegacyFormat::PlainText => {
                if p.notification.is_some() {
                    return Err(ValidationError::new(
                        "notification",
                        "the plain-text legacy format carries data only",
                    ));
                }
                plain_message(p, PLACEHOLDER_TOKEN).validate()
            }
        }
    }

    async fn send(&self, p: &Payload, tokens: &[String]) -> Vec<Outcome> {
        match self.format {
            LegacyFormat::Json => match self.sender.send(&json_message(p, tokens)).await {
                Ok(result) => {
                    let outcomes = result.into_outcome_list();
                    if outcomes.len() == tokens.len() {
                        outcomes
                    } else {
                        all(
                            Outcome::RetryLater {
                                reason: "answer does not match the request".into(),
                                after: None,
                                scope: FailureScope::Message,
                            },
                            tokens.len(),
                        )
                    }
                }
                Err(e) => all(e.outcome(), tokens.len()),
            },
            LegacyFormat::PlainText => {
                let sender = Arc::new(self.sender.clone());
                stream::iter(tokens.iter().cloned())
                    .map(|token| {
                        let sender = sender.clone();
                        let message = plain_message(p, &token);
                        async move {
                            match sender.send_plain(&message).await {
                                Ok(result) => {
                                    result.into_outcome_list().into_iter().next().unwrap_or(
                                        Outcome::RetryLater {
                                            reason: "empty answer".into(),
                                            after: None,
                                            scope: FailureScope::Token,
                                        },
                                    )
                                }
                                Err(e) => e.outcome(),
                            }
                        }
                    })
                    .buffered(self.max_in_flight)
                    .collect()
                    .await
            }
        }
    }
}
