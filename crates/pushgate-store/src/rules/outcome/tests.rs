//! The outcome rules, one answer kind at a time.

use super::*;
use crate::model::EventKind;
use pushgate_proto::FailureScope;
use std::time::Duration;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    now() + time::Duration::seconds(secs)
}

fn delivery() -> DeliveryRef {
    DeliveryRef {
        delivery_id: 1,
        message_id: uuid::Uuid::nil(),
        device_id: Some("d1".into()),
        token: "old".into(),
    }
}

fn holders(answered: Option<&str>, new: Option<&str>) -> TokenHolders {
    TokenHolders {
        of_answered_token: answered.map(str::to_string),
        of_new_token: new.map(str::to_string),
    }
}

fn retry(reason: &str) -> Outcome {
    Outcome::RetryLater {
        reason: reason.into(),
        after: Some(Duration::from_secs(5)),
        scope: FailureScope::Token,
    }
}

fn rotated(new_token: &str) -> Outcome {
    Outcome::Rotated {
        message_id: "p-1".into(),
        new_token: new_token.into(),
    }
}

fn kinds(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Event(ev) => format!("event {}", ev.kind.as_str()),
            Effect::Retire(r) => format!("retire {} ({})", r.device_id, r.reason),
            Effect::ChangeToken {
                device_id,
                new_token,
            } => format!("token {device_id} -> {new_token}"),
        })
        .collect()
}

#[test]
fn each_outcome_settles_its_delivery() {
    let sent = Outcome::Delivered {
        message_id: "p".into(),
    };
    let dead = Outcome::TokenDead {
        reason: "NotRegistered".into(),
    };
    let rejected = Outcome::MessageRejected {
        reason: "MessageTooBig".into(),
    };
    let auth = Outcome::AuthFailed {
        reason: "401".into(),
    };
    let cases = [
        (sent, DeliveryState::Sent),
        (rotated("new"), DeliveryState::Sent),
        (dead, DeliveryState::TokenDead),
        (rejected, DeliveryState::Failed),
        (auth, DeliveryState::Failed),
    ];
    for (outcome, state) in cases {
        let s = settle(&outcome, Some(at(5)), Some(at(60)), now());
        assert_eq!(
            s,
            Settlement {
                state,
                due_at: None
            },
            "{outcome:?}"
        );
    }
}

#[test]
fn retriable_answers_wait_until_retry_at_before_the_deadline() {
    for outcome in [
        retry("Unavailable"),
        Outcome::Throttled {
            reason: "DeviceMessageRateExceeded".into(),
            after: None,
            scope: FailureScope::Token,
        },
    ] {
        let waits = settle(&outcome, Some(at(5)), Some(at(60)), now());
        assert_eq!(waits.state, DeliveryState::RetryWait);
        assert_eq!(waits.due_at, Some(at(5)));
        let at_once = settle(&outcome, None, Some(at(60)), now());
        assert_eq!(at_once.due_at, Some(now()), "no backoff: due now");
    }
}

#[test]
fn a_retry_not_before_the_deadline_expires_the_work() {
    let o = retry("Unavailable");
    for deadline in [Some(at(5)), Some(at(4)), None] {
        let s = settle(&o, Some(at(5)), deadline, now());
        assert_eq!(s.state, DeliveryState::Expired, "{deadline:?}");
        assert_eq!(s.due_at, None);
    }
    let effects = effects(
        &o,
        DeliveryState::Expired,
        &delivery(),
        &holders(None, None),
    );
    let [Effect::Event(e)] = effects.as_slice() else {
        panic!("one event expected: {effects:?}");
    };
    assert_eq!(e.kind, EventKind::DeliveryFailed);
    assert_eq!(
        (&e.data["state"], &e.data["outcome"], &e.data["reason"]),
        (
            &"expired".into(),
            &"retry_later".into(),
            &"Unavailable".into()
        )
    );
}

