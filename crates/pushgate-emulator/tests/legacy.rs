//! The legacy HTTP endpoints over real sockets, with expected values taken from
//! docs/protocols.md, "Legacy HTTP" and "Emulator checklist: legacy HTTP" (never from the
//! emulator's code).

mod common;

use common::{KEY, codes_of, looks_like_message_id, start};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JSON_UTF8: &str = "application/json; charset=UTF-8";
const TEXT_UTF8: &str = "text/plain; charset=UTF-8";
const HTML_UTF8: &str = "text/html; charset=UTF-8";

const FCM_MISSING: &str = "The request was missing an Authentication Key (FCM Token). Please, refer to section \"Authentication\" of the FCM documentation, at https://firebase.google.com/docs/cloud-messaging/server.";
const FCM_INVALID: &str =
    "Invalid (legacy) Server-key delivered or Sender is not authorized to perform request.";

/// The raw HTTP/1.1 status line of a request (to see non-canonical reason phrases).
async fn status_line(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    text.lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn gcm_401_is_the_generic_html_page() {
    let emu = start().await;
    for key in [None, Some("wrong-key")] {
        let a = emu
            .raw("/gcm/send", key, Some("application/json"), "{}")
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.content_type(), HTML_UTF8);
        assert!(a.text.contains("<TITLE>Unauthorized</TITLE>"), "{}", a.text);
        assert!(a.text.contains("<H1>Unauthorized</H1>"), "{}", a.text);
        assert!(a.text.contains("<H2>Error 401</H2>"), "{}", a.text);
        assert!(a.text.starts_with("<HTML>"), "{}", a.text);
    }
    // A key that is not in the `key=` form counts as missing.
    let a = emu
        .http
        .post(emu.url("/gcm/send"))
        .header("Authorization", format!("Bearer {KEY}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn fcm_401_variants_for_missing_and_wrong_keys() {
    let emu = start().await;
    let missing = emu
        .raw("/fcm/send", None, Some("application/json"), "{}")
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.content_type(), HTML_UTF8);
    assert!(
        missing
            .text
            .contains(&format!("<TITLE>{FCM_MISSING}</TITLE>")),
        "{}",
        missing.text
    );
    let wrong = emu
        .raw(
            "/fcm/send",
            Some("not-a-key"),
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.text.contains(&format!("<H1>{FCM_INVALID}</H1>")),
        "{}",
        wrong.text
    );
    assert!(!wrong.text.contains("missing an Authentication Key"));

    // The reason phrase carries the same wording (HTTP/1.1).
    let line = status_line(
        emu.running.http_addr(),
        "POST /fcm/send HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(line, format!("HTTP/1.1 401 {FCM_MISSING}"));
}

#[tokio::test]
async fn auth_comes_before_the_body() {
    let emu = start().await;
    let a = emu
        .raw("/gcm/send", Some("nope"), Some("application/json"), "{{{")
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn non_post_is_405_html() {
    let emu = start().await;
    let resp = emu.http.get(emu.url("/gcm/send")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["content-type"].to_str().unwrap(), HTML_UTF8);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("HTTP method GET is not supported by this URL"),
        "{body}"
    );
    let resp = emu.http.put(emu.url("/fcm/send")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("HTTP method PUT is not supported by this URL")
    );
}

#[tokio::test]
async fn json_parse_errors_have_the_services_texts() {
    let emu = start().await;
    let cases = [
        (
            "not json",
            "JSON_PARSING_ERROR: Unexpected character (n) at position 0.\n",
        ),
        (
            r#"{"to":"abc","data":{"a":"b""#,
            "JSON_PARSING_ERROR: Unexpected token END OF FILE at position 27.\n",
        ),
        (
            r#"{"to": x}"#,
            "JSON_PARSING_ERROR: Unexpected character (x) at position 7.\n",
        ),
        (
            "",
            "JSON_PARSING_ERROR: Unexpected token END OF FILE at position 0.\n",
        ),
    ];
    for (body, expected) in cases {
        let a = emu
            .raw("/gcm/send", Some(KEY), Some("application/json"), body)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.content_type(), TEXT_UTF8, "{body}");
        assert_eq!(a.text, expected, "{body}");
    }
}

#[tokio::test]
async fn wrong_field_types_are_400_with_java_type_names() {
    let emu = start().await;
    let cases = [
        (
            json!({"to": "a", "time_to_live": "abc"}),
            "Field \"time_to_live\" must be a JSON java.lang.Number: abc\n",
        ),
        (
            json!({"to": "a", "delay_while_idle": "yes"}),
            "Field \"delay_while_idle\" must be a JSON java.lang.Boolean: yes\n",
        ),
        (
            json!({"to": "a", "dry_run": 1}),
            "Field \"dry_run\" must be a JSON java.lang.Boolean: 1\n",
        ),
        (
            json!({"to": "a", "content_available": "true"}),
            "Field \"content_available\" must be a JSON java.lang.Boolean: true\n",
        ),
        (
            json!({"to": "a", "mutable_content": 0}),
            "Field \"mutable_content\" must be a JSON java.lang.Boolean: 0\n",
        ),
        (
            json!({"registration_ids": "abc"}),
            "Field \"registration_ids\" must be a JSON array: abc\n",
        ),
        (
            json!({"to": "a", "data": "smth"}),
            "Field \"data\" must be a JSON array: smth\n",
        ),
        (
            json!({"to": 5}),
            "Field \"to\" must be a JSON java.lang.String: 5\n",
        ),
        (
            json!({"to": "a", "collapse_key": 7}),
            "Field \"collapse_key\" must be a JSON java.lang.String: 7\n",
        ),
        (
            json!({"to": "a", "restricted_package_name": false}),
            "Field \"restricted_package_name\" must be a JSON java.lang.String: false\n",
        ),
        (
            json!({"condition": ["x"]}),
            "Field \"condition\" must be a JSON java.lang.String: [\"x\"]\n",
        ),
        (
            json!({"to": "a", "priority": 10}),
            "Field \"priority\" must be a JSON java.lang.String: 10\n",
        ),
    ];
    for (body, expected) in cases {
        let a = emu.send(body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.content_type(), TEXT_UTF8);
        assert_eq!(a.text, expected, "{body}");
    }
}

#[tokio::test]
async fn both_targets_and_too_many_ids_are_400() {
    let emu = start().await;
    let a = emu
        .send(json!({"to": "a", "registration_ids": ["b"]}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.text,
        "Must use either \"registration_ids\" field or \"to\", not both\n"
    );

    let ids: Vec<String> = (0..1001).map(|i| format!("t{i}")).collect();
    let a = emu.send(json!({ "registration_ids": ids })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.content_type(), TEXT_UTF8);
    assert_eq!(
        a.text,
        "Number of messages on bulk (1001) exceeds maximum allowed (1000)\n"
    );

    // Exactly 1000 is fine: one result per id, in order.
    let a = emu.send(json!({ "registration_ids": &ids[..1000] })).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["results"].as_array().unwrap().len(), 1000);
    assert_eq!(v["failure"], 1000);
}

#[tokio::test]
async fn no_target_is_missing_registration() {
    let emu = start().await;
    for body in [
        json!({"data": {"a": "b"}}),
        json!({"registration_ids": [], "data": {"a": "b"}}),
        json!({"to": ""}),
    ] {
        let a = emu.send(body.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{body}");
        assert_eq!(a.content_type(), JSON_UTF8);
        let v = a.json();
        assert_eq!(
            v["results"],
            json!([{"error": "MissingRegistration"}]),
            "{body}"
        );
        assert_eq!(v["success"], 0);
        assert_eq!(v["failure"], 1);
        assert_eq!(v["canonical_ids"], 0);
    }
}

#[tokio::test]
async fn token_states_map_to_their_codes() {
    let emu = start().await;
    let other = start().await;
    let [live, gone]: [String; 2] = emu.device(2).await.try_into().unwrap();
    emu.uninstall(&gone).await;
    let truncated = live[..live.len() - 5].to_string();
    let extended = format!("{live}x");
    // Issued by another emulator: well-formed, unknown here.
    let foreign = other.device(1).await.remove(0);

    let codes = emu
        .codes(
            json!({"data": {"a": "b"}}),
            &[&live, &truncated, &extended, &foreign, &gone, "garbage"],
        )
        .await;
    assert_eq!(
        codes,
        [
            "ok",
            "InvalidRegistration",
            "InvalidRegistration",
            "NotRegistered",
            "NotRegistered",
            "InvalidRegistration"
        ]
    );
}

#[tokio::test]
async fn other_senders_device_is_mismatch_sender_id() {
    let emu = start().await;
    let (status, v) = emu
        .control(
            reqwest::Method::POST,
            "/emulator/senders",
            Some(json!({"sender_id": "222", "api_key": "key-222"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let theirs = emu.devices(json!({"sender_id": "222"})).await.remove(0);
    let ours = emu.device(1).await.remove(0);
    let codes = emu
        .codes(json!({"data": {"a": "b"}}), &[&theirs, &ours])
        .await;
    assert_eq!(codes, ["MismatchSenderId", "ok"]);
    // With their key it is the other way round.
    let a = emu
        .send_to(
            "/fcm/send",
            "key-222",
            json!({"registration_ids": [&theirs, &ours]}),
        )
        .await;
    assert_eq!(codes_of(&a.json()), ["ok", "MismatchSenderId"]);
}

#[tokio::test]
async fn restricted_package_name_must_match() {
    let emu = start().await;
    let a = emu.devices(json!({"package": "com.a"})).await.remove(0);
    let default = emu.device(1).await.remove(0);
    let codes = emu
        .codes(json!({"restricted_package_name": "com.a"}), &[&a, &default])
        .await;
    assert_eq!(codes, ["ok", "InvalidPackageName"]);
    let codes = emu
        .codes(
            json!({"restricted_package_name": "com.example.app"}),
            &[&a, &default],
        )
        .await;
    assert_eq!(codes, ["InvalidPackageName", "ok"]);
}

#[tokio::test]
async fn per_device_rate_limit() {
    let emu = start().await;
    let limited = emu
        .devices(json!({"rate_limit_per_minute": 2}))
        .await
        .remove(0);
    let free = emu.device(1).await.remove(0);
    let mut seen = Vec::new();
    for i in 0..3 {
        let codes = emu
            .codes(json!({"data": {"i": i.to_string()}}), &[&limited, &free])
            .await;
        seen.push(codes);
    }
    assert_eq!(seen[0], ["ok", "ok"]);
    assert_eq!(seen[1], ["ok", "ok"]);
    assert_eq!(seen[2], ["DeviceMessageRateExceeded", "ok"]);
    assert_eq!(emu.inbox(&limited).await.len(), 2);
}

#[tokio::test]
async fn message_level_checks() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let t = t.as_str();
    // 4096 bytes of keys plus values fit; 4097 do not.
    let fits = json!({"data": {"k": "x".repeat(4095)}});
    assert_eq!(emu.codes(fits, &[t]).await, ["ok"]);
    let over = json!({"data": {"k": "x".repeat(4096)}});
    assert_eq!(
        emu.codes(over, &[t, "bad"]).await,
        ["MessageTooBig", "MessageTooBig"]
    );
    // Non-string values count as their JSON text: "n" + "1234" = 5.
    let mixed = json!({"data": {"k": "x".repeat(4090), "n": 1234}});
    assert_eq!(emu.codes(mixed, &[t]).await, ["ok"]);
    let mixed = json!({"data": {"k": "x".repeat(4091), "n": 1234}});
    assert_eq!(emu.codes(mixed, &[t]).await, ["MessageTooBig"]);

    for key in [
        "from",
        "google.sent_time",
        "gcm.notification.x",
        "message_type",
    ] {
        let body = json!({"data": {key: "v"}});
        assert_eq!(emu.codes(body, &[t]).await, ["InvalidDataKey"], "{key}");
    }
    for ttl in [json!(-1), json!(2_419_201), json!(1.5)] {
        let body = json!({"time_to_live": ttl});
        assert_eq!(emu.codes(body, &[t]).await, ["InvalidTtl"], "{ttl}");
    }
    for ttl in [0, 2_419_200] {
        let body = json!({"time_to_live": ttl});
        assert_eq!(emu.codes(body, &[t]).await, ["ok"], "{ttl}");
    }
}

#[tokio::test]
async fn multicast_counts_ids_and_canonical_ids() {
    let emu = start().await;
    let tokens = emu.device(3).await;
    let new = emu.rotate(&tokens[0]).await;
    assert_ne!(new, tokens[0]);
    let a = emu
        .send(json!({
            "registration_ids": [&tokens[0], &tokens[1], "bad", &tokens[2], &new],
            "data": {"a": "b"}
        }))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), JSON_UTF8);
    let v = a.json();
    assert_eq!(v["success"], 4);
    assert_eq!(v["failure"], 1);
    assert_eq!(v["canonical_ids"], 1);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["registration_id"], json!(new));
    assert!(results[1].get("registration_id").is_none());
    assert_eq!(results[2], json!({"error": "InvalidRegistration"}));
    assert!(
        results[4].get("registration_id").is_none(),
        "new token is canonical"
    );
    let ids: Vec<&str> = results
        .iter()
        .filter_map(|r| r["message_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        assert!(looks_like_message_id(id), "{id}");
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 4);
    // multicast_id: an integer beyond 2^53 on the wire (not a float).
    let raw = a.text.split("\"multicast_id\":").nth(1).unwrap();
    let digits: String = raw.chars().take_while(|c| c.is_ascii_digit()).collect();
    let multicast_id: i64 = digits.parse().unwrap();
    assert!(multicast_id > 1 << 53, "{multicast_id}");
    assert_eq!(v["multicast_id"].as_i64(), Some(multicast_id));

    // Old and new token reach one inbox.
    let inbox = emu.inbox(&new).await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0]["token"], json!(tokens[0]));
    assert_eq!(inbox[1]["token"], json!(new));
    assert_eq!(emu.inbox(&tokens[0]).await.len(), 2);
}

#[tokio::test]
async fn single_to_gets_the_multicast_shape() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let a = emu.send(json!({"to": t, "data": {"a": "b"}})).await;
    let v = a.json();
    assert_eq!(v["success"], 1);
    assert!(v["multicast_id"].is_i64());
    assert!(looks_like_message_id(
        v["results"][0]["message_id"].as_str().unwrap()
    ));
}

