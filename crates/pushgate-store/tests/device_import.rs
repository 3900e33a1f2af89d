//! The SQLite store's import of new devices in one statement keeps every field the one-by-one
//! path stores (labels normalized, user, channel, version, state), and a batch it cannot take
//! (a device that exists already) still gets the full rules.

use pushgate_store::{DeviceState, NewDevice, NewMessage, SqliteStore, Store, Targets};
use time::OffsetDateTime;
use uuid::Uuid;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn device(id: &str, token: &str, tags: &[&str], topics: &[&str]) -> NewDevice {
    NewDevice {
        device_id: id.into(),
        token: token.into(),
        channel: None,
        user: None,
        tags: strings(tags),
        topics: strings(topics),
        app_version: None,
        state: None,
    }
}

fn message() -> NewMessage {
    NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
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

/// The device ids a message to `targets` gets a queued delivery for, sorted.
async fn reached(s: &SqliteStore, targets: Targets) -> Vec<String> {
    let m = message();
    let id = m.id;
    s.insert_message(m, &targets).await.unwrap();
    let page = s.list_deliveries(id, None, 100).await.unwrap();
    let mut ids: Vec<String> = page
        .items
        .iter()
        .filter(|d| d.state == pushgate_store::DeliveryState::Queued)
        .filter_map(|d| d.device_id.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_first_import_keeps_every_field_and_label() {
    let s = SqliteStore::open_in_memory().await.unwrap();
    s.upsert_app("app", true).await.unwrap();
    let mut a = device("a", "ta", &["red", "blue", "red"], &["news"]);
    a.user = Some("u1".into());
    a.channel = Some("legacy".into());
    a.app_version = Some("2.1".into());
    let b = device("b", "tb", &["blue"], &[]);
    let mut c = device("c", "tc", &[], &["news", "sport"]);
    c.state = Some(DeviceState::Disabled);
    let out = s.put_devices("app", vec![a, b, c], t0()).await.unwrap();
    assert!(out.iter().all(|p| p.created && p.took_over_from.is_none()));

    let got = s.get_device("app", "a").await.unwrap().unwrap();
    assert_eq!(got.token.as_deref(), Some("ta"));
    assert_eq!(got.tags, strings(&["blue", "red"]));
    assert_eq!(got.topics, strings(&["news"]));
    assert_eq!(got.user.as_deref(), Some("u1"));
    assert_eq!(got.channel.as_deref(), Some("legacy"));
    assert_eq!(got.app_version.as_deref(), Some("2.1"));
    assert_eq!(got.state, DeviceState::Active);
    let got = s.get_device("app", "c").await.unwrap().unwrap();
    assert_eq!(got.state, DeviceState::Disabled);
    assert_eq!(got.topics, strings(&["news", "sport"]));

    let by_tag = Targets {
        tags: strings(&["blue"]),
        ..Default::default()
    };
    assert_eq!(reached(&s, by_tag).await, strings(&["a", "b"]));
    // c is disabled: subscribed, but not reached.
    let by_topic = Targets {
        topic: Some("news".into()),
        ..Default::default()
    };
    assert_eq!(reached(&s, by_topic).await, strings(&["a"]));
    let by_user = Targets {
        users: strings(&["u1"]),
        ..Default::default()
    };
    assert_eq!(reached(&s, by_user).await, strings(&["a"]));
}

#[tokio::test]
async fn a_batch_with_a_known_device_or_a_held_token_gets_the_full_rules() {
    let s = SqliteStore::open_in_memory().await.unwrap();
    s.upsert_app("app", true).await.unwrap();
    s.put_devices(
        "app",
        vec![device("a", "ta", &["x"], &[]), device("b", "tb", &[], &[])],
        t0(),
    )
    .await
    .unwrap();

    // "a" exists (re-registered with a new token and no tag); "n" is new.
    let out = s
        .put_devices(
            "app",
            vec![device("a", "ta2", &[], &[]), device("n", "tn", &[], &[])],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|p| p.created).collect::<Vec<_>>(),
        [false, true]
    );
    let a = s.get_device("app", "a").await.unwrap().unwrap();
    assert_eq!(a.token.as_deref(), Some("ta2"));
    assert!(a.tags.is_empty());

    // A new device with b's token takes it over: b is retired.
    let out = s
        .put_devices(
            "app",
            vec![device("m", "tb", &[], &[]), device("o", "to", &[], &[])],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(out[0].took_over_from.as_deref(), Some("b"));
    assert!(out[0].created && out[1].created);
    let b = s.get_device("app", "b").await.unwrap().unwrap();
    assert_eq!(b.state, DeviceState::Invalid);
}
