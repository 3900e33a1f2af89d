//! Turning [`Targets`] into SQL over `devices d`: the audience of a message is selected and
//! copied into `deliveries` by the database itself, in the transaction that stores it; and
//! the channels a message's targets would reach.

use pushgate_proto::condition::Condition;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::Result;
use crate::model::Targets;

/// A list as one bound JSON array, for `IN (SELECT value FROM json_each(?))`.
pub(super) fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// True when the targets select registered devices (not only raw tokens).
pub(super) fn has_audience(t: &Targets) -> bool {
    t.all
        || !t.device_ids.is_empty()
        || !t.users.is_empty()
        || !t.tags.is_empty()
        || t.topic.is_some()
        || t.condition.is_some()
}

/// Pushes the `WHERE` condition selecting the sendable devices of `app` the targets reach:
/// active, with a confirmed token, and in any of the target kinds.
pub(super) fn push_audience(qb: &mut QueryBuilder<Sqlite>, app: &str, t: &Targets) {
    qb.push("d.app = ")
        .push_bind(app.to_string())
        .push(" AND d.state = 'active' AND d.token IS NOT NULL AND (");
    let mut parts = 0;
    let mut or = |qb: &mut QueryBuilder<Sqlite>| {
        if parts > 0 {
            qb.push(" OR ");
        }
        parts += 1;
    };
    if t.all {
        or(qb);
        qb.push("1 = 1");
    }
    if !t.device_ids.is_empty() {
        or(qb);
        qb.push("d.device_id IN (SELECT value FROM json_each(")
            .push_bind(json_list(&t.device_ids))
            .push("))");
    }
    if !t.users.is_empty() {
        or(qb);
        qb.push("d.user_id IN (SELECT value FROM json_each(")
            .push_bind(json_list(&t.users))
            .push("))");
    }
    if !t.tags.is_empty() {
        or(qb);
        qb.push(
            "EXISTS (SELECT 1 FROM device_tags g WHERE g.app = d.app AND g.device_id = d.device_id
                     AND g.tag IN (SELECT value FROM json_each(",
        )
        .push_bind(json_list(&t.tags))
        .push(")))");
    }
    if let Some(topic) = &t.topic {
        or(qb);
        push_topic(qb, topic);
    }
    if let Some(condition) = &t.condition {
        or(qb);
        push_condition(qb, condition);
    }
    if parts == 0 {
        qb.push("1 = 0");
    }
    qb.push(")");
}

/// `'topic' in topics` for device `d`.
fn push_topic(qb: &mut QueryBuilder<Sqlite>, topic: &str) {
    qb.push(
        "EXISTS (SELECT 1 FROM device_topics s WHERE s.app = d.app AND s.device_id = d.device_id
                 AND s.topic = ",
    )
    .push_bind(topic.to_string())
    .push(")");
}

/// A topic condition over device `d`'s registry subscriptions, with the grouping the parser
/// gave it.
fn push_condition(qb: &mut QueryBuilder<Sqlite>, c: &Condition) {
    match c {
        Condition::Topic(topic) => push_topic(qb, topic),
        Condition::Not(inner) => {
            qb.push("NOT (");
            push_condition(qb, inner);
            qb.push(")");
        }
        Condition::And(a, b) | Condition::Or(a, b) => {
            let op = if matches!(c, Condition::And(..)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            push_condition(qb, a);
            qb.push(op);
            push_condition(qb, b);
            qb.push(")");
        }
    }
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
        push_audience(&mut qb, app, t);
        let found: Vec<String> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        channels.extend(found);
    }
    if !t.tokens.is_empty() {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT COALESCE(h.channel, $1) FROM json_each($2) j
             LEFT JOIN devices h ON h.app = $3 AND h.token = j.value AND h.state <> 'invalid'",
        )
        .bind(default_channel)
        .bind(json_list(&t.tokens))
        .bind(app)
        .fetch_all(conn)
        .await?;
        channels.extend(found);
    }
    channels.sort();
    channels.dedup();
    Ok(channels)
}
