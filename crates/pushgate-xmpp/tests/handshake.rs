//! Client and server handshakes against each other, over an in-memory duplex and over real
//! TLS on 127.0.0.1, plus failure paths and a hand-driven peer.

use pushgate_xmpp::parser::StreamEvent;
use pushgate_xmpp::stanza::StreamErrorCondition;
use pushgate_xmpp::{
    ClientLogin, GcmMessage, HandshakeError, Iq, ServerOptions, Stanza, XmppStream, auto_reply,
    client_handshake, server_handshake, tls, writer,
};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SENDER: &str = "123456789";
const KEY: &str = "AIzaSyTestKey";

fn check_key(c: &pushgate_xmpp::PlainCredentials) -> bool {
    c.sender_id() == Some(SENDER) && c.password == KEY
}

/// Server side after the handshake: answer pings/session, ack every downstream message, and
/// on the first one also send an upstream message; stop at the client's close.
async fn serve_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut XmppStream<S>,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    while let Some(ev) = stream.next_event().await.unwrap() {
        match ev {
            StreamEvent::Stanza(el) => {
                let stanza = Stanza::from_element(el);
                if let Some(reply) = auto_reply(&stanza) {
                    stream.send(reply).await.unwrap();
                    continue;
                }
                if let Stanza::Message(m) = stanza {
                    let v = m.value().unwrap();
                    if v["message_type"] == "ack" {
                        seen.push(v);
                        continue;
                    }
                    let ack = json!({"from": v["to"], "message_id": v["message_id"], "message_type": "ack"});
                    let mut out = GcmMessage::from_value(&ack).to_xml();
                    if seen.is_empty() {
                        let up = json!({"category":"com.example","data":{"hello":"world"},"message_id":"up-1","from":"REGID"});
                        out.push_str(
                            &GcmMessage::from_value(&up)
                                .with_id("")
                                .with_type("normal")
                                .to_xml(),
                        );
                    }
                    seen.push(v);
                    stream.send(out).await.unwrap();
                }
            }
            StreamEvent::StreamClose => {
                stream.send(writer::CLOSE).await.unwrap();
                break;
            }
            StreamEvent::StreamOpen(_) => panic!("unexpected restart"),
        }
    }
    seen
}

