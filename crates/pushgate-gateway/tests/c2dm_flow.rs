//! The C2DM-era registration flow, as django-c2dm offered it: registration stores the device
//! unconfirmed and pushes it a confirmation token, confirmation makes its registration id
//! its token, only confirmed devices receive messages, and every status code (200, 400,
//! 500, 501) is answered where django-c2dm answered it.

mod common;

use std::time::Duration;

use pushgate_testkit::{eventually, eventually_ok};

use common::{APP, count_rows, start, start_with, with_other_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get_status(env: &common::Env, path: &str) -> StatusCode {
    env.http
        .get(format!("{}{path}", env.base))
        .send()
        .await
        .unwrap()
        .status()
}

async fn wait_confirmed(env: &common::Env, token: &str) -> Value {
    eventually_ok(
        "the device's confirmation",
        Duration::from_secs(10),
        || async {
            let a = env
                .emu(Method::GET, &format!("/emulator/devices/{token}"), None)
                .await;
            if a.body["registration"]["state"] == "confirmed" {
                Ok(a.body)
            } else {
                Err(a.text)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_device_registers_confirms_and_then_receives() {
    let env = start().await;
    // Hold the confirmation message back for a moment so the unconfirmed state is visible.
    env.emu(
        Method::POST,
        "/emulator/faults",
        Some(json!({"path": "/c2dm/send", "status": 503, "retry_after": "1", "count": 1})),
    )
    .await;
    let created = env
        .emu(
            Method::POST,
            "/emulator/devices",
            Some(
                json!({"protocol": "c2dm", "confirm_via": env.base, "device_ids": ["phone-0001"]}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let device = &created.body["devices"][0];
    assert_eq!(device["registration_status"], 200, "{device}");
    let token = device["token"].as_str().unwrap().to_string();

    let unconfirmed = env.device("phone-0001").await;
    assert_eq!(unconfirmed["confirmed"], false, "{unconfirmed:#}");
    assert_eq!(unconfirmed["token"], Value::Null);
    assert_eq!(unconfirmed["pending_token"], token.as_str());
    assert_eq!(unconfirmed["registration"], "c2dm_flow");
    // Unconfirmed devices receive nothing but their confirmation message.
    let early = env
        .send(json!({"targets": {"all": true, "device_ids": ["phone-0001"]}, "collapse_key": "k", "data": {"case": "early"}}))
        .await;
    let early = env.wait_done(early["id"].as_str().unwrap()).await;
    assert_eq!(
        early["results"][0]["error"], "device_unconfirmed",
        "{early:#}"
    );

    let emulated = wait_confirmed(&env, &token).await;
    assert_eq!(emulated["registration"]["confirmation_status"], 200);
    let confirmed = env.device("phone-0001").await;
    assert_eq!(confirmed["confirmed"], true, "{confirmed:#}");
    assert_eq!(confirmed["token"], token.as_str());
    assert_eq!(confirmed["channel"], "c2dm");
    let inbox = env.inbox(&token).await;
    assert_eq!(inbox.len(), 1, "only the confirmation so far: {inbox:?}");
    assert_eq!(inbox[0]["collapse_key"], "registration_token");
    assert_eq!(inbox[0]["delay_while_idle"], true);
    assert_eq!(
        inbox[0]["data"]["registration_token"]
            .as_str()
            .unwrap()
            .len(),
        32
    );

    let later = env
        .send(json!({"targets": {"all": true}, "collapse_key": "news", "data": {"case": "later"}}))
        .await;
    assert_eq!(later["deliveries"], 1);
    env.wait_done(later["id"].as_str().unwrap()).await;
    let inbox = env.inbox(&token).await;
    assert_eq!(inbox.last().unwrap()["data"]["case"], "later");
    assert_eq!(inbox.last().unwrap()["via"], "c2dm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_is_answered_where_django_c2dm_answered_it() {
    let env = start().await;
    let ok_id = "device-00000001";
    let reg = |q: &str| format!("/c2dm/registration?{q}");
    let long_dev = "d".repeat(65);
    let long_reg = "r".repeat(141);
    for (query, want) in [
        (
            format!("device_id={ok_id}&registration_id=reg-id-0001"),
            StatusCode::OK,
        ),
        (
            "registration_id=reg-id-0001".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (format!("device_id={ok_id}"), StatusCode::BAD_REQUEST),
        (
            "device_id=short&registration_id=reg-id-0001".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("device_id={long_dev}&registration_id=reg-id-0001"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("device_id={ok_id}&registration_id=short"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("device_id={ok_id}&registration_id={long_reg}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                "device_id={}&registration_id={}",
                "d".repeat(64),
                "r".repeat(140)
            ),
            StatusCode::OK,
        ),
    ] {
        assert_eq!(get_status(&env, &reg(&query)).await, want, "{query}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let a = env
            .http
            .request(
                method.clone(),
                format!("{}{}", env.base, reg("device_id=x")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::NOT_IMPLEMENTED, "{method}");
        let a = env
            .http
            .request(method.clone(), format!("{}/c2dm/confirmation", env.base))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), StatusCode::NOT_IMPLEMENTED, "{method}");
    }
    // Two registrations stored (the good ones), nothing for the refused ones.
    assert_eq!(count_rows(&env, "pending_registrations").await, 2);
    assert_eq!(count_rows(&env, "messages").await, 2);

    let conf = |q: &str| format!("/c2dm/confirmation?{q}");
    let good = "A".repeat(32);
    for (query, want) in [
        (
            format!("device_id={ok_id}&registration_token={good}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("device_id={ok_id}&registration_token=short"),
            StatusCode::BAD_REQUEST,
        ),
        (format!("device_id={ok_id}"), StatusCode::BAD_REQUEST),
        (
            format!("registration_token={good}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("device_id=unknown-device-9&registration_token={good}"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get_status(&env, &conf(&query)).await, want, "{query}");
    }
    assert_eq!(
        env.device(ok_id).await["confirmed"],
        false,
        "a wrong token confirms nothing"
    );
    // The token the device was pushed confirms it.
    let store = env.gw().store();
    let page = store
        .list_devices(APP, &pushgate_store::DeviceFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.items.iter().all(|d| !d.is_confirmed()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_failure_answers_500_and_stores_nothing() {
    let env = start_with(|spec| spec.storage.busy_timeout = Duration::from_millis(200)).await;
    use sqlx::{ConnectOptions, Connection};
    if let Some(schema) = &env.pg {
        // PostgreSQL has no database lock to hold: a trigger fails the confirmation message's
        // insert instead, after the device and the pending registration were written.
        let mut admin = sqlx::PgConnection::connect(schema.url()).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION induced_failure() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'induced failure'; END $$;
             CREATE TRIGGER induced_failure BEFORE INSERT ON messages
                 FOR EACH ROW EXECUTE FUNCTION induced_failure();",
        )
        .execute(&mut admin)
        .await
        .unwrap();
        let status = get_status(
            &env,
            "/c2dm/registration?device_id=device-00000002&registration_id=reg-id-0002",
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        sqlx::raw_sql("DROP TRIGGER induced_failure ON messages")
            .execute(&mut admin)
            .await
            .unwrap();
        assert_eq!(count_rows(&env, "pending_registrations").await, 0);
        assert_eq!(count_rows(&env, "devices").await, 0);
        let status = get_status(
            &env,
            "/c2dm/registration?device_id=device-00000002&registration_id=reg-id-0002",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        return;
    }
    let path = env.dir.path().join("gw.db");
    let mut blocker = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    let mut tx = blocker.begin_with("BEGIN EXCLUSIVE").await.unwrap();
    let status = get_status(
        &env,
        "/c2dm/registration?device_id=device-00000002&registration_id=reg-id-0002",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    drop(blocker);
    assert_eq!(count_rows(&env, "pending_registrations").await, 0);
    let status = get_status(
        &env,
        "/c2dm/registration?device_id=device-00000002&registration_id=reg-id-0002",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_have_their_own_flow_and_longer_ids_can_be_allowed() {
    let env = start_with(|spec| {
        with_other_app(spec);
        spec.apps[1].c2dm_flow.registration_id_len = 8..=4096;
        spec.apps[1].c2dm_flow.channel = "fcm".into();
    })
    .await;
    let token = env.tokens(1, "gcm").await.remove(0);
    assert_eq!(token.len(), 152);
    // 152 bytes: too long for the default app's C2DM limit, fine for `other`.
    let q = format!("device_id=tablet-00000001&registration_id={token}");
    assert_eq!(
        get_status(&env, &format!("/c2dm/registration?{q}")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get_status(&env, &format!("/v1/apps/other/c2dm/registration?{q}")).await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&env, &format!("/v1/apps/nope/c2dm/registration?{q}")).await,
        StatusCode::NOT_FOUND
    );
    // The confirmation went over `other`'s flow channel (v1) to the registration id.
    let confirmation = eventually(
        "the confirmation message",
        Duration::from_secs(10),
        || async { env.inbox(&token).await.first().cloned() },
    )
    .await;
    assert_eq!(confirmation["via"], "fcm-v1");
    let secret = confirmation["data"]["registration_token"].as_str().unwrap();
    let c = format!(
        "/v1/apps/other/c2dm/confirmation?device_id=tablet-00000001&registration_token={secret}"
    );
    // The default app knows nothing of it.
    assert_eq!(
        get_status(
            &env,
            &format!("/c2dm/confirmation?device_id=tablet-00000001&registration_token={secret}")
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get_status(&env, &c).await, StatusCode::OK);
    let a = env
        .call_as(
            Some(common::OTHER_KEY),
            Method::GET,
            "/v1/apps/other/devices/tablet-00000001",
            None,
        )
        .await;
    assert_eq!(a.body["token"], token.as_str(), "{}", a.text);
    assert_eq!(a.body["confirmed"], true);
}
