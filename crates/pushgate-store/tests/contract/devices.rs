//! Device registration: put, batch put, listing and filters, token take-over, and what
//! happens to waiting work when a device changes or goes.

use super::*;

contract_cases! {
    async fn devices_put_get_list_filters_and_pages(s: Arc<dyn Store>) {
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

    async fn batch_put_is_one_transaction_in_order(s: Arc<dyn Store>) {
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

    async fn a_batch_stores_every_field_as_single_puts_do(s: Arc<dyn Store>) {
        // The same devices, once as a batch of new devices (app) and once one by one
        // (other): every field, label and filter must agree.
        let full = |i: usize| {
            let mut d = dev(&format!("b{i}"), &format!("bt{i}"));
            d.channel = i.is_multiple_of(2).then(|| "legacy".to_string());
            d.user = Some(format!("u{}", i % 3));
            d.tags = vec!["z".into(), format!("g{}", i % 2), "z".into()];
            d.topics = if i.is_multiple_of(3) { vec!["news".into()] } else { Vec::new() };
            d.state = (i == 4).then_some(DeviceState::Disabled);
            d
        };
        let batch: Vec<_> = (0..6).map(full).collect();
        let out = s.put_devices("app", batch.clone(), t0()).await.unwrap();
        assert!(out.iter().all(|p| p.created && p.took_over_from.is_none()));
        for d in batch {
            s.put_device("other", d, t0()).await.unwrap();
        }
        let all = DeviceFilter::default();
        let by_batch = s.list_devices("app", &all, None, 100).await.unwrap().items;
        let by_one = s.list_devices("other", &all, None, 100).await.unwrap().items;
        assert_eq!(by_batch.len(), 6);
        let strip = |mut d: pushgate_store::Device| {
            d.app = String::new();
            d
        };
        assert_eq!(
            by_batch.into_iter().map(strip).collect::<Vec<_>>(),
            by_one.into_iter().map(strip).collect::<Vec<_>>()
        );
        let b2 = s.get_device("app", "b2").await.unwrap().unwrap();
        assert_eq!(b2.tags, ["g0", "z"]);
        assert_eq!(b2.channel.as_deref(), Some("legacy"));
        let tagged = DeviceFilter {
            tag: Some("g1".into()),
            ..Default::default()
        };
        let g1: Vec<String> = s
            .list_devices("app", &tagged, None, 100)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.device_id)
            .collect();
        assert_eq!(g1, ["b1", "b3", "b5"]);
        let news = Targets {
            topic: Some("news".into()),
            ..Default::default()
        };
        let m = send(&*s, news).await;
        let mut reached: Vec<String> = deliveries_of(&*s, m)
            .await
            .into_iter()
            .map(|d| d.token)
            .collect();
        reached.sort();
        assert_eq!(reached, ["bt0", "bt3"]);
        assert_eq!(
            s.get_device("app", "b4").await.unwrap().unwrap().state,
            DeviceState::Disabled
        );
    }

    async fn second_device_takes_a_known_token_over(s: Arc<dyn Store>) {
        s.put_device("app", dev("old", "tok"), t0()).await.unwrap();
        let waiting = send(
            &*s,
            to_devices(&["old"]),
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

    async fn changed_token_carries_waiting_work(s: Arc<dyn Store>) {
        devices(&*s, 1).await;
        let m = send(
            &*s,
            to_devices(&["d1"]),
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

    async fn disabling_or_deleting_settles_waiting_work(s: Arc<dyn Store>) {
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
}
