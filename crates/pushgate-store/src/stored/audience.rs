//! Turning [`Targets`] into a condition over `devices d`, written once for every backend: a
//! backend only says how a bound list is tested for membership ([`ListBind`]).

use pushgate_proto::condition::Condition;
use sqlx::{Database, Encode, Postgres, QueryBuilder, Sqlite, Type};

use crate::model::Targets;

/// How one backend tests a column against a bound list of strings.
pub(crate) trait ListBind: Database + Sized {
    /// Pushes ` IN <list>` (or its equivalent) with `items` bound as one parameter.
    fn push_in_list(qb: &mut QueryBuilder<Self>, items: &[String]);
}

impl ListBind for Sqlite {
    fn push_in_list(qb: &mut QueryBuilder<Self>, items: &[String]) {
        qb.push(" IN (SELECT value FROM json_each(")
            .push_bind(serde_json::Value::from(items.to_vec()).to_string())
            .push("))");
    }
}

impl ListBind for Postgres {
    fn push_in_list(qb: &mut QueryBuilder<Self>, items: &[String]) {
        qb.push(" = ANY(").push_bind(items.to_vec()).push(")");
    }
}

/// True when the targets select registered devices (not only raw tokens).
pub(crate) fn has_audience(t: &Targets) -> bool {
    t.all
        || !t.device_ids.is_empty()
        || !t.users.is_empty()
        || !t.tags.is_empty()
        || t.topic.is_some()
        || t.condition.is_some()
}

/// Pushes the `WHERE` condition selecting the sendable devices of `app` the targets reach:
/// active, with a confirmed token, and in any of the target kinds.
pub(crate) fn push_audience<DB>(qb: &mut QueryBuilder<DB>, app: &str, t: &Targets)
where
    DB: ListBind,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    qb.push("d.app = ")
        .push_bind(app.to_string())
        .push(" AND d.state = 'active' AND d.token IS NOT NULL AND (");
    let mut parts = 0;
    let mut or = |qb: &mut QueryBuilder<DB>| {
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
        qb.push("d.device_id");
        DB::push_in_list(qb, &t.device_ids);
    }
    if !t.users.is_empty() {
        or(qb);
        qb.push("d.user_id");
        DB::push_in_list(qb, &t.users);
    }
    if !t.tags.is_empty() {
        or(qb);
        qb.push(
            "EXISTS (SELECT 1 FROM device_tags g WHERE g.app = d.app AND g.device_id = d.device_id
                     AND g.tag",
        );
        DB::push_in_list(qb, &t.tags);
        qb.push(")");
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
fn push_topic<DB>(qb: &mut QueryBuilder<DB>, topic: &str)
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    qb.push(
        "EXISTS (SELECT 1 FROM device_topics s WHERE s.app = d.app AND s.device_id = d.device_id
                 AND s.topic = ",
    )
    .push_bind(topic.to_string())
    .push(")");
}

/// A topic condition over device `d`'s registry subscriptions, with the grouping the parser
/// gave it.
fn push_condition<DB>(qb: &mut QueryBuilder<DB>, c: &Condition)
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
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
