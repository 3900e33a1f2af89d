//! Provider answers that end a delivery: dead tokens (and the registry effect), rejected
//! messages and refused credentials.

use super::*;

contract_cases! {
    async fn token_dead_invalidates_device_and_blocks_new_work(s: Arc<dyn Store>) {
        devices(&*s, 2).await;
        let (d, waiting) = claimed_with_one_waiting(&*s, "d1").await;
        answer(&*s, &d, Outcome::TokenDead {
                    reason: "NotRegistered".into(),
                },).await;
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

    async fn rejected_and_auth_failed_fail_with_events(s: Arc<dyn Store>) {
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
}
