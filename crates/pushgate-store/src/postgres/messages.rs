//! Storing messages: the message row (once per idempotency key) and its deliveries, one per
//! target, copied from the registry by `INSERT … SELECT` (a fan-out to a million devices is
//! one statement); and reading messages back.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::fanout;
use crate::Result;
use crate::model::{InsertOutcome, NewMessage, StoredMessage, Targets};
use crate::stored::audience::{every_named_device_queued, has_audience};
use crate::stored::{app_known, batch_answers, check_batch_listed, check_listed, inserted_inputs};
use crate::stored::{count, deadline_ms, decode, message_columns, ms};

/// Column list of every `INSERT INTO deliveries` here.
pub(super) const DELIVERY_INSERT: &str =
    "INSERT INTO deliveries (message_id, app, device_id, token, channel,
    state, error_code, attempts, due_at, deadline, updated_at) ";

/// Stores the message row, or returns the earlier message for a repeated idempotency key.
async fn insert_message_row(
    conn: &mut PgConnection,
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

/// What a message whose idempotency key was used before answers: the earlier message.
async fn earlier_message(conn: &mut PgConnection, msg: &NewMessage) -> Result<InsertOutcome> {
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

/// Counts the message's deliveries into its row and reports the counts and the channels
/// with queued work; refuses a channel outside the message's own list (see
/// [`NewMessage::channels`]).
async fn finish_message(conn: &mut PgConnection, msg: &NewMessage) -> Result<InsertOutcome> {
    let row = sqlx::query(
        "UPDATE messages m SET deliveries = c.n, queued = c.q
         FROM (SELECT COUNT(*) AS n,
                      COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0)::bigint AS q,
                      COALESCE(array_remove(array_agg(DISTINCT CASE WHEN state = 'queued'
                                                                    THEN channel END), NULL),
                               ARRAY[]::text[]) AS channels
               FROM deliveries WHERE message_id = $1) c
         WHERE m.id = $1
         RETURNING c.n, c.q, c.channels",
    )
    .bind(msg.id)
    .fetch_one(&mut *conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    let q: i64 = row.try_get("q")?;
    let queued_channels: Vec<String> = row.try_get("channels")?;
    check_listed(msg, &queued_channels)?;
    Ok(InsertOutcome {
        message_id: msg.id,
        deliveries: count(n),
        queued: count(q),
        duplicate: false,
        same_request: true,
        expanding: false,
        queued_channels,
    })
}

/// Pushes `SELECT $message, $app, ` with the values every delivery insert starts with.
pub(super) fn push_select_head(qb: &mut QueryBuilder<Postgres>, msg: &NewMessage) {
    qb.push("SELECT ")
        .push_bind(msg.id)
        .push(", ")
        .push_bind(msg.app.clone())
        .push(", ");
}

/// Pushes `COALESCE($override, <col>, $default)`: the channel of one delivery.
pub(super) fn push_channel(qb: &mut QueryBuilder<Postgres>, msg: &NewMessage, column: &str) {
    qb.push("COALESCE(")
        .push_bind(msg.channel_override.clone())
        .push(format!(", {column}, "))
        .push_bind(msg.default_channel.clone())
        .push(")");
}

/// Pushes `, 0, $created, $deadline, $created`: attempts and times of a new delivery.
pub(super) fn push_select_tail(qb: &mut QueryBuilder<Postgres>, msg: &NewMessage) {
    let created = ms(msg.created_at);
    qb.push(", 0, ")
        .push_bind(created)
        .push(", ")
        .push_bind(deadline_ms(msg))
        .push(", ")
        .push_bind(created);
}

/// Stores a message and expands its targets to deliveries; an audience larger than `chunk`
/// stores its first chunk only (see [`fanout`]).
pub(super) async fn insert_message(
    conn: &mut PgConnection,
    msg: &NewMessage,
    t: &Targets,
    chunk: u32,
) -> Result<InsertOutcome> {
    if let Some(first) = app_known(insert_message_row(&mut *conn, msg).await)? {
        return Ok(first);
    }
    let mut expanding = false;
    let mut queued = 0;
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
    if !t.device_ids.is_empty() && !every_named_device_queued(t, queued) {
        insert_unsendable_devices(&mut *conn, msg, &t.device_ids).await?;
    }
    if !t.tokens.is_empty() {
        insert_raw_tokens(&mut *conn, msg, &t.tokens).await?;
    }
    let mut inserted = finish_message(conn, msg).await?;
    inserted.expanding = expanding;
    Ok(inserted)
}

/// Stores many messages to [one device by id](Targets::one_device_by_id), concurrent
/// callers' messages, in three statements whatever their number (the message rows, their
/// deliveries, queued or settled, and their counts) instead of four each; answers what
/// [`insert_message`] would answer for each, in order (a repeated idempotency key reads its
/// earlier message). Any error (an unknown app, a channel outside a message's list) fails
/// the whole batch: the caller then stores each message alone, so that each gets its own
/// answer.
pub(super) async fn insert_batch(
    conn: &mut PgConnection,
    inputs: &[(NewMessage, Targets)],
) -> Result<Vec<InsertOutcome>> {
    let column = |f: fn(&NewMessage) -> Option<String>| -> Vec<Option<String>> {
        inputs.iter().map(|(m, _)| f(m)).collect()
    };
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, app, payload, channel, ttl_secs, idempotency_key,
                               request_hash, created_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[],
                              $6::text[], $7::text[], $8::int8[])
         ON CONFLICT (app, idempotency_key) DO NOTHING
         RETURNING id",
    )
    .bind(inputs.iter().map(|(m, _)| m.id).collect::<Vec<_>>())
    .bind(column(|m| Some(m.app.clone())))
    .bind(column(|m| Some(m.payload.to_string())))
    .bind(column(|m| m.channel_override.clone()))
    .bind(inputs.iter().map(|(m, _)| m.ttl_secs).collect::<Vec<_>>())
    .bind(column(|m| m.idempotency_key.clone()))
    .bind(column(|m| m.request_hash.clone()))
    .bind(
        inputs
            .iter()
            .map(|(m, _)| ms(m.created_at))
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let fresh = inserted_inputs(inputs, &inserted);
    // The one delivery of each new message: queued if its device can be sent to (the
    // condition of an audience's named device), else settled saying why, as
    // `insert_unsendable_devices` stores it for one message. One statement for all: every row
    // reads the registry at one moment, and the trigger counting settled deliveries for the
    // metrics locks its counter rows in its one order (app, channel, state), where a statement
    // per message locked them in the order of the messages and two batches could each wait
    // for the other.
    let stored: Vec<(Uuid, String, String)> = OneDeviceRows::of(&fresh)
        .bind(sqlx::query_as(
            "INSERT INTO deliveries (message_id, app, device_id, token, channel, state,
                                     error_code, attempts, due_at, deadline, updated_at)
             SELECT u.id, u.app, u.device_id, COALESCE(d.token, ''),
                    COALESCE(u.channel, d.channel, u.default_channel),
                    CASE WHEN d.state = 'active' AND d.token IS NOT NULL THEN 'queued'
                         WHEN d.state = 'invalid' THEN 'token_dead'
                         ELSE 'failed' END,
                    CASE WHEN d.state = 'active' AND d.token IS NOT NULL THEN NULL
                         WHEN d.device_id IS NULL THEN 'unknown_device'
                         WHEN d.state = 'invalid' THEN 'device_invalid'
                         WHEN d.state = 'disabled' THEN 'device_disabled'
                         ELSE 'device_unconfirmed' END,
                    0, u.created, u.deadline, u.created
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::int8[], $7::int8[])
                  AS u(id, app, device_id, channel, default_channel, created, deadline)
             LEFT JOIN devices d ON d.app = u.app AND d.device_id = u.device_id
             RETURNING message_id, channel, state",
        ))
        .fetch_all(&mut *conn)
        .await?;
    let mut queued = HashMap::new();
    let mut settled = HashMap::new();
    for (id, channel, state) in stored {
        if state == "queued" {
            queued.insert(id, channel);
        } else {
            settled.insert(id, settled_alone(id));
        }
    }
    check_batch_listed(fresh.iter().map(|(m, _)| m), &queued)?;
    if !fresh.is_empty() {
        // `id = ANY(…)`, not a join on unnest(): each row found by its key.
        sqlx::query(
            "UPDATE messages SET deliveries = 1, queued = CASE WHEN id = ANY($2) THEN 1 ELSE 0 END
             WHERE id = ANY($1)",
        )
        .bind(fresh.iter().map(|(m, _)| m.id).collect::<Vec<_>>())
        .bind(queued.keys().copied().collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    batch_answers!(conn, inputs, settled, queued, earlier_message)
}

/// The columns of [`insert_batch`]'s table `u` of new messages, one value per message.
struct OneDeviceRows {
    ids: Vec<Uuid>,
    apps: Vec<String>,
    devices: Vec<Option<String>>,
    overrides: Vec<Option<String>>,
    defaults: Vec<String>,
    created: Vec<i64>,
    deadlines: Vec<i64>,
}

impl OneDeviceRows {
    fn of(messages: &[&(NewMessage, Targets)]) -> Self {
        Self {
            ids: messages.iter().map(|(m, _)| m.id).collect(),
            apps: messages.iter().map(|(m, _)| m.app.clone()).collect(),
            devices: messages
                .iter()
                .map(|(_, t)| t.device_ids.first().cloned())
                .collect(),
            overrides: messages
                .iter()
                .map(|(m, _)| m.channel_override.clone())
                .collect(),
            defaults: messages
                .iter()
                .map(|(m, _)| m.default_channel.clone())
                .collect(),
            created: messages.iter().map(|(m, _)| ms(m.created_at)).collect(),
            deadlines: messages.iter().map(|(m, _)| deadline_ms(m)).collect(),
        }
    }

    /// Binds the columns as `$1` to `$7`.
    fn bind<'q, O>(
        self,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> QueryAs<'q, Postgres, O, PgArguments> {
        query
            .bind(self.ids)
            .bind(self.apps)
            .bind(self.devices)
            .bind(self.overrides)
            .bind(self.defaults)
            .bind(self.created)
            .bind(self.deadlines)
    }
}

