//! The store contract against a real PostgreSQL server, each case in a fresh schema (see
//! `pushgate_testkit::postgres`), plus what only PostgreSQL has: several instances (pools) on
//! one database, migrations racing at start, and new work announced with NOTIFY.

mod contract;

use std::sync::Arc;
use std::time::Duration;

use contract::{CH, LEASE, dev, msg, secs, t0};
use pushgate_store::{
    DeliveryState, NewWork, PostgresStore, Release, Store, StoreSettings, Targets,
};
use pushgate_testkit::postgres::{Schema, fresh_schema};

async fn with_apps(s: PostgresStore) -> Arc<dyn Store> {
    s.upsert_app("app", true).await.unwrap();
    s.upsert_app("other", false).await.unwrap();
    Arc::new(s)
}

/// The contract's store factory: a fresh schema with the apps `app` and `other`; the schema
/// is dropped when the case ends.
async fn contract_store_with(settings: StoreSettings) -> Option<(Arc<dyn Store>, Schema)> {
    let schema = fresh_schema().await?;
    let store = PostgresStore::open_with(schema.url(), &settings)
        .await
        .unwrap();
    Some((with_apps(store).await, schema))
}

fn everyone() -> Targets {
    Targets {
        all: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_claim_disjoint_deliveries() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let a = with_apps(PostgresStore::open(schema.url()).await.unwrap()).await;
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open(schema.url()).await.unwrap());
    let batch: Vec<_> = (0..300)
        .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
        .collect();
    a.put_devices("app", batch, t0()).await.unwrap();
    a.insert_message(msg(600), &everyone()).await.unwrap();
    let both_started = Arc::new(tokio::sync::Barrier::new(2));
    let worker = |s: Arc<dyn Store>, started: Arc<tokio::sync::Barrier>| async move {
        let mut got = Vec::new();
        let mut first = true;
        loop {
            let batch = s.claim_due("app", CH, secs(1), 11, LEASE).await.unwrap();
            if first {
                // Both instances hold a claim before either goes on: both get work.
                started.wait().await;
                first = false;
            }
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
        }
    };
    let (ga, gb) = tokio::join!(
        tokio::spawn(worker(a.clone(), both_started.clone())),
        tokio::spawn(worker(b.clone(), both_started))
    );
    let (ga, gb) = (ga.unwrap(), gb.unwrap());
    assert!(!ga.is_empty() && !gb.is_empty(), "both instances got work");
    assert!(
        ga.iter().all(|id| !gb.contains(id)),
        "no delivery went to both"
    );
    let mut all: Vec<i64> = ga.into_iter().chain(gb).collect();
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!((claimed, all.len()), (300, 300));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let settings = StoreSettings::default();
    let mut stores = Vec::new();
    for _ in 0..4 {
        let s = PostgresStore::connect_with(schema.url(), &settings)
            .await
            .unwrap();
        assert_eq!(
            s.schema_version().await.unwrap().0,
            0,
            "nothing applied yet"
        );
        stores.push(s);
    }
    let runs: Vec<_> = stores
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.run_migrations().await }))
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.unwrap().expect("every racing migration succeeds"));
    }
    let (version, latest) = stores[0].schema_version().await.unwrap();
    assert_eq!(version, latest);
    applied.sort();
    assert_eq!(
        applied,
        [0, 0, 0, latest as u32],
        "one instance applied every migration, the others found them applied"
    );
    // Opening again (as a restarted instance does) applies nothing and keeps the data.
    stores[0].upsert_app("app", true).await.unwrap();
    let again = PostgresStore::open(schema.url()).await.unwrap();
    assert_eq!(again.run_migrations().await.unwrap(), 0);
    assert_eq!(again.apps().await.unwrap().len(), 1);
    for s in stores {
        s.close().await;
    }
    again.close().await;
}

