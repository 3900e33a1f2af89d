//! Messages and deliveries: insertion with target expansion, claiming with a lease, and
//! release; answers are recorded by [`super::outcomes`].

use std::time::Duration;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::events;
use super::registry;
use super::rows::{self, count, delivery_columns, message_columns, ms, ms_after};
use super::targets::{has_audience, json_list, push_audience};
use crate::Result;
use crate::model::{
    Delivery, InsertOutcome, MessageSummary, NewMessage, Page, QueueStats, Release, StoredMessage,
    Targets,
};
use crate::rules;

/// Column list of every `INSERT INTO deliveries` here.
const DELIVERY_INSERT: &str = "INSERT INTO deliveries (message_id, app, device_id, token, channel,
    state, error_code, attempts, due_at, deadline, updated_at) ";

/// The message's deadline as stored: acceptance plus TTL.
fn deadline_ms(msg: &NewMessage) -> i64 {
    ms(msg.created_at).saturating_add(msg.ttl_secs.saturating_mul(1000))
}

/// Stores the message row, or returns the earlier message for a repeated idempotency key.
async fn insert_message_row(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
) -> Result<Option<InsertOutcome>> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, idempotency_key,
                               request_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (app, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(msg.id)
    .bind(&msg.app)
    .bind(msg.payload.to_string())
    .bind(&msg.channel_override)
    .bind(msg.ttl_secs)
    .bind(&msg.idempotency_key)
    .bind(&msg.request_hash)
    .bind(ms(msg.created_at))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, deliveries, queued, request_hash FROM messages
         WHERE app = $1 AND idempotency_key = $2",
    )
    .bind(&msg.app)
    .bind(&msg.idempotency_key)
    .fetch_one(conn)
    .await?;
    let first_hash: Option<String> = row.try_get("request_hash")?;
    Ok(Some(InsertOutcome {
        message_id: row.try_get("id")?,
        deliveries: count(row.try_get("deliveries")?),
        queued: count(row.try_get("queued")?),
        duplicate: true,
        same_request: first_hash == msg.request_hash,
    }))
}

/// Counts the message's deliveries into its row and reports them.
async fn finish_message(conn: &mut SqliteConnection, id: Uuid) -> Result<InsertOutcome> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0) AS q
         FROM deliveries WHERE message_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    let q: i64 = row.try_get("q")?;
    sqlx::query("UPDATE messages SET deliveries = $1, queued = $2 WHERE id = $3")
        .bind(n)
        .bind(q)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(InsertOutcome {
        message_id: id,
        deliveries: count(n),
        queued: count(q),
        duplicate: false,
        same_request: true,
    })
}

/// Pushes `SELECT $message, $app, ` with the values every delivery insert starts with.
fn push_select_head(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage) {
    qb.push("SELECT ")
        .push_bind(msg.id)
        .push(", ")
        .push_bind(msg.app.clone())
        .push(", ");
}

/// Pushes `COALESCE($override, <col>, $default)`: the channel of one delivery.
fn push_channel(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage, column: &str) {
    qb.push("COALESCE(")
        .push_bind(msg.channel_override.clone())
        .push(format!(", {column}, "))
        .push_bind(msg.default_channel.clone())
        .push(")");
}

/// Pushes `, 0, $created, $deadline, $created`: attempts and times of a new delivery.
fn push_select_tail(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage) {
    let created = ms(msg.created_at);
    qb.push(", 0, ")
        .push_bind(created)
        .push(", ")
        .push_bind(deadline_ms(msg))
        .push(", ")
        .push_bind(created);
}

