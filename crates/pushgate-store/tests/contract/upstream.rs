//! Upstream messages and receipts from CCS, recorded once per stanza.

use super::*;

contract_cases! {
    async fn upstream_stanzas_are_recorded_once(s: Arc<dyn Store>) {
        devices(&*s, 1).await;
        send(
            &*s,
            to_devices(&["d1"]),
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
}
