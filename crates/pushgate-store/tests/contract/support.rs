//! Helpers the contract's cases share: fixed times, sample devices and messages, and short
//! ways to send, claim and look at deliveries.

use std::time::Duration;

use pushgate_proto::outcome::Outcome;
use pushgate_store::{Completion, Delivery, DeliveryState, NewDevice, NewMessage, Store, Targets};
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
        channels: None,
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

pub fn row(
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

/// Targets naming these devices by id.
pub fn to_devices(list: &[&str]) -> Targets {
    Targets {
        device_ids: ids(list),
        ..Default::default()
    }
}

/// A delivery to `device` claimed (in flight) with a second message to it waiting behind:
/// the claimed delivery, and the waiting message's id.
pub async fn claimed_with_one_waiting(s: &dyn Store, device: &str) -> (Delivery, Uuid) {
    send(s, to_devices(&[device])).await;
    let d = claim(s, secs(1)).await.remove(0);
    let waiting = send(s, to_devices(&[device])).await;
    (d, waiting)
}

/// Records the provider's `outcome` for `d`, at 2 s.
pub async fn answer(s: &dyn Store, d: &Delivery, outcome: Outcome) {
    s.complete(vec![done(d, outcome)], secs(2)).await.unwrap();
}

/// What a backend's `break_expansion` runs (bound to the message id) to make a kept audience
/// unreadable, for [`a_broken_fanout_is_given_up_and_its_app_goes_on`].
pub const BREAK_EXPANSION: &str = "UPDATE messages SET expansion = '{not json' WHERE id = $1";

/// On a store whose fan-out chunk is 3 devices: a fan-out to eight devices whose kept audience
/// `break_expansion` then makes unreadable (in the backend's own SQL) does not stop its app:
/// the claim hands out the first chunk's due work and gives up the rest of the broken
/// fan-out, so a later fan-out of the app is expanded by the next claim; the fan-out task
/// gives up a broken message too and stores the next one's chunk.
pub async fn a_broken_fanout_is_given_up_and_its_app_goes_on(
    s: &dyn Store,
    break_expansion: impl AsyncFn(Uuid),
) {
    devices(s, 8).await;
    let everyone = Targets {
        all: true,
        ..Default::default()
    };
    // Each fan-out accepted a millisecond after the one before: claims and the fan-out task
    // take the oldest first.
    let fanout = async |s: &dyn Store, nth: i64| {
        let mut m = msg(600);
        m.created_at = t0() + time::Duration::milliseconds(nth);
        assert!(
            s.insert_message(m.clone(), &everyone)
                .await
                .unwrap()
                .expanding
        );
        m.id
    };
    let broken = fanout(s, 1).await;
    break_expansion(broken).await;
    let claimed = s.claim_due("app", CH, secs(1), 1000, LEASE).await.unwrap();
    let got: Vec<_> = claimed
        .iter()
        .map(|d| (d.message_id, d.device_id.clone().unwrap()))
        .collect();
    let first_chunk: Vec<_> = ["d1", "d2", "d3"]
        .iter()
        .map(|d| (broken, d.to_string()))
        .collect();
    assert_eq!(got, first_chunk);
    let stored = s.get_message(broken).await.unwrap().unwrap();
    assert_eq!((stored.deliveries, stored.expanding), (3, false));
    // The app's next fan-out is no longer held behind it: one claim takes all of it.
    let next = fanout(s, 2).await;
    let claimed = s.claim_due("app", CH, secs(2), 1000, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 8, "{claimed:?}");
    assert!(claimed.iter().all(|d| d.message_id == next), "{claimed:?}");
    // The fan-out task, too, gives up a broken message and goes on with the next.
    let broken = fanout(s, 3).await;
    break_expansion(broken).await;
    let next = fanout(s, 4).await;
    let step = s.expand_audience(secs(3), None).await.unwrap().unwrap();
    assert_eq!((step.message_id, step.stored), (next, 3));
    assert!(!s.get_message(broken).await.unwrap().unwrap().expanding);
}
