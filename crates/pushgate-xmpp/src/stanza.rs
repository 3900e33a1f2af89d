//! Typed views of the stanzas CCS uses, read from parsed [`Element`]s.
//!
//! Everything here is plain data; serialisation lives in [`crate::writer`]. Classification never
//! fails: anything unrecognised stays an [`Stanza::Other`] element, so each end decides itself
//! what is a protocol violation.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::element::Element;
use crate::error::SaslError;
use crate::ns;

/// A top-level stream child, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Stanza {
    /// `<stream:features>`.
    Features(Features),
    /// SASL `<auth>` (client to server).
    Auth(SaslAuth),
    /// SASL `<success/>`.
    Success,
    /// SASL `<failure>`.
    Failure(SaslFailure),
    /// An `<iq>` with `id` and a known `type`.
    Iq(Iq),
    /// A `<message>` carrying a `google:mobile:data` `gcm` child.
    Message(GcmMessage),
    /// `<stream:error>`.
    StreamError(StreamError),
    /// Anything else (a `<message>` without `gcm`, `<presence>`, unknown elements).
    Other(Element),
}

impl Stanza {
    /// Classifies a parsed top-level element.
    pub fn from_element(el: Element) -> Stanza {
        if el.ns == ns::STREAMS {
            match el.name.as_str() {
                "features" => return Stanza::Features(Features::from_element(&el)),
                "error" => return Stanza::StreamError(StreamError::from_element(&el)),
                _ => return Stanza::Other(el),
            }
        }
        if el.ns == ns::SASL {
            match el.name.as_str() {
                "auth" => {
                    return Stanza::Auth(SaslAuth {
                        mechanism: el.attr("mechanism").unwrap_or_default().to_owned(),
                        payload: el.text.trim().to_owned(),
                    });
                }
                "success" => return Stanza::Success,
                "failure" => return Stanza::Failure(SaslFailure::from_element(&el)),
                _ => return Stanza::Other(el),
            }
        }
        match el.name.as_str() {
            "iq" => match Iq::from_element(&el) {
                Some(iq) => Stanza::Iq(iq),
                None => Stanza::Other(el),
            },
            "message" => match GcmMessage::from_element(&el) {
                Some(m) => Stanza::Message(m),
                None => Stanza::Other(el),
            },
            _ => Stanza::Other(el),
        }
    }
}

/// The `<stream:features>` a server offers: SASL mechanisms before authentication, resource
/// binding (and the legacy session) after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// SASL mechanisms in the server's order (`X-OAUTH2`, `X-GOOGLE-TOKEN`, `PLAIN` on CCS).
    pub mechanisms: Vec<String>,
    /// Resource binding (RFC 6120 §7) is offered.
    pub bind: bool,
    /// The legacy session establishment (RFC 3921 §3) is offered.
    pub session: bool,
}

/// The SASL mechanisms real CCS offers, in its order.
pub const CCS_MECHANISMS: [&str; 3] = ["X-OAUTH2", "X-GOOGLE-TOKEN", "PLAIN"];

impl Features {
    /// Reads a `<stream:features>` element.
    pub fn from_element(el: &Element) -> Features {
        let mechanisms = el
            .child("mechanisms", ns::SASL)
            .map(|m| {
                m.children
                    .iter()
                    .filter(|c| c.is("mechanism", ns::SASL))
                    .map(|c| c.text.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Features {
            mechanisms,
            bind: el.child("bind", ns::BIND).is_some(),
            session: el.child("session", ns::SESSION).is_some(),
        }
    }

    /// The pre-authentication features CCS sends.
    pub fn ccs_sasl() -> Features {
        Features {
            mechanisms: CCS_MECHANISMS.iter().map(|m| (*m).to_owned()).collect(),
            ..Features::default()
        }
    }

    /// The post-authentication features: bind, and session if `session`.
    pub fn bind(session: bool) -> Features {
        Features {
            mechanisms: Vec::new(),
            bind: true,
            session,
        }
    }

    /// True if `mechanism` is offered.
    pub fn offers(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }
}

/// A SASL `<auth>` request: mechanism and the base64 initial response, still encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslAuth {
    /// The `mechanism` attribute (`PLAIN`).
    pub mechanism: String,
    /// The element text: base64, or `=` for an empty initial response.
    pub payload: String,
}

impl SaslAuth {
    /// Decodes a `PLAIN` payload into credentials.
    pub fn plain_credentials(&self) -> Result<PlainCredentials, SaslError> {
        PlainCredentials::decode(&self.payload)
    }
}

/// Debug redacts the payload: it is the base64 of the API key.
impl fmt::Debug for SaslAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuth")
            .field("mechanism", &self.mechanism)
            .field("payload", &"<redacted>")
            .finish()
    }
}

