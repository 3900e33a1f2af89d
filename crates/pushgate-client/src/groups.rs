//! Device groups: creating and changing notification keys (docs/protocols.md, "Device groups").
//!
//! Exists so that a service can manage `notification_key`s with the legacy server key and
//! sender id. Sending to a group goes through [`LegacySender`](crate::legacy::LegacySender)
//! with `JsonMessage::to_notification_key` (see `LegacyResult::group()` and
//! `failed_registration_ids()`).

use std::fmt;

use pushgate_proto::ValidationError;
use pushgate_proto::group::{
    GroupError as ErrorBody, GroupOperation, GroupRequest, NotificationKeyResponse,
    PROJECT_ID_HEADER,
};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder, Url};
use tracing::{Instrument, info_span, warn};

use crate::http::{BuildError, HttpConfig};

/// The FCM device-group management endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com/fcm/notification";
/// Most characters of an unexpected body kept in an error.
const MAX_ERROR_BODY_CHARS: usize = 1024;

/// Why a group operation produced no notification key.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The request breaks a rule (missing name or key, 1..=20 tokens); nothing was sent.
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// The server refused: its `{"error": …}` text (or the start of the body).
    #[error("group operation refused (HTTP {status}): {error}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's explanation, e.g. `notification_key already exists`.
        error: String,
    },
    /// A 200 body without a `notification_key`.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// No answer: connection refused or reset, timeout, TLS failure.
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
}

/// Creates, changes and looks up device groups (google/gcm's `DeviceGroupHelper`).
///
/// Exists as the one place that knows the management request, its `project_id` header and
/// its error shape. Cheap to clone. `Debug` never shows the API key.
#[derive(Clone)]
pub struct GroupManager {
    client: Client,
    endpoint: Url,
    authorization: HeaderValue,
    project_id: HeaderValue,
}

impl fmt::Debug for GroupManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupManager")
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .finish()
    }
}

impl GroupManager {
    /// A manager for the sender `sender_id` (the `project_id` header) with its server key.
    /// `config.endpoint` is the full management URL; `None` means [`DEFAULT_ENDPOINT`].
    pub fn new(
        api_key: impl Into<String>,
        sender_id: impl Into<String>,
        config: HttpConfig,
    ) -> Result<Self, BuildError> {
        let endpoint = config.endpoint_or(DEFAULT_ENDPOINT)?;
        let mut authorization = HeaderValue::from_str(&format!("key={}", api_key.into()))
            .map_err(|_| BuildError::Credential)?;
        authorization.set_sensitive(true);
        let project_id =
            HeaderValue::from_str(&sender_id.into()).map_err(|_| BuildError::Credential)?;
        Ok(Self {
            client: config.build_client()?,
            endpoint,
            authorization,
            project_id,
        })
    }

    /// Creates group `name` with its first members; returns the new notification key.
    pub async fn create(&self, name: &str, tokens: &[String]) -> Result<String, GroupError> {
        self.manage(GroupRequest {
            operation: GroupOperation::Create,
            notification_key_name: Some(name.to_string()),
            notification_key: None,
            registration_ids: tokens.to_vec(),
        })
        .await
    }

    /// Adds members to the group `key` (named `name`, as the docs recommend).
    pub async fn add(
        &self,
        name: Option<&str>,
        key: &str,
        tokens: &[String],
    ) -> Result<String, GroupError> {
        self.change(GroupOperation::Add, name, key, tokens).await
    }

    /// Removes members from the group `key`; removing every member deletes the group.
    pub async fn remove(
        &self,
        name: Option<&str>,
        key: &str,
        tokens: &[String],
    ) -> Result<String, GroupError> {
        self.change(GroupOperation::Remove, name, key, tokens).await
    }

    /// The notification key of group `name`.
    pub async fn get(&self, name: &str) -> Result<String, GroupError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("notification_key_name", name);
        let span = info_span!("group_get", name);
        self.execute(self.client.get(url)).instrument(span).await
    }

    async fn change(
        &self,
        operation: GroupOperation,
        name: Option<&str>,
        key: &str,
        tokens: &[String],
    ) -> Result<String, GroupError> {
        self.manage(GroupRequest {
            operation,
            notification_key_name: name.map(str::to_string),
            notification_key: Some(key.to_string()),
            registration_ids: tokens.to_vec(),
        })
        .await
    }

    async fn manage(&self, request: GroupRequest) -> Result<String, GroupError> {
        request.validate()?;
        let body =
            serde_json::to_vec(&request).map_err(|e| GroupError::InvalidResponse(e.to_string()))?;
        let span = info_span!(
            "group_manage",
            operation = ?request.operation,
            name = ?request.notification_key_name,
            members = request.registration_ids.len(),
        );
        self.execute(
            self.client
                .post(self.endpoint.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body),
        )
        .instrument(span)
        .await
    }

    async fn execute(&self, request: RequestBuilder) -> Result<String, GroupError> {
        let response = request
            .header(AUTHORIZATION, self.authorization.clone())
            .header(
                HeaderName::from_static(PROJECT_ID_HEADER),
                self.project_id.clone(),
            )
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        if status == 200
            && let Ok(ok) = serde_json::from_slice::<NotificationKeyResponse>(&bytes)
        {
            return Ok(ok.notification_key);
        }
        let error = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => e.error,
            Err(_) if status == 200 => {
                return Err(GroupError::InvalidResponse(preview(&bytes)));
            }
            Err(_) => preview(&bytes),
        };
        warn!(status, error = %error, "group operation refused");
        Err(GroupError::Server { status, error })
    }
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(MAX_ERROR_BODY_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn validation_happens_before_any_request() {
        // Port 9 on 127.0.0.1 is never contacted: the request is refused client-side.
        let manager = GroupManager::new(
            "secret-server-key",
            "1234",
            HttpConfig::new().with_endpoint("http://127.0.0.1:9/fcm/notification"),
        )
        .unwrap();
        let tokens = vec!["t".to_string(); 21];
        let err = manager.create("g", &tokens).await.unwrap_err();
        assert!(matches!(&err, GroupError::Invalid(v) if v.field == "registration_ids"));
        let err = manager.add(None, "", &tokens[..1]).await.unwrap_err();
        assert!(matches!(&err, GroupError::Invalid(v) if v.field == "notification_key"));
        assert!(!format!("{manager:?}").contains("secret-server-key"));
    }
}
