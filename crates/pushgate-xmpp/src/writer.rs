//! Serialisers producing the exact bytes each end puts on the wire.
//!
//! Output is deterministic (fixed attribute order, `"` quotes, no whitespace between
//! elements) so tests and the emulator's request log can compare bytes. Everything assumes the
//! stream was opened by [`client_header`] or [`server_header`], which bind the `stream` prefix
//! and the `jabber:client` default namespace.

use std::fmt::Write as _;

use crate::element::Element;
use crate::ns;
use crate::stanza::{
    Features, GcmMessage, Iq, IqPayload, PlainCredentials, SaslFailure, Stanza, StanzaError,
    StreamError,
};

/// The stream closing tag.
pub const CLOSE: &str = "</stream:stream>";
/// SASL `<success/>`.
pub const SUCCESS: &str = "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>";

/// Escapes character data: `&`, `<`, `>` (so `]]>` cannot appear) and CR (which a parser
/// would otherwise normalise to LF). Quotes stay as they are, which keeps JSON readable.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s, false)
}

/// Escapes an attribute value for double quotes: as text, plus `"`, `'`, tab and LF (which
/// attribute-value normalisation would turn into spaces).
pub fn escape_attr(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, attr: bool) -> std::borrow::Cow<'_, str> {
    let needs = |c: char| match c {
        '&' | '<' | '>' | '\r' => true,
        '"' | '\'' | '\t' | '\n' => attr,
        _ => false,
    };
    if !s.contains(needs) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn attr(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        let _ = write!(out, " {name}=\"{}\"", escape_attr(v));
    }
}

/// The client's stream header (docs/protocols.md, "CCS: stream setup and authentication").
/// Deliberately not self-closed: CCS drops
/// connections whose header ends in `/>`.
pub fn client_header(to: &str) -> String {
    format!(
        "<stream:stream to=\"{}\" version=\"1.0\" xmlns=\"{}\" xmlns:stream=\"{}\">",
        escape_attr(to),
        ns::CLIENT,
        ns::STREAMS
    )
}

/// The server's stream header answering a client's, with the server's domain and a stream id.
pub fn server_header(from: &str, id: &str) -> String {
    format!(
        "<stream:stream from=\"{}\" id=\"{}\" version=\"1.0\" xmlns=\"{}\" xmlns:stream=\"{}\">",
        escape_attr(from),
        escape_attr(id),
        ns::CLIENT,
        ns::STREAMS
    )
}

/// `<auth mechanism="PLAIN">` with the credentials' base64.
pub fn auth_plain(creds: &PlainCredentials) -> String {
    format!(
        "<auth mechanism=\"PLAIN\" xmlns=\"{}\">{}</auth>",
        ns::SASL,
        creds.encode()
    )
}

/// A `<stream:error>` followed by the closing tag: everything a peer sends when giving up.
pub fn stream_error_and_close(err: &StreamError) -> String {
    let mut s = err.to_xml();
    s.push_str(CLOSE);
    s
}

impl Features {
    /// `<stream:features>` with mechanisms, then bind, then session.
    pub fn to_xml(&self) -> String {
        if self.mechanisms.is_empty() && !self.bind && !self.session {
            return "<stream:features/>".into();
        }
        let mut out = String::from("<stream:features>");
        if !self.mechanisms.is_empty() {
            let _ = write!(out, "<mechanisms xmlns=\"{}\">", ns::SASL);
            for m in &self.mechanisms {
                let _ = write!(out, "<mechanism>{}</mechanism>", escape_text(m));
            }
            out.push_str("</mechanisms>");
        }
        if self.bind {
            let _ = write!(out, "<bind xmlns=\"{}\"/>", ns::BIND);
        }
        if self.session {
            let _ = write!(out, "<session xmlns=\"{}\"/>", ns::SESSION);
        }
        out.push_str("</stream:features>");
        out
    }
}

