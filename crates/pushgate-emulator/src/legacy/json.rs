//! Reading a legacy JSON body the way the service did: its own parse-error and type-error
//! texts (docs/protocols.md, "Legacy HTTP: status codes"), target rules
//! ("Legacy HTTP: request fields"), and nothing copied that can be moved.

use http::StatusCode;
use pushgate_proto::legacy::limits::{
    MAX_REGISTRATION_IDS, MAX_TTL_SECONDS, TOPIC_PREFIX, data_value_as_delivered,
    is_valid_topic_name,
};
use serde_json::{Map, Value};

/// Where a JSON send goes.
#[derive(Debug)]
pub(crate) enum JsonTarget {
    /// No target at all (or an empty one): `MissingRegistration`.
    Missing,
    /// `registration_ids` (1..=1000), multicast shape.
    Tokens(Vec<String>),
    /// `to` (or `notification_key`) with one token, multicast shape.
    To(String),
    /// `to: "/topics/<name>"`; holds the bare name.
    Topic(String),
    /// `condition`.
    Condition(String),
}

impl JsonTarget {
    /// Whether this target names `token` (for faults bound to a token).
    pub(crate) fn names(&self, token: &str) -> bool {
        match self {
            JsonTarget::Tokens(ids) => ids.iter().any(|t| t == token),
            JsonTarget::To(t) => t == token,
            JsonTarget::Topic(name) => token.strip_prefix(TOPIC_PREFIX) == Some(name.as_str()),
            JsonTarget::Missing | JsonTarget::Condition(_) => false,
        }
    }

    /// Recipients the request named (topics and conditions count as one).
    pub(crate) fn recipients(&self) -> usize {
        match self {
            JsonTarget::Tokens(ids) => ids.len(),
            _ => 1,
        }
    }
}

/// `time_to_live` as read: absent, usable, or a number outside 0..=2419200 (a per-recipient
/// `InvalidTtl`, not a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    /// Not given.
    Absent,
    /// In range.
    Valid(u32),
    /// Negative, fractional or too large.
    Invalid,
}

/// A JSON send, type-checked.
#[derive(Debug)]
pub(crate) struct JsonSend {
    pub target: JsonTarget,
    pub collapse_key: Option<String>,
    pub priority: Option<String>,
    pub restricted_package_name: Option<String>,
    pub time_to_live: Ttl,
    pub delay_while_idle: Option<bool>,
    pub content_available: Option<bool>,
    pub mutable_content: Option<bool>,
    pub dry_run: bool,
    pub data: Option<Map<String, Value>>,
    pub notification: Option<Value>,
}

/// A request the service refuses as a whole with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// `text/plain` body, ending in `\n`.
    Text(String),
    /// `{"error":"InvalidParameters"}` (FCM's 400 for a bad parameter value).
    InvalidParameters,
}

impl BadRequest {
    /// The status the service answered with.
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// Parses and type-checks a JSON body.
pub(crate) fn parse(body: &[u8]) -> Result<JsonSend, BadRequest> {
    let value: Value = serde_json::from_slice(body).map_err(|e| parse_error(body, &e))?;
    let Value::Object(object) = value else {
        return Err(not_an_object(body));
    };
    parse_object(object)
}

/// Type-checks an already parsed JSON object (CCS reuses this for its downstream JSON).
pub(crate) fn parse_object(mut object: Map<String, Value>) -> Result<JsonSend, BadRequest> {
    let mut take = |name: &str| object.remove(name).filter(|v| !v.is_null());

    let to = string_field(take("to"), "to")?;
    let registration_ids = take("registration_ids");
    let condition = string_field(take("condition"), "condition")?;
    let notification_key = string_field(take("notification_key"), "notification_key")?;
    let collapse_key = string_field(take("collapse_key"), "collapse_key")?;
    let priority = string_field(take("priority"), "priority")?;
    let restricted_package_name =
        string_field(take("restricted_package_name"), "restricted_package_name")?;
    let time_to_live = ttl_field(take("time_to_live"))?;
    let delay_while_idle = bool_field(take("delay_while_idle"), "delay_while_idle")?;
    let dry_run = bool_field(take("dry_run"), "dry_run")?.unwrap_or(false);
    let content_available = bool_field(take("content_available"), "content_available")?;
    let mutable_content = bool_field(take("mutable_content"), "mutable_content")?;
    let data = match take("data") {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => return Err(type_error("data", "array", &other)),
    };
    let notification = match take("notification") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(other) => return Err(type_error("notification", "object", &other)),
    };
    let registration_ids = match registration_ids {
        None => None,
        Some(Value::Array(items)) => Some(token_list(items)?),
        Some(other) => return Err(type_error("registration_ids", "array", &other)),
    };
    if let Some(p) = &priority
        && p != "normal"
        && p != "high"
    {
        return Err(BadRequest::InvalidParameters);
    }
    let target = target(to, registration_ids, condition, notification_key)?;
    Ok(JsonSend {
        target,
        collapse_key,
        priority,
        restricted_package_name,
        time_to_live,
        delay_while_idle,
        content_available,
        mutable_content,
        dry_run,
        data,
        notification,
    })
}

