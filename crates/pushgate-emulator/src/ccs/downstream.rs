//! One downstream message, checked like a legacy JSON send and answered with exactly one ack
//! or nack (docs/protocols.md, "CCS: downstream messages", "CCS: acks and nacks").
//!
//! The type checks are the legacy JSON parser's, the per-recipient checks (token states,
//! sender mismatch, rate limit, faults) are the legacy [`Sender`]'s, and delivery goes into
//! the same inboxes with `via: "ccs"`. Only the answer's shape differs.

use std::sync::Arc;
use std::time::Duration;

use pushgate_proto::ccs::{Ack, Nack, NackCode, ServerMessage};
use pushgate_proto::legacy::ErrorCode;
use pushgate_proto::legacy::limits::{
    MAX_DATA_BYTES, MAX_TOPIC_DATA_BYTES, MAX_TTL_SECONDS, TOPIC_PREFIX, data_payload_bytes,
};
use serde_json::{Map, Value};

use crate::devices::Via;
use crate::legacy::json::{self, BadRequest, JsonTarget, Ttl};
use crate::legacy::json_payload;
use crate::legacy::send::{RecipientOutcome, Sender, message_error};
use crate::state::Inner;
use crate::topics::TopicTarget;

/// Path the CCS part uses for faults (`POST /emulator/faults` with `"path": "/ccs"`).
pub(crate) const FAULT_PATH: &str = "/ccs";

/// A delivery receipt to send once the ack is out.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptSpec {
    /// The downstream message id.
    pub original_message_id: String,
    /// The token the message was delivered to.
    pub token: String,
    /// The device's package (`category`).
    pub category: String,
}

/// The answer to one downstream message.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Ack or nack JSON.
    pub json: String,
    /// The nack code, if it is a nack.
    pub nack: Option<String>,
    /// A receipt to send after the ack.
    pub receipt: Option<ReceiptSpec>,
    /// Extra delay asked for by a fault.
    pub delay: Option<Duration>,
}

/// A nack answer with no side effect.
pub(crate) fn nack(
    message_id: &str,
    from: Option<&str>,
    code: NackCode,
    description: impl Into<String>,
) -> Answer {
    let json = ServerMessage::Nack(Nack {
        from: from.map(str::to_string),
        message_id: message_id.to_string(),
        error: code.clone(),
        error_description: Some(description.into()),
    })
    .to_json();
    Answer {
        json,
        nack: Some(code.as_str().to_string()),
        receipt: None,
        delay: None,
    }
}

fn ack(message_id: &str, from: &str, registration_id: Option<&str>) -> Answer {
    let json = ServerMessage::Ack(Ack {
        from: Some(from.to_string()),
        message_id: message_id.to_string(),
        registration_id: registration_id.map(str::to_string),
    })
    .to_json();
    Answer {
        json,
        nack: None,
        receipt: None,
        delay: None,
    }
}

/// The stanza-error text for JSON that does not parse, in CCS's form
/// (`InvalidJson: JSON_PARSING_ERROR : …\n`, docs/protocols.md, "CCS: stanza errors"), computed by
/// the legacy parser.
pub(crate) fn parsing_error_text(body: &str) -> String {
    let legacy = match json::parse(body.as_bytes()) {
        Err(BadRequest::Text(t)) => t,
        _ => "JSON_PARSING_ERROR: Unexpected character at position 0.\n".to_string(),
    };
    let detail = legacy
        .strip_prefix("JSON_PARSING_ERROR: ")
        .unwrap_or(&legacy)
        .trim_end();
    format!("InvalidJson: JSON_PARSING_ERROR : {detail}\n")
}

