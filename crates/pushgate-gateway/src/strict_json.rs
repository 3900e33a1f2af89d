//! Reading JSON request bodies strictly, with errors that name the offending field by its
//! path (`targets.tokens[3]`, `notification.titel`); shared by every body the gateway reads.

use pushgate_proto::ValidationError;
use serde::de::DeserializeOwned;

/// Parses a JSON object into `T` (whose types reject unknown fields); the error's field is
/// the path of the problem, or `body` when the JSON itself is broken.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ValidationError::new("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        if matches!(e.inner().classify(), Category::Syntax | Category::Eof) {
            return ValidationError::new("body", format!("not valid JSON: {}", e.into_inner()));
        }
        let path = e.path().to_string();
        let field = if path == "." || path == "?" {
            "body".to_string()
        } else {
            path
        };
        ValidationError::new(field, e.into_inner().to_string())
    })
}
