//! Retention: `purge` deletes exactly the history older than its limits (finished messages
//! with their deliveries, events the webhook delivered, long-invalid devices), never more than
//! its batch per table and call, and remembers how far messages were deleted.

use pushgate_store::{Completion, NewDevice, NewMessage, PurgeLimits, PurgeReport};
use time::OffsetDateTime;

use super::*;

/// Limits in seconds (`None`: that kind is kept), with a batch.
fn limits(
    messages: Option<u64>,
    events: Option<u64>,
    invalid_devices: Option<u64>,
    batch: u32,
) -> PurgeLimits {
    PurgeLimits {
        messages: messages.map(Duration::from_secs),
        events: events.map(Duration::from_secs),
        invalid_devices: invalid_devices.map(Duration::from_secs),
        batch,
    }
}

/// A message of `app` accepted at `at` to `targets`, stored; its id.
async fn send_at(s: &dyn Store, app: &str, at: OffsetDateTime, targets: Targets) -> Uuid {
    let m = NewMessage {
        app: app.into(),
        created_at: at,
        // Long enough that nothing expires while a case runs.
        ..msg(100_000)
    };
    s.insert_message(m.clone(), &targets).await.unwrap();
    m.id
}

/// Claims everything due on `app`'s channel at `at` and answers it delivered.
async fn deliver_all(s: &dyn Store, app: &str, at: OffsetDateTime) -> usize {
    let claimed = s.claim_due(app, CH, at, 1000, LEASE).await.unwrap();
    let n = claimed.len();
    s.complete(claimed.iter().map(delivered).collect(), at)
        .await
        .unwrap();
    n
}

