//! How values are stored, the same on every backend: times as Unix milliseconds, lists as
//! sorted JSON arrays, the column lists every backend selects, and decoding a row into the
//! model. Backends only say how a column is read ([`decode::RowRead`]).

pub(crate) mod audience;
pub(crate) mod decode;
pub mod fanout;
pub(crate) mod purge;
pub(crate) mod reads;
pub(crate) mod stats;
pub(crate) mod webhooks;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use time::OffsetDateTime;

use uuid::Uuid;

use crate::model::{InsertOutcome, NewMessage, Page, Targets};
use crate::{Result, StoreError};

/// `SELECT` head and `FROM` clause that [`decode::device`] decodes (alias `d`, with the
/// pending registration joined), as a literal for `concat!` so queries stay `&'static str`.
macro_rules! device_select {
    () => {
        "SELECT d.app, d.device_id, d.token, d.channel, d.user_id, d.tags, d.topics,
                d.app_version, d.state, d.invalid_reason, d.registration, d.created_at,
                d.updated_at, p.registration_id AS pending_token
         FROM devices d
         LEFT JOIN pending_registrations p ON p.app = d.app AND p.device_id = d.device_id"
    };
}
pub(crate) use device_select;

/// Columns of `deliveries` that [`decode::delivery`] reads, as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, message_id, app, device_id, token, channel, state, attempts, due_at, lease_until, deadline, provider_message_id, error_code, updated_at"
    };
}
pub(crate) use delivery_columns;

/// The columns of `delivery_columns!()`, in that order, as the arguments of SQLite's
/// `json_array`, for reading many deliveries back as one value (see
/// [`decode::JsonDelivery`]).
macro_rules! delivery_json_array {
    () => {
        "json_array(id, hex(message_id), app, device_id, token, channel, state, attempts,
             due_at, lease_until, deadline, provider_message_id, error_code, updated_at)"
    };
}
pub(crate) use delivery_json_array;

/// Columns of `messages` that [`decode::message`] reads, as a literal for `concat!`.
macro_rules! message_columns {
    () => {
        "id, app, payload, channel, ttl_secs, deliveries, queued, created_at,
         (expansion IS NOT NULL) AS expanding"
    };
}
pub(crate) use message_columns;

/// A time as stored: Unix milliseconds.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `t + d` as stored, saturating.
pub(crate) fn ms_after(t: OffsetDateTime, d: Duration) -> i64 {
    ms(t).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A stored time read back.
pub(crate) fn from_ms(v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}

/// A stored non-negative count read back.
pub(crate) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A sorted, duplicate-free list as stored (JSON text) and as returned.
pub(crate) fn normalized_list(mut items: Vec<String>) -> (Vec<String>, String) {
    items.sort();
    items.dedup();
    let json = serde_json::Value::from(items.clone()).to_string();
    (items, json)
}

/// The message's deadline as stored: acceptance plus TTL.
pub(crate) fn deadline_ms(msg: &NewMessage) -> i64 {
    ms(msg.created_at).saturating_add(msg.ttl_secs.saturating_mul(1000))
}

/// The result of inserting a message row, with a foreign-key violation (its app unknown)
/// answered as [`StoreError::NotFound`]: the key answers for the app, so no lookup of the app
/// comes before every message.
pub(crate) fn app_known<T>(inserted: Result<T>) -> Result<T> {
    match inserted {
        Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => {
            Err(StoreError::NotFound)
        }
        other => other,
    }
}

/// Refuses a message that queued deliveries on a channel outside its own list
/// ([`NewMessage::channels`]), naming the first such channel; the caller's transaction is
/// then undone.
pub(crate) fn check_listed(msg: &NewMessage, queued_channels: &[String]) -> Result<()> {
    let Some(listed) = &msg.channels else {
        return Ok(());
    };
    match queued_channels.iter().find(|c| !listed.contains(c)) {
        Some(unlisted) => Err(StoreError::UnlistedChannel(unlisted.clone())),
        None => Ok(()),
    }
}

/// The inputs of a batch insert whose message row was stored (`inserted` holds their ids):
/// the others repeat an idempotency key.
pub(crate) fn inserted_inputs<'a>(
    inputs: &'a [(NewMessage, Targets)],
    inserted: &HashSet<Uuid>,
) -> Vec<&'a (NewMessage, Targets)> {
    inputs
        .iter()
        .filter(|(m, _)| inserted.contains(&m.id))
        .collect()
}

