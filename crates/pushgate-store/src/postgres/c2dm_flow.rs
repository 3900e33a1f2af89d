//! The C2DM-era registration flow: a registration id becomes a device's token only once the
//! device echoes the confirmation token it was pushed (as django-c2dm did).

use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::messages;
use super::registry;
use crate::Result;
use crate::model::{C2dmFlowRegistration, InsertOutcome};
use crate::store::Confirmation;
use crate::stored::{constant_time_eq, ms};

/// Records a registration and stores its confirmation message.
pub(super) async fn register(
    conn: &mut PgConnection,
    app: &str,
    reg: &C2dmFlowRegistration,
    now: OffsetDateTime,
) -> Result<InsertOutcome> {
    registry::require_app(&mut *conn, app).await?;
    // A new device has no token until it confirms; an existing one keeps its current token.
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, channel, state, registration,
                              created_at, updated_at)
         VALUES ($1, $2, NULL, $3, 'active', 'c2dm_flow', $4, $4)
         ON CONFLICT (app, device_id) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(&reg.device_id)
    .bind(&reg.channel)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO pending_registrations (app, device_id, registration_id, confirmation_token,
                                            created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (app, device_id) DO UPDATE SET
             registration_id = excluded.registration_id,
             confirmation_token = excluded.confirmation_token,
             created_at = excluded.created_at",
    )
    .bind(app)
    .bind(&reg.device_id)
    .bind(&reg.registration_id)
    .bind(&reg.confirmation_token)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    messages::insert_single(
        conn,
        &reg.message,
        &reg.device_id,
        &reg.registration_id,
        &reg.channel,
    )
    .await
}

/// Checks a confirmation and, when it matches, makes the registration id the device's token.
pub(super) async fn confirm(
    conn: &mut PgConnection,
    app: &str,
    device_id: &str,
    confirmation_token: &str,
    now: OffsetDateTime,
) -> Result<Confirmation> {
    let row = sqlx::query(
        "SELECT registration_id, confirmation_token FROM pending_registrations
         WHERE app = $1 AND device_id = $2 FOR UPDATE",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Confirmation::NothingPending);
    };
    let registration_id: String = row.try_get("registration_id")?;
    let expected: String = row.try_get("confirmation_token")?;
    if !constant_time_eq(expected.as_bytes(), confirmation_token.as_bytes()) {
        return Ok(Confirmation::WrongToken);
    }
    registry::take_over(&mut *conn, app, device_id, &registration_id, now).await?;
    sqlx::query(
        "UPDATE devices SET token = $1, updated_at = $2, invalid_reason = NULL,
                state = CASE WHEN state = 'invalid' THEN 'active' ELSE state END
         WHERE app = $3 AND device_id = $4",
    )
    .bind(&registration_id)
    .bind(ms(now))
    .bind(app)
    .bind(device_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM pending_registrations WHERE app = $1 AND device_id = $2")
        .bind(app)
        .bind(device_id)
        .execute(&mut *conn)
        .await?;
    registry::follow_token(conn, app, device_id, &registration_id, now).await?;
    Ok(Confirmation::Confirmed)
}
