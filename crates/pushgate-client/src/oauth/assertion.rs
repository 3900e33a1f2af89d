//! The RS256 JWT assertion exchanged for an access token (docs/protocols.md,
//! "FCM v1: OAuth service-account flow").

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushgate_proto::v1::oauth::{AssertionClaims, ServiceAccountKey};

use super::OAuthError;

/// Longest assertion lifetime Google accepts: `exp - iat` ≤ 1 hour.
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Signs assertions for one service account.
///
/// Holds the parsed private key so that each refresh only signs. `Debug` never shows the key.
pub(crate) struct Signer {
    key: EncodingKey,
    key_id: String,
    issuer: String,
    audience: String,
    scope: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// Loads the key's PEM and checks that it can sign (so a bad key fails at start, not at
    /// the first send).
    pub(crate) fn new(key: &ServiceAccountKey, scopes: &[String]) -> Result<Self, OAuthError> {
        let encoding = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|e| {
            OAuthError::Signing(format!(
                "`private_key` is not a usable RSA PEM key ({})",
                error_kind(&e)
            ))
        })?;
        let signer = Self {
            key: encoding,
            key_id: key.private_key_id.clone(),
            issuer: key.client_email.clone(),
            audience: key.token_uri.clone(),
            scope: scopes.join(" "),
        };
        signer.sign_at(0)?;
        Ok(signer)
    }

    /// The claims for an assertion issued at `iat` (seconds since the epoch).
    pub(crate) fn claims_at(&self, iat: u64) -> AssertionClaims {
        AssertionClaims {
            iss: self.issuer.clone(),
            scope: self.scope.clone(),
            aud: self.audience.clone(),
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
            sub: None,
        }
    }

    /// A signed assertion issued now.
    pub(crate) fn sign_now(&self) -> Result<String, OAuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.sign_at(now)
    }

    /// A signed assertion issued at `iat`.
    pub(crate) fn sign_at(&self, iat: u64) -> Result<String, OAuthError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, &self.claims_at(iat), &self.key)
            .map_err(|e| OAuthError::Signing(format!("RS256 signing failed ({})", error_kind(&e))))
    }
}

/// A short, content-free description of a jsonwebtoken error.
fn error_kind(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidRsaKey(_) => "invalid RSA key".into(),
        ErrorKind::InvalidKeyFormat => "invalid key format".into(),
        ErrorKind::RsaFailedSigning => "RSA signing failed".into(),
        ErrorKind::Signing(_) => "signing failed".into(),
        ErrorKind::Base64(_) => "bad base64 in the PEM".into(),
        ErrorKind::Json(_) => "claims not serialisable".into(),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    /// A fresh RSA-2048 key pair as (PKCS#8 private PEM, SPKI public PEM).
    pub(crate) fn rsa_pair() -> (String, String) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        (pair.serialize_pem(), pair.public_key_pem())
    }

    pub(crate) fn key_with(private_pem: &str, token_uri: &str) -> ServiceAccountKey {
        ServiceAccountKey {
            key_type: "service_account".into(),
            project_id: "demo-project".into(),
            private_key_id: "kid-42".into(),
            private_key: private_pem.into(),
            client_email: "sender@demo-project.iam.gserviceaccount.com".into(),
            client_id: None,
            auth_uri: None,
            token_uri: token_uri.into(),
            auth_provider_x509_cert_url: None,
            client_x509_cert_url: None,
            universe_domain: None,
        }
    }

    #[test]
    fn assertion_has_googles_header_and_claims() {
        let (private, public) = rsa_pair();
        let key = key_with(&private, "http://127.0.0.1:9/token");
        let scopes = vec![pushgate_proto::v1::FCM_SCOPE.to_string()];
        let signer = Signer::new(&key, &scopes).unwrap();
        let jwt = signer.sign_now().unwrap();

        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some("kid-42"));

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["http://127.0.0.1:9/token"]);
        validation.set_issuer(&["sender@demo-project.iam.gserviceaccount.com"]);
        let decoded = jsonwebtoken::decode::<AssertionClaims>(
            &jwt,
            &DecodingKey::from_rsa_pem(public.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap();
        let c = decoded.claims;
        assert_eq!(c.exp - c.iat, 3600);
        assert_eq!(
            c.scope,
            "https://www.googleapis.com/auth/firebase.messaging"
        );
        assert_eq!(c.aud, "http://127.0.0.1:9/token");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(c.iat.abs_diff(now) <= 5);
        // Segments are unpadded base64url.
        assert_eq!(jwt.split('.').count(), 3);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
    }

    #[test]
    fn several_scopes_are_space_separated() {
        let (private, _) = rsa_pair();
        let key = key_with(&private, "http://127.0.0.1:9/token");
        let scopes = vec![
            pushgate_proto::v1::CLOUD_PLATFORM_SCOPE.to_string(),
            pushgate_proto::v1::FCM_SCOPE.to_string(),
        ];
        let signer = Signer::new(&key, &scopes).unwrap();
        assert_eq!(
            signer.claims_at(10).scope,
            "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/firebase.messaging"
        );
    }

    #[test]
    fn a_bad_pem_fails_without_echoing_it() {
        let key = key_with(
            "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n",
            "http://x/token",
        );
        let err = Signer::new(&key, &[]).unwrap_err();
        assert!(matches!(err, OAuthError::Signing(_)), "{err}");
        assert!(!err.to_string().contains("TOPSECRET"), "{err}");
        let (private, _) = rsa_pair();
        let signer = Signer::new(&key_with(&private, "http://x/token"), &[]).unwrap();
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}
