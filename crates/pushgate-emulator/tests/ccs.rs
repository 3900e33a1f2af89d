//! The emulator's CCS part over real sockets and TLS, driven by the raw `pushgate-xmpp`
//! client handshake (never pushgate-client): login, acks and nacks for every token state,
//! stanza errors, receipts, upstream injection and redelivery, drain, kill, pending limit.

mod common;

use std::time::Duration;

use common::{Emu, KEY};
use pushgate_emulator::{CcsSettings, EmulatorConfig};
use pushgate_testkit::eventually_ok;
use pushgate_xmpp::handshake::ClientLogin;
use pushgate_xmpp::{
    GcmMessage, HandshakeError, Stanza, StreamEvent, XmppStream, client_handshake,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

const SENDER: &str = "1234567890";
const WAIT: Duration = Duration::from_secs(5);

async fn start() -> Emu {
    common::start_with(EmulatorConfig {
        xmpp: Some("127.0.0.1:0".parse().unwrap()),
        ccs: CcsSettings {
            drain_grace: Duration::from_millis(300),
            ..CcsSettings::default()
        },
        ..EmulatorConfig::default()
    })
    .await
}

/// A raw CCS client connection.
struct Conn {
    stream: XmppStream<TlsStream<TcpStream>>,
    jid: String,
}

async fn tls(emu: &Emu) -> XmppStream<TlsStream<TcpStream>> {
    let addr = emu.running.xmpp_addr().expect("xmpp on");
    let pem = emu.running.tls_cert_pem().expect("cert");
    let connector = pushgate_xmpp::tls::connector_from_pem(pem.as_bytes()).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("gcm.googleapis.com").unwrap();
    XmppStream::new(connector.connect(name, tcp).await.unwrap())
}

async fn login(emu: &Emu, sender: &str, key: &str) -> Result<Conn, HandshakeError> {
    let mut stream = tls(emu).await;
    let session = client_handshake(&mut stream, &ClientLogin::new(sender, key)).await?;
    Ok(Conn {
        stream,
        jid: session.jid,
    })
}

async fn connect(emu: &Emu) -> Conn {
    login(emu, SENDER, KEY).await.expect("login")
}

impl Conn {
    async fn send(&mut self, json: &Value) {
        let xml = GcmMessage::new(json.to_string()).with_id("").to_xml();
        self.stream.send(xml).await.unwrap();
    }

    async fn send_raw(&mut self, text: &str, id: &str) {
        let xml = GcmMessage::new(text).with_id(id).to_xml();
        self.stream.send(xml).await.unwrap();
    }

    /// The next `<message>` with a `<gcm>` payload (pings and other stanzas skipped);
    /// `None` when the stream ends.
    async fn next(&mut self) -> Option<GcmMessage> {
        loop {
            let ev = tokio::time::timeout(WAIT, self.stream.next_event())
                .await
                .expect("a stanza in time");
            match ev {
                Ok(Some(StreamEvent::Stanza(el))) => {
                    if let Stanza::Message(m) = Stanza::from_element(el) {
                        return Some(m);
                    }
                }
                Ok(Some(StreamEvent::StreamClose)) | Ok(None) | Err(_) => return None,
                Ok(Some(StreamEvent::StreamOpen(_))) => panic!("second header"),
            }
        }
    }

    async fn next_json(&mut self) -> Value {
        let m = self.next().await.expect("a message");
        m.value().unwrap()
    }

    /// Sends a downstream message and returns the answer's JSON text.
    async fn answer(&mut self, json: Value) -> String {
        self.send(&json).await;
        self.next().await.expect("an answer").json
    }
}

async fn stats(emu: &Emu) -> Value {
    emu.control(Method::GET, "/emulator/stats", None).await.1
}

async fn post(emu: &Emu, path: &str, body: Value) -> Value {
    let (status, v) = emu.control(Method::POST, path, Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test]
async fn login_success_and_failure() {
    let emu = start().await;
    let conn = connect(&emu).await;
    assert!(
        conn.jid.starts_with("1234567890@gcm.googleapis.com/"),
        "{}",
        conn.jid
    );
    assert!(matches!(
        login(&emu, SENDER, "wrong-key").await,
        Err(HandshakeError::AuthFailed(_))
    ));
    assert!(matches!(
        login(&emu, "999", KEY).await,
        Err(HandshakeError::AuthFailed(_))
    ));
    // A sender registered through the control API logs in with its own key.
    post(
        &emu,
        "/emulator/senders",
        json!({"sender_id": "555", "api_key": "k555"}),
    )
    .await;
    login(&emu, "555", "k555").await.expect("registered sender");
    let s = stats(&emu).await;
    assert_eq!(s["ccs_login_failures"], 2);
    assert_eq!(s["ccs_connections_total"], 2);
}

#[tokio::test]
async fn acks_and_nacks_for_every_token_state() {
    let emu = start().await;
    let tokens = emu.device(6).await;
    let mut c = connect(&emu).await;

    let ok = c
        .answer(json!({"to": tokens[0], "message_id": "m1", "data": {"k": "v"}}))
        .await;
    assert_eq!(
        ok,
        format!(
            r#"{{"from":"{}","message_id":"m1","message_type":"ack"}}"#,
            tokens[0]
        )
    );
    let inbox = emu.inbox(&tokens[0]).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["via"], "ccs");
    assert_eq!(inbox[0]["data"], json!({"k": "v"}));
    assert_eq!(inbox[0]["from"], SENDER);

    let new = emu.rotate(&tokens[1]).await;
    let rotated = c.answer(json!({"to": tokens[1], "message_id": "m2"})).await;
    assert_eq!(
        rotated,
        format!(
            r#"{{"from":"{}","message_id":"m2","message_type":"ack","registration_id":"{new}"}}"#,
            tokens[1]
        )
    );

    emu.uninstall(&tokens[2]).await;
    let gone: Value =
        serde_json::from_str(&c.answer(json!({"to": tokens[2], "message_id": "m3"})).await)
            .unwrap();
    assert_eq!(gone["message_type"], "nack");
    assert_eq!(gone["error"], "DEVICE_UNREGISTERED");
    assert_eq!(gone["from"], tokens[2].as_str());
    assert_eq!(gone["message_id"], "m3");
    assert!(gone["error_description"].is_string());

    let bad = "SomeInvalidRegistrationId";
    let invalid = c.answer(json!({"to": bad, "message_id": "msgId1"})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&invalid).unwrap(),
        json!({"message_type":"nack","message_id":"msgId1","from":bad,
               "error":"BAD_REGISTRATION",
               "error_description":"Invalid token on 'to' field: SomeInvalidRegistrationId"})
    );

    let ttl: Value = serde_json::from_str(
        &c.answer(json!({"to": tokens[3], "message_id": "msgId1", "time_to_live": "abc"}))
            .await,
    )
    .unwrap();
    assert_eq!(
        ttl,
        json!({"message_type":"nack","message_id":"msgId1","from":tokens[3],
               "error":"INVALID_JSON",
               "error_description":"InvalidJson: JSON_TYPE_ERROR : Field \"time_to_live\" must be a JSON java.lang.Number: abc"})
    );
    // A numeric string TTL, as CCS samples send it, is fine.
    let string_ttl: Value = serde_json::from_str(
        &c.answer(json!({"to": tokens[3], "message_id": "t600", "time_to_live": "600"}))
            .await,
    )
    .unwrap();
    assert_eq!(string_ttl["message_type"], "ack");

    for (i, body) in [
        json!({"to": tokens[3], "message_id": "big", "data": {"k": "x".repeat(5000)}}),
        json!({"to": tokens[3], "message_id": "key", "data": {"from": "x"}}),
        json!({"to": tokens[3], "message_id": "neg", "time_to_live": -1}),
        json!({"message_id": "none"}),
        json!({"registration_ids": [tokens[3]], "message_id": "multi"}),
    ]
    .into_iter()
    .enumerate()
    {
        let v: Value = serde_json::from_str(&c.answer(body).await).unwrap();
        assert_eq!(v["error"], "INVALID_JSON", "case {i}: {v}");
    }

    // Another sender's device.
    post(
        &emu,
        "/emulator/senders",
        json!({"sender_id": "777", "api_key": "k777"}),
    )
    .await;
    let other = emu.devices(json!({"sender_id": "777"})).await;
    let v: Value =
        serde_json::from_str(&c.answer(json!({"to": other[0], "message_id": "o"})).await).unwrap();
    assert_eq!(v["error"], "BAD_REGISTRATION");

    // Rate limit.
    let limited = emu
        .devices(json!({"rate_limit_per_minute": 1}))
        .await
        .remove(0);
    let first: Value =
        serde_json::from_str(&c.answer(json!({"to": limited, "message_id": "r1"})).await).unwrap();
    assert_eq!(first["message_type"], "ack");
    let second: Value =
        serde_json::from_str(&c.answer(json!({"to": limited, "message_id": "r2"})).await).unwrap();
    assert_eq!(second["error"], "DEVICE_MESSAGE_RATE_EXCEEDED");
    assert_eq!(
        second["error_description"],
        "Downstream message rate exceeded for this registration id"
    );

    // Faults: a CCS code by name, and a legacy code mapped to its twin.
    emu.fault(
        json!({"path": "/ccs", "token": tokens[4], "error": "SERVICE_UNAVAILABLE", "count": 1}),
    )
    .await;
    emu.fault(
        json!({"path": "/ccs", "token": tokens[5], "error": "InternalServerError", "count": 1}),
    )
    .await;
    for (t, code) in [
        (&tokens[4], "SERVICE_UNAVAILABLE"),
        (&tokens[5], "INTERNAL_SERVER_ERROR"),
    ] {
        let v: Value =
            serde_json::from_str(&c.answer(json!({"to": t, "message_id": "f"})).await).unwrap();
        assert_eq!(v["error"], code);
        let again: Value =
            serde_json::from_str(&c.answer(json!({"to": t, "message_id": "f2"})).await).unwrap();
        assert_eq!(again["message_type"], "ack", "fault fires once");
    }

    // Topics: ack with the topic as `from` (no fan-out yet).
    let topic: Value = serde_json::from_str(
        &c.answer(json!({"to": "/topics/news", "message_id": "tp"}))
            .await,
    )
    .unwrap();
    assert_eq!(topic["message_type"], "ack");
    assert_eq!(topic["from"], "/topics/news");
}