/// The nack code and description for a legacy per-recipient code (the CCS twins in
/// docs/protocols.md, "Legacy HTTP: per-recipient error codes").
fn nack_for(code: &ErrorCode, to: &str, data_bytes: usize, limit: usize) -> (NackCode, String) {
    match code {
        ErrorCode::InvalidRegistration | ErrorCode::InvalidPackageName => (
            NackCode::BadRegistration,
            format!("Invalid token on 'to' field: {to}"),
        ),
        ErrorCode::MismatchSenderId => (
            NackCode::BadRegistration,
            format!("Mismatched sender ID for 'to' field: {to}"),
        ),
        ErrorCode::NotRegistered => (
            NackCode::DeviceUnregistered,
            "Device unregistered: the registration token is no longer valid".to_string(),
        ),
        ErrorCode::MissingRegistration => (
            NackCode::InvalidJson,
            "InvalidJson: MISSING_REGISTRATION : Missing \"to\" field".to_string(),
        ),
        ErrorCode::MessageTooBig => (
            NackCode::InvalidJson,
            format!(
                "InvalidJson: MESSAGE_TOO_BIG : Message data is {data_bytes} bytes, the limit is {limit}"
            ),
        ),
        ErrorCode::InvalidDataKey => (
            NackCode::InvalidJson,
            "InvalidJson: INVALID_DATA_KEY : data holds a reserved key (from, message_type, google*, gcm*)"
                .to_string(),
        ),
        ErrorCode::InvalidTtl => (
            NackCode::InvalidJson,
            format!(
                "InvalidJson: INVALID_TTL : Invalid value for \"time_to_live\": must be between 0 and \"{MAX_TTL_SECONDS}\""
            ),
        ),
        ErrorCode::InvalidParameters => (
            NackCode::InvalidJson,
            "InvalidJson: INVALID_PARAMETERS : Invalid parameter value".to_string(),
        ),
        ErrorCode::Unavailable => (
            NackCode::ServiceUnavailable,
            "Service temporarily unavailable, retry with exponential backoff".to_string(),
        ),
        ErrorCode::InternalServerError => (
            NackCode::InternalServerError,
            "Internal server error".to_string(),
        ),
        ErrorCode::DeviceMessageRateExceeded | ErrorCode::DeviceQuotaExceeded => (
            NackCode::DeviceMessageRateExceeded,
            "Downstream message rate exceeded for this registration id".to_string(),
        ),
        ErrorCode::TopicsMessageRateExceeded => (
            NackCode::TopicsMessageRateExceeded,
            "Downstream message rate exceeded for this topic".to_string(),
        ),
        ErrorCode::QuotaExceeded => (
            NackCode::QuotaExceeded,
            "Quota exceeded".to_string(),
        ),
        // A fault may name a CCS code directly (`"error": "SERVICE_UNAVAILABLE"`).
        other => (
            NackCode::parse(other.as_str()),
            format!("Injected error {}", other.as_str()),
        ),
    }
}

/// The type-error nack for a field the legacy parser refused.
fn type_error(message_id: &str, to: Option<&str>, bad: BadRequest) -> Answer {
    let detail = match bad {
        BadRequest::Text(t) => format!("InvalidJson: JSON_TYPE_ERROR : {}", t.trim_end()),
        BadRequest::InvalidParameters => {
            "InvalidJson: INVALID_PARAMETERS : Invalid parameter value".to_string()
        }
    };
    nack(message_id, to, NackCode::InvalidJson, detail)
}