/// What a new message whose one delivery was settled at once (its device cannot be sent to)
/// answers, as [`finish_message`] would.
fn settled_alone(id: Uuid) -> InsertOutcome {
    InsertOutcome {
        message_id: id,
        deliveries: 1,
        queued: 0,
        duplicate: false,
        same_request: true,
        expanding: false,
        queued_channels: Vec::new(),
    }
}

/// Explicitly named devices that cannot be sent to get a settled delivery saying why.
async fn insert_unsendable_devices(
    conn: &mut PgConnection,
    msg: &NewMessage,
    device_ids: &[String],
) -> Result<()> {
    let mut qb = QueryBuilder::<Postgres>::new(DELIVERY_INSERT);
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
        .push(" AND d.device_id = ANY(")
        .push_bind(device_ids.to_vec())
        .push(") AND NOT (d.state = 'active' AND d.token IS NOT NULL)");
    qb.build().execute(&mut *conn).await?;

    let mut qb = QueryBuilder::<Postgres>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("j.value, '', ");
    push_channel(&mut qb, msg, "NULL");
    qb.push(", 'failed', 'unknown_device'");
    push_select_tail(&mut qb, msg);
    qb.push(" FROM (SELECT DISTINCT value FROM unnest(")
        .push_bind(device_ids.to_vec())
        .push("::text[]) AS u(value)) j WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.app = ")
        .push_bind(msg.app.clone())
        .push(" AND d.device_id = j.value)");
    qb.build().execute(conn).await?;
    Ok(())
}

