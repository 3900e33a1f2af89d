//! Instance ID server API and topic subscriptions (docs/protocols.md, "Topics: names",
//! "Topics: limits", "Instance ID").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::legacy::limits::{TOPIC_PREFIX, is_valid_topic_name};

/// Most tokens one batchAdd/batchRemove request may carry.
pub const MAX_BATCH_TOKENS: usize = 1000;
/// Most topics one app instance may be subscribed to.
pub const MAX_TOPICS_PER_INSTANCE: usize = 2000;

/// `iid/v1:batchAdd` and `iid/v1:batchRemove` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// `/topics/<name>`.
    pub to: String,
    /// 1..=1000 tokens.
    pub registration_tokens: Vec<String>,
}

impl BatchRequest {
    /// Builds a request for a topic given with or without the `/topics/` prefix.
    pub fn new(topic: &str, tokens: Vec<String>) -> Self {
        let name = topic.strip_prefix(TOPIC_PREFIX).unwrap_or(topic);
        BatchRequest {
            to: format!("{TOPIC_PREFIX}{name}"),
            registration_tokens: tokens,
        }
    }

    /// The bare topic name, after checking the `/topics/` form.
    pub fn topic(&self) -> Result<&str, ValidationError> {
        match self.to.strip_prefix(TOPIC_PREFIX) {
            Some(name) if is_valid_topic_name(name) => Ok(name),
            _ => Err(ValidationError::new(
                "to",
                format!(
                    "{:?} must be /topics/ followed by [a-zA-Z0-9-_.~%]+",
                    self.to
                ),
            )),
        }
    }

    /// Checks the topic and the 1..=1000 token bound.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.topic()?;
        let n = self.registration_tokens.len();
        if n == 0 || n > MAX_BATCH_TOKENS {
            return Err(ValidationError::new(
                "registration_tokens",
                format!("holds {n} tokens; must hold 1 to {MAX_BATCH_TOKENS}"),
            ));
        }
        if let Some(i) = self.registration_tokens.iter().position(|t| t.is_empty()) {
            return Err(ValidationError::new(
                format!("registration_tokens[{i}]"),
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// One per-token entry of a batch answer: `{}` on success, `{"error": "NOT_FOUND"}` otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// `NOT_FOUND`, `INVALID_ARGUMENT`, `INTERNAL`, `TOO_MANY_TOPICS`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A batch answer: one result per requested token, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Per-token results.
    pub results: Vec<BatchResult>,
}

/// When a topic subscription was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRelation {
    /// `YYYY-MM-DD`.
    #[serde(rename = "addDate")]
    pub add_date: String,
}

/// The relations of an instance (`rel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relations {
    /// Topic name (bare) to subscription date.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicRelation>,
}

/// `GET iid/info/<token>[?details=true]` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// App package.
    pub application: String,
    /// Sender id the token belongs to.
    pub authorized_entity: String,
    /// `ANDROID`, `IOS` or `CHROME`.
    pub platform: String,
    /// App version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_version: Option<String>,
    /// Subscriptions, only with `details=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<Relations>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shapes() {
        let r: BatchResponse =
            serde_json::from_str(r#"{"results":[{}, {"error":"NOT_FOUND"}, {}]}"#).unwrap();
        assert_eq!(r.results[1].error.as_deref(), Some("NOT_FOUND"));
        assert_eq!(serde_json::to_string(&r.results[0]).unwrap(), "{}");
        let info: InstanceInfo = serde_json::from_str(
            r#"{"application":"com.iid.example","authorizedEntity":"123456782354","platform":"ANDROID",
                "rel":{"topics":{"topicname1":{"addDate":"2015-07-30"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            info.rel.unwrap().topics["topicname1"].add_date,
            "2015-07-30"
        );
    }

    #[test]
    fn batch_bounds() {
        let ok = BatchRequest::new("movies", vec!["t".into(); 1000]);
        assert_eq!(ok.to, "/topics/movies");
        ok.validate().unwrap();
        let big = BatchRequest::new("/topics/movies", vec!["t".into(); 1001]);
        let err = big.validate().unwrap_err();
        assert_eq!(err.field, "registration_tokens");
        assert!(err.problem.contains("1001"));
        assert_eq!(
            BatchRequest::new("a b", vec!["t".into()])
                .validate()
                .unwrap_err()
                .field,
            "to"
        );
    }
}
