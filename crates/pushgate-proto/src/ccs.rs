//! The JSON carried inside CCS `<gcm>` elements (docs/protocols.md, "CCS (XMPP)", from
//! "CCS: downstream messages" on): downstream messages,
//! the acks and nacks CCS answers with, upstream messages, delivery receipts and control
//! messages, plus the NACK code → [`Outcome`] table.
//!
//! Both ends use these shapes: the CCS client to build downstream messages and read what CCS
//! sends, the emulator to write acks, nacks, receipts and upstream messages exactly as CCS did.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::legacy::{JsonRequest, MessageOptions, Notification, Priority};
use crate::{FailureScope, Outcome, ValidationError};

/// Pending downstream messages (sent, not yet acked or nacked) CCS allows per connection
/// (2014+ docs; the 2013 doc said 1000).
pub const MAX_PENDING: usize = 100;
/// Prefix of a delivery receipt's `message_id`: `dr2:<original message id>`.
pub const RECEIPT_PREFIX: &str = "dr2:";
/// `from` of delivery receipts (and the CCS domain).
pub const CCS_FROM: &str = "gcm.googleapis.com";
/// `data.message_status` of a delivery receipt.
pub const MESSAGE_SENT_TO_DEVICE: &str = "MESSAGE_SENT_TO_DEVICE";
/// The only control type CCS ever sent.
pub const CONNECTION_DRAINING: &str = "CONNECTION_DRAINING";

/// A downstream message (app server → CCS): the legacy JSON fields minus `registration_ids`,
/// plus the required `message_id` and `delivery_receipt_requested` (docs/protocols.md,
/// "CCS: downstream messages").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownstreamMessage {
    /// One token, a notification key or `/topics/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Condition over topics (FCM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Unique per sender; the ack or nack carries it back.
    pub message_id: String,
    /// Only the newest pending message with this key is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_key: Option<String>,
    /// `normal` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// iOS `content-available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_available: Option<bool>,
    /// iOS 10+ `mutable-content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutable_content: Option<bool>,
    /// Hold until the device is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_while_idle: Option<bool>,
    /// Seconds the message may wait, 0..=2419200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u32>,
    /// Ask CCS for a delivery receipt (docs/protocols.md, "CCS: delivery receipts").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_receipt_requested: Option<bool>,
    /// Validate without delivering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Custom key/value payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Display notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
}

impl DownstreamMessage {
    /// Checks what CCS checks: a `message_id`, exactly one target, TTL range, reserved data
    /// keys and the data size (the legacy rules, docs/protocols.md, "CCS: downstream messages").
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.message_id.is_empty() {
            return Err(ValidationError::new("message_id", "required, non-empty"));
        }
        let legacy = JsonRequest {
            to: self.to.clone(),
            registration_ids: None,
            condition: self.condition.clone(),
            notification_key: None,
            options: MessageOptions {
                collapse_key: None,
                priority: None,
                content_available: None,
                mutable_content: None,
                delay_while_idle: None,
                time_to_live: self.time_to_live,
                restricted_package_name: None,
                dry_run: None,
            },
            data: self.data.clone(),
            notification: None,
        };
        legacy.validate()
    }

    /// The JSON text to put inside `<gcm>`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A NACK `error` code (docs/protocols.md, "CCS: acks and nacks"). Unknown codes are kept in
/// [`NackCode::Other`] and, as the CCS
/// docs say, treated like `INTERNAL_SERVER_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NackCode {
    /// The app server's ack was malformed.
    BadAck,
    /// Token invalid or of another sender.
    BadRegistration,
    /// The connection is draining: resend at once on another connection.
    ConnectionDraining,
    /// The device is not registered any more.
    DeviceUnregistered,
    /// Server error: retry with backoff.
    InternalServerError,
    /// Bad payload (missing or mistyped fields, TTL, size, data key).
    InvalidJson,
    /// Too many messages to this device.
    DeviceMessageRateExceeded,
    /// Too many messages to this topic (FCM).
    TopicsMessageRateExceeded,
    /// CCS cannot process now: retry with backoff.
    ServiceUnavailable,
    /// Legacy name of the rate error.
    QuotaExceeded,
    /// Anything else.
    Other(String),
}

impl NackCode {
    /// Every named code, for exhaustive tests and emulators.
    pub const ALL: [NackCode; 10] = [
        NackCode::BadAck,
        NackCode::BadRegistration,
        NackCode::ConnectionDraining,
        NackCode::DeviceUnregistered,
        NackCode::InternalServerError,
        NackCode::InvalidJson,
        NackCode::DeviceMessageRateExceeded,
        NackCode::TopicsMessageRateExceeded,
        NackCode::ServiceUnavailable,
        NackCode::QuotaExceeded,
    ];

