//! Loading and checking a service-account key file (docs/protocols.md,
//! "FCM v1: OAuth service-account flow").

use std::path::Path;

use pushgate_proto::v1::oauth::ServiceAccountKey;
use serde_json::Value;

use super::OAuthError;

/// The `type` a key file must have (the Admin SDKs require it too).
pub const SERVICE_ACCOUNT_TYPE: &str = "service_account";

/// Fields the JWT-bearer flow cannot do without, in the order they are checked.
const REQUIRED: [&str; 5] = [
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "token_uri",
];

/// Reads a service-account key file from disk and checks it (see [`key_from_json`]).
///
/// Errors name the path and the problem, never the file's content.
pub fn key_from_file(path: impl AsRef<Path>) -> Result<ServiceAccountKey, OAuthError> {
    let path = path.as_ref();
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| OAuthError::KeyFile {
        origin: origin.clone(),
        reason: format!("cannot read: {}", e.kind()),
    })?;
    parse(&text, origin)
}

/// Parses a service-account key file given as a JSON string and checks that `type` is
/// `service_account` and that `project_id`, `private_key_id`, `private_key`, `client_email`
/// and `token_uri` are non-empty strings.
///
/// Exists because keys often come from an environment variable or a secret store rather than
/// a file. Errors name the missing field, never the content.
pub fn key_from_json(json: &str) -> Result<ServiceAccountKey, OAuthError> {
    parse(json, "<inline JSON>".to_string())
}

fn parse(text: &str, origin: String) -> Result<ServiceAccountKey, OAuthError> {
    // Parse loosely first so that errors can name fields; serde's own messages may quote
    // values, which could be the private key.
    let value: Value = serde_json::from_str(text).map_err(|e| OAuthError::KeyFile {
        origin: origin.clone(),
        reason: format!(
            "not valid JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    })?;
    let Some(object) = value.as_object() else {
        return Err(OAuthError::KeyFile {
            origin,
            reason: "not a JSON object".into(),
        });
    };
    match object.get("type") {
        None => {
            return Err(OAuthError::MissingField {
                origin,
                field: "type",
            });
        }
        Some(Value::String(t)) if t == SERVICE_ACCOUNT_TYPE => {}
        Some(Value::String(t)) => {
            return Err(OAuthError::WrongKeyType {
                origin,
                found: t.clone(),
            });
        }
        Some(_) => {
            return Err(OAuthError::WrongKeyType {
                origin,
                found: "<not a string>".into(),
            });
        }
    }
    for field in REQUIRED {
        let present = object
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if !present {
            return Err(OAuthError::MissingField { origin, field });
        }
    }
    serde_json::from_value::<ServiceAccountKey>(value).map_err(|e| OAuthError::KeyFile {
        origin,
        // Required fields are known to be strings here; what is left is an optional field of
        // the wrong type. The category is enough and never quotes a value.
        reason: format!("an optional field has the wrong type ({:?})", e.classify()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "type": "service_account",
            "project_id": "demo-project",
            "private_key_id": "kid-1",
            "private_key": "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n",
            "client_email": "sender@demo-project.iam.gserviceaccount.com",
            "client_id": "1234",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "universe_domain": "googleapis.com"
        })
    }

    #[test]
    fn a_complete_file_loads() {
        let key = key_from_json(&full().to_string()).unwrap();
        assert_eq!(key.project_id, "demo-project");
        assert_eq!(key.private_key_id, "kid-1");
        assert_eq!(key.token_uri, "https://oauth2.googleapis.com/token");
    }

    #[test]
    fn each_missing_field_is_named_and_the_key_never_shown() {
        for field in REQUIRED {
            let mut v = full();
            v.as_object_mut().unwrap().remove(field);
            let err = key_from_json(&v.to_string()).unwrap_err();
            let text = err.to_string();
            assert!(
                matches!(err, OAuthError::MissingField { field: f, .. } if f == field),
                "{text}"
            );
            assert!(text.contains(field), "{text}");
            assert!(!text.contains("TOPSECRET"), "{text}");
            // Empty counts as missing.
            let mut v = full();
            v[field] = json!("");
            assert!(matches!(
                key_from_json(&v.to_string()),
                Err(OAuthError::MissingField { .. })
            ));
        }
    }

    #[test]
    fn wrong_type_is_refused() {
        let mut v = full();
        v["type"] = json!("authorized_user");
        let err = key_from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("authorized_user"), "{err}");
        let mut v = full();
        v.as_object_mut().unwrap().remove("type");
        assert!(matches!(
            key_from_json(&v.to_string()),
            Err(OAuthError::MissingField { field: "type", .. })
        ));
    }

    #[test]
    fn broken_json_shows_position_not_content() {
        let text = r#"{"type":"service_account","private_key":"TOPSECRET"#;
        let err = key_from_json(text).unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
        let mut v = full();
        v["client_id"] = json!(["TOPSECRET"]);
        let err = key_from_json(&v.to_string()).unwrap_err();
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = key_from_file("/nonexistent/dir/key.json").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/dir/key.json"),
            "{err}"
        );
    }
}
