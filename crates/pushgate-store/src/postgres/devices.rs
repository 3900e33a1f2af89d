//! Apps, their channels, and the device registry as the device API changes it.

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::registry::{self, Labels};
use crate::model::{
    App, ChannelRecord, Device, DeviceFilter, DeviceState, NewDevice, Page, PutDevice,
};
use crate::rules;
use crate::stored::{decode, device_select, ms, normalized_list, page};
use crate::{Result, StoreError};

/// Creates or updates an app; a new default app clears the flag on the others.
pub(super) async fn upsert_app(
    conn: &mut PgConnection,
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

fn app(row: &sqlx::postgres::PgRow) -> Result<App> {
    Ok(App {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        is_default: row.try_get("is_default")?,
    })
}

/// Every app by name.
pub(super) async fn apps(conn: &mut PgConnection) -> Result<Vec<App>> {
    let rows = sqlx::query("SELECT id, name, is_default FROM apps ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter().map(app).collect()
}

/// Replaces the app's channel records (one multi-row insert).
pub(super) async fn sync_channels(
    conn: &mut PgConnection,
    app: &str,
    channels: &[ChannelRecord],
    now: OffsetDateTime,
) -> Result<()> {
    registry::require_app(&mut *conn, app).await?;
    sqlx::query("DELETE FROM channels WHERE app = $1")
        .bind(app)
        .execute(&mut *conn)
        .await?;
    let column = |f: fn(&ChannelRecord) -> &String| -> Vec<String> {
        channels.iter().map(|c| f(c).clone()).collect()
    };
    sqlx::query(
        "INSERT INTO channels (app, name, kind, is_default, endpoint, credential_ref,
                               credential_fingerprint, updated_at)
         SELECT $1, c.name, c.kind, c.is_default, c.endpoint, c.credential_ref,
                c.credential_fingerprint, $2
         FROM unnest($3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::text[])
              AS c(name, kind, is_default, endpoint, credential_ref, credential_fingerprint)",
    )
    .bind(app)
    .bind(ms(now))
    .bind(column(|c| &c.name))
    .bind(column(|c| &c.kind))
    .bind(channels.iter().map(|c| c.is_default).collect::<Vec<bool>>())
    .bind(column(|c| &c.endpoint))
    .bind(column(|c| &c.credential_ref))
    .bind(column(|c| &c.credential_fingerprint))
    .execute(conn)
    .await?;
    Ok(())
}

/// The app's channel records by name.
pub(super) async fn list_channels(
    conn: &mut PgConnection,
    app: &str,
) -> Result<Vec<ChannelRecord>> {
    let rows = sqlx::query(
        "SELECT name, kind, is_default, endpoint, credential_ref, credential_fingerprint
         FROM channels WHERE app = $1 ORDER BY name",
    )
    .bind(app)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode::channel).collect()
}

/// The stored state and token of a device, if it exists (locked until the transaction ends,
/// so that concurrent changes of one device take turns).
pub(super) async fn current(
    conn: &mut PgConnection,
    app: &str,
    device_id: &str,
) -> Result<Option<(DeviceState, Option<String>)>> {
    let row = sqlx::query(
        "SELECT state, token FROM devices WHERE app = $1 AND device_id = $2 FOR UPDATE",
    )
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
    conn: &mut PgConnection,
    app: &str,
    device: &NewDevice,
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
    let (tags, tags_json) = normalized_list(device.tags.clone());
    let (topics, topics_json) = normalized_list(device.topics.clone());
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, channel, user_id, tags, topics, app_version,
                              state, invalid_reason, registration, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 'api', $10, $10)
         ON CONFLICT (app, device_id) DO UPDATE SET
             token = excluded.token,
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
    let id = &device.device_id;
    registry::replace_labels(&mut *conn, Labels::Tags, app, id, &tags, existed).await?;
    registry::replace_labels(&mut *conn, Labels::Topics, app, id, &topics, existed).await?;
    if existed {
        registry::follow_token(&mut *conn, app, id, &device.token, now).await?;
    }
    if state == DeviceState::Disabled
        && existed
        && let Some((delivery_state, error)) = rules::registry::waiting_work_on(state)
    {
        registry::settle_waiting(conn, app, id, delivery_state, error, now).await?;
    }
    Ok(PutDevice {
        created: before.is_none(),
        took_over_from,
    })
}