/// Decoded SASL PLAIN credentials (RFC 4616): `[authzid] NUL authcid NUL password`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity; CCS ignores it (clients send nothing, the sender, or odd forms).
    pub authzid: Option<String>,
    /// Authentication identity: `SENDER`, or `SENDER@gcm.googleapis.com` / `@fcm.googleapis.com`.
    pub authcid: String,
    /// The password: the sender's API (server) key.
    pub password: String,
}

impl PlainCredentials {
    /// The credentials a CCS client sends: no authzid, `SENDER@domain`, key.
    pub fn for_sender(sender_id: &str, domain: &str, api_key: &str) -> Self {
        PlainCredentials {
            authzid: None,
            authcid: format!("{sender_id}@{domain}"),
            password: api_key.to_owned(),
        }
    }

    /// Decodes the base64 text of `<auth mechanism="PLAIN">`.
    pub fn decode(payload: &str) -> Result<Self, SaslError> {
        let payload = payload.trim();
        let raw = if payload == "=" {
            Vec::new()
        } else {
            let compact: String = payload.split_ascii_whitespace().collect();
            BASE64.decode(compact).map_err(|_| SaslError::Base64)?
        };
        let text = String::from_utf8(raw).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::Malformed(
                "expected authzid NUL authcid NUL password",
            ));
        };
        if authcid.is_empty() {
            return Err(SaslError::Malformed("empty authcid"));
        }
        Ok(PlainCredentials {
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            authcid: authcid.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The base64 initial response for `<auth mechanism="PLAIN">`.
    pub fn encode(&self) -> String {
        let mut raw = String::new();
        if let Some(z) = &self.authzid {
            raw.push_str(z);
        }
        raw.push('\0');
        raw.push_str(&self.authcid);
        raw.push('\0');
        raw.push_str(&self.password);
        BASE64.encode(raw.as_bytes())
    }

    /// The sender id in the authcid: the part before `@` whatever the host (`SENDER`,
    /// `SENDER@gcm.googleapis.com`, `SENDER@fcm.googleapis.com` all give `SENDER`). The authzid
    /// is ignored, as CCS does. `None` if that part is empty.
    pub fn sender_id(&self) -> Option<&str> {
        let id = match self.authcid.split_once('@') {
            Some((id, _host)) => id,
            None => &self.authcid,
        };
        (!id.is_empty()).then_some(id)
    }
}

/// Debug never shows the password.
impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A SASL `<failure>`: its condition (`not-authorized`, …) and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslFailure {
    /// The condition element's name (RFC 6120 §6.5); `not-authorized` for a bad key.
    pub condition: String,
    /// Optional human-readable `<text>`.
    pub text: Option<String>,
}

impl SaslFailure {
    /// `<failure><not-authorized/></failure>`: what a wrong sender or key gets.
    pub fn not_authorized() -> Self {
        SaslFailure {
            condition: "not-authorized".into(),
            text: None,
        }
    }

    /// Reads a `<failure>` element.
    pub fn from_element(el: &Element) -> Self {
        let condition = el
            .children
            .iter()
            .find(|c| c.ns == ns::SASL && c.name != "text")
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "not-authorized".into());
        SaslFailure {
            condition,
            text: el.child("text", ns::SASL).map(|t| t.text.clone()),
        }
    }
}

impl fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(t) = &self.text {
            write!(f, " ({t})")?;
        }
        Ok(())
    }
}

/// The `type` of an IQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// A request for information.
    Get,
    /// A request to change something (bind, session).
    Set,
    /// A successful answer.
    Result,
    /// A failed answer.
    Error,
}

