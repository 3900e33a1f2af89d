//! Recording provider answers: the deliveries' new states and, in the same transaction, what
//! each answer means for the registry (canonical ids, dead tokens) and for the application
//! (events). The decisions are [`crate::rules::outcome`]'s; this module reads the facts they
//! need and executes them.
//!
//! Answers are settled set-based (`UPDATE … FROM unnest(…)`, one statement per run of
//! answers) and their effects executed in the batch's order afterwards. A run ends after each
//! answer that may change the registry (a canonical id, a dead token), because those effects
//! touch waiting deliveries that a later answer of the batch could settle: the result is the
//! same as settling the answers one by one.

use std::collections::{HashMap, HashSet};

use pushgate_proto::outcome::Outcome;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::{events, registry};
use crate::Result;
use crate::model::Completion;
use crate::rules;
use crate::rules::events::DeliveryRef;
use crate::rules::outcome::{Effect, HolderLookup, Settlement, TokenHolders};
use crate::stored::{decode, from_ms, ms};

/// An applied answer: its delivery's app and how events name it.
type Applied = (String, DeliveryRef);

/// True when the answer may change the registry (and so waiting deliveries).
fn touches_registry(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Rotated { .. } | Outcome::TokenDead { .. })
}

/// Whether a retriable answer needs the delivery's deadline to be settled.
fn needs_deadline(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::RetryLater { .. } | Outcome::Throttled { .. }
    )
}

/// The deadlines of the deliveries whose answers ask to retry.
async fn deadlines(
    conn: &mut PgConnection,
    results: &[&Completion],
) -> Result<HashMap<i64, OffsetDateTime>> {
    let ids: Vec<i64> = results
        .iter()
        .filter(|c| needs_deadline(&c.outcome))
        .map(|c| c.delivery_id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, deadline FROM deliveries WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(id, deadline)| Ok((id, from_ms(deadline)?)))
        .collect()
}

/// Sets the states of a run of answers in one statement, for the deliveries still in flight
/// under the claim each answer names; the applied ones by (delivery, attempt).
async fn settle_run(
    conn: &mut PgConnection,
    run: &[&Completion],
    settlements: &[Settlement],
    now: OffsetDateTime,
) -> Result<HashMap<(i64, i64), Applied>> {
    let rows = sqlx::query(
        "UPDATE deliveries d
         SET state = u.state, due_at = COALESCE(u.due_at, d.due_at), lease_until = NULL,
             provider_message_id = u.provider_message_id, error_code = u.error_code,
             updated_at = $1
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
                     $7::text[])
              AS u(id, attempt, state, due_at, provider_message_id, error_code)
         WHERE d.id = u.id AND d.state = 'in_flight' AND d.attempts = u.attempt
         RETURNING d.id, d.attempts, d.message_id, d.app, d.device_id, d.token",
    )
    .bind(ms(now))
    .bind(run.iter().map(|c| c.delivery_id).collect::<Vec<_>>())
    .bind(run.iter().map(|c| c.attempt).collect::<Vec<_>>())
    .bind(
        settlements
            .iter()
            .map(|s| s.state.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        settlements
            .iter()
            .map(|s| s.due_at.map(ms))
            .collect::<Vec<_>>(),
    )
    .bind(
        run.iter()
            .map(|c| c.outcome.message_id().map(str::to_string))
            .collect::<Vec<_>>(),
    )
    .bind(
        run.iter()
            .map(|c| c.outcome.reason().map(str::to_string))
            .collect::<Vec<_>>(),
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let key = (row.try_get("id")?, row.try_get("attempts")?);
            Ok((key, (row.try_get("app")?, decode::delivery_ref(row)?)))
        })
        .collect()
}

/// Looks up the live holders the answer's effects depend on.
async fn holders(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
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
                "UPDATE devices SET token = $1, updated_at = $2
                 WHERE app = $3 AND device_id = $4",
            )
            .bind(new_token)
            .bind(ms(now))
            .bind(app)
            .bind(device_id)
            .execute(&mut *conn)
            .await?;
            registry::follow_token(conn, app, device_id, new_token, now).await
        }
    }
}

/// Records a batch of answers; stale ones (and repeats of one answer) are skipped.
pub(super) async fn complete(
    conn: &mut PgConnection,
    results: &[Completion],
    now: OffsetDateTime,
) -> Result<u64> {
    let mut seen = HashSet::new();
    let results: Vec<&Completion> = results
        .iter()
        .filter(|c| seen.insert((c.delivery_id, c.attempt)))
        .collect();
    let deadlines = deadlines(&mut *conn, &results).await?;
    let mut applied = 0;
    let mut rest = results.as_slice();
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|c| touches_registry(&c.outcome))
            .map_or(rest.len(), |i| i + 1);
        let (run, after) = rest.split_at(end);
        rest = after;
        let settlements: Vec<Settlement> = run
            .iter()
            .map(|c| {
                let deadline = deadlines.get(&c.delivery_id).copied();
                rules::outcome::settle(&c.outcome, c.retry_at, deadline, now)
            })
            .collect();
        let settled = settle_run(&mut *conn, run, &settlements, now).await?;
        for (c, settlement) in run.iter().zip(&settlements) {
            let Some((app, delivery)) = settled.get(&(c.delivery_id, c.attempt)) else {
                continue;
            };
            applied += 1;
            let lookup = rules::outcome::holders_needed(&c.outcome, &delivery.token);
            let holders = holders(&mut *conn, app, &delivery.token, lookup).await?;
            for effect in rules::outcome::effects(&c.outcome, settlement.state, delivery, &holders)
            {
                execute(&mut *conn, app, &effect, now).await?;
            }
        }
    }
    Ok(applied)
}
