//! OAuth: the token endpoint's answers and the service-account key file.

use std::time::Duration;

use pushgate_client::oauth::{AccessToken, key_from_json};
use pushgate_proto::v1::oauth::{TokenError, TokenResponse};

use crate::json_round_trip;

/// `TokenResponse`/`TokenError` from JSON: never panic; `expires_in_secs` never panics and
/// survives re-encoding; an `AccessToken` built from any parsed answer (the lifetime clamped
/// as the client clamps it) is an error or a token, never a panic.
pub fn oauth_token_response(data: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<TokenError>(data) {
        json_round_trip(&e);
    }
    let Ok(parsed) = serde_json::from_slice::<TokenResponse>(data) else {
        return;
    };
    let secs = parsed.expires_in_secs();
    let encoded = serde_json::to_vec(&parsed).expect("a parsed answer serialises");
    let again: TokenResponse = serde_json::from_slice(&encoded).expect("re-encoded answer parses");
    assert_eq!(again.access_token, parsed.access_token);
    assert_eq!(again.token_type, parsed.token_type);
    assert_eq!(again.expires_in_secs(), secs);
    if let Some(secs) = secs {
        let lifetime = Duration::from_secs(secs.min(u64::from(u32::MAX)));
        if let Ok(token) = AccessToken::new(parsed.access_token.clone(), lifetime) {
            assert_eq!(token.secret(), parsed.access_token);
        }
    }
}

/// `key_from_json` (bytes read as UTF-8, lossily): never panics; an accepted key serialises
/// to JSON that `key_from_json` accepts again as the same key.
pub fn service_account_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(key) = key_from_json(&text) else {
        return;
    };
    let encoded = serde_json::to_string(&key).expect("a parsed key serialises");
    let again = key_from_json(&encoded).expect("a re-encoded key is accepted");
    assert_eq!(again, key, "key file round trip changed the key");
}
