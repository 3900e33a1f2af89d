//! Reading query strings strictly: every parameter must be valid UTF-8 once percent-decoded
//! (axum's own reader would replace bad bytes and carry on), unknown parameters and bad
//! values are refused with an error that names them.

use axum::extract::FromRequestParts;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A query string deserialised into `T` (whose type refuses unknown fields).
pub struct StrictQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for StrictQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        decode(raw)
            .map_err(|name| ApiError::invalid(name, "is not valid UTF-8 once percent-decoded"))?;
        // Every parameter decodes to text, so serde's own (lossy) decoding is exact here.
        serde_urlencoded::from_str(raw)
            .map(StrictQuery)
            .map_err(|e| {
                ApiError::invalid("query", format!("Failed to deserialize query string: {e}"))
            })
    }
}

/// The `(name, value)` pairs of a query string, `+` read as a space, each percent-decoded;
/// `Err` holds the name of the first parameter that is not UTF-8 (`query` when the name
/// itself is not).
pub fn decode(raw: &str) -> Result<Vec<(String, String)>, String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = text(name).ok_or_else(|| "query".to_string())?;
            let value = text(value).ok_or_else(|| name.clone())?;
            Ok((name, value))
        })
        .collect()
}

fn text(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_pairs_like_a_form() {
        assert_eq!(
            decode("user=al%20ice&tag=a+b&empty=&flag").unwrap(),
            [
                ("user".to_string(), "al ice".to_string()),
                ("tag".to_string(), "a b".to_string()),
                ("empty".to_string(), String::new()),
                ("flag".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn names_the_parameter_that_is_not_utf8() {
        assert_eq!(decode("limit=5&user=%FF%FE").unwrap_err(), "user");
        assert_eq!(decode("%C3=x").unwrap_err(), "query");
        // A valid multi-byte character is fine.
        assert_eq!(decode("user=%C3%A9").unwrap()[0].1, "é");
    }
}
