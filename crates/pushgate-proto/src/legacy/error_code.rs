//! Per-recipient error codes of the legacy HTTP protocol and their classification.

use std::fmt;
use std::time::Duration;

use crate::{FailureScope, Outcome};

/// Every per-recipient `error` value the legacy service (and C2DM before it) returned.
///
/// Unknown strings are kept in [`ErrorCode::Other`] and treated as non-retriable, as the
/// reference libraries do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No token in the request.
    MissingRegistration,
    /// Token malformed (truncated, extra characters).
    InvalidRegistration,
    /// Token no longer valid (app uninstalled, token refreshed).
    NotRegistered,
    /// Token's package differs from `restricted_package_name`.
    InvalidPackageName,
    /// Token belongs to another sender.
    MismatchSenderId,
    /// `data` larger than the limit.
    MessageTooBig,
    /// Reserved key in `data`.
    InvalidDataKey,
    /// `time_to_live` outside 0..=2419200.
    InvalidTtl,
    /// Timeout or overload for this recipient: retry.
    Unavailable,
    /// Internal error for this recipient: retry.
    InternalServerError,
    /// Too many messages to this device.
    DeviceMessageRateExceeded,
    /// Too many messages to this topic.
    TopicsMessageRateExceeded,
    /// APNs credentials of the project are missing or expired.
    InvalidApnsCredential,
    /// Bad parameter name or type.
    InvalidParameters,
    /// C2DM: the sender's quota is exhausted.
    QuotaExceeded,
    /// C2DM: too many messages to this device.
    DeviceQuotaExceeded,
    /// C2DM: `collapse_key` absent.
    MissingCollapseKey,
    /// Anything else the server sent.
    Other(String),
}

