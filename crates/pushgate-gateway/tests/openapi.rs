//! `/openapi.json` describes every route and error body, and every route it describes exists.

mod common;

use std::collections::BTreeSet;

use common::{APP, start};
use pushgate_gateway::api::doc_rules::C2DM_REFUSED_METHODS;
use pushgate_gateway::api::{PAGE_DEFAULT, PAGE_MAX};
use pushgate_gateway::c2dm_flow::{
    DEVICE_ID_MAX, MIN_LEN, REGISTRATION_ID_MAX, REGISTRATION_TOKEN_KEY, REGISTRATION_TOKEN_LEN,
};
use pushgate_gateway::device_rules::{
    DEVICE_FIELDS, MAX_DEVICE_ID_CHARS, MAX_LABEL_CHARS, MAX_LABELS, MAX_TOKEN_CHARS,
};
use pushgate_gateway::message::{MAX_COLLAPSE_KEY_CHARS, MAX_TARGET_CHARS};
use pushgate_store::{DeliveryState, DeviceState, EventKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
    ("post", "/v1/admin/reload"),
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
    let mut expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    // The C2DM-era routes also document the 501 of every other method, as django-c2dm.
    for (_, path) in ROUTES.iter().filter(|(_, p)| p.contains("/c2dm/")) {
        for method in ["put", "post", "delete", "patch"] {
            expected.insert((method.to_string(), path.to_string()));
        }
    }
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

/// The document, as the running gateway serves it.
async fn document(env: &common::Env) -> Value {
    let a = env.call_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(a.status, StatusCode::OK);
    a.body
}

/// The schema of parameter `name` of `method path`.
fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has no parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{method} {path} has no parameter {name}"))
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Value {
    Value::Array(all.iter().map(|v| Value::from(name(*v))).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_ids_are_unique() {
    let env = start().await;
    let doc = document(&env).await;
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(seen.insert(id.to_string()), "operationId {id} twice");
        }
    }
    for id in [
        "put_device",
        "get_device",
        "list_devices",
        "get_app",
        "get_message",
    ] {
        assert!(seen.contains(id), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_limits_are_declared_and_enforced_alike() {
    let env = start().await;
    let doc = document(&env).await;
    let listed = [
        ("/v1/apps/{app}/devices", "/v1/apps/sandbox/devices"),
        ("/v1/apps/{app}/events", "/v1/apps/sandbox/events"),
    ];
    for path in [
        "/v1/apps/{app}/devices",
        "/v1/apps/{app}/events",
        "/v1/apps/{app}/events/stream",
        "/v1/messages/{id}",
        "/v1/apps/{app}/messages/{id}",
    ] {
        let limit = param(&doc, path, "get", "limit");
        assert_eq!(limit["minimum"], 1, "{path}");
        assert_eq!(limit["maximum"], PAGE_MAX, "{path}");
        assert_eq!(limit["default"], PAGE_DEFAULT, "{path}");
    }
    assert_eq!(PAGE_MAX, 1000);
    for (_, concrete) in listed {
        for (limit, ok) in [
            (0, false),
            (1, true),
            (PAGE_MAX, true),
            (PAGE_MAX + 1, false),
        ] {
            let a = env
                .call(Method::GET, &format!("{concrete}?limit={limit}"), None)
                .await;
            let want = if ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(a.status, want, "{concrete}?limit={limit}: {}", a.text);
            if !ok {
                assert_eq!(a.body["error"]["field"], "limit");
            }
        }
    }
    // A message's results page the same way.
    let sent = env
        .send(json!({"targets": {"tokens": ["t-1"]}, "data": {"k": "v"}}))
        .await;
    let id = sent["id"].as_str().unwrap().to_string();
    for (limit, want) in [
        (0, StatusCode::BAD_REQUEST),
        (PAGE_MAX, StatusCode::OK),
        (PAGE_MAX + 1, StatusCode::BAD_REQUEST),
    ] {
        let a = env
            .call(
                Method::GET,
                &format!("/v1/messages/{id}?limit={limit}"),
                None,
            )
            .await;
        assert_eq!(a.status, want, "limit={limit}: {}", a.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_type_enums_are_the_stores_and_the_server_takes_exactly_them() {
    let env = start().await;
    let doc = document(&env).await;
    let states = param(&doc, "/v1/apps/{app}/devices", "get", "state");
    assert_eq!(states["enum"], json!(["active", "disabled", "invalid"]));
    assert_eq!(states["enum"], names(DeviceState::ALL, DeviceState::as_str));
    for path in ["/v1/apps/{app}/events", "/v1/apps/{app}/events/stream"] {
        let kinds = param(&doc, path, "get", "type");
        assert_eq!(
            kinds["enum"],
            names(EventKind::ALL, EventKind::as_str),
            "{path}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["DeviceView"]["properties"]["state"]["enum"],
        names(DeviceState::ALL, DeviceState::as_str)
    );
    assert_eq!(
        schemas["DeliveryView"]["properties"]["state"]["enum"],
        names(DeliveryState::ALL, DeliveryState::as_str)
    );
    assert_eq!(
        schemas["EventView"]["properties"]["type"]["enum"],
        names(EventKind::ALL, EventKind::as_str)
    );
    for s in DeviceState::ALL {
        let a = env
            .call(
                Method::GET,
                &format!("/v1/apps/{APP}/devices?state={s}"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "state={s}: {}", a.text);
    }
    for k in EventKind::ALL {
        let a = env
            .call(
                Method::GET,
                &format!("/v1/apps/{APP}/events?type={k}"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "type={k}: {}", a.text);
    }
    for (path, name) in [("devices", "state"), ("events", "type")] {
        let a = env
            .call(
                Method::GET,
                &format!("/v1/apps/{APP}/{path}?{name}=Active"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}?{name}=Active");
        assert_eq!(a.body["error"]["field"], name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_bodies_and_lengths_are_the_device_rules() {
    let env = start().await;
    let doc = document(&env).await;
    let schemas = &doc["components"]["schemas"];
    let put = &doc["paths"]["/v1/apps/{app}/devices/{device_id}"]["put"];
    assert_eq!(
        put["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/DeviceBody"
    );
    let fields = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let all: BTreeSet<String> = DEVICE_FIELDS.iter().map(|f| f.to_string()).collect();
    let mut without_id = all.clone();
    without_id.remove("device_id");
    assert_eq!(fields("DeviceBody"), without_id);
    assert_eq!(fields("ImportedDevice"), all);
    assert_eq!(schemas["DeviceBody"]["additionalProperties"], false);
    assert_eq!(schemas["ImportedDevice"]["additionalProperties"], false);
    let required = |name: &str| schemas[name]["required"].as_array().unwrap().clone();
    assert!(required("ImportedDevice").contains(&json!("device_id")));
    assert!(required("DeviceBody").contains(&json!("token")));
    assert_eq!(
        schemas["ImportBody"]["properties"]["devices"]["items"]["$ref"],
        "#/components/schemas/ImportedDevice"
    );
    assert_eq!(
        schemas["ImportBody"]["properties"]["devices"]["maxItems"],
        env.spec.limits.max_device_batch
    );
    let body = &schemas["DeviceBody"]["properties"];
    assert_eq!(body["token"]["maxLength"], MAX_TOKEN_CHARS);
    assert_eq!(body["user"]["maxLength"], MAX_LABEL_CHARS);
    assert_eq!(body["tags"]["maxItems"], MAX_LABELS);
    assert_eq!(body["topics"]["items"]["maxLength"], MAX_LABEL_CHARS);
    for method in ["put", "get", "delete"] {
        let id = param(
            &doc,
            "/v1/apps/{app}/devices/{device_id}",
            method,
            "device_id",
        );
        assert_eq!(id["minLength"], 1);
        assert_eq!(id["maxLength"], MAX_DEVICE_ID_CHARS, "{method}");
    }
    let targets = &schemas["TargetsBody"]["properties"];
    assert_eq!(
        targets["tokens"]["maxItems"],
        env.spec.limits.max_target_list
    );
    assert_eq!(targets["tokens"]["items"]["maxLength"], MAX_TARGET_CHARS);
    assert_eq!(
        schemas["SendBody"]["properties"]["collapse_key"]["maxLength"],
        MAX_COLLAPSE_KEY_CHARS
    );

    // The server: the longest id and token are taken, one more byte is not.
    let put_device = |id: String, body: Value| {
        let env = &env;
        async move {
            env.call(
                Method::PUT,
                &format!("/v1/apps/{APP}/devices/{id}"),
                Some(body),
            )
            .await
        }
    };
    let longest = "d".repeat(MAX_DEVICE_ID_CHARS);
    let a = put_device(longest, json!({"token": "t".repeat(MAX_TOKEN_CHARS)})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let a = put_device("d".repeat(MAX_DEVICE_ID_CHARS + 1), json!({"token": "t"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["field"], "device_id");
    let a = put_device(
        "x".into(),
        json!({"token": "t".repeat(MAX_TOKEN_CHARS + 1)}),
    )
    .await;
    assert_eq!(a.body["error"]["field"], "token", "{}", a.text);
    // PUT takes no device_id in its body (the document's DeviceBody has none).
    let a = put_device("x".into(), json!({"device_id": "x", "token": "t"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"]["field"], "device_id");
    let too_many: Vec<String> = (0..=MAX_LABELS).map(|i| format!("t{i}")).collect();
    let a = put_device("x".into(), json!({"token": "t", "tags": too_many})).await;
    assert_eq!(a.body["error"]["field"], "tags", "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_text_and_the_c2dm_parameters_have_their_lengths() {
    let env = start().await;
    let doc = document(&env).await;
    let ok = &doc["paths"]["/v1/apps/{app}/events/stream"]["get"]["responses"]["200"];
    assert_eq!(
        ok["content"]["text/event-stream"]["schema"]["type"],
        "string"
    );
    assert!(ok["description"].as_str().unwrap().contains("data:"));
    assert_eq!(ok["content"].as_object().unwrap().len(), 1);

    for prefix in ["", "/v1/apps/{app}"] {
        let reg = format!("{prefix}/c2dm/registration");
        let conf = format!("{prefix}/c2dm/confirmation");
        for path in [&reg, &conf] {
            let d = param(&doc, path, "get", "device_id");
            assert_eq!(
                (&d["minLength"], &d["maxLength"]),
                (&json!(MIN_LEN), &json!(DEVICE_ID_MAX))
            );
            for method in C2DM_REFUSED_METHODS {
                let op = &doc["paths"][path.as_str()][*method];
                let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
                assert_eq!(statuses, ["501"], "{method} {path}");
            }
        }
        let r = param(&doc, &reg, "get", "registration_id");
        assert_eq!(
            (&r["minLength"], &r["maxLength"]),
            (&json!(MIN_LEN), &json!(REGISTRATION_ID_MAX))
        );
        let t = param(&doc, &conf, "get", REGISTRATION_TOKEN_KEY);
        assert_eq!(t["minLength"], REGISTRATION_TOKEN_LEN);
        assert_eq!(t["maxLength"], REGISTRATION_TOKEN_LEN);
    }
    // The server's answers at those bounds (bare statuses, as django-c2dm).
    let reg = |device: String, registration: String| {
        let env = &env;
        async move {
            let path =
                format!("/c2dm/registration?device_id={device}&registration_id={registration}");
            env.call_as(None, Method::GET, &path, None).await.status
        }
    };
    let r = "r".repeat(MIN_LEN);
    assert_eq!(
        reg("d".repeat(MIN_LEN - 1), r.clone()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        reg("d".repeat(DEVICE_ID_MAX + 1), r.clone()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        reg("d".repeat(DEVICE_ID_MAX), r.clone()).await,
        StatusCode::OK
    );
    assert_eq!(
        reg("e".repeat(MIN_LEN), "r".repeat(REGISTRATION_ID_MAX + 1)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        reg("e".repeat(MIN_LEN), "r".repeat(REGISTRATION_ID_MAX)).await,
        StatusCode::OK
    );
    let a = env
        .call_as(None, Method::POST, "/c2dm/registration", None)
        .await;
    assert_eq!(a.status, StatusCode::NOT_IMPLEMENTED);
}
