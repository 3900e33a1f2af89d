//! The messages a legacy sender sends: [`JsonMessage`] (any number of tokens, topics,
//! conditions, device groups) and [`PlainTextMessage`] (one token, string data).
//!
//! They mirror gcm-client's `JSONMessage` / `PlainTextMessage` and python-gcm's keyword
//! arguments; the wire encoding and the validation rules are `pushgate-proto`'s.

use std::fmt;
use std::sync::Arc;

use pushgate_proto::ValidationError;
use pushgate_proto::legacy::limits::{MAX_REGISTRATION_IDS, TOPIC_PREFIX};
use pushgate_proto::legacy::{
    JsonRequest, MessageOptions, Notification, PlainTextRequest, Priority, Target,
};
use serde_json::{Map, Value};

/// A message kind a [`LegacySender`](super::LegacySender) can send and a
/// [`LegacyResult`](super::LegacyResult) can rebuild for a retry.
///
/// Sealed: implemented by [`JsonMessage`] and [`PlainTextMessage`] only.
pub trait LegacyMessage: sealed::Sealed + Clone + fmt::Debug + Send + Sync + 'static {}

pub(crate) mod sealed {
    /// What the result and retry logic need from a message; private to this crate.
    pub trait Sealed {
        /// True when the answer has one entry per token (not a topic or device group).
        fn is_token_target(&self) -> bool;
        /// The tokens the answer's entries belong to, in request order (the one name of a
        /// topic, condition or device group).
        fn tokens(&self) -> &[String];
        /// The same message (data, options) for other tokens of the same kind.
        fn with_tokens(&self, tokens: Vec<String>) -> Self;
    }
}

/// Where a [`JsonMessage`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonTarget {
    /// Registration tokens (any number: sent in chunks of 1000 as `registration_ids`).
    /// Shared, so that a clone of the message (a result keeps one) copies no token.
    Tokens(Arc<[String]>),
    /// A topic name, without the `/topics/` prefix (sent as `to: "/topics/<name>"`).
    Topic(String),
    /// A condition over topics, e.g. `'a' in topics && 'b' in topics`.
    Condition(String),
    /// A device group's notification key (sent as `to`, the FCM form).
    NotificationKey(String),
    /// A raw `to` value read from a wire request: one token or a notification key (the
    /// service tells them apart; the answer's shape says which it was).
    To(String),
}

/// A JSON message: the full legacy feature set (multicast, topics, notification payloads).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonMessage {
    target: JsonTarget,
    options: MessageOptions,
    data: Option<Map<String, Value>>,
    notification: Option<Notification>,
}

impl JsonMessage {
    /// A message to these registration tokens (any number; more than 1000 are split).
    pub fn new<I, S>(registration_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(JsonTarget::Tokens(
            registration_ids.into_iter().map(Into::into).collect(),
        ))
    }

    /// A message to a token list already shared (no token is copied): a caller sending
    /// the same tokens often keeps the list and clones the `Arc`.
    pub fn to_shared_tokens(registration_ids: Arc<[String]>) -> Self {
        Self::with_target(JsonTarget::Tokens(registration_ids))
    }

    /// A message to every subscriber of a topic; `name` may carry the `/topics/` prefix.
    pub fn to_topic(name: impl Into<String>) -> Self {
        let name = name.into();
        let bare = name.strip_prefix(TOPIC_PREFIX).unwrap_or(&name).to_string();
        Self::with_target(JsonTarget::Topic(bare))
    }

    /// A message to the devices matching a condition over topics.
    pub fn to_condition(condition: impl Into<String>) -> Self {
        Self::with_target(JsonTarget::Condition(condition.into()))
    }

    /// A message to a device group.
    pub fn to_notification_key(key: impl Into<String>) -> Self {
        Self::with_target(JsonTarget::NotificationKey(key.into()))
    }

    fn with_target(target: JsonTarget) -> Self {
        Self {
            target,
            options: MessageOptions::default(),
            data: None,
            notification: None,
        }
    }

    /// Adds one `data` entry (values should be strings; others are sent as JSON values).
    pub fn data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the collapse key.
    pub fn collapse_key(mut self, key: impl Into<String>) -> Self {
        self.options.collapse_key = Some(key.into());
        self
    }

    /// Sets the time to live, in seconds (0..=2419200).
    pub fn time_to_live(mut self, seconds: u32) -> Self {
        self.options.time_to_live = Some(seconds);
        self
    }

