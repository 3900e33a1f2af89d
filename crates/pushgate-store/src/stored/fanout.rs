//! Large fan-outs stored in chunks, the same on every backend.
//!
//! Copying a million-device audience into `deliveries` in the transaction that accepts the
//! message holds the database's writer for seconds and the API's answer with it. A message
//! whose audience is broader than named devices stores its first chunk of deliveries (in
//! device-id order) with the message; when more devices remain, the message keeps what the
//! rest needs (`expansion`: the audience and the default channel, as JSON) and where the next
//! chunk starts (`expand_from`, a device id). The rest is stored by the channels' claims
//! ([`Store::claim_due`]: a claim with room left stores the next chunk of that many devices,
//! its own channel's deliveries already leased to it), or, for a message whose channels store
//! nothing for a while, by [`Store::expand_audience`], one chunk of queued deliveries per
//! call, each in its own short transaction, until both are cleared.
//!
//! A device is reached as it is registered when its chunk is stored: one deleted or disabled
//! meanwhile gets nothing, one whose token changed gets the new token, and one registered
//! after the message was accepted (by the `created_at` its gateway stamped) gets nothing
//! from the later chunks.
//!
//! [`Store::expand_audience`]: crate::Store::expand_audience
//! [`Store::claim_due`]: crate::Store::claim_due

use pushgate_proto::condition::Condition;
use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::audience::{ListBind, has_audience, push_audience};
use super::decode::RowRead;
use super::from_ms;
use crate::model::{NewMessage, Targets};
use crate::{Result, StoreError};

/// Which message still expanding the next chunk is stored for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pick<'a> {
    /// The oldest.
    Oldest,
    /// The oldest none of whose chunks was stored at or after `since_ms`: one no channel is
    /// expanding as it claims (the fan-out task's backstop).
    IdleSince { since_ms: i64 },
    /// The oldest of `app` that may reach `channel` (no channel override, or that one): the
    /// one a claim of that channel stores its next chunk of.
    ForChannel { app: &'a str, channel: &'a str },
}

/// The query for the row [`next_chunk`] decodes, of the message `pick` names, read from
/// `table` (the messages table as the backend names it, with an index hint if it needs one);
/// `lock` is appended (a backend's row lock).
pub(crate) fn expanding_query<DB>(pick: Pick<'_>, table: &str, lock: &str) -> QueryBuilder<DB>
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::<DB>::new(
        "SELECT id, app, channel, ttl_secs, created_at, expansion, expand_from FROM ",
    );
    qb.push(table).push(" WHERE expansion IS NOT NULL");
    match pick {
        Pick::Oldest => {}
        Pick::IdleSince { since_ms } => {
            qb.push(" AND COALESCE(expanded_at, created_at) < ")
                .push_bind(since_ms);
        }
        Pick::ForChannel { app, channel } => {
            qb.push(" AND app = ")
                .push_bind(app.to_string())
                .push(" AND (channel IS NULL OR channel = ")
                .push_bind(channel.to_string())
                .push(")");
        }
    }
    qb.push(" ORDER BY created_at LIMIT 1").push(lock);
    qb
}

/// An expanding message as the next chunk needs it: the message (its payload left out), its
/// targets, and the device id the chunk starts at.
pub(crate) struct NextChunk {
    pub(crate) msg: NewMessage,
    pub(crate) targets: Targets,
    pub(crate) from: String,
}

/// Decodes a row of [`expanding_query`].
pub(crate) fn next_chunk(row: &impl RowRead) -> Result<NextChunk> {
    let pending = PendingAudience::decode(&row.text("expansion")?)?;
    let targets = pending.targets()?;
    Ok(NextChunk {
        msg: NewMessage {
            id: row.uuid("id")?,
            app: row.text("app")?,
            payload: serde_json::Value::Null,
            channel_override: row.opt_text("channel")?,
            default_channel: pending.default_channel,
            ttl_secs: row.int("ttl_secs")?,
            idempotency_key: None,
            request_hash: None,
            created_at: from_ms(row.int("created_at")?)?,
            // Later chunks are not checked against a list (see `NewMessage::channels`).
            channels: None,
        },
        targets,
        from: row.text("expand_from")?,
    })
}