#[tokio::test]
async fn stanza_errors_echo_the_payload() {
    let emu = start().await;
    let mut c = connect(&emu).await;
    c.send_raw(r#"{"random": "text"}"#, "3").await;
    let m = c.next().await.unwrap();
    assert_eq!(m.kind.as_deref(), Some("error"));
    assert_eq!(m.id.as_deref(), Some("3"));
    assert_eq!(m.to.as_deref(), Some(c.jid.as_str()));
    assert_eq!(m.json, r#"{"random": "text"}"#);
    let err = m.error.unwrap();
    assert_eq!(err.code.as_deref(), Some("400"));
    assert_eq!(err.kind, "modify");
    assert_eq!(err.condition, "bad-request");
    assert_eq!(
        err.text.as_deref(),
        Some("InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id\n")
    );

    c.send_raw(r#"{"to": x}"#, "4").await;
    let m = c.next().await.unwrap();
    assert_eq!(m.kind.as_deref(), Some("error"));
    assert_eq!(
        m.error.unwrap().text.as_deref(),
        Some("InvalidJson: JSON_PARSING_ERROR : Unexpected character (x) at position 7.\n")
    );
    // The connection goes on.
    let token = emu.device(1).await.remove(0);
    let ok: Value =
        serde_json::from_str(&c.answer(json!({"to": token, "message_id": "after"})).await).unwrap();
    assert_eq!(ok["message_type"], "ack");
    assert_eq!(stats(&emu).await["ccs_stanza_errors"], 2);
}

#[tokio::test]
async fn delivery_receipts_are_sent_and_must_be_acked() {
    let emu = start().await;
    let token = emu.device(1).await.remove(0);
    let mut c = connect(&emu).await;
    c.send(&json!({"to": token, "message_id": "m-1", "delivery_receipt_requested": true}))
        .await;
    let ack = c.next_json().await;
    assert_eq!(ack["message_type"], "ack");
    let receipt = c.next().await.unwrap();
    assert_eq!(receipt.kind.as_deref(), Some("normal"));
    let r = receipt.value().unwrap();
    assert_eq!(r["message_type"], "receipt");
    assert_eq!(r["message_id"], "dr2:m-1");
    assert_eq!(r["from"], "gcm.googleapis.com");
    assert_eq!(r["category"], "com.example.app");
    assert_eq!(r["data"]["message_status"], "MESSAGE_SENT_TO_DEVICE");
    assert_eq!(r["data"]["original_message_id"], "m-1");
    assert_eq!(r["data"]["device_registration_id"], token.as_str());
    let unacked = emu
        .control(
            Method::GET,
            &format!("/emulator/xmpp/senders/{SENDER}"),
            None,
        )
        .await
        .1;
    assert_eq!(unacked["unacked_upstream"], 1);
    c.send(&json!({"to": "gcm.googleapis.com", "message_id": "dr2:m-1", "message_type": "ack"}))
        .await;
    wait_for(&emu, "ccs_receipts_acked", 1).await;
    let s = stats(&emu).await;
    assert_eq!(s["ccs_receipts"], 1);
}

/// Polls the stats until `key` reaches `value`.
async fn wait_for(emu: &Emu, key: &str, value: u64) {
    let what = format!("{key} to reach {value}");
    eventually_ok(&what, WAIT, || async {
        let s = stats(emu).await;
        if s[key].as_u64() == Some(value) {
            Ok(())
        } else {
            Err(s)
        }
    })
    .await
}

#[tokio::test]
async fn upstream_is_injected_and_redelivered_until_acked() {
    let emu = start().await;
    let token = emu.device(1).await.remove(0);
    // Injected before any connection: queued.
    let v = post(
        &emu,
        &format!("/emulator/devices/{token}/upstream"),
        json!({"data": {"hello": "world"}, "message_id": "m-123"}),
    )
    .await;
    assert_eq!(v["sent"], false);
    let mut c = connect(&emu).await;
    let m = c.next().await.unwrap();
    assert_eq!(m.kind.as_deref(), Some("normal"));
    assert_eq!(
        m.value().unwrap(),
        json!({"category":"com.example.app","data":{"hello":"world"},"message_id":"m-123","from":token})
    );
    // Not acked; the connection drops; the next connection gets it again.
    drop(c);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c2 = connect(&emu).await;
    let again = c2.next_json().await;
    assert_eq!(again["message_id"], "m-123");
    // An ack on the right connection settles it.
    c2.send(&json!({"to": token, "message_id": "m-123", "message_type": "ack"}))
        .await;
    wait_for(&emu, "ccs_upstream_acked", 1).await;
    let s = stats(&emu).await;
    assert_eq!(s["ccs_upstream_redelivered"], 1);
    // Injected while connected: written at once.
    let v = post(
        &emu,
        &format!("/emulator/devices/{token}/upstream"),
        json!({"data": {"n": "2"}}),
    )
    .await;
    assert_eq!(v["sent"], true);
    let m = c2.next_json().await;
    assert_eq!(m["data"], json!({"n": "2"}));
    assert_eq!(m["category"], "com.example.app");
    let (status, _) = emu
        .control(
            Method::POST,
            "/emulator/devices/nope/upstream",
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn drain_sends_control_nacks_then_closes() {
    let emu = start().await;
    let token = emu.device(1).await.remove(0);
    let mut c = connect(&emu).await;
    let v = post(&emu, "/emulator/xmpp/drain", json!({"sender_id": SENDER})).await;
    assert_eq!(v["connections"], 1);
    let control = c.next().await.unwrap();
    assert_eq!(control.kind, None, "control messages carry no type");
    assert_eq!(
        control.value().unwrap(),
        json!({"message_type":"control","control_type":"CONNECTION_DRAINING"})
    );
    let nack: Value =
        serde_json::from_str(&c.answer(json!({"to": token, "message_id": "d1"})).await).unwrap();
    assert_eq!(nack["error"], "CONNECTION_DRAINING");
    assert!(emu.inbox(&token).await.is_empty());
    // A new connection works normally meanwhile.
    let mut fresh = connect(&emu).await;
    let ok: Value =
        serde_json::from_str(&fresh.answer(json!({"to": token, "message_id": "d2"})).await)
            .unwrap();
    assert_eq!(ok["message_type"], "ack");
    // The drained one is closed after the grace period (300 ms here).
    assert!(c.next().await.is_none());
    wait_for(&emu, "ccs_connections", 1).await;
}

#[tokio::test]
async fn kill_drops_connections_abruptly() {
    let emu = start().await;
    let mut c = connect(&emu).await;
    let v = post(&emu, "/emulator/xmpp/kill", json!({})).await;
    assert_eq!(v["connections"], 1);
    assert!(c.next().await.is_none());
    wait_for(&emu, "ccs_connections", 0).await;
}

#[tokio::test]
async fn pending_limit_nacks_the_overflow() {
    let emu = start().await;
    let token = emu.device(1).await.remove(0);
    post(
        &emu,
        "/emulator/xmpp/settings",
        json!({"max_pending": 5, "ack_delay_ms": 300}),
    )
    .await;
    let mut c = connect(&emu).await;
    for i in 0..7 {
        c.send(&json!({"to": token, "message_id": format!("p{i}")}))
            .await;
    }
    let mut acks = Vec::new();
    let mut nacks = Vec::new();
    for _ in 0..7 {
        let v = c.next_json().await;
        if v["message_type"] == "ack" {
            acks.push(v["message_id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(v["error"], "SERVICE_UNAVAILABLE", "{v}");
            nacks.push(v["message_id"].as_str().unwrap().to_string());
        }
    }
    // The overflow is answered at once, before the delayed acks.
    assert_eq!(nacks, ["p5", "p6"]);
    assert_eq!(acks, ["p0", "p1", "p2", "p3", "p4"]);
    let s = stats(&emu).await;
    assert_eq!(s["ccs_max_pending"], 7);
    assert_eq!(s["ccs_pending_rejected"], 2);
    assert_eq!(emu.inbox(&token).await.len(), 5);
    let conns = emu
        .control(Method::GET, "/emulator/xmpp/connections", None)
        .await
        .1;
    assert_eq!(conns["connections"][0]["max_pending"], 7);
}

#[tokio::test]
async fn pings_are_answered() {
    let emu = start().await;
    let mut c = connect(&emu).await;
    c.stream
        .send(pushgate_xmpp::Iq::ping("p1").to_xml())
        .await
        .unwrap();
    let ev = tokio::time::timeout(WAIT, c.stream.next_event())
        .await
        .unwrap()
        .unwrap();
    let Some(StreamEvent::Stanza(el)) = ev else {
        panic!("{ev:?}")
    };
    let Stanza::Iq(iq) = Stanza::from_element(el) else {
        panic!("not an iq")
    };
    assert_eq!(iq.id, "p1");
    assert_eq!(iq.kind, pushgate_xmpp::IqType::Result);
}

#[tokio::test]
async fn topic_and_condition_fan_out_over_ccs() {
    let emu = start().await;
    let tokens = emu.device(3).await;
    emu.subscribe("ccs-news", &tokens[..2]).await;
    emu.subscribe("ccs-sport", &tokens[1..]).await;
    let mut c = connect(&emu).await;
    let ack: Value = serde_json::from_str(
        &c.answer(json!({"to": "/topics/ccs-news", "message_id": "t1", "data": {"n": "1"}}))
            .await,
    )
    .unwrap();
    assert_eq!(ack["message_type"], "ack", "{ack}");
    let ack: Value = serde_json::from_str(
        &c.answer(json!({
            "condition": "'ccs-sport' in topics && !('ccs-news' in topics)",
            "message_id": "t2", "data": {"n": "2"}
        }))
        .await,
    )
    .unwrap();
    assert_eq!(ack["message_type"], "ack", "{ack}");
    let mut lens = Vec::new();
    for t in &tokens {
        lens.push(emu.inbox(t).await.len());
    }
    assert_eq!(lens, vec![1, 1, 1]);
    assert_eq!(emu.inbox(&tokens[2]).await[0]["data"]["n"], "2");
    assert_eq!(emu.inbox(&tokens[0]).await[0]["via"], "ccs");
}