/// Checks every message of a batch insert against its channel list ([`check_listed`]): one
/// refused fails the batch, which the store then runs split, so that message alone is
/// refused.
pub(crate) fn check_batch_listed<'a>(
    fresh: impl IntoIterator<Item = &'a NewMessage>,
    queued: &HashMap<Uuid, String>,
) -> Result<()> {
    for msg in fresh {
        if let Some(channel) = queued.get(&msg.id) {
            check_listed(msg, std::slice::from_ref(channel))?;
        }
    }
    Ok(())
}

/// The answers of a batch insert of single-device messages, in the order of `inputs`, as
/// `Result<Vec<InsertOutcome>>`: [`stored_answers`], with a repeated idempotency key answered
/// by `$earlier(&mut *$conn, msg)`, the backend's read of the earlier message (last: it may
/// be a message of this same batch).
macro_rules! batch_answers {
    ($conn:ident, $inputs:ident, $settled:ident, $queued:ident, $earlier:ident) => {{
        let mut out = Vec::with_capacity($inputs.len());
        let answers = $crate::stored::stored_answers($inputs, $settled, &$queued);
        for (answer, (msg, _)) in answers.into_iter().zip($inputs) {
            out.push(match answer {
                Some(outcome) => outcome,
                None => $earlier(&mut *$conn, msg).await?,
            });
        }
        Ok(out)
    }};
}
pub(crate) use batch_answers;

/// The answers of a batch insert of single-device messages, in the order of `inputs`: a
/// message whose device could not be sent to answers its own `settled` outcome, one queued
/// its one delivery on the channel in `queued`; `None` for a repeated idempotency key, whose
/// earlier message the store reads.
pub(crate) fn stored_answers(
    inputs: &[(NewMessage, Targets)],
    mut settled: HashMap<Uuid, InsertOutcome>,
    queued: &HashMap<Uuid, String>,
) -> Vec<Option<InsertOutcome>> {
    inputs
        .iter()
        .map(
            |(msg, _)| match (settled.remove(&msg.id), queued.get(&msg.id)) {
                (Some(outcome), _) => Some(outcome),
                (None, Some(channel)) => Some(InsertOutcome {
                    message_id: msg.id,
                    deliveries: 1,
                    queued: 1,
                    duplicate: false,
                    same_request: true,
                    expanding: false,
                    queued_channels: vec![channel.clone()],
                }),
                (None, None) => None,
            },
        )
        .collect()
}

/// A keyset page from `limit + 1` rows read in cursor order: the extra row only says that
/// another page follows, whose cursor is the last kept item's key.
pub(crate) fn page<T, C>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Page<T, C> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn times_round_trip_through_milliseconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
            + time::Duration::milliseconds(123);
        assert_eq!(ms(t), 1_700_000_000_123);
        assert_eq!(from_ms(ms(t)).unwrap(), t);
        assert_eq!(ms_after(t, Duration::from_secs(2)), 1_700_000_002_123);
    }

    #[test]
    fn lists_are_stored_sorted_without_duplicates() {
        let (items, json) = normalized_list(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(items, ["a", "b"]);
        assert_eq!(json, r#"["a","b"]"#);
    }

    #[test]
    fn a_page_keeps_limit_items_and_names_the_next_cursor_only_when_more_follow() {
        let full = page(vec![1, 2, 3], 2, |n| *n);
        assert_eq!((full.items, full.next_cursor), (vec![1, 2], Some(2)));
        let last = page(vec![1, 2], 2, |n| *n);
        assert_eq!((last.items, last.next_cursor), (vec![1, 2], None));
    }
}