    /// The code on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            NackCode::BadAck => "BAD_ACK",
            NackCode::BadRegistration => "BAD_REGISTRATION",
            NackCode::ConnectionDraining => "CONNECTION_DRAINING",
            NackCode::DeviceUnregistered => "DEVICE_UNREGISTERED",
            NackCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            NackCode::InvalidJson => "INVALID_JSON",
            NackCode::DeviceMessageRateExceeded => "DEVICE_MESSAGE_RATE_EXCEEDED",
            NackCode::TopicsMessageRateExceeded => "TOPICS_MESSAGE_RATE_EXCEEDED",
            NackCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            NackCode::QuotaExceeded => "QUOTA_EXCEEDED",
            NackCode::Other(s) => s,
        }
    }

    /// Reads a wire code; never fails.
    pub fn parse(code: &str) -> NackCode {
        NackCode::ALL
            .iter()
            .find(|c| c.as_str() == code)
            .cloned()
            .unwrap_or_else(|| NackCode::Other(code.to_string()))
    }

    /// The shared outcome (docs/protocols.md, "CCS: acks and nacks", "CCS: outcomes").
    ///
    /// A nack answers one message to one token, so a temporary failure concerns that token;
    /// `CONNECTION_DRAINING` concerns the connection (the channel's), and the limits are the
    /// device's, the topic's (the message's target) or the sender's (`QUOTA_EXCEEDED`).
    pub fn outcome(&self) -> Outcome {
        let reason = self.as_str().to_string();
        let throttled = |scope| Outcome::Throttled {
            reason: reason.clone(),
            after: None,
            scope,
        };
        let retry = |scope| Outcome::RetryLater {
            reason: reason.clone(),
            after: None,
            scope,
        };
        match self {
            NackCode::DeviceUnregistered | NackCode::BadRegistration => Outcome::TokenDead {
                reason: reason.clone(),
            },
            NackCode::DeviceMessageRateExceeded => throttled(FailureScope::Token),
            NackCode::TopicsMessageRateExceeded => throttled(FailureScope::Message),
            NackCode::QuotaExceeded => throttled(FailureScope::Channel),
            NackCode::InvalidJson | NackCode::BadAck => Outcome::MessageRejected {
                reason: reason.clone(),
            },
            NackCode::ConnectionDraining => retry(FailureScope::Channel),
            NackCode::ServiceUnavailable | NackCode::InternalServerError | NackCode::Other(_) => {
                retry(FailureScope::Token)
            }
        }
    }
}

impl fmt::Display for NackCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CCS's positive answer to one downstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The target token the message went to.
    pub from: Option<String>,
    /// The downstream `message_id`.
    pub message_id: String,
    /// The device's canonical token when `from` is an old one.
    pub registration_id: Option<String>,
}

impl Ack {
    /// `Delivered`, or `Rotated` when CCS gave a canonical `registration_id`.
    pub fn outcome(&self) -> Outcome {
        match &self.registration_id {
            Some(new_token) => Outcome::Rotated {
                message_id: self.message_id.clone(),
                new_token: new_token.clone(),
            },
            None => Outcome::Delivered {
                message_id: self.message_id.clone(),
            },
        }
    }
}

/// CCS's negative answer to one downstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// The target token, if the message named one.
    pub from: Option<String>,
    /// The downstream `message_id`.
    pub message_id: String,
    /// The code.
    pub error: NackCode,
    /// The human-readable detail.
    pub error_description: Option<String>,
}

impl Nack {
    /// The outcome of the nacked message (see [`NackCode::outcome`]).
    pub fn outcome(&self) -> Outcome {
        self.error.outcome()
    }
}

/// A message a device sent to the app server (docs/protocols.md, "CCS: upstream messages"); the app
/// server must ack it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamMessage {
    /// The app's package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The device's payload.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// Id to ack.
    pub message_id: String,
    /// The device token.
    pub from: String,
    /// Device-side TTL, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u64>,
}

/// The `data` of a delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptData {
    /// `MESSAGE_SENT_TO_DEVICE`.
    pub message_status: String,
    /// The downstream message's id.
    pub original_message_id: String,
    /// The token the message was delivered to.
    pub device_registration_id: String,
    /// Epoch milliseconds of the delivery, when given (UNCONFIRMED field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_sent_timestamp: Option<String>,
}

/// A delivery receipt (docs/protocols.md, "CCS: delivery receipts"); the app server must ack it
/// with its `dr2:` id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The app's package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// What was delivered where.
    pub data: ReceiptData,
    /// `dr2:<original message id>`.
    pub message_id: String,
    /// `gcm.googleapis.com`.
    pub from: String,
}

