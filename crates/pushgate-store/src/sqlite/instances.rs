//! The heartbeat of the gateway instances sharing this file ([`crate::instances`]).

use sqlx::SqliteConnection;
use time::OffsetDateTime;

use crate::Result;
use crate::instances::{BEAT, COUNT, FORGET_STALE, LEAVE};
use crate::stored::ms;

/// Records `instance`'s beat at `now`, forgets those last seen before `stale`, and counts the
/// instances left.
pub(super) async fn beat(
    conn: &mut SqliteConnection,
    instance: &str,
    now: OffsetDateTime,
    stale: OffsetDateTime,
) -> Result<u32> {
    sqlx::query(BEAT)
        .bind(instance)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    sqlx::query(FORGET_STALE)
        .bind(ms(stale))
        .execute(&mut *conn)
        .await?;
    let alive: i64 = sqlx::query_scalar(COUNT).fetch_one(&mut *conn).await?;
    Ok(u32::try_from(alive).unwrap_or(u32::MAX).max(1))
}

/// Forgets `instance`.
pub(super) async fn leave(conn: &mut SqliteConnection, instance: &str) -> Result<()> {
    sqlx::query(LEAVE).bind(instance).execute(conn).await?;
    Ok(())
}
