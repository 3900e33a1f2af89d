//! The SQLite store's batching writer: concurrent writes share commits, each caller is
//! answered only once the commit holding its write returned (another handle on the file sees
//! it at once), and a failing write in a batch fails alone.

use std::sync::Arc;

use pushgate_store::{DeliveryState, NewDevice, NewMessage, SqliteStore, Store, Targets};
use pushgate_testkit::sqlite::DbFile;
use time::OffsetDateTime;
use uuid::Uuid;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn message(app: &str) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        app: app.into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel_override: None,
        default_channel: "main".into(),
        ttl_secs: 600,
        idempotency_key: None,
        request_hash: None,
        created_at: t0(),
        channels: None,
    }
}

fn to_device(id: &str) -> Targets {
    Targets {
        device_ids: vec![id.to_string()],
        ..Default::default()
    }
}

/// Creates the app `app` with one active device `d` (token `t`).
async fn with_one_device(store: &SqliteStore) {
    store.upsert_app("app", true).await.unwrap();
    let device = NewDevice {
        device_id: "d".into(),
        token: "t".into(),
        ..Default::default()
    };
    store.put_device("app", device, t0()).await.unwrap();
}

/// How many concurrent callers the bursts below use.
const BURST: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_inserts_shares_commits_and_each_answer_follows_its_commit() {
    let db = DbFile::new();
    let path = db.path();
    let writer = SqliteStore::open(path).await.unwrap();
    writer.upsert_app("app", true).await.unwrap();
    for i in 0..BURST {
        let device = NewDevice {
            device_id: format!("d{i}"),
            token: format!("t{i}"),
            ..Default::default()
        };
        writer.put_device("app", device, t0()).await.unwrap();
    }
    // A second, independent handle on the same file: it sees only what was committed.
    let observer = Arc::new(SqliteStore::open(path).await.unwrap());
    let writer = Arc::new(writer);
    let commits_before = writer.commit_count();

    let start = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (writer, observer, start) = (writer.clone(), observer.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let m = message("app");
            let id = m.id;
            // Every fourth names a device nobody registered: settled inside the batch.
            let sendable = i % 4 != 0;
            let device = if sendable {
                format!("d{i}")
            } else {
                format!("nobody-{i}")
            };
            start.wait().await;
            let out = writer.insert_message(m, &to_device(&device)).await.unwrap();
            // Answered: the message and its delivery are already committed.
            let seen = observer.get_message(id).await.unwrap();
            let summary = observer.message_summary(id).await.unwrap();
            let state = if sendable {
                DeliveryState::Queued
            } else {
                DeliveryState::Failed
            };
            (out, sendable, seen.is_some(), summary.get(&state).copied())
        }));
    }
    for task in tasks {
        let (out, sendable, seen, in_state) = task.await.unwrap();
        assert_eq!((out.deliveries, out.queued), (1, u64::from(sendable)));
        assert!(
            seen,
            "message {} not visible after its insert returned",
            out.message_id
        );
        assert_eq!(in_state, Some(1));
    }
    let commits = writer.commit_count() - commits_before;
    assert!(commits >= 1);
    assert!(
        commits < BURST as u64,
        "{BURST} concurrent inserts took {commits} commits: none was shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_in_a_batch_fails_alone() {
    let db = DbFile::new();
    let store = Arc::new(SqliteStore::open(db.path()).await.unwrap());
    with_one_device(&store).await;

    let start = Arc::new(tokio::sync::Barrier::new(BURST));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let (store, start) = (store.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            // Every fifth one names an app that does not exist.
            let app = if i % 5 == 0 { "no-such-app" } else { "app" };
            let m = message(app);
            let id = m.id;
            start.wait().await;
            let out = store.insert_message(m, &to_device("d")).await;
            (app, id, out)
        }));
    }
    for task in tasks {
        let (app, id, out) = task.await.unwrap();
        let stored = store.get_message(id).await.unwrap();
        if app == "app" {
            assert_eq!(out.unwrap().deliveries, 1);
            assert!(stored.is_some());
        } else {
            assert!(
                matches!(out, Err(pushgate_store::StoreError::NotFound)),
                "{out:?}"
            );
            assert!(stored.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_bookkeeping_defers_its_flush_but_new_messages_never_do() {
    let db = DbFile::new();
    let store = SqliteStore::open(db.path()).await.unwrap();
    with_one_device(&store).await;

    // A new message: its commit is flushed before the answer.
    let before = store.flush_count();
    store
        .insert_message(message("app"), &to_device("d"))
        .await
        .unwrap();
    assert_eq!(
        store.flush_count(),
        before + 1,
        "a new message was not flushed"
    );

    // Claims right after it: committed, not flushed while the last flush is recent (a slow
    // machine may take longer than the 200 ms window: then one flush per window is allowed).
    let (commits, flushes) = (store.commit_count(), store.flush_count());
    let since_flush = std::time::Instant::now();
    for _ in 0..5 {
        store
            .claim_due("app", "main", t0(), 10, std::time::Duration::from_secs(60))
            .await
            .unwrap();
    }
    assert_eq!(store.commit_count(), commits + 5);
    let windows = (since_flush.elapsed().as_millis() / 200) as u64;
    assert!(
        store.flush_count() - flushes <= windows,
        "5 claims in {:?} after a flush made {} flushes",
        since_flush.elapsed(),
        store.flush_count() - flushes
    );
    let flushes = store.flush_count();

    // Once the last flush is older than the window, bookkeeping is flushed too.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    store
        .claim_due("app", "main", t0(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.flush_count(),
        flushes + 1,
        "bookkeeping went unflushed for longer than the window"
    );

    // A last unflushed commit with nothing written after it reaches the disk anyway, within
    // the window (a checkpoint syncs the log).
    let flushes = store.flush_count();
    store
        .claim_due("app", "main", t0(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        store.flush_count() > flushes,
        "an unflushed commit stayed unflushed with nothing written after it"
    );
}