/// Checks and delivers one downstream message (`message_id` already taken out of `object`).
pub(crate) fn process(
    state: &Inner,
    sender_id: &Arc<str>,
    mut object: Map<String, Value>,
    message_id: &str,
) -> Answer {
    let to = object.get("to").and_then(Value::as_str).map(str::to_string);
    let to_ref = to.as_deref();
    let receipt_requested = match object.remove("delivery_receipt_requested") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            let text = format!(
                "Field \"delivery_receipt_requested\" must be a JSON java.lang.Boolean: {other}"
            );
            return type_error(message_id, to_ref, BadRequest::Text(text));
        }
    };
    if object.contains_key("registration_ids") {
        return nack(
            message_id,
            to_ref,
            NackCode::InvalidJson,
            "InvalidJson: JSON_TYPE_ERROR : Field \"registration_ids\" is not supported on CCS; use \"to\"",
        );
    }
    // CCS samples send the TTL as a numeric string ("600"); it was accepted.
    if let Some(Value::String(s)) = object.get("time_to_live")
        && let Ok(n) = s.trim().parse::<i64>()
    {
        object.insert("time_to_live".into(), Value::from(n));
    }
    let mut send = match json::parse_object(object) {
        Ok(send) => send,
        Err(bad) => return type_error(message_id, to_ref, bad),
    };
    let limit = match send.target {
        JsonTarget::Topic(_) | JsonTarget::Condition(_) => MAX_TOPIC_DATA_BYTES,
        _ => MAX_DATA_BYTES,
    };
    let data_bytes = send.data.as_ref().map_or(0, data_payload_bytes);
    let ttl_ok = send.time_to_live != Ttl::Invalid;
    let error = match &send.data {
        Some(data) => message_error(data.keys().map(String::as_str), data_bytes, limit, ttl_ok),
        None => message_error(std::iter::empty(), 0, limit, ttl_ok),
    };
    let payload = Arc::new(json_payload(sender_id, &mut send));
    let target = std::mem::replace(&mut send.target, JsonTarget::Missing);
    let mut sender = Sender::new(
        state,
        sender_id,
        FAULT_PATH,
        Via::Ccs,
        payload,
        error,
        send.restricted_package_name.as_deref(),
        send.dry_run,
    );
    let mut answer = match target {
        JsonTarget::Missing | JsonTarget::Tokens(_) => {
            let (code, text) = nack_for(&ErrorCode::MissingRegistration, "", 0, limit);
            nack(message_id, to_ref, code, text)
        }
        JsonTarget::To(token) => match sender.send(&token) {
            RecipientOutcome::Delivered { canonical, .. } => {
                let mut answer = ack(message_id, &token, canonical.as_deref());
                if receipt_requested && !send.dry_run {
                    answer.receipt = state.devices.lookup(&token).map(|(_, device)| ReceiptSpec {
                        original_message_id: message_id.to_string(),
                        token: token.clone(),
                        category: device.package.to_string(),
                    });
                }
                answer
            }
            RecipientOutcome::Failed(code) => {
                let (code, text) = nack_for(&code, &token, data_bytes, limit);
                nack(message_id, Some(&token), code, text)
            }
        },
        JsonTarget::Topic(name) => {
            let recipient = format!("{TOPIC_PREFIX}{name}");
            let target = TopicTarget::Topic(&name);
            topic_answer(
                &mut sender,
                message_id,
                &recipient,
                &target,
                data_bytes,
                limit,
            )
        }
        JsonTarget::Condition(condition) => {
            let target = TopicTarget::Condition(&condition);
            topic_answer(
                &mut sender,
                message_id,
                &condition,
                &target,
                data_bytes,
                limit,
            )
        }
    };
    state.stats.delivered(sender.delivered);
    answer.delay = sender.delay;
    answer
}

/// Topics and conditions: faults and message checks, then fan-out to the subscribers.
fn topic_answer(
    sender: &mut Sender<'_>,
    message_id: &str,
    recipient: &str,
    target: &TopicTarget<'_>,
    data_bytes: usize,
    limit: usize,
) -> Answer {
    match sender
        .injected(recipient)
        .or_else(|| sender.message_error().cloned())
    {
        Some(code) => {
            let (code, text) = nack_for(&code, recipient, data_bytes, limit);
            nack(message_id, Some(recipient), code, text)
        }
        None => {
            sender.fan_out(target);
            ack(message_id, recipient, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_error_texts_follow_ccs() {
        assert_eq!(
            parsing_error_text(r#"{"to": x}"#),
            "InvalidJson: JSON_PARSING_ERROR : Unexpected character (x) at position 7.\n"
        );
        assert_eq!(
            parsing_error_text(""),
            "InvalidJson: JSON_PARSING_ERROR : Unexpected token END OF FILE at position 0.\n"
        );
    }

    #[test]
    fn legacy_codes_map_to_their_xmpp_twins() {
        let (c, _) = nack_for(&ErrorCode::NotRegistered, "t", 0, 4096);
        assert_eq!(c, NackCode::DeviceUnregistered);
        let (c, d) = nack_for(&ErrorCode::InvalidRegistration, "t", 0, 4096);
        assert_eq!(c, NackCode::BadRegistration);
        assert_eq!(d, "Invalid token on 'to' field: t");
        let (c, _) = nack_for(&ErrorCode::Other("CONNECTION_DRAINING".into()), "t", 0, 1);
        assert_eq!(c, NackCode::ConnectionDraining);
    }
}
