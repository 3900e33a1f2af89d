//! The behaviour every [`Store`] implementation must have, written once against `&dyn Store`
//! so that the SQLite and PostgreSQL suites run the same cases.
//!
//! Each case takes a fresh store that has one default app named `app` (and, for isolation
//! checks, an app `other`). `store_contract_tests!(make)` turns every case into a test.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use pushgate_proto::condition::Condition;
use pushgate_proto::outcome::Outcome;
use pushgate_store::{
    C2dmRegistration, ChannelRecord, Completion, Confirmation, Delivery, DeliveryState,
    DeviceFilter, DeviceState, EventKind, NewDevice, NewMessage, Release, Store, StoreError,
    Targets, UpstreamRecord,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub const LEASE: Duration = Duration::from_secs(30);
pub const CH: &str = "main";

pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

pub fn secs(n: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(n)
}

pub fn dev(id: &str, token: &str) -> NewDevice {
    NewDevice {
        device_id: id.into(),
        token: token.into(),
        app_version: Some("1.0".into()),
        ..Default::default()
    }
}

pub fn msg(ttl_secs: i64) -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel_override: None,
        default_channel: CH.into(),
        ttl_secs,
        idempotency_key: None,
        request_hash: None,
        created_at: t0(),
    }
}

pub fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn done(d: &Delivery, outcome: Outcome) -> Completion {
    Completion {
        delivery_id: d.id,
        attempt: d.attempts,
        outcome,
        retry_at: None,
    }
}

pub fn delivered(d: &Delivery) -> Completion {
    done(
        d,
        Outcome::Delivered {
            message_id: format!("p-{}", d.id),
        },
    )
}

/// Registers `d1..=dn` with tokens `t1..=tn`.
pub async fn devices(s: &dyn Store, n: usize) {
    for i in 1..=n {
        s.put_device("app", dev(&format!("d{i}"), &format!("t{i}")), t0())
            .await
            .unwrap();
    }
}

/// Sends a message to `targets` and returns (message id, device id or token -> delivery).
pub async fn send(s: &dyn Store, targets: Targets) -> Uuid {
    let m = msg(600);
    let out = s.insert_message(m.clone(), &targets).await.unwrap();
    assert!(!out.duplicate);
    m.id
}

/// Every delivery of a message, in id order.
pub async fn deliveries_of(s: &dyn Store, id: Uuid) -> Vec<Delivery> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list_deliveries(id, cursor, 100).await.unwrap();
        all.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// (device id or "-", token, state, error) of each delivery, sorted, for easy comparison.
