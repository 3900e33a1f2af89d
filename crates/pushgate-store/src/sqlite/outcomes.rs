//! Recording provider answers: the delivery's new state and, in the same transaction, what
//! the answer means for the registry (canonical ids, dead tokens) and for the application
//! (events). The decisions are [`crate::rules::outcome`]'s; this module reads the facts they
//! need and executes them.

use pushgate_proto::outcome::Outcome;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::events;
use super::registry;
use super::rows::{self, ms};
use super::state_counts::{self, Move};
use super::token_key::token_key;
use crate::model::{Completion, DeliveryState};
use crate::rules;
use crate::rules::events::DeliveryRef;
use crate::rules::outcome::{Effect, HolderLookup, Settlement, TokenHolders};
use crate::{Result, StoreError};

/// Sets the delivery's state if it is still in flight under the claim `c` names; `None` when
/// the answer is stale (the lease ran out and another claim took the delivery).
async fn settle(
    conn: &mut SqliteConnection,
    c: &Completion,
    settlement: Settlement,
    now: OffsetDateTime,
) -> Result<Option<(String, DeliveryRef)>> {
    let row = sqlx::query(
        "UPDATE deliveries
         SET state = $1, due_at = COALESCE($2, due_at), lease_until = NULL,
             provider_message_id = $3, error_code = $4, updated_at = $5
         WHERE id = $6 AND state = 'in_flight' AND attempts = $7
         RETURNING id, message_id, app, channel, device_id, token",
    )
    .bind(settlement.state.as_str())
    .bind(settlement.due_at.map(ms))
    .bind(c.outcome.message_id())
    .bind(c.outcome.reason())
    .bind(ms(now))
    .bind(c.delivery_id)
    .bind(c.attempt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (app, channel): (String, String) = (row.try_get("app")?, row.try_get("channel")?);
    let delivery = events::delivery_ref(&row)?;
    let moved = Move {
        message: delivery.message_id,
        app: &app,
        channel: &channel,
        from: DeliveryState::InFlight,
        to: settlement.state,
    };
    state_counts::record(conn, &[moved]).await?;
    Ok(Some((app, delivery)))
}

/// The deadline of a delivery, if it still exists.
async fn deadline(conn: &mut SqliteConnection, delivery_id: i64) -> Result<Option<OffsetDateTime>> {
    let deadline: Option<i64> = sqlx::query_scalar("SELECT deadline FROM deliveries WHERE id = $1")
        .bind(delivery_id)
        .fetch_optional(conn)
        .await?;
    deadline.map(rows::from_ms).transpose()
}

/// Looks up the live holders the answer's effects depend on.
async fn holders(
    conn: &mut SqliteConnection,
    app: &str,
    token: &str,
    lookup: HolderLookup<'_>,
) -> Result<TokenHolders> {
    let mut found = TokenHolders::default();
    if lookup.answered_token {
        found.of_answered_token = registry::live_holder(&mut *conn, app, token).await?;
    }
    if let Some(new_token) = lookup.new_token {
        found.of_new_token = registry::live_holder(conn, app, new_token).await?;
    }
    Ok(found)
}

/// Executes one effect of an answer.
async fn execute(
    conn: &mut SqliteConnection,
    app: &str,
    effect: &Effect,
    now: OffsetDateTime,
) -> Result<()> {
    match effect {
        Effect::Event(event) => events::append(conn, app, event, now).await,
        Effect::Retire(retirement) => registry::retire(conn, app, retirement, now).await,
        Effect::ChangeToken {
            device_id,
            new_token,
        } => {
            sqlx::query(
                "UPDATE devices SET token = $1, token_key = $5, updated_at = $2
                 WHERE app = $3 AND device_id = $4",
            )
            .bind(new_token)
            .bind(ms(now))
            .bind(app)
            .bind(device_id)
            .bind(token_key(new_token))
            .execute(&mut *conn)
            .await?;
            registry::follow_token(conn, app, device_id, new_token, now).await
        }
    }
}

/// Records one answer with all its effects, as [`rules::outcome`] decides them; false when it
/// was stale.
async fn apply(conn: &mut SqliteConnection, c: &Completion, now: OffsetDateTime) -> Result<bool> {
    let deadline = match &c.outcome {
        Outcome::RetryLater { .. } | Outcome::Throttled { .. } => {
            deadline(&mut *conn, c.delivery_id).await?
        }
        _ => None,
    };
    let settlement = rules::outcome::settle(&c.outcome, c.retry_at, deadline, now);
    let Some((app, delivery)) = settle(&mut *conn, c, settlement, now).await? else {
        return Ok(false);
    };
    let lookup = rules::outcome::holders_needed(&c.outcome, &delivery.token);
    let holders = holders(&mut *conn, &app, &delivery.token, lookup).await?;
    for effect in rules::outcome::effects(&c.outcome, settlement.state, &delivery, &holders) {
        execute(&mut *conn, &app, &effect, now).await?;
    }
    Ok(true)
}

/// Records a batch of answers; stale ones are skipped. Answers that need nothing but their
/// delivery's new state (see [`settles_alone`]) are recorded together in one statement; the
/// others one by one with their effects.
pub(super) async fn complete(
    conn: &mut SqliteConnection,
    results: &[Completion],
    now: OffsetDateTime,
) -> Result<u64> {
    let (plain, other): (Vec<&Completion>, Vec<&Completion>) = if distinct_deliveries(results) {
        results.iter().partition(|c| settles_alone(&c.outcome))
    } else {
        (Vec::new(), results.iter().collect())
    };
    let mut applied = settle_together(&mut *conn, &plain, now).await?;
    for c in other {
        if apply(&mut *conn, c, now).await? {
            applied += 1;
        }
    }
    Ok(applied)
}

/// Answers whose recording reads no deadline, looks up no token holder and has no effect in
/// [`rules::outcome::effects`]: a plain delivery.
fn settles_alone(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Delivered { .. })
}

