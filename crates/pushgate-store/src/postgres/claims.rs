//! Handing due work to workers: claiming with a lease (expiring what is past its deadline),
//! releasing unsent work, and what is pending. Answers are recorded by [`super::outcomes`].
//!
//! A claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`: claimers on other
//! connections (or instances) skip them instead of waiting, and each gets other work.

use std::time::Duration;

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::events;
use super::fanout;
use crate::Result;
use crate::model::{Delivery, QueueStats, Release};
use crate::rules;
use crate::stored::fanout::{close_chunk_savepoint, open_chunk_savepoint};
use crate::stored::{count, decode, delivery_columns, from_ms, ms, ms_after};

/// Leases up to `limit` due deliveries of one channel; those past their deadline expire
/// instead ([`rules::expiry`] decides which). When fewer are due, the rest of the limit comes
/// from the next chunk of a large fan-out, stored already leased
/// ([`fanout::expand_into_claim`]); the second value names the channels that chunk queued
/// work for.
pub(super) async fn claim_due(
    conn: &mut PgConnection,
    app: &str,
    channel: &str,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let due: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, deadline FROM deliveries
         WHERE app = $1 AND channel = $2
           AND state IN ('queued', 'retry_wait', 'in_flight') AND due_at <= $3
         ORDER BY due_at, id LIMIT $4
         FOR UPDATE SKIP LOCKED",
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
        if rules::expiry::is_expired(from_ms(deadline)?, now) {
            to_expire.push(id);
        } else {
            to_claim.push(id);
        }
    }
    if !to_expire.is_empty() {
        expire(&mut *conn, app, &to_expire, now).await?;
    }
    let mut claimed = lease_due(&mut *conn, &to_claim, now, lease).await?;
    let room =
        limit.saturating_sub(u32::try_from(to_claim.len() + to_expire.len()).unwrap_or(u32::MAX));
    let mut queued_channels = Vec::new();
    if room > 0 {
        let (leased, queued) = leased_chunk(conn, app, channel, now, room, lease).await?;
        claimed.extend(leased);
        queued_channels = queued;
    }
    Ok((claimed, queued_channels))
}

/// The app's oldest expanding message that may reach `channel`, if any (one statement when
/// none), then [`fanout::expand_into_claim`] in a savepoint of its own: a fan-out whose next
/// chunk cannot be stored (a statement timeout, say) is logged and left out of this claim,
/// whose due work is still handed out; one whose kept audience cannot be read is given up
/// ([`crate::stored::fanout::readable_chunk`]).
async fn leased_chunk(
    conn: &mut PgConnection,
    app: &str,
    channel: &str,
    now: OffsetDateTime,
    room: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let pick = fanout::Pick::ForChannel { app, channel };
    let Some(expanding) = fanout::expanding_row(&mut *conn, pick).await? else {
        return Ok((Vec::new(), Vec::new()));
    };
    open_chunk_savepoint(&mut *conn).await?;
    let leased = fanout::expand_into_claim(&mut *conn, &expanding, channel, now, room, lease).await;
    close_chunk_savepoint(conn, leased, app, channel).await
}

/// Leases the due deliveries `to_claim` until `now + lease`, one attempt more; returns them as
/// they now stand, in id order.
async fn lease_due(
    conn: &mut PgConnection,
    to_claim: &[i64],
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Vec<Delivery>> {
    if to_claim.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "UPDATE deliveries SET state = 'in_flight', lease_until = $1, due_at = $1,
             attempts = attempts + 1, updated_at = $2
         WHERE id = ANY($3)
         RETURNING ",
        delivery_columns!()
    ))
    .bind(ms_after(now, lease))
    .bind(ms(now))
    .bind(to_claim)
    .fetch_all(&mut *conn)
    .await?;
    let mut claimed = rows
        .iter()
        .map(decode::delivery)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|d| d.id);
    Ok(claimed)
}

/// Settles due deliveries past their deadline as expired, each with its event.
async fn expire(
    conn: &mut PgConnection,
    app: &str,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<()> {
    let rows = sqlx::query(concat!(
        "UPDATE deliveries SET state = 'expired', lease_until = NULL,
             error_code = COALESCE(error_code, $1), updated_at = $2
         WHERE id = ANY($3)
         RETURNING ",
        delivery_columns!()
    ))
    .bind(rules::expiry::TTL_EXPIRED)
    .bind(ms(now))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut expired = rows
        .iter()
        .map(decode::delivery)
        .collect::<Result<Vec<_>>>()?;
    expired.sort_by_key(|d| d.id);
    for d in &expired {
        events::append(&mut *conn, app, &rules::expiry::expired_event(d), now).await?;
    }
    Ok(())
}

/// When the next pending delivery of one channel is due.
pub(super) async fn next_due(
    conn: &mut PgConnection,
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
    due.map(from_ms).transpose()
}

/// Puts in-flight deliveries back in the queue under the claim that took them, in one
/// statement; returns the (app, channel) pairs that got work back, with how many.
pub(super) async fn release(
    conn: &mut PgConnection,
    releases: &[Release],
    now: OffsetDateTime,
) -> Result<Vec<(String, String)>> {
    let ids: Vec<i64> = releases.iter().map(|r| r.delivery_id).collect();
    let attempts: Vec<i64> = releases.iter().map(|r| r.attempt).collect();
    let rows = sqlx::query(
        "UPDATE deliveries d
         SET state = 'queued', lease_until = NULL, due_at = $1, updated_at = $1,
             attempts = CASE WHEN d.attempts > 0 THEN d.attempts - 1 ELSE 0 END
         FROM (SELECT DISTINCT id, attempt FROM unnest($2::bigint[], $3::bigint[]) AS r(id, attempt)) r
         WHERE d.id = r.id AND d.state = 'in_flight' AND d.attempts = r.attempt
         RETURNING d.app, d.channel",
    )
    .bind(ms(now))
    .bind(&ids)
    .bind(&attempts)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("app")?, r.try_get("channel")?)))
        .collect()
}

/// Pending and due deliveries over every app.
pub(super) async fn queue_stats(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> Result<QueueStats> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS pending,
                COALESCE(SUM(CASE WHEN due_at <= $1 THEN 1 ELSE 0 END), 0)::bigint AS due,
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
        oldest_due: oldest.map(from_ms).transpose()?,
    })
}
