//! Expanding a message's targets to deliveries: audiences, named devices, raw tokens.

use super::*;

contract_cases! {
    async fn targets_expand_to_one_delivery_per_sendable_device(s: Arc<dyn Store>) {
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

    async fn named_devices_that_cannot_be_sent_to_say_why(s: Arc<dyn Store>) {
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
                &to_devices(&["d1", "d2", "d3", "ghost", "ghost"]),
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

    async fn raw_tokens_are_sent_as_their_device(s: Arc<dyn Store>) {
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
}
