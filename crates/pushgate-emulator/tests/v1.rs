//! FCM HTTP v1 and its OAuth token endpoint over real sockets, with expected values taken
//! from docs/protocols.md, "FCM HTTP v1" and "Emulator checklist: FCM v1" (never from the
//! emulator's code).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Answer, Emu, start, start_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pushgate_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode, Version};
use serde_json::{Value, json};

const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const CLOUD_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GOOGLE_AUD: &str = "https://oauth2.googleapis.com/token";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEFAULT_PROJECT: &str = "pushgate-emulator";
const DEFAULT_NUMBER: &str = "1234567890";
const FCM_ERROR: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn answer(resp: reqwest::Response) -> Answer {
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// Claims as google-auth builds them.
fn claims(key: &Value, aud: &str) -> Value {
    let iat = now();
    json!({"iss": key["client_email"], "scope": FCM_SCOPE, "aud": aud, "iat": iat, "exp": iat + 3600})
}

/// Signs `claims` with `key`'s private key, `kid` = its key id.
fn sign(key: &Value, claims: &Value, with_kid: bool) -> String {
    let mut header = Header::new(Algorithm::RS256);
    if with_kid {
        header.kid = Some(key["private_key_id"].as_str().unwrap().to_string());
    }
    let pem = key["private_key"].as_str().unwrap();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn key_file(emu: &Emu, project: &str) -> Value {
    let (status, v) = emu
        .control(
            Method::GET,
            &format!("/emulator/projects/{project}/key"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn create_project(emu: &Emu, spec: Value) -> Value {
    let (status, v) = emu
        .control(Method::POST, "/emulator/projects", Some(spec))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn token_form(emu: &Emu, form: &[(&str, &str)]) -> Answer {
    let resp = emu
        .http
        .post(emu.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    answer(resp).await
}

async fn exchange(emu: &Emu, assertion: &str) -> Answer {
    token_form(emu, &[("grant_type", GRANT), ("assertion", assertion)]).await
}

/// An access token for `key`, through the token endpoint.
async fn access_token(emu: &Emu, key: &Value) -> String {
    let aud = key["token_uri"].as_str().unwrap().to_string();
    let a = exchange(emu, &sign(key, &claims(key, &aud), true)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["access_token"].as_str().unwrap().to_string()
}

async fn default_token(emu: &Emu) -> String {
    let key = key_file(emu, DEFAULT_PROJECT).await;
    access_token(emu, &key).await
}

async fn send_raw(emu: &Emu, project: &str, bearer: Option<&str>, body: &str) -> Answer {
    let mut req = emu
        .http
        .post(emu.url(&format!("/v1/projects/{project}/messages:send")))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(b) = bearer {
        req = req.header("Authorization", format!("Bearer {b}"));
    }
    answer(req.send().await.unwrap()).await
}

async fn send(emu: &Emu, project: &str, bearer: &str, body: Value) -> Answer {
    send_raw(emu, project, Some(bearer), &body.to_string()).await
}

fn to_token(token: &str) -> Value {
    json!({"message": {"token": token, "data": {"k": "v"}}})
}

/// Asserts a Status body: HTTP status, `status` name and FcmError code.
fn assert_fcm(a: &Answer, http: u16, status: &str, code: &str) {
    assert_eq!(a.status.as_u16(), http, "{}", a.text);
    let v = a.json();
    assert_eq!(v["error"]["code"], http, "{v}");
    assert_eq!(v["error"]["status"], status, "{v}");
    assert_eq!(fcm_code(&v).as_deref(), Some(code), "{v}");
}

fn fcm_code(v: &Value) -> Option<String> {
    detail(v, FCM_ERROR).map(|d| d["errorCode"].as_str().unwrap().to_string())
}

fn detail<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == kind)
}

#[tokio::test]
async fn created_project_has_a_usable_key_file_and_is_a_sender() {
    let emu = start().await;
    let key = create_project(&emu, json!({"project_id": "proj-a"})).await;
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["project_id"], "proj-a");
    assert_eq!(
        key["client_email"],
        "firebase-adminsdk@proj-a.iam.gserviceaccount.com"
    );
    assert_eq!(key["token_uri"], format!("{}/token", emu.base));
    assert_eq!(key["universe_domain"], "googleapis.com");
    assert_eq!(key["auth_uri"], "https://accounts.google.com/o/oauth2/auth");
    for field in [
        "private_key_id",
        "client_id",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
    ] {
        assert!(
            key[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert!(
        key["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"),
    );
    // The file parses as the proto's key type.
    let parsed: pushgate_proto::v1::oauth::ServiceAccountKey =
        serde_json::from_value(key.clone()).unwrap();
    assert_eq!(parsed.project_id, "proj-a");
    // Same key from the key endpoint.
    assert_eq!(
        key_file(&emu, "proj-a").await["private_key_id"],
        key["private_key_id"]
    );

    let token = access_token(&emu, &key).await;
    let devices = emu.devices(json!({"project_id": "proj-a"})).await;
    let a = send(&emu, "proj-a", &token, to_token(&devices[0])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let inbox = emu.inbox(&devices[0]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["via"], "fcm-v1");

    // With an explicit number: it works as a sender_id, and in the v1 path.
    create_project(
        &emu,
        json!({"project_id": "proj-b", "project_number": "555000111"}),
    )
    .await;
    let b_devices = emu.devices(json!({"sender_id": "555000111"})).await;
    let key_b = key_file(&emu, "555000111").await;
    assert_eq!(key_b["project_id"], "proj-b");
    let token_b = access_token(&emu, &key_b).await;
    let a = send(&emu, "555000111", &token_b, to_token(&b_devices[0])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.json()["name"]
            .as_str()
            .unwrap()
            .starts_with("projects/proj-b/messages/")
    );

    // Duplicates are refused.
    let (status, _) = emu
        .control(
            Method::POST,
            "/emulator/projects",
            Some(json!({"project_id": "proj-a"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn default_project_exists_and_survives_reset() {
    let emu = start().await;
    let key = key_file(&emu, DEFAULT_PROJECT).await;
    assert_eq!(
        key["client_email"],
        "firebase-adminsdk@pushgate-emulator.iam.gserviceaccount.com"
    );
    assert_eq!(
        key_file(&emu, DEFAULT_NUMBER).await["project_id"],
        DEFAULT_PROJECT
    );
    create_project(&emu, json!({"project_id": "gone"})).await;
    let (status, _) = emu.control(Method::POST, "/emulator/reset", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = emu
        .control(Method::GET, "/emulator/projects/gone/key", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Same default key after the reset.
    assert_eq!(
        key_file(&emu, DEFAULT_PROJECT).await["private_key_id"],
        key["private_key_id"]
    );
}

#[tokio::test]
async fn token_endpoint_issues_bearer_tokens_for_both_audiences() {
    let emu = start().await;
    let key = key_file(&emu, DEFAULT_PROJECT).await;
    for aud in [key["token_uri"].as_str().unwrap(), GOOGLE_AUD] {
        let a = exchange(&emu, &sign(&key, &claims(&key, aud), true)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let v = a.json();
        assert!(
            v["access_token"].as_str().unwrap().starts_with("ya29."),
            "{v}"
        );
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);
    }
    // cloud-platform scope and no kid are fine too.
    let mut c = claims(&key, GOOGLE_AUD);
    c["scope"] = json!(format!(
        "{CLOUD_SCOPE} https://www.googleapis.com/auth/datastore"
    ));
    let a = exchange(&emu, &sign(&key, &c, false)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    let (_, stats) = emu.control(Method::GET, "/emulator/stats", None).await;
    assert_eq!(stats["token_requests"], 3, "{stats}");
    let (_, activity) = emu.control(Method::GET, "/emulator/activity", None).await;
    assert!(
        activity["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == "/token"),
        "{activity}"
    );
}

#[tokio::test]
async fn token_endpoint_refusals() {
    let emu = start().await;
    let key = key_file(&emu, DEFAULT_PROJECT).await;
    let other = create_project(&emu, json!({"project_id": "other"})).await;

    let check = |a: &Answer, error: &str| {
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        assert_eq!(a.json()["error"], error, "{}", a.text);
    };

    // Signed with another project's key (no kid, so only the signature can tell).
    let forged = sign(&other, &claims(&key, GOOGLE_AUD), false);
    let a = exchange(&emu, &forged).await;
    check(&a, "invalid_grant");
    assert_eq!(a.json()["error_description"], "Invalid JWT Signature.");

    // exp - iat > 3600.
    let mut c = claims(&key, GOOGLE_AUD);
    c["exp"] = json!(c["iat"].as_u64().unwrap() + 3601);
    let a = exchange(&emu, &sign(&key, &c, true)).await;
    check(&a, "invalid_grant");
    assert_eq!(a.json()["error_description"], SHORT_LIVED);

    // Already expired.
    let mut c = claims(&key, GOOGLE_AUD);
    c["iat"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    let a = exchange(&emu, &sign(&key, &c, true)).await;
    check(&a, "invalid_grant");
    assert_eq!(a.json()["error_description"], SHORT_LIVED);

    // Unknown issuer.
    let mut c = claims(&key, GOOGLE_AUD);
    c["iss"] = json!("nobody@nowhere.iam.gserviceaccount.com");
    let a = exchange(&emu, &sign(&key, &c, true)).await;
    check(&a, "invalid_grant");
    assert_eq!(
        a.json()["error_description"],
        "Invalid grant: account not found"
    );

    // Wrong audience.
    let a = exchange(
        &emu,
        &sign(&key, &claims(&key, "https://example.com/oauth"), true),
    )
    .await;
    check(&a, "invalid_grant");

    // Wrong grant type.
    let good = sign(&key, &claims(&key, GOOGLE_AUD), true);
    let a = token_form(
        &emu,
        &[("grant_type", "client_credentials"), ("assertion", &good)],
    )
    .await;
    check(&a, "unsupported_grant_type");

    // No usable scope.
    let mut c = claims(&key, GOOGLE_AUD);
    c["scope"] = json!("https://www.googleapis.com/auth/userinfo.email");
    let a = exchange(&emu, &sign(&key, &c, true)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);

    // The good one still works.
    assert_eq!(exchange(&emu, &good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn bearer_checks() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    let body = to_token(&device).to_string();

    let a = send_raw(&emu, DEFAULT_PROJECT, None, &body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let v = a.json();
    assert_eq!(v["error"]["message"], MISSING_CREDENTIALS);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        detail(&v, ERROR_INFO).unwrap()["reason"],
        "CREDENTIALS_MISSING"
    );

    let a = send_raw(&emu, DEFAULT_PROJECT, Some("ya29.not-issued"), &body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let v = a.json();
    assert_eq!(v["error"]["message"], INVALID_CREDENTIALS);
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
    assert!(
        v["error"]
            .get("details")
            .is_none_or(|d| d.as_array().unwrap().is_empty())
    );

    // A token of another project.
    let other = create_project(&emu, json!({"project_id": "other"})).await;
    let other_token = access_token(&emu, &other).await;
    let a = send_raw(&emu, DEFAULT_PROJECT, Some(&other_token), &body).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.json()["error"]["status"], "PERMISSION_DENIED");

    // Unknown project.
    let a = send_raw(&emu, "no-such-project", Some(&token), &body).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(a.json()["error"]["status"], "NOT_FOUND");

    // The right token by id and by number, with the Admin SDK headers.
    for project in [DEFAULT_PROJECT, DEFAULT_NUMBER] {
        let resp = emu
            .http
            .post(emu.url(&format!("/v1/projects/{project}/messages:send")))
            .bearer_auth(&token)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("X-GOOG-API-FORMAT-VERSION", "2")
            .header("X-Firebase-Client", "fire-admin-python/6.5.0")
            .header("x-goog-api-client", "gl-python/3.12 fire-admin/6.5.0")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn expired_access_token_is_refused_with_access_token_expired() {
    let emu = start().await;
    let (status, _) = emu
        .control(
            Method::PUT,
            "/emulator/oauth",
            Some(json!({"lifetime_secs": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let key = key_file(&emu, DEFAULT_PROJECT).await;
    let a = exchange(&emu, &sign(&key, &claims(&key, GOOGLE_AUD), true)).await;
    assert_eq!(a.json()["expires_in"], 1);
    let token = a.json()["access_token"].as_str().unwrap().to_string();
    let device = emu.device(1).await.remove(0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    let v = a.json();
    assert_eq!(v["error"]["message"], INVALID_CREDENTIALS);
    assert_eq!(
        detail(&v, ERROR_INFO).unwrap()["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );
}

#[tokio::test]
async fn token_states_map_to_fcm_errors() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let devices = emu.device(3).await;

    // Malformed.
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token("not-a-token")).await;
    assert_fcm(&a, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT");
    assert_eq!(
        a.json()["error"]["message"],
        "The registration token is not a valid FCM registration token"
    );
    // Well-formed but never issued here.
    let stranger = pushgate_emulator::token::generate();
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&stranger)).await;
    assert_fcm(&a, 404, "NOT_FOUND", "UNREGISTERED");
    assert_eq!(
        a.json()["error"]["message"],
        "Requested entity was not found."
    );
    // Uninstalled.
    emu.uninstall(&devices[0]).await;
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&devices[0])).await;
    assert_fcm(&a, 404, "NOT_FOUND", "UNREGISTERED");
    // A device of another project.
    let other = create_project(&emu, json!({"project_id": "other"})).await;
    let other_token = access_token(&emu, &other).await;
    let a = send(&emu, "other", &other_token, to_token(&devices[1])).await;
    assert_fcm(&a, 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH");
    // Rotated: the old token still delivers (no canonical ids in v1).
    let new = emu.rotate(&devices[2]).await;
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&devices[2])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let inbox = emu.inbox(&new).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["token"], devices[2].as_str());
}

#[tokio::test]
async fn every_fcm_error_code_can_be_injected_per_token() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    // The table of docs/protocols.md, "FCM v1: errors" (UNSPECIFIED_ERROR has no documented
    // status).
    let table: [(&str, Option<(u16, &str)>); 9] = [
        ("UNREGISTERED", Some((404, "NOT_FOUND"))),
        ("SENDER_ID_MISMATCH", Some((403, "PERMISSION_DENIED"))),
        ("INVALID_ARGUMENT", Some((400, "INVALID_ARGUMENT"))),
        ("THIRD_PARTY_AUTH_ERROR", Some((401, "UNAUTHENTICATED"))),
        ("APNS_AUTH_ERROR", Some((401, "UNAUTHENTICATED"))),
        ("QUOTA_EXCEEDED", Some((429, "RESOURCE_EXHAUSTED"))),
        ("UNAVAILABLE", Some((503, "UNAVAILABLE"))),
        ("INTERNAL", Some((500, "INTERNAL"))),
        ("UNSPECIFIED_ERROR", None),
    ];
    for (code, expected) in table {
        let (status, v) = emu
            .fault(json!({"token": device, "error": code, "count": 1}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
        match expected {
            Some((http, name)) => assert_fcm(&a, http, name, code),
            None => {
                assert!(!a.status.is_success(), "{}", a.text);
                assert_eq!(fcm_code(&a.json()).as_deref(), Some(code));
            }
        }
        // Spent: the next send is delivered.
        let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
        assert_eq!(a.status, StatusCode::OK, "{code}: {}", a.text);
    }
}

#[tokio::test]
async fn path_faults_answer_with_status_body_and_retry_after() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    for (http, name, code) in [
        (503, "UNAVAILABLE", "UNAVAILABLE"),
        (500, "INTERNAL", "INTERNAL"),
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    ] {
        let (status, v) = emu
            .fault(json!({"path": "/v1/", "status": http, "retry_after": 7, "count": 1}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
        assert_fcm(&a, http, name, code);
        assert_eq!(a.header("retry-after"), Some("7"));
    }
    // Legacy paths are untouched by a /v1/ fault.
    emu.fault(json!({"path": "/v1/", "status": 503, "count": 1}))
        .await;
    let legacy = emu.send(json!({"to": device})).await;
    assert_eq!(legacy.status, StatusCode::OK);
}

#[tokio::test]
async fn project_quota_answers_429_with_retry_after() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    let (status, v) = emu
        .control(
            Method::PUT,
            &format!("/emulator/projects/{DEFAULT_PROJECT}/quota"),
            Some(json!({"per_minute": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for _ in 0..2 {
        let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let a = send(&emu, DEFAULT_PROJECT, &token, to_token(&device)).await;
    assert_fcm(&a, 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED");
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(detail(&a.json(), QUOTA_FAILURE).is_some(), "{}", a.text);
}

#[tokio::test]
async fn body_errors_use_the_front_end_wording() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);

    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"message": {"toen": device}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    let text =
        "Invalid JSON payload received. Unknown name \"toen\" at 'message': Cannot find field.";
    assert_eq!(v["error"]["message"], text);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        detail(&v, BAD_REQUEST).unwrap()["fieldViolations"],
        json!([{"field": "message", "description": text}])
    );

    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"message": {"token": device, "data": {"score": 12}}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert_eq!(
        v["error"]["message"],
        "Invalid value at 'message.data[0].value' (TYPE_STRING), 12"
    );
    assert_eq!(
        detail(&v, BAD_REQUEST).unwrap()["fieldViolations"][0]["field"],
        "message.data[0].value"
    );

    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"message": {"data": {"a": "b"}}}),
    )
    .await;
    assert_fcm(&a, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT");
    let v = a.json();
    assert_eq!(
        v["error"]["message"],
        "Recipient of the message is not set."
    );
    assert_eq!(
        detail(&v, BAD_REQUEST).unwrap()["fieldViolations"][0]["field"],
        "message"
    );

    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"message": {"token": device, "android": {"ttl": "2419201s"}}}),
    )
    .await;
    assert_fcm(&a, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT");
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("message.android.ttl"),
        "{}",
        a.text
    );
    assert!(emu.inbox(&device).await.is_empty());
}

#[tokio::test]
async fn camel_case_is_accepted() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"validateOnly": false, "message": {"token": device,
            "android": {"collapseKey": "scores", "ttl": "60s", "restrictedPackageName": "com.example.app"},
            "fcmOptions": {"analyticsLabel": "camel"}}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let inbox = emu.inbox(&device).await;
    assert_eq!(inbox[0]["collapse_key"], "scores");
    assert_eq!(inbox[0]["time_to_live"], 60);
    assert_eq!(inbox[0]["fcm_options"]["analytics_label"], "camel");
}

#[tokio::test]
async fn validate_only_checks_everything_and_delivers_nothing() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let devices = emu.device(2).await;
    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"validate_only": true, "message": {"token": devices[0], "data": {"k": "v"}}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.json()["name"],
        "projects/pushgate-emulator/messages/fake_message_id"
    );
    assert!(emu.inbox(&devices[0]).await.is_empty());
    // A stale token still fails.
    emu.uninstall(&devices[1]).await;
    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"validate_only": true, "message": {"token": devices[1]}}),
    )
    .await;
    assert_fcm(&a, 404, "NOT_FOUND", "UNREGISTERED");
}

#[tokio::test]
async fn delivered_message_lands_in_the_inbox_as_sent() {
    let emu = start().await;
    let token = default_token(&emu).await;
    let device = emu.device(1).await.remove(0);
    let a = send(
        &emu,
        DEFAULT_PROJECT,
        &token,
        json!({"message": {
            "token": device,
            "data": {"score": "850", "time": "2:45"},
            "notification": {"title": "FCM Message", "body": "hello"},
            "android": {"priority": "high", "ttl": "3.5s", "collapse_key": "c",
                        "notification": {"channel_id": "news", "color": "#ff0000"}},
            "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}},
            "webpush": {"headers": {"Urgency": "high"}},
            "fcm_options": {"analytics_label": "label"}
        }}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let name = a.json()["name"].as_str().unwrap().to_string();
    let id = name
        .strip_prefix("projects/pushgate-emulator/messages/0:")
        .unwrap_or_else(|| panic!("{name}"));
    let (micros, hex) = id.split_once('%').unwrap();
    assert!(micros.bytes().all(|b| b.is_ascii_digit()) && !micros.is_empty());
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()) && !hex.is_empty());

    let inbox = emu.inbox(&device).await;
    assert_eq!(inbox.len(), 1);
    let m = &inbox[0];
    assert_eq!(m["via"], "fcm-v1");
    assert_eq!(m["from"], DEFAULT_NUMBER);
    assert_eq!(
        format!(
            "projects/pushgate-emulator/messages/{}",
            m["message_id"].as_str().unwrap()
        ),
        name
    );
    assert_eq!(m["data"], json!({"score": "850", "time": "2:45"}));
    assert_eq!(
        m["notification"],
        json!({"title": "FCM Message", "body": "hello"})
    );
    assert_eq!(m["collapse_key"], "c");
    assert_eq!(m["time_to_live"], 3);
    assert_eq!(m["android"]["notification"]["channel_id"], "news");
    assert_eq!(m["apns"]["headers"]["apns-priority"], "10");
    assert_eq!(m["apns"]["payload"]["aps"]["badge"], 1);
    assert_eq!(m["webpush"]["headers"]["Urgency"], "high");
    assert_eq!(m["fcm_options"]["analytics_label"], "label");

    // Topic and condition targets are answered with a name.
    for target in [
        json!({"topic": "news"}),
        json!({"condition": "'a' in topics && 'b' in topics"}),
    ] {
        let a = send(&emu, DEFAULT_PROJECT, &token, json!({"message": target})).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert!(
            a.json()["name"]
                .as_str()
                .unwrap()
                .starts_with("projects/pushgate-emulator/messages/")
        );
    }
}

#[tokio::test]
async fn https_serves_h2_and_http1_with_the_instance_certificate() {
    let emu = start_with(EmulatorConfig {
        https: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .await;
    let base = emu.running.https_base_url().unwrap();
    assert_eq!(
        base,
        format!("https://{}", emu.running.https_addr().unwrap())
    );
    let pem = emu.running.tls_cert_pem().unwrap();
    let cert = reqwest::Certificate::from_pem(pem.as_bytes()).unwrap();
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert.clone()])
        .build()
        .unwrap();
    let resp = h2
        .get(format!("{base}/emulator/projects/{DEFAULT_PROJECT}/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    let key: Value = resp.json().await.unwrap();
    assert_eq!(key["token_uri"], format!("{base}/token"));

    // The whole flow over HTTPS.
    let assertion = sign(&key, &claims(&key, &format!("{base}/token")), true);
    let resp = h2
        .post(format!("{base}/token"))
        .form(&[("grant_type", GRANT), ("assertion", assertion.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let access: Value = resp.json().await.unwrap();
    let device = emu.device(1).await.remove(0);
    let resp = h2
        .post(format!(
            "{base}/v1/projects/{DEFAULT_PROJECT}/messages:send"
        ))
        .bearer_auth(access["access_token"].as_str().unwrap())
        .json(&to_token(&device))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);

    let h1 = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .http1_only()
        .build()
        .unwrap();
    let resp = h1
        .get(format!("{base}/emulator/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_serves_h2c() {
    let emu = start().await;
    assert!(emu.running.https_addr().is_none());
    assert!(emu.running.tls_cert_pem().is_none());
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = h2c.get(emu.url("/emulator/stats")).send().await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
}
