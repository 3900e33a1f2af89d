//! Handing due work to workers: claiming with a lease (expiring what is past its deadline),
//! releasing unsent work, and what is pending. Answers are recorded by [`super::outcomes`].

use std::time::Duration;

use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::events;
use super::fanout;
use super::rows::{self, count, delivery_json_array, ms, ms_after};
use super::state_counts::{self, Move};
use crate::model::{Delivery, DeliveryState, QueueStats, Release};
use crate::stored::decode::JsonDelivery;
use crate::stored::fanout::{close_chunk_savepoint, open_chunk_savepoint};
use crate::{Result, rules};

/// Leases up to `limit` due deliveries of one channel; those past their deadline expire
/// instead ([`rules::expiry`] decides which). When fewer are due, the rest of the limit comes
/// from the next chunk of a large fan-out, stored already leased
/// ([`fanout::expand_into_claim`]); the channels that chunk queued work for are returned
/// beside the claimed deliveries, to be announced once committed.
///
/// The due rows come back in one aggregated JSON value (one hand-off from SQLite's thread
/// instead of one per row); the claimed rows are not read again, since the claim's update
/// says what they now hold.
pub(super) async fn claim_due(
    conn: &mut SqliteConnection,
    app: &str,
    channel: &str,
    now: OffsetDateTime,
    limit: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let due: String = sqlx::query_scalar(concat!(
        "SELECT json_group_array(",
        delivery_json_array!(),
        ") FROM (SELECT * FROM deliveries
                 WHERE app = $1 AND channel = $2
                   AND state IN ('queued', 'retry_wait', 'in_flight') AND due_at <= $3
                 ORDER BY due_at, id LIMIT $4)"
    ))
    .bind(app)
    .bind(channel)
    .bind(ms(now))
    .bind(i64::from(limit))
    .fetch_one(&mut *conn)
    .await?;
    let due = JsonDelivery::parse_all(&due, "due deliveries")?;
    let due_count = due.len();
    let mut to_claim = Vec::with_capacity(due_count);
    let mut to_expire = Vec::new();
    for row in due {
        let d = row.into_delivery()?;
        if rules::expiry::is_expired(d.deadline, now) {
            to_expire.push(d);
        } else {
            to_claim.push(d);
        }
    }
    if !to_expire.is_empty() {
        expire(&mut *conn, app, to_expire, now).await?;
    }
    let mut claimed = lease_due(&mut *conn, to_claim, now, lease).await?;
    let room = limit.saturating_sub(u32::try_from(due_count).unwrap_or(u32::MAX));
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
/// chunk cannot be stored is logged and left out of this claim, whose due work is still
/// handed out; it is not undone with the claim. One whose kept audience cannot be read is
/// given up ([`crate::stored::fanout::readable_chunk`]).
async fn leased_chunk(
    conn: &mut SqliteConnection,
    app: &str,
    channel: &str,
    now: OffsetDateTime,
    room: u32,
    lease: Duration,
) -> Result<(Vec<Delivery>, Vec<String>)> {
    let pick = fanout::Pick::ForChannel { app, channel };
    let Some(expanding) = fanout::expanding_row(&mut *conn, pick).await? else {
        return Ok(Default::default());
    };
    open_chunk_savepoint(&mut *conn).await?;
    let leased = fanout::expand_into_claim(&mut *conn, &expanding, channel, now, room, lease).await;
    close_chunk_savepoint(conn, leased, app, channel).await
}

/// Leases the due deliveries `to_claim` until `now + lease`, one attempt more; returns them as
/// they now stand, in id order.
async fn lease_due(
    conn: &mut SqliteConnection,
    mut to_claim: Vec<Delivery>,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Vec<Delivery>> {
    if to_claim.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = ms_after(now, lease);
    sqlx::query(
        "UPDATE deliveries SET state = 'in_flight', lease_until = $1, due_at = $1,
             attempts = attempts + 1, updated_at = $2
         WHERE id IN (SELECT value FROM json_each($3))",
    )
    .bind(lease_until)
    .bind(ms(now))
    .bind(json_ids(to_claim.iter().map(|d| d.id)))
    .execute(&mut *conn)
    .await?;
    let moves: Vec<Move> = to_claim
        .iter()
        .map(|d| d.moved_to(DeliveryState::InFlight))
        .collect();
    state_counts::record(&mut *conn, &moves).await?;
    let (lease_until, now) = (rows::from_ms(lease_until)?, rows::from_ms(ms(now))?);
    for d in &mut to_claim {
        d.state = DeliveryState::InFlight;
        d.lease_until = Some(lease_until);
        d.due_at = lease_until;
        d.attempts += 1;
        d.updated_at = now;
    }
    to_claim.sort_by_key(|d| d.id);
    Ok(to_claim)
}

/// Settles due deliveries past their deadline as expired, each with its event.
async fn expire(
    conn: &mut SqliteConnection,
    app: &str,
    mut list: Vec<Delivery>,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET state = 'expired', lease_until = NULL,
             error_code = COALESCE(error_code, $1), updated_at = $2
         WHERE id IN (SELECT value FROM json_each($3))",
    )
    .bind(rules::expiry::TTL_EXPIRED)
    .bind(ms(now))
    .bind(json_ids(list.iter().map(|d| d.id)))
    .execute(&mut *conn)
    .await?;
    // Leased work is counted here; the triggers count the rest (see `state_counts`).
    let moves: Vec<Move> = list
        .iter()
        .filter(|d| d.state == DeliveryState::InFlight)
        .map(|d| d.moved_to(DeliveryState::Expired))
        .collect();
    state_counts::record(&mut *conn, &moves).await?;
    let now = rows::from_ms(ms(now))?;
    list.sort_by_key(|d| d.id);
    for d in &mut list {
        d.state = DeliveryState::Expired;
        d.lease_until = None;
        d.error_code
            .get_or_insert_with(|| rules::expiry::TTL_EXPIRED.to_string());
        d.updated_at = now;
        events::append(&mut *conn, app, &rules::expiry::expired_event(d), now).await?;
    }
    Ok(())
}

/// Delivery ids as one JSON array, for `json_each`.
fn json_ids(ids: impl Iterator<Item = i64>) -> String {
    serde_json::Value::from(ids.collect::<Vec<_>>()).to_string()
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
    let mut released = Vec::new();
    for r in releases {
        let row = sqlx::query(
            "UPDATE deliveries
             SET state = 'queued', lease_until = NULL, due_at = $1, updated_at = $1,
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
             WHERE id = $2 AND state = 'in_flight' AND attempts = $3
             RETURNING message_id, app, channel",
        )
        .bind(ms(now))
        .bind(r.delivery_id)
        .bind(r.attempt)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let message: uuid::Uuid = row.try_get("message_id")?;
            let (app, channel): (String, String) = (row.try_get("app")?, row.try_get("channel")?);
            released.push((message, app, channel));
        }
    }
    let moves: Vec<Move> = released
        .iter()
        .map(|(message, app, channel)| Move {
            message: *message,
            app,
            channel,
            from: DeliveryState::InFlight,
            to: DeliveryState::Queued,
        })
        .collect();
    state_counts::record(&mut *conn, &moves).await?;
    Ok(released.len() as u64)
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
