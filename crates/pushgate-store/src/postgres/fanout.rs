//! Large fan-outs in chunks on PostgreSQL (see [`crate::stored::fanout`]): the audience insert
//! of one range of device ids and one chunk of a message still expanding, queued or leased
//! to the claim that stores it (the end of a chunk, the leased insert and the kept audience
//! are shared by every backend), the message's row locked so that instances sharing the database store each chunk once.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;

use super::messages::{DELIVERY_INSERT, push_channel, push_select_head, push_select_tail};
use crate::model::{Delivery, DeliveryState, Expansion, NewMessage, Targets};
use crate::stored::audience::push_audience;
use crate::stored::fanout::{
    Lease, NextChunk, chunk_end, expanding_query, push_leased_insert, push_range, readable_chunk,
};
pub(super) use crate::stored::fanout::{Pick, Range, first_chunk_end, keep_pending};
use crate::stored::{deadline_ms, decode, delivery_columns, from_ms, ms, ms_after};
use crate::{Result, rules};

/// Pushes the insert of a queued delivery for every device of the audience, or of its `range`
/// when chunked.
fn push_insert_audience(
    qb: &mut QueryBuilder<Postgres>,
    msg: &NewMessage,
    t: &Targets,
    range: Option<Range<'_>>,
) {
    qb.push(DELIVERY_INSERT);
    push_select_head(qb, msg);
    qb.push("d.device_id, d.token, ");
    push_channel(qb, msg, "d.channel");
    qb.push(", 'queued', NULL");
    push_select_tail(qb, msg);
    qb.push(" FROM devices d WHERE ");
    push_audience(qb, &msg.app, t, range.is_some());
    if let Some(range) = range {
        push_range(qb, ms(msg.created_at), range.from, range.until);
    }
}

/// Stores a queued delivery for every device of the audience, or of its `range` when chunked.
pub(super) async fn insert_audience(
    conn: &mut PgConnection,
    msg: &NewMessage,
    t: &Targets,
    range: Option<Range<'_>>,
) -> Result<u64> {
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_insert_audience(&mut qb, msg, t, range);
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// One chunk stored: what the caller reports, and the channels that got queued work (to be
/// announced once the transaction has committed).
pub(super) struct Expanded {
    pub(super) expansion: Expansion,
    pub(super) queued_channels: Vec<String>,
}

/// Stores the next chunk of `chunk` devices of the message `pick` names that no other
/// transaction is expanding (its row locked, others skipped), as queued deliveries, with its
/// counts and cursor.
pub(super) async fn expand_next(
    conn: &mut PgConnection,
    pick: Pick<'_>,
    chunk: u32,
    now: OffsetDateTime,
) -> Result<Option<Expanded>> {
    let Some(next) = next_of(&mut *conn, pick).await? else {
        return Ok(None);
    };
    let (msg, t) = (&next.msg, &next.targets);
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), chunk).await?;
    let range = Range::new(Some(&next.from), until.as_deref());
    let (stored, queued_channels) = insert_queued_chunk(&mut *conn, msg, t, range).await?;
    advance(&mut *conn, msg, stored, &until, Some(now)).await?;
    Ok(Some(Expanded {
        expansion: Expansion {
            message_id: msg.id,
            app: msg.app.clone(),
            stored: u64::try_from(stored).unwrap_or(0),
            done: until.is_none(),
        },
        queued_channels,
    }))
}