impl IqType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// Parses the attribute value.
    pub fn parse(s: &str) -> Option<IqType> {
        Some(match s {
            "get" => IqType::Get,
            "set" => IqType::Set,
            "result" => IqType::Result,
            "error" => IqType::Error,
            _ => return None,
        })
    }
}

/// What an IQ carries, for the IQs CCS uses.
#[derive(Debug, Clone, PartialEq)]
pub enum IqPayload {
    /// No child (a plain result, e.g. a pong or session result).
    Empty,
    /// Resource binding: request (`resource` wanted) or result (`jid` bound).
    Bind {
        /// Requested resource, if any.
        resource: Option<String>,
        /// The full JID the server bound.
        jid: Option<String>,
    },
    /// Legacy session establishment.
    Session,
    /// XEP-0199 ping.
    Ping,
    /// A stanza error.
    Error(StanzaError),
    /// Any other child.
    Other(Element),
}

/// An `<iq>` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct Iq {
    /// `id`, echoed by the answer.
    pub id: String,
    /// `type`.
    pub kind: IqType,
    /// `to`, if set.
    pub to: Option<String>,
    /// `from`, if set.
    pub from: Option<String>,
    /// The child.
    pub payload: IqPayload,
}

impl Iq {
    /// Reads an `<iq>`; `None` without `id` or with an unknown `type`.
    pub fn from_element(el: &Element) -> Option<Iq> {
        let id = el.attr("id")?.to_owned();
        let kind = IqType::parse(el.attr("type")?)?;
        let payload = if kind == IqType::Error
            && let Some(err) = el.child("error", &el.ns)
        {
            IqPayload::Error(StanzaError::from_element(err))
        } else {
            match el.children.iter().find(|c| !c.is("error", &el.ns)) {
                None => IqPayload::Empty,
                Some(c) if c.is("bind", ns::BIND) => IqPayload::Bind {
                    resource: c
                        .child("resource", ns::BIND)
                        .map(|r| r.text.trim().to_owned()),
                    jid: c.child("jid", ns::BIND).map(|j| j.text.trim().to_owned()),
                },
                Some(c) if c.is("session", ns::SESSION) => IqPayload::Session,
                Some(c) if c.is("ping", ns::PING) => IqPayload::Ping,
                Some(c) => IqPayload::Other(c.clone()),
            }
        };
        Some(Iq {
            id,
            kind,
            to: el.attr("to").map(str::to_owned),
            from: el.attr("from").map(str::to_owned),
            payload,
        })
    }

    fn new(id: &str, kind: IqType, payload: IqPayload) -> Iq {
        Iq {
            id: id.to_owned(),
            kind,
            to: None,
            from: None,
            payload,
        }
    }

    /// Client: `<iq type="set"><bind><resource/></bind></iq>`.
    pub fn bind_request(id: &str, resource: Option<&str>) -> Iq {
        let payload = IqPayload::Bind {
            resource: resource.map(str::to_owned),
            jid: None,
        };
        Iq::new(id, IqType::Set, payload)
    }

    /// Server: the bind result carrying the full JID.
    pub fn bind_result(id: &str, jid: &str) -> Iq {
        let payload = IqPayload::Bind {
            resource: None,
            jid: Some(jid.to_owned()),
        };
        Iq::new(id, IqType::Result, payload)
    }

    /// Client: the legacy session request.
    pub fn session_request(id: &str) -> Iq {
        Iq::new(id, IqType::Set, IqPayload::Session)
    }

    /// Either end: an XEP-0199 ping.
    pub fn ping(id: &str) -> Iq {
        Iq::new(id, IqType::Get, IqPayload::Ping)
    }

    /// An empty result answering `self` (pong, session result): same id, `to` = our peer's
    /// `from` if it gave one.
    pub fn result_for(&self) -> Iq {
        Iq {
            to: self.from.clone(),
            ..Iq::new(&self.id, IqType::Result, IqPayload::Empty)
        }
    }

