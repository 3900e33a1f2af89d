//! Apps, their channels, and the device registry as the device API changes it.

use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::registry::{self, Labels};
use super::rows::{self, device_select, ms, normalized_list};
use super::token_key::token_key;
use crate::model::{
    App, ChannelRecord, Device, DeviceFilter, DeviceState, NewDevice, Page, PutDevice,
};
use crate::rules;
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
    app(&row)
}

fn app(row: &sqlx::sqlite::SqliteRow) -> Result<App> {
    Ok(App {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_default: row.try_get("is_default")?,
    })
}

/// Every app by name.
pub(super) async fn apps(conn: &mut SqliteConnection) -> Result<Vec<App>> {
    let rows = sqlx::query("SELECT id, name, is_default FROM apps ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter().map(app).collect()
}

/// Replaces the app's channel records.
pub(super) async fn sync_channels(
    conn: &mut SqliteConnection,
    app: &str,
    channels: &[ChannelRecord],
    now: OffsetDateTime,
) -> Result<()> {
    registry::require_app(&mut *conn, app).await?;
    sqlx::query("DELETE FROM channels WHERE app = $1")
        .bind(app)
        .execute(&mut *conn)
        .await?;
    for c in channels {
        sqlx::query(
            "INSERT INTO channels (app, name, kind, is_default, endpoint, credential_ref,
                                   credential_fingerprint, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(app)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(c.is_default)
        .bind(&c.endpoint)
        .bind(&c.credential_ref)
        .bind(&c.credential_fingerprint)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The app's channel records by name.
pub(super) async fn list_channels(
    conn: &mut SqliteConnection,
    app: &str,
) -> Result<Vec<ChannelRecord>> {
    let rows = sqlx::query(
        "SELECT name, kind, is_default, endpoint, credential_ref, credential_fingerprint
         FROM channels WHERE app = $1 ORDER BY name",
    )
    .bind(app)
    .fetch_all(conn)
    .await?;
    rows.iter().map(rows::channel).collect()
}

/// The stored state and token of a device, if it exists.
pub(super) async fn current(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
) -> Result<Option<(DeviceState, Option<String>)>> {
    let row = sqlx::query("SELECT state, token FROM devices WHERE app = $1 AND device_id = $2")
        .bind(app)
        .bind(device_id)
        .fetch_optional(conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let state: String = row.try_get("state")?;
            Ok(Some((state.parse()?, row.try_get("token")?)))
        }
    }
}

/// Registers or updates a device through the API (the app must exist).
pub(super) async fn put(
    conn: &mut SqliteConnection,
    app: &str,
    device: NewDevice,
    now: OffsetDateTime,
) -> Result<PutDevice> {
    let before = current(&mut *conn, app, &device.device_id).await?;
    let state = match (device.state, &before) {
        (Some(DeviceState::Invalid), _) => {
            return Err(StoreError::InvalidInput(
                "state: only the provider makes a device invalid".into(),
            ));
        }
        (Some(state), _) => state,
        (None, Some((DeviceState::Disabled, _))) => DeviceState::Disabled,
        (None, _) => DeviceState::Active,
    };
    let took_over_from =
        registry::take_over(&mut *conn, app, &device.device_id, &device.token, now).await?;
    let (tags, tags_json) = normalized_list(device.tags);
    let (topics, topics_json) = normalized_list(device.topics);
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, token_key, channel, user_id, tags, topics,
                              app_version, state, invalid_reason, registration, created_at,
                              updated_at)
         VALUES ($1, $2, $3, $11, $4, $5, $6, $7, $8, $9, NULL, 'api', $10, $10)
         ON CONFLICT (app, device_id) DO UPDATE SET
             token = excluded.token,
             token_key = excluded.token_key,
             channel = excluded.channel,
             user_id = excluded.user_id,
             tags = excluded.tags,
             topics = excluded.topics,
             app_version = excluded.app_version,
             state = excluded.state,
             invalid_reason = NULL,
             registration = 'api',
             updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(&device.device_id)
    .bind(&device.token)
    .bind(&device.channel)
    .bind(&device.user)
    .bind(tags_json)
    .bind(topics_json)
    .bind(&device.app_version)
    .bind(state.as_str())
    .bind(ms(now))
    .bind(token_key(&device.token))
    .execute(&mut *conn)
    .await?;
    // A registration through the API supersedes one waiting for C2DM-era confirmation.
    let existed = before.is_some();
    if existed {
        sqlx::query("DELETE FROM pending_registrations WHERE app = $1 AND device_id = $2")
            .bind(app)
            .bind(&device.device_id)
            .execute(&mut *conn)
            .await?;
    }
    // A new device has no labels, no pending registration and no waiting work yet.
    registry::replace_labels(
        &mut *conn,
        Labels::Tags,
        app,
        &device.device_id,
        &tags,
        existed,
    )
    .await?;
    registry::replace_labels(
        &mut *conn,
        Labels::Topics,
        app,
        &device.device_id,
        &topics,
        existed,
    )
    .await?;
    if existed {
        registry::follow_token(&mut *conn, app, &device.device_id, &device.token, now).await?;
    }
    if state == DeviceState::Disabled
        && existed
        && let Some((delivery_state, error)) = rules::registry::waiting_work_on(state)
    {
        registry::settle_waiting(conn, app, &device.device_id, delivery_state, error, now).await?;
    }
    Ok(PutDevice {
        created: before.is_none(),
        took_over_from,
    })
}

/// One device, if registered.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
) -> Result<Option<Device>> {
    let row = sqlx::query(concat!(
        device_select!(),
        " WHERE d.app = $1 AND d.device_id = $2"
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
        device_select!(),
        " WHERE d.app = $1
           AND ($2 IS NULL OR d.user_id = $2)
           AND ($3 IS NULL OR d.state = $3)
           AND ($4 IS NULL OR EXISTS (SELECT 1 FROM device_tags t
                WHERE t.app = d.app AND t.device_id = d.device_id AND t.tag = $4))
           AND ($5 IS NULL OR EXISTS (SELECT 1 FROM device_topics s
                WHERE s.app = d.app AND s.device_id = d.device_id AND s.topic = $5))
           AND ($6 IS NULL OR d.device_id > $6)
         ORDER BY d.device_id
         LIMIT $7"
    ))
    .bind(app)
    .bind(&filter.user)
    .bind(filter.state.map(DeviceState::as_str))
    .bind(&filter.tag)
    .bind(&filter.topic)
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

/// Removes a device (tags, topics and pending registration go with it); its waiting work fails.
pub(super) async fn delete(
    conn: &mut SqliteConnection,
    app: &str,
    device_id: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let (delivery_state, error) = rules::registry::DELETED_WORK;
    registry::settle_waiting(&mut *conn, app, device_id, delivery_state, error, now).await?;
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
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    if let Some((delivery_state, error)) = rules::registry::waiting_work_on(state) {
        registry::settle_waiting(conn, app, device_id, delivery_state, error, now).await?;
    }
    Ok(())
}
