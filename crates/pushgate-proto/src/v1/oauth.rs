//! The OAuth2 service-account wire shapes v1 authenticates with (docs/protocols.md,
//! "FCM v1: OAuth service-account flow").

use std::fmt;

use serde::{Deserialize, Serialize};

/// The grant type of the JWT-bearer token exchange.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A service-account JSON key file, as the Firebase console hands it out.
///
/// `Debug` never prints the private key: key files end up in error reports and logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountKey {
    /// Must be `service_account`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// The project messages are sent for.
    pub project_id: String,
    /// Key id, sent as the JWT `kid`.
    pub private_key_id: String,
    /// PKCS#8 PEM of the RSA key.
    pub private_key: String,
    /// The JWT issuer.
    pub client_email: String,
    /// Numeric client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `https://accounts.google.com/o/oauth2/auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_uri: Option<String>,
    /// Where assertions are exchanged for access tokens.
    pub token_uri: String,
    /// Google's certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider_x509_cert_url: Option<String>,
    /// This key's certificate URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_x509_cert_url: Option<String>,
    /// `googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universe_domain: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

/// The claims of the RS256 assertion exchanged at `token_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The service account's `client_email`.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, at most `iat + 3600`.
    pub exp: u64,
    /// Subject for domain-wide delegation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// A successful token response.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    pub access_token: String,
    /// Lifetime in seconds (some servers send a string; see [`TokenResponse::expires_in_secs`]).
    pub expires_in: serde_json::Value,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: String,
}

impl TokenResponse {
    /// `expires_in` as a number, whether it came as a number or a string.
    pub fn expires_in_secs(&self) -> Option<u64> {
        match &self.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A failed token response (`invalid_grant`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// OAuth error code.
    pub error: String,
    /// What was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_private_key() {
        let key = ServiceAccountKey {
            key_type: "service_account".into(),
            project_id: "p".into(),
            private_key_id: "kid".into(),
            private_key: "-----BEGIN PRIVATE KEY-----SECRETSECRET".into(),
            client_email: "a@p.iam.gserviceaccount.com".into(),
            client_id: None,
            auth_uri: None,
            token_uri: "http://127.0.0.1/token".into(),
            auth_provider_x509_cert_url: None,
            client_x509_cert_url: None,
            universe_domain: None,
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("SECRETSECRET"), "{shown}");
        assert!(shown.contains("a@p.iam.gserviceaccount.com"));
        let token = TokenResponse {
            access_token: "ya29.SECRET".into(),
            expires_in: serde_json::json!(3599),
            token_type: "Bearer".into(),
        };
        assert!(!format!("{token:?}").contains("ya29"));
    }

    #[test]
    fn expires_in_as_number_or_string() {
        let n: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3599,"token_type":"Bearer"}"#)
                .unwrap();
        let s: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"3599"}"#).unwrap();
        assert_eq!(n.expires_in_secs(), Some(3599));
        assert_eq!(s.expires_in_secs(), Some(3599));
    }
}