/// The next announcement for `app` (waiting at most 10 s: a lost one fails the test).
async fn next_for(feed: &mut tokio::sync::mpsc::Receiver<NewWork>, app: &str) -> NewWork {
    let wanted = async {
        loop {
            let work = feed.recv().await.expect("the feed stays open");
            if work.app == app {
                return work;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wanted)
        .await
        .expect("work was announced")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_and_released_work_is_announced_to_every_instance() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    // NOTIFY reaches every session of the database, other tests' too: this test's app name
    // is its own.
    let app = format!("a{}", uuid::Uuid::now_v7().simple());
    let writer = PostgresStore::open(schema.url()).await.unwrap();
    let watcher = PostgresStore::open(schema.url()).await.unwrap();
    writer.upsert_app(&app, true).await.unwrap();
    let mut feed = watcher
        .watch_work()
        .await
        .unwrap()
        .expect("PostgreSQL announces work");
    let mut device = dev("d1", "t1");
    device.channel = Some("legacy".into());
    writer.put_device(&app, device, t0()).await.unwrap();
    let mut m = msg(600);
    m.app = app.clone();
    writer.insert_message(m, &everyone()).await.unwrap();
    let announced = next_for(&mut feed, &app).await;
    assert_eq!(announced.channel, "legacy");
    let claimed = writer
        .claim_due(&app, "legacy", secs(1), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let back = [Release {
        delivery_id: claimed[0].id,
        attempt: claimed[0].attempts,
    }];
    assert_eq!(writer.release(&back, secs(2)).await.unwrap(), 1);
    let announced = next_for(&mut feed, &app).await;
    assert_eq!(
        announced,
        NewWork {
            app: app.clone(),
            channel: "legacy".into()
        }
    );
    writer.close().await;
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registered_again_while_its_purge_waits_for_it_is_kept() {
    use pushgate_store::{DeviceState, PurgeLimits};
    use sqlx::Connection;

    let Some(schema) = fresh_schema().await else {
        return;
    };
    let s = with_apps(PostgresStore::open(schema.url()).await.unwrap()).await;
    s.put_device("app", dev("d1", "t1"), t0()).await.unwrap();
    s.set_device_state("app", "d1", DeviceState::Invalid, Some("dead"), secs(1))
        .await
        .unwrap();
    // Another writer makes the device active again and holds its row until told to commit.
    let mut other = sqlx::PgConnection::connect(schema.url()).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query(
        "UPDATE devices SET state = 'active', invalid_reason = NULL, updated_at = $1
         WHERE app = 'app' AND device_id = 'd1'",
    )
    .bind(secs(5000).unix_timestamp() * 1000)
    .execute(&mut *tx)
    .await
    .unwrap();
    let limits = PurgeLimits {
        messages: None,
        events: None,
        invalid_devices: Some(Duration::from_secs(60)),
        batch: 10,
    };
    let purge = {
        let s = s.clone();
        tokio::spawn(async move { s.purge("app", &limits, secs(1000)).await })
    };
    // The purge chose the device (invalid in its snapshot) and waits for its row.
    let watcher = sqlx::PgPool::connect(schema.url()).await.unwrap();
    pushgate_testkit::eventually_ok(
        "the purge waits for the device's row",
        Duration::from_secs(20),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM devices%'",
            )
            .fetch_one(&watcher)
            .await
            .unwrap();
            if waiting > 0 { Ok(()) } else { Err(waiting) }
        },
    )
    .await;
    tx.commit().await.unwrap();
    let report = purge.await.unwrap().unwrap();
    assert_eq!(report.devices, 0, "{report:?}");
    let d = s
        .get_device("app", "d1")
        .await
        .unwrap()
        .expect("the device is kept");
    assert_eq!(d.state, DeviceState::Active);
}

/// As on SQLite: a fan-out whose kept audience cannot be read is given up and does not stop
/// its app; the claim's transaction stays usable after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_expanding_message_is_given_up_and_does_not_stop_its_app() {
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let settings = StoreSettings {
        fanout_chunk: 3,
        ..StoreSettings::default()
    };
    let s = with_apps(
        PostgresStore::open_with(schema.url(), &settings)
            .await
            .unwrap(),
    )
    .await;
    contract::a_broken_fanout_is_given_up_and_its_app_goes_on(&*s, async |id| {
        let pool = sqlx::PgPool::connect(schema.url()).await.unwrap();
        sqlx::query(contract::BREAK_EXPANSION)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    })
    .await;
}

/// Concurrent messages to one device each share transactions (the rows a transaction writes
/// carry its id, `xmin`: a burst of 200 inserts shows fewer than 200; a batch that failed and
/// was stored one message at a time would show one each), and each insert
/// returns only once the transaction holding it committed: another instance on the database
/// sees the message and its queued delivery as soon as the caller has its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_single_device_inserts_shares_transactions_and_each_answer_follows_its_commit() {
    const BURST: usize = 200;
    let Some(schema) = fresh_schema().await else {
        return;
    };
    let writer = with_apps(PostgresStore::open(schema.url()).await.unwrap()).await;
    let observer: Arc<dyn Store> = Arc::new(PostgresStore::open(schema.url()).await.unwrap());
    let batch: Vec<_> = (0..BURST)
        .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
        .collect();
    writer.put_devices("app", batch, t0()).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (writer, observer, start) = (writer.clone(), observer.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let m = msg(600);
            let id = m.id;
            // Every fourth names a device nobody registered: settled inside the batch.
            let sendable = i % 4 != 0;
            let device = if sendable {
                format!("d{i}")
            } else {
                format!("nobody-{i}")
            };
            let to = Targets {
                device_ids: vec![device],
                ..Default::default()
            };
            start.wait().await;
            let out = writer.insert_message(m, &to).await.unwrap();
            let seen = observer.get_message(id).await.unwrap().is_some();
            let summary = observer.message_summary(id).await.unwrap();
            let state = if sendable {
                DeliveryState::Queued
            } else {
                DeliveryState::Failed
            };
            (out, sendable, seen, summary.get(&state).copied())
        }));
    }
    for task in tasks {
        let (out, sendable, seen, in_state) = task.await.unwrap();
        assert_eq!((out.deliveries, out.queued), (1, u64::from(sendable)));
        assert!(
            seen,
            "message {} not visible after its answer",
            out.message_id
        );
        assert_eq!(in_state, Some(1));
    }
    let pool = sqlx::PgPool::connect(schema.url()).await.unwrap();
    let transactions: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT xmin::text) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(transactions >= 1);
    assert!(
        transactions < BURST as i64,
        "{BURST} concurrent inserts took {transactions} transactions: none was shared"
    );
}