/// Applies the target rules: exactly one of the fields, at most 1000 ids, valid topic names.
fn target(
    to: Option<String>,
    registration_ids: Option<Vec<String>>,
    condition: Option<String>,
    notification_key: Option<String>,
) -> Result<JsonTarget, BadRequest> {
    let present = [
        ("registration_ids", registration_ids.is_some()),
        ("to", to.is_some()),
        ("condition", condition.is_some()),
        ("notification_key", notification_key.is_some()),
    ];
    let mut given = present.iter().filter(|(_, p)| *p).map(|(n, _)| *n);
    if let (Some(first), Some(second)) = (given.next(), given.next()) {
        return Err(BadRequest::Text(format!(
            "Must use either \"{first}\" field or \"{second}\", not both\n"
        )));
    }
    if let Some(ids) = registration_ids {
        if ids.len() > MAX_REGISTRATION_IDS {
            return Err(BadRequest::Text(format!(
                "Number of messages on bulk ({}) exceeds maximum allowed ({MAX_REGISTRATION_IDS})\n",
                ids.len()
            )));
        }
        return Ok(if ids.is_empty() {
            JsonTarget::Missing
        } else {
            JsonTarget::Tokens(ids)
        });
    }
    if let Some(to) = to.or(notification_key) {
        if to.is_empty() {
            return Ok(JsonTarget::Missing);
        }
        return match to.strip_prefix(TOPIC_PREFIX) {
            Some(name) if is_valid_topic_name(name) => Ok(JsonTarget::Topic(name.to_string())),
            Some(_) => Err(BadRequest::InvalidParameters),
            None => Ok(JsonTarget::To(to)),
        };
    }
    if let Some(condition) = condition {
        if condition.trim().is_empty() {
            return Err(BadRequest::InvalidParameters);
        }
        return Ok(JsonTarget::Condition(condition));
    }
    Ok(JsonTarget::Missing)
}

/// `registration_ids` items, moved out of the array; every item must be a string.
fn token_list(items: Vec<Value>) -> Result<Vec<String>, BadRequest> {
    let mut tokens = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::String(s) => tokens.push(s),
            other => {
                return Err(type_error(
                    &format!("registration_ids[{i}]"),
                    "java.lang.String",
                    &other,
                ));
            }
        }
    }
    Ok(tokens)
}

fn string_field(value: Option<Value>, name: &str) -> Result<Option<String>, BadRequest> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(name, "java.lang.String", &other)),
    }
}

fn bool_field(value: Option<Value>, name: &str) -> Result<Option<bool>, BadRequest> {
    match value {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(type_error(name, "java.lang.Boolean", &other)),
    }
}

fn ttl_field(value: Option<Value>) -> Result<Ttl, BadRequest> {
    let number = match value {
        None => return Ok(Ttl::Absent),
        Some(Value::Number(n)) => n,
        Some(other) => return Err(type_error("time_to_live", "java.lang.Number", &other)),
    };
    let seconds = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(MAX_TTL_SECONDS))
            .map(|f| f as u64)
    });
    Ok(match seconds {
        Some(s) if s <= u64::from(MAX_TTL_SECONDS) => Ttl::Valid(s as u32),
        _ => Ttl::Invalid,
    })
}

/// `Field "<name>" must be a JSON <kind>: <value>` (strings shown without quotes).
fn type_error(name: &str, kind: &str, value: &Value) -> BadRequest {
    BadRequest::Text(format!(
        "Field \"{name}\" must be a JSON {kind}: {}\n",
        data_value_as_delivered(value)
    ))
}