    /// Holds the message until the device is active.
    pub fn delay_while_idle(mut self, on: bool) -> Self {
        self.options.delay_while_idle = Some(on);
        self
    }

    /// Validates without delivering.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.options.dry_run = Some(on);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.options.priority = Some(priority);
        self
    }

    /// Delivers only to tokens of this Android package.
    pub fn restricted_package_name(mut self, package: impl Into<String>) -> Self {
        self.options.restricted_package_name = Some(package.into());
        self
    }

    /// iOS: sets `content-available`.
    pub fn content_available(mut self, on: bool) -> Self {
        self.options.content_available = Some(on);
        self
    }

    /// iOS 10+: sets `mutable-content`.
    pub fn mutable_content(mut self, on: bool) -> Self {
        self.options.mutable_content = Some(on);
        self
    }

    /// Adds a display notification.
    pub fn notification(mut self, notification: Notification) -> Self {
        self.notification = Some(notification);
        self
    }

    /// Where the message goes.
    pub fn target(&self) -> &JsonTarget {
        &self.target
    }

    /// The registration tokens, for token messages.
    pub fn registration_ids(&self) -> Option<&[String]> {
        match &self.target {
            JsonTarget::Tokens(ids) => Some(ids),
            _ => None,
        }
    }

    /// The delivery options.
    pub fn options(&self) -> &MessageOptions {
        &self.options
    }

    /// The `data` payload, if any.
    pub fn data_payload(&self) -> Option<&Map<String, Value>> {
        self.data.as_ref()
    }

    /// The wire request for these tokens (or for the non-token target when `tokens` is
    /// `None`).
    pub(crate) fn request_for(&self, tokens: Option<&[String]>) -> JsonRequest {
        let mut request = JsonRequest {
            options: self.options.clone(),
            data: self.data.clone(),
            notification: self.notification.clone(),
            ..JsonRequest::default()
        };
        match (&self.target, tokens) {
            (JsonTarget::Tokens(_), Some(ids)) => request.registration_ids = Some(ids.to_vec()),
            (JsonTarget::Tokens(ids), None) => request.registration_ids = Some(ids.to_vec()),
            (JsonTarget::Topic(name), _) => request.to = Some(format!("{TOPIC_PREFIX}{name}")),
            (JsonTarget::Condition(c), _) => request.condition = Some(c.clone()),
            (JsonTarget::NotificationKey(key), _) | (JsonTarget::To(key), _) => {
                request.to = Some(key.clone())
            }
        }
        request
    }

    /// The wire requests this message becomes: one per chunk of at most 1000 tokens, or
    /// exactly one for a topic, condition or device group.
    pub fn requests(&self) -> Vec<JsonRequest> {
        match &self.target {
            JsonTarget::Tokens(ids) if !ids.is_empty() => ids
                .chunks(MAX_REGISTRATION_IDS)
                .map(|chunk| self.request_for(Some(chunk)))
                .collect(),
            _ => vec![self.request_for(None)],
        }
    }

    /// Checks the message against the protocol rules (`JsonRequest::validate` for every
    /// chunk): the error names the field and the limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.checked_requests().map(|_| ())
    }

    /// For a token message: its request for the first token alone, checked as
    /// [`validate`](Self::validate) checks every chunk. Chunks differ only in their tokens
    /// (all checked non-empty here; at most 1000 per chunk by construction), so this one
    /// check covers them all, and its other fields, serialized once, serve every chunk
    /// without cloning the tokens into a [`JsonRequest`] per chunk. `None` for other targets
    /// and for an empty token list.
    pub(crate) fn checked_token_template(&self) -> Option<Result<JsonRequest, ValidationError>> {
        let JsonTarget::Tokens(ids) = &self.target else {
            return None;
        };
        let first = ids.first()?;
        if let Some(i) = ids.iter().position(String::is_empty) {
            return Some(Err(ValidationError::new(
                format!("registration_ids[{i}]"),
                "must not be empty",
            )));
        }
        let request = self.request_for(Some(std::slice::from_ref(first)));
        Some(request.validate().map(|()| request))
    }

    /// [`requests`](Self::requests), each checked as [`validate`](Self::validate) checks
    /// them: what a sender sends, built once.
    pub(crate) fn checked_requests(&self) -> Result<Vec<JsonRequest>, ValidationError> {
        if let JsonTarget::Tokens(ids) = &self.target
            && let Some(i) = ids.iter().position(String::is_empty)
        {
            return Err(ValidationError::new(
                format!("registration_ids[{i}]"),
                "must not be empty",
            ));
        }
        let requests = self.requests();
        requests.iter().try_for_each(JsonRequest::validate)?;
        Ok(requests)
    }
}

