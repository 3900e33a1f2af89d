//! The Instance ID API and the v1 registrations endpoints over real sockets
//! (docs/protocols.md, "Topics: limits", "Instance ID",
//! "Emulator checklist: topics, groups and Instance ID").

mod common;

use common::{Answer, Emu, KEY, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get(emu: &Emu, path: &str, key: &str) -> Answer {
    let resp = emu
        .http
        .get(emu.url(path))
        .header("Authorization", format!("key={key}"))
        .send()
        .await
        .unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// A token of the right shape that no device here has (issued by another emulator).
fn unknown_token(_real: &str) -> String {
    pushgate_emulator::token::generate()
}

#[tokio::test]
async fn batch_add_of_1000_with_one_bad_token_then_batch_remove() {
    let emu = start().await;
    let mut tokens = emu.devices(json!({"count": 1000})).await;
    tokens[417] = "not-a-token".to_string();
    let a = emu.iid_batch("batchAdd", "movies", &tokens).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let results = a.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1000);
    for (i, r) in results.iter().enumerate() {
        if i == 417 {
            assert_eq!(r, &json!({"error": "INVALID_ARGUMENT"}));
        } else {
            assert_eq!(r, &json!({}), "index {i}");
        }
    }
    let (_, v) = emu
        .control(Method::GET, "/emulator/topics/movies", None)
        .await;
    assert_eq!(v["subscribers"].as_array().unwrap().len(), 999);

    // An unknown (well-formed) token is NOT_FOUND; so is an uninstalled one.
    tokens[417] = unknown_token(&tokens[0]);
    emu.uninstall(&tokens[3]).await;
    let a = emu.iid_batch("batchRemove", "movies", &tokens).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let results = a.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1000);
    for (i, r) in results.iter().enumerate() {
        match i {
            3 | 417 => assert_eq!(r, &json!({"error": "NOT_FOUND"}), "index {i}"),
            _ => assert_eq!(r, &json!({}), "index {i}"),
        }
    }
    let (_, v) = emu
        .control(Method::GET, "/emulator/topics/movies", None)
        .await;
    // Only the uninstalled device's subscription is left.
    assert_eq!(v["subscribers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn batch_refusals() {
    let emu = start().await;
    let tokens = emu.device(1).await;
    let too_many: Vec<String> = (0..1001).map(|_| tokens[0].clone()).collect();
    let a = emu.iid_batch("batchAdd", "x", &too_many).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "InvalidArgument");
    let a = emu
        .raw(
            "/iid/v1:batchAdd",
            Some(KEY),
            Some("application/json"),
            "{nope",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"], "InvalidArgument");
    let body = json!({"to": "movies", "registration_tokens": tokens}).to_string();
    let a = emu
        .raw(
            "/iid/v1:batchAdd",
            Some(KEY),
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let body = json!({"to": "/topics/m", "registration_tokens": tokens}).to_string();
    let a = emu
        .raw(
            "/iid/v1:batchAdd",
            Some("wrong"),
            Some("application/json"),
            body.clone(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Bearer auth needs `access_token_auth: true`.
    let bearer = emu.access_token().await;
    let call = |with_flag: bool| {
        let mut req = emu
            .http
            .post(emu.url("/iid/v1:batchAdd"))
            .bearer_auth(&bearer)
            .header("Content-Type", "application/json")
            .body(body.clone());
        if with_flag {
            req = req.header("access_token_auth", "true");
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(call(false).await, StatusCode::UNAUTHORIZED);
    assert_eq!(call(true).await, StatusCode::OK);
}

#[tokio::test]
async fn too_many_topics_per_instance() {
    let emu = start().await;
    let tokens = emu.device(1).await;
    for i in 0..2000 {
        let a = emu
            .http
            .post(emu.url(&format!("/iid/v1/{}/rel/topics/t{i}", tokens[0])))
            .header("Authorization", format!("key={KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::OK);
    }
    let a = emu.iid_batch("batchAdd", "one-more", &tokens).await;
    assert_eq!(a.json()["results"][0]["error"], "TOO_MANY_TOPICS");
}

#[tokio::test]
async fn info_with_and_without_details() {
    let emu = start().await;
    let tokens = emu
        .devices(json!({"count": 1, "package": "com.iid.example"}))
        .await;
    emu.subscribe("topicname1", &tokens).await;
    let a = get(&emu, &format!("/iid/info/{}", tokens[0]), KEY).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert_eq!(v["application"], "com.iid.example");
    assert_eq!(v["authorizedEntity"], "1234567890");
    assert_eq!(v["platform"], "ANDROID");
    assert!(v.get("rel").is_none(), "{v}");

    let a = get(&emu, &format!("/iid/info/{}?details=true", tokens[0]), KEY).await;
    let v = a.json();
    let date = v["rel"]["topics"]["topicname1"]["addDate"]
        .as_str()
        .unwrap();
    // YYYY-MM-DD
    assert_eq!(date.len(), 10, "{date}");
    assert_eq!(&date[4..5], "-");
    assert_eq!(&date[7..8], "-");

    let a = get(
        &emu,
        &format!("/iid/info/{}", unknown_token(&tokens[0])),
        KEY,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json(), json!({"error": "NotFound"}));
    let a = get(&emu, "/iid/info/garbage", KEY).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json(), json!({"error": "InvalidToken"}));
}

#[tokio::test]
async fn v1_registrations_subscribe_and_unsubscribe() {
    let emu = start().await;
    let tokens = emu.device(1).await;
    let bearer = emu.access_token().await;
    let base = "/v1/projects/pushgate-emulator/registrations";
    let resp = emu
        .http
        .post(emu.url(&format!(
            "{base}/{}/topicSubscriptions?topic_name=sports",
            tokens[0]
        )))
        .bearer_auth(&bearer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));
    let (_, v) = emu
        .control(Method::GET, "/emulator/topics/sports", None)
        .await;
    assert_eq!(v["subscribers"][0]["token"], tokens[0].as_str());

    let resp = emu
        .http
        .delete(emu.url(&format!(
            "{base}/{}/topicSubscriptions/sports?allow_missing=true",
            tokens[0]
        )))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));
    let (_, v) = emu
        .control(Method::GET, "/emulator/topics/sports", None)
        .await;
    assert!(v["subscribers"].as_array().unwrap().is_empty());

    // Unknown token: 404 google.rpc.Status with FcmError UNREGISTERED (docs/protocols.md,
    // "FCM v1: errors").
    let resp = emu
        .http
        .post(emu.url(&format!(
            "{base}/{}/topicSubscriptions?topic_name=sports",
            unknown_token(&tokens[0])
        )))
        .bearer_auth(&bearer)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    let details = v["error"]["details"].as_array().unwrap();
    assert!(
        details.iter().any(
            |d| d["@type"] == "type.googleapis.com/google.firebase.fcm.v1.FcmError"
                && d["errorCode"] == "UNREGISTERED"
        ),
        "{v}"
    );
    // No bearer: 401.
    let resp = emu
        .http
        .post(emu.url(&format!(
            "{base}/{}/topicSubscriptions?topic_name=sports",
            tokens[0]
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