/// True when no delivery is answered twice in the batch (then the order of recording does
/// not matter).
fn distinct_deliveries(results: &[Completion]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(results.len());
    results.iter().all(|c| seen.insert(c.delivery_id))
}

/// Sets the state of every delivery in `list` still in flight under the claim its answer
/// names, in one statement, and counts the changes; returns how many were.
async fn settle_together(
    conn: &mut SqliteConnection,
    list: &[&Completion],
    now: OffsetDateTime,
) -> Result<u64> {
    if list.is_empty() {
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|c| {
            let settlement = rules::outcome::settle(&c.outcome, c.retry_at, None, now);
            serde_json::json!([
                c.delivery_id,
                c.attempt,
                settlement.state.as_str(),
                settlement.due_at.map(ms),
                c.outcome.message_id(),
                c.outcome.reason(),
            ])
        })
        .collect();
    let answers = serde_json::Value::from(rows).to_string();
    // Which answers are current (the others are stale: skipped), with what the counts need;
    // one aggregated value, read before the update changes the states it selects on.
    let live: String = sqlx::query_scalar(
        "SELECT json_group_array(json_array(hex(d.message_id), d.app, d.channel, j.value ->> 2))
         FROM json_each($1) j JOIN deliveries d ON d.id = j.value ->> 0
         WHERE d.state = 'in_flight' AND d.attempts = j.value ->> 1",
    )
    .bind(&answers)
    .fetch_one(&mut *conn)
    .await?;
    let live: Vec<(String, String, String, String)> = serde_json::from_str(&live)
        .map_err(|e| StoreError::Corrupt(format!("answered deliveries: {e}")))?;
    if live.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "UPDATE deliveries
         SET state = j.value ->> 2, due_at = COALESCE(j.value ->> 3, due_at), lease_until = NULL,
             provider_message_id = j.value ->> 4, error_code = j.value ->> 5, updated_at = $1
         FROM json_each($2) j
         WHERE deliveries.id = j.value ->> 0 AND deliveries.state = 'in_flight'
           AND deliveries.attempts = j.value ->> 1",
    )
    .bind(ms(now))
    .bind(&answers)
    .execute(&mut *conn)
    .await?;
    let moves = live
        .iter()
        .map(|(message, app, channel, state)| {
            Ok(Move {
                message: uuid::Uuid::try_parse(message)
                    .map_err(|e| StoreError::Corrupt(format!("message id {message:?}: {e}")))?,
                app,
                channel,
                from: DeliveryState::InFlight,
                to: state.parse()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    state_counts::record(conn, &moves).await?;
    Ok(live.len() as u64)
}