/// Registers many devices in order, as [`put`] one by one would. When none of them exists yet
/// and none of their tokens is held (a first import), they are written by three multi-row
/// inserts instead: each is then simply created, with nothing to take over, follow or settle.
pub(super) async fn put_many(
    conn: &mut PgConnection,
    app: &str,
    list: &[NewDevice],
    now: OffsetDateTime,
) -> Result<Vec<PutDevice>> {
    if !all_new(&mut *conn, app, list).await? {
        let mut out = Vec::with_capacity(list.len());
        for device in list {
            out.push(put(&mut *conn, app, device, now).await?);
        }
        return Ok(out);
    }
    let mut ids = Vec::with_capacity(list.len());
    let mut tokens = Vec::with_capacity(list.len());
    let mut tags_json = Vec::with_capacity(list.len());
    let mut topics_json = Vec::with_capacity(list.len());
    let mut tag_rows: (Vec<String>, Vec<String>) = Default::default();
    let mut topic_rows: (Vec<String>, Vec<String>) = Default::default();
    for d in list {
        let (tags, tags_text) = normalized_list(d.tags.clone());
        let (topics, topics_text) = normalized_list(d.topics.clone());
        for tag in tags {
            tag_rows.0.push(d.device_id.clone());
            tag_rows.1.push(tag);
        }
        for topic in topics {
            topic_rows.0.push(d.device_id.clone());
            topic_rows.1.push(topic);
        }
        ids.push(d.device_id.clone());
        tokens.push(d.token.clone());
        tags_json.push(tags_text);
        topics_json.push(topics_text);
    }
    let states: Vec<&str> = list
        .iter()
        .map(|d| d.state.unwrap_or(DeviceState::Active).as_str())
        .collect();
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, channel, user_id, tags, topics, app_version,
                              state, invalid_reason, registration, created_at, updated_at)
         SELECT $1, n.device_id, n.token, n.channel, n.user_id, n.tags, n.topics, n.app_version,
                n.state, NULL, 'api', $2, $2
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[])
              AS n(device_id, token, channel, user_id, tags, topics, app_version, state)",
    )
    .bind(app)
    .bind(ms(now))
    .bind(&ids)
    .bind(&tokens)
    .bind(list.iter().map(|d| d.channel.clone()).collect::<Vec<_>>())
    .bind(list.iter().map(|d| d.user.clone()).collect::<Vec<_>>())
    .bind(&tags_json)
    .bind(&topics_json)
    .bind(
        list.iter()
            .map(|d| d.app_version.clone())
            .collect::<Vec<_>>(),
    )
    .bind(&states)
    .execute(&mut *conn)
    .await?;
    for (table, column, (devices, labels)) in [
        ("device_tags", "tag", tag_rows),
        ("device_topics", "topic", topic_rows),
    ] {
        if devices.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO {table} (app, device_id, {column})
             SELECT $1, l.device_id, l.label FROM unnest($2::text[], $3::text[])
                  AS l(device_id, label)"
        );
        // The table and column names are this function's own literals.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .bind(&devices)
            .bind(&labels)
            .execute(&mut *conn)
            .await?;
    }
    Ok(list
        .iter()
        .map(|_| PutDevice {
            created: true,
            took_over_from: None,
        })
        .collect())
}

/// True when every device of the batch is new: unknown ids and free tokens, none repeated
/// within the batch, and no state the bulk path would have to refuse.
async fn all_new(conn: &mut PgConnection, app: &str, list: &[NewDevice]) -> Result<bool> {
    let mut ids = std::collections::HashSet::new();
    let mut tokens = std::collections::HashSet::new();
    for d in list {
        if d.state == Some(DeviceState::Invalid)
            || !ids.insert(d.device_id.as_str())
            || !tokens.insert(d.token.as_str())
        {
            return Ok(false);
        }
    }
    let ids: Vec<&str> = ids.into_iter().collect();
    let tokens: Vec<&str> = tokens.into_iter().collect();
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE app = $1 AND device_id = ANY($2))
             OR EXISTS (SELECT 1 FROM devices
                        WHERE app = $1 AND token = ANY($3) AND state <> 'invalid')",
    )
    .bind(app)
    .bind(&ids)
    .bind(&tokens)
    .fetch_one(conn)
    .await?;
    Ok(!taken)
}

/// One device, if registered.
pub(super) async fn get(
    conn: &mut PgConnection,
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
    row.as_ref().map(decode::device).transpose()
}

/// A page of the app's devices in device-id order.
pub(super) async fn list(
    conn: &mut PgConnection,
    app: &str,
    filter: &DeviceFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<Device, String>> {
    let rows = sqlx::query(concat!(
        device_select!(),
        " WHERE d.app = $1
           AND ($2::text IS NULL OR d.user_id = $2)
           AND ($3::text IS NULL OR d.state = $3)
           AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM device_tags t
                WHERE t.app = d.app AND t.device_id = d.device_id AND t.tag = $4))
           AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM device_topics s
                WHERE s.app = d.app AND s.device_id = d.device_id AND s.topic = $5))
           AND ($6::text IS NULL OR d.device_id > $6)
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
    let items = rows
        .iter()
        .map(decode::device)
        .collect::<Result<Vec<_>>>()?;
    Ok(page(items, limit, |d| d.device_id.clone()))
}

/// Removes a device (tags, topics and pending registration go with it); its waiting work fails.
pub(super) async fn delete(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
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
