//! The compact key devices are found by token through (migration 0008): the first 8 bytes of
//! the token's SHA-256 as an integer. It is stored beside every token the store writes, and
//! every lookup by token names both, so that SQLite walks an index of small integers instead
//! of one holding every token again. Two tokens may share a key; the token itself is always
//! compared too, so a shared key costs a comparison, never a wrong answer.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

use crate::Result;

/// The key of `token`. Stored on disk: never change how it is computed.
pub(super) fn token_key(token: &str) -> i64 {
    let digest = Sha256::digest(token.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// `[[token, key], …]` as one JSON array, for a `json_each` that finds devices by token
/// (`j.value ->> 0` is the token, `j.value ->> 1` its key).
pub(super) fn keyed_tokens_json<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    Value::from_iter(tokens.into_iter().map(|t| json!([t, token_key(t)]))).to_string()
}

/// Devices written before the key existed, filled in per batch of this many.
const FILL_BATCH: i64 = 10_000;

/// Gives every device that has a token and no key its key: run by the migration that added
/// the column, in its transaction.
pub(super) async fn fill_missing(conn: &mut SqliteConnection) -> Result<u64> {
    let mut filled = 0;
    let mut after_rowid = i64::MIN;
    loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT rowid, token FROM devices
             WHERE rowid > $1 AND token IS NOT NULL AND token_key IS NULL
             ORDER BY rowid LIMIT $2",
        )
        .bind(after_rowid)
        .bind(FILL_BATCH)
        .fetch_all(&mut *conn)
        .await?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(filled);
        };
        after_rowid = last;
        let keys = Value::from_iter(
            rows.iter()
                .map(|(rowid, token)| json!([rowid, token_key(token)])),
        );
        sqlx::query(
            "UPDATE devices SET token_key = j.value ->> 1
             FROM json_each($1) j WHERE devices.rowid = j.value ->> 0",
        )
        .bind(keys.to_string())
        .execute(&mut *conn)
        .await?;
        filled += rows.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is stored on disk, so its value for a given token must never change: these
    /// are the first 8 bytes of SHA-256 as printed by `printf %s TOKEN | sha256sum`.
    #[test]
    fn the_key_is_the_first_eight_bytes_of_sha256() {
        assert_eq!(
            token_key(""),
            i64::from_be_bytes(0xe3b0c44298fc1c14u64.to_be_bytes())
        );
        assert_eq!(
            token_key("abc"),
            i64::from_be_bytes(0xba7816bf8f01cfeau64.to_be_bytes())
        );
    }

    #[test]
    fn keyed_tokens_pair_each_token_with_its_key() {
        let json: Value = serde_json::from_str(&keyed_tokens_json(["a", "b"])).unwrap();
        assert_eq!(json, json!([["a", token_key("a")], ["b", token_key("b")]]));
    }
}