/// Raw tokens: sent as the device that holds them (if any), once per message; a token of a
/// disabled device fails, one only an invalidated device had is known dead.
async fn insert_raw_tokens(
    conn: &mut PgConnection,
    msg: &NewMessage,
    tokens: &[String],
) -> Result<()> {
    const KNOWN_DEAD: &str = "h.device_id IS NULL AND EXISTS (SELECT 1 FROM devices i
        WHERE i.app = h_app.app AND i.token = j.value AND i.state = 'invalid')";
    let mut qb = QueryBuilder::<Postgres>::new(DELIVERY_INSERT);
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
    qb.push(" FROM (SELECT DISTINCT value FROM unnest(")
        .push_bind(tokens.to_vec())
        .push("::text[]) AS u(value)) j CROSS JOIN (SELECT ")
        .push_bind(msg.app.clone())
        .push(
            "::text AS app) h_app
             LEFT JOIN devices h ON h.app = h_app.app AND h.token = j.value AND h.state <> 'invalid'
             WHERE j.value NOT IN (SELECT x.token FROM deliveries x WHERE x.message_id = ",
        )
        .push_bind(msg.id)
        .push(")");
    qb.build().execute(conn).await?;
    Ok(())
}

/// Stores a message with exactly one queued delivery (the C2DM-era confirmation message).
pub(super) async fn insert_single(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
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
    row.as_ref().map(decode::message).transpose()
}

/// Several messages by id, in one statement.
pub(super) async fn get_messages(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<StoredMessage>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode::message).collect()
}
