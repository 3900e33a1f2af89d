//! C2DM: one form POST per registration id, ClientLogin auth renewed on 401.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use pushgate_client::c2dm::{C2dmAuth, C2dmMessage, C2dmSender};
use pushgate_proto::{Outcome, ValidationError};

use super::{BuildProblem, Channel, PLACEHOLDER_TOKEN};
use crate::config::{ChannelKind, ChannelSettings, ChannelSpec};
use crate::message::Payload;

/// `source` sent with ClientLogin.
const SOURCE: &str = concat!("pushgate-", env!("CARGO_PKG_VERSION"));

/// A C2DM channel: one role account (or token).
pub(super) struct C2dmChannel {
    sender: Arc<C2dmSender>,
    max_in_flight: usize,
}

impl C2dmChannel {
    pub(super) fn new(spec: &ChannelSpec) -> Result<Self, BuildProblem> {
        let ChannelSettings::C2dm { http, login } = &spec.settings else {
            return Err(BuildProblem::WrongProtocol { expected: "c2dm" });
        };
        let auth = match login {
            Some((email, login_url)) => {
                let auth = C2dmAuth::client_login(email, spec.credential.expose(), SOURCE);
                match login_url {
                    Some(url) => auth.with_login_url(url),
                    None => auth,
                }
            }
            None => C2dmAuth::Token(spec.credential.expose().to_string()),
        };
        let sender = C2dmSender::new(auth, http.clone()).map_err(BuildProblem::Http)?;
        Ok(Self {
            sender: Arc::new(sender),
            max_in_flight: spec.max_in_flight.max(1),
        })
    }
}

/// The C2DM message of a payload, or why C2DM cannot carry it.
fn c2dm_message(p: &Payload, token: &str) -> Result<C2dmMessage, ValidationError> {
    if p.notification.is_some() {
        return Err(ValidationError::new(
            "notification",
            "C2DM carries data only; send the text in data",
        ));
    }
    let Some(key) = &p.collapse_key else {
        return Err(ValidationError::new(
            "collapse_key",
            "required by C2DM (every C2DM message is collapsible)",
        ));
    };
    let mut m = C2dmMessage::new(token, key.clone()).delay_while_idle(p.delay_while_idle);
    for (k, v) in &p.data {
        m = m.data(k.clone(), v.clone());
    }
    m.validate()?;
    Ok(m)
}

#[async_trait]
impl Channel for C2dmChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::C2dm
    }

    fn batch_size(&self) -> usize {
        self.max_in_flight
    }

    fn capacity(&self) -> usize {
        self.max_in_flight
    }

    fn check(&self, p: &Payload) -> Result<(), ValidationError> {
        c2dm_message(p, PLACEHOLDER_TOKEN).map(|_| ())
    }

    async fn send(&self, p: &Payload, tokens: &[String]) -> Vec<Outcome> {
        stream::iter(tokens.iter().cloned())
            .map(|token| {
                let sender = self.sender.clone();
                let message = c2dm_message(p, &token);
                async move {
                    match message {
                        Ok(m) => sender.send(&m).await.unwrap_or_else(|e| e.outcome()),
                        Err(e) => Outcome::MessageRejected {
                            reason: e.to_string(),
                        },
                    }
                }
            })
            .buffered(self.max_in_flight)
            .collect()
            .await
    }
}
