//! The store contract against real SQLite files, plus what only SQLite has: several handles
//! (processes) on one file, reopening, and the in-memory variant.

mod contract;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use contract::{CH, LEASE, dev, msg, secs, t0};
use pushgate_store::{SqliteStore, Store, Targets};
use uuid::Uuid;

static SEQ: AtomicU32 = AtomicU32::new(0);

fn db_path() -> String {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "pushgate-store-test-{}-{}-{n}",
        std::process::id(),
        Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.db").to_string_lossy().into_owned()
}

async fn with_apps(s: SqliteStore) -> Arc<dyn Store> {
    s.upsert_app("app", true).await.unwrap();
    s.upsert_app("other", false).await.unwrap();
    Arc::new(s)
}

/// The contract's store factory: a fresh SQLite file with the apps `app` and `other`.
async fn contract_store() -> Option<(Arc<dyn Store>, ())> {
    Some((
        with_apps(SqliteStore::open(&db_path()).await.unwrap()).await,
        (),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_claim_disjoint_deliveries() {
    let path = db_path();
    let a = with_apps(SqliteStore::open(&path).await.unwrap()).await;
    let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
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
    let path = db_path();
    let first = SqliteStore::open(&path).await.unwrap();
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
    let again: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
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
