//! Large fan-outs in chunks on SQLite (see [`crate::stored::fanout`]): the audience insert of
//! one range of device ids and one chunk of a message still expanding (the end of a chunk
//! and the kept audience are shared by every backend).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::messages::{DELIVERY_INSERT, push_channel, push_select_head, push_select_tail};
use super::targets::push_audience;
use crate::Result;
use crate::model::{Expansion, NewMessage, Targets};
pub(super) use crate::stored::fanout::{Range, first_chunk_end, keep_pending};
use crate::stored::fanout::{chunk_end, expanding_select, next_chunk, push_range};
use crate::stored::ms;

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

/// Stores the next chunk of the oldest message still expanding, with its counts and cursor.
pub(super) async fn expand_next(
    conn: &mut SqliteConnection,
    chunk: u32,
) -> Result<Option<Expansion>> {
    let Some(row) = sqlx::query(expanding_select!())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let next = next_chunk(&row)?;
    let (msg, t) = (&next.msg, &next.targets);
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), chunk).await?;
    let stored = insert_audience(
        &mut *conn,
        msg,
        t,
        Some(Range::new(Some(&next.from), until.as_deref())),
    )
    .await?;
    let n = i64::try_from(stored).unwrap_or(i64::MAX);
    if n > 0 {
        sqlx::query(
            "INSERT INTO message_state_counts (message_id, state, n) VALUES ($1, 'queued', $2)
             ON CONFLICT (message_id, state) DO UPDATE SET n = n + excluded.n",
        )
        .bind(msg.id)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE messages SET deliveries = deliveries + $1, queued = queued + $1,
                expand_from = $2,
                expansion = CASE WHEN $2 IS NULL THEN NULL ELSE expansion END
         WHERE id = $3",
    )
    .bind(n)
    .bind(&until)
    .bind(msg.id)
    .execute(conn)
    .await?;
    Ok(Some(Expansion {
        message_id: msg.id,
        app: msg.app.clone(),
        stored,
        done: until.is_none(),
    }))
}