impl SaslFailure {
    /// `<failure xmlns="…sasl"><condition/>[<text>…</text>]</failure>`.
    pub fn to_xml(&self) -> String {
        let mut out = format!("<failure xmlns=\"{}\"><{}/>", ns::SASL, self.condition);
        if let Some(t) = &self.text {
            let _ = write!(out, "<text>{}</text>", escape_text(t));
        }
        out.push_str("</failure>");
        out
    }
}

impl StanzaError {
    /// `<error code type><condition xmlns="…stanzas"/>[<text xmlns="…stanzas">…</text>]</error>`.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<error");
        attr(&mut out, "code", self.code.as_deref());
        attr(&mut out, "type", Some(&self.kind));
        let _ = write!(out, "><{} xmlns=\"{}\"/>", self.condition, ns::STANZAS);
        if let Some(t) = &self.text {
            let _ = write!(
                out,
                "<text xmlns=\"{}\">{}</text>",
                ns::STANZAS,
                escape_text(t)
            );
        }
        out.push_str("</error>");
        out
    }
}

impl StreamError {
    /// `<stream:error><condition xmlns="…streams"/>[<text …>…</text>]</stream:error>`.
    pub fn to_xml(&self) -> String {
        let mut out = format!(
            "<stream:error><{} xmlns=\"{}\"/>",
            self.condition,
            ns::STREAM_ERRORS
        );
        if let Some(t) = &self.text {
            let _ = write!(
                out,
                "<text xmlns=\"{}\">{}</text>",
                ns::STREAM_ERRORS,
                escape_text(t)
            );
        }
        out.push_str("</stream:error>");
        out
    }
}

impl Iq {
    /// `<iq id type [to] [from]>payload</iq>` (self-closed when empty).
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<iq");
        attr(&mut out, "id", Some(&self.id));
        attr(&mut out, "type", Some(self.kind.as_str()));
        attr(&mut out, "to", self.to.as_deref());
        attr(&mut out, "from", self.from.as_deref());
        match &self.payload {
            IqPayload::Empty => {
                out.push_str("/>");
                return out;
            }
            IqPayload::Bind { resource, jid } => {
                let _ = write!(out, "><bind xmlns=\"{}\"", ns::BIND);
                if resource.is_none() && jid.is_none() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    if let Some(r) = resource {
                        let _ = write!(out, "<resource>{}</resource>", escape_text(r));
                    }
                    if let Some(j) = jid {
                        let _ = write!(out, "<jid>{}</jid>", escape_text(j));
                    }
                    out.push_str("</bind>");
                }
            }
            IqPayload::Session => {
                let _ = write!(out, "><session xmlns=\"{}\"/>", ns::SESSION);
            }
            IqPayload::Ping => {
                let _ = write!(out, "><ping xmlns=\"{}\"/>", ns::PING);
            }
            IqPayload::Error(e) => {
                out.push('>');
                out.push_str(&e.to_xml());
            }
            IqPayload::Other(el) => {
                out.push('>');
                el.write_xml(&mut out, ns::CLIENT);
            }
        }
        out.push_str("</iq>");
        out
    }
}

impl GcmMessage {
    /// `<message [id] [type] [to] [from]><gcm xmlns="google:mobile:data">JSON</gcm>[error]</message>`.
    ///
    /// The JSON is written as text with `&`, `<`, `>` escaped. It must not contain C0 control
    /// characters (serde_json output never does: it escapes them as `\u00XX`).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.json.len() + 96);
        out.push_str("<message");
        attr(&mut out, "id", self.id.as_deref());
        attr(&mut out, "type", self.kind.as_deref());
        attr(&mut out, "to", self.to.as_deref());
        attr(&mut out, "from", self.from.as_deref());
        let _ = write!(
            out,
            "><gcm xmlns=\"{}\">{}</gcm>",
            ns::GCM,
            escape_text(&self.json)
        );
        if let Some(e) = &self.error {
            out.push_str(&e.to_xml());
        }
        out.push_str("</message>");
        out
    }
}

