//! Helpers for handling registration tokens safely.

/// Shortens a token for log lines: tokens identify a device and must not be logged whole.
pub fn short_token(token: &str) -> String {
    let prefix: String = token.chars().take(8).collect();
    if prefix.len() < token.len() {
        format!("{prefix}…")
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_are_cut_to_eight_characters() {
        assert_eq!(short_token("abcdefghijklmnop"), "abcdefgh…");
        assert_eq!(short_token("abc"), "abc");
    }
}
