//! Secrets by reference: configuration names where a secret lives (`env:NAME`, `file:PATH`),
//! the gateway reads it at start, and only the reference and a fingerprint are ever shown.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from, as written in the configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SecretRef {
    /// `env:NAME`: the value of an environment variable.
    Env(String),
    /// `file:PATH`: the contents of a file (surrounding whitespace trimmed for keys).
    File(PathBuf),
    /// Anything else: the secret written in the configuration itself (discouraged).
    Inline(String),
}

impl TryFrom<String> for SecretRef {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if let Some(name) = s.strip_prefix("env:") {
            if name.is_empty() {
                return Err("env: needs a variable name, e.g. env:FCM_KEY".into());
            }
            Ok(SecretRef::Env(name.to_string()))
        } else if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path, e.g. file:/etc/pushgate/key".into());
            }
            Ok(SecretRef::File(PathBuf::from(path)))
        } else if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(SecretRef::Inline(s))
        }
    }
}

impl fmt::Debug for SecretRef {
    /// Shows the reference, never an inline secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl SecretRef {
    /// A file reference (a bare path where the configuration means a file, like a key file).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef::File(path.into())
    }

    /// The reference as operators may see it: `env:NAME`, `file:PATH` or `inline`.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{}", path.display()),
            SecretRef::Inline(_) => "inline".to_string(),
        }
    }

    /// Reads the secret. Keys are trimmed; `raw` keeps file contents as they are (JSON key
    /// files). The error names the reference, never the value.
    pub fn load(&self, raw: bool) -> Result<Secret, String> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?,
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            SecretRef::Inline(v) => v.clone(),
        };
        let value = if raw { value } else { value.trim().to_string() };
        if value.is_empty() {
            return Err(format!("{} is empty", self.describe()));
        }
        Ok(Secret::new(value, self.describe()))
    }
}

/// A secret value in memory: never printed, compared or logged by accident.
#[derive(Clone)]
pub struct Secret {
    value: String,
    reference: String,
}

impl Secret {
    /// Wraps a value read from `reference`.
    pub fn new(value: impl Into<String>, reference: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            reference: reference.into(),
        }
    }

    /// The value, for the one place that must send it (an HTTP header, a login form).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where it came from.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// `sha256:` and the first 12 hex digits of the value's SHA-256: tells two credentials
    /// apart without revealing either.
    pub fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.value.as_bytes());
        let hex: String = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_never_show_inline_values() {
        assert_eq!(
            SecretRef::try_from("env:KEY".to_string()).unwrap(),
            SecretRef::Env("KEY".into())
        );
        assert_eq!(
            SecretRef::try_from("file:/k".to_string()).unwrap(),
            SecretRef::File("/k".into())
        );
        let inline = SecretRef::try_from("hunter2".to_string()).unwrap();
        assert_eq!(format!("{inline:?}"), "inline");
        assert!(SecretRef::try_from("env:".to_string()).is_err());
        assert!(SecretRef::try_from(String::new()).is_err());
        let secret = inline.load(false).unwrap();
        assert_eq!(secret.expose(), "hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn fingerprints_differ_per_value_and_hide_it() {
        let a = Secret::new("alpha", "inline").fingerprint();
        let b = Secret::new("beta", "inline").fingerprint();
        assert_ne!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == "sha256:".len() + 12);
        // The known SHA-256 of "alpha" starts 8ed3f6ad685b.
        assert_eq!(a, "sha256:8ed3f6ad685b");
    }

    #[test]
    fn load_errors_name_the_reference_not_a_value() {
        let missing = SecretRef::Env("PUSHGATE_TEST_SURELY_UNSET_VAR".into());
        let err = missing.load(false).unwrap_err();
        assert!(err.contains("PUSHGATE_TEST_SURELY_UNSET_VAR"));
        let file = SecretRef::File("/nonexistent/pushgate/key".into());
        assert!(
            file.load(true)
                .unwrap_err()
                .contains("/nonexistent/pushgate/key")
        );
    }
}