impl TryFrom<JsonRequest> for JsonMessage {
    type Error = ValidationError;

    /// Reads a wire request (e.g. stored by the gateway); it must name exactly one target.
    fn try_from(request: JsonRequest) -> Result<Self, ValidationError> {
        let target = match request.target()? {
            Target::RegistrationIds(ids) => JsonTarget::Tokens(ids.into()),
            Target::To(to) => JsonTarget::To(to.to_string()),
            Target::NotificationKey(key) => JsonTarget::NotificationKey(key.to_string()),
            Target::Topic(name) => JsonTarget::Topic(name.to_string()),
            Target::Condition(c) => JsonTarget::Condition(c.to_string()),
        };
        Ok(Self {
            target,
            options: request.options,
            data: request.data,
            notification: request.notification,
        })
    }
}

impl sealed::Sealed for JsonMessage {
    fn is_token_target(&self) -> bool {
        matches!(self.target, JsonTarget::Tokens(_) | JsonTarget::To(_))
    }

    fn tokens(&self) -> &[String] {
        match &self.target {
            JsonTarget::Tokens(ids) => ids,
            JsonTarget::Topic(name) | JsonTarget::Condition(name) => std::slice::from_ref(name),
            JsonTarget::NotificationKey(key) | JsonTarget::To(key) => std::slice::from_ref(key),
        }
    }

    fn with_tokens(&self, tokens: Vec<String>) -> Self {
        match &self.target {
            JsonTarget::Tokens(_) => Self {
                target: JsonTarget::Tokens(tokens.into()),
                ..self.clone()
            },
            JsonTarget::To(_) => match <[String; 1]>::try_from(tokens) {
                Ok([token]) => Self {
                    target: JsonTarget::To(token),
                    ..self.clone()
                },
                Err(_) => self.clone(),
            },
            _ => self.clone(),
        }
    }
}

impl LegacyMessage for JsonMessage {}

/// A plain-text (form) message: exactly one token, string data, no notification payload.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainTextMessage {
    request: PlainTextRequest,
}

impl PlainTextMessage {
    /// A message to one registration token.
    pub fn new(registration_id: impl Into<String>) -> Self {
        Self {
            request: PlainTextRequest {
                registration_id: registration_id.into(),
                ..PlainTextRequest::default()
            },
        }
    }

    /// Adds one `data.<key>` parameter.
    pub fn data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.data.insert(key.into(), value.into());
        self
    }

    /// Sets the collapse key.
    pub fn collapse_key(mut self, key: impl Into<String>) -> Self {
        self.request.collapse_key = Some(key.into());
        self
    }

    /// Sets the time to live, in seconds (0..=2419200).
    pub fn time_to_live(mut self, seconds: u32) -> Self {
        self.request.time_to_live = Some(seconds);
        self
    }

    /// Holds the message until the device is active.
    pub fn delay_while_idle(mut self, on: bool) -> Self {
        self.request.delay_while_idle = on;
        self
    }

    /// Validates without delivering.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.request.dry_run = on;
        self
    }

    /// Delivers only if the token belongs to this Android package.
    pub fn restricted_package_name(mut self, package: impl Into<String>) -> Self {
        self.request.restricted_package_name = Some(package.into());
        self
    }

    /// The one recipient.
    pub fn registration_id(&self) -> &str {
        &self.request.registration_id
    }

    /// The wire request.
    pub fn request(&self) -> &PlainTextRequest {
        &self.request
    }

    /// Checks the message against the protocol rules (`PlainTextRequest::validate`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.request.validate()
    }
}

impl From<PlainTextRequest> for PlainTextMessage {
    /// Wraps a wire request.
    fn from(request: PlainTextRequest) -> Self {
        Self { request }
    }
}

impl sealed::Sealed for PlainTextMessage {
    fn is_token_target(&self) -> bool {
        true
    }

    fn tokens(&self) -> &[String] {
        std::slice::from_ref(&self.request.registration_id)
    }

    fn with_tokens(&self, tokens: Vec<String>) -> Self {
        let mut next = self.clone();
        if let Some(token) = tokens.into_iter().next() {
            next.request.registration_id = token;
        }
        next
    }
}