/// Stores a message and expands its targets to deliveries.
pub(super) async fn insert_message(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    t: &Targets,
) -> Result<InsertOutcome> {
    registry::require_app(&mut *conn, &msg.app).await?;
    if let Some(first) = insert_message_row(&mut *conn, msg).await? {
        return Ok(first);
    }
    if has_audience(t) {
        let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
        push_select_head(&mut qb, msg);
        qb.push("d.device_id, d.token, ");
        push_channel(&mut qb, msg, "d.channel");
        qb.push(", 'queued', NULL");
        push_select_tail(&mut qb, msg);
        qb.push(" FROM devices d WHERE ");
        push_audience(&mut qb, &msg.app, t);
        qb.build().execute(&mut *conn).await?;
    }
    if !t.device_ids.is_empty() {
        insert_unsendable_devices(&mut *conn, msg, &t.device_ids).await?;
    }
    if !t.tokens.is_empty() {
        insert_raw_tokens(&mut *conn, msg, &t.tokens).await?;
    }
    finish_message(conn, msg.id).await
}

/// Explicitly named devices that cannot be sent to get a settled delivery saying why.
async fn insert_unsendable_devices(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    device_ids: &[String],
) -> Result<()> {
    let ids = json_list(device_ids);
    let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("d.device_id, COALESCE(d.token, ''), ");
    push_channel(&mut qb, msg, "d.channel");
    qb.push(
        ", CASE WHEN d.state = 'invalid' THEN 'token_dead' ELSE 'failed' END,
           CASE WHEN d.state = 'invalid' THEN 'device_invalid'
                WHEN d.state = 'disabled' THEN 'device_disabled'
                ELSE 'device_unconfirmed' END",
    );
    push_select_tail(&mut qb, msg);
    qb.push(" FROM devices d WHERE d.app = ")
        .push_bind(msg.app.clone())
        .push(" AND d.device_id IN (SELECT value FROM json_each(")
        .push_bind(ids.clone())
        .push(")) AND NOT (d.state = 'active' AND d.token IS NOT NULL)");
    qb.build().execute(&mut *conn).await?;

    let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("j.value, '', ");
    push_channel(&mut qb, msg, "NULL");
    qb.push(", 'failed', 'unknown_device'");
    push_select_tail(&mut qb, msg);
    qb.push(" FROM (SELECT DISTINCT value FROM json_each(")
        .push_bind(ids)
        .push(")) j WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.app = ")
        .push_bind(msg.app.clone())
        .push(" AND d.device_id = j.value)");
    qb.build().execute(conn).await?;
    Ok(())
}

/// Raw tokens: sent as the device that holds them (if any), once per message; a token of a
/// disabled device fails, one only an invalidated device had is known dead.
async fn insert_raw_tokens(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    tokens: &[String],
) -> Result<()> {
    const KNOWN_DEAD: &str = "h.device_id IS NULL AND EXISTS (SELECT 1 FROM devices i
        WHERE i.app = h_app.app AND i.token = j.value AND i.state = 'invalid')";
    let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("h.device_id, j.value, ");
    push_channel(&mut qb, msg, "h.channel");
    qb.push(format!(
        ", CASE WHEN h.state = 'disabled' THEN 'failed'
                WHEN {KNOWN_DEAD} THEN 'token_dead' ELSE 'queued' END,
           CASE WHEN h.state = 'disabled' THEN 'device_disabled'
                WHEN {KNOWN_DEAD} THEN 'device_invalid' ELSE NULL END"
    ));
    push_select_tail(&mut qb, msg);
    qb.push(" FROM (SELECT DISTINCT value FROM json_each(")
        .push_bind(json_list(tokens))
        .push(")) j CROSS JOIN (SELECT ")
        .push_bind(msg.app.clone())
        .push(
            " AS app) h_app
             LEFT JOIN devices h ON h.app = h_app.app AND h.token = j.value AND h.state <> 'invalid'
             WHERE NOT EXISTS (SELECT 1 FROM deliveries x
                 WHERE x.app = h_app.app AND x.token = j.value AND x.message_id = ",
        )
        .push_bind(msg.id)
        .push(")");
    qb.build().execute(conn).await?;
    Ok(())
}

