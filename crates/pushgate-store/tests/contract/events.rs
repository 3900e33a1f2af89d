//! The event log: paging in order, and every final failure of queued work reported (with the
//! counts the metrics read).

use super::*;

contract_cases! {
    async fn events_page_in_order(s: Arc<dyn Store>) {
        devices(&*s, 5).await;
        send(
            &*s,
            Targets {
                all: true,
                ..Default::default()
            },
        )
        .await;
        let c = claim(&*s, secs(1)).await;
        let results = c
            .iter()
            .map(|d| {
                done(
                    d,
                    Outcome::MessageRejected {
                        reason: d.token.clone(),
                    },
                )
            })
            .collect();
        s.complete(results, secs(2)).await.unwrap();
        let first = s.events_after("app", 0, 2, None).await.unwrap();
        assert_eq!(first.len(), 2);
        let second = s.events_after("app", first[1].seq, 2, None).await.unwrap();
        let third = s.events_after("app", second[1].seq, 2, None).await.unwrap();
        assert_eq!(third.len(), 1);
        let reasons: Vec<_> = first
            .iter()
            .chain(&second)
            .chain(&third)
            .map(|e| e.data["reason"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(reasons, ["t1", "t2", "t3", "t4", "t5"]);
        assert!(first[0].seq < first[1].seq && first[1].seq < second[0].seq);
        assert!(
            s.events_after("app", third[0].seq, 2, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.events_after("other", 0, 10, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.events_after("app", 0, 10, Some(EventKind::TokenRotated))
                .await
                .unwrap()
                .is_empty()
        );
    }

    async fn a_reader_following_the_log_misses_no_event_written_concurrently(s: Arc<dyn Store>) {
        // Eight transactions at once, each writing ten events (a disabled device's waiting
        // work), while a reader follows the log by cursor as the events API and webhooks do.
        devices(&*s, 8).await;
        for _ in 0..10 {
            send(&*s, Targets { all: true, ..Default::default() }).await;
        }
        let writers: Vec<_> = (1..=8)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let id = format!("d{i}");
                    s.set_device_state("app", &id, DeviceState::Disabled, None, secs(1))
                        .await
                        .unwrap();
                })
            })
            .collect();
        let reader = {
            let s = s.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut cursor = 0;
                while seen.len() < 80 {
                    let page = s.events_after("app", cursor, 7, None).await.unwrap();
                    match page.last() {
                        Some(last) => cursor = last.seq,
                        None => tokio::task::yield_now().await,
                    }
                    seen.extend(page.into_iter().map(|e| e.seq));
                }
                seen
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        let seen = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("the reader saw 80 events: none was skipped")
            .unwrap();
        let all: Vec<i64> = s
            .events_after("app", 0, 1000, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(all.len(), 80);
        assert_eq!(seen, all, "the reader saw every event once, in order");
    }

    async fn every_final_failure_of_queued_work_is_an_event(s: Arc<dyn Store>) {
        devices(&*s, 3).await;
        let m = msg(10);
        s.insert_message(
            m.clone(),
            &Targets {
                all: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        // d1 disabled while its work waits; d2's work outlives its TTL; d3 is sent.
        s.set_device_state("app", "d1", DeviceState::Disabled, None, secs(1))
            .await
            .unwrap();
        let c = s.claim_due("app", CH, secs(2), 1, LEASE).await.unwrap();
        assert_eq!(c.len(), 1);
        s.complete(vec![delivered(&c[0])], secs(3)).await.unwrap();
        assert!(
            s.claim_due("app", CH, secs(11), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let events = s
            .events_after("app", 0, 10, Some(EventKind::DeliveryFailed))
            .await
            .unwrap();
        let mut got: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e.device_id.clone().unwrap_or_default(),
                    e.data["state"].as_str().unwrap().to_string(),
                    e.data["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.sort();
        let sent_to = c[0].device_id.clone().unwrap();
        let expired_one = if sent_to == "d2" { "d3" } else { "d2" };
        assert_eq!(
            got,
            [
                (
                    "d1".to_string(),
                    "failed".to_string(),
                    "device_disabled".to_string()
                ),
                (
                    expired_one.to_string(),
                    "expired".to_string(),
                    "ttl_expired".to_string()
                ),
            ]
        );
        assert!(
            events
                .iter()
                .all(|e| e.data["message_id"] == m.id.to_string())
        );
        // The counts the metrics read agree with the message's summary.
        let mut counts = s.delivery_counts().await.unwrap();
        counts.sort_by_key(|(_, _, state, _)| state.as_str());
        let one = |state| ("app".to_string(), CH.to_string(), state, 1);
        assert_eq!(
            counts,
            [
                one(DeliveryState::Expired),
                one(DeliveryState::Failed),
                one(DeliveryState::Sent)
            ]
        );
        let summary = s.message_summary(m.id).await.unwrap();
        assert_eq!(summary.len(), counts.len(), "{summary:?}");
        for (app, channel, state, n) in &counts {
            assert_eq!((app.as_str(), channel.as_str()), ("app", CH));
            assert_eq!(summary.get(state), Some(n), "{state}");
        }
        let by_kind = s.event_counts().await.unwrap();
        assert_eq!(by_kind, [("app".to_string(), EventKind::DeliveryFailed, 2)]);
        let (applied, latest) = s.schema_version().await.unwrap();
        assert_eq!(applied, latest);
    }
}