impl ErrorCode {
    /// Every named code (all but [`ErrorCode::Other`]), for exhaustive tests and emulators.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::MissingRegistration,
        ErrorCode::InvalidRegistration,
        ErrorCode::NotRegistered,
        ErrorCode::InvalidPackageName,
        ErrorCode::MismatchSenderId,
        ErrorCode::MessageTooBig,
        ErrorCode::InvalidDataKey,
        ErrorCode::InvalidTtl,
        ErrorCode::Unavailable,
        ErrorCode::InternalServerError,
        ErrorCode::DeviceMessageRateExceeded,
        ErrorCode::TopicsMessageRateExceeded,
        ErrorCode::InvalidApnsCredential,
        ErrorCode::InvalidParameters,
        ErrorCode::QuotaExceeded,
        ErrorCode::DeviceQuotaExceeded,
        ErrorCode::MissingCollapseKey,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::MissingRegistration => "MissingRegistration",
            ErrorCode::InvalidRegistration => "InvalidRegistration",
            ErrorCode::NotRegistered => "NotRegistered",
            ErrorCode::InvalidPackageName => "InvalidPackageName",
            ErrorCode::MismatchSenderId => "MismatchSenderId",
            ErrorCode::MessageTooBig => "MessageTooBig",
            ErrorCode::InvalidDataKey => "InvalidDataKey",
            ErrorCode::InvalidTtl => "InvalidTtl",
            ErrorCode::Unavailable => "Unavailable",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::DeviceMessageRateExceeded => "DeviceMessageRateExceeded",
            ErrorCode::TopicsMessageRateExceeded => "TopicsMessageRateExceeded",
            ErrorCode::InvalidApnsCredential => "InvalidApnsCredential",
            ErrorCode::InvalidParameters => "InvalidParameters",
            ErrorCode::QuotaExceeded => "QuotaExceeded",
            ErrorCode::DeviceQuotaExceeded => "DeviceQuotaExceeded",
            ErrorCode::MissingCollapseKey => "MissingCollapseKey",
            ErrorCode::Other(s) => s,
        }
    }

    /// Reads a wire code; never fails (unknown codes become [`ErrorCode::Other`]).
    pub fn parse(code: &str) -> ErrorCode {
        ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .cloned()
            .unwrap_or_else(|| ErrorCode::Other(code.to_string()))
    }

    /// Maps the code to the shared outcome. `retry_after` is the wait the server asked for
    /// (the response's `Retry-After`), kept on retriable outcomes.
    ///
    /// A code is the answer for one token (a JSON result, or a plain-text request that
    /// carries one token), so a temporary failure concerns that token; the limits say whose
    /// they are: the device's, the topic's (the message's target) or, for `QuotaExceeded`,
    /// the whole sender's.
    pub fn outcome(&self, retry_after: Option<Duration>) -> Outcome {
        let reason = self.as_str().to_string();
        let after = retry_after;
        match self {
            ErrorCode::InvalidRegistration
            | ErrorCode::NotRegistered
            | ErrorCode::MismatchSenderId
            | ErrorCode::InvalidPackageName => Outcome::TokenDead { reason },
            ErrorCode::Unavailable | ErrorCode::InternalServerError => Outcome::RetryLater {
                reason,
                after,
                scope: FailureScope::Token,
            },
            ErrorCode::QuotaExceeded => Outcome::RetryLater {
                reason,
                after,
                scope: FailureScope::Channel,
            },
            ErrorCode::DeviceMessageRateExceeded | ErrorCode::DeviceQuotaExceeded => {
                Outcome::Throttled {
                    reason,
                    after,
                    scope: FailureScope::Token,
                }
            }
            ErrorCode::TopicsMessageRateExceeded => Outcome::Throttled {
                reason,
                after,
                scope: FailureScope::Message,
            },
            ErrorCode::InvalidApnsCredential => Outcome::AuthFailed { reason },
            ErrorCode::MissingRegistration
            | ErrorCode::MessageTooBig
            | ErrorCode::InvalidDataKey
            | ErrorCode::InvalidTtl
            | ErrorCode::InvalidParameters
            | ErrorCode::MissingCollapseKey
            | ErrorCode::Other(_) => Outcome::MessageRejected { reason },
        }
    }

    /// True for the codes a sender should retry for the same token (with backoff).
    pub fn is_retriable(&self) -> bool {
        self.outcome(None).is_retriable()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutcomeKind;
    use proptest::prelude::*;

    #[test]
    fn table_of_protocols_md() {
        use OutcomeKind::*;
        let expected = [
            ("MissingRegistration", MessageRejected),
            ("InvalidRegistration", TokenDead),
            ("NotRegistered", TokenDead),
            ("InvalidPackageName", TokenDead),
            ("MismatchSenderId", TokenDead),
            ("MessageTooBig", MessageRejected),
            ("InvalidDataKey", MessageRejected),
            ("InvalidTtl", MessageRejected),
            ("Unavailable", RetryLater),
            ("InternalServerError", RetryLater),
            ("DeviceMessageRateExceeded", Throttled),
            ("TopicsMessageRateExceeded", Throttled),
            ("InvalidApnsCredential", AuthFailed),
            ("InvalidParameters", MessageRejected),
            ("QuotaExceeded", RetryLater),
            ("DeviceQuotaExceeded", Throttled),
            ("MissingCollapseKey", MessageRejected),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for (code, kind) in expected {
            let parsed = ErrorCode::parse(code);
            assert!(!matches!(parsed, ErrorCode::Other(_)), "{code} is named");
            assert_eq!(parsed.outcome(None).kind(), kind, "{code}");
            assert_eq!(parsed.as_str(), code);
        }
    }

    #[test]
    fn each_code_concerns_the_token_the_message_or_the_sender() {
        use FailureScope::*;
        let expected = [
            // About the registration id itself.
            ("InvalidRegistration", Token),
            ("NotRegistered", Token),
            ("InvalidPackageName", Token),
            ("MismatchSenderId", Token),
            // The server failed this one recipient; the others may have been delivered.
            ("Unavailable", Token),
            ("InternalServerError", Token),
            // Per-device limits.
            ("DeviceMessageRateExceeded", Token),
            ("DeviceQuotaExceeded", Token),
            // The topic is the message's target, whoever else it goes to.
            ("TopicsMessageRateExceeded", Message),
            // Wrong whatever the recipient.
            ("MissingRegistration", Message),
            ("MessageTooBig", Message),
            ("InvalidDataKey", Message),
            ("InvalidTtl", Message),
            ("InvalidParameters", Message),
            ("MissingCollapseKey", Message),
            // The sender's own quota and credentials.
            ("QuotaExceeded", Channel),
            ("InvalidApnsCredential", Channel),
        ];
        assert_eq!(expected.len(), ErrorCode::ALL.len());
        for (code, scope) in expected {
            assert_eq!(
                ErrorCode::parse(code).outcome(None).scope(),
                Some(scope),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_is_kept_only_on_retriable_outcomes() {
        let wait = Some(Duration::from_secs(7));
        assert_eq!(ErrorCode::Unavailable.outcome(wait).retry_after(), wait);
        assert_eq!(ErrorCode::NotRegistered.outcome(wait).retry_after(), None);
    }

    proptest! {
        // The classification is total: any string maps, named codes round-trip, and
        // unknown ones are never retried.
        #[test]
        fn classification_is_total(code in "\\PC{0,40}") {
            let parsed = ErrorCode::parse(&code);
            prop_assert_eq!(parsed.as_str(), code.as_str());
            let outcome = parsed.outcome(None);
            prop_assert!(!outcome.is_success());
            prop_assert_eq!(outcome.reason(), Some(code.as_str()));
            if let ErrorCode::Other(_) = parsed {
                prop_assert_eq!(outcome.kind(), OutcomeKind::MessageRejected);
            }
        }
    }
}