    /// An error answering `self`.
    pub fn error_for(&self, error: StanzaError) -> Iq {
        Iq {
            to: self.from.clone(),
            ..Iq::new(&self.id, IqType::Error, IqPayload::Error(error))
        }
    }

    /// Builder: sets `to`.
    pub fn with_to(mut self, to: impl Into<String>) -> Iq {
        self.to = Some(to.into());
        self
    }

    /// Builder: sets `from`.
    pub fn with_from(mut self, from: impl Into<String>) -> Iq {
        self.from = Some(from.into());
        self
    }
}

/// A `<message>` with a `<gcm xmlns="google:mobile:data">` child: every CCS payload.
#[derive(Debug, Clone, PartialEq)]
pub struct GcmMessage {
    /// `id` (CCS samples send `id=""`).
    pub id: Option<String>,
    /// `type`: none on acks/nacks/control, `normal` on upstream and receipts, `error` on stanza
    /// errors. Clients should not depend on it (docs/protocols.md, "CCS: message framing").
    pub kind: Option<String>,
    /// `to`, if set.
    pub to: Option<String>,
    /// `from`, if set.
    pub from: Option<String>,
    /// The JSON text of `<gcm>`, unescaped.
    pub json: String,
    /// For `type="error"`: the stanza error.
    pub error: Option<StanzaError>,
}

impl GcmMessage {
    /// A message carrying `json` as is, with no attributes.
    pub fn new(json: impl Into<String>) -> Self {
        GcmMessage {
            id: None,
            kind: None,
            to: None,
            from: None,
            json: json.into(),
            error: None,
        }
    }

    /// A message carrying `value` serialised as JSON.
    pub fn from_value(value: &serde_json::Value) -> Self {
        GcmMessage::new(value.to_string())
    }

    /// Builder: sets `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Builder: sets `type` (`normal` for upstream messages and receipts).
    pub fn with_type(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Builder: sets `to`.
    pub fn with_to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Builder: sets `from`.
    pub fn with_from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// Builder: makes this a `type="error"` stanza error echoing the payload (docs/protocols.md,
    /// "CCS: stanza errors").
    pub fn with_error(mut self, error: StanzaError) -> Self {
        self.kind = Some("error".into());
        self.error = Some(error);
        self
    }

    /// Reads a `<message>` whose `gcm` child is in `google:mobile:data`, whatever its prefix.
    pub fn from_element(el: &Element) -> Option<Self> {
        if el.name != "message" {
            return None;
        }
        let gcm = el.child("gcm", ns::GCM)?;
        Some(GcmMessage {
            id: el.attr("id").map(str::to_owned),
            kind: el.attr("type").map(str::to_owned),
            to: el.attr("to").map(str::to_owned),
            from: el.attr("from").map(str::to_owned),
            json: gcm.text.clone(),
            error: el.child("error", &el.ns).map(StanzaError::from_element),
        })
    }

    /// The payload parsed as JSON.
    pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// A stanza error (RFC 6120 §8.3) as CCS sends it: legacy `code`, `type`, condition, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// Legacy numeric code (`400`), if any.
    pub code: Option<String>,
    /// `type`: `modify`, `cancel`, `auth`, `wait`, `continue`.
    pub kind: String,
    /// Condition element name in `urn:ietf:params:xml:ns:xmpp-stanzas` (`bad-request`).
    pub condition: String,
    /// Optional `<text>`.
    pub text: Option<String>,
}

impl StanzaError {
    /// `code="400" type="modify"` `bad-request`, what CCS answers to bad JSON.
    pub fn bad_request(text: impl Into<String>) -> Self {
        StanzaError {
            code: Some("400".into()),
            kind: "modify".into(),
            condition: "bad-request".into(),
            text: Some(text.into()),
        }
    }

    /// `type="cancel"` `service-unavailable`, the standard answer to an unsupported IQ.
    pub fn service_unavailable() -> Self {
        StanzaError {
            code: Some("503".into()),
            kind: "cancel".into(),
            condition: "service-unavailable".into(),
            text: None,
        }
    }

