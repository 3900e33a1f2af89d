//! Column lists and row decoding shared by the SQLite queries; times are Unix milliseconds.

use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::model::{ChannelRecord, Delivery, Device, Event, StoredMessage};
use crate::{Result, StoreError};

/// `SELECT` head and `FROM` clause that [`device`] decodes (alias `d`, with the pending
/// registration joined), as a literal for `concat!` so queries stay `&'static str`.
macro_rules! device_select {
    () => {
        "SELECT d.app, d.device_id, d.token, d.channel, d.user_id, d.tags, d.topics,
                d.app_version, d.state, d.invalid_reason, d.registration, d.created_at,
                d.updated_at, p.registration_id AS pending_token
         FROM devices d
         LEFT JOIN pending_registrations p ON p.app = d.app AND p.device_id = d.device_id"
    };
}
pub(super) use device_select;

/// Columns of `deliveries` that [`delivery`] reads, as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, message_id, app, device_id, token, channel, state, attempts, due_at, lease_until, deadline, provider_message_id, error_code, updated_at"
    };
}
pub(super) use delivery_columns;

/// Columns of `messages` that [`message`] reads, as a literal for `concat!`.
macro_rules! message_columns {
    () => {
        "id, app, payload, channel, ttl_secs, deliveries, queued, created_at"
    };
}
pub(super) use message_columns;

/// A time as stored: Unix milliseconds.
pub(super) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `t + d` as stored, saturating.
pub(super) fn ms_after(t: OffsetDateTime, d: Duration) -> i64 {
    ms(t).saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A stored time read back.
pub(super) fn from_ms(v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {v}: {e}")))
}

/// A stored non-negative count read back.
pub(super) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A JSON array of strings as stored in a text column.
fn string_list(row: &SqliteRow, column: &str) -> Result<Vec<String>> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("device {column} {text:?}: {e}")))
}

/// A sorted, duplicate-free list as stored (JSON text) and as returned.
pub(super) fn normalized_list(mut items: Vec<String>) -> (Vec<String>, String) {
    items.sort();
    items.dedup();
    let json = serde_json::Value::from(items.clone()).to_string();
    (items, json)
}

/// Decodes a row selected with `device_select!()`.
pub(super) fn device(row: &SqliteRow) -> Result<Device> {
    let state: String = row.try_get("state")?;
    let registration: String = row.try_get("registration")?;
    Ok(Device {
        app: row.try_get("app")?,
        device_id: row.try_get("device_id")?,
        token: row.try_get("token")?,
        channel: row.try_get("channel")?,
        user: row.try_get("user_id")?,
        tags: string_list(row, "tags")?,
        topics: string_list(row, "topics")?,
        app_version: row.try_get("app_version")?,
        state: state.parse()?,
        invalid_reason: row.try_get("invalid_reason")?,
        registration: registration.parse()?,
        pending_token: row.try_get("pending_token")?,
        created_at: from_ms(row.try_get("created_at")?)?,
        updated_at: from_ms(row.try_get("updated_at")?)?,
    })
}

/// Decodes a row selected with `delivery_columns!()`.
pub(super) fn delivery(row: &SqliteRow) -> Result<Delivery> {
    let state: String = row.try_get("state")?;
    let lease_until: Option<i64> = row.try_get("lease_until")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        message_id: row.try_get("message_id")?,
        app: row.try_get("app")?,
        device_id: row.try_get("device_id")?,
        token: row.try_get("token")?,
        channel: row.try_get("channel")?,
        state: state.parse()?,
        attempts: row.try_get("attempts")?,
        due_at: from_ms(row.try_get("due_at")?)?,
        lease_until: lease_until.map(from_ms).transpose()?,
        deadline: from_ms(row.try_get("deadline")?)?,
        provider_message_id: row.try_get("provider_message_id")?,
        error_code: row.try_get("error_code")?,
        updated_at: from_ms(row.try_get("updated_at")?)?,
    })
}

/// Decodes a row selected with `message_columns!()`.
pub(super) fn message(row: &SqliteRow) -> Result<StoredMessage> {
    let payload: String = row.try_get("payload")?;
    let payload = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Corrupt(format!("message payload: {e}")))?;
    Ok(StoredMessage {
        id: row.try_get("id")?,
        app: row.try_get("app")?,
        payload,
        channel_override: row.try_get("channel")?,
        ttl_secs: row.try_get("ttl_secs")?,
        deliveries: count(row.try_get("deliveries")?),
        queued: count(row.try_get("queued")?),
        created_at: from_ms(row.try_get("created_at")?)?,
    })
}

/// Decodes a row of `channels`.
pub(super) fn channel(row: &SqliteRow) -> Result<ChannelRecord> {
    Ok(ChannelRecord {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        is_default: row.try_get("is_default")?,
        endpoint: row.try_get("endpoint")?,
        credential_ref: row.try_get("credential_ref")?,
        credential_fingerprint: row.try_get("credential_fingerprint")?,
    })
}

/// Decodes a row of `events` (`seq, app, kind, device_id, data, created_at`).
pub(super) fn event(row: &SqliteRow) -> Result<Event> {
    let kind: String = row.try_get("kind")?;
    let data: String = row.try_get("data")?;
    let data =
        serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?;
    Ok(Event {
        seq: row.try_get("seq")?,
        app: row.try_get("app")?,
        kind: kind.parse()?,
        device_id: row.try_get("device_id")?,
        data,
        created_at: from_ms(row.try_get("created_at")?)?,
    })
}
