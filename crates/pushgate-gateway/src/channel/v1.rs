//! FCM HTTP v1: one request per token over several HTTP/2 connections, an OAuth token shared
//! by all of them.

use async_trait::async_trait;
use pushgate_client::RetryPolicy;
use pushgate_client::oauth::key_from_json;
use pushgate_client::v1::{FcmV1Sender, RateLimit, V1Config};
use pushgate_proto::{Outcome, ValidationError};

use super::convert::v1_message;
use super::{BuildProblem, Channel, PLACEHOLDER_TOKEN};
use crate::config::{ChannelKind, ChannelSettings, ChannelSpec};
use crate::message::Payload;

/// Tokens per `send` call: enough to keep the connections busy, small enough to commit often.
const BATCH: usize = 200;

/// A v1 channel: one service account, one project.
pub(super) struct V1Channel {
    sender: FcmV1Sender,
    max_in_flight: usize,
}

impl V1Channel {
    pub(super) fn new(spec: &ChannelSpec) -> Result<Self, BuildProblem> {
        let ChannelSettings::FcmV1 {
            project_id,
            http,
            connections,
            rate_per_minute,
        } = &spec.settings
        else {
            return Err(BuildProblem::WrongProtocol { expected: "fcm_v1" });
        };
        let key = key_from_json(spec.credential.expose()).map_err(BuildProblem::ServiceAccount)?;
        let mut config = V1Config::new()
            .with_http(http.clone())
            .with_connections(*connections)
            .with_max_in_flight(spec.max_in_flight)
            .with_rate_limit(rate_per_minute.map(RateLimit::per_minute))
            // One attempt: the durable queue retries, honouring Retry-After.
            .with_retry_policy(RetryPolicy::default().with_max_attempts(1));
        if let Some(project) = project_id {
            config = config.with_project_id(project.clone());
        }
        let sender = FcmV1Sender::from_service_account(key, config).map_err(BuildProblem::V1)?;
        Ok(Self {
            sender,
            max_in_flight: spec.max_in_flight.max(1),
        })
    }
}

#[async_trait]
impl Channel for V1Channel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::FcmV1
    }

    fn share_budget(&self, instances: u32) {
        self.sender.share_rate_between(instances);
    }

    fn batch_size(&self) -> usize {
        BATCH.min(self.max_in_flight)
    }

    fn capacity(&self) -> usize {
        self.max_in_flight
    }

    fn check(&self, p: &Payload) -> Result<(), ValidationError> {
        v1_message(p, PLACEHOLDER_TOKEN).validate()
    }

    async fn send(&self, p: &Payload, tokens: &[String]) -> Vec<Outcome> {
        let messages: Vec<_> = tokens.iter().map(|t| v1_message(p, t)).collect();
        // A bare 404 (wrong project or URL) already comes back as refused credentials, never
        // as a dead token: see `pushgate_proto::v1::ErrorBody::outcome`.
        self.sender.send_each_with(&messages, p.dry_run).await
    }
}
