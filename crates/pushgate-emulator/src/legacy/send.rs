//! The per-recipient part of a legacy send, shared by the JSON and plain-text forms:
//! message-level checks, token checks against virtual devices, injected faults, delivery.

use std::sync::Arc;
use std::time::Duration;

use pushgate_proto::legacy::ErrorCode;
use pushgate_proto::legacy::limits::is_reserved_data_key;

use crate::devices::{DeliverResult, DeviceKind, Payload, StoredMessage, Via};
use crate::ids::FAKE_MESSAGE_ID;
use crate::recipient::{self, Expected, Recipient, Refusal};
use crate::state::Inner;
use crate::time::{now_micros, now_ms};
use crate::topics::{self, TopicTarget};

/// What one recipient gets.
#[derive(Debug)]
pub(crate) enum RecipientOutcome {
    /// Accepted, with the message id and, for an old token, the canonical one.
    Delivered {
        message_id: String,
        canonical: Option<Arc<str>>,
    },
    /// Refused with a per-recipient code.
    Failed(ErrorCode),
}

/// The message-level error every recipient gets, if any: a reserved `data` key, `data`
/// over `limit` bytes, or a bad TTL (docs/protocols.md, "Emulator checklist: legacy HTTP", point
/// 6).
pub(crate) fn message_error<'k>(
    mut keys: impl Iterator<Item = &'k str>,
    data_bytes: usize,
    limit: usize,
    ttl_ok: bool,
) -> Option<ErrorCode> {
    if keys.any(is_reserved_data_key) {
        Some(ErrorCode::InvalidDataKey)
    } else if data_bytes > limit {
        Some(ErrorCode::MessageTooBig)
    } else if !ttl_ok {
        Some(ErrorCode::InvalidTtl)
    } else {
        None
    }
}

/// One request's sending context: who sends what, and what happened so far.
pub(crate) struct Sender<'a> {
    state: &'a Inner,
    sender_id: &'a str,
    path: &'static str,
    via: Via,
    payload: Arc<Payload>,
    message_error: Option<ErrorCode>,
    restricted_package: Option<&'a str>,
    dry_run: bool,
    now_ms: u64,
    now_micros: u64,
    /// `Retry-After` asked for by a fired recipient fault.
    pub retry_after: Option<String>,
    /// Longest delay asked for by a fired recipient fault.
    pub delay: Option<Duration>,
    /// Messages stored in inboxes by this request.
    pub delivered: u64,
}

impl<'a> Sender<'a> {
    /// A context for one request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        state: &'a Inner,
        sender_id: &'a str,
        path: &'static str,
        via: Via,
        payload: Arc<Payload>,
        message_error: Option<ErrorCode>,
        restricted_package: Option<&'a str>,
        dry_run: bool,
    ) -> Self {
        let now_micros = now_micros();
        Self {
            state,
            sender_id,
            path,
            via,
            payload,
            message_error,
            restricted_package,
            dry_run,
            now_ms: now_ms().max(now_micros / 1000),
            now_micros,
            retry_after: None,
            delay: None,
            delivered: 0,
        }
    }

    /// Applies a recipient fault for `recipient` if one is set; returns its code.
    pub(crate) fn injected(&mut self, recipient: &str) -> Option<ErrorCode> {
        let fault = self.state.faults.take_recipient(self.path, recipient)?;
        if self.retry_after.is_none() {
            self.retry_after = fault.retry_after;
        }
        self.delay = self.delay.max(fault.delay);
        Some(fault.error)
    }

    /// The message-level error, if the message is invalid.
    pub(crate) fn message_error(&self) -> Option<&ErrorCode> {
        self.message_error.as_ref()
    }

    /// Delivers the message to every device a topic or condition reaches (nothing on a dry
    /// run); counts them in [`Sender::delivered`].
    pub(crate) fn fan_out(&mut self, target: &TopicTarget<'_>) {
        self.delivered += topics::fan_out(
            self.state,
            self.sender_id,
            target,
            &self.payload,
            self.via,
            self.dry_run,
        );
    }

    /// Sends to one token: faults, message checks, token checks, then delivery.
    pub(crate) fn send(&mut self, token: &str) -> RecipientOutcome {
        match self.try_send(token) {
            Ok((message_id, canonical)) => RecipientOutcome::Delivered {
                message_id,
                canonical,
            },
            Err(code) => RecipientOutcome::Failed(code),
        }
    }

    fn try_send(&mut self, token: &str) -> Result<(String, Option<Arc<str>>), ErrorCode> {
        if let Some(code) = self.injected(token) {
            return Err(code);
        }
        if let Some(code) = &self.message_error {
            return Err(code.clone());
        }
        let expected =
            Expected::new(DeviceKind::Gcm, self.sender_id).restricted_to(self.restricted_package);
        let Recipient {
            token: shared_token,
            device,
        } = recipient::check(&self.state.devices, expected, token).map_err(error_code)?;
        let canonical = device.canonical_if_rotated(token);
        if self.dry_run {
            if !device.within_rate(self.now_ms) {
                return Err(ErrorCode::DeviceMessageRateExceeded);
            }
            return Ok((FAKE_MESSAGE_ID.to_string(), canonical));
        }
        let message_id = self.state.ids.message_id(self.now_micros);
        let stored = StoredMessage {
            message_id,
            token: shared_token,
            via: self.via,
            received_at_ms: self.now_ms,
            payload: self.payload.clone(),
        };
        match device.deliver(stored, self.state.inbox_limit) {
            DeliverResult::RateLimited => Err(ErrorCode::DeviceMessageRateExceeded),
            DeliverResult::Stored { copies } => {
                self.delivered += 1;
                if copies > 1 {
                    self.state
                        .stats
                        .duplicate(&device, self.payload.hash, copies);
                }
                Ok((message_id.to_string(), canonical))
            }
        }
    }
}

/// The per-recipient code for a refused recipient; C2DM answers with the same codes.
pub(crate) fn error_code(refusal: Refusal) -> ErrorCode {
    match refusal {
        Refusal::Malformed | Refusal::WrongKind => ErrorCode::InvalidRegistration,
        Refusal::Unknown | Refusal::Uninstalled => ErrorCode::NotRegistered,
        Refusal::WrongSender => ErrorCode::MismatchSenderId,
        Refusal::WrongPackage => ErrorCode::InvalidPackageName,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_checks_in_order() {
        let keys = ["a", "from"];
        assert_eq!(
            message_error(keys.into_iter(), 9999, 4096, false),
            Some(ErrorCode::InvalidDataKey)
        );
        assert_eq!(
            message_error(["a"].into_iter(), 4097, 4096, false),
            Some(ErrorCode::MessageTooBig)
        );
        assert_eq!(message_error(["a"].into_iter(), 4096, 4096, true), None);
        assert_eq!(
            message_error(std::iter::empty(), 0, 4096, false),
            Some(ErrorCode::InvalidTtl)
        );
    }
}
