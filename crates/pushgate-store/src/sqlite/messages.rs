//! Storing messages: the message row (once per idempotency key) and its deliveries, one per
//! target; and reading messages back.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::fanout;
use super::rows::{self, count, message_columns, ms};
use super::targets::{has_audience, json_list};
use super::token_key::keyed_tokens_json;
use crate::Result;
use crate::model::{DeliveryState, InsertOutcome, NewMessage, StoredMessage, Targets};
use crate::stored::audience::every_named_device_queued;
use crate::stored::{app_known, batch_answers, check_batch_listed, check_listed, inserted_inputs};

/// Column list of every `INSERT INTO deliveries` here.
pub(super) const DELIVERY_INSERT: &str =
    "INSERT INTO deliveries (message_id, app, device_id, token, channel,
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
    earlier_message(conn, msg).await.map(Some)
}

/// The message stored earlier under `msg`'s idempotency key, as the answer to a repeat.
async fn earlier_message(conn: &mut SqliteConnection, msg: &NewMessage) -> Result<InsertOutcome> {
    let row = sqlx::query(
        "SELECT id, deliveries, queued, request_hash, (expansion IS NOT NULL) AS expanding
         FROM messages WHERE app = $1 AND idempotency_key = $2",
    )
    .bind(&msg.app)
    .bind(&msg.idempotency_key)
    .fetch_one(conn)
    .await?;
    let first_hash: Option<String> = row.try_get("request_hash")?;
    Ok(InsertOutcome {
        message_id: row.try_get("id")?,
        deliveries: count(row.try_get("deliveries")?),
        queued: count(row.try_get("queued")?),
        duplicate: true,
        same_request: first_hash == msg.request_hash,
        expanding: row.try_get("expanding")?,
        queued_channels: Vec::new(),
    })
}

/// Records the counts of the message's deliveries by state (kept up to date from here on by
/// a trigger on state changes) and their totals in its row, and reports them with the
/// channels it queued deliveries on; refuses a channel outside the message's own list (see
/// [`NewMessage::channels`]).
async fn finish_message(conn: &mut SqliteConnection, msg: &NewMessage) -> Result<InsertOutcome> {
    let id = msg.id;
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO message_state_counts (message_id, state, n)
         SELECT message_id, state, COUNT(*) FROM deliveries WHERE message_id = $1
         GROUP BY state
         RETURNING state, n",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    if counted.iter().any(|(state, _)| {
        state
            .parse::<DeliveryState>()
            .is_ok_and(DeliveryState::is_final)
    }) {
        count_settled_at_insert(&mut *conn, id).await?;
    }
    let n: i64 = counted.iter().map(|(_, n)| n).sum();
    let q: i64 = counted
        .iter()
        .filter(|(state, _)| state == "queued")
        .map(|(_, n)| n)
        .sum();
    sqlx::query("UPDATE messages SET deliveries = $1, queued = $2 WHERE id = $3")
        .bind(n)
        .bind(q)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let queued_channels = if q > 0 {
        sqlx::query_scalar(
            "SELECT DISTINCT channel FROM deliveries WHERE message_id = $1 AND state = 'queued'
             ORDER BY channel",
        )
        .bind(id)
        .fetch_all(conn)
        .await?
    } else {
        Vec::new()
    };
    check_listed(msg, &queued_channels)?;
    Ok(InsertOutcome {
        message_id: id,
        deliveries: count(n),
        queued: count(q),
        duplicate: false,
        same_request: true,
        expanding: false,
        queued_channels,
    })
}