/// Everything CCS sends inside `<gcm>`, classified by `message_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// `message_type: ack`.
    Ack(Ack),
    /// `message_type: nack`.
    Nack(Nack),
    /// `message_type: receipt`.
    Receipt(Receipt),
    /// `message_type: control` (`control_type` = `CONNECTION_DRAINING`).
    Control {
        /// The control type.
        control_type: String,
    },
    /// No `message_type`: an upstream message.
    Upstream(UpstreamMessage),
    /// A `message_type` this crate does not know (clients may ignore it, docs/protocols.md,
    /// "CCS: message framing").
    Unknown {
        /// The unknown type.
        message_type: String,
    },
}

/// Why a CCS JSON payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CcsJsonError {
    /// Not JSON, or a field of the wrong type.
    #[error("invalid CCS JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field is absent or not a string.
    #[error("CCS JSON lacks the string field {0:?}")]
    Missing(&'static str),
}

#[derive(Serialize)]
struct AckWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    message_id: &'a str,
    message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_id: Option<&'a str>,
}

#[derive(Serialize)]
struct NackWire<'a> {
    message_type: &'static str,
    message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

#[derive(Serialize)]
struct TypedWire<'a, T: Serialize> {
    #[serde(flatten)]
    inner: &'a T,
    message_type: &'a str,
}

fn string_field(map: &Map<String, Value>, name: &'static str) -> Result<String, CcsJsonError> {
    map.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(CcsJsonError::Missing(name))
}

fn opt_string(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name).and_then(Value::as_str).map(str::to_string)
}

impl ServerMessage {
    /// Reads the JSON text of a `<gcm>` element CCS sent.
    pub fn parse(json: &str) -> Result<ServerMessage, CcsJsonError> {
        let value: Value = serde_json::from_str(json)?;
        let Value::Object(map) = value else {
            return Err(CcsJsonError::Missing("message_id"));
        };
        let kind = map.get("message_type").and_then(Value::as_str);
        Ok(match kind {
            Some("ack") => ServerMessage::Ack(Ack {
                from: opt_string(&map, "from"),
                message_id: string_field(&map, "message_id")?,
                registration_id: opt_string(&map, "registration_id"),
            }),
            Some("nack") => ServerMessage::Nack(Nack {
                from: opt_string(&map, "from"),
                message_id: string_field(&map, "message_id")?,
                error: NackCode::parse(
                    map.get("error").and_then(Value::as_str).unwrap_or_default(),
                ),
                error_description: opt_string(&map, "error_description"),
            }),
            Some("control") => ServerMessage::Control {
                control_type: string_field(&map, "control_type")?,
            },
            Some("receipt") => ServerMessage::Receipt(serde_json::from_value(Value::Object(map))?),
            None => ServerMessage::Upstream(serde_json::from_value(Value::Object(map))?),
            Some(other) => ServerMessage::Unknown {
                message_type: other.to_string(),
            },
        })
    }

    /// The JSON text CCS writes for this message (acks as in the samples of docs/protocols.md,
    /// "CCS: acks and nacks").
    pub fn to_json(&self) -> String {
        let text = match self {
            ServerMessage::Ack(a) => serde_json::to_string(&AckWire {
                from: a.from.as_deref(),
                message_id: &a.message_id,
                message_type: "ack",
                registration_id: a.registration_id.as_deref(),
            }),
            ServerMessage::Nack(n) => serde_json::to_string(&NackWire {
                message_type: "nack",
                message_id: &n.message_id,
                from: n.from.as_deref(),
                error: n.error.as_str(),
                error_description: n.error_description.as_deref(),
            }),
            ServerMessage::Receipt(r) => serde_json::to_string(&TypedWire {
                inner: r,
                message_type: "receipt",
            }),
            ServerMessage::Control { control_type } => serde_json::to_string(&serde_json::json!({
                "message_type": "control",
                "control_type": control_type,
            })),
            ServerMessage::Upstream(u) => serde_json::to_string(u),
            ServerMessage::Unknown { message_type } => {
                serde_json::to_string(&serde_json::json!({ "message_type": message_type }))
            }
        };
        text.unwrap_or_default()
    }

    /// The `message_id`, for every kind that has one.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            ServerMessage::Ack(a) => Some(&a.message_id),
            ServerMessage::Nack(n) => Some(&n.message_id),
            ServerMessage::Receipt(r) => Some(&r.message_id),
            ServerMessage::Upstream(u) => Some(&u.message_id),
            ServerMessage::Control { .. } | ServerMessage::Unknown { .. } => None,
        }
    }

    /// The outcome of the downstream message this answers, for acks and nacks.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            ServerMessage::Ack(a) => Some(a.outcome()),
            ServerMessage::Nack(n) => Some(n.outcome()),
            _ => None,
        }
    }
}

