//! Integration tests of the SQLite store against real database files.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pushgate_proto::outcome::Outcome;
use pushgate_store::{
    Completion, DeliveryState, DeviceFilter, DeviceState, EventKind, NewDelivery, NewDevice,
    NewMessage, SqliteStore, Store, StoreError,
};
use time::OffsetDateTime;
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

async fn store() -> SqliteStore {
    let s = SqliteStore::open(&db_path()).await.unwrap();
    s.upsert_app("app", true).await.unwrap();
    s
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn secs(n: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(n)
}

fn dev(id: &str, token: &str, user: Option<&str>, tags: &[&str]) -> NewDevice {
    NewDevice {
        device_id: id.into(),
        token: token.into(),
        channel: None,
        user: user.map(Into::into),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        app_version: Some("1.0".into()),
    }
}

fn msg(ttl_secs: i64, key: Option<&str>) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel: None,
        ttl_secs,
        idempotency_key: key.map(Into::into),
        created_at: t0(),
    }
}

fn to_device(id: &str, token: &str) -> NewDelivery {
    NewDelivery {
        device_id: Some(id.into()),
        token: token.into(),
        channel: None,
    }
}

const LEASE: Duration = Duration::from_secs(30);

fn done(id: i64, outcome: Outcome) -> Completion {
    Completion {
        delivery_id: id,
        outcome,
        retry_at: None,
    }
}