#[test]
fn a_waiting_retry_and_a_delivery_have_no_effects() {
    let waiting = effects(
        &retry("Unavailable"),
        DeliveryState::RetryWait,
        &delivery(),
        &holders(Some("d1"), None),
    );
    assert!(waiting.is_empty());
    let sent = Outcome::Delivered {
        message_id: "p".into(),
    };
    assert!(!holders_needed(&sent, "old").answered_token);
    assert!(
        effects(
            &sent,
            DeliveryState::Sent,
            &delivery(),
            &holders(None, None)
        )
        .is_empty()
    );
}

#[test]
fn rejected_and_auth_failed_report_a_failure() {
    for (outcome, label) in [
        (
            Outcome::MessageRejected {
                reason: "MessageTooBig".into(),
            },
            "message_rejected",
        ),
        (
            Outcome::AuthFailed {
                reason: "401".into(),
            },
            "auth_failed",
        ),
    ] {
        let out = effects(
            &outcome,
            DeliveryState::Failed,
            &delivery(),
            &holders(None, None),
        );
        let [Effect::Event(e)] = out.as_slice() else {
            panic!("one event expected: {out:?}");
        };
        assert_eq!(e.data["state"], "failed");
        assert_eq!(e.data["outcome"], label);
    }
}

#[test]
fn a_dead_token_invalidates_then_fails_then_retires_its_live_device() {
    let dead = Outcome::TokenDead {
        reason: "NotRegistered".into(),
    };
    let lookup = holders_needed(&dead, "old");
    assert_eq!(
        lookup,
        HolderLookup {
            answered_token: true,
            new_token: None
        }
    );
    let live = effects(
        &dead,
        DeliveryState::TokenDead,
        &delivery(),
        &holders(Some("d1"), None),
    );
    assert_eq!(
        kinds(&live),
        [
            "event device_invalidated",
            "event delivery_failed",
            "retire d1 (NotRegistered)"
        ]
    );
    let gone = effects(
        &dead,
        DeliveryState::TokenDead,
        &delivery(),
        &holders(None, None),
    );
    assert_eq!(kinds(&gone), ["event delivery_failed"]);
}

#[test]
fn a_canonical_id_moves_the_device_to_the_new_token() {
    let o = rotated("new");
    assert_eq!(
        holders_needed(&o, "old"),
        HolderLookup {
            answered_token: true,
            new_token: Some("new")
        }
    );
    let out = effects(
        &o,
        DeliveryState::Sent,
        &delivery(),
        &holders(Some("d1"), None),
    );
    assert_eq!(kinds(&out), ["event token_rotated", "token d1 -> new"]);
    let Effect::Event(e) = &out[0] else {
        unreachable!()
    };
    assert_eq!(e.data["retired"], false);
    assert_eq!(e.device_id.as_deref(), Some("d1"));
}

#[test]
fn a_canonical_id_another_device_holds_retires_the_old_device() {
    let out = effects(
        &rotated("new"),
        DeliveryState::Sent,
        &delivery(),
        &holders(Some("d1"), Some("d2")),
    );
    assert_eq!(
        kinds(&out),
        ["event token_rotated", "retire d1 (canonical id held by d2)"]
    );
    let Effect::Event(e) = &out[0] else {
        unreachable!()
    };
    assert_eq!(e.data["held_by"], "d2");
}

#[test]
fn a_canonical_id_already_applied_or_unchanged_does_nothing() {
    let applied = effects(
        &rotated("new"),
        DeliveryState::Sent,
        &delivery(),
        &holders(None, Some("d1")),
    );
    assert!(applied.is_empty(), "{applied:?}");
    let same = rotated("old");
    assert!(!holders_needed(&same, "old").answered_token);
    assert!(
        effects(
            &same,
            DeliveryState::Sent,
            &delivery(),
            &holders(None, None)
        )
        .is_empty()
    );
}

#[test]
fn a_canonical_id_for_an_unregistered_token_is_reported_only() {
    let out = effects(
        &rotated("new"),
        DeliveryState::Sent,
        &delivery(),
        &holders(None, None),
    );
    assert_eq!(kinds(&out), ["event token_rotated"]);
}
