//! The three JSON success shapes of a legacy send (docs/protocols.md,
//! "Legacy HTTP: token responses" and the two after it).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ErrorCode;
use crate::Outcome;

/// A response body the client could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected response body: {0}")]
pub struct ResponseError(pub String);

/// One entry of `results[]`: a message id (maybe with a canonical id) or an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientResult {
    /// Provider message id on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Canonical token, only together with `message_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    /// Error code on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RecipientResult {
    /// A success entry.
    pub fn delivered(message_id: impl Into<String>, canonical: Option<String>) -> Self {
        Self {
            message_id: Some(message_id.into()),
            registration_id: canonical,
            error: None,
        }
    }

    /// A failure entry.
    pub fn failed(code: &ErrorCode) -> Self {
        Self {
            error: Some(code.as_str().to_string()),
            ..Self::default()
        }
    }

    /// Maps the entry to the shared outcome; `retry_after` comes from the response header.
    pub fn outcome(&self, retry_after: Option<Duration>) -> Result<Outcome, ResponseError> {
        match (&self.message_id, &self.error) {
            (Some(message_id), None) => Ok(match &self.registration_id {
                Some(new_token) => Outcome::Rotated {
                    message_id: message_id.clone(),
                    new_token: new_token.clone(),
                },
                None => Outcome::Delivered {
                    message_id: message_id.clone(),
                },
            }),
            (None, Some(error)) => Ok(ErrorCode::parse(error).outcome(retry_after)),
            _ => Err(ResponseError(format!(
                "a result must hold exactly one of message_id and error: {self:?}"
            ))),
        }
    }
}

/// Shape (a): the answer for token targets (`registration_ids` or `to` = one token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulticastResponse {
    /// Unique id of the request; values beyond 2^53 occur, so never a float.
    pub multicast_id: i64,
    /// Results with a message id.
    pub success: u32,
    /// Results with an error.
    pub failure: u32,
    /// Results with a canonical `registration_id`.
    pub canonical_ids: u32,
    /// One entry per requested token, in request order.
    #[serde(default)]
    pub results: Vec<RecipientResult>,
}

impl MulticastResponse {
    /// Builds a response from its results, with the counts derived from them.
    pub fn from_results(multicast_id: i64, results: Vec<RecipientResult>) -> Self {
        let success = results.iter().filter(|r| r.message_id.is_some()).count() as u32;
        let canonical_ids = results
            .iter()
            .filter(|r| r.registration_id.is_some())
            .count() as u32;
        Self {
            multicast_id,
            success,
            failure: results.len() as u32 - success,
            canonical_ids,
            results,
        }
    }
}

/// Shape (b): the answer for topic and condition targets; `message_id` is a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicResponse {
    /// Numeric message id on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
    /// Error code on failure (still HTTP 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Shape (c): the answer for a device-group (notification key) target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupResponse {
    /// Members the message reached.
    pub success: u32,
    /// Members it did not reach.
    pub failure: u32,
    /// The members it did not reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_registration_ids: Vec<String>,
}

/// Any HTTP 200 JSON answer of a legacy send, told apart the way the Admin SDK does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonResponse {
    /// Token targets.
    Multicast(MulticastResponse),
    /// Topic or condition target.
    Topic(TopicResponse),
    /// Device group.
    Group(GroupResponse),
}

impl JsonResponse {
    /// Parses a 200 body: `multicast_id` means (a), `success`/`failure` without it means (c),
    /// otherwise a lone `message_id` or `error` means (b).
    pub fn parse(body: &[u8]) -> Result<JsonResponse, ResponseError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ResponseError(format!("not JSON ({e}): {}", preview(body))))?;
        let object = value
            .as_object()
            .ok_or_else(|| ResponseError(format!("not a JSON object: {}", preview(body))))?;
        let decode_err = |e: serde_json::Error| ResponseError(format!("{e}: {}", preview(body)));
        if object.contains_key("multicast_id") {
            serde_json::from_value(value)
                .map(JsonResponse::Multicast)
                .map_err(decode_err)
        } else if object.contains_key("success") && object.contains_key("failure") {
            serde_json::from_value(value)
                .map(JsonResponse::Group)
                .map_err(decode_err)
        } else if object.contains_key("message_id") || object.contains_key("error") {
            let topic: TopicResponse = serde_json::from_value(value).map_err(decode_err)?;
            // `{"message_id": null}` names the field but says nothing: neither a delivery nor
            // a failure, so it is as unreadable as a body without the field.
            if topic.message_id.is_none() && topic.error.is_none() {
                return Err(ResponseError(format!(
                    "topic answer with neither message_id nor error: {}",
                    preview(body)
                )));
            }
            Ok(JsonResponse::Topic(topic))
        } else {
            Err(ResponseError(format!(
                "no multicast_id, message_id, error or success field: {}",
                preview(body)
            )))
        }
    }
}