#[tokio::test]
async fn devices_put_get_list_filters_and_pages() {
    let s = store().await;
    let put = s
        .put_device("app", dev("d1", "t1", Some("u1"), &["b", "a", "a"]), t0())
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(put.took_over_from, None);
    let again = s
        .put_device("app", dev("d1", "t1", Some("u1"), &["a", "b"]), secs(1))
        .await
        .unwrap();
    assert!(!again.created);
    for (i, user) in [(2, "u1"), (3, "u2"), (4, "u1"), (5, "u2")] {
        let tags: &[&str] = if i % 2 == 0 { &["even"] } else { &[] };
        s.put_device(
            "app",
            dev(&format!("d{i}"), &format!("t{i}"), Some(user), tags),
            t0(),
        )
        .await
        .unwrap();
    }
    let d1 = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(d1.tags, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(d1.state, DeviceState::Active);
    assert_eq!(d1.created_at, t0());
    assert_eq!(d1.updated_at, secs(1));
    assert!(s.get_device("app", "nope").await.unwrap().is_none());

    let all = DeviceFilter::default();
    let p1 = s.list_devices("app", &all, None, 2).await.unwrap();
    let ids = |p: &pushgate_store::Page<pushgate_store::Device, String>| {
        p.items
            .iter()
            .map(|d| d.device_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&p1), ["d1", "d2"]);
    assert_eq!(p1.next_cursor.as_deref(), Some("d2"));
    let p2 = s.list_devices("app", &all, Some("d2"), 2).await.unwrap();
    assert_eq!(ids(&p2), ["d3", "d4"]);
    let p3 = s.list_devices("app", &all, Some("d4"), 2).await.unwrap();
    assert_eq!(ids(&p3), ["d5"]);
    assert_eq!(p3.next_cursor, None);

    let u1 = DeviceFilter {
        user: Some("u1".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.list_devices("app", &u1, None, 10).await.unwrap()),
        ["d1", "d2", "d4"]
    );
    let even = DeviceFilter {
        tag: Some("even".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.list_devices("app", &even, None, 10).await.unwrap()),
        ["d2", "d4"]
    );

    s.set_device_state("app", "d3", DeviceState::Disabled, None, secs(2))
        .await
        .unwrap();
    let disabled = DeviceFilter {
        state: Some(DeviceState::Disabled),
        ..Default::default()
    };
    assert_eq!(
        ids(&s.list_devices("app", &disabled, None, 10).await.unwrap()),
        ["d3"]
    );

    s.delete_device("app", "d2").await.unwrap();
    assert!(matches!(
        s.delete_device("app", "d2").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        ids(&s.list_devices("app", &even, None, 10).await.unwrap()),
        ["d4"]
    );
    assert!(matches!(
        s.put_device("other", dev("x", "y", None, &[]), t0()).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn second_device_takes_a_known_token_over() {
    let s = store().await;
    s.put_device("app", dev("old", "tok", None, &[]), t0())
        .await
        .unwrap();
    let put = s
        .put_device("app", dev("new", "tok", None, &[]), secs(1))
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(put.took_over_from.as_deref(), Some("old"));
    let old = s.get_device("app", "old").await.unwrap().unwrap();
    assert_eq!(old.state, DeviceState::Invalid);
    assert_eq!(
        old.invalid_reason.as_deref(),
        Some("token taken over by new")
    );
    // Reactivating the retired device while "new" holds the token breaks uniqueness.
    assert!(matches!(
        s.set_device_state("app", "old", DeviceState::Active, None, secs(2))
            .await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn repeated_idempotency_key_stores_nothing_new() {
    let s = store().await;
    let first = msg(60, Some("k1"));
    let out = s
        .insert_message(
            first.clone(),
            vec![to_device("d1", "t1"), to_device("d2", "t2")],
        )
        .await
        .unwrap();
    assert_eq!(
        (out.message_id, out.deliveries, out.duplicate),
        (first.id, 2, false)
    );
    let second = msg(60, Some("k1"));
    let again = s
        .insert_message(second.clone(), vec![to_device("d3", "t3")])
        .await
        .unwrap();
    assert_eq!(
        (again.message_id, again.deliveries, again.duplicate),
        (first.id, 2, true)
    );
    assert!(matches!(
        s.message_summary(second.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.claim_due(secs(1), 100, LEASE).await.unwrap().len(), 2);
    // No key: always new.
    let a = s.insert_message(msg(60, None), vec![]).await.unwrap();
    let b = s.insert_message(msg(60, None), vec![]).await.unwrap();
    assert_ne!(a.message_id, b.message_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_get_disjoint_deliveries() {
    let path = db_path();
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    a.upsert_app("app", true).await.unwrap();
    let targets = (0..200)
        .map(|i| to_device(&format!("d{i}"), &format!("t{i}")))
        .collect();
    a.insert_message(msg(600, None), targets).await.unwrap();
    let claim = |s: SqliteStore| async move {
        let mut got = Vec::new();
        loop {
            let batch = s.claim_due(secs(1), 7, LEASE).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
        }
    };
    let (ga, gb) = tokio::join!(claim(a.clone()), claim(b.clone()));
    let mut all: Vec<i64> = ga.iter().chain(gb.iter()).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 200, "every delivery claimed once");
    assert_eq!(all.len(), 200, "no delivery claimed twice");
}

#[tokio::test]
async fn lease_expiry_puts_work_back_and_release_undoes_a_claim() {
    let s = store().await;
    s.insert_message(msg(600, None), vec![to_device("d1", "t1")])
        .await
        .unwrap();
    let first = s.claim_due(secs(1), 10, LEASE).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].state, DeliveryState::InFlight);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].lease_until, Some(secs(31)));
    assert!(s.claim_due(secs(30), 10, LEASE).await.unwrap().is_empty());
    let again = s.claim_due(secs(31), 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);

    assert_eq!(s.release(&[again[0].id], secs(32)).await.unwrap(), 1);
    assert_eq!(s.release(&[again[0].id], secs(32)).await.unwrap(), 0);
    let back = s.claim_due(secs(32), 10, LEASE).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].attempts, 2);
}

#[tokio::test]
async fn delivered_marks_sent_and_confirms_device() {
    let s = store().await;
    s.put_device("app", dev("d1", "t1", None, &[]), t0())
        .await
        .unwrap();
    let m = msg(600, None);
    s.insert_message(m.clone(), vec![to_device("d1", "t1")])
        .await
        .unwrap();
    let d = s.claim_due(secs(1), 10, LEASE).await.unwrap().remove(0);
    let n = s
        .complete(
            vec![done(
                d.id,
                Outcome::Delivered {
                    message_id: "p1".into(),
                },
            )],
            secs(2),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let page = s.list_deliveries(m.id, None, 10).await.unwrap();
    assert_eq!(page.items[0].state, DeliveryState::Sent);
    assert_eq!(page.items[0].provider_message_id.as_deref(), Some("p1"));
    assert!(s.get_device("app", "d1").await.unwrap().unwrap().confirmed);
    // A late answer for a delivery no longer in flight is ignored.
    let late = s
        .complete(
            vec![done(d.id, Outcome::TokenDead { reason: "X".into() })],
            secs(3),
        )
        .await
        .unwrap();
    assert_eq!(late, 0);
    assert_eq!(
        s.message_summary(m.id)
            .await
            .unwrap()
            .get(&DeliveryState::Sent),
        Some(&1)
    );
    assert!(s.events_after("app", 0, 10, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn rotated_rewrites_token_and_pending_work() {
    let s = store().await;
    s.put_device("app", dev("d1", "old", None, &[]), t0())
        .await
        .unwrap();
    s.insert_message(msg(600, None), vec![to_device("d1", "old")])
        .await
        .unwrap();
    let d = s.claim_due(secs(1), 10, LEASE).await.unwrap().remove(0);
    let pending = msg(600, None);
    s.insert_message(pending.clone(), vec![to_device("d1", "old")])
        .await
        .unwrap();
    s.complete(
        vec![done(
            d.id,
            Outcome::Rotated {
                message_id: "p".into(),
                new_token: "new".into(),
            },
        )],
        secs(2),
    )
    .await
    .unwrap();
    let dev1 = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(dev1.token, "new");
    assert_eq!(dev1.state, DeviceState::Active);
    let events = s.events_after("app", 0, 10, None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::TokenRotated);
    assert_eq!(events[0].device_id.as_deref(), Some("d1"));
    assert_eq!(events[0].data["new_token"], "new");
    let next = s.claim_due(secs(3), 10, LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message_id, pending.id);
    assert_eq!(next[0].token, "new");
}

#[tokio::test]
async fn rotated_onto_a_held_token_retires_the_old_device() {
    let s = store().await;
    s.put_device("app", dev("d1", "old", None, &[]), t0())
        .await
        .unwrap();
    s.put_device("app", dev("d2", "new", None, &[]), t0())
        .await
        .unwrap();
    s.insert_message(msg(600, None), vec![to_device("d1", "old")])
        .await
        .unwrap();
    let d = s.claim_due(secs(1), 10, LEASE).await.unwrap().remove(0);
    s.complete(
        vec![done(
            d.id,
            Outcome::Rotated {
                message_id: "p".into(),
                new_token: "new".into(),
            },
        )],
        secs(2),
    )
    .await
    .unwrap();
    let d1 = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(d1.state, DeviceState::Invalid);
    assert_eq!(d1.token, "old");
    assert_eq!(
        d1.invalid_reason.as_deref(),
        Some("canonical id held by d2")
    );
    assert_eq!(
        s.get_device("app", "d2").await.unwrap().unwrap().state,
        DeviceState::Active
    );
    let events = s
        .events_after("app", 0, 10, Some(EventKind::TokenRotated))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["held_by"], "d2");
}

#[tokio::test]
async fn token_dead_invalidates_device_and_blocks_new_work() {
    let s = store().await;
    s.put_device("app", dev("d1", "t1", None, &[]), t0())
        .await
        .unwrap();
    s.insert_message(msg(600, None), vec![to_device("d1", "t1")])
        .await
        .unwrap();
    let d = s.claim_due(secs(1), 10, LEASE).await.unwrap().remove(0);
    s.complete(
        vec![done(
            d.id,
            Outcome::TokenDead {
                reason: "NotRegistered".into(),
            },
        )],
        secs(2),
    )
    .await
    .unwrap();
    let d1 = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(d1.state, DeviceState::Invalid);
    assert_eq!(d1.invalid_reason.as_deref(), Some("NotRegistered"));
    let events = s.events_after("app", 0, 10, None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::DeviceInvalidated);
    assert_eq!(events[0].device_id.as_deref(), Some("d1"));

    let later = msg(600, None);
    s.insert_message(later.clone(), vec![to_device("d1", "t1")])
        .await
        .unwrap();
    assert!(s.claim_due(secs(3), 10, LEASE).await.unwrap().is_empty());
    let summary = s.message_summary(later.id).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::TokenDead), Some(&1));
}

#[tokio::test]
async fn retry_waits_until_due_and_expires_past_deadline() {
    let s = store().await;
    let m = msg(100, None);
    s.insert_message(
        m.clone(),
        vec![to_device("d1", "t1"), to_device("d2", "t2")],
    )
    .await
    .unwrap();
    let claimed = s.claim_due(secs(1), 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let results = vec![
        Completion {
            delivery_id: claimed[0].id,
            outcome: Outcome::RetryLater {
                reason: "Unavailable".into(),
                after: None,
            },
            retry_at: Some(secs(50)),
        },
        Completion {
            delivery_id: claimed[1].id,
            outcome: Outcome::Throttled {
                reason: "DeviceMessageRateExceeded".into(),
                after: Some(Duration::from_secs(500)),
            },
            retry_at: Some(secs(501)),
        },
    ];
    assert_eq!(s.complete(results, secs(2)).await.unwrap(), 2);
    let summary = s.message_summary(m.id).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::RetryWait), Some(&1));
    assert_eq!(summary.get(&DeliveryState::Expired), Some(&1));
    assert!(s.claim_due(secs(49), 10, LEASE).await.unwrap().is_empty());
    let retry = s.claim_due(secs(50), 10, LEASE).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 2);
    assert_eq!(retry[0].error_code.as_deref(), Some("Unavailable"));
    // Its lease runs out after the deadline: it expires instead of being claimed again.
    assert!(s.claim_due(secs(100), 10, LEASE).await.unwrap().is_empty());
    let summary = s.message_summary(m.id).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::Expired), Some(&2));
}

#[tokio::test]
async fn rejected_and_auth_failed_fail_with_events() {
    let s = store().await;
    let m = msg(600, None);
    s.insert_message(
        m.clone(),
        vec![to_device("d1", "t1"), to_device("d2", "t2")],
    )
    .await
    .unwrap();
    let c = s.claim_due(secs(1), 10, LEASE).await.unwrap();
    s.complete(
        vec![
            done(
                c[0].id,
                Outcome::MessageRejected {
                    reason: "MessageTooBig".into(),
                },
            ),
            done(
                c[1].id,
                Outcome::AuthFailed {
                    reason: "401".into(),
                },
            ),
        ],
        secs(2),
    )
    .await
    .unwrap();
    assert_eq!(
        s.message_summary(m.id)
            .await
            .unwrap()
            .get(&DeliveryState::Failed),
        Some(&2)
    );
    let events = s
        .events_after("app", 0, 10, Some(EventKind::DeliveryFailed))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["outcome"], "message_rejected");
    assert_eq!(events[1].data["reason"], "401");
    assert!(s.claim_due(secs(3), 10, LEASE).await.unwrap().is_empty());
}

#[tokio::test]
async fn disabled_device_work_fails_at_claim() {
    let s = store().await;
    s.put_device("app", dev("d1", "t1", None, &[]), t0())
        .await
        .unwrap();
    s.set_device_state("app", "d1", DeviceState::Disabled, None, t0())
        .await
        .unwrap();
    let m = msg(600, None);
    s.insert_message(m.clone(), vec![to_device("d1", "t1")])
        .await
        .unwrap();
    assert!(s.claim_due(secs(1), 10, LEASE).await.unwrap().is_empty());
    let page = s.list_deliveries(m.id, None, 10).await.unwrap();
    assert_eq!(page.items[0].state, DeliveryState::Failed);
    assert_eq!(page.items[0].error_code.as_deref(), Some("device_disabled"));
}

#[tokio::test]
async fn events_page_in_order() {
    let s = store().await;
    let targets: Vec<_> = (0..5)
        .map(|i| to_device(&format!("d{i}"), &format!("t{i}")))
        .collect();
    s.insert_message(msg(600, None), targets).await.unwrap();
    let c = s.claim_due(secs(1), 10, LEASE).await.unwrap();
    let results = c
        .iter()
        .map(|d| {
            done(
                d.id,
                Outcome::MessageRejected {
                    reason: d.token.clone(),
                },
            )
        })
        .collect();
    s.complete(results, secs(2)).await.unwrap();
    let first = s.events_after("app", 0, 2, None).await.unwrap();
    assert_eq!(first.len(), 2);
    let second = s.events_after("app", first[1].seq, 2, None).await.unwrap();
    let third = s.events_after("app", second[1].seq, 2, None).await.unwrap();
    assert_eq!(third.len(), 1);
    let reasons: Vec<_> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|e| e.data["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(reasons, ["t0", "t1", "t2", "t3", "t4"]);
    assert!(first[0].seq < first[1].seq && first[1].seq < second[0].seq);
    assert!(
        s.events_after("app", third[0].seq, 2, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.events_after("other", 0, 10, None)
            .await
            .unwrap()
            .is_empty()
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