pub async fn shape(s: &dyn Store, id: Uuid) -> Vec<(String, String, DeliveryState, String)> {
    let mut v: Vec<_> = deliveries_of(s, id)
        .await
        .into_iter()
        .map(|d| {
            (
                d.device_id.unwrap_or_else(|| "-".into()),
                d.token,
                d.state,
                d.error_code.unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(
    dev: &str,
    tok: &str,
    state: DeliveryState,
    err: &str,
) -> (String, String, DeliveryState, String) {
    (dev.into(), tok.into(), state, err.into())
}

pub async fn claim(s: &dyn Store, at: OffsetDateTime) -> Vec<Delivery> {
    s.claim_due("app", CH, at, 1000, LEASE).await.unwrap()
}

// ---------------------------------------------------------------------------------------------

pub async fn devices_put_get_list_filters_and_pages(s: Arc<dyn Store>) {
    let mut d1 = dev("d1", "t1");
    d1.user = Some("u1".into());
    d1.tags = ids(&["b", "a", "a"]);
    d1.topics = ids(&["news", "news", "sport"]);
    let put = s.put_device("app", d1.clone(), t0()).await.unwrap();
    assert!(put.created);
    assert_eq!(put.took_over_from, None);
    let again = s.put_device("app", d1, secs(1)).await.unwrap();
    assert!(!again.created);
    for (i, user) in [(2, "u1"), (3, "u2"), (4, "u1"), (5, "u2")] {
        let mut d = dev(&format!("d{i}"), &format!("t{i}"));
        d.user = Some(user.into());
        if i % 2 == 0 {
            d.tags = ids(&["even"]);
            d.topics = ids(&["news"]);
        }
        s.put_device("app", d, t0()).await.unwrap();
    }
    let got = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(got.tags, ids(&["a", "b"]));
    assert_eq!(got.topics, ids(&["news", "sport"]));
    assert_eq!(got.token.as_deref(), Some("t1"));
    assert!(got.is_confirmed());
    assert_eq!(got.state, DeviceState::Active);
    assert_eq!(got.created_at, t0());
    assert_eq!(got.updated_at, secs(1));
    assert!(s.get_device("app", "nope").await.unwrap().is_none());
    assert!(s.get_device("other", "d1").await.unwrap().is_none());

    let names = |p: &pushgate_store::Page<pushgate_store::Device, String>| {
        p.items
            .iter()
            .map(|d| d.device_id.clone())
            .collect::<Vec<_>>()
    };
    let all = DeviceFilter::default();
    let p1 = s.list_devices("app", &all, None, 2).await.unwrap();
    assert_eq!(names(&p1), ["d1", "d2"]);
    assert_eq!(p1.next_cursor.as_deref(), Some("d2"));
    let p2 = s.list_devices("app", &all, Some("d2"), 2).await.unwrap();
    assert_eq!(names(&p2), ["d3", "d4"]);
    let p3 = s.list_devices("app", &all, Some("d4"), 2).await.unwrap();
    assert_eq!(names(&p3), ["d5"]);
    assert_eq!(p3.next_cursor, None);

    let by = |user: Option<&str>, tag: Option<&str>, topic: Option<&str>| DeviceFilter {
        user: user.map(Into::into),
        tag: tag.map(Into::into),
        topic: topic.map(Into::into),
        state: None,
    };
    let list = |f: DeviceFilter| {
        let s = s.clone();
        async move { names(&s.list_devices("app", &f, None, 10).await.unwrap()) }
    };
    assert_eq!(list(by(Some("u1"), None, None)).await, ["d1", "d2", "d4"]);
    assert_eq!(list(by(None, Some("even"), None)).await, ["d2", "d4"]);
    assert_eq!(list(by(None, None, Some("news"))).await, ["d1", "d2", "d4"]);
    assert_eq!(
        list(by(Some("u2"), None, Some("news"))).await,
        Vec::<String>::new()
    );

    s.set_device_state("app", "d3", DeviceState::Disabled, None, secs(2))
        .await
        .unwrap();
    let disabled = DeviceFilter {
        state: Some(DeviceState::Disabled),
        ..Default::default()
    };
    assert_eq!(list(disabled).await, ["d3"]);
    // A re-registration keeps a disabled device disabled unless it says otherwise.
    s.put_device("app", dev("d3", "t3"), secs(3)).await.unwrap();
    let d3 = s.get_device("app", "d3").await.unwrap().unwrap();
    assert_eq!(d3.state, DeviceState::Disabled);
    let mut on = dev("d3", "t3");
    on.state = Some(DeviceState::Active);
    s.put_device("app", on, secs(4)).await.unwrap();
    assert_eq!(
        s.get_device("app", "d3").await.unwrap().unwrap().state,
        DeviceState::Active
    );
    let mut invalid = dev("d3", "t3");
    invalid.state = Some(DeviceState::Invalid);
    assert!(matches!(
        s.put_device("app", invalid, secs(5)).await,
        Err(StoreError::InvalidInput(_))
    ));

    s.delete_device("app", "d2", secs(5)).await.unwrap();
    assert!(matches!(
        s.delete_device("app", "d2", secs(5)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(list(by(None, Some("even"), None)).await, ["d4"]);
    assert!(matches!(
        s.put_device("nope", dev("x", "y"), t0()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn batch_put_is_one_transaction_in_order(s: Arc<dyn Store>) {
    let batch: Vec<_> = (1..=50)
        .map(|i| dev(&format!("d{i:02}"), &format!("t{i}")))
        .collect();
    let out = s.put_devices("app", batch, t0()).await.unwrap();
    assert_eq!(out.len(), 50);
    assert!(out.iter().all(|p| p.created && p.took_over_from.is_none()));
    // Within one batch, a later device taking an earlier one's token retires it.
    let out = s
        .put_devices(
            "app",
            vec![dev("x1", "shared"), dev("x2", "shared")],
            secs(1),
        )
        .await
        .unwrap();
    assert_eq!(out[1].took_over_from.as_deref(), Some("x1"));
    let page = s
        .list_devices("app", &DeviceFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 52);
    // A batch with an invalid entry stores nothing of it.
    let mut bad = dev("y2", "ty2");
    bad.state = Some(DeviceState::Invalid);
    assert!(
        s.put_devices("app", vec![dev("y1", "ty1"), bad], secs(2))
            .await
            .is_err()
    );
    assert!(s.get_device("app", "y1").await.unwrap().is_none());
}

pub async fn second_device_takes_a_known_token_over(s: Arc<dyn Store>) {
    s.put_device("app", dev("old", "tok"), t0()).await.unwrap();
    let waiting = send(
        &*s,
        Targets {
            device_ids: ids(&["old"]),
            ..Default::default()
        },
    )
    .await;
    let put = s
        .put_device("app", dev("new", "tok"), secs(1))
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
    // The retired device's waiting work will never be sent.
    assert_eq!(
        shape(&*s, waiting).await,
        [row(
            "old",
            "tok",
            DeliveryState::TokenDead,
            "device_invalid"
        )]
    );
    // Reactivating the retired device while "new" holds the token breaks uniqueness.
    assert!(matches!(
        s.set_device_state("app", "old", DeviceState::Active, None, secs(2))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Another app may hold the same token.
    s.put_device("other", dev("old", "tok"), t0())
        .await
        .unwrap();
    assert_eq!(
        s.get_device("app", "new").await.unwrap().unwrap().state,
        DeviceState::Active
    );
}

pub async fn changed_token_carries_waiting_work(s: Arc<dyn Store>) {
    devices(&*s, 1).await;
    let m = send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    s.put_device("app", dev("d1", "t1-new"), secs(1))
        .await
        .unwrap();
    let claimed = claim(&*s, secs(2)).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message_id, m);
    assert_eq!(claimed[0].token, "t1-new");
}

pub async fn repeated_idempotency_key_stores_nothing_new(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    let mut first = msg(60);
    first.idempotency_key = Some("k1".into());
    first.request_hash = Some("h1".into());
    let two = Targets {
        device_ids: ids(&["d1", "d2"]),
        ..Default::default()
    };
    let out = s.insert_message(first.clone(), &two).await.unwrap();
    assert_eq!(
        (out.message_id, out.deliveries, out.queued, out.duplicate),
        (first.id, 2, 2, false)
    );

    let mut second = msg(60);
    second.idempotency_key = Some("k1".into());
    second.request_hash = Some("h1".into());
    let three = Targets {
        all: true,
        ..Default::default()
    };
    let again = s.insert_message(second.clone(), &three).await.unwrap();
    assert_eq!(
        (
            again.message_id,
            again.deliveries,
            again.queued,
            again.duplicate,
            again.same_request
        ),
        (first.id, 2, 2, true, true)
    );
    assert!(matches!(
        s.message_summary(second.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.get_message(second.id).await.unwrap().is_none());

    let mut reused = msg(60);
    reused.idempotency_key = Some("k1".into());
    reused.request_hash = Some("h2".into());
    let other = s.insert_message(reused, &three).await.unwrap();
    assert!(other.duplicate && !other.same_request);
    assert_eq!(claim(&*s, secs(1)).await.len(), 2);

    // The same key in another app is another message.
    let mut elsewhere = msg(60);
    elsewhere.app = "other".into();
    elsewhere.idempotency_key = Some("k1".into());
    let out = s
        .insert_message(elsewhere.clone(), &Targets::default())
        .await
        .unwrap();
    assert!(!out.duplicate);
    assert_eq!(out.message_id, elsewhere.id);
    // No key: always new.
    let a = s
        .insert_message(msg(60), &Targets::default())
        .await
        .unwrap();
    let b = s
        .insert_message(msg(60), &Targets::default())
        .await
        .unwrap();
    assert_ne!(a.message_id, b.message_id);
    assert_eq!((a.deliveries, a.queued), (0, 0));
}

pub async fn targets_expand_to_one_delivery_per_sendable_device(s: Arc<dyn Store>) {
    // d1..d6; users, tags and topics spread over them; d5 disabled; d6 invalid.
    for (id, user, tags, topics) in [
        ("d1", "u1", &["vip"][..], &["news"][..]),
        ("d2", "u1", &[][..], &["news", "sport"][..]),
        ("d3", "u2", &["vip"][..], &["sport"][..]),
        ("d4", "u3", &[][..], &[][..]),
        ("d5", "u1", &["vip"][..], &["news"][..]),
        ("d6", "u2", &["vip"][..], &["news"][..]),
    ] {
        let mut d = dev(id, &format!("tok-{id}"));
        d.user = Some(user.into());
        d.tags = ids(tags);
        d.topics = ids(topics);
        s.put_device("app", d, t0()).await.unwrap();
    }
    s.set_device_state("app", "d5", DeviceState::Disabled, None, t0())
        .await
        .unwrap();
    s.set_device_state(
        "app",
        "d6",
        DeviceState::Invalid,
        Some("NotRegistered"),
        t0(),
    )
    .await
    .unwrap();
    s.put_device("other", dev("d1", "tok-other"), t0())
        .await
        .unwrap();

    let reached = |t: Targets| {
        let s = s.clone();
        async move {
            let id = send(&*s, t).await;
            let mut v: Vec<String> = deliveries_of(&*s, id)
                .await
                .into_iter()
                .filter(|d| d.state == DeliveryState::Queued)
                .map(|d| d.device_id.unwrap_or_default())
                .collect();
            v.sort();
            v
        }
    };
    let t = |f: fn(&mut Targets)| {
        let mut t = Targets::default();
        f(&mut t);
        t
    };
    assert_eq!(reached(t(|t| t.all = true)).await, ["d1", "d2", "d3", "d4"]);
    assert_eq!(reached(t(|t| t.users = ids(&["u1"]))).await, ["d1", "d2"]);
    assert_eq!(reached(t(|t| t.tags = ids(&["vip"]))).await, ["d1", "d3"]);
    assert_eq!(
        reached(t(|t| t.topic = Some("news".into()))).await,
        ["d1", "d2"]
    );
    assert_eq!(
        reached(t(|t| t.condition = Some(
            Condition::parse("'news' in topics && !('sport' in topics)").unwrap()
        )))
        .await,
        ["d1"]
    );
    assert_eq!(
        reached(t(|t| t.condition = Some(
            Condition::parse("'sport' in topics || 'news' in topics").unwrap()
        )))
        .await,
        ["d1", "d2", "d3"]
    );
    // The union, each device once.
    assert_eq!(
        reached(t(|t| {
            t.users = ids(&["u1"]);
            t.tags = ids(&["vip"]);
            t.device_ids = ids(&["d1", "d4"]);
        }))
        .await,
        ["d1", "d2", "d3", "d4"]
    );
    assert_eq!(reached(Targets::default()).await, Vec::<String>::new());
}

pub async fn named_devices_that_cannot_be_sent_to_say_why(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    s.set_device_state("app", "d2", DeviceState::Disabled, None, t0())
        .await
        .unwrap();
    s.set_device_state(
        "app",
        "d3",
        DeviceState::Invalid,
        Some("NotRegistered"),
        t0(),
    )
    .await
    .unwrap();
    let m = msg(600);
    let out = s
        .insert_message(
            m.clone(),
            &Targets {
                device_ids: ids(&["d1", "d2", "d3", "ghost", "ghost"]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((out.deliveries, out.queued), (4, 1));
    assert_eq!(
        shape(&*s, m.id).await,
        [
            row("d1", "t1", DeliveryState::Queued, ""),
            row("d2", "t2", DeliveryState::Failed, "device_disabled"),
            row("d3", "t3", DeliveryState::TokenDead, "device_invalid"),
            row("ghost", "", DeliveryState::Failed, "unknown_device"),
        ]
    );
    let stored = s.get_message(m.id).await.unwrap().unwrap();
    assert_eq!((stored.deliveries, stored.queued), (4, 1));
    assert_eq!(stored.payload, m.payload);
    let other = msg(60);
    s.insert_message(other.clone(), &Targets::default())
        .await
        .unwrap();
    let mut both = s
        .get_messages(&[m.id, Uuid::now_v7(), other.id])
        .await
        .unwrap();
    both.sort_by_key(|x| x.id);
    assert_eq!(
        both.iter().map(|x| x.id).collect::<Vec<_>>(),
        [m.id, other.id]
    );
}

pub async fn raw_tokens_are_sent_as_their_device(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    s.set_device_state("app", "d2", DeviceState::Disabled, None, t0())
        .await
        .unwrap();
    s.set_device_state(
        "app",
        "d3",
        DeviceState::Invalid,
        Some("NotRegistered"),
        t0(),
    )
    .await
    .unwrap();
    let m = send(
        &*s,
        Targets {
            tokens: ids(&["t1", "t2", "t3", "stranger", "stranger"]),
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        shape(&*s, m).await,
        [
            row("-", "stranger", DeliveryState::Queued, ""),
            row("-", "t3", DeliveryState::TokenDead, "device_invalid"),
            row("d1", "t1", DeliveryState::Queued, ""),
            row("d2", "t2", DeliveryState::Failed, "device_disabled"),
        ]
    );
}

pub async fn channels_follow_override_device_and_default(s: Arc<dyn Store>) {
    let mut legacy = dev("d1", "t1");
    legacy.channel = Some("legacy".into());
    s.put_device("app", legacy, t0()).await.unwrap();
    s.put_device("app", dev("d2", "t2"), t0()).await.unwrap();
    let everyone = Targets {
        all: true,
        tokens: ids(&["raw"]),
        ..Default::default()
    };
    assert_eq!(
        s.reached_channels("app", &everyone, None, CH)
            .await
            .unwrap(),
        ids(&["legacy", CH])
    );
    assert_eq!(
        s.reached_channels("app", &everyone, Some("v1"), CH)
            .await
            .unwrap(),
        ids(&["v1"])
    );
    let m = send(&*s, everyone.clone()).await;
    let mut chans: Vec<_> = deliveries_of(&*s, m)
        .await
        .into_iter()
        .map(|d| (d.token, d.channel))
        .collect();
    chans.sort();
    assert_eq!(
        chans,
        [
            ("raw".into(), CH.into()),
            ("t1".into(), "legacy".into()),
            ("t2".into(), CH.into())
        ]
    );
    let mut forced = msg(600);
    forced.channel_override = Some("v1".into());
    s.insert_message(forced.clone(), &everyone).await.unwrap();
    assert!(
        deliveries_of(&*s, forced.id)
            .await
            .iter()
            .all(|d| d.channel == "v1")
    );
    assert_eq!(
        s.claim_due("app", "v1", secs(1), 100, LEASE)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.claim_due("app", "legacy", secs(1), 100, LEASE)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.claim_due("app", CH, secs(1), 100, LEASE)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        s.claim_due("other", CH, secs(1), 100, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn claims_are_leased_limited_and_fenced(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    let m = send(
        &*s,
        Targets {
            all: true,
            ..Default::default()
        },
    )
    .await;
    assert!(
        claim(&*s, secs(-1)).await.is_empty(),
        "nothing is due before acceptance"
    );
    let first = s.claim_due("app", CH, secs(1), 2, LEASE).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        first
            .iter()
            .all(|d| d.state == DeliveryState::InFlight && d.attempts == 1)
    );
    assert_eq!(first[0].lease_until, Some(secs(31)));
    assert_eq!(s.next_due("app", CH).await.unwrap(), Some(t0()));
    let rest = claim(&*s, secs(1)).await;
    assert_eq!(rest.len(), 1);
    assert!(claim(&*s, secs(30)).await.is_empty());
    assert_eq!(s.next_due("app", CH).await.unwrap(), Some(secs(31)));
    let stats = s.queue_stats(secs(30)).await.unwrap();
    assert_eq!((stats.pending, stats.due), (3, 0));
    // The lease runs out: the work is claimable again, under a new claim.
    let again = claim(&*s, secs(31)).await;
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.attempts == 2));
    // An answer for the old claim is ignored; one for the current claim is applied.
    let stale = delivered(&first[0]);
    assert_eq!(s.complete(vec![stale], secs(32)).await.unwrap(), 0);
    let current = again.iter().find(|d| d.id == first[0].id).unwrap();
    assert_eq!(
        s.complete(vec![delivered(current)], secs(32))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.complete(vec![delivered(current)], secs(32))
            .await
            .unwrap(),
        0
    );
    // Release hands back the others, undoing the claim's attempt; twice is a no-op.
    let back: Vec<Release> = again
        .iter()
        .filter(|d| d.id != current.id)
        .map(|d| Release {
            delivery_id: d.id,
            attempt: d.attempts,
        })
        .collect();
    assert_eq!(s.release(&back, secs(33)).await.unwrap(), 2);
    assert_eq!(s.release(&back, secs(33)).await.unwrap(), 0);
    let third = claim(&*s, secs(33)).await;
    assert_eq!(third.len(), 2);
    assert!(third.iter().all(|d| d.attempts == 2));
    let summary = s.message_summary(m).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::Sent), Some(&1));
    assert_eq!(summary.get(&DeliveryState::InFlight), Some(&2));
    s.complete(third.iter().map(delivered).collect(), secs(34))
        .await
        .unwrap();
    assert_eq!(s.next_due("app", CH).await.unwrap(), None);
    assert_eq!(s.queue_stats(secs(34)).await.unwrap().pending, 0);
    let page = s.list_deliveries(m, None, 10).await.unwrap();
    assert!(page.items.iter().all(|d| d.state == DeliveryState::Sent));
    assert_eq!(
        page.items[0].provider_message_id,
        Some(format!("p-{}", page.items[0].id))
    );
}

pub async fn concurrent_claimers_get_disjoint_deliveries(s: Arc<dyn Store>) {
    let batch: Vec<_> = (0..200)
        .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
        .collect();
    s.put_devices("app", batch, t0()).await.unwrap();
    send(
        &*s,
        Targets {
            all: true,
            ..Default::default()
        },
    )
    .await;
    let worker = |s: Arc<dyn Store>| async move {
        let mut got = Vec::new();
        loop {
            let batch = s.claim_due("app", CH, secs(1), 7, LEASE).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|d| d.id));
            tokio::task::yield_now().await;
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(worker(s.clone())),
        tokio::spawn(worker(s.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(!a.is_empty() || !b.is_empty());
    let mut all: Vec<i64> = a.iter().chain(b.iter()).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 200, "every delivery claimed once");
    assert_eq!(all.len(), 200, "no delivery claimed twice");
}

pub async fn rotated_rewrites_token_and_waiting_work(s: Arc<dyn Store>) {
    s.put_device("app", dev("d1", "old"), t0()).await.unwrap();
    send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    let d = claim(&*s, secs(1)).await.remove(0);
    let waiting = send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    s.complete(
        vec![done(
            &d,
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
    assert_eq!(d1.token.as_deref(), Some("new"));
    assert_eq!(d1.state, DeviceState::Active);
    let events = s.events_after("app", 0, 10, None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::TokenRotated);
    assert_eq!(events[0].device_id.as_deref(), Some("d1"));
    assert_eq!(events[0].data["old_token"], "old");
    assert_eq!(events[0].data["new_token"], "new");
    assert_eq!(events[0].data["retired"], false);
    let next = claim(&*s, secs(3)).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message_id, waiting);
    assert_eq!(next[0].token, "new");
}

pub async fn rotated_onto_a_held_token_retires_the_old_device(s: Arc<dyn Store>) {
    s.put_device("app", dev("d1", "old"), t0()).await.unwrap();
    s.put_device("app", dev("d2", "new"), t0()).await.unwrap();
    send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    let d = claim(&*s, secs(1)).await.remove(0);
    let waiting = send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    s.complete(
        vec![done(
            &d,
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
    assert_eq!(d1.token.as_deref(), Some("old"));
    assert_eq!(
        d1.invalid_reason.as_deref(),
        Some("canonical id held by d2")
    );
    let d2 = s.get_device("app", "d2").await.unwrap().unwrap();
    assert_eq!(
        (d2.state, d2.token.as_deref()),
        (DeviceState::Active, Some("new"))
    );
    let events = s
        .events_after("app", 0, 10, Some(EventKind::TokenRotated))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["held_by"], "d2");
    assert_eq!(events[0].data["retired"], true);
    assert_eq!(
        shape(&*s, waiting).await,
        [row("d1", "old", DeliveryState::TokenDead, "device_invalid")]
    );
}

pub async fn token_dead_invalidates_device_and_blocks_new_work(s: Arc<dyn Store>) {
    devices(&*s, 2).await;
    send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    let d = claim(&*s, secs(1)).await.remove(0);
    let waiting = send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    s.complete(
        vec![done(
            &d,
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
    let all = s.events_after("app", 0, 10, None).await.unwrap();
    let kinds: Vec<EventKind> = all.iter().map(|e| e.kind).collect();
    // The invalidation, this delivery's failure, then the waiting message it settled.
    assert_eq!(
        kinds,
        [
            EventKind::DeviceInvalidated,
            EventKind::DeliveryFailed,
            EventKind::DeliveryFailed
        ]
    );
    assert_eq!(all[1].data["delivery_id"], d.id);
    assert_eq!(all[1].data["state"], "token_dead");
    assert_eq!(all[1].data["reason"], "NotRegistered");
    assert_eq!(all[2].data["message_id"], waiting.to_string());
    assert_eq!(all[2].data["reason"], "device_invalid");
    let events = s
        .events_after("app", 0, 10, Some(EventKind::DeviceInvalidated))
        .await
        .unwrap();
    assert_eq!(events[0].device_id.as_deref(), Some("d1"));
    assert_eq!(events[0].data["reason"], "NotRegistered");
    assert_eq!(
        shape(&*s, waiting).await,
        [row("d1", "t1", DeliveryState::TokenDead, "device_invalid")]
    );
    // Broadcasts skip it from now on; naming it says why.
    let later = send(
        &*s,
        Targets {
            all: true,
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        shape(&*s, later).await,
        [
            row("d1", "t1", DeliveryState::TokenDead, "device_invalid"),
            row("d2", "t2", DeliveryState::Queued, ""),
        ]
    );
    // A raw token nobody registered gets an event without a device.
    let raw = send(
        &*s,
        Targets {
            tokens: ids(&["loose"]),
            ..Default::default()
        },
    )
    .await;
    let c = claim(&*s, secs(3)).await;
    let loose = c.iter().find(|d| d.message_id == raw).unwrap();
    s.complete(
        vec![done(
            loose,
            Outcome::TokenDead {
                reason: "InvalidRegistration".into(),
            },
        )],
        secs(4),
    )
    .await
    .unwrap();
    let after = all.last().unwrap().seq;
    let events = s.events_after("app", after, 10, None).await.unwrap();
    // Nobody held it: no invalidation, only the delivery's failure.
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::DeliveryFailed);
    assert_eq!(events[0].device_id, None);
    assert_eq!(events[0].data["token"], "loose");
}

pub async fn retry_waits_until_due_and_expires_past_deadline(s: Arc<dyn Store>) {
    devices(&*s, 2).await;
    let m = msg(100);
    s.insert_message(
        m.clone(),
        &Targets {
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let claimed = claim(&*s, secs(1)).await;
    assert_eq!(claimed.len(), 2);
    let mut wait = done(
        &claimed[0],
        Outcome::RetryLater {
            reason: "Unavailable".into(),
            after: None,
            scope: pushgate_proto::FailureScope::Token,
        },
    );
    wait.retry_at = Some(secs(50));
    let mut too_late = done(
        &claimed[1],
        Outcome::Throttled {
            reason: "DeviceMessageRateExceeded".into(),
            after: Some(Duration::from_secs(500)),
            scope: pushgate_proto::FailureScope::Token,
        },
    );
    too_late.retry_at = Some(secs(501));
    assert_eq!(s.complete(vec![wait, too_late], secs(2)).await.unwrap(), 2);
    let summary = s.message_summary(m.id).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::RetryWait), Some(&1));
    assert_eq!(summary.get(&DeliveryState::Expired), Some(&1));
    let expired = s
        .events_after("app", 0, 10, Some(EventKind::DeliveryFailed))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].data["state"], "expired");
    assert_eq!(expired[0].data["reason"], "DeviceMessageRateExceeded");
    assert_eq!(s.next_due("app", CH).await.unwrap(), Some(secs(50)));
    assert!(claim(&*s, secs(49)).await.is_empty());
    let retry = claim(&*s, secs(50)).await;
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 2);
    assert_eq!(retry[0].error_code.as_deref(), Some("Unavailable"));
    // Its lease runs out after the deadline: it expires instead of being claimed again.
    assert!(claim(&*s, secs(100)).await.is_empty());
    let summary = s.message_summary(m.id).await.unwrap();
    assert_eq!(summary.get(&DeliveryState::Expired), Some(&2));
    assert_eq!(s.queue_stats(secs(100)).await.unwrap().pending, 0);
}

pub async fn rejected_and_auth_failed_fail_with_events(s: Arc<dyn Store>) {
    devices(&*s, 2).await;
    let m = send(
        &*s,
        Targets {
            all: true,
            ..Default::default()
        },
    )
    .await;
    let c = claim(&*s, secs(1)).await;
    s.complete(
        vec![
            done(
                &c[0],
                Outcome::MessageRejected {
                    reason: "MessageTooBig".into(),
                },
            ),
            done(
                &c[1],
                Outcome::AuthFailed {
                    reason: "HTTP 401".into(),
                },
            ),
        ],
        secs(2),
    )
    .await
    .unwrap();
    assert_eq!(
        s.message_summary(m)
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
    assert_eq!(events[0].data["message_id"], m.to_string());
    assert_eq!(events[1].data["reason"], "HTTP 401");
    assert_eq!(events[1].device_id.as_deref(), Some("d2"));
    let failed = deliveries_of(&*s, m).await;
    assert_eq!(failed[0].error_code.as_deref(), Some("MessageTooBig"));
    assert!(claim(&*s, secs(3)).await.is_empty());
    // Devices stay active: the message was at fault, not the token.
    assert_eq!(
        s.get_device("app", "d1").await.unwrap().unwrap().state,
        DeviceState::Active
    );
}

pub async fn disabling_or_deleting_settles_waiting_work(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    let m = send(
        &*s,
        Targets {
            all: true,
            ..Default::default()
        },
    )
    .await;
    s.set_device_state("app", "d1", DeviceState::Disabled, None, secs(1))
        .await
        .unwrap();
    let mut off = dev("d2", "t2");
    off.state = Some(DeviceState::Disabled);
    s.put_device("app", off, secs(1)).await.unwrap();
    s.delete_device("app", "d3", secs(1)).await.unwrap();
    assert!(claim(&*s, secs(2)).await.is_empty());
    assert_eq!(
        shape(&*s, m).await,
        [
            row("d1", "t1", DeliveryState::Failed, "device_disabled"),
            row("d2", "t2", DeliveryState::Failed, "device_disabled"),
            row("d3", "t3", DeliveryState::Failed, "device_deleted"),
        ]
    );
}

pub async fn c2dm_flow_confirms_before_sending(s: Arc<dyn Store>) {
    let reg = |device: &str, registration: &str, secret: &str| C2dmRegistration {
        device_id: device.into(),
        registration_id: registration.into(),
        confirmation_token: secret.into(),
        channel: "c2dm".into(),
        message: msg(600),
    };
    let first = reg("phone-0001", "reg-1", "secret-1");
    let out = s.c2dm_register("app", first.clone(), t0()).await.unwrap();
    assert_eq!(
        (out.message_id, out.deliveries, out.queued),
        (first.message.id, 1, 1)
    );
    let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
    assert_eq!(device.token, None);
    assert!(!device.is_confirmed());
    assert_eq!(device.pending_token.as_deref(), Some("reg-1"));
    assert_eq!(device.channel.as_deref(), Some("c2dm"));
    // The confirmation message goes to the registration id; nothing else reaches the device.
    assert_eq!(
        shape(&*s, first.message.id).await,
        [row("phone-0001", "reg-1", DeliveryState::Queued, "")]
    );
    let broadcast = send(
        &*s,
        Targets {
            all: true,
            device_ids: ids(&["phone-0001"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        shape(&*s, broadcast).await,
        [row(
            "phone-0001",
            "",
            DeliveryState::Failed,
            "device_unconfirmed"
        )]
    );
    // Wrong and missing confirmations.
    assert_eq!(
        s.c2dm_confirm("app", "phone-0001", "secret-2", secs(1))
            .await
            .unwrap(),
        Confirmation::WrongToken
    );
    assert_eq!(
        s.c2dm_confirm("app", "phone-9999", "secret-1", secs(1))
            .await
            .unwrap(),
        Confirmation::NothingPending
    );
    assert_eq!(
        s.c2dm_confirm("other", "phone-0001", "secret-1", secs(1))
            .await
            .unwrap(),
        Confirmation::NothingPending
    );
    assert_eq!(
        s.c2dm_confirm("app", "phone-0001", "secret-1", secs(1))
            .await
            .unwrap(),
        Confirmation::Confirmed
    );
    let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
    assert_eq!(
        (device.token.as_deref(), device.pending_token.as_deref()),
        (Some("reg-1"), None)
    );
    assert_eq!(
        s.c2dm_confirm("app", "phone-0001", "secret-1", secs(2))
            .await
            .unwrap(),
        Confirmation::NothingPending
    );
    // A new registration id only replaces the confirmed one once it is confirmed too.
    s.c2dm_register("app", reg("phone-0001", "reg-2", "secret-3"), secs(3))
        .await
        .unwrap();
    let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
    assert_eq!(
        (device.token.as_deref(), device.pending_token.as_deref()),
        (Some("reg-1"), Some("reg-2"))
    );
    let now_reachable = send(
        &*s,
        Targets {
            device_ids: ids(&["phone-0001"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        shape(&*s, now_reachable).await,
        [row("phone-0001", "reg-1", DeliveryState::Queued, "")]
    );
    // Another device holding reg-2 loses it when phone-0001 confirms (proof of possession).
    s.put_device("app", dev("tablet", "reg-2"), secs(3))
        .await
        .unwrap();
    assert_eq!(
        s.c2dm_confirm("app", "phone-0001", "secret-3", secs(4))
            .await
            .unwrap(),
        Confirmation::Confirmed
    );
    let device = s.get_device("app", "phone-0001").await.unwrap().unwrap();
    assert_eq!(device.token.as_deref(), Some("reg-2"));
    let tablet = s.get_device("app", "tablet").await.unwrap().unwrap();
    assert_eq!(tablet.state, DeviceState::Invalid);
    // Work that was waiting for reg-1 follows the confirmed id.
    let queued: Vec<_> = deliveries_of(&*s, now_reachable).await;
    assert_eq!(queued[0].token, "reg-2");
}

pub async fn events_page_in_order(s: Arc<dyn Store>) {
    devices(&*s, 5).await;
    send(
        &*s,
        Targets {
            all: true,
            ..Default::default()
        },
    )
    .await;
    let c = claim(&*s, secs(1)).await;
    let results = c
        .iter()
        .map(|d| {
            done(
                d,
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
    assert_eq!(reasons, ["t1", "t2", "t3", "t4", "t5"]);
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
    assert!(
        s.events_after("app", 0, 10, Some(EventKind::TokenRotated))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn apps_and_channels_are_recorded(s: Arc<dyn Store>) {
    let apps = s.apps().await.unwrap();
    let names: Vec<_> = apps
        .iter()
        .map(|a| (a.name.as_str(), a.is_default))
        .collect();
    assert_eq!(names, [("app", true), ("other", false)]);
    s.upsert_app("other", true).await.unwrap();
    let apps = s.apps().await.unwrap();
    assert_eq!(apps.iter().filter(|a| a.is_default).count(), 1);
    assert!(apps.iter().find(|a| a.name == "other").unwrap().is_default);
    let ch = |name: &str, default: bool| ChannelRecord {
        name: name.into(),
        kind: "legacy".into(),
        is_default: default,
        endpoint: "http://127.0.0.1:1/gcm/send".into(),
        credential_ref: "env:KEY".into(),
        credential_fingerprint: "sha256:0011".into(),
    };
    s.sync_channels("app", &[ch("b", false), ch("a", true)], t0())
        .await
        .unwrap();
    assert_eq!(
        s.list_channels("app").await.unwrap(),
        [ch("a", true), ch("b", false)]
    );
    s.sync_channels("app", &[ch("c", true)], secs(1))
        .await
        .unwrap();
    assert_eq!(s.list_channels("app").await.unwrap(), [ch("c", true)]);
    assert!(s.list_channels("other").await.unwrap().is_empty());
    assert!(matches!(
        s.sync_channels("nope", &[], t0()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn every_final_failure_of_queued_work_is_an_event(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    let m = msg(10);
    s.insert_message(
        m.clone(),
        &Targets {
            all: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // d1 disabled while its work waits; d2's work outlives its TTL; d3 is sent.
    s.set_device_state("app", "d1", DeviceState::Disabled, None, secs(1))
        .await
        .unwrap();
    let c = s.claim_due("app", CH, secs(2), 1, LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    s.complete(vec![delivered(&c[0])], secs(3)).await.unwrap();
    assert!(
        s.claim_due("app", CH, secs(11), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let events = s
        .events_after("app", 0, 10, Some(EventKind::DeliveryFailed))
        .await
        .unwrap();
    let mut got: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e.device_id.clone().unwrap_or_default(),
                e.data["state"].as_str().unwrap().to_string(),
                e.data["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let sent_to = c[0].device_id.clone().unwrap();
    let expired_one = if sent_to == "d2" { "d3" } else { "d2" };
    assert_eq!(
        got,
        [
            (
                "d1".to_string(),
                "failed".to_string(),
                "device_disabled".to_string()
            ),
            (
                expired_one.to_string(),
                "expired".to_string(),
                "ttl_expired".to_string()
            ),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.data["message_id"] == m.id.to_string())
    );
    // The counts the metrics read agree with the message's summary.
    let counts = s.delivery_counts().await.unwrap();
    let summary = s.message_summary(m.id).await.unwrap();
    for (app, channel, state, n) in &counts {
        assert_eq!((app.as_str(), channel.as_str()), ("app", CH));
        assert_eq!(summary.get(state), Some(n), "{state}");
    }
    let by_kind = s.event_counts().await.unwrap();
    assert_eq!(by_kind, [("app".to_string(), EventKind::DeliveryFailed, 2)]);
    let (applied, latest) = s.schema_version().await.unwrap();
    assert_eq!(applied, latest);
}

pub async fn upstream_stanzas_are_recorded_once(s: Arc<dyn Store>) {
    devices(&*s, 1).await;
    send(
        &*s,
        Targets {
            device_ids: ids(&["d1"]),
            ..Default::default()
        },
    )
    .await;
    let c = claim(&*s, secs(1)).await;
    s.complete(
        vec![done(
            &c[0],
            Outcome::Delivered {
                message_id: "ccs-42".into(),
            },
        )],
        secs(2),
    )
    .await
    .unwrap();
    let upstream = UpstreamRecord {
        kind: EventKind::UpstreamMessage,
        from_token: Some("t1".into()),
        original_message_id: None,
        data: serde_json::json!({"from": "t1", "data": {"hello": "1"}}),
        dedup_key: "upstream:m-1".into(),
        require_link: false,
    };
    let first = s
        .record_upstream("app", upstream.clone(), secs(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.device_id.as_deref(), Some("d1"));
    assert_eq!(first.data["data"]["hello"], "1");
    assert!(
        s.record_upstream("app", upstream.clone(), secs(4))
            .await
            .unwrap()
            .is_none()
    );
    // The same stanza id in another app is another event.
    s.put_device("other", dev("o1", "t1"), t0()).await.unwrap();
    assert!(
        s.record_upstream("other", upstream, secs(4))
            .await
            .unwrap()
            .is_some()
    );
    let receipt = UpstreamRecord {
        kind: EventKind::DeliveryReceipt,
        from_token: Some("t1".into()),
        original_message_id: Some("ccs-42".into()),
        data: serde_json::json!({"status": "MESSAGE_SENT_TO_DEVICE"}),
        dedup_key: "receipt:r-0".into(),
        require_link: true,
    };
    // Linked or nothing: the answer naming ccs-43 is not committed yet.
    let early = UpstreamRecord {
        original_message_id: Some("ccs-43".into()),
        ..receipt.clone()
    };
    assert!(matches!(
        s.record_upstream("app", early.clone(), secs(5)).await,
        Err(StoreError::NotFound)
    ));
    let unlinked = UpstreamRecord {
        require_link: false,
        dedup_key: "receipt:r-9".into(),
        ..early
    };
    let e = s
        .record_upstream("app", unlinked, secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(e.data.get("delivery_id").is_none());
    let receipt = UpstreamRecord {
        dedup_key: "receipt:r-1".into(),
        ..receipt
    };
    let r = s
        .record_upstream("app", receipt, secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data["delivery_id"], c[0].id);
    assert_eq!(r.data["message"], c[0].message_id.to_string());
    assert_eq!(s.last_event_seq("app").await.unwrap(), r.seq);
    assert_eq!(s.count_events_after("app", first.seq).await.unwrap(), 2);
    assert_eq!(s.count_events_after("app", 0).await.unwrap(), 3);
    let stranger = UpstreamRecord {
        kind: EventKind::UpstreamMessage,
        from_token: Some("unknown-token".into()),
        original_message_id: None,
        data: serde_json::json!({}),
        dedup_key: "upstream:m-2".into(),
        require_link: false,
    };
    assert_eq!(
        s.record_upstream("app", stranger, secs(6))
            .await
            .unwrap()
            .unwrap()
            .device_id,
        None
    );
}

pub async fn webhook_cursors_are_leased_and_fenced(s: Arc<dyn Store>) {
    assert!(s.webhook_state("app").await.unwrap().is_none());
    s.webhook_init("app", 7, t0()).await.unwrap();
    s.webhook_init("app", 99, t0()).await.unwrap();
    let state = s.webhook_state("app").await.unwrap().unwrap();
    assert_eq!(
        (state.delivered_seq, state.attempts),
        (7, 0),
        "init keeps an existing cursor"
    );
    let a = s.webhook_claim("app", "a", secs(1), LEASE).await.unwrap();
    assert_eq!(a.unwrap().delivered_seq, 7);
    assert!(
        s.webhook_claim("app", "b", secs(2), LEASE)
            .await
            .unwrap()
            .is_none(),
        "leased to a"
    );
    assert!(
        s.webhook_failed("app", "a", "HTTP 500", secs(10), secs(3))
            .await
            .unwrap()
    );
    let failed = s.webhook_state("app").await.unwrap().unwrap();
    assert_eq!(
        (failed.attempts, failed.last_error.as_deref()),
        (1, Some("HTTP 500"))
    );
    assert_eq!(failed.next_attempt_at, secs(10));
    assert!(
        s.webhook_claim("app", "a", secs(5), LEASE)
            .await
            .unwrap()
            .is_none(),
        "not due yet"
    );
    // The lease ran out: b takes over; a's late answer is refused.
    let b = s.webhook_claim("app", "b", secs(40), LEASE).await.unwrap();
    assert!(b.is_some());
    assert!(!s.webhook_done("app", "a", 20, secs(41)).await.unwrap());
    assert!(s.webhook_done("app", "b", 12, secs(41)).await.unwrap());
    let done = s.webhook_state("app").await.unwrap().unwrap();
    assert_eq!(
        (done.delivered_seq, done.attempts, done.last_error),
        (12, 0, None)
    );
    // The cursor never moves back.
    assert!(s.webhook_done("app", "b", 9, secs(42)).await.unwrap());
    assert_eq!(
        s.webhook_state("app").await.unwrap().unwrap().delivered_seq,
        12
    );
}

pub async fn answers_racing_for_one_device_report_its_change_once(s: Arc<dyn Store>) {
    devices(&*s, 2).await;
    for _ in 0..3 {
        send(
            &*s,
            Targets {
                all: true,
                ..Default::default()
            },
        )
        .await;
    }
    let claimed = claim(&*s, secs(1)).await;
    assert_eq!(claimed.len(), 6);
    // Every in-flight copy for d1 comes back rotated, every copy for d2 dead.
    let answers = claimed
        .iter()
        .map(|d| {
            let outcome = if d.device_id.as_deref() == Some("d1") {
                Outcome::Rotated {
                    message_id: "p".into(),
                    new_token: "t1-new".into(),
                }
            } else {
                Outcome::TokenDead {
                    reason: "NotRegistered".into(),
                }
            };
            done(d, outcome)
        })
        .collect();
    assert_eq!(s.complete(answers, secs(2)).await.unwrap(), 6);
    let count = |kind| {
        let s = s.clone();
        async move {
            s.events_after("app", 0, 100, Some(kind))
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(EventKind::TokenRotated).await, 1);
    assert_eq!(count(EventKind::DeviceInvalidated).await, 1);
    assert_eq!(
        count(EventKind::DeliveryFailed).await,
        3,
        "each dead copy failed"
    );
    let d1 = s.get_device("app", "d1").await.unwrap().unwrap();
    assert_eq!(d1.token.as_deref(), Some("t1-new"));
}

pub async fn concurrent_inserts_each_get_their_own_answer(s: Arc<dyn Store>) {
    devices(&*s, 3).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = msg(600);
            // Every third pair of requests shares a key: one stored, one answered as a repeat.
            m.idempotency_key = Some(format!("k{}", i / 2));
            m.request_hash = Some(format!("h{}", i / 2));
            let target = format!("d{}", 1 + i % 3);
            let t = Targets {
                device_ids: vec![target],
                ..Default::default()
            };
            (m.id, s.insert_message(m, &t).await.unwrap())
        }));
    }
    let mut stored = std::collections::HashMap::new();
    let mut repeats = 0;
    for t in tasks {
        let (id, out) = t.await.unwrap();
        assert_eq!((out.deliveries, out.queued), (1, 1));
        if out.duplicate {
            assert!(out.same_request);
            repeats += 1;
        } else {
            assert_eq!(out.message_id, id, "a stored message answers its own id");
            stored.insert(id, ());
        }
    }
    assert_eq!((stored.len(), repeats), (30, 30));
    // A message that cannot be stored (unknown app) fails alone, whoever it is grouped with.
    let mut mixed = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        mixed.push(tokio::spawn(async move {
            let mut m = msg(600);
            if i % 5 == 0 {
                m.app = "nope".into();
            }
            let t = Targets {
                device_ids: ids(&["d1"]),
                ..Default::default()
            };
            (i % 5 == 0, s.insert_message(m, &t).await)
        }));
    }
    for t in mixed {
        match t.await.unwrap() {
            (true, r) => assert!(matches!(r, Err(StoreError::NotFound))),
            (false, r) => assert_eq!(r.unwrap().queued, 1),
        }
    }
    let claimed = claim(&*s, secs(1)).await;
    assert_eq!(claimed.len(), 30 + 16, "one delivery per stored message");
}

/// Generates one `#[tokio::test]` per contract case; `$make` is an async expression giving a
/// fresh `Arc<dyn Store>` with the apps `app` (default) and `other`.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@cases $make;
            devices_put_get_list_filters_and_pages,
            batch_put_is_one_transaction_in_order,
            second_device_takes_a_known_token_over,
            changed_token_carries_waiting_work,
            repeated_idempotency_key_stores_nothing_new,
            targets_expand_to_one_delivery_per_sendable_device,
            named_devices_that_cannot_be_sent_to_say_why,
            raw_tokens_are_sent_as_their_device,
            channels_follow_override_device_and_default,
            claims_are_leased_limited_and_fenced,
            concurrent_claimers_get_disjoint_deliveries,
            rotated_rewrites_token_and_waiting_work,
            rotated_onto_a_held_token_retires_the_old_device,
            token_dead_invalidates_device_and_blocks_new_work,
            retry_waits_until_due_and_expires_past_deadline,
            rejected_and_auth_failed_fail_with_events,
            disabling_or_deleting_settles_waiting_work,
            c2dm_flow_confirms_before_sending,
            events_page_in_order,
            apps_and_channels_are_recorded,
            every_final_failure_of_queued_work_is_an_event,
            upstream_stanzas_are_recorded_once,
            webhook_cursors_are_leased_and_fenced,
            answers_racing_for_one_device_report_its_change_once,
            concurrent_inserts_each_get_their_own_answer,
        );
    };
    (@cases $make:expr; $($case:ident,)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                contract::$case(store).await;
            }
        )+
    };
}
