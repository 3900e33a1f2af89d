//! Large fan-outs stored in chunks: the first with the message, the rest by `expand_audience`
//! (on a store whose chunk is 3 devices, so that a handful of devices makes a large fan-out).

use pushgate_store::{Delivery, PurgeLimits, StoreSettings};

use super::*;

/// Devices one transaction stores in these cases.
const CHUNK: u32 = 3;

fn small_chunks() -> StoreSettings {
    StoreSettings {
        fanout_chunk: CHUNK,
        ..StoreSettings::default()
    }
}

fn everyone() -> Targets {
    Targets {
        all: true,
        ..Default::default()
    }
}

/// Runs `expand_audience` until it has nothing left; each step's (stored, done).
async fn expand_all(s: &dyn Store) -> Vec<(u64, bool)> {
    let mut steps = Vec::new();
    while let Some(e) = s.expand_audience(secs(1), None).await.unwrap() {
        assert_eq!(e.app, "app");
        steps.push((e.stored, e.done));
        assert!(steps.len() < 50, "the expansion never ends: {steps:?}");
    }
    steps
}

/// Claims as much as the first chunk holds, so that the claim stores no later chunk.
async fn claim_first_chunk(s: &dyn Store) -> Vec<Delivery> {
    s.claim_due("app", CH, secs(1), CHUNK, LEASE).await.unwrap()
}

/// The devices a message reached, each with the token it is sent to, sorted.
async fn reached(s: &dyn Store, id: Uuid) -> Vec<(String, String)> {
    let mut v: Vec<_> = deliveries_of(s, id)
        .await
        .into_iter()
        .map(|d| (d.device_id.unwrap_or_default(), d.token))
        .collect();
    v.sort();
    v
}

