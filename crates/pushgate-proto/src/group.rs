//! Device groups: `notification_key` management (docs/protocols.md, "Device groups").

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Most members one notification key may have.
pub const MAX_GROUP_MEMBERS: usize = 20;
/// Header that names the sender (project number) on group requests.
pub const PROJECT_ID_HEADER: &str = "project_id";

/// What a management request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupOperation {
    /// Create a group with a name and first members.
    Create,
    /// Add members.
    Add,
    /// Remove members (removing all deletes the group).
    Remove,
}

/// `POST /gcm/notification` or `/fcm/notification` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRequest {
    /// create, add or remove.
    pub operation: GroupOperation,
    /// Unique name per app; required for create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_key_name: Option<String>,
    /// The key; required for add and remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_key: Option<String>,
    /// Tokens to add or remove.
    pub registration_ids: Vec<String>,
}

impl GroupRequest {
    /// Checks the fields each operation needs and the 20-member bound of one request.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self.operation {
            GroupOperation::Create
                if self
                    .notification_key_name
                    .as_deref()
                    .unwrap_or("")
                    .is_empty() =>
            {
                return Err(ValidationError::new(
                    "notification_key_name",
                    "is required to create a group",
                ));
            }
            GroupOperation::Add | GroupOperation::Remove
                if self.notification_key.as_deref().unwrap_or("").is_empty() =>
            {
                return Err(ValidationError::new(
                    "notification_key",
                    "is required to add or remove members",
                ));
            }
            _ => {}
        }
        let n = self.registration_ids.len();
        if n == 0 || n > MAX_GROUP_MEMBERS {
            return Err(ValidationError::new(
                "registration_ids",
                format!("holds {n} tokens; must hold 1 to {MAX_GROUP_MEMBERS}"),
            ));
        }
        Ok(())
    }
}

/// A successful management answer: `{"notification_key": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationKeyResponse {
    /// The group's key.
    pub notification_key: String,
}

/// A failed management answer: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupError {
    /// What went wrong.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_need_their_fields() {
        let create: GroupRequest = serde_json::from_str(
            r#"{"operation":"create","notification_key_name":"appUser-Chris","registration_ids":["4","8"]}"#,
        )
        .unwrap();
        create.validate().unwrap();
        let add_without_key: GroupRequest =
            serde_json::from_str(r#"{"operation":"add","registration_ids":["4"]}"#).unwrap();
        assert_eq!(
            add_without_key.validate().unwrap_err().field,
            "notification_key"
        );
        let too_many = GroupRequest {
            registration_ids: vec!["t".into(); 21],
            ..create
        };
        assert!(too_many.validate().unwrap_err().problem.contains("21"));
    }
}
