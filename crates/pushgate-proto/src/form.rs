//! URL-encoded form bodies, as the legacy plain-text, C2DM and ClientLogin protocols use them.

use std::collections::BTreeMap;

use crate::ValidationError;

/// Decodes a form body into its pairs, in order; a malformed body is an error on `body`.
pub(crate) fn decode(body: &str) -> Result<Vec<(String, String)>, ValidationError> {
    serde_urlencoded::from_str(body)
        .map_err(|e| ValidationError::new("body", format!("not a URL-encoded form: {e}")))
}

/// Encodes pairs as a form body.
pub(crate) fn encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Appends one `data.<key>` pair per payload entry.
pub(crate) fn push_data(pairs: &mut Vec<(String, String)>, data: &BTreeMap<String, String>) {
    pairs.extend(data.iter().map(|(k, v)| (format!("data.{k}"), v.clone())));
}