/// The seqs of the app's stored events, in order.
async fn event_seqs(s: &dyn Store, app: &str) -> Vec<i64> {
    s.events_after(app, 0, 100, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Records an upstream message of `app` at `at` (an event); its seq.
async fn event_at(s: &dyn Store, app: &str, key: &str, at: OffsetDateTime) -> i64 {
    let record = UpstreamRecord {
        kind: EventKind::UpstreamMessage,
        from_token: None,
        original_message_id: None,
        data: serde_json::json!({"k": key}),
        dedup_key: key.into(),
        require_link: false,
    };
    s.record_upstream(app, record, at)
        .await
        .unwrap()
        .unwrap()
        .seq
}

/// Purges `app` until no table gives a full batch; every call's report, checked against the
/// batch on the way.
async fn purge_all(
    s: &dyn Store,
    app: &str,
    l: &PurgeLimits,
    now: OffsetDateTime,
) -> Vec<PurgeReport> {
    let mut reports = Vec::new();
    loop {
        let r = s.purge(app, l, now).await.unwrap();
        let batch = u64::from(l.batch);
        assert!(
            r.messages <= batch && r.deliveries <= batch && r.events <= batch && r.devices <= batch,
            "a call deleted more than its batch of {batch}: {r:?}"
        );
        let more = r.more_left(l.batch);
        reports.push(r);
        if !more {
            return reports;
        }
        assert!(reports.len() < 100, "the purge never finishes: {reports:?}");
    }
}

/// The reports added up.
fn total(reports: &[PurgeReport]) -> PurgeReport {
    let mut t = PurgeReport::default();
    for r in reports {
        t.add(r);
    }
    t
}

contract_cases! {
    async fn purge_deletes_finished_messages_older_than_the_limit_and_keeps_the_rest(s: Arc<dyn Store>) {
        devices(&*s, 6).await;
        s.put_device("other", dev("o1", "ot1"), t0()).await.unwrap();
        // The limit is 1500 s at 2000 s: messages accepted before 500 s are old.
        let old_sent = send_at(&*s, "app", secs(0), to_devices(&["d1", "d2"])).await;
        let old_failed = send_at(&*s, "app", secs(499), to_devices(&["d3"])).await;
        let old_waiting = send_at(&*s, "app", secs(10), to_devices(&["d4"])).await;
        let at_limit = send_at(&*s, "app", secs(500), to_devices(&["d5"])).await;
        let other_app = send_at(&*s, "other", secs(0), to_devices(&["o1"])).await;
        // d1, d2 sent; d3 refused for good; d4 waits (retry); d5 sent; o1 sent.
        let first = claim(&*s, secs(499)).await;
        assert_eq!(first.len(), 4, "d1, d2, d3, d4 are due");
        let answers = first
            .iter()
            .map(|d| match d.device_id.as_deref() {
                Some("d3") => done(d, Outcome::MessageRejected { reason: "bad".into() }),
                Some("d4") => Completion {
                    retry_at: Some(secs(5000)),
                    ..done(
                        d,
                        Outcome::RetryLater {
                            reason: "busy".into(),
                            after: None,
                            scope: pushgate_proto::outcome::FailureScope::Token,
                        },
                    )
                },
                _ => delivered(d),
            })
            .collect();
        s.complete(answers, secs(499)).await.unwrap();
        assert_eq!(deliver_all(&*s, "app", secs(500)).await, 1, "d5");
        assert_eq!(deliver_all(&*s, "other", secs(1)).await, 1, "o1");
        let newer = send_at(&*s, "app", secs(1000), to_devices(&["d6"])).await;
        assert_eq!(deliver_all(&*s, "app", secs(1000)).await, 1, "d6");

        let l = limits(Some(1500), None, None, 100);
        let reports = purge_all(&*s, "app", &l, secs(2000)).await;
        let t = total(&reports);
        assert_eq!((t.messages, t.deliveries), (2, 3), "{reports:?}");
        assert_eq!((t.events, t.devices), (0, 0), "events and devices have no limit here");
        for gone in [old_sent, old_failed] {
            assert!(s.get_message(gone).await.unwrap().is_none());
            assert!(matches!(s.message_summary(gone).await, Err(StoreError::NotFound)));
            assert!(deliveries_of(&*s, gone).await.is_empty());
        }
        for kept in [old_waiting, at_limit, other_app, newer] {
            assert!(s.get_message(kept).await.unwrap().is_some(), "{kept} is kept");
            assert_eq!(deliveries_of(&*s, kept).await.len(), 1, "{kept}'s delivery is kept");
        }
        // The newest acceptance time among the deleted, per app.
        assert_eq!(s.purged_through("app").await.unwrap(), Some(secs(499)));
        assert_eq!(s.purged_through("other").await.unwrap(), None);
        // Again: nothing more is old and finished, and the horizon does not move back.
        let again = s.purge("app", &l, secs(2000)).await.unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.purged_through, None);
        assert_eq!(s.purged_through("app").await.unwrap(), Some(secs(499)));
    }

    async fn each_purge_call_deletes_at_most_its_batch_of_rows_per_table(s: Arc<dyn Store>) {
        devices(&*s, 9).await;
        // One fan-out of 5 deliveries and 4 single ones: 9 deliveries, 5 messages.
        send_at(&*s, "app", secs(0), to_devices(&["d1", "d2", "d3", "d4", "d5"])).await;
        for d in ["d6", "d7", "d8", "d9"] {
            send_at(&*s, "app", secs(0), to_devices(&[d])).await;
        }
        assert_eq!(deliver_all(&*s, "app", secs(1)).await, 9);
        for i in 0..5 {
            event_at(&*s, "app", &format!("e{i}"), secs(i)).await;
        }
        let before = s.last_event_seq("app").await.unwrap();
        for i in 1..=5 {
            s.set_device_state("app", &format!("d{i}"), DeviceState::Invalid, Some("gone"), secs(2))
                .await
                .unwrap();
        }
        let l = limits(Some(60), Some(60), Some(60), 2);
        let reports = purge_all(&*s, "app", &l, secs(1000)).await;
        let first = &reports[0];
        assert_eq!(
            (first.deliveries, first.events, first.devices),
            (2, 2, 2),
            "the batch binds every table: {reports:?}"
        );
        let t = total(&reports);
        assert_eq!(
            (t.messages, t.deliveries, t.events, t.devices),
            (5, 9, 5, 5),
            "{reports:?}"
        );
        assert!(reports.len() >= 5, "9 deliveries by 2 take at least 5 calls: {reports:?}");
        assert!(s.events_after("app", 0, 100, None).await.unwrap().is_empty());
        let next = event_at(&*s, "app", "after", secs(1000)).await;
        assert!(next > before, "seqs are not reused: {next} after {before}");
        let left = s
            .list_devices("app", &DeviceFilter::default(), None, 100)
            .await
            .unwrap();
        let left: Vec<&str> = left.items.iter().map(|d| d.device_id.as_str()).collect();
        assert_eq!(left, ["d6", "d7", "d8", "d9"]);
    }

    async fn events_the_webhook_has_not_delivered_are_kept(s: Arc<dyn Store>) {
        let mut seqs = Vec::new();
        for i in 0..6 {
            seqs.push(event_at(&*s, "app", &format!("e{i}"), secs(i)).await);
        }
        let newer = event_at(&*s, "app", "late", secs(900)).await;
        let other: Vec<i64> = [event_at(&*s, "other", "o0", secs(0)).await].into();
        // The receiver accepted the first three.
        s.webhook_init("app", 0, secs(0)).await.unwrap();
        assert!(s.webhook_claim("app", "me", secs(10), LEASE).await.unwrap().is_some());
        assert!(s.webhook_done("app", "me", seqs[2], secs(10)).await.unwrap());

        let l = limits(None, Some(100), None, 100);
        let t = total(&purge_all(&*s, "app", &l, secs(1000)).await);
        assert_eq!(t.events, 3);
        let left = event_seqs(&*s, "app").await;
        assert_eq!(left, [seqs[3], seqs[4], seqs[5], newer]);
        // Another app's events wait for their own purge.
        assert_eq!(s.events_after("other", 0, 100, None).await.unwrap().len(), 1);

        // Once the receiver has them all, the old ones go and the newer one stays.
        assert!(s.webhook_claim("app", "me", secs(20), LEASE).await.unwrap().is_some());
        assert!(s.webhook_done("app", "me", newer, secs(20)).await.unwrap());
        let t = total(&purge_all(&*s, "app", &l, secs(1000)).await);
        assert_eq!(t.events, 3);
        let left = event_seqs(&*s, "app").await;
        assert_eq!(left, [newer]);
        // An app without a webhook: nothing holds its events back.
        let t = total(&purge_all(&*s, "other", &l, secs(1000)).await);
        assert_eq!(t.events, other.len() as u64);
    }

    async fn invalid_devices_older_than_the_limit_go_and_the_others_stay(s: Arc<dyn Store>) {
        let tagged = NewDevice {
            tags: vec!["vip".into()],
            topics: vec!["news".into()],
            ..dev("old-invalid", "t1")
        };
        s.put_device("app", tagged, t0()).await.unwrap();
        s.put_device("app", dev("new-invalid", "t2"), t0()).await.unwrap();
        s.put_device("app", dev("old-active", "t3"), t0()).await.unwrap();
        s.put_device("app", dev("old-disabled", "t4"), t0()).await.unwrap();
        s.put_device("other", dev("other-invalid", "t5"), t0()).await.unwrap();
        let invalid = |id: &'static str, app: &'static str, at| {
            let s = s.clone();
            async move {
                s.set_device_state(app, id, DeviceState::Invalid, Some("dead"), at)
                    .await
                    .unwrap()
            }
        };
        invalid("old-invalid", "app", secs(0)).await;
        invalid("new-invalid", "app", secs(950)).await;
        invalid("other-invalid", "other", secs(0)).await;
        s.set_device_state("app", "old-disabled", DeviceState::Disabled, None, secs(0))
            .await
            .unwrap();

        // Invalid for longer than 100 s at 1000 s: since before 900 s.
        let l = limits(None, None, Some(100), 100);
        let t = total(&purge_all(&*s, "app", &l, secs(1000)).await);
        assert_eq!(t.devices, 1);
        assert!(s.get_device("app", "old-invalid").await.unwrap().is_none());
        for kept in ["new-invalid", "old-active", "old-disabled"] {
            assert!(s.get_device("app", kept).await.unwrap().is_some(), "{kept}");
        }
        assert!(s.get_device("other", "other-invalid").await.unwrap().is_some());
        // Its tags and topics went with it: registering the id again starts clean.
        s.put_device("app", dev("old-invalid", "t9"), secs(1000)).await.unwrap();
        for filter in [
            DeviceFilter { tag: Some("vip".into()), ..Default::default() },
            DeviceFilter { topic: Some("news".into()), ..Default::default() },
        ] {
            let page = s.list_devices("app", &filter, None, 10).await.unwrap();
            assert!(page.items.is_empty(), "{filter:?}: {:?}", page.items);
        }
    }

    async fn a_purge_with_every_limit_off_deletes_nothing(s: Arc<dyn Store>) {
        devices(&*s, 1).await;
        let id = send_at(&*s, "app", secs(0), to_devices(&["d1"])).await;
        deliver_all(&*s, "app", secs(1)).await;
        event_at(&*s, "app", "e", secs(0)).await;
        s.set_device_state("app", "d1", DeviceState::Invalid, Some("dead"), secs(2))
            .await
            .unwrap();
        let far = secs(365 * 24 * 3600);
        let r = s.purge("app", &limits(None, None, None, 100), far).await.unwrap();
        assert!(r.is_empty(), "{r:?}");
        assert!(s.get_message(id).await.unwrap().is_some());
        assert_eq!(s.events_after("app", 0, 10, None).await.unwrap().len(), 1);
        assert!(s.get_device("app", "d1").await.unwrap().is_some());
        // The same store with every limit on deletes all of it.
        let t = total(&purge_all(&*s, "app", &limits(Some(1), Some(1), Some(1), 100), far).await);
        assert_eq!((t.messages, t.deliveries, t.events, t.devices), (1, 1, 1, 1));
    }
}