impl LegacyMessage for PlainTextMessage {}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;
    use serde_json::json;

    #[test]
    fn builder_produces_the_documented_wire_fields() {
        let m = JsonMessage::new(["a", "b"])
            .data("score", "4x8")
            .collapse_key("score_update")
            .time_to_live(108)
            .delay_while_idle(true)
            .priority(Priority::High)
            .dry_run(true)
            .restricted_package_name("com.example");
        let wire = serde_json::to_value(&m.requests()[0]).unwrap();
        assert_eq!(
            wire,
            json!({
                "registration_ids": ["a", "b"], "data": {"score": "4x8"},
                "collapse_key": "score_update", "time_to_live": 108, "delay_while_idle": true,
                "priority": "high", "dry_run": true, "restricted_package_name": "com.example"
            })
        );
        m.validate().unwrap();
    }

    #[test]
    fn topics_conditions_and_groups() {
        let topic = JsonMessage::to_topic("/topics/news");
        assert_eq!(topic.target(), &JsonTarget::Topic("news".into()));
        assert_eq!(topic.requests()[0].to.as_deref(), Some("/topics/news"));
        assert_eq!(
            JsonMessage::to_topic("news").requests()[0].to.as_deref(),
            Some("/topics/news")
        );
        let cond = JsonMessage::to_condition("'a' in topics").requests();
        assert_eq!(cond[0].condition.as_deref(), Some("'a' in topics"));
        let group = JsonMessage::to_notification_key("APA91key").requests();
        assert_eq!(group[0].to.as_deref(), Some("APA91key"));
        assert!(group[0].registration_ids.is_none());
    }

    #[test]
    fn more_than_1000_ids_become_chunks_in_order() {
        let ids: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();
        let m = JsonMessage::new(ids.clone()).data("k", "v");
        let chunks = m.requests();
        assert_eq!(chunks.len(), 3);
        let sizes: Vec<usize> = chunks
            .iter()
            .map(|c| c.registration_ids.as_ref().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let rejoined: Vec<String> = chunks
            .into_iter()
            .flat_map(|c| c.registration_ids.unwrap_or_default())
            .collect();
        assert_eq!(rejoined, ids);
        m.validate().unwrap();
    }

    #[test]
    fn validation_names_field_and_limit() {
        let err = JsonMessage::new(["a"])
            .data("from", "x")
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "data.from");
        let err = JsonMessage::new(["a"])
            .data("k", "x".repeat(4096))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "data");
        assert!(err.problem.contains("4096"), "{err}");
        let err = JsonMessage::new(Vec::<String>::new())
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "registration_ids");
        let mut ids: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
        ids[1200] = String::new();
        let err = JsonMessage::new(ids).validate().unwrap_err();
        assert_eq!(err.field, "registration_ids[1200]");
        let err = JsonMessage::new(["a"])
            .time_to_live(2_419_201)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "time_to_live");
    }

    #[test]
    fn with_tokens_keeps_data_and_options() {
        let m = JsonMessage::new(["a", "b", "c"])
            .data("k", "v")
            .collapse_key("ck");
        let r = m.with_tokens(vec!["c".into()]);
        assert_eq!(r.registration_ids(), Some(&["c".to_string()][..]));
        assert_eq!(r.data_payload(), m.data_payload());
        assert_eq!(r.options(), m.options());

        let p = PlainTextMessage::new("x").data("k", "v").time_to_live(5);
        assert_eq!(p.tokens(), ["x"]);
        let q = p.with_tokens(vec!["y".into()]);
        assert_eq!(q.registration_id(), "y");
        assert_eq!(q.request().data["k"], "v");
        assert_eq!(q.request().time_to_live, Some(5));
    }

    #[test]
    fn from_wire_request() {
        let req: JsonRequest =
            serde_json::from_value(json!({"to": "tok", "data": {"a": "b"}})).unwrap();
        let m = JsonMessage::try_from(req).unwrap();
        assert_eq!(m.target(), &JsonTarget::To("tok".into()));
        assert_eq!(m.requests()[0].to.as_deref(), Some("tok"));
        let req: JsonRequest = serde_json::from_value(json!({"to": "/topics/x"})).unwrap();
        assert_eq!(
            JsonMessage::try_from(req).unwrap().target(),
            &JsonTarget::Topic("x".into())
        );
        assert!(JsonMessage::try_from(JsonRequest::default()).is_err());
    }

    #[test]
    fn plain_text_validation() {
        let err = PlainTextMessage::new("a")
            .data("google.x", "1")
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "data.google.x");
        PlainTextMessage::new("a")
            .data("k", "x".repeat(4095))
            .validate()
            .unwrap();
    }
}
