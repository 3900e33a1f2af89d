//! Reading control request bodies: [`Fields`] field by field for hand-checked routes
//! (unknown fields refused, every error naming its field), [`json_body`] for fixed shapes.

use pushgate_proto::RetryAfter;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ControlError;

/// A body read whole as `T` (for routes whose body is a fixed serde shape); a bad body is a
/// 400 reading `{context}: {what serde saw}`.
pub(super) fn json_body<T: DeserializeOwned>(
    body: &[u8],
    context: &str,
) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(format!("{context}: {e}")))
}

/// The fields of a control request body, read one by one with errors that name them.
pub(super) struct Fields(Map<String, Value>);

impl Fields {
    /// Parses `body` (empty means `{}`) and rejects fields not in `allowed`.
    pub(super) fn parse(body: &[u8], allowed: &[&str]) -> Result<Self, ControlError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ControlError::BadRequest(format!("body: not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ControlError::BadRequest(
                "body: must be a JSON object".into(),
            ));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ControlError::BadRequest(format!(
                "{unknown}: unknown field (expected one of {})",
                allowed.join(", ")
            )));
        }
        Ok(Self(map))
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    /// A string, if given.
    pub(super) fn string(&mut self, name: &str) -> Result<Option<String>, ControlError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ControlError::BadRequest(format!(
                "{name}: must be a string, got {other}"
            ))),
        }
    }

    /// A non-empty string that must be given.
    pub(super) fn required_string(&mut self, name: &str) -> Result<String, ControlError> {
        match self.string(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ControlError::BadRequest(format!(
                "{name}: required, a non-empty string"
            ))),
        }
    }

    /// A list of strings.
    pub(super) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, ControlError> {
        let not_strings = |got: &Value| {
            ControlError::BadRequest(format!("{name}: must be an array of strings, got {got}"))
        };
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    other => Err(not_strings(&other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(not_strings(&other)),
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn integer(
        &mut self,
        name: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ControlError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ControlError::BadRequest(format!(
                    "{name}: must be an integer between {min} and {max}, got {n}"
                ))),
            },
            Some(other) => Err(ControlError::BadRequest(format!(
                "{name}: must be an integer between {min} and {max}, got {other}"
            ))),
        }
    }

    /// A `Retry-After` value: delta-seconds (string or number) or an HTTP-date string.
    pub(super) fn retry_after(&mut self, name: &str) -> Result<Option<String>, ControlError> {
        let raw = match self.take(name) {
            None => return Ok(None),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(other) => {
                return Err(ControlError::BadRequest(format!(
                    "{name}: must be delta-seconds or an HTTP-date string, got {other}"
                )));
            }
        };
        match RetryAfter::parse(&raw) {
            Some(_) => Ok(Some(raw)),
            None => Err(ControlError::BadRequest(format!(
                "{name}: {raw:?} is neither delta-seconds nor an HTTP-date"
            ))),
        }
    }
}