/// Stores a message with exactly one queued delivery (the C2DM-era confirmation message).
pub(super) async fn insert_single(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    device_id: &str,
    token: &str,
    channel: &str,
) -> Result<InsertOutcome> {
    if let Some(first) = insert_message_row(&mut *conn, msg).await? {
        return Ok(first);
    }
    let created = ms(msg.created_at);
    sqlx::query(
        "INSERT INTO deliveries (message_id, app, device_id, token, channel, state, attempts,
                                 due_at, deadline, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $6)",
    )
    .bind(msg.id)
    .bind(&msg.app)
    .bind(device_id)
    .bind(token)
    .bind(channel)
    .bind(created)
    .bind(deadline_ms(msg))
    .execute(&mut *conn)
    .await?;
    finish_message(conn, msg.id).await
}

/// The distinct channels the deliveries of these targets would use.
pub(super) async fn reached_channels(
    conn: &mut SqliteConnection,
    app: &str,
    t: &Targets,
    channel_override: Option<&str>,
    default_channel: &str,
) -> Result<Vec<String>> {
    if let Some(channel) = channel_override {
        return Ok(vec![channel.to_string()]);
    }
    let mut channels = Vec::new();
    if has_audience(t) {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT DISTINCT COALESCE(d.channel, ");
        qb.push_bind(default_channel.to_string())
            .push(") AS channel FROM devices d WHERE ");
        push_audience(&mut qb, app, t);
        let found: Vec<String> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        channels.extend(found);
    }
    if !t.tokens.is_empty() {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT COALESCE(h.channel, $1) FROM json_each($2) j
             LEFT JOIN devices h ON h.app = $3 AND h.token = j.value AND h.state <> 'invalid'",
        )
        .bind(default_channel)
        .bind(json_list(&t.tokens))
        .bind(app)
        .fetch_all(conn)
        .await?;
        channels.extend(found);
    }
    channels.sort();
    channels.dedup();
    Ok(channels)
}

/// One message, if stored.
pub(super) async fn get_message(
    conn: &mut SqliteConnection,
    id: Uuid,
) -> Result<Option<StoredMessage>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::message).transpose()
}

/// Several messages by id, in chunks the statement's parameter limit allows.
pub(super) async fn get_messages(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<Vec<StoredMessage>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut qb = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id IN ("
        ));
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&mut *conn).await?;
        for row in &rows {
            out.push(rows::message(row)?);
        }
    }
    Ok(out)
}

/// Leases up to `limit` due deliveries of one channel; those past their deadline expire
/// instead ([`rules::expiry`] decides which).
pub(super) async fn claim_due(
    conn: &mut SqliteConnection,
    app: &str,
    channel: &str,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<Vec<Delivery>> {
    let due: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, deadline FROM deliveries
         WHERE app = $1 AND channel = $2
           AND state IN ('queued', 'retry_wait', 'in_flight') AND due_at <= $3
         ORDER BY due_at, id LIMIT $4",
    )
    .bind(app)
    .bind(channel)
    .bind(ms(now))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let mut to_claim = Vec::with_capacity(due.len());
    let mut to_expire = Vec::new();
    for (id, deadline) in due {
        if rules::expiry::is_expired(rows::from_ms(deadline)?, now) {
            to_expire.push(id);
        } else {
            to_claim.push(id);
        }
    }
    if !to_expire.is_empty() {
        expire(&mut *conn, app, &to_expire, now).await?;
    }
    if to_claim.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "UPDATE deliveries SET state = 'in_flight', lease_until = $1, due_at = $1,
             attempts = attempts + 1, updated_at = $2
         WHERE id IN (SELECT value FROM json_each($3))
         RETURNING ",
        delivery_columns!()
    ))
    .bind(ms_after(now, lease))
    .bind(ms(now))
    .bind(json_ids(&to_claim))
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = rows
        .iter()
        .map(rows::delivery)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// Settles due deliveries past their deadline as expired, each with its event.