/// Decodes a row of [`expanding_query`] for its next chunk; a row that cannot be decoded (its
/// kept audience or cursor damaged: this version never writes one) has the rest of its
/// fan-out given up instead, in the caller's transaction, and `None` is returned: the message
/// stops expanding (what it stored is still sent), so that it no longer stands before its
/// app's later fan-outs, which claims and the fan-out task take the oldest first. Logged as
/// an error naming the message.
pub(crate) async fn readable_chunk<DB, C>(
    conn: &mut C,
    row: &impl RowRead,
) -> Result<Option<NextChunk>>
where
    DB: Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'t> uuid::Uuid: Encode<'t, DB> + Type<DB>,
{
    let problem = match next_chunk(row) {
        Ok(next) => return Ok(Some(next)),
        Err(e) => e.to_string(),
    };
    let id = row.uuid("id")?;
    tracing::error!(message_id = %id, app = row.text("app").ok(), problem,
        "the kept audience of a fan-out cannot be read; the rest of its audience is given up");
    sqlx::query::<DB>("UPDATE messages SET expansion = NULL, expand_from = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(None)
}

/// Devices a fan-out stores per transaction unless configured otherwise.
pub const DEFAULT_CHUNK: u32 = 10_000;

/// True when the targets may be stored in chunks: an audience beyond the named devices (all,
/// users, tags, topic or condition), with no raw tokens (a raw token held by a device of a
/// later chunk would be reached twice) and no named devices (each gets its one result, queued
/// or failed, in the accepting transaction; one of a later chunk could get a second).
pub(crate) fn chunkable(t: &Targets) -> bool {
    has_audience(t)
        && t.tokens.is_empty()
        && t.device_ids.is_empty()
        && (t.all
            || !t.users.is_empty()
            || !t.tags.is_empty()
            || t.topic.is_some()
            || t.condition.is_some())
}

/// What the rest of a chunked fan-out needs, kept in the message's `expansion` column.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PendingAudience {
    device_ids: Vec<String>,
    users: Vec<String>,
    tags: Vec<String>,
    topic: Option<String>,
    /// The condition's canonical text (parsing it gives back the same tree).
    condition: Option<String>,
    all: bool,
    /// The app's default channel when the message was accepted.
    default_channel: String,
}

impl PendingAudience {
    /// The JSON kept for `t`, sent with `default_channel`.
    pub(crate) fn encode(t: &Targets, default_channel: &str) -> String {
        let pending = PendingAudience {
            device_ids: t.device_ids.clone(),
            users: t.users.clone(),
            tags: t.tags.clone(),
            topic: t.topic.clone(),
            condition: t.condition.as_ref().map(Condition::to_string),
            all: t.all,
            default_channel: default_channel.to_string(),
        };
        serde_json::to_string(&pending).unwrap_or_default()
    }

    /// Reads the kept JSON back.
    pub(crate) fn decode(json: &str) -> Result<PendingAudience> {
        serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("message expansion: {e}")))
    }

    /// The targets the message was accepted with (raw tokens excepted: see [`chunkable`]).
    pub(crate) fn targets(&self) -> Result<Targets> {
        let condition =
            match &self.condition {
                Some(text) => Some(Condition::parse(text).map_err(|e| {
                    StoreError::Corrupt(format!("message expansion condition: {e}"))
                })?),
                None => None,
            };
        Ok(Targets {
            device_ids: self.device_ids.clone(),
            tokens: Vec::new(),
            users: self.users.clone(),
            tags: self.tags.clone(),
            topic: self.topic.clone(),
            condition,
            all: self.all,
        })
    }
}

/// A chunk of an audience, in device-id order: `[from, until)`, either end open when `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range<'a> {
    pub(crate) from: Option<&'a str>,
    pub(crate) until: Option<&'a str>,
}

impl<'a> Range<'a> {
    /// The chunk `[from, until)`.
    pub(crate) fn new(from: Option<&'a str>, until: Option<&'a str>) -> Self {
        Range { from, until }
    }
}

