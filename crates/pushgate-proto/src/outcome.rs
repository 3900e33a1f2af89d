//! The one outcome vocabulary that every protocol's answer is mapped to.

use std::time::Duration;

/// What happened to one message for one token, whatever protocol carried the answer.
///
/// The gateway, its metrics and its retry logic only ever look at this type; each protocol
/// module in this crate maps its provider's answers to it (see docs/protocols.md,
/// "The Outcome vocabulary", and docs/architecture.md, "One outcome vocabulary").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the provider, with the provider's message id.
    Delivered {
        /// Provider message id (`message_id`, v1 `name`, C2DM `id=`).
        message_id: String,
    },
    /// Accepted, and the provider says the device now has a newer token (canonical id).
    Rotated {
        /// Provider message id.
        message_id: String,
        /// The token to use from now on.
        new_token: String,
    },
    /// The token will never work again (unregistered, malformed, other sender, ...).
    TokenDead {
        /// Provider error code, e.g. `NotRegistered`.
        reason: String,
    },
    /// A temporary failure of the provider: send the same message to this token later.
    RetryLater {
        /// Provider error code or HTTP status, e.g. `Unavailable`.
        reason: String,
        /// The smallest wait the provider asked for, if it said.
        after: Option<Duration>,
        /// What the failure concerns: this token, the whole request, or the channel (no
        /// answer at all, a closed connection, a sender-wide quota).
        scope: FailureScope,
    },
    /// Too many messages (to this device, topic or project): retry later, more slowly.
    Throttled {
        /// Provider error code, e.g. `DeviceMessageRateExceeded`.
        reason: String,
        /// The smallest wait the provider asked for, if it said.
        after: Option<Duration>,
        /// Whose limit was hit: the device's ([`FailureScope::Token`]), the topic's
        /// ([`FailureScope::Message`]) or the project's ([`FailureScope::Channel`]).
        scope: FailureScope,
    },
    /// The message itself is wrong (too big, reserved key, bad TTL): never retry it as is.
    MessageRejected {
        /// Provider error code, e.g. `MessageTooBig`.
        reason: String,
    },
    /// The sender's credentials (or its project or endpoint) were refused: nothing sent on
    /// this channel can succeed until they are fixed.
    AuthFailed {
        /// Provider error code or HTTP status.
        reason: String,
    },
}

/// What a failure concerns, decided where the provider's answer is parsed, so that no layer
/// above has to guess it from the text of a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureScope {
    /// This token only: it is dead, its device is over its limit, or the provider failed
    /// the one request that carried it.
    Token,
    /// This message, whatever token it goes to: it is malformed, or the request that
    /// carried it (to several tokens, or to a topic) failed as a whole.
    Message,
    /// Everything sent on the channel: the provider could not be reached, the credentials
    /// or project were refused, or a sender-wide quota is spent.
    Channel,
}

/// The variant of an [`Outcome`] without its data: a label for metrics and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    /// See [`Outcome::Delivered`].
    Delivered,
    /// See [`Outcome::Rotated`].
    Rotated,
    /// See [`Outcome::TokenDead`].
    TokenDead,
    /// See [`Outcome::RetryLater`].
    RetryLater,
    /// See [`Outcome::Throttled`].
    Throttled,
    /// See [`Outcome::MessageRejected`].
    MessageRejected,
    /// See [`Outcome::AuthFailed`].
    AuthFailed,
}

impl OutcomeKind {
    /// Stable snake_case name, used as a metric label and a stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Delivered => "delivered",
            OutcomeKind::Rotated => "rotated",
            OutcomeKind::TokenDead => "token_dead",
            OutcomeKind::RetryLater => "retry_later",
            OutcomeKind::Throttled => "throttled",
            OutcomeKind::MessageRejected => "message_rejected",
            OutcomeKind::AuthFailed => "auth_failed",
        }
    }
}

