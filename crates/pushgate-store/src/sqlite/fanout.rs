//! Large fan-outs in chunks on SQLite (see [`crate::stored::fanout`]): the audience insert of
//! one range of device ids, one chunk of a message still expanding, queued or leased to the
//! claim that stores it (the end of a chunk, the leased insert and the kept audience are
//! shared by every backend).

use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;

use super::messages::{DELIVERY_INSERT, push_channel, push_select_head, push_select_tail};
use super::rows::{from_ms, ms, ms_after};
use super::targets::push_audience;
use crate::model::{Delivery, DeliveryState, Expansion, NewMessage, Targets};
use crate::stored::deadline_ms;
use crate::stored::fanout::{
    Lease, NextChunk, chunk_end, expanding_query, push_leased_insert, push_range, readable_chunk,
};
pub(super) use crate::stored::fanout::{Pick, Range, first_chunk_end, keep_pending};
use crate::{Result, StoreError, rules};

/// Stores a queued delivery for every device of the audience, or of its `range` when chunked;
/// returns how many.
pub(super) async fn insert_audience(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    t: &Targets,
    range: Option<Range<'_>>,
) -> Result<u64> {
    let mut qb = QueryBuilder::<Sqlite>::new(DELIVERY_INSERT);
    push_select_head(&mut qb, msg);
    qb.push("d.device_id, d.token, ");
    push_channel(&mut qb, msg, "d.channel");
    qb.push(", 'queued', NULL");
    push_select_tail(&mut qb, msg);
    qb.push(" FROM devices d WHERE ");
    push_audience(&mut qb, &msg.app, t, range.is_some());
    if let Some(range) = range {
        push_range(&mut qb, ms(msg.created_at), range.from, range.until);
    }
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// Stores the next chunk of `chunk` devices of the message `pick` names, as queued
/// deliveries, with its counts and cursor.
pub(super) async fn expand_next(
    conn: &mut SqliteConnection,
    pick: Pick<'_>,
    chunk: u32,
    now: OffsetDateTime,
) -> Result<Option<Expansion>> {
    let Some(next) = next_of(&mut *conn, pick).await? else {
        return Ok(None);
    };
    let (msg, t) = (&next.msg, &next.targets);
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), chunk).await?;
    let range = Range::new(Some(&next.from), until.as_deref());
    let stored = insert_audience(&mut *conn, msg, t, Some(range)).await?;
    let stored = i64::try_from(stored).unwrap_or(i64::MAX);
    advance(
        &mut *conn,
        msg,
        stored,
        &[("queued", stored)],
        &until,
        Some(now),
    )
    .await?;
    Ok(Some(Expansion {
        message_id: msg.id,
        app: msg.app.clone(),
        stored: u64::try_from(stored).unwrap_or(0),
        done: until.is_none(),
    }))
}

/// A claim's part in a large fan-out: stores the next `limit` devices of the message whose row
/// is `expanding` (the app's oldest still expanding that may reach `channel`, as
/// [`expanding_row`] read it with [`Pick::ForChannel`]), those on `channel` in flight under a lease
/// as [`super::claims::claim_due`] would hand them out (the others queued for their
/// channels); returns the leased ones and the other channels that got queued work. A leased
/// delivery is inserted in flight instead of stored queued and then claimed. A message past
/// its deadline has its chunk stored queued, for the claims to expire.
pub(super) async fn expand_into_claim(
    conn: &mut SqliteConnection,
    expanding: &SqliteRow,
    channel: &str,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let Some(next) = readable_chunk(&mut *conn, expanding).await? else {
        return Ok(Default::default());
    };
    let (msg, t) = (&next.msg, &next.targets);
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), limit).await?;
    let range = Range::new(Some(&next.from), until.as_deref());
    // Ids only grow (AUTOINCREMENT): the rows this claim stores are those after `before`.
    let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM deliveries")
        .fetch_one(&mut *conn)
        .await?;
    if rules::expiry::is_expired(from_ms(deadline_ms(msg))?, now) {
        let stored = insert_audience(&mut *conn, msg, t, Some(range)).await?;
        let stored = i64::try_from(stored).unwrap_or(i64::MAX);
        advance(&mut *conn, msg, stored, &[("queued", stored)], &until, None).await?;
        let queued_channels = queued_channels_after(&mut *conn, before, channel).await?;
        return Ok((Vec::new(), queued_channels));
    }
    let hold = Lease {
        channel,
        until_ms: ms_after(now, lease),
        now_ms: ms(now),
    };
    let mut qb = QueryBuilder::<Sqlite>::new("");
    push_leased_insert(&mut qb, msg, t, range, hold);
    let stored = qb.build().execute(&mut *conn).await?.rows_affected();
    let stored = i64::try_from(stored).unwrap_or(i64::MAX);
    // Only what differs between the leased rows is read back; the rest is the lease's.
    let leased: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(id, device_id, token))
         FROM (SELECT id, device_id, token FROM deliveries
               WHERE id > $1 AND state = 'in_flight' ORDER BY id)",
    )
    .bind(before)
    .fetch_one(&mut *conn)
    .await?;
    let leased: Vec<(i64, Option<String>, String)> = serde_json::from_str(&leased)
        .map_err(|e| StoreError::Corrupt(format!("leased deliveries: {e}")))?;
    let (lease_until, now_stored) = (from_ms(hold.until_ms)?, from_ms(hold.now_ms)?);
    let deadline = from_ms(deadline_ms(msg))?;
    let leased: Vec<Delivery> = leased
        .into_iter()
        .map(|(id, device_id, token)| Delivery {
            id,
            message_id: msg.id,
            app: msg.app.clone(),
            device_id,
            token,
            channel: channel.to_string(),
            state: DeliveryState::InFlight,
            attempts: 1,
            due_at: lease_until,
            lease_until: Some(lease_until),
            deadline,
            provider_message_id: None,
            error_code: None,
            updated_at: now_stored,
        })
        .collect();
    let in_flight = i64::try_from(leased.len()).unwrap_or(i64::MAX);
    let counts = [("queued", stored - in_flight), ("in_flight", in_flight)];
    let progress = (in_flight > 0).then_some(now);
    advance(&mut *conn, msg, stored, &counts, &until, progress).await?;
    let queued_channels = if stored > in_flight {
        queued_channels_after(&mut *conn, before, channel).await?
    } else {
        Vec::new()
    };
    Ok((leased, queued_channels))
}

