//! A message's deliveries as the API shows them: the statements every backend shares
//! ([`crate::stored::reads`]), on a SQLite connection.

use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::Result;
use crate::model::{Delivery, MessageSummary, Page};
use crate::stored::reads;

/// Counts of a message's deliveries by state.
pub(super) async fn message_summary(
    conn: &mut SqliteConnection,
    message_id: Uuid,
) -> Result<MessageSummary> {
    reads::message_summary(conn, message_id).await
}

/// A page of a message's deliveries in id order.
pub(super) async fn list_deliveries(
    conn: &mut SqliteConnection,
    message_id: Uuid,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page<Delivery, i64>> {
    reads::list_deliveries(conn, message_id, cursor, limit).await
}