async fn expire(
    conn: &mut SqliteConnection,
    app: &str,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<()> {
    let rows = sqlx::query(concat!(
        "UPDATE deliveries SET state = 'expired', lease_until = NULL,
             error_code = COALESCE(error_code, $1), updated_at = $2
         WHERE id IN (SELECT value FROM json_each($3))
         RETURNING ",
        delivery_columns!()
    ))
    .bind(rules::expiry::TTL_EXPIRED)
    .bind(ms(now))
    .bind(json_ids(ids))
    .fetch_all(&mut *conn)
    .await?;
    let mut expired = rows
        .iter()
        .map(rows::delivery)
        .collect::<Result<Vec<_>>>()?;
    expired.sort_by_key(|d| d.id);
    for d in &expired {
        events::append(&mut *conn, app, &rules::expiry::expired_event(d), now).await?;
    }
    Ok(())
}

/// Delivery ids as one JSON array, for `json_each`.
fn json_ids(ids: &[i64]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// When the next pending delivery of one channel is due.
pub(super) async fn next_due(
    conn: &mut SqliteConnection,
    app: &str,
    channel: &str,
) -> Result<Option<OffsetDateTime>> {
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(due_at) FROM deliveries
         WHERE app = $1 AND channel = $2 AND state IN ('queued', 'retry_wait', 'in_flight')",
    )
    .bind(app)
    .bind(channel)
    .fetch_one(conn)
    .await?;
    due.map(rows::from_ms).transpose()
}

/// Puts in-flight deliveries back in the queue under the claim that took them.
pub(super) async fn release(
    conn: &mut SqliteConnection,
    releases: &[Release],
    now: OffsetDateTime,
) -> Result<u64> {
    let mut released = 0;
    for r in releases {
        let done = sqlx::query(
            "UPDATE deliveries
             SET state = 'queued', lease_until = NULL, due_at = $1, updated_at = $1,
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
             WHERE id = $2 AND state = 'in_flight' AND attempts = $3",
        )
        .bind(ms(now))
        .bind(r.delivery_id)
        .bind(r.attempt)
        .execute(&mut *conn)
        .await?;
        released += done.rows_affected();
    }
    Ok(released)
}

/// Pending and due deliveries over every app.
pub(super) async fn queue_stats(
    conn: &mut SqliteConnection,
    now: OffsetDateTime,
) -> Result<QueueStats> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS pending,
                COALESCE(SUM(CASE WHEN due_at <= $1 THEN 1 ELSE 0 END), 0) AS due,
                MIN(CASE WHEN due_at <= $1 THEN due_at END) AS oldest
         FROM deliveries WHERE state IN ('queued', 'retry_wait', 'in_flight')",
    )
    .bind(ms(now))
    .fetch_one(conn)
    .await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(QueueStats {
        pending: count(row.try_get("pending")?),
        due: count(row.try_get("due")?),
        oldest_due: oldest.map(rows::from_ms).transpose()?,
    })
}

/// Counts of a message's deliveries by state.
pub(super) async fn message_summary(
    conn: &mut SqliteConnection,
    message_id: Uuid,
) -> Result<MessageSummary> {
    let known: Option<Uuid> = sqlx::query_scalar("SELECT id FROM messages WHERE id = $1")
        .bind(message_id)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        return Err(crate::StoreError::NotFound);
    }
    let rows = sqlx::query(
        "SELECT state, COUNT(*) AS n FROM deliveries WHERE message_id = $1 GROUP BY state",
    )
    .bind(message_id)
    .fetch_all(conn)
    .await?;
    let mut summary = MessageSummary::new();
    for row in &rows {
        let state: String = row.try_get("state")?;
        summary.insert(state.parse()?, count(row.try_get("n")?));
    }
    Ok(summary)
}

/// A page of a message's deliveries in id order.
pub(super) async fn list_deliveries(
    conn: &mut SqliteConnection,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE message_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
    ))
    .bind(message_id)
    .bind(cursor)
    .bind(i64::from(limit) + 1)
    .fetch_all(conn)
    .await?;
    let mut items = rows
        .iter()
        .map(rows::delivery)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
