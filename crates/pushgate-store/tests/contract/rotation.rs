//! Canonical ids: rewriting a device's token, retiring it when the new token is held, and
//! reporting a change once when answers race.

use super::*;

contract_cases! {
    async fn rotated_rewrites_token_and_waiting_work(s: Arc<dyn Store>) {
        s.put_device("app", dev("d1", "old"), t0()).await.unwrap();
        let (d, waiting) = claimed_with_one_waiting(&*s, "d1").await;
        answer(&*s, &d, Outcome::Rotated {
                    message_id: "p".into(),
                    new_token: "new".into(),
                },).await;
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

    async fn rotated_onto_a_held_token_retires_the_old_device(s: Arc<dyn Store>) {
        s.put_device("app", dev("d1", "old"), t0()).await.unwrap();
        s.put_device("app", dev("d2", "new"), t0()).await.unwrap();
        let (d, waiting) = claimed_with_one_waiting(&*s, "d1").await;
        answer(&*s, &d, Outcome::Rotated {
                    message_id: "p".into(),
                    new_token: "new".into(),
                },).await;
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

    async fn answers_racing_for_one_device_report_its_change_once(s: Arc<dyn Store>) {
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
}
