//! Topic management (IID batch API) and topic / condition sends against the in-process
//! emulator, over real sockets.
//!
//! Expected values come from docs/protocols.md, "Topics: limits" and "Instance ID" (1000 tokens per
//! batch, per-token `NOT_FOUND`
//! for uninstalled apps and `INVALID_ARGUMENT` for invalid tokens, condition grammar), not
//! from the code under test.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Emu, truncated};
use pushgate_client::HttpConfig;
use pushgate_client::iid::{IidAuth, IidError, TopicManagementError, TopicManager};
use pushgate_client::legacy::JsonMessage;
use pushgate_client::oauth::{OAuthConfig, ServiceAccountTokenSource};
use pushgate_emulator::DEFAULT_API_KEY;
use reqwest::Method;

fn manager(emu: &Emu) -> TopicManager {
    TopicManager::new(
        IidAuth::ApiKey(DEFAULT_API_KEY.into()),
        HttpConfig::new().with_endpoint(emu.base.clone()),
    )
    .unwrap()
}

/// Canonical tokens subscribed to `topic`, as the emulator sees them.
async fn subscribers(emu: &Emu, topic: &str) -> BTreeSet<String> {
    let answer = emu
        .call(Method::GET, &format!("/emulator/topics/{topic}"), None)
        .await;
    answer["subscribers"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|d| d["token"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_thousand_tokens_with_one_bad_token_fail_at_exactly_its_index() {
    let emu = Emu::start().await;
    let mut tokens = emu.devices(1000).await;
    let good = tokens[617].clone();
    tokens[617] = truncated(&good);
    let topics = manager(&emu);

    let added = topics.subscribe("/topics/news", &tokens).await.unwrap();

    assert_eq!(added.success_count, 999);
    assert_eq!(added.failure_count, 1);
    assert_eq!(
        added.errors,
        vec![TopicManagementError {
            index: 617,
            reason: "INVALID_ARGUMENT".into()
        }]
    );
    let expected: BTreeSet<String> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 617)
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(subscribers(&emu, "news").await, expected);

    let removed = topics.unsubscribe("news", &tokens).await.unwrap();
    assert_eq!((removed.success_count, removed.failure_count), (999, 1));
    assert_eq!(removed.errors[0].index, 617);
    assert!(subscribers(&emu, "news").await.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn more_than_a_thousand_tokens_are_batched_and_merged_in_order() {
    let emu = Emu::start().await;
    let mut tokens = emu.devices(2500).await;
    for i in [5, 1500] {
        tokens[i] = truncated(&tokens[i]);
    }
    emu.uninstall(&tokens[2400]).await;
    let topics = manager(&emu);

    let added = topics.subscribe("movies", &tokens).await.unwrap();

    assert_eq!(added.success_count, 2497);
    assert_eq!(added.failure_count, 3);
    let errors: Vec<(usize, &str)> = added
        .errors
        .iter()
        .map(|e| (e.index, e.reason.as_str()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (5, "INVALID_ARGUMENT"),
            (1500, "INVALID_ARGUMENT"),
            (2400, "NOT_FOUND")
        ]
    );
    assert_eq!(subscribers(&emu, "movies").await.len(), 2497);
    emu.shutdown().await;
}

#[tokio::test]
async fn info_lists_subscriptions_and_bad_requests_are_refused() {
    let emu = Emu::start().await;
    let token = emu.device().await;
    let topics = manager(&emu);
    topics
        .subscribe("weather", std::slice::from_ref(&token))
        .await
        .unwrap();

    let info = topics.info(&token, true).await.unwrap();
    assert!(info.rel.unwrap().topics.contains_key("weather"));
    let plain = topics.info(&token, false).await.unwrap();
    assert!(plain.rel.is_none());

    match topics.info("not-a-token", false).await {
        Err(IidError::Server { status: 400, error }) => assert_eq!(error, "InvalidToken"),
        other => panic!("{other:?}"),
    }
    // Client-side: a bad topic name or no tokens at all never leave the process.
    assert!(matches!(
        topics.subscribe("a b", std::slice::from_ref(&token)).await,
        Err(IidError::Invalid(_))
    ));
    assert!(matches!(
        topics.subscribe("ok", &[]).await,
        Err(IidError::Invalid(_))
    ));
    let refused = TopicManager::new(
        IidAuth::ApiKey("wrong-key".into()),
        HttpConfig::new().with_endpoint(emu.base.clone()),
    )
    .unwrap();
    assert!(matches!(
        refused.subscribe("ok", std::slice::from_ref(&token)).await,
        Err(IidError::Server { status: 401, .. })
    ));
    emu.shutdown().await;
}

#[tokio::test]
async fn bearer_tokens_work_with_access_token_auth() {
    let emu = Emu::start().await;
    let key = emu.create_project("topics-proj").await;
    let tokens = emu.project_devices("topics-proj", 3).await;
    let source = ServiceAccountTokenSource::from_json(&key, OAuthConfig::default()).unwrap();
    let topics = TopicManager::new(
        IidAuth::OAuth(Arc::new(source)),
        HttpConfig::new().with_endpoint(emu.base.clone()),
    )
    .unwrap();

    let added = topics.subscribe("sports", &tokens).await.unwrap();

    assert_eq!((added.success_count, added.failure_count), (3, 0));
    assert_eq!(
        subscribers(&emu, "sports").await,
        tokens.iter().cloned().collect()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_condition_reaches_exactly_the_matching_devices() {
    let emu = Emu::start().await;
    let devices = emu.devices(5).await;
    let topics = manager(&emu);
    // d0: A; d1: A, B; d2: B; d3: A, C; d4: nothing.
    topics
        .subscribe(
            "TopicA",
            &[devices[0].clone(), devices[1].clone(), devices[3].clone()],
        )
        .await
        .unwrap();
    topics
        .subscribe("TopicB", &[devices[1].clone(), devices[2].clone()])
        .await
        .unwrap();
    topics
        .subscribe("TopicC", &[devices[3].clone()])
        .await
        .unwrap();
    let sender = emu.legacy("/fcm/send");

    // docs/protocols.md, "Topics: conditions": 'TopicA' in topics && !('TopicB' in topics) → d0 and
    // d3 only.
    let condition = "'TopicA' in topics && !('TopicB' in topics)";
    let result = sender
        .send(&JsonMessage::to_condition(condition).data("k", "cond"))
        .await
        .unwrap();
    assert!(
        result.topic_message_id().is_some(),
        "{:?}",
        result.topic_error()
    );

    // A topic send reaches exactly its subscribers.
    sender
        .send(&JsonMessage::to_topic("TopicB").data("k", "topic"))
        .await
        .unwrap();

    for (i, device) in devices.iter().enumerate() {
        let inbox = emu.inbox(device).await;
        let got: BTreeSet<String> = inbox
            .iter()
            .filter_map(|m| m["data"]["k"].as_str().map(str::to_string))
            .collect();
        let mut want = BTreeSet::new();
        if i == 0 || i == 3 {
            want.insert("cond".to_string());
        }
        if i == 1 || i == 2 {
            want.insert("topic".to_string());
        }
        assert_eq!(got, want, "device {i}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn v1_registrations_subscribe_and_unsubscribe_per_token() {
    let emu = Emu::start().await;
    let key = emu.create_project("reg-proj").await;
    let mut tokens = emu.project_devices("reg-proj", 6).await;
    emu.uninstall(&tokens[2]).await;
    tokens[4] = truncated(&tokens[4]);
    let source = ServiceAccountTokenSource::from_json(&key, OAuthConfig::default()).unwrap();
    let topics = TopicManager::new(
        IidAuth::OAuth(Arc::new(source)),
        HttpConfig::new().with_endpoint(emu.base.clone()),
    )
    .unwrap()
    .with_fcm_base_url(&emu.base)
    .unwrap();

    let added = topics
        .subscribe_v1("/topics/alerts", &tokens)
        .await
        .unwrap();

    assert_eq!((added.success_count, added.failure_count), (4, 2));
    // docs/protocols.md, "FCM v1: errors": an uninstalled app's token is UNREGISTERED, a malformed
    // one INVALID_ARGUMENT.
    let errors: Vec<(usize, &str)> = added
        .errors
        .iter()
        .map(|e| (e.index, e.reason.as_str()))
        .collect();
    assert_eq!(errors, vec![(2, "UNREGISTERED"), (4, "INVALID_ARGUMENT")]);
    let expected: BTreeSet<String> = [0, 1, 3, 5].iter().map(|&i| tokens[i].clone()).collect();
    assert_eq!(subscribers(&emu, "alerts").await, expected);

    let good: Vec<String> = [0, 1, 3, 5].iter().map(|&i| tokens[i].clone()).collect();
    let removed = topics.unsubscribe_v1("alerts", &good).await.unwrap();
    assert_eq!((removed.success_count, removed.failure_count), (4, 0));
    assert!(subscribers(&emu, "alerts").await.is_empty());

    // The API-key form cannot use these endpoints.
    assert!(matches!(
        manager(&emu).subscribe_v1("alerts", &good).await,
        Err(IidError::NeedsOAuthProject)
    ));
    emu.shutdown().await;
}