/// Adds the message's deliveries stored already settled to the kept totals (those settled
/// later are counted by the `deliveries_count_settled` trigger).
async fn count_settled_at_insert(conn: &mut SqliteConnection, id: Uuid) -> Result<()> {
    sqlx::query(
        "INSERT INTO delivery_counts (app, channel, state, n)
         SELECT app, channel, state, COUNT(*) FROM deliveries
         WHERE message_id = $1 AND state IN ('sent', 'failed', 'token_dead', 'expired')
         GROUP BY app, channel, state
         ON CONFLICT (app, channel, state) DO UPDATE SET n = n + excluded.n",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pushes `SELECT $message, $app, ` with the values every delivery insert starts with.
pub(super) fn push_select_head(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage) {
    qb.push("SELECT ")
        .push_bind(msg.id)
        .push(", ")
        .push_bind(msg.app.clone())
        .push(", ");
}

/// Pushes `COALESCE($override, <col>, $default)`: the channel of one delivery.
pub(super) fn push_channel(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage, column: &str) {
    qb.push("COALESCE(")
        .push_bind(msg.channel_override.clone())
        .push(format!(", {column}, "))
        .push_bind(msg.default_channel.clone())
        .push(")");
}

/// Pushes `, 0, $created, $deadline, $created`: attempts and times of a new delivery.
pub(super) fn push_select_tail(qb: &mut QueryBuilder<Sqlite>, msg: &NewMessage) {
    let created = ms(msg.created_at);
    qb.push(", 0, ")
        .push_bind(created)
        .push(", ")
        .push_bind(deadline_ms(msg))
        .push(", ")
        .push_bind(created);
}

/// Stores a message and expands its targets to deliveries, in as few statements as the targets
/// allow (each statement is a round trip to the connection's thread): a message whose named
/// devices can all be sent to skips the statements for unsendable ones, and one whose
/// deliveries are all queued is counted without reading them back. An audience larger than
/// `chunk` stores its first chunk only (see [`fanout`]).
pub(super) async fn insert_message(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    t: &Targets,
    chunk: u32,
) -> Result<InsertOutcome> {
    if let Some(first) = app_known(insert_message_row(&mut *conn, msg).await)? {
        return Ok(first);
    }
    let mut queued = 0;
    let mut expanding = false;
    if has_audience(t) {
        let until = fanout::first_chunk_end(&mut *conn, msg, t, chunk).await?;
        let range = until
            .as_deref()
            .map(|until| fanout::Range::new(None, Some(until)));
        queued = fanout::insert_audience(&mut *conn, msg, t, range).await?;
        if let Some(from) = until {
            fanout::keep_pending(&mut *conn, msg, t, &from).await?;
            expanding = true;
        }
    }
    let mut only_queued = true;
    if !t.device_ids.is_empty() && !every_named_device_queued(t, queued) {
        only_queued = false;
        insert_unsendable_devices(&mut *conn, msg, &t.device_ids).await?;
    }
    if !t.tokens.is_empty() {
        only_queued = false;
        insert_raw_tokens(&mut *conn, msg, &t.tokens).await?;
    }
    let mut out = if only_queued {
        finish_queued(conn, msg, queued).await?
    } else {
        finish_message(conn, msg).await?
    };
    out.expanding = expanding;
    Ok(out)
}

/// Stores many messages to [one device by id](Targets::one_device_by_id), concurrent
/// callers' messages of one writer cycle, with three round trips to the connection's thread
/// whatever their number (one for the message rows, one for the deliveries, one for the
/// counts), instead of three each; answers what [`insert_message`] would answer for each, in
/// order. A message whose device cannot be sent to, or whose idempotency key was used
/// before, takes [`insert_message`]'s own steps for the rest. An unknown app fails the whole
/// batch (the writer then stores each alone).
pub(super) async fn insert_batch(
    conn: &mut SqliteConnection,
    inputs: &[(NewMessage, Targets)],
) -> Result<Vec<InsertOutcome>> {
    if let [(msg, t)] = inputs {
        // One device by id: never a chunked fan-out.
        return Ok(vec![insert_message(conn, msg, t, u32::MAX).await?]);
    }
    let hex = |msg: &NewMessage| msg.id.simple().to_string();
    let rows: Vec<serde_json::Value> = inputs
        .iter()
        .map(|(m, _)| {
            serde_json::json!([
                hex(m),
                m.app,
                m.payload.to_string(),
                m.channel_override,
                m.ttl_secs,
                m.idempotency_key,
                m.request_hash,
                ms(m.created_at),
            ])
        })
        .collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, idempotency_key,
                               request_hash, created_at)
         SELECT unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2, j.value ->> 3,
                j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7
         FROM json_each($1) j WHERE true
         ON CONFLICT (app, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(serde_json::Value::from(rows).to_string())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let fresh = inserted_inputs(inputs, &inserted);
    // The one delivery of each new message whose device can be sent to (the condition of
    // `push_audience` for a named device); json_each drives, each device found by its key.
    let rows: Vec<serde_json::Value> = fresh
        .iter()
        .map(|(m, t)| {
            serde_json::json!([
                hex(m),
                m.app,
                t.device_ids[0],
                m.channel_override,
                m.default_channel,
                ms(m.created_at),
                deadline_ms(m),
            ])
        })
        .collect();
    let queued: HashMap<Uuid, String> = sqlx::query_as(
        "INSERT INTO deliveries (message_id, app, device_id, token, channel, state, error_code,
                                 attempts, due_at, deadline, updated_at)
         SELECT unhex(j.value ->> 0), d.app, d.device_id, d.token,
                COALESCE(j.value ->> 3, d.channel, j.value ->> 4), 'queued', NULL, 0,
                j.value ->> 5, j.value ->> 6, j.value ->> 5
         FROM json_each($1) j
         CROSS JOIN devices d ON d.app = j.value ->> 1 AND d.device_id = j.value ->> 2
         WHERE d.state = 'active' AND d.token IS NOT NULL
         RETURNING message_id, channel",
    )
    .bind(serde_json::Value::from(rows).to_string())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    check_batch_listed(fresh.iter().map(|(m, _)| m), &queued)?;
    if !queued.is_empty() {
        // The ids are hex digits, nothing a caller wrote: both writes in one round trip.
        let ids = serde_json::Value::from(
            queued
                .keys()
                .map(|id| id.simple().to_string())
                .collect::<Vec<_>>(),
        );
        let sql = format!(
            "INSERT INTO message_state_counts (message_id, state, n)
                 SELECT unhex(value), 'queued', 1 FROM json_each('{ids}');
             UPDATE messages SET deliveries = 1, queued = 1
                 WHERE id IN (SELECT unhex(value) FROM json_each('{ids}'));"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    let mut settled = HashMap::new();
    for (msg, t) in &fresh {
        if !queued.contains_key(&msg.id) {
            insert_unsendable_devices(&mut *conn, msg, &t.device_ids).await?;
            settled.insert(msg.id, finish_message(&mut *conn, msg).await?);
        }
    }
    batch_answers!(conn, inputs, settled, queued, earlier_message)
}

/// [`finish_message`] for a message whose `n` deliveries are all queued: both writes and
/// the read of their channels in one round trip (the values are numbers and the id's hex,
/// nothing a caller wrote).
async fn finish_queued(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    n: u64,
) -> Result<InsertOutcome> {
    let hex = msg.id.simple();
    let sql = format!(
        "INSERT INTO message_state_counts (message_id, state, n)
             SELECT x'{hex}', 'queued', {n} WHERE {n} > 0;
         UPDATE messages SET deliveries = {n}, queued = {n} WHERE id = x'{hex}';
         SELECT DISTINCT channel FROM deliveries WHERE message_id = x'{hex}' ORDER BY channel;"
    );
    let queued_channels = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    check_listed(msg, &queued_channels)?;
    Ok(InsertOutcome {
        message_id: msg.id,
        deliveries: n,
        queued: n,
        duplicate: false,
        same_request: true,
        expanding: false,
        queued_channels,
    })
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
        WHERE i.app = h_app.app AND i.token_key = j.token_key AND i.token = j.token
          AND i.state = 'invalid')";
    let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("h.device_id, j.token, ");
    push_channel(&mut qb, msg, "h.channel");
    qb.push(format!(
        ", CASE WHEN h.state = 'disabled' THEN 'failed'
                WHEN {KNOWN_DEAD} THEN 'token_dead' ELSE 'queued' END,
           CASE WHEN h.state = 'disabled' THEN 'device_disabled'
                WHEN {KNOWN_DEAD} THEN 'device_invalid' ELSE NULL END"
    ));
    push_select_tail(&mut qb, msg);
    // Each token once, in the order listed (a token's deliveries are numbered in that order).
    let mut seen = HashSet::with_capacity(tokens.len());
    let distinct = tokens
        .iter()
        .map(String::as_str)
        .filter(|t| seen.insert(*t));
    qb.push(
        " FROM (SELECT key AS pos, value ->> 0 AS token, value ->> 1 AS token_key
                FROM json_each(",
    )
    .push_bind(keyed_tokens_json(distinct))
    .push(")) j CROSS JOIN (SELECT ")
    .push_bind(msg.app.clone())
    .push(
        " AS app) h_app
             LEFT JOIN devices h ON h.app = h_app.app AND h.token_key = j.token_key
                                 AND h.token = j.token AND h.state <> 'invalid'
             WHERE j.token NOT IN (SELECT x.token FROM deliveries x WHERE x.message_id = ",
    )
    .push_bind(msg.id)
    .push(") ORDER BY j.pos");
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
    finish_message(conn, msg).await
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