/// Client side after the handshake: ping, send one downstream message, read ack + upstream,
/// ack the upstream, close.
async fn client_session<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut XmppStream<S>) {
    stream.send(Iq::ping("c-ping").to_xml()).await.unwrap();
    let down = json!({"to":"REGID","message_id":"m-1","data":{"k":"a&b<c>\"d\" ]]> é"}});
    stream
        .send(GcmMessage::from_value(&down).with_id("").to_xml())
        .await
        .unwrap();
    let mut got_pong = false;
    let mut got_ack = false;
    let mut got_up = false;
    while !(got_pong && got_ack && got_up) {
        let Some(StreamEvent::Stanza(el)) = stream.next_event().await.unwrap() else {
            panic!("stream ended early")
        };
        match Stanza::from_element(el) {
            Stanza::Iq(iq) if iq.id == "c-ping" => got_pong = true,
            Stanza::Message(m) => {
                let v = m.value().unwrap();
                match v["message_type"].as_str() {
                    Some("ack") => {
                        assert_eq!(m.kind, None, "acks carry no type");
                        assert_eq!(v["message_id"], "m-1");
                        got_ack = true;
                    }
                    None => {
                        assert_eq!(m.kind.as_deref(), Some("normal"));
                        assert_eq!(v["data"]["hello"], "world");
                        let ack = json!({"to": v["from"], "message_id": v["message_id"], "message_type": "ack"});
                        stream
                            .send(GcmMessage::from_value(&ack).to_xml())
                            .await
                            .unwrap();
                        got_up = true;
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
    }
    stream.send(writer::CLOSE).await.unwrap();
    assert_eq!(
        stream.next_event().await.unwrap(),
        Some(StreamEvent::StreamClose)
    );
}

#[tokio::test]
async fn handshake_over_duplex() {
    let (c, s) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move {
        let mut stream = XmppStream::new(s);
        let session = server_handshake(&mut stream, &ServerOptions::default(), check_key)
            .await
            .unwrap();
        let seen = serve_session(&mut stream).await;
        (session, seen)
    });
    let mut stream = XmppStream::new(c);
    let mut login = ClientLogin::new(SENDER, KEY);
    login.resource = Some("res-1".into());
    let session = client_handshake(&mut stream, &login).await.unwrap();
    assert_eq!(session.jid, "123456789@gcm.googleapis.com/res-1");
    assert!(session.session);
    assert!(session.stream_id.is_some());
    client_session(&mut stream).await;

    let (srv, seen) = server.await.unwrap();
    assert_eq!(srv.sender_id, SENDER);
    assert_eq!(srv.resource, "res-1");
    assert_eq!(srv.jid, session.jid);
    assert_eq!(srv.credentials.authcid, "123456789@gcm.googleapis.com");
    assert_eq!(srv.client_header.to.as_deref(), Some("gcm.googleapis.com"));
    assert!(!format!("{srv:?}").contains(KEY), "key leaked into Debug");
    // The upstream ack reached the server too.
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["data"]["k"], "a&b<c>\"d\" ]]> é");
    assert_eq!(seen[1]["message_id"], "up-1");
}

#[tokio::test]
async fn handshake_without_session_and_server_chosen_resource() {
    let (c, s) = tokio::io::duplex(64);
    let opts = ServerOptions {
        offer_session: false,
        ..ServerOptions::default()
    };
    let server = tokio::spawn(async move {
        let mut stream = XmppStream::new(s);
        let session = server_handshake(&mut stream, &opts, check_key)
            .await
            .unwrap();
        serve_session(&mut stream).await;
        session
    });
    let mut stream = XmppStream::new(c);
    let session = client_handshake(&mut stream, &ClientLogin::new(SENDER, KEY))
        .await
        .unwrap();
    assert!(!session.session);
    assert!(
        session
            .jid
            .starts_with("123456789@gcm.googleapis.com/pushgate-"),
        "{}",
        session.jid
    );
    stream.close().await.unwrap();
    assert_eq!(
        stream.next_event().await.unwrap(),
        Some(StreamEvent::StreamClose)
    );
    assert_eq!(server.await.unwrap().jid, session.jid);
}

#[tokio::test]
async fn wrong_key_gets_failure_then_close() {
    let (c, s) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move {
        let mut stream = XmppStream::new(s);
        server_handshake(&mut stream, &ServerOptions::default(), check_key).await
    });
    let mut stream = XmppStream::new(c);
    let err = client_handshake(&mut stream, &ClientLogin::new(SENDER, "wrong"))
        .await
        .unwrap_err();
    let HandshakeError::AuthFailed(f) = err else {
        panic!("{err:?}")
    };
    assert_eq!(f.condition, "not-authorized");
    // The server closed its stream after the failure.
    assert_eq!(
        stream.next_event().await.unwrap(),
        Some(StreamEvent::StreamClose)
    );
    let srv = server.await.unwrap();
    assert!(matches!(srv, Err(HandshakeError::AuthFailed(_))), "{srv:?}");
    assert!(!format!("{srv:?}").contains("wrong"));
}

/// Drives the server with hand-written bytes, as a third-party client would.
#[tokio::test]
async fn server_accepts_raw_clients_and_refuses_bad_base64() {
    for (authcid_payload, ok) in [
        // Erlang-client form: authzid = authcid = sender.
        (base64_of("123456789\u{0}123456789\u{0}AIzaSyTestKey"), true),
        (
            base64_of("\u{0}123456789@fcm.googleapis.com\u{0}AIzaSyTestKey"),
            true,
        ),
        ("not base64!".to_owned(), false),
    ] {
        let (mut c, s) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut stream = XmppStream::new(s);
            server_handshake(&mut stream, &ServerOptions::default(), check_key).await
        });
        c.write_all(b"<?xml version='1.0'?><stream:stream to='gcm.googleapis.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            .await
            .unwrap();
        let mut got = read_until(&mut c, "</stream:features>").await;
        assert!(got.contains("<mechanism>PLAIN</mechanism>"), "{got}");
        c.write_all(format!("<auth mechanism='PLAIN' xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{authcid_payload}</auth>").as_bytes())
            .await
            .unwrap();
        if !ok {
            got = read_until(&mut c, "</stream:stream>").await;
            assert!(got.contains("<incorrect-encoding/>"), "{got}");
            assert!(
                matches!(server.await.unwrap(), Err(HandshakeError::AuthFailed(f)) if f.condition == "incorrect-encoding")
            );
            continue;
        }
        got = read_until(&mut c, "/>").await;
        assert_eq!(got, writer::SUCCESS);
        c.write_all(writer::client_header("gcm.googleapis.com").as_bytes())
            .await
            .unwrap();
        got = read_until(&mut c, "</stream:features>").await;
        assert!(got.contains("urn:ietf:params:xml:ns:xmpp-bind"), "{got}");
        c.write_all(b"<iq type='get' id='p0'><ping xmlns='urn:xmpp:ping'/></iq><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>")
            .await
            .unwrap();
        got = read_until(&mut c, "</iq>").await;
        assert_eq!(
            got,
            "<iq id=\"p0\" type=\"result\"/><iq id=\"b\" type=\"result\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><jid>123456789@gcm.googleapis.com/r</jid></bind></iq>"
        );
        assert_eq!(server.await.unwrap().unwrap().sender_id, SENDER);
    }
}