    /// Reads an `<error>` element.
    pub fn from_element(el: &Element) -> Self {
        StanzaError {
            code: el.attr("code").map(str::to_owned),
            kind: el.attr("type").unwrap_or_default().to_owned(),
            condition: el
                .children
                .iter()
                .find(|c| c.ns == ns::STANZAS && c.name != "text")
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "undefined-condition".into()),
            text: el.child("text", ns::STANZAS).map(|t| t.text.clone()),
        }
    }
}

macro_rules! conditions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// A stream-error condition (RFC 6120 §4.9.3).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum StreamErrorCondition {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// A condition this crate does not know by name.
            Other(String),
        }

        impl StreamErrorCondition {
            /// The condition element's name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(StreamErrorCondition::$variant => $name,)*
                    StreamErrorCondition::Other(s) => s,
                }
            }

            /// The condition for an element name.
            pub fn parse(name: &str) -> Self {
                match name {
                    $($name => StreamErrorCondition::$variant,)*
                    other => StreamErrorCondition::Other(other.to_owned()),
                }
            }
        }
    };
}

conditions! {
    BadFormat => "bad-format",
    BadNamespacePrefix => "bad-namespace-prefix",
    Conflict => "conflict",
    ConnectionTimeout => "connection-timeout",
    HostGone => "host-gone",
    HostUnknown => "host-unknown",
    ImproperAddressing => "improper-addressing",
    InternalServerError => "internal-server-error",
    InvalidFrom => "invalid-from",
    InvalidNamespace => "invalid-namespace",
    InvalidXml => "invalid-xml",
    NotAuthorized => "not-authorized",
    NotWellFormed => "not-well-formed",
    PolicyViolation => "policy-violation",
    RemoteConnectionFailed => "remote-connection-failed",
    Reset => "reset",
    ResourceConstraint => "resource-constraint",
    RestrictedXml => "restricted-xml",
    SeeOtherHost => "see-other-host",
    SystemShutdown => "system-shutdown",
    UndefinedCondition => "undefined-condition",
    UnsupportedEncoding => "unsupported-encoding",
    UnsupportedFeature => "unsupported-feature",
    UnsupportedStanzaType => "unsupported-stanza-type",
    UnsupportedVersion => "unsupported-version",
}

impl fmt::Display for StreamErrorCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `<stream:error>`: the last thing sent before closing a broken stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The condition.
    pub condition: StreamErrorCondition,
    /// Optional `<text>`.
    pub text: Option<String>,
}

impl StreamError {
    /// A stream error with a condition and no text.
    pub fn new(condition: StreamErrorCondition) -> Self {
        StreamError {
            condition,
            text: None,
        }
    }

