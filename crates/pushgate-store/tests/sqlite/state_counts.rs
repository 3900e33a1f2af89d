//! (Part of the SQLite test binary, `tests/sqlite.rs`.) The kept counts (a message's deliveries by state, and the per-channel totals of settled
//! deliveries behind the metrics) stay equal to what the deliveries themselves say through
//! every change a delivery can go through: claims, plain and effectful answers, stale and
//! repeated answers, releases, and expiry of queued and of leased work. The counts are kept
//! by different means for different changes (set-based statements for changes into and out
//! of `in_flight`, triggers for the rest); each check here recounts the deliveries one by one
//! through the API.

use pushgate_testkit::sqlite::DbFile;
use std::collections::BTreeMap;
use std::time::Duration;

use pushgate_proto::outcome::{FailureScope, Outcome};
use pushgate_store::{
    Completion, Delivery, DeliveryState, DeviceState, NewDevice, NewMessage, Release, SqliteStore,
    Store, Targets,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::contract::deliveries_of;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    t0() + time::Duration::seconds(secs)
}

/// A message to `devices`, living `ttl_secs` from `t0`.
async fn send(store: &SqliteStore, devices: std::ops::Range<usize>, ttl_secs: i64) -> Uuid {
    let msg = NewMessage {
        id: Uuid::now_v7(),
        app: "app".into(),
        payload: serde_json::json!({"data": {"k": "v"}}),
        channel_override: None,
        default_channel: "main".into(),
        ttl_secs,
        idempotency_key: None,
        request_hash: None,
        created_at: t0(),
        channels: None,
    };
    let targets = Targets {
        device_ids: devices.map(|i| format!("d{i}")).collect(),
        ..Default::default()
    };
    store
        .insert_message(msg, &targets)
        .await
        .unwrap()
        .message_id
}

/// Checks the kept counts of `messages` against their deliveries, recounted.
async fn check_counts(store: &SqliteStore, messages: &[Uuid], step: &str) {
    let mut settled: BTreeMap<(String, String, DeliveryState), u64> = BTreeMap::new();
    for &message in messages {
        let mut by_state: BTreeMap<DeliveryState, u64> = BTreeMap::new();
        for d in deliveries_of(store, message).await {
            *by_state.entry(d.state).or_default() += 1;
            if d.state.is_final() {
                *settled.entry((d.app, d.channel, d.state)).or_default() += 1;
            }
        }
        let kept = store.message_summary(message).await.unwrap();
        let kept: BTreeMap<_, _> = kept.into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(kept, by_state, "summary of {message} after {step}");
    }
    let kept: BTreeMap<_, _> = store
        .delivery_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, _, _, n)| *n > 0)
        .map(|(app, channel, state, n)| ((app, channel, state), n))
        .collect();
    assert_eq!(kept, settled, "settled totals after {step}");
}

fn answer(d: &Delivery, outcome: Outcome) -> Completion {
    Completion {
        delivery_id: d.id,
        attempt: d.attempts,
        outcome,
        retry_at: None,
    }
}

fn delivered(d: &Delivery) -> Completion {
    answer(
        d,
        Outcome::Delivered {
            message_id: format!("m{}", d.id),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_counts_follow_every_change_of_state() {
    let db = DbFile::new();
    let store = SqliteStore::open(db.path()).await.unwrap();
    store.upsert_app("app", true).await.unwrap();
    let mut devices = Vec::new();
    for i in 0..40 {
        devices.push(NewDevice {
            device_id: format!("d{i}"),
            token: format!("t{i}"),
            ..Default::default()
        });
    }
    store.put_devices("app", devices, t0()).await.unwrap();
    // A device that cannot be sent to: its delivery is stored settled.
    store
        .set_device_state("app", "d39", DeviceState::Disabled, None, t0())
        .await
        .unwrap();
    let fan_out = send(&store, 0..40, 600).await;
    let short = send(&store, 0..10, 60).await;
    let messages = [fan_out, short];
    check_counts(&store, &messages, "the inserts").await;

    let lease = Duration::from_secs(30);
    // The fan-out's 39 sendable deliveries and 6 of the short message's.
    let mut claimed = store
        .claim_due("app", "main", t0(), 45, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 45);
    let leased_short = claimed.iter().filter(|d| d.message_id == short).count();
    assert_eq!(leased_short, 6);
    check_counts(&store, &messages, "a claim").await;

    // Plain answers, recorded together, with one stale answer (an older claim) among them.
    let plain: Vec<Delivery> = claimed.drain(..10).collect();
    let mut answers: Vec<Completion> = plain.iter().map(delivered).collect();
    let mut stale = delivered(&claimed[0]);
    stale.attempt -= 1;
    answers.push(stale);
    assert_eq!(store.complete(answers, at(1)).await.unwrap(), 10);
    check_counts(&store, &messages, "plain answers").await;

    // Answers with effects, recorded one by one: a dead token, a rotation, a retry, a
    // rejection; and a repeated answer (which sends the whole batch down that path).
    let effectful: Vec<Delivery> = claimed.drain(..5).collect();
    let answers = vec![
        answer(
            &effectful[0],
            Outcome::TokenDead {
                reason: "NotRegistered".into(),
            },
        ),
        answer(
            &effectful[1],
            Outcome::Rotated {
                message_id: "m".into(),
                new_token: "fresh".into(),
            },
        ),
        answer(
            &effectful[2],
            Outcome::RetryLater {
                reason: "Unavailable".into(),
                after: None,
                scope: FailureScope::Token,
            },
        ),
        answer(
            &effectful[3],
            Outcome::MessageRejected {
                reason: "MessageTooBig".into(),
            },
        ),
        delivered(&effectful[4]),
        delivered(&effectful[4]),
    ];
    assert_eq!(store.complete(answers, at(2)).await.unwrap(), 5);
    check_counts(&store, &messages, "answers with effects").await;

    // A release hands work back; releasing it twice changes nothing the second time.
    let releases: Vec<Release> = claimed
        .drain(..4)
        .map(|d| Release {
            delivery_id: d.id,
            attempt: d.attempts,
        })
        .collect();
    assert_eq!(store.release(&releases, at(3)).await.unwrap(), 4);
    assert_eq!(store.release(&releases, at(3)).await.unwrap(), 0);
    check_counts(&store, &messages, "releases").await;

    // Past the short message's deadline, with the leases run out: its due work expires,
    // both what was never claimed and what was leased and never answered.
    let later = store
        .claim_due("app", "main", at(90), 100, lease)
        .await
        .unwrap();
    assert!(later.iter().all(|d| d.message_id == fan_out));
    let short_states: Vec<DeliveryState> = deliveries_of(&store, short)
        .await
        .into_iter()
        .map(|d| d.state)
        .collect();
    assert!(
        short_states.iter().all(|s| s.is_final()),
        "{short_states:?}"
    );
    assert_eq!(
        short_states
            .iter()
            .filter(|s| **s == DeliveryState::Expired)
            .count(),
        10,
        "{short_states:?}"
    );
    check_counts(&store, &messages, "expiry").await;

    // Everything left is answered; every delivery of both messages is then settled.
    let answers: Vec<Completion> = later.iter().map(delivered).collect();
    store.complete(answers, at(91)).await.unwrap();
    check_counts(&store, &messages, "the last answers").await;
    let summary = store.message_summary(fan_out).await.unwrap();
    let pending: u64 = summary
        .iter()
        .filter(|(s, _)| !s.is_final())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(pending, 0, "{summary:?}");
}