/// The ack an app server sends for an upstream message or a receipt (docs/protocols.md,
/// "CCS: upstream messages"):
/// `{"to":FROM,"message_id":ID,"message_type":"ack"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAck {
    /// The `from` of the acked message (a token, or `gcm.googleapis.com` for receipts).
    pub to: String,
    /// The acked `message_id`.
    pub message_id: String,
}

#[derive(Serialize)]
struct AppAckWire<'a> {
    to: &'a str,
    message_id: &'a str,
    message_type: &'static str,
}

impl AppAck {
    /// The JSON text to put inside `<gcm>`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&AppAckWire {
            to: &self.to,
            message_id: &self.message_id,
            message_type: "ack",
        })
        .unwrap_or_default()
    }
}

/// What an app server sends, as CCS sorts it by `message_type`.
#[derive(Debug, Clone, PartialEq)]
pub enum AppMessage {
    /// No `message_type`: a downstream message (the raw object; the server type-checks it).
    Downstream(Map<String, Value>),
    /// `message_type: ack` for an upstream message or receipt; `None` fields are missing.
    Ack {
        /// `to`.
        to: Option<String>,
        /// `message_id`.
        message_id: Option<String>,
    },
    /// `message_type: nack` (app servers must never nack upstream, docs/protocols.md,
    /// "CCS: upstream messages").
    Nack {
        /// `message_id`.
        message_id: Option<String>,
    },
    /// Any other `message_type`.
    Unknown {
        /// The type.
        message_type: String,
    },
}

