//! `/openapi.json` describes every route and error body, and every route it describes exists.

mod common;

use std::collections::BTreeSet;

use common::{APP, start};
use reqwest::{Method, StatusCode};

/// Every route of the API, written down here by hand: a route added to the gateway without
/// documentation, or documented without existing, fails this test.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/apps/{app}"),
    ("get", "/v1/apps/{app}/devices"),
    ("post", "/v1/apps/{app}/devices:import"),
    ("put", "/v1/apps/{app}/devices/{device_id}"),
    ("get", "/v1/apps/{app}/devices/{device_id}"),
    ("delete", "/v1/apps/{app}/devices/{device_id}"),
    ("post", "/v1/apps/{app}/messages"),
    ("get", "/v1/apps/{app}/messages/{id}"),
    ("get", "/v1/messages/{id}"),
    ("get", "/v1/apps/{app}/events"),
    ("get", "/v1/apps/{app}/events/stream"),
    ("get", "/v1/apps/{app}/webhook"),
    ("get", "/c2dm/registration"),
    ("get", "/c2dm/confirmation"),
    ("get", "/v1/apps/{app}/c2dm/registration"),
    ("get", "/v1/apps/{app}/c2dm/confirmation"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_routes_and_each_one_answers() {
    let env = start().await;
    let a = env.call_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let doc = a.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_string(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    // Every documented route is routed: no "no such route", no 405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{app}", APP)
            .replace("{device_id}", "some-device")
            .replace("{id}", "01900000-0000-7000-8000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        if concrete.ends_with("/stream") {
            let r = env
                .http
                .get(format!("{}{concrete}", env.base))
                .bearer_auth(common::KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{concrete}");
            continue;
        }
        let a = env.call(method.clone(), &concrete, None).await;
        assert_ne!(
            a.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}"
        );
        assert_ne!(
            a.body["error"]["message"], "no such route",
            "{method} {concrete}"
        );
    }

    // Operations that take a key say so; error answers point at the error body schema.
    let components = &doc["components"]["schemas"];
    for name in [
        "ErrorBody",
        "DeviceView",
        "MessageStatus",
        "EventView",
        "SendBody",
        "Accepted",
    ] {
        assert!(components.get(name).is_some(), "schema {name} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, r) in responses {
                if status.starts_with('4') && path.starts_with("/v1/") && !path.contains("/c2dm/") {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            let needs_key = path.starts_with("/v1/") && !path.contains("/c2dm/");
            assert_eq!(op.get("security").is_some(), needs_key, "{method} {path}");
        }
    }
    let send = &doc["paths"]["/v1/apps/{app}/messages"]["post"];
    assert_eq!(
        send["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SendBody"
    );
    let targets = &components["TargetsBody"]["properties"];
    for t in [
        "device_ids",
        "tokens",
        "users",
        "tags",
        "topic",
        "condition",
        "all",
    ] {
        assert!(targets.get(t).is_some(), "targets.{t} undocumented");
    }
}
