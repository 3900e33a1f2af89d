//! Rows read back into the model, written once for every backend: a backend's row type only
//! says how one column of each stored kind is read ([`RowRead`]).

use sqlx::Row;
use uuid::Uuid;

use super::{count, from_ms};
use crate::model::{ChannelRecord, Delivery, Device, Event, StoredMessage, WebhookState};
use crate::rules::events::DeliveryRef;
use crate::{Result, StoreError};

/// Reading one column of each kind the schema stores, by name.
pub(crate) trait RowRead {
    /// A `TEXT` column.
    fn text(&self, column: &str) -> Result<String>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    /// A `BIGINT` column.
    fn int(&self, column: &str) -> Result<i64>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
    /// A message id.
    fn uuid(&self, column: &str) -> Result<Uuid>;
    /// A `BOOLEAN` column.
    fn flag(&self, column: &str) -> Result<bool>;
}

/// Implements [`RowRead`] for a backend's row type with `sqlx::Row::try_get`.
macro_rules! row_read {
    ($row:ty) => {
        impl RowRead for $row {
            fn text(&self, column: &str) -> Result<String> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>> {
                Ok(self.try_get(column)?)
            }
            fn int(&self, column: &str) -> Result<i64> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>> {
                Ok(self.try_get(column)?)
            }
            fn uuid(&self, column: &str) -> Result<Uuid> {
                Ok(self.try_get(column)?)
            }
            fn flag(&self, column: &str) -> Result<bool> {
                Ok(self.try_get(column)?)
            }
        }
    };
}

row_read!(sqlx::sqlite::SqliteRow);
row_read!(sqlx::postgres::PgRow);

/// One delivery read back as a JSON array in the order of [`delivery_json_array`], for
/// statements that return many rows as a single aggregated value: one hand-off from SQLite's
/// thread instead of one per row, and decoded straight into its fields (no map of column
/// names per row). The message id (a blob) comes as hex text.
///
/// [`delivery_json_array`]: super::delivery_json_array
#[derive(Debug, serde::Deserialize)]
pub(crate) struct JsonDelivery(
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

impl JsonDelivery {
    /// Parses an aggregated array of deliveries.
    pub(crate) fn parse_all(json: &str, what: &str) -> Result<Vec<JsonDelivery>> {
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
    }

    /// The delivery it holds.
    pub(crate) fn into_delivery(self) -> Result<Delivery> {
        let JsonDelivery(
            id,
            message_id,
            app,
            device_id,
            token,
            channel,
            state,
            attempts,
            due_at,
            lease_until,
            deadline,
            provider_message_id,
            error_code,
            updated_at,
        ) = self;
        Ok(Delivery {
            id,
            message_id: Uuid::try_parse(&message_id)
                .map_err(|e| StoreError::Corrupt(format!("delivery {id} message id: {e}")))?,
            app,
            device_id,
            token,
            channel,
            state: state.parse()?,
            attempts,
            due_at: from_ms(due_at)?,
            lease_until: lease_until.map(from_ms).transpose()?,
            deadline: from_ms(deadline)?,
            provider_message_id,
            error_code,
            updated_at: from_ms(updated_at)?,
        })
    }
}

/// A stored time column read back.
fn time(row: &impl RowRead, column: &str) -> Result<time::OffsetDateTime> {
    from_ms(row.int(column)?)
}

/// A JSON array of strings as stored in a text column.
fn string_list(row: &impl RowRead, column: &str) -> Result<Vec<String>> {
    let text = row.text(column)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("device {column} {text:?}: {e}")))
}

/// JSON stored as text, read back.
fn json(row: &impl RowRead, column: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&row.text(column)?)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Decodes a row selected with `device_select!()`.
pub(crate) fn device(row: &impl RowRead) -> Result<Device> {
    Ok(Device {
        app: row.text("app")?,
        device_id: row.text("device_id")?,
        token: row.opt_text("token")?,
        channel: row.opt_text("channel")?,
        user: row.opt_text("user_id")?,
        tags: string_list(row, "tags")?,
        topics: string_list(row, "topics")?,
        app_version: row.opt_text("app_version")?,
        state: row.text("state")?.parse()?,
        invalid_reason: row.opt_text("invalid_reason")?,
        registration: row.text("registration")?.parse()?,
        pending_token: row.opt_text("pending_token")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// Decodes a row selected with `delivery_columns!()`.
pub(crate) fn delivery(row: &impl RowRead) -> Result<Delivery> {
    Ok(Delivery {
        id: row.int("id")?,
        message_id: row.uuid("message_id")?,
        app: row.text("app")?,
        device_id: row.opt_text("device_id")?,
        token: row.text("token")?,
        channel: row.text("channel")?,
        state: row.text("state")?.parse()?,
        attempts: row.int("attempts")?,
        due_at: time(row, "due_at")?,
        lease_until: row.opt_int("lease_until")?.map(from_ms).transpose()?,
        deadline: time(row, "deadline")?,
        provider_message_id: row.opt_text("provider_message_id")?,
        error_code: row.opt_text("error_code")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// Decodes a row selected with `message_columns!()`.
pub(crate) fn message(row: &impl RowRead) -> Result<StoredMessage> {
    Ok(StoredMessage {
        id: row.uuid("id")?,
        app: row.text("app")?,
        payload: json(row, "payload", "message payload")?,
        channel_override: row.opt_text("channel")?,
        ttl_secs: row.int("ttl_secs")?,
        deliveries: count(row.int("deliveries")?),
        queued: count(row.int("queued")?),
        expanding: row.flag("expanding")?,
        created_at: time(row, "created_at")?,
    })
}

/// Decodes a row of `channels`.
pub(crate) fn channel(row: &impl RowRead) -> Result<ChannelRecord> {
    Ok(ChannelRecord {
        name: row.text("name")?,
        kind: row.text("kind")?,
        is_default: row.flag("is_default")?,
        endpoint: row.text("endpoint")?,
        credential_ref: row.text("credential_ref")?,
        credential_fingerprint: row.text("credential_fingerprint")?,
    })
}

/// Decodes a row of `events` (`seq, app, kind, device_id, data, created_at`).
pub(crate) fn event(row: &impl RowRead) -> Result<Event> {
    Ok(Event {
        seq: row.int("seq")?,
        app: row.text("app")?,
        kind: row.text("kind")?.parse()?,
        device_id: row.opt_text("device_id")?,
        data: json(row, "data", "event data")?,
        created_at: time(row, "created_at")?,
    })
}

/// Decodes a row of `webhooks` (`app, delivered_seq, attempts, last_error, last_attempt_at,
/// next_attempt_at`).
pub(crate) fn webhook(row: &impl RowRead) -> Result<WebhookState> {
    Ok(WebhookState {
        app: row.text("app")?,
        delivered_seq: row.int("delivered_seq")?,
        attempts: row.int("attempts")?,
        last_error: row.opt_text("last_error")?,
        last_attempt_at: row.opt_int("last_attempt_at")?.map(from_ms).transpose()?,
        next_attempt_at: time(row, "next_attempt_at")?,
    })
}

/// Reads `id, message_id, device_id, token` from a row: the delivery as events name it.
pub(crate) fn delivery_ref(row: &impl RowRead) -> Result<DeliveryRef> {
    Ok(DeliveryRef {
        delivery_id: row.int("id")?,
        message_id: row.uuid("message_id")?,
        device_id: row.opt_text("device_id")?,
        token: row.text("token")?,
    })
}