    /// Reads a `<stream:error>` element.
    pub fn from_element(el: &Element) -> Self {
        let condition = el
            .children
            .iter()
            .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
            .map(|c| StreamErrorCondition::parse(&c.name))
            .unwrap_or(StreamErrorCondition::UndefinedCondition);
        StreamError {
            condition,
            text: el.child("text", ns::STREAM_ERRORS).map(|t| t.text.clone()),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.condition)?;
        if let Some(t) = &self.text {
            write!(f, " ({t})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{StreamEvent, StreamParser};

    fn parse(xml: &str) -> Stanza {
        let mut p = StreamParser::new();
        p.feed(crate::writer::client_header("gcm.googleapis.com").as_bytes())
            .unwrap();
        p.feed(xml.as_bytes()).unwrap();
        assert!(matches!(
            p.next_event(),
            Ok(Some(StreamEvent::StreamOpen(_)))
        ));
        match p.next_event() {
            Ok(Some(StreamEvent::Stanza(el))) => Stanza::from_element(el),
            other => panic!("{other:?}"),
        }
    }

    fn b64(s: &str) -> String {
        BASE64.encode(s.as_bytes())
    }

    #[test]
    fn plain_accepts_the_three_username_forms() {
        for (raw, authzid, authcid) in [
            (
                "\u{0}123@gcm.googleapis.com\u{0}KEY",
                None,
                "123@gcm.googleapis.com",
            ),
            (
                "\u{0}123@fcm.googleapis.com\u{0}KEY",
                None,
                "123@fcm.googleapis.com",
            ),
            ("123\u{0}123\u{0}KEY", Some("123"), "123"),
            (
                "123@projects.gcm.android.com\u{0}123@projects-ga-.android.com\u{0}KEY",
                Some("123@projects.gcm.android.com"),
                "123@projects-ga-.android.com",
            ),
            ("\u{0}123\u{0}KEY", None, "123"),
        ] {
            let c = PlainCredentials::decode(&b64(raw)).unwrap();
            assert_eq!(c.authzid.as_deref(), authzid, "{raw:?}");
            assert_eq!(c.authcid, authcid);
            assert_eq!(c.password, "KEY");
            assert_eq!(c.sender_id(), Some("123"));
        }
    }

    #[test]
    fn plain_errors() {
        assert_eq!(PlainCredentials::decode("!!!"), Err(SaslError::Base64));
        assert_eq!(SaslError::Base64.condition(), "incorrect-encoding");
        assert!(matches!(
            PlainCredentials::decode(&b64("user\u{0}pass")),
            Err(SaslError::Malformed(_))
        ));
        assert!(matches!(
            PlainCredentials::decode(&b64("a\u{0}b\u{0}c\u{0}d")),
            Err(SaslError::Malformed(_))
        ));
        assert!(matches!(
            PlainCredentials::decode(&b64("\u{0}\u{0}KEY")),
            Err(SaslError::Malformed(_))
        ));
        assert!(PlainCredentials::decode("=").is_err());
        assert!(matches!(
            PlainCredentials::decode(&BASE64.encode([0u8, 0xff, 0, 1])),
            Err(SaslError::Malformed(_))
        ));
        let c = PlainCredentials::decode(&b64("\u{0}@gcm.googleapis.com\u{0}K")).unwrap();
        assert_eq!(c.sender_id(), None);
    }

    #[test]
    fn plain_round_trip_and_redaction() {
        let c = PlainCredentials::for_sender("42", "gcm.googleapis.com", "s3cr3t-key");
        let back = PlainCredentials::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let Stanza::Auth(auth) = parse(&crate::writer::auth_plain(&c)) else {
            panic!()
        };
        assert_eq!(auth.mechanism, "PLAIN");
        assert_eq!(auth.plain_credentials().unwrap(), c);
        assert!(!format!("{auth:?}").contains(&c.encode()));
        // Line-wrapped base64 is accepted.
        let enc = c.encode();
        let (a, b) = enc.split_at(5);
        assert_eq!(PlainCredentials::decode(&format!(" {a}\n{b} ")).unwrap(), c);
    }

    #[test]
    fn features_from_ccs() {
        let Stanza::Features(f) = parse(
            "<str:features xmlns:str=\"http://etherx.jabber.org/streams\"><mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>X-OAUTH2</mechanism><mechanism>X-GOOGLE-TOKEN</mechanism><mechanism>PLAIN</mechanism></mechanisms></str:features>",
        ) else {
            panic!()
        };
        assert_eq!(f, Features::ccs_sasl());
        assert!(f.offers("PLAIN") && !f.offers("SCRAM-SHA-1"));
        let Stanza::Features(f) = parse(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>",
        ) else {
            panic!()
        };
        assert_eq!(f, Features::bind(true));
    }

    #[test]
    fn sasl_outcomes() {
        assert_eq!(
            parse("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
            Stanza::Success
        );
        let Stanza::Failure(f) = parse(
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad key</text></failure>",
        ) else {
            panic!()
        };
        assert_eq!(f.condition, "not-authorized");
        assert_eq!(f.text.as_deref(), Some("bad key"));
        assert_eq!(f.to_string(), "not-authorized (bad key)");
    }

    #[test]
    fn iqs() {
        let Stanza::Iq(iq) = parse(
            "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource> r1 </resource></bind></iq>",
        ) else {
            panic!()
        };
        assert_eq!((iq.id.as_str(), iq.kind), ("b1", IqType::Set));
        assert_eq!(
            iq.payload,
            IqPayload::Bind {
                resource: Some("r1".into()),
                jid: None
            }
        );
        let Stanza::Iq(iq) = parse(
            "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>1@gcm.googleapis.com/r</jid></bind></iq>",
        ) else {
            panic!()
        };
        assert!(
            matches!(iq.payload, IqPayload::Bind { jid: Some(j), .. } if j == "1@gcm.googleapis.com/r")
        );
        let Stanza::Iq(iq) = parse(
            "<iq type='get' id='p' from='gcm.googleapis.com'><ping xmlns='urn:xmpp:ping'/></iq>",
        ) else {
            panic!()
        };
        assert_eq!(iq.payload, IqPayload::Ping);
        assert_eq!(iq.result_for().to.as_deref(), Some("gcm.googleapis.com"));
        let Stanza::Iq(iq) = parse(
            "<iq type='error' id='x'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        ) else {
            panic!()
        };
        assert!(matches!(iq.payload, IqPayload::Error(e) if e.condition == "service-unavailable"));
        assert!(matches!(
            parse("<iq type='result' id='s'/>"),
            Stanza::Iq(Iq {
                payload: IqPayload::Empty,
                ..
            })
        ));
        assert!(matches!(
            parse("<iq type='bogus' id='s'/>"),
            Stanza::Other(_)
        ));
        assert!(matches!(parse("<iq type='get'/>"), Stanza::Other(_)));
    }

    #[test]
    fn gcm_messages_by_namespace() {
        let Stanza::Message(m) = parse(
            "<message><data:gcm xmlns:data=\"google:mobile:data\">{\"message_type\":\"ack\",\"message_id\":\"m-1\",\"from\":\"REGID\"}</data:gcm></message>",
        ) else {
            panic!()
        };
        assert_eq!(m.kind, None);
        assert_eq!(m.value().unwrap()["message_type"], "ack");
        assert!(matches!(
            parse("<message id='1'><gcm xmlns='not:gcm'>{}</gcm></message>"),
            Stanza::Other(_)
        ));
        assert!(matches!(parse("<message id='1'/>"), Stanza::Other(_)));
        assert!(matches!(parse("<presence/>"), Stanza::Other(_)));
        let Stanza::Message(m) =
            parse("<message id='x'><gcm xmlns='google:mobile:data'>not json</gcm></message>")
        else {
            panic!()
        };
        assert!(m.value().is_err());
    }

    #[test]
    fn stanza_error_sample_from_protocols_md() {
        let Stanza::Message(m) = parse(concat!(
            "<message id=\"3\" type=\"error\" to=\"123456789@gcm.googleapis.com/ABC\">\n",
            "  <gcm xmlns=\"google:mobile:data\">{\"random\": \"text\"}</gcm>\n",
            "  <error code=\"400\" type=\"modify\">\n",
            "    <bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n",
            "    <text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">InvalidJson: JSON_PARSING_ERROR : Missing Required Field: message_id\\n</text>\n",
            "  </error>\n",
            "</message>"
        )) else {
            panic!()
        };
        assert_eq!(m.id.as_deref(), Some("3"));
        assert_eq!(m.kind.as_deref(), Some("error"));
        assert_eq!(m.to.as_deref(), Some("123456789@gcm.googleapis.com/ABC"));
        assert_eq!(m.json, "{\"random\": \"text\"}");
        let e = m.error.unwrap();
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(e.kind, "modify");
        assert_eq!(e.condition, "bad-request");
        assert!(
            e.text
                .unwrap()
                .starts_with("InvalidJson: JSON_PARSING_ERROR")
        );
    }

    #[test]
    fn stream_errors() {
        let Stanza::StreamError(e) = parse(
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too big</text></stream:error>",
        ) else {
            panic!()
        };
        assert_eq!(e.condition, StreamErrorCondition::PolicyViolation);
        assert_eq!(e.text.as_deref(), Some("too big"));
        assert_eq!(e.to_string(), "policy-violation (too big)");
        let Stanza::StreamError(e) = parse(
            "<stream:error><x-custom xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ) else {
            panic!()
        };
        assert_eq!(e.condition, StreamErrorCondition::Other("x-custom".into()));
        for c in [
            "not-well-formed",
            "restricted-xml",
            "system-shutdown",
            "conflict",
        ] {
            assert_eq!(StreamErrorCondition::parse(c).as_str(), c);
        }
    }
}
