//! Large fan-outs in chunks on PostgreSQL (see [`crate::stored::fanout`]): the audience insert
//! of one range of device ids and one chunk of a message still expanding (the end of a chunk
//! and the kept audience are shared by every backend), the message's row locked so that instances sharing the database store each chunk once.

use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::messages::{DELIVERY_INSERT, push_channel, push_select_head, push_select_tail};
use crate::Result;
use crate::model::{Expansion, NewMessage, Targets};
use crate::stored::audience::push_audience;
pub(super) use crate::stored::fanout::{Range, first_chunk_end, keep_pending};
use crate::stored::fanout::{chunk_end, expanding_select, next_chunk, push_range};
use crate::stored::ms;

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
) -> Result<()> {
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_insert_audience(&mut qb, msg, t, range);
    qb.build().execute(conn).await?;
    Ok(())
}

/// One chunk stored: what the caller reports, and the channels that got queued work (to be
/// announced once the transaction has committed).
pub(super) struct Expanded {
    pub(super) expansion: Expansion,
    pub(super) queued_channels: Vec<String>,
}

/// Stores the next chunk of the oldest message still expanding that no other transaction is
/// expanding (its row locked, others skipped), with its counts and cursor.
pub(super) async fn expand_next(conn: &mut PgConnection, chunk: u32) -> Result<Option<Expanded>> {
    let Some(row) = sqlx::query(concat!(expanding_select!(), " FOR UPDATE SKIP LOCKED"))
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let next = next_chunk(&row)?;
    let (msg, t) = (&next.msg, &next.targets);
    let until = chunk_end(&mut *conn, msg, t, Some(&next.from), chunk).await?;
    let mut qb = QueryBuilder::<Postgres>::new("WITH stored AS (");
    push_insert_audience(
        &mut qb,
        msg,
        t,
        Some(Range::new(Some(&next.from), until.as_deref())),
    );
    qb.push(" RETURNING channel) SELECT channel, COUNT(*) AS n FROM stored GROUP BY channel");
    let per_channel = qb.build().fetch_all(&mut *conn).await?;
    let mut stored: i64 = 0;
    let mut queued_channels = Vec::with_capacity(per_channel.len());
    for row in &per_channel {
        stored += row.try_get::<i64, _>("n")?;
        queued_channels.push(row.try_get("channel")?);
    }
    sqlx::query(
        "UPDATE messages SET deliveries = deliveries + $1, queued = queued + $1,
                expand_from = $2,
                expansion = CASE WHEN $2::text IS NULL THEN NULL ELSE expansion END
         WHERE id = $3",
    )
    .bind(stored)
    .bind(&until)
    .bind(msg.id)
    .execute(conn)
    .await?;
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
