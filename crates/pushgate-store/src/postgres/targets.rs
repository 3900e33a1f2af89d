//! The channels a message's targets would reach; the audience condition itself is shared
//! with every backend ([`crate::stored::audience`]).

use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::Result;
use crate::model::Targets;
use crate::stored::audience::{has_audience, push_audience};

/// The distinct channels the deliveries of these targets would use.
pub(super) async fn reached_channels(
    conn: &mut PgConnection,
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
        let mut qb = QueryBuilder::<Postgres>::new("SELECT DISTINCT COALESCE(d.channel, ");
        qb.push_bind(default_channel.to_string())
            .push(") AS channel FROM devices d WHERE ");
        push_audience(&mut qb, app, t, false);
        let found: Vec<String> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        channels.extend(found);
    }
    if !t.tokens.is_empty() {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT COALESCE(h.channel, $1) FROM unnest($2::text[]) AS j(value)
             LEFT JOIN devices h ON h.app = $3 AND h.token = j.value AND h.state <> 'invalid'",
        )
        .bind(default_channel)
        .bind(&t.tokens)
        .bind(app)
        .fetch_all(conn)
        .await?;
        channels.extend(found);
    }
    channels.sort();
    channels.dedup();
    Ok(channels)
}
