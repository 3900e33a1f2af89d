//! (Part of the SQLite test binary, `tests/sqlite.rs`.) Devices are found by token through a
//! compact key (migration 0008) instead of a unique index on the token itself: a token still
//! belongs to at most one live device of an app whatever writes it, and a database written
//! before the key existed gets a key for every device when it is opened.

use pushgate_store::{DeliveryState, SqliteStore, Store, StoreError, Targets};
use sqlx::{Connection, SqliteConnection};

use crate::contract::{deliveries_of, dev, msg, t0};
use pushgate_testkit::sqlite::DbFile;

/// The first 8 bytes of SHA-256("abc") (FIPS 180-2's test vector, ba7816bf8f01cfea…), which
/// is what the store keys the token "abc" by.
const KEY_OF_ABC: i64 = i64::from_be_bytes(0xba78_16bf_8f01_cfeau64.to_be_bytes());

async fn raw(path: &str) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap()
}

/// Runs `sql` on the file directly and returns the error SQLite gave, if any, as the store
/// reports it.
async fn try_sql(conn: &mut SqliteConnection, sql: &str) -> Option<StoreError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .err()
        .map(StoreError::from)
}

#[tokio::test]
async fn a_token_belongs_to_one_live_device_whatever_writes_it() {
    let db = DbFile::new();
    let path = db.path();
    let store = SqliteStore::open(path).await.unwrap();
    store.upsert_app("app", true).await.unwrap();
    store
        .put_device("app", dev("d1", "abc"), t0())
        .await
        .unwrap();
    let mut conn = raw(path).await;
    let key: Option<i64> =
        sqlx::query_scalar("SELECT token_key FROM devices WHERE device_id = 'd1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(key, Some(KEY_OF_ABC));

    let insert = |id: &str, state: &str, key: &str| {
        format!(
            "INSERT INTO devices (app, device_id, token, token_key, state, created_at, updated_at)
             VALUES ('app', '{id}', 'abc', {key}, '{state}', 0, 0)"
        )
    };
    // Refused as the unique index refused it: a conflict (409 at the API), not a failure.
    let refused = try_sql(&mut conn, &insert("d2", "active", &KEY_OF_ABC.to_string())).await;
    assert!(
        matches!(&refused, Some(StoreError::Conflict(m))
            if m.contains("UNIQUE constraint failed: devices.app, devices.token")),
        "a second live device took the token: {refused:?}"
    );
    let unkeyed = try_sql(&mut conn, &insert("d2", "active", "NULL")).await;
    assert!(
        matches!(&unkeyed, Some(StoreError::Database(e))
            if e.to_string().contains("token_key must be set")),
        "a token was stored without its key: {unkeyed:?}"
    );
    // A retired device keeps its token for the record, and cannot come back to life with it
    // while another device holds it.
    let key = KEY_OF_ABC.to_string();
    let retired = try_sql(&mut conn, &insert("d3", "invalid", &key)).await;
    assert!(retired.is_none(), "{retired:?}");
    let revived = try_sql(
        &mut conn,
        "UPDATE devices SET state = 'active' WHERE device_id = 'd3'",
    )
    .await;
    assert!(
        matches!(&revived, Some(StoreError::Conflict(_))),
        "a retired device came back with a held token: {revived:?}"
    );
    // Another app may hold the same token.
    store.upsert_app("other", false).await.unwrap();
    let put = store
        .put_device("other", dev("d1", "abc"), t0())
        .await
        .unwrap();
    assert_eq!(put.took_over_from, None);
    conn.close().await.unwrap();
}

/// Makes a database of this schema look like one written before migration 0008: no key
/// column, the unique index on the token, and version 8 not recorded.
async fn back_to_before_the_key(path: &str) {
    let mut conn = raw(path).await;
    for step in [
        "DROP TRIGGER devices_token_unique_on_insert",
        "DROP TRIGGER devices_token_unique_on_update",
        "DROP INDEX devices_token_key",
        "ALTER TABLE devices DROP COLUMN token_key",
        "CREATE UNIQUE INDEX devices_app_token ON devices (app, token) WHERE state <> 'invalid'",
        "DELETE FROM schema_migrations WHERE version = 8",
    ] {
        sqlx::query(step).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_stored_before_the_key_are_found_by_token_after_the_upgrade() {
    let db = DbFile::new();
    let path = db.path();
    {
        let store = SqliteStore::open(path).await.unwrap();
        store.upsert_app("app", true).await.unwrap();
        // More devices than the upgrade keys in one batch, so that it takes several.
        let devices: Vec<_> = (0..12_500)
            .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
            .collect();
        store.put_devices("app", devices, t0()).await.unwrap();
        store
            .put_device("app", dev("abc-holder", "abc"), t0())
            .await
            .unwrap();
    }
    back_to_before_the_key(path).await;

    let store = SqliteStore::open(path).await.unwrap();
    let mut conn = raw(path).await;
    let (unkeyed, abc): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM devices WHERE token IS NOT NULL AND token_key IS NULL),
                (SELECT token_key FROM devices WHERE device_id = 'abc-holder')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(unkeyed, 0, "devices left without a key");
    assert_eq!(abc, Some(KEY_OF_ABC));

    // A raw token reaches the device that held it before the upgrade, including one of the
    // last batch the upgrade keyed.
    let targets = Targets {
        tokens: vec!["t5".into(), "t12400".into(), "nobody-holds-this".into()],
        ..Default::default()
    };
    let m = msg(600);
    store.insert_message(m.clone(), &targets).await.unwrap();
    let mut found: Vec<(String, Option<String>, DeliveryState)> = deliveries_of(&store, m.id)
        .await
        .into_iter()
        .map(|d| (d.token, d.device_id, d.state))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("nobody-holds-this".into(), None, DeliveryState::Queued),
            (
                "t12400".into(),
                Some("d12400".into()),
                DeliveryState::Queued
            ),
            ("t5".into(), Some("d5".into()), DeliveryState::Queued),
        ]
    );
    // A new device registering an old device's token takes it over.
    let put = store
        .put_device("app", dev("new", "t7"), t0())
        .await
        .unwrap();
    assert_eq!(put.took_over_from.as_deref(), Some("d7"));
}