/// The start of a body, for error messages.
pub(crate) fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OutcomeKind;

    const DOC_EXAMPLE: &str = r#"{ "multicast_id": 216, "success": 3, "failure": 3, "canonical_ids": 1,
      "results": [
        { "message_id": "1:0408" },
        { "error": "Unavailable" },
        { "error": "InvalidRegistration" },
        { "message_id": "1:1516" },
        { "message_id": "1:2342", "registration_id": "32" },
        { "error": "NotRegistered" } ] }"#;

    #[test]
    fn documented_multicast_example() {
        let JsonResponse::Multicast(m) = JsonResponse::parse(DOC_EXAMPLE.as_bytes()).unwrap()
        else {
            panic!("not multicast")
        };
        let kinds: Vec<OutcomeKind> = m
            .results
            .iter()
            .map(|r| r.outcome(None).unwrap().kind())
            .collect();
        use OutcomeKind::*;
        assert_eq!(
            kinds,
            [
                Delivered, RetryLater, TokenDead, Delivered, Rotated, TokenDead
            ]
        );
        assert_eq!(
            m.results[4].outcome(None).unwrap(),
            Outcome::Rotated {
                message_id: "1:2342".into(),
                new_token: "32".into()
            }
        );
        let rebuilt = MulticastResponse::from_results(216, m.results.clone());
        assert_eq!(rebuilt, m);
    }

    #[test]
    fn multicast_id_beyond_two_to_the_53() {
        let body = br#"{"multicast_id":9209617363386672630,"success":1,"failure":0,"canonical_ids":0,"results":[{"message_id":"0:1"}]}"#;
        let JsonResponse::Multicast(m) = JsonResponse::parse(body).unwrap() else {
            panic!()
        };
        assert_eq!(m.multicast_id, 9_209_617_363_386_672_630);
    }

    #[test]
    fn topic_and_group_shapes() {
        assert_eq!(
            JsonResponse::parse(br#"{"message_id": 6177433633397011933}"#).unwrap(),
            JsonResponse::Topic(TopicResponse {
                message_id: Some(6_177_433_633_397_011_933),
                error: None
            })
        );
        assert_eq!(
            JsonResponse::parse(br#"{"error":"TopicsMessageRateExceeded"}"#).unwrap(),
            JsonResponse::Topic(TopicResponse {
                message_id: None,
                error: Some("TopicsMessageRateExceeded".into())
            })
        );
        assert_eq!(
            JsonResponse::parse(
                br#"{"success":1,"failure":2,"failed_registration_ids":["r1","r2"]}"#
            )
            .unwrap(),
            JsonResponse::Group(GroupResponse {
                success: 1,
                failure: 2,
                failed_registration_ids: vec!["r1".into(), "r2".into()]
            })
        );
    }

    /// Found by fuzzing (pushgate-fuzzing `legacy_json_response`): a null `message_id` was
    /// read as a topic answer with no outcome at all, and its re-encoding (`{}`) did not parse.
    #[test]
    fn topic_answer_with_only_null_fields_is_an_error() {
        for body in [
            r#"{"message_id":null}"#,
            r#"{"error":null}"#,
            r#"{"message_id":null,"error":null}"#,
        ] {
            let err = JsonResponse::parse(body.as_bytes()).unwrap_err();
            assert!(
                err.0.contains("neither message_id nor error"),
                "{body}: {err}"
            );
        }
        assert!(matches!(
            JsonResponse::parse(br#"{"message_id":null,"error":"InternalServerError"}"#),
            Ok(JsonResponse::Topic(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_body() {
        let err = JsonResponse::parse(b"<html>oops</html>").unwrap_err();
        assert!(err.0.contains("<html>oops"), "{err}");
        assert!(JsonResponse::parse(b"{}").is_err());
        assert!(
            RecipientResult::default().outcome(None).is_err(),
            "neither message_id nor error"
        );
    }
}
