//! Device imports in a few set-based statements: a batch of devices none of which exists yet
//! and whose tokens no live device holds (the common case of a first import) is stored with
//! one check, one insert of every device and one per label table, instead of three or more
//! statements per device. Any other batch goes through [`super::devices::put`] one device at
//! a time, with every rule (take-over, re-registration, waiting work) it applies.

use std::collections::HashSet;

use serde_json::{Value, json};
use sqlx::SqliteConnection;
use time::OffsetDateTime;

use super::rows::{ms, normalized_list};
use super::token_key::token_key;
use crate::Result;
use crate::model::{DeviceState, NewDevice, PutDevice};

/// Stores `list` as new devices if the fast path applies (see the module); `None` when it does
/// not, with nothing written.
pub(super) async fn put_new(
    conn: &mut SqliteConnection,
    app: &str,
    list: &[NewDevice],
    now: OffsetDateTime,
) -> Result<Option<Vec<PutDevice>>> {
    if list.len() < 2 || !all_new_and_distinct(list) {
        return Ok(None);
    }
    let ids: Vec<&str> = list.iter().map(|d| d.device_id.as_str()).collect();
    let keys: Vec<i64> = list.iter().map(|d| token_key(&d.token)).collect();
    let tokens = list.iter().zip(&keys).map(|(d, key)| json!([d.token, key]));
    let taken: bool = sqlx::query_scalar(
        // `IN (SELECT … json_each)` probes the indexes once per listed value; a join on
        // json_each let the planner scan every device instead. A device whose key matches is
        // then checked for the token itself.
        "SELECT EXISTS (SELECT 1 FROM devices d WHERE d.app = $3
                        AND d.device_id IN (SELECT value FROM json_each($1)))
             OR EXISTS (SELECT 1 FROM devices d WHERE d.app = $3
                        AND d.token_key IN (SELECT value ->> 1 FROM json_each($2))
                        AND d.state <> 'invalid'
                        AND d.token IN (SELECT value ->> 0 FROM json_each($2)))",
    )
    .bind(json!(ids).to_string())
    .bind(Value::from_iter(tokens).to_string())
    .bind(app)
    .fetch_one(&mut *conn)
    .await?;
    if taken {
        return Ok(None);
    }
    let mut rows = Vec::with_capacity(list.len());
    let mut tags = Vec::new();
    let mut topics = Vec::new();
    for (d, key) in list.iter().zip(keys) {
        let (tag_list, tags_json) = normalized_list(d.tags.clone());
        let (topic_list, topics_json) = normalized_list(d.topics.clone());
        tags.extend(tag_list.into_iter().map(|t| json!([d.device_id, t])));
        topics.extend(topic_list.into_iter().map(|t| json!([d.device_id, t])));
        let state = d.state.unwrap_or(DeviceState::Active);
        rows.push(json!([
            d.device_id,
            d.token,
            d.channel,
            d.user,
            tags_json,
            topics_json,
            d.app_version,
            state.as_str(),
            key,
        ]));
    }
    sqlx::query(
        "INSERT INTO devices (app, device_id, token, channel, user_id, tags, topics, app_version,
                              state, token_key, invalid_reason, registration, created_at,
                              updated_at)
         SELECT $1, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, NULL, 'api', $2, $2
         FROM json_each($3) j",
    )
    .bind(app)
    .bind(ms(now))
    .bind(Value::from(rows).to_string())
    .execute(&mut *conn)
    .await?;
    let labels = [
        (
            "INSERT INTO device_tags (app, device_id, tag)
             SELECT $1, j.value ->> 0, j.value ->> 1 FROM json_each($2) j",
            tags,
        ),
        (
            "INSERT INTO device_topics (app, device_id, topic)
             SELECT $1, j.value ->> 0, j.value ->> 1 FROM json_each($2) j",
            topics,
        ),
    ];
    for (insert, pairs) in labels {
        if pairs.is_empty() {
            continue;
        }
        sqlx::query(insert)
            .bind(app)
            .bind(Value::from(pairs).to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(
        list.iter()
            .map(|_| PutDevice {
                created: true,
                took_over_from: None,
            })
            .collect(),
    ))
}

/// No device asks to be made invalid, and no id or token appears twice in the batch (an
/// earlier device of the batch would be re-registered or lose its token to a later one).
fn all_new_and_distinct(list: &[NewDevice]) -> bool {
    let mut ids = HashSet::with_capacity(list.len());
    let mut tokens = HashSet::with_capacity(list.len());
    list.iter().all(|d| {
        d.state != Some(DeviceState::Invalid)
            && ids.insert(d.device_id.as_str())
            && tokens.insert(d.token.as_str())
    })
}