impl Stanza {
    /// Serialises whichever stanza this is.
    pub fn to_xml(&self) -> String {
        match self {
            Stanza::Features(f) => f.to_xml(),
            Stanza::Auth(a) => format!(
                "<auth mechanism=\"{}\" xmlns=\"{}\">{}</auth>",
                escape_attr(&a.mechanism),
                ns::SASL,
                escape_text(&a.payload)
            ),
            Stanza::Success => SUCCESS.into(),
            Stanza::Failure(f) => f.to_xml(),
            Stanza::Iq(iq) => iq.to_xml(),
            Stanza::Message(m) => m.to_xml(),
            Stanza::StreamError(e) => e.to_xml(),
            Stanza::Other(el) => el.to_xml(),
        }
    }
}

impl Element {
    /// Serialises a top-level element of a `jabber:client` stream (elements in the streams
    /// namespace get the `stream:` prefix; others declare `xmlns` where it changes).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, ns::CLIENT);
        out
    }

    /// Appends this element to `out`, given the default namespace in scope at its parent.
    pub fn write_xml(&self, out: &mut String, parent_ns: &str) {
        let (prefix, child_ns) = if self.ns == ns::STREAMS {
            ("stream:", parent_ns)
        } else {
            ("", self.ns.as_str())
        };
        let _ = write!(out, "<{prefix}{}", self.name);
        if prefix.is_empty() && self.ns != parent_ns {
            attr(out, "xmlns", Some(&self.ns));
        }
        for (k, v) in &self.attrs {
            attr(out, k, Some(v));
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        out.push_str(&escape_text(&self.text));
        for c in &self.children {
            c.write_xml(out, child_ns);
        }
        let _ = write!(out, "</{prefix}{}>", self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{StreamEvent, StreamParser};
    use crate::stanza::StreamErrorCondition;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// Parses `xml` as stanzas of a stream opened by our own client header.
    fn reparse(xml: &str) -> Vec<Stanza> {
        let mut p = StreamParser::new();
        p.feed(client_header("gcm.googleapis.com").as_bytes())
            .unwrap();
        p.feed(xml.as_bytes()).unwrap();
        let mut out = Vec::new();
        while let Some(ev) = p.next_event().unwrap() {
            if let StreamEvent::Stanza(el) = ev {
                out.push(Stanza::from_element(el));
            }
        }
        out
    }

    fn round_trip(s: Stanza) {
        let xml = s.to_xml();
        assert_eq!(reparse(&xml), vec![s], "{xml}");
    }

    #[test]
    fn exact_headers_and_constants() {
        assert_eq!(
            client_header("gcm.googleapis.com"),
            "<stream:stream to=\"gcm.googleapis.com\" version=\"1.0\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\">"
        );
        assert_eq!(
            server_header("gcm.googleapis.com", "ABC1"),
            "<stream:stream from=\"gcm.googleapis.com\" id=\"ABC1\" version=\"1.0\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\">"
        );
        assert!(!client_header("x").ends_with("/>"));
        assert_eq!(CLOSE, "</stream:stream>");
        assert_eq!(
            SUCCESS,
            "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>"
        );
        let mut p = StreamParser::new();
        p.feed(server_header("gcm.googleapis.com", "ABC1").as_bytes())
            .unwrap();
        let Some(StreamEvent::StreamOpen(h)) = p.next_event().unwrap() else {
            panic!()
        };
        assert_eq!(
            (h.from.as_deref(), h.id.as_deref()),
            (Some("gcm.googleapis.com"), Some("ABC1"))
        );
    }

    #[test]
    fn exact_features() {
        assert_eq!(
            Features::ccs_sasl().to_xml(),
            "<stream:features><mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>X-OAUTH2</mechanism><mechanism>X-GOOGLE-TOKEN</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        );
        assert_eq!(
            Features::bind(true).to_xml(),
            "<stream:features><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></stream:features>"
        );
        assert_eq!(Features::default().to_xml(), "<stream:features/>");
        round_trip(Stanza::Features(Features::ccs_sasl()));
        round_trip(Stanza::Features(Features::bind(false)));
        round_trip(Stanza::Features(Features::default()));
    }

    #[test]
    fn exact_sasl() {
        let creds = PlainCredentials::for_sender("123", "gcm.googleapis.com", "KEY");
        assert_eq!(
            auth_plain(&creds),
            "<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">ADEyM0BnY20uZ29vZ2xlYXBpcy5jb20AS0VZ</auth>"
        );
        assert_eq!(
            SaslFailure::not_authorized().to_xml(),
            "<failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><not-authorized/></failure>"
        );
        round_trip(Stanza::Success);
        round_trip(Stanza::Failure(SaslFailure {
            condition: "temporary-auth-failure".into(),
            text: Some("a < b".into()),
        }));
        let [Stanza::Auth(a)] = &reparse(&auth_plain(&creds))[..] else {
            panic!()
        };
        round_trip(Stanza::Auth(a.clone()));
    }

    #[test]
    fn exact_iqs() {
        assert_eq!(
            Iq::bind_request("b", Some("res")).to_xml(),
            "<iq id=\"b\" type=\"set\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>res</resource></bind></iq>"
        );
        assert_eq!(
            Iq::bind_request("b", None).to_xml(),
            "<iq id=\"b\" type=\"set\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/></iq>"
        );
        assert_eq!(
            Iq::bind_result("b", "1@gcm.googleapis.com/r").to_xml(),
            "<iq id=\"b\" type=\"result\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><jid>1@gcm.googleapis.com/r</jid></bind></iq>"
        );
        assert_eq!(
            Iq::session_request("s").to_xml(),
            "<iq id=\"s\" type=\"set\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq>"
        );
        let ping = Iq::ping("p").with_to("gcm.googleapis.com");
        assert_eq!(
            ping.to_xml(),
            "<iq id=\"p\" type=\"get\" to=\"gcm.googleapis.com\"><ping xmlns=\"urn:xmpp:ping\"/></iq>"
        );
        let pong = Iq::ping("p")
            .with_from("1@gcm.googleapis.com/r")
            .result_for();
        assert_eq!(
            pong.to_xml(),
            "<iq id=\"p\" type=\"result\" to=\"1@gcm.googleapis.com/r\"/>"
        );
        let err = Iq::ping("q").error_for(StanzaError::service_unavailable());
        assert_eq!(
            err.to_xml(),
            "<iq id=\"q\" type=\"error\"><error code=\"503\" type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"
        );
        for iq in [
            Iq::bind_request("b", Some("r")),
            Iq::bind_request("b", None),
            Iq::bind_result("b", "j"),
            Iq::session_request("s"),
            ping,
            pong,
            err,
        ] {
            round_trip(Stanza::Iq(iq));
        }
        let other = Iq {
            payload: IqPayload::Other(
                Element::new("query", "jabber:iq:roster")
                    .with_child(Element::new("item", "jabber:iq:roster")),
            ),
            ..Iq::ping("o")
        };
        assert_eq!(
            other.to_xml(),
            "<iq id=\"o\" type=\"get\"><query xmlns=\"jabber:iq:roster\"><item/></query></iq>"
        );
        round_trip(Stanza::Iq(other));
    }

    #[test]
    fn exact_messages() {
        let ack = GcmMessage::from_value(
            &json!({"message_type":"ack","message_id":"m-1","from":"REGID"}),
        );
        assert_eq!(
            ack.to_xml(),
            "<message><gcm xmlns=\"google:mobile:data\">{\"from\":\"REGID\",\"message_id\":\"m-1\",\"message_type\":\"ack\"}</gcm></message>"
        );
        let upstream = GcmMessage::new(r#"{"a":"<&>]]>"}"#)
            .with_id("")
            .with_type("normal");
        assert_eq!(
            upstream.to_xml(),
            "<message id=\"\" type=\"normal\"><gcm xmlns=\"google:mobile:data\">{\"a\":\"&lt;&amp;&gt;]]&gt;\"}</gcm></message>"
        );
        let err = GcmMessage::new("{\"random\": \"text\"}")
            .with_id("3")
            .with_to("123456789@gcm.googleapis.com/ABC")
            .with_error(StanzaError::bad_request(
                "InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id\n",
            ));
        assert_eq!(
            err.to_xml(),
            "<message id=\"3\" type=\"error\" to=\"123456789@gcm.googleapis.com/ABC\"><gcm xmlns=\"google:mobile:data\">{\"random\": \"text\"}</gcm><error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id\n</text></error></message>"
        );
        for m in [
            ack,
            upstream,
            err,
            GcmMessage::new("x\r\ny").with_from("a\"'\t\n<b>"),
        ] {
            round_trip(Stanza::Message(m));
        }
    }

    #[test]
    fn exact_stream_errors() {
        let e = StreamError {
            condition: StreamErrorCondition::PolicyViolation,
            text: Some("stanza exceeds 65536 bytes".into()),
        };
        assert_eq!(
            stream_error_and_close(&e),
            "<stream:error><policy-violation xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/><text xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\">stanza exceeds 65536 bytes</text></stream:error></stream:stream>"
        );
        round_trip(Stanza::StreamError(e));
        round_trip(Stanza::StreamError(StreamError::new(
            StreamErrorCondition::SystemShutdown,
        )));
        let from_parse = crate::XmppError::TooDeep { limit: 3 }.to_stream_error();
        assert_eq!(from_parse.condition, StreamErrorCondition::PolicyViolation);
    }

    #[test]
    fn generic_element_round_trip() {
        let el = Element::new("presence", crate::ns::CLIENT)
            .with_attr("type", "una\"vailable")
            .with_child(
                Element::new("x", "urn:x")
                    .with_text("a<b")
                    .with_child(Element::new("y", "urn:x")),
            )
            .with_child(Element::new("features", crate::ns::STREAMS));
        round_trip(Stanza::Other(el));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            (-1_000_000i32..1_000_000).prop_map(|n| json!(f64::from(n) / 8.0)),
            any::<String>().prop_map(Value::String),
            "[<>&\"'\\]\\\\ ]{0,8}(\\]\\]>)?[a-zé😀\\n\\r\\t]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_survives_a_gcm_stanza(v in arb_json(), chunk in 1usize..64) {
            let xml = GcmMessage::from_value(&v).with_id("m").to_xml();
            // Parse it in chunks to also cover pieces and references split across reads.
            let mut p = StreamParser::new();
            p.feed(client_header("gcm.googleapis.com").as_bytes()).unwrap();
            prop_assert!(matches!(p.next_event(), Ok(Some(StreamEvent::StreamOpen(_)))));
            let mut got = None;
            for piece in xml.as_bytes().chunks(chunk) {
                p.feed(piece).unwrap();
                if let Some(StreamEvent::Stanza(el)) = p.next_event().unwrap() {
                    got = Some(el);
                }
            }
            let Some(Stanza::Message(m)) = got.map(Stanza::from_element) else {
                return Err(TestCaseError::fail("no message"));
            };
            prop_assert_eq!(m.value().unwrap(), v);
        }

        #[test]
        fn any_text_survives_escaping(s in any::<String>()) {
            // C0 controls other than tab/LF/CR cannot be carried by XML 1.0 at all.
            let s: String = s.chars().filter(|c| *c >= ' ' || matches!(c, '\t' | '\n' | '\r')).collect();
            let m = GcmMessage::new(s.clone()).with_id(s.clone());
            let [Stanza::Message(back)] = &reparse(&m.to_xml())[..] else {
                return Err(TestCaseError::fail("not one message"));
            };
            prop_assert_eq!(&back.json, &s);
            prop_assert_eq!(back.id.as_deref(), Some(s.as_str()));
        }
    }
}
