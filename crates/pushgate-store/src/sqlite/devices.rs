//! Apps and the device registry.

use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::rows::{self, device_columns, ms};
use crate::model::{App, Device, DeviceFilter, DeviceState, NewDevice, Page, PutDevice};
use crate::{Result, StoreError};

/// Creates or updates an app; a new default app clears the flag on the others.
pub(super) async fn upsert_app(
    conn: &mut SqliteConnection,
    name: &str,
    is_default: bool,
) -> Result<App> {
    if is_default {
        sqlx::query("UPDATE apps SET is_default = FALSE WHERE name <> $1 AND is_default")
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    let row = sqlx::query(
        "INSERT INTO apps (name, is_default) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET is_default = excluded.is_default
         RETURNING id, name, is_default",
    )
    .bind(name)
    .bind(is_default)
    .fetch_one(&mut *conn)
    .await?;
    Ok(App {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_default: row.try_get("is_default")?,
    })
}

/// Registers or updates a device, taking its token over from any other live device.
pub(super) async fn put(
    conn: &mut SqliteConnection,
    app: &str,
    device: NewDevice,
    now: OffsetDateTime,
) -> Result<PutDevice> {
    let app_known: Option<i64> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(app)
        .fetch_optional(&mut *conn)
        .await?;
    if app_known.is_none() {
        return Err(StoreError::NotFound);
    }
    let existed: Option<String> =
        sqlx::query_scalar("SELECT device_id FROM devices WHERE app = $1 AND device_id = $2")
            .bind(app)
            .bind(&device.device_id)
            .fetch_optional(&mut *conn)
            .await?;
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT device_id FROM devices
         WHERE app = $1 AND token = $2 AND state <> 'invalid' AND device_id <> $3",
    )
    .bind(app)
    .bind(&device.token)
    .bind(&device.device_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(holder) = &holder {
        sqlx::query(
            "UPDATE devices SET state = 'invalid', invalid_reason = $1, updated_at = $2
             WHERE app = $3 AND device_id = $4",
        )
        .bind(format!("token taken over by {}", device.device_id))
        .bind(ms(now))
        .bind(app)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    }

    let mut tags = device.tags;
    tags.sort();
    tags.dedup();
    let tags_json = serde_json::Value::from(tags.clone()).to_string();
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, channel, user_id, tags, app_version,
                              state, invalid_reason, confirmed, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', NULL, FALSE, $8, $8)
         ON CONFLICT (app, device_id) DO UPDATE SET
             token = excluded.token,
             channel = excluded.channel,
             user_id = excluded.user_id,
             tags = excluded.tags,
             app_version = excluded.app_version,
             state = CASE WHEN devices.state = 'disabled' THEN 'disabled' ELSE 'active' END,
             invalid_reason = NULL,
             confirmed = CASE WHEN devices.token = excluded.token
                              THEN devices.confirmed ELSE FALSE END,
             updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(&device.device_id)
    .bind(&device.token)
    .bind(&device.channel)
    .bind(&device.user)
    .bind(tags_json)
    .bind(&device.app_version)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;

    sqlx::query("DELETE FROM device_tags WHERE app = $1 AND device_id = $2")
        .bind(app)
        .bind(&device.device_id)
        .execute(&mut *conn)
        .await?;
    for tag in &tags {
        sqlx::query("INSERT INTO device_tags (app, device_id, tag) VALUES ($1, $2, $3)")
            .bind(app)
            .bind(&device.device_id)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
    }
    // Work still waiting for this device goes to its current token.
    sqlx::query(
        "UPDATE deliveries SET token = $1, updated_at = $2
         WHERE app = $3 AND device_id = $4 AND state IN ('queued', 'retry_wait') AND token <> $1",
    )
    .bind(&device.token)
    .bind(ms(now))
    .bind(app)
    .bind(&device.device_id)
    .execute(&mut *conn)
    .await?;

    Ok(PutDevice {
        created: existed.is_none(),
        took_over_from: holder,
    })
}

/// One device, if registered.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
) -> Result<Option<Device>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        device_columns!(),
        " FROM devices WHERE app = $1 AND device_id = $2"
    ))
    .bind(app)
    .bind(device_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::device).transpose()
}

/// A page of the app's devices in device-id order.
pub(super) async fn list(
    conn: &mut SqliteConnection,
    app: &str,
    filter: &DeviceFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Device, String>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        device_columns!(),
        " FROM devices d
         WHERE d.app = $1
           AND ($2 IS NULL OR d.user_id = $2)
           AND ($3 IS NULL OR d.state = $3)
           AND ($4 IS NULL OR EXISTS (SELECT 1 FROM device_tags t
                WHERE t.app = d.app AND t.device_id = d.device_id AND t.tag = $4))
           AND ($5 IS NULL OR d.device_id > $5)
         ORDER BY d.device_id
         LIMIT $6"
    ))
    .bind(app)
    .bind(&filter.user)
    .bind(filter.state.map(DeviceState::as_str))
    .bind(&filter.tag)
    .bind(cursor)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    let mut items = rows.iter().map(rows::device).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.device_id.clone())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Removes a device (its tags go with it).
pub(super) async fn delete(conn: &mut SqliteConnection, app: &str, device_id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM devices WHERE app = $1 AND device_id = $2")
        .bind(app)
        .bind(device_id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Sets a device's state; the reason is kept only for `Invalid`.
pub(super) async fn set_state(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    state: DeviceState,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<()> {
    let reason = if state == DeviceState::Invalid {
        reason
    } else {
        None
    };
    let done = sqlx::query(
        "UPDATE devices SET state = $1, invalid_reason = $2, updated_at = $3
         WHERE app = $4 AND device_id = $5",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(ms(now))
    .bind(app)
    .bind(device_id)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