impl Outcome {
    /// The variant, without data.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Delivered { .. } => OutcomeKind::Delivered,
            Outcome::Rotated { .. } => OutcomeKind::Rotated,
            Outcome::TokenDead { .. } => OutcomeKind::TokenDead,
            Outcome::RetryLater { .. } => OutcomeKind::RetryLater,
            Outcome::Throttled { .. } => OutcomeKind::Throttled,
            Outcome::MessageRejected { .. } => OutcomeKind::MessageRejected,
            Outcome::AuthFailed { .. } => OutcomeKind::AuthFailed,
        }
    }

    /// True when the provider accepted the message (with or without a new token).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Delivered { .. } | Outcome::Rotated { .. })
    }

    /// True when sending the same message to the same token later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Outcome::RetryLater { .. } | Outcome::Throttled { .. })
    }

    /// The provider's message id, for successes.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Outcome::Delivered { message_id } | Outcome::Rotated { message_id, .. } => {
                Some(message_id)
            }
            _ => None,
        }
    }

    /// What a failure concerns; `None` for successes. Dead tokens concern the token,
    /// rejected messages the message and refused credentials the channel; retriable answers
    /// say it themselves.
    pub fn scope(&self) -> Option<FailureScope> {
        match self {
            Outcome::Delivered { .. } | Outcome::Rotated { .. } => None,
            Outcome::TokenDead { .. } => Some(FailureScope::Token),
            Outcome::MessageRejected { .. } => Some(FailureScope::Message),
            Outcome::AuthFailed { .. } => Some(FailureScope::Channel),
            Outcome::RetryLater { scope, .. } | Outcome::Throttled { scope, .. } => Some(*scope),
        }
    }

    /// The provider's reason (error code), for failures.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered { .. } | Outcome::Rotated { .. } => None,
            Outcome::TokenDead { reason }
            | Outcome::RetryLater { reason, .. }
            | Outcome::Throttled { reason, .. }
            | Outcome::MessageRejected { reason }
            | Outcome::AuthFailed { reason } => Some(reason),
        }
    }

    /// The smallest wait the provider asked for before a retry, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Outcome::RetryLater { after, .. } | Outcome::Throttled { after, .. } => *after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_retry_are_disjoint() {
        let all = [
            Outcome::Delivered {
                message_id: "1".into(),
            },
            Outcome::Rotated {
                message_id: "1".into(),
                new_token: "t".into(),
            },
            Outcome::TokenDead { reason: "x".into() },
            Outcome::RetryLater {
                reason: "x".into(),
                after: None,
                scope: FailureScope::Token,
            },
            Outcome::Throttled {
                reason: "x".into(),
                after: Some(Duration::from_secs(1)),
                scope: FailureScope::Channel,
            },
            Outcome::MessageRejected { reason: "x".into() },
            Outcome::AuthFailed { reason: "x".into() },
        ];
        for o in &all {
            assert!(!(o.is_success() && o.is_retriable()), "{o:?}");
            assert_eq!(o.is_success(), o.message_id().is_some());
            assert_eq!(o.is_success(), o.reason().is_none());
            assert_eq!(o.is_success(), o.scope().is_none());
        }
        assert_eq!(all.iter().filter(|o| o.is_retriable()).count(), 2);
        assert_eq!(all[4].retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn fixed_kinds_have_their_fixed_scope_and_retries_say_their_own() {
        let dead = Outcome::TokenDead { reason: "x".into() };
        let bad = Outcome::MessageRejected { reason: "x".into() };
        let refused = Outcome::AuthFailed { reason: "x".into() };
        assert_eq!(dead.scope(), Some(FailureScope::Token));
        assert_eq!(bad.scope(), Some(FailureScope::Message));
        assert_eq!(refused.scope(), Some(FailureScope::Channel));
        for scope in [
            FailureScope::Token,
            FailureScope::Message,
            FailureScope::Channel,
        ] {
            let retry = Outcome::RetryLater {
                reason: "x".into(),
                after: None,
                scope,
            };
            assert_eq!(retry.scope(), Some(scope));
        }
    }
}
