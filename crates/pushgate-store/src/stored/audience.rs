//! Turning [`Targets`] into a condition over `devices d`, written once for every backend: a
//! backend only says how a bound list is tested for membership ([`ListBind`]).

use pushgate_proto::condition::Condition;
use sqlx::{Database, Encode, Postgres, QueryBuilder, Sqlite, Type};

use crate::model::Targets;

/// A kind of device label a target can name: kept in a table of its own (indexed by label,
/// for a whole audience) and as a JSON list on the device row (for one device at a time).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    /// `tags`: `device_tags (app, tag, device_id)`, `devices.tags`.
    Tag,
    /// `topic` and `condition`: `device_topics (app, topic, device_id)`, `devices.topics`.
    Topic,
}

impl Label {
    fn table(self) -> &'static str {
        match self {
            Label::Tag => "device_tags",
            Label::Topic => "device_topics",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Label::Tag => "tag",
            Label::Topic => "topic",
        }
    }
}

/// How one backend tests a column against a bound list of strings.
pub(crate) trait ListBind: Database + Sized {
    /// Pushes ` IN <list>` (or its equivalent) with `items` bound as one parameter.
    fn push_in_list(qb: &mut QueryBuilder<Self>, items: &[String]);

    /// Pushes a test that device `d` holds any of `items` as a `label`. `in_range` says the
    /// query walks a range of device ids (a chunk of a fan-out), where each device should be
    /// tested by itself rather than the audience's labels read as a whole.
    fn push_has_label(qb: &mut QueryBuilder<Self>, label: Label, items: &[String], in_range: bool) {
        let _ = in_range;
        push_label_exists(qb, label, items);
    }
}

/// `EXISTS` over the label's table: the device's label rows, found through the table's
/// primary key.
fn push_label_exists<DB: ListBind>(qb: &mut QueryBuilder<DB>, label: Label, items: &[String]) {
    let (table, column) = (label.table(), label.column());
    qb.push(format!(
        "EXISTS (SELECT 1 FROM {table} l WHERE l.app = d.app AND l.device_id = d.device_id
                 AND l.{column}"
    ));
    DB::push_in_list(qb, items);
    qb.push(")");
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

    /// In a range, the device row's own JSON list: PostgreSQL's planner would otherwise
    /// join the range with every row of the label (a hash join reads the whole label for
    /// each chunk), or, without statistics (a registry just imported, autovacuum not yet
    /// run), rescan the label for every device of the range: minutes for a chunk of
    /// 10,000 among 100,000 tagged devices.
    fn push_has_label(qb: &mut QueryBuilder<Self>, label: Label, items: &[String], in_range: bool) {
        if !in_range {
            return push_label_exists(qb, label, items);
        }
        let row_list = match label {
            Label::Tag => "d.tags",
            Label::Topic => "d.topics",
        };
        qb.push(format!("({row_list})::jsonb ?| "))
            .push_bind(items.to_vec());
    }
}

/// True when the targets name devices only and each of them got a queued delivery (the
/// audience insert, `queued` rows, stored one per distinct named device): none is left to
/// report unsendable, so the statements for unsendable devices can be skipped.
pub(crate) fn every_named_device_queued(t: &Targets, queued: u64) -> bool {
    t.names_only()
        && t.device_ids
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
            == queued
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
/// active, with a confirmed token, and in any of the target kinds. `in_range`: the query
/// also bounds the device ids (a chunk of a fan-out; see [`ListBind::push_has_label`]).
pub(crate) fn push_audience<DB>(qb: &mut QueryBuilder<DB>, app: &str, t: &Targets, in_range: bool)
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
        DB::push_has_label(qb, Label::Tag, &t.tags, in_range);
    }
    if let Some(topic) = &t.topic {
        or(qb);
        push_topic(qb, topic, in_range);
    }
    if let Some(condition) = &t.condition {
        or(qb);
        push_condition(qb, condition, in_range);
    }
    if parts == 0 {
        qb.push("1 = 0");
    }
    qb.push(")");
}

/// `'topic' in topics` for device `d`.
fn push_topic<DB: ListBind>(qb: &mut QueryBuilder<DB>, topic: &str, in_range: bool) {
    DB::push_has_label(qb, Label::Topic, &[topic.to_string()], in_range);
}

/// A topic condition over device `d`'s registry subscriptions, with the grouping the parser
/// gave it.
fn push_condition<DB: ListBind>(qb: &mut QueryBuilder<DB>, c: &Condition, in_range: bool) {
    match c {
        Condition::Topic(topic) => push_topic(qb, topic, in_range),
        Condition::Not(inner) => {
            qb.push("NOT (");
            push_condition(qb, inner, in_range);
            qb.push(")");
        }
        Condition::And(a, b) | Condition::Or(a, b) => {
            let op = if matches!(c, Condition::And(..)) {
                " AND "
            } else {
                " OR "
            };
            qb.push("(");
            push_condition(qb, a, in_range);
            qb.push(op);
            push_condition(qb, b, in_range);
            qb.push(")");
        }
    }
}