/// `JSON_PARSING_ERROR: ...` with the byte position of the offending character.
fn parse_error(body: &[u8], error: &serde_json::Error) -> BadRequest {
    if error.classify() == serde_json::error::Category::Eof {
        return eof_error(body.len());
    }
    let mut position = byte_position(body, error.line(), error.column());
    // serde_json points inside a bad literal (`nope` at `o`); the service's tokenizer
    // rejected the literal at its first character.
    if error.to_string().starts_with("expected ident") {
        while position > 0 && body[position - 1].is_ascii_alphabetic() {
            position -= 1;
        }
    }
    unexpected_character(body, position)
}

/// A body that is valid JSON but not an object: its first character is unexpected.
fn not_an_object(body: &[u8]) -> BadRequest {
    let position = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    unexpected_character(body, position)
}

fn unexpected_character(body: &[u8], position: usize) -> BadRequest {
    let ch = body
        .get(position..)
        .and_then(|rest| {
            let end = rest.len().min(4);
            (1..=end).find_map(|n| std::str::from_utf8(&rest[..n]).ok())
        })
        .and_then(|s| s.chars().next());
    match ch {
        Some(c) => BadRequest::Text(format!(
            "JSON_PARSING_ERROR: Unexpected character ({c}) at position {position}.\n"
        )),
        None if position >= body.len() => eof_error(body.len()),
        None => BadRequest::Text(format!(
            "JSON_PARSING_ERROR: Unexpected character (\u{fffd}) at position {position}.\n"
        )),
    }
}

fn eof_error(position: usize) -> BadRequest {
    BadRequest::Text(format!(
        "JSON_PARSING_ERROR: Unexpected token END OF FILE at position {position}.\n"
    ))
}

/// The byte offset of serde_json's 1-based (line, column).
fn byte_position(body: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(body.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(BadRequest::Text(t)) => t,
            other => panic!("expected a 400 text for {body:?}, got {other:?}"),
        }
    }

    #[test]
    fn parse_error_positions() {
        assert_eq!(
            text("nope"),
            "JSON_PARSING_ERROR: Unexpected character (n) at position 0.\n"
        );
        assert_eq!(
            text("xyz"),
            "JSON_PARSING_ERROR: Unexpected character (x) at position 0.\n"
        );
        assert_eq!(
            text(r#"{"to": x}"#),
            "JSON_PARSING_ERROR: Unexpected character (x) at position 7.\n"
        );
        assert_eq!(
            text("{\n  \"to\": \"a\",\n  ]"),
            "JSON_PARSING_ERROR: Unexpected character (]) at position 17.\n"
        );
        assert_eq!(
            text(r#"{"registration_ids": ["a""#),
            "JSON_PARSING_ERROR: Unexpected token END OF FILE at position 25.\n"
        );
        assert_eq!(
            text(""),
            "JSON_PARSING_ERROR: Unexpected token END OF FILE at position 0.\n"
        );
        assert_eq!(
            text("[1]"),
            "JSON_PARSING_ERROR: Unexpected character ([) at position 0.\n"
        );
        assert_eq!(
            text("{} x"),
            "JSON_PARSING_ERROR: Unexpected character (x) at position 3.\n"
        );
    }

    #[test]
    fn ttl_range() {
        let ttl = |v: &str| {
            parse(format!(r#"{{"to":"a","time_to_live":{v}}}"#).as_bytes())
                .map(|s| s.time_to_live)
                .unwrap()
        };
        assert_eq!(ttl("0"), Ttl::Valid(0));
        assert_eq!(ttl("2419200"), Ttl::Valid(2_419_200));
        assert_eq!(ttl("60.0"), Ttl::Valid(60));
        assert_eq!(ttl("2419201"), Ttl::Invalid);
        assert_eq!(ttl("-1"), Ttl::Invalid);
        assert_eq!(ttl("1.5"), Ttl::Invalid);
        assert_eq!(ttl("99999999999999999999"), Ttl::Invalid);
    }

    #[test]
    fn nulls_are_absent() {
        let s = parse(br#"{"to":"a","registration_ids":null,"data":null}"#).unwrap();
        assert!(matches!(s.target, JsonTarget::To(ref t) if t == "a"));
        assert!(s.data.is_none());
    }
}