contract_cases! {
    settings = super::small_chunks();

    async fn a_fanout_larger_than_a_chunk_is_answered_with_its_first_chunk(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let m = msg(600);
        let out = s.insert_message(m.clone(), &everyone()).await.unwrap();
        assert!(out.expanding);
        assert_eq!((out.deliveries, out.queued), (3, 3));
        let stored = s.get_message(m.id).await.unwrap().unwrap();
        assert!(stored.expanding);
        assert_eq!(stored.deliveries, 3);
        // d1..d8 in device-id order: d1, d2, d3 first.
        let first: Vec<String> = reached(&*s, m.id).await.into_iter().map(|(d, _)| d).collect();
        assert_eq!(first, ["d1", "d2", "d3"]);
        assert_eq!(claim_first_chunk(&*s).await.len(), 3);
        assert_eq!(s.get_message(m.id).await.unwrap().unwrap().deliveries, 3);
    }

    async fn the_rest_of_a_fanout_is_stored_one_chunk_per_step(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let id = send(&*s, everyone()).await;
        assert_eq!(expand_all(&*s).await, [(3, false), (2, true)]);
        let all: Vec<(String, String)> =
            (1..=8).map(|i| (format!("d{i}"), format!("t{i}"))).collect();
        assert_eq!(reached(&*s, id).await, all);
        let stored = s.get_message(id).await.unwrap().unwrap();
        assert!(!stored.expanding);
        assert_eq!((stored.deliveries, stored.queued), (8, 8));
        let summary = s.message_summary(id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::Queued), Some(&8));
        assert_eq!(claim(&*s, secs(1)).await.len(), 8);
    }

    async fn an_audience_of_exactly_one_chunk_is_stored_at_once(s: Arc<dyn Store>) {
        devices(&*s, 3).await;
        let m = msg(600);
        let out = s.insert_message(m, &everyone()).await.unwrap();
        assert!(!out.expanding);
        assert_eq!(out.deliveries, 3);
        assert!(s.expand_audience(secs(1), None).await.unwrap().is_none());
    }

    async fn devices_are_reached_as_registered_when_their_chunk_is_stored(s: Arc<dyn Store>) {
        devices(&*s, 7).await;
        let id = send(&*s, everyone()).await;
        // Before the later chunks are stored: d5 deleted, d6 disabled, d7's token changed,
        // d8 registered after the message was accepted.
        s.delete_device("app", "d5", secs(1)).await.unwrap();
        s.set_device_state("app", "d6", DeviceState::Disabled, None, secs(1))
            .await
            .unwrap();
        s.put_device("app", dev("d7", "t7-new"), secs(1)).await.unwrap();
        s.put_device("app", dev("d8", "t8"), secs(1)).await.unwrap();
        expand_all(&*s).await;
        let expected: Vec<(String, String)> = [
            ("d1", "t1"),
            ("d2", "t2"),
            ("d3", "t3"),
            ("d4", "t4"),
            ("d7", "t7-new"),
        ]
        .iter()
        .map(|(d, t)| (d.to_string(), t.to_string()))
        .collect();
        assert_eq!(reached(&*s, id).await, expected);
        assert_eq!(s.get_message(id).await.unwrap().unwrap().deliveries, 5);
    }

    async fn chunks_follow_the_audience_not_the_whole_app(s: Arc<dyn Store>) {
        for i in 1..=9 {
            let mut d = dev(&format!("d{i}"), &format!("t{i}"));
            if i % 2 == 1 {
                d.tags = ids(&["odd"]);
            }
            s.put_device("app", d, t0()).await.unwrap();
        }
        let m = msg(600);
        let targets = Targets {
            tags: ids(&["odd"]),
            ..Default::default()
        };
        let out = s.insert_message(m.clone(), &targets).await.unwrap();
        assert!(out.expanding);
        assert_eq!(out.deliveries, 3);
        assert_eq!(expand_all(&*s).await, [(2, true)]);
        let devices: Vec<String> = reached(&*s, m.id).await.into_iter().map(|(d, _)| d).collect();
        assert_eq!(devices, ["d1", "d3", "d5", "d7", "d9"]);
    }

    async fn chunks_of_a_topic_or_a_condition_reach_the_subscribed_devices(s: Arc<dyn Store>) {
        // d01..d12: multiples of 3 follow "news", even ones "sport", d05 both tags.
        for i in 1..=12 {
            let mut d = dev(&format!("d{i:02}"), &format!("t{i}"));
            let mut topics = Vec::new();
            if i % 3 == 0 {
                topics.push("news");
            }
            if i % 2 == 0 {
                topics.push("sport");
            }
            d.topics = ids(&topics);
            if i == 5 {
                d.tags = ids(&["a", "b"]);
            }
            s.put_device("app", d, t0()).await.unwrap();
        }
        let condition = Condition::parse(
            "'sport' in topics && !('news' in topics)",
        )
        .unwrap();
        let cases = [
            (
                Targets {
                    topic: Some("news".into()),
                    ..Default::default()
                },
                vec!["d03", "d06", "d09", "d12"],
            ),
            (
                Targets {
                    condition: Some(condition),
                    ..Default::default()
                },
                vec!["d02", "d04", "d08", "d10"],
            ),
            (
                // A tag of the second list, or a topic: united, each device once.
                Targets {
                    tags: ids(&["zzz", "b"]),
                    topic: Some("news".into()),
                    ..Default::default()
                },
                vec!["d03", "d05", "d06", "d09", "d12"],
            ),
        ];
        for (targets, expected) in cases {
            let m = msg(600);
            let out = s.insert_message(m.clone(), &targets).await.unwrap();
            assert!(out.expanding, "{targets:?}");
            assert_eq!(out.deliveries, 3, "{targets:?}");
            expand_all(&*s).await;
            let devices: Vec<String> =
                reached(&*s, m.id).await.into_iter().map(|(d, _)| d).collect();
            assert_eq!(devices, expected, "{targets:?}");
            let stored = s.get_message(m.id).await.unwrap().unwrap();
            assert_eq!(stored.deliveries, expected.len() as u64, "{targets:?}");
            assert!(!stored.expanding);
        }
    }

    async fn the_accepting_transaction_takes_every_device_whatever_its_stamp(s: Arc<dyn Store>) {
        // Another instance's clock, or a registration stamped just after the POST's time but
        // committed before it: the device exists when the message is stored, so the part
        // stored with the message reaches it. Only the later chunks keep to the stamp.
        devices(&*s, 2).await;
        s.put_device("app", dev("d3", "t3"), secs(5)).await.unwrap();
        let small = msg(600); // created at t0, before d3's stamp
        let out = s.insert_message(small.clone(), &everyone()).await.unwrap();
        assert!(!out.expanding);
        assert_eq!(out.deliveries, 3, "an audience of one chunk is stored whole");
        for i in 4..=7 {
            s.put_device("app", dev(&format!("d{i}"), &format!("t{i}")), secs(5))
                .await
                .unwrap();
        }
        // d1..d7: the first chunk (d1, d2, d3) with the message, stamps and all; d4..d7,
        // stamped after the message, are left out of the later chunks.
        let large = msg(600);
        let out = s.insert_message(large.clone(), &everyone()).await.unwrap();
        assert!(out.expanding);
        assert_eq!(out.deliveries, 3);
        expand_all(&*s).await;
        let devices: Vec<String> =
            reached(&*s, large.id).await.into_iter().map(|(d, _)| d).collect();
        assert_eq!(devices, ["d1", "d2", "d3"]);
    }

    async fn named_devices_beside_an_audience_are_stored_at_once(s: Arc<dyn Store>) {
        // d8 is disabled: named, it gets its failed result with the message; it must not
        // get a second one if it comes back before a later chunk would have reached it.
        devices(&*s, 8).await;
        let mut d8 = dev("d8", "t8");
        d8.state = Some(DeviceState::Disabled);
        s.put_device("app", d8, t0()).await.unwrap();
        let m = msg(600);
        let targets = Targets {
            all: true,
            device_ids: ids(&["d8"]),
            ..Default::default()
        };
        let out = s.insert_message(m.clone(), &targets).await.unwrap();
        assert!(!out.expanding);
        assert_eq!(out.deliveries, 8, "d1..d7 queued, d8 failed");
        s.put_device("app", dev("d8", "t8"), t0()).await.unwrap();
        assert!(s.expand_audience(secs(1), None).await.unwrap().is_none());
        let d8_results: Vec<_> = deliveries_of(&*s, m.id)
            .await
            .into_iter()
            .filter(|d| d.device_id.as_deref() == Some("d8"))
            .map(|d| d.state)
            .collect();
        assert_eq!(d8_results, [DeliveryState::Failed]);
    }

    async fn raw_tokens_beside_an_audience_are_stored_at_once(s: Arc<dyn Store>) {
        devices(&*s, 5).await;
        let m = msg(600);
        let targets = Targets {
            all: true,
            tokens: ids(&["t1", "raw-1"]),
            ..Default::default()
        };
        let out = s.insert_message(m.clone(), &targets).await.unwrap();
        assert!(!out.expanding);
        // d1..d5, and the raw token nobody holds; t1 is d1's, reached once.
        assert_eq!(out.deliveries, 6);
        assert!(s.expand_audience(secs(1), None).await.unwrap().is_none());
    }

    async fn a_repeated_request_while_expanding_answers_the_first_message(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let mut m = msg(600);
        m.idempotency_key = Some("k1".into());
        let first = s.insert_message(m.clone(), &everyone()).await.unwrap();
        let mut again = msg(600);
        again.idempotency_key = Some("k1".into());
        let repeat = s.insert_message(again, &everyone()).await.unwrap();
        assert!(repeat.duplicate);
        assert!(repeat.expanding);
        assert_eq!(repeat.message_id, first.message_id);
        expand_all(&*s).await;
        assert_eq!(deliveries_of(&*s, m.id).await.len(), 8);
    }

    async fn an_expanding_message_is_not_purged(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let id = send(&*s, everyone()).await;
        // Its first chunk delivered: every stored delivery is final, the rest is not stored.
        for d in claim_first_chunk(&*s).await {
            s.complete(vec![delivered(&d)], secs(2)).await.unwrap();
        }
        let limits = PurgeLimits {
            messages: Some(std::time::Duration::from_secs(1)),
            events: None,
            invalid_devices: None,
            batch: 100,
        };
        let r = s.purge("app", &limits, secs(3600)).await.unwrap();
        assert_eq!((r.messages, r.deliveries), (0, 0));
        assert!(s.get_message(id).await.unwrap().is_some());
        expand_all(&*s).await;
        assert_eq!(deliveries_of(&*s, id).await.len(), 8);
    }

    async fn a_claim_stores_the_next_chunks_already_leased_to_it(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let id = send(&*s, everyone()).await;
        // The first chunk (d1..d3) is due; the other five come from the audience, stored in
        // flight by the claim itself.
        let claimed = claim(&*s, secs(1)).await;
        let mut got: Vec<String> = claimed.iter().map(|d| d.device_id.clone().unwrap()).collect();
        got.sort();
        let all: Vec<String> = (1..=8).map(|i| format!("d{i}")).collect();
        assert_eq!(got, all);
        let lease_until = secs(1) + time::Duration::seconds(LEASE.as_secs() as i64);
        for d in &claimed {
            assert_eq!(d.state, DeliveryState::InFlight);
            assert_eq!(d.attempts, 1, "{d:?}");
            assert_eq!(d.lease_until, Some(lease_until), "{d:?}");
            assert_eq!(d.channel, CH);
        }
        let stored = s.get_message(id).await.unwrap().unwrap();
        assert!(!stored.expanding);
        assert_eq!(stored.deliveries, 8);
        let summary = s.message_summary(id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::InFlight), Some(&8));
        assert_eq!(summary.get(&DeliveryState::Queued), None);
        // Nothing is handed out twice, and the answers settle the leased rows.
        assert!(claim(&*s, secs(2)).await.is_empty());
        let answers: Vec<_> = claimed.iter().map(delivered).collect();
        assert_eq!(s.complete(answers, secs(3)).await.unwrap(), 8);
        let summary = s.message_summary(id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::Sent), Some(&8));
        assert!(s.expand_audience(secs(4), None).await.unwrap().is_none());
    }

    async fn a_claim_takes_from_the_audience_only_the_rest_of_its_limit(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let id = send(&*s, everyone()).await;
        let claimed = s.claim_due("app", CH, secs(1), 5, LEASE).await.unwrap();
        let got: Vec<String> = claimed.iter().map(|d| d.device_id.clone().unwrap()).collect();
        assert_eq!(got, ["d1", "d2", "d3", "d4", "d5"]);
        let stored = s.get_message(id).await.unwrap().unwrap();
        assert!(stored.expanding);
        assert_eq!(stored.deliveries, 5);
        let rest = claim(&*s, secs(1)).await;
        let got: Vec<String> = rest.iter().map(|d| d.device_id.clone().unwrap()).collect();
        assert_eq!(got, ["d6", "d7", "d8"]);
        assert!(!s.get_message(id).await.unwrap().unwrap().expanding);
    }

    async fn a_claim_leases_its_own_channel_and_queues_the_others(s: Arc<dyn Store>) {
        for i in 1..=8 {
            let mut d = dev(&format!("d{i}"), &format!("t{i}"));
            if i % 2 == 0 {
                d.channel = Some("other".into());
            }
            s.put_device("app", d, t0()).await.unwrap();
        }
        let id = send(&*s, everyone()).await;
        let mine: Vec<String> = claim(&*s, secs(1))
            .await
            .iter()
            .map(|d| d.device_id.clone().unwrap())
            .collect();
        assert_eq!(mine, ["d1", "d3", "d5", "d7"]);
        let summary = s.message_summary(id).await.unwrap();
        assert_eq!(summary.get(&DeliveryState::InFlight), Some(&4));
        assert_eq!(summary.get(&DeliveryState::Queued), Some(&4));
        let theirs: Vec<String> = s
            .claim_due("app", "other", secs(1), 1000, LEASE)
            .await
            .unwrap()
            .iter()
            .map(|d| d.device_id.clone().unwrap())
            .collect();
        assert_eq!(theirs, ["d2", "d4", "d6", "d8"]);
        assert_eq!(s.get_message(id).await.unwrap().unwrap().deliveries, 8);
    }

    async fn work_a_claim_queues_for_another_channel_is_announced(s: Arc<dyn Store>) {
        // PostgreSQL's announcements reach every session of the database, other tests' too:
        // this case's app is its own.
        let app = format!("a{}", Uuid::now_v7().simple());
        s.upsert_app(&app, true).await.unwrap();
        // The first chunk (d1 to d3) is on the main channel, the rest on "other": only the
        // claim that stores the next chunk queues work for "other".
        for i in 1..=8 {
            let mut d = dev(&format!("d{i}"), &format!("t{i}"));
            if i > CHUNK {
                d.channel = Some("other".into());
            }
            s.put_device(&app, d, t0()).await.unwrap();
        }
        let mut feed = s.watch_work().await.unwrap().expect("the store announces work");
        let mut m = msg(600);
        m.app = app.clone();
        s.insert_message(m, &everyone()).await.unwrap();
        assert_eq!(s.claim_due(&app, CH, secs(1), 1000, LEASE).await.unwrap().len(), 3);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let work = tokio::time::timeout_at(deadline, feed.recv())
                .await
                .expect("the work queued for \"other\" was never announced")
                .expect("the feed ended");
            if work.app == app && work.channel == "other" {
                break;
            }
        }
        let theirs = s.claim_due(&app, "other", secs(1), 1000, LEASE).await.unwrap();
        assert_eq!(theirs.len(), 5);
    }

    async fn a_leased_chunk_is_claimed_again_when_its_lease_runs_out(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        send(&*s, everyone()).await;
        // The claimer stops without answering (a crash): after the lease, every delivery is
        // handed out again, each once, with its second attempt.
        assert_eq!(claim(&*s, secs(1)).await.len(), 8);
        assert!(claim(&*s, secs(2)).await.is_empty());
        let again = claim(&*s, secs(1 + LEASE.as_secs() as i64)).await;
        assert_eq!(again.len(), 8);
        assert!(again.iter().all(|d| d.attempts == 2), "{again:?}");
    }

    async fn a_fanout_past_its_deadline_is_expired_not_handed_out(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let m = msg(10);
        let id = m.id;
        s.insert_message(m, &everyone()).await.unwrap();
        let mut rounds = 0;
        while s.get_message(id).await.unwrap().unwrap().expanding || rounds == 0 {
            assert!(claim(&*s, secs(20)).await.is_empty());
            rounds += 1;
            assert!(rounds < 10, "the expansion never ends");
        }
        assert!(claim(&*s, secs(20)).await.is_empty());
        let all = deliveries_of(&*s, id).await;
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|d| d.state == DeliveryState::Expired), "{all:?}");
    }

    async fn the_fanout_task_stores_chunks_only_of_messages_left_idle(s: Arc<dyn Store>) {
        devices(&*s, 8).await;
        let id = send(&*s, everyone()).await;
        let idle = Some(std::time::Duration::from_secs(10));
        // Accepted at t0: not idle 5 s later, idle 11 s later.
        assert!(s.expand_audience(secs(5), idle).await.unwrap().is_none());
        let step = s.expand_audience(secs(11), idle).await.unwrap().unwrap();
        assert_eq!((step.message_id, step.stored, step.done), (id, 3, false));
        // A chunk was stored at 11 s: not idle again before 21 s.
        assert!(s.expand_audience(secs(20), idle).await.unwrap().is_none());
        // A claim's chunk counts as progress too.
        assert_eq!(s.claim_due("app", CH, secs(30), 7, LEASE).await.unwrap().len(), 7);
        assert!(s.expand_audience(secs(35), idle).await.unwrap().is_none());
        let last = s.expand_audience(secs(41), idle).await.unwrap().unwrap();
        assert_eq!((last.stored, last.done), (1, true));
    }

    async fn a_claim_that_leases_nothing_does_not_keep_the_fanout_task_away(s: Arc<dyn Store>) {
        // Only d8 is on "other": its claims store chunks of the main channel's devices,
        // queued, and hand out nothing; the message stays idle for the task.
        for i in 1..=8 {
            let mut d = dev(&format!("d{i}"), &format!("t{i}"));
            if i == 8 {
                d.channel = Some("other".into());
            }
            s.put_device("app", d, t0()).await.unwrap();
        }
        let id = send(&*s, everyone()).await;
        let idle = Some(std::time::Duration::from_secs(10));
        assert!(s.claim_due("app", "other", secs(5), 2, LEASE).await.unwrap().is_empty());
        assert_eq!(s.get_message(id).await.unwrap().unwrap().deliveries, 5);
        let step = s.expand_audience(secs(11), idle).await.unwrap().unwrap();
        assert_eq!((step.message_id, step.stored, step.done), (id, 3, true));
    }
}
