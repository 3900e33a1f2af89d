//! The event log tells the application everything the provider changed, once and in order:
//! paged, streamed live (server-sent events) and resumable from Last-Event-ID.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{APP, KEY, start};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn all_events(env: &common::Env) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let a = env
            .call(
                Method::GET,
                &format!("/v1/apps/{APP}/events?after={after}&limit=7"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let page = a.body["events"].as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        after = a.body["next_cursor"].as_i64().unwrap();
        out.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_leave_every_event_once_in_order() {
    let env = start().await;
    let tokens = env.tokens(30, "gcm").await;
    for (i, t) in tokens.iter().enumerate() {
        env.register(&format!("d{i:02}"), t, json!({"channel": "legacy"}))
            .await;
    }
    // d00..d09 uninstalled (dead), d10..d19 rotated (canonical ids), d20..d29 healthy.
    let mut rotated = HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        if i < 10 {
            env.emu(
                Method::POST,
                &format!("/emulator/devices/{t}/uninstall"),
                None,
            )
            .await;
        } else if i < 20 {
            let a = env
                .emu(Method::POST, &format!("/emulator/devices/{t}/rotate"), None)
                .await;
            rotated.insert(
                format!("d{i:02}"),
                a.body["token"].as_str().unwrap().to_string(),
            );
        }
    }
    // First d00..d04 die while a delivery waits for them: a message on their legacy channel
    // meets a 503 (its Retry-After keeps it waiting for 3 s), then a v1 send finds their tokens
    // unregistered. The waiting deliveries are settled as a consequence of that invalidation,
    // so the ordering check below has something to check.
    let early: Vec<String> = (0..5).map(|i| format!("d{i:02}")).collect();
    let fault = env
        .emu(
            Method::POST,
            "/emulator/faults",
            Some(json!({"path": "/gcm/send", "status": 503, "retry_after": "3", "count": 1})),
        )
        .await;
    assert_eq!(fault.status, StatusCode::CREATED, "{}", fault.text);
    let waiting = env
        .send(json!({"targets": {"device_ids": early}, "data": {"n": "waiting"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.wait_until(
        &waiting,
        |m| {
            m["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["attempts"] == 1)
        },
        Duration::from_secs(10),
    )
    .await;
    let via_v1 = env
        .send(json!({"targets": {"device_ids": early}, "channel": "fcm", "data": {"n": "v1"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.wait_done(&via_v1).await;
    env.wait_done(&waiting).await;
    // Then five messages at once, each to every device.
    let sends = (0..5).map(|n| {
        let env = &env;
        async move {
            env.send(json!({"targets": {"all": true}, "data": {"n": n}}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    });
    let mut ids = futures_util::future::join_all(sends).await;
    for id in &ids {
        env.wait_done(id).await;
    }
    ids.extend([waiting, via_v1]);
    let events = all_events(&env).await;
    let seqs: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids strictly increase: {seqs:?}"
    );
    let of = |t: &str| events.iter().filter(|e| e["type"] == t).collect::<Vec<_>>();
    // Each dead device invalidated exactly once, each rotated device rotated exactly once.
    let invalidated: Vec<&str> = of("device_invalidated")
        .iter()
        .map(|e| e["device_id"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = invalidated.iter().copied().collect();
    assert_eq!(
        (invalidated.len(), unique.len()),
        (10, 10),
        "{invalidated:?}"
    );
    assert!(unique.iter().all(|d| d < &"d10"));
    let rotations = of("token_rotated");
    assert_eq!(rotations.len(), 10);
    for r in &rotations {
        let device = r["device_id"].as_str().unwrap();
        assert_eq!(r["data"]["new_token"], rotated[device].as_str());
    }
    // Every delivery that did not reach its device is one delivery_failed event, and the
    // events agree with the messages' results.
    let mut not_sent = 0;
    for id in &ids {
        let m = env.message(id).await;
        not_sent += m["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] != "sent")
            .count();
    }
    let failed = of("delivery_failed");
    assert_eq!(failed.len(), not_sent, "one event per unsent delivery");
    // For each dead device, its invalidation comes before the failures it caused later.
    for dead in &unique {
        let inv = events
            .iter()
            .find(|e| e["type"] == "device_invalidated" && e["device_id"] == *dead)
            .unwrap();
        let settled: Vec<&Value> = failed
            .iter()
            .copied()
            .filter(|e| e["device_id"] == *dead && e["data"]["reason"] == "device_invalid")
            .collect();
        if early.iter().any(|d| d == dead) {
            assert!(
                !settled.is_empty(),
                "{dead}: its waiting delivery was settled by the invalidation"
            );
        }
        for s in settled {
            assert!(
                s["id"].as_i64() > inv["id"].as_i64(),
                "cause before consequence"
            );
        }
    }
    // Type filter.
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/events?type=token_rotated"),
            None,
        )
        .await;
    assert_eq!(a.body["events"].as_array().unwrap().len(), 10);
    let a = env
        .call(
            Method::GET,
            &format!("/v1/apps/{APP}/events?type=bogus"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["field"], "type");
}

/// Reads `n` SSE events from a stream response: (id, type, data).
async fn read_sse(resp: reqwest::Response, n: usize) -> Vec<(i64, String, Value)> {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events arrived",
            out.len()
        );
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the stream stalled")
            .expect("the stream ended")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf[..end].to_string();
            buf = buf[end + 2..].to_string();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<i64>().unwrap());
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                out.push((id, kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_follows_live_and_resumes_from_last_event_id() {
    let env = start().await;
    let tokens = env.tokens(6, "gcm").await;
    for (i, t) in tokens.iter().enumerate() {
        env.register(&format!("d{i}"), t, json!({})).await;
        env.emu(
            Method::POST,
            &format!("/emulator/devices/{t}/uninstall"),
            None,
        )
        .await;
    }
    let open = |last: Option<i64>, query: &str| {
        let mut req = env
            .http
            .get(format!("{}/v1/apps/{APP}/events/stream{query}", env.base))
            .bearer_auth(KEY);
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        req.send()
    };
    // Live: opened before anything happens, it sees the first three invalidations.
    let live = open(None, "?type=device_invalidated").await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    for i in 0..3 {
        let m = env
            .send(json!({"targets": {"device_ids": [format!("d{i}")]}}))
            .await;
        env.wait_done(m["id"].as_str().unwrap()).await;
    }
    let first = read_sse(live, 3).await;
    assert!(
        first
            .iter()
            .all(|(_, kind, _)| kind == "device_invalidated")
    );
    let devices: Vec<&str> = first
        .iter()
        .map(|(_, _, d)| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["d0", "d1", "d2"]);
    // Disconnected (dropped); three more happen meanwhile.
    for i in 3..6 {
        let m = env
            .send(json!({"targets": {"device_ids": [format!("d{i}")]}}))
            .await;
        env.wait_done(m["id"].as_str().unwrap()).await;
    }
    let last_seen = first.last().unwrap().0;
    let resumed = read_sse(
        open(Some(last_seen), "?type=device_invalidated")
            .await
            .unwrap(),
        3,
    )
    .await;
    let devices: Vec<&str> = resumed
        .iter()
        .map(|(_, _, d)| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        devices,
        ["d3", "d4", "d5"],
        "exactly the missed events, in order"
    );
    assert!(resumed[0].0 > last_seen);
    // ?after=0 replays from the start; the ids are the event ids of the list API.
    let listed = all_events(&env).await;
    assert_eq!(
        listed.len(),
        12,
        "an invalidation and a failed delivery per device"
    );
    let replay = read_sse(open(None, "?after=0").await.unwrap(), 12).await;
    let ids: Vec<i64> = listed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(replay.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    let a = env
        .http
        .get(format!("{}/v1/apps/{APP}/events/stream", env.base))
        .bearer_auth(KEY)
        .header("last-event-id", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
}