#[tokio::test]
async fn topics_and_conditions_answer_a_numeric_message_id() {
    let emu = start().await;
    for body in [
        json!({"to": "/topics/news", "data": {"headline": "x"}}),
        json!({"condition": "'a' in topics && 'b' in topics", "data": {"k": "v"}}),
    ] {
        let a = emu.send(body.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{body}");
        assert_eq!(a.content_type(), JSON_UTF8);
        let v = a.json();
        assert!(v["message_id"].is_i64(), "{}", a.text);
        assert!(v.get("error").is_none());
        assert!(v.get("multicast_id").is_none());
    }
    // Topic messages are limited to 2048 bytes.
    let fits = json!({"to": "/topics/news", "data": {"k": "x".repeat(2047)}});
    assert!(emu.send(fits).await.json()["message_id"].is_i64());
    let over = json!({"to": "/topics/news", "data": {"k": "x".repeat(2048)}});
    assert_eq!(
        emu.send(over).await.json(),
        json!({"error": "MessageTooBig"})
    );
    // A topic name outside [a-zA-Z0-9-_.~%]+ is refused.
    let a = emu.send(json!({"to": "/topics/a b"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // The send shows in the activity log.
    let (_, v) = emu
        .control(reqwest::Method::GET, "/emulator/activity", None)
        .await;
    let requests = v["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r["recipients"] == 1 && r["status"] == 200)
    );
}

#[tokio::test]
async fn dry_run_checks_everything_and_delivers_nothing() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let a = emu
        .send(json!({"registration_ids": [&t, "bad"], "dry_run": true, "data": {"a": "b"}}))
        .await;
    let v = a.json();
    assert_eq!(v["results"][0]["message_id"], "fake_message_id");
    assert_eq!(v["results"][1]["error"], "InvalidRegistration");
    assert_eq!(v["success"], 1);
    let a = emu
        .send(json!({"to": &t, "dry_run": true, "data": {"from": "x"}}))
        .await;
    assert_eq!(codes_of(&a.json()), ["InvalidDataKey"]);
    assert!(emu.inbox(&t).await.is_empty());
}

#[tokio::test]
async fn inbox_holds_the_message_as_delivered() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let a = emu
        .send(json!({
            "to": &t,
            "collapse_key": "score",
            "priority": "high",
            "time_to_live": 60,
            "delay_while_idle": true,
            "notification": {"title": "Hi", "body": "there"},
            "data": {"s": "str", "n": 12, "b": true, "o": {"x": 1}, "z": null}
        }))
        .await;
    let message_id = a.json()["results"][0]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let inbox = emu.inbox(&t).await;
    assert_eq!(inbox.len(), 1);
    let m = &inbox[0];
    assert_eq!(m["message_id"], json!(message_id));
    assert_eq!(m["token"], json!(t));
    assert_eq!(m["via"], "legacy-json");
    assert_eq!(m["collapse_key"], "score");
    assert_eq!(m["priority"], "high");
    assert_eq!(m["time_to_live"], 60);
    assert_eq!(m["delay_while_idle"], true);
    assert_eq!(m["notification"], json!({"title": "Hi", "body": "there"}));
    assert_eq!(
        m["data"],
        json!({"s": "str", "n": "12", "b": "true", "o": "{\"x\":1}", "z": "null"})
    );
    let at = m["received_at"].as_str().unwrap();
    // RFC 3339 UTC: 2024-06-20T12:34:56.789Z
    assert_eq!(at.len(), 24, "{at}");
    assert_eq!(&at[4..5], "-");
    assert_eq!(&at[10..11], "T");
    assert!(at.ends_with('Z'));
}

#[tokio::test]
async fn plain_text_success_and_canonical_lines() {
    let emu = start().await;
    let t = emu.device(1).await.remove(0);
    let a = emu
        .plain(&format!(
            "registration_id={t}&collapse_key=c1&data.k=v%20w%26x&time_to_live=108&delay_while_idle=1"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type(), TEXT_UTF8);
    let id = a
        .text
        .strip_prefix("id=")
        .unwrap()
        .strip_suffix('\n')
        .unwrap();
    assert!(looks_like_message_id(id), "{}", a.text);
    let inbox = emu.inbox(&t).await;
    assert_eq!(inbox[0]["via"], "legacy-plain");
    assert_eq!(inbox[0]["data"], json!({"k": "v w&x"}));
    assert_eq!(inbox[0]["collapse_key"], "c1");
    assert_eq!(inbox[0]["time_to_live"], 108);
    assert_eq!(inbox[0]["message_id"], json!(id));

    let new = emu.rotate(&t).await;
    let a = emu.plain(&format!("registration_id={t}&data.k=v")).await;
    let lines: Vec<&str> = a.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", a.text);
    assert!(lines[0].starts_with("id=0:"));
    assert_eq!(lines[1], format!("registration_id={new}"));

    // No Content-Type at all also means plain text.
    let a = emu
        .raw(
            "/fcm/send",
            Some(KEY),
            None,
            format!("registration_id={new}"),
        )
        .await;
    assert!(a.text.starts_with("id=0:"), "{}", a.text);
}

#[tokio::test]
async fn plain_text_error_lines() {
    let emu = start().await;
    let [t, gone]: [String; 2] = emu.device(2).await.try_into().unwrap();
    emu.uninstall(&gone).await;
    let cases = [
        (format!("registration_id={gone}"), "Error=NotRegistered\n"),
        (
            format!("registration_id={}", &t[..100]),
            "Error=InvalidRegistration\n",
        ),
        ("data.k=v".to_string(), "Error=MissingRegistration\n"),
        (
            format!("registration_id={t}&time_to_live=abc"),
            "Error=InvalidTtl\n",
        ),
        (
            format!("registration_id={t}&time_to_live=2419201"),
            "Error=InvalidTtl\n",
        ),
        (
            format!("registration_id={t}&time_to_live=-5"),
            "Error=InvalidTtl\n",
        ),
        (
            format!("registration_id={t}&data.from=x"),
            "Error=InvalidDataKey\n",
        ),
        (
            format!("registration_id={t}&data.k={}", "x".repeat(4096)),
            "Error=MessageTooBig\n",
        ),
        (
            format!("registration_id={t}&restricted_package_name=com.other"),
            "Error=InvalidPackageName\n",
        ),
    ];
    for (form, expected) in cases {
        let a = emu.plain(&form).await;
        assert_eq!(a.status, StatusCode::OK, "{form}");
        assert_eq!(a.content_type(), TEXT_UTF8);
        assert_eq!(a.text, expected, "{form}");
    }
    assert!(emu.inbox(&t).await.is_empty());
    // 4096 bytes exactly is fine; dry_run answers the fake id.
    let a = emu
        .plain(&format!("registration_id={t}&data.k={}", "x".repeat(4095)))
        .await;
    assert!(a.text.starts_with("id=0:"), "{}", a.text);
    let a = emu.plain(&format!("registration_id={t}&dry_run=1")).await;
    assert_eq!(a.text, "id=fake_message_id\n");
    assert_eq!(emu.inbox(&t).await.len(), 1);
}

#[tokio::test]
async fn a_thousand_ids_round_trip() {
    let emu = start().await;
    let tokens = emu.device(1000).await;
    let a = emu
        .send(json!({"registration_ids": tokens, "data": {"n": "1"}}))
        .await;
    let v = a.json();
    assert_eq!(v["success"], 1000);
    assert_eq!(v["failure"], 0);
    let results = v["results"].as_array().unwrap();
    let unique: std::collections::HashSet<&str> = results
        .iter()
        .map(|r| r["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(unique.len(), 1000);
    assert_eq!(emu.inbox(&tokens[999]).await.len(), 1);
}
