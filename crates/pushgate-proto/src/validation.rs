//! The one error type for input that breaks a protocol rule.

/// A request that breaks a protocol rule, naming the field and the limit it breaks.
///
/// Exists so that every layer (client, emulator, gateway API) reports bad input the same way:
/// `field` is a dotted path (`data.from`, `registration_ids`), `problem` says what is wrong
/// in words that include the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// Dotted path of the offending field, as it is named on the wire.
    pub field: String,
    /// What is wrong with it, including the limit that was broken.
    pub problem: String,
}

impl ValidationError {
    /// Builds an error for `field` with a human-readable `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