/// Pushes ` AND d.device_id >= $from AND d.device_id < $until` (each end when given): the
/// chunk of the audience between two cursors. A later chunk (`from` given) also keeps to the
/// devices registered by the time the message was accepted (`created_at <= $accepted`); the
/// first chunk is stored in the accepting transaction itself, so it takes every device that
/// transaction sees, whatever the clocks that stamped them.
pub(crate) fn push_range<DB>(
    qb: &mut QueryBuilder<DB>,
    accepted_ms: i64,
    from: Option<&str>,
    until: Option<&str>,
) where
    DB: ListBind,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    if let Some(from) = from {
        qb.push(" AND d.created_at <= ").push_bind(accepted_ms);
        qb.push(" AND d.device_id >= ").push_bind(from.to_string());
    }
    if let Some(until) = until {
        qb.push(" AND d.device_id < ").push_bind(until.to_string());
    }
}

/// A claim's hold on the deliveries of a chunk it stores: those on `channel` are stored in
/// flight until `until_ms`, with their first attempt, as if claimed at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease<'a> {
    pub(crate) channel: &'a str,
    pub(crate) until_ms: i64,
    pub(crate) now_ms: i64,
}

/// Pushes the insert of the deliveries of one chunk of the audience: those on the lease's
/// channel in flight under it, the others queued for their own channels.
pub(crate) fn push_leased_insert<DB>(
    qb: &mut QueryBuilder<DB>,
    msg: &NewMessage,
    t: &Targets,
    range: Range<'_>,
    lease: Lease<'_>,
) where
    DB: ListBind,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> uuid::Uuid: Encode<'t, DB> + Type<DB>,
{
    let created = super::ms(msg.created_at);
    let leased = |qb: &mut QueryBuilder<DB>| {
        qb.push("CASE WHEN a.channel = ")
            .push_bind(lease.channel.to_string())
            .push(" THEN ");
    };
    qb.push(
        "INSERT INTO deliveries (message_id, app, device_id, token, channel, state, attempts,
             due_at, lease_until, deadline, updated_at) SELECT ",
    );
    qb.push_bind(msg.id)
        .push(", ")
        .push_bind(msg.app.clone())
        .push(", a.device_id, a.token, a.channel, ");
    leased(qb);
    qb.push("'in_flight' ELSE 'queued' END, ");
    leased(qb);
    qb.push("1 ELSE 0 END, ");
    leased(qb);
    qb.push_bind(lease.until_ms)
        .push(" ELSE ")
        .push_bind(created)
        .push(" END, ");
    leased(qb);
    qb.push_bind(lease.until_ms).push(" END, ");
    qb.push_bind(super::deadline_ms(msg)).push(", ");
    leased(qb);
    qb.push_bind(lease.now_ms)
        .push(" ELSE ")
        .push_bind(created)
        .push(" END");
    qb.push(" FROM (SELECT d.device_id AS device_id, d.token AS token, COALESCE(")
        .push_bind(msg.channel_override.clone())
        .push(", d.channel, ")
        .push_bind(msg.default_channel.clone())
        .push(") AS channel FROM devices d WHERE ");
    push_audience(qb, &msg.app, t, true);
    push_range(qb, created, range.from, range.until);
    qb.push(") a");
}

/// A query counting the audience up to `chunk + 1` devices, through the label tables (no
/// order, so a small tag or topic is read from its index): more than `chunk` means the
/// message is stored in chunks.
fn audience_count_query<DB>(app: &str, t: &Targets, chunk: u32) -> QueryBuilder<DB>
where
    DB: ListBind,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::<DB>::new("SELECT COUNT(*) FROM (SELECT 1 FROM devices d WHERE ");
    push_audience(&mut qb, app, t, false);
    qb.push(" LIMIT ")
        .push_bind(i64::from(chunk.max(1)) + 1)
        .push(") x");
    qb
}

/// A query for the first device id after the chunk of `chunk` devices that starts at `from`
/// (the start of the next chunk; no row when the audience ends within this one).
fn chunk_end_query<DB>(
    msg: &NewMessage,
    t: &Targets,
    from: Option<&str>,
    chunk: u32,
) -> QueryBuilder<DB>
where
    DB: ListBind,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::<DB>::new("SELECT d.device_id FROM devices d WHERE ");
    push_audience(&mut qb, &msg.app, t, true);
    push_range(&mut qb, super::ms(msg.created_at), from, None);
    qb.push(" ORDER BY d.device_id LIMIT 1 OFFSET ")
        .push_bind(i64::from(chunk.max(1)));
    qb
}