/// The channels other than `channel` of the queued deliveries stored after id `before` (by
/// the claim that is storing a chunk), for the store to announce.
async fn queued_channels_after(
    conn: &mut SqliteConnection,
    before: i64,
    channel: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT channel FROM deliveries
         WHERE id > $1 AND state = 'queued' AND channel <> $2",
    )
    .bind(before)
    .bind(channel)
    .fetch_all(conn)
    .await?)
}

/// The message `pick` names, decoded for its next chunk (one whose kept audience cannot be
/// read is given up, and the next one `pick` names is taken: see [`readable_chunk`]).
async fn next_of(conn: &mut SqliteConnection, pick: Pick<'_>) -> Result<Option<NextChunk>> {
    while let Some(row) = expanding_row(&mut *conn, pick).await? {
        if let Some(next) = readable_chunk(&mut *conn, &row).await? {
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// The row of the message `pick` names, for [`readable_chunk`] (a claim decodes it in its
/// savepoint: see [`expand_into_claim`]).
pub(super) async fn expanding_row(
    conn: &mut SqliteConnection,
    pick: Pick<'_>,
) -> Result<Option<SqliteRow>> {
    // Every claim asks, so the query must read the few messages still expanding, never the
    // app's whole history: SQLite's planner would rather take `messages_app_created` for
    // `app = ? ORDER BY created_at` (a scan of every message of the app, checked one by one).
    let table = match pick {
        Pick::ForChannel { .. } => "messages INDEXED BY messages_expanding_app",
        _ => "messages INDEXED BY messages_expanding",
    };
    let mut qb = expanding_query::<Sqlite>(pick, table, "");
    Ok(qb.build().fetch_optional(conn).await?)
}

/// Counts a stored chunk (`stored` deliveries, `by_state` of them in each state) and moves
/// the message's cursor to `until` (cleared with the kept audience when it is the last).
/// `progress` restarts the message's idle time (see [`Pick::IdleSince`]): the fan-out task's
/// chunks and a claim's that leased something do; a claim that only queued work for other
/// channels does not, so that a sparse channel's claims never keep the task away.
async fn advance(
    conn: &mut SqliteConnection,
    msg: &NewMessage,
    stored: i64,
    by_state: &[(&str, i64)],
    until: &Option<String>,
    progress: Option<OffsetDateTime>,
) -> Result<()> {
    for (state, n) in by_state.iter().filter(|(_, n)| *n > 0) {
        sqlx::query(
            "INSERT INTO message_state_counts (message_id, state, n) VALUES ($1, $2, $3)
             ON CONFLICT (message_id, state) DO UPDATE SET n = n + excluded.n",
        )
        .bind(msg.id)
        .bind(state)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE messages SET deliveries = deliveries + $1, queued = queued + $1,
                expand_from = $2, expanded_at = COALESCE($3, expanded_at),
                expansion = CASE WHEN $2 IS NULL THEN NULL ELSE expansion END
         WHERE id = $4",
    )
    .bind(stored)
    .bind(until)
    .bind(progress.map(ms))
    .bind(msg.id)
    .execute(conn)
    .await?;
    Ok(())
}
