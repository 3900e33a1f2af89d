//! Column lists and row decoding shared by the SQLite queries; times are Unix milliseconds.

use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::model::{Delivery, Device, Event};
use crate::{Result, StoreError};

/// Columns of `devices` that [`device`] reads, as a literal for `concat!` (queries stay `&'static str`).
macro_rules! device_columns {
    () => {
        "app, device_id, token, channel, user_id, tags, app_version, state, invalid_reason, confirmed, created_at, updated_at"
    };
}
pub(super) use device_columns;

/// Columns of `deliveries` that [`delivery`] reads, as a literal for `concat!`.
macro_rules! delivery_columns {
    () => {
        "id, message_id, app, device_id, token, channel, state, attempts, due_at, lease_until, deadline, provider_message_id, error_code, updated_at"
    };
}
pub(super) use delivery_columns;

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

/// Decodes a row selected with `device_columns!()`.
pub(super) fn device(row: &SqliteRow) -> Result<Device> {
    let tags: String = row.try_get("tags")?;
    let tags = serde_json::from_str(&tags)
        .map_err(|e| StoreError::Corrupt(format!("device tags {tags:?}: {e}")))?;
    let state: String = row.try_get("state")?;
    Ok(Device {
        app: row.try_get("app")?,
        device_id: row.try_get("device_id")?,
        token: row.try_get("token")?,
        channel: row.try_get("channel")?,
        user: row.try_get("user_id")?,
        tags,
        app_version: row.try_get("app_version")?,
        state: state.parse()?,
        invalid_reason: row.try_get("invalid_reason")?,
        confirmed: row.try_get("confirmed")?,
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
