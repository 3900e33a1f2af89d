//! The store contract against real SQLite files, plus what only SQLite has: several handles
//! (processes) on one file, reopening, and the in-memory variant.

mod contract;
#[path = "sqlite/state_counts.rs"]
mod state_counts;
#[path = "sqlite/token_key.rs"]
mod token_key;

use std::sync::Arc;

use contract::{CH, LEASE, dev, msg, secs, t0};
use pushgate_store::{SqliteStore, Store, StoreSettings, Targets};
use pushgate_testkit::sqlite::DbFile;

async fn with_apps(s: SqliteStore) -> Arc<dyn Store> {
    s.upsert_app("app", true).await.unwrap();
    s.upsert_app("other", false).await.unwrap();
    Arc::new(s)
}

/// The contract's store factory: a fresh SQLite file with the apps `app` and `other`.
async fn contract_store_with(settings: StoreSettings) -> Option<(Arc<dyn Store>, DbFile)> {
    let db = DbFile::new();
    Some((
        with_apps(SqliteStore::open_with(db.path(), &settings).await.unwrap()).await,
        db,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_claim_disjoint_deliveries() {
    let db = DbFile::new();
    let path = db.path();
    let a = with_apps(SqliteStore::open(path).await.unwrap()).await;
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(path).await.unwrap());
    let batch: Vec<_> = (0..300)
        .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
        .collect();
    a.put_devices("app", batch, t0()).await.unwrap();
    a.insert_message(
        msg(600),
        &Targets {
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let worker = |s: Arc<dyn Store>| async move {
        let mut got = Vec::new();
        loop {
            let batch = s.claim_due("app", CH, secs(1), 11, LEASE).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
        }
    };
    let (ga, gb) = tokio::join!(tokio::spawn(worker(a)), tokio::spawn(worker(b)));
    let mut all: Vec<i64> = ga.unwrap().into_iter().chain(gb.unwrap()).collect();
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!((claimed, all.len()), (300, 300));
}

#[tokio::test]
async fn accepted_work_survives_reopening_the_file() {
    let db = DbFile::new();
    let path = db.path();
    let first = SqliteStore::open(path).await.unwrap();
    let s = with_apps(first.clone()).await;
    s.put_device("app", dev("d1", "t1"), t0()).await.unwrap();
    let m = msg(600);
    s.insert_message(
        m.clone(),
        &Targets {
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let claimed = s.claim_due("app", CH, secs(1), 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    first.close().await;
    drop(s);
    // As after a crash: the lease taken before is honoured, then the work comes back.
    let again: Arc<dyn Store> = Arc::new(SqliteStore::open(path).await.unwrap());
    assert!(
        again
            .claim_due("app", CH, secs(2), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let back = again
        .claim_due("app", CH, secs(31), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].message_id, back[0].attempts), (m.id, 2));
}

/// A value of the wrong type in a stored row is damage, not an outage: reading it fails as
/// `Corrupt` (which the delivery loop fails for good) rather than as a database error (which
/// it retries until the deadline).
#[tokio::test]
async fn a_stored_value_of_the_wrong_type_reads_as_corrupt() {
    let db = DbFile::new();
    let s = with_apps(SqliteStore::open(db.path()).await.unwrap()).await;
    let m = msg(600);
    s.insert_message(m.clone(), &Targets::default())
        .await
        .unwrap();
    assert!(s.get_message(m.id).await.unwrap().is_some());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.path()))
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET created_at = 'yesterday' WHERE id = $1")
        .bind(m.id)
        .execute(&pool)
        .await
        .unwrap();
    let read = s.get_message(m.id).await;
    assert!(
        matches!(&read, Err(pushgate_store::StoreError::Corrupt(_))),
        "{read:?}"
    );
}

#[tokio::test]
async fn in_memory_store_works() {
    let s = SqliteStore::open_in_memory().await.unwrap();
    let app = s.upsert_app("a", true).await.unwrap();
    assert!(app.is_default);
    let b = s.upsert_app("b", true).await.unwrap();
    assert!(b.is_default);
    assert!(!s.upsert_app("a", false).await.unwrap().is_default);
    s.migrate().await.unwrap();
}

/// The file's size in pages, as SQLite counts it (committed write-ahead log included).
async fn page_count(path: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{path}"))
        .await
        .unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    pages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_stops_growing_once_retention_deletes_as_much_as_is_written() {
    use pushgate_proto::outcome::Outcome;
    use pushgate_store::{Completion, EventKind, NewMessage, PurgeLimits, UpstreamRecord};

    let db = DbFile::new();
    let path = db.path();
    let s = with_apps(SqliteStore::open(path).await.unwrap()).await;
    let batch: Vec<_> = (0..50)
        .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
        .collect();
    s.put_devices("app", batch, t0()).await.unwrap();
    let empty = page_count(path).await;
    let filler = "x".repeat(1500);
    // Keep messages and events for 1000 s; round r writes at r * 2000 s and purges at
    // r * 2000 + 1500 s, when the previous round's rows are old.
    let limits = PurgeLimits {
        messages: Some(std::time::Duration::from_secs(1000)),
        events: Some(std::time::Duration::from_secs(1000)),
        invalid_devices: None,
        batch: 100,
    };
    let mut pages = Vec::new();
    for round in 0..8i64 {
        let at = secs(round * 2000);
        for i in 0..40 {
            let m = NewMessage {
                created_at: at,
                payload: serde_json::json!({"data": {"filler": filler, "i": i}}),
                ..msg(600)
            };
            let targets = Targets {
                all: i == 0,
                device_ids: vec![format!("d{i}")],
                ..Default::default()
            };
            s.insert_message(m, &targets).await.unwrap();
        }
        let claimed = s.claim_due("app", CH, at, 1000, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 89, "a fan-out to 50 and 39 singles");
        let answers: Vec<Completion> = claimed
            .iter()
            .map(|d| Completion {
                delivery_id: d.id,
                attempt: d.attempts,
                outcome: Outcome::Delivered {
                    message_id: format!("p-{}", d.id),
                },
                retry_at: None,
            })
            .collect();
        s.complete(answers, at).await.unwrap();
        for i in 0..40 {
            let record = UpstreamRecord {
                kind: EventKind::UpstreamMessage,
                from_token: None,
                original_message_id: None,
                data: serde_json::json!({"filler": filler}),
                dedup_key: format!("r{round}-{i}"),
                require_link: false,
            };
            s.record_upstream("app", record, at).await.unwrap();
        }
        let purge_at = at + time::Duration::seconds(1500);
        let mut deleted = 0;
        loop {
            let r = s.purge("app", &limits, purge_at).await.unwrap();
            deleted += r.messages;
            if !r.more_left(limits.batch) {
                break;
            }
        }
        if round > 0 {
            assert_eq!(
                deleted, 40,
                "round {round} deletes the previous round's messages"
            );
        }
        pages.push(page_count(path).await);
    }
    s.close().await;
    let (second, last) = (pages[1], pages[pages.len() - 1]);
    assert!(
        last <= second,
        "the file grew from {second} to {last} pages while retention deleted as much as was \
         written: {pages:?}"
    );
    // And it would have grown without retention: one round's rows fill many pages.
    assert!(
        pages[0] - empty >= 20,
        "a round takes {} pages",
        pages[0] - empty
    );
}

/// A fan-out whose kept audience cannot be read is given up; it does not stop its app.
#[tokio::test]
async fn a_broken_expanding_message_is_given_up_and_does_not_stop_its_app() {
    let db = DbFile::new();
    let path = db.path();
    let settings = StoreSettings {
        fanout_chunk: 3,
        ..StoreSettings::default()
    };
    let s = with_apps(SqliteStore::open_with(path, &settings).await.unwrap()).await;
    contract::a_broken_fanout_is_given_up_and_its_app_goes_on(&*s, async |id| {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        sqlx::query(contract::BREAK_EXPANSION)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    })
    .await;
}
