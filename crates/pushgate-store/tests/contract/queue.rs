//! Claiming due work: leases, limits, fencing, concurrent claimers, retries and expiry.

use super::*;

contract_cases! {
    async fn claims_are_leased_limited_and_fenced(s: Arc<dyn Store>) {
        devices(&*s, 3).await;
        let m = send(
            &*s,
            Targets {
                all: true,
                ..Default::default()
            },
        )
        .await;
        assert!(
            claim(&*s, secs(-1)).await.is_empty(),
            "nothing is due before acceptance"
        );
        let first = s.claim_due("app", CH, secs(1), 2, LEASE).await.unwrap();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|d| d.state == DeliveryState::InFlight && d.attempts == 1)
        );
        assert_eq!(first[0].lease_until, Some(secs(31)));
        assert_eq!(s.next_due("app", CH).await.unwrap(), Some(t0()));
        let rest = claim(&*s, secs(1)).await;
        assert_eq!(rest.len(), 1);
        assert!(claim(&*s, secs(30)).await.is_empty());
        assert_eq!(s.next_due("app", CH).await.unwrap(), Some(secs(31)));
        let stats = s.queue_stats(secs(30)).await.unwrap();
        assert_eq!((stats.pending, stats.due), (3, 0));
        // The lease runs out: the work is claimable again, under a new claim.
        let again = claim(&*s, secs(31)).await;
        assert_eq!(again.len(), 3);
        assert!(again.iter().all(|d| d.attempts == 2));
        // An answer for the old claim is ignored; one for the current claim is applied.
        let stale = delivered(&first[0]);
        assert_eq!(s.complete(vec![stale], secs(32)).await.unwrap(), 0);
        let current = again.iter().find(|d| d.id == first[0].id).unwrap();
        assert_eq!(
            s.complete(vec![delivered(current)], secs(32))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.complete(vec![delivered(current)], secs(32))
                .await
                .unwrap(),
            0
        );
        // Release hands back the others, undoing the claim's attempt; twice is a no-op.
        let back: Vec<Release> = again
            .iter()
            .filter(|d| d.id != current.id)
            .map(|d| Release {
                delivery_id: d.id,
                attempt: d.attempts,
            })
            .collect();
        assert_eq!(s.release(&back, secs(33)).await.unwrap(), 2);
        assert_eq!(s.release(&back, secs(33)).await.unwrap(), 0);
        let third = claim(&*s, secs(33)).await;
        assert_eq!(third.len(), 2);
        assert!(third.iter().all(|d| d.attempts == 2));
        let summary = s.message_summary(m).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::Sent), Some(&1));
        assert_eq!(summary.get(&DeliveryState::InFlight), Some(&2));
        s.complete(third.iter().map(delivered).collect(), secs(34))
            .await
            .unwrap();
        assert_eq!(s.next_due("app", CH).await.unwrap(), None);
        assert_eq!(s.queue_stats(secs(34)).await.unwrap().pending, 0);
        let page = s.list_deliveries(m, None, 10).await.unwrap();
        assert!(page.items.iter().all(|d| d.state == DeliveryState::Sent));
        assert_eq!(
            page.items[0].provider_message_id,
            Some(format!("p-{}", page.items[0].id))
        );
    }

    async fn pending_and_due_work_is_counted_per_channel(s: Arc<dyn Store>) {
        let mut legacy = dev("d1", "t1");
        legacy.channel = Some("legacy".into());
        s.put_device("app", legacy, t0()).await.unwrap();
        s.put_device("app", dev("d2", "t2"), t0()).await.unwrap();
        s.put_device("app", dev("d3", "t3"), t0()).await.unwrap();
        send(&*s, Targets { all: true, ..Default::default() }).await;
        let taken = s.claim_due("app", CH, secs(1), 1, LEASE).await.unwrap();
        assert_eq!(taken.len(), 1);
        let at = |now| {
            let s = s.clone();
            async move {
                let mut q = s.queue_by_channel(now).await.unwrap();
                q.sort_by(|a, b| a.channel.cmp(&b.channel));
                q.into_iter()
                    .map(|c| (c.app, c.channel, c.stats.pending, c.stats.due, c.stats.oldest_due))
                    .collect::<Vec<_>>()
            }
        };
        let row = |channel: &str, pending, due, oldest| {
            ("app".to_string(), channel.to_string(), pending, due, oldest)
        };
        // The claimed one is pending but not due until its lease runs out (31 s).
        assert_eq!(
            at(secs(5)).await,
            [row("legacy", 1, 1, Some(t0())), row(CH, 2, 1, Some(t0()))]
        );
        assert_eq!(
            at(secs(40)).await,
            [row("legacy", 1, 1, Some(t0())), row(CH, 2, 2, Some(t0()))]
        );
        let total = s.queue_stats(secs(5)).await.unwrap();
        assert_eq!((total.pending, total.due, total.oldest_due), (3, 2, Some(t0())));
        s.complete(vec![delivered(&taken[0])], secs(6)).await.unwrap();
        assert_eq!(
            at(secs(6)).await,
            [row("legacy", 1, 1, Some(t0())), row(CH, 1, 1, Some(t0()))]
        );
    }

    async fn concurrent_claimers_get_disjoint_deliveries(s: Arc<dyn Store>) {
        let batch: Vec<_> = (0..200)
            .map(|i| dev(&format!("d{i}"), &format!("t{i}")))
            .collect();
        s.put_devices("app", batch, t0()).await.unwrap();
        let m = send(
            &*s,
            Targets {
                all: true,
                ..Default::default()
            },
        )
        .await;
        // Each claimer takes its first batch before either goes on, so both get work however
        // the scheduler runs them; the rest of the queue is claimed concurrently.
        let both_started = Arc::new(tokio::sync::Barrier::new(2));
        let worker = |s: Arc<dyn Store>, started: Arc<tokio::sync::Barrier>| async move {
            let mut got = Vec::new();
            let mut first = true;
            loop {
                let batch = s.claim_due("app", CH, secs(1), 7, LEASE).await.unwrap();
                if first {
                    started.wait().await;
                    first = false;
                }
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|d| d.id));
                tokio::task::yield_now().await;
            }
        };
        let (a, b) = tokio::join!(
            tokio::spawn(worker(s.clone(), both_started.clone())),
            tokio::spawn(worker(s.clone(), both_started))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(!a.is_empty(), "the first claimer got work");
        assert!(!b.is_empty(), "the second claimer got work");
        assert!(
            a.iter().all(|id| !b.contains(id)),
            "no delivery went to both claimers"
        );
        let mut all: Vec<i64> = a.iter().chain(b.iter()).copied().collect();
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(before, 200, "every delivery claimed once");
        assert_eq!(all.len(), 200, "no delivery claimed twice");
        let expected: Vec<i64> = deliveries_of(&*s, m).await.iter().map(|d| d.id).collect();
        assert_eq!(all, expected, "the claimers' union is every delivery");
    }

    async fn retry_waits_until_due_and_expires_past_deadline(s: Arc<dyn Store>) {
        devices(&*s, 2).await;
        let m = msg(100);
        s.insert_message(
            m.clone(),
            &Targets {
                all: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let claimed = claim(&*s, secs(1)).await;
        assert_eq!(claimed.len(), 2);
        let mut wait = done(
            &claimed[0],
            Outcome::RetryLater {
                reason: "Unavailable".into(),
                after: None,
                scope: pushgate_proto::FailureScope::Token,
            },
        );
        wait.retry_at = Some(secs(50));
        let mut too_late = done(
            &claimed[1],
            Outcome::Throttled {
                reason: "DeviceMessageRateExceeded".into(),
                after: Some(Duration::from_secs(500)),
                scope: pushgate_proto::FailureScope::Token,
            },
        );
        too_late.retry_at = Some(secs(501));
        assert_eq!(s.complete(vec![wait, too_late], secs(2)).await.unwrap(), 2);
        let summary = s.message_summary(m.id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::RetryWait), Some(&1));
        assert_eq!(summary.get(&DeliveryState::Expired), Some(&1));
        let expired = s
            .events_after("app", 0, 10, Some(EventKind::DeliveryFailed))
            .await
            .unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].data["state"], "expired");
        assert_eq!(expired[0].data["reason"], "DeviceMessageRateExceeded");
        assert_eq!(s.next_due("app", CH).await.unwrap(), Some(secs(50)));
        assert!(claim(&*s, secs(49)).await.is_empty());
        let retry = claim(&*s, secs(50)).await;
        assert_eq!(retry.len(), 1);
        assert_eq!(retry[0].attempts, 2);
        assert_eq!(retry[0].error_code.as_deref(), Some("Unavailable"));
        // Its lease runs out after the deadline: it expires instead of being claimed again.
        assert!(claim(&*s, secs(100)).await.is_empty());
        let summary = s.message_summary(m.id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::Expired), Some(&2));
        assert_eq!(s.queue_stats(secs(100)).await.unwrap().pending, 0);
    }
}
