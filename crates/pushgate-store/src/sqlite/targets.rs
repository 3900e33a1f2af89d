//! Turning [`Targets`] into SQL over `devices d`: the audience of a message is selected and
//! copied into `deliveries` by the database itself, in the transaction that stores it; and
//! the channels a message's targets would reach. The audience condition is shared with every
//! backend ([`crate::stored::audience`]).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::token_key::keyed_tokens_json;
use crate::Result;
use crate::model::Targets;
pub(super) use crate::stored::audience::{has_audience, push_audience};

/// A list as one bound JSON array, for `IN (SELECT value FROM json_each(?))`.
pub(super) fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// The distinct channels the deliveries of these targets would use.
pub(super) async fn reached_channels(
    conn: &mut SqliteConnection,
    app: &str,
    t: &Targets,
    channel_override: Option<&str>,
    default_channel: &str,
) -> Result<Vec<String>> {
    if let Some(channel) = channel_override {
        return Ok(vec![channel.to_string()]);
    }
    let mut channels = Vec::new();
    if has_audience(t) {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT DISTINCT COALESCE(d.channel, ");
        qb.push_bind(default_channel.to_string())
            .push(") AS channel FROM devices d WHERE ");
        push_audience(&mut qb, app, t, false);
        let found: Vec<String> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        channels.extend(found);
    }
    if !t.tokens.is_empty() {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT COALESCE(h.channel, $1) FROM json_each($2) j
             LEFT JOIN devices h ON h.app = $3 AND h.token_key = j.value ->> 1
                                AND h.token = j.value ->> 0 AND h.state <> 'invalid'",
        )
        .bind(default_channel)
        .bind(keyed_tokens_json(t.tokens.iter().map(String::as_str)))
        .bind(app)
        .fetch_all(conn)
        .await?;
        channels.extend(found);
    }
    channels.sort();
    channels.dedup();
    Ok(channels)
}
