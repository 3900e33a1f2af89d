//! Storing messages: idempotency keys, the channel each delivery uses (and the channels an
//! insert reports and may use), and concurrent inserts (the group commit) each getting their
//! own answer.

use super::*;

contract_cases! {
    async fn repeated_idempotency_key_stores_nothing_new(s: Arc<dyn Store>) {
        devices(&*s, 3).await;
        let mut first = msg(60);
        first.idempotency_key = Some("k1".into());
        first.request_hash = Some("h1".into());
        let two = to_devices(&["d1", "d2"]);
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
        // A stored message without deliveries has an empty summary (not NotFound).
        assert!(s.message_summary(a.message_id).await.unwrap().is_empty());
        assert!(s.list_deliveries(a.message_id, None, 10).await.unwrap().items.is_empty());
    }

    async fn channels_follow_override_device_and_default(s: Arc<dyn Store>) {
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

    async fn concurrent_inserts_each_get_their_own_answer(s: Arc<dyn Store>) {
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
                let t = to_devices(&["d1"]);
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

    async fn an_insert_reports_the_channels_it_queued_on(s: Arc<dyn Store>) {
        let mut legacy = dev("d1", "t1");
        legacy.channel = Some("legacy".into());
        s.put_device("app", legacy, t0()).await.unwrap();
        s.put_device("app", dev("d2", "t2"), t0()).await.unwrap();
        let queued_on = |targets: Targets, channel_override: Option<&str>| {
            let s = s.clone();
            let mut m = msg(600);
            m.channel_override = channel_override.map(str::to_string);
            async move { s.insert_message(m, &targets).await.unwrap().queued_channels }
        };
        assert_eq!(queued_on(to_devices(&["d1"]), None).await, ids(&["legacy"]));
        assert_eq!(queued_on(to_devices(&["d2"]), None).await, ids(&[CH]));
        assert_eq!(
            queued_on(to_devices(&["d2", "d1", "unknown"]), None).await,
            ids(&["legacy", CH])
        );
        assert_eq!(
            queued_on(to_devices(&["d1"]), Some("v1")).await,
            ids(&["v1"])
        );
        let raw = Targets {
            tokens: ids(&["t1", "raw"]),
            ..Default::default()
        };
        assert_eq!(queued_on(raw, None).await, ids(&["legacy", CH]));
        let everyone = Targets {
            all: true,
            ..Default::default()
        };
        assert_eq!(queued_on(everyone, None).await, ids(&["legacy", CH]));
        // Nothing queued, nothing to wake: an unknown device, a repeated key.
        assert!(queued_on(to_devices(&["unknown"]), None).await.is_empty());
        let mut first = msg(600);
        first.idempotency_key = Some("k".into());
        s.insert_message(first, &to_devices(&["d2"])).await.unwrap();
        let mut repeat = msg(600);
        repeat.idempotency_key = Some("k".into());
        let again = s.insert_message(repeat, &to_devices(&["d2"])).await.unwrap();
        assert!(again.duplicate && again.queued_channels.is_empty());
    }

    async fn a_delivery_outside_the_message_channels_refuses_it_alone(s: Arc<dyn Store>) {
        let mut legacy = dev("d1", "t1");
        legacy.channel = Some("legacy".into());
        s.put_device("app", legacy, t0()).await.unwrap();
        s.put_device("app", dev("d2", "t2"), t0()).await.unwrap();
        let listed = || {
            let mut m = msg(600);
            m.channels = Some(ids(&[CH, "v1"]));
            m
        };
        let refused = listed();
        let r = s.insert_message(refused.clone(), &to_devices(&["d2", "d1"])).await;
        assert!(
            matches!(&r, Err(StoreError::UnlistedChannel(c)) if c == "legacy"),
            "{r:?}"
        );
        assert!(s.get_message(refused.id).await.unwrap().is_none(), "nothing stored");
        let by_token = Targets {
            tokens: ids(&["t1"]),
            ..Default::default()
        };
        assert!(matches!(
            s.insert_message(listed(), &by_token).await,
            Err(StoreError::UnlistedChannel(_))
        ));
        // An override on a listed channel, a failed delivery and a listed device are kept.
        let mut forced = listed();
        forced.channel_override = Some("v1".into());
        assert_eq!(s.insert_message(forced, &to_devices(&["d1"])).await.unwrap().queued, 1);
        let unknown = s.insert_message(listed(), &to_devices(&["nope"])).await.unwrap();
        assert_eq!((unknown.deliveries, unknown.queued), (1, 0));
        // Among concurrent single-device messages (stored together), only the refused fail.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            let m = listed();
            tasks.push(tokio::spawn(async move {
                let device = if i % 4 == 0 { "d1" } else { "d2" };
                (device, m.id, s.insert_message(m, &to_devices(&[device])).await)
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                ("d1", id, r) => {
                    assert!(matches!(r, Err(StoreError::UnlistedChannel(_))), "{r:?}");
                    assert!(s.get_message(id).await.unwrap().is_none());
                }
                (_, _, r) => assert_eq!(r.unwrap().queued_channels, ids(&[CH])),
            }
        }
        assert_eq!(claim(&*s, secs(1)).await.len(), 15);
        assert!(
            s.claim_due("app", "legacy", secs(1), 100, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.claim_due("app", "v1", secs(1), 100, LEASE).await.unwrap().len(),
            1
        );
    }

    async fn a_mixed_burst_of_single_device_messages_is_answered_as_if_each_were_alone(
        s: Arc<dyn Store>
    ) {
        for (id, token) in [("on", "t-on"), ("off", "t-off"), ("dead", "t-dead")] {
            s.put_device("app", dev(id, token), t0()).await.unwrap();
        }
        s.set_device_state("app", "off", DeviceState::Disabled, None, t0())
            .await
            .unwrap();
        s.set_device_state("app", "dead", DeviceState::Invalid, Some("NotRegistered"), t0())
            .await
            .unwrap();
        // The first message under the key `k` is stored before the burst, so that which of
        // the burst's repeats comes first does not matter.
        let mut first = msg(600);
        first.idempotency_key = Some("k".into());
        first.request_hash = Some("h1".into());
        let first_id = first.id;
        assert!(!s.insert_message(first, &to_devices(&["on"])).await.unwrap().duplicate);
        let kinds = [
            Burst::Sendable,
            Burst::Unknown,
            Burst::Disabled,
            Burst::Invalid,
            Burst::Repeat,
            Burst::Reused,
        ];
        let start = Arc::new(tokio::sync::Barrier::new(100));
        let mut tasks = Vec::new();
        for i in 0..100 {
            let (s, start) = (s.clone(), start.clone());
            let kind = kinds[i % kinds.len()];
            tasks.push(tokio::spawn(async move {
                let mut m = msg(600);
                let device = match kind {
                    Burst::Unknown => format!("nobody-{i}"),
                    Burst::Disabled => "off".to_string(),
                    Burst::Invalid => "dead".to_string(),
                    _ => "on".to_string(),
                };
                if let Burst::Repeat | Burst::Reused = kind {
                    m.idempotency_key = Some("k".into());
                    m.request_hash =
                        Some(if let Burst::Repeat = kind { "h1" } else { "h2" }.into());
                }
                let id = m.id;
                start.wait().await;
                let out = s.insert_message(m, &to_devices(&[&device])).await.unwrap();
                (kind, id, out)
            }));
        }
        for task in tasks {
            let (kind, id, out) = task.await.unwrap();
            if let Burst::Repeat | Burst::Reused = kind {
                assert!(out.duplicate, "{kind:?}: {out:?}");
                assert_eq!(out.message_id, first_id, "{kind:?}");
                assert_eq!(out.same_request, matches!(kind, Burst::Repeat), "{kind:?}");
                assert_eq!((out.deliveries, out.queued), (1, 1), "{kind:?}");
                assert!(s.get_message(id).await.unwrap().is_none(), "{kind:?}");
                continue;
            }
            assert!(!out.duplicate, "{kind:?}: {out:?}");
            assert_eq!(out.message_id, id);
            let queued = u64::from(matches!(kind, Burst::Sendable));
            assert_eq!((out.deliveries, out.queued), (1, queued), "{kind:?}");
            let (state, error) = match kind {
                Burst::Sendable => (DeliveryState::Queued, None),
                Burst::Unknown => (DeliveryState::Failed, Some("unknown_device")),
                Burst::Invalid => (DeliveryState::TokenDead, Some("device_invalid")),
                _ => (DeliveryState::Failed, Some("device_disabled")),
            };
            let stored = deliveries_of(&*s, id).await;
            assert_eq!(stored.len(), 1, "{kind:?}");
            assert_eq!(
                (stored[0].state, stored[0].error_code.as_deref()),
                (state, error),
                "{kind:?}"
            );
            let summary = s.message_summary(id).await.unwrap();
            assert_eq!(summary.get(&state).copied(), Some(1), "{kind:?}");
        }
    }
}

/// What one caller of the mixed burst above sends, and so what it must be answered.
#[derive(Clone, Copy, Debug)]
enum Burst {
    /// To an active device: one queued delivery.
    Sendable,
    /// To a device id nobody registered: one delivery failed with `unknown_device`.
    Unknown,
    /// To a disabled device: one delivery failed with `device_disabled`.
    Disabled,
    /// To a device whose token was found dead: one delivery `token_dead`, `device_invalid`.
    Invalid,
    /// A repeat of the idempotency key `k`, with the same request.
    Repeat,
    /// A repeat of the idempotency key `k` with another request.
    Reused,
}