/// Where the second chunk of a new message to `t` starts: `None` when the targets are not
/// chunkable or the audience fits in one chunk (then stored whole, as it always was).
pub(crate) async fn first_chunk_end<DB, C>(
    conn: &mut C,
    msg: &NewMessage,
    t: &Targets,
    chunk: u32,
) -> Result<Option<String>>
where
    DB: ListBind,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB> + Decode<'t, DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB> + Decode<'t, DB>,
    usize: ColumnIndex<DB::Row>,
{
    if !chunkable(t) {
        return Ok(None);
    }
    let mut qb = audience_count_query::<DB>(&msg.app, t, chunk);
    let count: i64 = qb.build_query_scalar().fetch_one(&mut *conn).await?;
    if count <= i64::from(chunk.max(1)) {
        return Ok(None);
    }
    chunk_end(conn, msg, t, None, chunk).await
}

/// The device id the chunk after the one starting at `from` starts at; `None` when the
/// audience ends within `chunk` devices.
pub(crate) async fn chunk_end<DB, C>(
    conn: &mut C,
    msg: &NewMessage,
    t: &Targets,
    from: Option<&str>,
    chunk: u32,
) -> Result<Option<String>>
where
    DB: ListBind,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB> + Decode<'t, DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut qb = chunk_end_query::<DB>(msg, t, from, chunk);
    Ok(qb.build_query_scalar().fetch_optional(conn).await?)
}

/// Keeps what the rest of the message's audience needs, from device id `from` on.
pub(crate) async fn keep_pending<DB, C>(
    conn: &mut C,
    msg: &NewMessage,
    t: &Targets,
    from: &str,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> uuid::Uuid: Encode<'t, DB> + Type<DB>,
{
    sqlx::query::<DB>("UPDATE messages SET expansion = $1, expand_from = $2 WHERE id = $3")
        .bind(PendingAudience::encode(t, &msg.default_channel))
        .bind(from)
        .bind(msg.id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Opens the savepoint a claim stores its chunk of a fan-out in (see [`close_chunk_savepoint`]).
pub(crate) async fn open_chunk_savepoint<DB, C>(conn: &mut C) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    sqlx::query::<DB>("SAVEPOINT claim_chunk")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Closes the savepoint of [`open_chunk_savepoint`] after the claim's chunk was tried: a chunk
/// that could not be stored (a statement timeout, a full disk) is undone and
/// logged, and the claim goes on with its due work alone (nothing from the fan-out).
pub(crate) async fn close_chunk_savepoint<DB, C, T: Default>(
    conn: &mut C,
    chunk: Result<T>,
    app: &str,
    channel: &str,
) -> Result<T>
where
    DB: Database,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    if let Err(e) = &chunk {
        tracing::warn!(error = %e, app, channel, "cannot store the next chunk of a fan-out for a claim; claiming the due work alone");
        sqlx::query::<DB>("ROLLBACK TO SAVEPOINT claim_chunk")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query::<DB>("RELEASE SAVEPOINT claim_chunk")
        .execute(&mut *conn)
        .await?;
    Ok(chunk.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_audience_reads_back_as_the_targets_it_was_made_from() {
        let t = Targets {
            device_ids: vec!["d1".into()],
            users: vec!["u1".into(), "u2".into()],
            tags: vec!["beta".into()],
            topic: Some("news".into()),
            condition: Some(Condition::parse("'a' in topics && !('b' in topics)").unwrap()),
            all: false,
            tokens: Vec::new(),
        };
        let back = PendingAudience::decode(&PendingAudience::encode(&t, "v1")).unwrap();
        assert_eq!(back.default_channel, "v1");
        assert_eq!(back.targets().unwrap(), t);
    }

    #[test]
    fn only_audiences_beyond_named_devices_and_without_raw_tokens_are_chunked() {
        let named = Targets {
            device_ids: vec!["d1".into()],
            ..Default::default()
        };
        assert!(!chunkable(&named));
        let all = Targets {
            all: true,
            ..Default::default()
        };
        assert!(chunkable(&all));
        let with_tokens = Targets {
            all: true,
            tokens: vec!["t".into()],
            ..Default::default()
        };
        assert!(!chunkable(&with_tokens));
        let tags = Targets {
            tags: vec!["x".into()],
            ..Default::default()
        };
        assert!(chunkable(&tags));
    }

    #[test]
    fn a_broken_kept_audience_is_reported_as_corrupt() {
        assert!(matches!(
            PendingAudience::decode("{"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
