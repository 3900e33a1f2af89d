//! `pushgate db` maintenance against real SQLite files: a backup taken while writers write is
//! a consistent snapshot, checks find damage, stats count what is stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pushgate_store::{NewDevice, NewMessage, SqliteStore, Store, Targets, open_maintenance};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use time::OffsetDateTime;
use uuid::Uuid;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pushgate-maint-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn message(created_at: OffsetDateTime) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel_override: None,
        default_channel: "fcm".into(),
        ttl_secs: 600,
        idempotency_key: None,
        request_hash: None,
        created_at,
        channels: None,
    }
}

/// Three raw tokens per message, so that a copy holding a message without all of its
/// deliveries would show.
fn three_tokens(n: u64) -> Targets {
    Targets {
        tokens: (0..3).map(|i| format!("tok-{n}-{i}")).collect(),
        ..Default::default()
    }
}

async fn store_at(path: &Path) -> SqliteStore {
    let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
    store.upsert_app("app", true).await.unwrap();
    store
}

/// (messages, deliveries, messages whose delivery rows differ from their recorded count)
async fn census(path: &Path) -> (i64, i64, i64) {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let torn: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages m WHERE m.deliveries <> \
         (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    (messages, deliveries, torn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writers_write_is_one_consistent_snapshot() {
    let dir = temp_dir();
    let db = dir.join("gw.db");
    let store = Arc::new(store_at(&db).await);
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (store, stop, stored) = (store.clone(), stop.clone(), stored.clone());
        writers.push(tokio::spawn(async move {
            let mut n = w * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                store
                    .insert_message(message(t0()), &three_tokens(n))
                    .await
                    .unwrap();
                stored.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    pushgate_testkit::eventually(
        "writers to store 200 messages",
        std::time::Duration::from_secs(30),
        async || (stored.load(Ordering::Relaxed) >= 200).then_some(()),
    )
    .await;

    let maintenance = open_maintenance(&db.to_string_lossy()).await.unwrap();
    let before = stored.load(Ordering::Relaxed);
    let copy = dir.join("copy.db");
    let report = maintenance.backup(&copy).await.unwrap();
    let after = stored.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let (messages, deliveries, torn) = census(&copy).await;
    assert!(
        (before as i64..=after as i64).contains(&messages),
        "the copy holds {messages} messages; {before} were stored before it began, {after} when it ended"
    );
    assert_eq!(
        deliveries,
        messages * 3,
        "every copied message has its 3 deliveries"
    );
    assert_eq!(
        torn, 0,
        "no message is copied without all of its deliveries"
    );
    assert_eq!(report.bytes, std::fs::metadata(&copy).unwrap().len());
    let (_, latest) = store.schema_version().await.unwrap();
    assert_eq!(report.schema_version, latest);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");

    // The copy is a working database: the gateway's store opens it and reads a message.
    let reopened = SqliteStore::open(&copy.to_string_lossy()).await.unwrap();
    assert_eq!(reopened.schema_version().await.unwrap(), (latest, latest));
    reopened.close().await;
    maintenance.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_backup_never_overwrites_and_leaves_nothing_when_it_cannot_write() {
    let dir = temp_dir();
    let db = dir.join("gw.db");
    let store = store_at(&db).await;
    let maintenance = open_maintenance(&db.to_string_lossy()).await.unwrap();

    let existing = dir.join("yesterday.db");
    std::fs::write(&existing, b"an older backup").unwrap();
    let err = maintenance.backup(&existing).await.unwrap_err().to_string();
    assert!(
        err.contains("yesterday.db") && err.contains("exists"),
        "{err}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"an older backup");

    let nowhere = dir.join("no-such-dir").join("copy.db");
    let err = maintenance.backup(&nowhere).await.unwrap_err().to_string();
    assert!(err.contains("no-such-dir"), "{err}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("gw.db"))
        .collect();
    assert_eq!(names, vec!["yesterday.db".to_string()]);
    maintenance.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn check_passes_a_sound_database_and_names_what_is_wrong_with_others() {
    let dir = temp_dir();
    let db = dir.join("gw.db");
    let store = store_at(&db).await;
    for i in 0..50 {
        store
            .insert_message(message(t0()), &three_tokens(i))
            .await
            .unwrap();
    }
    store.close().await;
    let sound = open_maintenance(&db.to_string_lossy()).await.unwrap();
    let report = sound.check().await.unwrap();
    assert!(report.is_healthy(), "{report:?}");
    assert!(report.latest_version > 0);
    sound.close().await;

    // A database that predates the schema: version 0, not healthy.
    let empty = dir.join("empty.db");
    {
        let mut conn = SqliteConnectOptions::new()
            .filename(&empty)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE unrelated (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let old = open_maintenance(&empty.to_string_lossy()).await.unwrap();
    let report = old.check().await.unwrap();
    assert_eq!(report.applied_version, 0);
    assert!(!report.is_healthy());
    old.close().await;

    // Damage: overwrite pages in the middle of the file (past the header).
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 3 * 4096, "the test needs a few pages");
    for b in &mut bytes[2 * 4096..3 * 4096] {
        *b = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.join("gw.db-wal"));
    let _ = std::fs::remove_file(dir.join("gw.db-shm"));
    let damaged = open_maintenance(&db.to_string_lossy()).await.unwrap();
    let report = damaged.check().await.unwrap();
    damaged.close().await;
    assert!(!report.is_healthy(), "damage went unnoticed: {report:?}");
    let found = report.problems.join("; ");
    assert!(
        found.contains("malformed") || found.contains("corrupt") || found.contains("Page"),
        "{found}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stats_count_every_table_and_find_the_oldest_rows() {
    let dir = temp_dir();
    let db = dir.join("gw.db");
    let store = store_at(&db).await;
    let oldest = t0();
    for (i, at) in [
        oldest + time::Duration::hours(2),
        oldest,
        oldest + time::Duration::hours(1),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .put_device(
                "app",
                NewDevice {
                    device_id: format!("d{i}"),
                    token: format!("t{i}"),
                    ..Default::default()
                },
                at,
            )
            .await
            .unwrap();
    }
    for (i, at) in [oldest + time::Duration::minutes(5), oldest]
        .into_iter()
        .enumerate()
    {
        store
            .insert_message(message(at), &three_tokens(i as u64))
            .await
            .unwrap();
    }
    let maintenance = open_maintenance(&db.to_string_lossy()).await.unwrap();
    let stats = maintenance.stats().await.unwrap();
    let table = |name: &str| {
        stats
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no table {name} in {stats:?}"))
            .clone()
    };
    assert_eq!(table("devices").rows, 3);
    assert_eq!(table("devices").oldest, Some(oldest));
    assert_eq!(table("messages").rows, 2);
    assert_eq!(table("messages").oldest, Some(oldest));
    assert_eq!(table("deliveries").rows, 6);
    assert_eq!(table("apps").oldest, None);
    let table_bytes: u64 = stats.tables.iter().filter_map(|t| t.bytes).sum();
    assert!(table_bytes > 0 && table_bytes <= stats.bytes, "{stats:?}");
    maintenance.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_missing_database_is_named_and_not_created() {
    let dir = temp_dir();
    let missing = dir.join("typo.db");
    let err = open_maintenance(&missing.to_string_lossy())
        .await
        .err()
        .expect("nothing to open")
        .to_string();
    assert!(err.contains("typo.db"), "{err}");
    assert!(
        !missing.exists(),
        "maintenance must never create a database"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn on_postgresql_check_and_stats_read_the_schema_and_backup_points_at_pg_dump() {
    let Some(schema) = pushgate_testkit::postgres::fresh_schema().await else {
        return;
    };
    let store = pushgate_store::PostgresStore::open(schema.url())
        .await
        .unwrap();
    store.upsert_app("app", true).await.unwrap();
    let oldest = t0();
    for (i, at) in [oldest + time::Duration::minutes(5), oldest]
        .into_iter()
        .enumerate()
    {
        store
            .insert_message(message(at), &three_tokens(i as u64))
            .await
            .unwrap();
    }
    let maintenance = open_maintenance(schema.url()).await.unwrap();
    let report = maintenance.check().await.unwrap();
    assert!(report.is_healthy(), "{report:?}");
    let (applied, latest) = store.schema_version().await.unwrap();
    assert_eq!(
        (report.applied_version, report.latest_version),
        (applied, latest)
    );

    let stats = maintenance.stats().await.unwrap();
    let messages = stats.tables.iter().find(|t| t.name == "messages").unwrap();
    assert_eq!(messages.rows, 2);
    assert_eq!(messages.oldest, Some(oldest));
    let deliveries = stats
        .tables
        .iter()
        .find(|t| t.name == "deliveries")
        .unwrap();
    assert_eq!(deliveries.rows, 6);
    assert!(deliveries.bytes.unwrap() > 0);

    let dir = temp_dir();
    let err = maintenance
        .backup(&dir.join("copy"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!dir.join("copy").exists());
    maintenance.close().await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