#[tokio::test]
async fn server_sends_stream_error_on_garbage() {
    let (mut c, s) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        let mut stream = XmppStream::new(s);
        server_handshake(&mut stream, &ServerOptions::default(), check_key).await
    });
    c.write_all(writer::client_header("gcm.googleapis.com").as_bytes())
        .await
        .unwrap();
    read_until(&mut c, "</stream:features>").await;
    c.write_all(b"<auth><!-- sneaky --></auth>").await.unwrap();
    let got = read_until(&mut c, "</stream:stream>").await;
    assert!(
        got.contains("<restricted-xml xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"),
        "{got}"
    );
    let err = server.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, HandshakeError::Conn(pushgate_xmpp::ConnError::Xmpp(e)) if e.condition() == StreamErrorCondition::RestrictedXml),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_reports_stream_error_and_eof() {
    let (c, mut s) = tokio::io::duplex(4096);
    let client = tokio::spawn(async move {
        let mut stream = XmppStream::new(c);
        client_handshake(&mut stream, &ClientLogin::new(SENDER, KEY)).await
    });
    read_until(&mut s, "streams\">").await;
    s.write_all(writer::server_header("gcm.googleapis.com", "x").as_bytes())
        .await
        .unwrap();
    s.write_all(
        writer::stream_error_and_close(&pushgate_xmpp::StreamError::new(
            StreamErrorCondition::SystemShutdown,
        ))
        .as_bytes(),
    )
    .await
    .unwrap();
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, HandshakeError::StreamError(e) if e.condition == StreamErrorCondition::SystemShutdown),
        "{err:?}"
    );

    let (c, s) = tokio::io::duplex(4096);
    drop(s);
    let mut stream = XmppStream::new(c);
    let err = client_handshake(&mut stream, &ClientLogin::new(SENDER, KEY))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandshakeError::Conn(_) | HandshakeError::Closed),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_stanza_is_reported() {
    let (c, mut s) = tokio::io::duplex(4096);
    let mut stream = XmppStream::new(c);
    s.write_all(writer::server_header("d", "i").as_bytes())
        .await
        .unwrap();
    s.write_all(b"<message><gcm xmlns='google:mobile:data'>{")
        .await
        .unwrap();
    drop(s);
    assert!(matches!(
        stream.next_event().await.unwrap(),
        Some(StreamEvent::StreamOpen(_))
    ));
    let err = stream.next_event().await.unwrap_err();
    assert!(
        matches!(err, pushgate_xmpp::ConnError::Truncated { .. }),
        "{err:?}"
    );
}

/// A self-signed certificate and key (PEM) for the loopback address and the CCS name.
fn loopback_and_ccs_cert() -> (String, String) {
    let names = vec!["127.0.0.1".to_owned(), "fcm-xmpp.googleapis.com".to_owned()];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn handshake_over_tls_on_loopback() {
    let (cert_pem, key_pem) = loopback_and_ccs_cert();
    let acceptor = tls::acceptor_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let connector = tls::connector_from_pem(cert_pem.as_bytes()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            let mut stream = XmppStream::new(tls);
            let session = server_handshake(&mut stream, &ServerOptions::default(), check_key)
                .await
                .unwrap();
            results.push((session.jid, serve_session(&mut stream).await.len()));
        }
        results
    });
    // By IP address and by the real CCS name: both are in the certificate.
    for name in ["127.0.0.1", "fcm-xmpp.googleapis.com"] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let server_name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let tls = connector.connect(server_name, tcp).await.unwrap();
        let mut stream = XmppStream::new(tls);
        let session = client_handshake(&mut stream, &ClientLogin::new(SENDER, KEY))
            .await
            .unwrap();
        assert!(session.jid.starts_with("123456789@gcm.googleapis.com/"));
        client_session(&mut stream).await;
    }
    let results = server.await.unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|(_, n)| *n == 2));
}

#[tokio::test]
async fn split_stream_reads_and_writes_concurrently() {
    let (c, s) = tokio::io::duplex(256);
    let server = tokio::spawn(async move {
        let mut stream = XmppStream::new(s);
        server_handshake(&mut stream, &ServerOptions::default(), check_key)
            .await
            .unwrap();
        serve_session(&mut stream).await
    });
    let mut stream = XmppStream::new(c);
    client_handshake(&mut stream, &ClientLogin::new(SENDER, KEY))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let n = 50;
    let send = tokio::spawn(async move {
        for i in 0..n {
            let m = json!({"to":"REGID","message_id":format!("m-{i}"),"data":{"i":i}});
            writer
                .send(GcmMessage::from_value(&m).to_xml())
                .await
                .unwrap();
        }
        writer
    });
    let mut acks = 0;
    while acks < n {
        match reader.next_event().await.unwrap() {
            Some(StreamEvent::Stanza(el)) => {
                if let Stanza::Message(m) = Stanza::from_element(el)
                    && m.value().unwrap()["message_type"] == "ack"
                {
                    acks += 1;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    let mut writer = send.await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(
        reader.next_event().await.unwrap(),
        Some(StreamEvent::StreamClose)
    );
    // The upstream message was never acked by this client; the server saw the n downstream.
    assert_eq!(server.await.unwrap().len(), n);
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Reads from a raw peer until `needle` has arrived; returns what was read.
async fn read_until<R: AsyncRead + Unpin>(r: &mut R, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = r.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "EOF before {needle:?}; got {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}