impl AppMessage {
    /// Sorts a JSON object an app server sent. `None` for anything not an object.
    pub fn classify(value: Value) -> Option<AppMessage> {
        let Value::Object(map) = value else {
            return None;
        };
        let kind = map
            .get("message_type")
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(match kind.as_deref() {
            None => AppMessage::Downstream(map),
            Some("ack") => AppMessage::Ack {
                to: opt_string(&map, "to"),
                message_id: opt_string(&map, "message_id"),
            },
            Some("nack") => AppMessage::Nack {
                message_id: opt_string(&map, "message_id"),
            },
            Some(other) => AppMessage::Unknown {
                message_type: other.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutcomeKind;

    #[test]
    fn nack_table_of_design_md() {
        use OutcomeKind::*;
        let expected = [
            ("DEVICE_UNREGISTERED", TokenDead),
            ("BAD_REGISTRATION", TokenDead),
            ("SERVICE_UNAVAILABLE", RetryLater),
            ("INTERNAL_SERVER_ERROR", RetryLater),
            ("CONNECTION_DRAINING", RetryLater),
            ("DEVICE_MESSAGE_RATE_EXCEEDED", Throttled),
            ("TOPICS_MESSAGE_RATE_EXCEEDED", Throttled),
            ("QUOTA_EXCEEDED", Throttled),
            ("INVALID_JSON", MessageRejected),
            ("BAD_ACK", MessageRejected),
        ];
        assert_eq!(expected.len(), NackCode::ALL.len());
        for (code, kind) in expected {
            let parsed = NackCode::parse(code);
            assert!(!matches!(parsed, NackCode::Other(_)), "{code}");
            assert_eq!(parsed.outcome().kind(), kind, "{code}");
            assert_eq!(parsed.outcome().reason(), Some(code));
        }
        // Unknown codes: like INTERNAL_SERVER_ERROR.
        assert_eq!(NackCode::parse("WHATEVER").outcome().kind(), RetryLater);
    }

    #[test]
    fn each_nack_concerns_the_token_the_message_the_connection_or_the_sender() {
        use FailureScope::*;
        let expected = [
            ("DEVICE_UNREGISTERED", Token),
            ("BAD_REGISTRATION", Token),
            ("DEVICE_MESSAGE_RATE_EXCEEDED", Token),
            // CCS could not take this one message now; others on the connection go on.
            ("SERVICE_UNAVAILABLE", Token),
            ("INTERNAL_SERVER_ERROR", Token),
            ("TOPICS_MESSAGE_RATE_EXCEEDED", Message),
            ("INVALID_JSON", Message),
            ("BAD_ACK", Message),
            // The connection is closing: nothing more goes over it.
            ("CONNECTION_DRAINING", Channel),
            // The sender id's quota.
            ("QUOTA_EXCEEDED", Channel),
        ];
        assert_eq!(expected.len(), NackCode::ALL.len());
        for (code, scope) in expected {
            assert_eq!(
                NackCode::parse(code).outcome().scope(),
                Some(scope),
                "{code}"
            );
        }
        assert_eq!(NackCode::parse("WHATEVER").outcome().scope(), Some(Token));
    }

    #[test]
    fn samples_of_protocols_md() {
        let ack = ServerMessage::parse(
            r#"{"from":"REGID","message_id":"m-1366082849205","message_type":"ack"}"#,
        )
        .unwrap();
        assert_eq!(
            ack.outcome(),
            Some(Outcome::Delivered {
                message_id: "m-1366082849205".into()
            })
        );
        assert_eq!(
            ack.to_json(),
            r#"{"from":"REGID","message_id":"m-1366082849205","message_type":"ack"}"#
        );
        let rotated = ServerMessage::parse(
            r#"{"from":"OLD","message_id":"m","message_type":"ack","registration_id":"NEW"}"#,
        )
        .unwrap();
        assert_eq!(
            rotated.outcome(),
            Some(Outcome::Rotated {
                message_id: "m".into(),
                new_token: "NEW".into()
            })
        );
        let nack = ServerMessage::parse(
            r#"{"message_type":"nack","message_id":"msgId1","from":"SomeInvalidRegistrationId",
 "error":"BAD_REGISTRATION","error_description":"Invalid token on 'to' field: SomeInvalidRegistrationId"}"#,
        )
        .unwrap();
        let ServerMessage::Nack(n) = &nack else {
            panic!("{nack:?}")
        };
        assert_eq!(n.error, NackCode::BadRegistration);
        assert_eq!(nack.outcome().unwrap().kind(), OutcomeKind::TokenDead);
        let receipt = ServerMessage::parse(
            r#"{"category":"com.example.yourapp",
 "data":{"message_status":"MESSAGE_SENT_TO_DEVICE","original_message_id":"m-1366082849205",
         "device_registration_id":"REGISTRATION_ID"},
 "message_id":"dr2:m-1366082849205","message_type":"receipt","from":"gcm.googleapis.com"}"#,
        )
        .unwrap();
        let ServerMessage::Receipt(r) = &receipt else {
            panic!("{receipt:?}")
        };
        assert_eq!(r.data.original_message_id, "m-1366082849205");
        assert_eq!(ServerMessage::parse(&receipt.to_json()).unwrap(), receipt);
        let up = ServerMessage::parse(
            r#"{"category":"com.example.yourapp","data":{"hello":"world"},"message_id":"m-123","from":"REGID"}"#,
        )
        .unwrap();
        assert!(matches!(&up, ServerMessage::Upstream(u) if u.from == "REGID"));
        let control = ServerMessage::parse(
            r#"{"message_type":"control","control_type":"CONNECTION_DRAINING"}"#,
        )
        .unwrap();
        assert_eq!(
            control,
            ServerMessage::Control {
                control_type: CONNECTION_DRAINING.into()
            }
        );
        assert!(ServerMessage::parse("{nope").is_err());
        assert!(ServerMessage::parse(r#"{"message_type":"ack"}"#).is_err());
    }

    #[test]
    fn app_ack_and_classification() {
        let ack = AppAck {
            to: "REGID".into(),
            message_id: "m-123".into(),
        };
        assert_eq!(
            ack.to_json(),
            r#"{"to":"REGID","message_id":"m-123","message_type":"ack"}"#
        );
        let value: Value = serde_json::from_str(&ack.to_json()).unwrap();
        assert_eq!(
            AppMessage::classify(value),
            Some(AppMessage::Ack {
                to: Some("REGID".into()),
                message_id: Some("m-123".into())
            })
        );
        let down: Value = serde_json::from_str(r#"{"to":"x","message_id":"1"}"#).unwrap();
        assert!(matches!(
            AppMessage::classify(down),
            Some(AppMessage::Downstream(_))
        ));
        assert_eq!(AppMessage::classify(Value::Null), None);
    }

    #[test]
    fn downstream_validation() {
        let mut m = DownstreamMessage {
            to: Some("tok".into()),
            message_id: "m1".into(),
            ..Default::default()
        };
        assert!(m.validate().is_ok());
        m.message_id.clear();
        assert_eq!(m.validate().unwrap_err().field, "message_id");
        m.message_id = "m1".into();
        m.time_to_live = Some(2_419_201);
        assert_eq!(m.validate().unwrap_err().field, "time_to_live");
        m.time_to_live = None;
        m.to = None;
        assert!(m.validate().is_err());
    }
}
