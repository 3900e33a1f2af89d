//! Every target kind reaches exactly the devices it names, over real sockets, and each
//! device receives one copy whatever overlaps.

mod common;

use common::{cases, start, start_with};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_kind_reaches_exactly_its_devices() {
    let env = start().await;
    let tokens = env.tokens(6, "gcm").await;
    // d0..d5 with users, tags and registry topics; d4 disabled, d5 unregistered later.
    let layout = [
        ("d0", "u1", json!(["vip"]), json!(["news"])),
        ("d1", "u1", json!([]), json!(["news", "sport"])),
        ("d2", "u2", json!(["vip"]), json!(["sport"])),
        ("d3", "u3", json!([]), json!([])),
        ("d4", "u1", json!(["vip"]), json!(["news"])),
        ("d5", "u3", json!([]), json!([])),
    ];
    for (i, (id, user, tags, topics)) in layout.iter().enumerate() {
        env.register(
            id,
            &tokens[i],
            json!({"user": user, "tags": tags, "topics": topics}),
        )
        .await;
    }
    env.register(
        "d4",
        &tokens[4],
        json!({"user": "u1", "tags": ["vip"], "topics": ["news"], "state": "disabled"}),
    )
    .await;
    let stranger = env.tokens(1, "gcm").await.remove(0);

    let cases_sent: Vec<(&str, Value)> = vec![
        ("all", json!({"all": true})),
        ("ids", json!({"device_ids": ["d1", "d3"]})),
        ("tokens", json!({"tokens": [tokens[2], stranger]})),
        ("users", json!({"users": ["u1"]})),
        ("tags", json!({"tags": ["vip"]})),
        ("topic", json!({"topic": "news"})),
        (
            "condition",
            json!({"condition": "'sport' in topics && !('news' in topics)"}),
        ),
        (
            "union",
            json!({"users": ["u3"], "tags": ["vip"], "device_ids": ["d3", "d0"], "tokens": [tokens[0]]}),
        ),
    ];
    for (case, targets) in &cases_sent {
        let sent = env
            .send(json!({"targets": targets, "data": {"case": case}}))
            .await;
        let done = env.wait_done(sent["id"].as_str().unwrap()).await;
        assert_eq!(
            done["counts"]["sent"], done["deliveries"],
            "{case}: {done:#}"
        );
    }
    let got = |i: usize| {
        let token = tokens[i].clone();
        let env = &env;
        async move { cases(&env.inbox(&token).await) }
    };
    assert_eq!(got(0).await, ["all", "users", "tags", "topic", "union"]);
    assert_eq!(got(1).await, ["all", "ids", "users", "topic"]);
    assert_eq!(
        got(2).await,
        ["all", "tokens", "tags", "condition", "union"]
    );
    assert_eq!(got(3).await, ["all", "ids", "union"]);
    assert_eq!(
        got(4).await,
        Vec::<String>::new(),
        "a disabled device receives nothing"
    );
    assert_eq!(got(5).await, ["all", "union"]);
    assert_eq!(cases(&env.inbox(&stranger).await), ["tokens"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_carries_messages_to_its_devices() {
    let env = start().await;
    let gcm = env.tokens(3, "gcm").await;
    let c2dm = env.tokens(1, "c2dm").await;
    env.register("v1", &gcm[0], json!({})).await;
    env.register("legacy", &gcm[1], json!({"channel": "legacy"}))
        .await;
    env.register("xmpp", &gcm[2], json!({"channel": "xmpp"}))
        .await;
    env.register("c2dm", &c2dm[0], json!({"channel": "c2dm"}))
        .await;
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "every"}, "collapse_key": "k"}))
        .await;
    let done = env.wait_done(sent["id"].as_str().unwrap()).await;
    assert_eq!(done["counts"]["sent"], 4, "{done:#}");
    for (token, via) in [
        (&gcm[0], "fcm-v1"),
        (&gcm[1], "legacy-json"),
        (&gcm[2], "ccs"),
        (&c2dm[0], "c2dm"),
    ] {
        let inbox = env.inbox(token).await;
        assert_eq!(inbox.len(), 1, "{via}: {inbox:?}");
        assert_eq!(inbox[0]["via"], via);
        assert_eq!(inbox[0]["data"]["case"], "every");
    }
    // The results name the channel and the provider's message id of each delivery.
    let results = done["results"].as_array().unwrap();
    let mut channels: Vec<&str> = results
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    channels.sort();
    assert_eq!(channels, ["c2dm", "fcm", "legacy", "xmpp"]);
    assert!(results.iter().all(|r| r["provider_message_id"].is_string()));
    // A message may force one channel over the devices' own: v1 for a legacy device.
    let forced = env
        .send(json!({"targets": {"device_ids": ["legacy"]}, "data": {"case": "forced"}, "channel": "fcm"}))
        .await;
    env.wait_done(forced["id"].as_str().unwrap()).await;
    let inbox = env.inbox(&gcm[1]).await;
    assert_eq!(inbox.last().unwrap()["via"], "fcm-v1");
    let a = env.call(Method::GET, "/v1/apps/sandbox", None).await;
    let listed: Vec<&str> = a.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["c2dm", "fcm", "legacy", "xmpp"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fanout_larger_than_a_chunk_reaches_every_device_once() {
    // Chunks of 4: the 202 holds the first 4 deliveries, the claims store the rest.
    let env = start_with(|spec| spec.storage.fanout_chunk = 4).await;
    let tokens = env.tokens(11, "gcm").await;
    for (i, token) in tokens.iter().enumerate() {
        // Every other device on the legacy channel: a claim of one channel queues the other's.
        let extra = if i % 2 == 1 {
            json!({"channel": "legacy"})
        } else {
            json!({})
        };
        env.register(&format!("d{i:02}"), token, extra).await;
    }
    let sent = env
        .send(json!({"targets": {"all": true}, "data": {"case": "chunked"}}))
        .await;
    assert_eq!(sent["expanding"], true, "{sent:#}");
    assert_eq!(sent["deliveries"], 4, "{sent:#}");
    let done = env.wait_done(sent["id"].as_str().unwrap()).await;
    assert_eq!(done["expanding"], false, "{done:#}");
    assert_eq!(done["deliveries"], 11, "{done:#}");
    assert_eq!(done["counts"]["sent"], 11, "{done:#}");
    for token in &tokens {
        assert_eq!(cases(&env.inbox(token).await), ["chunked"], "{token}");
    }
}
