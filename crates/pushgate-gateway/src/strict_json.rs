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
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
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
    })?;
    // Nothing but white space may follow the object: `{...} xyz` is not one JSON value.
    de.end().map_err(|e| {
        ValidationError::new(
            "body",
            format!("unexpected data after the JSON object: {e}"),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::from_slice;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        token: String,
    }

    #[test]
    fn trailing_bytes_after_the_object_are_refused() {
        for text in [
            r#"{"token":"t"} xyz"#,
            r#"{"token":"t"}{}"#,
            r#"{"token":"t"} 1"#,
        ] {
            let e = from_slice::<Body>(text.as_bytes()).unwrap_err();
            assert_eq!(e.field, "body", "{text}");
            assert!(e.problem.contains("after the JSON object"), "{text}: {e:?}");
        }
    }

    #[test]
    fn white_space_around_the_object_is_fine() {
        let got = from_slice::<Body>(b" \n{\"token\":\"t\"}\r\n\t ").unwrap();
        assert_eq!(got, Body { token: "t".into() });
    }
}