/// A claim's part in a large fan-out (as on SQLite): stores the next `limit` devices of the
/// message whose locked row is `expanding` (the app's oldest still expanding that may reach
/// `channel` and no other transaction is expanding: [`expanding_row`] with
/// [`Pick::ForChannel`]), those on `channel` in flight under a lease as
/// [`super::claims::claim_due`] would hand them out, the others queued; returns the leased
/// ones and the channels that got queued work. A message past its deadline has its chunk
/// stored queued, for the claims to expire.
pub(super) async fn expand_into_claim(
    conn: &mut PgConnection,
    expanding: &PgRow,
    channel: &str,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let Some(next) = readable_chunk(&mut *conn, expanding).await? else {
        return Ok(Default::default());
    };
    let (msg, t) = (&next.msg, &next.targets);
    // The end of a claim's chunk is a few hundred devices into the rest of the audience. A
    // registry without statistics yet (just imported; analyzed only by autovacuum, later)
    // makes the planner guess a dozen rows for the open range and read all of it by bitmap,
    // then sort it: a scan of the whole remaining audience for every claim. Walking the
    // primary key in order reads only the chunk, whatever the statistics. The setting is put
    // back as it was; if the query fails, the claim's savepoint undoes it with the rest.
    let planner: String = sqlx::query_scalar("SELECT current_setting('enable_bitmapscan')")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("SELECT set_config('enable_bitmapscan', 'off', true)")
        .execute(&mut *conn)
        .await?;
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), limit).await?;
    sqlx::query("SELECT set_config('enable_bitmapscan', $1, true)")
        .bind(&planner)
        .execute(&mut *conn)
        .await?;
    let range = Range::new(Some(&next.from), until.as_deref());
    if rules::expiry::is_expired(from_ms(deadline_ms(msg))?, now) {
        let (stored, queued_channels) = insert_queued_chunk(&mut *conn, msg, t, range).await?;
        advance(&mut *conn, msg, stored, &until, None).await?;
        return Ok((Vec::new(), queued_channels));
    }
    let hold = Lease {
        channel,
        until_ms: ms_after(now, lease),
        now_ms: ms(now),
    };
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_leased_insert(&mut qb, msg, t, range, hold);
    qb.push(concat!(" RETURNING ", delivery_columns!()));
    let rows = qb.build().fetch_all(&mut *conn).await?;
    let mut leased = Vec::with_capacity(rows.len());
    let mut queued_channels: Vec<String> = Vec::new();
    for row in &rows {
        let d = decode::delivery(row)?;
        if d.state == DeliveryState::InFlight {
            leased.push(d);
        } else if !queued_channels.contains(&d.channel) {
            queued_channels.push(d.channel);
        }
    }
    leased.sort_by_key(|d| d.id);
    let stored = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let progress = (!leased.is_empty()).then_some(now);
    advance(&mut *conn, msg, stored, &until, progress).await?;
    Ok((leased, queued_channels))
}

/// The message `pick` names, its row locked (messages another transaction holds skipped),
/// decoded for its next chunk (one whose kept audience cannot be read is given up, and the
/// next one `pick` names is taken: see [`readable_chunk`]).
async fn next_of(conn: &mut PgConnection, pick: Pick<'_>) -> Result<Option<NextChunk>> {
    while let Some(row) = expanding_row(&mut *conn, pick).await? {
        if let Some(next) = readable_chunk(&mut *conn, &row).await? {
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// The row of the message `pick` names, locked (messages another transaction holds skipped),
/// for [`readable_chunk`] (a claim decodes it in its savepoint: see [`expand_into_claim`]).
pub(super) async fn expanding_row(
    conn: &mut PgConnection,
    pick: Pick<'_>,
) -> Result<Option<PgRow>> {
    let mut qb = expanding_query::<Postgres>(pick, "messages", " FOR UPDATE SKIP LOCKED");
    Ok(qb.build().fetch_optional(conn).await?)
}

/// Stores the chunk `range` as queued deliveries; returns how many, and their channels.
async fn insert_queued_chunk(
    conn: &mut PgConnection,
    msg: &NewMessage,
    t: &Targets,
    range: Range<'_>,
) -> Result<(i64, Vec<String>)> {
    let mut qb = QueryBuilder::<Postgres>::new("WITH stored AS (");
    push_insert_audience(&mut qb, msg, t, Some(range));
    qb.push(" RETURNING channel) SELECT channel, COUNT(*) AS n FROM stored GROUP BY channel");
    let per_channel = qb.build().fetch_all(conn).await?;
    let mut stored: i64 = 0;
    let mut channels = Vec::with_capacity(per_channel.len());
    for row in &per_channel {
        stored += row.try_get::<i64, _>("n")?;
        channels.push(row.try_get("channel")?);
    }
    Ok((stored, channels))
}

/// Counts a stored chunk of `stored` deliveries on the message (the per-state counts are
/// kept by triggers) and moves its cursor to `until` (cleared with the kept audience when it
/// is the last). `progress` restarts the message's idle time, as on SQLite: the fan-out
/// task's chunks and a claim's that leased something do.
async fn advance(
    conn: &mut PgConnection,
    msg: &NewMessage,
    stored: i64,
    until: &Option<String>,
    progress: Option<OffsetDateTime>,
) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET deliveries = deliveries + $1, queued = queued + $1,
                expand_from = $2, expanded_at = COALESCE($3, expanded_at),
                expansion = CASE WHEN $2::text IS NULL THEN NULL ELSE expansion END
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
